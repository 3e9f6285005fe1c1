//! The REST API (`/api/v1`): routes, authentication, the error→status
//! table, and the partner read path, which logs every retrieval durably
//! before it answers.

mod admin;
mod auth;
mod devices;
mod error;
mod extract;
mod history;
mod ingest;
mod permissions;
pub mod session;
pub mod stream;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};

use crate::access::{AccessLog, Directory};
use crate::engine::Engine;
use crate::metrics::ProtocolMetrics;
use crate::server::Pipeline;
use crate::store::Store;

pub use auth::{Caller, Client, Operator};
pub use error::ApiError;
use extract::Body;
pub use ingest::PROTOCOL as INGEST_PROTOCOL;

/// Largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest free-text field (names, shipment numbers).
pub const MAX_TEXT: usize = 200;

/// What API handlers share: one `Arc`, so axum's per-request clone of the
/// state is one atomic increment instead of one per field.
#[derive(Clone)]
pub struct ApiState(Arc<ApiShared>);

impl ApiState {
    pub fn new(shared: ApiShared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for ApiState {
    type Target = ApiShared;
    fn deref(&self) -> &ApiShared {
        &self.0
    }
}

/// The handlers' shared services.
pub struct ApiShared {
    pub dir: Arc<Directory>,
    pub store: Arc<dyn Store>,
    pub log: AccessLog,
    pub engine: Arc<Engine>,
    pub admin_token_hash: [u8; 32],
    /// Position history (range reads).
    pub history: crate::history::History,
    /// Where HTTP-pushed positions go.
    pub pipeline: Arc<Pipeline>,
    /// Metric handles for HTTP ingestion (`protocol="http"`).
    pub ingest: ProtocolMetrics,
    /// Users per company and open permissions per provider (`[limits]`).
    pub limits: crate::config::Limits,
    /// Held from a bounded creation's count to its entry in the directory,
    /// so concurrent requests cannot pass a limit together (user creation
    /// and grants are rare; one lock for all companies is enough).
    pub bounded_creation: tokio::sync::Mutex<()>,
    /// The web app's signed-in browsers.
    pub sessions: session::Sessions,
    /// Open live streams (bounded).
    pub streams: Arc<stream::Streams>,
    /// Cancelled when the gateway stops: live streams end so the HTTP
    /// server's graceful shutdown is not held open by them.
    pub stop: tokio_util::sync::CancellationToken,
}

/// The OpenAPI document's frame; every route adds itself through
/// `routes!`, so the router and the document cannot drift apart.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "trackgate API", description = "Partner-permissioned positions; every recipient read is logged."),
    modifiers(&Security),
    components(schemas(error::ErrorBody))
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let c = doc.components.get_or_insert_with(Default::default);
        let bearer =
            || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        c.add_security_scheme("api_key", bearer());
        c.add_security_scheme("admin_token", bearer());
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(session::COOKIE_NAME))),
        );
    }
}

/// Every API route, and the OpenAPI document generated from them.
pub fn router(state: ApiState) -> Router {
    use utoipa::OpenApi;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(admin::create_company))
        .routes(routes!(admin::create_user))
        .routes(routes!(admin::create_device))
        .routes(routes!(admin::unknown_devices))
        .routes(routes!(admin::security_log))
        .routes(routes!(admin::create_own_user))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(permissions::create, permissions::list))
        .routes(routes!(permissions::revoke))
        .routes(routes!(permissions::shipment_number))
        .routes(routes!(permissions::access_log))
        .routes(routes!(
            session::sign_in,
            session::current,
            session::sign_out
        ))
        .routes(routes!(devices::list))
        .routes(routes!(devices::position))
        .routes(routes!(devices::spatial))
        .routes(routes!(stream::stream))
        .routes(routes!(history::positions))
        .routes(routes!(history::reports))
        .routes(routes!(ingest::positions))
        .split_for_parts();
    let doc = Arc::new(with_itself(doc));
    router
        .route(
            "/api/v1/openapi.json",
            // Like every API route, only for callers with a valid key.
            get(move |_: auth::Authenticated| {
                let doc = Arc::clone(&doc);
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The document lists its own route too (added below with `.route`, as
/// it serves the finished document).
fn with_itself(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::Response;
    let op = OperationBuilder::new()
        .operation_id(Some("openapi"))
        .summary(Some("This OpenAPI document"))
        .security(SecurityRequirement::new("api_key", Vec::<String>::new()))
        .security(SecurityRequirement::new(
            "admin_token",
            Vec::<String>::new(),
        ))
        .response("200", Response::new("The OpenAPI 3.1 document"))
        .response("401", Response::new("No or a wrong key"));
    doc.paths
        .add_path_operation("/api/v1/openapi.json", vec![HttpMethod::Get], op);
    with_error_answers(with_session_cookie(doc))
}

/// Every operation of every path in `doc`.
fn operations(
    doc: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
    })
}

/// Wherever an API key is accepted, the web app's session cookie is too.
fn with_session_cookie(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::SecurityRequirement;
    let takes_key =
        |r: &SecurityRequirement| serde_json::to_value(r).is_ok_and(|v| v.get("api_key").is_some());
    for op in operations(&mut doc) {
        if let Some(reqs) = op.security.as_mut() {
            if reqs.iter().any(takes_key) {
                reqs.push(SecurityRequirement::new("session", Vec::<String>::new()));
            }
        }
    }
    doc
}

/// Every error answer carries [`error::ErrorBody`]; every route that takes
/// parameters or a body may answer 400 (and 413 for a body over the limit),
/// which the extractors in `extract` guarantee for all of them at once.
fn with_error_answers(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
    let error = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build()
    };
    for op in operations(&mut doc) {
        let answers = &mut op.responses.responses;
        let takes_input = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
        if (takes_input || op.request_body.is_some()) && !answers.contains_key("400") {
            answers.insert(
                "400".into(),
                RefOr::T(Response::new(
                    "a malformed or out-of-range parameter or body",
                )),
            );
        }
        if op.request_body.is_some() && !answers.contains_key("413") {
            answers.insert(
                "413".into(),
                RefOr::T(Response::new(format!("a body over {MAX_BODY_BYTES} bytes"))),
            );
        }
        for (status, answer) in answers.iter_mut() {
            if let (true, RefOr::T(r)) = (status.starts_with(['4', '5']), answer) {
                if r.content.is_empty() {
                    *r = ResponseBuilder::from(r.clone())
                        .content("application/json", error())
                        .build();
                }
            }
        }
    }
    doc
}

/// Milliseconds as RFC 3339 UTC with milliseconds (the API's time format).
pub fn ms_to_rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| crate::model::format_time(&t))
        .unwrap_or_default()
}

/// Serializes epoch milliseconds in the API's time format.
pub fn ser_ms<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ms_to_rfc3339(*ms))
}

/// Writes a refused call to the operator's security log without making the
/// caller wait (nothing is served, so nothing waits on the commit).
pub(crate) fn log_refusal(
    s: &ApiState,
    caller: &Caller,
    permission_id: Option<i64>,
    device_id: Option<&str>,
    query: &str,
) {
    s.log.append_detached(crate::store::LogEntry {
        scope: "security",
        time_ms: now_ms(),
        event: "denied".into(),
        permission_id,
        recipient_company_id: Some(caller.who.company_id.clone()),
        user_id: Some(caller.who.user_id),
        api_key_id: Some(caller.who.api_key_id),
        device_id: device_id.map(|d| d.chars().take(64).collect()),
        channel: Some(caller.client.channel.into()),
        query: Some(query.into()),
        client_addr: caller.client.addr.clone(),
        user_agent: caller.client.user_agent.clone(),
        ..Default::default()
    });
}

/// Optional `from` / `to` query values (RFC 3339) as epoch milliseconds.
pub fn parse_window(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let from = from.map(|v| parse_time("from", v)).transpose()?;
    let to = to.map(|v| parse_time("to", v)).transpose()?;
    Ok((from, to))
}

/// Parses an RFC 3339 time from a request into epoch milliseconds.
pub fn parse_time(field: &str, v: &str) -> Result<i64, ApiError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
        .map_err(|e| ApiError::BadRequest(format!("{field}: {v:?} is not an RFC 3339 time ({e})")))
}

/// Checks a free-text field's length.
pub fn check_text(field: &str, v: &str) -> Result<(), ApiError> {
    if v.trim().is_empty() {
        return Err(ApiError::BadRequest(format!("{field} must not be empty")));
    }
    if v.chars().count() > MAX_TEXT {
        return Err(ApiError::BadRequest(format!(
            "{field} is longer than {MAX_TEXT} characters"
        )));
    }
    Ok(())
}

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod route_tests {
    /// Every route goes through `routes!` (so into the document) except the
    /// document's own, which `with_itself` adds: a plain route call or a
    /// second router anywhere in the API would serve an undocumented route.
    #[test]
    fn no_route_bypasses_the_openapi_router() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
        let mut sources = String::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            sources += &std::fs::read_to_string(e.unwrap().path()).unwrap();
        }
        let count = |needle: &str| sources.matches(needle).count();
        // (Needles built with concat! so this text does not match itself.)
        assert_eq!(
            count(concat!(".", "route(")),
            1,
            "only openapi.json is routed by hand"
        );
        assert_eq!(count(concat!("Router::", "new")), 0);
        assert_eq!(count(concat!(".", "nest(")), 0);
        assert_eq!(count(concat!(".", "merge(")), 0);
    }
}
