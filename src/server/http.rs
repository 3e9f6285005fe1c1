//! The HTTP listener: health and metrics (the API joins here later).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::engine::Engine;
use crate::metrics::Metrics;

/// What HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub engine: Arc<Engine>,
    pub metrics: Metrics,
    pub started: Instant,
    /// History storage state: `/health` says `degraded` while commits fail.
    pub storage: Arc<crate::history::StorageHealth>,
}

/// The router for health and metrics.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn health(State(s): State<HttpState>) -> impl IntoResponse {
    let snap = s.engine.snapshot();
    let healthy = s.storage.is_healthy();
    let status = if healthy {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Json(serde_json::json!({
        "status": if healthy { "ok" } else { "degraded" },
        "storage": if healthy { "ok".to_string() } else {
            format!("failing: {}", s.storage.last_error().unwrap_or_default())
        },
        "uptime_s": s.started.elapsed().as_secs(),
        "devices": s.engine.len(),
        "indexed_devices": snap.len(),
        "index_age_ms": snap.age().as_millis() as u64,
    }));
    (status, body)
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    s.metrics.engine_devices.set(s.engine.len() as i64);
    s.metrics
        .index_age_seconds
        .set(s.engine.snapshot().age().as_secs_f64());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}
