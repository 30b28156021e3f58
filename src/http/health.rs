//! Liveness (`/health`: the process answers) and readiness (`/ready`: the store is
//! reachable and the index is loaded, with counts per layer).

use crate::server::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::time::Duration;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// Liveness: 200 as long as the process serves requests.
#[utoipa::path(get, path = "/health", tag = "service", responses((status = 200, description = "The process is alive")))]
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

/// Readiness: 200 with per-layer counts when the store answers within 2 s, else 503.
#[utoipa::path(get, path = "/ready", tag = "service", responses(
    (status = 200, description = "Store reachable and index loaded, with counts per layer"),
    (status = 503, description = "The store does not answer")))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let ping = tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await;
    let layers: serde_json::Map<String, serde_json::Value> = state
        .index
        .stats()
        .into_iter()
        .map(|s| (s.layer.as_str().to_string(), json!(s.count)))
        .collect();
    let body = |status: &str, reason: Option<String>| {
        json!({
            "status": status,
            "reason": reason,
            "store": state.store.backend(),
            "index": {
                "loaded": true,
                "load_ms": state.load_time.as_millis() as u64,
                "version": state.index.version(),
                "metric_crs": state.index.crs().code(),
                "counts": layers,
            }
        })
    };
    match ping {
        Ok(Ok(())) => (StatusCode::OK, Json(body("ready", None))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: store ping failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(body(
                    "unavailable",
                    Some("the store does not answer".into()),
                )),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(body(
                "unavailable",
                Some("the store did not answer within 2 s".into()),
            )),
        ),
    }
}
