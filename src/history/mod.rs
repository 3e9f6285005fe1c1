//! Durable position history. Every accepted position is appended through
//! one writer with group commit: it takes what is queued (up to
//! [`MAX_BATCH`] records, waiting at most [`GATHER`] for more), commits once
//! with a real fsync, then releases every waiter — so a device is acked only
//! for records that are on disk, and concurrent devices share a commit.
//!
//! ```text
//! rows.rs    Position ⇄ the stored row (attributes as JSON text)
//! sqlite.rs  the SQLite history file: schema, writer thread, queries, purge
//! ```
//!
//! The writer's queue is bounded: when storage is slow or failing, senders
//! wait, connection tasks stop reading their sockets, and memory stays flat.

mod rows;
mod sqlite;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

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

/// Whether storage currently commits, and why not; shared with `/health`.
#[derive(Debug, Default)]
pub struct StorageHealth {
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl StorageHealth {
    pub fn is_healthy(&self) -> bool {
        !self.failing.load(Ordering::Relaxed)
    }
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }
    fn set(&self, r: &Result<(), HistoryError>) {
        match r {
            Ok(()) => self.failing.store(false, Ordering::Relaxed),
            Err(e) => {
                self.failing.store(true, Ordering::Relaxed);
                *self.last_error.lock() = Some(e.to_string());
            }
        }
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

/// Where a page ended: fix time and storage order, opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub fix_ms: i64,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.fix_ms, self.id)
    }
    pub fn decode(s: &str) -> Result<Self, HistoryError> {
        let bad = || HistoryError::Cursor(s.chars().take(40).collect());
        let (a, b) = s.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            fix_ms: a.parse().map_err(|_| bad())?,
            id: b.parse().map_err(|_| bad())?,
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

/// Fault injection for tests: while set, every commit fails as a full disk
/// would. Only the storage-failure test uses it.
#[derive(Debug, Default)]
pub struct Faults {
    pub fail_commits: AtomicBool,
}

struct Request {
    rows: Vec<StoredRow>,
    done: Option<oneshot::Sender<Result<(), HistoryError>>>,
}

/// Handle to the history: append through the writer, read directly.
#[derive(Clone)]
pub struct History {
    tx: mpsc::Sender<Request>,
    store: Arc<SqliteHistory>,
    pub health: Arc<StorageHealth>,
    pub faults: Arc<Faults>,
}

impl History {
    /// Opens the history file in `data_dir` and starts its writer task.
    pub fn open(
        data_dir: &std::path::Path,
        metrics: crate::metrics::HistoryMetrics,
    ) -> Result<Self, HistoryError> {
        let store = Arc::new(SqliteHistory::open(data_dir)?);
        let (tx, rx) = mpsc::channel(QUEUE);
        let health = Arc::new(StorageHealth::default());
        let faults = Arc::new(Faults::default());
        let writer = store.writer()?;
        tokio::spawn(sqlite::run_writer(
            writer,
            rx,
            Arc::clone(&health),
            Arc::clone(&faults),
            metrics,
        ));
        Ok(Self {
            tx,
            store,
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
            .send(Request {
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
            .send(Request { rows, done: None })
            .await
            .map_err(|_| HistoryError::Stopped)
    }

    /// One page of `range`, oldest first.
    pub async fn range(&self, range: Range) -> Result<Page, HistoryError> {
        let store = Arc::clone(&self.store);
        blocking(move || store.range(&range)).await
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

    /// Positions stored in all (tests and the crash check).
    pub async fn count(&self) -> Result<i64, HistoryError> {
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
