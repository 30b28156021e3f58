//! `/client-config`: the settings the web client in `web/` needs from the service's
//! configuration — today the optional raster basemap (`[web]` of the config file or
//! `LIFELINE_BASEMAP_*`), with the datum the client must draw our layers in over it.

use super::routes::Routes;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new().routes(routes!(client_config))
}

/// The web client's settings: `{"basemap": null}` or `{"basemap": {"url", "attribution",
/// "datum", "tile_size", "max_zoom"}}`. Public (no key needed): it holds nothing the page
/// does not show anyway.
#[utoipa::path(get, path = "/client-config", operation_id = "client_config", tag = "service",
    responses((status = 200, description = "`{\"basemap\": null | {\"url\", \"attribution\", \"datum\" (cgcs2000 or gcj02), \"tile_size\", \"max_zoom\"}}`")))]
pub async fn client_config(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "basemap": state.config.basemap }))
}
