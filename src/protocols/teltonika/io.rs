//! IO elements → attributes. Every element is stored raw as `io<N>` (an
//! allocation-free key), one entry per element; the named attribute of a
//! well-known id (`ignition`, `power_v`, …) is derived from the raw entry
//! where attributes are read, by the namer the decoder attaches ([`fm`],
//! [`gh3000`]). The table is model-independent: it holds only ids whose
//! meaning is the same across the FMB/FMC/FMM/FMT families (see
//! `protocols/teltonika.md` for the list and the Traccar names).
//!
//! Raw values: 1/2/4-byte elements are unsigned; 8-byte elements keep their
//! bit pattern as `i64` (a u64 above `i64::MAX` reads as negative), as
//! Traccar does; 16-byte and variable-length elements are lower-case hex.
//!
//! Signed readings (axes, temperatures) need the element's width, which the
//! raw entry does not keep: they use the width Teltonika documents for the
//! id, widened to the smallest of 1/2/4/8 bytes that holds the raw value, so
//! a sign-extended value sent in a wider group reads the same.

use std::borrow::Cow;

use super::ble;
use crate::model::{AttrKey, AttrValue, Attributes};

/// IO id of the VIN (8E variable-length element, ASCII).
const VIN: u16 = 256;
/// IO id of the iBeacon / Eddystone list.
const BEACONS: u16 = 385;
/// IO ids of the BLE tag (EYE) lists.
const TAGS: [u16; 3] = [548, 10829, 10831];

/// The entry of a fixed-width element (1, 2, 4 or 8 bytes, read unsigned:
/// an 8-byte value above `i64::MAX` stays the raw unsigned integer).
#[inline]
pub(super) fn fixed_entry(id: u16, raw: u64) -> (AttrKey, AttrValue) {
    let value = match i64::try_from(raw) {
        Ok(v) => AttrValue::Int(v),
        Err(_) => AttrValue::UInt(raw),
    };
    (AttrKey::Io(u32::from(id)), value)
}

/// Pushes a 16-byte element of extended firmwares.
pub(super) fn push_bytes(attrs: &mut Attributes, id: u16, bytes: &[u8]) {
    // The entry is built inside the iterator so it is written in place (see
    // `avl::fixed_group`); codec 8E records often carry such an element.
    attrs.extend(
        std::iter::once(bytes).map(|b| (AttrKey::Io(u32::from(id)), AttrValue::Text(lower_hex(b)))),
    );
}

/// Pushes a variable-length (codec 8E NX) element, and what we understand
/// of the few whose content has a known layout. These are rare, so their
/// names are added here rather than derived.
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

/// The namer of FM-family records (codecs 8, 8E, 16): the named twin of a
/// fixed-width element `io<id>`.
pub(super) fn fm(id: u32, value: &AttrValue) -> Option<(&'static str, AttrValue)> {
    let (name, conv) = fm_name(u16::try_from(id).ok()?)?;
    Some((name, conv.apply(int(value)?)?))
}

/// The namer of GH3000 records (codec 7).
pub(super) fn gh3000(id: u32, value: &AttrValue) -> Option<(&'static str, AttrValue)> {
    let (name, conv) = gh3000_name(u16::try_from(id).ok()?)?;
    Some((name, conv.apply(int(value)?)?))
}

/// The raw bits of a fixed-width element; 16-byte and variable-length
/// elements (text) have no twin.
#[inline]
fn int(value: &AttrValue) -> Option<u64> {
    match value {
        AttrValue::Int(v) => Some(*v as u64),
        AttrValue::UInt(v) => Some(*v),
        _ => None,
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

/// Bytes of the smallest element width (1, 2, 4, 8) that holds `raw`.
fn width_of(raw: u64) -> u8 {
    match raw {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

/// `raw` read as a two's-complement number of the documented `width`, or
/// of the width the value needs if it needs more.
fn signed(raw: u64, width: u8) -> i64 {
    match width.max(width_of(raw)) {
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
    /// Two's complement of the documented width in bytes.
    Signed(u8),
    /// Unsigned ÷ divisor.
    Unsigned(f64),
    /// Two's complement of the documented width ÷ divisor.
    SignedScaled(u8, f64),
    /// iButton (8 bytes): little-endian as 16 upper-case hex digits;
    /// absent when zero (no key presented).
    Ibutton,
}

impl Conv {
    #[inline]
    fn apply(self, raw: u64) -> Option<AttrValue> {
        Some(match self {
            Self::Flag => AttrValue::Bool(raw != 0),
            Self::Int => fixed_entry(0, raw).1,
            Self::Signed(width) => AttrValue::Int(signed(raw, width)),
            Self::Unsigned(d) => AttrValue::Float(raw as f64 / d),
            Self::SignedScaled(width, d) => AttrValue::Float(signed(raw, width) as f64 / d),
            Self::Ibutton if raw != 0 => AttrValue::Text(upper_hex(raw.swap_bytes())),
            Self::Ibutton => return None,
        })
    }
}

/// FM-family names (codecs 8, 8E, 16).
fn fm_name(id: u16) -> Option<(&'static str, Conv)> {
    use Conv::*;
    Some(match id {
        1..=4 => (nth(&DIN, id, 1)?, Flag),
        16 => ("odometer_m", Int),
        17..=19 => (nth(&AXIS, id, 17)?, Signed(2)),
        21 => ("gsm_signal", Int),
        25..=28 => (nth(&BLE_TEMP, id, 25)?, SignedScaled(2, 100.0)),
        66 => ("power_v", Unsigned(1000.0)),
        67 => ("battery_v", Unsigned(1000.0)),
        72..=75 => (nth(&DALLAS_TEMP, id, 72)?, SignedScaled(4, 10.0)),
        78 => ("driver_unique_id", Ibutton),
        179 => ("dout1", Flag),
        180 => ("dout2", Flag),
        181 => ("pdop", Unsigned(10.0)),
        182 => ("hdop", Unsigned(10.0)),
        199 => ("trip_odometer_m", Int),
        239 => ("ignition", Flag),
        240 => ("motion", Flag),
        241 => ("gsm_operator", Int),
        10800..=10803 => (nth(&EYE_TEMP, id, 10800)?, SignedScaled(2, 100.0)),
        10804..=10807 => (nth(&EYE_HUMIDITY, id, 10804)?, Int),
        _ => return None,
    })
}

/// GH3000 names (codec 7).
fn gh3000_name(id: u16) -> Option<(&'static str, Conv)> {
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

/// The two hex digits of every byte value, from a 16-digit alphabet.
// Evaluated at compile time only: an index out of range fails the build.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const fn hex_pairs(digits: &[u8; 16]) -> [[u8; 2]; 256] {
    let mut pairs = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        pairs[b] = [digits[b >> 4], digits[b & 0x0f]];
        b += 1;
    }
    pairs
}

static LOWER: [[u8; 2]; 256] = hex_pairs(b"0123456789abcdef");
static UPPER: [[u8; 2]; 256] = hex_pairs(b"0123456789ABCDEF");

/// `bytes` as hex digits from a pair table: what `hex::encode` does, one
/// table load per byte, collected from an exact-size iterator (per-digit
/// pushes cost a tenth of a codec 8E record's decode time).
fn hex_with(bytes: &[u8], pairs: &[[u8; 2]; 256]) -> String {
    let digits: Vec<[u8; 2]> = bytes
        .iter()
        .map(|&b| pairs.get(usize::from(b)).copied().unwrap_or([b'0'; 2]))
        .collect();
    // Only ASCII digits went in, so this never fails.
    String::from_utf8(digits.into_flattened()).unwrap_or_default()
}

/// `bytes` as lower-case hex.
pub(super) fn lower_hex(bytes: &[u8]) -> String {
    hex_with(bytes, &LOWER)
}

/// `v` as 16 upper-case hex digits (`format!("{v:016X}")`).
fn upper_hex(v: u64) -> String {
    hex_with(&v.to_be_bytes(), &UPPER)
}

/// A numbered key built at run time (`tag1_voltage_mv`); only the rare BLE
/// lists need these.
pub(super) fn numbered(prefix: &str, n: usize, suffix: &str) -> AttrKey {
    AttrKey::Named(Cow::Owned(format!("{prefix}{n}{suffix}")))
}
