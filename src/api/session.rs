//! Web-app sessions. The browser signs in once with an API key and then
//! holds an `HttpOnly`, `SameSite=Strict` cookie instead of the key, so no
//! page script ever keeps the key and no other site can make the browser
//! call the API. A session stands on its key: revoking the key ends it.
//! Calls made with the cookie are the `app` channel in the access log.

use axum::extract::State;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dashmap::DashMap;
use prometheus::IntGauge;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{now_ms, ApiError, ApiState, Body, Caller};
use crate::access::directory::key_hash;
use crate::access::{Directory, Principal};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "tg_session";
/// A session ends this long after sign-in (a working day and a half).
pub const SESSION_TTL_MS: i64 = 12 * 3_600_000;
/// Most sessions held at once; sign-ins beyond it are refused (503)
/// until some expire, so memory stays bounded.
pub const MAX_SESSIONS: usize = 100_000;

struct Session {
    /// The hash of the API key the session was opened with.
    key_hash: [u8; 32],
    expires_ms: i64,
}

/// Open sessions, keyed by the SHA-256 of their token (the token itself
/// lives only in the browser's cookie).
pub struct Sessions {
    open: DashMap<[u8; 32], Session>,
    /// `trackgate_web_sessions`.
    held: IntGauge,
}

impl Sessions {
    pub fn new(held: IntGauge) -> Self {
        Self {
            open: DashMap::new(),
            held,
        }
    }

    /// Opens a session for the key with this hash; returns the token.
    pub fn open(&self, key: [u8; 32], now: i64) -> Result<String, ApiError> {
        if self.open.len() >= MAX_SESSIONS {
            self.open.retain(|_, s| s.expires_ms > now);
            if self.open.len() >= MAX_SESSIONS {
                return Err(ApiError::Busy("too many open sessions; try again later"));
            }
        }
        let token = format!("tgs_{}", hex::encode(rand::random::<[u8; 32]>()));
        self.open.insert(
            key_hash(&token),
            Session {
                key_hash: key,
                expires_ms: now + SESSION_TTL_MS,
            },
        );
        self.count();
        Ok(token)
    }

    /// The session's user, while the session is open and its key valid.
    pub fn principal(&self, dir: &Directory, token: &str, now: i64) -> Option<Principal> {
        self.principal_by_id(dir, &key_hash(token), now)
    }

    /// The same, by the token's hash (the session's id here).
    pub fn principal_by_id(&self, dir: &Directory, id: &[u8; 32], now: i64) -> Option<Principal> {
        let key = {
            let s = self.open.get(id)?;
            (s.expires_ms > now).then_some(s.key_hash)
        };
        match key.and_then(|k| dir.authenticate_hash(&k)) {
            Some(p) => Some(p),
            None => {
                // Expired, or its key was revoked: gone for good.
                self.open.remove(id);
                self.count();
                None
            }
        }
    }

    /// Ends the session (signing out).
    pub fn close(&self, token: &str) {
        self.open.remove(&key_hash(token));
        self.count();
    }

    fn count(&self) {
        self.held.set(self.open.len() as i64);
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// The session token from the request's cookies, if any.
pub(super) fn token(parts: &Parts) -> Option<&str> {
    token_in(&parts.headers)
}

fn token_in(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('='))
        .filter(|t| !t.is_empty())
}

fn cookie(value: &str, max_age_s: i64) -> HeaderValue {
    // Path covers the API only: the static app never needs it.
    let c = format!(
        "{COOKIE_NAME}={value}; Path=/api/v1; HttpOnly; SameSite=Strict; Max-Age={max_age_s}"
    );
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn who_json(s: &ApiState, who: &Principal, channel: &str) -> Value {
    let user = s.dir.user(who.user_id);
    json!({
        "user_id": who.user_id,
        "user_name": user.map(|u| u.name),
        "company_id": who.company_id,
        "company_name": s.dir.company_name(&who.company_id),
        "role": who.role,
        "api_key_id": who.api_key_id,
        "channel": channel,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    api_key: String,
}

/// Signs in with an API key; the answer sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = SignIn, responses((status = 201, description = "signed in: the caller, and a Set-Cookie with the session (HttpOnly, SameSite=Strict)"), (status = 400, description = "malformed body"), (status = 401, description = "wrong or revoked key"), (status = 503, description = "too many open sessions")))]
pub async fn sign_in(
    State(s): State<ApiState>,
    Body(b): Body<SignIn>,
) -> Result<Response, ApiError> {
    let hash = key_hash(b.api_key.trim());
    let who = s
        .dir
        .authenticate_hash(&hash)
        .ok_or(ApiError::Unauthorized)?;
    let token = s.sessions.open(hash, now_ms())?;
    tracing::info!(user = who.user_id, company = %who.company_id, "web session opened");
    let mut resp = (StatusCode::CREATED, Json(who_json(&s, &who, "app"))).into_response();
    resp.headers_mut()
        .insert(SET_COOKIE, cookie(&token, SESSION_TTL_MS / 1000));
    Ok(resp)
}

/// Who the caller is (with a session cookie or an API key).
#[utoipa::path(get, path = "/api/v1/session", tag = "session", security(("api_key" = [])), responses((status = 200, description = "the caller: user, company, role and the channel its reads are logged under"), (status = 401, description = "no or wrong key, or no open session")))]
pub async fn current(caller: Caller, State(s): State<ApiState>) -> Json<Value> {
    Json(who_json(&s, &caller.who, caller.client.channel))
}

/// Signs out: the session ends and the cookie is cleared.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session", security(("api_key" = [])), responses((status = 204, description = "signed out"), (status = 401, description = "no or wrong key, or no open session")))]
pub async fn sign_out(_: Caller, State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(t) = token_in(&headers) {
        s.sessions.close(t);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(SET_COOKIE, cookie("", 0));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_among_other_cookies() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; tg_sessionx=no"));
        h.append(
            COOKIE,
            HeaderValue::from_static("b=2;  tg_session=tgs_abc ; c=3"),
        );
        assert_eq!(token_in(&h), Some("tgs_abc"));
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("tg_session="));
        assert_eq!(token_in(&h), None);
    }

    #[test]
    fn a_session_ends_at_its_expiry_and_with_its_key() {
        use crate::store::{Role, User};
        let dir = Directory::default();
        dir.add_company("4711", "Carrier");
        dir.add_user(User {
            id: 1,
            company_id: "4711".into(),
            name: "Dispatch".into(),
            role: Role::User,
        });
        let key = key_hash("tg_key");
        dir.add_key(7, 1, key);
        let held = IntGauge::new("sessions", "test").unwrap();
        let sessions = Sessions::new(held.clone());
        let t = sessions.open(key, 1_000).unwrap();
        assert_eq!(held.get(), 1);
        let p = sessions.principal(&dir, &t, 2_000).unwrap();
        assert_eq!((p.user_id, p.api_key_id), (1, 7));
        assert!(sessions.principal(&dir, "tgs_guess", 2_000).is_none());
        assert!(sessions
            .principal(&dir, &t, 1_000 + SESSION_TTL_MS)
            .is_none());
        assert!(sessions.is_empty(), "an expired session is dropped");

        let t = sessions.open(key, 1_000).unwrap();
        dir.remove_key(7);
        assert!(sessions.principal(&dir, &t, 2_000).is_none());
        assert!(sessions.is_empty(), "a revoked key's session is dropped");
        assert_eq!(held.get(), 0);
    }
}
