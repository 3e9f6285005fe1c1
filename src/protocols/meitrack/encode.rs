//! Test encoder: Meitrack frames from values, so property tests can check
//! that decoding gives them back.

#![allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

pub(crate) use super::device::{frame, Record as Fix};

/// An `AAA` payload.
pub(crate) fn aaa(f: &Fix) -> Vec<u8> {
    let t =
        chrono::DateTime::from_timestamp(946_684_800 + i64::from(f.secs), 0).unwrap_or_default();
    format!(
        "{},{:.6},{:.6},{},{},{},12,{},{},1.0,{},{},3600,262|2|1A2B|3C4D,0102,0000|0001|0000|0191|0573,,,3,,",
        f.event,
        f64::from(f.lat_e6) / 1e6,
        f64::from(f.lon_e6) / 1e6,
        t.format("%y%m%d%H%M%S"),
        if f.valid { 'A' } else { 'V' },
        f.satellites,
        f.speed,
        f.course,
        f.altitude,
        f.mileage
    )
    .into_bytes()
}

/// A CCC payload with these records (7 more left in the cache).
pub(crate) fn ccc(fixes: &[Fix]) -> Vec<u8> {
    super::device::ccc(fixes, 7)
}

/// A CCE payload with these records (event, valid, sats; speed, course,
/// altitude; lat, lon, time, mileage).
pub(crate) fn cce(fixes: &[Fix]) -> Vec<u8> {
    let mut out = 0u32.to_le_bytes().to_vec();
    out.extend_from_slice(&(fixes.len() as u16).to_le_bytes());
    for (i, f) in fixes.iter().enumerate() {
        let mut rec = (i as u16).to_le_bytes().to_vec();
        rec.extend_from_slice(&[
            3,
            0x01,
            f.event,
            0x05,
            u8::from(f.valid),
            0x06,
            f.satellites,
        ]);
        rec.push(3);
        for (id, v) in [
            (0x08u8, f.speed),
            (0x09, f.course),
            (0x0B, f.altitude as u16),
        ] {
            rec.push(id);
            rec.extend_from_slice(&v.to_le_bytes());
        }
        rec.push(4);
        for (id, v) in [
            (0x02u8, f.lat_e6 as u32),
            (0x03, f.lon_e6 as u32),
            (0x04, f.secs),
            (0x0C, f.mileage),
        ] {
            rec.push(id);
            rec.extend_from_slice(&v.to_le_bytes());
        }
        rec.push(0);
        out.extend_from_slice(&(rec.len() as u16).to_le_bytes());
        out.extend_from_slice(&rec);
    }
    out
}
