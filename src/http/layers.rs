//! `/layers`: what the service holds — each layer with its count, extent, geometry type
//! and attributes (with the role needed to see them) — and `/catalog/*`: the vocabularies
//! that live in `data/` (risk categories, sensor kinds).

use super::routes::Routes;
use crate::model::schema::{fields, geometry_type};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(list))
        .routes(routes!(risk_categories))
        .routes(routes!(sensor_kinds))
}

/// Every layer with count, bbox (lon/lat, EPSG:4490), geometry type and attributes.
#[utoipa::path(get, path = "/layers", operation_id = "list_layers", tag = "layers", responses((status = 200, description = "The layers with counts, extents and attributes")))]
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let layers: Vec<Value> = state
        .index
        .stats()
        .into_iter()
        .map(|s| {
            let attrs: Vec<Value> = fields(s.layer)
                .iter()
                .map(|f| json!({"name": f.name, "type": f.column.type_name(), "min_role": f.role}))
                .collect();
            json!({
                "id": s.layer,
                "count": s.count,
                "bbox": s.bbox,
                "crs": "EPSG:4490",
                "geometry_type": geometry_type(s.layer),
                "attributes": attrs,
                "links": {"items": format!("/features/{}", s.layer)},
            })
        })
        .collect();
    Json(json!({"layers": layers}))
}

/// The 40 risk categories.
#[utoipa::path(get, path = "/catalog/risk-categories", operation_id = "list_risk_categories", tag = "layers", responses((status = 200, description = "Risk categories from data/risk_categories.toml")))]
pub async fn risk_categories(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"categories": state.catalog.risk_categories}))
}

/// Sensor kinds with units, ranges and thresholds.
#[utoipa::path(get, path = "/catalog/sensor-kinds", operation_id = "list_sensor_kinds", tag = "layers", responses((status = 200, description = "Sensor kinds from data/sensor_kinds.toml")))]
pub async fn sensor_kinds(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"kinds": state.catalog.sensor_kinds}))
}
