//! "@Track Protocol Pro", the newer binary framing (GV500CNA, GL601…):
//!
//! ```text
//! report     2B|2D 00 | len u16 | flags u8 | [frame count, number u8 u8 if flags bit 7]
//!            | IMEI 8 (BCD, leading nibble dropped) | dev type u16 | proto u16 | custom u8
//!            | reserved len u8 + bytes | records… | count u16 | CRC-8 | '$'
//! record     len (includes itself) | generated time u32 | record count u16 | record id u8
//!            | event u8 | data items: id | len | content
//! heartbeat  2B 10 | len u8 | IMEI 8 | dev type u16 | proto u16 | custom u8 | time u32
//!            | count u16 | CRC-8 | '$'
//! ```
//!
//! `2D` marks buffered reports. The CRC-8 (poly 0x31, init 0xFF) covers
//! everything before it. Data item 82 (full location) and 81 (mini
//! location) become positions; the rest is not decoded.

use chrono::DateTime;

use crate::model::{AttrValue, DeviceId};
use crate::protocol::{DecodeContext, DecodeError, Decoded, MessageKind, Rejected, Reply};

use super::reader::Reader;
use super::record::{Fix, LastFix, NoFix, Output, Record};

/// CRC-8 of Protocol Pro frames (= CRC-8/NRSC-5).
const CRC8: crc::Crc<u8> = crc::Crc::<u8>::new(&crc::CRC_8_NRSC_5);
/// Most records one frame may hold (bounded again by its bytes).
const MAX_RECORDS: usize = 1024;

/// Whether `b` starts like a Protocol Pro frame (`2B`/`2D`, then `00` or `10`).
pub(super) fn is_pro(b: &[u8]) -> bool {
    matches!(b, [0x2b | 0x2d, 0x00 | 0x10, ..])
}

/// The declared length, once enough bytes are there.
pub(super) fn length(b: &[u8]) -> Option<usize> {
    match b {
        [_, 0x10, n, ..] => Some(usize::from(*n)),
        [_, 0x00, h, l, ..] => Some(usize::from(u16::from_be_bytes([*h, *l]))),
        _ => None,
    }
}

pub(super) fn decode(
    frame: &[u8],
    ctx: &DecodeContext,
    last: &mut Option<LastFix>,
) -> Result<Decoded, Rejected> {
    inner(frame, ctx, last).map_err(Rejected::skip)
}

fn inner(
    frame: &[u8],
    ctx: &DecodeContext,
    last: &mut Option<LastFix>,
) -> Result<Decoded, DecodeError> {
    let declared = length(frame).ok_or(DecodeError::Malformed {
        what: "protocol pro header",
        offset: 0,
    })?;
    if declared != frame.len() || declared < 4 {
        return Err(DecodeError::Length {
            declared,
            actual: frame.len(),
        });
    }
    let body_end = frame.len().saturating_sub(2);
    let (body, tail) = frame.split_at(body_end);
    let [carried, end] = <[u8; 2]>::try_from(tail).map_err(|_| DecodeError::Malformed {
        what: "crc",
        offset: body_end,
    })?;
    if end != b'$' {
        return Err(DecodeError::Malformed {
            what: "protocol pro terminator",
            offset: body_end.saturating_add(1),
        });
    }
    let computed = CRC8.checksum(body);
    if carried != computed {
        return Err(DecodeError::Checksum {
            carried: u32::from(carried),
            computed: u32::from(computed),
        });
    }
    let buffered = frame.first() == Some(&0x2d);
    let heartbeat = frame.get(1) == Some(&0x10);
    let mut r = Reader::new(body, if heartbeat { 3 } else { 4 });
    if !heartbeat {
        let flags = r.u8("flags")?;
        if flags & 0x80 != 0 {
            r.skip(2, "frame count and number")?;
        }
    }
    let device = imei(&mut r)?;
    r.skip(2 + 2 + 1, "device type, protocol, custom version")?;
    if heartbeat {
        return Ok(Decoded::control(
            MessageKind::Keepalive,
            Some(device),
            Reply::NONE,
        ));
    }
    let reserved = usize::from(r.u8("reserved length")?);
    r.skip(reserved, "reserved")?;
    let mut out = Output::default();
    // Records until the 2-byte count before the CRC.
    let records_end = body.len().saturating_sub(2);
    let mut n = 0;
    while r.pos < records_end && n < MAX_RECORDS {
        n = n.saturating_add(1);
        let start = r.pos;
        let len = varint(&mut r, "record length")?;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= records_end && len > 0)
            .ok_or(DecodeError::Length {
                declared: len,
                actual: records_end.saturating_sub(start),
            })?;
        let rec_bytes = body.get(..end).unwrap_or_default();
        let mut rr = Reader::new(rec_bytes, r.pos);
        let generated = rr.u32("generated time")?;
        rr.skip(2, "record count")?;
        let record_id = rr.u8("record id")?;
        let event = rr.u8("event code")?;
        let mut rec = Record::default();
        rec.set("record_id", AttrValue::Int(i64::from(record_id)));
        rec.set("event_code", AttrValue::Int(i64::from(event)));
        if buffered {
            rec.set("buffered", AttrValue::Bool(true));
        }
        while rr.pos < end {
            let id = varint(&mut rr, "data id")?;
            let dlen = varint(&mut rr, "data length")?;
            let content = rr.bytes(dlen, "data content")?;
            if id == 82 || id == 81 {
                location(content, id == 82, &mut rec)?;
            }
        }
        let time = DateTime::from_timestamp(i64::from(generated), 0).unwrap_or(ctx.received);
        out.push(&device, rec, time, ctx.received, NoFix::Report, last);
        r.pos = end;
    }
    Ok(Decoded {
        kind: MessageKind::Data,
        device: Some(device),
        positions: out.positions,
        reports: out.reports,
        reply: Reply::NONE,
    })
}

/// A 1- or 2-byte length/id: high bit set → 15 bits over two bytes.
fn varint(r: &mut Reader<'_>, what: &'static str) -> Result<usize, DecodeError> {
    let b = r.u8(what)?;
    if b & 0x80 == 0 {
        Ok(usize::from(b))
    } else {
        let lo = r.u8(what)?;
        Ok(usize::from(u16::from_be_bytes([b & 0x7f, lo])))
    }
}

/// 8 bytes of BCD: 16 digits, the first one padding.
fn imei(r: &mut Reader<'_>) -> Result<DeviceId, DecodeError> {
    let at = r.pos;
    let b = r.bytes(8, "imei")?;
    let digits = hex::encode(b);
    let imei = digits.get(1..).unwrap_or_default();
    if !imei.bytes().all(|c| c.is_ascii_digit()) {
        return Err(DecodeError::Malformed {
            what: "imei bcd",
            offset: at,
        });
    }
    Ok(DeviceId::new(imei)?)
}

/// Data 82: fix u8 | lon i32 | lat i32 | utc u32 | speed u16 ×0.1 | hdop u8 ×0.1
/// | azimuth u16 | altitude i24 ×0.1 | satellites u8. Data 81 stops after speed.
fn location(content: &[u8], full: bool, rec: &mut Record) -> Result<(), DecodeError> {
    let mut r = Reader::new(content, 0);
    let fix = r.u8("fix state")?;
    let lon = f64::from(r.i32("longitude")?) / 1e6;
    let lat = f64::from(r.i32("latitude")?) / 1e6;
    let utc = r.u32("utc")?;
    let speed = f64::from(r.u16("speed")?) / 10.0;
    let (mut course, mut altitude) = (0.0, 0.0);
    if full {
        let hdop = f64::from(r.u8("hdop")?) / 10.0;
        course = f64::from(r.u16("azimuth")?);
        altitude = f64::from(r.i24("altitude")?) / 10.0;
        rec.satellites = Some(r.u8("satellites")?);
        rec.set("hdop", AttrValue::Float(hdop));
    }
    if let Some(time) = DateTime::from_timestamp(i64::from(utc), 0) {
        if crate::model::Position::valid_coordinates(lat, lon) {
            rec.fix = Some(Fix {
                time,
                lat,
                lon,
                altitude_m: altitude,
                speed_kmh: speed,
                course_deg: if course <= 360.0 { course } else { 0.0 },
                valid: (fix >> 2) & 0b11 == 0b10,
            });
        }
    }
    Ok(())
}
