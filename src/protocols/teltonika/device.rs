//! The device side, for `trackgate simulate`: an FMB sending codec 8 AVL
//! packets over TCP after its IMEI login. A record leaves the device only
//! when the server's count covers it; `00` at login or a short count means
//! keep everything and try again.

use bytes::BytesMut;

use crate::protocol::device::{e7, quantized, take, Answer, BadReply, DeviceSide, Fix, Stage};

/// Teltonika's device side.
pub struct Device;

/// A codec 8 TCP AVL packet carrying `records` (fix ms, lat, lon, speed
/// km/h, course °); at most 255 of them.
pub fn codec8_packet(records: &[(i64, f64, f64, u16, u16)]) -> Vec<u8> {
    let n = u8::try_from(records.len()).unwrap_or(u8::MAX);
    let mut data = vec![0x08, n];
    for &(ts, lat, lon, speed, course) in records.iter().take(usize::from(n)) {
        data.extend_from_slice(&ts.to_be_bytes());
        data.push(0); // priority
        data.extend_from_slice(&e7(lon).to_be_bytes());
        data.extend_from_slice(&e7(lat).to_be_bytes());
        data.extend_from_slice(&120i16.to_be_bytes()); // altitude
        data.extend_from_slice(&course.to_be_bytes());
        data.push(9); // satellites
        data.extend_from_slice(&speed.to_be_bytes());
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // event id, IO count, no IO
    }
    data.push(n);
    let mut out = vec![0, 0, 0, 0];
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    let crc = u32::from(crate::protocol::checksum::crc16_ibm(&data));
    out.extend_from_slice(&data);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The IMEI login packet.
pub fn login_packet(imei: u64) -> Vec<u8> {
    let s = format!("{imei:015}");
    let mut v = u16::try_from(s.len()).unwrap_or(0).to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

impl DeviceSide for Device {
    fn max_records(&self) -> usize {
        255
    }
    fn time_step_ms(&self) -> i64 {
        1
    }
    fn quantize(&self, fix: Fix) -> Fix {
        Fix {
            lat: quantized(fix.lat, 1e7),
            lon: quantized(fix.lon, 1e7),
            ..fix
        }
    }
    fn login(&self, n: u64, _serial: u16) -> Option<Vec<u8>> {
        Some(login_packet(n))
    }
    fn packet(&self, _n: u64, fixes: &[Fix], _serial: u16) -> Vec<u8> {
        let recs: Vec<_> = fixes
            .iter()
            .map(|f| (f.fix_ms, f.lat, f.lon, f.speed_kmh, f.course))
            .collect();
        codec8_packet(&recs)
    }
    fn next_reply(&self, buf: &mut BytesMut, stage: Stage) -> Result<Option<BytesMut>, BadReply> {
        // `01`/`00` after the login, the accepted count (u32) after a packet.
        Ok(take(buf, if stage == Stage::Login { 1 } else { 4 }))
    }
    fn answer(&self, reply: &[u8], stage: Stage, _serial: u16, sent: usize) -> Answer {
        let accepted = match stage {
            Stage::Login => reply == [1],
            Stage::Packet => <[u8; 4]>::try_from(reply)
                .is_ok_and(|c| usize::try_from(u32::from_be_bytes(c)) == Ok(sent)),
        };
        if accepted {
            Answer::Accepted
        } else {
            Answer::Refused
        }
    }
}
