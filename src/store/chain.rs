//! The access log's hash chain: each entry's hash covers the previous hash,
//! its id and every field, in a fixed, length-prefixed encoding, so any
//! edit, insertion or deletion is detected by re-walking the chain.

use sha2::{Digest, Sha256};

use super::LogEntry;

/// The `prev_hash` of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

fn put_str(h: &mut Sha256, v: Option<&str>) {
    match v {
        None => h.update([0u8]),
        Some(s) => {
            h.update([1u8]);
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
    }
}

fn put_int(h: &mut Sha256, v: Option<i64>) {
    match v {
        None => h.update([0u8]),
        Some(n) => {
            h.update([1u8]);
            h.update(n.to_be_bytes());
        }
    }
}

/// The hash of entry `id` following `prev`.
pub fn entry_hash(prev: &[u8; 32], id: i64, e: &LogEntry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(id.to_be_bytes());
    put_str(&mut h, Some(e.scope));
    put_int(&mut h, Some(e.time_ms));
    put_str(&mut h, Some(&e.event));
    put_int(&mut h, e.permission_id);
    put_str(&mut h, e.permission_name.as_deref());
    put_str(&mut h, e.provider_company_id.as_deref());
    put_str(&mut h, e.recipient_company_id.as_deref());
    put_int(&mut h, e.user_id);
    put_int(&mut h, e.api_key_id);
    put_str(&mut h, e.device_id.as_deref());
    put_str(&mut h, e.device_name.as_deref());
    put_str(&mut h, e.channel.as_deref());
    put_str(&mut h, e.query.as_deref());
    put_int(&mut h, e.positions);
    put_str(&mut h, e.shipment_number.as_deref());
    put_str(&mut h, e.client_addr.as_deref());
    put_str(&mut h, e.user_agent.as_deref());
    put_str(&mut h, e.detail.as_deref());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_and_the_order_change_the_hash() {
        let e = LogEntry {
            scope: "partner",
            time_ms: 1,
            event: "read".into(),
            device_id: Some("a".into()),
            ..Default::default()
        };
        let h = entry_hash(&GENESIS, 1, &e);
        assert_ne!(h, entry_hash(&GENESIS, 2, &e));
        assert_ne!(h, entry_hash(&h, 1, &e));
        let mut f = e.clone();
        f.device_id = Some("b".into());
        assert_ne!(h, entry_hash(&GENESIS, 1, &f));
        // None and empty string differ.
        let mut g = e.clone();
        g.detail = Some(String::new());
        assert_ne!(h, entry_hash(&GENESIS, 1, &g));
    }
}
