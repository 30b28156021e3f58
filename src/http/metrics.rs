//! `GET /metrics`: the Prometheus scrape (see [`crate::metrics`] for what it holds).

use super::routes::Routes;
use super::Caller;
use crate::state::AppState;
use crate::AppError;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new().routes(routes!(scrape))
}

/// The Prometheus text format (0.0.4). Open to any caller the service accepts: with
/// `--anonymous-role none`, give the scraper a viewer key (`Authorization: Bearer`).
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "service", responses(
    (status = 200, description = "Metrics in the Prometheus text format", content_type = "text/plain"),
    (status = 401, description = "Anonymous access is off and no key was sent")))]
pub async fn scrape(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<impl IntoResponse, AppError> {
    let body = crate::metrics::render(&state)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}
