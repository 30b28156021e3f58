//! HTTP: thin axum routers per resource. Handlers extract, call the domain, and map the
//! result; every rejection — malformed JSON, oversized body, bad path or query, unknown
//! route — becomes the same JSON error shape as [`AppError`].

pub mod admin;
pub mod analysis;
pub mod client;
pub mod events;
pub mod excavation;
pub mod features;
pub mod health;
pub mod layers;
pub mod me;
pub mod ogc;
pub mod openapi;
pub mod risk;
pub mod sensors;
pub mod tiles;

use crate::model::{Actor, Layer};
use crate::state::AppState;
use crate::AppError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method, Uri};
use axum::response::IntoResponse;
use axum::Router;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

/// The whole application: API routers, the web client as static files, and the layers
/// every request passes (tracing, panic safety net, timeout, compression).
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let web = ServeDir::new(&state.config.web_dir)
        .append_index_html_on_directories(true)
        .fallback(axum::routing::any(not_found).with_state(()));
    Router::new()
        .merge(health::router())
        .merge(layers::router())
        .merge(features::router(&state.config))
        .merge(admin::router())
        .merge(excavation::router())
        .merge(openapi::router())
        .merge(tiles::router())
        .merge(sensors::router())
        .merge(risk::router())
        .merge(events::router())
        .merge(me::router())
        .merge(client::router())
        .merge(ogc::router())
        .merge(analysis::router())
        .fallback_service(web)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                AppError::Internal("a handler panicked".into()).into_response()
            },
        ))
        .layer(TraceLayer::new_for_http())
}

async fn not_found(method: Method, uri: Uri) -> AppError {
    AppError::NotFound(format!("no resource at {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> impl IntoResponse {
    let e = AppError::BadRequest(format!("{method} is not allowed on {}", uri.path()));
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        e.into_response().into_body(),
    )
}

/// The authenticated caller of a request (anonymous callers get the configured role, or a
/// 401 when anonymous access is off).
pub struct Caller(pub Actor);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .or_else(|| parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()));
        Ok(Caller(state.auth.authenticate(key).await?))
    }
}

/// `axum::Json` with rejections mapped to [`AppError`] (400 malformed, 413 too large,
/// 415 wrong content type reported as 400 naming the expected type).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(r) => Err(AppError::from_status(r.status(), r.body_text())),
        }
    }
}

/// `axum::extract::Query` with rejections mapped to a 400 naming the parameter.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(QueryParams(v)),
            Err(r) => Err(AppError::BadRequest(r.body_text())),
        }
    }
}

/// Parses a layer name from a path segment: unknown names are a 404 listing the layers.
pub fn parse_layer(s: &str) -> Result<Layer, AppError> {
    s.parse::<Layer>()
        .map_err(|e| AppError::NotFound(e.to_string()))
}

/// Parses a record id from a path segment.
pub fn parse_id(s: &str) -> Result<i64, AppError> {
    match s.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(AppError::BadRequest(format!(
            "'{}' is not a valid id (a positive integer)",
            s.chars().take(40).collect::<String>()
        ))),
    }
}
