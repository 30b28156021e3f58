//! Queryables (Part 3): the properties a caller may filter and sort on, per collection and
//! role. They are exactly the properties the caller can see (the layer's schema
//! table filtered by each attribute's role), so a filter can never reveal an attribute the
//! role may not read.

use lifeline_model::schema::{fields, Column};
use lifeline_model::{Layer, Role};
use serde_json::{json, Map, Value};

/// The type of a queryable, for compile-time checks of filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    String,
    Number,
    Integer,
    Date,
}

/// One queryable property.
#[derive(Debug, Clone, PartialEq)]
pub struct Queryable {
    pub name: &'static str,
    pub qtype: QType,
}

/// The queryables of a layer for a role.
pub fn queryables(layer: Layer, role: Role) -> Vec<Queryable> {
    fields(layer)
        .iter()
        .filter(|f| role >= f.role)
        .map(|f| Queryable {
            name: f.name,
            qtype: match f.column {
                Column::Real => QType::Number,
                Column::BigInt | Column::Int => QType::Integer,
                Column::Date => QType::Date,
                Column::Text => QType::String,
            },
        })
        .collect()
}

/// The temporal property `datetime` applies to, if the layer has one.
pub fn temporal_property(layer: Layer) -> Option<&'static str> {
    match layer {
        Layer::Pipelines => Some("survey_date"),
        Layer::RiskPoints => Some("last_review"),
        Layer::Sensors => Some("installed"),
        _ => None,
    }
}

/// The queryables document (a JSON Schema, as Part 3 requires).
pub fn schema(layer: Layer, role: Role, self_url: &str) -> Value {
    let mut props = Map::new();
    props.insert("id".into(), json!({"title": "id", "type": "integer"}));
    for q in queryables(layer, role) {
        let v = match q.qtype {
            QType::String => json!({"title": q.name, "type": "string"}),
            QType::Number => json!({"title": q.name, "type": "number"}),
            QType::Integer => json!({"title": q.name, "type": "integer"}),
            QType::Date => json!({"title": q.name, "type": "string", "format": "date"}),
        };
        props.insert(q.name.to_string(), v);
    }
    if layer != Layer::Owners {
        let format = match layer {
            Layer::Pipelines => "geometry-linestring",
            Layer::Sensors | Layer::Nodes => "geometry-point",
            Layer::GridCells => "geometry-multipolygon",
            _ => "geometry-any",
        };
        props.insert(
            "geometry".into(),
            json!({"title": "geometry", "format": format, "x-ogc-role": "primary-geometry"}),
        );
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": self_url,
        "type": "object",
        "title": layer.as_str(),
        "properties": props,
        "additionalProperties": false,
    })
}
