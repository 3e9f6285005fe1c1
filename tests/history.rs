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

use support::{
    all_pages, fix, http_get, login_teltonika, metric, send_avl as send, start, stored_fixes,
    test_config, Process,
};
use trackgate::config::DEFAULT_TOML;
use trackgate::history::History;
use trackgate::model::DeviceId;
use trackgate::protocol::Transport;
use trackgate::simulate::{codec8_packet, login_packet, SimOptions};

const IMEI: u64 = 356_307_042_441_013;

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    login_teltonika(addr, IMEI)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_in_batches_and_a_restart_never_shows_a_purged_fix() {
    const OTHER: u64 = 356_307_042_441_099;
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let gw = start(&config).await;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let t0 = 1_764_158_400_000i64;
    // Two packets, each stored before the next is sent (a count waits for
    // compaction), so the history holds them as two chunks.
    let packets = [
        codec8_packet(&[(t0, 52.5, 13.4, 60, 90), (t0 + 1000, 52.6, 13.5, 61, 91)]),
        codec8_packet(&[(t0 + 2000, 52.7, 13.6, 62, 92)]),
    ];
    let mut s = tokio::task::spawn_blocking(move || connect(tcp))
        .await
        .unwrap();
    for (p, (records, stored)) in packets.into_iter().zip([(2, 2), (1, 3)]) {
        let (back, acked) = tokio::task::spawn_blocking(move || {
            let n = send(&mut s, &p, Duration::from_secs(5));
            (s, n)
        })
        .await
        .unwrap();
        s = back;
        assert_eq!(acked, Some(records));
        assert_eq!(gw.history.count().await.unwrap(), stored);
    }
    drop(s);
    // Everything received before a minute from now goes, oldest chunks
    // first, whole chunks of about two records a batch.
    let cutoff = chrono::Utc::now().timestamp_millis() + 60_000;
    assert_eq!(gw.history.purge(cutoff, 2).await.unwrap(), 2);
    assert_eq!(gw.history.purge(cutoff, 2).await.unwrap(), 1);
    assert_eq!(gw.history.purge(cutoff, 2).await.unwrap(), 0);
    assert_eq!(gw.history.count().await.unwrap(), 0);
    // Another device reports into the emptied table (row ids may be reused).
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(tcp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&login_packet(OTHER)).unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        let p = codec8_packet(&[(t0 + 5000, 48.1, 11.6, 30, 10)]);
        assert_eq!(send(&mut s, &p, Duration::from_secs(5)), Some(1));
    })
    .await
    .unwrap();
    gw.shutdown().await;

    let gw = start(&config).await;
    assert_eq!(gw.restored.0, 1, "only the device with a stored fix");
    assert!(gw
        .engine
        .get(&DeviceId::new(&IMEI.to_string()).unwrap())
        .is_none());
    let p = gw
        .engine
        .get(&DeviceId::new(&OTHER.to_string()).unwrap())
        .unwrap();
    assert_eq!((p.lat, p.lon), (48.1, 11.6));
    // The retention task: with nothing to keep, it empties the history.
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(trackgate::history::run_retention(
        gw.history.clone(),
        Duration::ZERO,
        Duration::from_secs(3600),
        stop.clone(),
    ));
    let mut left = -1;
    for _ in 0..100 {
        left = gw.history.count().await.unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "purged by the retention task");
    stop.cancel();
    task.await.unwrap();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulate_command_writes_what_was_acked_and_the_history_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let out = dir.path().join("acked.tsv");
    let out2 = out.clone();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_trackgate"))
            .args(["simulate", "--target", &tcp.to_string()])
            .args(["--devices", "5", "--rate", "10", "--records", "3"])
            .args(["--duration", "1", "--imei-base", "359000000000000"])
            .arg("--out")
            .arg(&out2)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{stdout}");
    let tsv = std::fs::read_to_string(&out).unwrap();
    let mut lines = tsv.lines();
    assert_eq!(lines.next(), Some("device_id\tfix_ms\tlat\tlon"));
    let acked: Vec<(String, i64, f64, f64)> = lines
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (
                c[0].to_string(),
                c[1].parse().unwrap(),
                c[2].parse().unwrap(),
                c[3].parse().unwrap(),
            )
        })
        .collect();
    assert!(
        acked.len() >= 5 * 3,
        "every device sent at least one packet: {}",
        acked.len()
    );
    assert_eq!(
        gw.history.count().await.unwrap(),
        acked.len() as i64,
        "{stdout}"
    );
    for i in 0..5u64 {
        let imei = format!("{:015}", 359_000_000_000_000u64 + i);
        let got = stored_fixes(&gw.history, &imei).await;
        let mut want: Vec<(i64, f64, f64)> = acked
            .iter()
            .filter(|a| a.0 == imei)
            .map(|a| (a.1, a.2, a.3))
            .collect();
        want.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(got.len(), want.len(), "{imei}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0, "{imei}");
            assert!(
                (g.1 - w.1).abs() < 1e-6 && (g.2 - w.2).abs() < 1e-6,
                "{imei}: {g:?} {w:?}"
            );
        }
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_on_receipt_does_not_wait_for_storage() {
    let dir = tempfile::tempdir().unwrap();
    let toml = DEFAULT_TOML.replace("ack = \"durable\"", "ack = \"received\"");
    assert_ne!(
        toml, DEFAULT_TOML,
        "the documented key is in the default file"
    );
    let mut config = trackgate::config::Config::from_toml(&toml, "test").unwrap();
    assert_eq!(config.ingest.ack, trackgate::config::AckMode::Received);
    let base = test_config(dir.path());
    config.data_dir = base.data_dir.clone();
    config.http = base.http.clone();
    config.protocols = base.protocols.clone();
    config.ingest.accept_unregistered_devices = true;
    let gw = start(&config).await;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    // Storage fails, yet the device is acked: what "received" trades away.
    gw.history.faults.fail_commits.store(true, Ordering::SeqCst);
    tokio::task::spawn_blocking(move || {
        let mut s = connect(tcp);
        let p = codec8_packet(&[(1_764_158_400_000, 52.5, 13.4, 60, 90)]);
        assert_eq!(send(&mut s, &p, Duration::from_secs(5)), Some(1));
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_compaction_keeps_acking_reports_degraded_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let (http, faults, history) = (gw.http, gw.history.faults.clone(), gw.history.clone());
    let t0 = 1_764_158_400_000i64;
    faults.fail_compactions.store(true, Ordering::SeqCst);
    let s = tokio::task::spawn_blocking(move || {
        let mut s = connect(tcp);
        let p = codec8_packet(&[(t0, 52.5, 13.4, 60, 90)]);
        // The journal takes it: acked although history.db cannot.
        assert_eq!(send(&mut s, &p, Duration::from_secs(5)), Some(1));
        s
    })
    .await
    .unwrap();
    // Seal the segment: its compaction fails until the fault clears.
    let flushed = tokio::spawn(async move { history.flush().await });
    let body = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            let (status, body) = http_get(http, "/health");
            if status == 503 {
                return body;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("health never degraded");
    })
    .await
    .unwrap();
    assert!(
        body.contains("journal compaction") && body.contains("full"),
        "{body}"
    );
    assert_eq!(
        metric(&gw.metrics.render(), "trackgate_storage_healthy", ""),
        0.0
    );
    assert!(
        metric(
            &gw.metrics.render(),
            "trackgate_history_compaction_errors_total",
            ""
        ) >= 1.0
    );
    // Still acking meanwhile, and queries see the journal's records.
    let mut s = tokio::task::spawn_blocking(move || {
        let mut s = s;
        let p = codec8_packet(&[(t0 + 1000, 52.5001, 13.4001, 61, 91)]);
        assert_eq!(send(&mut s, &p, Duration::from_secs(5)), Some(1));
        s
    })
    .await
    .unwrap();
    faults.fail_compactions.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(10), flushed)
        .await
        .expect("compaction recovers by itself")
        .unwrap()
        .unwrap();
    assert_eq!(gw.history.count().await.unwrap(), 2, "nothing lost");
    let (status, body) = tokio::task::spawn_blocking(move || {
        s.flush().unwrap();
        http_get(http, "/health")
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        metric(&gw.metrics.render(), "trackgate_storage_healthy", ""),
        1.0
    );
    gw.shutdown().await;
}

/// The journal holds at most `history.max_journal_records` acked records
/// the compactor has not moved yet: past it, acks wait (devices keep their
/// data) until compaction catches up, and then everything is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_holds_acks_until_compaction_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.history.max_journal_records = 20;
    let gw = start(&config).await;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let (http, faults) = (gw.http, gw.history.faults.clone());
    let t0 = 1_764_158_400_000i64;
    let packet = move |i: i64| {
        let fixes: Vec<_> = (0..5)
            .map(|k| (t0 + (i * 5 + k) * 1000, 52.5, 13.4, 60, 90))
            .collect();
        codec8_packet(&fixes)
    };
    // history.db refuses everything: the journal fills up to its bound.
    faults.fail_compactions.store(true, Ordering::SeqCst);
    let (s, acked) = tokio::task::spawn_blocking(move || {
        let mut s = connect(tcp);
        let mut acked = 0u32;
        for i in 0..10 {
            match send(&mut s, &packet(i), Duration::from_millis(1500)) {
                Some(n) => acked += n,
                None => return (s, acked, i),
            }
        }
        panic!("acked {acked} records past a bound of 20")
    })
    .await
    .map(|(s, acked, i)| {
        // 20 records in 5-record packets: the fifth packet waits.
        assert_eq!((acked, i), (20, 4));
        (s, acked)
    })
    .unwrap();
    let text = tokio::task::spawn_blocking(move || {
        support::metrics_when(http, |t| {
            metric(t, "trackgate_history_throttled_seconds_total", "") > 0.0
        })
    })
    .await
    .unwrap();
    assert!(metric(&text, "trackgate_history_throttled_seconds_total", "") > 0.0);
    assert_eq!(metric(&text, "trackgate_history_journal_records", ""), 20.0);
    // A wait that lasts is reported: no acks, and the operator must know.
    let body = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = http_get(http, "/health");
            // Degraded already by the failing compaction; the wait's own
            // reason follows once it has lasted.
            if (status == 503 && body.contains("max_journal_records"))
                || std::time::Instant::now() > deadline
            {
                return body;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert!(
        body.contains("waited") && body.contains("max_journal_records"),
        "{body}"
    );
    // Compaction recovers by itself; the waiting packet is acked then, and
    // the device goes on.
    faults.fail_compactions.store(false, Ordering::SeqCst);
    let acked = tokio::task::spawn_blocking(move || {
        let mut s = s;
        let mut acked = acked;
        let mut b = [0u8; 4];
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.read_exact(&mut b).unwrap();
        acked += u32::from_be_bytes(b);
        for i in 5..10 {
            acked += send(&mut s, &packet(i), Duration::from_secs(15)).unwrap();
        }
        acked
    })
    .await
    .unwrap();
    assert_eq!(acked, 50);
    assert_eq!(gw.history.count().await.unwrap(), 50, "each record once");
    let (status, body) = tokio::task::spawn_blocking(move || http_get(http, "/health"))
        .await
        .unwrap();
    assert_eq!(status, 200, "recovered: {body}");
    gw.shutdown().await;
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
        not_acked_and_degraded(&mut s, &third2, http, "full");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_panics_fails_its_batch_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let gw = start(&config).await;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let (http, faults) = (gw.http, gw.history.faults.clone());
    let t0 = 1_764_158_400_000i64;
    let first = codec8_packet(&[(t0, 52.5, 13.4, 60, 90)]);
    let second = codec8_packet(&[(t0 + 1000, 52.5001, 13.4001, 61, 91)]);
    let mut s = tokio::task::spawn_blocking(move || {
        let mut s = connect(tcp);
        assert_eq!(send(&mut s, &first, Duration::from_secs(5)), Some(1));
        s
    })
    .await
    .unwrap();
    faults.panic_next_commit.store(true, Ordering::SeqCst);
    tokio::task::spawn_blocking(move || {
        not_acked_and_degraded(&mut s, &second, http, "commit task failed");
        // The device resends (on a new connection if the old one closed).
        let mut s = connect(tcp);
        assert_eq!(send(&mut s, &second, Duration::from_secs(5)), Some(1));
        let (status, body) = http_get(http, "/health");
        assert_eq!(status, 200, "recovered with the next commit: {body}");
    })
    .await
    .unwrap();
    // The segment the failed commit was writing is compacted at once (its
    // acked record), so no backlog is left behind to hold acks back.
    assert_eq!(gw.history.count().await.unwrap(), 2, "each record once");
    assert_eq!(
        metric(
            &gw.metrics.render(),
            "trackgate_history_journal_records",
            ""
        ),
        0.0
    );
    gw.shutdown().await;
    let gw = start(&config).await;
    assert_eq!(gw.history.count().await.unwrap(), 2);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_stamped_years_ahead_is_stored_but_never_the_latest_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let gw = start(&config).await;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let real = now - 60_000;
    let ahead = now + 400 * 86_400_000; // an unset clock, a week rollover
    tokio::task::spawn_blocking(move || {
        let mut s = connect(tcp);
        let p = codec8_packet(&[(real, 52.5, 13.4, 60, 90), (ahead, 1.0, 1.0, 0, 0)]);
        assert_eq!(
            send(&mut s, &p, Duration::from_secs(5)),
            Some(2),
            "acked: the device may forget both"
        );
        let later = codec8_packet(&[(real + 1000, 52.6, 13.5, 60, 90)]);
        assert_eq!(send(&mut s, &later, Duration::from_secs(5)), Some(1));
    })
    .await
    .unwrap();
    let device = DeviceId::new("356307042441013").unwrap();
    let live = gw.engine.get(&device).unwrap();
    assert_eq!(
        live.fix_time.timestamp_millis(),
        real + 1000,
        "the real fixes go on"
    );
    assert_eq!(
        gw.history.count().await.unwrap(),
        3,
        "everything the device sent is stored"
    );
    gw.shutdown().await;
    let gw = start(&config).await;
    let restored = gw.engine.get(&device).unwrap();
    assert_eq!(
        restored.fix_time.timestamp_millis(),
        real + 1000,
        "nor restored as the latest"
    );
    gw.shutdown().await;
}

/// Sends `packet` and expects no ack while storage fails, and `/health`
/// answering 503 degraded with `why` in its reason.
fn not_acked_and_degraded(s: &mut TcpStream, packet: &[u8], http: std::net::SocketAddr, why: &str) {
    assert_eq!(
        send(s, packet, Duration::from_millis(1500)),
        None,
        "no ack while storage fails"
    );
    // The failed commit may land after the device gave up waiting.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, body) = http_get(http, "/health");
        if status == 503 || std::time::Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("\"degraded\"") && body.contains(why),
        "{body}"
    );
}

/// Resident memory of this process (the in-process gateway's), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_storage_stops_reading_the_socket_memory_stays_flat_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let (faults, history) = (gw.history.faults.clone(), gw.history.clone());
    let t0 = 1_764_158_400_000i64;
    // 32 MB of 255-record packets, far more than socket buffers hold.
    const PACKETS: usize = 4000;
    let packets: Vec<Vec<u8>> = (0..PACKETS as i64)
        .map(|p| {
            let recs: Vec<_> = (0..255)
                .map(|r| (t0 + (p * 255 + r) * 1000, 52.5, 13.4, 60, 90))
                .collect();
            codec8_packet(&recs)
        })
        .collect();
    let total: usize = packets.iter().map(Vec::len).sum();
    assert!(total > 30_000_000, "{total}");
    faults.stall_commits.store(true, Ordering::SeqCst);
    let before = rss();
    let (s, sent) = tokio::task::spawn_blocking(move || {
        let mut s = connect(tcp);
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut sent = 0usize;
        for p in &packets {
            if s.write_all(p).is_err() {
                break; // the gateway stopped reading: the write timed out
            }
            sent += 1;
        }
        (s, sent)
    })
    .await
    .unwrap();
    let grown = rss().saturating_sub(before);
    assert!(
        sent < PACKETS,
        "the gateway kept reading while its storage hung ({sent} packets)"
    );
    assert!(grown < 64 << 20, "memory grew by {grown} bytes");
    // A commit that hangs past STALLED_AFTER is reported, not silent.
    let health = gw.history.health.clone();
    let deadline = std::time::Instant::now() + trackgate::history::STALLED_AFTER * 2;
    while health.is_healthy() {
        assert!(
            std::time::Instant::now() < deadline,
            "a hung commit never made storage degraded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let why = health.last_error().unwrap_or_default();
    assert!(why.contains("has not completed"), "{why}");

    // Storage comes back: every packet that went out whole is acked, in
    // order, and stored.
    faults.stall_commits.store(false, Ordering::SeqCst);
    tokio::task::spawn_blocking(move || {
        let mut s = s;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        for i in 0..sent {
            let mut b = [0u8; 4];
            s.read_exact(&mut b)
                .unwrap_or_else(|e| panic!("ack {i} of {sent}: {e}"));
            assert_eq!(u32::from_be_bytes(b), 255);
        }
    })
    .await
    .unwrap();
    assert_eq!(history.count().await.unwrap(), (sent * 255) as i64);
    assert!(health.is_healthy(), "{:?}", health.last_error());
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
        protocol: "teltonika".into(),
        target: Some(format!("127.0.0.1:{tport}").parse().unwrap()),
        devices: 200,
        rate: 5.0,
        records: 1,
        duration: 4.0,
        imei_base: 351_000_000_000_000,
        drain: 60.0,
        ack_timeout: 1.0,
        out: None,
    };
    let sim = tokio::spawn(trackgate::simulate::run(
        trackgate::simulate::Plan::new(opts)
            .unwrap()
            .keeping_acked(),
        tokio_util::sync::CancellationToken::new(),
    ));
    // Killed once every device is connected and reporting, however long
    // that takes here.
    let gw_http: std::net::SocketAddr = http.parse().unwrap();
    let text = tokio::task::spawn_blocking(move || {
        support::metrics_when(gw_http, |t| {
            let l = "protocol=\"teltonika\"";
            metric(t, "trackgate_connections", l) == 200.0
                && metric(t, "trackgate_positions_total", l) >= 400.0
        })
    })
    .await
    .unwrap();
    assert_eq!(
        metric(&text, "trackgate_connections", "protocol=\"teltonika\""),
        200.0
    );
    gw.child.kill().unwrap(); // SIGKILL mid-stream
    gw.child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let gw2 = Process::spawn(&args);
    let report = tokio::time::timeout(Duration::from_secs(120), sim)
        .await
        .expect("the devices finish after the restart")
        .unwrap();
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
    assert!(report.generated >= 200 * 5, "{}", report.generated);
    drop(gw2); // SIGKILL again: records may still sit in journal segments

    // Every acked record is in the history, exactly once. Opening the
    // history as a restart does moves leftover journal segments into it.
    let metrics = trackgate::metrics::Metrics::new();
    let history = History::open(&data, metrics.history.clone()).unwrap();
    history.flush().await.unwrap();
    // Every device's whole history, page by page, as the API reads it.
    let mut stored = std::collections::HashMap::new();
    let devices: std::collections::BTreeSet<u64> =
        report.acked_records.iter().map(|r| r.0).collect();
    for imei in devices {
        let mut after = None;
        loop {
            let page = history
                .range(trackgate::history::Range {
                    device: DeviceId::new(&format!("{imei:015}")).unwrap(),
                    from_ms: i64::MIN,
                    to_ms: i64::MAX,
                    limit: 500,
                    after,
                    records: trackgate::history::Records::Positions,
                })
                .await
                .unwrap();
            for p in &page.positions {
                let key = (
                    p.device_id.as_str().to_string(),
                    p.fix_time.timestamp_millis(),
                );
                assert!(
                    stored.insert(key, (p.lat, p.lon)).is_none(),
                    "a record stored twice"
                );
            }
            after = page.next;
            if after.is_none() {
                break;
            }
        }
    }
    assert_eq!(
        history.count().await.unwrap(),
        i64::try_from(stored.len()).unwrap(),
        "no record stored for a device that did not send it"
    );
    drop(history);
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

fn sim_options(protocol: &str, target: std::net::SocketAddr, records: usize) -> SimOptions {
    SimOptions {
        protocol: protocol.into(),
        target: Some(target),
        devices: 20,
        rate: 10.0,
        records,
        duration: 1.0,
        imei_base: 352_000_000_000_000,
        drain: 60.0,
        // Generous: sibling tests load the disk, and a resend after a slow
        // ack would count as a reconnect.
        ack_timeout: 10.0,
        out: None,
    }
}

/// Every protocol the simulator speaks, against the real gateway: each
/// device's records are acked, and the history holds exactly what the
/// devices saw acknowledged, once each, with the coordinates they sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simulated_protocol_is_acked_and_stored_exactly_once() {
    let protocols = trackgate::simulate::simulated();
    assert!(protocols.len() >= 4, "{protocols:?}");
    for protocol in protocols {
        let dir = tempfile::tempdir().unwrap();
        let gw = start(&test_config(dir.path())).await;
        let target = gw.addr(protocol, Transport::Tcp).unwrap();
        let side = trackgate::protocol::find(protocol)
            .unwrap()
            .device_side()
            .unwrap();
        let records = side.max_records().min(3);
        let plan = trackgate::simulate::Plan::new(sim_options(protocol, target, records))
            .unwrap()
            .keeping_acked();
        let report =
            trackgate::simulate::run(plan, tokio_util::sync::CancellationToken::new()).await;
        println!("{protocol}: {}", report.summary());
        assert_eq!(report.unacked, 0, "{protocol}");
        assert_eq!(report.acked, report.generated, "{protocol}");
        // At least one packet per device (a slow disk lets fewer through).
        assert!(
            report.acked >= 20 * records as u64,
            "{protocol}: {}",
            report.acked
        );
        assert_eq!(report.reconnects, 0, "{protocol}");
        assert_eq!(
            report.latency_us.len() as u64,
            report.acked / records as u64
        );
        assert_eq!(
            gw.history.count().await.unwrap(),
            report.acked as i64,
            "{protocol}: stored once each"
        );
        let mut want: std::collections::HashMap<String, Vec<(i64, f64, f64)>> = Default::default();
        for &(n, t, lat, lon) in &report.acked_records {
            want.entry(side.device_id(n))
                .or_default()
                .push((t, lat, lon));
        }
        assert_eq!(want.len(), 20, "{protocol}");
        for (device, mut want) in want {
            want.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let got = stored_fixes(&gw.history, &device).await;
            assert_eq!(got, want, "{protocol} {device}");
        }
        gw.shutdown().await;
    }
}

/// Devices nobody registered get no ack in any simulated protocol (a
/// refused login, silence, or "send again"), and the simulator, like a
/// real device, keeps every record and counts none as acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_devices_keep_their_records_while_the_gateway_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.ingest.accept_unregistered_devices = false;
    let gw = start(&config).await;
    for protocol in trackgate::simulate::simulated() {
        let target = gw.addr(protocol, Transport::Tcp).unwrap();
        let mut opts = sim_options(protocol, target, 1);
        opts.devices = 3;
        opts.duration = 0.5;
        opts.ack_timeout = 0.2;
        let stop = tokio_util::sync::CancellationToken::new();
        let s2 = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            s2.cancel();
        });
        let plan = trackgate::simulate::Plan::new(opts).unwrap();
        let report = trackgate::simulate::run(plan, stop).await;
        println!("{protocol}: {}", report.summary());
        assert_eq!(report.acked, 0, "{protocol}");
        assert!(report.generated >= 3, "{protocol}: {}", report.generated);
        assert_eq!(
            report.unacked, report.generated,
            "{protocol}: nothing dropped"
        );
        assert!(
            report.resent + report.reconnects > 0,
            "{protocol}: tried again"
        );
    }
    assert_eq!(gw.history.count().await.unwrap(), 0);
    gw.shutdown().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_stored_once_read_apart_and_never_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = trackgate::metrics::Metrics::new();
    let h = History::open(dir.path(), metrics.history.clone()).unwrap();
    support::reports_keep_the_store_contract(&h, "dev-r", 1_764_158_400_000).await;
    // And again after a restart: everything compacted into history.db.
    drop(h);
    let h = History::open(dir.path(), metrics.history.clone()).unwrap();
    let page = h
        .range(trackgate::history::Range {
            device: DeviceId::new("dev-r").unwrap(),
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 10,
            after: None,
            records: trackgate::history::Records::Reports,
        })
        .await
        .unwrap();
    assert_eq!(page.reports.len(), 3, "the reports outlive the restart");
    assert_eq!(h.latest_all().await.unwrap().len(), 1);
    support::reports_keep_the_store_contract(&h, "dev-s", 1_764_158_400_000).await;
    assert_eq!(h.count().await.unwrap(), 10);
}
