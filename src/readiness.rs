//! Readiness (`GET /ready`) as a use case: whether the store answers, how the index was
//! loaded, whether the start-up build of the risk grid statistics has ended, and what
//! operators should act on soon. It reads the state of several tiers at once (store,
//! index, risk engine, excavation calendar), so it lives in the server tier beside
//! [`AppState`].

use crate::state::AppState;
use serde_json::{json, Value};
use std::time::Duration;

/// How long the store and the statistics build are waited for.
pub const WAIT: Duration = Duration::from_secs(2);

/// Whether the instance is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The store answers and the risk grid statistics are built.
    Ready,
    /// The store answers; the statistics are still being built after start-up.
    Starting,
    /// The store does not answer (in time).
    Unavailable,
}

impl Status {
    /// The `status` of the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ready => "ready",
            Status::Starting => "starting",
            Status::Unavailable => "unavailable",
        }
    }
}

/// The readiness report: its status and the JSON body (`status`, `reason`, `warnings`,
/// `store`, `index`, `risk_statistics`).
#[derive(Debug, Clone)]
pub struct Readiness {
    pub status: Status,
    pub body: Value,
}

/// Checks readiness: pings the store and waits for the statistics build, both for up to
/// [`WAIT`] and together (a probe right after start-up, from tests or orchestrators, gets
/// its answer as soon as the build ends instead of a 503).
pub async fn check(state: &AppState) -> Readiness {
    let (ping, stats_ready) = tokio::join!(
        tokio::time::timeout(WAIT, state.store.ping()),
        state.risk.wait_statistics_ready(WAIT)
    );
    let (status, reason) = match ping {
        Ok(Ok(())) if !stats_ready => (
            Status::Starting,
            Some("the risk grid statistics are still being built after start-up"),
        ),
        Ok(Ok(())) => (Status::Ready, None),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: store ping failed");
            (Status::Unavailable, Some("the store does not answer"))
        }
        Err(_) => (
            Status::Unavailable,
            Some("the store did not answer within 2 s"),
        ),
    };
    Readiness {
        status,
        body: report(state, status, reason),
    }
}

fn report(state: &AppState, status: Status, reason: Option<&str>) -> Value {
    let stats = state.risk.statistics_info();
    let layers: serde_json::Map<String, Value> = state
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
    json!({
        "status": status.as_str(),
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
}
