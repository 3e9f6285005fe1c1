//! The binary record: a marker, the device id and BCD fields at fixed
//! offsets. Offsets below are after the id (5 bytes, or 8 in a 42-byte
//! record whose id is a 15-digit IMEI padded with one nibble).
//!
//! ```text
//! 0  '$' (or 'X')
//! 1  id: 10 BCD digits (5 bytes) | 15 BCD digits + pad (8 bytes)
//! +0  hh mm ss                 BCD, device clock (SessionConfig::time_zone)
//! +3  dd MM yy                 BCD
//! +6  DD MM mmmm               latitude: degrees, minutes ×10⁴ (8 digits)
//! +10 battery                  0 none, 1–3 → 0/10/20 %, 4–6 → 60/80/100 %,
//!                              7–100 %, F1–F6 → 1–6 %
//! +11 DDD MM mmm F             longitude: degrees (3), minutes ×10⁴ (6), flags nibble
//!                              flags: 0x2 valid fix, 0x4 north, 0x8 east
//! +16 SSS CCC                  speed knots (3 digits), course degrees (3 digits)
//! +19 status                   u32 big-endian, see status.rs
//! +23 …                        record-specific (serial, cells), not decoded
//! ```
//!
//! Every field read must be valid BCD; a record that is not is rejected.

use super::fields::{malformed, to_utc, TimeOfDay};
use super::frame::{LONG_ID, SHORT};
use super::{status, Ctx, NAME};
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position};
use crate::protocol::{DecodeError, Decoded, MessageKind, Rejected, Reply};

/// Knots → km/h.
const KNOTS: f64 = 1.852;
/// Digits of a 15-digit IMEI inside its 8-byte field.
const IMEI_DIGITS: usize = 15;

/// Nibbles of a record, read as BCD digits.
struct Nibbles<'a>(&'a [u8]);

impl Nibbles<'_> {
    fn nibble(&self, n: usize) -> Option<u8> {
        let byte = *self.0.get(n / 2)?;
        Some(if n % 2 == 0 { byte >> 4 } else { byte & 0x0f })
    }

    /// `count` BCD digits from nibble `start`.
    fn digits(&self, start: usize, count: usize) -> Result<u32, Rejected> {
        let bad = || malformed("BCD digit", start / 2);
        (start..start.saturating_add(count)).try_fold(0u32, |acc, n| {
            let d = self.nibble(n).filter(|d| *d < 10).ok_or_else(bad)?;
            acc.checked_mul(10)
                .and_then(|a| a.checked_add(u32::from(d)))
                .ok_or_else(bad)
        })
    }
}

pub(super) fn decode(frame: &[u8], c: &Ctx) -> Result<Decoded, Rejected> {
    let long_id = frame.len() == LONG_ID;
    if frame.len() < SHORT {
        return Err(Rejected::skip(DecodeError::Length {
            declared: SHORT,
            actual: frame.len(),
        }));
    }
    let id_len: usize = if long_id { 8 } else { 5 };
    let hex_id = hex::encode(frame.get(1..id_len.saturating_add(1)).unwrap_or_default());
    let id = if long_id {
        hex_id.get(..IMEI_DIGITS).unwrap_or_default()
    } else {
        &hex_id
    };
    let device = DeviceId::new(id).map_err(|e| Rejected::skip(e.into()))?;

    let n = Nibbles(frame);
    // Nibble offset of the first field after the id.
    let base = id_len.saturating_add(1).saturating_mul(2);
    let at = |k: usize| base.saturating_add(k);
    // Byte offset of the field `k` bytes after the id.
    let byte = |k: usize| (base / 2).saturating_add(k);
    let two = |k: usize| n.digits(at(k), 2);
    let (hh, mi, ss, dd, mo, yy) = (two(0)?, two(2)?, two(4)?, two(6)?, two(8)?, two(10)?);
    let date = i32::try_from(yy)
        .ok()
        .and_then(|y| chrono::NaiveDate::from_ymd_opt(y.saturating_add(2000), mo, dd));
    let time = (hh < 24 && mi < 60 && ss < 60).then(|| {
        TimeOfDay(
            hh.saturating_mul(3600)
                .saturating_add(mi.saturating_mul(60))
                .saturating_add(ss),
        )
    });
    let fix_time = match (date, time) {
        (Some(d), Some(t)) => to_utc(d, t, c.time_zone),
        _ => None,
    }
    .ok_or(malformed("date and time", base / 2))?;

    let lat = f64::from(n.digits(at(12), 2)?) + f64::from(n.digits(at(14), 6)?) / 10_000.0 / 60.0;
    let battery_raw = frame.get(byte(10)).copied().unwrap_or_default();
    let lon = f64::from(n.digits(at(22), 3)?) + f64::from(n.digits(at(25), 6)?) / 10_000.0 / 60.0;
    let flags = n.nibble(at(31)).unwrap_or_default();
    let lat = if flags & 0x4 == 0 { -lat } else { lat };
    let lon = if flags & 0x8 == 0 { -lon } else { lon };
    if !Position::valid_coordinates(lat, lon) {
        return Err(malformed("coordinates (out of range)", byte(6)));
    }
    let speed = f64::from(n.digits(at(32), 3)?);
    let course = n.digits(at(35), 3)?;
    if course > 360 {
        return Err(malformed("course", byte(17)));
    }
    let status_at = byte(19);
    let word = frame
        .get(status_at..status_at.saturating_add(4))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .ok_or(malformed("status", status_at))?;

    let mut attrs = Attributes::new();
    if let Some(level) = battery_level(battery_raw) {
        attrs.push(
            AttrKey::named("battery_level_pct"),
            AttrValue::Int(i64::from(level)),
        );
    }
    status::apply(&mut attrs, word);
    Ok(Decoded {
        kind: MessageKind::Data,
        device: Some(device.clone()),
        positions: vec![Position {
            device_id: device,
            fix_time,
            received_time: c.received,
            lat,
            lon,
            altitude_m: 0.0,
            speed_kmh: speed * KNOTS,
            course_deg: f64::from(course),
            satellites: None,
            valid: flags & 0x2 != 0,
            protocol: NAME,
            attributes: attrs,
        }],
        reports: Vec::new(),
        reply: Reply::NONE,
    })
}

/// The battery byte as a percentage (Traccar's reading of it).
fn battery_level(raw: u8) -> Option<u8> {
    match raw {
        1..=3 => Some(raw.saturating_sub(1).saturating_mul(10)),
        4..=6 => Some(raw.saturating_sub(1).saturating_mul(20)),
        7..=100 => Some(raw),
        0xF1..=0xF6 => Some(raw.saturating_sub(0xF0)),
        _ => None,
    }
}
