//! Attribute names and the `name:type:value` parameter list of `#D#`.
//!
//! Types: `1` integer, `2` real, `3` text. Names are device-defined and kept
//! lower-cased, except the few below that mean the same on every device:
//!
//! ```text
//! temp:…                       → device_temp_c
//! bat:…                        → battery_level_pct
//! mccN, mncN, lacN, cell_idN   → network: JSON list of complete cells
//! text "true"/"false"          → a boolean
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::model::{AttrKey, AttrValue, Attributes};
use crate::protocol::DecodeError;

pub(super) const HDOP: &str = "hdop";
pub(super) const INPUT: &str = "input";
pub(super) const OUTPUT: &str = "output";
pub(super) const DRIVER: &str = "driver_unique_id";
pub(super) const SATELLITES: &str = "satellites";
pub(super) const ARCHIVE: &str = "archive";
pub(super) const MESSAGE: &str = "message";
pub(super) const NETWORK: &str = "network";
const DEVICE_TEMP: &str = "device_temp_c";
const BATTERY_LEVEL: &str = "battery_level_pct";

/// `adc1`, `adc2`, …: numbers where they parse, text otherwise.
pub(super) fn adc(attributes: &mut Attributes, list: &str) {
    for (i, v) in list.split(',').enumerate() {
        let key = AttrKey::Named(Cow::Owned(format!("adc{}", i.saturating_add(1))));
        let value = match v.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => AttrValue::Float(n),
            _ => AttrValue::Text(v.to_owned()),
        };
        attributes.push(key, value);
    }
}

/// One cell of the `network` list, filled from `mccN`/`mncN`/`lacN`/`cell_idN`.
#[derive(Default)]
struct Cell {
    mcc: Option<i64>,
    mnc: Option<i64>,
    lac: Option<i64>,
    cid: Option<i64>,
}

/// Adds the comma-separated parameter list starting at offset `at`.
pub(super) fn apply(attributes: &mut Attributes, list: &str, at: usize) -> Result<(), DecodeError> {
    let mut cells: BTreeMap<u32, Cell> = BTreeMap::new();
    let mut rest: Vec<(String, AttrValue)> = Vec::new();
    let mut offset = at;
    for param in list.split(',') {
        let malformed = DecodeError::Malformed {
            what: "parameter name:type:value",
            offset,
        };
        offset = offset.saturating_add(param.len()).saturating_add(1);
        let mut parts = param.splitn(3, ':');
        let (Some(name), Some(kind), Some(raw)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed);
        };
        if name.is_empty() {
            return Err(malformed);
        }
        let value = match kind {
            "1" => int_or_text(raw),
            "2" => match raw.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => AttrValue::Float(n),
                _ => AttrValue::Text(raw.to_owned()),
            },
            "3" => match raw {
                "true" => AttrValue::Bool(true),
                "false" => AttrValue::Bool(false),
                _ => AttrValue::Text(raw.to_owned()),
            },
            _ => return Err(malformed),
        };
        let name = name.to_lowercase();
        if let Some((slot, index)) = cell_part(&name) {
            if let AttrValue::Int(n) = value {
                let cell = cells.entry(index).or_default();
                *slot(cell) = Some(n);
                continue;
            }
        }
        rest.push((name, value));
    }
    let mut network = Vec::new();
    for (index, cell) in cells {
        match cell {
            Cell {
                mcc: Some(mcc),
                mnc: Some(mnc),
                lac: Some(lac),
                cid: Some(cid),
            } => network.push(serde_json::json!({"mcc": mcc, "mnc": mnc, "lac": lac, "cid": cid})),
            // An incomplete cell keeps its parts as plain attributes.
            partial => {
                for (part, v) in [
                    ("mcc", partial.mcc),
                    ("mnc", partial.mnc),
                    ("lac", partial.lac),
                    ("cell_id", partial.cid),
                ] {
                    if let Some(v) = v {
                        rest.push((format!("{part}{index}"), AttrValue::Int(v)));
                    }
                }
            }
        }
    }
    for (name, value) in rest {
        let (key, value) = match name.as_str() {
            "temp" => (AttrKey::named(DEVICE_TEMP), numeric(value)),
            "bat" => (AttrKey::named(BATTERY_LEVEL), numeric(value)),
            _ => (AttrKey::Named(Cow::Owned(name)), value),
        };
        attributes.push(key, value);
    }
    if !network.is_empty() {
        attributes.push(
            AttrKey::named(NETWORK),
            AttrValue::Text(serde_json::Value::Array(network).to_string()),
        );
    }
    Ok(())
}

type Slot = fn(&mut Cell) -> &mut Option<i64>;

/// `mcc2` → (the mcc slot, 2), likewise `mnc`, `lac`, `cell_id`.
fn cell_part(name: &str) -> Option<(Slot, u32)> {
    let table: [(&str, Slot); 4] = [
        ("mcc", |c| &mut c.mcc),
        ("mnc", |c| &mut c.mnc),
        ("lac", |c| &mut c.lac),
        ("cell_id", |c| &mut c.cid),
    ];
    table.into_iter().find_map(|(prefix, slot)| {
        let index = name.strip_prefix(prefix)?.parse::<u32>().ok()?;
        Some((slot, index))
    })
}

fn int_or_text(raw: &str) -> AttrValue {
    let t = raw.trim();
    if let Ok(n) = t.parse::<i64>() {
        return AttrValue::Int(n);
    }
    match t.parse::<f64>() {
        Ok(n) if n.is_finite() => AttrValue::Float(n),
        _ => AttrValue::Text(raw.to_owned()),
    }
}

/// Text that holds a number becomes the number (`temp:3:18`).
fn numeric(value: AttrValue) -> AttrValue {
    match value {
        AttrValue::Text(t) => int_or_text(&t),
        v => v,
    }
}
