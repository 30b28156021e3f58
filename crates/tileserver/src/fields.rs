//! The attributes a tile feature can carry: for each layer, the names, their TileJSON
//! types, the least role access control allows to see them, and how to read one from a
//! record as an MVT [`Value`] (borrowing the record's strings, so a tile allocates no
//! string per feature).

use lifeline_model::feature::PIPELINE_PUBLIC_FIELDS;
use lifeline_model::{Layer, Record, Role};
use lifeline_tiles::Value;

/// TileJSON field types (what GDAL and QGIS read from `vector_layers[].fields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Number,
}

impl FieldType {
    /// The TileJSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "String",
            FieldType::Number => "Number",
        }
    }
}

use FieldType::{Number as N, String as S};

const PIPELINES: &[(&str, FieldType)] = &[
    ("kind", S),
    ("sub_kind", S),
    ("status", S),
    ("pressure_class", S),
    ("voltage_kv", N),
    ("material", S),
    ("diameter_mm", N),
    ("section_width_mm", N),
    ("section_height_mm", N),
    ("depth_start_m", N),
    ("depth_end_m", N),
    ("invert_start_m", N),
    ("invert_end_m", N),
    ("burial", S),
    ("owner_id", N),
    ("year_built", N),
    ("survey_date", S),
    ("plan_accuracy_cm", N),
    ("depth_accuracy_cm", N),
    ("quality_level", S),
];

const RISK_POINTS: &[(&str, FieldType)] = &[
    ("category", S),
    ("level", S),
    ("name", S),
    ("grid_cell_id", N),
    ("responsible_unit", S),
    ("responsible_person", S),
    ("responsible_phone", S),
    ("emergency_plan", S),
    ("last_review", S),
    ("next_review", S),
    ("status", S),
];

const GRID_CELLS: &[(&str, FieldType)] =
    &[("level", S), ("parent_id", N), ("name", S), ("code", S)];

const SENSORS: &[(&str, FieldType)] = &[
    ("kind", S),
    ("code", S),
    ("pipeline_id", N),
    ("risk_point_id", N),
    ("status", S),
    ("installed", S),
];

fn table(layer: Layer) -> &'static [(&'static str, FieldType)] {
    match layer {
        Layer::Pipelines => PIPELINES,
        Layer::RiskPoints => RISK_POINTS,
        Layer::GridCells => GRID_CELLS,
        Layer::Sensors => SENSORS,
        Layer::Owners => &[],
    }
}

/// The type of a layer's attribute, `None` if the layer has no such attribute.
pub fn field_type(layer: Layer, name: &str) -> Option<FieldType> {
    table(layer)
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// Every attribute name of a layer.
pub fn names(layer: Layer) -> Vec<&'static str> {
    table(layer).iter().map(|(n, _)| *n).collect()
}

/// The least role access control lets see an attribute (the same rule as the GeoJSON
/// endpoints: pipeline details beyond [`PIPELINE_PUBLIC_FIELDS`] need `analyst`).
pub fn access_role(layer: Layer, name: &str) -> Role {
    match layer {
        Layer::Pipelines if !PIPELINE_PUBLIC_FIELDS.contains(&name) => Role::Analyst,
        Layer::Owners => Role::Contractor,
        _ => Role::Viewer,
    }
}

fn s(v: &str) -> Option<Value<'_>> {
    Some(Value::from(v))
}

fn num(v: Option<f64>) -> Option<Value<'static>> {
    v.map(Value::Double)
}

fn int(v: Option<i64>) -> Option<Value<'static>> {
    v.map(Value::SInt)
}

fn date(v: Option<chrono::NaiveDate>) -> Option<Value<'static>> {
    v.map(|d| Value::from(d.format("%Y-%m-%d").to_string()))
}

/// The value of attribute `name` of `record`; `None` when the record has no value (the
/// feature then simply lacks the key, as MVT allows) or no such attribute.
pub fn value<'r>(record: &'r Record, name: &str) -> Option<Value<'r>> {
    match record {
        Record::Pipeline(p) => match name {
            "kind" => s(p.kind.as_str()),
            "sub_kind" => p.sub_kind.and_then(|v| s(v.as_str())),
            "status" => s(p.status.as_str()),
            "pressure_class" => p.pressure_class.and_then(|v| s(v.as_str())),
            "voltage_kv" => num(p.voltage_kv),
            "material" => p.material.as_deref().and_then(s),
            "diameter_mm" => num(p.diameter_mm),
            "section_width_mm" => num(p.section_width_mm),
            "section_height_mm" => num(p.section_height_mm),
            "depth_start_m" => num(p.depth_start_m),
            "depth_end_m" => num(p.depth_end_m),
            "invert_start_m" => num(p.invert_start_m),
            "invert_end_m" => num(p.invert_end_m),
            "burial" => p.burial.and_then(|v| s(v.as_str())),
            "owner_id" => int(Some(p.owner_id)),
            "year_built" => int(p.year_built.map(i64::from)),
            "survey_date" => date(p.survey_date),
            "plan_accuracy_cm" => num(p.plan_accuracy_cm),
            "depth_accuracy_cm" => num(p.depth_accuracy_cm),
            "quality_level" => p.quality_level.and_then(|v| s(v.as_str())),
            _ => None,
        },
        Record::RiskPoint(r) => match name {
            "category" => s(&r.category),
            "level" => s(r.level.as_str()),
            "name" => s(&r.name),
            "grid_cell_id" => int(r.grid_cell_id),
            "responsible_unit" => s(&r.responsible_unit),
            "responsible_person" => s(&r.responsible_person),
            "responsible_phone" => r.responsible_phone.as_deref().and_then(s),
            "emergency_plan" => r.emergency_plan.as_deref().and_then(s),
            "last_review" => date(r.last_review),
            "next_review" => date(r.next_review),
            "status" => s(r.status.as_str()),
            _ => None,
        },
        Record::GridCell(c) => match name {
            "level" => s(c.level.as_str()),
            "parent_id" => int(c.parent_id),
            "name" => s(&c.name),
            "code" => s(&c.code),
            _ => None,
        },
        Record::Sensor(x) => match name {
            "kind" => s(x.kind.as_str()),
            "code" => x.code.as_deref().and_then(s),
            "pipeline_id" => int(x.pipeline_id),
            "risk_point_id" => int(x.risk_point_id),
            "status" => s(x.status.as_str()),
            "installed" => date(x.installed),
            _ => None,
        },
        Record::Owner(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_field_is_readable_and_public_fields_match_access_control() {
        for name in PIPELINE_PUBLIC_FIELDS {
            assert!(field_type(Layer::Pipelines, name).is_some(), "{name}");
            assert_eq!(access_role(Layer::Pipelines, name), Role::Viewer);
        }
        assert_eq!(access_role(Layer::Pipelines, "material"), Role::Analyst);
        assert_eq!(access_role(Layer::RiskPoints, "name"), Role::Viewer);
        assert_eq!(field_type(Layer::GridCells, "colour"), None);
    }
}
