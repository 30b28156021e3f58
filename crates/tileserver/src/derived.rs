//! Derived tile layers of the risk one map: `grid_stats` (grid-cell polygons with the
//! per-cell statistics of [`lifeline_risk::RiskEngine::grid_stats`], at a governance level
//! chosen by zoom, for a choropleth) and `alarm_density` (open alarms as points weighted by
//! severity, for a heat map). They are computed from the alarm book and live sensor states
//! as well as the index, so they change with every reading that raises or clears an alarm,
//! not only with record writes: they never enter the tile cache (which is invalidated by
//! record writes only) and are served with a revalidating `Cache-Control`; the strong
//! ETag of their bytes still gives 304s while nothing changed.
//!
//! A tile URL may mix them with stored layers (`grid_cells,grid_stats`): the stored part
//! comes from the cached [`TileService::tile`] and the derived layers are appended (an MVT
//! tile is a sequence of layer messages, so the bytes concatenate).

use super::config::{ConfigError, TilesConfig};
use super::render::query_bbox;
use super::{
    compress, Encoding, LayerSet, LayerSetError, ServedTile, TileBody, TileService,
    TileServiceError, MAX_LAYERS, MAX_SEGMENT_BYTES,
};
use lifeline_model::{GridLevel, Layer, Record, Role};
use lifeline_risk::RiskEngine;
use lifeline_tiles::{LayerEncoder, LayerOptions, SourceFeature, SourceGeometry, TileCoord, Value};
use serde::Deserialize;
use serde_json::{json, Map};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A tile layer computed from the risk engine rather than stored records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DerivedLayer {
    GridStats,
    AlarmDensity,
}

impl DerivedLayer {
    /// Every derived layer.
    pub const ALL: [DerivedLayer; 2] = [DerivedLayer::GridStats, DerivedLayer::AlarmDensity];

    /// The layer name in URLs and tiles.
    pub fn as_str(self) -> &'static str {
        match self {
            DerivedLayer::GridStats => "grid_stats",
            DerivedLayer::AlarmDensity => "alarm_density",
        }
    }

    fn from_name(name: &str) -> Option<DerivedLayer> {
        DerivedLayer::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The TileJSON `fields` (name → type).
    pub fn fields(self) -> Map<String, serde_json::Value> {
        let pairs: &[(&str, &str)] = match self {
            DerivedLayer::GridStats => &[
                ("id", "Number"),
                ("name", "String"),
                ("code", "String"),
                ("level", "String"),
                ("risk_points", "Number"),
                ("major", "Number"),
                ("large", "Number"),
                ("general", "Number"),
                ("low", "Number"),
                ("covered", "Number"),
                ("coverage", "Number"),
                ("coverage_pct", "Number"),
                ("open_alarms", "Number"),
                ("sensors", "Number"),
                ("offline_sensors", "Number"),
                ("unlinked_sensors", "Number"),
                ("unlinked_offline", "Number"),
            ],
            DerivedLayer::AlarmDensity => &[
                ("id", "Number"),
                ("sensor_id", "Number"),
                ("severity", "String"),
                ("rule", "String"),
                ("status", "String"),
                ("weight", "Number"),
            ],
        };
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), json!(v)))
            .collect()
    }

    fn description(self) -> &'static str {
        match self {
            DerivedLayer::GridStats => {
                "Per-grid risk statistics (cell polygons; the governance level follows the zoom)"
            }
            DerivedLayer::AlarmDensity => {
                "Open alarms (points weighted by severity: notice 1, alarm 3, emergency 5)"
            }
        }
    }
}

/// `[derived]` of `tiles.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedConfig {
    /// Cache-Control of tiles holding a derived layer (they change with every alarm).
    pub cache_control: String,
    pub grid_stats: GridStatsConfig,
    pub alarm_density: AlarmDensityConfig,
}

/// `[derived.grid_stats]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridStatsConfig {
    pub minzoom: u8,
    /// Level → the zoom from which it is the level shown (until the next level's zoom).
    pub level_from_zoom: BTreeMap<GridLevel, u8>,
}

/// `[derived.alarm_density]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmDensityConfig {
    pub minzoom: u8,
}

impl Default for DerivedConfig {
    fn default() -> Self {
        DerivedConfig {
            cache_control: "no-cache".into(),
            grid_stats: GridStatsConfig {
                minzoom: 6,
                level_from_zoom: [
                    (GridLevel::District, 0),
                    (GridLevel::Street, 10),
                    (GridLevel::Community, 12),
                    (GridLevel::Grid, 14),
                ]
                .into_iter()
                .collect(),
            },
            alarm_density: AlarmDensityConfig { minzoom: 6 },
        }
    }
}

impl DerivedConfig {
    /// Checks the section: some level must start at zoom 0 (else low zooms have none),
    /// no two levels may share a zoom, zooms within 0..=22.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid {
            key: format!("derived.{key}"),
            message,
        };
        let zooms: Vec<u8> = self.grid_stats.level_from_zoom.values().copied().collect();
        if !zooms.contains(&0) {
            return Err(bad(
                "grid_stats.level_from_zoom",
                "one level must start at zoom 0".into(),
            ));
        }
        let mut sorted = zooms.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != zooms.len() {
            return Err(bad(
                "grid_stats.level_from_zoom",
                "two levels start at the same zoom".into(),
            ));
        }
        for (key, z) in [
            ("grid_stats.minzoom", self.grid_stats.minzoom),
            ("alarm_density.minzoom", self.alarm_density.minzoom),
        ]
        .into_iter()
        .chain(sorted.last().map(|z| ("grid_stats.level_from_zoom", *z)))
        {
            if z > lifeline_tiles::tilemath::MAX_ZOOM {
                return Err(bad(key, format!("zoom {z} is above 22")));
            }
        }
        if self.cache_control.trim().is_empty() {
            return Err(bad("cache_control", "must not be empty".into()));
        }
        Ok(())
    }

    /// The governance level the `grid_stats` layer shows at zoom `z`.
    pub fn level_at(&self, z: u8) -> GridLevel {
        self.grid_stats
            .level_from_zoom
            .iter()
            .filter(|(_, from)| **from <= z)
            .max_by_key(|(_, from)| **from)
            .map(|(l, _)| *l)
            .unwrap_or(GridLevel::District)
    }

    /// The zoom from which a derived layer has features.
    pub fn minzoom(&self, layer: DerivedLayer) -> u8 {
        match layer {
            DerivedLayer::GridStats => self.grid_stats.minzoom,
            DerivedLayer::AlarmDensity => self.alarm_density.minzoom,
        }
    }
}

/// A tile URL's layer list holding at least one derived layer: the stored layers (maybe
/// none) and the derived ones, each in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixedSet {
    pub stored: LayerSet,
    pub derived: Vec<DerivedLayer>,
}

impl MixedSet {
    /// `Ok(None)` when the list names no derived layer (then [`LayerSet::parse`] applies
    /// as before); the same checks and errors as [`LayerSet::parse`] otherwise.
    pub fn parse(segment: &str) -> Result<Option<MixedSet>, LayerSetError> {
        if segment.len() > MAX_SEGMENT_BYTES {
            return Err(LayerSetError::TooLong(segment.len()));
        }
        let n = segment.split(',').count();
        if n > MAX_LAYERS {
            return Err(LayerSetError::TooMany(n));
        }
        if !segment
            .split(',')
            .any(|s| DerivedLayer::from_name(s).is_some())
        {
            return Ok(None);
        }
        let mut derived = Vec::new();
        let mut stored = Vec::new();
        for name in segment.split(',') {
            match DerivedLayer::from_name(name) {
                Some(d) if derived.contains(&d) => {
                    return Err(LayerSetError::DuplicateName(name.into()))
                }
                Some(d) => derived.push(d),
                None => stored.push(name),
            }
        }
        let stored = if stored.is_empty() {
            LayerSet::of(&[])
        } else {
            LayerSet::parse(&stored.join(","))?
        };
        Ok(Some(MixedSet { stored, derived }))
    }

    /// The URL form, stored layers first.
    pub fn to_path(&self) -> String {
        let stored = self.stored.to_path();
        let mut parts: Vec<&str> = if stored.is_empty() {
            Vec::new()
        } else {
            vec![stored.as_str()]
        };
        parts.extend(self.derived.iter().map(|d| d.as_str()));
        parts.join(",")
    }
}

/// Appends one derived layer of `tile` to `out` (nothing when it has no feature there).
pub fn render_derived(
    risk: &RiskEngine,
    config: &TilesConfig,
    layer: DerivedLayer,
    tile: TileCoord,
    out: &mut Vec<u8>,
) -> Result<(), TileServiceError> {
    let dc = &config.derived;
    let z = tile.z();
    if z < dc.minzoom(layer) {
        return Ok(());
    }
    let d = &config.defaults;
    let bbox = query_bbox(tile, d.extent, d.buffer);
    let px = f64::from(d.extent) / 256.0;
    let detail = z >= d.detail_zoom;
    let opts = LayerOptions {
        extent: d.extent,
        buffer: d.buffer,
        simplify_tolerance: if detail { 0.0 } else { px },
        // Every cell with statistics is drawn, however small: a choropleth has no holes.
        min_size: 0.0,
        max_features: Some(d.max_features),
        cluster_cell: None,
    };
    // Cells are borrowed from their index records (no polygon copies); alarms are points.
    let mut cells: Vec<Arc<Record>> = Vec::new();
    let mut points: Vec<geo::Point<f64>> = Vec::new();
    let mut props: Vec<Vec<(&str, Value<'_>)>> = Vec::new();
    let mut ids = Vec::new();
    let mut weights = Vec::new();
    let stats;
    let density;
    match layer {
        DerivedLayer::GridStats => {
            let level = dc.level_at(z);
            stats = risk
                .grid_stats(level, Some(&bbox))
                .map_err(|e| TileServiceError::Derived(e.to_string()))?;
            for s in &stats {
                let Some(rec) = risk.index.get(Layer::GridCells, s.id) else {
                    continue;
                };
                if !matches!(&*rec, Record::GridCell(_)) {
                    continue;
                }
                cells.push(rec);
                ids.push(s.id);
                weights.push(f64::from(s.risk_points));
                props.push(vec![
                    ("id", Value::SInt(s.id)),
                    ("name", Value::String(Cow::Borrowed(s.name.as_str()))),
                    ("code", Value::String(Cow::Borrowed(s.code.as_str()))),
                    ("level", Value::String(Cow::Borrowed(s.level.as_str()))),
                    ("risk_points", Value::UInt(s.risk_points.into())),
                    ("major", Value::UInt(s.major.into())),
                    ("large", Value::UInt(s.large.into())),
                    ("general", Value::UInt(s.general.into())),
                    ("low", Value::UInt(s.low.into())),
                    ("covered", Value::UInt(s.covered.into())),
                    ("coverage", Value::Double(s.coverage)),
                    ("coverage_pct", Value::Double(s.coverage * 100.0)),
                    ("open_alarms", Value::UInt(s.open_alarms.into())),
                    ("sensors", Value::UInt(s.sensors.into())),
                    ("offline_sensors", Value::UInt(s.offline_sensors.into())),
                    ("unlinked_sensors", Value::UInt(s.unlinked_sensors.into())),
                    ("unlinked_offline", Value::UInt(s.unlinked_offline.into())),
                ]);
            }
        }
        DerivedLayer::AlarmDensity => {
            density = risk.alarm_density(Some(&bbox));
            let empty = Vec::new();
            for f in density["features"].as_array().unwrap_or(&empty) {
                let c = &f["geometry"]["coordinates"];
                let (Some(lon), Some(lat)) = (c[0].as_f64(), c[1].as_f64()) else {
                    continue;
                };
                let p = &f["properties"];
                let id = p["id"].as_i64().unwrap_or(0);
                let weight = p["weight"].as_u64().unwrap_or(1);
                points.push(geo::Point::new(lon, lat));
                ids.push(id);
                weights.push(weight as f64);
                let text = |k: &str| Value::String(Cow::Owned(p[k].as_str().unwrap_or("").into()));
                props.push(vec![
                    ("id", Value::SInt(id)),
                    (
                        "sensor_id",
                        Value::SInt(p["sensor_id"].as_i64().unwrap_or(0)),
                    ),
                    ("severity", text("severity")),
                    ("rule", text("rule")),
                    ("status", text("status")),
                    ("weight", Value::UInt(weight)),
                ]);
            }
        }
    }
    let geoms: Vec<SourceGeometry<'_>> = cells
        .iter()
        .filter_map(|r| match &**r {
            Record::GridCell(c) => Some(SourceGeometry::MultiPolygon(&c.geometry)),
            _ => None,
        })
        .chain(points.iter().map(SourceGeometry::Point))
        .collect();
    if geoms.is_empty() {
        return Ok(());
    }
    let features: Vec<SourceFeature<'_>> = (0..geoms.len())
        .map(|i| SourceFeature {
            id: u64::try_from(ids[i]).ok(),
            geometry: geoms[i],
            properties: &props[i],
            importance: weights[i],
        })
        .collect();
    let start = out.len();
    let st = LayerEncoder::new()
        .encode_into(layer.as_str(), tile, &features, &opts, out)
        .map_err(|e| TileServiceError::Render(e.into()))?;
    if st.output == 0 {
        out.truncate(start);
    }
    Ok(())
}

impl TileService {
    /// A tile holding derived layers (and maybe stored ones), never cached: the stored
    /// part from [`TileService::tile`], the derived layers cut now on the blocking pool.
    pub async fn mixed_tile(
        &self,
        risk: Arc<RiskEngine>,
        set: MixedSet,
        tile: TileCoord,
        role: Role,
        encoding: Encoding,
    ) -> Result<ServedTile, TileServiceError> {
        let mut class = Role::Viewer;
        let mut bytes = Vec::new();
        if !set.stored.layers().is_empty() {
            let stored = self
                .tile(set.stored, tile, role, Encoding::Identity)
                .await?;
            class = stored.class;
            bytes.extend_from_slice(&stored.body.bytes);
        }
        let this = self.clone();
        let body = tokio::task::spawn_blocking(move || -> Result<TileBody, TileServiceError> {
            for &d in &set.derived {
                render_derived(&risk, this.config(), d, tile, &mut bytes)?;
            }
            let out = if bytes.is_empty() {
                bytes
            } else {
                compress(&bytes, encoding)?
            };
            Ok(TileBody::new(out, encoding))
        })
        .await
        .map_err(|e| TileServiceError::Join(e.to_string()))??;
        Ok(ServedTile {
            body: Arc::new(body),
            class,
            private: class > Role::Viewer,
        })
    }
}

/// The TileJSON of a mixed set: the stored layers' document with the derived layers
/// appended to `vector_layers`, the tile URL and zoom range widened.
pub fn tilejson(
    config: &TilesConfig,
    index: &lifeline_index::SpatialIndex,
    set: &MixedSet,
    class: Role,
    base: &str,
) -> serde_json::Value {
    // Derived layers cover the grid cells' extent.
    let extent_of = if set.stored.layers().is_empty() {
        LayerSet::of(&[Layer::GridCells])
    } else {
        set.stored
    };
    let mut doc = super::tilejson::tilejson(config, index, &extent_of, class, base);
    let d = &config.defaults;
    let mut layers: Vec<serde_json::Value> = if set.stored.layers().is_empty() {
        Vec::new()
    } else {
        doc["vector_layers"].as_array().cloned().unwrap_or_default()
    };
    let mut minzoom = if set.stored.layers().is_empty() {
        d.maxzoom
    } else {
        config.minzoom(set.stored.layers())
    };
    for &l in &set.derived {
        let mz = config.derived.minzoom(l).min(d.maxzoom);
        minzoom = minzoom.min(mz);
        layers.push(json!({
            "id": l.as_str(),
            "description": l.description(),
            "minzoom": mz,
            "maxzoom": d.maxzoom,
            "fields": l.fields(),
        }));
    }
    doc["vector_layers"] = json!(layers);
    doc["minzoom"] = json!(minzoom);
    doc["name"] = json!(format!("Lifeline {}", set.to_path()));
    doc["tiles"] = json!([format!(
        "{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt",
        set.to_path()
    )]);
    if let Some(c) = doc["center"].as_array_mut() {
        if c.len() == 3 {
            c[2] = json!(d.center_zoom.clamp(minzoom, d.maxzoom));
        }
    }
    doc
}

/// The MBTiles-style `metadata.json` of a mixed set (GDAL reads it beside a tile
/// directory): the same description as [`tilejson`] in that shape.
pub fn mbtiles_metadata(
    config: &TilesConfig,
    index: &lifeline_index::SpatialIndex,
    set: &MixedSet,
    class: Role,
) -> serde_json::Value {
    let tj = tilejson(config, index, set, class, "");
    let b: Vec<f64> = tj["bounds"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
        .unwrap_or_default();
    let c: Vec<String> = tj["center"]
        .as_array()
        .map(|a| a.iter().map(|v| v.to_string()).collect())
        .unwrap_or_default();
    let inner = json!({ "vector_layers": tj["vector_layers"] });
    json!({
        "name": tj["name"],
        "format": "pbf",
        "minzoom": tj["minzoom"].to_string(),
        "maxzoom": tj["maxzoom"].to_string(),
        "bounds": b.iter().map(f64::to_string).collect::<Vec<_>>().join(","),
        "center": c.join(","),
        "json": inner.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_sets_parse() {
        assert_eq!(MixedSet::parse("pipelines,sensors").unwrap(), None);
        let m = MixedSet::parse("grid_cells,grid_stats,alarm_density")
            .unwrap()
            .unwrap();
        assert_eq!(m.stored.layers(), &[Layer::GridCells]);
        assert_eq!(
            m.derived,
            vec![DerivedLayer::GridStats, DerivedLayer::AlarmDensity]
        );
        assert_eq!(m.to_path(), "grid_cells,grid_stats,alarm_density");
        let m = MixedSet::parse("alarm_density").unwrap().unwrap();
        assert!(m.stored.layers().is_empty());
        assert_eq!(m.to_path(), "alarm_density");
        assert_eq!(
            MixedSet::parse("grid_stats,grid_stats").unwrap_err(),
            LayerSetError::DuplicateName("grid_stats".into())
        );
        assert!(MixedSet::parse("grid_stats,pipes")
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn level_follows_zoom() {
        let c = &TilesConfig::builtin().derived;
        c.validate().unwrap();
        assert_eq!(c.level_at(6), GridLevel::District);
        assert_eq!(c.level_at(9), GridLevel::District);
        assert_eq!(c.level_at(10), GridLevel::Street);
        assert_eq!(c.level_at(11), GridLevel::Street);
        assert_eq!(c.level_at(12), GridLevel::Community);
        assert_eq!(c.level_at(13), GridLevel::Community);
        assert_eq!(c.level_at(14), GridLevel::Grid);
        assert_eq!(c.level_at(20), GridLevel::Grid);
        let mut bad = c.clone();
        bad.grid_stats.level_from_zoom.remove(&GridLevel::District);
        assert!(bad.validate().unwrap_err().to_string().contains("zoom 0"));
    }
}
