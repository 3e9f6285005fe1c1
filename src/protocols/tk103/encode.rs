//! A small device-side encoder for tests: the fixed-width BR00 position
//! report a TK103 device sends for one fix.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(clippy::panic, clippy::arithmetic_side_effects)]

use chrono::{Datelike, NaiveDateTime, Timelike};

/// One fix. Coordinates are whole degrees plus minutes ×10⁴.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fix {
    /// 12 digits.
    pub id: u64,
    pub time: NaiveDateTime,
    pub lat_deg: u8,
    pub lat_min_e4: u32,
    pub south: bool,
    pub lon_deg: u8,
    pub lon_min_e4: u32,
    pub west: bool,
    pub valid: bool,
    /// km/h ×10, 0..=9999.
    pub speed_e1: u16,
    /// degrees ×100, 0..=36000.
    pub course_e2: u32,
    pub ignition: bool,
    pub odometer: u32,
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
}

/// `(<id>BR00yymmddA DDMM.MMMMN DDDMM.MMMME speed(5) hhmmss course(6) io L odometer)`
pub(super) fn br00(f: &Fix) -> Vec<u8> {
    let t = f.time;
    let min = |m: u32| format!("{:02}.{:04}", m / 10_000, m % 10_000);
    let speed = format!("{:05.1}", f64::from(f.speed_e1) / 10.0);
    let course = format!("{:06.2}", f64::from(f.course_e2) / 100.0);
    format!(
        "({:012}BR00{:02}{:02}{:02}{}{:02}{}{}{:03}{}{}{}{:02}{:02}{:02}{}0{}000000L{:08X})",
        f.id,
        t.year() % 100,
        t.month(),
        t.day(),
        if f.valid { "A" } else { "V" },
        f.lat_deg,
        min(f.lat_min_e4),
        if f.south { "S" } else { "N" },
        f.lon_deg,
        min(f.lon_min_e4),
        if f.west { "W" } else { "E" },
        speed,
        t.hour(),
        t.minute(),
        t.second(),
        course,
        u8::from(f.ignition),
        f.odometer,
    )
    .into_bytes()
}
