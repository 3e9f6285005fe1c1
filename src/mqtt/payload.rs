//! MQTT payloads → positions. Pure (topic and bytes in, positions out), so
//! tests and fuzzers call what the subscriber calls.
//!
//! - `json`: one position or an array, in trackgate's public JSON form.
//! - `owntracks`: the OwnTracks app's `_type: location` messages; other
//!   `_type`s (transition, lwt, card, …) are recognised and carry no position.
//! - `teltonika`: one raw TCP AVL packet (codec 8/8E/16) per message.

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

use crate::model::{DeviceId, InvalidPosition, Position, PositionIn};
use crate::protocol::{DecodeContext, DecodeError};

/// A subscription's payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Owntracks,
    Teltonika,
}

impl Format {
    /// `Position::protocol` and the `protocol` label of its metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Json => "mqtt-json",
            Self::Owntracks => "mqtt-owntracks",
            Self::Teltonika => "mqtt-teltonika",
        }
    }
}

/// Where a message's device id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum DeviceRule {
    /// The payload's own `device_id` (json only).
    Payload,
    /// Topic level N, 0-based (`owntracks/alice/phone`: 2 is `phone`).
    TopicLevel(usize),
    /// The last topic level.
    LastTopicLevel,
}

impl TryFrom<String> for DeviceRule {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "payload" => Ok(Self::Payload),
            "topic:last" => Ok(Self::LastTopicLevel),
            t => t
                .strip_prefix("topic:")
                .and_then(|n| n.parse().ok())
                .map(Self::TopicLevel)
                .ok_or(format!(
                    "device_id rule {s:?}: use \"payload\", \"topic:N\" or \"topic:last\""
                )),
        }
    }
}

/// Why a payload gave no positions; the message is acknowledged anyway
/// (retrying a malformed message cannot help) and counted by `kind`.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("payload of {0} bytes exceeds the limit of {1}")]
    TooLarge(usize, usize),
    #[error("not the expected JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Invalid(#[from] InvalidPosition),
    #[error("topic {topic:?} has no device id at level {level}")]
    Topic { topic: String, level: usize },
    #[error("device id from topic: {0}")]
    Device(#[from] crate::model::DeviceIdError),
    #[error("the payload rule needs the json format")]
    Rule,
    #[error("teltonika: {0}")]
    Teltonika(DecodeError),
}

impl PayloadError {
    /// Label for `trackgate_decode_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooLarge(..) => "too_large",
            Self::Json(_) => "malformed",
            Self::Invalid(_) => "invalid_value",
            Self::Topic { .. } | Self::Device(_) | Self::Rule => "device_id",
            Self::Teltonika(e) => e.kind(),
        }
    }
}

/// Decodes one message. `max` bounds the payload.
pub fn decode(
    format: Format,
    rule: DeviceRule,
    topic: &str,
    payload: &[u8],
    max: usize,
    received: DateTime<Utc>,
) -> Result<Vec<Position>, PayloadError> {
    if payload.len() > max {
        return Err(PayloadError::TooLarge(payload.len(), max));
    }
    let device = match rule {
        DeviceRule::Payload if format == Format::Json => None,
        DeviceRule::Payload => return Err(PayloadError::Rule),
        DeviceRule::TopicLevel(n) => Some(topic_level(topic, Some(n))?),
        DeviceRule::LastTopicLevel => Some(topic_level(topic, None)?),
    };
    let label = format.label();
    match format {
        Format::Json => json(payload, device, label, received),
        Format::Owntracks => {
            let device = device.ok_or(PayloadError::Rule)?;
            owntracks(payload, device, label, received)
        }
        Format::Teltonika => {
            let device = device.ok_or(PayloadError::Rule)?;
            let decoded = crate::protocols::teltonika::decode_avl_packet(
                &device,
                payload,
                &DecodeContext { received },
            )
            .map_err(|r| PayloadError::Teltonika(r.error))?;
            Ok(decoded
                .positions
                .into_iter()
                .map(|mut p| {
                    p.protocol = label;
                    p
                })
                .collect())
        }
    }
}

fn topic_level(topic: &str, n: Option<usize>) -> Result<DeviceId, PayloadError> {
    let level = match n {
        Some(n) => topic.split('/').nth(n),
        None => topic.rsplit('/').next(),
    };
    match level {
        Some(l) if !l.is_empty() => Ok(DeviceId::new(l)?),
        _ => Err(PayloadError::Topic {
            topic: topic.chars().take(200).collect(),
            level: n.unwrap_or(usize::MAX),
        }),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Box<PositionIn>),
    Many(Vec<PositionIn>),
}

fn json(
    payload: &[u8],
    device: Option<DeviceId>,
    label: &'static str,
    received: DateTime<Utc>,
) -> Result<Vec<Position>, PayloadError> {
    let items = match serde_json::from_slice::<OneOrMany>(payload) {
        Ok(OneOrMany::One(p)) => vec![*p],
        Ok(OneOrMany::Many(v)) => v,
        Err(e) => return Err(PayloadError::Json(e.to_string())),
    };
    items
        .into_iter()
        .map(|p| Ok(p.into_position(device.clone(), label, received)?))
        .collect()
}

/// The fields of an OwnTracks `location` message we use.
#[derive(Deserialize)]
struct OwnTracks {
    #[serde(rename = "_type")]
    kind: String,
    lat: Option<f64>,
    lon: Option<f64>,
    /// Fix time, unix seconds.
    tst: Option<i64>,
    alt: Option<f64>,
    /// km/h.
    vel: Option<f64>,
    cog: Option<f64>,
    acc: Option<f64>,
    vac: Option<f64>,
    batt: Option<i64>,
    tid: Option<String>,
    t: Option<String>,
    conn: Option<String>,
}

fn owntracks(
    payload: &[u8],
    device: DeviceId,
    label: &'static str,
    received: DateTime<Utc>,
) -> Result<Vec<Position>, PayloadError> {
    let m: OwnTracks =
        serde_json::from_slice(payload).map_err(|e| PayloadError::Json(e.to_string()))?;
    if m.kind != "location" {
        return Ok(Vec::new());
    }
    let missing = |f: &str| PayloadError::Json(format!("location message without {f}"));
    let fix_time = Utc
        .timestamp_opt(m.tst.ok_or_else(|| missing("tst"))?, 0)
        .single()
        .ok_or_else(|| missing("a valid tst"))?;
    let mut attributes = serde_json::Map::new();
    let mut put = |k: &str, v: Option<serde_json::Value>| {
        if let Some(v) = v {
            attributes.insert(k.to_string(), v);
        }
    };
    put("battery_level_pct", m.batt.map(Into::into));
    put("accuracy_m", m.acc.map(Into::into));
    put("vertical_accuracy_m", m.vac.map(Into::into));
    put("tracker_id", m.tid.map(Into::into));
    put("trigger", m.t.map(Into::into));
    put("connection", m.conn.map(Into::into));
    let p = PositionIn {
        device_id: None,
        fix_time,
        lat: m.lat.ok_or_else(|| missing("lat"))?,
        lon: m.lon.ok_or_else(|| missing("lon"))?,
        altitude_m: m.alt.unwrap_or(0.0),
        speed_kmh: m.vel.unwrap_or(0.0),
        course_deg: m.cog.unwrap_or(0.0),
        satellites: None,
        valid: true,
        attributes,
    };
    Ok(vec![p.into_position(Some(device), label, received)?])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::AttrValue;

    const MAX: usize = 64 * 1024;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    #[test]
    fn owntracks_location_becomes_a_position_with_device_from_topic() {
        let msg = br#"{"_type":"location","tid":"ph","lat":48.85833,"lon":2.29513,"tst":1764158400,"alt":35,"vel":36,"cog":90,"acc":12,"batt":77,"t":"u","conn":"m"}"#;
        let ps = decode(
            Format::Owntracks,
            DeviceRule::LastTopicLevel,
            "owntracks/alice/phone",
            msg,
            MAX,
            now(),
        )
        .unwrap();
        let [p] = ps.as_slice() else { panic!("{ps:?}") };
        assert_eq!(p.device_id.as_str(), "phone");
        assert_eq!(
            (p.lat, p.lon, p.altitude_m, p.speed_kmh, p.course_deg),
            (48.85833, 2.29513, 35.0, 36.0, 90.0)
        );
        assert_eq!(p.fix_time.timestamp(), 1_764_158_400);
        assert_eq!(p.protocol, "mqtt-owntracks");
        assert_eq!(
            p.attributes.get("battery_level_pct"),
            Some(&AttrValue::Int(77))
        );
        assert_eq!(
            p.attributes.get("accuracy_m"),
            Some(&AttrValue::Float(12.0))
        );
        assert_eq!(
            p.attributes.get("trigger"),
            Some(&AttrValue::Text("u".into()))
        );
        let other = br#"{"_type":"transition","event":"enter"}"#;
        assert!(decode(
            Format::Owntracks,
            DeviceRule::LastTopicLevel,
            "owntracks/a/b",
            other,
            MAX,
            now()
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn json_takes_one_or_many_and_the_topic_rule() {
        let one = br#"{"device_id":"t1","fix_time":"2026-11-26T11:00:00Z","lat":1.5,"lon":2.5}"#;
        let ps = decode(Format::Json, DeviceRule::Payload, "x/y", one, MAX, now()).unwrap();
        assert_eq!(ps[0].device_id.as_str(), "t1");
        let many = br#"[{"fix_time":"2026-11-26T11:00:00Z","lat":1,"lon":2},{"fix_time":"2026-11-26T11:00:01Z","lat":3,"lon":4,"speed_kmh":50}]"#;
        let ps = decode(
            Format::Json,
            DeviceRule::TopicLevel(1),
            "fleet/truck-9/pos",
            many,
            MAX,
            now(),
        )
        .unwrap();
        assert_eq!(ps.len(), 2);
        assert!(ps.iter().all(|p| p.device_id.as_str() == "truck-9"));
        assert_eq!(ps[1].speed_kmh, 50.0);
    }

    #[test]
    fn bad_payloads_are_errors_of_the_right_kind() {
        let k = |f, r, t: &str, p: &[u8], max| decode(f, r, t, p, max, now()).unwrap_err().kind();
        assert_eq!(
            k(Format::Json, DeviceRule::Payload, "a", b"{not json", MAX),
            "malformed"
        );
        assert_eq!(
            k(
                Format::Json,
                DeviceRule::Payload,
                "a",
                br#"{"fix_time":"2026-11-26T11:00:00Z","lat":95,"lon":2,"device_id":"x"}"#,
                MAX
            ),
            "invalid_value"
        );
        assert_eq!(
            k(Format::Json, DeviceRule::Payload, "a", &[b' '; 200], 100),
            "too_large"
        );
        assert_eq!(
            k(
                Format::Owntracks,
                DeviceRule::TopicLevel(5),
                "owntracks/a/b",
                b"{}",
                MAX
            ),
            "device_id"
        );
        assert_eq!(
            k(
                Format::Owntracks,
                DeviceRule::Payload,
                "owntracks/a/b",
                b"{}",
                MAX
            ),
            "device_id"
        );
        assert_eq!(
            k(
                Format::Owntracks,
                DeviceRule::LastTopicLevel,
                "owntracks/a/b",
                br#"{"_type":"location","lat":1}"#,
                MAX
            ),
            "malformed"
        );
        assert_eq!(
            k(
                Format::Teltonika,
                DeviceRule::LastTopicLevel,
                "t/356307042441013",
                b"\x01\x02",
                MAX
            ),
            "malformed"
        );
        assert_eq!(
            DeviceRule::try_from("topic:2".to_string()),
            Ok(DeviceRule::TopicLevel(2))
        );
        assert!(DeviceRule::try_from("topic:x".to_string()).is_err());
    }

    #[test]
    fn teltonika_packets_decode_with_the_device_from_the_topic() {
        // Codec 8E, one record (protocols/vectors/teltonika.tsv, line 2).
        let packet = hex::decode("000000000000004b8e010000018368952793000f0e54fc209ab05800b300b40e00002a4f0001000000000000000000012a4f001e011c0001a40110eb47706aa38255aa96f21a154e2d00550d01000e020bd6010000823f").unwrap();
        let ps = decode(
            Format::Teltonika,
            DeviceRule::LastTopicLevel,
            "teltonika/356307042441013",
            &packet,
            MAX,
            now(),
        )
        .unwrap();
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].device_id.as_str(), "356307042441013");
        assert_eq!(ps[0].protocol, "mqtt-teltonika");
    }
}
