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
                    crate::dedicated::lower_priority();
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

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HistoryError> + Send + 'static,
) -> Result<T, HistoryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HistoryError::Storage(format!("reader task: {e}")))?
}
