//! The access log's journal: what is fsync'd before a partner's read is
//! answered.
//!
//! Committing each group of entries straight into `trackgate.db` cost a
//! SQLite transaction per group on the path of every logged read: B-tree
//! inserts into the table and its index and the same tail pages rewritten
//! into the WAL by every commit. The journal is a series of segment files
//! (`access-log/<seq>.log`, frames of [`crate::framed`]): a group commit is
//! one `write` of one checksummed frame and one `fdatasync`. Ids and chain
//! hashes are assigned here, at append, so the chain is fixed the moment a
//! read is answered.
//!
//! Segments are preallocated: once the log is in use, the compactor thread
//! zero-fills the next one (`access-log/spare`) ahead of time, so a commit
//! overwrites allocated blocks and its `fdatasync` is one data flush. (The
//! first segment after a start grows until the spare is ready, a fraction
//! of a second; the writer then leaves it.) A file that grows instead
//! makes every `fdatasync` allocate blocks and commit the new size too;
//! that cost more than the SQLite commit it replaced (benches/README.md).
//!
//! The compactor copies committed frames into `trackgate.db` every
//! [`COMPACT_EVERY`] (one transaction for everything since its last run,
//! stored as chunks: [`log_chunks`]);
//! readers of the log compact first, so they see every committed entry. A
//! segment is sealed when full (or left for a spare) and deleted once
//! compacted. The compactor thread runs at a lower priority (its bursts
//! delayed the reads waiting on commits); should it fall
//! [`MAX_SEALED`] segments behind, the writer compacts before its next
//! commit, at its own priority, so the backlog on disk stays bounded.
//!
//! Crash safety: at start-up every leftover segment is compacted, up to its
//! first torn or corrupt frame (a commit that never completed, so never
//! answered; the zeroed tail ends it too), before anything is served; the
//! chain then continues from the last stored entry. A failed write or fsync
//! leaves the writer owing the zeroing of what it may have written past
//! the last good frame; until that succeeds every append fails (and no
//! partner data is served), so a frame that was not acknowledged can never
//! sit before one that was and reuse its ids. A repeated compaction (a crash
//! between its commit and the file's deletion) skips the entries up to
//! the last one stored, so nothing is stored twice.
//!
//! One process owns a data dir's journal (an advisory lock on
//! `access-log/LOCK`). Another process opening it — `trackgate audit
//! verify` beside a running gateway — gets a read-only view: the stored
//! entries merged with the live segments' intact frames. A gateway waits
//! for the lock and refuses to start without it.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::Connection;

use super::chain::{entry_hash, GENESIS};
use super::log_chunks::{self, RawEntry};
use super::{LogEntry, StoreError, StoredEntry};
use crate::framed::fields::{put_opt_i64, put_opt_str, put_str, take, take_i64};
use crate::framed::fields::{take_opt_i64, take_opt_str, take_opt_str_ref, take_str, take_str_ref};
use crate::framed::{put_frame, read_frames, sync_dir};

/// The first bytes of every segment file (format version 1).
pub const MAGIC: &[u8; 8] = b"TGALOG01";
/// Size of a preallocated segment; the writer moves to the next one when a
/// commit would not fit (about 150k entries: a new file every few seconds
/// at full load).
pub const SEGMENT_BYTES: u64 = 32 << 20;
/// How often committed entries are copied into `trackgate.db`: every
/// 200 ms rather than once a second, because each run is a burst of
/// inserts on one core and a commit whose fsync the log's own commits
/// queue behind; smaller bursts stall the reads sharing the machine less.
pub const COMPACT_EVERY: Duration = Duration::from_millis(200);
/// Sealed segments not yet compacted (~110k entries each) past which the
/// writer compacts them itself before committing more.
pub const MAX_SEALED: usize = 4;
/// Compactions between two WAL checkpoints (one a second).
const CHECKPOINT_EVERY: u32 = 5;
/// The next segment, zero-filled and synced ahead of time by the compactor.
const SPARE: &str = "spare";
/// How long a process that must own the journal waits for another to let go.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// What a process opening the journal needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Append and compact: the gateway. Fails if another process keeps it.
    Own,
    /// Own it if free, else a read-only view (an audit beside a gateway).
    OwnOrView,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Task(format!("access-log journal {}: {e}", path.display()))
}

/// One entry of a frame's payload (and of a stored chunk).
pub(super) fn put_entry(
    out: &mut Vec<u8>,
    id: i64,
    prev_hash: &[u8; 32],
    hash: &[u8; 32],
    e: &LogEntry,
) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(prev_hash);
    out.extend_from_slice(hash);
    out.push(u8::from(e.scope == "security"));
    out.extend_from_slice(&e.time_ms.to_le_bytes());
    put_str(out, &e.event);
    put_opt_i64(out, e.permission_id);
    put_opt_str(out, e.permission_name.as_deref());
    put_opt_str(out, e.provider_company_id.as_deref());
    put_opt_str(out, e.recipient_company_id.as_deref());
    put_opt_i64(out, e.user_id);
    put_opt_i64(out, e.api_key_id);
    put_opt_str(out, e.device_id.as_deref());
    put_opt_str(out, e.device_name.as_deref());
    put_opt_str(out, e.channel.as_deref());
    put_opt_str(out, e.query.as_deref());
    put_opt_i64(out, e.positions);
    put_opt_str(out, e.shipment_number.as_deref());
    put_opt_str(out, e.client_addr.as_deref());
    put_opt_str(out, e.user_agent.as_deref());
    put_opt_str(out, e.detail.as_deref());
}

/// The entries of the intact frames of `body` (bytes after the magic,
/// starting at a frame boundary) and the length of the intact part.
///
/// The writer never commits an empty frame, so an empty one (eight zero
/// bytes: the preallocated tail) ends the readable part: whatever follows,
/// even a torn frame's later pages that reached the disk without its
/// header, is never read.
pub fn decode_frames(body: &[u8]) -> (Vec<StoredEntry>, usize) {
    let mut out = Vec::new();
    let intact = read_frames(body, |payload| {
        if payload.is_empty() {
            return None;
        }
        let before = out.len();
        let parsed = decode_entries(payload, &mut out);
        if parsed.is_none() {
            out.truncate(before);
        }
        parsed
    });
    (out, intact)
}

/// The entries of one frame's payload (or chunk), appended to `out`.
pub(super) fn decode_entries(mut p: &[u8], out: &mut Vec<StoredEntry>) -> Option<()> {
    while !p.is_empty() {
        let id = take_i64(&mut p)?;
        let prev_hash = take::<32>(&mut p)?;
        let hash = take::<32>(&mut p)?;
        let scope = match take::<1>(&mut p)? {
            [0] => "partner",
            [1] => "security",
            _ => return None,
        };
        let entry = LogEntry {
            scope,
            time_ms: take_i64(&mut p)?,
            event: take_str(&mut p)?,
            permission_id: take_opt_i64(&mut p)?,
            permission_name: take_opt_str(&mut p)?,
            provider_company_id: take_opt_str(&mut p)?,
            recipient_company_id: take_opt_str(&mut p)?,
            user_id: take_opt_i64(&mut p)?,
            api_key_id: take_opt_i64(&mut p)?,
            device_id: take_opt_str(&mut p)?,
            device_name: take_opt_str(&mut p)?,
            channel: take_opt_str(&mut p)?,
            query: take_opt_str(&mut p)?,
            positions: take_opt_i64(&mut p)?,
            shipment_number: take_opt_str(&mut p)?,
            client_addr: take_opt_str(&mut p)?,
            user_agent: take_opt_str(&mut p)?,
            detail: take_opt_str(&mut p)?,
        };
        out.push(StoredEntry {
            id,
            entry,
            prev_hash,
            hash,
        });
    }
    Some(())
}

/// [`decode_frames`] for the compactor: each entry's bytes as committed
/// are appended to `bytes` with what its chunk row needs ([`RawEntry`]),
/// its strings checked but not copied out (copying and freeing them cost
/// 12–24% of the compactor's CPU, benches/README.md). Reads exactly the frames
/// [`decode_frames`] reads and returns the same length.
pub fn skim_frames(body: &[u8], bytes: &mut Vec<u8>, out: &mut Vec<RawEntry>) -> usize {
    read_frames(body, |payload| {
        if payload.is_empty() {
            return None;
        }
        let (entries, len) = (out.len(), bytes.len());
        let mut p = payload;
        while !p.is_empty() {
            let before = p;
            let Some((id, key, time_ms)) = skim_entry(&mut p) else {
                out.truncate(entries);
                bytes.truncate(len);
                return None;
            };
            let start = bytes.len();
            bytes.extend_from_slice(&before[..before.len() - p.len()]);
            out.push(RawEntry {
                id,
                key,
                time_ms,
                bytes: start..bytes.len(),
            });
        }
        Some(())
    })
}

/// Takes the entry at the front of `p` as [`decode_entries`] does, keeping
/// only its id, chunk key and time.
fn skim_entry(p: &mut &[u8]) -> Option<(i64, Option<i64>, i64)> {
    let id = take_i64(p)?;
    // prev_hash, hash
    take::<64>(p)?;
    let security = match take::<1>(p)? {
        [0] => false,
        [1] => true,
        _ => return None,
    };
    let time_ms = take_i64(p)?;
    // event
    take_str_ref(p)?;
    let permission_id = take_opt_i64(p)?;
    // permission_name, provider_company_id, recipient_company_id
    for _ in 0..3 {
        take_opt_str_ref(p)?;
    }
    // user_id, api_key_id
    for _ in 0..2 {
        take_opt_i64(p)?;
    }
    // device_id, device_name, channel, query
    for _ in 0..4 {
        take_opt_str_ref(p)?;
    }
    // positions
    take_opt_i64(p)?;
    // shipment_number, client_addr, user_agent, detail
    for _ in 0..4 {
        take_opt_str_ref(p)?;
    }
    Some((id, log_chunks::key_of(security, permission_id), time_ms))
}

/// A segment not yet compacted: readable up to `committed` (`u64::MAX`
/// for a leftover of an earlier run: its intact part).
#[derive(Clone, Copy)]
struct Live {
    seq: u64,
    committed: u64,
    sealed: bool,
    /// Kept as evidence: it reads back shorter than was committed.
    kept: bool,
}

/// The compactor's side: its connection and how far each live segment has
/// been copied.
struct Compactor {
    conn: Connection,
    done: HashMap<u64, u64>,
    /// The last entry in `trackgate.db`: a frame read again (a crash
    /// between a compaction's commit and its segment's deletion) is not
    /// stored twice.
    stored: i64,
    /// The bytes read each run, kept between runs: a fresh buffer of a few
    /// MB faulted in new pages every 200 ms.
    buf: Vec<u8>,
}

/// The journal directory, shared by the writer, the compactor and readers.
pub struct LogJournal {
    dir: PathBuf,
    live: Mutex<Vec<Live>>,
    /// `None` when another process owns the journal (read-only view).
    compactor: Option<Mutex<Compactor>>,
    /// A preallocated segment waits in `SPARE`.
    spare_ready: AtomicBool,
    /// The writer has appended (only then is a spare worth its disk).
    used: AtomicBool,
    /// Tests stop the compactor thread's runs with it.
    #[cfg(test)]
    paused: AtomicBool,
    /// Held open for its advisory lock.
    _lock: Option<std::fs::File>,
}

impl LogJournal {
    /// Opens `data_dir/access-log` and, when no other process owns it,
    /// compacts every leftover segment into `db` before returning.
    ///
    /// `access` says whether this process must own the journal (waiting up
    /// to [`LOCK_WAIT`] for another to let go: a restart that overlaps the
    /// old process, an audit) or may settle for a read-only view.
    pub fn open(data_dir: &Path, db: &Path, access: Access) -> Result<Self, StoreError> {
        let dir = data_dir.join("access-log");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = dir.join("LOCK");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        let try_lock = || {
            rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
        };
        let mut owner = try_lock();
        if access == Access::Own {
            let deadline = std::time::Instant::now() + LOCK_WAIT;
            while !owner && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
                owner = try_lock();
            }
            if !owner {
                return Err(StoreError::Task(format!(
                    "{} is in use by another trackgate process",
                    lock_path.display()
                )));
            }
        }
        let live = Self::segments(&dir)?
            .into_iter()
            .map(|seq| Live {
                seq,
                committed: u64::MAX,
                sealed: true,
                kept: false,
            })
            .collect();
        let compactor = if owner {
            let mut conn = Connection::open(db)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            let converted = log_chunks::convert_rows(&mut conn)?;
            if converted > 0 {
                tracing::info!(entries = converted, "access log moved into chunks");
            }
            Some(Mutex::new(Compactor {
                stored: log_chunks::stored_through(&conn)?,
                conn,
                done: HashMap::new(),
                buf: Vec::new(),
            }))
        } else {
            None
        };
        if owner {
            // A spare whose creation a crash interrupted is not one.
            let _ = std::fs::remove_file(dir.join(format!("{SPARE}.tmp")));
        }
        let journal = Self {
            spare_ready: AtomicBool::new(owner && dir.join(SPARE).exists()),
            used: AtomicBool::new(false),
            #[cfg(test)]
            paused: AtomicBool::new(false),
            dir,
            live: Mutex::new(live),
            compactor,
            _lock: owner.then_some(lock),
        };
        if owner {
            journal.compact()?;
        }
        Ok(journal)
    }

    /// Whether this process owns the journal (may append and compact).
    pub fn owned(&self) -> bool {
        self.compactor.is_some()
    }

    fn segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
        let mut seqs: Vec<u64> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()
            })
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:016}.log"))
    }

    /// The number for the next new segment.
    fn next_seq(&self) -> u64 {
        Self::segments(&self.dir)
            .ok()
            .and_then(|s| s.last().copied())
            .map_or(1, |s| s + 1)
    }

    /// Creates segment `seq` with its magic, synced with the directory so
    /// the file survives power loss, and makes it live. It grows with each
    /// commit — each `fdatasync` then also commits the new size and
    /// allocates blocks — so the writer leaves it for a spare as soon as
    /// one is ready.
    fn create(&self, seq: u64) -> Result<Open, StoreError> {
        let path = self.path(seq);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        file.write_all(MAGIC).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        sync_dir(&self.dir).map_err(io(&self.dir))?;
        Ok(self.go_live(seq, path, file, false))
    }

    /// Makes the new segment `seq` (its file positioned after the magic)
    /// live and the writer's.
    fn go_live(&self, seq: u64, path: PathBuf, file: std::fs::File, preallocated: bool) -> Open {
        let len = MAGIC.len() as u64;
        self.live.lock().push(Live {
            seq,
            committed: len,
            sealed: false,
            kept: false,
        });
        Open {
            seq,
            path,
            file,
            len,
            dirty: 0,
            preallocated,
        }
    }

    /// Writes a zero-filled segment of [`SEGMENT_BYTES`] with its magic to
    /// `SPARE`, synced, unless one is ready. Commits that overwrite
    /// allocated, zeroed blocks change no metadata: their `fdatasync` is
    /// one data flush (the unwritten extents `fallocate` leaves would
    /// need a metadata commit at every first write). Zeros read as empty
    /// frames, so the unwritten tail of a segment holds nothing.
    fn prepare_spare(&self) -> Result<(), StoreError> {
        if self.spare_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let tmp = self.dir.join(format!("{SPARE}.tmp"));
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(MAGIC).map_err(io(&tmp))?;
        // In small synced steps: the log's own fsyncs share the disk and
        // would otherwise wait behind 32 MB of writeback.
        let zeros = vec![0u8; 256 << 10];
        let mut left = SEGMENT_BYTES - MAGIC.len() as u64;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n])
                .and_then(|()| file.sync_data())
                .map_err(io(&tmp))?;
            left -= n as u64;
        }
        file.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, self.dir.join(SPARE)).map_err(io(&tmp))?;
        sync_dir(&self.dir).map_err(io(&self.dir))?;
        self.spare_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Makes the spare segment `seq` and live; `None` when no spare is ready.
    fn take_spare(&self, seq: u64) -> Option<Result<Open, StoreError>> {
        if !self.spare_ready.load(Ordering::Acquire) {
            return None;
        }
        let path = self.path(seq);
        let taken = (|| {
            // Renamed before the flag drops, so the compactor never builds
            // a new spare while this one is still being taken.
            let renamed = std::fs::rename(self.dir.join(SPARE), &path);
            self.spare_ready.store(false, Ordering::Release);
            renamed.map_err(io(&path))?;
            sync_dir(&self.dir).map_err(io(&self.dir))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            file.seek(SeekFrom::Start(MAGIC.len() as u64))
                .map_err(io(&path))?;
            Ok(self.go_live(seq, path.clone(), file, true))
        })();
        Some(taken)
    }

    /// Sealed segments still waiting for the compactor (not those kept as
    /// evidence, which no compaction removes).
    fn sealed(&self) -> usize {
        self.live
            .lock()
            .iter()
            .filter(|l| l.sealed && !l.kept)
            .count()
    }

    fn set_committed(&self, seq: u64, committed: u64, sealed: bool) {
        if let Some(l) = self.live.lock().iter_mut().find(|l| l.seq == seq) {
            l.committed = committed;
            l.sealed = sealed;
        }
    }

    /// Copies every committed entry not yet in `trackgate.db` into it (one
    /// transaction) and deletes the segments that are then wholly stored.
    /// A no-op in a read-only view.
    pub fn compact(&self) -> Result<(), StoreError> {
        let Some(compactor) = &self.compactor else {
            return Ok(());
        };
        let mut c = compactor.lock();
        let c = &mut *c;
        let live: Vec<Live> = self.live.lock().clone();
        let (mut batch, mut bytes) = (Vec::new(), Vec::new());
        let mut reached = Vec::new();
        for l in &live {
            let from = c.done.get(&l.seq).copied().unwrap_or(MAGIC.len() as u64);
            self.read_segment(l, from, &mut c.buf)?;
            let intact = skim_frames(&c.buf, &mut bytes, &mut batch);
            reached.push((l.seq, from + intact as u64));
        }
        if c.buf.capacity() > 8 << 20 {
            // A leftover's whole segment: not worth keeping.
            c.buf = Vec::new();
        }
        batch.retain(|s| s.id > c.stored);
        if let Some(last) = batch.last().map(|s| s.id) {
            let tx = c.conn.transaction()?;
            log_chunks::store_raw(&tx, &bytes, &batch)?;
            tx.commit()?;
            c.stored = last;
        }
        for (l, (seq, to)) in live.iter().zip(reached) {
            if l.sealed && l.committed != u64::MAX && to < l.committed {
                // Frames this process committed no longer read back: keep
                // the file as evidence rather than drop what was answered.
                tracing::error!(
                    segment = %self.path(seq).display(),
                    readable = to,
                    committed = l.committed,
                    "access-log segment unreadable past its last good frame; kept"
                );
                c.done.insert(seq, to);
                if let Some(l) = self.live.lock().iter_mut().find(|l| l.seq == seq) {
                    l.kept = true;
                }
            } else if l.sealed {
                // Stored up to its last intact frame (a leftover: nothing
                // after it was ever answered).
                c.done.remove(&seq);
                self.live.lock().retain(|x| x.seq != seq);
                let path = self.path(seq);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(error = %e, path = %path.display(), "compacted access-log segment not deleted");
                }
            } else {
                c.done.insert(seq, to);
            }
        }
        Ok(())
    }

    /// Reads the bytes of segment `l` from byte `from` up to what is
    /// committed into `bytes` (nothing for a segment gone or never used).
    fn read_segment(&self, l: &Live, from: u64, bytes: &mut Vec<u8>) -> Result<(), StoreError> {
        bytes.clear();
        if l.committed != u64::MAX && l.committed <= from {
            return Ok(());
        }
        let path = self.path(l.seq);
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut magic = [0u8; 8];
        if file.read_exact(&mut magic).is_err() || &magic != MAGIC {
            // Created but its magic never synced: it never held a commit.
            return Ok(());
        }
        file.seek(SeekFrom::Start(from)).map_err(io(&path))?;
        let want = l.committed.saturating_sub(from);
        if l.committed != u64::MAX {
            // Known length (not a leftover read to its end): one allocation.
            bytes.reserve(usize::try_from(want).unwrap_or(0));
        }
        file.take(want).read_to_end(bytes).map_err(io(&path))?;
        Ok(())
    }

    /// The committed entries still in live segments, for a read-only view
    /// (empty for the owner, whose readers compact instead). Call before
    /// reading the database, so an entry compacted in between is found
    /// there.
    pub fn snapshot_live(&self) -> Result<Vec<StoredEntry>, StoreError> {
        if self.owned() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for seq in Self::segments(&self.dir)? {
            let whole = Live {
                seq,
                committed: u64::MAX,
                sealed: true,
                kept: false,
            };
            let mut bytes = Vec::new();
            self.read_segment(&whole, MAGIC.len() as u64, &mut bytes)?;
            out.extend(decode_frames(&bytes).0);
        }
        Ok(out)
    }

    /// Runs [`compact`](Self::compact) (and a passive WAL checkpoint) every
    /// [`COMPACT_EVERY`] for as long as the journal is in use.
    pub fn spawn_compactor(journal: std::sync::Weak<Self>) -> Result<(), StoreError> {
        std::thread::Builder::new()
            .name("access-log-compact".into())
            .spawn(move || {
                crate::dedicated::lower_priority();
                let mut run = 0u32;
                loop {
                    std::thread::sleep(COMPACT_EVERY);
                    let Some(j) = journal.upgrade() else {
                        return;
                    };
                    run = (run + 1) % CHECKPOINT_EVERY;
                    j.housekeeping(run == 0);
                }
            })
            .map_err(|e| StoreError::Task(format!("compactor thread: {e}")))?;
        Ok(())
    }

    /// One run of the compactor thread: compact, now and then checkpoint,
    /// and have a spare segment ready once the log is in use.
    fn housekeeping(&self, checkpoint: bool) {
        #[cfg(test)]
        if self.paused.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = self.compact() {
            tracing::warn!(error = %e, "access-log compaction failed; retrying");
        }
        if let Some(c) = self.compactor.as_ref().filter(|_| checkpoint) {
            if let Err(e) =
                c.lock()
                    .conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            {
                tracing::warn!(error = %e, "access-log checkpoint failed; retrying");
            }
        }
        if self.used.load(Ordering::Relaxed) {
            if let Err(e) = self.prepare_spare() {
                tracing::warn!(error = %e, "access-log spare segment not prepared; retrying");
            }
        }
    }
}

/// `live` (read from the segments first) merged with `stored` (read from
/// `trackgate.db` after), in id order; the database wins where both hold
/// an entry, as it is what verification must check.
pub fn merge(live: Vec<StoredEntry>, stored: Vec<StoredEntry>) -> Vec<StoredEntry> {
    let mut all: BTreeMap<i64, StoredEntry> = live.into_iter().map(|e| (e.id, e)).collect();
    all.extend(stored.into_iter().map(|e| (e.id, e)));
    all.into_values().collect()
}

/// The segment being written.
struct Open {
    seq: u64,
    path: PathBuf,
    file: std::fs::File,
    /// Bytes on disk up to the end of the last completed commit.
    len: u64,
    /// Bytes past `len` a failed write or fsync may have left: zeroed
    /// before the next commit.
    dirty: u64,
    /// Zero-filled to [`SEGMENT_BYTES`] ahead of time.
    preallocated: bool,
}

/// An upper bound of the frame `entries` make, to decide whether it fits.
fn estimate(entries: &[LogEntry]) -> u64 {
    let strings = |e: &LogEntry| {
        [
            &e.permission_name,
            &e.provider_company_id,
            &e.recipient_company_id,
            &e.device_id,
            &e.device_name,
            &e.channel,
            &e.query,
            &e.shipment_number,
            &e.client_addr,
            &e.user_agent,
            &e.detail,
        ]
        .iter()
        .map(|s| s.as_ref().map_or(1, |s| 5 + s.len()))
        .sum::<usize>()
            + 5
            + e.event.len()
    };
    8 + entries.iter().map(|e| 130 + strings(e) as u64).sum::<u64>()
}

/// The writer: the open segment and the chain's head. Appends are
/// serialised by the caller's mutex.
pub struct LogWriter {
    journal: std::sync::Arc<LogJournal>,
    open: Option<Open>,
    next_seq: u64,
    /// Id and hash of the last committed entry.
    head: (i64, [u8; 32]),
    buf: Vec<u8>,
}

impl LogWriter {
    /// A writer continuing the chain from `db`'s last entry (the journal
    /// has compacted every leftover into it).
    pub fn new(journal: std::sync::Arc<LogJournal>, db: &Connection) -> Result<Self, StoreError> {
        let head = log_chunks::head(db)?.unwrap_or((0, GENESIS));
        let next_seq = journal.next_seq();
        Ok(Self {
            journal,
            open: None,
            next_seq,
            head,
            buf: Vec::new(),
        })
    }

    /// Appends `entries` as one frame and syncs it; returns their ids.
    pub fn append(&mut self, entries: &[LogEntry]) -> Result<Vec<i64>, StoreError> {
        if !self.journal.owned() {
            return Err(StoreError::Task(
                "the access log is owned by another trackgate process on this data dir".into(),
            ));
        }
        self.journal.used.store(true, Ordering::Relaxed);
        if self.journal.sealed() >= MAX_SEALED {
            // The compactor thread is starved (it yields to reads): catch
            // up here, which also holds back the reads that outran it.
            if let Err(e) = self.journal.compact() {
                tracing::warn!(error = %e, "access-log compaction by the writer failed");
            }
        }
        let mut open = match self.open.take() {
            // Leave a growing segment as soon as a preallocated one is ready.
            Some(o) if !o.preallocated && o.dirty == 0 => {
                match self.journal.take_spare(self.next_seq) {
                    Some(spare) => {
                        self.journal.set_committed(o.seq, o.len, true);
                        self.next_seq += 1;
                        spare?
                    }
                    None => o,
                }
            }
            Some(o) => o,
            None => {
                let o = match self.journal.take_spare(self.next_seq) {
                    Some(spare) => spare,
                    None => self.journal.create(self.next_seq),
                };
                self.next_seq += 1;
                o?
            }
        };
        // A commit that would not fit moves on to the next segment first.
        if open.dirty == 0 && open.len + estimate(entries) > SEGMENT_BYTES {
            self.journal.set_committed(open.seq, open.len, true);
            let next = match self.journal.take_spare(self.next_seq) {
                Some(spare) => spare,
                None => self.journal.create(self.next_seq),
            };
            self.next_seq += 1;
            open = next?;
        }
        let result = self.write(&mut open, entries);
        self.open = Some(open);
        result
    }

    fn write(&mut self, open: &mut Open, entries: &[LogEntry]) -> Result<Vec<i64>, StoreError> {
        if open.dirty > 0 {
            // Zero what the failed commit may have left, so no frame of a
            // commit that was never acknowledged stays readable.
            let zeros = vec![0u8; usize::try_from(open.dirty).unwrap_or(usize::MAX)];
            open.file
                .seek(SeekFrom::Start(open.len))
                .and_then(|_| open.file.write_all(&zeros))
                .and_then(|()| open.file.sync_data())
                .and_then(|()| open.file.seek(SeekFrom::Start(open.len)))
                .map_err(io(&open.path))?;
            open.dirty = 0;
        }
        let (mut id, mut prev) = self.head;
        self.buf.clear();
        put_frame(&mut self.buf, |out| {
            for e in entries {
                id += 1;
                let hash = entry_hash(&prev, id, e);
                put_entry(out, id, &prev, &hash, e);
                prev = hash;
            }
        });
        open.dirty = self.buf.len() as u64;
        open.file
            .write_all(&self.buf)
            .and_then(|()| open.file.sync_data())
            .map_err(io(&open.path))?;
        open.dirty = 0;
        open.len += self.buf.len() as u64;
        self.journal.set_committed(open.seq, open.len, false);
        let first = self.head.0 + 1;
        self.head = (id, prev);
        Ok((first..=id).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A whole segment file's entries (nothing without the magic), read
    /// both as readers decode and as the compactor skims.
    pub fn decode(bytes: &[u8]) -> (Vec<StoredEntry>, usize) {
        match bytes.strip_prefix(MAGIC.as_slice()) {
            Some(body) => {
                let (entries, intact) = decode_both(body);
                (entries, MAGIC.len() + intact)
            }
            None => (Vec::new(), 0),
        }
    }

    /// [`decode_frames`], checked against [`skim_frames`]: the same frames,
    /// the same length, and each skimmed entry's bytes, id, key and time
    /// those of the decoded entry.
    fn decode_both(body: &[u8]) -> (Vec<StoredEntry>, usize) {
        let (entries, intact) = decode_frames(body);
        let (mut bytes, mut raw) = (Vec::new(), Vec::new());
        assert_eq!(skim_frames(body, &mut bytes, &mut raw), intact);
        assert_eq!(raw.len(), entries.len());
        for (r, s) in raw.iter().zip(&entries) {
            let mut own = Vec::new();
            put_entry(&mut own, s.id, &s.prev_hash, &s.hash, &s.entry);
            assert_eq!(&bytes[r.bytes.clone()], own.as_slice());
            let key = log_chunks::key(&s.entry);
            assert_eq!((r.id, r.key, r.time_ms), (s.id, key, s.entry.time_ms));
        }
        assert_eq!(raw.last().map_or(0, |r| r.bytes.end), bytes.len());
        (entries, intact)
    }

    /// Appends one frame holding `entries` to `out`.
    pub fn encode_frame(entries: &[StoredEntry], out: &mut Vec<u8>) {
        put_frame(out, |out| {
            for s in entries {
                put_entry(out, s.id, &s.prev_hash, &s.hash, &s.entry);
            }
        });
    }

    fn entry(n: i64) -> StoredEntry {
        StoredEntry {
            id: n,
            entry: LogEntry {
                scope: if n % 2 == 0 { "partner" } else { "security" },
                time_ms: 1_700_000_000_000 + n,
                event: "read".into(),
                permission_id: Some(n),
                permission_name: Some("Load ä".into()),
                device_id: Some("356307042441013".into()),
                shipment_number: (n % 3 == 0).then(|| "SHP-1".into()),
                positions: Some(1),
                detail: Some(String::new()),
                ..Default::default()
            },
            prev_hash: [n as u8; 32],
            hash: [n as u8 + 1; 32],
        }
    }

    fn file(frames: &[&[StoredEntry]]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        for f in frames {
            encode_frame(f, &mut b);
        }
        b
    }

    #[test]
    fn frames_round_trip_every_field() {
        let a = [entry(1), entry(2)];
        let b = [entry(3)];
        let bytes = file(&[&a, &b]);
        let (got, len) = decode(&bytes);
        assert_eq!(len, bytes.len());
        let want: Vec<StoredEntry> = a.iter().chain(&b).cloned().collect();
        assert_eq!(got, want);
        assert_eq!(
            got[0].entry.detail.as_deref(),
            Some(""),
            "empty is not none"
        );
        assert_eq!(got[1].entry.client_addr, None);
    }

    #[test]
    fn a_torn_or_corrupt_tail_ends_the_readable_part() {
        let a = [entry(1)];
        let whole = file(&[&a, &[entry(2)]]);
        let first_end = file(&[&a]).len();
        for cut in first_end..whole.len() {
            assert_eq!(decode(&whole[..cut]), (a.to_vec(), first_end), "cut {cut}");
        }
        let mut bad = whole.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(decode(&bad), (a.to_vec(), first_end));
        assert_eq!(decode(&whole[1..]), (Vec::new(), 0));
    }

    #[test]
    fn reading_stops_at_the_zeroed_tail() {
        let a = [entry(1)];
        let mut bytes = file(&[&a]);
        let end = bytes.len();
        bytes.extend_from_slice(&[0; 64]);
        // A later frame behind zeros (its header page lost) is not read.
        encode_frame(&[entry(2)], &mut bytes);
        assert_eq!(decode(&bytes), (a.to_vec(), end));
    }

    #[test]
    fn no_byte_string_panics() {
        use proptest::prelude::*;
        proptest!(|(tail in proptest::collection::vec(any::<u8>(), 0..400))| {
            let _ = decode_both(&tail);
            let mut c = u32::try_from(tail.len()).unwrap().to_le_bytes().to_vec();
            c.extend_from_slice(&crate::framed::crc(&tail).to_le_bytes());
            c.extend_from_slice(&tail);
            let (entries, len) = decode_both(&c);
            prop_assert!(len == 0 || len == c.len());
            prop_assert!(len == c.len() || entries.is_empty());
        });
    }

    /// A frame whose checksum matches but whose payload is not what the
    /// writer wrote (a byte changed, the payload cut): the compactor's skim
    /// and the readers' decode still take or refuse it alike.
    #[test]
    fn skim_and_decode_agree_on_altered_payloads() {
        use proptest::prelude::*;
        let mut payload = Vec::new();
        for s in [entry(1), entry(2), entry(3)] {
            put_entry(&mut payload, s.id, &s.prev_hash, &s.hash, &s.entry);
        }
        let n = payload.len();
        proptest!(|(at in 0..n, byte in any::<u8>(), cut in 0..=n)| {
            let mut p = payload.clone();
            p[at] = byte;
            p.truncate(cut);
            let mut body = Vec::new();
            put_frame(&mut body, |o| o.extend_from_slice(&p));
            decode_both(&body);
        });
        let mut body = Vec::new();
        put_frame(&mut body, |o| o.extend_from_slice(&payload));
        assert_eq!(decode_both(&body).0.len(), 3);
    }
}

/// The journal against real files and a real `trackgate.db`.
#[cfg(test)]
mod on_disk {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::access::verify::verify;
    use crate::store::{SqliteStore, Store};

    fn read(n: usize) -> Vec<LogEntry> {
        (0..n)
            .map(|i| LogEntry {
                scope: "partner",
                time_ms: 1_700_000_000_000 + i as i64,
                event: "read".into(),
                permission_id: Some(1),
                device_id: Some(format!("dev{i}")),
                ..Default::default()
            })
            .collect()
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("access-log"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn committed_entries_are_read_back_at_once_and_the_chain_continues_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(store.append_log(read(3)).await.unwrap(), vec![1, 2, 3]);
        assert_eq!(store.append_log(read(2)).await.unwrap(), vec![4, 5]);
        // Readers compact first: nothing committed is missing.
        let log = store.permission_log(1, None, None, 1000).await.unwrap();
        assert_eq!(
            log.iter().map(|e| e.id).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(log[4].entry.device_id.as_deref(), Some("dev1"));
        assert_eq!(verify(&log).unwrap().entries, 5);
        let first = store.permission_log(1, None, None, 3).await.unwrap();
        assert_eq!(
            first.iter().map(|e| e.id).collect::<Vec<_>>(),
            [1, 2, 3],
            "oldest first, at most the limit"
        );
        drop(store);
        // The next process continues the chain from entry 5.
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(store.append_log(read(1)).await.unwrap(), vec![6]);
        let all = store.all_log().await.unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all[5].prev_hash, all[4].hash);
        verify(&all).unwrap();
    }

    /// Reads over more entries than one chunk holds, of two permissions
    /// and the security log, answer exactly what a filter over the whole
    /// log does.
    #[tokio::test]
    async fn reads_across_chunks_find_each_permissions_entries_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let entries: Vec<LogEntry> = (0..700i64)
            .map(|i| LogEntry {
                scope: if i % 7 == 0 { "security" } else { "partner" },
                time_ms: 1_000 + i,
                event: "read".into(),
                permission_id: Some(1 + i % 2),
                ..Default::default()
            })
            .collect();
        for part in entries.chunks(300) {
            store.append_log(part.to_vec()).await.unwrap();
        }
        let all = store.all_log().await.unwrap();
        assert_eq!(all.len(), 700);
        let want = |p: i64, from: i64, to: i64| -> Vec<i64> {
            all.iter()
                .filter(|e| e.entry.scope == "partner" && e.entry.permission_id == Some(p))
                .filter(|e| e.entry.time_ms >= from && e.entry.time_ms < to)
                .map(|e| e.id)
                .collect()
        };
        let ids = |v: Vec<StoredEntry>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        let got = ids(store
            .permission_log(2, Some(1_250), Some(1_650), 1000)
            .await
            .unwrap());
        assert_eq!(got, want(2, 1_250, 1_650));
        assert_eq!(got.len(), 172);
        let got = ids(store.permission_log(1, None, None, 100).await.unwrap());
        assert_eq!(got, want(1, 0, i64::MAX)[..100]);
        assert!(store
            .permission_log(3, None, None, 100)
            .await
            .unwrap()
            .is_empty());
        let got = ids(store.security_log(None, Some(1_600), 5).await.unwrap());
        assert_eq!(got, [596, 589, 582, 575, 568], "newest first");
    }

    /// A crash after a compaction's commit but before its segment was
    /// deleted: the next start reads the segment again and stores only
    /// what was not stored yet.
    #[tokio::test]
    async fn a_segment_compacted_again_after_a_crash_stores_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        // Only the reader's compaction runs.
        store.journal.paused.store(true, Ordering::Relaxed);
        store.append_log(read(3)).await.unwrap();
        assert_eq!(
            store.permission_log(1, None, None, 10).await.unwrap().len(),
            3
        );
        store.append_log(read(2)).await.unwrap();
        // The crash image: the database with entries 1-3, the segment
        // with 1-5.
        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir(image.path().join("access-log")).unwrap();
        for f in ["trackgate.db", "trackgate.db-wal"] {
            std::fs::copy(dir.path().join(f), image.path().join(f)).unwrap();
        }
        for seg in segment_files(dir.path()) {
            let to = image
                .path()
                .join("access-log")
                .join(seg.file_name().unwrap());
            std::fs::copy(&seg, to).unwrap();
        }
        let store = SqliteStore::open(image.path()).await.unwrap();
        let all = store.all_log().await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.id).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        verify(&all).unwrap();
    }

    #[tokio::test]
    async fn a_leftover_segment_is_stored_up_to_its_torn_tail_and_then_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.append_log(read(4)).await.unwrap();
        store.append_log(read(4)).await.unwrap();
        // A crash with the last commit torn in the middle: a data dir
        // holding only that segment.
        let files = segment_files(dir.path());
        assert_eq!(files.len(), 1);
        let mut bytes = std::fs::read(&files[0]).unwrap();
        bytes.truncate(bytes.len() - 10);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("access-log")).unwrap();
        let seg = dir.path().join("access-log").join("0000000000000001.log");
        std::fs::write(&seg, bytes).unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert!(
            segment_files(dir.path()).is_empty(),
            "compacted and deleted"
        );
        let all = store.all_log().await.unwrap();
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
        // The torn commit was never answered: its ids are taken again.
        assert_eq!(store.append_log(read(1)).await.unwrap(), vec![5]);
        verify(&store.all_log().await.unwrap()).unwrap();
    }

    #[tokio::test]
    async fn a_failed_write_fails_every_append_until_its_tail_is_zeroed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.append_log(read(2)).await.unwrap();
        let seg = segment_files(dir.path()).remove(0);
        let good = std::fs::metadata(&seg).unwrap().len();
        // Swap the open segment's handle for a read-only one: the write fails.
        let writable = {
            let mut w = store.log.lock();
            let open = w.open.as_mut().unwrap();
            std::mem::replace(&mut open.file, std::fs::File::open(&seg).unwrap())
        };
        assert!(store.append_log(read(1)).await.is_err());
        // Nor can the zeroing of its tail on that handle: still refused.
        assert!(store.append_log(read(1)).await.is_err());
        // Storage recovers; simulate a torn write having reached the file.
        {
            let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
            f.write_all(&[0xAB; 40]).unwrap();
            assert_eq!(std::fs::metadata(&seg).unwrap().len(), good + 40);
        }
        store.log.lock().open.as_mut().unwrap().file = writable;
        assert_eq!(store.append_log(read(1)).await.unwrap(), vec![3]);
        let all = store.all_log().await.unwrap();
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3]);
        verify(&all).unwrap();
        assert!(std::fs::metadata(&seg).unwrap().len() > good);
    }

    #[tokio::test]
    async fn a_full_segment_is_sealed_compacted_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let big = |n: u8| {
            let mut e = read(1);
            e[0].detail = Some(n.to_string().repeat(20 << 20));
            e
        };
        assert_eq!(store.append_log(big(1)).await.unwrap(), [1]);
        let first = store.log.lock().open.as_ref().unwrap().seq;
        // 20 MiB more do not fit in the same 32 MiB segment.
        assert_eq!(store.append_log(big(2)).await.unwrap(), [2]);
        assert_ne!(store.log.lock().open.as_ref().unwrap().seq, first);
        let all = store.all_log().await.unwrap();
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(all[1].entry.detail.as_ref().unwrap().len(), 20 << 20);
        let left = segment_files(dir.path());
        assert_eq!(left.len(), 1, "the sealed one is gone: {left:?}");
        assert!(!left[0].ends_with(format!("{first:016}.log")));
        verify(&all).unwrap();
    }

    /// A starved compactor (here: paused) leaves at most `MAX_SEALED`
    /// sealed segments behind: the writer then compacts them itself, and
    /// every entry is stored once, in chain order.
    #[tokio::test]
    async fn the_writer_compacts_when_the_compactor_falls_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let journal = std::sync::Arc::clone(&store.log.lock().journal);
        journal.paused.store(true, Ordering::Relaxed);
        let mut peak = 0;
        for n in 0..MAX_SEALED + 3 {
            // 20 MiB each: every append seals the segment before it.
            let mut e = read(1);
            e[0].detail = Some(n.to_string().repeat(20 << 20));
            assert_eq!(store.append_log(e).await.unwrap(), [n as i64 + 1]);
            peak = peak.max(journal.sealed());
        }
        assert_eq!(peak, MAX_SEALED, "sealed segments waiting at most");
        assert!(
            segment_files(dir.path()).len() < MAX_SEALED + 3,
            "compacted segments deleted"
        );
        let stored: i64 = journal
            .compactor
            .as_ref()
            .unwrap()
            .lock()
            .conn
            .query_row(
                "SELECT coalesce(max(last_id), 0) FROM access_log_chunks",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(stored >= MAX_SEALED as i64, "{stored} stored by the writer");
        let all = store.all_log().await.unwrap();
        assert_eq!(all.len(), MAX_SEALED + 3);
        verify(&all).unwrap();
    }

    #[tokio::test]
    async fn a_sealed_segment_that_reads_back_short_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.append_log(read(1)).await.unwrap();
        // The segment claims more committed bytes than it holds (as if cut
        // from outside); the next append seals it.
        store.log.lock().open.as_mut().unwrap().len = SEGMENT_BYTES;
        store.append_log(read(1)).await.unwrap();
        store.append_log(read(1)).await.unwrap();
        let all = store.all_log().await.unwrap();
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3]);
        // Not deleted: it is evidence that something acknowledged is gone.
        assert_eq!(segment_files(dir.path()).len(), 2);
        // Nor backlog that would make the writer compact before each commit.
        assert_eq!(store.log.lock().journal.sealed(), 0);
    }

    /// Waits for the compactor to zero-fill the spare segment.
    async fn spare_ready(dir: &Path) {
        for _ in 0..100 {
            if dir.join("access-log").join(SPARE).exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no spare segment prepared");
    }

    #[tokio::test]
    async fn the_writer_moves_to_a_preallocated_segment_and_a_crash_leaves_it_readable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(store.append_log(read(2)).await.unwrap(), [1, 2]);
        spare_ready(dir.path()).await;
        // The growing first segment is left for the spare at the next commit.
        assert_eq!(store.append_log(read(3)).await.unwrap(), [3, 4, 5]);
        assert!(store.log.lock().open.as_ref().unwrap().preallocated);
        let files = segment_files(dir.path());
        assert_eq!(files.len(), 2, "{files:?}");
        let full = std::fs::metadata(&files[1]).unwrap().len();
        assert_eq!(
            full, SEGMENT_BYTES,
            "commits overwrite, they do not grow it"
        );
        // A copy of that segment alone, zero tail and all, as a crash leaves it.
        let copy = tempfile::tempdir().unwrap();
        std::fs::create_dir(copy.path().join("access-log")).unwrap();
        std::fs::copy(
            &files[1],
            copy.path().join("access-log").join("0000000000000002.log"),
        )
        .unwrap();
        // Here, everything committed is read back and the first file goes.
        let all = store.all_log().await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.id).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        verify(&all).unwrap();
        assert_eq!(segment_files(dir.path()).len(), 1);
        let restored = SqliteStore::open(copy.path()).await.unwrap();
        let got = restored.all_log().await.unwrap();
        assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(got, all[2..].to_vec());
        assert!(segment_files(copy.path()).is_empty());
    }

    #[tokio::test]
    async fn a_second_process_gets_a_read_only_view_of_everything_committed() {
        let dir = tempfile::tempdir().unwrap();
        let owner = SqliteStore::open(dir.path()).await.unwrap();
        owner.append_log(read(2)).await.unwrap();
        owner.permission_log(1, None, None, 1000).await.unwrap(); // compacted
        owner.append_log(read(2)).await.unwrap(); // only in the journal
        let viewer = SqliteStore::open_for_audit(dir.path()).await.unwrap();
        assert!(!viewer.journal.owned());
        let all = viewer.all_log().await.unwrap();
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
        verify(&all).unwrap();
        let of_permission = viewer.permission_log(1, None, None, 1000).await.unwrap();
        assert_eq!(of_permission, all);
        // The gateway's own open waits for the lock, then refuses to start.
        let started = std::time::Instant::now();
        let Err(refused) = SqliteStore::open(dir.path()).await else {
            panic!("a second gateway on the same data dir must not start");
        };
        assert!(
            refused
                .to_string()
                .contains("in use by another trackgate process"),
            "{refused}"
        );
        assert!(started.elapsed() >= LOCK_WAIT);
        let refused = viewer.append_log(read(1)).await.unwrap_err();
        assert!(
            refused.to_string().contains("another trackgate process"),
            "{refused}"
        );
        assert_eq!(
            segment_files(dir.path()).len(),
            1,
            "the viewer deletes nothing"
        );
    }
}
