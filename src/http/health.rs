//! Liveness (`/health`: the process answers) and readiness (`/ready`: the store is
//! reachable, the index is loaded, with counts per layer, and the start-up build of the
//! risk grid statistics has ended, so a balancer never sends a statistics request to a
//! cold instance).

use crate::state::AppState;
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

/// Liveness: 200 as long as the process serves requests, with the service clock's time
/// (clients such as `lifeline simulate` stamp their data by it).
#[utoipa::path(get, path = "/health", tag = "service", responses((status = 200, description = "The process is alive: {status, version, time}")))]
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
#[utoipa::path(get, path = "/ready", tag = "service", responses(
    (status = 200, description = "Store reachable, index loaded (with counts per layer), risk grid statistics built"),
    (status = 503, description = "The store does not answer, or the risk grid statistics are still being built after start-up")))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    // Both waits run together: a probe right after start-up (tests, orchestrators) gets
    // its answer as soon as the build ends instead of a 503.
    let (ping, stats_ready) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(2), state.store.ping()),
        state.risk.wait_statistics_ready(Duration::from_secs(2))
    );
    let stats = state.risk.statistics_info();
    let layers: serde_json::Map<String, serde_json::Value> = state
        .index
        .stats()
        .into_iter()
        .map(|s| (s.layer.as_str().to_string(), json!(s.count)))
        .collect();
    // Warnings do not make the service unready; they tell operators what to do soon.
    let cal = &state.excavation.tickets.calendar;
    let warnings: Vec<String> = cal
        .expiry_warning(cal.local_date(state.clock.now()))
        .into_iter()
        .collect();
    let body = |status: &str, reason: Option<String>| {
        json!({
            "status": status,
            "reason": reason,
            "warnings": warnings,
            "store": state.store.backend(),
            "index": {
                "loaded": true,
                "load_ms": state.load_time.as_millis() as u64,
                "version": state.index.version(),
                "metric_crs": state.index.crs().code(),
                "counts": layers,
            },
            "risk_statistics": {
                "ready": stats.ready,
                "building": stats.building,
                "builds": stats.builds,
                "last_build_ms": stats.last_build_ms,
            }
        })
    };
    match ping {
        Ok(Ok(())) if !stats_ready => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(body(
                "starting",
                Some("the risk grid statistics are still being built after start-up".into()),
            )),
        ),
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
