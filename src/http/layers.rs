//! `/layers`: what the service holds — each layer with its count, extent, geometry type
//! and attributes (with the role needed to see them) — and `/catalog/*`: the vocabularies
//! that live in `data/` (risk categories, sensor kinds).

use crate::model::schema::{fields, geometry_type};
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/layers", get(list))
        .route("/catalog/risk-categories", get(risk_categories))
        .route("/catalog/sensor-kinds", get(sensor_kinds))
}

/// Every layer with count, bbox (lon/lat, EPSG:4490), geometry type and attributes.
#[utoipa::path(get, path = "/layers", tag = "layers", responses((status = 200, description = "The layers with counts, extents and attributes")))]
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
#[utoipa::path(get, path = "/catalog/risk-categories", tag = "layers", responses((status = 200, description = "Risk categories from data/risk_categories.toml")))]
pub async fn risk_categories(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"categories": state.catalog.risk_categories}))
}

/// Sensor kinds with units, ranges and thresholds.
#[utoipa::path(get, path = "/catalog/sensor-kinds", tag = "layers", responses((status = 200, description = "Sensor kinds from data/sensor_kinds.toml")))]
pub async fn sensor_kinds(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"kinds": state.catalog.sensor_kinds}))
}
