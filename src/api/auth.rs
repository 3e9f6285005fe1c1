//! Authentication extractors: `Caller` (a company user's API key) and
//! `Operator` (the admin token). Keys are compared by SHA-256 hash; the
//! plain key is never stored.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::{ApiError, ApiState};
use crate::access::directory::key_hash;
use crate::access::Principal;
use crate::store::Role;

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` is `Bearer`.
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Where a request came from, for the access log.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub addr: Option<String>,
    pub user_agent: Option<String>,
}

/// An authenticated company user.
pub struct Caller {
    pub who: Principal,
    pub client: Client,
}

impl Caller {
    /// Fails unless the caller is an admin of their company.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.who.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this needs a company admin's key"))
        }
    }
}

fn client(parts: &Parts) -> Client {
    Client {
        addr: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        user_agent: parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let key = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let who = state.dir.authenticate(key).ok_or(ApiError::Unauthorized)?;
        Ok(Caller {
            who,
            client: client(parts),
        })
    }
}

/// Anyone with a valid key: a company user's API key or the admin token
/// (for what every party may read, such as the API's own description).
pub struct Authenticated;

impl FromRequestParts<ApiState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let key = bearer(parts).ok_or(ApiError::Unauthorized)?;
        if key_hash(key) == state.admin_token_hash || state.dir.authenticate(key).is_some() {
            Ok(Authenticated)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// The operator, authenticated with the admin token.
pub struct Operator;

impl FromRequestParts<ApiState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let key = bearer(parts).ok_or(ApiError::Unauthorized)?;
        if key_hash(key) == state.admin_token_hash {
            return Ok(Operator);
        }
        if state.dir.authenticate(key).is_some() {
            return Err(ApiError::Forbidden(
                "this route is for the operator's admin token",
            ));
        }
        Err(ApiError::Unauthorized)
    }
}
