//! Teltonika against the running gateway over real TCP and UDP sockets:
//! login, acks byte for byte, CRC failures, keepalives, limits, timeouts,
//! metrics and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use nom_teltonika::encoder::{
    encode_avl_datagram, encode_avl_frame, AvlRecordFields, DatagramHeaderFields,
};
use nom_teltonika::protocol::{AvlCodec, AvlTimestamp, GpsElement, ImeiView, Priority};
use support::{http_get, metric, metrics_when, start, test_config};
use trackgate::model::DeviceId;
use trackgate::protocol::Transport;

const IMEI: &str = "356307042441013";

fn login(imei: &str) -> Vec<u8> {
    let mut v = (imei.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(imei.as_bytes());
    v
}

fn gps(lat: f64, lon: f64) -> GpsElement {
    GpsElement {
        longitude_raw: (lon * 1e7) as i32,
        latitude_raw: (lat * 1e7) as i32,
        altitude_meters: 120,
        angle_degrees: 270,
        satellites: 9,
        speed_kph: 63,
    }
}

fn records(n: usize, t0: u64) -> Vec<AvlRecordFields<'static>> {
    (0..n)
        .map(|i| {
            AvlRecordFields::new(
                AvlTimestamp::from(t0 + 1000 * i as u64),
                Priority::Low,
                gps(54.0 + i as f64 * 0.001, 25.0),
            )
        })
        .collect()
}

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// Whether the peer closed the connection (read returns 0) within `wait`.
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0))
        || matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_data_crc_failure_keepalive_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("teltonika", Transport::Tcp).unwrap();
    let http = gw.http;

    let (positions, text) = tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        s.write_all(&login(IMEI)).unwrap();
        assert_eq!(read_n(&mut s, 1), [0x01], "login accepted");

        // Three records in one codec 8 packet: ack is the count, u32 BE.
        let frame = encode_avl_frame(AvlCodec::Codec8, &records(3, 1_700_000_000_000)).unwrap();
        s.write_all(&frame).unwrap();
        assert_eq!(read_n(&mut s, 4), [0, 0, 0, 3]);

        // The same packet with a broken CRC: a zero count, connection stays open.
        let mut bad =
            encode_avl_frame(AvlCodec::Codec8Extended, &records(2, 1_700_000_100_000)).unwrap();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        s.write_all(&bad).unwrap();
        assert_eq!(
            read_n(&mut s, 4),
            [0, 0, 0, 0],
            "CRC failure is never acked as accepted"
        );

        // Keepalive: no reply; then the device's retry succeeds on the same connection.
        s.write_all(&[0xff]).unwrap();
        let good =
            encode_avl_frame(AvlCodec::Codec8Extended, &records(2, 1_700_000_100_000)).unwrap();
        s.write_all(&good).unwrap();
        assert_eq!(
            read_n(&mut s, 4),
            [0, 0, 0, 2],
            "retry after CRC failure is acked"
        );
        let (_, text) = http_get(http, "/metrics");
        (5, text)
    })
    .await
    .unwrap();

    let p = gw
        .engine
        .get(&DeviceId::new(IMEI).unwrap())
        .expect("latest position stored");
    assert_eq!(
        p.fix_time.timestamp_millis(),
        1_700_000_101_000,
        "newest fix of the last packet"
    );
    assert!((p.lat - 54.001).abs() < 1e-7, "{}", p.lat);
    assert!((p.lon - 25.0).abs() < 1e-7);
    assert_eq!(p.speed_kmh, 63.0);
    assert_eq!(p.course_deg, 270.0);
    assert_eq!(p.altitude_m, 120.0);
    assert_eq!(p.satellites, Some(9));
    assert_eq!(p.protocol, "teltonika");

    let l = "protocol=\"teltonika\"";
    assert_eq!(
        metric(&text, "trackgate_positions_total", l),
        positions as f64
    );
    assert_eq!(
        metric(&text, "trackgate_frames_total", l),
        5.0,
        "login, 3 data frames, keepalive"
    );
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"checksum\",protocol=\"teltonika\""
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "trackgate_connections", l),
        1.0,
        "connection still open while metrics read"
    );
    assert!(metric(&text, "trackgate_ack_latency_seconds_count", l) >= 3.0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_fix_never_replaces_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("teltonika", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        s.write_all(&login(IMEI)).unwrap();
        assert_eq!(read_n(&mut s, 1), [1]);
        for t0 in [1_700_000_500_000u64, 1_700_000_000_000] {
            s.write_all(&encode_avl_frame(AvlCodec::Codec8, &records(1, t0)).unwrap())
                .unwrap();
            assert_eq!(
                read_n(&mut s, 4),
                [0, 0, 0, 1],
                "a stale record is still acked"
            );
        }
    })
    .await
    .unwrap();
    let p = gw.engine.get(&DeviceId::new(IMEI).unwrap()).unwrap();
    assert_eq!(p.fix_time.timestamp_millis(), 1_700_000_500_000);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_coalesced_packets_get_every_ack_in_order() {
    const T0: u64 = 1_700_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("teltonika", Transport::Tcp).unwrap();
    let http = gw.http;
    let text = tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        s.set_nodelay(true).unwrap();
        // Login and the first packet in one write: both answered, in order.
        let mut w = login(IMEI);
        w.extend(encode_avl_frame(AvlCodec::Codec8, &records(1, T0)).unwrap());
        s.write_all(&w).unwrap();
        assert_eq!(read_n(&mut s, 5), [1, 0, 0, 0, 1]);

        // A packet one byte per write (one TCP segment each): one ack,
        // only once the last byte is in.
        let frame = encode_avl_frame(AvlCodec::Codec8Extended, &records(3, T0 + 10_000)).unwrap();
        let (last, head) = frame.split_last().unwrap();
        for b in head {
            s.write_all(std::slice::from_ref(b)).unwrap();
        }
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut early = [0u8; 1];
        assert!(
            s.read(&mut early).is_err(),
            "no ack for an incomplete packet"
        );
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&[*last]).unwrap();
        assert_eq!(read_n(&mut s, 4), [0, 0, 0, 3]);

        // Three packets in one write: three acks, in order.
        let mut w = Vec::new();
        for (i, n) in [2usize, 4, 1].into_iter().enumerate() {
            let t = T0 + 100_000 * (i as u64 + 1);
            w.extend(encode_avl_frame(AvlCodec::Codec8, &records(n, t)).unwrap());
        }
        s.write_all(&w).unwrap();
        assert_eq!(read_n(&mut s, 12), [0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1]);
        http_get(http, "/metrics").1
    })
    .await
    .unwrap();
    let p = gw.engine.get(&DeviceId::new(IMEI).unwrap()).unwrap();
    assert_eq!(p.fix_time.timestamp_millis() as u64, T0 + 300_000);
    assert_eq!(
        metric(&text, "trackgate_positions_total", "protocol=\"teltonika\""),
        11.0,
        "1 + 3 + 2 + 4 + 1 records"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_devices_connected_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const N: usize = 1_000;
    const T0: u64 = 1_700_000_000_000;
    let imei = |i: usize| format!("35630704{i:07}");
    // The usual soft open-file limit: 1,000 devices and their 1,000 client
    // sockets in this one process need twice that, so this test also
    // checks that the gateway raises the limit at start.
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let hard = getrlimit(Resource::Nofile).maximum;
    assert!(
        hard.is_none_or(|h| h >= 2 * N as u64 + 100),
        "hard limit {hard:?}"
    );
    let soft = Rlimit {
        current: Some(1024),
        maximum: hard,
    };
    setrlimit(Resource::Nofile, soft).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    assert_eq!(
        getrlimit(Resource::Nofile).current,
        hard,
        "raised to the hard limit"
    );
    let addr = gw.addr("teltonika", Transport::Tcp).unwrap();

    // Every device connects and logs in before any sends data, so all
    // 1,000 sessions are open at the same time.
    let mut conns = Vec::with_capacity(N);
    for i in 0..N {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(&login(&imei(i))).await.unwrap();
        conns.push(c);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut c) in conns.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut b = [0u8; 1];
            c.read_exact(&mut b).await.unwrap();
            assert_eq!(b, [1], "device {i}: login");
            let frame = encode_avl_frame(AvlCodec::Codec8, &records(2, T0 + i as u64)).unwrap();
            c.write_all(&frame).await.unwrap();
            let mut ack = [0u8; 4];
            c.read_exact(&mut ack).await.unwrap();
            assert_eq!(ack, [0, 0, 0, 2], "device {i}: ack");
            c
        });
    }
    let conns: Vec<_> = tokio::time::timeout(Duration::from_secs(60), tasks.join_all())
        .await
        .expect("1,000 devices acked within a minute");
    let http = gw.http;
    let text = tokio::task::spawn_blocking(move || http_get(http, "/metrics").1)
        .await
        .unwrap();
    let l = "protocol=\"teltonika\"";
    assert_eq!(metric(&text, "trackgate_connections", l), N as f64);
    assert_eq!(
        metric(&text, "trackgate_positions_total", l),
        2.0 * N as f64
    );
    assert_eq!(gw.engine.len(), N);
    for i in 0..N {
        let p = gw.engine.get(&DeviceId::new(&imei(i)).unwrap()).unwrap();
        assert_eq!(p.fix_time.timestamp_millis() as u64, T0 + i as u64 + 1000);
        assert!((p.lat - 54.001).abs() < 1e-7, "device {i}: {}", p.lat);
    }
    drop(conns);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_streams_close_the_connection_with_a_metric() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("teltonika", Transport::Tcp).unwrap();
    let http = gw.http;
    let text = tokio::task::spawn_blocking(move || {
        // Data before login: closed, nothing acked.
        let mut s = connect(addr);
        s.write_all(&encode_avl_frame(AvlCodec::Codec8, &records(1, 1_700_000_000_000)).unwrap())
            .unwrap();
        assert!(
            closed_within(&mut s, Duration::from_secs(5)),
            "data before login closes"
        );

        // A declared length over max_frame_bytes: closed.
        let mut s = connect(addr);
        s.write_all(&login(IMEI)).unwrap();
        assert_eq!(read_n(&mut s, 1), [1]);
        s.write_all(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]).unwrap();
        assert!(
            closed_within(&mut s, Duration::from_secs(5)),
            "oversize frame closes"
        );

        // Garbage that cannot start a frame: closed.
        let mut s = connect(addr);
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert!(
            closed_within(&mut s, Duration::from_secs(5)),
            "garbage closes"
        );
        std::thread::sleep(Duration::from_millis(100));
        http_get(http, "/metrics").1
    })
    .await
    .unwrap();
    let kinds = |k: &str| {
        metric(
            &text,
            "trackgate_decode_errors_total",
            &format!("kind=\"{k}\",protocol=\"teltonika\""),
        )
    };
    assert_eq!(kinds("not_identified"), 1.0);
    assert_eq!(kinds("frame_too_large"), 1.0);
    assert_eq!(kinds("frame_garbage"), 1.0);
    assert_eq!(
        metric(&text, "trackgate_positions_total", "protocol=\"teltonika\""),
        0.0
    );
    assert!(gw.engine.is_empty());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagram_gets_the_exact_ack() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("teltonika", Transport::Udp).unwrap();
    assert_eq!(
        Some(addr),
        gw.addr("teltonika", Transport::Tcp),
        "TCP and UDP share one address"
    );
    tokio::task::spawn_blocking(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let header = DatagramHeaderFields {
            packet_id: 0xcafe,
            avl_packet_id: 0x07,
            imei: ImeiView::try_from(IMEI).unwrap(),
        };
        let d = encode_avl_datagram(
            header,
            AvlCodec::Codec8Extended,
            &records(4, 1_700_000_000_000),
        )
        .unwrap();
        sock.send_to(&d, addr).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], [0x00, 0x05, 0xca, 0xfe, 0x01, 0x07, 0x04]);
    })
    .await
    .unwrap();
    let p = gw.engine.get(&DeviceId::new(IMEI).unwrap()).unwrap();
    assert_eq!(p.fix_time.timestamp_millis(), 1_700_000_003_000);
    gw.shutdown().await;
}

/// A datagram waits for its commit without holding the socket: while
/// storage hangs, another device's datagram is still received and an
/// oversize and a garbage one are still counted (and never answered); once
/// storage answers, each device gets its own exact ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams_wait_for_their_commits_without_holding_the_socket() {
    const OTHER: &str = "356307042441099";
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.limits.max_frame_bytes = 1024;
    let gw = start(&config).await;
    let (addr, http) = (gw.addr("teltonika", Transport::Udp).unwrap(), gw.http);
    let faults = gw.history.faults.clone();
    faults
        .stall_commits
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let datagram = |imei: &'static str, packet_id: u16, n: usize| {
        let header = DatagramHeaderFields {
            packet_id,
            avl_packet_id: 0x07,
            imei: ImeiView::try_from(imei).unwrap(),
        };
        encode_avl_datagram(header, AvlCodec::Codec8, &records(n, 1_700_000_000_000)).unwrap()
    };
    let (a, b) = tokio::task::spawn_blocking(move || {
        let socket = || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            s
        };
        let (a, b, c) = (socket(), socket(), socket());
        a.send_to(&datagram(IMEI, 0x0a0a, 2), addr).unwrap();
        b.send_to(&datagram(OTHER, 0x0b0b, 3), addr).unwrap();
        c.send_to(&[0u8; 2000], addr).unwrap();
        c.send_to(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], addr).unwrap();
        let l = "protocol=\"teltonika\"";
        let text = metrics_when(http, |t| metric(t, "trackgate_frames_total", l) >= 4.0);
        assert_eq!(
            metric(&text, "trackgate_frames_total", l),
            4.0,
            "every datagram received while the first commit hangs"
        );
        for kind in ["frame_too_large", "length"] {
            let labels = format!("kind=\"{kind}\",{l}");
            assert_eq!(
                metric(&text, "trackgate_decode_errors_total", &labels),
                1.0,
                "{kind}"
            );
        }
        let mut buf = [0u8; 64];
        assert!(a.recv_from(&mut buf).is_err(), "no ack before the commit");
        assert!(
            c.recv_from(&mut buf).is_err(),
            "no answer to a bad datagram"
        );
        (a, b)
    })
    .await
    .unwrap();
    faults
        .stall_commits
        .store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 64];
        for (s, ack) in [
            (a, [0x00, 0x05, 0x0a, 0x0a, 0x01, 0x07, 0x02]),
            (b, [0x00, 0x05, 0x0b, 0x0b, 0x01, 0x07, 0x03]),
        ] {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let (n, _) = s.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], ack);
        }
    })
    .await
    .unwrap();
    for device in [IMEI, OTHER] {
        let p = gw.engine.get(&DeviceId::new(device).unwrap()).unwrap();
        assert_eq!(
            p.fix_time.timestamp_millis(),
            1_700_000_000_000 + 1000 * if device == IMEI { 1 } else { 2 }
        );
    }
    assert_eq!(gw.history.count().await.unwrap(), 5);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_and_max_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.limits.idle_timeout_secs = 1;
    config.limits.max_connections = 2;
    let gw = start(&config).await;
    let addr = gw.addr("teltonika", Transport::Tcp).unwrap();
    let http = gw.http;
    let text = tokio::task::spawn_blocking(move || {
        let mut a = connect(addr);
        let mut b = connect(addr);
        a.write_all(&login(IMEI)).unwrap();
        assert_eq!(read_n(&mut a, 1), [1]);
        b.write_all(&login("356307042441014")).unwrap();
        assert_eq!(read_n(&mut b, 1), [1]);
        // A third connection is over the limit: closed at once.
        let mut c = connect(addr);
        assert!(
            closed_within(&mut c, Duration::from_secs(2)),
            "over max_connections closes"
        );
        // The idle ones are closed after about a second.
        let t = Instant::now();
        assert!(
            closed_within(&mut a, Duration::from_secs(5)),
            "idle connection closes"
        );
        let waited = t.elapsed();
        assert!(waited < Duration::from_secs(3), "closed after {waited:?}");
        // The second idles out a moment later; the gauge follows its close.
        support::metrics_when(http, |t| {
            metric(t, "trackgate_connections", "protocol=\"teltonika\"") == 0.0
        })
    })
    .await
    .unwrap();
    assert_eq!(
        metric(
            &text,
            "trackgate_connections_refused_total",
            "protocol=\"teltonika\""
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "trackgate_connections", "protocol=\"teltonika\""),
        0.0
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_open_connections_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("teltonika", Transport::Tcp).unwrap();
    let mut s = tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        s.write_all(&login(IMEI)).unwrap();
        assert_eq!(read_n(&mut s, 1), [1]);
        s
    })
    .await
    .unwrap();
    let t = Instant::now();
    gw.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        t.elapsed()
    );
    assert!(closed_within(&mut s, Duration::from_secs(2)));
    assert!(TcpStream::connect(addr).is_err(), "listener is gone");
}

#[test]
fn the_operator_sets_the_admin_token_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = [
        "--data-dir",
        data,
        "--http",
        "127.0.0.1:0",
        "--listen",
        "teltonika=127.0.0.1:0",
    ];
    let token = "tga_from_the_environment";
    let gw = support::Process::spawn_with_env(&args, &[("TRACKGATE_ADMIN_TOKEN", token)]);
    assert!(
        gw.admin_token.is_none(),
        "nothing generated, nothing printed"
    );
    assert!(
        !dir.path().join("admin-token.sha256").exists(),
        "nothing stored"
    );
    let company = |http: std::net::SocketAddr, auth: &str, id: &str| {
        let body = format!(r#"{{"id":"{id}","name":"Carrier"}}"#);
        support::http_request(
            http,
            "POST",
            "/api/v1/admin/companies",
            &[("Authorization", auth)],
            Some(&body),
        )
        .0
    };
    assert_eq!(company(gw.http, &format!("Bearer {token}"), "4711"), 201);
    assert_eq!(company(gw.http, "Bearer tga_something_else", "4712"), 401);
    drop(gw);
    // Without the variable the next start generates and prints its own.
    let gw = support::Process::spawn(&args);
    let generated = gw
        .admin_token
        .clone()
        .expect("a generated token is printed");
    assert_ne!(generated, token);
    assert_eq!(company(gw.http, &format!("Bearer {token}"), "4713"), 401);
    assert_eq!(
        company(gw.http, &format!("Bearer {generated}"), "4714"),
        201
    );
}

/// The gateway binary on `data_dir`, HTTP and Teltonika on ephemeral ports.
fn spawn_binary(data_dir: &std::path::Path) -> support::Process {
    support::Process::spawn(&[
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--http",
        "127.0.0.1:0",
        "--listen",
        "teltonika=127.0.0.1:0",
    ])
}

#[test]
fn binary_lists_listeners_serves_health_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = spawn_binary(dir.path());
    let addr = gw.addr("teltonika", "tcp");
    gw.addr("teltonika", "udp");
    // Embedded defaults: a device nobody registered is refused (00) ...
    let mut s = connect(addr);
    s.write_all(&login(IMEI)).unwrap();
    assert_eq!(read_n(&mut s, 1), [0]);
    // ... until the operator assigns it, with the token printed on first start.
    let token = gw
        .admin_token
        .clone()
        .expect("admin token printed on first start");
    let auth = format!("Bearer {token}");
    let (_, unknown) = support::http_request(
        gw.http,
        "GET",
        "/api/v1/admin/unknown-devices",
        &[("Authorization", &auth)],
        None,
    );
    assert!(unknown.contains(IMEI), "{unknown}");
    let unknown: serde_json::Value = serde_json::from_str(&unknown).unwrap();
    let entry = unknown
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["device_id"] == IMEI)
        .unwrap();
    assert_eq!(entry["protocol"], "teltonika", "{entry}");
    assert_eq!(entry["messages"], 1, "{entry}");
    let seen = chrono::DateTime::parse_from_rfc3339(entry["last_seen"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        (now - 60_000..=now).contains(&seen),
        "last seen just now: {entry}"
    );
    let (_, text) = http_get(gw.http, "/metrics");
    assert_eq!(
        metric(
            &text,
            "trackgate_unknown_device_messages_total",
            "protocol=\"teltonika\""
        ),
        1.0,
        "the refused login is counted"
    );
    let (st, _) = support::http_request(
        gw.http,
        "POST",
        "/api/v1/admin/companies",
        &[("Authorization", &auth)],
        Some(r#"{"id":"4711","name":"Carrier"}"#),
    );
    assert_eq!(st, 201);
    let body = format!(r#"{{"device_id":"{IMEI}","name":"Truck 1"}}"#);
    let (st, _) = support::http_request(
        gw.http,
        "POST",
        "/api/v1/admin/companies/4711/devices",
        &[("Authorization", &auth)],
        Some(&body),
    );
    assert_eq!(st, 201);
    let mut s = connect(addr);
    s.write_all(&login(IMEI)).unwrap();
    assert_eq!(read_n(&mut s, 1), [1]);
    s.write_all(&encode_avl_frame(AvlCodec::Codec8, &records(2, 1_700_000_000_000)).unwrap())
        .unwrap();
    assert_eq!(read_n(&mut s, 4), [0, 0, 0, 2]);
    let (status, body) = http_get(gw.http, "/health");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["devices"], 1);
    let (_, text) = http_get(gw.http, "/metrics");
    assert_eq!(
        metric(&text, "trackgate_positions_total", "protocol=\"teltonika\""),
        2.0
    );
    let status = gw.terminate();
    assert!(status.success(), "exit status {status:?}");
    // A clean stop moved the journal into the history: nothing is left
    // for the next start to compact.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "journal segments left: {left:?}");

    // Ctrl-C (SIGINT) shuts down as cleanly, and the data dir is reusable:
    // the device is still registered and its fix restored from the history.
    let mut gw = spawn_binary(dir.path());
    assert!(
        gw.admin_token.is_none(),
        "the admin token is printed only once"
    );
    let (_, body) = http_get(gw.http, "/health");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["devices"], 1, "restored from the history");
    let mut s = connect(gw.addr("teltonika", "tcp"));
    s.write_all(&login(IMEI)).unwrap();
    assert_eq!(read_n(&mut s, 1), [1], "still registered");
    let status = gw.signal("INT");
    assert!(status.success(), "exit status after SIGINT {status:?}");
}
