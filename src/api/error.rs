//! The one table from API errors to HTTP statuses. 401 (who are you?) and
//! 403 (you may not) stay apart; a device or permission the caller may not
//! see is 404, never 403, so its existence is not revealed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The body of every error answer, so a client parses one format.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable: `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `bad_request`, `too_large`, `unavailable`, `busy`,
    /// `internal`.
    #[schema(example = "not_found")]
    pub error: &'static str,
    /// For people; not stable.
    pub message: String,
}

/// Everything an API handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("request body larger than {} bytes", super::MAX_BODY_BYTES)]
    TooLarge,
    /// Storage or the access log failed; the detail (paths, database
    /// errors) goes to the operator's log, not to the client.
    #[error("storage is unavailable; try again later")]
    Unavailable(String),
    /// A bounded table is full (e.g. web sessions); retry later.
    #[error("{0}")]
    Busy(&'static str),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) | Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::BadRequest(_) => "bad_request",
            Self::TooLarge => "too_large",
            Self::Unavailable(_) => "unavailable",
            Self::Busy(_) => "busy",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(detail) => tracing::error!(%detail, "internal API error"),
            Self::Unavailable(detail) => {
                tracing::warn!(%detail, "API request refused: storage unavailable")
            }
            _ => {}
        }
        let status = self.status();
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError as S;
        match e {
            S::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            S::NotFound(what) => Self::NotFound(what),
            other => Self::Unavailable(format!("storage: {other}")),
        }
    }
}

impl From<crate::access::LogError> for ApiError {
    fn from(e: crate::access::LogError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A storage failure answers 503 without the paths or database errors
    /// behind it (those go to the operator's log).
    #[tokio::test]
    async fn storage_errors_reach_the_client_without_their_detail() {
        let e = ApiError::Unavailable("/var/lib/trackgate/journal/0001.log: No space left".into());
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(resp.into_body(), 4096)
            .await
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(v["error"], "unavailable");
        assert_eq!(v["message"], "storage is unavailable; try again later");
        assert!(!String::from_utf8_lossy(&body).contains("/var/lib"));
    }
}
