//! MQTT ingest end to end: messages/s that trackgate accepts from a
//! publisher on loopback (publish → broker → trackgate subscriber → decode
//! → pipeline → engine → PUBACK), against the broker's own
//! publish-to-subscriber rate measured in the same run — the ceiling, with
//! a plain rumqttc subscriber that only receives (its event loop acks).
//!
//! ```sh
//! cargo bench --bench mqtt              # Mosquitto if installed, else rumqttd in-process
//! TRACKGATE_BENCH_MESSAGES=50000 cargo bench --bench mqtt
//! ```
//!
//! Rounds alternate ceiling / trackgate so drift on a shared machine hits
//! both; the ratio of medians is the figure to compare.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use trackgate::config::{Config, DEFAULT_TOML};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "broker did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Mosquitto on a free port when installed, else rumqttd in this process.
fn start_broker(dir: &std::path::Path) -> (u16, Option<Child>, &'static str) {
    let port = free_port();
    let bin = std::env::var("TRACKGATE_BENCH_MOSQUITTO").unwrap_or("/usr/sbin/mosquitto".into());
    if std::path::Path::new(&bin).exists() {
        let conf = dir.join("m.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 1000\n"),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(port);
        return (port, Some(child), "mosquitto");
    }
    use rumqttd::{ConnectionSettings, RouterConfig, ServerSettings};
    let server = ServerSettings {
        name: "v4".into(),
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 1 << 20,
            max_inflight_count: 1000,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 1000,
            max_segment_size: 100 << 20,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some([("1".to_string(), server)].into_iter().collect()),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    std::thread::spawn(move || {
        let _ = rumqttd::Broker::new(config).start();
    });
    wait_listening(port);
    (port, None, "rumqttd")
}

fn owntracks(i: usize) -> Vec<u8> {
    format!(
        r#"{{"_type":"location","tid":"b","lat":{},"lon":{},"tst":{},"vel":50,"cog":90,"batt":80}}"#,
        50.0 + (i % 1000) as f64 * 0.001,
        8.0 + (i / 1000) as f64 * 0.001,
        1_764_158_400 + i
    )
    .into_bytes()
}

/// Publishes `n` QoS 1 messages under `prefix`, polling its own event loop.
async fn publish(port: u16, prefix: &str, n: usize) {
    let mut o = MqttOptions::new(format!("bench-pub-{prefix}"), "127.0.0.1", port);
    o.set_inflight(1000);
    let (c, mut events) = AsyncClient::new(o, 1000);
    let poller = tokio::spawn(async move {
        let mut acked = 0;
        while acked < n {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("publisher: {e}"),
            }
        }
        events
    });
    for i in 0..n {
        c.publish(
            format!("{prefix}/fleet/dev-{i}"),
            QoS::AtLeastOnce,
            false,
            owntracks(i),
        )
        .await
        .unwrap();
    }
    let _events = poller.await.unwrap();
    let _ = c.disconnect().await;
}

/// Ceiling: a subscriber that only receives; its event loop writes each
/// PUBACK itself (automatic acks, no round trip through the client).
/// Returns messages/s.
async fn ceiling(port: u16, n: usize, round: usize) -> f64 {
    let mut o = MqttOptions::new(format!("bench-ceil-{round}"), "127.0.0.1", port);
    o.set_inflight(1000);
    let (c, mut events) = AsyncClient::new(o, 2000);
    let prefix = format!("ceil{round}");
    c.subscribe(format!("{prefix}/#"), QoS::AtLeastOnce)
        .await
        .unwrap();
    loop {
        if let Ok(Event::Incoming(Packet::SubAck(_))) = events.poll().await {
            break;
        }
    }
    let start = Instant::now();
    let sub = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            if let Ok(Event::Incoming(Packet::Publish(_))) = events.poll().await {
                got += 1;
            }
        }
        let _ = c.disconnect().await;
    });
    publish(port, &prefix, n).await;
    sub.await.unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

/// trackgate subscribed to the same broker. Returns messages/s accepted.
async fn trackgate(port: u16, n: usize, round: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("tg{round}");
    let toml = format!(
        "{DEFAULT_TOML}\n[[mqtt.brokers]]\nname = \"b\"\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"bench-tg-{round}\"\nclean_session = true\n\n[[mqtt.brokers.subscriptions]]\ntopic = \"{prefix}/+/+\"\nqos = 1\nformat = \"owntracks\"\n"
    );
    let mut config = Config::from_toml(&toml, "bench").unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    for p in trackgate::protocol::registry() {
        config
            .set_listen(&format!("{}=127.0.0.1:0", p.name()))
            .unwrap();
    }
    config.ingest.accept_unregistered_devices = true;
    let gw = trackgate::app::start(&config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw
        .metrics
        .render()
        .contains("trackgate_mqtt_connected{broker=\"b\"} 1")
    {
        assert!(Instant::now() < deadline, "trackgate did not connect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    publish(port, &prefix, n).await;
    while gw.engine.len() < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    gw.shutdown().await;
    rate
}

/// Alternated ceiling / trackgate rounds; the medians are compared.
const ROUNDS: usize = 5;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench`-less args; only
    // measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("TRACKGATE_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let (port, mut child, broker) = start_broker(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut ceil, mut tg) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let c = rt.block_on(ceiling(port, n, round));
        let t = rt.block_on(trackgate(port, n, round));
        println!(
            "round {round}: broker ceiling {c:>9.0} msg/s   trackgate {t:>9.0} msg/s   ratio {:.2}",
            t / c
        );
        ceil.push(c);
        tg.push(t);
    }
    let (c, t) = (median(&mut ceil), median(&mut tg));
    println!(
        "mqtt ingest ({broker}, {n} QoS 1 owntracks messages, {n} devices): ceiling median {c:.0} msg/s, trackgate median {t:.0} msg/s, ratio {:.2}",
        t / c
    );
    if let Some(ch) = child.as_mut() {
        let _ = ch.kill();
        let _ = ch.wait();
    }
}
