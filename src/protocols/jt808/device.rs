//! The device side, for `trackgate simulate`: a terminal in the 2019 header
//! form (20-digit terminal id, so a 15-digit IMEI fits) that authenticates
//! (0x0102) and reports its fixes in location batches (0x0704). Each is
//! answered by a general response (0x8001) naming its serial: result 0
//! deletes the fixes, anything else keeps them for the next try.

use bytes::BytesMut;

use super::frame::{self, escape_into, DELIMITER};
use super::messages::{AUTH, LOCATION_BATCH};
use super::reply::{GENERAL_RESPONSE, SUCCESS};
use crate::protocol::checksum::xor8;
use crate::protocol::device::{
    quantized, utc_fields, whole_seconds, Answer, BadReply, DeviceSide, Fix, Stage,
};

/// JT/T 808's device side.
pub struct Device;

/// The 2019 protocol version byte.
const VERSION: u8 = 1;
/// Header attribute bit of the 2019 form.
const VERSION_2019: u16 = 1 << 14;
/// A location body without extra items.
const LOCATION_LEN: usize = 28;
/// Bodies are at most 10 bits long: a batch header and 32 entries fit.
const MAX_BATCH: usize = 32;
/// Offset of the body in an unescaped 2019 message with its delimiter.
const BODY_AT: usize = 18;

/// Two decimal digits as one BCD byte.
pub(super) fn bcd(v: u32) -> u8 {
    let v = u8::try_from(v % 100).unwrap_or(0);
    ((v / 10) << 4) | (v % 10)
}

/// Device number `n` as the 10-byte BCD terminal id.
fn terminal(n: u64) -> [u8; 10] {
    let mut t = [0u8; 10];
    let mut v = n;
    for b in t.iter_mut().rev() {
        *b = bcd(u32::try_from(v % 100).unwrap_or(0));
        v /= 100;
    }
    t
}

/// One message, delimited and escaped: id, attributes, the version byte
/// when `version` is given (the 2019 form, `terminal` then 10 bytes, else
/// 6), terminal, serial, body, XOR.
pub(crate) fn message(
    msg_id: u16,
    version: Option<u8>,
    terminal: &[u8],
    serial: u16,
    body: &[u8],
) -> Vec<u8> {
    let len = u16::try_from(body.len()).unwrap_or(0) & 0x03ff;
    let attrs = if version.is_some() {
        len | VERSION_2019
    } else {
        len
    };
    let mut c = msg_id.to_be_bytes().to_vec();
    c.extend_from_slice(&attrs.to_be_bytes());
    c.extend(version);
    c.extend_from_slice(terminal);
    c.extend_from_slice(&serial.to_be_bytes());
    c.extend_from_slice(body);
    c.push(xor8(&c));
    let mut out = vec![DELIMITER];
    escape_into(&mut out, &c, DELIMITER);
    out.push(DELIMITER);
    out
}

/// Degrees in the wire's 1e-6 units, without sign (the status word has it).
fn e6(deg: f64) -> u32 {
    (deg.abs() * 1e6).round() as u32
}

/// A 0x0200 body: alarm, status, coordinates, altitude, speed, course, time (UTC).
fn location(f: &Fix) -> Vec<u8> {
    let mut status: u32 = 1 << 1; // valid fix
    if f.lat < 0.0 {
        status |= 1 << 2;
    }
    if f.lon < 0.0 {
        status |= 1 << 3;
    }
    let mut b = Vec::with_capacity(LOCATION_LEN);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&status.to_be_bytes());
    b.extend_from_slice(&e6(f.lat).to_be_bytes());
    b.extend_from_slice(&e6(f.lon).to_be_bytes());
    b.extend_from_slice(&120u16.to_be_bytes());
    b.extend_from_slice(&f.speed_kmh.saturating_mul(10).to_be_bytes());
    b.extend_from_slice(&(f.course % 360).to_be_bytes());
    b.extend_from_slice(&utc_fields(f.fix_ms).map(bcd));
    b
}

impl DeviceSide for Device {
    fn max_records(&self) -> usize {
        MAX_BATCH
    }
    fn time_step_ms(&self) -> i64 {
        1000
    }
    fn quantize(&self, fix: Fix) -> Fix {
        Fix {
            fix_ms: whole_seconds(fix.fix_ms),
            lat: quantized(fix.lat, 1e6),
            lon: quantized(fix.lon, 1e6),
            speed_kmh: fix.speed_kmh.min(6553),
            course: fix.course % 360,
        }
    }
    fn device_id(&self, n: u64) -> String {
        // The terminal id without its leading zeros.
        n.to_string()
    }
    fn login(&self, n: u64, serial: u16) -> Option<Vec<u8>> {
        // 2019 authentication: code length, code, IMEI (15), software version (20).
        let code = format!("{n:020}");
        let mut body = vec![u8::try_from(code.len()).unwrap_or(0)];
        body.extend_from_slice(code.as_bytes());
        let imei = format!("{n:015}");
        body.extend_from_slice(imei.as_bytes().get(..15).unwrap_or_default());
        body.extend_from_slice(b"trackgate-sim\0\0\0\0\0\0\0");
        Some(message(AUTH, Some(VERSION), &terminal(n), serial, &body))
    }
    fn packet(&self, n: u64, fixes: &[Fix], serial: u16) -> Vec<u8> {
        let fixes = fixes.get(..fixes.len().min(MAX_BATCH)).unwrap_or_default();
        let count = u16::try_from(fixes.len()).unwrap_or(0);
        let mut body = count.to_be_bytes().to_vec();
        body.push(0); // normal upload, not blind-area data
        for f in fixes {
            let loc = location(f);
            body.extend_from_slice(&u16::try_from(loc.len()).unwrap_or(0).to_be_bytes());
            body.extend_from_slice(&loc);
        }
        message(LOCATION_BATCH, Some(VERSION), &terminal(n), serial, &body)
    }
    fn next_reply(&self, buf: &mut BytesMut, _stage: Stage) -> Result<Option<BytesMut>, BadReply> {
        // Server messages are framed like the terminal's: the server's own
        // framer cuts and unescapes them (the simulator bounds the buffer).
        frame::next(buf, usize::MAX).map_err(|e| BadReply(e.to_string()))
    }
    fn answer(&self, m: &[u8], stage: Stage, serial: u16, _sent: usize) -> Answer {
        let want = if stage == Stage::Login {
            AUTH
        } else {
            LOCATION_BATCH
        };
        let id = m.get(1..3);
        let body = m.get(BODY_AT..BODY_AT.saturating_add(5));
        match (id, body) {
            (Some(id), Some([s0, s1, w0, w1, result]))
                if id == GENERAL_RESPONSE.to_be_bytes()
                    && [*s0, *s1] == serial.to_be_bytes()
                    && [*w0, *w1] == want.to_be_bytes() =>
            {
                if *result == SUCCESS {
                    Answer::Accepted
                } else {
                    Answer::Refused
                }
            }
            _ => Answer::Unrelated,
        }
    }
}
