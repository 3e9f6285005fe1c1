//! Hash-chain verification of the access log: re-walks every entry in id
//! order and names the first one whose position, link or content is wrong.
//!
//! The writer numbers entries 1, 2, 3, … and never deletes any, so the
//! whole log must start at entry 1 and have no gaps. Cutting entries off
//! the end leaves a valid, shorter chain: compare `last_hash` with one
//! recorded earlier to detect that.

use crate::store::{entry_hash, StoredEntry, GENESIS};

/// An intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: usize,
    /// The last entry's hash; `GENESIS` for an empty log.
    pub last_hash: [u8; 32],
}

/// The first place the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("entry {id}: content does not match its hash (edited)")]
    Content { id: i64 },
    #[error(
        "entry {id}: does not link to the previous entry's hash (inserted, replaced or reordered)"
    )]
    Link { id: i64 },
    #[error("entry {id} follows entry {previous}: entries are missing (deleted)")]
    Gap { id: i64, previous: i64 },
    #[error("entry {id} follows entry {previous}: ids out of order or duplicated")]
    Order { id: i64, previous: i64 },
    #[error("entry {id}: the log does not start at entry 1 (the first entries were deleted)")]
    Start { id: i64 },
}

/// Verifies `entries`: every row of the log, in id order.
pub fn verify(entries: &[StoredEntry]) -> Result<Verified, ChainError> {
    let mut previous: Option<&StoredEntry> = None;
    for e in entries {
        let prev_hash = match previous {
            None if e.id != 1 => return Err(ChainError::Start { id: e.id }),
            None => GENESIS,
            Some(p) if e.id <= p.id => {
                return Err(ChainError::Order {
                    id: e.id,
                    previous: p.id,
                })
            }
            Some(p) if e.id != p.id + 1 => {
                return Err(ChainError::Gap {
                    id: e.id,
                    previous: p.id,
                })
            }
            Some(p) => p.hash,
        };
        if e.prev_hash != prev_hash {
            return Err(ChainError::Link { id: e.id });
        }
        if entry_hash(&e.prev_hash, e.id, &e.entry) != e.hash {
            return Err(ChainError::Content { id: e.id });
        }
        previous = Some(e);
    }
    Ok(Verified {
        entries: entries.len(),
        last_hash: previous.map_or(GENESIS, |p| p.hash),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LogEntry;

    fn chain(n: i64) -> Vec<StoredEntry> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|id| {
                let entry = LogEntry {
                    scope: "partner",
                    time_ms: 1_700_000_000_000 + id,
                    event: "read".into(),
                    device_id: Some(format!("dev{id}")),
                    ..Default::default()
                };
                let hash = entry_hash(&prev, id, &entry);
                let e = StoredEntry {
                    id,
                    entry,
                    prev_hash: prev,
                    hash,
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        assert_eq!(
            verify(&c),
            Ok(Verified {
                entries: 5,
                last_hash: c[4].hash
            })
        );
        assert_eq!(
            verify(&[]),
            Ok(Verified {
                entries: 0,
                last_hash: GENESIS
            })
        );
    }

    #[test]
    fn edited_content_names_the_entry() {
        let mut c = chain(5);
        c[2].entry.shipment_number = Some("forged".into());
        let err = verify(&c).unwrap_err();
        assert_eq!(err, ChainError::Content { id: 3 });
        assert_eq!(
            err.to_string(),
            "entry 3: content does not match its hash (edited)"
        );
    }

    #[test]
    fn deleted_entry_is_a_gap() {
        let mut c = chain(5);
        c.remove(1);
        let err = verify(&c).unwrap_err();
        assert_eq!(err, ChainError::Gap { id: 3, previous: 1 });
        assert_eq!(
            err.to_string(),
            "entry 3 follows entry 1: entries are missing (deleted)"
        );
    }

    #[test]
    fn deleted_first_entries_are_named() {
        let mut c = chain(5);
        c.drain(..2);
        assert_eq!(verify(&c), Err(ChainError::Start { id: 3 }));
    }

    #[test]
    fn swapped_hashes_break_the_link() {
        let mut c = chain(5);
        let (h2, h3) = ((c[1].prev_hash, c[1].hash), (c[2].prev_hash, c[2].hash));
        (c[1].prev_hash, c[1].hash) = h3;
        (c[2].prev_hash, c[2].hash) = h2;
        assert_eq!(verify(&c), Err(ChainError::Link { id: 2 }));
    }

    #[test]
    fn rehashed_edit_breaks_the_next_link() {
        let mut c = chain(5);
        c[1].entry.device_id = Some("other".into());
        c[1].hash = entry_hash(&c[1].prev_hash, 2, &c[1].entry);
        assert_eq!(verify(&c), Err(ChainError::Link { id: 3 }));
    }

    #[test]
    fn first_entry_must_follow_genesis() {
        let mut c = chain(2);
        c[0].prev_hash = [1; 32];
        c[0].hash = entry_hash(&c[0].prev_hash, 1, &c[0].entry);
        assert_eq!(verify(&c), Err(ChainError::Link { id: 1 }));
    }

    #[test]
    fn duplicated_or_unsorted_ids_are_not_called_deletions() {
        let mut c = chain(3);
        c.insert(2, c[1].clone());
        assert_eq!(verify(&c), Err(ChainError::Order { id: 2, previous: 2 }));

        let mut c = chain(2);
        c.push(c[0].clone());
        assert_eq!(verify(&c), Err(ChainError::Order { id: 1, previous: 2 }));
    }
}
