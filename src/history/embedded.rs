//! The embedded history backend: one writer task fsyncs journal segments
//! before acks (group commit), a compactor thread moves sealed segments
//! into `history.db`, readers merge both. No other service needed.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::journal::{self, Journal};
use super::{Backend, Done, Encoded, Faults, HistoryError, Page, Range, Request, StorageHealth};
use super::{SqliteHistory, QUEUE};
use crate::model::Position;

/// The SQLite journal + `history.db` backend.
pub struct Embedded {
    tx: mpsc::Sender<Request>,
    store: Arc<SqliteHistory>,
    journal: Arc<Journal>,
}

impl Embedded {
    /// Opens the history file in `data_dir`, moves any journal segments an
    /// earlier run left into it, and starts the writer task and the
    /// compactor thread. Commit and compaction failures go to `health`.
    pub fn open(
        data_dir: &std::path::Path,
        metrics: crate::metrics::HistoryMetrics,
        health: Arc<StorageHealth>,
        faults: Arc<Faults>,
    ) -> Result<Self, HistoryError> {
        let store = Arc::new(SqliteHistory::open(data_dir)?);
        let journal = Arc::new(Journal::open(data_dir)?);
        let mut conn = store.writer()?;
        // Room for every page one compaction dirties (the chunks and index
        // entries of up to ~65k devices), so none spills to the WAL twice.
        conn.pragma_update(None, "cache_size", -131_072)?;
        for seq in journal.leftovers() {
            journal::compact(&mut conn, &journal, seq, u64::MAX)?;
        }
        let (jobs, job_rx) = std::sync::mpsc::channel();
        {
            let compactor = journal::Compactor {
                journal: Arc::clone(&journal),
                metrics: metrics.clone(),
                health: Arc::clone(&health),
                faults: Arc::clone(&faults),
            };
            std::thread::Builder::new()
                .name("history-compactor".into())
                .spawn(move || {
                    yield_to_acks();
                    journal::run_compactor(conn, compactor, job_rx)
                })
                .map_err(|e| HistoryError::Storage(format!("compactor thread: {e}")))?;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(journal::run_writer(
            journal::Writer {
                journal: Arc::clone(&journal),
                health,
                faults,
                metrics,
                jobs,
            },
            rx,
        ));
        Ok(Self { tx, store, journal })
    }

    async fn request(&self, make: impl FnOnce(Done) -> Request) -> Result<(), HistoryError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(make(done))
            .await
            .map_err(|_| HistoryError::Stopped)?;
        wait.await.map_err(|_| HistoryError::Stopped)?
    }
}

#[async_trait::async_trait]
impl Backend for Embedded {
    async fn append(&self, rows: Encoded) -> Result<(), HistoryError> {
        self.request(|done| Request::Append {
            rows,
            done: Some(done),
        })
        .await
    }

    async fn append_detached(&self, rows: Encoded) -> Result<(), HistoryError> {
        self.tx
            .send(Request::Append { rows, done: None })
            .await
            .map_err(|_| HistoryError::Stopped)
    }

    async fn range(&self, range: Range) -> Result<Page, HistoryError> {
        let store = Arc::clone(&self.store);
        let journal = Arc::clone(&self.journal);
        blocking(move || store.range(&range, &journal)).await
    }

    async fn latest_all(&self) -> Result<Vec<Position>, HistoryError> {
        let store = Arc::clone(&self.store);
        blocking(move || store.latest_all()).await
    }

    /// Only `history.db`: what is still in the journal is younger than any
    /// retention once [`flush`](Backend::flush) ran.
    async fn purge(&self, before_ms: i64, batch: usize) -> Result<usize, HistoryError> {
        let store = Arc::clone(&self.store);
        blocking(move || store.purge(before_ms, batch)).await
    }

    /// Seals the open journal segment and waits until every record appended
    /// before is in `history.db`.
    async fn flush(&self) -> Result<(), HistoryError> {
        self.request(Request::Flush).await
    }

    async fn count(&self) -> Result<i64, HistoryError> {
        self.flush().await?;
        let store = Arc::clone(&self.store);
        blocking(move || store.count()).await
    }

    fn limit_backlog(&self, records: u64) {
        self.journal.set_limit(records);
    }
}

/// Lowers the calling thread's CPU priority (nice +10; on Linux a
/// thread's own). Compaction is deferred work: when the cores are busy, the
/// connections and commits that devices wait on go first (ack p99 at 50k
/// records/s on two cores: 17.4 against 20.7 ms, means of nine alternated
/// runs; single runs are noisier than that). The journal's backlog bound
/// keeps compaction from being put off for good.
fn yield_to_acks() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        // Relative to the process's own nice value, which may be set already.
        let lowered = getpriority_process(None)
            .and_then(|n| setpriority_process(None, (n + COMPACTOR_NICE).min(19)));
        if let Err(e) = lowered {
            tracing::warn!(error = %e, "cannot lower the compactor's priority");
        }
    }
}

/// How much the compactor thread's nice value is raised.
const COMPACTOR_NICE: i32 = 10;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HistoryError> + Send + 'static,
) -> Result<T, HistoryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HistoryError::Storage(format!("reader task: {e}")))?
}
