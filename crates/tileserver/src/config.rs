//! Tile settings from `data/tiles.toml`: per-layer zooms, attributes by zoom and role,
//! generalisation, budget, cache size and HTTP caching. Parsed and checked once
//! ([`TilesConfig::parse`]); every problem is an error naming the key, layer or attribute.

use super::fields;
use lifeline_model::{GridLevel, Layer, NodeType, PipeKind, Role};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Why `tiles.toml` is unusable.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ConfigError {
    #[error("tiles.toml: {0}")]
    Parse(String),
    #[error("tiles.toml: {key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// Settings every layer shares unless it overrides them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub extent: u32,
    pub buffer: u32,
    pub max_features: usize,
    pub simplify_px: f64,
    pub min_size_px: f64,
    pub detail_zoom: u8,
    pub cluster_cell: u32,
    pub cache_bytes: u64,
    pub cache_control: String,
    pub private_cache_control: String,
    pub maxzoom: u8,
    pub center_zoom: u8,
    #[serde(default)]
    pub public_url: String,
    #[serde(default)]
    pub glyphs: String,
}

/// One attribute: written from `minzoom` on, to callers with at least `role`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    pub name: String,
    pub minzoom: u8,
    pub role: Role,
}

/// Size and voltage thresholds of the pipe tiers (see `tiles.toml`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tiers {
    pub major_voltage_kv: f64,
    pub trunk_voltage_kv: f64,
    pub main_voltage_kv: f64,
    #[serde(default)]
    pub trunk_size_mm: BTreeMap<PipeKind, f64>,
    #[serde(default)]
    pub main_size_mm: BTreeMap<PipeKind, f64>,
}

/// The zoom from which each pipe tier is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierMinzoom {
    pub major: u8,
    pub trunk: u8,
    pub main: u8,
    pub service: u8,
}

/// One layer's settings as written in the file (overrides optional).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerFile {
    minzoom: u8,
    attributes: Vec<Attribute>,
    max_features: Option<usize>,
    simplify_px: Option<f64>,
    min_size_px: Option<f64>,
    cluster_below: Option<u8>,
    cluster_cell: Option<u32>,
    tier_minzoom: Option<TierMinzoom>,
    tiers: Option<Tiers>,
    level_minzoom: Option<BTreeMap<GridLevel, u8>>,
    type_minzoom: Option<BTreeMap<NodeType, u8>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    defaults: Defaults,
    layers: BTreeMap<String, LayerFile>,
    #[serde(default)]
    derived: super::derived::DerivedConfig,
}

/// One layer's resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerConfig {
    pub layer: Layer,
    pub minzoom: u8,
    pub attributes: Vec<Attribute>,
    pub max_features: usize,
    pub simplify_px: f64,
    pub min_size_px: f64,
    /// Points are clustered below this zoom (`None`: never).
    pub cluster_below: Option<u8>,
    pub cluster_cell: u32,
    /// Pipelines only.
    pub tier_minzoom: Option<TierMinzoom>,
    /// Pipelines only.
    pub tiers: Option<Tiers>,
    /// Grid cells only: the zoom from which each level shows (absent levels always show).
    pub level_minzoom: BTreeMap<GridLevel, u8>,
    /// Nodes only: the zoom from which each node type shows (absent types always show).
    pub type_minzoom: BTreeMap<NodeType, u8>,
}

impl LayerConfig {
    /// Attributes written at zoom `z` for callers of role class `class`, in file order.
    pub fn attributes_at(&self, z: u8, class: Role) -> impl Iterator<Item = &Attribute> {
        self.attributes
            .iter()
            .filter(move |a| a.minzoom <= z && a.role <= class)
    }

    /// Whether points are clustered at zoom `z`.
    pub fn clusters_at(&self, z: u8) -> bool {
        self.cluster_below.is_some_and(|c| z < c)
    }
}

/// The whole tile configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TilesConfig {
    pub defaults: Defaults,
    layers: Vec<LayerConfig>,
    /// The derived layers `grid_stats` and `alarm_density` (see [`super::derived`]).
    pub derived: super::derived::DerivedConfig,
    /// Distinct roles at which some attribute appears, ascending, always starting with
    /// viewer: the "role classes" whose tiles can differ.
    classes: Vec<Role>,
}

/// The lowest role: every class list starts with it.
const LOWEST: Role = Role::Viewer;

impl TilesConfig {
    /// Parses and checks a `tiles.toml` text.
    pub fn parse(text: &str) -> Result<TilesConfig, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        let d = &file.defaults;
        if !(256..=65536).contains(&d.extent) || !d.extent.is_power_of_two() {
            return Err(invalid(
                "defaults.extent",
                format!("{} must be a power of two in 256..=65536", d.extent),
            ));
        }
        if d.buffer > d.extent / 4 {
            return Err(invalid(
                "defaults.buffer",
                format!("{} is more than a quarter of the extent", d.buffer),
            ));
        }
        let max_zoom = lifeline_tiles::tilemath::MAX_ZOOM;
        for (key, z) in [
            ("defaults.maxzoom", d.maxzoom),
            ("defaults.detail_zoom", d.detail_zoom),
            ("defaults.center_zoom", d.center_zoom),
        ] {
            if z > max_zoom {
                return Err(invalid(key, format!("{z} is above {max_zoom}")));
            }
        }
        check_px("defaults.simplify_px", d.simplify_px)?;
        check_px("defaults.min_size_px", d.min_size_px)?;
        check_budget("defaults.max_features", d.max_features)?;
        check_cell("defaults.cluster_cell", d.cluster_cell, d.extent)?;
        for (key, v) in [
            ("defaults.cache_control", &d.cache_control),
            ("defaults.private_cache_control", &d.private_cache_control),
        ] {
            axum::http::HeaderValue::from_str(v)
                .map_err(|_| invalid(key, "is not a valid header value"))?;
        }
        let url_ok = d.public_url.is_empty()
            || d.public_url.starts_with("http://")
            || d.public_url.starts_with("https://");
        if !url_ok {
            return Err(invalid(
                "defaults.public_url",
                "must start with http:// or https:// (or be empty)",
            ));
        }
        let glyphs_ok = d.glyphs.is_empty()
            || (d.glyphs.contains("{fontstack}") && d.glyphs.contains("{range}"));
        if !glyphs_ok {
            return Err(invalid(
                "defaults.glyphs",
                "must contain {fontstack} and {range} (or be empty)",
            ));
        }

        let mut layers = Vec::new();
        for (name, lf) in file.layers {
            let layer: Layer = name.parse().map_err(|e: lifeline_model::ModelError| {
                invalid(format!("layers.{name}"), e.to_string())
            })?;
            if layer == Layer::Owners {
                return Err(invalid(
                    "layers.owners",
                    "owners have no geometry and no tiles",
                ));
            }
            layers.push(resolve_layer(layer, lf, d)?);
        }
        for l in Layer::SPATIAL {
            if !layers.iter().any(|c| c.layer == l) {
                return Err(invalid(format!("layers.{l}"), "is missing"));
            }
        }
        layers.sort_by_key(|c| c.layer.spatial_index());
        let mut classes: Vec<Role> = layers
            .iter()
            .flat_map(|l| l.attributes.iter().map(|a| a.role))
            .chain([LOWEST])
            .collect();
        classes.sort();
        classes.dedup();
        file.derived.validate()?;
        Ok(TilesConfig {
            defaults: file.defaults,
            layers,
            classes,
            derived: file.derived,
        })
    }

    /// The configuration compiled in from `data/tiles.toml`.
    pub fn builtin() -> &'static TilesConfig {
        static CONFIG: OnceLock<TilesConfig> = OnceLock::new();
        CONFIG.get_or_init(|| {
            TilesConfig::parse(include_str!("../../../data/tiles.toml"))
                .unwrap_or_else(|e| panic!("{e} (the built-in file is checked by unit tests)"))
        })
    }

    /// The settings of a spatial layer.
    pub fn layer(&self, layer: Layer) -> Option<&LayerConfig> {
        self.layers.iter().find(|l| l.layer == layer)
    }

    /// Every tile layer, in [`Layer::SPATIAL`] order.
    pub fn layers(&self) -> &[LayerConfig] {
        &self.layers
    }

    /// Every role class, ascending.
    pub fn classes(&self) -> &[Role] {
        &self.classes
    }

    /// The role class of `role` for tiles of `layers`: the highest role at which one of
    /// their attributes appears that `role` reaches. Callers of one class get identical
    /// tiles, so the cache and the ETag are shared by class, not by role.
    pub fn class_for(&self, layers: &[Layer], role: Role) -> Role {
        layers
            .iter()
            .filter_map(|l| self.layer(*l))
            .flat_map(|l| l.attributes.iter().map(|a| a.role))
            .filter(|r| *r <= role)
            .max()
            .unwrap_or(LOWEST)
    }

    /// The lowest zoom at which any of `layers` shows.
    pub fn minzoom(&self, layers: &[Layer]) -> u8 {
        layers
            .iter()
            .filter_map(|l| self.layer(*l))
            .map(|l| l.minzoom)
            .min()
            .unwrap_or(0)
    }
}

fn check_px(key: &str, v: f64) -> Result<(), ConfigError> {
    if !(v.is_finite() && (0.0..=16.0).contains(&v)) {
        return Err(invalid(key, format!("{v} must be within 0..=16 pixels")));
    }
    Ok(())
}

fn check_budget(key: &str, v: usize) -> Result<(), ConfigError> {
    if !(1..=1_000_000).contains(&v) {
        return Err(invalid(key, format!("{v} must be within 1..=1000000")));
    }
    Ok(())
}

fn check_cell(key: &str, cell: u32, extent: u32) -> Result<(), ConfigError> {
    if cell == 0 || cell > extent || !extent.is_multiple_of(cell) {
        return Err(invalid(
            key,
            format!("{cell} must divide the extent {extent}"),
        ));
    }
    Ok(())
}

fn resolve_layer(layer: Layer, lf: LayerFile, d: &Defaults) -> Result<LayerConfig, ConfigError> {
    let key = |k: &str| format!("layers.{layer}.{k}");
    let max_zoom = lifeline_tiles::tilemath::MAX_ZOOM;
    if lf.minzoom > max_zoom {
        return Err(invalid(
            key("minzoom"),
            format!("{} is above {max_zoom}", lf.minzoom),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for a in &lf.attributes {
        let akey = key(&format!("attributes.{}", a.name));
        if fields::field_type(layer, &a.name).is_none() {
            return Err(invalid(
                akey,
                format!(
                    "{layer} has no attribute '{}'; known: {}",
                    a.name,
                    fields::names(layer).join(", ")
                ),
            ));
        }
        if !seen.insert(a.name.as_str()) {
            return Err(invalid(akey, "is listed twice"));
        }
        if a.name == lifeline_tiles::pipeline::CLUSTER_COUNT_KEY {
            return Err(invalid(akey, "clashes with the cluster count attribute"));
        }
        let needed = fields::access_role(layer, &a.name);
        if a.role < needed {
            return Err(invalid(
                akey,
                format!(
                    "access control lets only '{needed}' and above see it; the file grants it to '{}'",
                    a.role
                ),
            ));
        }
        if a.minzoom > max_zoom {
            return Err(invalid(
                akey,
                format!("minzoom {} is above {max_zoom}", a.minzoom),
            ));
        }
    }
    let simplify_px = lf.simplify_px.unwrap_or(d.simplify_px);
    check_px(&key("simplify_px"), simplify_px)?;
    let min_size_px = lf.min_size_px.unwrap_or(d.min_size_px);
    check_px(&key("min_size_px"), min_size_px)?;
    let max_features = lf.max_features.unwrap_or(d.max_features);
    check_budget(&key("max_features"), max_features)?;
    let cluster_cell = lf.cluster_cell.unwrap_or(d.cluster_cell);
    check_cell(&key("cluster_cell"), cluster_cell, d.extent)?;
    let points = matches!(layer, Layer::RiskPoints | Layer::Sensors | Layer::Nodes);
    if lf.cluster_below.is_some() && !points {
        return Err(invalid(
            key("cluster_below"),
            "only point layers are clustered",
        ));
    }
    let pipes = layer == Layer::Pipelines;
    if pipes != lf.tier_minzoom.is_some() || pipes != lf.tiers.is_some() {
        return Err(invalid(
            key("tiers"),
            "pipelines need `tier_minzoom` and `tiers`; other layers have neither",
        ));
    }
    if let Some(t) = &lf.tiers {
        for (name, v) in [
            ("major_voltage_kv", t.major_voltage_kv),
            ("trunk_voltage_kv", t.trunk_voltage_kv),
            ("main_voltage_kv", t.main_voltage_kv),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(
                    key(&format!("tiers.{name}")),
                    "must be a number >= 0",
                ));
            }
        }
        for (kind, v) in t.trunk_size_mm.iter().chain(&t.main_size_mm) {
            if !(v.is_finite() && *v >= 0.0) {
                return Err(invalid(
                    key(&format!("tiers.{kind}")),
                    "must be a number >= 0",
                ));
            }
        }
    }
    if let Some(tz) = lf.tier_minzoom {
        if tz.major > tz.trunk || tz.trunk > tz.main || tz.main > tz.service {
            return Err(invalid(
                key("tier_minzoom"),
                "zooms must not decrease from major to trunk to main to service",
            ));
        }
    }
    if lf.level_minzoom.is_some() && layer != Layer::GridCells {
        return Err(invalid(key("level_minzoom"), "only grid cells have levels"));
    }
    if lf.type_minzoom.is_some() && layer != Layer::Nodes {
        return Err(invalid(key("type_minzoom"), "only nodes have node types"));
    }
    Ok(LayerConfig {
        layer,
        minzoom: lf.minzoom,
        attributes: lf.attributes,
        max_features,
        simplify_px,
        min_size_px,
        cluster_below: lf.cluster_below,
        cluster_cell,
        tier_minzoom: lf.tier_minzoom,
        tiers: lf.tiers,
        level_minzoom: lf.level_minzoom.unwrap_or_default(),
        type_minzoom: lf.type_minzoom.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILTIN: &str = include_str!("../../../data/tiles.toml");

    #[test]
    fn builtin_config_is_valid() {
        let c = TilesConfig::parse(BUILTIN).unwrap();
        assert_eq!(c.layers().len(), Layer::SPATIAL.len());
        assert_eq!(
            c.classes(),
            &[Role::Viewer, Role::Contractor, Role::Analyst]
        );
        assert_eq!(c.class_for(&[Layer::Pipelines], Role::Admin), Role::Analyst);
        assert_eq!(
            c.class_for(&[Layer::Pipelines], Role::Contractor),
            Role::Viewer
        );
        assert_eq!(c.class_for(&[Layer::GridCells], Role::Admin), Role::Viewer);
        assert_eq!(
            c.class_for(&[Layer::GridCells, Layer::RiskPoints], Role::Operator),
            Role::Contractor
        );
        let pipes = c.layer(Layer::Pipelines).unwrap();
        let viewer: Vec<&str> = pipes
            .attributes_at(18, Role::Viewer)
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(viewer, ["kind", "sub_kind", "status"]);
        assert_eq!(TilesConfig::builtin(), &c);
    }

    fn with(old: &str, new: &str) -> Result<TilesConfig, ConfigError> {
        assert!(BUILTIN.contains(old), "{old}");
        TilesConfig::parse(&BUILTIN.replacen(old, new, 1))
    }

    #[test]
    fn errors_name_the_problem() {
        let e = with(
            r#"{ name = "diameter_mm", minzoom = 12, role = "analyst" }"#,
            r#"{ name = "diameter_mm", minzoom = 12, role = "viewer" }"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("diameter_mm") && e.contains("analyst"), "{e}");
        let e = with(r#"name = "material""#, r#"name = "colour""#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour") && e.contains("known"), "{e}");
        let e = with("[layers.sensors]", "[layers.sensorz]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sensorz"), "{e}");
        let e = with("cluster_cell = 256", "cluster_cell = 300")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster_cell") && e.contains("300"), "{e}");
        let e = with("extent = 4096", "extent = 4096\ncolour = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
        let e = with(r#"role = "contractor""#, r#"role = "king""#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("king"), "{e}");
        let e = with("maxzoom = 18", "maxzoom = 30")
            .unwrap_err()
            .to_string();
        assert!(e.contains("maxzoom") && e.contains("30"), "{e}");
    }
}
