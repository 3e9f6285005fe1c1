//! BLE lists carried in codec 8E variable-length IO elements. Best effort:
//! the raw element is always kept as hex, so a list that does not parse
//! simply stops adding named attributes.
//!
//! ```text
//! beacons (385)               u8 data part, then per beacon:
//!                             u8 flags; flags>>4 != 0: 16 B UUID, u16 major, u16 minor
//!                                       else: 10 B namespace, 6 B instance
//!                             i8 RSSI; flags bit 1: u16 battery ×0.01 V; bit 2: u16 temperature
//! tags (548, 10829, 10831)    u8 header, then per tag: u8 length, then params:
//!                             u8 id, u8 length, value
//!                             0 RSSI i8 | 1 tag id | 2 flags (bit 6 low battery,
//!                             bit 7: next byte ×10 + 2000 = voltage mV)
//!                             13 low battery u8 | 14 battery mV u16
//! ```

use super::io::{lower_hex, numbered};
use crate::model::{AttrValue, Attributes};

/// Splits `n` bytes off the front.
fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = data.split_at_checked(n)?;
    *data = tail;
    Some(head)
}

fn u8_(data: &mut &[u8]) -> Option<u8> {
    let (&b, tail) = data.split_first()?;
    *data = tail;
    Some(b)
}

fn u16_(data: &mut &[u8]) -> Option<u16> {
    let b = take(data, 2)?;
    Some(u16::from_be_bytes(<[u8; 2]>::try_from(b).ok()?))
}

/// iBeacon / Eddystone list (IO 385).
pub(super) fn beacons(attrs: &mut Attributes, mut data: &[u8]) {
    let _ = beacons_inner(attrs, &mut data);
}

fn beacons_inner(attrs: &mut Attributes, data: &mut &[u8]) -> Option<()> {
    u8_(data)?; // data part
    let mut n: usize = 0;
    while !data.is_empty() {
        n = n.checked_add(1)?;
        let flags = u8_(data)?;
        if flags >> 4 != 0 {
            let uuid = take(data, 16)?;
            let major = u16_(data)?;
            let minor = u16_(data)?;
            attrs.push(
                numbered("beacon", n, "_uuid"),
                AttrValue::Text(lower_hex(uuid)),
            );
            attrs.push(
                numbered("beacon", n, "_major"),
                AttrValue::Int(i64::from(major)),
            );
            attrs.push(
                numbered("beacon", n, "_minor"),
                AttrValue::Int(i64::from(minor)),
            );
        } else {
            let namespace = take(data, 10)?;
            let instance = take(data, 6)?;
            attrs.push(
                numbered("beacon", n, "_namespace"),
                AttrValue::Text(lower_hex(namespace)),
            );
            attrs.push(
                numbered("beacon", n, "_instance"),
                AttrValue::Text(lower_hex(instance)),
            );
        }
        let rssi = u8_(data)? as i8;
        attrs.push(
            numbered("beacon", n, "_rssi_dbm"),
            AttrValue::Int(i64::from(rssi)),
        );
        if flags & 0b10 != 0 {
            let battery = u16_(data)?;
            attrs.push(
                numbered("beacon", n, "_battery_v"),
                AttrValue::Float(f64::from(battery) / 100.0),
            );
        }
        if flags & 0b100 != 0 {
            let temperature = u16_(data)?;
            attrs.push(
                numbered("beacon", n, "_temp_raw"),
                AttrValue::Int(i64::from(temperature)),
            );
        }
    }
    Some(())
}

/// Tag parameter ids.
const TAG_RSSI: u8 = 0;
const TAG_ID: u8 = 1;
const TAG_FLAGS: u8 = 2;
const TAG_LOW_BATTERY: u8 = 13;
const TAG_BATTERY: u8 = 14;

/// BLE tag (EYE beacon / sensor) list (IO 548, 10829, 10831).
pub(super) fn tags(attrs: &mut Attributes, mut data: &[u8]) {
    let _ = tags_inner(attrs, &mut data);
}

fn tags_inner(attrs: &mut Attributes, data: &mut &[u8]) -> Option<()> {
    u8_(data)?; // header
    let mut n: usize = 0;
    while !data.is_empty() {
        n = n.checked_add(1)?;
        let len = u8_(data)?;
        let mut tag = take(data, usize::from(len))?;
        while !tag.is_empty() {
            let id = u8_(&mut tag)?;
            let len = u8_(&mut tag)?;
            let mut value = take(&mut tag, usize::from(len))?;
            match id {
                TAG_RSSI => {
                    let rssi = u8_(&mut value)? as i8;
                    attrs.push(
                        numbered("tag", n, "_rssi_dbm"),
                        AttrValue::Int(i64::from(rssi)),
                    );
                }
                TAG_ID => attrs.push(numbered("tag", n, "_id"), AttrValue::Text(lower_hex(value))),
                TAG_FLAGS => {
                    let flags = u8_(&mut value)?;
                    if flags & 0x40 != 0 {
                        attrs.push(numbered("tag", n, "_low_battery"), AttrValue::Bool(true));
                    }
                    if flags & 0x80 != 0 {
                        let v = u8_(&mut value)?;
                        let mv = i64::from(v).saturating_mul(10).saturating_add(2000);
                        attrs.push(numbered("tag", n, "_voltage_mv"), AttrValue::Int(mv));
                    }
                }
                TAG_LOW_BATTERY => {
                    let low = u8_(&mut value)?;
                    attrs.push(
                        numbered("tag", n, "_low_battery"),
                        AttrValue::Bool(low != 0),
                    );
                }
                TAG_BATTERY => {
                    let mv = u16_(&mut value)?;
                    attrs.push(
                        numbered("tag", n, "_battery_mv"),
                        AttrValue::Int(i64::from(mv)),
                    );
                }
                _ => {}
            }
        }
    }
    Some(())
}
