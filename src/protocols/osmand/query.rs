//! Query-string and form parameters (OsmAnd, Traccar Client, many scripts).
//!
//! ```text
//! id | deviceid          device id (required)
//! lat, lon | location=lat,lon
//! timestamp             unix s / ms / ISO; absent: the time received
//! speed                 knots → km/h
//! bearing | heading     course °
//! altitude              m
//! valid                 true/false/1/0 (default true)
//! accuracy, hdop, batt, charge, driverUniqueId, cell=mcc,mnc,lac,cid[,rssi], wifi=mac,rssi
//! anything else         an attribute under its own name: number, boolean or text
//! ```

use chrono::{DateTime, Utc};

use super::request::{bad_request, set_extra, Request};
use super::{reply, time, NAME};
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position, Report};
use crate::protocol::{DecodeContext, DecodeError, Decoded, MessageKind, Rejected};

/// Knots → km/h (OsmAnd sends speed in knots).
const KNOTS_TO_KMH: f64 = 1.852;

/// What the parameters filled in.
#[derive(Default)]
struct Fix {
    lat: Option<f64>,
    lon: Option<f64>,
    time: Option<DateTime<Utc>>,
    speed_kmh: f64,
    course: f64,
    altitude: f64,
    valid: bool,
}

fn number(v: &str, what: &'static str) -> Result<f64, Rejected> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or(bad_request(what, 0))
}

/// A parameter value as the most specific attribute value it reads as.
pub(super) fn value(v: &str) -> AttrValue {
    if let Ok(n) = v.parse::<i64>() {
        return AttrValue::Int(n);
    }
    match v.parse::<f64>() {
        Ok(n) if n.is_finite() => AttrValue::Float(n),
        _ => match v {
            "true" => AttrValue::Bool(true),
            "false" => AttrValue::Bool(false),
            _ => AttrValue::Text(v.to_string()),
        },
    }
}

pub(super) fn decode(req: &Request<'_>, ctx: &DecodeContext) -> Result<Decoded, Rejected> {
    let params = req.params();
    let mut device = None;
    let mut fix = Fix {
        valid: true,
        ..Fix::default()
    };
    let mut a = Attributes::new();
    let mut cells = Vec::new();
    let mut wifi = Vec::new();
    for (k, v) in &params {
        match k.as_ref() {
            "id" | "deviceid" => {
                device = Some(DeviceId::new(v).map_err(|e| Rejected {
                    reply: bad_request("device id", 0).reply,
                    ..Rejected::skip(DecodeError::DeviceId(e))
                })?)
            }
            "lat" => fix.lat = Some(number(v, "lat")?),
            "lon" => fix.lon = Some(number(v, "lon")?),
            "location" => {
                let (lat, lon) = v.split_once(',').ok_or(bad_request("location", 0))?;
                fix.lat = Some(number(lat, "location")?);
                fix.lon = Some(number(lon, "location")?);
            }
            "timestamp" => fix.time = Some(time::parse(v).ok_or(bad_request("timestamp", 0))?),
            "speed" => fix.speed_kmh = number(v, "speed")? * KNOTS_TO_KMH,
            "bearing" | "heading" => fix.course = number(v, "bearing")?,
            "altitude" => fix.altitude = number(v, "altitude")?,
            "valid" => fix.valid = matches!(v.as_ref(), "true" | "1"),
            "accuracy" => a.set(
                AttrKey::named("accuracy_m"),
                AttrValue::Float(number(v, "accuracy")?),
            ),
            "hdop" => a.set(AttrKey::named("hdop"), AttrValue::Float(number(v, "hdop")?)),
            "batt" => a.set(
                AttrKey::named("battery_level_pct"),
                AttrValue::Float(number(v, "batt")?),
            ),
            "charge" => a.set(
                AttrKey::named("charging"),
                AttrValue::Bool(v == "true" || v == "1"),
            ),
            "driverUniqueId" => a.set(
                AttrKey::named("driver_unique_id"),
                AttrValue::Text(v.to_string()),
            ),
            "cell" | "wifi"
                if cells.len().saturating_add(wifi.len()) >= crate::model::MAX_ATTRIBUTES =>
            {
                return Err(bad_request("cell and wifi", 0))
            }
            "cell" => cells.push(cell(v)?),
            "wifi" => wifi.push(access_point(v)?),
            _ => set_extra(&mut a, k, value(v))?,
        }
    }
    let Some(device) = device else {
        return Err(Rejected {
            reply: bad_request("id", 0).reply,
            ..Rejected::skip(DecodeError::NotIdentified)
        });
    };
    if !cells.is_empty() {
        a.set(
            AttrKey::named("network"),
            AttrValue::Text(serde_json::Value::Array(cells).to_string()),
        );
    }
    if !wifi.is_empty() {
        a.set(
            AttrKey::named("wifi"),
            AttrValue::Text(serde_json::Value::Array(wifi).to_string()),
        );
    }
    let mut d = Decoded::control(MessageKind::Data, Some(device.clone()), reply::query());
    let time = fix.time.unwrap_or(ctx.received);
    match (fix.lat, fix.lon) {
        (Some(lat), Some(lon)) => {
            d.positions
                .push(position(device, time, lat, lon, &fix, a, ctx)?);
        }
        (None, None) => d.reports.push(Report {
            device_id: device,
            time,
            protocol: NAME,
            attributes: a,
        }),
        _ => return Err(bad_request("lat and lon together", 0)),
    }
    Ok(d)
}

fn position(
    device: DeviceId,
    fix_time: DateTime<Utc>,
    lat: f64,
    lon: f64,
    fix: &Fix,
    attributes: Attributes,
    ctx: &DecodeContext,
) -> Result<Position, Rejected> {
    if !Position::valid_coordinates(lat, lon) {
        return Err(bad_request("coordinates", 0));
    }
    if fix.speed_kmh < 0.0 {
        return Err(bad_request("speed", 0));
    }
    Ok(Position {
        device_id: device,
        fix_time,
        received_time: ctx.received,
        lat,
        lon,
        altitude_m: fix.altitude,
        speed_kmh: fix.speed_kmh,
        course_deg: fix.course.rem_euclid(360.0),
        satellites: None,
        valid: fix.valid,
        protocol: NAME,
        attributes,
    })
}

/// `mcc,mnc,lac,cid[,rssi]`, decimal.
fn cell(v: &str) -> Result<serde_json::Value, Rejected> {
    let parts: Result<Vec<i64>, _> = v.split(',').map(|p| p.trim().parse::<i64>()).collect();
    match parts.as_deref() {
        Ok([mcc, mnc, lac, cid]) => {
            Ok(serde_json::json!({"mcc": mcc, "mnc": mnc, "lac": lac, "cid": cid}))
        }
        Ok([mcc, mnc, lac, cid, rssi]) => {
            Ok(serde_json::json!({"mcc": mcc, "mnc": mnc, "lac": lac, "cid": cid, "rssi": rssi}))
        }
        _ => Err(bad_request("cell", 0)),
    }
}

/// `mac,rssi`; the MAC may use `-` or `:`.
fn access_point(v: &str) -> Result<serde_json::Value, Rejected> {
    let (mac, rssi) = v.split_once(',').ok_or(bad_request("wifi", 0))?;
    let rssi: i64 = rssi
        .trim()
        .parse()
        .map_err(|_| bad_request("wifi rssi", 0))?;
    Ok(serde_json::json!({"mac": mac.replace('-', ":").to_ascii_lowercase(), "rssi": rssi}))
}
