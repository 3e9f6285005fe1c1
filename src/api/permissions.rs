//! Partner permissions: grant, list, revoke, shipment numbers, and the
//! per-permission access log download. Every change is logged for both
//! sides of the permission.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Path, Query};
use super::{
    check_text, ms_to_rfc3339, now_ms, parse_time, ApiError, ApiState, Body, Caller, Client,
    MAX_TEXT,
};
use crate::access::policy::{self, state};
use crate::access::Principal;
use crate::store::{LogEntry, NewPermission, Permission};

/// Most access-log entries one download carries, in every format (below
/// the 1,048,575 rows an Excel worksheet holds); a longer log is
/// downloaded in from/to slices.
pub const MAX_LOG_DOWNLOAD: u32 = 1_000_000;
/// Log downloads prepared at once (others wait their turn): each may hold
/// up to [`MAX_LOG_DOWNLOAD`] entries and their encoding in memory, so
/// parallel downloads must not multiply that without bound.
static LOG_DOWNLOADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The JSON form of a permission's log.
#[derive(serde::Serialize)]
struct LogPage<'a> {
    permission_id: i64,
    entries: &'a [crate::store::StoredEntry],
}
// Every download the API allows fits one worksheet, so `export::xlsx`'s own
// row check guards only library callers.
const _: () = assert!(MAX_LOG_DOWNLOAD as usize <= crate::access::export::MAX_XLSX_ENTRIES);

/// Told to every recipient with each received permission, before any read.
pub const ACCESS_NOTICE: &str =
    "Every retrieval of a shared device's data is logged for the provider: who, when, which device, through which channel, and the shipment number.";

/// Most devices in one permission.
const MAX_DEVICES: usize = 10_000;

/// A partner-log entry for `event` on `p`, under the caller's channel.
pub(crate) fn log_entry(p: &Permission, who: &Principal, client: &Client, event: &str) -> LogEntry {
    LogEntry {
        scope: "partner",
        time_ms: now_ms(),
        event: event.to_string(),
        permission_id: Some(p.id),
        permission_name: Some(p.name.clone()),
        provider_company_id: Some(p.provider_company_id.clone()),
        recipient_company_id: Some(p.recipient_company_id.clone()),
        user_id: Some(who.user_id),
        api_key_id: Some(who.api_key_id),
        channel: Some(client.channel.to_string()),
        client_addr: client.addr.clone(),
        user_agent: client.user_agent.clone(),
        ..Default::default()
    }
}

fn permission_json(s: &ApiState, p: &Permission, now: i64, received: bool) -> Value {
    let devices: Vec<Value> = p
        .devices
        .iter()
        .map(|(id, sn)| {
            let name = s.dir.device(id).map(|d| d.name).unwrap_or_default();
            json!({"device_id": id, "name": name, "shipment_number": sn})
        })
        .collect();
    let mut v = json!({
        "id": p.id,
        "name": p.name,
        "kind": if p.temporary { "temporary" } else { "partner" },
        "provider_company_id": p.provider_company_id,
        "recipient_company_id": p.recipient_company_id,
        "recipient_user_id": p.recipient_user_id,
        "valid_from": ms_to_rfc3339(p.valid_from_ms),
        "valid_until": p.valid_until_ms.map(ms_to_rfc3339),
        "state": state(p, now),
        "created_at": ms_to_rfc3339(p.created_ms),
        "revoked_at": p.revoked_ms.map(ms_to_rfc3339),
        "devices": devices,
    });
    if received {
        v["access_logged"] = json!(true);
        v["notice"] = json!(ACCESS_NOTICE);
    }
    v
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    recipient_company_id: String,
    recipient_user_id: Option<i64>,
    device_ids: Vec<String>,
    #[schema(format = DateTime)]
    valid_from: Option<String>,
    #[schema(format = DateTime)]
    valid_until: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/permissions", tag = "permissions", security(("api_key" = [])), request_body = Grant, responses((status = 201, description = "permission granted"), (status = 400, description = "invalid request, e.g. a device that is not the provider's"), (status = 401, description = "no or wrong key"), (status = 403, description = "not a company admin"), (status = 409, description = "the provider holds limits.max_open_permissions open permissions, would share more than limits.max_open_shared_devices devices in them, or has granted limits.max_permissions_per_company in all")))]
pub async fn create(
    caller: Caller,
    State(s): State<ApiState>,
    Body(mut g): Body<Grant>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    check_text("name", &g.name)?;
    let who = &caller.who;
    if g.recipient_company_id == who.company_id {
        return Err(ApiError::BadRequest(
            "a permission is granted to another company".into(),
        ));
    }
    if !s.dir.company_exists(&g.recipient_company_id) {
        return Err(ApiError::BadRequest(format!(
            "recipient company {} does not exist",
            g.recipient_company_id
        )));
    }
    if let Some(u) = g.recipient_user_id {
        if s.dir
            .user(u)
            .is_none_or(|u| u.company_id != g.recipient_company_id)
        {
            return Err(ApiError::BadRequest(format!(
                "user {u} is not a user of company {}",
                g.recipient_company_id
            )));
        }
    }
    if g.device_ids.is_empty() || g.device_ids.len() > MAX_DEVICES {
        return Err(ApiError::BadRequest(format!(
            "device_ids must list 1 to {MAX_DEVICES} devices"
        )));
    }
    for d in &g.device_ids {
        // Someone else's (or an unknown) device: the same answer, nothing revealed.
        if s.dir
            .device(d)
            .is_none_or(|dev| dev.company_id != who.company_id)
        {
            return Err(ApiError::BadRequest(format!(
                "device {d} is not one of your company's devices"
            )));
        }
    }
    // A device listed twice is shared once.
    g.device_ids.sort_unstable();
    g.device_ids.dedup();
    let now = now_ms();
    let bounded = s.bounded_creation.lock().await;
    let open = |p: &Permission| {
        p.provider_company_id == who.company_id
            && matches!(
                state(p, now),
                policy::PermissionState::Active | policy::PermissionState::Scheduled
            )
    };
    let max = s.limits.max_open_permissions;
    if s.dir.count_permissions_of(&who.company_id, open) >= max {
        return Err(ApiError::Conflict(format!(
            "your company holds {max} open permissions, the most allowed (limits.max_open_permissions); revoke one first"
        )));
    }
    // Every open permission's devices are held in memory and listed (and
    // logged) with each of the recipient's list reads: bounded too.
    let max = s.limits.max_open_shared_devices;
    let shared = s
        .dir
        .sum_permissions_of(&who.company_id, |p| usize::from(open(p)) * p.devices.len());
    if shared.saturating_add(g.device_ids.len()) > max {
        return Err(ApiError::Conflict(format!(
            "your open permissions share {shared} devices; {} more would pass {max}, the most allowed (limits.max_open_shared_devices); revoke one first",
            g.device_ids.len()
        )));
    }
    // Revoked and expired permissions stay (their access logs are the
    // provider's record), so grant-and-revoke cannot grow storage for ever.
    let max = s.limits.max_permissions_per_company;
    let granted = s
        .dir
        .count_permissions_of(&who.company_id, |p| p.provider_company_id == who.company_id);
    if granted >= max {
        return Err(ApiError::Conflict(format!(
            "your company has granted {max} permissions in all, revoked and expired ones included, the most allowed (limits.max_permissions_per_company)"
        )));
    }
    let from = g
        .valid_from
        .as_deref()
        .map(|v| parse_time("valid_from", v))
        .transpose()?;
    let until = g
        .valid_until
        .as_deref()
        .map(|v| parse_time("valid_until", v))
        .transpose()?;
    let valid_from_ms = from.unwrap_or(now);
    if let Some(u) = until {
        if u <= valid_from_ms {
            return Err(ApiError::BadRequest(
                "valid_until must be after valid_from".into(),
            ));
        }
    }
    let p = s
        .store
        .create_permission(&NewPermission {
            name: g.name,
            provider_company_id: who.company_id.clone(),
            recipient_company_id: g.recipient_company_id,
            recipient_user_id: g.recipient_user_id,
            device_ids: g.device_ids,
            valid_from_ms,
            valid_until_ms: until,
            temporary: from.is_some() || until.is_some(),
            created_ms: now,
            created_by_user_id: who.user_id,
        })
        .await?;
    s.dir.put_permission(p.clone());
    drop(bounded);
    let mut e = log_entry(&p, who, &caller.client, "grant");
    e.detail = Some(format!(
        "devices: {}",
        p.devices
            .iter()
            .map(|(d, _)| d.as_str())
            .collect::<Vec<_>>()
            .join(",")
    ));
    s.log.append(vec![e]).await?;
    Ok((
        StatusCode::CREATED,
        Json(permission_json(&s, &p, now, false)),
    ))
}

/// Permission `id` if `who` is its provider or recipient; 404 otherwise,
/// so its existence is not revealed.
fn party_permission(
    s: &ApiState,
    caller: &Caller,
    id: i64,
    query: &str,
) -> Result<std::sync::Arc<Permission>, ApiError> {
    s.dir
        .permission(id)
        .filter(|p| policy::is_party(p, &caller.who))
        .ok_or_else(|| {
            denied(s, caller, id, None, query);
            ApiError::NotFound(format!("permission {id}"))
        })
}

/// A refused call on permission `id`, for the operator's security log (not
/// the partners' log: the caller may be neither party).
fn denied(s: &ApiState, caller: &Caller, id: i64, device_id: Option<&str>, query: &str) {
    super::log_refusal(s, caller, Some(id), device_id, query);
}

#[derive(Deserialize)]
pub struct ListQuery {
    side: Option<String>,
}

/// Which of a company's permissions a list shows.
#[derive(Clone, Copy, PartialEq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
enum Side {
    /// Those it granted as provider (the default).
    Granted,
    /// Those it holds as recipient.
    Received,
}

#[utoipa::path(get, path = "/api/v1/permissions", tag = "permissions", security(("api_key" = [])), params(("side" = inline(Option<Side>), Query, description = "granted (default) or received")), responses((status = 200, description = "permissions with devices, window, state and shipment numbers"), (status = 401, description = "no or wrong key")))]
pub async fn list(
    caller: Caller,
    State(s): State<ApiState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let who = &caller.who;
    let now = now_ms();
    let side = match q.side.as_deref() {
        None | Some("granted") => Side::Granted,
        Some("received") => Side::Received,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "side must be granted or received, not {other:?}"
            )))
        }
    };
    let received = side == Side::Received;
    let perms = if received {
        s.dir
            .permissions_of(&who.company_id, |p| policy::is_recipient(p, who))
    } else {
        s.dir
            .permissions_of(&who.company_id, |p| p.provider_company_id == who.company_id)
    };
    let items: Vec<Value> = perms
        .iter()
        .map(|p| permission_json(&s, p, now, received))
        .collect();
    let mut body =
        json!({"side": if received { "received" } else { "granted" }, "permissions": items});
    if received {
        body["notice"] = json!(ACCESS_NOTICE);
    }
    Ok(Json(body))
}

#[utoipa::path(delete, path = "/api/v1/permissions/{id}", tag = "permissions", security(("api_key" = [])), params(("id" = i64, Path, description = "permission id")), responses((status = 204, description = "revoked, effective for the next request"), (status = 401, description = "no or wrong key"), (status = 403, description = "not the provider's admin"), (status = 404, description = "no such permission visible to the caller"), (status = 409, description = "revoked already")))]
pub async fn revoke(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let who = &caller.who;
    let p = party_permission(&s, &caller, id, "revoke")?;
    if p.provider_company_id != who.company_id {
        denied(&s, &caller, id, None, "revoke");
        return Err(ApiError::Forbidden(
            "only the provider can revoke a permission",
        ));
    }
    caller.require_admin()?;
    if p.revoked_ms.is_some() {
        return Err(ApiError::Conflict(format!(
            "permission {id} is already revoked"
        )));
    }
    let now = now_ms();
    s.store.revoke_permission(id, now).await?;
    s.dir.update_permission(id, |p| p.revoked_ms = Some(now));
    s.log
        .append(vec![log_entry(&p, who, &caller.client, "revoke")])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentNumber {
    shipment_number: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/permissions/{id}/devices/{device_id}/shipment-number", tag = "permissions", security(("api_key" = [])), params(("id" = i64, Path, description = "permission id"), ("device_id" = String, Path, description = "device id")), request_body = ShipmentNumber, responses((status = 200, description = "set (or cleared with null); logged for the provider"), (status = 400, description = "too long or control characters"), (status = 401, description = "no or wrong key"), (status = 404, description = "not a device of the caller's active received permission")))]
pub async fn shipment_number(
    caller: Caller,
    State(s): State<ApiState>,
    Path((id, device_id)): Path<(i64, String)>,
    Body(b): Body<ShipmentNumber>,
) -> Result<Json<Value>, ApiError> {
    let who = &caller.who;
    let now = now_ms();
    let not_found = || {
        denied(&s, &caller, id, Some(&device_id), "shipment_number");
        ApiError::NotFound(format!("device {device_id} in permission {id}"))
    };
    let p = s
        .dir
        .permission(id)
        .filter(|p| policy::is_recipient(p, who))
        .filter(|p| state(p, now) == crate::access::PermissionState::Active)
        .ok_or_else(not_found)?;
    let old = p
        .devices
        .iter()
        .find(|(d, _)| *d == device_id)
        .ok_or_else(not_found)?
        .1
        .clone();
    let new = b
        .shipment_number
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if let Some(n) = &new {
        if n.chars().count() > MAX_TEXT {
            return Err(ApiError::BadRequest(format!(
                "shipment_number is longer than {MAX_TEXT} characters"
            )));
        }
        if n.chars().any(char::is_control) {
            return Err(ApiError::BadRequest(
                "shipment_number must not contain control characters".into(),
            ));
        }
    }
    s.store
        .set_shipment_number(id, &device_id, new.as_deref())
        .await?;
    s.dir.update_permission(id, |p| {
        if let Some(slot) = p.devices.iter_mut().find(|(d, _)| *d == device_id) {
            slot.1 = new.clone();
        }
    });
    let mut e = log_entry(&p, who, &caller.client, "shipment_number");
    e.device_id = Some(device_id.clone());
    e.device_name = s.dir.device(&device_id).map(|d| d.name);
    e.shipment_number = new.clone();
    e.detail = Some(format!("previous: {}", old.as_deref().unwrap_or("(none)")));
    s.log.append(vec![e]).await?;
    Ok(Json(
        json!({"permission_id": id, "device_id": device_id, "shipment_number": new}),
    ))
}

/// The access log's download formats.
#[derive(Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
enum LogFormat {
    Json,
    Csv,
    Xlsx,
}

impl LogFormat {
    fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
        }
    }
}

#[derive(Deserialize)]
pub struct LogQuery {
    format: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/permissions/{id}/access-log", tag = "permissions", security(("api_key" = [])), params(("id" = i64, Path, description = "permission id"), ("format" = inline(Option<LogFormat>), Query, description = "json (default), csv or xlsx"), ("from" = Option<String>, Query, description = "RFC 3339, inclusive"), ("to" = Option<String>, Query, description = "RFC 3339, exclusive")), responses((status = 200, description = "the permission's access log"), (status = 401, description = "no or wrong key"), (status = 404, description = "not a party of this permission")))]
pub async fn access_log(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<i64>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let who = &caller.who;
    let p = party_permission(&s, &caller, id, "access_log")?;
    let (from, to) = super::parse_window(q.from.as_deref(), q.to.as_deref())?;
    let format = match q.format.as_deref() {
        None | Some("json") => LogFormat::Json,
        Some("csv") => LogFormat::Csv,
        Some("xlsx") => LogFormat::Xlsx,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format must be json, csv or xlsx, not {other:?}"
            )))
        }
    };
    // Held until the answer is encoded: its entries and bytes are in memory.
    let _held = LOG_DOWNLOADS
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("log downloads: {e}")))?;
    let entries = s
        .store
        .permission_log(id, from, to, MAX_LOG_DOWNLOAD.saturating_add(1))
        .await?;
    if entries.len() > MAX_LOG_DOWNLOAD as usize {
        return Err(ApiError::BadRequest(format!(
            "more than {MAX_LOG_DOWNLOAD} log entries in this range; narrow it with from/to"
        )));
    }
    // The log is the provider's record of its partner's access; the
    // recipient reads it too, but not where the provider's staff work from.
    let mut entries = entries;
    if who.company_id != p.provider_company_id {
        let mut company: HashMap<i64, Option<String>> = HashMap::new();
        for e in &mut entries {
            let Some(user) = e.entry.user_id else {
                continue;
            };
            let theirs = company
                .entry(user)
                .or_insert_with(|| s.dir.user(user).map(|u| u.company_id))
                .as_deref()
                != Some(who.company_id.as_str());
            if theirs {
                e.entry.client_addr = None;
                e.entry.user_agent = None;
            }
        }
    }
    let mut e = log_entry(&p, who, &caller.client, "log_download");
    e.channel = Some("export".into());
    e.query = Some(format!("access_log {}", format.name()));
    e.positions = Some(0);
    s.log.append(vec![e]).await?;
    let file = |ext: &str| format!("attachment; filename=\"permission-{id}-access-log.{ext}\"");
    Ok(match format {
        LogFormat::Csv => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, file("csv")),
            ],
            crate::access::export::csv(&entries),
        )
            .into_response(),
        LogFormat::Xlsx => {
            let device_names: Vec<(String, String)> = p
                .devices
                .iter()
                .map(|(d, _)| {
                    (
                        d.clone(),
                        s.dir.device(d).map(|d| d.name).unwrap_or_default(),
                    )
                })
                .collect();
            let now = now_ms();
            let summary = crate::access::export::Summary {
                permission: &p,
                state: state(&p, now),
                device_names: &device_names,
                generated_ms: now,
            };
            let bytes = crate::access::export::xlsx(&summary, &entries).map_err(|e| match e {
                // The client's choice to make: CSV, or a shorter from/to.
                crate::access::export::ExportError::TooManyRows { .. } => {
                    ApiError::BadRequest(e.to_string())
                }
                crate::access::export::ExportError::Xlsx(_) => ApiError::Internal(e.to_string()),
            })?;
            (
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (header::CONTENT_DISPOSITION, file("xlsx")),
                ],
                bytes,
            )
                .into_response()
        }
        // Serialized straight from the entries: a `Value` tree of a
        // million entries would take several times their memory.
        LogFormat::Json => Json(LogPage {
            permission_id: id,
            entries: &entries,
        })
        .into_response(),
    })
}
