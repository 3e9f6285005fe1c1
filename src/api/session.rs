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
/// Most sessions one API key holds: signing in once more ends its oldest,
/// so one key signing in in a loop cannot fill [`MAX_SESSIONS`] and lock
/// every other company out of the web app.
pub const MAX_SESSIONS_PER_KEY: usize = 16;

struct Session {
    /// The hash of the API key the session was opened with.
    key_hash: [u8; 32],
    expires_ms: i64,
}

/// Open sessions, keyed by the SHA-256 of their token (the token itself
/// lives only in the browser's cookie).
pub struct Sessions {
    open: DashMap<[u8; 32], Session>,
    /// Each key's sessions (their ids), oldest first; ids of sessions
    /// already gone are dropped as the key signs in again.
    by_key: DashMap<[u8; 32], std::collections::VecDeque<[u8; 32]>>,
    /// `trackgate_web_sessions`.
    held: IntGauge,
}

impl Sessions {
    pub fn new(held: IntGauge) -> Self {
        Self {
            open: DashMap::new(),
            by_key: DashMap::new(),
            held,
        }
    }

    /// Opens a session for the key with this hash; returns the token.
    pub fn open(&self, key: [u8; 32], now: i64) -> Result<String, ApiError> {
        // This key's oldest sessions go first, so its own sign-ins never
        // count against anyone else.
        let oldest: Vec<[u8; 32]> = {
            let mut mine = self.by_key.entry(key).or_default();
            mine.retain(|id| self.open.contains_key(id));
            let over = (mine.len() + 1).saturating_sub(MAX_SESSIONS_PER_KEY);
            mine.drain(..over).collect()
        };
        for id in &oldest {
            self.open.remove(id);
        }
        if self.open.len() >= MAX_SESSIONS {
            self.open.retain(|_, s| s.expires_ms > now);
            self.by_key.retain(|_, ids| {
                ids.retain(|id| self.open.contains_key(id));
                !ids.is_empty()
            });
            if self.open.len() >= MAX_SESSIONS {
                self.count();
                return Err(ApiError::Busy("too many open sessions; try again later"));
            }
        }
        let token = format!("tgs_{}", hex::encode(rand::random::<[u8; 32]>()));
        let id = key_hash(&token);
        self.open.insert(
            id,
            Session {
                key_hash: key,
                expires_ms: now + SESSION_TTL_MS,
            },
        );
        self.by_key.entry(key).or_default().push_back(id);
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

/// Whether the request reached a proxy in front of the gateway over HTTPS
/// (`X-Forwarded-Proto: https`, or `Forwarded: …proto=https`). Then the
/// cookie is `Secure`: the browser never sends it over plain HTTP to the
/// same host. A client claiming it falsely only makes its own cookie
/// stricter; served directly over HTTP the cookie must not be `Secure`, or
/// the browser would never send it back.
fn via_https(headers: &HeaderMap) -> bool {
    let says = |name: &str, f: fn(&str) -> bool| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(f)
    };
    says("x-forwarded-proto", |v| {
        v.split(',')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }) || says("forwarded", |v| {
        v.split([';', ','])
            .filter_map(|kv| kv.trim().split_once('='))
            .any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("proto")
                    && v.trim().trim_matches('"').eq_ignore_ascii_case("https")
            })
    })
}

fn cookie(value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    // Path covers the API only: the static app never needs it.
    let secure = if secure { "; Secure" } else { "" };
    let c = format!(
        "{COOKIE_NAME}={value}; Path=/api/v1; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
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
    headers: HeaderMap,
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
    resp.headers_mut().insert(
        SET_COOKIE,
        cookie(&token, SESSION_TTL_MS / 1000, via_https(&headers)),
    );
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
    resp.headers_mut()
        .insert(SET_COOKIE, cookie("", 0, via_https(&headers)));
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
    fn the_cookie_is_secure_when_the_proxy_was_reached_over_https() {
        let with = |name: &'static str, value: &'static str| {
            let mut h = HeaderMap::new();
            h.append(name, HeaderValue::from_static(value));
            via_https(&h)
        };
        assert!(with("x-forwarded-proto", "https"));
        assert!(with("x-forwarded-proto", "HTTPS, http"));
        assert!(!with("x-forwarded-proto", "http"));
        assert!(
            !with("x-forwarded-proto", "http, https"),
            "the first hop counts"
        );
        assert!(with(
            "forwarded",
            "for=192.0.2.60;proto=https;by=203.0.113.43"
        ));
        assert!(with("forwarded", "for=\"[2001:db8::1]\"; proto=\"https\""));
        assert!(!with("forwarded", "for=192.0.2.60;proto=http"));
        assert!(!via_https(&HeaderMap::new()));
        let c = |secure| cookie("tgs_x", 60, secure).to_str().unwrap().to_owned();
        assert!(c(true).ends_with("; Max-Age=60; Secure"), "{}", c(true));
        assert!(!c(false).contains("Secure"), "{}", c(false));
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

    #[test]
    fn one_key_signing_in_again_and_again_ends_only_its_own_oldest_sessions() {
        use crate::store::{Role, User};
        let dir = Directory::default();
        dir.add_company("4711", "Carrier");
        for id in [1, 2] {
            dir.add_user(User {
                id,
                company_id: "4711".into(),
                name: format!("User {id}"),
                role: Role::User,
            });
        }
        let (loud, quiet) = (key_hash("tg_loud"), key_hash("tg_quiet"));
        dir.add_key(7, 1, loud);
        dir.add_key(8, 2, quiet);
        let held = IntGauge::new("sessions", "test").unwrap();
        let sessions = Sessions::new(held.clone());
        let other = sessions.open(quiet, 1_000).unwrap();
        let first = sessions.open(loud, 1_000).unwrap();
        let tokens: Vec<String> = (0..1_000)
            .map(|_| sessions.open(loud, 1_000).unwrap())
            .collect();
        assert_eq!(sessions.len(), MAX_SESSIONS_PER_KEY + 1);
        assert_eq!(held.get(), (MAX_SESSIONS_PER_KEY + 1) as i64);
        assert!(
            sessions.principal(&dir, &first, 2_000).is_none(),
            "the oldest went"
        );
        let newest = &tokens[tokens.len() - MAX_SESSIONS_PER_KEY..];
        for t in newest {
            assert_eq!(sessions.principal(&dir, t, 2_000).unwrap().user_id, 1);
        }
        assert!(sessions
            .principal(
                &dir,
                &tokens[tokens.len() - MAX_SESSIONS_PER_KEY - 1],
                2_000
            )
            .is_none());
        assert_eq!(sessions.principal(&dir, &other, 2_000).unwrap().user_id, 2);
        // A session signed out is not counted against its key.
        sessions.close(&newest[0]);
        let again = sessions.open(loud, 1_000).unwrap();
        assert_eq!(sessions.len(), MAX_SESSIONS_PER_KEY + 1);
        assert!(sessions.principal(&dir, &newest[1], 2_000).is_some());
        assert!(sessions.principal(&dir, &again, 2_000).is_some());
    }
}
