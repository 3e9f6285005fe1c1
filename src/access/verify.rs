//! Hash-chain verification of the access log: re-walks every entry in id
//! order and names the first one whose position, link or content is wrong.
//!
//! The writer numbers entries 1, 2, 3, … and never deletes any, so the
//! whole log must start at entry 1 and have no gaps. Cutting entries off
//! the end leaves a valid, shorter chain, which nothing inside the log can
//! reveal: the [`Anchor`] (an entry's id and hash recorded outside the
//! server, as `audit verify` prints it) is what does.

use crate::store::{entry_hash, StoredEntry, GENESIS};

/// An intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: usize,
    /// The last entry's id and hash (`0` and `GENESIS` for an empty log).
    pub head: Anchor,
}

/// One entry's id and hash, recorded outside the server (printed by
/// `audit verify` as `ID:HEX`): a later verification with it proves the log
/// still holds that entry unchanged, so entries cut off the end since then
/// are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub id: i64,
    pub hash: [u8; 32],
}

impl std::fmt::Display for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, hex::encode(self.hash))
    }
}

impl std::str::FromStr for Anchor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not ID:HASH (an entry id, a colon, 64 hex digits)");
        let (id, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        let id: i64 = id.parse().map_err(|_| bad())?;
        let mut h = [0u8; 32];
        hex::decode_to_slice(hash, &mut h).map_err(|_| bad())?;
        if id < 0 {
            return Err(bad());
        }
        Ok(Self { id, hash: h })
    }
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
    #[error("entry {id}, recorded earlier, is gone: the log ends at entry {last} (entries were cut off the end)")]
    Truncated { id: i64, last: i64 },
    #[error("entry {id}: its hash differs from the one recorded earlier (the log was rewritten)")]
    Anchor { id: i64 },
}

/// [`verify`], then checks that the log still holds `anchor` unchanged.
pub fn verify_with(
    entries: &[StoredEntry],
    anchor: Option<&Anchor>,
) -> Result<Verified, ChainError> {
    let v = verify(entries)?;
    if let Some(a) = anchor {
        // The chain is gap-free from 1, so entry `id` sits at index id - 1;
        // id 0 is the empty log's head, whose hash is the genesis value.
        let recorded = match a.id {
            0 => Some(GENESIS),
            id => usize::try_from(id - 1)
                .ok()
                .and_then(|i| entries.get(i))
                .map(|e| e.hash),
        };
        match recorded {
            None => {
                return Err(ChainError::Truncated {
                    id: a.id,
                    last: v.head.id,
                })
            }
            Some(h) if h != a.hash => return Err(ChainError::Anchor { id: a.id }),
            Some(_) => {}
        }
    }
    Ok(v)
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
        head: Anchor {
            id: previous.map_or(0, |p| p.id),
            hash: previous.map_or(GENESIS, |p| p.hash),
        },
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
                head: Anchor {
                    id: 5,
                    hash: c[4].hash
                }
            })
        );
        assert_eq!(
            verify(&[]),
            Ok(Verified {
                entries: 0,
                head: Anchor {
                    id: 0,
                    hash: GENESIS
                }
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

    /// Cutting entries off the end leaves a valid chain; only an anchor
    /// recorded before the cut reveals it.
    #[test]
    fn an_anchor_finds_entries_cut_off_the_end() {
        let c = chain(5);
        let anchor: Anchor = verify(&c).unwrap().head.to_string().parse().unwrap();
        assert_eq!(anchor.id, 5);
        assert!(verify_with(&c, Some(&anchor)).is_ok());
        let longer = chain(7);
        assert!(verify_with(&longer, Some(&anchor)).is_ok(), "grown since");
        let cut = &c[..3];
        assert!(verify(cut).is_ok(), "a shorter chain is still a chain");
        let err = verify_with(cut, Some(&anchor)).unwrap_err();
        assert_eq!(err, ChainError::Truncated { id: 5, last: 3 });
        assert_eq!(
            err.to_string(),
            "entry 5, recorded earlier, is gone: the log ends at entry 3 (entries were cut off the end)"
        );
        // Cut and rebuilt with other content under the same ids.
        let mut forged = chain(5);
        forged.truncate(4);
        let mut prev = forged[3].hash;
        let entry = LogEntry {
            scope: "partner",
            event: "read".into(),
            ..Default::default()
        };
        let hash = entry_hash(&prev, 5, &entry);
        forged.push(StoredEntry {
            id: 5,
            entry,
            prev_hash: std::mem::replace(&mut prev, hash),
            hash,
        });
        assert!(verify(&forged).is_ok());
        assert_eq!(
            verify_with(&forged, Some(&anchor)),
            Err(ChainError::Anchor { id: 5 })
        );
        let genesis = Anchor {
            id: 0,
            hash: GENESIS,
        };
        assert!(
            verify_with(&c, Some(&genesis)).is_ok(),
            "the empty log's head"
        );
        let zero_forged = Anchor {
            id: 0,
            hash: [7; 32],
        };
        assert_eq!(
            verify_with(&c, Some(&zero_forged)),
            Err(ChainError::Anchor { id: 0 })
        );
        let negative = format!("-1:{}", "0".repeat(64));
        for bad in ["5", "x:00", "5:abcd", negative.as_str()] {
            assert!(bad.parse::<Anchor>().is_err(), "{bad}");
        }
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
