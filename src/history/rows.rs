//! A position as stored: plain columns plus the attributes as JSON text
//! (their shown form, named twins included, so a read needs no decoder).

use chrono::{DateTime, Utc};

use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position, Report};

/// One history row as read back (appends travel as [`super::Encoded`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub device_id: String,
    pub fix_ms: i64,
    pub received_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub altitude_m: f64,
    pub speed_kmh: f64,
    pub course_deg: f64,
    pub satellites: Option<i64>,
    pub valid: bool,
    pub protocol: String,
    pub attributes: String,
}

impl StoredRow {
    /// Whether this row is a report (a record without a fix), stored
    /// without a latitude (see [`super::Encoded::records`]).
    pub fn is_report(&self) -> bool {
        self.lat.is_nan()
    }

    /// Back to a report and when it was received; `None` for a position or
    /// a row whose device id no longer validates.
    pub fn into_report(self) -> Option<(Report, DateTime<Utc>)> {
        if !self.is_report() {
            return None;
        }
        let report = Report {
            device_id: DeviceId::new(&self.device_id).ok()?,
            time: DateTime::<Utc>::from_timestamp_millis(self.fix_ms)?,
            protocol: protocol_name(&self.protocol),
            attributes: attributes(&self.attributes),
        };
        Some((
            report,
            DateTime::<Utc>::from_timestamp_millis(self.received_ms)?,
        ))
    }

    /// Back to a position; `None` for a report or a row whose device id no
    /// longer validates (never written by this version).
    pub fn into_position(self) -> Option<Position> {
        if self.is_report() {
            return None;
        }
        Some(Position {
            device_id: DeviceId::new(&self.device_id).ok()?,
            fix_time: DateTime::<Utc>::from_timestamp_millis(self.fix_ms)?,
            received_time: DateTime::<Utc>::from_timestamp_millis(self.received_ms)?,
            lat: self.lat,
            lon: self.lon,
            altitude_m: self.altitude_m,
            speed_kmh: self.speed_kmh,
            course_deg: self.course_deg,
            satellites: self.satellites.and_then(|s| u8::try_from(s).ok()),
            valid: self.valid,
            protocol: protocol_name(&self.protocol),
            attributes: attributes(&self.attributes),
        })
    }
}

/// The `&'static` name for a stored protocol label: registered protocols,
/// the push channels, or `"unknown"` for a label this version does not know.
pub fn protocol_name(s: &str) -> &'static str {
    const PUSH: &[&str] = &["http", "mqtt-json", "mqtt-owntracks", "mqtt-teltonika"];
    crate::protocol::registry()
        .iter()
        .map(|p| p.name())
        .chain(PUSH.iter().copied())
        .find(|n| *n == s)
        .unwrap_or("unknown")
}

fn attributes(json: &str) -> Attributes {
    let mut out = Attributes::new();
    if json.is_empty() {
        return out;
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(json) else {
        return out;
    };
    for (k, v) in map {
        let value = match v {
            serde_json::Value::Bool(b) => AttrValue::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => AttrValue::Int(i),
                None => match n.as_u64() {
                    Some(u) => AttrValue::UInt(u),
                    None => AttrValue::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
            },
            serde_json::Value::String(s) => AttrValue::Text(s),
            other => AttrValue::Text(other.to_string()),
        };
        out.push(AttrKey::Named(std::borrow::Cow::Owned(k)), value);
    }
    out
}

/// A plain row of `device` for tests: fix time and latitude vary, the rest
/// is fixed (received 1 ms after the fix).
#[cfg(test)]
pub(super) fn test_row(device: &str, fix_ms: i64, lat: f64) -> StoredRow {
    StoredRow {
        device_id: device.into(),
        fix_ms,
        received_ms: fix_ms + 1,
        lat,
        lon: 10.0,
        altitude_m: 1.0,
        speed_kmh: 2.0,
        course_deg: 3.0,
        satellites: Some(7),
        valid: true,
        protocol: "teltonika".into(),
        attributes: String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_position_survives_the_row_round_trip() {
        let mut attributes = Attributes::new();
        attributes.push(AttrKey::Io(239), AttrValue::Int(1));
        attributes.push(AttrKey::Io(78), AttrValue::UInt(u64::MAX));
        attributes.push(AttrKey::named("power_v"), AttrValue::Float(12.5));
        attributes.push(AttrKey::named("driver"), AttrValue::Text("A".into()));
        let p = Position {
            device_id: DeviceId::new("356307042441013").unwrap(),
            fix_time: Utc.timestamp_millis_opt(1_764_158_400_123).unwrap(),
            received_time: Utc.timestamp_millis_opt(1_764_158_401_000).unwrap(),
            lat: 54.123_456_7,
            lon: -25.5,
            altitude_m: 120.0,
            speed_kmh: 63.0,
            course_deg: 270.0,
            satellites: Some(9),
            valid: true,
            protocol: "teltonika",
            attributes,
        };
        let encoded = super::super::Encoded::positions(std::slice::from_ref(&p));
        let rows = encoded.refs().unwrap();
        assert_eq!(rows.len(), 1);
        let back = rows[0].to_row().into_position().unwrap();
        assert_eq!(back.device_id, p.device_id);
        assert_eq!(
            (back.fix_time, back.received_time),
            (p.fix_time, p.received_time)
        );
        assert_eq!(
            (
                back.lat,
                back.lon,
                back.altitude_m,
                back.speed_kmh,
                back.course_deg
            ),
            (p.lat, p.lon, 120.0, 63.0, 270.0)
        );
        assert_eq!(
            (back.satellites, back.valid, back.protocol),
            (Some(9), true, "teltonika")
        );
        assert_eq!(back.attributes.get("io239"), Some(&AttrValue::Int(1)));
        assert_eq!(
            back.attributes.get("io78"),
            Some(&AttrValue::UInt(u64::MAX)),
            "an 8-byte raw value above i64::MAX stays unsigned"
        );
        assert_eq!(
            back.attributes.get("power_v"),
            Some(&AttrValue::Float(12.5))
        );
        assert_eq!(
            back.attributes.get("driver"),
            Some(&AttrValue::Text("A".into()))
        );
        assert_eq!(protocol_name("mqtt-json"), "mqtt-json");
        assert_eq!(protocol_name("nonsense"), "unknown");
    }

    #[test]
    fn a_report_is_a_row_without_latitude_keyed_by_its_content() {
        let report = |v: i64| {
            let mut attributes = Attributes::new();
            attributes.push(AttrKey::named("a"), AttrValue::Int(v));
            Report {
                device_id: DeviceId::new("356307042441013").unwrap(),
                time: Utc.timestamp_millis_opt(1_764_158_400_000).unwrap(),
                protocol: "gt06",
                attributes,
            }
        };
        let sent = [report(1), report(2), report(1)];
        let encoded = super::super::Encoded::records(&[], &sent, 1_764_158_401_000);
        let rows: Vec<StoredRow> = encoded
            .refs()
            .unwrap()
            .into_iter()
            .map(|r| r.to_row())
            .collect();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(StoredRow::is_report));
        assert_eq!(
            rows[0].lon.to_bits(),
            rows[2].lon.to_bits(),
            "a resend keys alike"
        );
        assert_ne!(
            rows[0].lon, rows[1].lon,
            "another report of the same ms does not"
        );
        assert!(rows[0].lon.is_finite() && rows[0].lon.fract() == 0.0);
        assert_eq!(rows[0].clone().into_position(), None, "never a position");
        let (back, received) = rows[0].clone().into_report().unwrap();
        assert_eq!(back, sent[0]);
        assert_eq!(received.timestamp_millis(), 1_764_158_401_000);
    }
}
