//! Start-up with a large history: the time to rebuild the latest-position
//! engine and its spatial index from `history.db` (what `app::start` does),
//! with N devices (default 1,000,000; `TRACKGATE_BENCH_DEVICES`), against
//! the time to write that history in the same run as a reference.
//!
//! The history is written by a child process (this bench run again) that
//! exits as soon as its last record is acked, leaving its journal to the
//! restart as a crash right after a burst would: reopening it in the same
//! process would race the first history's compactor thread for the file.
//!
//! ```sh
//! cargo bench --bench history
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use chrono::{TimeZone, Utc};
use trackgate::engine::Engine;
use trackgate::history::History;
use trackgate::model::{Attributes, DeviceId, Position};

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("TRACKGATE_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Ok(dir) = std::env::var(WRITE_INTO) {
        let write = rt.block_on(write(std::path::Path::new(&dir), n));
        println!("{}", write.as_secs_f64());
        // Abruptly, compaction unfinished: what a crash leaves.
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--bench")
        .env(WRITE_INTO, dir.path())
        .output()
        .unwrap();
    assert!(child.status.success(), "{child:?}");
    let write: f64 = String::from_utf8_lossy(&child.stdout)
        .trim()
        .parse()
        .unwrap();
    rt.block_on(async {
        let metrics = trackgate::metrics::Metrics::new();
        let restart = Instant::now();
        let history = History::open(dir.path(), metrics.history.clone()).unwrap();
        let latest = history.latest_all().await.unwrap();
        let read = restart.elapsed();
        let engine = Engine::new();
        for p in latest {
            engine.update(p);
        }
        engine.refresh_index();
        let total = restart.elapsed();
        assert_eq!(engine.len(), n);
        println!(
            "history restart with {n} devices: read {:.2} s, engine + index {:.2} s, total {:.2} s (writing that history took {:.2} s: {:.0} records/s)",
            read.as_secs_f64(),
            (total - read).as_secs_f64(),
            total.as_secs_f64(),
            write,
            n as f64 / write
        );
    });
}

/// Where the child process writes the history.
const WRITE_INTO: &str = "TRACKGATE_BENCH_WRITE_INTO";

/// Writes one position for each of `n` devices into the history in `dir`;
/// returns how long the acked writes took.
async fn write(dir: &std::path::Path, n: usize) -> std::time::Duration {
    let metrics = trackgate::metrics::Metrics::new();
    let history = History::open(dir, metrics.history.clone()).unwrap();
    let t0 = Utc.timestamp_millis_opt(1_764_158_400_000).unwrap();
    let write = Instant::now();
    // 16 writers in parallel, as many devices' connections would be.
    let mut tasks = Vec::new();
    for w in 0..16 {
        let h = history.clone();
        tasks.push(tokio::spawn(async move {
            let mut batch = Vec::with_capacity(512);
            for i in (w..n).step_by(16) {
                batch.push(Position {
                    device_id: DeviceId::new(&format!("{:015}", 350_000_000_000_000u64 + i as u64))
                        .unwrap(),
                    fix_time: t0,
                    received_time: t0,
                    lat: 47.0 + (i % 1000) as f64 * 0.007,
                    lon: 6.0 + (i / 1000) as f64 * 0.009,
                    altitude_m: 100.0,
                    speed_kmh: 60.0,
                    course_deg: 90.0,
                    satellites: Some(9),
                    valid: true,
                    protocol: "teltonika",
                    attributes: Attributes::new(),
                });
                if batch.len() == 512 {
                    h.append(&batch).await.unwrap();
                    batch.clear();
                }
            }
            h.append(&batch).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    write.elapsed()
}
