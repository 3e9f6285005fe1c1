//! The binary batches: `CCC` (fixed records) and `CCE` (tagged records).
//! All numbers little-endian; times are seconds since 2000-01-01 UTC.
//!
//! ```text
//! CCC  u16 version | u16 record size (0x34) | u32 records left in the device cache
//!      then 52-byte records:
//!      u8 event | i32 lat e-6 | i32 lon e-6 | u32 time | u8 valid (1) | u8 sats | u8 gsm
//!      u16 speed km/h | u16 course | u16 hdop ×10 | i16 altitude m | u32 mileage m
//!      u32 runtime s | u16 mcc | u16 mnc | u16 lac | u16 ci | u16 status
//!      u16 adc1 | u16 battery 0.01 V | u16 power 0.01 V | u32 geofence
//! CCE  u32 records left in the cache | u16 record count, then per record:
//!      u16 length (of what follows) | u16 index | four parameter groups:
//!      u8 n, n × (id, u8) | u8 n, n × (id, u16) | u8 n, n × (id, u32) | u8 n, n × (id, u8 len, bytes)
//!      id: one byte, or two (FE xx) when the first is FE
//! ```

use chrono::{DateTime, Utc};

use super::envelope::Envelope;
use super::names;
use super::reader::Reader;
use super::NAME;
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position, Report};
use crate::protocol::{DecodeContext, DecodeError};

/// Seconds from the unix epoch to 2000-01-01T00:00:00Z.
const EPOCH_2000: i64 = 946_684_800;
const CCC_HEADER: usize = 8;
const CCC_RECORD: usize = 52;
/// Attributes a CCC record sets (event, alarm, rssi, hdop, odometer, runtime,
/// network, status, adc1, battery, power).
const CCC_ATTRIBUTES: usize = 11;
/// A CCE id whose first byte is this is two bytes long.
const EXTENDED_ID: u8 = 0xFE;
/// The event code that carries a driver card (CCE id 0x39).
const EVENT_DRIVER_CARD: i64 = 37;

fn time(secs: u32, at: usize) -> Result<DateTime<Utc>, DecodeError> {
    DateTime::from_timestamp(EPOCH_2000.saturating_add(i64::from(secs)), 0).ok_or(
        DecodeError::Malformed {
            what: "time",
            offset: at,
        },
    )
}

fn set(a: &mut Attributes, key: &'static str, value: AttrValue) {
    a.set(AttrKey::named(key), value);
}

fn event(a: &mut Attributes, code: u32) {
    set(a, names::EVENT, AttrValue::Int(code.into()));
    if let Some(alarm) = names::alarm(code) {
        set(a, names::ALARM, AttrValue::Text(alarm.into()));
    }
}

/// Appends `key`, which the record has not set yet (a CCC record's fields
/// are fixed: no search for an earlier value).
fn put(a: &mut Attributes, key: &'static str, value: AttrValue) {
    a.push(AttrKey::named(key), value);
}

/// `[{"cid":…,"lac":…,"mcc":…,"mnc":…}]`: [`cells_json`] of one cell, byte for
/// byte (serde_json sorts the keys), written without building a JSON tree —
/// every CCC record carries one.
fn one_cell_json(mcc: u16, mnc: u16, lac: u16, cid: u16) -> AttrValue {
    AttrValue::Text(format!(
        r#"[{{"cid":{cid},"lac":{lac},"mcc":{mcc},"mnc":{mnc}}}]"#
    ))
}

fn cells_json(cells: &[serde_json::Value]) -> AttrValue {
    AttrValue::Text(serde_json::Value::Array(cells.to_vec()).to_string())
}

pub(super) fn ccc(
    env: &Envelope<'_>,
    device: &DeviceId,
    ctx: &DecodeContext,
) -> Result<Vec<Position>, DecodeError> {
    let mut r = env.reader();
    r.take(CCC_HEADER, "CCC header")?;
    if r.remaining() % CCC_RECORD != 0 {
        return Err(DecodeError::Length {
            declared: r.remaining().next_multiple_of(CCC_RECORD),
            actual: r.remaining(),
        });
    }
    let mut out = Vec::with_capacity(r.remaining() / CCC_RECORD);
    while r.remaining() > 0 {
        let mut rec = r.sub(CCC_RECORD, "CCC record")?;
        out.push(ccc_record(&mut rec, device, ctx)?);
    }
    Ok(out)
}

fn ccc_record(
    r: &mut Reader<'_>,
    device: &DeviceId,
    ctx: &DecodeContext,
) -> Result<Position, DecodeError> {
    let mut a = Attributes::with_capacity(CCC_ATTRIBUTES);
    event(&mut a, r.u8("event")?.into());
    let lat = f64::from(r.i32("latitude")?) * 1e-6;
    let lon = f64::from(r.i32("longitude")?) * 1e-6;
    let at = r.offset();
    let fix_time = time(r.u32("time")?, at)?;
    let valid = r.u8("validity")? == 1;
    let satellites = r.u8("satellites")?;
    let rssi = r.u8("gsm signal")?;
    put(&mut a, names::RSSI, AttrValue::Int(rssi.into()));
    let speed = f64::from(r.u16("speed")?);
    let course = f64::from(r.u16("course")?);
    put(
        &mut a,
        names::HDOP,
        AttrValue::Float(f64::from(r.u16("hdop")?) * 0.1),
    );
    let altitude = f64::from(r.i16("altitude")?);
    put(
        &mut a,
        names::ODOMETER,
        AttrValue::Int(r.u32("mileage")?.into()),
    );
    put(
        &mut a,
        names::RUNTIME,
        AttrValue::Int(r.u32("runtime")?.into()),
    );
    let (mcc, mnc, lac, ci) = (r.u16("mcc")?, r.u16("mnc")?, r.u16("lac")?, r.u16("ci")?);
    if mcc != 0 {
        put(&mut a, names::NETWORK, one_cell_json(mcc, mnc, lac, ci));
    }
    put(
        &mut a,
        names::STATUS,
        AttrValue::Int(r.u16("status")?.into()),
    );
    put(&mut a, names::ADC[0], AttrValue::Int(r.u16("adc1")?.into()));
    let battery = f64::from(r.u16("battery")?) * 0.01;
    put(&mut a, names::BATTERY, AttrValue::Float(battery));
    let power = f64::from(r.u16("power")?) * 0.01;
    put(&mut a, names::POWER, AttrValue::Float(power));
    r.u32("geofence")?;
    if !Position::valid_coordinates(lat, lon) || course > 360.0 {
        return Err(DecodeError::Malformed {
            what: "coordinates or course",
            offset: r.offset(),
        });
    }
    Ok(Position {
        device_id: device.clone(),
        fix_time,
        received_time: ctx.received,
        lat,
        lon,
        altitude_m: altitude,
        speed_kmh: speed,
        course_deg: course,
        satellites: Some(satellites),
        valid,
        protocol: NAME,
        attributes: a,
    })
}

/// What one CCE record filled in.
#[derive(Default)]
struct Fix {
    lat: Option<f64>,
    lon: Option<f64>,
    time: Option<DateTime<Utc>>,
    valid: bool,
    satellites: Option<u8>,
    speed: f64,
    course: f64,
    altitude: f64,
}

pub(super) fn cce(
    env: &Envelope<'_>,
    device: &DeviceId,
    ctx: &DecodeContext,
) -> Result<(Vec<Position>, Vec<Report>), DecodeError> {
    let mut r = env.reader();
    let cached = r.u32("records left in cache")?;
    let count = r.u16("record count")?;
    let mut positions = Vec::new();
    let mut reports = Vec::new();
    for _ in 0..count {
        let len = usize::from(r.u16("record length")?);
        let mut rec = r.sub(len, "CCE record")?;
        let mut a = Attributes::new();
        set(
            &mut a,
            names::CACHE_REMAINING,
            AttrValue::Int(cached.into()),
        );
        set(
            &mut a,
            names::INDEX,
            AttrValue::Int(rec.u16("record index")?.into()),
        );
        let fix = cce_record(&mut rec, &mut a)?;
        match (fix.lat, fix.lon, fix.time) {
            (Some(lat), Some(lon), Some(fix_time)) => {
                if !Position::valid_coordinates(lat, lon) || !(0.0..=360.0).contains(&fix.course) {
                    return Err(DecodeError::Malformed {
                        what: "coordinates or course",
                        offset: rec.offset(),
                    });
                }
                positions.push(Position {
                    device_id: device.clone(),
                    fix_time,
                    received_time: ctx.received,
                    lat,
                    lon,
                    altitude_m: fix.altitude,
                    speed_kmh: fix.speed,
                    course_deg: fix.course,
                    satellites: fix.satellites,
                    valid: fix.valid,
                    protocol: NAME,
                    attributes: a,
                });
            }
            (_, _, time) => reports.push(Report {
                device_id: device.clone(),
                time: time.unwrap_or(ctx.received),
                protocol: NAME,
                attributes: a,
            }),
        }
    }
    if r.remaining() != 0 {
        return Err(DecodeError::Malformed {
            what: "bytes after the last CCE record",
            offset: r.offset(),
        });
    }
    Ok((positions, reports))
}

fn id(r: &mut Reader<'_>) -> Result<u16, DecodeError> {
    if r.peek() == Some(EXTENDED_ID) {
        r.u16_be("parameter id")
    } else {
        Ok(r.u8("parameter id")?.into())
    }
}

fn raw(a: &mut Attributes, id: u16, v: i64) {
    a.set(AttrKey::Io(id.into()), AttrValue::Int(v));
}

fn cce_record(r: &mut Reader<'_>, a: &mut Attributes) -> Result<Fix, DecodeError> {
    let mut fix = Fix::default();
    for _ in 0..r.u8("1-byte parameter count")? {
        let id = id(r)?;
        let v = r.u8("1-byte parameter")?;
        let int = AttrValue::Int(v.into());
        match id {
            0x01 => event(a, v.into()),
            0x05 => fix.valid = v > 0,
            0x06 => fix.satellites = Some(v),
            0x07 => set(a, names::RSSI, int),
            0x14 => set(a, names::OUTPUT, int),
            0x15 => set(a, names::INPUT, int),
            0x47 if v > 0 => set(a, names::LOCK, AttrValue::Bool(v == 2)),
            0x97 => set(a, names::THROTTLE, int),
            0x9D => set(a, names::FUEL_LEVEL, int),
            0xFE69 => set(a, names::BATTERY_LEVEL, int),
            _ => raw(a, id, v.into()),
        }
    }
    for _ in 0..r.u8("2-byte parameter count")? {
        let id = id(r)?;
        let v = r.u16("2-byte parameter")?;
        let hundredths = AttrValue::Float(f64::from(v) * 0.01);
        let int = AttrValue::Int(v.into());
        match id {
            0x08 => fix.speed = f64::from(v),
            0x09 => fix.course = f64::from(v),
            0x0A => set(a, names::HDOP, AttrValue::Float(f64::from(v) * 0.1)),
            0x0B => fix.altitude = f64::from(i16::from_le_bytes(v.to_le_bytes())),
            0x16 => set(a, names::ADC[0], hundredths),
            0x17 => set(a, names::ADC[1], hundredths),
            0x19 => set(a, names::BATTERY, hundredths),
            0x1A => set(a, names::POWER, hundredths),
            0x29 => set(a, names::FUEL_LEVEL, hundredths),
            0x40 => event(a, v.into()),
            0x91 | 0x92 => set(a, names::OBD_SPEED, int),
            0x98 => set(a, names::FUEL_USED, int),
            0x99 => set(a, names::RPM, int),
            0x9C => set(a, names::COOLANT_TEMP, int),
            0x9F => set(a, names::PROBE_TEMPS[1], int),
            0xC9 => set(a, names::FUEL_CONSUMPTION, int),
            _ => raw(a, id, v.into()),
        }
    }
    for _ in 0..r.u8("4-byte parameter count")? {
        let id = id(r)?;
        let at = r.offset();
        let v = r.u32("4-byte parameter")?;
        let signed = f64::from(i32::from_le_bytes(v.to_le_bytes())) * 1e-6;
        match id {
            0x02 => fix.lat = Some(signed),
            0x03 => fix.lon = Some(signed),
            0x04 => fix.time = Some(time(v, at)?),
            0x0C => set(a, names::ODOMETER, AttrValue::Int(v.into())),
            0x0D => set(a, names::RUNTIME, AttrValue::Int(v.into())),
            0x25 => set(a, names::DRIVER, AttrValue::Text(v.to_string())),
            0x9B => set(a, names::OBD_ODOMETER, AttrValue::Int(v.into())),
            0xA0 => set(a, names::FUEL_USED, AttrValue::Float(f64::from(v) * 0.001)),
            0xA2 => set(
                a,
                names::FUEL_CONSUMPTION,
                AttrValue::Float(f64::from(v) * 0.01),
            ),
            // Minutes.
            0xFEF4 => set(
                a,
                names::ENGINE_HOURS,
                AttrValue::Int(i64::from(v).saturating_mul(60)),
            ),
            _ => raw(a, id, v.into()),
        }
    }
    let mut cells = Vec::new();
    let mut wifi = Vec::new();
    for _ in 0..r.u8("variable parameter count")? {
        let id = id(r)?;
        let len = usize::from(r.u8("variable parameter length")?);
        let mut v = r.sub(len, "variable parameter")?;
        variable(id, &mut v, a, &mut cells, &mut wifi)?;
    }
    if !cells.is_empty() {
        set(a, names::NETWORK, cells_json(&cells));
    }
    if !wifi.is_empty() {
        set(a, "wifi", cells_json(&wifi));
    }
    Ok(fix)
}

fn variable(
    id: u16,
    v: &mut Reader<'_>,
    a: &mut Attributes,
    cells: &mut Vec<serde_json::Value>,
    wifi: &mut Vec<serde_json::Value>,
) -> Result<(), DecodeError> {
    match id {
        0x0E | 0x0F | 0x10 | 0x12 | 0x13 => {
            let (mcc, mnc, lac) = (v.u16("mcc")?, v.u16("mnc")?, v.u16("lac")?);
            let (ci, rssi) = (v.u32("ci")?, v.i16("cell rssi")?);
            cells.push(
                serde_json::json!({"mcc": mcc, "mnc": mnc, "lac": lac, "cid": ci, "rssi": rssi}),
            );
        }
        0x1D..=0x25 => {
            let mac: Vec<String> = v
                .take(6, "wifi mac")?
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let rssi = v.i16("wifi rssi")?;
            wifi.push(serde_json::json!({"mac": mac.join(":"), "rssi": rssi}));
        }
        0x2A..=0x31 => {
            v.u8("temperature label")?;
            let value = f64::from(v.i16("temperature")?) * 0.01;
            let index = usize::from(id.saturating_sub(0x2A));
            if let Some(key) = names::PROBE_TEMPS.get(index) {
                set(a, key, AttrValue::Float(value));
            }
        }
        0x39 => {
            let is_card = a.get(names::EVENT) == Some(&AttrValue::Int(EVENT_DRIVER_CARD));
            let text = String::from_utf8_lossy(v.take(v.remaining(), "driver card")?);
            let card: String = text
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '|')
                .collect();
            if is_card && !card.is_empty() {
                set(a, names::DRIVER, AttrValue::Text(card));
            }
        }
        0xFE31 => {
            let protocol = v.u8("alarm protocol")?;
            set(
                a,
                names::ALARM_TYPE,
                AttrValue::Int(v.u8("alarm type")?.into()),
            );
            if protocol == 0x02 && v.remaining() > 1 {
                let file =
                    String::from_utf8_lossy(v.take(v.remaining(), "alarm file")?).into_owned();
                // The file name starts with yyyyMMdd: the folder it is kept in.
                let folder = match (file.get(..4), file.get(4..6), file.get(6..8)) {
                    (Some(y), Some(m), Some(d))
                        if file
                            .get(..8)
                            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())) =>
                    {
                        format!("{y}-{m}-{d}/")
                    }
                    _ => String::new(),
                };
                set(a, names::IMAGE, AttrValue::Text(format!("{folder}{file}")));
            }
        }
        0xFE73 => {
            v.u8("tag version")?;
            let name_len = usize::from(v.u8("tag name length")?);
            let name = String::from_utf8_lossy(v.take(name_len, "tag name")?).into_owned();
            set(a, names::TAG_NAME, AttrValue::Text(name));
            v.take(6, "tag mac")?;
            set(
                a,
                names::TAG_BATTERY,
                AttrValue::Int(v.u8("tag battery")?.into()),
            );
            set(
                a,
                names::TAG_TEMP,
                AttrValue::Float(f64::from(v.i16("tag temperature")?) / 256.0),
            );
            set(
                a,
                names::TAG_HUMIDITY,
                AttrValue::Float(f64::from(v.i16("tag humidity")?) / 256.0),
            );
        }
        0xFEA8 => {
            for key in names::BATTERY_LEVELS {
                let present = v.u8("battery present")?;
                let level = v.u8("battery level")?;
                if present > 0 {
                    set(a, key, AttrValue::Int(level.into()));
                }
            }
        }
        // Network information (0x4B), camera status (0x49) and the rest:
        // their bytes are skipped whole by the enclosing length.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CCC cell written directly is the one the JSON tree gave: stored
    /// attributes (and a report's checksum over them) do not change.
    #[test]
    fn one_cell_is_written_as_the_json_tree_writes_it() {
        for (mcc, mnc, lac, cid) in [
            (262, 2, 0x1a2b, 0x3c4d),
            (1, 0, 0, 0),
            (u16::MAX, 99, 7, 65_535),
        ] {
            let tree = serde_json::json!({"mcc": mcc, "mnc": mnc, "lac": lac, "cid": cid});
            assert_eq!(one_cell_json(mcc, mnc, lac, cid), cells_json(&[tree]));
        }
    }
}
