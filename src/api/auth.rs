//! Authentication extractors: `Caller` (a company user's API key, or the
//! web app's session cookie) and `Operator` (the admin token). Keys are
//! compared by SHA-256 hash; the plain key is never stored.

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
    /// The access log's channel: `api` with a key, `app` with a session.
    pub channel: &'static str,
}

/// What a caller authenticated with, by hash: a live stream outlives its
/// request, so it asks again whether the credential still holds.
#[derive(Debug, Clone, Copy)]
pub enum Credential {
    /// An API key's hash.
    Key([u8; 32]),
    /// A web session token's hash.
    Session([u8; 32]),
}

/// An authenticated company user.
pub struct Caller {
    pub who: Principal,
    pub client: Client,
    pub credential: Credential,
}

impl Caller {
    /// Whether the key (or session) this caller came with is still valid
    /// and still this user's: not revoked, signed out or expired.
    pub fn still_valid(&self, state: &ApiState) -> bool {
        let who = match self.credential {
            Credential::Key(hash) => state.dir.authenticate_hash(&hash),
            Credential::Session(id) => {
                state
                    .sessions
                    .principal_by_id(&state.dir, &id, super::now_ms())
            }
        };
        who.is_some_and(|p| p.api_key_id == self.who.api_key_id)
    }

    /// Fails unless the caller is an admin of their company.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.who.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this needs a company admin's key"))
        }
    }
}

fn client(parts: &Parts, channel: &'static str) -> Client {
    Client {
        channel,
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
        let (who, credential) = company_user(parts, state).ok_or(ApiError::Unauthorized)?;
        let channel = match credential {
            Credential::Key(_) => "api",
            Credential::Session(_) => "app",
        };
        Ok(Caller {
            who,
            client: client(parts, channel),
            credential,
        })
    }
}

/// The company user behind the request and what it came with. A bearer
/// key decides alone when present (a wrong one is not rescued by a cookie).
fn company_user(parts: &Parts, state: &ApiState) -> Option<(Principal, Credential)> {
    if let Some(key) = bearer(parts) {
        let hash = key_hash(key);
        return state
            .dir
            .authenticate_hash(&hash)
            .map(|p| (p, Credential::Key(hash)));
    }
    let token = super::session::token(parts)?;
    // SameSite=Strict keeps other sites out, but not other ports of this
    // host (the same "site"): a browser names where a request came from.
    let from_elsewhere = parts
        .headers
        .get("sec-fetch-site")
        .is_some_and(|v| v != "same-origin" && v != "none");
    if from_elsewhere {
        return None;
    }
    let id = key_hash(token);
    state
        .sessions
        .principal_by_id(&state.dir, &id, super::now_ms())
        .map(|p| (p, Credential::Session(id)))
}

/// Anyone with a valid key: a company user's API key or the admin token
/// (for what every party may read, such as the API's own description).
pub struct Authenticated;

impl FromRequestParts<ApiState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let admin = bearer(parts).is_some_and(|key| key_hash(key) == state.admin_token_hash);
        if admin || company_user(parts, state).is_some() {
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
