//! A small Ruptela encoder for tests: packets and record data.

// Test-only encoder: sizes are tiny and a panic is a failed test.
#![allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use crate::protocol::checksum::crc16_kermit;

/// One record as we generate it.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub time: u32,
    pub lon: i32,
    pub lat: i32,
    pub altitude: u16,
    pub course: u16,
    pub satellites: u8,
    pub speed: u16,
    pub hdop: u8,
    pub event: u16,
    /// IO elements of 1, 2, 4 and 8 bytes.
    pub io: [Vec<(u16, u64)>; 4],
}

/// `len | IMEI | command | data | CRC`.
pub(crate) fn packet(imei: u64, command: u8, data: &[u8]) -> Vec<u8> {
    let mut payload = imei.to_be_bytes().to_vec();
    payload.push(command);
    payload.extend_from_slice(data);
    let mut out = (payload.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&payload);
    out.extend_from_slice(&crc16_kermit(&payload).to_be_bytes());
    out
}

/// The data of a records packet (command 1, or 68 when `extended`).
pub(crate) fn records(records: &[Record], extended: bool) -> Vec<u8> {
    let mut d = vec![0, records.len() as u8];
    for r in records {
        d.extend_from_slice(&r.time.to_be_bytes());
        d.push(0);
        if extended {
            d.push(0);
        }
        d.push(0);
        d.extend_from_slice(&r.lon.to_be_bytes());
        d.extend_from_slice(&r.lat.to_be_bytes());
        d.extend_from_slice(&r.altitude.to_be_bytes());
        d.extend_from_slice(&r.course.to_be_bytes());
        d.push(r.satellites);
        d.extend_from_slice(&r.speed.to_be_bytes());
        d.push(r.hdop);
        if extended {
            d.extend_from_slice(&r.event.to_be_bytes());
        } else {
            d.push(r.event as u8);
        }
        for (group, width) in r.io.iter().zip([1usize, 2, 4, 8]) {
            d.push(group.len() as u8);
            for &(id, v) in group {
                if extended {
                    d.extend_from_slice(&id.to_be_bytes());
                } else {
                    d.push(id as u8);
                }
                d.extend_from_slice(&v.to_be_bytes()[8 - width..]);
            }
        }
    }
    d
}
