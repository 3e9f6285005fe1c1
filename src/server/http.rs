//! The HTTP listener: its connection loop, health and metrics (the API
//! and the web app are merged into the router by `app`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Serves `router` on `listener` until `stop`, then lets every connection
/// finish its request in hand (as `axum::serve` with graceful shutdown,
/// plus what it lacks: a client must send its headers within
/// `header_timeout`, and an idle keep-alive connection is closed after it).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    header_timeout: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connections = tokio_util::task::TaskTracker::new();
    while let Some((stream, peer)) = super::accept_tcp(&listener, &stop, "http").await {
        let _ = stream.set_nodelay(true);
        // Handlers read the peer address as axum's `ConnectInfo`.
        let service = router.clone().map_request(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo::<SocketAddr>(peer));
                req
            },
        );
        let conn = http.serve_connection(
            TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let stop = stop.clone();
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let served = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "http connection ended");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
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
