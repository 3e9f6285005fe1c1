//! `DeviceId`: the id a tracker identifies itself with (IMEI, terminal
//! phone number, serial). Every decoded record and every map and index
//! entry carries one, so it is stored inline up to 23 bytes (`SmolStr`;
//! IMEIs are 15): a clone copies 24 bytes instead of touching a shared
//! counter, and comparing a map key needs no second memory access.

use std::fmt;

use smol_str::SmolStr;

/// Longest device id accepted from any source.
pub const MAX_LEN: usize = 64;

/// A validated device id: 1..=64 printable ASCII characters, no spaces.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(SmolStr);

/// Why a string is not a device id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    #[error("device id is empty")]
    Empty,
    #[error("device id is {0} characters long, at most {MAX_LEN} allowed")]
    TooLong(usize),
    #[error("device id contains the character {0:?} at offset {1}; only printable ASCII without spaces is allowed")]
    BadChar(char, usize),
}

impl DeviceId {
    /// Validates and wraps `s`.
    pub fn new(s: &str) -> Result<Self, DeviceIdError> {
        if s.is_empty() {
            return Err(DeviceIdError::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(DeviceIdError::TooLong(s.len()));
        }
        if let Some((i, c)) = s.char_indices().find(|(_, c)| !c.is_ascii_graphic()) {
            return Err(DeviceIdError::BadChar(c, i));
        }
        Ok(Self(SmolStr::new(s)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", &self.0)
    }
}

impl std::str::FromStr for DeviceId {
    type Err = DeviceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl serde::Serialize for DeviceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_imei_and_rejects_bad_input() {
        assert_eq!(
            DeviceId::new("356307042441013").unwrap().as_str(),
            "356307042441013"
        );
        assert_eq!(DeviceId::new(""), Err(DeviceIdError::Empty));
        assert_eq!(
            DeviceId::new(&"1".repeat(65)),
            Err(DeviceIdError::TooLong(65))
        );
        assert_eq!(DeviceId::new("12 3"), Err(DeviceIdError::BadChar(' ', 2)));
        assert_eq!(
            DeviceId::new("12\u{0}"),
            Err(DeviceIdError::BadChar('\u{0}', 2))
        );
    }

    #[test]
    fn json_round_trip_validates() {
        let id: DeviceId = serde_json::from_str("\"4711\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"4711\"");
        assert!(serde_json::from_str::<DeviceId>("\"\"").is_err());
    }
}
