//! The device side, for `trackgate simulate`: an FM-Eco/Pro that sends
//! records packets (command 1), each naming its IMEI, with no login. The
//! server answers `64 01` (delete them) or `64 00` (send them again).

use bytes::BytesMut;

use super::records::RECORDS;
use super::reply::{ACCEPT, REFUSE};
use crate::protocol::checksum::crc16_kermit;
use crate::protocol::device::{
    e7, quantized, take, whole_seconds, Answer, BadReply, DeviceSide, Fix, Stage,
};

/// Ruptela's device side.
pub struct Device;

/// The records ack's command: 100 + 0.
const RECORDS_ACK: u8 = 100;

impl DeviceSide for Device {
    fn max_records(&self) -> usize {
        255
    }
    fn time_step_ms(&self) -> i64 {
        1000
    }
    fn quantize(&self, fix: Fix) -> Fix {
        Fix {
            fix_ms: whole_seconds(fix.fix_ms),
            lat: quantized(fix.lat, 1e7),
            lon: quantized(fix.lon, 1e7),
            ..fix
        }
    }
    fn login(&self, _n: u64, _serial: u16) -> Option<Vec<u8>> {
        None
    }
    fn packet(&self, n: u64, fixes: &[Fix], _serial: u16) -> Vec<u8> {
        let count = u8::try_from(fixes.len()).unwrap_or(u8::MAX);
        let mut payload = n.to_be_bytes().to_vec();
        payload.push(RECORDS);
        payload.extend_from_slice(&[0, count]); // records left in the device, records here
        for f in fixes.iter().take(usize::from(count)) {
            let secs = u32::try_from(f.fix_ms.div_euclid(1000)).unwrap_or(0);
            payload.extend_from_slice(&secs.to_be_bytes());
            payload.extend_from_slice(&[0, 0]); // time extension, priority
            payload.extend_from_slice(&e7(f.lon).to_be_bytes());
            payload.extend_from_slice(&e7(f.lat).to_be_bytes());
            payload.extend_from_slice(&1200u16.to_be_bytes()); // altitude, 0.1 m
            let course = u16::try_from(u32::from(f.course % 360).saturating_mul(100)).unwrap_or(0);
            payload.extend_from_slice(&course.to_be_bytes()); // 0.01°
            payload.push(9); // satellites
            payload.extend_from_slice(&f.speed_kmh.to_be_bytes());
            payload.push(9); // HDOP ×10
            payload.push(0); // event
            payload.extend_from_slice(&[0, 0, 0, 0]); // no IO of 1, 2, 4, 8 bytes
        }
        let mut out = u16::try_from(payload.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(&payload);
        out.extend_from_slice(&crc16_kermit(&payload).to_be_bytes());
        out
    }
    fn next_reply(&self, buf: &mut BytesMut, _stage: Stage) -> Result<Option<BytesMut>, BadReply> {
        // u16 length | command .. data | CRC.
        let (Some(&h), Some(&l)) = (buf.first(), buf.get(1)) else {
            return Ok(None);
        };
        let total = usize::from(u16::from_be_bytes([h, l])).saturating_add(4);
        Ok(take(buf, total))
    }
    fn answer(&self, reply: &[u8], _stage: Stage, _serial: u16, _sent: usize) -> Answer {
        let content = reply.get(2..4).unwrap_or_default();
        let crc = reply.get(4..6).unwrap_or_default();
        if crc != crc16_kermit(content).to_be_bytes() {
            return Answer::Unrelated;
        }
        match content {
            [RECORDS_ACK, ACCEPT] => Answer::Accepted,
            [RECORDS_ACK, REFUSE] => Answer::Refused,
            _ => Answer::Unrelated,
        }
    }
}
