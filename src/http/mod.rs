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
pub mod metrics;
pub mod ogc;
pub mod openapi;
pub mod risk;
pub mod routes;
pub mod sensors;
pub mod tiles;
pub mod trace;

use crate::config::Config;
use crate::model::{Actor, Layer, Role};
use crate::state::AppState;
use crate::AppError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method, Uri};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::Router;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

/// Every route of the service with its description ([`routes`]): the resources' routers,
/// merged.
pub fn api(config: &Config) -> routes::Routes {
    routes::Routes::new()
        .merge(health::router())
        .merge(layers::router())
        .merge(features::router(config))
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
        .merge(trace::router())
        .merge(metrics::router())
}

/// The whole application: API routers, the web client as static files, and the layers
/// every request passes (tracing, panic safety net, timeout, compression).
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    // Installed before the first request is counted.
    crate::metrics::handle();
    let gate = crate::limits::Gate::of(&state);
    let cors = std::sync::Arc::new(crate::cors::Policy::of(&state.config.cors));
    let web = ServeDir::new(&state.config.web_dir)
        .append_index_html_on_directories(true)
        .fallback(axum::routing::any(not_found).with_state(()));
    let (api, _, _) = api(&state.config).into_parts();
    api.route_layer(axum::middleware::from_fn(crate::metrics::mark_route))
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
        .layer(axum::middleware::from_fn(request_id))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let gate = gate.clone();
                edge(gate, req, next)
            },
        ))
        // Outermost, so refusals (401, 429, 503) carry the CORS headers too and a
        // cross-origin client can read them.
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| crate::cors::apply(cors.clone(), req, next),
        ))
}

/// The outermost layer: the request limits ([`crate::limits::Gate`]), and the request's
/// metrics ([`crate::metrics::record`]) whatever answered it. One layer rather than two
/// keeps the per-request cost of both small.
async fn edge(
    gate: std::sync::Arc<crate::limits::Gate>,
    req: Request,
    next: Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let response = match gate.admit(req).await {
        Ok(req) => next.run(req).await,
        Err(refused) => refused,
    };
    crate::metrics::record(started, &method, &response);
    response
}

/// The request id header: taken from the request when it is a plain token (a proxy's),
/// else made here; echoed on the response and recorded in audit entries ([`ReqId`]).
pub const REQUEST_ID: &str = "x-request-id";

/// Gives every request an id (`X-Request-Id`), echoed on its response.
async fn request_id(mut req: Request, next: Next) -> axum::response::Response {
    use tower_http::request_id::{MakeRequestId, MakeRequestUuid};
    let given = req
        .headers()
        .get(REQUEST_ID)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty()
                && b.len() <= 64
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        })
        .cloned();
    let id = match given {
        Some(v) => v,
        None => match MakeRequestUuid.make_request_id(&req) {
            Some(id) => id.into_header_value(),
            None => return next.run(req).await,
        },
    };
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let mut response = next.run(req).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// The request's id ([`REQUEST_ID`]), for audit entries.
pub struct ReqId(pub Option<String>);

impl ReqId {
    /// The id as the audit takes it.
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ReqId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ReqId(
            parts
                .headers
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        ))
    }
}

async fn not_found(method: Method, uri: Uri) -> AppError {
    AppError::NotFound(format!("no resource at {method} {}", uri.path()))
}

/// A method the resource does not answer: 405, and the body says so too. (axum's method
/// router adds the `Allow` header.) The OGC API's items are read with GET only: a CQL2
/// JSON filter goes in `filter=` with `filter-lang=cql2-json`, and a POST to items would
/// mean "create a feature" (Features Part 4), which this API does not offer.
async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    let path = uri.path();
    let hint = if path.starts_with("/ogc/collections/") && path.ends_with("/items") {
        "; filters are sent with GET: filter=<CQL2> and filter-lang=cql2-text or cql2-json"
    } else {
        ""
    };
    AppError::Client(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {path}{hint}"),
    )
}

/// Deserializes an optional `limit` query parameter by the one rule for counts
/// ([`crate::model::parse_count`]): digits only, any length; the handler clamps it.
pub fn limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    count("limit", d)
}

/// Deserializes an optional `offset` query parameter (see [`limit`]).
pub fn offset<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    count("offset", d)
}

fn count<'de, D: serde::Deserializer<'de>>(field: &str, d: D) -> Result<Option<usize>, D::Error> {
    use serde::Deserialize;
    Option::<String>::deserialize(d)?
        .map(|s| crate::model::parse_count(field, &s).map_err(serde::de::Error::custom))
        .transpose()
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
        if let Some(Verified(actor)) = parts.extensions.get::<Verified>().cloned() {
            return Ok(Caller(actor));
        }
        let key = presented_key(&parts.headers);
        Ok(Caller(state.auth.authenticate(key).await?))
    }
}

/// The actor of a credential a middleware before the handler already verified (the rate
/// limiter does, for writes), so [`Caller`] does not verify it again.
#[derive(Clone)]
pub struct Verified(pub Actor);

/// The credential a request presents: `Authorization: Bearer …`, else `X-Api-Key`.
pub fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
}

/// The least role a route needs, as a type ([`AtLeast`]'s parameter).
pub trait MinRole {
    const ROLE: Role;
}

/// Role markers for [`AtLeast`].
pub mod roles {
    use super::{MinRole, Role};
    macro_rules! marker {
        ($($name:ident),*) => {$(
            #[doc = concat!("At least the `", stringify!($name), "` role.")]
            pub struct $name;
            impl MinRole for $name {
                const ROLE: Role = Role::$name;
            }
        )*};
    }
    marker!(Contractor, Analyst, Operator, Admin);
}

/// The caller, refused (401, or 403 naming the role) unless it has at least `R`'s role.
/// A handler takes it before its body: extractors from the request head run first, so
/// access is decided before any body is read or validated — a viewer posting a bad check
/// gets 403, not a 422 describing the schema. Services still check their finer rules.
pub struct AtLeast<R>(pub Actor, std::marker::PhantomData<R>);

impl<R: MinRole> FromRequestParts<AppState> for AtLeast<R> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Caller(actor) = Caller::from_request_parts(parts, state).await?;
        crate::auth::require(&actor, R::ROLE)?;
        Ok(AtLeast(actor, std::marker::PhantomData))
    }
}

/// `axum::Json` with rejections mapped to [`AppError`] (400 malformed, 413 too large,
/// 415 wrong content type naming the expected type, 422 a body of the wrong shape).
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
