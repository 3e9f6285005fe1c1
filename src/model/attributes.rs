//! Typed position attributes. Keys of raw protocol IO elements are stored as
//! numbers (`AttrKey::Io(239)`, shown as `io239`) so decoding a record does
//! not allocate a string per element; named keys are `&'static str`.
//!
//! Named twins of raw elements (`ignition` next to `io239`) are not stored:
//! a decoder attaches its protocol's [`Namer`] and the twins are derived
//! where attributes are read — JSON, [`Attributes::get`], [`Attributes::iter`].
//! Decoding then writes one entry per element; the twins cost only when
//! someone looks (measured in `benches/README.md`).

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

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
            Self::Io(id) => io_id(name) == Some(*id),
        }
    }
}

/// The `N` of a name `io<N>`.
fn io_id(name: &str) -> Option<u32> {
    name.strip_prefix("io")?.parse().ok()
}

impl fmt::Display for AttrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(id) => write!(f, "io{id}"),
            Self::Named(n) => f.write_str(n),
        }
    }
}

impl serde::Serialize for AttrKey {
    /// As its shown name; `io<N>` is written without an intermediate string.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Io(_) => s.collect_str(self),
            Self::Named(n) => s.serialize_str(n),
        }
    }
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Int(i64),
    /// An unsigned integer above `i64::MAX` (a raw 8-byte element such as a
    /// Teltonika iButton id); smaller integers are always `Int`.
    UInt(u64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl serde::Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Int(v) => s.serialize_i64(*v),
            Self::UInt(v) => s.serialize_u64(*v),
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
            Self::UInt(v) => write!(f, "{v}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Text(v) => f.write_str(v),
        }
    }
}

/// A protocol's reading of its raw IO element `id` holding `value`: the
/// named twin shown after `io<id>`, if the element has one. Must be pure and
/// must not return a name the decoder also sets explicitly.
pub type Namer = fn(id: u32, value: &AttrValue) -> Option<(&'static str, AttrValue)>;

/// A derived twin, after the stored entry it was derived from.
#[derive(Debug, Clone)]
struct Twin {
    of: usize,
    key: AttrKey,
    value: AttrValue,
}

/// An ordered list of attributes; a later `set` of the same key replaces the
/// earlier value. A `Vec` rather than a map: records carry a handful to a few
/// dozen entries, and one allocation per record is the hot-path cost.
///
/// What is *shown* (JSON, `get`, `iter`, `len`, `==`) is every stored entry,
/// each `io<N>` entry followed by its named twin when the [`Namer`] gives one.
#[derive(Clone, Default)]
pub struct Attributes {
    entries: Vec<(AttrKey, AttrValue)>,
    namer: Option<Namer>,
    /// The twins, derived on the first read that must hand out references
    /// (`get` of a twin's name, `iter`); cleared by every change.
    twins: OnceLock<Vec<Twin>>,
}

impl Attributes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    /// Attaches the protocol's namer: the raw `io<N>` entries now show their
    /// named twins too.
    pub fn set_namer(&mut self, namer: Namer) {
        self.namer = Some(namer);
        self.changed();
    }

    /// Appends without checking for an existing key (decoders that emit each
    /// key once use this). On a hot path prefer `extend` with an iterator
    /// that parses as it goes: `Vec::push` is not inlined there, and the
    /// 48-byte entry passed through memory stalls the reload.
    #[inline]
    pub fn push(&mut self, key: AttrKey, value: AttrValue) {
        self.changed();
        self.entries.push((key, value));
    }

    /// Sets `key`, replacing an earlier stored value.
    pub fn set(&mut self, key: AttrKey, value: AttrValue) {
        self.changed();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Gives back spare room (a decoder that sized the entries from a count
    /// the device sent calls this when the count was off).
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
    }

    /// Drops derived twins after a change.
    #[inline]
    fn changed(&mut self) {
        if self.twins.get().is_some() {
            self.twins = OnceLock::new();
        }
    }

    /// The value shown under `name` (`io239`, `ignition`, …): a stored entry,
    /// else a named twin.
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        let stored = self.entries.iter().rev().find(|(k, _)| k.is(name));
        if let Some((_, v)) = stored {
            return Some(v);
        }
        if self.namer.is_none() || io_id(name).is_some() {
            return None;
        }
        self.twins()
            .iter()
            .rev()
            .find(|t| t.key.is(name))
            .map(|t| &t.value)
    }

    /// Every shown entry, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&AttrKey, &AttrValue)> {
        Iter {
            entries: self.entries.iter(),
            yielded: 0,
            twins: self.twins(),
        }
    }

    /// Only the stored entries (raw elements and explicit names), in order.
    pub fn stored(&self) -> impl Iterator<Item = (&AttrKey, &AttrValue)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// How many entries are shown (stored ones and twins).
    pub fn len(&self) -> usize {
        let twins = match self.twins.get() {
            Some(twins) => twins.len(),
            None => self
                .entries
                .iter()
                .filter(|(k, v)| self.twin(k, v).is_some())
                .count(),
        };
        self.entries.len().saturating_add(twins)
    }

    pub fn is_empty(&self) -> bool {
        // A twin needs a stored entry to derive from.
        self.entries.is_empty()
    }

    /// The twin of one stored entry.
    #[inline]
    fn twin(&self, key: &AttrKey, value: &AttrValue) -> Option<(&'static str, AttrValue)> {
        match (key, self.namer) {
            (AttrKey::Io(id), Some(namer)) => namer(*id, value),
            _ => None,
        }
    }

    fn twins(&self) -> &[Twin] {
        if self.namer.is_none() {
            return &[];
        }
        self.twins.get_or_init(|| {
            self.entries
                .iter()
                .enumerate()
                .filter_map(|(of, (k, v))| {
                    let (name, value) = self.twin(k, v)?;
                    Some(Twin {
                        of,
                        key: AttrKey::named(name),
                        value,
                    })
                })
                .collect()
        })
    }

    /// Every shown entry, twins derived on the fly (nothing cached).
    fn shown(&self) -> impl Iterator<Item = (Cow<'_, AttrKey>, Cow<'_, AttrValue>)> {
        self.entries.iter().flat_map(|(k, v)| {
            let twin = self
                .twin(k, v)
                .map(|(name, value)| (Cow::Owned(AttrKey::named(name)), Cow::Owned(value)));
            std::iter::once((Cow::Borrowed(k), Cow::Borrowed(v))).chain(twin)
        })
    }
}

/// Stored entries with their cached twins merged in.
struct Iter<'a> {
    entries: std::slice::Iter<'a, (AttrKey, AttrValue)>,
    /// Stored entries handed out so far.
    yielded: usize,
    /// Twins not handed out yet, in order of `of`.
    twins: &'a [Twin],
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a AttrKey, &'a AttrValue);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some((twin, rest)) = self.twins.split_first() {
            if twin.of < self.yielded {
                self.twins = rest;
                return Some((&twin.key, &twin.value));
            }
        }
        let (k, v) = self.entries.next()?;
        self.yielded = self.yielded.saturating_add(1);
        Some((k, v))
    }
}

impl Extend<(AttrKey, AttrValue)> for Attributes {
    /// Appends like `push`. Decoders pull a parsed IO group through this, so
    /// each entry is written straight into place (no copy through the stack).
    #[inline]
    fn extend<I: IntoIterator<Item = (AttrKey, AttrValue)>>(&mut self, iter: I) {
        self.changed();
        self.entries.extend(iter);
    }
}

impl PartialEq for Attributes {
    /// Equal when they show the same entries; the namer itself (a function
    /// pointer) is not compared.
    fn eq(&self, other: &Self) -> bool {
        self.shown().eq(other.shown())
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.shown().map(|(k, v)| (k.to_string(), v)))
            .finish()
    }
}

impl serde::Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.namer.is_none() {
            // No twins: the stored entries as they are (every record is
            // written this way before its ack).
            let mut map = s.serialize_map(Some(self.entries.len()))?;
            for (k, v) in &self.entries {
                map.serialize_entry(k, v)?;
            }
            return map.end();
        }
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.shown() {
            map.serialize_entry(&k, &v)?;
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

    /// A namer like a protocol's: 1 is a flag, 66 millivolts, the rest raw.
    fn namer(id: u32, value: &AttrValue) -> Option<(&'static str, AttrValue)> {
        match (id, value) {
            (1, AttrValue::Int(v)) => Some(("din1", AttrValue::Bool(*v != 0))),
            (66, AttrValue::Int(v)) => Some(("power_v", AttrValue::Float(*v as f64 / 1000.0))),
            _ => None,
        }
    }

    fn with_twins() -> Attributes {
        let mut a = Attributes::with_capacity(4);
        a.set_namer(namer);
        a.push(AttrKey::named("priority"), AttrValue::Int(1));
        a.push(AttrKey::Io(1), AttrValue::Int(1));
        a.push(AttrKey::Io(9), AttrValue::Int(7));
        a.push(AttrKey::Io(66), AttrValue::Int(12_500));
        a
    }

    #[test]
    fn twins_show_after_their_raw_entry_everywhere() {
        let a = with_twins();
        let json = r#"{"priority":1,"io1":1,"din1":true,"io9":7,"io66":12500,"power_v":12.5}"#;
        assert_eq!(serde_json::to_string(&a).unwrap(), json);
        assert_eq!(a.len(), 6);
        assert_eq!(a.get("din1"), Some(&AttrValue::Bool(true)));
        assert_eq!(a.get("power_v"), Some(&AttrValue::Float(12.5)));
        assert_eq!(a.get("io66"), Some(&AttrValue::Int(12_500)));
        assert_eq!(a.get("nothing"), None);
        let shown: Vec<String> = a.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            shown,
            [
                "priority=1",
                "io1=1",
                "din1=true",
                "io9=7",
                "io66=12500",
                "power_v=12.5"
            ]
        );
        assert_eq!(a.stored().count(), 4);
        assert_eq!(format!("{a:?}"), format!("{:?}", a.clone()));
    }

    #[test]
    fn a_change_after_a_read_derives_twins_again() {
        let mut a = with_twins();
        assert_eq!(a.get("din1"), Some(&AttrValue::Bool(true)));
        a.set(AttrKey::Io(1), AttrValue::Int(0));
        assert_eq!(a.get("din1"), Some(&AttrValue::Bool(false)));
        a.push(AttrKey::Io(66), AttrValue::Int(0));
        assert_eq!(a.iter().count(), 8);
        assert_eq!(a.len(), 8);
    }

    #[test]
    fn equality_compares_what_is_shown() {
        let a = with_twins();
        let mut b = Attributes::new();
        for (k, v) in a.iter() {
            b.push(k.clone(), v.clone());
        }
        assert_eq!(a, b, "stored twins equal derived ones");
        let mut c = a.clone();
        c.set(AttrKey::Io(66), AttrValue::Int(1));
        assert_ne!(a, c);
        let mut no_namer = Attributes::new();
        for (k, v) in a.stored() {
            no_namer.push(k.clone(), v.clone());
        }
        assert_ne!(a, no_namer);
    }
}
