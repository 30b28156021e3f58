//! GeoJSON Feature form of records: `id` and `geometry` at the top, every other field in
//! `properties`; and the reverse, for input. Role-based attribute filtering happens here so
//! every endpoint that hands out features applies the same rule.

use super::{Layer, ModelError, Record, Role};
use serde_json::{Map, Value};

/// The geometry field's name in each layer's JSON object.
pub fn geometry_field(layer: Layer) -> &'static str {
    match layer {
        Layer::Sensors => "location",
        _ => "geometry",
    }
}

/// A record as a GeoJSON Feature (a JSON value), with the attributes of the network layers
/// (pipelines and nodes) reduced to those the schema lets `role` read (below analyst:
/// kind, sub-kind and status; a node's kind, type and source kind).
pub fn to_feature(record: &Record, role: Role) -> Value {
    let layer = record.layer();
    let mut obj = match serde_json::to_value(record) {
        Ok(Value::Object(m)) => m,
        // Records are plain data; serialisation cannot fail.
        _ => Map::new(),
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    let geometry = obj.remove(geometry_field(layer)).unwrap_or(Value::Null);
    if matches!(layer, Layer::Pipelines | Layer::Nodes) && role < Role::Analyst {
        obj.retain(|k, _| crate::schema::attribute_role(layer, k) <= role);
    }
    serde_json::json!({
        "type": "Feature",
        "id": id,
        "geometry": geometry,
        "properties": Value::Object(obj),
    })
}

/// Parses a GeoJSON Feature (or a plain JSON object with a geometry field) into a record of
/// `layer`. The error names the field at fault.
pub fn from_feature(layer: Layer, v: Value) -> Result<Record, ModelError> {
    let Value::Object(mut obj) = v else {
        return Err(ModelError::invalid(
            "body",
            "expected a JSON object (a GeoJSON Feature)",
        ));
    };
    let flat = if obj.get("type").and_then(Value::as_str) == Some("Feature") {
        let mut props = match obj.remove("properties") {
            Some(Value::Object(p)) => p,
            Some(Value::Null) | None => Map::new(),
            Some(_) => return Err(ModelError::invalid("properties", "must be an object")),
        };
        if let Some(id) = obj.remove("id") {
            if !id.is_null() {
                props.insert("id".into(), id);
            }
        }
        if layer != Layer::Owners {
            let g = obj.remove("geometry").unwrap_or(Value::Null);
            if g.is_null() {
                return Err(ModelError::Geometry("the Feature has no geometry".into()));
            }
            props.insert(geometry_field(layer).into(), g);
        }
        props
    } else {
        obj
    };
    Record::from_json(layer, Value::Object(flat))
        .map_err(|e| ModelError::invalid(layer.as_str(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_role_filter() {
        let f = serde_json::json!({
            "type": "Feature", "id": 7,
            "geometry": {"type": "LineString", "coordinates": [[106.5, 29.5], [106.501, 29.5]]},
            "properties": {"kind": "water_supply", "owner_id": 3, "diameter_mm": 300.0, "material": "ductile iron"}
        });
        let r = from_feature(Layer::Pipelines, f).unwrap();
        assert_eq!(r.id(), 7);
        let full = to_feature(&r, Role::Analyst);
        assert_eq!(full["properties"]["material"], "ductile iron");
        let public = to_feature(&r, Role::Viewer);
        assert_eq!(public["properties"]["kind"], "water_supply");
        assert!(public["properties"].get("material").is_none());
        assert!(public["properties"].get("owner_id").is_none());
        assert_eq!(public["id"], 7);
    }

    #[test]
    fn unknown_field_is_named() {
        let f = serde_json::json!({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [106.5, 29.5]},
            "properties": {"kind": "gas_lel", "colour": "red"}
        });
        let e = from_feature(Layer::Sensors, f).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }
}
