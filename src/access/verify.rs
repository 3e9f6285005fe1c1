//! Hash-chain verification of the access log: re-walks every entry in id
//! order and names the first one whose content, link or position is wrong.

use crate::store::{entry_hash, StoredEntry, GENESIS};

/// An intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: usize,
    pub last_hash: [u8; 32],
}

/// Where and how the chain breaks.
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
    #[error("entry {id}: the chain does not start at entry 1 (the first entries were deleted)")]
    Start { id: i64 },
}

/// Verifies `entries` (every row, in id order).
pub fn verify(entries: &[StoredEntry]) -> Result<Verified, ChainError> {
    let mut prev_hash = GENESIS;
    let mut prev_id = 0i64;
    for e in entries {
        if prev_id == 0 && e.id != 1 {
            return Err(ChainError::Start { id: e.id });
        }
        if prev_id != 0 && e.id != prev_id + 1 {
            return Err(ChainError::Gap {
                id: e.id,
                previous: prev_id,
            });
        }
        if e.prev_hash != prev_hash {
            return Err(ChainError::Link { id: e.id });
        }
        if entry_hash(&e.prev_hash, e.id, &e.entry) != e.hash {
            return Err(ChainError::Content { id: e.id });
        }
        prev_hash = e.hash;
        prev_id = e.id;
    }
    Ok(Verified {
        entries: entries.len(),
        last_hash: prev_hash,
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
        let v = verify(&c).unwrap();
        assert_eq!(v.entries, 5);
        assert_eq!(v.last_hash, c[4].hash);
        assert_eq!(verify(&[]).unwrap().entries, 0);
    }

    #[test]
    fn edits_deletions_and_relinks_are_named() {
        let mut c = chain(5);
        c[2].entry.shipment_number = Some("forged".into());
        assert_eq!(verify(&c), Err(ChainError::Content { id: 3 }));

        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&c), Err(ChainError::Gap { id: 3, previous: 1 }));

        let mut c = chain(5);
        c.remove(0);
        assert_eq!(verify(&c), Err(ChainError::Start { id: 2 }));

        // Rewriting an entry and its own hash still breaks the next link.
        let mut c = chain(5);
        c[1].entry.device_id = Some("other".into());
        c[1].hash = entry_hash(&c[1].prev_hash, 2, &c[1].entry);
        assert_eq!(verify(&c), Err(ChainError::Link { id: 3 }));
    }
}
