//! `/openapi.json`: the OpenAPI document of the service, generated from the handlers'
//! annotations with utoipa.

use crate::state::AppState;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Lifeline", description = "Geospatial digital twin of a city's underground lifelines. Send API keys as `Authorization: Bearer <key>`."),
    paths(
        super::health::health,
        super::health::ready,
        super::metrics::scrape,
        super::me::me,
        super::client::client_config,
        super::layers::list,
        super::layers::risk_categories,
        super::layers::sensor_kinds,
        super::features::read,
        super::features::query,
        super::features::nearest,
        super::features::create,
        super::features::replace,
        super::features::remove,
        super::features::bulk_load,
        super::admin::create_key,
        super::admin::list_keys,
        super::admin::revoke_key,
        super::admin::audit,
        super::excavation::check,
        super::excavation::rules,
        super::excavation::submit,
        super::excavation::list,
        super::excavation::read,
        super::excavation::respond,
        super::excavation::transition,
        super::excavation::notifications,
        super::excavation::report_delivery,
        super::excavation::owner_channels,
        super::excavation::set_owner_channels,
        super::sensors::ingest,
        super::sensors::sensor,
        super::sensors::readings,
        super::risk::list_alarms,
        super::risk::alarm,
        super::risk::transition,
        super::risk::points,
        super::risk::point,
        super::risk::suggested,
        super::risk::coverage,
        super::risk::grid_stats,
        super::risk::alarm_density,
        super::events::events,
        super::tiles::tile,
        super::tiles::tilejson_doc,
        super::tiles::tile_dir_file,
        super::tiles::style_doc,
        super::analysis::pipelines_within,
        super::analysis::clearance_audit,
        super::analysis::grid_stats,
        super::analysis::nearest_sensors,
    ),
    tags((name = "service"), (name = "layers"), (name = "features"), (name = "admin"), (name = "tiles"), (name = "excavation"), (name = "analysis", description = "Analysis beyond OGC API – Features (issue 6): pipelines within a distance, the clearance audit (horizontal and vertical), grid statistics, nearest sensors; the OGC API itself is described at /ogc/api"), (name = "risk", description = "The risk one map: sensor readings, alarms and their lifecycle, live risk levels, grid statistics, live events (issue 5)"))
)]
pub struct ApiDoc;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
