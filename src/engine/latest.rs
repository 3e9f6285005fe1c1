//! `Latest`: the compact form a device's latest fix takes in the engine.
//! A `Position` is ~128 bytes; a million of them plus map overhead would
//! not fit the engine's 256-bytes-per-device budget, so the map keeps times
//! as milliseconds, the small measures as `f32`, the protocol as an interned
//! index, and attributes behind an optional box. Stored inline in the map
//! slot next to its key (the device id): an update reads and rewrites one
//! slot, with no separate allocation to follow, allocate or free.

use std::sync::RwLock;

use chrono::{DateTime, Utc};

use crate::model::{Attributes, DeviceId, Position};

/// A device's latest fix, compact.
#[derive(Debug, Clone)]
pub(crate) struct Latest {
    pub fix_ms: i64,
    pub received_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub altitude_m: f32,
    pub speed_kmh: f32,
    pub course_deg: f32,
    /// `u8::MAX`: unknown.
    pub satellites: u8,
    pub valid: bool,
    pub protocol: u8,
    pub attributes: Option<Box<Attributes>>,
}

impl Latest {
    pub fn new(p: Position) -> Self {
        Self {
            fix_ms: p.fix_time.timestamp_millis(),
            received_ms: p.received_time.timestamp_millis(),
            lat: p.lat,
            lon: p.lon,
            altitude_m: p.altitude_m as f32,
            speed_kmh: p.speed_kmh as f32,
            course_deg: p.course_deg as f32,
            satellites: p.satellites.unwrap_or(u8::MAX),
            valid: p.valid,
            protocol: intern(p.protocol),
            attributes: (!p.attributes.is_empty()).then(|| Box::new(p.attributes)),
        }
    }

    /// The full position of `device_id` again (measures rounded to `f32`
    /// precision).
    pub fn to_position(&self, device_id: &DeviceId) -> Position {
        Position {
            device_id: device_id.clone(),
            fix_time: millis(self.fix_ms),
            received_time: millis(self.received_ms),
            lat: self.lat,
            lon: self.lon,
            altitude_m: f64::from(self.altitude_m),
            speed_kmh: f64::from(self.speed_kmh),
            course_deg: f64::from(self.course_deg),
            satellites: (self.satellites != u8::MAX).then_some(self.satellites),
            valid: self.valid,
            protocol: protocol_name(self.protocol),
            attributes: self.attributes.as_deref().cloned().unwrap_or_default(),
        }
    }
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Interned protocol names; a handful in practice, bounded at 255.
static PROTOCOLS: RwLock<Vec<&'static str>> = RwLock::new(Vec::new());

fn intern(name: &'static str) -> u8 {
    if let Ok(names) = PROTOCOLS.read() {
        if let Some(i) = names.iter().position(|n| *n == name) {
            return i as u8;
        }
    }
    let Ok(mut names) = PROTOCOLS.write() else {
        return u8::MAX;
    };
    if let Some(i) = names.iter().position(|n| *n == name) {
        return i as u8;
    }
    if names.len() >= usize::from(u8::MAX) {
        return u8::MAX;
    }
    names.push(name);
    (names.len() - 1) as u8
}

fn protocol_name(i: u8) -> &'static str {
    PROTOCOLS
        .read()
        .ok()
        .and_then(|n| n.get(usize::from(i)).copied())
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttrKey, AttrValue};

    #[test]
    fn round_trip_keeps_every_field() {
        let mut attributes = Attributes::new();
        attributes.push(AttrKey::Io(1), AttrValue::Int(5));
        let p = Position {
            device_id: DeviceId::new("x").unwrap(),
            fix_time: millis(1_700_000_000_123),
            received_time: millis(1_700_000_000_456),
            lat: 54.123_456_7,
            lon: -3.987_654_3,
            altitude_m: 120.0,
            speed_kmh: 63.5,
            course_deg: 271.0,
            satellites: None,
            valid: false,
            protocol: "teltonika",
            attributes,
        };
        assert_eq!(Latest::new(p.clone()).to_position(&p.device_id), p);
        assert!(
            std::mem::size_of::<Latest>() <= 56,
            "{}",
            std::mem::size_of::<Latest>()
        );
    }
}
