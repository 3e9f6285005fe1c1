//! The background-geolocation JSON body (Traccar Client 8+, the
//! `flutter_background_geolocation` / `react-native-background-geolocation`
//! plugins):
//!
//! ```text
//! {"device_id": "…", "location": {…} | [{…}, …]}
//! location: timestamp (ISO or unix), coords {latitude, longitude, speed m/s,
//!           heading, altitude, accuracy}, is_moving, odometer m, event,
//!           battery {level 0..1, is_charging}, activity {type}, extras {…}
//! ```
//!
//! Negative `speed` / `heading` mean "unknown" and become 0. `extras`
//! keys become attributes under their own names.

use serde_json::{Map, Value};

use super::request::{bad_request, Request};
use super::{reply, time, NAME};
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position};
use crate::protocol::{DecodeContext, DecodeError, Decoded, MessageKind, Rejected};

/// m/s → km/h.
const MPS_TO_KMH: f64 = 3.6;

pub(super) fn decode(req: &Request<'_>, ctx: &DecodeContext) -> Result<Decoded, Rejected> {
    let root: Value = serde_json::from_slice(req.body).map_err(|_| bad_request("json body", 0))?;
    let id = match root.get("device_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(Rejected {
                reply: bad_request("device_id", 0).reply,
                ..Rejected::skip(DecodeError::NotIdentified)
            })
        }
    };
    let device = DeviceId::new(&id).map_err(|e| Rejected {
        reply: bad_request("device_id", 0).reply,
        ..Rejected::skip(DecodeError::DeviceId(e))
    })?;
    let locations: Vec<&Map<String, Value>> = match root.get("location") {
        Some(Value::Object(o)) => vec![o],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_object().ok_or(bad_request("location", 0)))
            .collect::<Result<_, _>>()?,
        _ => return Err(bad_request("location", 0)),
    };
    let mut d = Decoded::control(MessageKind::Data, Some(device.clone()), reply::json());
    for loc in locations {
        d.positions.push(location(loc, &device, ctx)?);
    }
    Ok(d)
}

fn f64_at(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64).filter(|n| n.is_finite())
}

fn location(
    loc: &Map<String, Value>,
    device: &DeviceId,
    ctx: &DecodeContext,
) -> Result<Position, Rejected> {
    let coords = loc
        .get("coords")
        .and_then(Value::as_object)
        .ok_or(bad_request("coords", 0))?;
    let lat = f64_at(coords.get("latitude")).ok_or(bad_request("latitude", 0))?;
    let lon = f64_at(coords.get("longitude")).ok_or(bad_request("longitude", 0))?;
    if !Position::valid_coordinates(lat, lon) {
        return Err(bad_request("coordinates", 0));
    }
    let fix_time = match loc.get("timestamp") {
        Some(Value::String(s)) => time::parse(s).ok_or(bad_request("timestamp", 0))?,
        Some(Value::Number(n)) => time::parse(&n.to_string()).ok_or(bad_request("timestamp", 0))?,
        None => ctx.received,
        Some(_) => return Err(bad_request("timestamp", 0)),
    };
    let speed = f64_at(coords.get("speed"))
        .filter(|s| *s >= 0.0)
        .unwrap_or(0.0)
        * MPS_TO_KMH;
    let course = f64_at(coords.get("heading"))
        .filter(|h| *h >= 0.0)
        .map_or(0.0, |h| h.rem_euclid(360.0));
    let altitude = f64_at(coords.get("altitude")).unwrap_or(0.0);

    let mut a = Attributes::new();
    let mut put = |key: &'static str, v: Option<AttrValue>| {
        if let Some(v) = v {
            a.set(AttrKey::named(key), v);
        }
    };
    put(
        "accuracy_m",
        f64_at(coords.get("accuracy")).map(AttrValue::Float),
    );
    put(
        "motion",
        loc.get("is_moving")
            .and_then(Value::as_bool)
            .map(AttrValue::Bool),
    );
    put(
        "odometer_m",
        f64_at(loc.get("odometer")).map(AttrValue::Float),
    );
    put(
        "event",
        loc.get("event")
            .and_then(Value::as_str)
            .map(|s| AttrValue::Text(s.into())),
    );
    let battery = loc.get("battery");
    put(
        "battery_level_pct",
        f64_at(battery.and_then(|b| b.get("level")))
            .filter(|l| *l >= 0.0)
            .map(|l| AttrValue::Float((l * 100.0).round())),
    );
    put(
        "charging",
        battery
            .and_then(|b| b.get("is_charging"))
            .and_then(Value::as_bool)
            .map(AttrValue::Bool),
    );
    put(
        "activity",
        loc.get("activity")
            .and_then(|x| x.get("type"))
            .and_then(Value::as_str)
            .map(|s| AttrValue::Text(s.into())),
    );
    if let Some(extras) = loc.get("extras").and_then(Value::as_object) {
        for (k, v) in extras {
            let value = match v {
                Value::Bool(b) => AttrValue::Bool(*b),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => AttrValue::Int(i),
                    None => AttrValue::Float(n.as_f64().unwrap_or_default()),
                },
                Value::String(s) => AttrValue::Text(s.clone()),
                Value::Null => continue,
                other => AttrValue::Text(other.to_string()),
            };
            super::request::set_extra(&mut a, k, value)?;
        }
    }
    Ok(Position {
        device_id: device.clone(),
        fix_time,
        received_time: ctx.received,
        lat,
        lon,
        altitude_m: altitude,
        speed_kmh: speed,
        course_deg: course,
        satellites: None,
        valid: true,
        protocol: NAME,
        attributes: a,
    })
}
