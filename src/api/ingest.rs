//! HTTP push ingestion: a provider's back end posts positions of its own
//! devices. Same pipeline and rules as device connections; each item is
//! judged on its own and the answer says which were taken.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::value::RawValue;

use super::{ApiError, ApiState, Body, Caller};
use crate::model::{Position, PositionIn};
use crate::store::Role;

/// Most positions in one request (the body limit bounds bytes as well).
pub const MAX_ITEMS: usize = 1000;
/// `Position::protocol` and metrics label of HTTP-pushed positions.
pub const PROTOCOL: &str = "http";

/// One item's outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemResult {
    pub index: usize,
    /// `accepted`, `unknown_device` (not a device of the caller's company)
    /// or `invalid` (see `error`).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer: how many items were taken and each item's outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushResult {
    pub accepted: usize,
    pub rejected: usize,
    pub results: Vec<ItemResult>,
}

/// Accepts a JSON array of positions in trackgate's public form.
#[utoipa::path(post, path = "/api/v1/ingest/positions", tag = "ingest", security(("api_key" = [])),
    request_body(content = Vec<Value>, description = "positions: device_id, fix_time, lat, lon, optional altitude_m, speed_kmh, course_deg, satellites, valid, attributes"),
    responses(
        (status = 200, description = "every item accepted", body = PushResult),
        (status = 207, description = "some or no items accepted: per-item results", body = PushResult),
        (status = 400, description = "not a JSON array, empty, or more than 1000 items"),
        (status = 401, description = "no or wrong API key"),
        (status = 403, description = "the key's user lacks the ingest role"),
        (status = 413, description = "body over 64 KiB"),
        (status = 503, description = "the pipeline cannot accept now; nothing was taken, retry")))]
pub async fn positions(
    State(s): State<ApiState>,
    caller: Caller,
    // Each item kept as its own JSON text and read straight into a
    // position: building a `Value` tree first and converting it took a
    // third of a push's CPU (benches/README.md, HTTP push).
    Body(items): Body<Vec<Box<RawValue>>>,
) -> Result<Response, ApiError> {
    if caller.who.role != Role::Ingest {
        return Err(ApiError::Forbidden(
            "this needs the key of a user with the ingest role",
        ));
    }
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(ApiError::BadRequest(format!(
            "send 1..={MAX_ITEMS} positions, not {}",
            items.len()
        )));
    }
    let received = chrono::Utc::now();
    let mut results = Vec::with_capacity(items.len());
    let mut accepted: Vec<Position> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let text = item.get();
        let parsed = if text.starts_with('{') {
            serde_json::from_str::<PositionIn>(text).map_err(|e| ("invalid", e.to_string()))
        } else {
            Err(("invalid", "not a JSON object".to_string()))
        };
        let outcome = parsed
            .and_then(|p| {
                p.into_position(None, PROTOCOL, received)
                    .map_err(|e| ("invalid", e.to_string()))
            })
            .and_then(|p| {
                // Only the caller's company's own devices; whether another
                // company owns the id is not revealed.
                match s.dir.device(p.device_id.as_str()) {
                    Some(d) if d.company_id == caller.who.company_id => Ok(p),
                    _ => {
                        s.ingest.unknown_devices.inc();
                        Err((
                            "unknown_device",
                            format!("{} is not a device of your company", p.device_id),
                        ))
                    }
                }
            });
        match outcome {
            Ok(p) => {
                accepted.push(p);
                results.push(ItemResult {
                    index,
                    status: "accepted",
                    error: None,
                });
            }
            Err((status, error)) => {
                if status == "invalid" {
                    s.ingest.decode_error("invalid_value");
                }
                results.push(ItemResult {
                    index,
                    status,
                    error: Some(error),
                })
            }
        }
    }
    let n = accepted.len();
    if n > 0 {
        s.pipeline
            .submit(accepted)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        s.ingest.positions.inc_by(n as u64);
    }
    let rejected = results.len() - n;
    let status = if rejected == 0 {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((
        status,
        Json(PushResult {
            accepted: n,
            rejected,
            results,
        }),
    )
        .into_response())
}
