//! Location reports: the 28-byte basic information of 0x0200 (also inside
//! 0x0201, 0x0704 and 0x0210), followed by additional-information items
//! (`extras.rs`).
//!
//! ```text
//! alarm u32 | status u32 | lat u32 1e-6° | lon u32 1e-6° | altitude i16 m |
//! speed u16 0.1 km/h | course u16 ° | time BCD yyMMddHHmmss (configured zone) | items…
//!
//! status  bit 0 ACC (ignition), 1 fix valid, 2 south, 3 west, 10 fuel cut
//!         (blocked), 26 charging; bit 4 motion on G1C Pro, bit 16 door on MV710G/MV810G
//! batch   0x0704: count u16 | type u8 (1 = stored) | { len u16 | basic+items }…
//!         0x0210: { len u8 | basic+items }…
//! ```

use super::extras;
use super::read::{Reader, Res, Short};
use super::record::{Ctx, Fix, Rec};
use crate::model::Position;
use crate::protocol::DecodeError;

const PADLOCK_MODELS: &[&str] = &["G-360P", "G-508P"];
pub(super) const AOVX_MODELS: &[&str] = &["AL300", "GL100"];
const DOOR_MODELS: &[&str] = &["MV810G", "MV710G"];

pub(super) fn malformed(what: &'static str) -> impl Fn(Short) -> DecodeError {
    move |s| DecodeError::Malformed {
        what,
        offset: s.offset,
    }
}

/// A 0x0200 body (or the part of a batch entry / query response after its prefix).
pub(super) fn location(r: &mut Reader<'_>, c: &Ctx<'_>) -> Result<Position, DecodeError> {
    let mut rec = Rec::new();
    let fix = basic(r, c, &mut rec).map_err(malformed("location basic information"))?;
    extras::decode(r, c, &mut rec);
    Ok(fix.into_position(c, rec))
}

fn basic(r: &mut Reader<'_>, c: &Ctx<'_>, rec: &mut Rec) -> Res<Fix> {
    let alarm = r.u32()?;
    alarms(rec, c, alarm);
    let status = r.u32()?;
    let (lat, lon, valid) = coordinates(r, c, rec, status)?;
    let altitude_m = f64::from(r.i16()?);
    let speed_kmh = f64::from(r.u16()?) / 10.0;
    let course_deg = f64::from(r.u16()?);
    let time = c.bcd_time(r.take(6)?);
    Ok(Fix {
        time,
        lat,
        lon,
        altitude_m,
        speed_kmh,
        course_deg,
        valid,
    })
}

fn bit(v: u32, n: u32) -> bool {
    v.checked_shr(n).is_some_and(|s| s & 1 != 0)
}

/// Status word and the two coordinates after it: `(lat, lon, valid)`.
pub(super) fn coordinates(
    r: &mut Reader<'_>,
    c: &Ctx<'_>,
    rec: &mut Rec,
    status: u32,
) -> Res<(f64, f64, bool)> {
    rec.flag("ignition", bit(status, 0));
    if c.model_in(&["G1C Pro"]) {
        rec.flag("motion", bit(status, 4));
    }
    rec.flag("blocked", bit(status, 10));
    if c.model_in(DOOR_MODELS) {
        rec.flag("door", bit(status, 16));
    }
    rec.flag("charging", bit(status, 26));
    let lat = f64::from(r.u32()?) / 1_000_000.0;
    let lon = f64::from(r.u32()?) / 1_000_000.0;
    Ok((
        if bit(status, 2) { -lat } else { lat },
        if bit(status, 3) { -lon } else { lon },
        bit(status, 1),
    ))
}

/// The alarm word: the standard bits, or a model's own meaning.
fn alarms(rec: &mut Rec, c: &Ctx<'_>, v: u32) {
    let b = |n| bit(v, n);
    if c.model_in(PADLOCK_MODELS) {
        rec.alarm_if(b(0) || b(4), "removing");
        rec.alarm_if(b(1), "tampering");
    } else if c.model_in(AOVX_MODELS) {
        rec.alarm_if(b(16), "movement");
    } else {
        rec.alarm_if(b(0), "sos");
        rec.alarm_if(b(1), "overspeed");
        rec.alarm_if(b(2), "fatigueDriving");
        rec.alarm_if(b(5) || b(6), "gpsAntennaCut");
        rec.alarm_if(b(4) || b(9) || b(10) || b(11), "fault");
        rec.alarm_if(b(7) || b(18), "lowBattery");
        rec.alarm_if(b(8), "powerOff");
        rec.alarm_if(b(15), "vibration");
        rec.alarm_if(b(16) || b(17), "tampering");
        rec.alarm_if(b(19), "parking");
        rec.alarm_if(b(20), "geofence");
        rec.alarm_if(b(26), "general");
        rec.alarm_if(b(28), "movement");
        rec.alarm_if((b(29) || b(30)) && !c.model_in(&["VL300"]), "accident");
    }
}

/// Batch upload 0x0704 (`long_len`: u16 entry lengths after count and type)
/// or 0x0210 (u8 entry lengths, no prefix).
pub(super) fn batch(
    r: &mut Reader<'_>,
    c: &Ctx<'_>,
    long_len: bool,
) -> Result<Vec<Position>, DecodeError> {
    let mut archive = false;
    if long_len {
        let prefix = super::read::attempt(|| -> Res<u8> {
            r.u16()?; // count: the entries say it again
            r.u8()
        });
        archive = prefix.map_err(malformed("batch header"))? > 0;
    }
    let mut positions = Vec::new();
    while r.remaining() > 0 {
        let len = if long_len {
            r.u16().map(usize::from)
        } else {
            r.u8().map(usize::from)
        }
        .map_err(malformed("batch entry length"))?;
        let mut entry = r.sub(len).map_err(malformed("batch entry (truncated)"))?;
        let mut p = location(&mut entry, c)?;
        if archive {
            p.attributes.set(
                crate::model::AttrKey::named("archive"),
                crate::model::AttrValue::Bool(true),
            );
        }
        positions.push(p);
    }
    if positions.is_empty() {
        return Err(DecodeError::Malformed {
            what: "batch (no entries)",
            offset: r.offset(),
        });
    }
    Ok(positions)
}
