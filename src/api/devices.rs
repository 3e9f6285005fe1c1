//! Reading positions: a device's latest fix, the caller's own or received
//! devices, and box / radius queries. Recipients read through permits and
//! every device returned to them is logged durably before the answer
//! leaves; the answer names the log entries in `X-Access-Logged`.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Path, Query};
use super::permissions::log_entry;
use super::{now_ms, ApiError, ApiState, Caller};
use crate::access::policy::{self, Permit, PermitScope};
use crate::engine::BBox;
use crate::model::{DeviceId, Position};
use crate::store::LogEntry;

/// Up to this many visible devices a spatial query checks each of them
/// instead of walking the shared index.
const DIRECT_MAX: usize = 4096;

/// Header naming the access-log entries written for this answer.
pub const LOGGED_HEADER: &str = "x-access-logged";

/// Whose devices a read covers.
#[derive(Debug, Clone, Copy, PartialEq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub(super) enum Scope {
    /// The caller's company's own devices (the default).
    Own,
    /// The devices of its active received permissions.
    Received,
}

pub(super) fn scope(v: Option<&str>) -> Result<Scope, ApiError> {
    match v {
        None | Some("own") => Ok(Scope::Own),
        Some("received") => Ok(Scope::Received),
        Some(other) => Err(ApiError::BadRequest(format!(
            "scope must be own or received, not {other:?}"
        ))),
    }
}

/// The log entry for returning `permit`'s device to a recipient.
pub(super) fn read_entry(
    caller: &Caller,
    permit: &Permit,
    query: &str,
    positions: i64,
) -> Option<LogEntry> {
    let PermitScope::Recipient {
        permission,
        shipment_number,
    } = &permit.scope
    else {
        return None;
    };
    let mut e = log_entry(permission, &caller.who, &caller.client, "read");
    e.device_id = Some(permit.device.device_id.clone());
    e.device_name = Some(permit.device.name.clone());
    e.query = Some(query.to_string());
    e.positions = Some(positions);
    e.shipment_number = shipment_number.clone();
    Some(e)
}

/// Writes the entries durably, then returns the answer with their ids.
pub(super) async fn logged(
    s: &ApiState,
    entries: Vec<LogEntry>,
    body: impl serde::Serialize,
) -> Result<Response, ApiError> {
    let ids = s.log.append(entries).await?;
    let mut resp = Json(body).into_response();
    if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
        let v = if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        };
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut()
                .insert(HeaderName::from_static(LOGGED_HEADER), v);
        }
    }
    Ok(resp)
}

pub(super) fn device_json(permit: &Permit, position: Option<&Position>) -> Value {
    let mut v = json!({
        "device_id": permit.device.device_id,
        "name": permit.device.name,
        "position": position,
    });
    if let PermitScope::Recipient {
        permission,
        shipment_number,
    } = &permit.scope
    {
        v["permission_id"] = json!(permission.id);
        v["permission_name"] = json!(permission.name);
        v["provider_company_id"] = json!(permission.provider_company_id);
        v["shipment_number"] = json!(shipment_number);
    }
    v
}

/// Denied reads go to the operator's security log, not the partner's.
pub(super) fn deny(s: &ApiState, caller: &Caller, device_id: &str, query: &str) -> ApiError {
    super::log_refusal(s, caller, None, Some(device_id), query);
    ApiError::NotFound(format!("device {device_id}"))
}

#[utoipa::path(get, path = "/api/v1/devices/{device_id}/position", tag = "positions", security(("api_key" = [])), params(("device_id" = String, Path, description = "device id")), responses((status = 200, description = "latest position visible to the caller (null when none in the window); recipients' reads are logged"), (status = 401, description = "no or wrong key"), (status = 404, description = "not the caller's device nor in an active received permission")))]
pub async fn position(
    caller: Caller,
    State(s): State<ApiState>,
    Path(device_id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(permit) = policy::authorize(&s.dir, &caller.who, &device_id, now_ms()) else {
        return Err(deny(&s, &caller, &device_id, "latest"));
    };
    let p = permit.latest(&s.engine);
    // Serialized straight from the position: no intermediate JSON tree.
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        device_id: &'a str,
        position: &'a Option<Position>,
    }
    let body = Answer {
        device_id: &device_id,
        position: &p,
    };
    match read_entry(&caller, &permit, "latest", i64::from(p.is_some())) {
        Some(e) => logged(&s, vec![e], body).await,
        None => Ok(Json(body).into_response()),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    scope: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/devices", tag = "positions", security(("api_key" = [])), params(("scope" = inline(Option<Scope>), Query, description = "own (default) or received")), responses((status = 200, description = "devices with their latest visible position; recipients' reads are logged (x-access-logged)"), (status = 401, description = "no or wrong key")))]
pub async fn list(
    caller: Caller,
    State(s): State<ApiState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let sc = scope(q.scope.as_deref())?;
    let permits = match sc {
        Scope::Own => policy::own(&s.dir, &caller.who),
        Scope::Received => policy::received(&s.dir, &caller.who, now_ms()),
    };
    let mut items = Vec::with_capacity(permits.len());
    let mut entries = Vec::new();
    for permit in &permits {
        let p = permit.latest(&s.engine);
        if let Some(e) = read_entry(&caller, permit, "list", i64::from(p.is_some())) {
            entries.push(e);
        }
        items.push(device_json(permit, p.as_ref()));
    }
    let body =
        json!({"scope": if sc == Scope::Own { "own" } else { "received" }, "devices": items});
    if entries.is_empty() {
        Ok(Json(body).into_response())
    } else {
        logged(&s, entries, body).await
    }
}

#[derive(Deserialize)]
pub struct SpatialQuery {
    scope: Option<String>,
    bbox: Option<String>,
    near: Option<String>,
    radius_m: Option<f64>,
}

fn numbers(field: &str, v: &str, n: usize) -> Result<Vec<f64>, ApiError> {
    let parts: Vec<f64> = v
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            ApiError::BadRequest(format!("{field} must be {n} comma-separated numbers"))
        })?;
    if parts.len() != n || parts.iter().any(|x| !x.is_finite()) {
        return Err(ApiError::BadRequest(format!(
            "{field} must be {n} comma-separated numbers"
        )));
    }
    Ok(parts)
}

#[utoipa::path(get, path = "/api/v1/positions", tag = "positions", security(("api_key" = [])), params(("scope" = inline(Option<Scope>), Query, description = "own (default) or received"), ("bbox" = Option<String>, Query, description = "minLon,minLat,maxLon,maxLat"), ("near" = Option<String>, Query, description = "lat,lon"), ("radius_m" = Option<f64>, Query, description = "radius for near, metres")), responses((status = 200, description = "visible devices in the box or circle"), (status = 400, description = "invalid geometry"), (status = 401, description = "no or wrong key")))]
pub async fn spatial(
    caller: Caller,
    State(s): State<ApiState>,
    Query(q): Query<SpatialQuery>,
) -> Result<Response, ApiError> {
    let sc = scope(q.scope.as_deref())?;
    enum Shape {
        Box(BBox),
        Circle { lat: f64, lon: f64, radius_m: f64 },
    }
    let shape = match (&q.bbox, &q.near) {
        (Some(b), None) => {
            let v = numbers("bbox", b, 4)?;
            let bbox = BBox::new(v[0], v[1], v[2], v[3])
                .map_err(|e| ApiError::BadRequest(format!("bbox: {e}")))?;
            Shape::Box(bbox)
        }
        (None, Some(n)) => {
            let v = numbers("near", n, 2)?;
            let r = q
                .radius_m
                .ok_or_else(|| ApiError::BadRequest("near needs radius_m".into()))?;
            if !(r.is_finite() && r > 0.0 && r <= 20_100_000.0) {
                return Err(ApiError::BadRequest(
                    "radius_m must be between 0 and 20100000".into(),
                ));
            }
            crate::engine::BBox::new(v[1], v[0], v[1], v[0])
                .map_err(|e| ApiError::BadRequest(format!("near: {e}")))?;
            Shape::Circle {
                lat: v[0],
                lon: v[1],
                radius_m: r,
            }
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give either bbox=minLon,minLat,maxLon,maxLat or near=lat,lon&radius_m=".into(),
            ))
        }
    };
    // A device may be shared by several active permissions: each hit is
    // shown through the earliest-starting one whose window holds its fix,
    // as a single device's read picks (`policy::authorize`).
    let mut permits: HashMap<String, Vec<Permit>> = HashMap::new();
    let all = match sc {
        Scope::Own => policy::own(&s.dir, &caller.who),
        Scope::Received => policy::received(&s.dir, &caller.who, now_ms()),
    };
    for p in all {
        permits
            .entry(p.device.device_id.clone())
            .or_default()
            .push(p);
    }
    for v in permits.values_mut() {
        v.sort_by_key(|p| p.permission().map(|p| (p.valid_from_ms, p.id)));
    }
    // A caller who may see few devices has them checked one by one: the
    // index would walk every company's devices in the shape (a whole-earth
    // box or radius costs the fleet, not the caller).
    let direct: Option<Vec<DeviceId>> = (permits.len() <= DIRECT_MAX).then(|| {
        permits
            .keys()
            .filter_map(|k| DeviceId::new(k).ok())
            .collect()
    });
    let (hits, kind): (Vec<(Position, Option<f64>)>, &str) = match shape {
        Shape::Box(bbox) => {
            let found = match &direct {
                Some(ids) => s.engine.in_bbox_of(ids.iter(), &bbox),
                None => s.engine.in_bbox(&bbox),
            };
            (found.into_iter().map(|p| (p, None)).collect(), "bbox")
        }
        Shape::Circle { lat, lon, radius_m } => {
            let found = match &direct {
                Some(ids) => s.engine.within_radius_of(ids.iter(), lat, lon, radius_m),
                None => s.engine.within_radius(lat, lon, radius_m),
            };
            let found = found.into_iter().map(|(p, d)| (p, Some(d))).collect();
            (found, "near")
        }
    };
    let mut items = Vec::new();
    let mut entries = Vec::new();
    let mut shown = HashSet::new();
    for (p, d) in hits {
        let fix_ms = p.fix_time.timestamp_millis();
        let Some(permit) = permits
            .get(p.device_id.as_str())
            .and_then(|v| v.iter().find(|permit| permit.shows(fix_ms)))
        else {
            continue;
        };
        if let Some(e) = read_entry(&caller, permit, kind, 1) {
            entries.push(e);
            shown.insert(permit.device.device_id.as_str());
        }
        let mut v = device_json(permit, Some(&p));
        if let Some(d) = d {
            v["distance_m"] = json!(d);
        }
        items.push(v);
    }
    // The answer also tells a recipient where each shared device is not
    // ("the truck is not at the depot"), so every device it may see and was
    // not shown is a retrieval too: logged with no position, through its
    // earliest-starting permission. (An owner's reads are not logged.)
    if sc == Scope::Received {
        let mut missed: Vec<&Permit> = permits
            .iter()
            .filter(|(id, _)| !shown.contains(id.as_str()))
            .filter_map(|(_, v)| v.first())
            .collect();
        missed.sort_by(|a, b| a.device.device_id.cmp(&b.device.device_id));
        entries.extend(
            missed
                .into_iter()
                .filter_map(|permit| read_entry(&caller, permit, kind, 0)),
        );
    }
    let body = json!({"devices": items});
    if entries.is_empty() {
        Ok(Json(body).into_response())
    } else {
        logged(&s, entries, body).await
    }
}
