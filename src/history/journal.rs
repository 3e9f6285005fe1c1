//! The ingest journal: what is fsync'd before a device is acked.
//!
//! Appending each record straight into `history.db`'s device-ordered index
//! dirties one index page per device per commit — 500 records from 500
//! devices wrote ~2 MB of WAL per commit and capped durable ingest at ~13k
//! records/s. The journal is a series of append-only files
//! (`journal/<seq>.log`, format in `segment.rs`): a group commit is one
//! `write` of one checksummed frame and one `fdatasync`, no B-tree, no WAL,
//! no checkpoint. A segment is sealed after [`SEGMENT_ROWS`] records or
//! [`SEGMENT_AGE`]; the compactor then moves it into `history.db` (one
//! transaction, each device's records written as chunks once per segment
//! instead of once per commit) and deletes it. Queries merge the live segments with
//! `history.db`, reading a segment only up to its last completed commit.
//!
//! Crash safety: a record is acked once its frame is on disk. At start-up
//! every leftover segment is compacted before anything is served, up to its
//! first torn or corrupt frame (a commit that never completed, so never
//! acked). A failed write or fsync seals the segment at its last good frame
//! and the next commit starts a new file, so no good frame ever follows a
//! bad one. A crash between a compaction's commit and the file's deletion
//! only repeats a compaction, whose duplicate check stores nothing twice. Segments
//! of the earlier SQLite format (`<seq>.db`) are still compacted at start.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::segment;
use super::{gather_until, Gathered, Request};
use super::{Encoded, Faults, HistoryError, Range, StorageHealth, StoredRow};

/// Records after which a segment is sealed and handed to the compactor.
pub const SEGMENT_ROWS: usize = 65_536;
/// Age after which a non-empty segment is sealed, so compaction keeps up
/// at low rates and queries scan little.
pub const SEGMENT_AGE: Duration = Duration::from_secs(2);
/// Acked records not yet compacted past which the writer stops committing
/// (so devices stop being acked and sockets stop being read) until the
/// compactor has caught up: ingest faster than compaction cannot be
/// sustained, and an unbounded journal would grow the disk, every query's
/// scan and the next start-up's compaction without limit. About 8 full
/// segments: a burst of several seconds at full rate is absorbed.
pub const MAX_BACKLOG: u64 = 8 * SEGMENT_ROWS as u64;

/// A legacy (SQLite) segment's one table: `history.db`'s `positions`
/// columns, no index.
const ROW_COLUMNS: &str = "id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, \
    fix_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, lat REAL NOT NULL, \
    lon REAL NOT NULL, altitude_m REAL NOT NULL, speed_kmh REAL NOT NULL, \
    course_deg REAL NOT NULL, satellites INTEGER, valid INTEGER NOT NULL, \
    protocol TEXT NOT NULL, attributes TEXT NOT NULL";

/// A segment not yet compacted, and how far it may be read: the end of its
/// last completed commit (`u64::MAX` for a leftover: its intact part).
#[derive(Clone)]
pub(super) struct Live {
    pub seq: u64,
    pub committed: Arc<AtomicU64>,
    /// Records committed to it (0 for a leftover: compacted before the
    /// writer starts).
    pub rows: Arc<AtomicU64>,
}

/// The journal directory and its live (not yet compacted) segments.
pub struct Journal {
    dir: PathBuf,
    /// Segments whose rows may not be in `history.db` yet. Readers hold the
    /// read lock across a whole query so the compactor cannot delete a
    /// segment between their two reads.
    pub(super) live: RwLock<Vec<Live>>,
    /// The sum of the live segments' `rows`: raised by each commit, lowered
    /// by exactly a segment's count when it leaves `live`, so it cannot
    /// drift, and the writer reads it without taking the lock queries hold.
    backlog: Arc<AtomicU64>,
    /// [`MAX_BACKLOG`] unless configured (`history.max_journal_records`).
    limit: AtomicU64,
}

impl Journal {
    /// Opens `data_dir/journal`; the leftover segments of an earlier run
    /// (either format) are live until compacted.
    pub fn open(data_dir: &Path) -> Result<Self, HistoryError> {
        let dir = data_dir.join("journal");
        std::fs::create_dir_all(&dir)
            .map_err(|e| HistoryError::Storage(format!("{}: {e}", dir.display())))?;
        let mut seqs: Vec<u64> = std::fs::read_dir(&dir)
            .map_err(|e| HistoryError::Storage(format!("{}: {e}", dir.display())))?
            .filter_map(|e| {
                let name = e.ok()?.file_name();
                let name = name.to_str()?;
                name.strip_suffix(".log")
                    .or_else(|| name.strip_suffix(".db"))?
                    .parse()
                    .ok()
            })
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        let live = seqs
            .into_iter()
            .map(|seq| Live {
                seq,
                committed: Arc::new(AtomicU64::new(u64::MAX)),
                rows: Arc::new(AtomicU64::new(0)),
            })
            .collect();
        Ok(Self {
            dir,
            live: RwLock::new(live),
            backlog: Arc::new(AtomicU64::new(0)),
            limit: AtomicU64::new(MAX_BACKLOG),
        })
    }

    /// Sets the backlog past which commits wait for the compactor.
    pub fn set_limit(&self, records: u64) {
        self.limit.store(records.max(1), Ordering::Relaxed);
    }

    /// Records committed to live segments: acked, not yet compacted.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Takes segment `seq` out of `live`, and its records out of the backlog.
    fn unlist(&self, live: &mut Vec<Live>, seq: u64) {
        live.retain(|l| {
            let gone = l.seq == seq;
            if gone {
                let rows = l.rows.load(Ordering::Relaxed);
                let _ = self
                    .backlog
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                        Some(b.saturating_sub(rows))
                    });
            }
            !gone
        });
    }

    /// Whether the backlog has reached its limit.
    fn is_full(&self) -> bool {
        self.backlog() >= self.limit.load(Ordering::Relaxed)
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:016}.log"))
    }

    fn legacy_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:016}.db"))
    }

    /// The sequence number for the next new segment.
    pub fn next_seq(&self) -> u64 {
        self.live.read().last().map_or(1, |l| l.seq + 1)
    }

    /// Leftover segments, oldest first.
    pub fn leftovers(&self) -> Vec<u64> {
        self.live.read().iter().map(|l| l.seq).collect()
    }

    /// Creates segment `seq` with its header, synced with the directory so
    /// the file survives power loss, and makes it live.
    fn create(&self, seq: u64) -> Result<Open, HistoryError> {
        let path = self.path(seq);
        let io = |e: std::io::Error| HistoryError::Storage(format!("{}: {e}", path.display()));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        file.write_all(segment::MAGIC).map_err(io)?;
        file.sync_all().map_err(io)?;
        crate::framed::sync_dir(&self.dir)
            .map_err(|e| HistoryError::Storage(format!("{}: {e}", self.dir.display())))?;
        let len = segment::MAGIC.len() as u64;
        let committed = Arc::new(AtomicU64::new(len));
        let counted = Arc::new(AtomicU64::new(0));
        let mut live = self.live.write();
        self.unlist(&mut live, seq);
        live.push(Live {
            seq,
            committed: Arc::clone(&committed),
            rows: Arc::clone(&counted),
        });
        Ok(Open {
            seq,
            file,
            len,
            committed,
            counted,
            backlog: Arc::clone(&self.backlog),
            opened: Instant::now(),
            buf: Vec::new(),
        })
    }

    /// Deletes a compacted segment.
    fn remove(&self, seq: u64) {
        self.unlist(&mut self.live.write(), seq);
        let _ = std::fs::remove_file(self.path(seq));
        let legacy = self.legacy_path(seq);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = legacy.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }

    /// The rows of segment `seq`, read up to `committed` bytes.
    fn read(&self, seq: u64, committed: u64) -> Result<Vec<StoredRow>, HistoryError> {
        Ok(segment::decode(&self.read_bytes(seq, committed)?).0)
    }

    /// Segment `seq`'s first `committed` bytes (none once it is gone).
    fn read_bytes(&self, seq: u64, committed: u64) -> Result<Vec<u8>, HistoryError> {
        let path = self.path(seq);
        let mut bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(HistoryError::Storage(format!("{}: {e}", path.display()))),
        };
        bytes.truncate(usize::try_from(committed).unwrap_or(usize::MAX));
        Ok(bytes)
    }

    /// Rows of `q`'s device and range in live segment `l`, in key order, at
    /// most `q.limit + 1`. The caller holds `live`'s read lock.
    pub(super) fn scan(&self, l: &Live, q: &Range) -> Result<Vec<StoredRow>, HistoryError> {
        if self.legacy_path(l.seq).exists() {
            // Only ever a leftover, compacted before anything is served.
            return Ok(Vec::new());
        }
        let mut rows: Vec<StoredRow> = self
            .read(l.seq, l.committed.load(Ordering::Acquire))?
            .into_iter()
            .filter(|r| r.device_id == q.device.as_str() && q.wants(r.fix_ms, r.lat, r.lon))
            .collect();
        rows.sort_by(super::sqlite::key_order);
        rows.truncate(q.limit.saturating_add(1));
        Ok(rows)
    }
}

/// Moves segment `seq` (read up to `committed` bytes) into `history.db` in
/// one transaction (each device's records as a few chunks, however many it
/// sent), then deletes it.
pub(super) fn compact(
    conn: &mut Connection,
    journal: &Journal,
    seq: u64,
    committed: u64,
) -> Result<(), HistoryError> {
    if journal.legacy_path(seq).exists() {
        return compact_legacy(conn, journal, seq);
    }
    let bytes = journal.read_bytes(seq, committed)?;
    let rows = segment::decode_refs(&bytes).0;
    if !rows.is_empty() {
        let tx = conn.transaction()?;
        super::sqlite::store(&tx, &rows)?;
        tx.commit()?;
    }
    journal.remove(seq);
    Ok(())
}

/// Compacts a segment written by an earlier version (a SQLite file).
fn compact_legacy(conn: &mut Connection, journal: &Journal, seq: u64) -> Result<(), HistoryError> {
    let path = journal.legacy_path(seq);
    conn.execute(
        "ATTACH DATABASE ?1 AS seg",
        [path.to_string_lossy().as_ref()],
    )?;
    let moved = (|| -> Result<(), HistoryError> {
        let tx = conn.transaction()?;
        // A segment whose first commit failed may lack its table.
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS seg.rows ({ROW_COLUMNS})"
        ))?;
        let rows = {
            let mut st = tx.prepare(&format!("SELECT {} FROM seg.rows", super::sqlite::COLUMNS))?;
            let rows = st.query_map([], super::sqlite::row)?;
            rows.map(|r| r.map(|(_, row)| row))
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        super::sqlite::store_owned(&tx, &rows)?;
        tx.commit()?;
        Ok(())
    })();
    let detached = conn.execute("DETACH DATABASE seg", []);
    moved?;
    detached?;
    journal.remove(seq);
    Ok(())
}

/// What the compactor thread is asked to do, in order.
pub(super) enum Job {
    /// Move the first `committed` bytes of a sealed segment into
    /// `history.db`.
    Compact { seq: u64, committed: u64 },
    /// Answer once every earlier job is done.
    Flush(oneshot::Sender<Result<(), HistoryError>>),
}

/// What the compactor thread works with.
pub(super) struct Compactor {
    pub journal: Arc<Journal>,
    pub metrics: crate::metrics::HistoryMetrics,
    pub health: Arc<StorageHealth>,
    pub faults: Arc<Faults>,
}

impl Compactor {
    fn compact(&self, conn: &mut Connection, seq: u64, committed: u64) -> Result<(), HistoryError> {
        if self.faults.fail_compactions.load(Ordering::Relaxed) {
            return Err(HistoryError::Storage(
                "database or disk is full (injected)".into(),
            ));
        }
        compact(conn, &self.journal, seq, committed)
    }

    /// Records `r` in `/health` and the healthy gauge.
    fn report(&self, r: &Result<(), HistoryError>) {
        self.health.set_compaction(r);
        self.metrics
            .healthy
            .set(i64::from(self.health.is_healthy()));
    }
}

/// The compactor: one thread with its own `history.db` connection. A failed
/// compaction (disk full, locked) is retried, and `/health` says degraded
/// until one succeeds; the segment stays live and queryable meanwhile, and
/// its records stay acked because they are on disk.
pub(super) fn run_compactor(
    mut conn: Connection,
    c: Compactor,
    jobs: std::sync::mpsc::Receiver<Job>,
) {
    let metrics = &c.metrics;
    for job in jobs {
        match job {
            Job::Compact { seq, committed } => {
                let mut wait = Duration::from_millis(100);
                loop {
                    let started = Instant::now();
                    let r = c.compact(&mut conn, seq, committed);
                    if r.is_ok() {
                        metrics
                            .compaction_seconds
                            .observe(started.elapsed().as_secs_f64());
                    }
                    // Counted before health reports it: whoever sees the
                    // one sees the other.
                    if r.is_err() {
                        metrics.compaction_errors.inc();
                    }
                    c.report(&r);
                    let Err(e) = r else { break };
                    tracing::error!(error = %e, segment = seq, "history compaction failed; retrying");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                metrics
                    .journal_records
                    .set(i64::try_from(c.journal.backlog()).unwrap_or(i64::MAX));
            }
            Job::Flush(done) => {
                let _ = done.send(Ok(()));
            }
        }
    }
}

/// The segment being written.
pub(super) struct Open {
    seq: u64,
    file: std::fs::File,
    /// Bytes on disk up to the end of the last completed commit.
    len: u64,
    /// `len`, published to readers.
    committed: Arc<AtomicU64>,
    /// Records committed to it, shared with its `Live` entry (the backlog
    /// bound reads it there).
    counted: Arc<AtomicU64>,
    /// The journal's backlog, raised with `counted`.
    backlog: Arc<AtomicU64>,
    opened: Instant,
    /// The frame being written, reused between commits.
    buf: Vec<u8>,
}

impl Open {
    fn rows(&self) -> u64 {
        self.counted.load(Ordering::Relaxed)
    }

    /// Appends `parts` as one frame and syncs it.
    fn write(&mut self, parts: &[Encoded]) -> Result<(), HistoryError> {
        self.buf.clear();
        segment::encode_frame_parts(parts, &mut self.buf);
        let records: u64 = parts.iter().map(|p| p.len() as u64).sum();
        self.file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| HistoryError::Storage(format!("journal segment {}: {e}", self.seq)))?;
        self.len += self.buf.len() as u64;
        self.committed.store(self.len, Ordering::Release);
        // The segment's count first: `unlist` subtracts it once the segment
        // leaves, which cannot happen while it is being written.
        self.counted.fetch_add(records, Ordering::Relaxed);
        self.backlog.fetch_add(records, Ordering::Relaxed);
        Ok(())
    }
}

/// A full segment on its way to the compactor.
struct Sealed {
    seq: u64,
    committed: u64,
}

/// The writer's side of the journal: the open segment and the next number.
struct Segments {
    journal: Arc<Journal>,
    open: Option<Open>,
    next: u64,
}

impl Segments {
    /// Appends `rows` in one frame (one fsync); seals the segment when it
    /// is full or old (or `seal` is set). Returns the sealed segment.
    fn append(
        &mut self,
        rows: &[Encoded],
        faults: &Faults,
        seal: bool,
    ) -> (Result<(), HistoryError>, Option<Sealed>) {
        if faults.fail_commits.load(Ordering::Relaxed) {
            let e = HistoryError::Storage("database or disk is full (injected)".into());
            return (Err(e), None);
        }
        if faults.panic_next_commit.swap(false, Ordering::Relaxed) {
            panic!("injected panic in a journal commit");
        }
        let mut open = match self.open.take() {
            Some(o) => o,
            None => match self.journal.create(self.next) {
                Ok(o) => {
                    self.next += 1;
                    o
                }
                Err(e) => return (Err(e), None),
            },
        };
        let result = open.write(rows);
        self.open = Some(open);
        let sealed = if result.is_err() {
            // What follows a failed write or fsync cannot be trusted: the
            // segment ends at its last good frame, the next commit starts
            // a new one.
            self.take()
        } else if seal {
            self.seal()
        } else {
            self.seal_if_due()
        };
        (result, sealed)
    }

    fn seal_if_due(&mut self) -> Option<Sealed> {
        let due = self
            .open
            .as_ref()
            .is_some_and(|o| o.rows() >= SEGMENT_ROWS as u64 || o.opened.elapsed() >= SEGMENT_AGE);
        if due {
            self.seal()
        } else {
            None
        }
    }

    /// Takes the open segment if it holds records; the next append opens
    /// a new one.
    fn seal(&mut self) -> Option<Sealed> {
        if self.open.as_ref().is_some_and(|o| o.rows() > 0) {
            self.take()
        } else {
            None
        }
    }

    /// Takes the open segment, whatever it holds.
    fn take(&mut self) -> Option<Sealed> {
        self.open.take().map(|o| Sealed {
            seq: o.seq,
            committed: o.len,
        })
    }
}

/// Everything the writer task needs besides its queue.
pub(super) struct Writer {
    pub journal: Arc<Journal>,
    pub health: Arc<StorageHealth>,
    pub faults: Arc<Faults>,
    pub metrics: crate::metrics::HistoryMetrics,
    pub jobs: std::sync::mpsc::Sender<Job>,
}

/// The writer: gathers queued appends (up to `MAX_BATCH` records or
/// `GATHER`), commits them to the open segment once, releases their
/// waiters. A failed commit fails every waiter of the batch (their devices
/// are not acked and resend); the next batch tries again, so recovery needs
/// no restart. An idle writer seals its segment after `SEGMENT_AGE`.
pub(super) async fn run_writer(w: Writer, mut rx: mpsc::Receiver<Request>) {
    let mut segments = Some(Segments {
        next: w.journal.next_seq(),
        journal: Arc::clone(&w.journal),
        open: None,
    });
    loop {
        let first = match tokio::time::timeout(SEGMENT_AGE, rx.recv()).await {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(_) => {
                // Idle: hand the open segment to the compactor.
                let Some(s) = segments.take() else { return };
                let Some(s) = seal_open(&w, s).await else {
                    return;
                };
                segments = Some(s);
                continue;
            }
        };
        let deadline = Instant::now() + super::GATHER;
        if w.journal.is_full() {
            // The backlog may be all in the open segment, which only this
            // task can hand to the compactor.
            let Some(s) = segments.take() else { return };
            let Some(s) = seal_open(&w, s).await else {
                return;
            };
            segments = Some(s);
            wait_for_compaction(&w).await;
        }
        let Some(mut s) = segments.take() else { return };
        // Segments from here on are not queued for compaction yet.
        let unqueued_from = s.open.as_ref().map_or(s.next, |o| o.seq);
        let next_before = s.next;
        let faults = Arc::clone(&w.faults);
        let gathered = Arc::new(AtomicUsize::new(0));
        let commit = {
            let gathered = Arc::clone(&gathered);
            async move {
                while faults.stall_commits.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                // The queue goes along to the commit thread, which gathers
                // (see `gather_until`) and hands it back.
                tokio::task::spawn_blocking(move || {
                    let mut g = gather_until(first, &mut rx, deadline);
                    gathered.store(g.records, Ordering::Relaxed);
                    let seal = !g.flushes.is_empty();
                    let started = Instant::now();
                    // A panic in the commit must not take the queue with it.
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let (result, sealed) = if g.records == 0 {
                            (Ok(()), s.seal())
                        } else {
                            s.append(&g.rows, &faults, seal)
                        };
                        (s, result, sealed)
                    }));
                    let took = started.elapsed();
                    // Their bytes are freed here, not on a runtime worker.
                    g.rows = Vec::new();
                    (rx, g, outcome, took)
                })
                .await
            }
        };
        let joined = super::watch(commit, &w.health, &w.metrics, || {
            gathered.load(Ordering::Relaxed)
        })
        .await;
        let Ok((back, g, outcome, took)) = joined else {
            // Only a runtime shutting down cancels a blocking task.
            tracing::error!("history commit task cancelled; the writer stops");
            return;
        };
        rx = back;
        let Gathered {
            waiters,
            flushes,
            records: n,
            ..
        } = g;
        let (s, result, sealed) = match outcome {
            Ok(v) => v,
            Err(panic) => {
                // The commit panicked: its waiters are dropped (their
                // devices are not acked and resend) and the writer goes on
                // with a new segment. The one it was writing is compacted up
                // to its last completed commit (its acked records), so its
                // backlog does not hold acks back for good.
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(error = %why, records = n, "history commit panicked; those records are not acked");
                let e = Err(HistoryError::Storage(format!("commit task failed: {why}")));
                w.metrics.errors.inc();
                w.health.set(&e);
                w.metrics.healthy.set(0);
                // Numbered past every orphan: none is reused while the
                // compactor may still be deleting it.
                let next = w.journal.next_seq().max(next_before);
                let orphans: Vec<Sealed> = w
                    .journal
                    .live
                    .read()
                    .iter()
                    .filter(|l| l.seq >= unqueued_from)
                    .map(|l| Sealed {
                        seq: l.seq,
                        committed: l.committed.load(Ordering::Acquire),
                    })
                    .collect();
                for o in orphans {
                    send_sealed(&w, Some(o));
                }
                segments = Some(Segments {
                    next,
                    journal: Arc::clone(&w.journal),
                    open: None,
                });
                drop(waiters);
                for done in flushes {
                    let _ = done.send(e.clone());
                }
                continue;
            }
        };
        segments = Some(s);
        if n > 0 {
            w.metrics.commit_seconds.observe(took.as_secs_f64());
            match &result {
                Ok(()) => {
                    w.metrics.records.inc_by(n as u64);
                    w.metrics
                        .journal_records
                        .set(i64::try_from(w.journal.backlog()).unwrap_or(i64::MAX));
                }
                Err(e) => {
                    w.metrics.errors.inc();
                    tracing::error!(error = %e, records = n, "history commit failed; those records are not acked");
                }
            }
            w.health.set(&result);
            w.metrics.healthy.set(i64::from(w.health.is_healthy()));
        }
        send_sealed(&w, sealed);
        for done in waiters {
            let _ = done.send(result.clone());
        }
        for done in flushes {
            let _ = w.jobs.send(Job::Flush(done));
        }
    }
    // Shutting down: seal what is open so a clean stop leaves it to compact.
    if let Some(mut s) = segments {
        if let Ok(sealed) = tokio::task::spawn_blocking(move || s.seal()).await {
            send_sealed(&w, sealed);
        }
    }
}

/// Waits while the journal holds its bound of records not yet compacted,
/// counting the wait in `throttled_seconds` as it passes and, past
/// [`STALLED_AFTER`](super::STALLED_AFTER), reporting it in `/health` (a
/// compactor that is failing or cannot keep up): no acks meanwhile.
async fn wait_for_compaction(w: &Writer) {
    let t = Instant::now();
    let mut last = t;
    let mut reported = Duration::ZERO;
    while w.journal.is_full() {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let now = Instant::now();
        w.metrics
            .throttled_seconds
            .inc_by((now - last).as_secs_f64());
        last = now;
        let waited = now - t;
        if waited >= reported + super::STALLED_AFTER {
            reported = waited;
            w.health.set_throttled(waited);
            w.metrics.healthy.set(0);
            tracing::warn!(
                seconds = waited.as_secs(),
                backlog = w.journal.backlog(),
                "history journal full: acks wait for compaction"
            );
        }
    }
}

/// Seals the open segment and queues it for compaction; `None` if the
/// sealing task failed.
async fn seal_open(w: &Writer, mut s: Segments) -> Option<Segments> {
    let (s, sealed) = tokio::task::spawn_blocking(move || {
        let sealed = s.seal();
        (s, sealed)
    })
    .await
    .ok()?;
    send_sealed(w, sealed);
    Some(s)
}

fn send_sealed(w: &Writer, sealed: Option<Sealed>) {
    if let Some(Sealed { seq, committed }) = sealed {
        let _ = w.jobs.send(Job::Compact { seq, committed });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::history::rows::test_row as stored;

    /// The backlog is what live segments hold: raised per commit, lowered
    /// by a segment's whole count when it goes (a failed write counts
    /// nothing), and never below zero.
    #[test]
    fn the_backlog_follows_the_live_segments() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(dir.path()).unwrap());
        journal.set_limit(3);
        let mut segs = Segments {
            journal: Arc::clone(&journal),
            open: None,
            next: 1,
        };
        let faults = Faults::default();
        let two = [stored("a", 1, 50.0), stored("b", 1, 50.0)];
        let (r, sealed) = segs.append(&[Encoded::rows(&two)], &faults, true);
        assert!(r.is_ok());
        let first = sealed.expect("sealed on request");
        let (r, _) = segs.append(&[Encoded::rows(&[stored("a", 2, 50.0)])], &faults, false);
        assert!(r.is_ok());
        assert_eq!(journal.backlog(), 3);
        assert!(journal.is_full());
        faults.fail_commits.store(true, Ordering::Relaxed);
        let (r, _) = segs.append(&[Encoded::rows(&[stored("a", 3, 50.0)])], &faults, false);
        assert!(r.is_err());
        assert_eq!(journal.backlog(), 3, "a failed commit adds nothing");
        journal.remove(first.seq);
        assert_eq!(journal.backlog(), 1);
        assert!(!journal.is_full());
        journal.remove(first.seq);
        assert_eq!(journal.backlog(), 1, "a segment leaves once");
        journal.remove(2);
        assert_eq!(journal.backlog(), 0);
    }

    #[test]
    fn a_failed_write_seals_the_segment_and_the_next_commit_starts_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(dir.path()).unwrap());
        let mut segs = Segments {
            journal: Arc::clone(&journal),
            open: None,
            next: 1,
        };
        let faults = Faults::default();
        let (r, sealed) = segs.append(&[Encoded::rows(&[stored("a", 1, 50.0)])], &faults, false);
        assert!(r.is_ok() && sealed.is_none());
        // The file goes read-only under the writer: the write fails.
        let good = segs.open.as_ref().unwrap().len;
        let path = journal.path(1);
        segs.open.as_mut().unwrap().file = std::fs::File::open(&path).unwrap();
        let (r, sealed) = segs.append(&[Encoded::rows(&[stored("a", 2, 50.0)])], &faults, false);
        assert!(r.is_err());
        let sealed = sealed.expect("sealed at its last good frame");
        assert_eq!((sealed.seq, sealed.committed), (1, good));
        assert_eq!(journal.read(1, sealed.committed).unwrap().len(), 1);
        let (r, _) = segs.append(&[Encoded::rows(&[stored("a", 3, 50.0)])], &faults, true);
        assert!(r.is_ok());
        assert_eq!(journal.leftovers(), vec![1, 2]);
        let read = |seq| {
            journal
                .read(seq, u64::MAX)
                .unwrap()
                .iter()
                .map(|r| r.fix_ms)
                .collect::<Vec<_>>()
        };
        assert_eq!((read(1), read(2)), (vec![1], vec![3]));
    }

    #[test]
    fn both_segment_formats_compact_into_history_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::SqliteHistory::open(dir.path()).unwrap();
        let mut conn = store.writer().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        // A segment an earlier version wrote: a SQLite file.
        let legacy = Connection::open(journal.legacy_path(1)).unwrap();
        legacy
            .execute_batch(&format!("CREATE TABLE rows ({ROW_COLUMNS})"))
            .unwrap();
        for (fix, lat) in [(1, 50.0), (2, 50.5)] {
            legacy
                .execute(
                    "INSERT INTO rows (device_id, fix_ms, received_ms, lat, lon, altitude_m, \
                     speed_kmh, course_deg, satellites, valid, protocol, attributes) \
                     VALUES ('a', ?1, 9, ?2, 10, 1, 2, 3, 7, 1, 'teltonika', '')",
                    rusqlite::params![fix, lat],
                )
                .unwrap();
        }
        drop(legacy);
        // And one of this format, resending the legacy one's second record.
        let mut open = journal.create(2).unwrap();
        open.write(&[Encoded::rows(&[stored("a", 2, 50.5), stored("b", 5, 1.0)])])
            .unwrap();
        drop(open);
        let journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.leftovers(), vec![1, 2]);
        for seq in journal.leftovers() {
            compact(&mut conn, &journal, seq, u64::MAX).unwrap();
        }
        assert!(journal.leftovers().is_empty());
        assert_eq!(store.count().unwrap(), 3);
        let mut latest: Vec<(String, i64)> = store
            .latest_all()
            .unwrap()
            .into_iter()
            .map(|p| {
                (
                    p.device_id.as_str().to_string(),
                    p.fix_time.timestamp_millis(),
                )
            })
            .collect();
        latest.sort();
        assert_eq!(latest, vec![("a".into(), 2), ("b".into(), 5)]);
        assert_eq!(
            std::fs::read_dir(dir.path().join("journal"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn leftover_segments_are_found_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        drop(journal.create(7).unwrap());
        drop(journal.create(3).unwrap());
        std::fs::write(journal.legacy_path(5), b"").unwrap();
        let again = Journal::open(dir.path()).unwrap();
        assert_eq!(again.leftovers(), vec![3, 5, 7]);
        assert_eq!(again.next_seq(), 8);
    }
}
