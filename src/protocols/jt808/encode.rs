//! A small JT/T 808 encoder for tests: messages in the 2013 and 2019 header
//! forms, escaped, and 0x0200 location bodies.

// Test-only encoder: sizes are tiny and a panic is a failed test.
#![allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use chrono::{DateTime, Utc};

use super::device::bcd;
pub(crate) use super::device::message;
use crate::protocol::device::utc_fields;

/// The fields of a 0x0200 body we generate.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    pub alarm: u32,
    pub ignition: bool,
    pub valid: bool,
    /// Micro-degrees, signed: the sign goes to the status bits.
    pub lat_e6: i32,
    pub lon_e6: i32,
    pub altitude_m: i16,
    /// 0.1 km/h.
    pub speed: u16,
    pub course: u16,
    pub time: DateTime<Utc>,
    pub odometer_100m: Option<u32>,
    pub satellites: Option<u8>,
}

/// The body of a 0x0200 message (time written in UTC).
pub(crate) fn location_body(l: &Location) -> Vec<u8> {
    let mut status = 0u32;
    if l.ignition {
        status |= 1;
    }
    if l.valid {
        status |= 2;
    }
    if l.lat_e6 < 0 {
        status |= 4;
    }
    if l.lon_e6 < 0 {
        status |= 8;
    }
    let mut b = l.alarm.to_be_bytes().to_vec();
    b.extend_from_slice(&status.to_be_bytes());
    b.extend_from_slice(&l.lat_e6.unsigned_abs().to_be_bytes());
    b.extend_from_slice(&l.lon_e6.unsigned_abs().to_be_bytes());
    b.extend_from_slice(&l.altitude_m.to_be_bytes());
    b.extend_from_slice(&l.speed.to_be_bytes());
    b.extend_from_slice(&l.course.to_be_bytes());
    b.extend_from_slice(&utc_fields(l.time.timestamp_millis()).map(bcd));
    if let Some(o) = l.odometer_100m {
        b.extend_from_slice(&[0x01, 4]);
        b.extend_from_slice(&o.to_be_bytes());
    }
    if let Some(s) = l.satellites {
        b.extend_from_slice(&[0x31, 1, s]);
    }
    b
}
