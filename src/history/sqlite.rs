//! The SQLite history file (`history.db`, separate from the tenancy and
//! access-log database so the two writers never wait for each other's
//! lock). WAL with `synchronous=FULL`: a commit is on disk when it returns.
//! One writer connection owned by the writer task; readers use their own.
//!
//! A duplicate — same device, fix time and coordinates, as devices resend
//! after a lost ack — hits the unique index and is ignored, so it is stored
//! once and acked again. `latest` keeps each device's newest row id so a
//! start-up reads one row per device instead of scanning the history.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags};
use tokio::sync::mpsc;

use super::{Cursor, Faults, HistoryError, Page, Range, Request, StorageHealth, StoredRow};
use super::{GATHER, MAX_BATCH};
use crate::model::Position;

/// Schema versions, applied in order; `PRAGMA user_version` records the last.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE positions (
        id          INTEGER PRIMARY KEY,
        device_id   TEXT    NOT NULL,
        fix_ms      INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        lat         REAL    NOT NULL,
        lon         REAL    NOT NULL,
        altitude_m  REAL    NOT NULL,
        speed_kmh   REAL    NOT NULL,
        course_deg  REAL    NOT NULL,
        satellites  INTEGER,
        valid       INTEGER NOT NULL,
        protocol    TEXT    NOT NULL,
        attributes  TEXT    NOT NULL
    );
    CREATE UNIQUE INDEX positions_device_fix ON positions (device_id, fix_ms, lat, lon);
    CREATE TABLE latest (
        device_id   TEXT PRIMARY KEY,
        position_id INTEGER NOT NULL,
        fix_ms      INTEGER NOT NULL
    ) WITHOUT ROWID;
"];

const COLUMNS: &str = "id, device_id, fix_ms, received_ms, lat, lon, altitude_m, speed_kmh, \
                       course_deg, satellites, valid, protocol, attributes";

/// The history database.
pub struct SqliteHistory {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
}

fn open_conn(path: &Path, flags: OpenFlags) -> Result<Connection, HistoryError> {
    let c = Connection::open_with_flags(path, flags)?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    Ok(c)
}

impl SqliteHistory {
    /// Opens (creating and migrating) `history.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, HistoryError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| HistoryError::Storage(format!("{}: {e}", data_dir.display())))?;
        let path = data_dir.join("history.db");
        let mut c = open_conn(&path, OpenFlags::default())?;
        let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let start = usize::try_from(version).unwrap_or(usize::MAX);
        for (i, m) in MIGRATIONS.iter().enumerate().skip(start) {
            let tx = c.transaction()?;
            tx.execute_batch(m)?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            )?;
            tx.commit()?;
        }
        if start > MIGRATIONS.len() {
            return Err(HistoryError::Storage(format!(
                "history.db has schema version {version}, newer than this trackgate knows"
            )));
        }
        Ok(Self {
            path,
            readers: Mutex::new(Vec::new()),
        })
    }

    /// The writer's own connection.
    pub(super) fn writer(&self) -> Result<Connection, HistoryError> {
        open_conn(&self.path, OpenFlags::default())
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, HistoryError>,
    ) -> Result<T, HistoryError> {
        let conn = match self.readers.lock().pop() {
            Some(c) => c,
            None => open_conn(&self.path, OpenFlags::default())?,
        };
        let r = f(&conn);
        self.readers.lock().push(conn);
        r
    }

    pub fn range(&self, q: &Range) -> Result<Page, HistoryError> {
        let (after_fix, after_id) = q.after.map_or((i64::MIN, i64::MIN), |c| (c.fix_ms, c.id));
        let limit = i64::try_from(q.limit.saturating_add(1)).unwrap_or(i64::MAX);
        self.with_reader(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM positions \
                 WHERE device_id = ?1 AND fix_ms >= ?2 AND fix_ms < ?3 AND (fix_ms, id) > (?4, ?5) \
                 ORDER BY fix_ms, id LIMIT ?6"
            ))?;
            let rows = st.query_map(
                params![
                    q.device.as_str(),
                    q.from_ms,
                    q.to_ms,
                    after_fix,
                    after_id,
                    limit
                ],
                row,
            )?;
            let mut out: Vec<(i64, Position)> = Vec::new();
            for r in rows {
                let (id, stored) = r?;
                if let Some(p) = stored.into_position() {
                    out.push((id, p));
                }
            }
            let next = if out.len() > q.limit {
                out.truncate(q.limit);
                out.last().map(|(id, p)| Cursor {
                    fix_ms: p.fix_time.timestamp_millis(),
                    id: *id,
                })
            } else {
                None
            };
            Ok(Page {
                positions: out.into_iter().map(|(_, p)| p).collect(),
                next,
            })
        })
    }

    pub fn latest_all(&self) -> Result<Vec<Position>, HistoryError> {
        self.with_reader(|c| {
            let cols = COLUMNS
                .split(", ")
                .map(|col| format!("p.{}", col.trim()))
                .collect::<Vec<_>>()
                .join(", ");
            let mut st = c.prepare(&format!(
                "SELECT {cols} FROM latest l JOIN positions p ON p.id = l.position_id"
            ))?;
            let rows = st.query_map([], row)?;
            let mut out = Vec::new();
            for r in rows {
                if let Some(p) = r?.1.into_position() {
                    out.push(p);
                }
            }
            Ok(out)
        })
    }

    pub fn purge(&self, before_ms: i64, batch: usize) -> Result<usize, HistoryError> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        self.with_reader(|c| {
            // Oldest rows first (rowid order is arrival order): stop at the
            // first batch holding nothing old enough.
            let n = c.execute(
                "DELETE FROM positions WHERE id IN \
                 (SELECT id FROM positions ORDER BY id LIMIT ?2) AND received_ms < ?1",
                params![before_ms, batch],
            )?;
            Ok(n)
        })
    }

    pub fn count(&self) -> Result<i64, HistoryError> {
        self.with_reader(|c| Ok(c.query_row("SELECT COUNT(*) FROM positions", [], |r| r.get(0))?))
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, StoredRow)> {
    Ok((
        r.get(0)?,
        StoredRow {
            device_id: r.get(1)?,
            fix_ms: r.get(2)?,
            received_ms: r.get(3)?,
            lat: r.get(4)?,
            lon: r.get(5)?,
            altitude_m: r.get(6)?,
            speed_kmh: r.get(7)?,
            course_deg: r.get(8)?,
            satellites: r.get(9)?,
            valid: r.get(10)?,
            protocol: r.get(11)?,
            attributes: r.get(12)?,
        },
    ))
}

/// Writes `rows` in one transaction: one fsync for the lot.
fn commit(conn: &mut Connection, rows: &[StoredRow], faults: &Faults) -> Result<(), HistoryError> {
    if faults.fail_commits.load(Ordering::Relaxed) {
        return Err(HistoryError::Storage(
            "database or disk is full (injected)".into(),
        ));
    }
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO positions (device_id, fix_ms, received_ms, lat, lon, altitude_m, \
             speed_kmh, course_deg, satellites, valid, protocol, attributes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        let mut latest = tx.prepare_cached(
            "INSERT INTO latest (device_id, position_id, fix_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (device_id) DO UPDATE SET position_id = excluded.position_id, \
             fix_ms = excluded.fix_ms WHERE excluded.fix_ms > latest.fix_ms",
        )?;
        for r in rows {
            let inserted = insert.execute(params![
                r.device_id,
                r.fix_ms,
                r.received_ms,
                r.lat,
                r.lon,
                r.altitude_m,
                r.speed_kmh,
                r.course_deg,
                r.satellites,
                r.valid,
                r.protocol,
                r.attributes
            ])?;
            if inserted == 1 {
                latest.execute(params![r.device_id, tx.last_insert_rowid(), r.fix_ms])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// The writer: gathers queued appends (up to `MAX_BATCH` records or
/// `GATHER`), commits them once, releases their waiters. A failed commit
/// fails every waiter of the batch (their devices are not acked and
/// resend); the next batch tries again, so recovery needs no restart.
pub(super) async fn run_writer(
    conn: Connection,
    mut rx: mpsc::Receiver<Request>,
    health: Arc<StorageHealth>,
    faults: Arc<Faults>,
    metrics: crate::metrics::HistoryMetrics,
) {
    let mut conn = Some(conn);
    while let Some(first) = rx.recv().await {
        let mut n = first.rows.len();
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + GATHER;
        while n < MAX_BATCH {
            let next = match rx.try_recv() {
                Ok(r) => Some(r),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten()
                }
            };
            let Some(r) = next else { break };
            n += r.rows.len();
            batch.push(r);
        }
        let Some(mut c) = conn.take() else { return };
        let faults2 = Arc::clone(&faults);
        let started = std::time::Instant::now();
        let (c, result, batch) = match tokio::task::spawn_blocking(move || {
            let rows: Vec<StoredRow> = batch.iter_mut().flat_map(|r| r.rows.drain(..)).collect();
            let result = commit(&mut c, &rows, &faults2);
            (c, result, batch)
        })
        .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "history writer task failed");
                return;
            }
        };
        conn = Some(c);
        metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(()) => metrics.records.inc_by(n as u64),
            Err(e) => {
                metrics.errors.inc();
                tracing::error!(error = %e, records = n, "history commit failed; those records are not acked");
            }
        }
        metrics.healthy.set(i64::from(result.is_ok()));
        health.set(&result);
        for r in batch {
            if let Some(done) = r.done {
                let _ = done.send(result.clone());
            }
        }
    }
}
