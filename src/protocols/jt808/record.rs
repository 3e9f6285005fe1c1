//! What one decoded record collects before it becomes a `Position` or a
//! `Report`: attributes under our names, alarms (joined with `,` in the
//! order found, as one `alarm` attribute), satellites, cell towers and
//! Wi-Fi access points (JSON lists under `cells` / `wifi`).

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};

use super::read::bcd;
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position, Report};

/// Facts every record of one message shares.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub device: &'a DeviceId,
    pub time_zone: FixedOffset,
    pub model: Option<&'a str>,
    pub received: DateTime<Utc>,
}

impl Ctx<'_> {
    /// Whether the configured model is one of `names`.
    pub fn model_in(&self, names: &[&str]) -> bool {
        self.model
            .is_some_and(|m| names.iter().any(|n| m.eq_ignore_ascii_case(n)))
    }

    /// A BCD `yyMMddHHmmss` time in the configured zone; `None` when the
    /// digits are not a date.
    pub fn bcd_time(&self, b: &[u8]) -> Option<DateTime<Utc>> {
        let [y, mo, d, h, mi, s] = <[u8; 6]>::try_from(b).ok()?;
        let year = i32::try_from(bcd(y)?).ok()?.checked_add(2000)?;
        let naive = NaiveDate::from_ymd_opt(year, bcd(mo)?, bcd(d)?)?.and_hms_opt(
            bcd(h)?,
            bcd(mi)?,
            bcd(s)?,
        )?;
        let local = self.time_zone.from_local_datetime(&naive).single()?;
        Some(local.with_timezone(&Utc))
    }
}

/// Attributes and friends of one record.
#[derive(Debug, Default)]
pub(super) struct Rec {
    attrs: Attributes,
    alarms: Vec<&'static str>,
    pub satellites: Option<u8>,
    cells: Vec<String>,
    wifi: Vec<String>,
}

impl Rec {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, key: &'static str, value: AttrValue) {
        self.attrs.set(AttrKey::named(key), value);
    }

    pub fn int(&mut self, key: &'static str, v: impl Into<i64>) {
        self.set(key, AttrValue::Int(v.into()));
    }

    pub fn float(&mut self, key: &'static str, v: f64) {
        self.set(key, AttrValue::Float(v));
    }

    pub fn flag(&mut self, key: &'static str, v: bool) {
        self.set(key, AttrValue::Bool(v));
    }

    pub fn text(&mut self, key: &'static str, v: impl Into<String>) {
        self.set(key, AttrValue::Text(v.into()));
    }

    /// A numbered key (`lock2_battery_v`, `tag1_mac`, …).
    pub fn numbered(
        &mut self,
        prefix: &str,
        n: impl std::fmt::Display,
        suffix: &str,
        v: AttrValue,
    ) {
        self.attrs.set(
            AttrKey::Named(Cow::Owned(format!("{prefix}{n}{suffix}"))),
            v,
        );
    }

    pub fn alarm(&mut self, alarm: &'static str) {
        if !self.alarms.contains(&alarm) {
            self.alarms.push(alarm);
        }
    }

    pub fn alarm_if(&mut self, cond: bool, alarm: &'static str) {
        if cond {
            self.alarm(alarm);
        }
    }

    pub fn cell(&mut self, mcc: u32, mnc: u32, lac: u32, cid: u64, rssi: Option<u8>) {
        let mut json = format!(r#"{{"mcc":{mcc},"mnc":{mnc},"lac":{lac},"cid":{cid}"#);
        if let Some(r) = rssi {
            json.push_str(&format!(r#","rssi":{r}"#));
        }
        json.push('}');
        self.cells.push(json);
    }

    pub fn wifi(&mut self, mac: &str, rssi: i64) {
        self.wifi
            .push(format!(r#"{{"mac":"{mac}","rssi":{rssi}}}"#));
    }

    pub fn has_attributes(&self) -> bool {
        !self.attrs.is_empty() || !self.alarms.is_empty()
    }

    /// The attributes, with `alarm`, `cells` and `wifi` added.
    pub fn into_attributes(mut self) -> Attributes {
        if !self.alarms.is_empty() {
            self.attrs.set(
                AttrKey::named("alarm"),
                AttrValue::Text(self.alarms.join(",")),
            );
        }
        for (key, list) in [("cells", &self.cells), ("wifi", &self.wifi)] {
            if !list.is_empty() {
                let json = format!("[{}]", list.join(","));
                self.attrs.set(AttrKey::named(key), AttrValue::Text(json));
            }
        }
        self.attrs
    }

    /// A report (no fix) at `time`.
    pub fn into_report(self, c: &Ctx<'_>, time: Option<DateTime<Utc>>) -> Report {
        Report {
            device_id: c.device.clone(),
            time: time.unwrap_or(c.received),
            protocol: super::NAME,
            attributes: self.into_attributes(),
        }
    }
}

/// The location part of a position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Fix {
    pub time: Option<DateTime<Utc>>,
    pub lat: f64,
    pub lon: f64,
    pub altitude_m: f64,
    pub speed_kmh: f64,
    pub course_deg: f64,
    pub valid: bool,
}

impl Fix {
    /// The position; a fix whose time is not a date gets the receive time
    /// and is marked invalid.
    pub fn into_position(self, c: &Ctx<'_>, rec: Rec) -> Position {
        let satellites = rec.satellites;
        Position {
            device_id: c.device.clone(),
            fix_time: self.time.unwrap_or(c.received),
            received_time: c.received,
            lat: self.lat,
            lon: self.lon,
            altitude_m: self.altitude_m,
            speed_kmh: self.speed_kmh,
            course_deg: self.course_deg,
            satellites,
            valid: self.valid && self.time.is_some(),
            protocol: super::NAME,
            attributes: rec.into_attributes(),
        }
    }
}
