//! A small device-side encoder for tests: the frames a GT06 device sends.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

use crate::protocol::checksum::crc16_x25;

/// One frame: `78 78` when `content` fits a u8 length, else `79 79`.
pub(super) fn frame(long: bool, protocol: u8, content: &[u8], serial: u16) -> Vec<u8> {
    let length = content.len() + 5;
    let mut out = if long {
        let mut v = vec![0x79, 0x79];
        v.extend_from_slice(&(length as u16).to_be_bytes());
        v
    } else {
        assert!(length <= 255, "content too long for 78 78");
        vec![0x78, 0x78, length as u8]
    };
    out.push(protocol);
    out.extend_from_slice(content);
    out.extend_from_slice(&serial.to_be_bytes());
    let crc = crc16_x25(&out[2..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&[0x0d, 0x0a]);
    out
}

/// Login with a 15-digit IMEI, type id and optional time zone word.
pub(super) fn login(imei: &str, tz_word: Option<u16>, serial: u16) -> Vec<u8> {
    let digits = format!("0{imei}");
    let mut content = hex::decode(digits).unwrap();
    if let Some(w) = tz_word {
        content.extend_from_slice(&[0x36, 0x08]);
        content.extend_from_slice(&w.to_be_bytes());
    }
    frame(false, 0x01, &content, serial)
}

/// The fields of a 0x12 GPS+LBS message as a device fills them in.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Gps {
    /// yy MM dd HH mm ss in the device's zone.
    pub time: [u8; 6],
    pub satellites: u8,
    /// 1/30000 minute units.
    pub lat: u32,
    pub lon: u32,
    pub south: bool,
    pub west: bool,
    pub speed: u8,
    pub course: u16,
    pub valid: bool,
    pub mcc: u16,
    pub mnc: u8,
    pub lac: u16,
    pub cid: u32,
}

impl Gps {
    pub(super) fn content(&self) -> Vec<u8> {
        let mut c = self.time.to_vec();
        c.push(0xc0 | (self.satellites & 0x0f));
        c.extend_from_slice(&self.lat.to_be_bytes());
        c.extend_from_slice(&self.lon.to_be_bytes());
        c.push(self.speed);
        let mut flags = self.course & 0x03ff;
        if !self.south {
            flags |= 1 << 10;
        }
        if self.west {
            flags |= 1 << 11;
        }
        if self.valid {
            flags |= 1 << 12;
        }
        c.extend_from_slice(&flags.to_be_bytes());
        c.extend_from_slice(&self.mcc.to_be_bytes());
        c.push(self.mnc);
        c.extend_from_slice(&self.lac.to_be_bytes());
        c.extend_from_slice(&self.cid.to_be_bytes()[1..]);
        c
    }

    pub(super) fn frame(&self, serial: u16) -> Vec<u8> {
        frame(false, 0x12, &self.content(), serial)
    }
}

/// A heartbeat (0x13): terminal info, voltage level, GSM signal, alarm, language.
pub(super) fn heartbeat(info: u8, level: u8, gsm: u8, serial: u16) -> Vec<u8> {
    frame(false, 0x13, &[info, level, gsm, 0x00, 0x02], serial)
}
