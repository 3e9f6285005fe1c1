//! Durable position history behind one boundary ([`Backend`]), so a shared
//! PostgreSQL store can take the embedded one's place without the pipeline
//! or the API noticing. Every accepted position is appended through one
//! writer with group commit: it takes what is queued (up to
//! [`MAX_BATCH`] records, waiting at most [`GATHER`] for more), commits once
//! with a real fsync, then releases every waiter — so a device is acked only
//! for records that are on disk, and concurrent devices share a commit.
//!
//! ```text
//! embedded.rs the default backend: writer task, journal, compactor
//! postgres.rs the shared backend for several gateway nodes
//! rows.rs     Position ⇄ the stored row (attributes as JSON text)
//! segment.rs  checksummed frames of rows: journal segments, history chunks
//! journal.rs  the ingest journal: segments the writer fsyncs before acks,
//!             compacted into history.db by device
//! sqlite.rs   the SQLite history file: chunks of one device's records,
//!             schema, queries, purge
//! ```
//!
//! The writer's queue is bounded: when storage is slow or failing, senders
//! wait, connection tasks stop reading their sockets, and memory stays flat.

mod embedded;
mod journal;
pub use journal::MAX_BACKLOG as MAX_JOURNAL_RECORDS;
mod postgres;
mod rows;
mod segment;
mod sqlite;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

pub use embedded::Embedded;
pub use journal::{SEGMENT_AGE, SEGMENT_ROWS};
pub use postgres::Postgres;
pub use rows::{protocol_name, StoredRow};
pub use segment::Encoded;
pub use sqlite::SqliteHistory;

use crate::config::AckMode;
use crate::model::{DeviceId, Position, Report};

/// Most records committed in one transaction. A 1 ms gather stays far
/// below it at the rates one node sees; it is reached only when a backlog
/// is already queued, and then a bigger commit carries more records per
/// fsync (10-record packets at full load: 262k/s with 512, 316k/s with
/// 2048, 321k/s with 8192 — benches/README.md).
pub const MAX_BATCH: usize = 2048;
/// How long the writer waits for more records before committing.
pub const GATHER: Duration = Duration::from_millis(1);
/// A commit running longer than this is reported (`/health` degraded, the
/// healthy gauge 0, an error logged each time it passes again) until it
/// ends.
pub const STALLED_AFTER: Duration = Duration::from_secs(5);
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
    /// records are on disk in the journal) until the journal holds
    /// `history.max_journal_records`.
    compaction_failing: AtomicBool,
    compaction_error: Mutex<Option<String>>,
    /// A commit has been running, or waiting for a full journal's
    /// compaction, for longer than [`STALLED_AFTER`] (a disk that hangs, a
    /// database locked too long): nothing is acked meanwhile.
    stalled: AtomicBool,
    stall_error: Mutex<Option<String>>,
}

impl StorageHealth {
    pub fn is_healthy(&self) -> bool {
        !self.failing.load(Ordering::Relaxed)
            && !self.compaction_failing.load(Ordering::Relaxed)
            && !self.stalled.load(Ordering::Relaxed)
    }
    /// The commit error while commits fail or hang, else the compaction
    /// error.
    pub fn last_error(&self) -> Option<String> {
        if self.stalled.load(Ordering::Relaxed) {
            return self.stall_error.lock().clone();
        }
        if self.failing.load(Ordering::Relaxed) {
            return self.last_error.lock().clone();
        }
        self.compaction_failing
            .load(Ordering::Relaxed)
            .then(|| self.compaction_error.lock().clone())
            .flatten()
    }
    /// A commit ended with `r` (and so no longer hangs).
    fn set(&self, r: &Result<(), HistoryError>) {
        self.stalled.store(false, Ordering::Relaxed);
        record(&self.failing, &self.last_error, r, "");
    }
    /// The commit in progress has been running for `running`.
    fn set_stalled(&self, running: Duration) {
        let e = HistoryError::Storage(format!(
            "a commit has not completed for {} s; nothing is acked meanwhile",
            running.as_secs()
        ));
        record(&self.stalled, &self.stall_error, &Err(e), "");
    }
    /// Commits have waited `waited` for the compactor (journal full).
    fn set_throttled(&self, waited: Duration) {
        let e = HistoryError::Storage(format!(
            "acks have waited {} s for journal compaction (history.max_journal_records reached)",
            waited.as_secs()
        ));
        record(&self.stalled, &self.stall_error, &Err(e), "");
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
    /// Continue after this record of an earlier page.
    pub after: Option<Cursor>,
    /// Positions or reports.
    pub records: Records,
}

/// Which of a device's records a [`Range`] reads: its fixes, or the
/// records it sent without one (alarms, cell lists, status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Records {
    #[default]
    Positions,
    Reports,
}

impl Range {
    /// Whether a stored row with this key belongs on the range's page: its
    /// kind, inside `[from, to)`, after the cursor (in the key's total
    /// order, which PostgreSQL's `ORDER BY` shares: NaN above every number).
    pub(crate) fn wants(&self, fix_ms: i64, lat: f64, lon: f64) -> bool {
        let row = Cursor { fix_ms, lat, lon };
        (lat.is_nan() == (self.records == Records::Reports))
            && fix_ms >= self.from_ms
            && fix_ms < self.to_ms
            && self
                .after
                .is_none_or(|a| sqlite::key_order(&row, &a).is_gt())
    }
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
        // A report's latitude is NaN (one NaN: the one it is stored with).
        let coord = |x: &str| {
            u64::from_str_radix(x, 16)
                .ok()
                .map(f64::from_bits)
                .map(|v| if v.is_nan() { f64::NAN } else { v })
                .filter(|v| !v.is_infinite())
        };
        Ok(Self {
            fix_ms: t.parse().map_err(|_| bad())?,
            lat: coord(lat).ok_or_else(bad)?,
            lon: coord(lon).ok_or_else(bad)?,
        })
    }
}

/// One page of a device's history.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub positions: Vec<Position>,
    /// For [`Records::Reports`]: each report and when it was received.
    pub reports: Vec<(Report, chrono::DateTime<chrono::Utc>)>,
    /// Set when more records follow in the range.
    pub next: Option<Cursor>,
}

/// Where a writer answers: `Ok` once the records are committed.
type Done = tokio::sync::oneshot::Sender<Result<(), HistoryError>>;

/// What a backend's writer is asked to do.
enum Request {
    /// Store `rows`; answer on `done` (if any) once they are durable.
    Append { rows: Encoded, done: Option<Done> },
    /// Answer once everything appended before is where queries, purges and
    /// counts see it.
    Flush(Done),
}

/// What one group commit takes.
#[derive(Default)]
struct Gathered {
    /// Each append's rows, in arrival order.
    rows: Vec<Encoded>,
    /// The appends' waiters (a detached append has none).
    waiters: Vec<Done>,
    flushes: Vec<Done>,
    records: usize,
}

impl Gathered {
    /// Adds `r`; true once the batch is complete: [`MAX_BATCH`] records, or
    /// a flush (nothing after it joins).
    fn add(&mut self, r: Request) -> bool {
        match r {
            Request::Append { rows, done } => {
                self.records += rows.len();
                self.rows.push(rows);
                self.waiters.extend(done);
            }
            Request::Flush(done) => self.flushes.push(done),
        }
        self.records >= MAX_BATCH || !self.flushes.is_empty()
    }
}

/// Takes `first` and whatever else queues within [`GATHER`] of it, up to
/// [`MAX_BATCH`] records; a flush ends the batch (nothing after it joins).
async fn gather(first: Request, rx: &mut tokio::sync::mpsc::Receiver<Request>) -> Gathered {
    use tokio::sync::mpsc::error::TryRecvError;
    let mut g = Gathered::default();
    let deadline = tokio::time::Instant::now() + GATHER;
    let mut next = Some(first);
    while let Some(r) = next {
        if g.add(r) {
            break;
        }
        next = match rx.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Disconnected) => None,
            Err(TryRecvError::Empty) => tokio::time::timeout_at(deadline, rx.recv())
                .await
                .ok()
                .flatten(),
        };
    }
    g
}

/// [`gather`] on a thread that may block (the embedded writer's commit
/// thread): takes `first` and what is queued, sleeps once until `deadline`
/// and takes what queued meanwhile. A tokio timer fires on a millisecond
/// tick, and only when a busy worker gets to it: its "1 ms" gather held
/// appends 1.4 ms on average and 3 ms at p99 at 50k records/s, and every
/// append arriving meanwhile woke the waiting writer. A thread's sleep
/// ends within tens of microseconds and nothing wakes it early.
fn gather_until(
    first: Request,
    rx: &mut tokio::sync::mpsc::Receiver<Request>,
    deadline: std::time::Instant,
) -> Gathered {
    let mut g = Gathered::default();
    let mut slept = false;
    let mut next = Some(first);
    while let Some(r) = next {
        if g.add(r) {
            break;
        }
        next = match rx.try_recv() {
            Ok(r) => Some(r),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) if !slept => {
                slept = true;
                std::thread::sleep(deadline.saturating_duration_since(std::time::Instant::now()));
                rx.try_recv().ok()
            }
            Err(_) => None,
        };
    }
    g
}

/// The first `limit` of `rows` (key order, at most `limit + 1` given) as a
/// page, with the cursor set when more follow.
fn page_from_rows(mut rows: Vec<StoredRow>, limit: usize) -> Page {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = rows.last().filter(|_| more).map(|r| Cursor {
        fix_ms: r.fix_ms,
        lat: r.lat,
        lon: r.lon,
    });
    let mut page = Page {
        next,
        ..Page::default()
    };
    for r in rows {
        if r.is_report() {
            page.reports.extend(r.into_report());
        } else {
            page.positions.extend(r.into_position());
        }
    }
    page
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

/// Awaits `commit` (of `records()` records, as far as known); each time
/// it has run for another [`STALLED_AFTER`] it is reported as stalled,
/// until it ends and its result is recorded by the caller.
async fn watch<T>(
    commit: impl std::future::Future<Output = T>,
    health: &StorageHealth,
    metrics: &crate::metrics::HistoryMetrics,
    records: impl Fn() -> usize,
) -> T {
    let started = std::time::Instant::now();
    tokio::pin!(commit);
    loop {
        match tokio::time::timeout(STALLED_AFTER, &mut commit).await {
            Ok(done) => return done,
            Err(_) => {
                health.set_stalled(started.elapsed());
                metrics.healthy.set(0);
                tracing::error!(
                    seconds = started.elapsed().as_secs(),
                    records = records(),
                    "history commit has not completed; devices are not acked meanwhile"
                );
            }
        }
    }
}

/// Fault injection for tests: while set, every commit (or every journal
/// compaction) fails as a full disk would, or commits hang. Only the
/// storage-failure tests use it.
#[derive(Debug, Default)]
pub struct Faults {
    pub fail_commits: AtomicBool,
    /// While set, the writer does not commit at all (a disk that hangs):
    /// the queue fills and connections stop being read.
    pub stall_commits: AtomicBool,
    pub fail_compactions: AtomicBool,
    /// The next journal commit panics (a bug in the commit path): its
    /// batch fails and the writer must go on.
    pub panic_next_commit: AtomicBool,
}

/// What a history store does. The embedded one ([`Embedded`]: journal
/// segments compacted into `history.db`) is the default; a shared store
/// (PostgreSQL) implements the same calls, and nothing above this trait —
/// the ingest pipeline, the API, retention — knows which one runs.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Stores `rows` and returns once they are durable (group commit). A
    /// row already stored (same device, fix time and coordinates) is not
    /// stored again and still counts as committed.
    async fn append(&self, rows: Encoded) -> Result<(), HistoryError>;
    /// Queues `rows` without waiting for the commit (`ack = "received"`).
    async fn append_detached(&self, rows: Encoded) -> Result<(), HistoryError>;
    /// One page of `range`, oldest first.
    async fn range(&self, range: Range) -> Result<Page, HistoryError>;
    /// The latest stored position of every device (start-up rebuild).
    async fn latest_all(&self) -> Result<Vec<Position>, HistoryError>;
    /// Deletes about `batch` positions received before `before_ms`, oldest
    /// first (the embedded store deletes whole chunks of one device's
    /// records, so a batch may end past `batch`); returns how many went.
    async fn purge(&self, before_ms: i64, batch: usize) -> Result<usize, HistoryError>;
    /// Returns once everything appended before is where [`purge`] and
    /// [`count`] see it.
    ///
    /// [`purge`]: Backend::purge
    /// [`count`]: Backend::count
    async fn flush(&self) -> Result<(), HistoryError>;
    /// Positions stored in all (tests and the crash check).
    async fn count(&self) -> Result<i64, HistoryError>;
    /// Bounds what a backend that defers work (the embedded journal) may
    /// hold before commits wait for it; others ignore it.
    fn limit_backlog(&self, _records: u64) {}
}

/// Handle to the history, whichever backend stores it.
#[derive(Clone)]
pub struct History {
    backend: Arc<dyn Backend>,
    pub health: Arc<StorageHealth>,
    pub faults: Arc<Faults>,
}

impl History {
    /// The embedded history in `data_dir` (see [`Embedded::open`]).
    pub fn open(
        data_dir: &std::path::Path,
        metrics: crate::metrics::HistoryMetrics,
    ) -> Result<Self, HistoryError> {
        let health = Arc::new(StorageHealth::default());
        let faults = Arc::new(Faults::default());
        let backend = Embedded::open(data_dir, metrics, Arc::clone(&health), Arc::clone(&faults))?;
        Ok(Self::with_backend(Arc::new(backend), health, faults))
    }

    /// The shared history in PostgreSQL at `url` (see [`Postgres`]).
    pub async fn postgres(
        url: &str,
        metrics: crate::metrics::HistoryMetrics,
    ) -> Result<Self, HistoryError> {
        let health = Arc::new(StorageHealth::default());
        let faults = Arc::new(Faults::default());
        let backend =
            Postgres::open(url, metrics, Arc::clone(&health), Arc::clone(&faults)).await?;
        Ok(Self::with_backend(Arc::new(backend), health, faults))
    }

    /// A history over any backend; `health` is what the backend reports
    /// into (shown by `/health`), `faults` what it honours in tests.
    pub fn with_backend(
        backend: Arc<dyn Backend>,
        health: Arc<StorageHealth>,
        faults: Arc<Faults>,
    ) -> Self {
        Self {
            backend,
            health,
            faults,
        }
    }

    /// Sets `history.max_journal_records` (the embedded backend's bound on
    /// acked records not yet compacted; see `journal::MAX_BACKLOG`).
    pub fn limit_backlog(&self, records: u64) {
        self.backend.limit_backlog(records);
    }

    /// Appends `positions` and returns once they are committed (fsync'd).
    /// A position already stored (same device, fix time and coordinates) is
    /// not stored again and still counts as committed.
    pub async fn append(&self, positions: &[Position]) -> Result<(), HistoryError> {
        self.append_records(positions, &[], AckMode::Durable).await
    }

    /// Appends `positions` and `reports` (records without a fix, stamped
    /// received now); with `AckMode::Durable` returns once they are
    /// committed, with `Received` once they are queued.
    pub async fn append_records(
        &self,
        positions: &[Position],
        reports: &[Report],
        ack: AckMode,
    ) -> Result<(), HistoryError> {
        if positions.is_empty() && reports.is_empty() {
            return Ok(());
        }
        let received = if reports.is_empty() {
            0
        } else {
            chrono::Utc::now().timestamp_millis()
        };
        let rows = Encoded::records(positions, reports, received);
        match ack {
            AckMode::Durable => self.backend.append(rows).await,
            AckMode::Received => self.backend.append_detached(rows).await,
        }
    }

    /// One page of `range`, oldest first.
    pub async fn range(&self, range: Range) -> Result<Page, HistoryError> {
        self.backend.range(range).await
    }

    /// The latest stored position of every device (start-up rebuild).
    pub async fn latest_all(&self) -> Result<Vec<Position>, HistoryError> {
        self.backend.latest_all().await
    }

    /// Deletes about `batch` positions received before `before_ms` (see
    /// [`Backend::purge`]); returns how many went. Small batches keep each write transaction short.
    pub async fn purge(&self, before_ms: i64, batch: usize) -> Result<usize, HistoryError> {
        self.backend.purge(before_ms, batch).await
    }

    /// Waits until every record appended before is where queries, purges
    /// and counts see it.
    pub async fn flush(&self) -> Result<(), HistoryError> {
        self.backend.flush().await
    }

    /// Positions stored in all, after a [`flush`](Self::flush) (tests and
    /// the crash check).
    pub async fn count(&self) -> Result<i64, HistoryError> {
        self.backend.count().await
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Instant;

    fn append(records: usize) -> Request {
        let row = rows::test_row("356307042441013", 0, 1.0);
        Request::Append {
            rows: segment::Encoded::rows(&vec![row; records]),
            done: None,
        }
    }

    #[test]
    fn the_commit_thread_gathers_until_the_deadline_and_stops_at_a_flush_or_a_full_batch() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        // What is queued is taken at once; what arrives before the deadline
        // joins after the one sleep; nothing later does.
        tx.try_send(append(2)).unwrap();
        let late = tx.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            late.try_send(append(3)).unwrap();
            std::thread::sleep(Duration::from_secs(1));
            late.try_send(append(4)).unwrap();
        });
        let started = Instant::now();
        let g = gather_until(append(1), &mut rx, started + Duration::from_millis(200));
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!((g.rows.len(), g.records), (3, 6));
        sender.join().unwrap();
        assert_eq!(gather_until(append(0), &mut rx, Instant::now()).records, 4);

        // A flush ends the batch: the append behind it waits for the next.
        let (done, _wait) = tokio::sync::oneshot::channel();
        tx.try_send(Request::Flush(done)).unwrap();
        tx.try_send(append(5)).unwrap();
        let far = Instant::now() + Duration::from_secs(60);
        let g = gather_until(append(1), &mut rx, far);
        assert_eq!(
            (g.records, g.flushes.len()),
            (1, 1),
            "no sleep after a flush"
        );
        assert_eq!(gather_until(append(0), &mut rx, Instant::now()).records, 5);
        // So does a full batch, without sleeping either.
        tx.try_send(append(MAX_BATCH)).unwrap();
        tx.try_send(append(7)).unwrap();
        let g = gather_until(append(5), &mut rx, far);
        assert_eq!(g.records, 5 + MAX_BATCH);
        assert_eq!(gather_until(append(0), &mut rx, Instant::now()).records, 7);
    }
}
