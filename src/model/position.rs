//! `Position`: one located fix of one device, in trackgate's public JSON
//! form (field names are API), and `Report`: a device message that carries
//! data but no fix (command responses, photos' metadata, …).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{SerializeStruct, Serializer};

use super::{Attributes, DeviceId};

/// A located fix. Coordinates are WGS84 degrees, times UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub device_id: DeviceId,
    /// When the device took the fix.
    pub fix_time: DateTime<Utc>,
    /// When trackgate received it.
    pub received_time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub altitude_m: f64,
    pub speed_kmh: f64,
    pub course_deg: f64,
    pub satellites: Option<u8>,
    /// Whether the device marked the fix as valid.
    pub valid: bool,
    /// Registry name of the protocol that delivered it.
    pub protocol: &'static str,
    pub attributes: Attributes,
}

/// How far ahead of its receipt a fix time may lie (time zones at most
/// 14 h, plus a day of clock drift). A tracker whose clock is further off
/// (a GPS week rollover, an unset RTC) reports fixes that must not become
/// its latest position: every later, real fix would look older.
pub const MAX_FIX_AHEAD_MS: i64 = 25 * 3_600_000;

impl Position {
    /// Whether the fix time lies more than [`MAX_FIX_AHEAD_MS`] after the
    /// receive time.
    pub fn is_from_the_future(&self) -> bool {
        self.fix_time.timestamp_millis()
            > self
                .received_time
                .timestamp_millis()
                .saturating_add(MAX_FIX_AHEAD_MS)
    }

    /// Whether lat/lon are finite and within WGS84 range.
    pub fn has_valid_coordinates(&self) -> bool {
        Self::valid_coordinates(self.lat, self.lon)
    }

    /// Whether `lat`/`lon` are finite and within WGS84 range (for decoders
    /// that decide before building a position).
    pub fn valid_coordinates(lat: f64, lon: f64) -> bool {
        lat.is_finite()
            && lon.is_finite()
            && (-90.0..=90.0).contains(&lat)
            && (-180.0..=180.0).contains(&lon)
    }
}

/// RFC 3339, UTC, milliseconds: the one time format of the public API.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl serde::Serialize for Position {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Position", 12)?;
        st.serialize_field("device_id", &self.device_id)?;
        st.serialize_field("fix_time", &format_time(&self.fix_time))?;
        st.serialize_field("received_time", &format_time(&self.received_time))?;
        st.serialize_field("lat", &self.lat)?;
        st.serialize_field("lon", &self.lon)?;
        st.serialize_field("altitude_m", &self.altitude_m)?;
        st.serialize_field("speed_kmh", &self.speed_kmh)?;
        st.serialize_field("course_deg", &self.course_deg)?;
        st.serialize_field("satellites", &self.satellites)?;
        st.serialize_field("valid", &self.valid)?;
        st.serialize_field("protocol", self.protocol)?;
        st.serialize_field("attributes", &self.attributes)?;
        st.end()
    }
}

/// A device message with data but no location (e.g. a command response).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub device_id: DeviceId,
    #[serde(serialize_with = "ser_time")]
    pub time: DateTime<Utc>,
    pub protocol: &'static str,
    pub attributes: Attributes,
}

fn ser_time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttrKey, AttrValue};
    use chrono::TimeZone;

    #[test]
    fn json_form_uses_public_field_names_and_millisecond_utc() {
        let mut attributes = Attributes::new();
        attributes.push(AttrKey::Io(239), AttrValue::Int(1));
        let p = Position {
            device_id: DeviceId::new("356307042441013").unwrap(),
            fix_time: Utc.timestamp_millis_opt(1_700_000_000_123).unwrap(),
            received_time: Utc.timestamp_millis_opt(1_700_000_001_000).unwrap(),
            lat: 54.1,
            lon: 25.2,
            altitude_m: 120.0,
            speed_kmh: 63.0,
            course_deg: 270.0,
            satellites: Some(9),
            valid: true,
            protocol: "teltonika",
            attributes,
        };
        let v: serde_json::Value = serde_json::to_value(&p).unwrap();
        assert_eq!(v["device_id"], "356307042441013");
        assert_eq!(v["fix_time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["received_time"], "2023-11-14T22:13:21.000Z");
        assert_eq!(v["speed_kmh"], 63.0);
        assert_eq!(v["satellites"], 9);
        assert_eq!(v["attributes"]["io239"], 1);
        assert_eq!(v.as_object().unwrap().len(), 12);
    }
}
