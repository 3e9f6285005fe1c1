//! The device side, for `trackgate simulate`: a Wialon IPS 2.0 tracker. It
//! logs in with `#L#`, sends one fix as `#D#` (answered `#AD#1`) and more as
//! a black box `#B#` (answered `#AB#<count>`), every message with its
//! CRC-16. A record leaves the device only when the answer covers it; a CRC
//! or structure error answer (`#AD#16`, `#AB#0`, …) means send again.

use bytes::BytesMut;

use super::record::from_ddmm;
use crate::protocol::checksum::crc16_ibm;
use crate::protocol::device::{
    take_line, utc_fields, whole_seconds, Answer, BadReply, DeviceSide, Fix, Stage,
};

/// Wialon IPS's device side.
pub struct Device;

/// Micro-minutes in a degree: the wire's `mm.mmmmmm` resolution.
const MICRO_MINUTES: u64 = 60_000_000;

/// The magnitude of `deg` as the wire writes it: `ddmm.mmmmmm` (`width`
/// degree digits), from whole micro-minutes so the minutes never read 60.
fn ddmm(deg: f64, width: usize) -> String {
    let total = (deg.abs() * 60e6).round() as u64;
    let (degrees, minutes) = (total / MICRO_MINUTES, total % MICRO_MINUTES);
    format!(
        "{degrees:0width$}{:02}.{:06}",
        minutes / 1_000_000,
        minutes % 1_000_000
    )
}

/// `deg` as the server reads back what [`ddmm`] wrote.
fn read_back(deg: f64, width: usize) -> f64 {
    let magnitude = ddmm(deg, width).parse().map_or(0.0, from_ddmm);
    if deg < 0.0 {
        -magnitude
    } else {
        magnitude
    }
}

/// One record as a `#D#` body without its CRC (16 fields).
fn record(f: &Fix) -> String {
    let [yy, mo, dd, hh, mi, ss] = utc_fields(f.fix_ms);
    format!(
        "{dd:02}{mo:02}{yy:02};{hh:02}{mi:02}{ss:02};{};{};{};{};{};{};120;9;0.9;0;0;NA;NA;NA",
        ddmm(f.lat, 2),
        if f.lat < 0.0 { 'S' } else { 'N' },
        ddmm(f.lon, 3),
        if f.lon < 0.0 { 'W' } else { 'E' },
        f.speed_kmh,
        f.course,
    )
}

/// `#<kind>#<covered><crc>\r\n`: 2.0 ends a message with the CRC-16/ARC
/// of the body before it (which ends in `;` or `|`).
fn line(kind: &str, covered: &str) -> Vec<u8> {
    format!("#{kind}#{covered}{:04X}\r\n", crc16_ibm(covered.as_bytes())).into_bytes()
}

impl DeviceSide for Device {
    fn max_records(&self) -> usize {
        // ~95 bytes a record: a black box well inside the default 64 KiB frame.
        255
    }
    fn time_step_ms(&self) -> i64 {
        1000
    }
    fn quantize(&self, fix: Fix) -> Fix {
        Fix {
            fix_ms: whole_seconds(fix.fix_ms),
            lat: read_back(fix.lat, 2),
            lon: read_back(fix.lon, 3),
            ..fix
        }
    }
    fn login(&self, n: u64, _serial: u16) -> Option<Vec<u8>> {
        Some(line("L", &format!("2.0;{};NA;", self.device_id(n))))
    }
    fn packet(&self, _n: u64, fixes: &[Fix], _serial: u16) -> Vec<u8> {
        match fixes {
            [one] => line("D", &format!("{};", record(one))),
            many => {
                let mut covered = String::with_capacity(many.len().saturating_mul(96));
                for f in many {
                    covered.push_str(&record(f));
                    covered.push('|');
                }
                line("B", &covered)
            }
        }
    }
    fn next_reply(&self, buf: &mut BytesMut, _stage: Stage) -> Result<Option<BytesMut>, BadReply> {
        let Some(line) = take_line(buf) else {
            return Ok(None);
        };
        if line.first() != Some(&b'#') {
            return Err(BadReply(String::from_utf8_lossy(&line).into_owned()));
        }
        Ok(Some(line))
    }
    fn answer(&self, reply: &[u8], stage: Stage, _serial: u16, sent: usize) -> Answer {
        let text = reply.trim_ascii_end();
        let kind: &[u8] = match stage {
            Stage::Login => b"#AL#",
            Stage::Packet if sent == 1 => b"#AD#",
            Stage::Packet => b"#AB#",
        };
        let Some(value) = text.strip_prefix(kind) else {
            return Answer::Unrelated;
        };
        // `1` for a login or one record, the whole count for a black box.
        let wanted = if kind == b"#AB#" { sent } else { 1 };
        let digits = value.iter().all(u8::is_ascii_digit);
        if digits && std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) == Some(wanted) {
            Answer::Accepted
        } else {
            Answer::Refused
        }
    }
}
