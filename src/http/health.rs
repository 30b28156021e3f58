//! Liveness (`/health`: the process answers) and readiness (`/ready`: the store is
//! reachable, the index is loaded, with counts per layer, and the start-up build of the
//! risk grid statistics has ended, so a balancer never sends a statistics request to a
//! cold instance; [`crate::readiness`] checks).

use super::routes::Routes;
use crate::readiness::{self, Status};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new().routes(routes!(health)).routes(routes!(ready))
}

/// Liveness: 200 as long as the process serves requests, with the service clock's time
/// (clients such as `lifeline simulate` stamp their data by it).
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "service", responses((status = 200, description = "The process is alive: {status, version, time}")))]
pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let time = state
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "time": time}))
}

/// Readiness: 200 with per-layer counts when the store answers within 2 s and the
/// start-up build of the risk grid statistics has ended (waited for up to 2 s), else 503.
/// `warnings` lists what operators should act on soon, such as a working-day calendar
/// that runs out within 60 days.
#[utoipa::path(get, path = "/ready", operation_id = "readiness", tag = "service", responses(
    (status = 200, description = "Store reachable, index loaded (with counts per layer), risk grid statistics built"),
    (status = 503, description = "The store does not answer, or the risk grid statistics are still being built after start-up")))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let r = readiness::check(&state).await;
    let status = match r.status {
        Status::Ready => StatusCode::OK,
        Status::Starting | Status::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(r.body))
}
