//! Records (command 1) and extended records (command 68), and DTC records
//! (command 9).
//!
//! ```text
//! records left u8 | count u8 | record…
//! record   time u32 (unix s) | time extension u8 | [record extension u8 (68)] | priority u8 |
//!          lon i32 1e-7 | lat i32 1e-7 | altitude u16 0.1 m | course u16 0.01° | satellites u8 |
//!          speed u16 km/h | HDOP u8 ×10 | event u8 (u16 in 68) |
//!          4 IO groups (1, 2, 4, 8-byte values): count u8 | { id u8 (u16 in 68) | value }…
//! DTCs     count u8 | { reserved u8 | time u32 | lon i32 | lat i32 | archive u8 (2) | code 5 ASCII }…
//! ```
//!
//! lon/lat `0x80000000` means "no fix": the record becomes a `Report`.
//! Extended records may be split: the record extension's high nibble is the
//! number of parts, the low nibble this part (1-based); parts after the
//! first add their IO elements to the record before them.

use chrono::{DateTime, Utc};

use super::io;
use super::read::{Reader, Res, Short};
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position, Report};
use crate::protocol::DecodeError;

pub(super) const RECORDS: u8 = 1;
pub(super) const EXTENDED: u8 = 68;

/// IO id of a driver id sent as bytes (shown as hex).
const DRIVER_ID_HEX: u16 = 34;
/// IO ids whose two 8-byte halves are one ASCII driver id.
const DRIVER_IDS: [(u32, u32); 2] = [(126, 127), (155, 156)];
/// IO ids whose two halves are one tag id (hex).
const TAG_ID: (u32, u32) = (760, 761);

/// One decoded record, before it becomes a position or report.
struct Record {
    time: DateTime<Utc>,
    fix: Option<Fix>,
    attrs: Attributes,
}

struct Fix {
    lat: f64,
    lon: f64,
    altitude_m: f64,
    course_deg: f64,
    satellites: u8,
    speed_kmh: f64,
}

/// What a records packet decoded to.
pub(super) struct Decoded {
    pub positions: Vec<Position>,
    pub reports: Vec<Report>,
}

fn malformed(s: Short) -> DecodeError {
    DecodeError::Malformed {
        what: "record",
        offset: s.offset,
    }
}

/// Commands 1 and 68.
pub(super) fn decode(
    r: &mut Reader<'_>,
    command: u8,
    device: &DeviceId,
    received: DateTime<Utc>,
) -> Result<Decoded, DecodeError> {
    let extended = command == EXTENDED;
    r.u8().map_err(malformed)?; // records left in the device
    let count = r.u8().map_err(malformed)?;
    let mut records: Vec<Record> = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let (rec, continues) = record(r, extended).map_err(malformed)?;
        match records.last_mut() {
            Some(prev) if continues => {
                for (k, v) in rec.attrs.iter() {
                    prev.attrs.set(k.clone(), v.clone());
                }
            }
            _ => records.push(rec),
        }
    }
    if r.remaining() != 0 {
        return Err(DecodeError::Length {
            declared: r.offset().saturating_sub(r.remaining()),
            actual: r.offset(),
        });
    }
    let mut out = Decoded {
        positions: Vec::new(),
        reports: Vec::new(),
    };
    for mut rec in records {
        derive(&mut rec.attrs);
        rec.attrs.set_namer(io::namer);
        match rec.fix {
            Some(f) => out.positions.push(Position {
                device_id: device.clone(),
                fix_time: rec.time,
                received_time: received,
                lat: f.lat,
                lon: f.lon,
                altitude_m: f.altitude_m,
                speed_kmh: f.speed_kmh,
                course_deg: f.course_deg,
                satellites: Some(f.satellites),
                valid: true,
                protocol: super::NAME,
                attributes: rec.attrs,
            }),
            None => out.reports.push(Report {
                device_id: device.clone(),
                time: rec.time,
                protocol: super::NAME,
                attributes: rec.attrs,
            }),
        }
    }
    Ok(out)
}

fn time(secs: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(secs), 0).unwrap_or_default()
}

/// One record, and whether it continues the previous one.
fn record(r: &mut Reader<'_>, extended: bool) -> Res<(Record, bool)> {
    let time = time(r.u32()?);
    r.u8()?; // time extension
    let mut continues = false;
    if extended {
        let ext = r.u8()?;
        let (parts, part) = (ext.checked_shr(4).unwrap_or(0), ext & 0x0f);
        continues = part > 0 && part <= parts;
    }
    r.u8()?; // priority
    let lon = r.i32()?;
    let lat = r.i32()?;
    let mut attrs = Attributes::new();
    let fix = if lon > i32::MIN && lat > i32::MIN {
        let altitude_m = f64::from(r.u16()?) / 10.0;
        let course_deg = f64::from(r.u16()?) / 100.0;
        let satellites = r.u8()?;
        let speed_kmh = f64::from(r.u16()?);
        let hdop = f64::from(r.u8()?) / 10.0;
        attrs.push(AttrKey::named("hdop"), AttrValue::Float(hdop));
        Some(Fix {
            lat: f64::from(lat) / 10_000_000.0,
            lon: f64::from(lon) / 10_000_000.0,
            altitude_m,
            course_deg,
            satellites,
            speed_kmh,
        })
    } else {
        r.take(8)?;
        None
    };
    let event = if extended {
        r.u16()?
    } else {
        u16::from(r.u8()?)
    };
    attrs.push(AttrKey::named("event"), AttrValue::Int(event.into()));
    for width in [1, 2, 4, 8] {
        let n = r.u8()?;
        for _ in 0..n {
            let id = if extended {
                r.u16()?
            } else {
                u16::from(r.u8()?)
            };
            let value = r.uint(width)?;
            attrs.set(AttrKey::Io(u32::from(id)), AttrValue::Int(value as i64));
            if id == DRIVER_ID_HEX {
                let bytes = value.to_be_bytes();
                let hex = hex::encode(
                    bytes
                        .get(8usize.saturating_sub(width)..)
                        .unwrap_or_default(),
                );
                attrs.set(AttrKey::named("driver_unique_id"), AttrValue::Text(hex));
            }
        }
    }
    Ok((Record { time, fix, attrs }, continues))
}

/// Attributes made of two IO elements: the driver ids and the tag id.
fn derive(attrs: &mut Attributes) {
    let raw = |attrs: &Attributes, id: u32| match attrs.get(&format!("io{id}")) {
        Some(AttrValue::Int(v)) => Some(*v as u64),
        _ => None,
    };
    for (a, b) in DRIVER_IDS {
        if let (Some(x), Some(y)) = (raw(attrs, a), raw(attrs, b)) {
            let bytes = [x.to_be_bytes(), y.to_be_bytes()].concat();
            let text: String = bytes.iter().map(|&c| char::from(c)).collect();
            attrs.set(AttrKey::named("driver_unique_id"), AttrValue::Text(text));
        }
    }
    if let (Some(x), Some(y)) = (raw(attrs, TAG_ID.0), raw(attrs, TAG_ID.1)) {
        attrs.set(
            AttrKey::named("tag_id"),
            AttrValue::Text(format!("{x:x}{y:x}")),
        );
    }
}

/// Command 9: one position per DTC.
pub(super) fn dtcs(
    r: &mut Reader<'_>,
    device: &DeviceId,
    received: DateTime<Utc>,
) -> Result<Vec<Position>, DecodeError> {
    let count = r.u8().map_err(malformed)?;
    let mut out = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let p = super::read::attempt(|| -> Res<Position> {
            r.u8()?;
            let t = time(r.u32()?);
            let lon = f64::from(r.i32()?) / 10_000_000.0;
            let lat = f64::from(r.i32()?) / 10_000_000.0;
            let mut attrs = Attributes::new();
            if r.u8()? == 2 {
                attrs.push(AttrKey::named("archive"), AttrValue::Bool(true));
            }
            let code: String = r.take(5)?.iter().map(|&c| char::from(c)).collect();
            attrs.push(AttrKey::named("dtcs"), AttrValue::Text(code));
            Ok(Position {
                device_id: device.clone(),
                fix_time: t,
                received_time: received,
                lat,
                lon,
                altitude_m: 0.0,
                speed_kmh: 0.0,
                course_deg: 0.0,
                satellites: None,
                valid: Position::valid_coordinates(lat, lon),
                protocol: super::NAME,
                attributes: attrs,
            })
        })
        .map_err(malformed)?;
        out.push(p);
    }
    Ok(out)
}
