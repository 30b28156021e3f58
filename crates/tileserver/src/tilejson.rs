//! TileJSON 3.0.0 documents for a layer set: the `tiles` URL template, `vector_layers`
//! with each layer's fields (name → type) as the caller's role class sees them, zoom range,
//! bounds and centre from the index. Also the same description in the MBTiles
//! `metadata.json` shape (`json` holding `vector_layers` as a string), which GDAL's MVT
//! driver fetches beside a tile directory when it is given no `METADATA_FILE` (given our
//! TileJSON as a local `METADATA_FILE`, GDAL 3.6 reads it as it is).

use super::config::TilesConfig;
use super::fields;
use super::LayerSet;
use lifeline_index::SpatialIndex;
use lifeline_model::{Bbox, Layer, Role};
use lifeline_tiles::pipeline::CLUSTER_COUNT_KEY;
use lifeline_tiles::tilemath::MAX_LATITUDE;
use serde_json::{json, Map, Value};

/// The `fields` object of one layer for a role class: every attribute the class sees at
/// some zoom, plus `count` where points are clustered.
pub fn layer_fields(config: &TilesConfig, layer: Layer, class: Role) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(lc) = config.layer(layer) {
        for a in lc.attributes.iter().filter(|a| a.role <= class) {
            if let Some(t) = fields::field_type(layer, &a.name) {
                out.insert(a.name.clone(), json!(t.as_str()));
            }
        }
        if lc.cluster_below.is_some() {
            out.insert(CLUSTER_COUNT_KEY.into(), json!("Number"));
        }
    }
    out
}

/// The `vector_layers` array.
pub fn vector_layers(config: &TilesConfig, layers: &LayerSet, class: Role) -> Vec<Value> {
    layers
        .layers()
        .iter()
        .filter_map(|&l| config.layer(l).map(|lc| (l, lc)))
        .map(|(l, lc)| {
            json!({
                "id": l.as_str(),
                "description": description(l),
                "minzoom": lc.minzoom,
                "maxzoom": config.defaults.maxzoom,
                "fields": layer_fields(config, l, class),
            })
        })
        .collect()
}

fn description(layer: Layer) -> &'static str {
    match layer {
        Layer::Pipelines => "Underground pipelines (lines), by kind",
        Layer::RiskPoints => {
            "Risk points of the risk one map (points, areas; clustered when zoomed out)"
        }
        Layer::GridCells => "Grid-governance cells (polygons), district down to micro-grid",
        Layer::Sensors => "Sensing devices (points; clustered when zoomed out)",
        Layer::Nodes => "Network nodes: sources, valves, customer connections, junctions (points)",
        Layer::Owners => "",
    }
}

/// The lon/lat extent of the layers' data (the Web Mercator world when there is none).
pub fn bounds(index: &SpatialIndex, layers: &LayerSet) -> [f64; 4] {
    let b = index
        .stats()
        .into_iter()
        .filter(|s| layers.contains(s.layer))
        .filter_map(|s| s.bbox)
        .reduce(|a, b| a.union(&b));
    match b {
        Some(b) => [
            b.min_x(),
            b.min_y().max(-MAX_LATITUDE),
            b.max_x(),
            b.max_y().min(MAX_LATITUDE),
        ],
        None => [-180.0, -MAX_LATITUDE, 180.0, MAX_LATITUDE],
    }
}

/// The tile URL template of a layer set under `base` (no trailing slash).
pub fn tiles_url(base: &str, layers: &LayerSet) -> String {
    format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt", layers.to_path())
}

/// The TileJSON 3.0.0 document of `layers` for a caller of role class `class`.
pub fn tilejson(
    config: &TilesConfig,
    index: &SpatialIndex,
    layers: &LayerSet,
    class: Role,
    base: &str,
) -> Value {
    let d = &config.defaults;
    let minzoom = config.minzoom(layers.layers()).min(d.maxzoom);
    let b = bounds(index, layers);
    let center = Bbox::new(b[0], b[1], b[2], b[3])
        .map(|b| b.center())
        .unwrap_or((0.0, 0.0));
    json!({
        "tilejson": "3.0.0",
        "name": format!("Lifeline {}", layers.to_path()),
        "description": "Chongqing underground lifelines (CGCS2000 data, Web Mercator tiles)",
        "version": "1.0.0",
        "attribution": "Lifeline",
        "scheme": "xyz",
        "format": "pbf",
        "tiles": [tiles_url(base, layers)],
        "minzoom": minzoom,
        "maxzoom": d.maxzoom,
        "bounds": b,
        "center": [center.0, center.1, d.center_zoom.clamp(minzoom, d.maxzoom)],
        "vector_layers": vector_layers(config, layers, class),
    })
}

/// The same description as an MBTiles-style `metadata.json` (what tippecanoe writes next
/// to a tile directory): bounds and centre as comma-separated strings, `vector_layers`
/// inside the `json` string.
pub fn mbtiles_metadata(
    config: &TilesConfig,
    index: &SpatialIndex,
    layers: &LayerSet,
    class: Role,
) -> Value {
    let d = &config.defaults;
    let minzoom = config.minzoom(layers.layers()).min(d.maxzoom);
    let b = bounds(index, layers);
    let inner = json!({ "vector_layers": vector_layers(config, layers, class) });
    json!({
        "name": format!("Lifeline {}", layers.to_path()),
        "format": "pbf",
        "minzoom": minzoom.to_string(),
        "maxzoom": d.maxzoom.to_string(),
        "bounds": format!("{},{},{},{}", b[0], b[1], b[2], b[3]),
        "center": format!("{},{},{}", (b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0, d.center_zoom),
        "json": inner.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_role_class() {
        let c = TilesConfig::builtin();
        let viewer = layer_fields(c, Layer::Pipelines, Role::Viewer);
        assert!(viewer.contains_key("kind") && !viewer.contains_key("diameter_mm"));
        let analyst = layer_fields(c, Layer::Pipelines, Role::Analyst);
        assert_eq!(analyst["diameter_mm"], "Number");
        let risk = layer_fields(c, Layer::RiskPoints, Role::Viewer);
        assert_eq!(risk["count"], "Number");
        assert!(!risk.contains_key("responsible_unit"));
    }
}
