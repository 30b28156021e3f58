//! The attributes a tile feature can carry, read from the layer schemas
//! ([`lifeline_model::schema`]): their TileJSON types, the least role access control allows
//! to see them, and how to read one from a record as an MVT [`Value`] (borrowing the
//! record's strings, so a tile allocates no string per feature). Which zoom and role
//! actually carries each one is the tile policy in `data/tiles.toml`.

use lifeline_model::schema::{self, Column, Field};
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

/// The type of a layer's attribute, `None` if the layer has no such attribute (the owners
/// table has none in tiles: it is not a tile layer).
pub fn field_type(layer: Layer, name: &str) -> Option<FieldType> {
    if layer == Layer::Owners {
        return None;
    }
    schema::field(layer, name).map(|f| match f.column {
        Column::Real | Column::BigInt | Column::Int => FieldType::Number,
        Column::Text | Column::Date => FieldType::String,
    })
}

/// Every attribute name of a layer that tiles can carry.
pub fn names(layer: Layer) -> Vec<&'static str> {
    if layer == Layer::Owners {
        return Vec::new();
    }
    schema::fields(layer).iter().map(|f| f.name).collect()
}

/// The least role access control lets see an attribute (the same rule as the GeoJSON
/// endpoints: the schema's role).
pub fn access_role(layer: Layer, name: &str) -> Role {
    schema::attribute_role(layer, name)
}

/// The value of attribute `name` of `record`; `None` when the record has no value (the
/// feature then simply lacks the key, as MVT allows) or no such attribute.
pub fn value<'r>(record: &'r Record, name: &str) -> Option<Value<'r>> {
    match schema::value(record, name) {
        Field::Null => None,
        Field::Str(s) => Some(Value::from(s)),
        Field::F64(f) => Some(Value::Double(f)),
        Field::I64(i) => Some(Value::SInt(i)),
        Field::Date(d) => Some(Value::from(d.format("%Y-%m-%d").to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_field_is_readable_and_public_fields_match_access_control() {
        for name in ["kind", "sub_kind", "status"] {
            assert!(field_type(Layer::Pipelines, name).is_some(), "{name}");
            assert_eq!(access_role(Layer::Pipelines, name), Role::Viewer);
        }
        assert_eq!(access_role(Layer::Pipelines, "material"), Role::Analyst);
        assert_eq!(access_role(Layer::RiskPoints, "name"), Role::Viewer);
        assert_eq!(field_type(Layer::GridCells, "colour"), None);
        assert_eq!(
            field_type(Layer::Pipelines, "year_built"),
            Some(FieldType::Number)
        );
        assert_eq!(
            field_type(Layer::Sensors, "installed"),
            Some(FieldType::String)
        );
    }
}
