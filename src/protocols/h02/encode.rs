//! A small device-side encoder for tests: the V1 text report and the
//! 32-byte binary record an H02 device sends for one fix.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(clippy::panic, clippy::arithmetic_side_effects, clippy::unwrap_used)]

use chrono::{Datelike, NaiveDateTime, Timelike};

/// One fix as a device fills it in. Coordinates are whole degrees plus
/// minutes ×10⁴, as both encodings carry them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fix {
    /// 10 digits.
    pub id: u64,
    pub time: NaiveDateTime,
    pub lat_deg: u8,
    pub lat_min_e4: u32,
    pub south: bool,
    pub lon_deg: u8,
    pub lon_min_e4: u32,
    pub west: bool,
    pub valid: bool,
    /// Knots; the binary record holds 3 digits.
    pub speed_kn: u16,
    pub course: u16,
    pub status: u32,
    /// Battery byte of the binary record (7–100 reads as a percentage).
    pub battery: u8,
}

impl Fix {
    pub fn lat(&self) -> f64 {
        let v = f64::from(self.lat_deg) + f64::from(self.lat_min_e4) / 10_000.0 / 60.0;
        if self.south {
            -v
        } else {
            v
        }
    }
    pub fn lon(&self) -> f64 {
        let v = f64::from(self.lon_deg) + f64::from(self.lon_min_e4) / 10_000.0 / 60.0;
        if self.west {
            -v
        } else {
            v
        }
    }
    fn hhmmss(&self) -> String {
        let t = self.time;
        format!("{:02}{:02}{:02}", t.hour(), t.minute(), t.second())
    }
    fn ddmmyy(&self) -> String {
        let t = self.time;
        format!("{:02}{:02}{:02}", t.day(), t.month(), t.year() % 100)
    }
}

/// `*HQ,<id>,V1,…#`
pub(super) fn text_v1(f: &Fix) -> Vec<u8> {
    let min = |m: u32| format!("{:02}.{:04}", m / 10_000, m % 10_000);
    format!(
        "*HQ,{:010},V1,{},{},{:02}{},{},{:03}{},{},{}.00,{},{},{:08X}#",
        f.id,
        f.hhmmss(),
        if f.valid { "A" } else { "V" },
        f.lat_deg,
        min(f.lat_min_e4),
        if f.south { "S" } else { "N" },
        f.lon_deg,
        min(f.lon_min_e4),
        if f.west { "W" } else { "E" },
        f.speed_kn,
        f.course,
        f.ddmmyy(),
        f.status,
    )
    .into_bytes()
}

/// The 32-byte `$` record.
pub(super) fn binary(f: &Fix) -> Vec<u8> {
    let flags = u8::from(f.valid) << 1 | u8::from(!f.south) << 2 | u8::from(!f.west) << 3;
    let digits = format!(
        "{:010}{}{}{:02}{:06}{:02x}{:03}{:06}{:x}{:03}{:03}{:08x}ff0024",
        f.id,
        f.hhmmss(),
        f.ddmmyy(),
        f.lat_deg,
        f.lat_min_e4,
        f.battery,
        f.lon_deg,
        f.lon_min_e4,
        flags,
        f.speed_kn,
        f.course,
        f.status,
    );
    let mut out = vec![b'$'];
    out.extend(hex::decode(digits).unwrap());
    assert_eq!(out.len(), 32);
    out
}
