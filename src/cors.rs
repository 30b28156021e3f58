//! Cross-origin policy (issue 21): which other origins a browser may call each group of
//! routes from, by configuration ([`crate::config::CorsConfig`]). Three groups: the map's
//! tiles, styles and TileJSON (a city cockpit may draw them), the read API, and the write
//! API. A group with no allowed origin answers as before: same origin only, no CORS header
//! (and a preflight gets no permission). tower-http's `CorsLayer` does the protocol; this
//! module only picks the group's layer for each request.

use crate::config::CorsConfig;
use axum::extract::Request;
use axum::http::{header, HeaderName, Method};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The route groups a policy names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `/tiles/…`, `/styles/…`.
    Tiles,
    /// Every GET and HEAD, and the POSTs that only read (the excavation check, traces).
    Read,
    /// Everything that changes data.
    Write,
}

/// The group of a request to `path` with `method` (for a preflight: the method it asks
/// for).
pub fn group(path: &str, method: &Method) -> Group {
    if path.starts_with("/tiles/") || path.starts_with("/styles/") {
        return Group::Tiles;
    }
    let reads = *method == Method::GET
        || *method == Method::HEAD
        || (*method == Method::POST
            && (path == "/excavation/check" || path.starts_with("/trace/")));
    if reads {
        Group::Read
    } else {
        Group::Write
    }
}

/// The layers of the configured groups.
#[derive(Clone, Default)]
pub struct Policy {
    tiles: Option<CorsLayer>,
    read: Option<CorsLayer>,
    write: Option<CorsLayer>,
}

/// The request headers a cross-origin client may send.
const ALLOW_HEADERS: [HeaderName; 6] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::IF_NONE_MATCH,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("last-event-id"),
    HeaderName::from_static("idempotency-key"),
];

/// The response headers a cross-origin client may read.
const EXPOSE_HEADERS: [HeaderName; 6] = [
    header::ETAG,
    header::LINK,
    header::RETRY_AFTER,
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("content-crs"),
    HeaderName::from_static("x-ogc-plan"),
];

impl Policy {
    /// The policy of a configuration.
    pub fn of(c: &CorsConfig) -> Policy {
        let layer = |origins: &[axum::http::HeaderValue], methods: &[Method]| {
            (!origins.is_empty()).then(|| {
                CorsLayer::new()
                    .allow_origin(AllowOrigin::list(origins.iter().cloned()))
                    .allow_methods(methods.to_vec())
                    .allow_headers(ALLOW_HEADERS)
                    .expose_headers(EXPOSE_HEADERS)
                    .max_age(std::time::Duration::from_secs(600))
            })
        };
        Policy {
            tiles: layer(&c.tiles, &[Method::GET, Method::HEAD]),
            read: layer(&c.read, &[Method::GET, Method::HEAD, Method::POST]),
            write: layer(&c.write, &[Method::POST, Method::PUT, Method::DELETE]),
        }
    }

    fn for_group(&self, g: Group) -> Option<&CorsLayer> {
        match g {
            Group::Tiles => self.tiles.as_ref(),
            Group::Read => self.read.as_ref(),
            Group::Write => self.write.as_ref(),
        }
    }
}

/// The middleware: the request's group's CORS layer around the rest of the stack, or
/// nothing.
pub async fn apply(policy: Arc<Policy>, req: Request, next: Next) -> Response {
    let method = match req.method() {
        &Method::OPTIONS => req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
            .unwrap_or(Method::OPTIONS),
        m => m.clone(),
    };
    let Some(layer) = policy.for_group(group(req.uri().path(), &method)) else {
        return next.run(req).await;
    };
    // `Next` runs once; the CORS service calls its inner service at most once per request.
    let next = std::sync::Mutex::new(Some(next));
    let inner = tower::service_fn(move |req: Request| {
        let next = next.lock().ok().and_then(|mut n| n.take());
        async move {
            Ok::<_, std::convert::Infallible>(match next {
                Some(next) => next.run(req).await,
                None => crate::AppError::Internal("request ran twice".into()).into_response(),
            })
        }
    });
    match layer.layer(inner).oneshot(req).await {
        Ok(r) => r.map(axum::body::Body::new),
        Err(never) => match never {},
    }
}

use axum::response::IntoResponse;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_fall_in_their_groups() {
        assert_eq!(
            group("/tiles/pipelines/1/2/3.mvt", &Method::GET),
            Group::Tiles
        );
        assert_eq!(group("/styles/risk.json", &Method::GET), Group::Tiles);
        assert_eq!(group("/ogc/collections", &Method::GET), Group::Read);
        assert_eq!(group("/excavation/check", &Method::POST), Group::Read);
        assert_eq!(group("/trace/isolate", &Method::POST), Group::Read);
        assert_eq!(group("/excavation/tickets", &Method::POST), Group::Write);
        assert_eq!(
            group("/features/pipelines/1", &Method::DELETE),
            Group::Write
        );
        assert_eq!(group("/admin/keys", &Method::POST), Group::Write);
    }
}
