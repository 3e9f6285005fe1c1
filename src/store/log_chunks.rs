//! The access log's compacted form in `trackgate.db`: chunks of up to
//! [`CHUNK_ENTRIES`] entries of one permission (its *key*), in id order,
//! encoded as the journal commits them, one row each with the span of
//! their ids and times (`access_log_chunks`).
//!
//! A row per entry and an index over them cost the compactor 4–5 µs of
//! CPU per entry, a sixth of the gateway's CPU under logged reads
//! (benches/README.md); a chunk is one insert for all its entries. Chunks
//! hold one permission each so that reading a permission's log reads its
//! own entries only, however many others are logged beside it.
//!
//! The chain still covers every entry: an edited chunk fails verification
//! at the entry it changed. A chunk's key or span edited would hide its
//! entries from a permission's log while the chain stays intact, so
//! [`check`] recomputes them from the entries for `audit verify`.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::log_journal::{decode_entries, put_entry};
use super::{LogEntry, StoreError, StoredEntry};

/// Entries per chunk at most.
pub const CHUNK_ENTRIES: usize = 256;
/// The key of the operator's security entries.
pub const SECURITY_KEY: i64 = -1;
/// Rows read and grouped into chunks at a time when an earlier version's
/// log is converted (as many as a busy compaction run).
#[cfg(not(test))]
const CONVERT_BATCH: usize = 10_000;
/// Small in tests, so that a test's old log spans several batches.
#[cfg(test)]
const CONVERT_BATCH: usize = 64;
/// The first byte of every chunk (its encoding's version).
const FORMAT: u8 = 1;

/// The key `e` is found by: its permission (partner entries) or
/// [`SECURITY_KEY`]. Partner entries without a permission belong to no
/// permission's log; they are kept in the chunks (and the chain) only.
pub fn key(e: &LogEntry) -> Option<i64> {
    key_of(e.scope == "security", e.permission_id)
}

/// [`key`] of an entry known by its scope and permission alone.
pub fn key_of(security: bool, permission_id: Option<i64>) -> Option<i64> {
    if security {
        Some(SECURITY_KEY)
    } else {
        permission_id
    }
}

/// An entry's bytes as encoded in a chunk (a range of a buffer beside it)
/// with what the chunk's row says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub id: i64,
    pub key: Option<i64>,
    pub time_ms: i64,
    pub bytes: std::ops::Range<usize>,
}

/// One chunk's bytes.
pub fn encode(entries: &[StoredEntry]) -> Vec<u8> {
    let mut out = vec![FORMAT];
    for s in entries {
        put_entry(&mut out, s.id, &s.prev_hash, &s.hash, &s.entry);
    }
    out
}

/// A chunk's entries; `None` when the bytes are not a chunk.
pub fn decode(bytes: &[u8]) -> Option<Vec<StoredEntry>> {
    let body = bytes.strip_prefix(&[FORMAT])?;
    let mut out = Vec::new();
    decode_entries(body, &mut out)?;
    Some(out)
}

/// [`decode`], or the error naming the chunk.
pub fn decode_or_err(last_id: i64, bytes: &[u8]) -> Result<Vec<StoredEntry>, StoreError> {
    decode(bytes).ok_or_else(|| {
        StoreError::Task(format!(
            "access-log chunk ending at entry {last_id} is unreadable (edited or corrupt)"
        ))
    })
}

/// Stores `entries` (in id order) as chunks within `tx`: grouped by
/// key, each group cut into chunks of at most [`CHUNK_ENTRIES`].
pub fn store(tx: &Transaction<'_>, entries: &[StoredEntry]) -> Result<(), StoreError> {
    let mut bytes = Vec::new();
    let raw: Vec<RawEntry> = entries
        .iter()
        .map(|s| {
            let start = bytes.len();
            put_entry(&mut bytes, s.id, &s.prev_hash, &s.hash, &s.entry);
            RawEntry {
                id: s.id,
                key: key(&s.entry),
                time_ms: s.entry.time_ms,
                bytes: start..bytes.len(),
            }
        })
        .collect();
    store_raw(tx, &bytes, &raw)
}

/// [`store`] of entries already encoded (the compactor's, as the journal
/// committed them): each one's bytes are `bytes[entry.bytes]`.
pub fn store_raw(
    tx: &Transaction<'_>,
    bytes: &[u8],
    entries: &[RawEntry],
) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO access_log_chunks (last_id, first_id, key, from_ms, to_ms, entries) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )?;
    let mut by_key: BTreeMap<Option<i64>, Vec<&RawEntry>> = BTreeMap::new();
    for e in entries {
        by_key.entry(e.key).or_default().push(e);
    }
    let mut chunk_bytes = Vec::new();
    for (k, group) in by_key {
        for chunk in group.chunks(CHUNK_ENTRIES) {
            let span = Span::of(chunk.iter().map(|e| (e.id, e.time_ms)));
            chunk_bytes.clear();
            chunk_bytes.push(FORMAT);
            for e in chunk {
                let entry = bytes.get(e.bytes.clone()).ok_or_else(|| {
                    StoreError::Task(format!("access-log entry {} outside its buffer", e.id))
                })?;
                chunk_bytes.extend_from_slice(entry);
            }
            insert.execute(params![
                span.last_id,
                span.first_id,
                k,
                span.from_ms,
                span.to_ms,
                chunk_bytes
            ])?;
        }
    }
    Ok(())
}

/// What a chunk's row says of its entries besides holding them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first_id: i64,
    pub last_id: i64,
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Span {
    /// The span of entries given as `(id, time_ms)` (at least one).
    fn of(entries: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let mut span = Span {
            first_id: i64::MAX,
            last_id: i64::MIN,
            from_ms: i64::MAX,
            to_ms: i64::MIN,
        };
        for (id, time_ms) in entries {
            span.first_id = span.first_id.min(id);
            span.last_id = span.last_id.max(id);
            span.from_ms = span.from_ms.min(time_ms);
            span.to_ms = span.to_ms.max(time_ms);
        }
        span
    }
}

/// The id of the last stored entry (0 for an empty log).
pub fn stored_through(db: &Connection) -> Result<i64, StoreError> {
    Ok(db.query_row(
        "SELECT coalesce(max(last_id), 0) FROM access_log_chunks",
        [],
        |r| r.get(0),
    )?)
}

/// The last stored entry's id and hash, where the chain continues.
pub fn head(db: &Connection) -> Result<Option<(i64, [u8; 32])>, StoreError> {
    let last: Option<(i64, Vec<u8>)> = db
        .query_row(
            "SELECT last_id, entries FROM access_log_chunks ORDER BY last_id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((last_id, bytes)) = last else {
        return Ok(None);
    };
    Ok(decode_or_err(last_id, &bytes)?
        .last()
        .map(|s| (s.id, s.hash)))
}

/// Moves the rows of a log written before chunks (`access_log_rows`, as
/// the migration renamed it) into chunks and drops the old table, in one
/// transaction; nothing to do once that is done.
pub fn convert_rows(db: &mut Connection) -> Result<usize, StoreError> {
    let exists: bool = db.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'access_log_rows'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    let tx = db.transaction()?;
    let mut converted = 0;
    let mut after = i64::MIN;
    loop {
        // A batch at a time: an old log may not fit in memory at once.
        let rows = tx
            .prepare_cached(
                "SELECT id, scope, time_ms, event, permission_id, permission_name, \
                 provider_company_id, recipient_company_id, user_id, api_key_id, device_id, \
                 device_name, channel, query, positions, shipment_number, client_addr, \
                 user_agent, detail, prev_hash, hash FROM access_log_rows \
                 WHERE id > ? ORDER BY id LIMIT ?",
            )?
            .query_map(params![after, CONVERT_BATCH as i64], legacy_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.id;
        store(&tx, &rows)?;
        converted += rows.len();
    }
    tx.execute("DROP TABLE access_log_rows", [])?;
    tx.commit()?;
    Ok(converted)
}

/// One row of the log as earlier versions stored it.
fn legacy_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEntry> {
    let scope: String = r.get(1)?;
    Ok(StoredEntry {
        id: r.get(0)?,
        entry: LogEntry {
            scope: if scope == "security" {
                "security"
            } else {
                "partner"
            },
            time_ms: r.get(2)?,
            event: r.get(3)?,
            permission_id: r.get(4)?,
            permission_name: r.get(5)?,
            provider_company_id: r.get(6)?,
            recipient_company_id: r.get(7)?,
            user_id: r.get(8)?,
            api_key_id: r.get(9)?,
            device_id: r.get(10)?,
            device_name: r.get(11)?,
            channel: r.get(12)?,
            query: r.get(13)?,
            positions: r.get(14)?,
            shipment_number: r.get(15)?,
            client_addr: r.get(16)?,
            user_agent: r.get(17)?,
            detail: r.get(18)?,
        },
        prev_hash: super::sqlite::hash32(r.get(19)?),
        hash: super::sqlite::hash32(r.get(20)?),
    })
}

/// A chunk whose row does not describe its entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("access-log chunk ending at entry {last_id}: its key or span does not match its entries (edited)")]
pub struct ChunkMismatch {
    pub last_id: i64,
}

/// Checks that a chunk's row (`key`, `span`) is what its `entries` call
/// for: one key, ids ascending, the span exact.
pub fn check(
    key_column: Option<i64>,
    span: Span,
    entries: &[StoredEntry],
) -> Result<(), ChunkMismatch> {
    let fits = !entries.is_empty()
        && entries.iter().all(|s| key(&s.entry) == key_column)
        && entries.windows(2).all(|w| w[0].id < w[1].id)
        && Span::of(entries.iter().map(|s| (s.id, s.entry.time_ms))) == span;
    if fits {
        Ok(())
    } else {
        Err(ChunkMismatch {
            last_id: span.last_id,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(id: i64, permission: Option<i64>, scope: &'static str, t: i64) -> StoredEntry {
        StoredEntry {
            id,
            entry: LogEntry {
                scope,
                time_ms: t,
                event: "read".into(),
                permission_id: permission,
                shipment_number: Some(format!("S-{id}")),
                ..LogEntry::default()
            },
            prev_hash: [id as u8; 32],
            hash: [id as u8 + 1; 32],
        }
    }

    #[test]
    fn chunks_round_trip_and_refuse_other_bytes() {
        let entries: Vec<_> = (1..=3).map(|i| entry(i, Some(7), "partner", i)).collect();
        let bytes = encode(&entries);
        assert_eq!(decode(&bytes).unwrap(), entries);
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&bytes[1..]), None);
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn a_chunks_row_must_describe_its_entries() {
        let run = [
            entry(3, Some(7), "partner", 50),
            entry(5, Some(7), "partner", 30),
            entry(9, Some(7), "partner", 40),
        ];
        let span = Span {
            first_id: 3,
            last_id: 9,
            from_ms: 30,
            to_ms: 50,
        };
        assert_eq!(check(Some(7), span, &run), Ok(()));
        let bad = Err(ChunkMismatch { last_id: 9 });
        assert_eq!(check(Some(8), span, &run), bad, "another key");
        assert_eq!(check(None, span, &run), bad);
        let wider = Span { from_ms: 0, ..span };
        assert_eq!(
            check(Some(7), wider, &run),
            bad,
            "a span that is not theirs"
        );
        assert_eq!(check(Some(7), span, &[]), bad);
        let mixed = [
            run[0].clone(),
            entry(5, None, "security", 30),
            run[2].clone(),
        ];
        assert_eq!(check(Some(7), span, &mixed), bad, "another key's entry");
        let unordered = [run[1].clone(), run[0].clone(), run[2].clone()];
        assert_eq!(check(Some(7), span, &unordered), bad);
        assert_eq!(
            key(&entry(1, Some(7), "security", 0).entry),
            Some(SECURITY_KEY)
        );
        assert_eq!(key(&entry(1, None, "partner", 0).entry), None);
    }
}
