//! Durable history over real sockets: acks wait for the commit, resent
//! records are stored once, a storage failure stops acks until it recovers,
//! a restart rebuilds the engine, and a SIGKILL mid-stream loses nothing a
//! device saw acknowledged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use support::{http_get, metric, start, test_config, Process};
use trackgate::config::DEFAULT_TOML;
use trackgate::history::{History, Range};
use trackgate::model::DeviceId;
use trackgate::protocol::Transport;
use trackgate::simulate::{codec8_packet, login_packet, SimOptions};

const IMEI: u64 = 356_307_042_441_013;

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&login_packet(IMEI)).unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    assert_eq!(b[0], 1, "login accepted");
    s
}

/// Sends `packet` and returns the 4-byte ack, or None when none came in `wait`.
fn send(s: &mut TcpStream, packet: &[u8], wait: Duration) -> Option<u32> {
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(packet).unwrap();
    let mut b = [0u8; 4];
    match s.read_exact(&mut b) {
        Ok(()) => Some(u32::from_be_bytes(b)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("read: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_follow_commits_duplicates_are_stored_once_storage_failure_stops_acks_and_restart_restores(
) {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let gw = start(&config).await;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let (http, faults) = (gw.http, gw.history.faults.clone());
    let t0 = 1_764_158_400_000i64;
    let two = codec8_packet(&[
        (t0, 52.5, 13.4, 60, 90),
        (t0 + 1000, 52.5001, 13.4001, 61, 91),
    ]);
    let third = codec8_packet(&[(t0 + 2000, 52.5002, 13.4002, 62, 92)]);
    let history = gw.history.clone();

    let mut s = tokio::task::spawn_blocking({
        let two = two.clone();
        move || {
            let mut s = connect(tcp);
            assert_eq!(send(&mut s, &two, Duration::from_secs(5)), Some(2));
            // The device did not see the ack and resends: acked again.
            assert_eq!(send(&mut s, &two, Duration::from_secs(5)), Some(2));
            s
        }
    })
    .await
    .unwrap();
    assert_eq!(
        history.count().await.unwrap(),
        2,
        "a resent record is stored once"
    );

    // Storage fails: no ack, health degraded, metric down.
    faults.fail_commits.store(true, Ordering::SeqCst);
    let third2 = third.clone();
    s = tokio::task::spawn_blocking(move || {
        assert_eq!(
            send(&mut s, &third2, Duration::from_millis(1500)),
            None,
            "no ack while storage fails"
        );
        let (status, body) = http_get(http, "/health");
        assert_eq!(status, 503, "{body}");
        assert!(
            body.contains("\"degraded\"") && body.contains("full"),
            "{body}"
        );
        s
    })
    .await
    .unwrap();
    let m = gw.metrics.render();
    assert_eq!(metric(&m, "trackgate_storage_healthy", ""), 0.0);
    assert!(metric(&m, "trackgate_history_commit_errors_total", "") >= 1.0);
    assert!(
        gw.engine
            .get(&DeviceId::new("356307042441013").unwrap())
            .unwrap()
            .fix_time
            .timestamp_millis()
            == t0 + 1000,
        "an unacked record is not served either"
    );

    // Storage recovers: the device's resend is acked and stored once.
    faults.fail_commits.store(false, Ordering::SeqCst);
    tokio::task::spawn_blocking(move || {
        assert_eq!(send(&mut s, &third, Duration::from_secs(5)), Some(1));
        let (status, body) = http_get(http, "/health");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"ok\""));
    })
    .await
    .unwrap();
    assert_eq!(history.count().await.unwrap(), 3);
    assert_eq!(
        metric(&gw.metrics.render(), "trackgate_storage_healthy", ""),
        1.0
    );
    gw.shutdown().await;

    // A restart rebuilds the engine from the history.
    let gw = start(&config).await;
    assert_eq!(gw.restored.0, 1);
    let p = gw
        .engine
        .get(&DeviceId::new("356307042441013").unwrap())
        .unwrap();
    assert_eq!(p.fix_time.timestamp_millis(), t0 + 2000);
    assert!((p.lat - 52.5002).abs() < 1e-9 && (p.lon - 13.4002).abs() < 1e-9);
    assert_eq!(
        (p.speed_kmh, p.course_deg, p.protocol),
        (62.0, 92.0, "teltonika")
    );
    gw.shutdown().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_acked_and_stores_each_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let conf = dir.path().join("trackgate.toml");
    // Every listener on loopback: other protocols on free ports, Teltonika
    // and HTTP on fixed ones so the restarted process takes the same.
    let toml = DEFAULT_TOML
        .replace(
            "accept_unregistered_devices = false",
            "accept_unregistered_devices = true",
        )
        .lines()
        .map(|l| {
            if l.starts_with("listen = \"0.0.0.0:") {
                "listen = \"127.0.0.1:0\""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&conf, toml).unwrap();
    let (tport, hport) = (free_port(), free_port());
    let listen = format!("teltonika=127.0.0.1:{tport}");
    let http = format!("127.0.0.1:{hport}");
    let args = [
        "--config",
        conf.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--http",
        &http,
        "--listen",
        &listen,
    ];
    let mut gw = Process::spawn(&args);

    let opts = SimOptions {
        target: format!("127.0.0.1:{tport}").parse().unwrap(),
        devices: 200,
        rate: 5.0,
        records: 1,
        duration: 4.0,
        imei_base: 351_000_000_000_000,
        ack_timeout: 1.0,
        out: None,
    };
    let sim = tokio::spawn(trackgate::simulate::run(
        opts,
        tokio_util::sync::CancellationToken::new(),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gw.child.kill().unwrap(); // SIGKILL mid-stream
    gw.child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let gw2 = Process::spawn(&args);
    let report = sim.await.unwrap();
    println!("{}", report.summary());
    assert!(
        report.reconnects >= 200,
        "every device lost its connection: {}",
        report.reconnects
    );
    assert_eq!(
        report.unacked, 0,
        "the devices' unacked records arrived after the restart"
    );
    assert_eq!(report.acked, report.generated);
    assert!(report.generated >= 200 * 15, "{}", report.generated);
    drop(gw2); // SIGKILL again: records may still sit in journal segments

    // Every acked record is in the history, exactly once. Opening the
    // history as a restart does moves leftover journal segments into it.
    let metrics = trackgate::metrics::Metrics::new();
    let history = History::open(&data, metrics.history.clone()).unwrap();
    history.flush().await.unwrap();
    drop(history);
    let db = rusqlite::Connection::open_with_flags(
        data.join("history.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stored = std::collections::HashMap::new();
    let mut st = db
        .prepare("SELECT device_id, fix_ms, lat, lon FROM positions")
        .unwrap();
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, f64>(2)?,
                r.get::<_, f64>(3)?,
            ))
        })
        .unwrap();
    for r in rows {
        let (d, t, lat, lon) = r.unwrap();
        assert!(
            stored.insert((d, t), (lat, lon)).is_none(),
            "a record stored twice"
        );
    }
    for (imei, t, lat, lon) in &report.acked_records {
        let got = stored.get(&(format!("{imei:015}"), *t));
        let (slat, slon) =
            got.unwrap_or_else(|| panic!("acked record {imei}/{t} missing after SIGKILL"));
        assert!((slat - lat).abs() < 1e-7 && (slon - lon).abs() < 1e-7);
    }
    assert_eq!(
        stored.len() as u64,
        report.acked,
        "nothing stored that no device sent"
    );
}

fn fix(device: &str, fix_ms: i64, lat: f64) -> trackgate::model::Position {
    use chrono::TimeZone;
    trackgate::model::Position {
        device_id: DeviceId::new(device).unwrap(),
        fix_time: chrono::Utc.timestamp_millis_opt(fix_ms).unwrap(),
        received_time: chrono::Utc.timestamp_millis_opt(fix_ms + 10).unwrap(),
        lat,
        lon: 13.4,
        altitude_m: 30.0,
        speed_kmh: 50.0,
        course_deg: 90.0,
        satellites: Some(8),
        valid: true,
        protocol: "teltonika",
        attributes: Default::default(),
    }
}

/// Pages through a device's whole history with `limit`-sized pages.
async fn all_pages(h: &History, device: &str, limit: usize) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .range(Range {
                device: DeviceId::new(device).unwrap(),
                from_ms: 0,
                to_ms: i64::MAX,
                limit,
                after,
            })
            .await
            .unwrap();
        out.extend(
            page.positions
                .iter()
                .map(|p| (p.fix_time.timestamp_millis(), p.lat)),
        );
        match page.next {
            Some(c) => after = Some(trackgate::history::Cursor::decode(&c.encode()).unwrap()),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_merge_the_journal_with_the_compacted_history_once_each_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = trackgate::metrics::Metrics::new();
    let h = History::open(dir.path(), metrics.history.clone()).unwrap();
    let t0 = 1_764_158_400_000i64;
    // Even seconds compacted into history.db, odd ones left in the journal,
    // plus resends of both kinds and another device's records.
    let even: Vec<_> = (0..10).map(|i| fix("dev-a", t0 + i * 2000, 50.0)).collect();
    h.append(&even).await.unwrap();
    h.flush().await.unwrap();
    let odd: Vec<_> = (0..10)
        .map(|i| fix("dev-a", t0 + i * 2000 + 1000, 50.5))
        .collect();
    h.append(&odd).await.unwrap();
    h.append(&even[3..6]).await.unwrap();
    h.append(&odd[..2]).await.unwrap();
    h.append(&[fix("dev-b", t0 + 500, 1.0)]).await.unwrap();
    // Same device and time, other coordinates: a distinct record.
    h.append(&[fix("dev-a", t0, 49.0)]).await.unwrap();

    let mut want: Vec<(i64, f64)> = (0..20)
        .map(|i| (t0 + i * 1000, if i % 2 == 0 { 50.0 } else { 50.5 }))
        .collect();
    want.insert(0, (t0, 49.0));
    for limit in [1, 3, 7, 100] {
        assert_eq!(all_pages(&h, "dev-a", limit).await, want, "limit {limit}");
    }
    assert_eq!(all_pages(&h, "dev-b", 5).await, vec![(t0 + 500, 1.0)]);

    // After compaction the same answers, and each record stored once.
    assert_eq!(h.count().await.unwrap(), 22);
    assert_eq!(all_pages(&h, "dev-a", 4).await, want);
    assert_eq!(
        trackgate::metrics::Metrics::render(&metrics)
            .lines()
            .find(|l| l.starts_with("trackgate_history_journal_records "))
            .unwrap(),
        "trackgate_history_journal_records 0"
    );
    drop(h);

    // Appended but never flushed: a restart compacts it before serving.
    let h = History::open(dir.path(), metrics.history.clone()).unwrap();
    h.append(&[fix("dev-c", t0, 2.0), fix("dev-c", t0 + 1, 2.0)])
        .await
        .unwrap();
    drop(h);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let h = History::open(dir.path(), metrics.history.clone()).unwrap();
    let latest = h.latest_all().await.unwrap();
    let c = latest
        .iter()
        .find(|p| p.device_id.as_str() == "dev-c")
        .unwrap();
    assert_eq!(c.fix_time.timestamp_millis(), t0 + 1);
    assert_eq!(h.count().await.unwrap(), 24);
}
