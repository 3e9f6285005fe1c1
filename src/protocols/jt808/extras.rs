//! Additional-information items after a location's basic information:
//! `id u8 | len u8 | value`. The standard defines a few ids (0x01 mileage,
//! 0x02 fuel, 0x25 inputs, 0x30 RSSI, 0x31 satellites, …); vendors fill the
//! rest, sometimes differently per model. Each item is read from its own
//! `len` bytes, so a vendor item we misread cannot shift the next one; an
//! item too short for what its id implies is skipped, and an item longer
//! than the body ends the list (what was read so far is kept).
//!
//! The item → attribute table is in `protocols/jt808.md`.

use super::location::AOVX_MODELS;
use super::read::{latin1, Reader, Res};
use super::record::{Ctx, Rec};
use crate::model::AttrValue;

const JC_MODELS: &[&str] = &["JC371", "JC181", "JC182", "JC450", "JC451"];

/// Reads every item left in `r` into `rec`.
pub(super) fn decode(r: &mut Reader<'_>, c: &Ctx<'_>, rec: &mut Rec) {
    while r.remaining() >= 2 {
        let (Ok(id), Ok(len)) = (r.u8(), r.u8()) else {
            return;
        };
        let Ok(mut item) = r.sub(usize::from(len)) else {
            return;
        };
        if id == OBD_EXTENSION {
            // Its one byte says what follows; the OBD items follow as
            // siblings up to the end of the body.
            obd_extension(r, rec);
            return;
        }
        // An item shorter than its id implies is skipped (see module doc).
        let _ = item_value(id, usize::from(len), &mut item, c, rec);
    }
}

const OBD_EXTENSION: u8 = 0x80;

fn bit(v: u64, n: u32) -> bool {
    v.checked_shr(n).is_some_and(|s| s & 1 != 0)
}

/// A sign-and-magnitude 16-bit value (bit 15 is the sign).
fn sign_magnitude(v: u16) -> i64 {
    let m = i64::from(v & 0x7fff);
    if v & 0x8000 != 0 {
        0i64.saturating_sub(m)
    } else {
        m
    }
}

fn printable(b: &[u8]) -> bool {
    b.iter().all(|&c| (0x20..0x7f).contains(&c))
}

fn item_value(id: u8, len: usize, r: &mut Reader<'_>, c: &Ctx<'_>, rec: &mut Rec) -> Res<()> {
    let aovx = c.model_in(AOVX_MODELS);
    match id {
        0x01 => rec.int("odometer_m", i64::from(r.u32()?).saturating_mul(100)),
        0x02 => {
            let fuel = r.u16()?;
            if fuel & 0x8000 != 0 {
                rec.int("fuel_pct", fuel & 0x7fff);
            } else {
                rec.float("fuel_l", f64::from(fuel) / 10.0);
            }
        }
        0x06 => rec.int("battery_level_pct", r.u8()?),
        0x0b => lock_command(len, r, rec)?,
        0x14 => rec.int("video_alarm", r.u32()?),
        0x25 => rec.int("input", r.u32()?),
        0x2b | 0xa7 => {
            rec.float("adc1_v", f64::from(r.u16()?) / 100.0);
            rec.float("adc2_v", f64::from(r.u16()?) / 100.0);
        }
        0x30 => rec.int("rssi", r.u8()?),
        0x31 => rec.satellites = Some(r.u8()?),
        0x33 if len == 1 => rec.int("mode", r.u8()?),
        0x33 => {
            let s = r.latin1(len)?;
            if s.starts_with("*M00") {
                if let Some(v) = s.get(10..13).and_then(|d| d.parse::<u32>().ok()) {
                    rec.float("battery_v", f64::from(v) / 100.0);
                }
            }
        }
        0x51 if len == 2 || len == 16 => {
            for i in 1..=len / 2 {
                let v = r.u16()?;
                if v != 0xffff {
                    let t = sign_magnitude(v) as f64 / 10.0;
                    rec.numbered("temp", i, "_c", AttrValue::Float(t));
                }
            }
        }
        0x56 => {
            rec.int("battery_level_pct", i64::from(r.u8()?).saturating_mul(10));
        }
        0x57 => {
            let a = u64::from(r.u16()?);
            rec.alarm_if(bit(a, 8), "hardAcceleration");
            rec.alarm_if(bit(a, 9), "hardBraking");
            rec.alarm_if(bit(a, 10), "hardCornering");
            r.u16()?; // external switch state
            let a = u64::from(r.u32()?);
            if c.model_in(&["MV810G", "MV710G"]) {
                rec.alarm_if(bit(a, 16), "door");
            }
        }
        0x60 => {
            let event = r.u16()?;
            rec.int("event", event);
            if (0x61..=0x66).contains(&event) {
                r.skip(6)?; // lock id
                rec.text("driver_unique_id", r.latin1(8)?);
            }
        }
        0x63 => {
            for i in 1..=len / 11 {
                rec.numbered("lock", i, "_id", AttrValue::Text(r.hex(6)?));
                let v = f64::from(r.u16()?) / 1000.0;
                rec.numbered("lock", i, "_battery_v", AttrValue::Float(v));
                rec.numbered("lock", i, "_seal", AttrValue::Bool(r.u8()? == 0x31));
                r.skip(2)?; // physical state, rssi
            }
        }
        0x64 | 0x65 => {
            r.skip(5)?; // alarm serial, alarm status
            let key = if id == 0x64 {
                "adas_alarm"
            } else {
                "dms_alarm"
            };
            rec.int(key, r.u8()?);
            if len >= 47 {
                r.skip(len.saturating_sub(16).saturating_sub(6))?;
                rec.text("alarm_label", r.hex(16)?);
            }
        }
        0x67 => rec.text("password", r.latin1(8)?),
        0x68 => rec.float("battery_level_pct", f64::from(r.u16()?) / 100.0),
        0x69 => rec.float("battery_v", f64::from(r.u16()?) / 100.0),
        0x70 => {
            r.skip(5)?;
            match r.u8()? {
                0x01 => rec.alarm("hardAcceleration"),
                0x02 => rec.alarm("hardBraking"),
                0x03 => rec.alarm("hardCornering"),
                0x16 => rec.alarm("accident"),
                _ => {}
            }
        }
        0x77 => {
            while r.remaining() > 0 {
                let t = r.u8()?;
                rec.numbered("tire", t, "_sensor_id", AttrValue::Text(r.hex(3)?));
                let p = f64::from(r.u16()? & 0x03ff) / 40.0;
                rec.numbered("tire", t, "_pressure_bar", AttrValue::Float(p));
                let temp = i64::from(r.u8()?).saturating_sub(50);
                rec.numbered("tire", t, "_temp_c", AttrValue::Int(temp));
                rec.numbered("tire", t, "_status", AttrValue::Int(r.u8()?.into()));
            }
        }
        0x82 => rec.float("power_v", f64::from(r.u16()?) / 10.0),
        0x91 => {
            rec.float("battery_v", f64::from(r.u16()?) / 10.0);
            rec.int("rpm", r.u16()?);
            rec.int("obd_speed_kmh", r.u8()?);
            rec.int("throttle_pct", i64::from(r.u8()?).saturating_mul(100) / 255);
            rec.int(
                "engine_load_pct",
                i64::from(r.u8()?).saturating_mul(100) / 255,
            );
            rec.int("coolant_temp_c", i64::from(r.u8()?).saturating_sub(40));
            r.skip(2)?;
            rec.float("fuel_consumption", f64::from(r.u16()?) / 100.0);
            r.skip(8)?;
            rec.float("fuel_used_l", f64::from(r.u16()?) / 100.0);
        }
        0x94 if len > 0 => rec.text("vin", r.latin1(len)?),
        0xac => rec.int("odometer_m", r.u32()?),
        0xbc => rec.text("driver", r.latin1(len)?.trim_matches(super::read::blank)),
        0xbd => rec.text("driver_unique_id", r.latin1(len)?),
        0xd0 => rec.alarm_if(bit(r.u32()?.into(), 3), "vibration"),
        0xd3 => rec.float("power_v", f64::from(r.u16()?) / 10.0),
        0xd4 | 0xe1 | 0xe9 => battery_or_cells(id, len, r, rec)?,
        0xd5 if len == 2 => rec.float("battery_v", f64::from(r.u16()?) / 100.0),
        0xd5 => {
            let count = r.u8()?;
            for i in 1..=count {
                rec.numbered("lock", i, "_id", AttrValue::Text(r.hex(5)?));
                rec.numbered("lock", i, "_card", AttrValue::Text(r.hex(5)?));
                rec.numbered("lock", i, "_battery_pct", AttrValue::Int(r.u8()?.into()));
                let status = u64::from(r.u16()?);
                rec.numbered("lock", i, "_locked", AttrValue::Bool(!bit(status, 5)));
            }
        }
        0xda => {
            r.skip(2)?; // string cut count
            let s = u64::from(r.u8()?);
            rec.flag("string", bit(s, 0));
            rec.flag("motion", bit(s, 2));
            rec.flag("cover", bit(s, 3));
        }
        0xe2 if !c.model_in(&["DT800"]) => rec.float("fuel_l", f64::from(r.u32()?) / 10.0),
        0xe3 => {
            r.skip(1)?;
            rec.int("battery_level_pct", r.u8()?);
            rec.float("battery_v", f64::from(r.u16()?) / 100.0);
        }
        0xe4 => {
            if r.u8()? == 0 {
                rec.flag("charging", true);
            }
            rec.int("battery_level_pct", r.u8()?);
        }
        0xe5 if len == 1 => rec.flag("motion", r.u8()? == 1),
        0xe6 => {
            if r.rest().starts_with(b"$OBD-RT") {
                obd_rt(rec, &r.latin1(len)?);
            } else if len >= 11 && len % 11 == 0 {
                while r.remaining() > 0 {
                    let i = r.u8()?;
                    r.skip(6)?; // mac
                    rec.numbered("temp", i, "_c", AttrValue::Float(custom_double(r)?));
                    rec.numbered("humidity", i, "_pct", AttrValue::Float(custom_double(r)?));
                }
            }
        }
        0xe7 if len == 8 => {
            let a = r.u16()?;
            rec.alarm_if(a & 1 != 0, "vibration");
            rec.alarm_if(a & 0b1_1110 != 0, "sos");
        }
        0xe8 if c.model_in(JC_MODELS) => jc_extended(r, rec)?,
        0xe8 => rec.int("lock_status", r.u24()?),
        0xea if len > 2 => external_sensors(r, rec)?,
        0xeb => eb(len, r, rec)?,
        0xed => rec.text("card", r.latin1(len)?.trim_matches(super::read::blank)),
        0xee if len == 6 => {
            rec.int("rssi", r.u8()?);
            rec.float("power_v", f64::from(r.u16()?) / 1000.0);
            rec.float("battery_v", f64::from(r.u16()?) / 1000.0);
            rec.satellites = Some(r.u8()?);
        }
        0xf0 => {
            while r.remaining() > 0 {
                let mcc = r.u16()?;
                let mnc = r.u16()?;
                let cid = r.u32()?;
                let lac = r.u32()?;
                let rssi = r.u8()?;
                rec.cell(mcc.into(), mnc.into(), lac, cid.into(), Some(rssi));
            }
        }
        0xf1 => rec.float("power_v", f64::from(r.u32()?) / 1000.0),
        0xf2 => rec.text("firmware_version", r.latin1(len)?),
        0xf3 if aovx => ble_tags(r, rec)?,
        0xf3 => obd_list(r, rec)?,
        0xec | 0xf4 => {
            while r.remaining() > 0 {
                let mac = r.take(6)?;
                let mac: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
                let rssi = r.i8()?;
                rec.wifi(&mac.join(":"), rssi.into());
            }
        }
        0xf5 if len == 2 => rec.int("illuminance_lux", r.u16()?),
        0xf6 if !aovx && len == 2 => rec.int("air_pressure", r.u16()?),
        0xf6 if !aovx && len == 8 => {
            let h = r.hex(8)?;
            rec.text("imei", h.get(1..).unwrap_or_default());
        }
        0xf6 => sensors(r, rec)?,
        0xf7 if len == 2 => rec.float("humidity_pct", f64::from(r.u16()?) / 10.0),
        0xf7 => {
            rec.float("battery_v", f64::from(r.u32()?) / 1000.0);
            if len >= 5 && matches!(r.u8()?, 2 | 3) {
                rec.flag("charging", true);
            }
            if len >= 6 {
                rec.int("battery_level_pct", r.u8()?);
            }
        }
        0xf8 if aovx => {
            r.skip(9)?; // working mode, IMEI
            rec.text("iccid", r.hex(10)?);
        }
        0xf8 if c.model_in(&["C5", "C5L"]) => rec.int("steps", r.u16()?),
        0xf8 => rec.float("temp2_c", f64::from(r.u16()?) / 10.0 - 50.0),
        0xf9 => {
            let mask = u64::from(r.u16()?);
            if bit(mask, 0) {
                r.skip(4)?; // GNSS age
            }
            if bit(mask, 1) {
                r.skip(4)?; // ACC on time
            }
            if bit(mask, 2) {
                rec.float("hdop", f64::from(r.u16()?) / 10.0);
            }
            if bit(mask, 3) {
                r.skip(6)?; // GNSS time
            }
            if bit(mask, 5) {
                r.skip(8)?; // sampling and report interval
            }
            if bit(mask, 6) {
                rec.float("temp3_c", f64::from(r.i16()?) / 10.0);
            }
        }
        0xfb => rec.text("container", r.latin1(len)?),
        0xfc => rec.int("geofence", r.u8()?),
        0xfe if len == 1 => rec.int("battery_level_pct", r.u8()?),
        0xfe if len == 2 => rec.float("power_v", f64::from(r.u16()?) / 10.0),
        0xfe if len == 4 => rec.int("odometer_m", r.u32()?),
        0xfe => {
            if r.u8()? == 0x7c {
                while r.remaining() > 1 {
                    let t = r.u8()?;
                    let l = r.u8()?;
                    let mut v = r.sub(usize::from(l))?;
                    if t == 0x01 {
                        let a = u64::from(v.u32()?);
                        rec.alarm_if(bit(a, 0), "hardAcceleration");
                        rec.alarm_if(bit(a, 1), "hardBraking");
                        rec.alarm_if(bit(a, 2), "hardCornering");
                        rec.alarm_if(bit(a, 3), "accident");
                        rec.alarm_if(bit(a, 4), "tampering");
                    }
                }
            }
            if let Ok(level) = r.u8() {
                rec.int("battery_level_pct", level);
            }
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn lock_command(len: usize, r: &mut Reader<'_>, rec: &mut Rec) -> Res<()> {
    rec.int("lock_command", r.u8()?);
    if (5..=6).contains(&len) {
        rec.int("lock_card", r.u32()?);
    } else if len >= 7 {
        rec.text("lock_password", r.latin1(6)?);
    }
    if len % 2 == 0 {
        rec.int("unlock_result", r.u8()?);
    }
    Ok(())
}

fn battery_or_cells(id: u8, len: usize, r: &mut Reader<'_>, rec: &mut Rec) -> Res<()> {
    if len == 1 {
        match r.u8()? {
            0xff => rec.flag("charging", true),
            level => rec.int("battery_level_pct", level),
        }
    } else if id == 0xe1 && len >= 12 && len.saturating_sub(4) % 8 == 0 {
        let mcc = r.u16()?;
        let mnc = r.u16()?;
        while r.remaining() > 0 {
            let lac = r.u24()?;
            let cid = r.u32()?;
            let rssi = r.u8()?;
            if lac > 0 && lac <= 0xffff && cid <= 0x0fff_ffff {
                rec.cell(mcc.into(), mnc.into(), lac, cid.into(), Some(rssi));
            }
        }
    } else if id == 0xe1 && len == 2 {
        rec.float("power_v", f64::from(r.u16()?) / 10.0);
    } else {
        rec.text("driver_unique_id", r.u32()?.to_string());
    }
    Ok(())
}

/// Signed whole part, unsigned 1/255 fraction.
fn custom_double(r: &mut Reader<'_>) -> Res<f64> {
    let whole = r.i8()?;
    let frac = f64::from(r.u8()?) / 255.0;
    let magnitude = f64::from(whole.unsigned_abs()) + frac;
    Ok(if whole < 0 { -magnitude } else { magnitude })
}

/// `$OBD-RT,power,rpm,speed,throttle,load,coolant,instant,average,trip,odometer,trip fuel,fuel used`
pub(super) fn obd_rt(rec: &mut Rec, data: &str) {
    const FIELDS: [&str; 11] = [
        "power_v",
        "rpm",
        "obd_speed_kmh",
        "throttle_pct",
        "engine_load_pct",
        "coolant_temp_c",
        "fuel_consumption",
        "fuel_consumption",
        "trip_odometer_km",
        "obd_odometer_km",
        "trip_fuel_used_l",
    ];
    let mut values = data.split(',').skip(1);
    for key in FIELDS.iter().copied().chain(["fuel_used_l"]) {
        let Some(v) = values.next() else { return };
        if let Ok(n) = v.trim_matches(super::read::blank).parse::<f64>() {
            rec.float(key, n);
        }
    }
}

/// JC371-family vendor item 0xE8: u16 type, then its content.
fn jc_extended(r: &mut Reader<'_>, rec: &mut Rec) -> Res<()> {
    match r.u16()? {
        0x2002 => {
            r.skip(1)?;
            rec.int("upload_mode", r.u8()?);
            rec.flag("buffered", r.u8()? == 1);
        }
        0x2003 => {
            r.skip(1)?;
            rec.flag("charging", r.u8()? == 1);
            let status = r.u8()?;
            if (1..=6).contains(&status) {
                rec.int(
                    "battery_level_pct",
                    i64::from(status).saturating_mul(100) / 6,
                );
            }
            rec.float("battery_v", f64::from(r.u16()?) / 100.0);
            rec.int("rssi", r.u8()?);
            rec.float("power_v", f64::from(r.u16()?) / 100.0);
        }
        0x2005 => {
            r.skip(1)?;
            while r.remaining() > 0 {
                let sid = r.u16()?;
                let l = r.u8()?;
                let mut v = r.sub(usize::from(l))?;
                match sid {
                    0x0001 => rec.float("battery_v", f64::from(v.u16()?) / 100.0),
                    0x0002 => rec.int("data_usage", v.u32()?),
                    0x0003 => rec.int("battery_level_pct", v.u8()?),
                    0x0004 => rec.flag("charging", v.u8()? == 0),
                    0x0005 => {
                        let h = v.hex(10)?;
                        rec.text("iccid", h.get(..19).unwrap_or_default());
                    }
                    0x0007 => rec.float("hdop", f64::from(v.u16()?) / 10.0),
                    0x2001 => rec.float("power_v", f64::from(v.u16()?) / 10.0),
                    _ => {}
                }
            }
        }
        0x0001 => rec.alarm("fault"),
        0x0400 | 0x0412 => rec.alarm("hardAcceleration"),
        0x0401 | 0x0413 => rec.alarm("hardBraking"),
        0x0402 | 0x0414 => rec.alarm("hardCornering"),
        0x0403 => rec.alarm("overspeed"),
        0x0405 | 0x0416 | 0x0417 => rec.alarm("accident"),
        0x0406 => rec.alarm("vibration"),
        0x0407 => rec.alarm("tow"),
        0x0408 => rec.alarm("geofenceEnter"),
        0x0409 => rec.alarm("geofenceExit"),
        0x040c => rec.alarm("door"),
        0x0415 => rec.alarm("laneChange"),
        0x0c01 => rec.alarm("sos"),
        0x0c02 => rec.alarm("lowPower"),
        0x0c03 => rec.flag("ignition", true),
        0x0c04 => rec.flag("ignition", false),
        0x0c05 => rec.alarm("general"),
        0x0c0e => rec.alarm("powerCut"),
        0x0c0f => rec.alarm("lowBattery"),
        0x0c10 => rec.alarm("powerOff"),
        0x0c12 => rec.alarm("tampering"),
        _ => {}
    }
    Ok(())
}

/// Item 0xEA: type u8, then `type u8 | len u8 | value` external sensors.
fn external_sensors(r: &mut Reader<'_>, rec: &mut Rec) -> Res<()> {
    r.skip(1)?;
    while r.remaining() >= 2 {
        let t = r.u8()?;
        let l = r.u8()?;
        let Ok(mut v) = r.sub(usize::from(l)) else {
            break;
        };
        match t {
            0x11 => {
                rec.int("external_alarms", v.u16()?);
                rec.int("alarm_threshold_type", v.u8()?);
            }
            0x13 => rec.int("external_illuminance_lux", v.u16()?),
            0x14 => rec.int("external_air_pressure", v.u16()?),
            0x15 => rec.float("external_humidity_pct", f64::from(v.u16()?) / 10.0),
            0x16 => rec.float("external_temp_c", f64::from(v.u16()?) / 10.0 - 50.0),
            _ => {}
        }
    }
    Ok(())
}

/// Item 0xEB: cell list, a time zone text, or `len u16 | type u16 | value` items.
fn eb(len: usize, r: &mut Reader<'_>, rec: &mut Rec) -> Res<()> {
    let rest = r.rest();
    let first = rest.first_chunk::<2>().map(|&b| u16::from_be_bytes(b));
    if first.is_some_and(|mcc| mcc > 200) && len >= 3 && len.saturating_sub(3) % 5 == 0 {
        let mcc = r.u16()?;
        let mnc = r.u8()?;
        while r.remaining() > 0 {
            let lac = r.u16()?;
            let cid = r.u16()?;
            let rssi = r.u8()?;
            rec.cell(mcc.into(), mnc.into(), lac.into(), cid.into(), Some(rssi));
        }
        return Ok(());
    }
    if printable(rest) {
        rec.text("timezone", latin1(rest));
        return Ok(());
    }
    while r.remaining() >= 4 {
        let l = usize::from(r.u16()?);
        let Ok(mut v) = r.sub(l) else { break };
        let Ok(t) = v.u16() else { continue };
        let _ = eb_value(t, l, &mut v, rec);
    }
    Ok(())
}

fn eb_value(t: u16, l: usize, v: &mut Reader<'_>, rec: &mut Rec) -> Res<()> {
    match t {
        0x0001 => rec.float("fuel1_l", f64::from(v.u16()?) / 10.0),
        0x0023 => {
            if let Ok(f) = v.latin1(6)?.trim_matches(super::read::blank).parse::<f64>() {
                rec.float("fuel2_l", f);
            }
        }
        0x002d if l == 6 => rec.float("power_v", f64::from(v.u32()?) / 1000.0),
        0x002d => rec.float("battery_v", f64::from(v.u16()?) / 1000.0),
        0x0089 => {
            let a = u64::from(v.u32()?);
            rec.alarm_if(!bit(a, 0), "powerOff");
            rec.alarm_if(!bit(a, 12), "removing");
        }
        0x00b2 => {
            let h = v.hex(10)?;
            rec.text("iccid", h.trim_end_matches('f'));
        }
        0x00b9 => {
            v.skip(1)?;
            let text = v.latin1(l.saturating_sub(3))?;
            let parts: Vec<&str> = text.split(',').collect();
            for pair in parts.chunks_exact(2) {
                if let [mac, rssi] = pair {
                    if let Ok(rssi) = rssi.trim_matches(super::read::blank).parse::<i64>() {
                        rec.wifi(mac, rssi);
                    }
                }
            }
        }
        0x00c5 => {
            let a = u64::from(v.u32()?);
            rec.alarm_if(!bit(a, 6), "vibration");
            match a.checked_shr(23).unwrap_or(0) & 0b11 {
                0 => rec.flag("motion", true),
                1 => rec.flag("motion", false),
                _ => {}
            }
        }
        0x00c6 => {
            let b = v.u8()?;
            rec.alarm_if(b == 3 || b == 4, "lowBattery");
            rec.int("battery_alarm", b);
        }
        0x00ce => rec.float("power_v", f64::from(v.u16()?) / 100.0),
        0x00d8 => {
            let mcc = v.u16()?;
            let mnc = v.u8()?;
            let lac = v.u16()?;
            let cid = v.u32()?;
            rec.cell(mcc.into(), mnc.into(), lac.into(), cid.into(), None);
        }
        0x00a8 | 0x00e1 => rec.int("battery_level_pct", v.u8()?),
        _ => {}
    }
    Ok(())
}

/// AOVX (AL300, GL100) item 0xF3: mask u8, then per tag MAC, RSSI and the masked fields.
fn ble_tags(r: &mut Reader<'_>, rec: &mut Rec) -> Res<()> {
    let mask = u64::from(r.u8()?);
    let mut n = 0u32;
    while r.remaining() > 0 {
        n = n.saturating_add(1);
        rec.numbered("tag", n, "_mac", AttrValue::Text(r.hex(6)?));
        rec.numbered("tag", n, "_rssi", AttrValue::Int(r.i8()?.into()));
        if bit(mask, 0) {
            let name = r.latin1(10)?;
            rec.numbered(
                "tag",
                n,
                "_name",
                AttrValue::Text(name.trim_matches(super::read::blank).to_string()),
            );
        }
        if bit(mask, 1) {
            r.skip(2)?;
        }
        if bit(mask, 2) {
            let v = f64::from(r.u16()?) / 1000.0;
            rec.numbered("tag", n, "_battery_v", AttrValue::Float(v));
        }
        if bit(mask, 3) {
            let v = f64::from(r.i16()?) / 10.0;
            rec.numbered("tag", n, "_temp_c", AttrValue::Float(v));
        }
        if bit(mask, 4) {
            let v = f64::from(r.i16()?) / 10.0;
            rec.numbered("tag", n, "_humidity_pct", AttrValue::Float(v));
        }
        if bit(mask, 5) {
            r.skip(6)?;
        }
        if bit(mask, 6) {
            r.skip(2)?;
        }
        if bit(mask, 7) {
            r.skip(2)?;
        }
    }
    Ok(())
}

/// Item 0xF3 of other models: `type u16 | len u8 | value` OBD readings.
fn obd_list(r: &mut Reader<'_>, rec: &mut Rec) -> Res<()> {
    while r.remaining() >= 3 {
        let t = r.u16()?;
        let l = usize::from(r.u8()?);
        let mut v = r.sub(l)?;
        let _ = super::read::attempt(|| -> Res<()> {
            match t {
                0x0002 => rec.float("obd_speed_kmh", f64::from(v.u16()?) / 10.0),
                0x0003 => rec.int("rpm", v.u16()?),
                0x0004 => rec.float("power_v", f64::from(v.u16()?) / 1000.0),
                0x0005 => rec.int("obd_odometer_m", i64::from(v.u32()?).saturating_mul(100)),
                0x0007 => rec.float("fuel_consumption", f64::from(v.u16()?) / 10.0),
                0x0008 => rec.float("engine_load_pct", f64::from(v.u16()?) / 10.0),
                0x0009 => rec.int("coolant_temp_c", i64::from(v.u16()?).saturating_sub(40)),
                0x000b => rec.int("intake_pressure", v.u16()?),
                0x000c => rec.int("intake_temp_c", i64::from(v.u16()?).saturating_sub(40)),
                0x000d => rec.int("intake_flow", v.u16()?),
                0x000e => rec.int(
                    "throttle_pct",
                    i64::from(v.u16()?).saturating_mul(100) / 255,
                ),
                0x0050 => rec.text("vin", v.latin1(17)?.trim_end_matches('\0')),
                0x0051 if l > 0 => rec.text("cvn", v.hex(l)?),
                0x0052 if l > 0 => rec.text("calid", v.latin1(l)?.trim_end_matches('\0')),
                0x0100 => rec.float("trip_odometer_km", f64::from(v.u16()?) / 10.0),
                0x0102 => rec.float("trip_fuel_l", f64::from(v.u16()?) / 10.0),
                0x0112 => rec.int("hard_acceleration_count", v.u16()?),
                0x0113 => rec.int("hard_braking_count", v.u16()?),
                0x0114 => rec.int("hard_cornering_count", v.u16()?),
                _ => {}
            }
            Ok(())
        });
    }
    Ok(())
}

/// Item 0xF6 (AOVX, or lengths other than 2 and 8): event, mask, sensor readings.
fn sensors(r: &mut Reader<'_>, rec: &mut Rec) -> Res<()> {
    let event = r.u8()?;
    rec.int("event", event);
    if event == 2 {
        rec.flag("motion", true);
    }
    let mask = u64::from(r.u8()?);
    if bit(mask, 0) {
        rec.int("light_sensor", r.u16()?);
    }
    if bit(mask, 1) {
        rec.float("temp1_c", f64::from(r.i16()?) / 10.0);
    }
    if bit(mask, 2) {
        rec.float("humidity_pct", f64::from(r.i16()?) / 10.0);
    }
    if bit(mask, 3) {
        let (x, y, z) = (r.i16()?, r.i16()?, r.i16()?);
        rec.text("g_sensor", format!("[{x},{y},{z}]"));
    }
    if bit(mask, 4) {
        r.skip(10)?; // threshold configuration
    }
    if bit(mask, 5) {
        rec.int("air_pressure", r.u16()?);
    }
    Ok(())
}

/// The OBD items after item 0x80, up to the end of the body.
fn obd_extension(r: &mut Reader<'_>, rec: &mut Rec) {
    while r.remaining() >= 2 {
        let (Ok(t), Ok(l)) = (r.u8(), r.u8()) else {
            return;
        };
        let l = usize::from(l);
        let Ok(mut v) = r.sub(l) else { return };
        let _ = super::read::attempt(|| -> Res<()> {
            match t {
                0x01 => rec.int("odometer_m", i64::from(v.u32()?).saturating_mul(100)),
                0x02 => rec.float("fuel_l", f64::from(v.u16()?) / 10.0),
                0x03 => rec.float("obd_speed_kmh", f64::from(v.u16()?) / 10.0),
                0x56 => {
                    v.skip(1)?;
                    rec.int("battery_level_pct", v.u8()?);
                }
                0x61 => rec.float("power_v", f64::from(v.u16()?) / 100.0),
                0x69 => rec.float("battery_v", f64::from(v.u16()?) / 100.0),
                0x80 => rec.int("obd_speed_kmh", v.u8()?),
                0x81 => rec.int("rpm", v.u16()?),
                0x82 => rec.float("power_v", f64::from(v.u16()?) / 10.0),
                0x83 => rec.int("engine_load_pct", v.u8()?),
                0x84 => rec.int("coolant_temp_c", i64::from(v.u8()?).saturating_sub(40)),
                0x85 => rec.int("fuel_consumption", v.u16()?),
                0x86 => rec.int("intake_temp_c", i64::from(v.u8()?).saturating_sub(40)),
                0x87 => rec.int("intake_flow", v.u16()?),
                0x88 => rec.int("intake_pressure", v.u8()?),
                0x89 => rec.int("throttle_pct", v.u8()?),
                0x8b => rec.text("vin", v.latin1(17)?),
                0x8c => rec.int("obd_odometer_m", i64::from(v.u32()?).saturating_mul(100)),
                0x8d => rec.int("trip_odometer_m", i64::from(v.u16()?).saturating_mul(1000)),
                0x8e => rec.int("fuel_pct", v.u8()?),
                0xa0 => rec.text("dtcs", v.latin1(l)?.replace(',', " ")),
                0xcc => rec.text("iccid", v.latin1(20)?),
                _ => {}
            }
            Ok(())
        });
    }
}
