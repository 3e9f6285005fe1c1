//! Durable position history. Every accepted position is appended through
//! one writer with group commit: it takes what is queued (up to
//! [`MAX_BATCH`] records, waiting at most [`GATHER`] for more), commits once
//! with a real fsync, then releases every waiter — so a device is acked only
//! for records that are on disk, and concurrent devices share a commit.
//!
//! ```text
//! rows.rs     Position ⇄ the stored row (attributes as JSON text)
//! journal.rs  the ingest journal: segments the writer fsyncs before acks,
//!             compacted into history.db by device
//! sqlite.rs   the SQLite history file: schema, queries, purge
//! ```
//!
//! The writer's queue is bounded: when storage is slow or failing, senders
//! wait, connection tasks stop reading their sockets, and memory stays flat.

mod journal;
mod rows;
mod sqlite;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

pub use journal::{SEGMENT_AGE, SEGMENT_ROWS};
pub use rows::{protocol_name, StoredRow};
pub use sqlite::SqliteHistory;

use crate::model::{DeviceId, Position};

/// Most records committed in one transaction.
pub const MAX_BATCH: usize = 512;
/// How long the writer waits for more records before committing.
pub const GATHER: Duration = Duration::from_millis(1);
/// Appends queued towards the writer before senders wait.
const QUEUE: usize = 4096;

/// Why history could not take or give positions.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HistoryError {
    #[error("history storage failed: {0}")]
    Storage(String),
    #[error("history writer stopped")]
    Stopped,
    #[error("bad cursor {0:?}")]
    Cursor(String),
}

impl From<rusqlite::Error> for HistoryError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

/// Whether storage currently commits and compacts, and why not; shared
/// with `/health`.
#[derive(Debug, Default)]
pub struct StorageHealth {
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Journal segments cannot be moved into `history.db`: acks go on (the
    /// records are on disk in the journal) but the journal only grows.
    compaction_failing: AtomicBool,
    compaction_error: Mutex<Option<String>>,
}

impl StorageHealth {
    pub fn is_healthy(&self) -> bool {
        !self.failing.load(Ordering::Relaxed) && !self.compaction_failing.load(Ordering::Relaxed)
    }
    /// The commit error while commits fail, else the compaction error.
    pub fn last_error(&self) -> Option<String> {
        if self.failing.load(Ordering::Relaxed) {
            return self.last_error.lock().clone();
        }
        self.compaction_failing
            .load(Ordering::Relaxed)
            .then(|| self.compaction_error.lock().clone())
            .flatten()
    }
    fn set(&self, r: &Result<(), HistoryError>) {
        record(&self.failing, &self.last_error, r, "");
    }
    fn set_compaction(&self, r: &Result<(), HistoryError>) {
        record(
            &self.compaction_failing,
            &self.compaction_error,
            r,
            "journal compaction: ",
        );
    }
}

/// A query over one device's history.
#[derive(Debug, Clone)]
pub struct Range {
    pub device: DeviceId,
    /// Inclusive, epoch ms.
    pub from_ms: i64,
    /// Exclusive, epoch ms.
    pub to_ms: i64,
    pub limit: usize,
    /// Continue after this position of an earlier page.
    pub after: Option<Cursor>,
}

/// Where a page ended: the last row's unique key (fix time, coordinates),
/// which orders rows the same wherever they are stored; opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub fix_ms: i64,
    pub lat: f64,
    pub lon: f64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!(
            "{}.{:x}.{:x}",
            self.fix_ms,
            self.lat.to_bits(),
            self.lon.to_bits()
        )
    }
    pub fn decode(s: &str) -> Result<Self, HistoryError> {
        let bad = || HistoryError::Cursor(s.chars().take(60).collect());
        let mut parts = s.split('.');
        let (Some(t), Some(lat), Some(lon), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let coord = |x: &str| {
            u64::from_str_radix(x, 16)
                .ok()
                .map(f64::from_bits)
                .filter(|v| v.is_finite())
        };
        Ok(Self {
            fix_ms: t.parse().map_err(|_| bad())?,
            lat: coord(lat).ok_or_else(bad)?,
            lon: coord(lon).ok_or_else(bad)?,
        })
    }
}

/// One page of a device's history.
#[derive(Debug, Clone)]
pub struct Page {
    pub positions: Vec<Position>,
    /// Set when more positions follow in the range.
    pub next: Option<Cursor>,
}

fn record(
    failing: &AtomicBool,
    error: &Mutex<Option<String>>,
    r: &Result<(), HistoryError>,
    prefix: &str,
) {
    match r {
        Ok(()) => failing.store(false, Ordering::Relaxed),
        Err(e) => {
            *error.lock() = Some(format!("{prefix}{e}"));
            failing.store(true, Ordering::Relaxed);
        }
    }
}

/// Fault injection for tests: while set, every commit (or every journal
/// compaction) fails as a full disk would. Only the storage-failure tests
/// use it.
#[derive(Debug, Default)]
pub struct Faults {
    pub fail_commits: AtomicBool,
    pub fail_compactions: AtomicBool,
}

enum Request {
    /// Store `rows`; answer on `done` once they are on disk.
    Append {
        rows: Vec<StoredRow>,
        done: Option<oneshot::Sender<Result<(), HistoryError>>>,
    },
    /// Seal the open segment and answer once everything before is compacted.
    Flush(oneshot::Sender<Result<(), HistoryError>>),
}

/// Handle to the history: append through the writer, read directly.
#[derive(Clone)]
pub struct History {
    tx: mpsc::Sender<Request>,
    store: Arc<SqliteHistory>,
    journal: Arc<journal::Journal>,
    pub health: Arc<StorageHealth>,
    pub faults: Arc<Faults>,
}

impl History {
    /// Opens the history file in `data_dir`, moves any journal segments an
    /// earlier run left into it, and starts the writer task and the
    /// compactor thread.
    pub fn open(
        data_dir: &std::path::Path,
        metrics: crate::metrics::HistoryMetrics,
    ) -> Result<Self, HistoryError> {
        let store = Arc::new(SqliteHistory::open(data_dir)?);
        let journal = Arc::new(journal::Journal::open(data_dir)?);
        let mut conn = store.writer()?;
        // Room for every page one compaction dirties (index leaves of
        // ~65k devices), so none spills to the WAL twice.
        conn.pragma_update(None, "cache_size", -131_072)?;
        for seq in journal.leftovers() {
            journal::compact(&mut conn, &journal, seq)?;
        }
        let (jobs, job_rx) = std::sync::mpsc::channel();
        let health = Arc::new(StorageHealth::default());
        let faults = Arc::new(Faults::default());
        {
            let compactor = journal::Compactor {
                journal: Arc::clone(&journal),
                metrics: metrics.clone(),
                health: Arc::clone(&health),
                faults: Arc::clone(&faults),
            };
            std::thread::Builder::new()
                .name("history-compactor".into())
                .spawn(move || journal::run_compactor(conn, compactor, job_rx))
                .map_err(|e| HistoryError::Storage(format!("compactor thread: {e}")))?;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(journal::run_writer(
            journal::Writer {
                journal: Arc::clone(&journal),
                health: Arc::clone(&health),
                faults: Arc::clone(&faults),
                metrics,
                jobs,
            },
            rx,
        ));
        Ok(Self {
            tx,
            store,
            journal,
            health,
            faults,
        })
    }

    /// Appends `positions` and returns once they are committed (fsync'd).
    /// A position already stored (same device, fix time and coordinates) is
    /// not stored again and still counts as committed.
    pub async fn append(&self, positions: &[Position]) -> Result<(), HistoryError> {
        if positions.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        let rows = positions.iter().map(StoredRow::from_position).collect();
        self.tx
            .send(Request::Append {
                rows,
                done: Some(done),
            })
            .await
            .map_err(|_| HistoryError::Stopped)?;
        wait.await.map_err(|_| HistoryError::Stopped)?
    }

    /// Queues `positions` without waiting for the commit (`ack = "received"`).
    pub async fn append_detached(&self, positions: &[Position]) -> Result<(), HistoryError> {
        let rows = positions.iter().map(StoredRow::from_position).collect();
        self.tx
            .send(Request::Append { rows, done: None })
            .await
            .map_err(|_| HistoryError::Stopped)
    }

    /// One page of `range`, oldest first.
    pub async fn range(&self, range: Range) -> Result<Page, HistoryError> {
        let store = Arc::clone(&self.store);
        let journal = Arc::clone(&self.journal);
        blocking(move || store.range(&range, &journal)).await
    }

    /// The latest stored position of every device (start-up rebuild).
    pub async fn latest_all(&self) -> Result<Vec<Position>, HistoryError> {
        let store = Arc::clone(&self.store);
        blocking(move || store.latest_all()).await
    }

    /// Deletes up to `batch` positions received before `before_ms`; returns
    /// how many went. Small batches keep each write transaction short.
    pub async fn purge(&self, before_ms: i64, batch: usize) -> Result<usize, HistoryError> {
        let store = Arc::clone(&self.store);
        blocking(move || store.purge(before_ms, batch)).await
    }

    /// Seals the open journal segment and waits until every record
    /// appended before is in `history.db`.
    pub async fn flush(&self) -> Result<(), HistoryError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request::Flush(done))
            .await
            .map_err(|_| HistoryError::Stopped)?;
        wait.await.map_err(|_| HistoryError::Stopped)?
    }

    /// Positions stored in all, after a [`flush`](Self::flush) (tests and
    /// the crash check).
    pub async fn count(&self) -> Result<i64, HistoryError> {
        self.flush().await?;
        let store = Arc::clone(&self.store);
        blocking(move || store.count()).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HistoryError> + Send + 'static,
) -> Result<T, HistoryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HistoryError::Storage(format!("reader task: {e}")))?
}

/// Purges positions older than `retention` in small batches until none are
/// left, then sleeps `every`; stops with `stop`.
pub async fn run_retention(
    history: History,
    retention: Duration,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let cutoff = chrono::Utc::now().timestamp_millis()
            - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        // Records still in the journal are not in `history.db` yet: a purge
        // that ran before their compaction would let old ones outlive the
        // retention by a whole round.
        // A compaction that keeps failing holds the flush: stop still wins.
        tokio::select! {
            _ = stop.cancelled() => return,
            r = history.flush() => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "history retention could not flush the journal");
                }
            }
        }
        loop {
            match history.purge(cutoff, 1000).await {
                Ok(0) => break,
                Ok(n) => {
                    tracing::debug!(purged = n, "history retention");
                    // Yield between batches so ingestion's commits interleave.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "history retention failed; retrying later");
                    break;
                }
            }
            if stop.is_cancelled() {
                return;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
