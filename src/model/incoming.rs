//! A position pushed to trackgate in its public JSON form (HTTP ingest, the
//! MQTT `json` format). Every value is checked before it becomes a
//! [`Position`]: pushed data is as untrusted as device bytes.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{AttrKey, AttrValue, Attributes, DeviceId, Position};

/// Most attributes one pushed position may carry.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest attribute name or text value, in bytes.
pub const MAX_ATTRIBUTE_BYTES: usize = 256;

/// The public JSON form as received; `device_id` may come from elsewhere
/// (an MQTT topic), and `received_time`/`protocol` are ours to set.
#[derive(Debug, Clone, Deserialize)]
pub struct PositionIn {
    pub device_id: Option<String>,
    pub fix_time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub altitude_m: f64,
    #[serde(default)]
    pub speed_kmh: f64,
    #[serde(default)]
    pub course_deg: f64,
    #[serde(default)]
    pub satellites: Option<u8>,
    #[serde(default = "yes")]
    pub valid: bool,
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}

/// Why a pushed position was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidPosition {
    #[error("device_id is missing")]
    NoDevice,
    #[error("device_id: {0}")]
    Device(#[from] super::DeviceIdError),
    #[error("lat/lon {0},{1} outside WGS84 range")]
    Coordinates(f64, f64),
    #[error("{field} = {value} is outside {range}")]
    Range {
        field: &'static str,
        value: f64,
        range: &'static str,
    },
    #[error("fix_time {0} is more than 25 hours ahead of receipt")]
    Future(DateTime<Utc>),
    #[error("attributes: more than {MAX_ATTRIBUTES} entries")]
    TooManyAttributes,
    #[error("attribute {0:?}: name or value longer than {MAX_ATTRIBUTE_BYTES} bytes")]
    AttributeTooLong(String),
}

impl PositionIn {
    /// Checks every field and builds the position. `device` overrides the
    /// body's `device_id` (MQTT topic rule).
    pub fn into_position(
        self,
        device: Option<DeviceId>,
        protocol: &'static str,
        received: DateTime<Utc>,
    ) -> Result<Position, InvalidPosition> {
        let device_id = match device {
            Some(d) => d,
            None => DeviceId::new(self.device_id.as_deref().ok_or(InvalidPosition::NoDevice)?)?,
        };
        if !Position::valid_coordinates(self.lat, self.lon) {
            return Err(InvalidPosition::Coordinates(self.lat, self.lon));
        }
        range(
            "altitude_m",
            self.altitude_m,
            -12_262.0,
            18_000.0,
            "-12262..=18000",
        )?;
        range("speed_kmh", self.speed_kmh, 0.0, 2_000.0, "0..=2000")?;
        range("course_deg", self.course_deg, 0.0, 360.0, "0..=360")?;
        if self.fix_time > received + chrono::Duration::milliseconds(super::MAX_FIX_AHEAD_MS) {
            return Err(InvalidPosition::Future(self.fix_time));
        }
        Ok(Position {
            device_id,
            fix_time: self.fix_time,
            received_time: received,
            lat: self.lat,
            lon: self.lon,
            altitude_m: self.altitude_m,
            speed_kmh: self.speed_kmh,
            course_deg: self.course_deg,
            satellites: self.satellites,
            valid: self.valid,
            protocol,
            attributes: attributes(self.attributes)?,
        })
    }
}

fn range(
    field: &'static str,
    value: f64,
    lo: f64,
    hi: f64,
    text: &'static str,
) -> Result<(), InvalidPosition> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(InvalidPosition::Range {
            field,
            value,
            range: text,
        })
    }
}

/// JSON attributes → typed ones; nested values are kept as JSON text.
pub fn attributes(
    map: serde_json::Map<String, serde_json::Value>,
) -> Result<Attributes, InvalidPosition> {
    use serde_json::Value;
    if map.len() > MAX_ATTRIBUTES {
        return Err(InvalidPosition::TooManyAttributes);
    }
    let mut out = Attributes::with_capacity(map.len());
    for (k, v) in map {
        let value = match v {
            Value::Null => continue,
            Value::Bool(b) => AttrValue::Bool(b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => AttrValue::Int(i),
                None => match n.as_u64() {
                    Some(u) => AttrValue::UInt(u),
                    None => AttrValue::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
            },
            Value::String(s) => AttrValue::Text(s),
            nested => AttrValue::Text(nested.to_string()),
        };
        let too_long = matches!(&value, AttrValue::Text(s) if s.len() > MAX_ATTRIBUTE_BYTES);
        if k.len() > MAX_ATTRIBUTE_BYTES || k.is_empty() || too_long {
            return Err(InvalidPosition::AttributeTooLong(
                k.chars().take(40).collect(),
            ));
        }
        out.push(AttrKey::Named(Cow::Owned(k)), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(s: &str) -> PositionIn {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn a_full_position_round_trips_its_values() {
        let now = Utc::now();
        let p = parse(r#"{"device_id":"truck-1","fix_time":"2026-01-02T03:04:05.678Z","lat":52.5,"lon":13.4,"altitude_m":34.5,"speed_kmh":88.0,"course_deg":271.0,"satellites":9,"valid":true,"attributes":{"ignition":true,"fuel_l":41.5,"odometer_m":123456,"driver":"A. B.","tags":[1,2]}}"#)
            .into_position(None, "http", now)
            .unwrap();
        assert_eq!(p.device_id.as_str(), "truck-1");
        assert_eq!(p.fix_time.to_rfc3339(), "2026-01-02T03:04:05.678+00:00");
        assert_eq!(
            (p.lat, p.lon, p.altitude_m, p.speed_kmh, p.course_deg),
            (52.5, 13.4, 34.5, 88.0, 271.0)
        );
        assert_eq!(p.satellites, Some(9));
        assert_eq!(p.attributes.get("ignition"), Some(&AttrValue::Bool(true)));
        assert_eq!(p.attributes.get("fuel_l"), Some(&AttrValue::Float(41.5)));
        assert_eq!(
            p.attributes.get("odometer_m"),
            Some(&AttrValue::Int(123_456))
        );
        assert_eq!(
            p.attributes.get("tags"),
            Some(&AttrValue::Text("[1,2]".into()))
        );
        assert_eq!(p.received_time, now);
        assert_eq!(p.protocol, "http");
    }

    #[test]
    fn bad_values_are_refused_with_their_reason() {
        let now = Utc::now();
        let base = r#""fix_time":"2026-01-02T03:04:05Z""#;
        let cases = [
            (
                format!(r#"{{{base},"lat":91,"lon":0,"device_id":"a"}}"#),
                "outside WGS84",
            ),
            (
                format!(r#"{{{base},"lat":1,"lon":0}}"#),
                "device_id is missing",
            ),
            (
                format!(r#"{{{base},"lat":1,"lon":0,"device_id":""}}"#),
                "device_id",
            ),
            (
                format!(r#"{{{base},"lat":1,"lon":0,"device_id":"a","speed_kmh":-1}}"#),
                "speed_kmh",
            ),
            (
                format!(r#"{{{base},"lat":1,"lon":0,"device_id":"a","course_deg":400}}"#),
                "course_deg",
            ),
            (
                r#"{"fix_time":"2099-01-01T00:00:00Z","lat":1,"lon":0,"device_id":"a"}"#
                    .to_string(),
                "ahead",
            ),
        ];
        for (json, why) in cases {
            let e = parse(&json)
                .into_position(None, "http", now)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{json}: {e}");
        }
        let many: serde_json::Map<_, _> = (0..65).map(|i| (format!("k{i}"), 1.into())).collect();
        assert_eq!(
            attributes(many).unwrap_err(),
            InvalidPosition::TooManyAttributes
        );
    }
}
