//! MQTT ingestion and the MQTT feed against a real broker.
//!
//! `cargo test` starts rumqttd (the broker from rumqttc's project) in-process
//! on a free port. With `TRACKGATE_TEST_MOSQUITTO=/path/to/mosquitto` (set by
//! `.ci/run`) every test instead starts its own Mosquitto on a free loopback
//! port, and the persistent-session test — which needs a broker that keeps
//! sessions across a client's absence — runs too (it is `#[ignore]`d
//! otherwise and fails loudly when asked to run without Mosquitto).
//!
//! "Broker restart" is a real restart with Mosquitto; with rumqttd (which
//! cannot be stopped in-process) the test cuts every connection through a
//! TCP relay and refuses new ones for a while, which is what a restart looks
//! like from trackgate's side.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use support::{metric, start, test_config};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use trackgate::app::Running;
use trackgate::config::{Config, DEFAULT_TOML};
use trackgate::model::DeviceId;

const MOSQUITTO_ENV: &str = "TRACKGATE_TEST_MOSQUITTO";

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A broker for one test: Mosquitto (own process) or rumqttd (in-process).
struct Broker {
    port: u16,
    /// rumqttd serves MQTT 5 on its own port; Mosquitto speaks both on one.
    port5: u16,
    mosquitto: Option<(PathBuf, Child, tempfile::TempDir)>,
}

/// A CA and a server certificate for `localhost`/127.0.0.1, made with the
/// openssl command line: (ca.pem, server.pem, server.key) in `dir`.
fn make_certs(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=trackgate test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

impl Broker {
    /// A broker that also listens with TLS on `tls_port` (certificates in `certs`).
    fn start_tls(certs: &std::path::Path) -> (Broker, u16, PathBuf) {
        let (ca, cert, key) = make_certs(certs);
        let tls_port = free_port();
        let port = free_port();
        let broker = match std::env::var_os(MOSQUITTO_ENV) {
            Some(bin) => {
                let dir = tempfile::tempdir().unwrap();
                let extra = format!(
                    "listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
                    ca.display(),
                    cert.display(),
                    key.display()
                );
                let child = spawn_mosquitto_with(bin.as_ref(), dir.path(), port, &extra);
                Broker {
                    port,
                    port5: port,
                    mosquitto: Some((bin.into(), child, dir)),
                }
            }
            None => {
                let port5 = free_port();
                start_rumqttd_with(port, port5, Some((tls_port, cert, key)));
                Broker {
                    port,
                    port5,
                    mosquitto: None,
                }
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
            assert!(Instant::now() < deadline, "no TLS listener on {tls_port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        (broker, tls_port, ca)
    }

    fn start() -> Broker {
        Self::start_with("")
    }

    /// A broker whose Mosquitto configuration has `extra` lines (rumqttd
    /// takes its fixed settings).
    fn start_with(extra: &str) -> Broker {
        let port = free_port();
        match std::env::var_os(MOSQUITTO_ENV) {
            Some(bin) => {
                let dir = tempfile::tempdir().unwrap();
                let child = spawn_mosquitto_with(bin.as_ref(), dir.path(), port, extra);
                Broker {
                    port,
                    port5: port,
                    mosquitto: Some((bin.into(), child, dir)),
                }
            }
            None => {
                let port5 = free_port();
                start_rumqttd(port, port5);
                Broker {
                    port,
                    port5,
                    mosquitto: None,
                }
            }
        }
    }

    /// The port for a client speaking `version`.
    fn port_for(&self, version: &str) -> u16 {
        if version == "5" {
            self.port5
        } else {
            self.port
        }
    }

    fn is_mosquitto(&self) -> bool {
        self.mosquitto.is_some()
    }

    /// Mosquitto only: stop the process (its session store is written on exit).
    fn stop(&mut self) {
        let (_, child, _) = self.mosquitto.as_mut().expect("mosquitto");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }

    /// Mosquitto only: start it again on the same port and store.
    fn restart(&mut self) {
        let port = self.port;
        let (bin, child, dir) = self.mosquitto.as_mut().expect("mosquitto");
        *child = spawn_mosquitto(bin, dir.path(), port);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some((_, child, _)) = self.mosquitto.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_mosquitto(bin: &std::path::Path, dir: &std::path::Path, port: u16) -> Child {
    spawn_mosquitto_with(bin, dir, port, "")
}

fn spawn_mosquitto_with(
    bin: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
    extra: &str,
) -> Child {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            // `user root`: a root-started Mosquitto would otherwise drop to the
            // `mosquitto` user, who cannot read this test's 0700 temp dir.
            "user root\nper_listener_settings false\nallow_anonymous true\npersistence true\npersistence_location {}/\nmax_queued_messages 100000\nlistener {port} 127.0.0.1\n{extra}",
            dir.display()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{MOSQUITTO_ENV}={}: {e}", bin.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "mosquitto did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn start_rumqttd(port: u16, port5: u16) {
    start_rumqttd_with(port, port5, None);
}

fn start_rumqttd_with(port: u16, port5: u16, tls: Option<(u16, PathBuf, PathBuf)>) {
    use rumqttd::{
        Config as BrokerConfig, ConnectionSettings, RouterConfig, ServerSettings, TlsConfig,
    };
    let server = |name: &str, port: u16, tls: Option<TlsConfig>| ServerSettings {
        name: name.into(),
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        tls,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 4 << 20,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = BrokerConfig {
        id: 0,
        router: RouterConfig {
            max_connections: 1000,
            max_outgoing_packet_count: 1000,
            max_segment_size: 100 << 20,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(
            [("1".to_string(), server("v4", port, None))]
                .into_iter()
                .chain(tls.map(|(p, cert, key)| {
                    let tls = TlsConfig::Rustls {
                        capath: None,
                        certpath: cert.display().to_string(),
                        keypath: key.display().to_string(),
                    };
                    ("2".to_string(), server("v4-tls", p, Some(tls)))
                }))
                .collect(),
        ),
        v5: Some(
            [("1".to_string(), server("v5", port5, None))]
                .into_iter()
                .collect(),
        ),
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    std::thread::spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        let _ = broker.start();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "rumqttd did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP relay in front of the broker whose connections the test can cut.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start(broker: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused-ish
                }
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", broker)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Relay {
            port,
            up,
            generation,
        }
    }

    /// Drops every connection and refuses new ones until `resume`.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn resume(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn gateway_config(dir: &std::path::Path, port: u16, client_id: &str, feed: bool) -> Config {
    gateway_config_v(dir, port, client_id, feed, "3.1.1")
}

fn gateway_config_v(
    dir: &std::path::Path,
    port: u16,
    client_id: &str,
    feed: bool,
    version: &str,
) -> Config {
    let mut c = test_config(dir);
    let feed = if feed {
        "[mqtt.publish]\nbroker = \"test\"\ntopic = \"tgfeed/{device_id}\"\nreports_topic = \"tgreports/{device_id}\"\nqos = 1\nbuffer = 1000\n"
    } else {
        ""
    };
    let mqtt = format!(
        r#"
[[mqtt.brokers]]
name = "test"
host = "127.0.0.1"
port = {port}
client_id = "{client_id}"
version = "{version}"
reconnect_min_ms = 50
reconnect_max_ms = 500
max_payload_bytes = 8192

[[mqtt.brokers.subscriptions]]
topic = "owntracks/+/+"
qos = 1
format = "owntracks"

[[mqtt.brokers.subscriptions]]
topic = "fleet/json"
qos = 1
format = "json"

[[mqtt.brokers.subscriptions]]
topic = "teltonika/+"
qos = 1
format = "teltonika"
{feed}"#
    );
    let parsed = Config::from_toml(&format!("{DEFAULT_TOML}\n{mqtt}"), "test").unwrap();
    parsed.validate().unwrap();
    c.mqtt = parsed.mqtt;
    c
}

fn client_id(tag: &str) -> String {
    format!("tg-{tag}-{}", std::process::id() % 100_000)
}

/// Publishes `msgs` at QoS 1 and waits for every PUBACK.
async fn publish_all(port: u16, msgs: &[(String, Vec<u8>)]) {
    let mut o = MqttOptions::new(format!("pub-{}", rand_suffix()), "127.0.0.1", port);
    o.set_max_packet_size(4 << 20, 4 << 20).set_inflight(500);
    let (c, mut events) = AsyncClient::new(o, msgs.len() + 10);
    for (t, p) in msgs {
        c.publish(t.clone(), QoS::AtLeastOnce, false, p.clone())
            .await
            .unwrap();
    }
    let mut acked = 0;
    while acked < msgs.len() {
        match tokio::time::timeout(Duration::from_secs(10), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("publisher: {e}"),
            Err(_) => panic!("publisher: {acked} of {} acked after 10 s", msgs.len()),
        }
    }
    c.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while events.poll().await.is_ok() {}
    })
    .await;
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish() % 1_000_000
}

fn metrics(gw: &Running) -> String {
    gw.metrics.render()
}

/// Waits until `cond` holds (polling), or fails with `what`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn connected(gw: &Running) {
    eventually("broker connection", || {
        metric(&metrics(gw), "trackgate_mqtt_connected", "broker=\"test\"") == 1.0
    })
    .await;
    // A publish before the broker took the subscription would be lost.
    eventually("subscriptions confirmed", || {
        metric(&metrics(gw), "trackgate_mqtt_subscribed", "broker=\"test\"") == 1.0
    })
    .await;
}

fn dev(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

fn owntracks(lat: f64, lon: f64, tst: i64) -> Vec<u8> {
    format!(r#"{{"_type":"location","tid":"ph","lat":{lat},"lon":{lon},"tst":{tst},"alt":35,"vel":36,"cog":90,"acc":12,"batt":77}}"#).into_bytes()
}

/// Codec 8E, one record (protocols/vectors/teltonika.tsv, line 2).
const TELTONIKA_PACKET: &str = "000000000000004b8e010000018368952793000f0e54fc209ab05800b300b40e00002a4f0001000000000000000000012a4f001e011c0001a40110eb47706aa38255aa96f21a154e2d00550d01000e020bd6010000823f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owntracks_json_and_teltonika_payloads_reach_the_engine_and_the_feed() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&gateway_config(
        dir.path(),
        broker.port,
        &client_id("formats"),
        true,
    ))
    .await;
    connected(&gw).await;

    // A consumer of the feed.
    let mut o = MqttOptions::new(format!("feed-{}", rand_suffix()), "127.0.0.1", broker.port);
    o.set_max_packet_size(4 << 20, 4 << 20);
    let (feed, mut feed_events) = AsyncClient::new(o, 100);
    feed.subscribe("tgfeed/#", QoS::AtLeastOnce).await.unwrap();
    let (tx, mut feed_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(e) = feed_events.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = &e {
                let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
            }
            if let Event::Incoming(Packet::SubAck(_)) = e {
                let _ = tx.send(("suback".into(), Vec::new()));
            }
        }
    });
    assert_eq!(feed_rx.recv().await.unwrap().0, "suback");

    let json = br#"[{"device_id":"truck-7","fix_time":"2026-11-26T10:00:00.250Z","lat":52.52,"lon":13.405,"speed_kmh":81.5,"course_deg":182,"attributes":{"fuel_l":310.5,"ignition":true}},
                   {"device_id":"truck-8","fix_time":"2026-11-26T10:00:01Z","lat":48.1,"lon":11.6}]"#;
    publish_all(
        broker.port,
        &[
            (
                "owntracks/alice/phone-1".into(),
                owntracks(48.85833, 2.29513, 1_764_158_400),
            ),
            ("fleet/json".into(), json.to_vec()),
            (
                "teltonika/356307042441013".into(),
                hex::decode(TELTONIKA_PACKET).unwrap(),
            ),
        ],
    )
    .await;

    let engine = gw.engine.clone();
    eventually("four devices in the engine, counted", || {
        // The counter moves just after the engine does.
        let counted: f64 = metrics(&gw)
            .lines()
            .filter(|l| l.starts_with("trackgate_positions_total{") && l.contains("mqtt-"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        ["phone-1", "truck-7", "truck-8", "356307042441013"]
            .iter()
            .all(|d| engine.get(&dev(d)).is_some())
            && counted >= 4.0
    })
    .await;
    let p = gw.engine.get(&dev("phone-1")).unwrap();
    assert_eq!(
        (p.lat, p.lon, p.speed_kmh, p.course_deg, p.altitude_m),
        (48.85833, 2.29513, 36.0, 90.0, 35.0)
    );
    assert_eq!(p.fix_time.timestamp(), 1_764_158_400);
    assert_eq!(p.protocol, "mqtt-owntracks");
    let t = gw.engine.get(&dev("truck-7")).unwrap();
    assert_eq!(
        (t.lat, t.lon, t.speed_kmh, t.course_deg),
        (52.52, 13.405, 81.5, 182.0)
    );
    assert_eq!(
        trackgate::model::format_time(&t.fix_time),
        "2026-11-26T10:00:00.250Z"
    );
    assert_eq!(
        t.attributes.get("fuel_l"),
        Some(&trackgate::model::AttrValue::Float(310.5))
    );
    let tel = gw.engine.get(&dev("356307042441013")).unwrap();
    assert_eq!(tel.protocol, "mqtt-teltonika");

    let m = metrics(&gw);
    assert_eq!(
        metric(&m, "trackgate_positions_total", "protocol=\"mqtt-json\""),
        2.0
    );
    assert_eq!(
        metric(
            &m,
            "trackgate_positions_total",
            "protocol=\"mqtt-owntracks\""
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "trackgate_positions_total",
            "protocol=\"mqtt-teltonika\""
        ),
        1.0
    );
    assert_eq!(
        metric(&m, "trackgate_mqtt_messages_total", "broker=\"test\""),
        3.0
    );
    assert!(metric(&m, "trackgate_mqtt_bytes_total", "broker=\"test\"") > 300.0);

    // The feed carries each accepted position as trackgate JSON.
    let mut seen = std::collections::HashMap::new();
    while seen.len() < 4 {
        let (topic, body) = tokio::time::timeout(Duration::from_secs(10), feed_rx.recv())
            .await
            .expect("feed message")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        seen.insert(topic, v);
    }
    let t7 = &seen["tgfeed/truck-7"];
    assert_eq!(t7["device_id"], "truck-7");
    assert_eq!(t7["fix_time"], "2026-11-26T10:00:00.250Z");
    assert_eq!(t7["lat"], 52.52);
    assert_eq!(t7["protocol"], "mqtt-json");
    assert_eq!(t7["attributes"]["ignition"], true);
    assert!(seen.contains_key("tgfeed/phone-1"));
    assert_eq!(
        metrics(&gw)
            .lines()
            .filter(|l| l.starts_with("trackgate_mqtt_published_total "))
            .count(),
        1
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversize_and_unknown_device_messages_are_counted_acked_and_not_stored() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = gateway_config(dir.path(), broker.port, &client_id("bad"), false);
    config.ingest.accept_unregistered_devices = false;
    let gw = start(&config).await;
    connected(&gw).await;

    let oversize = format!(
        r#"{{"device_id":"big","fix_time":"2026-11-26T10:00:00Z","lat":1,"lon":2,"attributes":{{"x":"{}"}}}}"#,
        "a".repeat(9000)
    );
    publish_all(
        broker.port,
        &[
            ("fleet/json".into(), b"{this is not json".to_vec()),
            ("fleet/json".into(), oversize.into_bytes()),
            (
                "fleet/json".into(),
                br#"{"device_id":"nobody-knows-me","fix_time":"2026-11-26T10:00:00Z","lat":1,"lon":2}"#.to_vec(),
            ),
            ("owntracks/a/b".into(), br#"{"_type":"location","lat":1}"#.to_vec()),
            ("teltonika/356307042441013".into(), vec![0, 0, 0, 0, 0, 0, 0, 9, 1]),
        ],
    )
    .await;
    eventually("five messages handled", || {
        let m = metrics(&gw);
        // Received is counted on arrival, the outcome once decoded.
        let errors: f64 = m
            .lines()
            .filter(|l| l.starts_with("trackgate_decode_errors_total{") && l.contains("mqtt-"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        metric(&m, "trackgate_mqtt_messages_total", "broker=\"test\"") == 5.0
            && metric(
                &m,
                "trackgate_unknown_device_messages_total",
                "protocol=\"mqtt-json\"",
            ) == 1.0
            && errors >= 4.0
    })
    .await;
    let m = metrics(&gw);
    assert_eq!(
        metric(
            &m,
            "trackgate_decode_errors_total",
            "kind=\"malformed\",protocol=\"mqtt-json\""
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "trackgate_decode_errors_total",
            "kind=\"too_large\",protocol=\"mqtt-json\""
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "trackgate_decode_errors_total",
            "kind=\"malformed\",protocol=\"mqtt-owntracks\""
        ),
        1.0
    );
    assert!(
        metric(
            &m,
            "trackgate_decode_errors_total",
            "kind=\"length\",protocol=\"mqtt-teltonika\""
        ) + metric(
            &m,
            "trackgate_decode_errors_total",
            "kind=\"malformed\",protocol=\"mqtt-teltonika\""
        ) >= 1.0
    );
    assert_eq!(
        metric(&m, "trackgate_positions_total", "protocol=\"mqtt-json\""),
        0.0
    );
    assert!(gw.engine.is_empty(), "nothing stored");
    // The unknown device is listed for the operator.
    assert!(gw
        .directory
        .unknown_devices()
        .iter()
        .any(|u| u.device_id == "nobody-knows-me"));

    // Everything was acknowledged: a new session with the same client id
    // after a restart of trackgate gets nothing redelivered.
    let before = metric(
        &metrics(&gw),
        "trackgate_mqtt_messages_total",
        "broker=\"test\"",
    );
    gw.shutdown().await;
    let gw = start(&config).await;
    connected(&gw).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(before, 5.0);
    assert_eq!(
        metric(
            &metrics(&gw),
            "trackgate_mqtt_messages_total",
            "broker=\"test\""
        ),
        0.0,
        "acked messages were redelivered"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_reconnects_and_loses_nothing() {
    let mut broker = Broker::start();
    let relay = if broker.is_mosquitto() {
        None
    } else {
        Some(Relay::start(broker.port).await)
    };
    let gw_port = relay.as_ref().map_or(broker.port, |r| r.port);
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&gateway_config(
        dir.path(),
        gw_port,
        &client_id("restart"),
        false,
    ))
    .await;
    connected(&gw).await;

    let batch = |from: usize, to: usize| -> Vec<(String, Vec<u8>)> {
        (from..to)
            .map(|i| {
                (
                    format!("owntracks/fleet/dev-{i}"),
                    owntracks(50.0 + i as f64 * 0.001, 8.0, 1_764_158_400 + i as i64),
                )
            })
            .collect()
    };
    publish_all(broker.port, &batch(0, 50)).await;
    let engine = gw.engine.clone();
    eventually("first half", || engine.len() == 50).await;

    match &relay {
        Some(r) => {
            r.cut();
            eventually("disconnect noticed", || {
                metric(&metrics(&gw), "trackgate_mqtt_connected", "broker=\"test\"") == 0.0
            })
            .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            r.resume();
        }
        None => {
            broker.stop();
            eventually("disconnect noticed", || {
                metric(&metrics(&gw), "trackgate_mqtt_connected", "broker=\"test\"") == 0.0
            })
            .await;
            broker.restart();
        }
    }
    connected(&gw).await;
    assert!(
        metric(
            &metrics(&gw),
            "trackgate_mqtt_reconnects_total",
            "broker=\"test\""
        ) >= 1.0
    );
    publish_all(broker.port, &batch(50, 100)).await;
    eventually("all hundred devices", || engine.len() == 100).await;
    let p = gw.engine.get(&dev("dev-99")).unwrap();
    assert!((p.lat - 50.099).abs() < 1e-9);
    // QoS 1 is at-least-once: a broker that restarts (Mosquitto reloading
    // its store) or resumes a session (rumqttd) may deliver messages again
    // that trackgate had acknowledged just before. The history's duplicate
    // rule absorbs them: each position is stored exactly once.
    let accepted = metric(
        &metrics(&gw),
        "trackgate_positions_total",
        "protocol=\"mqtt-owntracks\"",
    );
    assert!(accepted >= 100.0, "{accepted}");
    assert_eq!(
        gw.history.count().await.unwrap(),
        100,
        "each position stored once"
    );
    gw.shutdown().await;
}

/// A burst of QoS 1 messages larger than the client's request channel
/// (256), from a broker that lets 500–1,000 deliveries wait for their acks:
/// the acknowledgements once queued up behind a channel only the stalled
/// subscriber could empty, and ingestion stopped for good after ~260
/// messages (seen with Mosquitto; rumqttd paces its deliveries). Every
/// message must arrive and be stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_request_channel_is_ingested_to_the_last_message() {
    burst("3.1.1").await;
}

/// The same over MQTT 5, where trackgate also tells the broker how many
/// unacknowledged deliveries it takes (receive maximum).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_mqtt5_is_ingested_to_the_last_message() {
    burst("5").await;
}

async fn burst(version: &str) {
    let broker = Broker::start_with("max_inflight_messages 1000\n");
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&gateway_config_v(
        dir.path(),
        broker.port_for(version),
        &client_id(&format!("burst{}", version.len())),
        false,
        version,
    ))
    .await;
    connected(&gw).await;
    const N: usize = 3000;
    let msgs: Vec<(String, Vec<u8>)> = (0..N)
        .map(|i| {
            (
                format!("owntracks/burst/dev-{i}"),
                owntracks(
                    50.0 + (i % 1000) as f64 * 0.001,
                    8.0,
                    1_764_158_400 + i as i64,
                ),
            )
        })
        .collect();
    publish_all(broker.port, &msgs).await;
    let engine = gw.engine.clone();
    eventually("every burst message in the engine", || engine.len() == N).await;
    let p = gw.engine.get(&dev("dev-2999")).unwrap();
    assert!((p.lat - 50.999).abs() < 1e-9, "{}", p.lat);
    assert_eq!(p.fix_time.timestamp(), 1_764_158_400 + 2999);
    assert_eq!(gw.history.count().await.unwrap(), N as i64);
    assert_eq!(
        metric(
            &metrics(&gw),
            "trackgate_positions_total",
            "protocol=\"mqtt-owntracks\""
        ),
        N as f64
    );
    // Still alive afterwards: one more message arrives.
    publish_all(
        broker.port,
        &[(
            "owntracks/burst/late".into(),
            owntracks(51.0, 9.0, 1_764_200_000),
        )],
    )
    .await;
    eventually("the message after the burst", || {
        engine.get(&dev("late")).is_some()
    })
    .await;
    gw.shutdown().await;
}

/// Needs a broker that keeps a persistent session's QoS 1 messages while
/// the client is away (Mosquitto): `.ci/run` runs it with `--ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Mosquitto (TRACKGATE_TEST_MOSQUITTO); run by .ci/run"]
async fn persistent_session_delivers_what_was_published_while_trackgate_was_down_exactly_once() {
    assert!(
        std::env::var_os(MOSQUITTO_ENV).is_some(),
        "{MOSQUITTO_ENV} must name the mosquitto binary for this test"
    );
    for version in ["3.1.1", "5"] {
        persistent_session(version).await;
    }
}

async fn persistent_session(version: &str) {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let config = gateway_config_v(
        dir.path(),
        broker.port_for(version),
        &client_id(&format!("persist{}", version.len())),
        false,
        version,
    );
    let gw = start(&config).await;
    connected(&gw).await;
    gw.shutdown().await;

    // trackgate is down; a provider keeps publishing.
    let msgs: Vec<(String, Vec<u8>)> = (0..200)
        .map(|i| {
            (
                format!("owntracks/fleet/p-{i}"),
                owntracks(40.0 + i as f64 * 0.001, 3.0, 1_764_158_400 + i as i64),
            )
        })
        .collect();
    publish_all(broker.port, &msgs).await;

    let gw = start(&config).await;
    let engine = gw.engine.clone();
    eventually("all 200 queued messages", || engine.len() == 200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = metrics(&gw);
    assert_eq!(
        metric(&m, "trackgate_mqtt_messages_total", "broker=\"test\""),
        200.0,
        "each message exactly once"
    );
    assert_eq!(
        metric(
            &m,
            "trackgate_positions_total",
            "protocol=\"mqtt-owntracks\""
        ),
        200.0
    );
    let p = gw.engine.get(&dev("p-123")).unwrap();
    assert!((p.lat - 40.123).abs() < 1e-9);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_subscription_ingests_and_the_feed_publishes() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&gateway_config_v(
        dir.path(),
        broker.port_for("5"),
        &client_id("v5"),
        true,
        "5",
    ))
    .await;
    connected(&gw).await;
    publish_all(
        broker.port,
        &[
            ("owntracks/bob/van-5".into(), owntracks(45.5, 9.2, 1_764_158_400)),
            (
                "fleet/json".into(),
                br#"{"device_id":"truck-5","fix_time":"2026-11-26T10:00:00Z","lat":41.9,"lon":12.5}"#.to_vec(),
            ),
        ],
    )
    .await;
    let engine = gw.engine.clone();
    eventually("both devices", || {
        engine.get(&dev("van-5")).is_some() && engine.get(&dev("truck-5")).is_some()
    })
    .await;
    assert_eq!(gw.engine.get(&dev("van-5")).unwrap().lat, 45.5);
    assert_eq!(gw.engine.get(&dev("truck-5")).unwrap().lon, 12.5);
    eventually("two feed publishes", || {
        metric(&metrics(&gw), "trackgate_mqtt_published_total", "") == 2.0
    })
    .await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_from_a_device_is_published_on_the_reports_topic() {
    use std::io::{BufRead, BufReader, Write};
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&gateway_config(
        dir.path(),
        broker.port,
        &client_id("reports"),
        true,
    ))
    .await;
    connected(&gw).await;
    let o = MqttOptions::new(
        format!("reports-{}", rand_suffix()),
        "127.0.0.1",
        broker.port,
    );
    let (consumer, mut events) = AsyncClient::new(o, 100);
    consumer
        .subscribe("tgreports/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(e) = events.poll().await {
            match e {
                Event::Incoming(Packet::Publish(p)) => {
                    let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                }
                Event::Incoming(Packet::SubAck(_)) => {
                    let _ = tx.send(("suback".into(), Vec::new()));
                }
                _ => {}
            }
        }
    });
    assert_eq!(rx.recv().await.unwrap().0, "suback");
    // An SOS without a fix over Wialon IPS, acked once stored.
    let wialon = gw
        .addr("wialon", trackgate::protocol::Transport::Tcp)
        .unwrap();
    tokio::task::spawn_blocking(move || {
        let mut s = BufReader::new(std::net::TcpStream::connect(wialon).unwrap());
        s.get_mut()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut line = String::new();
        s.get_mut().write_all(b"#L#356307042441013;NA\r\n").unwrap();
        s.read_line(&mut line).unwrap();
        assert_eq!(line, "#AL#1\r\n");
        line.clear();
        s.get_mut()
            .write_all(b"#D#261125;100000;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;sos:1:1\r\n")
            .unwrap();
        s.read_line(&mut line).unwrap();
        assert_eq!(line, "#AD#1\r\n");
    })
    .await
    .unwrap();
    let (topic, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a report on the feed")
        .unwrap();
    assert_eq!(topic, "tgreports/356307042441013");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["device_id"], "356307042441013");
    assert_eq!(v["time"], "2025-11-26T10:00:00.000Z");
    assert_eq!(v["protocol"], "wialon");
    assert_eq!(v["attributes"]["sos"], 1);
    assert!(v.get("lat").is_none(), "a report has no position: {v}");
    gw.shutdown().await;
}

/// A gateway with the feed on (holding `buffer` positions), connected
/// through a relay that is then cut: the broker is away.
async fn feed_with_the_broker_away(
    tag: &str,
    buffer: usize,
) -> (Broker, Relay, tempfile::TempDir, Running) {
    let broker = Broker::start();
    let relay = Relay::start(broker.port).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = gateway_config(dir.path(), relay.port, &client_id(tag), true);
    config.mqtt.publish.as_mut().unwrap().buffer = buffer;
    let gw = start(&config).await;
    connected(&gw).await;
    relay.cut();
    eventually("disconnect noticed", || {
        metric(&metrics(&gw), "trackgate_mqtt_connected", "broker=\"test\"") == 0.0
    })
    .await;
    (broker, relay, dir, gw)
}

/// One Teltonika device sends `n` packets over TCP, each acked before the next.
async fn report_over_tcp(gw: &Running, n: usize) {
    use std::io::{Read, Write};
    let tcp = gw
        .addr("teltonika", trackgate::protocol::Transport::Tcp)
        .unwrap();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(tcp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"\x00\x0f356307042441013").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b[..1]).unwrap();
        assert_eq!(b[0], 1);
        let packet = hex::decode(TELTONIKA_PACKET).unwrap();
        for _ in 0..n {
            s.write_all(&packet).unwrap();
            s.read_exact(&mut b).unwrap();
            assert_eq!(b, [0, 0, 0, 1]);
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_buffers_while_the_broker_is_away_and_counts_what_it_drops() {
    let (_broker, relay, _dir, gw) = feed_with_the_broker_away("drops", 10).await;
    // Devices keep reporting over TCP; ingestion must not wait for the feed.
    let started = Instant::now();
    report_over_tcp(&gw, 400).await;
    assert!(
        // Each ack waits for its own fsync; a held-up feed would instead
        // stall an ack past the 5 s read timeout.
        started.elapsed() < Duration::from_secs(60),
        "ingestion was held up by the feed"
    );
    let m = metrics(&gw);
    assert_eq!(
        metric(&m, "trackgate_positions_total", "protocol=\"teltonika\""),
        400.0
    );
    let dropped = metric(&m, "trackgate_mqtt_publish_dropped_total", "");
    assert!(dropped > 0.0, "a full buffer drops and counts");
    assert!(
        dropped <= 400.0 - 10.0,
        "{dropped}: at least the buffer is kept"
    );

    relay.resume();
    connected(&gw).await;
    eventually("buffered positions published after reconnect", || {
        metric(&metrics(&gw), "trackgate_mqtt_published_total", "") + dropped >= 400.0
    })
    .await;
    gw.shutdown().await;
}

/// Stopping while the broker is away and the feed has filled the client's
/// request channel: the DISCONNECT once awaited room that only the stopped
/// event loop could make, and shutdown sat out its whole grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_the_broker_away_and_the_feed_backed_up_is_prompt() {
    let (_broker, _relay, _dir, gw) = feed_with_the_broker_away("leave", 1000).await;
    report_over_tcp(&gw, 400).await;
    // The feed queued what the channel (256) holds and waits for room.
    eventually("the request channel full of feed publishes", || {
        metric(&metrics(&gw), "trackgate_mqtt_published_total", "") >= 256.0
    })
    .await;
    let started = Instant::now();
    gw.shutdown().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "shutdown took {took:?} (grace period 10 s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connection_verifies_the_broker_with_the_configured_ca() {
    let certs = tempfile::tempdir().unwrap();
    let (broker, tls_port, ca) = Broker::start_tls(certs.path());
    let dir = tempfile::tempdir().unwrap();
    let mut config = gateway_config(dir.path(), tls_port, &client_id("tls"), false);
    let b = &mut config.mqtt.brokers[0];
    b.host = "localhost".into();
    b.tls = true;
    b.ca_file = Some(ca.clone());
    let gw = start(&config).await;
    connected(&gw).await;
    publish_all(
        broker.port,
        &[(
            "owntracks/tls/van-t".into(),
            owntracks(44.4, 26.1, 1_764_158_400),
        )],
    )
    .await;
    let engine = gw.engine.clone();
    eventually("the position over TLS", || {
        engine.get(&dev("van-t")).is_some()
    })
    .await;
    assert_eq!(gw.engine.get(&dev("van-t")).unwrap().lat, 44.4);
    gw.shutdown().await;

    // A CA that did not sign the broker's certificate: never connected.
    let other = tempfile::tempdir().unwrap();
    let (wrong_ca, _, _) = make_certs(other.path());
    let dir2 = tempfile::tempdir().unwrap();
    let mut config = gateway_config(dir2.path(), tls_port, &client_id("tls-bad"), false);
    let b = &mut config.mqtt.brokers[0];
    b.host = "localhost".into();
    b.tls = true;
    b.ca_file = Some(wrong_ca);
    let gw = start(&config).await;
    eventually("a refused TLS handshake", || {
        metric(
            &metrics(&gw),
            "trackgate_mqtt_reconnects_total",
            "broker=\"test\"",
        ) >= 1.0
    })
    .await;
    let m = metrics(&gw);
    assert_eq!(
        metric(&m, "trackgate_mqtt_connected", "broker=\"test\""),
        0.0
    );
    gw.shutdown().await;

    // A missing CA file is a start-up error naming the file.
    let mut config = gateway_config(dir2.path(), tls_port, &client_id("tls-none"), false);
    config.mqtt.brokers[0].tls = true;
    config.mqtt.brokers[0].ca_file = Some(certs.path().join("nope.pem"));
    let e = trackgate::app::start(&config)
        .await
        .err()
        .expect("start fails");
    assert!(e.to_string().contains("nope.pem"), "{e}");
}
