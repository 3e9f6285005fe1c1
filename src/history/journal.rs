//! The ingest journal: what is fsync'd before a device is acked.
//!
//! Appending each record straight into `history.db`'s device-ordered index
//! dirties one index page per device per commit — 500 records from 500
//! devices wrote ~2 MB of WAL per commit and capped durable ingest at ~13k
//! records/s. The journal is a series of small SQLite files
//! (`journal/<seq>.db`) without an index, so a commit appends a few pages
//! in arrival order. A segment is sealed after [`SEGMENT_ROWS`] records or
//! [`SEGMENT_AGE`]; the compactor then moves it into `history.db` sorted by
//! device (one page touch per device per segment instead of per commit) and
//! deletes it. Queries merge the live segments with `history.db`.
//!
//! Crash safety: a record is acked once its segment commit is on disk. At
//! start-up every leftover segment is compacted before anything is served;
//! a crash between a compaction's commit and the file's deletion only
//! repeats an `INSERT OR IGNORE`, which stores nothing twice.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rusqlite::{Connection, OpenFlags, Statement};
use tokio::sync::{mpsc, oneshot};

use super::embedded::Request;
use super::sqlite::{open_conn, page_rows};
use super::{Faults, HistoryError, Range, StorageHealth, StoredRow};
use super::{GATHER, MAX_BATCH};

/// Records after which a segment is sealed and handed to the compactor.
pub const SEGMENT_ROWS: usize = 65_536;
/// Age after which a non-empty segment is sealed, so compaction keeps up
/// at low rates and queries scan little.
pub const SEGMENT_AGE: Duration = Duration::from_secs(2);
/// Rows bound per multi-row `INSERT` (12 parameters each).
const CHUNK: usize = 16;

/// A segment's one table: `history.db`'s `positions` columns, no index.
/// (The `positions` schema itself lives in its frozen migration.)
const ROW_COLUMNS: &str = "id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, \
    fix_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, lat REAL NOT NULL, \
    lon REAL NOT NULL, altitude_m REAL NOT NULL, speed_kmh REAL NOT NULL, \
    course_deg REAL NOT NULL, satellites INTEGER, valid INTEGER NOT NULL, \
    protocol TEXT NOT NULL, attributes TEXT NOT NULL";

fn schema(table: &str) -> String {
    format!("CREATE TABLE IF NOT EXISTS {table} ({ROW_COLUMNS})")
}

const INSERT_HEAD: &str = "INSERT INTO rows (device_id, fix_ms, received_ms, lat, lon, \
    altitude_m, speed_kmh, course_deg, satellites, valid, protocol, attributes) VALUES ";
const ROW_PARAMS: &str = "(?,?,?,?,?,?,?,?,?,?,?,?)";

/// The journal directory and its live (not yet compacted) segments.
pub struct Journal {
    dir: PathBuf,
    /// Sequence numbers of segments whose rows may not be in `history.db`
    /// yet. Readers hold the read lock across a whole query so the
    /// compactor cannot delete a segment between their two reads.
    pub(super) live: RwLock<Vec<u64>>,
}

impl Journal {
    /// Opens `data_dir/journal`; returns it with the leftover segments of an
    /// earlier run, oldest first (they are live until compacted).
    pub fn open(data_dir: &Path) -> Result<Self, HistoryError> {
        let dir = data_dir.join("journal");
        std::fs::create_dir_all(&dir)
            .map_err(|e| HistoryError::Storage(format!("{}: {e}", dir.display())))?;
        let mut seqs: Vec<u64> = std::fs::read_dir(&dir)
            .map_err(|e| HistoryError::Storage(format!("{}: {e}", dir.display())))?
            .filter_map(|e| {
                let name = e.ok()?.file_name();
                name.to_str()?.strip_suffix(".db")?.parse().ok()
            })
            .collect();
        seqs.sort_unstable();
        Ok(Self {
            dir,
            live: RwLock::new(seqs),
        })
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:016}.db"))
    }

    /// The sequence number for the next new segment.
    pub fn next_seq(&self) -> u64 {
        self.live.read().last().map_or(1, |s| s + 1)
    }

    /// Leftover segments, oldest first.
    pub fn leftovers(&self) -> Vec<u64> {
        self.live.read().clone()
    }

    /// Creates segment `seq` (or reopens it after a failed first commit) and
    /// makes it live. The directory is synced so the file survives power loss.
    fn create(&self, seq: u64) -> Result<Connection, HistoryError> {
        let c = open_conn(&self.path(seq), OpenFlags::default())?;
        c.execute_batch(&schema("rows"))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| HistoryError::Storage(format!("{}: {e}", self.dir.display())))?;
        let mut live = self.live.write();
        if !live.contains(&seq) {
            live.push(seq);
        }
        Ok(c)
    }

    /// Deletes a compacted segment.
    fn remove(&self, seq: u64) {
        let mut live = self.live.write();
        live.retain(|s| *s != seq);
        let path = self.path(seq);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }

    /// Rows of `q`'s device and range in segment `seq`, in key order, at most
    /// `q.limit + 1`. The caller holds `live`'s read lock.
    pub(super) fn scan(&self, seq: u64, q: &Range) -> Result<Vec<StoredRow>, HistoryError> {
        let c = match open_conn(&self.path(seq), OpenFlags::SQLITE_OPEN_READ_WRITE) {
            Ok(c) => c,
            // Not created yet by the writer (listed before its first commit).
            Err(_) if !self.path(seq).exists() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        page_rows(&c, "rows", q)
    }
}

/// Moves segment `seq` into `history.db` in one transaction (each device's
/// index pages are written once per segment, however many of its records
/// the segment holds), then deletes it.
pub(super) fn compact(
    conn: &mut Connection,
    journal: &Journal,
    seq: u64,
) -> Result<(), HistoryError> {
    let path = journal.path(seq);
    if !path.exists() {
        journal.remove(seq);
        return Ok(());
    }
    conn.execute(
        "ATTACH DATABASE ?1 AS seg",
        [path.to_string_lossy().as_ref()],
    )?;
    let moved = (|| -> Result<(), HistoryError> {
        let tx = conn.transaction()?;
        // A segment whose first commit failed may lack its table.
        tx.execute_batch(&schema("seg.rows"))?;
        tx.execute(
            "INSERT OR IGNORE INTO main.positions (device_id, fix_ms, received_ms, lat, lon, \
             altitude_m, speed_kmh, course_deg, satellites, valid, protocol, attributes) \
             SELECT device_id, fix_ms, received_ms, lat, lon, altitude_m, speed_kmh, course_deg, \
             satellites, valid, protocol, attributes FROM seg.rows",
            [],
        )?;
        tx.execute(
            "INSERT INTO main.latest (device_id, position_id, fix_ms) \
             SELECT j.device_id, \
                    (SELECT MAX(p.id) FROM main.positions p WHERE p.device_id = j.device_id AND p.fix_ms = j.m), \
                    j.m \
             FROM (SELECT device_id, MAX(fix_ms) AS m FROM seg.rows GROUP BY device_id) j WHERE true \
             ON CONFLICT (device_id) DO UPDATE SET position_id = excluded.position_id, \
             fix_ms = excluded.fix_ms WHERE excluded.fix_ms > latest.fix_ms",
            [],
        )?;
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
    /// Move a sealed segment holding `rows` records into `history.db`;
    /// `conn` is the writer's connection to it, closed here (closing
    /// checkpoints its WAL, an fsync the writer need not wait for).
    Compact {
        seq: u64,
        rows: usize,
        conn: Connection,
    },
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
    fn compact(&self, conn: &mut Connection, seq: u64) -> Result<(), HistoryError> {
        if self.faults.fail_compactions.load(Ordering::Relaxed) {
            return Err(HistoryError::Storage(
                "database or disk is full (injected)".into(),
            ));
        }
        compact(conn, &self.journal, seq)
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
            Job::Compact {
                seq,
                rows,
                conn: sealed,
            } => {
                drop(sealed);
                let mut wait = Duration::from_millis(100);
                loop {
                    let r = c.compact(&mut conn, seq);
                    c.report(&r);
                    let Err(e) = r else { break };
                    metrics.compaction_errors.inc();
                    tracing::error!(error = %e, segment = seq, "history compaction failed; retrying");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                metrics
                    .journal_records
                    .sub(i64::try_from(rows).unwrap_or(0));
            }
            Job::Flush(done) => {
                let _ = done.send(Ok(()));
            }
        }
    }
}

/// The segment being written.
struct Open {
    seq: u64,
    conn: Connection,
    rows: usize,
    opened: Instant,
}

/// A full segment on its way to the compactor.
struct Sealed {
    seq: u64,
    rows: usize,
    conn: Connection,
}

/// The writer's side of the journal: the open segment and the next number.
struct Segments {
    journal: Arc<Journal>,
    open: Option<Open>,
    next: u64,
}

impl Segments {
    /// Appends `rows` in one transaction (one fsync); seals the segment when
    /// it is full or old (or `seal` is set). Returns the sealed segment.
    fn append(
        &mut self,
        rows: &[StoredRow],
        faults: &Faults,
        seal: bool,
    ) -> (Result<(), HistoryError>, Option<Sealed>) {
        if faults.fail_commits.load(Ordering::Relaxed) {
            let e = HistoryError::Storage("database or disk is full (injected)".into());
            return (Err(e), None);
        }
        let open = match self.open.take() {
            Some(o) => o,
            None => match self.journal.create(self.next) {
                Ok(conn) => {
                    self.next += 1;
                    Open {
                        seq: self.next - 1,
                        conn,
                        rows: 0,
                        opened: Instant::now(),
                    }
                }
                Err(e) => return (Err(e), None),
            },
        };
        let mut open = open;
        let result = write(&mut open.conn, rows);
        if result.is_ok() {
            open.rows += rows.len();
        }
        self.open = Some(open);
        let sealed = if seal {
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
            .is_some_and(|o| o.rows >= SEGMENT_ROWS || o.opened.elapsed() >= SEGMENT_AGE);
        if due {
            self.seal()
        } else {
            None
        }
    }

    /// Takes the open segment if it holds records; the next append opens
    /// a new one.
    fn seal(&mut self) -> Option<Sealed> {
        match self.open.take() {
            Some(o) if o.rows > 0 => Some(Sealed {
                seq: o.seq,
                rows: o.rows,
                conn: o.conn,
            }),
            other => {
                self.open = other;
                None
            }
        }
    }
}

fn bind(st: &mut Statement<'_>, base: usize, r: &StoredRow) -> rusqlite::Result<()> {
    st.raw_bind_parameter(base + 1, &r.device_id)?;
    st.raw_bind_parameter(base + 2, r.fix_ms)?;
    st.raw_bind_parameter(base + 3, r.received_ms)?;
    st.raw_bind_parameter(base + 4, r.lat)?;
    st.raw_bind_parameter(base + 5, r.lon)?;
    st.raw_bind_parameter(base + 6, r.altitude_m)?;
    st.raw_bind_parameter(base + 7, r.speed_kmh)?;
    st.raw_bind_parameter(base + 8, r.course_deg)?;
    st.raw_bind_parameter(base + 9, r.satellites)?;
    st.raw_bind_parameter(base + 10, r.valid)?;
    st.raw_bind_parameter(base + 11, &r.protocol)?;
    st.raw_bind_parameter(base + 12, &r.attributes)
}

/// Writes `rows` into a segment in one transaction, [`CHUNK`] rows per
/// statement (one statement per row spends most of its time in the VM's
/// per-statement set-up).
fn write(conn: &mut Connection, rows: &[StoredRow]) -> Result<(), HistoryError> {
    static MANY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let many = MANY.get_or_init(|| format!("{INSERT_HEAD}{}", vec![ROW_PARAMS; CHUNK].join(",")));
    let tx = conn.transaction()?;
    {
        let mut chunks = rows.chunks_exact(CHUNK);
        if chunks.len() > 0 {
            let mut st = tx.prepare_cached(many)?;
            for chunk in &mut chunks {
                for (i, r) in chunk.iter().enumerate() {
                    bind(&mut st, i * 12, r)?;
                }
                st.raw_execute()?;
            }
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut st = tx.prepare_cached(&format!("{INSERT_HEAD}{ROW_PARAMS}"))?;
            for r in rest {
                bind(&mut st, 0, r)?;
                st.raw_execute()?;
            }
        }
    }
    tx.commit()?;
    Ok(())
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
                let Some(mut s) = segments.take() else { return };
                let Ok((s, sealed)) = tokio::task::spawn_blocking(move || {
                    let sealed = s.seal();
                    (s, sealed)
                })
                .await
                else {
                    return;
                };
                segments = Some(s);
                send_sealed(&w, sealed);
                continue;
            }
        };
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let mut n = 0;
        let deadline = tokio::time::Instant::now() + GATHER;
        let mut next = Some(first);
        while let Some(r) = next {
            match r {
                Request::Append { rows, done } => {
                    n += rows.len();
                    batch.push((rows, done));
                }
                Request::Flush(done) => flushes.push(done),
            }
            if n >= MAX_BATCH || !flushes.is_empty() {
                break;
            }
            next = match rx.try_recv() {
                Ok(r) => Some(r),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten()
                }
            };
        }
        let Some(mut s) = segments.take() else { return };
        let faults = Arc::clone(&w.faults);
        let seal = !flushes.is_empty();
        let started = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let rows: Vec<StoredRow> = batch.iter_mut().flat_map(|(r, _)| r.drain(..)).collect();
            let (result, sealed) = if rows.is_empty() {
                (Ok(()), s.seal())
            } else {
                s.append(&rows, &faults, seal)
            };
            (s, result, sealed, batch)
        })
        .await;
        let (s, result, sealed, batch) = match joined {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "history writer task failed");
                return;
            }
        };
        segments = Some(s);
        if n > 0 {
            w.metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
            match &result {
                Ok(()) => {
                    w.metrics.records.inc_by(n as u64);
                    w.metrics.journal_records.add(i64::try_from(n).unwrap_or(0));
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
        for (_, done) in batch {
            if let Some(done) = done {
                let _ = done.send(result.clone());
            }
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

fn send_sealed(w: &Writer, sealed: Option<Sealed>) {
    if let Some(Sealed { seq, rows, conn }) = sealed {
        let _ = w.jobs.send(Job::Compact { seq, rows, conn });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stored(device: &str, fix_ms: i64, lat: f64) -> StoredRow {
        StoredRow {
            device_id: device.into(),
            fix_ms,
            received_ms: fix_ms + 5,
            lat,
            lon: 10.0,
            altitude_m: 1.0,
            speed_kmh: 2.0,
            course_deg: 3.0,
            satellites: Some(7),
            valid: true,
            protocol: "teltonika".into(),
            attributes: String::new(),
        }
    }

    #[test]
    fn multi_row_chunks_and_the_remainder_are_all_written() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let mut c = journal.create(1).unwrap();
        let rows: Vec<StoredRow> = (0..(CHUNK * 2 + 3) as i64)
            .map(|i| stored("a", i, 50.0))
            .collect();
        write(&mut c, &rows).unwrap();
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM rows", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, rows.len() as i64);
        let last: (i64, i64) = c
            .query_row(
                "SELECT fix_ms, received_ms FROM rows ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(last, (34, 39));
    }

    #[test]
    fn leftover_segments_are_found_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        drop(journal.create(7).unwrap());
        drop(journal.create(3).unwrap());
        let again = Journal::open(dir.path()).unwrap();
        assert_eq!(again.leftovers(), vec![3, 7]);
        assert_eq!(again.next_seq(), 8);
    }
}
