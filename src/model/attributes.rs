//! Typed position attributes. Keys of raw protocol IO elements are stored as
//! numbers (`AttrKey::Io(239)`, shown as `io239`) so decoding a record does
//! not allocate a string per element; named keys are `&'static str`.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{SerializeMap, Serializer};

/// An attribute name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttrKey {
    /// A protocol's raw numbered IO element, shown as `io<N>`.
    Io(u32),
    /// A well-known attribute (`ignition`, `power_v`, …) or a protocol field name.
    Named(Cow<'static, str>),
}

impl AttrKey {
    /// A key from a static name.
    pub const fn named(name: &'static str) -> Self {
        Self::Named(Cow::Borrowed(name))
    }

    /// Whether this key is shown as `name`.
    pub fn is(&self, name: &str) -> bool {
        match self {
            Self::Named(n) => n == name,
            Self::Io(id) => name
                .strip_prefix("io")
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n == *id),
        }
    }
}

impl fmt::Display for AttrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(id) => write!(f, "io{id}"),
            Self::Named(n) => f.write_str(n),
        }
    }
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl serde::Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Int(v) => s.serialize_i64(*v),
            Self::Float(v) => s.serialize_f64(*v),
            Self::Bool(v) => s.serialize_bool(*v),
            Self::Text(v) => s.serialize_str(v),
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(v) => write!(f, "{v}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Text(v) => f.write_str(v),
        }
    }
}

/// An ordered list of attributes; a later `set` of the same key replaces the
/// earlier value. A `Vec` rather than a map: records carry a handful to a few
/// dozen entries, and one allocation per record is the hot-path cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes(Vec<(AttrKey, AttrValue)>);

impl Attributes {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Appends without checking for an existing key (decoders that emit each
    /// key once use this).
    pub fn push(&mut self, key: AttrKey, value: AttrValue) {
        self.0.push((key, value));
    }

    /// Sets `key`, replacing an earlier value.
    pub fn set(&mut self, key: AttrKey, value: AttrValue) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// The value shown under `name` (`io239`, `ignition`, …).
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k.is(name))
            .map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&AttrKey, &AttrValue)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl serde::Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(&k.to_string(), v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_keys_show_as_io_n_and_set_replaces() {
        let mut a = Attributes::new();
        a.push(AttrKey::Io(239), AttrValue::Int(1));
        a.set(AttrKey::named("ignition"), AttrValue::Bool(true));
        a.set(AttrKey::Io(239), AttrValue::Int(0));
        assert_eq!(a.get("io239"), Some(&AttrValue::Int(0)));
        assert_eq!(a.get("io23"), None);
        assert_eq!(a.len(), 2);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"io239":0,"ignition":true}"#
        );
    }
}
