//! IO elements → attributes. Every element is kept raw as `io<N>` (an
//! allocation-free key); well-known ids also get a named attribute in our
//! units. The table is model-independent: it holds only ids whose meaning
//! is the same across the FMB/FMC/FMM/FMT families (see
//! `protocols/teltonika.md` for the list and the Traccar names).
//!
//! Raw values: 1/2/4-byte elements are unsigned; 8-byte elements keep their
//! bit pattern as `i64` (a u64 above `i64::MAX` reads as negative), as
//! Traccar does; 16-byte and variable-length elements are lower-case hex.

use std::borrow::Cow;

use super::ble;
use crate::model::{AttrKey, AttrValue, Attributes};

/// Which id table applies: GH3000 (codec 7) numbers its elements its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dictionary {
    /// FM families: codecs 8, 8E, 16.
    Fm,
    Gh3000,
}

/// IO id of the VIN (8E variable-length element, ASCII).
const VIN: u16 = 256;
/// IO id of the iBeacon / Eddystone list.
const BEACONS: u16 = 385;
/// IO ids of the BLE tag (EYE) lists.
const TAGS: [u16; 3] = [548, 10829, 10831];

/// Pushes a fixed-width element (`width` 1, 2, 4 or 8 bytes) and its
/// named twin, if the id has one.
pub(super) fn push_fixed(attrs: &mut Attributes, dict: Dictionary, id: u16, width: u8, raw: u64) {
    attrs.push(AttrKey::Io(u32::from(id)), AttrValue::Int(raw as i64));
    if let Some((name, conv)) = name(dict, id) {
        if let Some(value) = conv.apply(width, raw) {
            attrs.push(AttrKey::named(name), value);
        }
    }
}

/// Entries a fixed-width element produces at most (itself and its twin);
/// lets a record size its attributes before decoding them.
pub(super) fn fixed_entries(dict: Dictionary, id: u16) -> usize {
    if name(dict, id).is_some() {
        2
    } else {
        1
    }
}

/// Entries a variable-length element produces, not counting BLE lists.
pub(super) fn variable_entries(id: u16) -> usize {
    if id == VIN {
        2
    } else {
        1
    }
}

/// Pushes a 16-byte element of extended firmwares.
pub(super) fn push_bytes(attrs: &mut Attributes, id: u16, bytes: &[u8]) {
    attrs.push(
        AttrKey::Io(u32::from(id)),
        AttrValue::Text(lower_hex(bytes)),
    );
}

/// Pushes a variable-length (codec 8E NX) element, and what we understand
/// of the few whose content has a known layout.
pub(super) fn push_variable(attrs: &mut Attributes, id: u16, bytes: &[u8]) {
    push_bytes(attrs, id, bytes);
    match id {
        VIN if bytes.iter().all(u8::is_ascii_graphic) => {
            let vin = String::from_utf8_lossy(bytes).into_owned();
            attrs.push(AttrKey::named("vin"), AttrValue::Text(vin));
        }
        BEACONS => ble::beacons(attrs, bytes),
        _ if TAGS.contains(&id) => ble::tags(attrs, bytes),
        _ => {}
    }
}

const DIN: [&str; 4] = ["din1", "din2", "din3", "din4"];
const AXIS: [&str; 3] = ["axis_x_mg", "axis_y_mg", "axis_z_mg"];
const BLE_TEMP: [&str; 4] = ["ble_temp1_c", "ble_temp2_c", "ble_temp3_c", "ble_temp4_c"];
const DALLAS_TEMP: [&str; 4] = [
    "dallas_temp1_c",
    "dallas_temp2_c",
    "dallas_temp3_c",
    "dallas_temp4_c",
];
const EYE_TEMP: [&str; 4] = ["eye_temp1_c", "eye_temp2_c", "eye_temp3_c", "eye_temp4_c"];
const EYE_HUMIDITY: [&str; 4] = [
    "eye_humidity1_pct",
    "eye_humidity2_pct",
    "eye_humidity3_pct",
    "eye_humidity4_pct",
];

/// The `n`-th name of a numbered family, `n` counted from `first`.
fn nth(names: &'static [&'static str], id: u16, first: u16) -> Option<&'static str> {
    names.get(usize::from(id.checked_sub(first)?)).copied()
}

/// `raw` read as a two's-complement number of `width` bytes.
fn signed(raw: u64, width: u8) -> i64 {
    match width {
        1 => i64::from(raw as u8 as i8),
        2 => i64::from(raw as u16 as i16),
        4 => i64::from(raw as u32 as i32),
        _ => raw as i64,
    }
}

/// How a raw value becomes a named attribute's value.
#[derive(Debug, Clone, Copy)]
enum Conv {
    /// Non-zero is true.
    Flag,
    /// Unsigned integer as is.
    Int,
    /// Two's complement of the element's width.
    Signed,
    /// Unsigned ÷ divisor.
    Unsigned(f64),
    /// Two's complement ÷ divisor.
    SignedScaled(f64),
    /// iButton: the 8 bytes little-endian as 16 upper-case hex digits;
    /// absent when zero (no key presented).
    Ibutton,
}

impl Conv {
    #[inline]
    fn apply(self, width: u8, raw: u64) -> Option<AttrValue> {
        Some(match self {
            Self::Flag => AttrValue::Bool(raw != 0),
            Self::Int => AttrValue::Int(raw as i64),
            Self::Signed => AttrValue::Int(signed(raw, width)),
            Self::Unsigned(d) => AttrValue::Float(raw as f64 / d),
            Self::SignedScaled(d) => AttrValue::Float(signed(raw, width) as f64 / d),
            Self::Ibutton if width == 8 && raw != 0 => AttrValue::Text(upper_hex(raw.swap_bytes())),
            Self::Ibutton => return None,
        })
    }
}

/// The named twin of IO element `id`, if it has one.
#[inline]
fn name(dict: Dictionary, id: u16) -> Option<(&'static str, Conv)> {
    match dict {
        Dictionary::Fm => fm(id),
        Dictionary::Gh3000 => gh3000(id),
    }
}

/// FM-family names (codecs 8, 8E, 16).
fn fm(id: u16) -> Option<(&'static str, Conv)> {
    use Conv::*;
    Some(match id {
        1..=4 => (nth(&DIN, id, 1)?, Flag),
        16 => ("odometer_m", Int),
        17..=19 => (nth(&AXIS, id, 17)?, Signed),
        21 => ("gsm_signal", Int),
        25..=28 => (nth(&BLE_TEMP, id, 25)?, SignedScaled(100.0)),
        66 => ("power_v", Unsigned(1000.0)),
        67 => ("battery_v", Unsigned(1000.0)),
        72..=75 => (nth(&DALLAS_TEMP, id, 72)?, SignedScaled(10.0)),
        78 => ("driver_unique_id", Ibutton),
        179 => ("dout1", Flag),
        180 => ("dout2", Flag),
        181 => ("pdop", Unsigned(10.0)),
        182 => ("hdop", Unsigned(10.0)),
        199 => ("trip_odometer_m", Int),
        239 => ("ignition", Flag),
        240 => ("motion", Flag),
        241 => ("gsm_operator", Int),
        10800..=10803 => (nth(&EYE_TEMP, id, 10800)?, SignedScaled(100.0)),
        10804..=10807 => (nth(&EYE_HUMIDITY, id, 10804)?, Int),
        _ => return None,
    })
}

/// GH3000 names (codec 7).
fn gh3000(id: u16) -> Option<(&'static str, Conv)> {
    use Conv::*;
    Some(match id {
        1 => ("battery_level_pct", Int),
        2 => ("usb_connected", Flag),
        20 => ("hdop", Unsigned(10.0)),
        21 => ("vdop", Unsigned(10.0)),
        22 => ("pdop", Unsigned(10.0)),
        67 => ("battery_v", Unsigned(1000.0)),
        240 => ("motion", Flag),
        244 => ("roaming", Flag),
        _ => return None,
    })
}

const LOWER: &[u8; 16] = b"0123456789abcdef";
const UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// `bytes` as hex digits from `digits`: what `hex::encode` does, without
/// its iterator machinery on the hot path.
fn hex_with(bytes: &[u8], digits: &[u8; 16]) -> String {
    let digit = |n: u8| char::from(digits.get(usize::from(n)).copied().unwrap_or(b'0'));
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for &b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(b & 0x0f));
    }
    out
}

/// `bytes` as lower-case hex.
pub(super) fn lower_hex(bytes: &[u8]) -> String {
    hex_with(bytes, LOWER)
}

/// `v` as 16 upper-case hex digits (`format!("{v:016X}")`).
fn upper_hex(v: u64) -> String {
    hex_with(&v.to_be_bytes(), UPPER)
}

/// A numbered key built at run time (`tag1_voltage_mv`); only the rare BLE
/// lists need these.
pub(super) fn numbered(prefix: &str, n: usize, suffix: &str) -> AttrKey {
    AttrKey::Named(Cow::Owned(format!("{prefix}{n}{suffix}")))
}
