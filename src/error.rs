//! The one error type handlers return, [`AppError`], and how every tier's and
//! capability's error maps to an HTTP status. The client always gets JSON `{"error": {"status", "code", "message"}}`
//! naming the problem; internals (SQL, file paths, backtraces) go to the log only.

use crate::index::IndexError;
use crate::model::crs::CrsError;
use crate::model::ModelError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Every failure a request can end in.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed request: bad query parameter, bad path, unparseable body.
    #[error("{0}")]
    BadRequest(String),
    /// No credentials where they are needed, or a key that is unknown or revoked.
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials valid but the role is not enough.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Well-formed but invalid content (geometry, ranges, vocabulary).
    #[error("{0}")]
    Unprocessable(String),
    /// Another client error, with its own status (405, 406, 414, 415, 431, …), so the
    /// body's status always agrees with the response's.
    #[error("{1}")]
    Client(StatusCode, String),
    /// Too many requests, or a quota used up: try again after this many seconds
    /// (`Retry-After`).
    #[error("{0}")]
    TooMany(String, u64),
    /// The store is unreachable: try again later.
    #[error("the service is temporarily unavailable")]
    Unavailable(String),
    /// A bug or an unexpected failure; the detail is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Client(status, _) => *status,
            AppError::TooMany(..) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::Unprocessable(_) => "invalid",
            AppError::Client(status, _) => match status.as_u16() {
                405 => "method_not_allowed",
                406 => "not_acceptable",
                408 => "request_timeout",
                414 => "uri_too_long",
                415 => "unsupported_media_type",
                429 => "too_many_requests",
                431 => "header_fields_too_large",
                _ => "bad_request",
            },
            AppError::TooMany(..) => "too_many_requests",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// Builds an error from a status and message (for framework rejections).
    pub fn from_status(status: StatusCode, message: String) -> Self {
        match status.as_u16() {
            401 => AppError::Unauthorized(message),
            403 => AppError::Forbidden(message),
            404 => AppError::NotFound(message),
            409 => AppError::Conflict(message),
            413 => AppError::PayloadTooLarge(message),
            422 => AppError::Unprocessable(message),
            400 => AppError::BadRequest(message),
            402..=499 => AppError::Client(status, message),
            503 => AppError::Unavailable(message),
            _ => AppError::Internal(message),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            AppError::Internal(detail) => tracing::error!(%detail, "internal error"),
            AppError::Unavailable(detail) => tracing::warn!(%detail, "store unavailable"),
            other => tracing::debug!(error = %other, "client error"),
        }
        let body = json!({"error": {"status": status.as_u16(), "code": self.code(), "message": self.to_string()}});
        let mut response = (status, axum::Json(body)).into_response();
        if let AppError::TooMany(_, secs) = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from((*secs).max(1)),
            );
        }
        response
    }
}

impl From<crate::audit::AuditError> for AppError {
    fn from(e: crate::audit::AuditError) -> Self {
        match e {
            crate::audit::AuditError::Store(e) => e.into(),
            q @ crate::audit::AuditError::Quota { retry_after, .. } => {
                AppError::TooMany(q.to_string(), retry_after)
            }
        }
    }
}

impl From<ModelError> for AppError {
    fn from(e: ModelError) -> Self {
        AppError::Unprocessable(e.to_string())
    }
}

/// An error and every cause below it, `: `-separated, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        // Messages often repeat their cause's text already: say each part once.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => AppError::NotFound(e.to_string()),
            StoreError::Conflict(m) => AppError::Conflict(m),
            StoreError::Invalid(m) => AppError::Unprocessable(m),
            StoreError::Backend(e) => AppError::Unavailable(error_chain(&e)),
        }
    }
}

impl From<CrsError> for AppError {
    fn from(e: CrsError) -> Self {
        match e {
            CrsError::Transform { .. } => AppError::Unprocessable(e.to_string()),
            CrsError::Unknown { .. } => AppError::BadRequest(e.to_string()),
        }
    }
}

impl From<IndexError> for AppError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Crs(c) => c.into(),
            other => AppError::BadRequest(other.to_string()),
        }
    }
}

// The capabilities' errors, each mapped once to its HTTP meaning.

impl From<lifeline_ogc::OgcError> for AppError {
    fn from(e: lifeline_ogc::OgcError) -> Self {
        match e {
            lifeline_ogc::OgcError::BadRequest(m) => AppError::BadRequest(m),
            lifeline_ogc::OgcError::NotFound(m) => AppError::NotFound(m),
            lifeline_ogc::OgcError::Forbidden(m) => AppError::Forbidden(m),
            lifeline_ogc::OgcError::Internal(m) => AppError::Internal(m),
        }
    }
}

impl From<lifeline_risk::RiskError> for AppError {
    fn from(e: lifeline_risk::RiskError) -> Self {
        match e {
            lifeline_risk::RiskError::Batch(b) => AppError::BadRequest(b.to_string()),
            lifeline_risk::RiskError::NotFound(m) => AppError::NotFound(m),
            lifeline_risk::RiskError::Forbidden(m) => AppError::Forbidden(m),
            lifeline_risk::RiskError::BadRequest(m) => AppError::BadRequest(m),
            lifeline_risk::RiskError::Store(StoreError::Invalid(m))
                if m.contains("does not exist") =>
            {
                AppError::NotFound(m)
            }
            lifeline_risk::RiskError::Store(s) => s.into(),
        }
    }
}

impl From<lifeline_excavation::ExcavationError> for AppError {
    fn from(e: lifeline_excavation::ExcavationError) -> Self {
        match e {
            lifeline_excavation::ExcavationError::Invalid(m) => AppError::Unprocessable(m),
            lifeline_excavation::ExcavationError::BadRequest(m) => AppError::BadRequest(m),
            lifeline_excavation::ExcavationError::NotFound(m) => AppError::NotFound(m),
            lifeline_excavation::ExcavationError::Conflict(m) => AppError::Conflict(m),
            lifeline_excavation::ExcavationError::Forbidden(m) => AppError::Forbidden(m),
            lifeline_excavation::ExcavationError::Store(s) => s.into(),
            lifeline_excavation::ExcavationError::Internal(m) => AppError::Internal(m),
        }
    }
}

impl From<lifeline_tileserver::TileServiceError> for AppError {
    fn from(e: lifeline_tileserver::TileServiceError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<lifeline_tileserver::service::TileRequestError> for AppError {
    fn from(e: lifeline_tileserver::service::TileRequestError) -> Self {
        use lifeline_tileserver::service::TileRequestError;
        match e {
            TileRequestError::NotFound(m) => AppError::NotFound(m),
            TileRequestError::BadRequest(m) => AppError::BadRequest(m),
            TileRequestError::Service(s) => s.into(),
        }
    }
}

impl From<lifeline_analysis::AnalysisError> for AppError {
    fn from(e: lifeline_analysis::AnalysisError) -> Self {
        match e {
            lifeline_analysis::AnalysisError::Bad(m) => AppError::BadRequest(m),
            lifeline_analysis::AnalysisError::Index(i) => i.into(),
            lifeline_analysis::AnalysisError::Crs(c) => c.into(),
            lifeline_analysis::AnalysisError::Model(m) => m.into(),
            lifeline_analysis::AnalysisError::Forbidden(f) => AppError::Forbidden(f.to_string()),
            lifeline_analysis::AnalysisError::Join(j) => AppError::Internal(j.to_string()),
        }
    }
}

impl From<lifeline_trace::service::ServiceError> for AppError {
    fn from(e: lifeline_trace::service::ServiceError) -> Self {
        use lifeline_trace::service::ServiceError;
        match e {
            ServiceError::Bad(m) => AppError::BadRequest(m),
            ServiceError::Forbidden(f) => AppError::Forbidden(f.to_string()),
            ServiceError::Index(i) => i.into(),
            ServiceError::Network(n) => AppError::Internal(n.to_string()),
            ServiceError::Join(j) => AppError::Internal(j.to_string()),
            e @ ServiceError::NotOnTicket { .. } => AppError::Forbidden(e.to_string()),
            ServiceError::NoIsolation(m) => AppError::NotFound(m),
        }
    }
}

impl From<crate::records::RecordsError> for AppError {
    fn from(e: crate::records::RecordsError) -> Self {
        use crate::records::RecordsError;
        match e {
            RecordsError::BadRequest(m) => AppError::BadRequest(m),
            RecordsError::NotFound(m) => AppError::NotFound(m),
            RecordsError::Forbidden(f) => AppError::Forbidden(f.to_string()),
            RecordsError::Invalid(m) => m.into(),
            RecordsError::Index(i) => i.into(),
            RecordsError::Store(s) => s.into(),
            RecordsError::IndexUpdate(_) => AppError::Internal(e.to_string()),
            RecordsError::Reload(c) => AppError::Internal(c.to_string()),
            RecordsError::Join(j) => AppError::Internal(j.to_string()),
            RecordsError::Internal(m) => AppError::Internal(m.into()),
        }
    }
}
