//! A small device-side encoder for tests: builds the packets a Teltonika
//! device sends (codec 8, 8E and 16 records, TCP packets, UDP datagrams).

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(clippy::panic, clippy::arithmetic_side_effects)]

use crate::protocol::checksum::crc16_ibm;

pub(super) const C8: u8 = 0x08;
pub(super) const C8E: u8 = 0x8E;
pub(super) const C16: u8 = 0x10;

/// One AVL record as a device fills it in.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Record {
    pub millis: u64,
    pub priority: u8,
    pub lon: i32,
    pub lat: i32,
    pub altitude: i16,
    pub course: u16,
    pub satellites: u8,
    pub speed: u16,
    pub event: u16,
    /// Codec 16 only: why the record was generated.
    pub generation: u8,
    pub io1: Vec<(u16, u8)>,
    pub io2: Vec<(u16, u16)>,
    pub io4: Vec<(u16, u32)>,
    pub io8: Vec<(u16, u64)>,
    /// Codec 8E only.
    pub nx: Vec<(u16, Vec<u8>)>,
}

/// Writes a count or id: two bytes if `wide`, else one.
fn var(out: &mut Vec<u8>, wide: bool, v: u16) {
    if wide {
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(u8::try_from(v).expect("a narrow value fits one byte"));
    }
}

/// IO ids (and the event id) are two bytes in codecs 8E and 16.
fn wide_id(codec: u8) -> bool {
    codec != C8
}

/// Counts are two bytes in codec 8E only.
fn wide_count(codec: u8) -> bool {
    codec == C8E
}

fn group<const N: usize>(out: &mut Vec<u8>, codec: u8, items: &[(u16, [u8; N])]) {
    var(out, wide_count(codec), items.len() as u16);
    for (id, value) in items {
        var(out, wide_id(codec), *id);
        out.extend_from_slice(value);
    }
}

fn record(out: &mut Vec<u8>, codec: u8, r: &Record) {
    out.extend_from_slice(&r.millis.to_be_bytes());
    out.push(r.priority);
    out.extend_from_slice(&r.lon.to_be_bytes());
    out.extend_from_slice(&r.lat.to_be_bytes());
    out.extend_from_slice(&r.altitude.to_be_bytes());
    out.extend_from_slice(&r.course.to_be_bytes());
    out.push(r.satellites);
    out.extend_from_slice(&r.speed.to_be_bytes());
    var(out, wide_id(codec), r.event);
    if codec == C16 {
        out.push(r.generation);
    }
    // Devices count the NX elements in the total too.
    let total = r.io1.len() + r.io2.len() + r.io4.len() + r.io8.len() + r.nx.len();
    var(out, wide_count(codec), total as u16);
    let io1: Vec<_> = r.io1.iter().map(|(id, v)| (*id, v.to_be_bytes())).collect();
    let io2: Vec<_> = r.io2.iter().map(|(id, v)| (*id, v.to_be_bytes())).collect();
    let io4: Vec<_> = r.io4.iter().map(|(id, v)| (*id, v.to_be_bytes())).collect();
    let io8: Vec<_> = r.io8.iter().map(|(id, v)| (*id, v.to_be_bytes())).collect();
    group(out, codec, &io1);
    group(out, codec, &io2);
    group(out, codec, &io4);
    group(out, codec, &io8);
    if codec == C8E {
        out.extend_from_slice(&(r.nx.len() as u16).to_be_bytes());
        for (id, bytes) in &r.nx {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

/// A command response's data field: codec 12, or codec 13 with `seconds`
/// (its own timestamp); one record of `kind` holding `payload`.
pub(super) fn response(kind: u8, payload: &[u8], seconds: Option<u32>) -> Vec<u8> {
    let mut out = vec![if seconds.is_some() { 0x0D } else { 0x0C }, 1, kind];
    let size = payload.len() + if seconds.is_some() { 4 } else { 0 };
    out.extend_from_slice(&(size as u32).to_be_bytes());
    if let Some(t) = seconds {
        out.extend_from_slice(&t.to_be_bytes());
    }
    out.extend_from_slice(payload);
    out.push(1);
    out
}

/// The data field: codec, count, records, count.
pub(super) fn data(codec: u8, records: &[Record]) -> Vec<u8> {
    let mut out = vec![codec, records.len() as u8];
    for r in records {
        record(&mut out, codec, r);
    }
    out.push(records.len() as u8);
    out
}

/// A TCP AVL packet around a data field, with its CRC.
pub(super) fn tcp_packet(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0];
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&u32::from(crc16_ibm(data)).to_be_bytes());
    out
}

/// The IMEI packet.
pub(super) fn login(imei: &str) -> Vec<u8> {
    let mut out = (imei.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(imei.as_bytes());
    out
}

/// A UDP datagram around a data field.
pub(super) fn udp_datagram(packet_id: u16, avl_packet_id: u8, imei: &str, data: &[u8]) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    body.push(0x01);
    body.push(avl_packet_id);
    body.extend_from_slice(&login(imei));
    body.extend_from_slice(data);
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}
