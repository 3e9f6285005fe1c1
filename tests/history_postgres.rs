//! The history in a real PostgreSQL: the same contract as the embedded
//! store (stored once, pages in key order, latest per device, purge), a
//! gateway whose acks wait for PostgreSQL's commit and stop while it fails,
//! a restart rebuilt from it, and two gateway nodes sharing one history.
//!
//! Needs a server: `TRACKGATE_TEST_POSTGRES=postgres://user@host/db` (a
//! role that may create databases; each test makes and drops its own).
//! `.ci/run` sets it and runs these with `--include-ignored`; without it
//! they fail loudly rather than pass unseen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use support::{all_pages, fix, login_teltonika as login, send_avl as send, start, test_config};
use trackgate::history::{History, Range};
use trackgate::model::DeviceId;
use trackgate::protocol::Transport;
use trackgate::simulate::codec8_packet;

const T0: i64 = 1_764_158_400_000;

/// A database of its own for one test, dropped at the end.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    async fn create() -> Self {
        let admin = std::env::var("TRACKGATE_TEST_POSTGRES").expect(
            "TRACKGATE_TEST_POSTGRES=postgres://… is not set: these tests need a real \
             PostgreSQL (.ci/run sets it)",
        );
        let name = format!(
            "trackgate_test_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin)
            .await
            .expect("connect to TRACKGATE_TEST_POSTGRES");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Self { admin, name, url }
    }

    async fn drop(self) {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.admin)
            .await
            .unwrap();
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&pool)
            .await
            .unwrap();
    }

    /// (device, fix time, lat) of every stored row, read with SQL.
    async fn rows(&self) -> Vec<(String, i64, f64)> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .unwrap();
        sqlx::query_as(
            "SELECT device_id, fix_ms, lat FROM positions ORDER BY device_id, fix_ms, lat",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TRACKGATE_TEST_POSTGRES (run by .ci/run)"]
async fn the_postgres_history_keeps_the_store_contract() {
    let db = Database::create().await;
    let metrics = trackgate::metrics::Metrics::new();
    let h = History::postgres(&db.url, metrics.history.clone())
        .await
        .unwrap();
    let evens: Vec<_> = (0..10).map(|i| fix("dev-a", T0 + i * 2000, 50.0)).collect();
    let odds: Vec<_> = (0..10)
        .map(|i| fix("dev-a", T0 + i * 2000 + 1000, 50.5))
        .collect();
    // Concurrent appends share commits; resends are stored once.
    let (a, b, c) = tokio::join!(h.append(&evens), h.append(&odds), h.append(&evens[2..5]));
    a.unwrap();
    b.unwrap();
    c.unwrap();
    h.append(&odds[..3]).await.unwrap();
    // Same device and time, other coordinates: a distinct record.
    h.append(&[fix("dev-a", T0, 49.0)]).await.unwrap();
    // An older fix arriving last does not become the latest.
    h.append(&[fix("dev-b", T0 + 5000, 1.0)]).await.unwrap();
    h.append(&[fix("dev-b", T0 + 1000, 2.0)]).await.unwrap();
    // A fix stamped a month ahead of its receipt is stored, never the latest.
    let mut ahead = fix("dev-b", T0 + 30 * 86_400_000, 3.0);
    ahead.received_time = fix("dev-b", T0 + 6000, 0.0).received_time;
    h.append(&[ahead]).await.unwrap();

    let mut want: Vec<(i64, f64)> = (0..20)
        .map(|i| (T0 + i * 1000, if i % 2 == 0 { 50.0 } else { 50.5 }))
        .collect();
    want.insert(0, (T0, 49.0));
    for limit in [1, 3, 7, 100] {
        assert_eq!(all_pages(&h, "dev-a", limit).await, want, "limit {limit}");
    }
    assert_eq!(
        all_pages(&h, "dev-b", 10).await,
        vec![
            (T0 + 1000, 2.0),
            (T0 + 5000, 1.0),
            (T0 + 30 * 86_400_000, 3.0)
        ]
    );
    assert_eq!(h.count().await.unwrap(), 24);
    assert_eq!(db.rows().await.len(), 24, "what SQL sees");
    let mut latest: Vec<_> = h
        .latest_all()
        .await
        .unwrap()
        .into_iter()
        .map(|p| {
            (
                p.device_id.as_str().to_string(),
                p.fix_time.timestamp_millis(),
                p.lat,
            )
        })
        .collect();
    latest.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        latest,
        vec![
            ("dev-a".to_string(), T0 + 19_000, 50.5),
            ("dev-b".to_string(), T0 + 5000, 1.0)
        ]
    );
    // A time window, and a page of it.
    let page = h
        .range(Range {
            device: DeviceId::new("dev-a").unwrap(),
            from_ms: T0 + 3000,
            to_ms: T0 + 6000,
            limit: 2,
            after: None,
            records: trackgate::history::Records::Positions,
        })
        .await
        .unwrap();
    let got: Vec<_> = page
        .positions
        .iter()
        .map(|p| p.fix_time.timestamp_millis())
        .collect();
    assert_eq!(got, vec![T0 + 3000, T0 + 4000]);
    assert!(page.next.is_some());

    // Retention: received before T0 + 5010 goes, two rows a batch, oldest
    // first; dev-b's latest fix goes with it, so it leaves `latest`.
    let cutoff = T0 + 5011;
    let mut purged = Vec::new();
    loop {
        let n = h.purge(cutoff, 2).await.unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= 2);
        purged.push(n);
    }
    // dev-a: T0 (two records) .. T0+5000 → 7; dev-b: both → 2 (its
    // month-ahead fix was received later and stays, still not the latest).
    assert_eq!(purged.iter().sum::<usize>(), 9);
    assert_eq!(h.count().await.unwrap(), 15);
    let latest = h.latest_all().await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].device_id.as_str(), "dev-a");
    support::reports_keep_the_store_contract(&h, "dev-r", T0).await;
    drop(h);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TRACKGATE_TEST_POSTGRES (run by .ci/run)"]
async fn two_gateways_ack_after_the_postgres_commit_and_share_one_history() {
    const IMEI: u64 = 356_307_042_441_013;
    let db = Database::create().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut config_a = test_config(dir_a.path());
    config_a.history.postgres_url = Some(db.url.clone());
    let mut config_b = test_config(dir_b.path());
    config_b.history.postgres_url = Some(db.url.clone());
    let a = start(&config_a).await;
    let b = start(&config_b).await;
    let (tcp_a, tcp_b) = (
        a.addr("teltonika", Transport::Tcp).unwrap(),
        b.addr("teltonika", Transport::Tcp).unwrap(),
    );
    let first = codec8_packet(&[
        (T0, 52.5, 13.4, 60, 90),
        (T0 + 1000, 52.6, 13.5, 61, 91),
        (T0 + 2000, 52.7, 13.6, 62, 92),
    ]);
    let second = codec8_packet(&[(T0 + 3000, 52.8, 13.7, 63, 93)]);
    let (p1, p2) = (first.clone(), second.clone());
    let faults = a.history.faults.clone();
    let metrics = a.metrics.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = login(tcp_a, IMEI);
        assert_eq!(send(&mut s, &p1, Duration::from_secs(5)), Some(3));
        // PostgreSQL refuses the commit: no ack, the device keeps its data.
        faults.fail_commits.store(true, Ordering::SeqCst);
        assert_eq!(send(&mut s, &p2, Duration::from_millis(700)), None);
        // The fault stays until the commit has met it (a slow machine may
        // not have tried within the device's wait).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while support::metric(
            &metrics.render(),
            "trackgate_history_commit_errors_total",
            "",
        ) < 1.0
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        faults.fail_commits.store(false, Ordering::SeqCst);
        // The device reconnects (to the other node, say) and resends both.
        let mut s = login(tcp_b, IMEI);
        assert_eq!(send(&mut s, &p1, Duration::from_secs(5)), Some(3));
        assert_eq!(send(&mut s, &p2, Duration::from_secs(5)), Some(1));
    })
    .await
    .unwrap();
    // Acked means committed: visible to SQL from outside at once, each once.
    let rows = db.rows().await;
    let want: Vec<_> = (0..4)
        .map(|i| (IMEI.to_string(), T0 + i * 1000, 52.5 + i as f64 / 10.0))
        .collect();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (got, want) in rows.iter().zip(&want) {
        assert_eq!((&got.0, got.1), (&want.0, want.1));
        assert!((got.2 - want.2).abs() < 1e-6);
    }
    let text = trackgate::metrics::Metrics::render(&a.metrics);
    assert!(
        support::metric(&text, "trackgate_history_commit_errors_total", "") >= 1.0,
        "the failed commit is counted"
    );
    a.shutdown().await;
    b.shutdown().await;

    // A restarted node rebuilds its engine from PostgreSQL.
    let a = start(&config_a).await;
    assert_eq!(a.restored.0, 1);
    let p = a
        .engine
        .get(&DeviceId::new(&IMEI.to_string()).unwrap())
        .unwrap();
    assert_eq!(p.fix_time.timestamp_millis(), T0 + 3000);
    assert!((p.lat - 52.8).abs() < 1e-6);
    assert_eq!(a.history.count().await.unwrap(), 4);
    a.shutdown().await;
    db.drop().await;
}

/// Runs in plain `cargo test`: no server needed to find none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_stops_the_start_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // bound and dropped: nothing listens there
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.history.postgres_url = Some(format!("postgres://tg@127.0.0.1:{port}/tg"));
    let e = match trackgate::app::start(&config).await {
        Ok(_) => panic!("started without its history store"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("postgres"), "{e}");
}
