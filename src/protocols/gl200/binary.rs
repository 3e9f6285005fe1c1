//! The legacy binary ("HEX") protocol: `+RSP` / `+EVT` (position reports,
//! `+BSP` / `+BVT` when buffered), `+INF` (device information), `+ACK`
//! (command acknowledgement) and `+HBD` (heartbeat). Each starts with its
//! four-character header and a length at a fixed offset, and ends with the
//! send time, count, CRC and `\r\n`:
//!
//! ```text
//! +RSP type u8 | mask u32 | len u16 | dev type u8 | proto u16 | fw u16 | id 8 | battery % u8
//!      | power mV u16 | [GEO: 2 reserved] | motion u8 | satellites u8 | [index u8]
//!      | [LCB: phone] | count u8 | count × point | send time 7 | count u16 | crc u16 | 0d0a
//! point: hdop u8 | speed u24 ×0.1 km/h | course u16 | alt i16 m | lon i32 ×1e-6 | lat i32 ×1e-6
//!        | time 7 | mcc u16 | mnc u16 | lac u16 | cid u16 | reserved u8
//! ```
//!
//! Type 100 of `+RSP` is a compressed list of points (absolute and delta
//! entries, bit-packed). The id is 8 bytes: the IMEI as decimal pairs, or,
//! when mask bit 6 is set, the device name in ASCII.

use chrono::{DateTime, Utc};

use crate::model::{AttrValue, DeviceId};
use crate::protocol::{DecodeContext, DecodeError, Decoded, MessageKind, Rejected, Reply};

use super::reader::Reader;
use super::record::{Fix, LastFix, NoFix, Output, Record};

const RSP_LCB: u8 = 3;
const RSP_GEO: u8 = 8;
const RSP_COMPRESSED: u8 = 100;
/// Most points one frame may claim (bounded again by its bytes).
const MAX_POINTS: usize = 4096;

/// Decodes one binary frame whose header the framer recognised.
pub(super) fn decode(
    frame: &[u8],
    ctx: &DecodeContext,
    last: &mut Option<LastFix>,
) -> Result<Decoded, Rejected> {
    let header = frame.get(..4).unwrap_or_default();
    let declared = super::frame::binary_length(frame).map_err(Rejected::skip)?;
    if let Some(n) = declared {
        if n != frame.len() {
            return Err(Rejected::skip(DecodeError::Length {
                declared: n,
                actual: frame.len(),
            }));
        }
    }
    let send_time = trailer_time(frame).unwrap_or(ctx.received);
    let result = match header {
        b"+RSP" | b"+BSP" => rsp(frame, header == b"+BSP", ctx, send_time, last),
        b"+EVT" | b"+BVT" => evt(frame, header == b"+BVT", ctx, last),
        b"+INF" | b"+BNF" => inf(frame, ctx, send_time, last),
        b"+ACK" => ack(frame, ctx, send_time, last),
        b"+HBD" => hbd(frame),
        _ => Err(DecodeError::Unsupported {
            what: "binary message",
            value: String::from_utf8_lossy(header).into_owned(),
        }),
    };
    result.map_err(Rejected::skip)
}

/// The send time 13 bytes before the end (`time 7 | count 2 | crc 2 | \r\n`).
fn trailer_time(frame: &[u8]) -> Option<DateTime<Utc>> {
    let at = frame.len().checked_sub(13)?;
    Reader::new(frame, at).time("send time").ok().flatten()
}

/// The 8-byte device id: ASCII name when `name` (mask bit 6), else the
/// IMEI as seven decimal pairs and a last single digit.
fn device_id(r: &mut Reader<'_>, name: bool) -> Result<DeviceId, DecodeError> {
    let at = r.pos;
    let b = r.bytes(8, "device id")?;
    let id = if name {
        b.iter()
            .take_while(|&&c| c != 0)
            .map(|&c| char::from(c))
            .collect::<String>()
    } else {
        let mut s = String::with_capacity(15);
        for (i, &v) in b.iter().enumerate() {
            if v > 99 {
                return Err(DecodeError::Malformed {
                    what: "imei digits",
                    offset: at.saturating_add(i),
                });
            }
            if i == 7 {
                s.push_str(&v.to_string());
            } else {
                s.push_str(&format!("{v:02}"));
            }
        }
        s
    };
    Ok(DeviceId::new(&id)?)
}

fn data(device: DeviceId, out: Output, kind: MessageKind) -> Decoded {
    Decoded {
        kind,
        device: Some(device),
        positions: out.positions,
        reports: out.reports,
        reply: Reply::NONE,
    }
}

/// One uncompressed point into `rec`.
fn point(r: &mut Reader<'_>, rec: &mut Record) -> Result<(), DecodeError> {
    let hdop = r.u8("hdop")?;
    let speed = f64::from(r.u24("speed")?) / 10.0;
    let course = f64::from(r.u16("course")?);
    let altitude = f64::from(r.i16("altitude")?);
    let lon = f64::from(r.i32("longitude")?) / 1e6;
    let lat = f64::from(r.i32("latitude")?) / 1e6;
    let time = r.time("fix time")?;
    let (mcc, mnc, lac, cid) = (r.u16("mcc")?, r.u16("mnc")?, r.u16("lac")?, r.u16("cid")?);
    r.skip(1, "reserved")?;
    rec.set("hdop", AttrValue::Int(i64::from(hdop)));
    rec.set(
        "network",
        AttrValue::Text(format!(
            "[{{\"mcc\":{mcc},\"mnc\":{mnc},\"lac\":{lac},\"cid\":{cid}}}]"
        )),
    );
    if let Some(time) = time.filter(|_| crate::model::Position::valid_coordinates(lat, lon)) {
        rec.fix = Some(Fix {
            time,
            lat,
            lon,
            altitude_m: altitude,
            speed_kmh: speed,
            course_deg: if course <= 360.0 { course } else { 0.0 },
            valid: hdop > 0,
        });
    }
    Ok(())
}

fn rsp(
    frame: &[u8],
    buffered: bool,
    ctx: &DecodeContext,
    send_time: DateTime<Utc>,
    last: &mut Option<LastFix>,
) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(frame, 4);
    let ty = r.u8("report type")?;
    let mask = r.u32("mask")?;
    r.skip(2 + 1 + 2, "length, device type, protocol version")?;
    let fw = r.u16("firmware version")?;
    let device = device_id(&mut r, mask & 0x40 != 0)?;
    let battery = r.u8("battery level")?;
    let power = r.u16("power")?;
    if ty == RSP_GEO {
        r.skip(2, "reserved")?;
    }
    r.skip(1, "motion status")?;
    let satellites = r.u8("satellites")?;
    if ty != RSP_COMPRESSED {
        r.skip(1, "index")?;
    }
    if ty == RSP_LCB {
        r.skip(1, "phone length")?;
        loop {
            let b = r.u8("phone number")?;
            if b & 0x0f == 0x0f || b & 0xf0 == 0xf0 {
                break;
            }
        }
    }
    let common = |rec: &mut Record| {
        rec.set("type", AttrValue::Text(format!("RSP{ty}")));
        rec.set("version_fw", AttrValue::Int(i64::from(fw)));
        rec.set("battery_level_pct", AttrValue::Int(i64::from(battery)));
        rec.set("power_v", AttrValue::Float(f64::from(power) / 1000.0));
        if buffered {
            rec.set("buffered", AttrValue::Bool(true));
        }
    };
    let mut out = Output::default();
    if ty == RSP_COMPRESSED {
        for rec in compressed(&mut r)? {
            let mut rec = rec;
            common(&mut rec);
            out.push(&device, rec, send_time, ctx.received, NoFix::Report, last);
        }
    } else {
        let count = r.u8("point count")?;
        for _ in 0..count {
            let mut rec = Record {
                satellites: Some(satellites),
                ..Record::default()
            };
            common(&mut rec);
            point(&mut r, &mut rec)?;
            out.push(
                &device,
                rec,
                send_time,
                ctx.received,
                NoFix::OutdatedPosition,
                last,
            );
        }
    }
    Ok(data(device, out, MessageKind::Data))
}

/// Reads `n` bits MSB-first from `bytes` starting at bit `at`.
fn bits(bytes: &[u8], at: usize, n: usize) -> u32 {
    (at..at.saturating_add(n)).fold(0u32, |acc, i| {
        let byte = bytes.get(i / 8).copied().unwrap_or(0);
        let shift = 7u32.saturating_sub(u32::try_from(i % 8).unwrap_or(0));
        let bit = byte.checked_shr(shift).unwrap_or(0) & 1;
        (acc << 1) | u32::from(bit)
    })
}

/// Two's complement of an `n`-bit field.
fn signed(v: u32, n: u32) -> i32 {
    let shift = 32u32.saturating_sub(n);
    i32::from_be_bytes((v << shift).to_be_bytes()) >> shift
}

/// The compressed point list of `+RSP` type 100.
fn compressed(r: &mut Reader<'_>) -> Result<Vec<Record>, DecodeError> {
    let count = usize::from(r.u16("point count")?).min(MAX_POINTS);
    let (mut speed, mut heading, mut lat, mut lon) = (0i64, 0i64, 0i64, 0i64);
    let mut time: i64 = 0;
    let mut out = Vec::new();
    for _ in 0..count {
        if time > 0 {
            time = time.saturating_add(1);
        }
        let Some(first) = r.peek() else { break };
        match first >> 6 {
            1 => {
                let b = r.bytes(3, "absolute point")?;
                speed = i64::from(bits(b, 3, 12));
                heading = i64::from(bits(b, 15, 9));
                lon = i64::from(r.i32("longitude")?);
                lat = i64::from(r.i32("latitude")?);
                if time == 0 {
                    time = i64::from(r.u32("time")?);
                }
            }
            2 => {
                let b = r.bytes(5, "delta point")?;
                speed = speed.saturating_add(i64::from(signed(bits(b, 3, 7), 7)));
                heading = heading.saturating_add(i64::from(signed(bits(b, 10, 7), 7)));
                lon = lon.saturating_add(i64::from(signed(bits(b, 17, 12), 12)));
                lat = lat.saturating_add(i64::from(signed(bits(b, 29, 11), 11)));
            }
            _ => {
                r.skip(1, "empty point")?;
                continue;
            }
        }
        let mut rec = Record::default();
        let (la, lo) = (lat as f64 / 1e6, lon as f64 / 1e6);
        if let Some(t) = DateTime::from_timestamp(time, 0) {
            if crate::model::Position::valid_coordinates(la, lo) {
                rec.fix = Some(Fix {
                    time: t,
                    lat: la,
                    lon: lo,
                    altitude_m: 0.0,
                    speed_kmh: (speed as f64 / 10.0).max(0.0),
                    course_deg: if (0..=360).contains(&heading) {
                        heading as f64
                    } else {
                        0.0
                    },
                    valid: true,
                });
            }
        }
        out.push(rec);
    }
    Ok(out)
}

fn evt(
    frame: &[u8],
    buffered: bool,
    ctx: &DecodeContext,
    last: &mut Option<LastFix>,
) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(frame, 4);
    let ty = r.u8("event type")?;
    let mask = r.u32("mask")?;
    r.skip(2 + 1 + 2, "length, device type, protocol version")?;
    let fw = r.u16("firmware version")?;
    let device = device_id(&mut r, mask & 0x40 != 0)?;
    let battery = r.u8("battery level")?;
    let power = r.u16("power")?;
    r.skip(1, "motion status")?;
    let satellites = r.u8("satellites")?;
    // Event-specific fields before the point.
    let extra = match ty {
        6 => 2,            // BPL: backup battery voltage
        45 | 46 => 7,      // VGN/VGF: reserved, report type, ignition duration
        13 | 14 => 4,      // IGN/IGF: ignition duration
        15 => 3,           // UPD: code, retry
        17 => 4,           // IDF: idling duration
        21 => 5,           // GSS: signal status, reserved
        25 => 2,           // DOS
        26 => 12,          // GES: geofence id, enable, mode, radius, interval
        31 => 2,           // GPJ: CW jamming value, jamming state
        35 | 33 | 23 => 1, // RMD roaming / JDS jamming / CRA crash counter
        34 => 3,           // UPC: command id, result
        _ => 0,
    };
    r.skip(extra, "event fields")?;
    r.skip(1, "point count")?;
    let mut rec = Record {
        satellites: Some(satellites),
        ..Record::default()
    };
    rec.set("type", AttrValue::Text(format!("EVT{ty}")));
    rec.set("version_fw", AttrValue::Int(i64::from(fw)));
    rec.set("battery_level_pct", AttrValue::Int(i64::from(battery)));
    rec.set("power_v", AttrValue::Float(f64::from(power) / 1000.0));
    match ty {
        45 | 13 => rec.set("ignition", AttrValue::Bool(true)),
        46 | 14 => rec.set("ignition", AttrValue::Bool(false)),
        _ => {}
    }
    if buffered {
        rec.set("buffered", AttrValue::Bool(true));
    }
    point(&mut r, &mut rec)?;
    let time = trailer_time(frame).unwrap_or(ctx.received);
    let mut out = Output::default();
    out.push(&device, rec, time, ctx.received, NoFix::Report, last);
    Ok(data(device, out, MessageKind::Data))
}

fn inf(
    frame: &[u8],
    ctx: &DecodeContext,
    send_time: DateTime<Utc>,
    last: &mut Option<LastFix>,
) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(frame, 4);
    let ty = r.u8("information type")?;
    let mask = r.u16("mask")?;
    r.skip(2, "length")?;
    let device = device_id(&mut r, mask & 0x40 != 0)?;
    let device_type = r.u8("device type")?;
    let proto = r.u16("protocol version")?;
    let fw = r.u16("firmware version")?;
    let mut rec = Record::default();
    rec.set("type", AttrValue::Text(format!("INF{ty}")));
    rec.set("device_type", AttrValue::Int(i64::from(device_type)));
    rec.set("version_protocol", AttrValue::Int(i64::from(proto)));
    rec.set("version_fw", AttrValue::Int(i64::from(fw)));
    let mut out = Output::default();
    out.push(&device, rec, send_time, ctx.received, NoFix::Report, last);
    Ok(data(device, out, MessageKind::Data))
}

fn ack(
    frame: &[u8],
    ctx: &DecodeContext,
    send_time: DateTime<Utc>,
    last: &mut Option<LastFix>,
) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(frame, 4);
    let ty = r.u8("command type")?;
    let mask = r.u8("mask")?;
    r.skip(1 + 1 + 2 + 2, "length, device type, protocol, firmware")?;
    let device = device_id(&mut r, mask & 0x40 != 0)?;
    r.skip(1, "id")?;
    let serial = r.u16("serial")?;
    let mut rec = Record::default();
    rec.set("result", AttrValue::Text(format!("ACK{ty}")));
    rec.set("serial", AttrValue::Int(i64::from(serial)));
    let mut out = Output::default();
    out.push(&device, rec, send_time, ctx.received, NoFix::Report, last);
    Ok(data(device, out, MessageKind::CommandResponse))
}

fn hbd(frame: &[u8]) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(frame, 4);
    let mask = r.u8("mask")?;
    r.skip(1 + 1 + 2 + 2, "length, device type, protocol, firmware")?;
    let device = device_id(&mut r, mask & 0x40 != 0)?;
    Ok(Decoded::control(
        MessageKind::Keepalive,
        Some(device),
        Reply::NONE,
    ))
}
