//! What one decoded message yields before it becomes a `Position` or a
//! `Report`: an optional fix plus attributes, built the same way by the
//! text and binary decoders.

use chrono::{DateTime, Utc};

use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position, Report};

use super::NAME;

/// A GNSS fix as the device reported it (speed already km/h).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fix {
    pub time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub altitude_m: f64,
    pub speed_kmh: f64,
    pub course_deg: f64,
    pub valid: bool,
}

/// One record: a fix if the device had one, and its attributes.
#[derive(Debug, Clone, Default)]
pub(super) struct Record {
    pub fix: Option<Fix>,
    pub satellites: Option<u8>,
    pub attrs: Attributes,
}

impl Record {
    pub(super) fn set(&mut self, key: &'static str, value: AttrValue) {
        self.attrs.set(AttrKey::named(key), value);
    }
    pub(super) fn int(&mut self, key: &'static str, v: Option<i64>) {
        if let Some(v) = v {
            self.set(key, AttrValue::Int(v));
        }
    }
    pub(super) fn float(&mut self, key: &'static str, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.set(key, AttrValue::Float(v));
        }
    }
    pub(super) fn text(&mut self, key: &'static str, v: &str) {
        if !v.is_empty() {
            self.set(key, AttrValue::Text(v.to_string()));
        }
    }
    pub(super) fn flag(&mut self, key: &'static str, v: bool) {
        self.set(key, AttrValue::Bool(v));
    }
    pub(super) fn has(&self, key: &str) -> bool {
        self.attrs.get(key).is_some()
    }
}

/// Where a record without a fix goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoFix {
    /// A position report whose GNSS block was empty: a `Position` marked
    /// `valid = false`, `outdated = true` at the session's last fix, or a
    /// `Report` when the session has none (see the doc).
    OutdatedPosition,
    /// Anything else: a `Report`.
    Report,
}

/// Positions and reports of one message.
#[derive(Debug, Default)]
pub(super) struct Output {
    pub positions: Vec<Position>,
    pub reports: Vec<Report>,
}

/// The last fix a session saw, reused for records without one.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LastFix {
    pub lat: f64,
    pub lon: f64,
    pub altitude_m: f64,
}

impl Output {
    /// Adds `r`: a position when it has a fix, else per `no_fix`.
    pub(super) fn push(
        &mut self,
        device: &DeviceId,
        mut r: Record,
        time: DateTime<Utc>,
        received: DateTime<Utc>,
        no_fix: NoFix,
        last: &mut Option<LastFix>,
    ) {
        match r.fix {
            Some(f) => {
                *last = Some(LastFix {
                    lat: f.lat,
                    lon: f.lon,
                    altitude_m: f.altitude_m,
                });
                self.positions.push(Position {
                    device_id: device.clone(),
                    fix_time: f.time,
                    received_time: received,
                    lat: f.lat,
                    lon: f.lon,
                    altitude_m: f.altitude_m,
                    speed_kmh: f.speed_kmh,
                    course_deg: f.course_deg,
                    satellites: r.satellites,
                    valid: f.valid,
                    protocol: NAME,
                    attributes: r.attrs,
                });
            }
            // Never a position at 0,0: without an earlier fix in this session
            // the record is a report.
            None if no_fix == NoFix::OutdatedPosition && last.is_some() => {
                let at = last.unwrap_or_default();
                r.flag("outdated", true);
                self.positions.push(Position {
                    device_id: device.clone(),
                    fix_time: time,
                    received_time: received,
                    lat: at.lat,
                    lon: at.lon,
                    altitude_m: at.altitude_m,
                    speed_kmh: 0.0,
                    course_deg: 0.0,
                    satellites: r.satellites,
                    valid: false,
                    protocol: NAME,
                    attributes: r.attrs,
                });
            }
            None => self.reports.push(Report {
                device_id: device.clone(),
                time,
                protocol: NAME,
                attributes: r.attrs,
            }),
        }
    }
}
