//! `/layers`: what the service holds — each layer with its count, extent, geometry type
//! and attributes (with the role needed to see them) — and `/catalog/*`: the vocabularies
//! that live in `data/` (risk categories, sensor kinds).

use crate::model::feature::PIPELINE_PUBLIC_FIELDS;
use crate::model::{Layer, Role};
use crate::server::AppState;
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

/// `(name, type)` of each layer's attributes, as the model serialises them.
pub fn attributes(layer: Layer) -> &'static [(&'static str, &'static str)] {
    match layer {
        Layer::Pipelines => &[
            ("kind", "string"),
            ("sub_kind", "string"),
            ("pressure_class", "string"),
            ("voltage_kv", "number"),
            ("material", "string"),
            ("diameter_mm", "number"),
            ("section_width_mm", "number"),
            ("section_height_mm", "number"),
            ("depth_start_m", "number"),
            ("depth_end_m", "number"),
            ("invert_start_m", "number"),
            ("invert_end_m", "number"),
            ("burial", "string"),
            ("owner_id", "integer"),
            ("year_built", "integer"),
            ("survey_date", "date"),
            ("plan_accuracy_cm", "number"),
            ("depth_accuracy_cm", "number"),
            ("quality_level", "string"),
            ("status", "string"),
        ],
        Layer::RiskPoints => &[
            ("category", "string"),
            ("level", "string"),
            ("name", "string"),
            ("grid_cell_id", "integer"),
            ("responsible_unit", "string"),
            ("responsible_person", "string"),
            ("responsible_phone", "string"),
            ("emergency_plan", "string"),
            ("last_review", "date"),
            ("next_review", "date"),
            ("status", "string"),
        ],
        Layer::GridCells => &[
            ("level", "string"),
            ("parent_id", "integer"),
            ("name", "string"),
            ("code", "string"),
        ],
        Layer::Sensors => &[
            ("kind", "string"),
            ("code", "string"),
            ("pipeline_id", "integer"),
            ("risk_point_id", "integer"),
            ("status", "string"),
            ("installed", "date"),
        ],
        Layer::Owners => &[
            ("name", "string"),
            ("emergency_contact", "string"),
            ("emergency_phone", "string"),
            ("email", "string"),
        ],
    }
}

pub fn geometry_type(layer: Layer) -> Value {
    match layer {
        Layer::Pipelines => json!("LineString"),
        Layer::RiskPoints => json!(["Point", "Polygon"]),
        Layer::GridCells => json!("MultiPolygon"),
        Layer::Sensors => json!("Point"),
        Layer::Owners => Value::Null,
    }
}

/// The role needed to read an attribute of a layer.
pub fn attribute_role(layer: Layer, name: &str) -> Role {
    match layer {
        Layer::Pipelines if !PIPELINE_PUBLIC_FIELDS.contains(&name) => Role::Analyst,
        Layer::Owners => Role::Contractor,
        _ => Role::Viewer,
    }
}

/// Every layer with count, bbox (lon/lat, EPSG:4490), geometry type and attributes.
#[utoipa::path(get, path = "/layers", tag = "layers", responses((status = 200, description = "The layers with counts, extents and attributes")))]
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let layers: Vec<Value> = state
        .index
        .stats()
        .into_iter()
        .map(|s| {
            let attrs: Vec<Value> = attributes(s.layer)
                .iter()
                .map(|(n, t)| json!({"name": n, "type": t, "min_role": attribute_role(s.layer, n)}))
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
