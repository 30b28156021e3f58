//! The layer schemas: each layer's attributes with their types, its geometry type, and the
//! role needed to read each attribute. `/layers`, the OGC queryables and properties, the
//! exporters and the importer's targets all read them here.

use super::feature::PIPELINE_PUBLIC_FIELDS;
use super::{Layer, Role};
use serde_json::{json, Value};

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

/// The GeoJSON geometry type(s) of a layer's features (null for the owners table).
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
