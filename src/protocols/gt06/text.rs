//! Messages of the `79 79` family and the text-carrying ones: command
//! results (0x21), information (0x94), the modular GPS packet (0x70),
//! serial pass-through (0x9B), OBD (0x8C), device/peripheral status
//! (0xF1/0xF2) and the AZ735 GPS/alarm packets (0x32/0x33).

use chrono::{DateTime, Utc};

use super::fields::{self, Ctx, GpsLayout};
use super::messages::{p::*, Message};
use super::packet::Packet;
use super::reader::Reader;
use super::record::{Cell, Record};
use super::reply;
use crate::protocol::{DecodeError, MessageKind};

type R<T> = Result<T, DecodeError>;

/// `None`: not one of these messages (the caller goes on).
pub(super) fn decode(
    pk: &Packet<'_>,
    ctx: &Ctx,
    r: &mut Reader<'_>,
    rec: &mut Record,
) -> R<Option<Message>> {
    let t = pk.protocol;
    let ack = || Some(reply::ack(pk.extended, t, pk.serial));
    let data = |rec: Record, reply| {
        Some(Message {
            kind: MessageKind::Data,
            record: Some(rec),
            reply,
        })
    };
    let mut out = std::mem::take(rec);
    Ok(match t {
        STRING_INFO => {
            r.u32("server flag")?;
            let ascii = r.u8("encoding")? == 1;
            let bytes = r.rest();
            let text = if ascii {
                String::from_utf8_lossy(bytes).into_owned()
            } else {
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|c| {
                        u16::from_be_bytes([
                            c.first().copied().unwrap_or(0),
                            c.get(1).copied().unwrap_or(0),
                        ])
                    })
                    .collect();
                String::from_utf16_lossy(&units)
            };
            if !current_position(&mut out, &text) {
                out.text("result", text);
            }
            Some(Message {
                kind: MessageKind::CommandResponse,
                record: Some(out),
                reply: ack(),
            })
        }
        INFO => info(pk, ctx, r, out)?,
        GPS_MODULAR => {
            modular(&mut out, r)?;
            data(out, ack())
        }
        SERIAL => {
            r.u8("external device type")?;
            let bytes = r.rest();
            let printable = bytes
                .iter()
                .all(|b| (0x20..0x7f).contains(b) || matches!(b, b'\r' | b'\n' | b'\t'));
            if printable {
                out.text("result", String::from_utf8_lossy(bytes).trim().to_string());
            } else {
                out.text("result", fields::hex(bytes));
            }
            Some(Message {
                kind: MessageKind::CommandResponse,
                record: Some(out),
                reply: None,
            })
        }
        OBD => {
            out.time = fields::date(r, ctx.tz)?;
            out.flag("ignition", r.u8("ignition")? > 0);
            // The key=value text is followed by 12 bytes of trailer.
            let n = r.remaining().saturating_sub(12);
            let text = String::from_utf8_lossy(r.bytes(n, "OBD text")?).into_owned();
            obd(&mut out, &text);
            data(out, None)
        }
        PERIPHERAL | DEVICE_STATUS => {
            out.time = DateTime::<Utc>::from_timestamp(i64::from(r.u32("time")?), 0);
            device_status(&mut out, r, t)?;
            data(out, ack())
        }
        GPS_LBS_STATUS_4 | WIFI_5 if pk.extended => {
            // Without a fix the time stamp stays on the report.
            let _fix = fields::gps(
                &mut out,
                r,
                ctx.tz,
                GpsLayout {
                    has_length: true,
                    ..GpsLayout::STANDARD
                },
            )?;
            if fields::lbs(&mut out, r, ctx, t, true)? {
                out.int("rssi", r.u8("rssi")?);
            }
            let n = usize::from(r.u8("extra cells length")?);
            r.skip(n, "extra cells")?;
            let n = usize::from(r.u8("Wi-Fi length")?);
            r.skip(n, "Wi-Fi")?;
            let status = r.u8("status")?;
            out.int("status", status);
            if t == WIFI_5 {
                match status {
                    0xa0 => out.flag("armed", true),
                    0xa1 => out.flag("armed", false),
                    0xa2 | 0xa3 => out.alarm(Some("lowBattery")),
                    0xa4 => out.alarm(Some("general")),
                    0xa5 => out.alarm(Some("door")),
                    _ => {}
                }
            }
            let n = usize::from(r.u8("reserved length")?);
            r.skip(n, "reserved")?;
            data(out, ack())
        }
        _ => {
            *rec = out;
            None
        }
    })
}

/// "Current position!Lat:N54.739332,Lon:E25.273270,Course:126.53,Speed:0.0000,DateTime:2017-05-26  10:27:47"
fn current_position(rec: &mut Record, text: &str) -> bool {
    let Some(rest) = text.strip_prefix("Current position!") else {
        return false;
    };
    let mut lat = None;
    let mut lon = None;
    let mut course = 0.0;
    let mut speed = 0.0;
    let mut time = None;
    for part in rest.split(',') {
        let Some((k, v)) = part.split_once(':') else {
            continue;
        };
        let hem = |v: &str| -> Option<f64> {
            let (h, n) = v.split_at_checked(1)?;
            let n: f64 = n.parse().ok()?;
            Some(if h == "S" || h == "W" { -n } else { n })
        };
        match k {
            "Lat" => lat = hem(v),
            "Lon" => lon = hem(v),
            "Course" => course = v.parse().unwrap_or(0.0),
            "Speed" => speed = v.parse().unwrap_or(0.0),
            "DateTime" => {
                let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
                time = chrono::NaiveDateTime::parse_from_str(&v, "%Y-%m-%d %H:%M:%S")
                    .ok()
                    .map(|t| t.and_utc());
            }
            _ => {}
        }
    }
    let (Some(lat), Some(lon), Some(time)) = (lat, lon, time) else {
        return false;
    };
    rec.fix = Some(super::record::Fix {
        time,
        lat,
        lon,
        // Traccar reads this number as knots; the firmware documents km/h.
        speed_kmh: speed,
        course_deg: course,
        valid: true,
        satellites: None,
    });
    true
}

fn info(pk: &Packet<'_>, ctx: &Ctx, r: &mut Reader<'_>, mut rec: Record) -> R<Option<Message>> {
    let sub = r.u8("information type")?;
    let done = |rec: Record| {
        Some(Message {
            kind: MessageKind::Data,
            record: Some(rec),
            reply: None,
        })
    };
    match sub {
        0x00 => {
            rec.float("adc1_v", f64::from(r.u16("ADC")?) / 100.0);
            Ok(done(rec))
        }
        0x04 => {
            let text = String::from_utf8_lossy(r.rest()).into_owned();
            for pair in text.split(';') {
                let Some((k, v)) = pair.split_once('=') else {
                    continue;
                };
                let Ok(n) = i64::from_str_radix(v, 16) else {
                    continue;
                };
                match k {
                    "ALM1" => rec.int("alarm1_status", n),
                    "ALM2" => rec.int("alarm2_status", n),
                    "ALM3" => rec.int("alarm3_status", n),
                    "ALM4" => rec.int("alarm4_status", n),
                    "STA1" => rec.int("other_status", n),
                    "DYD" => rec.int("engine_status", n),
                    _ => {}
                }
            }
            Ok(done(rec))
        }
        0x05 => {
            if r.remaining() >= 7 {
                rec.time = fields::date(r, ctx.tz)?;
            }
            let flags = r.u8("door flags")?;
            rec.flag("door", flags & 0x01 != 0);
            rec.flag("io1", flags & 0x04 != 0);
            Ok(done(rec))
        }
        0x0a => {
            r.skip(8, "IMEI")?;
            r.skip(8, "IMSI")?;
            let iccid = fields::hex(r.bytes(10, "ICCID")?);
            rec.text("iccid", iccid.trim_end_matches('f').to_string());
            Ok(done(rec))
        }
        0x0b => {
            match pk.length.saturating_sub(6) {
                1 => rec.text(
                    "network_technology",
                    if r.u8("network")? > 0 { "4G" } else { "2G" },
                ),
                2 => rec.float("power_v", f64::from(r.u16("power")?) / 100.0),
                _ => {}
            }
            Ok(done(rec))
        }
        0x0d => {
            let text = String::from_utf8_lossy(r.rest()).into_owned();
            let text = match text.find('!') {
                Some(i) => text.get(i..).unwrap_or_default().to_string(),
                None => {
                    return Ok(Some(Message {
                        kind: MessageKind::Other,
                        record: None,
                        reply: None,
                    }))
                }
            };
            // !AIOIL,<addr>,<output>,<temperature>,<version>,<codes>,<measured>,<moving>,<times>,<xx>
            let f: Vec<&str> = text.split(',').collect();
            if let Some(t) = f.get(3).and_then(|v| v.parse::<f64>().ok()) {
                rec.float("temp1_c", t);
            }
            if let Some(l) = f.get(6).and_then(|v| v.parse::<f64>().ok()) {
                rec.float("fuel", l);
            }
            Ok(done(rec))
        }
        0x1b => {
            if r.peek(0).is_some_and(|b| b.is_ascii_alphabetic()) {
                let text = String::from_utf8_lossy(r.rest()).trim().to_string();
                rec.text("serial", text);
            } else {
                r.u8("header")?;
                r.u8("type")?;
                rec.text("driver_unique_id", fields::hex(r.bytes(4, "driver id")?));
            }
            Ok(done(rec))
        }
        0x1e => {
            rec.float("temp1_c", f64::from(r.i32("temperature")?) / 10.0);
            rec.float("humidity_pct", f64::from(r.i32("humidity")?) / 10.0);
            Ok(done(rec))
        }
        _ => Ok(Some(Message {
            kind: MessageKind::Other,
            record: None,
            reply: None,
        })),
    }
}

/// 0x70: a list of (u16 type, u16 length, value) modules.
fn modular(rec: &mut Record, r: &mut Reader<'_>) -> R<()> {
    while r.remaining() > 0 {
        let module = r.u16("module type")?;
        let len = usize::from(r.u16("module length")?);
        let body = r.bytes(len, "module")?;
        let mut m = Reader::new(body, 0);
        match module {
            0x03 => rec.text("iccid", fields::hex(m.bytes(10, "ICCID")?)),
            0x01 => {
                let digits = fields::hex(m.bytes(8, "IMEI")?);
                rec.text("imei", digits.get(1..).unwrap_or_default().to_string());
            }
            0x09 => rec.int("satellites", m.u8("satellites")?),
            0x0a => rec.int("satellites_visible", m.u8("satellites visible")?),
            0x11 => {
                let mcc = m.u16("MCC")?;
                let mnc = m.u16("MNC")?;
                let lac = m.u16("LAC")?;
                let cid = m.u24("cell id")?;
                let rssi = m.u8("RSSI")?;
                if cid > 0 {
                    rec.cell(Cell {
                        mcc,
                        mnc,
                        lac: lac.into(),
                        cid: cid.into(),
                        rssi: Some(rssi.into()),
                    });
                }
            }
            0x18 => rec.float("battery_v", f64::from(m.u16("battery")?) / 100.0),
            0x28 => rec.float("hdop", f64::from(m.u8("HDOP")?) / 10.0),
            0x29 => rec.int("index", m.u32("index")?),
            0x2a => {
                let input = m.u8("input")?;
                rec.flag("door", input & 0x0f > 0);
                rec.flag("tamper", input >> 4 > 0);
            }
            0x2b => {
                let event = m.u8("event")?;
                rec.alarm(match event {
                    0x11 => Some("lowBattery"),
                    0x12 => Some("lowPower"),
                    0x13 => Some("powerCut"),
                    0x14 => Some("removing"),
                    _ => None,
                });
                rec.int("event", event);
            }
            0x2e => rec.int("odometer_m", m.u32_le("odometer")?),
            0x33 => {
                let time = DateTime::<Utc>::from_timestamp(i64::from(m.u32("time")?), 0);
                let sats = m.u8("satellites")?;
                rec.altitude_m = f64::from(m.i16("altitude")?);
                let mut lat = f64::from(m.u32("latitude")?) / 1_800_000.0;
                let mut lon = f64::from(m.u32("longitude")?) / 1_800_000.0;
                let speed = m.u8("speed")?;
                let flags = m.u16("course and flags")?;
                if flags & (1 << 10) == 0 {
                    lat = -lat;
                }
                if flags & (1 << 11) != 0 {
                    lon = -lon;
                }
                if let Some(time) = time {
                    rec.fix = Some(super::record::Fix {
                        time,
                        lat,
                        lon,
                        speed_kmh: f64::from(speed),
                        course_deg: f64::from(flags & 0x03ff),
                        valid: flags & (1 << 12) != 0,
                        satellites: Some(sats),
                    });
                }
            }
            0x34 => {
                let event = m.u8("event")?;
                rec.alarm(match event {
                    0x10 => Some("door"),
                    0x12 => Some("removing"),
                    0x14 => Some("geofenceEnter"),
                    0x15 => Some("geofenceExit"),
                    0x16 => Some("temperature"),
                    0x1a => Some("lowBattery"),
                    0x1b => Some("overspeed"),
                    0x1c => Some("powerOn"),
                    0x1d => Some("powerOff"),
                    0x20 => Some("vibration"),
                    0x21 => Some("powerCut"),
                    0x23 => Some("tampering"),
                    _ => None,
                });
                rec.int("event", event);
            }
            0x7f => {
                rec.text("tag1_id", fields::hex(m.bytes(6, "tag id")?));
                rec.float("tag1_battery_v", f64::from(m.u16("tag battery")?) / 1000.0);
                rec.int("tag1_battery_level_pct", m.u8("tag battery level")?);
                rec.float("tag1_temp_c", f64::from(m.i16("tag temperature")?) / 10.0);
                rec.int("tag1_humidity_pct", m.i16("tag humidity")?);
                rec.int("tag1_status", m.u8("tag status")?);
            }
            _ => {}
        }
    }
    Ok(())
}

fn obd(rec: &mut Record, text: &str) {
    for pair in text.split(',') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let Some(id) = k.get(..2).and_then(|k| u8::from_str_radix(k, 16).ok()) else {
            continue;
        };
        let num = || i64::from_str_radix(v, 16).ok().map(|n| n as f64 / 100.0);
        match id {
            0x40 => {
                if let Some(n) = num() {
                    rec.float("obd_odometer", n)
                }
            }
            0x43 => {
                if let Some(n) = num() {
                    rec.float("fuel", n)
                }
            }
            0x45 => {
                if let Some(n) = num() {
                    rec.float("coolant_temp_c", n)
                }
            }
            0x53 => {
                if let Some(n) = num() {
                    rec.float("obd_speed_kmh", n)
                }
            }
            0x54 => {
                if let Some(n) = num() {
                    rec.float("rpm", n)
                }
            }
            0x71 => {
                if let Some(n) = num() {
                    rec.float("fuel_used", n)
                }
            }
            0x73 => {
                if let Some(n) = num() {
                    rec.float("obd_hours", n)
                }
            }
            0x74 => rec.text("vin", v.to_string()),
            _ => {}
        }
    }
}

fn device_status(rec: &mut Record, r: &mut Reader<'_>, t: u8) -> R<()> {
    while r.remaining() > 0 {
        let id = r.u16("status id")?;
        if t == PERIPHERAL {
            match id {
                0x000a => {
                    let len = usize::from(r.u16("status length")?);
                    r.u8("MAC type")?;
                    rec.text("mac", fields::hex(r.bytes(6, "MAC")?));
                    let event = r.u8("event")?;
                    rec.int("event", event);
                    let event_data = r.u8("event data")?;
                    if event > 0 {
                        rec.int("event_data", event_data);
                    }
                    rec.int("data_type", r.u8("data type")?);
                    rec.text(
                        "data_details",
                        fields::hex(r.bytes(len.saturating_sub(10), "data details")?),
                    );
                }
                0x000c => {
                    r.u8("length")?;
                    rec.int(
                        "external_battery_level_pct",
                        r.u8("external battery level")?,
                    );
                    if r.u8("external battery charge")? > 0 {
                        rec.flag("external_battery_charging", true);
                    }
                    rec.int("external_battery_cycles", r.u16("external battery cycles")?);
                    r.skip(6, "reserved")?;
                }
                _ => {
                    let len = r.u8("status length")?;
                    let len = if len == 0 {
                        r.u8("status length")?
                    } else {
                        len
                    };
                    r.skip(len.into(), "status")?;
                }
            }
        } else {
            let len = usize::from(r.u8("status length")?);
            let body = r.bytes(len, "status")?;
            let mut s = Reader::new(body, 0);
            match id {
                0x0001 => {
                    let motion = s.u8("motion")?;
                    rec.flag("motion", motion == 0x02 || motion == 0x04);
                }
                0x0002 => rec.flag("armed", s.u8("armed")? > 0),
                0x0004 => rec.flag("ignition", s.u8("ignition")? > 0),
                0x0005 => rec.float("power_v", f64::from(s.u16("power")?) / 100.0),
                0x0007 => rec.flag("charging", s.u8("charging")? > 0),
                0x000a => rec.int("charge_voltage", s.u16("charge voltage")?),
                0x000b => rec.float(
                    "battery_temp_c",
                    f64::from(s.u16("battery temperature")?) / 10.0,
                ),
                _ => {}
            }
        }
    }
    Ok(())
}
