//! Tenancy: the operator creates companies, their users (with API keys)
//! and their devices; company admins create users and revoke keys.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Path, Query};
use super::{check_text, now_ms, parse_window, ApiError, ApiState, Body, Caller, Operator};
use crate::access::directory::{key_hash, new_api_key};
use crate::model::DeviceId;
use crate::store::Role;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCompany {
    id: String,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

#[utoipa::path(post, path = "/api/v1/admin/companies", tag = "operator", security(("admin_token" = [])), request_body = NewCompany, responses((status = 201, description = "company created"), (status = 400, description = "invalid id or name"), (status = 401, description = "no or wrong token"), (status = 403, description = "a company key, not the admin token"), (status = 409, description = "the id exists")))]
pub async fn create_company(
    _: Operator,
    State(s): State<ApiState>,
    Body(c): Body<NewCompany>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_text("name", &c.name)?;
    if c.id.is_empty()
        || c.id.len() > 64
        || !c
            .id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        return Err(ApiError::BadRequest(
            "id must be 1-64 characters of A-Z, a-z, 0-9, '-' or '_'".into(),
        ));
    }
    let company = s.store.create_company(&c.id, &c.name, now_ms()).await?;
    s.dir.add_company(&company.id, &company.name);
    Ok((StatusCode::CREATED, Json(json!(company))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    role: Role,
}

async fn make_user(
    s: &ApiState,
    company: &str,
    u: NewUser,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_text("name", &u.name)?;
    if !s.dir.company_exists(company) {
        return Err(ApiError::NotFound(format!("company {company}")));
    }
    let bounded = s.bounded_creation.lock().await;
    let max = s.limits.max_users_per_company;
    if s.dir.users_in(company) >= max {
        return Err(ApiError::Conflict(format!(
            "company {company} has {max} users, the most allowed (limits.max_users_per_company)"
        )));
    }
    let now = now_ms();
    let user = s.store.create_user(company, &u.name, u.role, now).await?;
    s.dir.add_user(user.clone());
    drop(bounded);
    let key = new_api_key();
    let hash = key_hash(&key);
    let key_id = s.store.create_api_key(user.id, hash, now).await?;
    s.dir.add_key(key_id, user.id, hash);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": user.id,
            "company_id": user.company_id,
            "name": user.name,
            "role": user.role,
            "api_key_id": key_id,
            "api_key": key,
            "note": "the API key is shown only now; trackgate keeps only its hash",
        })),
    ))
}

#[utoipa::path(post, path = "/api/v1/admin/companies/{company}/users", tag = "operator", security(("admin_token" = [])), params(("company" = String, Path, description = "company id")), request_body = NewUser, responses((status = 201, description = "user created; its API key is in the answer, shown once"), (status = 401, description = "no or wrong token"), (status = 403, description = "a company key"), (status = 404, description = "no such company"), (status = 409, description = "the company has limits.max_users_per_company users already")))]
pub async fn create_user(
    _: Operator,
    State(s): State<ApiState>,
    Path(company): Path<String>,
    Body(u): Body<NewUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    make_user(&s, &company, u).await
}

/// A company admin adds a user to their own company.
#[utoipa::path(post, path = "/api/v1/users", tag = "company", security(("api_key" = [])), request_body = NewUser, responses((status = 201, description = "user created in the caller's company; API key shown once"), (status = 401, description = "no or wrong key"), (status = 403, description = "not a company admin"), (status = 409, description = "the company has limits.max_users_per_company users already")))]
pub async fn create_own_user(
    caller: Caller,
    State(s): State<ApiState>,
    Body(u): Body<NewUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    make_user(&s, &caller.who.company_id.clone(), u).await
}

/// Revokes an API key: the caller's own, or (company admin) any of the company's.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "company", security(("api_key" = [])), params(("id" = i64, Path, description = "API key id")), responses((status = 204, description = "revoked"), (status = 401, description = "no or wrong key"), (status = 403, description = "a colleague's key, and the caller is not an admin"), (status = 404, description = "no such key visible to the caller")))]
pub async fn revoke_key(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let owner = s
        .dir
        .key_owner(id)
        .ok_or_else(|| ApiError::NotFound(format!("api key {id}")))?;
    // Another company's key does not exist for the caller; a colleague's
    // is there, but only the company's admins may revoke it.
    if owner.company_id != caller.who.company_id {
        return Err(ApiError::NotFound(format!("api key {id}")));
    }
    if owner.user_id != caller.who.user_id && caller.who.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only the company's admins revoke a colleague's key",
        ));
    }
    s.store.revoke_api_key(id, now_ms()).await?;
    s.dir.remove_key(id);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    device_id: String,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

#[utoipa::path(post, path = "/api/v1/admin/companies/{company}/devices", tag = "operator", security(("admin_token" = [])), params(("company" = String, Path, description = "company id")), request_body = NewDevice, responses((status = 201, description = "device registered"), (status = 401, description = "no or wrong token"), (status = 403, description = "a company key"), (status = 404, description = "no such company"), (status = 409, description = "the device is owned already")))]
pub async fn create_device(
    _: Operator,
    State(s): State<ApiState>,
    Path(company): Path<String>,
    Body(d): Body<NewDevice>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_text("name", &d.name)?;
    DeviceId::new(&d.device_id).map_err(|e| ApiError::BadRequest(format!("device_id: {e}")))?;
    if !s.dir.company_exists(&company) {
        return Err(ApiError::NotFound(format!("company {company}")));
    }
    let device = s
        .store
        .create_device(&company, &d.device_id, &d.name, now_ms())
        .await?;
    s.dir.add_device(device.clone());
    Ok((StatusCode::CREATED, Json(json!(device))))
}

#[derive(Deserialize)]
pub struct SecurityLogQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
}

/// Most entries one security-log answer holds.
const MAX_SECURITY_ENTRIES: u32 = 10_000;

#[utoipa::path(get, path = "/api/v1/admin/security-log", tag = "operator", security(("admin_token" = [])), params(("from" = Option<String>, Query, description = "RFC 3339, inclusive"), ("to" = Option<String>, Query, description = "RFC 3339, exclusive"), ("limit" = Option<u32>, Query, description = "most entries, newest first (default 1000, at most 10000)")), responses((status = 200, description = "refused calls: denied device reads and refused calls on permissions, newest first"), (status = 400, description = "bad time or limit"), (status = 401, description = "no or wrong token"), (status = 403, description = "a company key")))]
pub async fn security_log(
    _: Operator,
    State(s): State<ApiState>,
    Query(q): Query<SecurityLogQuery>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = parse_window(q.from.as_deref(), q.to.as_deref())?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=MAX_SECURITY_ENTRIES).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_SECURITY_ENTRIES}"
        )));
    }
    let entries = s.store.security_log(from, to, limit).await?;
    Ok(Json(json!({ "entries": entries })))
}

#[utoipa::path(get, path = "/api/v1/admin/unknown-devices", tag = "operator", security(("admin_token" = [])), responses((status = 200, description = "devices that sent data nobody registered them for, most recent first"), (status = 401, description = "no or wrong token"), (status = 403, description = "a company key")))]
pub async fn unknown_devices(_: Operator, State(s): State<ApiState>) -> Json<Value> {
    Json(json!(s.dir.unknown_devices()))
}
