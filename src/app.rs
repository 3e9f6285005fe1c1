//! Wiring: binds every listener, starts the tasks, and shuts them down in
//! order (stop accepting → finish frames in hand → close).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{AccessLog, Directory};
use crate::api;
use crate::config::Config;
use crate::engine::Engine;
use crate::history::History;
use crate::metrics::Metrics;
use crate::protocol::{SessionConfig, Transport};
use crate::server::{self, http, ListenerCtx, Pipeline, Shared};
use crate::store::{SqliteStore, Store};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {transport} {addr} for {protocol}: {source}")]
    Bind {
        protocol: &'static str,
        transport: Transport,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("storage: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Mqtt(#[from] crate::mqtt::MqttError),
    #[error("{0}")]
    History(#[from] crate::history::HistoryError),
    #[error("cannot start the access-log writer: {0}")]
    Writer(std::io::Error),
    #[error("admin token file {path}: {source}")]
    AdminToken {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Environment variable holding the operator's admin token.
pub const ADMIN_TOKEN_ENV: &str = "TRACKGATE_ADMIN_TOKEN";
const ADMIN_TOKEN_FILE: &str = "admin-token.sha256";

/// The admin token's hash: from `TRACKGATE_ADMIN_TOKEN`, else from the data
/// dir, else a new token whose hash is stored and whose text is returned
/// once to be printed.
fn admin_token(data_dir: &std::path::Path) -> Result<([u8; 32], Option<String>), StartError> {
    use crate::access::directory::key_hash;
    if let Ok(t) = std::env::var(ADMIN_TOKEN_ENV) {
        if !t.trim().is_empty() {
            return Ok((key_hash(t.trim()), None));
        }
    }
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    let err = |source| StartError::AdminToken {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut hash)
                .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
            Ok((hash, None))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = format!("tga_{}", hex::encode(rand::random::<[u8; 32]>()));
            let hash = key_hash(&token);
            std::fs::write(&path, hex::encode(hash)).map_err(err)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            }
            Ok((hash, Some(token)))
        }
        Err(e) => Err(err(e)),
    }
}

/// One bound socket, for the start-up listing and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub protocol: &'static str,
    pub transport: Transport,
    pub addr: SocketAddr,
}

/// A started gateway.
pub struct Running {
    pub http: SocketAddr,
    pub bound: Vec<Bound>,
    pub engine: Arc<Engine>,
    pub metrics: Metrics,
    pub directory: Arc<Directory>,
    /// The durable position history.
    pub history: History,
    /// How long rebuilding the engine from the history took at start-up.
    pub restored: (usize, Duration),
    /// A newly generated admin token, to print once (None when it existed
    /// already or came from the environment).
    pub new_admin_token: Option<String>,
    stop: CancellationToken,
    tracker: TaskTracker,
    grace: Duration,
}

impl Running {
    /// The address `protocol` listens on over `transport`.
    pub fn addr(&self, protocol: &str, transport: Transport) -> Option<SocketAddr> {
        self.bound
            .iter()
            .find(|b| b.protocol == protocol && b.transport == transport)
            .map(|b| b.addr)
    }

    /// A token that fires when shutdown begins.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Human-readable list of what listens where.
    pub fn listing(&self) -> String {
        let mut s = format!(
            "  http        {}  (/health, /metrics, /api/v1, web app /app/)\n",
            self.http
        );
        for b in &self.bound {
            s.push_str(&format!(
                "  {:<11} {} {}\n",
                b.protocol, b.transport, b.addr
            ));
        }
        s
    }

    /// Stops accepting, lets connections finish the frame in hand, and
    /// waits up to the grace period for every task.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(self.grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("tasks still running after the grace period; exiting anyway");
        }
        // Nothing is appended any more: move the journal into the history
        // so a clean stop leaves nothing for the next start to compact (and
        // a restart in the same process cannot meet this one's compactor).
        match tokio::time::timeout(self.grace, self.history.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "history not compacted at shutdown; the next start does it")
            }
            Err(_) => tracing::warn!(
                "history compaction did not finish within the grace period; the next start does it"
            ),
        }
    }
}

/// Raises the soft limit on open files to the hard one: every device
/// connection is a descriptor, and the usual soft limit of 1024 would turn
/// devices away near a thousand connections whatever
/// `limits.max_connections` says. Warns when even the hard limit is below
/// what the configuration allows.
fn raise_open_file_limit(max_connections: usize) {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            let wanted = rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, wanted) {
                Ok(()) => limit = getrlimit(Resource::Nofile),
                Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
            }
        }
        // Some for the data files, listeners and HTTP clients besides devices.
        let needed = max_connections as u64 + 256;
        if let Some(have) = limit.current.filter(|&n| n < needed) {
            tracing::warn!(
                open_files = have,
                max_connections,
                "the open-file limit is below limits.max_connections; raise it (ulimit -n, LimitNOFILE=) or lower max_connections"
            );
        }
    }
}

/// Binds every listener in `config` and starts serving.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let metrics = Metrics::new();
    let engine = Arc::new(Engine::new());
    std::fs::create_dir_all(&config.data_dir).map_err(|source| {
        crate::store::StoreError::DataDir {
            path: config.data_dir.clone(),
            source,
        }
    })?;
    let (admin_token_hash, new_admin_token) = admin_token(&config.data_dir)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.data_dir).await?);
    let directory = Arc::new(Directory::from_loaded(store.load().await?));
    let access_log = AccessLog::spawn(Arc::clone(&store), metrics.access_log.clone())
        .map_err(StartError::Writer)?;
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let history = match &config.history.postgres_url {
        Some(url) => History::postgres(url, metrics.history.clone()).await?,
        None => History::open(&config.data_dir, metrics.history.clone())?,
    };
    history.limit_backlog(config.history.max_journal_records);
    // The engine starts where the history ends: every device's latest fix.
    let t = Instant::now();
    let latest = history.latest_all().await?;
    let restored_devices = latest.len();
    for p in latest {
        engine.update(p);
    }
    engine.refresh_index();
    let restored = (restored_devices, t.elapsed());
    tracing::info!(
        devices = restored_devices,
        ms = restored.1.as_millis() as u64,
        "engine restored from history"
    );
    let mut pipeline = Pipeline::new(
        Arc::clone(&engine),
        Arc::clone(&directory),
        config.ingest.accept_unregistered_devices,
    );
    if config.history.enabled {
        pipeline = pipeline.with_history(history.clone(), config.ingest.ack);
    }
    let mut feed_rx = None;
    if let Some(p) = &config.mqtt.publish {
        let (feed, rx) = crate::mqtt::Feed::new(p.buffer, metrics.mqtt_publish_dropped.clone());
        pipeline = pipeline.with_feed(feed);
        feed_rx = Some(rx);
    }
    let pipeline = Arc::new(pipeline);
    crate::mqtt::start(
        &config.mqtt,
        Arc::clone(&pipeline),
        &metrics,
        feed_rx,
        &stop,
        &tracker,
    )?;
    raise_open_file_limit(config.limits.max_connections);
    let shared = Shared {
        pipeline: Arc::clone(&pipeline),
        connections: Arc::new(Semaphore::new(config.limits.max_connections)),
        max_udp_peers: config.limits.max_connections,
        idle_timeout: config.idle_timeout(),
        max_frame_bytes: config.limits.max_frame_bytes,
        stop: stop.clone(),
        tracker: tracker.clone(),
    };

    let mut bound = Vec::new();
    for l in config.listeners() {
        let protocol = l.protocol;
        let name = protocol.name();
        let ctx = ListenerCtx {
            shared: shared.clone(),
            protocol,
            metrics: metrics.protocol(name),
            session: SessionConfig {
                time_zone: l.time_zone,
                model: l.model.clone(),
                ..SessionConfig::new(Transport::Tcp)
            },
        };
        let bind_err = |transport, addr, source| StartError::Bind {
            protocol: name,
            transport,
            addr,
            source,
        };
        let transports = protocol.transports();
        let mut addr = l.addr;
        if transports.contains(&Transport::Tcp) {
            let listener = server::bind_tcp(addr).map_err(|e| bind_err(Transport::Tcp, addr, e))?;
            // Port 0: UDP takes the port TCP was given, so both share one address.
            addr = listener
                .local_addr()
                .map_err(|e| bind_err(Transport::Tcp, addr, e))?;
            bound.push(Bound {
                protocol: name,
                transport: Transport::Tcp,
                addr,
            });
            tracker.spawn(server::serve_tcp(listener, ctx.clone()));
        }
        if transports.contains(&Transport::Udp) {
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(|e| bind_err(Transport::Udp, addr, e))?;
            let addr = socket
                .local_addr()
                .map_err(|e| bind_err(Transport::Udp, addr, e))?;
            bound.push(Bound {
                protocol: name,
                transport: Transport::Udp,
                addr,
            });
            tracker.spawn(server::serve_udp(socket, ctx));
        }
    }

    let http_listener =
        server::bind_tcp(config.http.listen).map_err(|source| StartError::Http {
            addr: config.http.listen,
            source,
        })?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|source| StartError::Http {
            addr: config.http.listen,
            source,
        })?;
    let router = http::router(http::HttpState {
        engine: Arc::clone(&engine),
        metrics: metrics.clone(),
        started: Instant::now(),
        storage: Arc::clone(&history.health),
    })
    .merge(api::router(api::ApiState::new(api::ApiShared {
        dir: Arc::clone(&directory),
        store,
        log: access_log,
        engine: Arc::clone(&engine),
        admin_token_hash,
        pipeline: Arc::clone(&pipeline),
        history: history.clone(),
        ingest: metrics.protocol(crate::api::INGEST_PROTOCOL),
        limits: config.limits.clone(),
        bounded_creation: tokio::sync::Mutex::new(()),
        sessions: api::session::Sessions::new(metrics.web_sessions.clone()),
        streams: Arc::new(api::stream::Streams::new(metrics.live_streams.clone())),
        stop: stop.clone(),
    })))
    .merge(crate::web::router());
    tracker.spawn(http::serve(
        http_listener,
        router,
        Duration::from_secs(config.http.header_timeout_secs),
        stop.clone(),
    ));
    tracker.spawn(Arc::clone(&engine).run_indexer(config.index_interval(), stop.clone()));
    tracker.spawn(crate::history::run_retention(
        history.clone(),
        Duration::from_secs(u64::from(config.history.retention_days) * 86_400),
        Duration::from_secs(config.history.purge_interval_secs),
        stop.clone(),
    ));

    Ok(Running {
        http: http_addr,
        bound,
        engine,
        metrics,
        directory,
        history,
        restored,
        new_admin_token,
        stop,
        tracker,
        grace: Duration::from_secs(config.shutdown.grace_secs),
    })
}
