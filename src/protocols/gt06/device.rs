//! The device side, for `trackgate simulate`: a GT06 that logs in with its
//! IMEI (0x01) and reports one fix per GPS+LBS frame (0x12), each echoed
//! back by the server with the frame's serial. A frame whose echo does not
//! come is sent again; GT06 has no negative answer, so a refused device
//! simply hears nothing.

use bytes::BytesMut;

use super::fields::COORD_UNITS_PER_DEG;
use super::frame::{END, START_LONG, START_SHORT};
use super::reply::with_content;
use crate::protocol::checksum::crc16_x25;
use crate::protocol::device::{
    quantized, take, utc_fields, whole_seconds, Answer, BadReply, DeviceSide, Fix, Stage,
};

const LOGIN: u8 = 0x01;
const GPS_LBS_1: u8 = 0x12;

/// GT06's device side.
pub struct Device;

/// |degrees| in the wire's 1/30000 minute units.
fn units(deg: f64) -> u32 {
    (deg.abs() * COORD_UNITS_PER_DEG).round() as u32
}

/// yy MM dd HH mm ss, UTC (the server's default zone for GT06 ports).
fn time(ms: i64) -> [u8; 6] {
    utc_fields(ms).map(|v| u8::try_from(v).unwrap_or(0))
}

impl DeviceSide for Device {
    fn max_records(&self) -> usize {
        1
    }
    fn time_step_ms(&self) -> i64 {
        1000
    }
    fn quantize(&self, fix: Fix) -> Fix {
        Fix {
            fix_ms: whole_seconds(fix.fix_ms),
            lat: quantized(fix.lat, COORD_UNITS_PER_DEG),
            lon: quantized(fix.lon, COORD_UNITS_PER_DEG),
            speed_kmh: fix.speed_kmh.min(255),
            course: fix.course % 360,
        }
    }
    fn login(&self, n: u64, serial: u16) -> Option<Vec<u8>> {
        // The IMEI as 16 BCD digits, a leading zero first.
        let digits = format!("{n:016}");
        let bcd: Vec<u8> = digits
            .as_bytes()
            .chunks(2)
            .map(|p| match p {
                [h, l] => (h.wrapping_sub(b'0') << 4) | l.wrapping_sub(b'0'),
                _ => 0,
            })
            .collect();
        // A device frame has the layout of a server reply with content.
        Some(with_content(false, LOGIN, &bcd, serial).to_vec())
    }
    fn packet(&self, _n: u64, fixes: &[Fix], serial: u16) -> Vec<u8> {
        let Some(f) = fixes.first() else {
            return Vec::new();
        };
        let mut c = time(f.fix_ms).to_vec();
        c.push(0xc9); // GPS info length 12, 9 satellites
        c.extend_from_slice(&units(f.lat).to_be_bytes());
        c.extend_from_slice(&units(f.lon).to_be_bytes());
        c.push(u8::try_from(f.speed_kmh).unwrap_or(u8::MAX));
        let mut flags = (f.course % 360) | 1 << 12; // valid fix
        if f.lat >= 0.0 {
            flags |= 1 << 10;
        }
        if f.lon < 0.0 {
            flags |= 1 << 11;
        }
        c.extend_from_slice(&flags.to_be_bytes());
        // LBS: MCC 262, MNC 1, LAC, cell id (3 bytes).
        c.extend_from_slice(&[0x01, 0x06, 0x01, 0x12, 0x34, 0x00, 0x56, 0x78]);
        with_content(false, GPS_LBS_1, &c, serial).to_vec()
    }
    fn next_reply(&self, buf: &mut BytesMut, _stage: Stage) -> Result<Option<BytesMut>, BadReply> {
        let (Some(start), Some(&l)) = (buf.get(..2), buf.get(2)) else {
            return Ok(None);
        };
        let total = if start == START_SHORT {
            usize::from(l).saturating_add(5)
        } else if start == START_LONG {
            let Some(&l2) = buf.get(3) else {
                return Ok(None);
            };
            usize::from(u16::from_be_bytes([l, l2])).saturating_add(6)
        } else {
            return Err(BadReply(format!("starts {start:02x?}, not 78 78 / 79 79")));
        };
        Ok(take(buf, total))
    }
    fn answer(&self, reply: &[u8], stage: Stage, serial: u16, _sent: usize) -> Answer {
        // The echo: 78 78 len | protocol | serial | CRC | 0D 0A (79 79 with
        // a two-byte length); the CRC covers length .. serial.
        let want = if stage == Stage::Login {
            LOGIN
        } else {
            GPS_LBS_1
        };
        let proto_at = if reply.starts_with(&START_LONG) { 4 } else { 3 };
        let n = reply.len();
        let (Some(&p), Some(s), Some(crc), Some(covered)) = (
            reply.get(proto_at),
            reply.get(n.saturating_sub(6)..n.saturating_sub(4)),
            reply.get(n.saturating_sub(4)..n.saturating_sub(2)),
            reply.get(2..n.saturating_sub(4)),
        ) else {
            return Answer::Unrelated;
        };
        let intact = crc == crc16_x25(covered).to_be_bytes() && reply.ends_with(&END);
        if intact && p == want && s == serial.to_be_bytes() {
            Answer::Accepted
        } else {
            Answer::Unrelated
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::protocols::gt06::reply;

    /// Echoes in both framings are read by serial and CRC; a damaged one is
    /// not taken for an ack.
    #[test]
    fn echoes_are_checked_in_both_framings() {
        for extended in [false, true] {
            let echo = reply::ack(extended, GPS_LBS_1, 0x0102);
            let mut buf = BytesMut::from(&echo[..]);
            buf.extend_from_slice(&echo);
            let r = Device.next_reply(&mut buf, Stage::Packet).unwrap().unwrap();
            assert_eq!(r.len(), echo.len(), "extended {extended}");
            assert_eq!(
                Device.answer(&r, Stage::Packet, 0x0102, 1),
                Answer::Accepted
            );
            assert_eq!(
                Device.answer(&r, Stage::Packet, 0x0103, 1),
                Answer::Unrelated
            );
            assert_eq!(
                Device.answer(&r, Stage::Login, 0x0102, 1),
                Answer::Unrelated
            );
            let mut damaged = r.to_vec();
            let crc_at = damaged.len() - 4;
            damaged[crc_at] ^= 0xff;
            assert_eq!(
                Device.answer(&damaged, Stage::Packet, 0x0102, 1),
                Answer::Unrelated
            );
            assert!(Device
                .next_reply(&mut buf, Stage::Packet)
                .unwrap()
                .is_some());
            assert!(buf.is_empty());
        }
        let mut garbage = BytesMut::from(&b"hello"[..]);
        assert!(Device.next_reply(&mut garbage, Stage::Packet).is_err());
    }
}
