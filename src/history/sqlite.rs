//! The SQLite history file (`history.db`, separate from the tenancy and
//! access-log database so the two writers never wait for each other's
//! lock). WAL with `synchronous=FULL`: a commit is on disk when it returns.
//! One writer connection owned by the compactor; readers use their own.
//!
//! Records are stored in chunks: one row holds one device's records (at
//! most [`CHUNK_ROWS`], their fix times within [`CHUNK_SPAN_MS`] of the
//! first) as one checksummed frame of the journal's format. A row per
//! record cost two B-tree inserts per record (table and unique index) and
//! held the compactor at ~3.5 µs a record, below what the journal takes in;
//! a chunk costs two per compaction per device. Queries read a device's
//! chunks by fix time (`chunks_device_fix` covers the overlap test; the
//! span bound keeps the scan short), decode, filter and merge.
//!
//! A duplicate — same device, fix time and coordinates, as devices resend
//! after a lost ack — is dropped before its chunk is written: the
//! compactor decodes the device's stored chunks that overlap the new
//! records' fix times (none, unless something was resent). `latest` keeps
//! each device's newest record itself, so a start-up reads one row per
//! device instead of scanning the history.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, Statement, Transaction};

use super::journal::Journal;
use super::segment::{self, RowRef};
use super::{page_from_rows, HistoryError, Page, Range, StoredRow};
use crate::model::Position;

/// The compactor's maps hash every row it stores (its device id, its
/// key); SipHash, std's default, was a tenth of the compactor's CPU.
/// aHash is as randomized per process, so device data cannot aim at
/// collisions.
type Fast = ahash::RandomState;

/// Most records in one chunk (~250 bytes each as the simulator sends them).
pub(super) const CHUNK_ROWS: usize = 1024;
/// A chunk's records have fix times at most this far after its first, so
/// a query for time `t` finds every chunk that may hold it among those
/// starting in `[t - CHUNK_SPAN_MS, t]`.
pub(super) const CHUNK_SPAN_MS: i64 = 60_000;

/// One schema step; `PRAGMA user_version` records the last applied.
enum Migration {
    Sql(&'static str),
    Rust(fn(&Transaction<'_>) -> Result<(), HistoryError>),
}

/// Schema versions, applied in order, each in its own transaction.
const MIGRATIONS: &[Migration] = &[
    Migration::Sql(
        "
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
",
    ),
    Migration::Rust(into_chunks),
];

/// Version 2: rows become chunks, `latest` holds the record itself. The
/// new `latest` is filled as the rows are stored, as a compaction does.
fn into_chunks(tx: &Transaction<'_>) -> Result<(), HistoryError> {
    tx.execute_batch(
        "
    DROP TABLE latest;
    CREATE TABLE latest (
        device_id   TEXT PRIMARY KEY,
        fix_ms      INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        row         BLOB    NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE chunks (
        id              INTEGER PRIMARY KEY,
        device_id       TEXT    NOT NULL,
        first_fix_ms    INTEGER NOT NULL,
        last_fix_ms     INTEGER NOT NULL,
        max_received_ms INTEGER NOT NULL,
        n               INTEGER NOT NULL,
        rows            BLOB    NOT NULL
    );
    CREATE INDEX chunks_device_fix ON chunks (device_id, first_fix_ms, last_fix_ms);
",
    )?;
    {
        let mut read = tx.prepare(&format!(
            "SELECT {COLUMNS} FROM positions ORDER BY device_id, fix_ms, lat, lon"
        ))?;
        let mut rows = read.query([])?;
        let mut batch: Vec<StoredRow> = Vec::new();
        while let Some(r) = rows.next()? {
            batch.push(row(r)?.1);
            if batch.len() == MIGRATION_BATCH {
                store_owned(tx, &batch)?;
                batch.clear();
            }
        }
        store_owned(tx, &batch)?;
    }
    tx.execute_batch("DROP TABLE positions;")?;
    Ok(())
}

/// Version-1 rows moved into chunks per transaction step.
const MIGRATION_BATCH: usize = 65_536;

pub(super) const COLUMNS: &str =
    "id, device_id, fix_ms, received_ms, lat, lon, altitude_m, speed_kmh, \
     course_deg, satellites, valid, protocol, attributes";

const INSERT_CHUNK: &str = "INSERT INTO chunks \
    (device_id, first_fix_ms, last_fix_ms, max_received_ms, n, rows) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// `latest` moves only forward in fix time.
const UPSERT_LATEST: &str = "INSERT INTO latest (device_id, fix_ms, received_ms, row) \
    VALUES (?1, ?2, ?3, ?4) ON CONFLICT (device_id) DO UPDATE SET fix_ms = excluded.fix_ms, \
    received_ms = excluded.received_ms, row = excluded.row WHERE excluded.fix_ms > latest.fix_ms";

/// The compactor's page cache, in KiB (as SQLite takes a negative
/// `cache_size`): a compaction's chunks and index pages stay in memory
/// until its commit instead of spilling into the WAL and being read back.
const WRITER_CACHE_KIB: i64 = -(64 << 10);

/// Page size of a new `history.db` (SQLite's largest). Chunks are blobs of
/// up to ~120 KiB: with 4 KiB pages each spilled into a chain of overflow
/// pages, every one a B-tree step, a WAL frame and a checkpoint copy. At
/// 64 KiB the compactor spends 35–45% less CPU per record and a restart
/// with 1M devices takes 3.2 instead of 3.8 s (benches/README.md). A file
/// created with another size keeps it.
const PAGE_SIZE: i64 = 65_536;

/// The history database.
pub struct SqliteHistory {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
}

pub(super) fn open_conn(path: &Path, flags: OpenFlags) -> Result<Connection, HistoryError> {
    let c = Connection::open_with_flags(path, flags)?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    // Before WAL mode: it takes effect only on a file not yet written.
    c.pragma_update(None, "page_size", PAGE_SIZE)?;
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
        if start > MIGRATIONS.len() {
            return Err(HistoryError::Storage(format!(
                "history.db has schema version {version}, newer than this trackgate knows"
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(start) {
            let tx = c.transaction()?;
            match m {
                Migration::Sql(sql) => tx.execute_batch(sql)?,
                Migration::Rust(step) => step(&tx)?,
            }
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            )?;
            tx.commit()?;
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
        let mut rows = self.with_reader(|c| page_rows(c, q))?;
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
            let mut st = c.prepare("SELECT row FROM latest")?;
            let mut rows = st.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let latest = decode(r.get_ref(0)?)?;
                out.extend(latest.into_iter().filter_map(StoredRow::into_position));
            }
            Ok(out)
        })
    }

    /// Deletes the oldest chunks (row id order is arrival order) holding
    /// about `batch` records, those of them whose every record was received
    /// before `before_ms`; returns how many records went. The caller stops
    /// at the first batch that deletes nothing.
    pub fn purge(&self, before_ms: i64, batch: usize) -> Result<usize, HistoryError> {
        self.with_reader(|c| {
            let tx = c.unchecked_transaction()?;
            let mut doomed = Vec::new();
            let mut seen = 0usize;
            {
                let mut st =
                    tx.prepare_cached("SELECT id, max_received_ms, n FROM chunks ORDER BY id")?;
                let mut rows = st.query([])?;
                while seen < batch.max(1) {
                    let Some(r) = rows.next()? else { break };
                    let (id, received, n): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                    let n = usize::try_from(n).unwrap_or(0);
                    seen = seen.saturating_add(n);
                    if received < before_ms {
                        doomed.push((id, n));
                    }
                }
            }
            let mut purged = 0;
            let mut forget = tx.prepare_cached(
                "DELETE FROM latest WHERE device_id = \
                 (SELECT device_id FROM chunks WHERE id = ?1) \
                 AND fix_ms BETWEEN (SELECT first_fix_ms FROM chunks WHERE id = ?1) \
                 AND (SELECT last_fix_ms FROM chunks WHERE id = ?1) AND received_ms < ?2",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM chunks WHERE id = ?1")?;
            for (id, n) in doomed {
                // A device whose newest record goes leaves `latest` with it,
                // as it would leave the history.
                forget.execute(params![id, before_ms])?;
                delete.execute([id])?;
                purged += n;
            }
            drop((forget, delete));
            tx.commit()?;
            Ok(purged)
        })
    }

    pub fn count(&self) -> Result<i64, HistoryError> {
        self.with_reader(|c| {
            Ok(c.query_row("SELECT COALESCE(SUM(n), 0) FROM chunks", [], |r| r.get(0))?)
        })
    }
}

/// Stores `rows` (any devices, any order, possibly resent) in `tx`: each
/// device's records not stored yet, as chunks, and its `latest` moved
/// forward. One overlap lookup per device, however many records it sent.
pub(super) fn store(tx: &Transaction<'_>, rows: &[RowRef<'_>]) -> Result<(), HistoryError> {
    // Grouped by device, then each (small, mostly ordered) group sorted:
    // sorting the whole segment by device id spent a quarter of the
    // compactor in string compares and moves.
    let mut by_device: HashMap<&str, Vec<&RowRef<'_>>, Fast> = HashMap::default();
    for r in rows {
        by_device.entry(r.device_id).or_default().push(r);
    }
    let mut devices: Vec<(&str, Vec<&RowRef<'_>>)> = by_device.into_iter().collect();
    // In device order, so the index is written front to back.
    devices.sort_unstable_by_key(|d| d.0);
    let mut insert = tx.prepare_cached(INSERT_CHUNK)?;
    let mut overlapping = tx.prepare_cached(OVERLAPPING)?;
    let mut upsert = tx.prepare_cached(UPSERT_LATEST)?;
    let mut buf = Vec::new();
    // A fix stamped too far ahead of its receipt is stored but never the
    // device's latest (see `Position::is_from_the_future`).
    let ahead = crate::model::MAX_FIX_AHEAD_MS;
    for (_, mut device) in devices {
        device.sort_by(key_order);
        device.dedup_by(|a, b| key_order(a, b).is_eq());
        let (Some(&first), Some(&last)) = (device.first(), device.last()) else {
            continue;
        };
        let stored = stored_keys(&mut overlapping, first, last.fix_ms)?;
        if !stored.is_empty() {
            device.retain(|r| !stored.contains(&key(r)));
        }
        write_chunks(&mut insert, &device, &mut buf)?;
        if let Some(newest) = device
            .iter()
            .rev()
            .find(|r| !r.lat.is_nan() && r.fix_ms <= r.received_ms.saturating_add(ahead))
        {
            put_latest(&mut upsert, newest, &mut buf)?;
        }
    }
    Ok(())
}

/// [`store`] for rows read from an older schema or segment format.
pub(super) fn store_owned(tx: &Transaction<'_>, rows: &[StoredRow]) -> Result<(), HistoryError> {
    let mut bytes = Vec::new();
    for part in rows.chunks(CHUNK_ROWS) {
        segment::encode_frame(part, &mut bytes);
    }
    store(tx, &segment::read_rows(&bytes).0)
}

/// A device's chunks that may hold a fix in `[from, to]`.
const OVERLAPPING: &str = "SELECT rows FROM chunks WHERE device_id = ?1 \
    AND first_fix_ms >= ?2 AND first_fix_ms <= ?3 AND last_fix_ms >= ?4";

/// The keys stored for `first`'s device with fix times from `first`'s to
/// `to`.
fn stored_keys(
    overlapping: &mut Statement<'_>,
    first: &RowRef<'_>,
    to: i64,
) -> Result<HashSet<(i64, u64, u64), Fast>, HistoryError> {
    let from = first.fix_ms;
    let mut rows = overlapping.query(params![
        first.device_id,
        from.saturating_sub(CHUNK_SPAN_MS),
        to,
        from
    ])?;
    let mut keys = HashSet::default();
    while let Some(r) = rows.next()? {
        let blob = r.get_ref(0)?.as_blob().ok();
        match blob.and_then(segment::chunk_refs) {
            Some(stored) => keys.extend(stored.iter().map(key)),
            // A damaged chunk must not stop every device's compaction (and
            // so, once the journal is full, every ack): at worst a resend
            // is stored twice. Queries of it fail with the reason.
            None => tracing::error!(
                device = first.device_id,
                "history.db: a chunk fails its checksum; duplicates of it are not detected"
            ),
        }
    }
    Ok(keys)
}

/// The unique key as a hashable value, -0.0 and 0.0 alike.
fn key(r: &impl Keyed) -> (i64, u64, u64) {
    let (fix, lat, lon) = r.key();
    (fix, (lat + 0.0).to_bits(), (lon + 0.0).to_bits())
}

/// Writes one device's `rows` (in key order, none stored yet) as chunks.
fn write_chunks(
    insert: &mut Statement<'_>,
    rows: &[&RowRef<'_>],
    buf: &mut Vec<u8>,
) -> Result<(), HistoryError> {
    let mut rest = rows;
    while let Some(first) = rest.first() {
        let len = rest
            .iter()
            .take(CHUNK_ROWS)
            .take_while(|r| r.fix_ms.saturating_sub(first.fix_ms) <= CHUNK_SPAN_MS)
            .count();
        let (chunk, after) = rest.split_at(len);
        buf.clear();
        segment::encode_frame_of(chunk.iter().copied(), buf);
        let last = chunk.last().map_or(first.fix_ms, |r| r.fix_ms);
        let received = chunk.iter().map(|r| r.received_ms).max().unwrap_or(0);
        insert.execute(params![
            first.device_id,
            first.fix_ms,
            last,
            received,
            i64::try_from(len).unwrap_or(i64::MAX),
            &buf[..]
        ])?;
        rest = after;
    }
    Ok(())
}

fn put_latest(
    upsert: &mut Statement<'_>,
    r: &RowRef<'_>,
    buf: &mut Vec<u8>,
) -> Result<(), HistoryError> {
    buf.clear();
    segment::encode_frame_of([r], buf);
    upsert.execute(params![r.device_id, r.fix_ms, r.received_ms, &buf[..]])?;
    Ok(())
}

/// A `rows` (or `latest.row`) value's records.
fn decode(v: rusqlite::types::ValueRef<'_>) -> Result<Vec<StoredRow>, HistoryError> {
    v.as_blob()
        .ok()
        .and_then(segment::decode_chunk)
        .ok_or_else(|| HistoryError::Storage("history.db: a chunk fails its checksum".into()))
}

/// The first `q.limit + 1` stored rows of `q`, in key order. Chunks come
/// in order of their first fix; once a page is full, a chunk starting
/// after its last row cannot add to it.
fn page_rows(c: &Connection, q: &Range) -> Result<Vec<StoredRow>, HistoryError> {
    let from = q.after.map_or(q.from_ms, |a| a.fix_ms.max(q.from_ms));
    let want = q.limit.saturating_add(1);
    let mut st = c.prepare_cached(
        "SELECT first_fix_ms, rows FROM chunks WHERE device_id = ?1 \
         AND first_fix_ms >= ?2 AND first_fix_ms < ?3 AND last_fix_ms >= ?4 \
         ORDER BY first_fix_ms",
    )?;
    let mut chunks = st.query(params![
        q.device.as_str(),
        from.saturating_sub(CHUNK_SPAN_MS),
        q.to_ms,
        from
    ])?;
    let mut out: Vec<StoredRow> = Vec::new();
    while let Some(c) = chunks.next()? {
        let first: i64 = c.get(0)?;
        if out.len() >= want && out.last().is_some_and(|l| first > l.fix_ms) {
            break;
        }
        out.extend(
            decode(c.get_ref(1)?)?
                .into_iter()
                .filter(|r| q.wants(r.fix_ms, r.lat, r.lon)),
        );
        if out.len() >= want {
            out.sort_by(key_order);
            out.truncate(want);
        }
    }
    out.sort_by(key_order);
    out.truncate(want);
    Ok(out)
}

/// A record's unique key (device aside): fix time and coordinates.
pub(super) trait Keyed {
    fn key(&self) -> (i64, f64, f64);
}

impl Keyed for StoredRow {
    fn key(&self) -> (i64, f64, f64) {
        (self.fix_ms, self.lat, self.lon)
    }
}

impl Keyed for RowRef<'_> {
    fn key(&self) -> (i64, f64, f64) {
        (self.fix_ms, self.lat, self.lon)
    }
}

impl Keyed for super::Cursor {
    fn key(&self) -> (i64, f64, f64) {
        (self.fix_ms, self.lat, self.lon)
    }
}

impl<T: Keyed> Keyed for &T {
    fn key(&self) -> (i64, f64, f64) {
        (*self).key()
    }
}

/// Order by the unique key: fix time, then coordinates, with -0.0 equal
/// to 0.0.
pub(super) fn key_order<T: Keyed>(a: &T, b: &T) -> std::cmp::Ordering {
    let z = |x: f64| x + 0.0;
    let (a, b) = (a.key(), b.key());
    a.0.cmp(&b.0)
        .then(z(a.1).total_cmp(&z(b.1)))
        .then(z(a.2).total_cmp(&z(b.2)))
}

pub(super) fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, StoredRow)> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::history::rows::test_row as rec;
    use crate::history::Cursor;
    use crate::model::DeviceId;

    const DEV: &str = "356307042441013";

    fn put(store: &SqliteHistory, rows: Vec<StoredRow>) {
        let mut c = store.writer().unwrap();
        let tx = c.transaction().unwrap();
        super::store_owned(&tx, &rows).unwrap();
        tx.commit().unwrap();
    }

    /// Every page of `device` in `[from, to)`, `limit` at a time.
    fn all(
        store: &SqliteHistory,
        journal: &Journal,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let page = store
                .range(
                    &Range {
                        device: DeviceId::new(DEV).unwrap(),
                        from_ms: from,
                        to_ms: to,
                        limit,
                        after,
                        records: crate::history::Records::Positions,
                    },
                    journal,
                )
                .unwrap();
            assert!(page.positions.len() <= limit);
            out.extend(
                page.positions
                    .iter()
                    .map(|p| (p.fix_time.timestamp_millis(), p.lat)),
            );
            after = page.next;
            if after.is_none() {
                return out;
            }
        }
    }

    fn chunks(store: &SqliteHistory) -> Vec<(i64, i64, i64)> {
        store
            .with_reader(|c| {
                let mut st =
                    c.prepare("SELECT first_fix_ms, last_fix_ms, n FROM chunks ORDER BY id")?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .unwrap()
    }

    #[test]
    fn chunks_are_bounded_by_span_and_size_and_resends_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteHistory::open(dir.path()).unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        // 3,000 records 20 ms apart (60 s): split by size, not span.
        let first: Vec<StoredRow> = (0..3000).map(|i| rec(DEV, i * 20, 50.0)).collect();
        put(&store, first.clone());
        let c = chunks(&store);
        assert_eq!(
            c.iter().map(|c| c.2).collect::<Vec<_>>(),
            vec![1024, 1024, 952]
        );
        // Records 2 minutes apart: one chunk each (span 60 s).
        put(
            &store,
            (0..3)
                .map(|i| rec(DEV, 100_000 + i * 120_000, 50.0))
                .collect(),
        );
        assert_eq!(chunks(&store).len(), 6);
        // A resend of some, with new ones between and a new coordinate for
        // an old fix time: only the new ones are stored.
        let mut again: Vec<StoredRow> = first[1000..1100].to_vec();
        again.extend((0..50).map(|i| rec(DEV, 60_000 + i, 50.0)));
        again.push(rec(DEV, 40, 51.0));
        again.push(rec(DEV, 40, 50.0));
        again.push(rec(DEV, 40, 51.0)); // twice in one batch
        put(&store, again);
        assert_eq!(store.count().unwrap(), 3000 + 3 + 50 + 1);
        let got = all(&store, &journal, i64::MIN, i64::MAX, 1000);
        assert_eq!(got.len(), 3054);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "key order, no repeats");
        assert_eq!(&got[2..5], &[(40, 50.0), (40, 51.0), (60, 50.0)]);
    }

    #[test]
    fn pages_and_ranges_cut_across_chunks_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteHistory::open(dir.path()).unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        // Out of order, in three batches, overlapping in time.
        let fixes: Vec<i64> = (0..400).map(|i| (i * 7919) % 400 * 1_000).collect();
        for batch in fixes.chunks(150) {
            put(&store, batch.iter().map(|&f| rec(DEV, f, 50.0)).collect());
        }
        put(&store, vec![rec("other", 5_000, 1.0)]);
        for limit in [1, 7, 64, 1000] {
            let got = all(&store, &journal, 123_000, 321_000, limit);
            let want: Vec<(i64, f64)> = (123..321).map(|s| (s * 1_000, 50.0)).collect();
            assert_eq!(got, want, "limit {limit}");
        }
        assert!(all(&store, &journal, 400_000, i64::MAX, 10).is_empty());
    }

    #[test]
    fn purge_takes_old_chunks_and_the_latest_that_went_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteHistory::open(dir.path()).unwrap();
        put(&store, vec![rec(DEV, 1_000, 50.0), rec("gone", 1_000, 1.0)]);
        put(&store, vec![rec(DEV, 900_000, 50.0)]);
        assert_eq!(store.latest_all().unwrap().len(), 2);
        assert_eq!(
            store.purge(500_000, 1).unwrap(),
            1,
            "about one record a batch"
        );
        assert_eq!(store.purge(500_000, 100).unwrap(), 1);
        assert_eq!(store.purge(500_000, 100).unwrap(), 0);
        assert_eq!(store.count().unwrap(), 1);
        let latest: Vec<String> = store
            .latest_all()
            .unwrap()
            .into_iter()
            .map(|p| p.device_id.as_str().to_string())
            .collect();
        assert_eq!(latest, vec![DEV.to_string()]);
    }

    #[test]
    fn a_damaged_chunk_fails_its_queries_not_the_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteHistory::open(dir.path()).unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        put(&store, vec![rec(DEV, 1_000, 50.0), rec(DEV, 2_000, 50.0)]);
        let c = store.writer().unwrap();
        // One bit flipped in the stored records.
        let mut blob: Vec<u8> = c
            .query_row("SELECT rows FROM chunks", [], |r| r.get(0))
            .unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        c.execute("UPDATE chunks SET rows = ?1", [&blob]).unwrap();
        // Storing more of that device still works.
        put(&store, vec![rec(DEV, 1_500, 50.0)]);
        assert_eq!(store.count().unwrap(), 3);
        let q = |from| Range {
            device: DeviceId::new(DEV).unwrap(),
            from_ms: from,
            to_ms: i64::MAX,
            limit: 10,
            after: None,
            records: crate::history::Records::Positions,
        };
        let e = store.range(&q(0), &journal).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
        // A range that does not touch it is answered.
        let p = store.range(&q(100_000), &journal).unwrap();
        assert!(p.positions.is_empty());
    }

    #[test]
    fn a_new_history_has_large_pages_and_an_old_one_keeps_its_own() {
        let page_size = |store: &SqliteHistory| -> i64 {
            store
                .with_reader(|c| Ok(c.pragma_query_value(None, "page_size", |r| r.get(0))?))
                .unwrap()
        };
        let new = tempfile::tempdir().unwrap();
        let store = SqliteHistory::open(new.path()).unwrap();
        assert_eq!(page_size(&store), PAGE_SIZE);
        let old = tempfile::tempdir().unwrap();
        {
            let c = Connection::open(old.path().join("history.db")).unwrap();
            c.pragma_update(None, "page_size", 4096).unwrap();
            c.execute_batch("CREATE TABLE earlier (x)").unwrap();
        }
        let store = SqliteHistory::open(old.path()).unwrap();
        assert_eq!(page_size(&store), 4096);
        put(&store, vec![rec(DEV, 1_000, 50.0)]);
        assert_eq!(store.count().unwrap(), 1);
    }

    #[test]
    fn a_version_1_history_moves_into_chunks() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = open_conn(&dir.path().join("history.db"), OpenFlags::default()).unwrap();
            let Migration::Sql(v1) = &MIGRATIONS[0] else {
                unreachable!()
            };
            c.execute_batch(v1).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            for (i, (dev, fix)) in [(DEV, 5_000), (DEV, 1_000), ("b", 7)]
                .into_iter()
                .enumerate()
            {
                c.execute(
                    "INSERT INTO positions (device_id, fix_ms, received_ms, lat, lon, altitude_m, \
                     speed_kmh, course_deg, satellites, valid, protocol, attributes) \
                     VALUES (?1, ?2, ?2, 50, 10, 1, 2, 3, NULL, 1, 'gt06', '{\"io1\":1}')",
                    params![dev, fix],
                )
                .unwrap();
                if i != 1 {
                    c.execute(
                        "INSERT INTO latest VALUES (?1, last_insert_rowid(), ?2)",
                        params![dev, fix],
                    )
                    .unwrap();
                }
            }
        }
        let store = SqliteHistory::open(dir.path()).unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        assert_eq!(store.count().unwrap(), 3);
        assert_eq!(
            all(&store, &journal, i64::MIN, i64::MAX, 10),
            vec![(1_000, 50.0), (5_000, 50.0)]
        );
        let mut latest: Vec<(String, i64, String)> = store
            .latest_all()
            .unwrap()
            .into_iter()
            .map(|p| {
                (
                    p.device_id.as_str().to_string(),
                    p.fix_time.timestamp_millis(),
                    p.protocol.to_string(),
                )
            })
            .collect();
        latest.sort();
        assert_eq!(
            latest,
            vec![
                (DEV.to_string(), 5_000, "gt06".to_string()),
                ("b".to_string(), 7, "gt06".to_string())
            ]
        );
        drop(store);
        // Opening again applies nothing twice.
        assert_eq!(SqliteHistory::open(dir.path()).unwrap().count().unwrap(), 3);
    }
}
