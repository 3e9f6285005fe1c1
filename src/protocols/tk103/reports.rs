//! Frames without a fix of their own. Each is attached to the session's
//! last fix when there is one (a position at that place, marked invalid,
//! at the frame's time), else it is a `Report`.
//!
//! ```text
//! cells    (<id><cmd>[<imei>],{mcc,mnc,lac,cid}\n{…}\n…,<odometer hex 8>)
//! ZC20     (<id>,ZC20,ddmmyy,hhmmss,<battery code>,<battery 0.01 V>,<power 0.1 V>,<installed>)
//! BZ00     (<id>BZ00,mcc,mnc,lac hex,cid hex,…)
//! ZC03     (<id>,ZC03,ddmmyy,hhmmss,$<free text>$)
//! BV00     (<id>BV00<VIN, 17 characters>)
//! DW5x     (<id>,DW5x,mcc,mnc,lac,cid,<n>,[mac*rssi*channel,]×n ddmmyy,hhmmss)
//! ```

use chrono::{DateTime, Utc};

use super::fields::{self, malformed};
use super::header::Header;
use super::position::alarm;
use super::{Ctx, NAME};
use crate::model::{AttrKey, AttrValue, Attributes, Position, Report};
use crate::protocol::{Decoded, MessageKind, Rejected, Reply};

/// A frame's attributes at `time`, placed at the last fix if there is one.
pub(super) fn without_fix(
    h: &Header,
    c: &Ctx,
    time: DateTime<Utc>,
    attributes: Attributes,
) -> Decoded {
    let (positions, reports) = match c.last_fix {
        Some(last) => (
            vec![Position {
                device_id: h.device.clone(),
                fix_time: time,
                received_time: c.received,
                lat: last.lat,
                lon: last.lon,
                altitude_m: last.altitude_m,
                speed_kmh: 0.0,
                course_deg: 0.0,
                satellites: None,
                valid: false,
                protocol: NAME,
                attributes,
            }],
            Vec::new(),
        ),
        None => (
            Vec::new(),
            vec![Report {
                device_id: h.device.clone(),
                time,
                protocol: NAME,
                attributes,
            }],
        ),
    };
    Decoded {
        kind: MessageKind::Data,
        device: Some(h.device.clone()),
        positions,
        reports,
        reply: Reply::NONE,
    }
}

/// A JSON list of cells as the `network` attribute.
fn cells_attr(cells: &[[u64; 4]]) -> AttrValue {
    let list: Vec<serde_json::Value> = cells
        .iter()
        .map(|[mcc, mnc, lac, cid]| serde_json::json!({"mcc": mcc, "mnc": mnc, "lac": lac, "cid": cid}))
        .collect();
    AttrValue::Text(serde_json::Value::Array(list).to_string())
}

fn int(v: u64) -> AttrValue {
    AttrValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// `ddmmyy` and `hhmmss` fields.
fn when(date: Option<&str>, time: Option<&str>, c: &Ctx) -> Result<DateTime<Utc>, Rejected> {
    let d = date
        .and_then(fields::pairs)
        .ok_or(malformed("date (ddmmyy)", 0))?;
    let t = time
        .and_then(fields::pairs)
        .ok_or(malformed("time (hhmmss)", 0))?;
    fields::to_utc([d[2], d[1], d[0]], t, c.time_zone).ok_or(malformed("date and time", 0))
}

/// `{mcc,mnc,lac,cid}` lines and an odometer.
pub(super) fn cells(h: &Header, c: &Ctx) -> Result<Decoded, Rejected> {
    let (list, odometer) = h.rest.rsplit_once(',').ok_or(malformed("cell list", 0))?;
    let list = list
        .trim_start_matches(|ch: char| ch.is_ascii_digit())
        .trim_start_matches(',');
    let cells = list
        .split('\n')
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let inner = l.trim().strip_prefix('{')?.strip_suffix('}')?;
            let v: Vec<u64> = inner.split(',').map(fields::uint).collect::<Option<_>>()?;
            <[u64; 4]>::try_from(v).ok()
        })
        .collect::<Option<Vec<_>>>()
        .ok_or(malformed("cell", 0))?;
    let mut attrs = Attributes::new();
    attrs.push(AttrKey::named("network"), cells_attr(&cells));
    if let Some(o) = fields::hex(odometer.trim()) {
        attrs.push(AttrKey::named("odometer_m"), int(o));
    }
    Ok(without_fix(h, c, c.received, attrs))
}

/// `ZC20`: battery and power.
pub(super) fn battery(h: &Header, c: &Ctx) -> Result<Decoded, Rejected> {
    let f: Vec<&str> = h.rest.split(',').collect();
    let time = when(f.first().copied(), f.get(1).copied(), c)?;
    let num = |i: usize| {
        f.get(i)
            .and_then(|s| fields::uint(s))
            .ok_or(malformed("battery field", i))
    };
    let (level, battery, power) = (num(2)?, num(3)?, num(4)?);
    let mut attrs = Attributes::new();
    let pct = match level {
        6 => Some(100),
        5 => Some(80),
        4 => Some(50),
        3 => Some(20),
        2 => Some(10),
        _ => None,
    };
    if let Some(pct) = pct {
        attrs.push(AttrKey::named("battery_level_pct"), AttrValue::Int(pct));
    }
    if battery != 65535 {
        attrs.push(
            AttrKey::named("battery_v"),
            AttrValue::Float(battery as f64 * 0.01),
        );
    }
    if power != 65535 {
        attrs.push(
            AttrKey::named("power_v"),
            AttrValue::Float(power as f64 * 0.1),
        );
    }
    attrs.push(AttrKey::named("battery_code"), int(level));
    Ok(without_fix(h, c, time, attrs))
}

/// `BZ00`: the serving cell.
pub(super) fn network(h: &Header, c: &Ctx) -> Result<Decoded, Rejected> {
    let f: Vec<&str> = h.rest.trim_start_matches(',').split(',').collect();
    let get = |i: usize| f.get(i).copied().unwrap_or("");
    let cell = [
        fields::uint(get(0)).ok_or(malformed("mcc", 0))?,
        fields::uint(get(1)).ok_or(malformed("mnc", 0))?,
        fields::hex(get(2)).ok_or(malformed("lac", 0))?,
        fields::hex(get(3)).ok_or(malformed("cid", 0))?,
    ];
    let mut attrs = Attributes::new();
    attrs.push(AttrKey::named("network"), cells_attr(&[cell]));
    Ok(without_fix(h, c, c.received, attrs))
}

/// `ZC03`: the device's answer to a command, as free text between `$`.
pub(super) fn command_result(h: &Header, c: &Ctx) -> Result<Decoded, Rejected> {
    let mut parts = h.rest.splitn(3, ',');
    let time = when(parts.next(), parts.next(), c)?;
    let text = parts
        .next()
        .and_then(|t| t.strip_prefix('$'))
        .ok_or(malformed("free text", 0))?;
    let text = text.split_once('$').map_or(text, |(t, _)| t);
    let mut attrs = Attributes::new();
    attrs.push(AttrKey::named("result"), AttrValue::Text(text.to_string()));
    let mut d = without_fix(h, c, time, attrs);
    d.kind = MessageKind::CommandResponse;
    Ok(d)
}

/// `BV00`: the vehicle's VIN.
pub(super) fn vin(h: &Header, c: &Ctx) -> Result<Decoded, Rejected> {
    let vin = h.rest.trim_start_matches(',');
    if vin.len() != 17 || !vin.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(malformed("VIN (17 characters)", 0));
    }
    let mut attrs = Attributes::new();
    attrs.push(AttrKey::named("vin"), AttrValue::Text(vin.to_string()));
    Ok(without_fix(h, c, c.received, attrs))
}

/// `DW5x`: a cell and Wi-Fi access points.
pub(super) fn lbs_wifi(h: &Header, c: &Ctx) -> Result<Decoded, Rejected> {
    let f: Vec<&str> = h.rest.split(',').collect();
    let n = f.len();
    let num = |i: usize| {
        f.get(i)
            .and_then(|s| fields::uint(s))
            .ok_or(malformed("cell field", i))
    };
    let cell = [num(0)?, num(1)?, num(2)?, num(3)?];
    let count = usize::try_from(num(4)?).unwrap_or(usize::MAX);
    let date_at = n.checked_sub(2).ok_or(malformed("date", 0))?;
    let wifi_fields = f.get(5..date_at).unwrap_or_default();
    if wifi_fields.len() != count {
        return Err(malformed("wifi count", 4));
    }
    let wifi = wifi_fields
        .iter()
        .map(|w| {
            let v: Vec<&str> = w.split('*').collect();
            match v[..] {
                [mac, rssi, channel] => Some(serde_json::json!({
                    "mac": mac.to_ascii_lowercase(),
                    "rssi": rssi.parse::<i64>().ok()?,
                    "channel": channel.parse::<u64>().ok()?,
                })),
                _ => None,
            }
        })
        .collect::<Option<Vec<_>>>()
        .ok_or(malformed("wifi access point", 5))?;
    let time = when(
        f.get(date_at).copied(),
        f.get(date_at.saturating_add(1)).copied(),
        c,
    )?;
    let mut attrs = Attributes::new();
    if let Some(a) = alarm(h.command, "0") {
        attrs.push(AttrKey::named("alarm"), AttrValue::Text(a.into()));
    }
    attrs.push(AttrKey::named("network"), cells_attr(&[cell]));
    if !wifi.is_empty() {
        attrs.push(
            AttrKey::named("wifi"),
            AttrValue::Text(serde_json::Value::Array(wifi).to_string()),
        );
    }
    Ok(without_fix(h, c, time, attrs))
}
