//! The SQLite history file (`history.db`, separate from the tenancy and
//! access-log database so the two writers never wait for each other's
//! lock). WAL with `synchronous=FULL`: a commit is on disk when it returns.
//! One writer connection owned by the compactor; readers use their own.
//!
//! A duplicate — same device, fix time and coordinates, as devices resend
//! after a lost ack — hits the unique index and is ignored, so it is stored
//! once and acked again. `latest` keeps each device's newest row id so a
//! start-up reads one row per device instead of scanning the history.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags};

use super::journal::Journal;
use super::{page_from_rows, HistoryError, Page, Range, StoredRow};
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

/// The compactor's page cache, in KiB (as SQLite takes a negative
/// `cache_size`). A full segment (65,536 rows) dirties ~16 MB of table and
/// index pages; with SQLite's default 2 MB cache the transaction spilled
/// pages into the WAL and read them back before it could commit.
const WRITER_CACHE_KIB: i64 = -(64 << 10);

/// The history database.
pub struct SqliteHistory {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
}

pub(super) fn open_conn(path: &Path, flags: OpenFlags) -> Result<Connection, HistoryError> {
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
        let c = open_conn(&self.path, OpenFlags::default())?;
        c.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        Ok(c)
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

    /// One page of `q`: `history.db` merged with the journal's live
    /// segments, ordered by fix time then coordinates (the unique key, so
    /// the order is the same wherever a row lives), duplicates dropped.
    pub fn range(&self, q: &Range, journal: &Journal) -> Result<Page, HistoryError> {
        // Held across both reads: the compactor deletes a segment only
        // after its rows are committed here, and not while we read.
        let live = journal.live.read();
        let mut rows = self.with_reader(|c| page_rows(c, "positions", q))?;
        for l in live.iter() {
            rows.extend(journal.scan(l, q)?);
        }
        drop(live);
        rows.sort_by(key_order);
        rows.dedup_by(|a, b| key_order(a, b).is_eq());
        Ok(page_from_rows(rows, q.limit))
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
            let tx = c.unchecked_transaction()?;
            // Oldest rows first (rowid order is arrival order): stop at the
            // first batch holding nothing old enough.
            tx.execute(
                "CREATE TEMP TABLE IF NOT EXISTS purge_batch (id INTEGER PRIMARY KEY)",
                [],
            )?;
            tx.execute("DELETE FROM purge_batch", [])?;
            tx.execute(
                "INSERT INTO purge_batch SELECT id FROM \
                 (SELECT id, received_ms FROM positions ORDER BY id LIMIT ?2) \
                 WHERE received_ms < ?1",
                params![before_ms, batch],
            )?;
            // A device whose newest row goes leaves `latest` with it: once
            // the table is empty SQLite reuses row ids, and a restart must
            // not give the device another device's row.
            tx.execute(
                "DELETE FROM latest WHERE device_id IN \
                 (SELECT p.device_id FROM positions p JOIN purge_batch b ON b.id = p.id) \
                 AND position_id IN (SELECT id FROM purge_batch)",
                [],
            )?;
            let n = tx.execute(
                "DELETE FROM positions WHERE id IN (SELECT id FROM purge_batch)",
                [],
            )?;
            tx.commit()?;
            Ok(n)
        })
    }

    pub fn count(&self) -> Result<i64, HistoryError> {
        self.with_reader(|c| Ok(c.query_row("SELECT COUNT(*) FROM positions", [], |r| r.get(0))?))
    }
}

/// The first `q.limit + 1` rows of `q` in `table` (`positions` here, `rows`
/// in a journal segment), in key order.
pub(super) fn page_rows(
    c: &Connection,
    table: &str,
    q: &Range,
) -> Result<Vec<StoredRow>, HistoryError> {
    let (f, lat, lon) = q
        .after
        .map_or((i64::MIN, f64::MIN, f64::MIN), |c| (c.fix_ms, c.lat, c.lon));
    let limit = i64::try_from(q.limit.saturating_add(1)).unwrap_or(i64::MAX);
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {table} \
         WHERE device_id = ?1 AND fix_ms >= ?2 AND fix_ms < ?3 AND (fix_ms, lat, lon) > (?4, ?5, ?6) \
         ORDER BY fix_ms, lat, lon LIMIT ?7"
    ))?;
    let rows = st.query_map(
        params![q.device.as_str(), q.from_ms, q.to_ms, f, lat, lon, limit],
        row,
    )?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?.1);
    }
    Ok(out)
}

/// Order by the unique key (device aside): fix time, then coordinates,
/// with -0.0 equal to 0.0 as SQLite compares them.
pub(super) fn key_order(a: &StoredRow, b: &StoredRow) -> std::cmp::Ordering {
    let z = |x: f64| x + 0.0;
    a.fix_ms
        .cmp(&b.fix_ms)
        .then(z(a.lat).total_cmp(&z(b.lat)))
        .then(z(a.lon).total_cmp(&z(b.lon)))
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
