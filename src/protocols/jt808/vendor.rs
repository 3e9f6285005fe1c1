//! Vendor messages outside the standard: the JT600-style location reports
//! 0x5501 / 0x5502 of e-lock devices, and the transparent data 0x0900
//! (OBD text, GTSL driver cards, 0xF0 vehicle data, BLE tag and sensor
//! lists). Layouts are in `protocols/jt808.md`.

use chrono::{DateTime, NaiveDate, Utc};

use super::extras;
use super::location::malformed;
use super::messages::{status_fix, Answer, Outcome};
use super::read::{bcd, Reader, Res};
use super::record::{Ctx, Fix, Rec};
use crate::model::{AttrValue, Position};
use crate::protocol::{DecodeError, MessageKind};

/// 0x5501 (live) / 0x5502 (stored, marked invalid).
///
/// ```text
/// BCD ddMMyy HHmmss (UTC) | lat BCD DDMMmmmm | lon BCD DDDMMmmmm + flags nibble
/// (bit 0 valid, 1 north, 2 east) | speed BCD knots | course u8 ×2° | rssi | sats |
/// odometer u32 km | battery u8 (%, AA/AB charging) | cid u32 | lac u16 | product u8 |
/// status u16 | alarm u16 | { id u8 | len u8 | value }…
/// ```
pub(super) fn location2(r: &mut Reader<'_>, c: &Ctx<'_>, live: bool) -> Res<Position> {
    let t = r.take(6)?;
    let time = jt600_time(t);
    let lat_raw = bcd_number(r.take(4)?);
    let lon_bytes = r.take(5)?;
    let (lon_head, flags) = match lon_bytes.split_last() {
        Some((&last, head)) => (head, last),
        None => (lon_bytes, 0),
    };
    let lon_raw = bcd_number(lon_head)
        .zip(bcd(flags & 0xf0).map(|d| d / 10))
        .and_then(|(h, n)| h.checked_mul(10)?.checked_add(u64::from(n)));
    let mut lat = lat_raw.map(degrees_minutes).unwrap_or(f64::NAN);
    let mut lon = lon_raw.map(degrees_minutes).unwrap_or(f64::NAN);
    if flags & 0b10 == 0 {
        lat = -lat;
    }
    if flags & 0b100 == 0 {
        lon = -lon;
    }
    let speed_knots = bcd(r.u8()?).unwrap_or(0);
    let course = f64::from(r.u8()?) * 2.0;
    let mut rec = Rec::new();
    rec.int("rssi", r.u8()?);
    rec.satellites = Some(r.u8()?);
    rec.int("odometer_m", i64::from(r.u32()?).saturating_mul(1000));
    match r.u8()? {
        level @ 0..=100 => rec.int("battery_level_pct", level),
        0xaa | 0xab => rec.flag("charging", true),
        _ => {}
    }
    let cid = r.u32()?;
    let lac = r.u16()?;
    if cid > 0 && lac > 0 {
        rec.int("cid", cid);
        rec.int("lac", lac);
    }
    let product = r.u8()?;
    let status = r.u16()?;
    let alarm = r.u16()?;
    let a = |n: u32| alarm.checked_shr(n).is_some_and(|v| v & 1 != 0);
    match product {
        1 | 2 => rec.alarm_if(a(0), "lowPower"),
        3 => {
            rec.flag("blocked", status & 0x20 != 0);
            rec.alarm_if(a(0), "overspeed");
            rec.alarm_if(a(1), "lowPower");
            rec.alarm_if(a(2), "vibration");
            rec.alarm_if(a(3), "lowBattery");
            rec.alarm_if(a(5), "geofenceEnter");
            rec.alarm_if(a(6), "geofenceExit");
        }
        _ => {}
    }
    rec.int("status", status);
    let mut altitude_m = 0.0;
    while r.remaining() >= 2 {
        let id = r.u8()?;
        let len = usize::from(r.u8()?);
        let Ok(mut v) = r.sub(len) else { break };
        let _ = super::read::attempt(|| -> Res<()> {
            match id {
                0x02 => altitude_m = f64::from(v.i16()?),
                0x10 => rec.int("wake_source", v.u8()?),
                0x0b => extras::lock_command(len, &mut v, &mut rec)?,
                0x0c => {
                    let axis = |v: u16| {
                        if v > 0x8000 {
                            i32::from(v).saturating_sub(0x10000)
                        } else {
                            i32::from(v)
                        }
                    };
                    let (x, y, z) = (axis(v.u16()?), axis(v.u16()?), axis(v.u16()?));
                    rec.text("tilt", format!("[{x},{y},{z}]"));
                }
                0xfc => rec.int("geofence", v.u8()?),
                _ => {}
            }
            Ok(())
        });
    }
    let fix = Fix {
        time,
        lat,
        lon,
        altitude_m,
        speed_kmh: f64::from(speed_knots) * 1.852,
        course_deg: course,
        valid: live && flags & 1 != 0 && Position::valid_coordinates(lat, lon),
    };
    let mut p = fix.into_position(c, rec);
    if !p.has_valid_coordinates() {
        p.lat = 0.0;
        p.lon = 0.0;
        p.valid = false;
    }
    Ok(p)
}

fn jt600_time(t: &[u8]) -> Option<DateTime<Utc>> {
    let [d, mo, y, h, mi, s] = <[u8; 6]>::try_from(t).ok()?;
    let year = i32::try_from(bcd(y)?).ok()?.checked_add(2000)?;
    NaiveDate::from_ymd_opt(year, bcd(mo)?, bcd(d)?)?
        .and_hms_opt(bcd(h)?, bcd(mi)?, bcd(s)?)
        .map(|n| n.and_utc())
}

/// BCD digits as one number.
fn bcd_number(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |acc, &x| {
        acc.checked_mul(100)?.checked_add(u64::from(bcd(x)?))
    })
}

/// `DDDMMmmmm` (minutes with four decimals) as degrees.
fn degrees_minutes(raw: u64) -> f64 {
    let degrees = (raw / 1_000_000) as f64;
    let minutes = (raw % 1_000_000) as f64 / 10_000.0;
    degrees + minutes / 60.0
}

/// 0x0900: type u8 | content.
pub(super) fn transparent(r: &mut Reader<'_>, c: &Ctx<'_>) -> Result<Outcome, DecodeError> {
    let kind = r.u8().map_err(malformed("transparent type"))?;
    let report = |rec: Rec, time| Outcome {
        kind: MessageKind::Data,
        positions: Vec::new(),
        reports: vec![rec.into_report(c, time)],
        answer: Answer::General,
    };
    let position = |p: Position| Outcome {
        kind: MessageKind::Data,
        positions: vec![p],
        reports: Vec::new(),
        answer: Answer::General,
    };
    let nothing = Outcome {
        kind: MessageKind::Other,
        positions: Vec::new(),
        reports: Vec::new(),
        answer: Answer::General,
    };
    Ok(match kind {
        0x40 => {
            let data = super::read::latin1(r.rest());
            let data = data.trim_matches(super::read::blank);
            let mut rec = Rec::new();
            if data.starts_with("GTSL") {
                if let Some(id) = data.split('|').nth(4) {
                    rec.text("driver_unique_id", id);
                }
            } else if !data.is_empty() {
                rec.text("data", data);
            }
            if rec.has_attributes() {
                report(rec, None)
            } else {
                nothing
            }
        }
        0x41 => {
            let mut rec = Rec::new();
            extras::obd_rt(
                &mut rec,
                super::read::latin1(r.rest()).trim_matches(super::read::blank),
            );
            report(rec, None)
        }
        0xf0 => match vehicle_data(r, c).map_err(malformed("transparent vehicle data"))? {
            Some(VehicleData::Fix(p)) => position(p),
            Some(VehicleData::Report(rec, time)) => report(rec, time),
            None => nothing,
        },
        0xff => {
            let p = super::read::attempt(|| -> Res<Position> {
                let time = c.bcd_time(r.take(6)?);
                let lat = f64::from(r.i32()?) / 1_000_000.0;
                let lon = f64::from(r.i32()?) / 1_000_000.0;
                let fix = Fix {
                    time,
                    lat,
                    lon,
                    altitude_m: f64::from(r.i16()?),
                    speed_kmh: f64::from(r.u16()?) / 10.0,
                    course_deg: f64::from(r.u16()?),
                    valid: true,
                };
                Ok(fix.into_position(c, Rec::new()))
            })
            .map_err(malformed("transparent location"))?;
            position(p)
        }
        0xf3 => {
            let mut rec = Rec::new();
            let mut time = None;
            while r.remaining() > 4 {
                let (Ok(t), Ok(l)) = (r.u16(), r.u16()) else {
                    break;
                };
                let Ok(mut v) = r.sub(usize::from(l)) else {
                    break;
                };
                match t {
                    0x0002 => {
                        if let Ok(x) = v.u16() {
                            rec.float("collision_g", f64::from(x) / 256.0 / 100.0);
                        }
                    }
                    0x0006 => time = v.take(6).ok().and_then(|b| c.bcd_time(b)),
                    _ => {}
                }
            }
            report(rec, time)
        }
        0x53 | 0x54 => position(
            tags_and_sensors(r, c, kind == 0x53).map_err(malformed("transparent sensor data"))?,
        ),
        _ => nothing,
    })
}

enum VehicleData {
    Fix(Position),
    Report(Rec, Option<DateTime<Utc>>),
}

/// Transparent 0xF0: time | archive u8 | vehicle type u8 | subtype u8 | data.
fn vehicle_data(r: &mut Reader<'_>, c: &Ctx<'_>) -> Res<Option<VehicleData>> {
    let time = c.bcd_time(r.take(6)?);
    let mut rec = Rec::new();
    if r.u8()? > 0 {
        rec.flag("archive", true);
    }
    r.skip(1)?; // vehicle type
    match r.u8()? {
        0x01 => {
            let count = r.u8()?;
            for _ in 0..count {
                let id = r.u16()?;
                let len = usize::from(r.u8()?);
                let mut v = r.sub(len)?;
                let _ = vehicle_value(id, len, &mut v, &mut rec);
            }
        }
        0x02 => {
            let mut codes = Vec::new();
            let count = r.u16()?;
            for _ in 0..count {
                r.skip(4)?; // system id
                let n = r.u16()?;
                for _ in 0..n {
                    r.skip(8)?; // dtc, status
                    let l = usize::from(r.u16()?);
                    codes.push(r.latin1(l)?.trim_matches(super::read::blank).to_string());
                }
            }
            rec.text("dtcs", codes.join(" "));
        }
        0x03 => {
            let count = r.u8()?;
            for _ in 0..count {
                let id = r.u8()?;
                let len = usize::from(r.u8()?);
                r.skip(len)?;
                match id {
                    0x01 => rec.alarm("powerRestored"),
                    0x02 => rec.alarm("powerCut"),
                    0x0e => rec.alarm("idle"),
                    0x1a => rec.alarm("hardAcceleration"),
                    0x1b => rec.alarm("hardBraking"),
                    0x1c => rec.alarm("hardCornering"),
                    0x1d..=0x1f => rec.alarm("laneChange"),
                    0x23 => rec.alarm("fatigueDriving"),
                    0x25 => rec.alarm("overspeed"),
                    0x26..=0x28 => rec.alarm("accident"),
                    0x31 | 0x32 => rec.alarm("door"),
                    _ => {}
                }
            }
        }
        0x04 => {
            let property = r.u8()?;
            rec.int("trip_number", r.u32()?);
            r.skip(6)?; // start time
            if property == 0x02 {
                r.skip(6 + 8 + 8 + 1)?; // end time, start and end location, flags
                rec.int("idling_count", r.u16()?);
                rec.int("idling_time_s", r.u16()?);
                rec.int("trip_odometer_m", i64::from(r.u16()?).saturating_mul(100));
                rec.float("trip_fuel_l", f64::from(r.u16()?) / 100.0);
            }
            return Ok(Some(VehicleData::Report(rec, time)));
        }
        0x0b => {
            if r.u8()? > 0 {
                rec.text("vin", r.latin1(17)?);
            }
            return Ok(Some(VehicleData::Report(rec, time)));
        }
        0x15 => {
            match r.i32()? {
                51 => rec.alarm("hardAcceleration"),
                52 => rec.alarm("hardBraking"),
                53 => rec.alarm("hardCornering"),
                54 => rec.alarm("laneChange"),
                56 => rec.alarm("accident"),
                event => rec.int("event", event),
            }
            return Ok(Some(VehicleData::Report(rec, time)));
        }
        _ => return Ok(None),
    }
    let fix = status_fix(r, c, &mut rec, time)?;
    Ok(Some(VehicleData::Fix(fix.into_position(c, rec))))
}

fn vehicle_value(id: u16, len: usize, v: &mut Reader<'_>, rec: &mut Rec) -> Res<()> {
    match id {
        0x0102 | 0x0528 | 0x0546 => rec.int("odometer_m", i64::from(v.u32()?).saturating_mul(100)),
        0x0103 => rec.float("fuel_l", f64::from(v.u32()?) / 100.0),
        0x0111 => rec.int("fuel_temp_c", i64::from(v.u8()?).saturating_sub(40)),
        0x012e => rec.float("oil_level", f64::from(v.u16()?) / 10.0),
        0x052a => rec.float("fuel_l", f64::from(v.u16()?) / 100.0),
        0x0105 | 0x052c => rec.float("fuel_used_l", f64::from(v.u32()?) / 100.0),
        0x014a | 0x0537 | 0x0538 | 0x0539 => {
            rec.float("fuel_consumption", f64::from(v.u16()?) / 100.0)
        }
        0x052b => rec.int("fuel_pct", v.u8()?),
        0x052d => rec.int("coolant_temp_c", i64::from(v.u8()?).saturating_sub(40)),
        0x052e => rec.int("air_temp_c", i64::from(v.u8()?).saturating_sub(40)),
        0x0530 => rec.float("power_v", f64::from(v.u16()?) / 1000.0),
        0x0535 => rec.float("obd_speed_kmh", f64::from(v.u16()?) / 10.0),
        0x0536 => rec.int("rpm", v.u16()?),
        0x053d => rec.float("intake_pressure", f64::from(v.u16()?) / 10.0),
        0x0544 => rec.int("liquid_level", v.u8()?),
        0x0547 | 0x0548 => rec.int("throttle_pct", v.u8()?),
        0xfeec => rec.text("vin", v.latin1(len)?),
        _ => {
            let value = match len {
                1 => i64::from(v.u8()?),
                2 => i64::from(v.u16()?),
                4 => i64::from(v.u32()?),
                _ => return Ok(()),
            };
            rec.numbered("io", id, "", AttrValue::Int(value));
        }
    }
    Ok(())
}

/// Transparent 0x53 (BLE tags) / 0x54 (sensor samples) of GL100-type devices:
/// status, coordinates, altitude, speed, course, time, then the list.
fn tags_and_sensors(r: &mut Reader<'_>, c: &Ctx<'_>, tags: bool) -> Res<Position> {
    let mut rec = Rec::new();
    let status = r.u32()?;
    let (lat, lon, valid) = super::location::coordinates(r, c, &mut rec, status)?;
    let altitude_m = f64::from(r.i16()?);
    let speed_kmh = f64::from(r.u16()?) / 10.0;
    let course_deg = f64::from(r.u16()?);
    let time = c.bcd_time(r.take(6)?);
    if tags {
        r.skip(1)?; // node count across all packets
        while r.remaining() > 0 {
            let n = u16::from(r.u8()?).saturating_add(1);
            rec.numbered("tag", n, "_mac", AttrValue::Text(r.hex(6)?));
            rec.numbered("tag", n, "_rssi", AttrValue::Int(r.i8()?.into()));
            let l = usize::from(r.u8()?);
            rec.numbered("tag", n, "_data", AttrValue::Text(r.hex(l)?));
        }
    } else {
        while r.remaining() > 0 {
            let mask = r.u16()?;
            r.skip(6)?; // sample time
            if mask & 1 != 0 {
                rec.int("light_sensor", r.u16()?);
            }
            if mask & 2 != 0 {
                rec.float("device_temp_c", f64::from(r.i16()?) / 10.0);
                rec.float("humidity_pct", f64::from(r.i16()?) / 10.0);
            }
            if mask & 4 != 0 {
                rec.float("temp3_c", f64::from(r.i16()?) / 10.0);
            }
            if mask & 8 != 0 {
                r.skip(6)?;
            }
            if mask & 16 != 0 {
                rec.int("air_pressure", r.u16()?);
            }
        }
    }
    let fix = Fix {
        time,
        lat,
        lon,
        altitude_m,
        speed_kmh,
        course_deg,
        valid,
    };
    Ok(fix.into_position(c, rec))
}
