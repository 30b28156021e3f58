//! Cutting one tile from the index: candidates from the R-tree by the tile's lon/lat
//! bounds plus buffer, the zoom filters of the config (pipe tiers, grid levels), each record
//! turned into a [`SourceFeature`] with the attributes its zoom and the caller's role class
//! allow and an importance score, then the `tiles` crate's encoder (clipping,
//! generalisation, clustering, the budget). Pure and synchronous: the HTTP layer runs it on
//! the blocking pool.

use super::config::{LayerConfig, Tiers, TilesConfig};
use super::fields;
use geo::Geometry;
use lifeline_index::{IndexError, SpatialIndex};
use lifeline_model::datum::Datum;
use lifeline_model::{
    Bbox, GasPressure, GridLevel, Layer, NodeType, PipeKind, Pipeline, Record, RiskLevel,
    RiskStatus, Role,
};
use lifeline_tiles::tilemath::mercator_to_lonlat;
use lifeline_tiles::{
    LayerEncoder, LayerOptions, LayerStats, SourceFeature, SourceGeometry, TileCoord, TileError,
};
use std::cell::RefCell;

/// Why a tile could not be cut. Both are bugs or broken data, not client mistakes: the
/// HTTP layer validates every input before rendering.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("index query failed: {0}")]
    Index(#[from] IndexError),
    #[error("encoding failed: {0}")]
    Encode(#[from] TileError),
}

/// Importance tiers of pipes, least important first (see `tiles.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Service = 1,
    Main = 2,
    Trunk = 3,
    Major = 4,
}

/// The tier of a pipe: long-distance and high-pressure lines first, then trunk mains, then
/// distribution mains, then the rest.
pub fn pipe_tier(p: &Pipeline, t: &Tiers) -> Tier {
    let size_mm = p.size_m().map(|m| m * 1000.0);
    let kv = p.voltage_kv.unwrap_or(0.0);
    let high_gas = p.pressure_class.is_some_and(|c| c >= GasPressure::SubHighB);
    let at_least = |table: &std::collections::BTreeMap<PipeKind, f64>| {
        table
            .get(&p.kind)
            .is_some_and(|min| size_mm.unwrap_or(0.0) >= *min)
    };
    match p.kind {
        PipeKind::OilGas => Tier::Major,
        PipeKind::Gas if high_gas => Tier::Major,
        PipeKind::Power if kv >= t.major_voltage_kv => Tier::Major,
        PipeKind::Power if kv >= t.trunk_voltage_kv => Tier::Trunk,
        PipeKind::Power if kv >= t.main_voltage_kv => Tier::Main,
        PipeKind::Power => Tier::Service,
        _ if at_least(&t.trunk_size_mm) => Tier::Trunk,
        PipeKind::Gas => Tier::Main,
        _ if at_least(&t.main_size_mm) => Tier::Main,
        _ => Tier::Service,
    }
}

/// A pipe's importance: its tier first; within a tier, hazardous contents (gas, oil) before
/// others, then size (or voltage for cables).
pub fn pipe_importance(p: &Pipeline, t: &Tiers) -> f64 {
    let tier = pipe_tier(p, t) as u8 as f64;
    let hazard = if matches!(p.kind, PipeKind::Gas | PipeKind::OilGas) {
        500_000.0
    } else {
        0.0
    };
    let size = p
        .size_m()
        .map(|m| m * 1000.0)
        .or(p.voltage_kv.map(|kv| kv * 10.0))
        .unwrap_or(0.0)
        .min(99_999.0);
    tier * 1_000_000.0 + hazard + size
}

fn risk_importance(level: RiskLevel, status: RiskStatus) -> f64 {
    let level = match level {
        RiskLevel::Major => 4.0,
        RiskLevel::Large => 3.0,
        RiskLevel::General => 2.0,
        RiskLevel::Low => 1.0,
    };
    let status = match status {
        RiskStatus::Active => 2.0,
        RiskStatus::Mitigated => 1.0,
        RiskStatus::Closed => 0.0,
    };
    level * 10.0 + status
}

fn grid_importance(level: GridLevel) -> f64 {
    match level {
        GridLevel::District => 5.0,
        GridLevel::Street => 4.0,
        GridLevel::Community => 3.0,
        GridLevel::Grid => 2.0,
        GridLevel::MicroGrid => 1.0,
    }
}

/// Sources first, then valves (what an operator looks for), customer connections, and
/// plain junctions last.
fn node_importance(t: NodeType) -> f64 {
    match t {
        NodeType::Source => 4.0,
        NodeType::Valve => 3.0,
        NodeType::Customer => 2.0,
        NodeType::Junction => 1.0,
    }
}

/// How important a record is in its layer's tiles (larger survives the budget, and
/// represents its cluster).
pub fn importance(record: &Record, lc: &LayerConfig) -> f64 {
    match record {
        Record::Pipeline(p) => lc.tiers.as_ref().map_or(0.0, |t| pipe_importance(p, t)),
        Record::RiskPoint(r) => risk_importance(r.level, r.status),
        Record::GridCell(c) => grid_importance(c.level),
        Record::Sensor(s) => {
            f64::from(u8::from(s.risk_point_id.is_some()) * 2 + u8::from(s.pipeline_id.is_some()))
        }
        Record::Node(n) => node_importance(n.node_type),
        Record::Owner(_) => 0.0,
    }
}

/// Whether a record is drawn at zoom `z` (pipe tiers and grid levels have their own
/// minimum zooms).
pub fn visible_at(record: &Record, lc: &LayerConfig, z: u8) -> bool {
    match record {
        Record::Pipeline(p) => match (&lc.tiers, &lc.tier_minzoom) {
            (Some(t), Some(tz)) => {
                let min = match pipe_tier(p, t) {
                    Tier::Major => tz.major,
                    Tier::Trunk => tz.trunk,
                    Tier::Main => tz.main,
                    Tier::Service => tz.service,
                };
                z >= min
            }
            _ => true,
        },
        Record::GridCell(c) => lc.level_minzoom.get(&c.level).is_none_or(|m| z >= *m),
        Record::Node(n) => lc.type_minzoom.get(&n.node_type).is_none_or(|m| z >= *m),
        _ => true,
    }
}

/// The lowest zoom at which `record` is drawn: the first zoom where [`visible_at`] holds
/// (its pipe tier's or grid level's zoom; 0 for layers without either).
pub fn min_zoom(record: &Record, config: &TilesConfig) -> u8 {
    let Some(lc) = config.layer(record.layer()) else {
        return 0;
    };
    (0..=lifeline_tiles::tilemath::MAX_ZOOM)
        .find(|&z| visible_at(record, lc, z))
        .unwrap_or(u8::MAX)
}

/// The index's per-entry minimum zoom under the built-in tile configuration (install with
/// [`with_index_min_zoom`]).
pub fn index_min_zoom() -> lifeline_index::MinZoomFn {
    Box::new(|r| min_zoom(r, TilesConfig::builtin()))
}

/// The tag of [`index_min_zoom`] in an index (see [`with_index_min_zoom`]).
pub const BUILTIN_MIN_ZOOM: &str = "data/tiles.toml (built in)";

/// Installs [`index_min_zoom`] on an index, tagged: a tile cut from it with the built-in
/// zoom rules then trusts the index's zoom filter instead of checking every record's tier
/// again (a twentieth of a dense tile's cost).
pub fn with_index_min_zoom(index: SpatialIndex) -> SpatialIndex {
    index.with_min_zoom_tagged(index_min_zoom(), BUILTIN_MIN_ZOOM)
}

/// Whether the index's zoom filter applies exactly `lc`'s zoom rules.
fn index_filters_like(index: &SpatialIndex, lc: &LayerConfig) -> bool {
    index.min_zoom_tag() == Some(BUILTIN_MIN_ZOOM)
        && TilesConfig::builtin().layer(lc.layer).is_some_and(|b| {
            b.tiers == lc.tiers
                && b.tier_minzoom == lc.tier_minzoom
                && b.level_minzoom == lc.level_minzoom
                && b.type_minzoom == lc.type_minzoom
        })
}

/// The lon/lat box the tile's features are taken from: the tile plus its buffer.
pub fn query_bbox(tile: TileCoord, extent: u32, buffer: u32) -> Bbox {
    let m = tile.bounds_mercator();
    let pad = m.width() * f64::from(buffer) / f64::from(extent);
    let sw = mercator_to_lonlat(m.min().x - pad, m.min().y - pad);
    let ne = mercator_to_lonlat(m.max().x + pad, m.max().y + pad);
    // Clamping keeps the world-edge tiles valid boxes; nothing lies beyond anyway.
    Bbox::new(
        sw.x.clamp(-180.0, 180.0),
        sw.y.clamp(-90.0, 90.0),
        ne.x.clamp(-180.0, 180.0),
        ne.y.clamp(-90.0, 90.0),
    )
    .expect("clamped finite corners in order")
}

/// The encoder options of a layer at a zoom.
pub fn layer_options(config: &TilesConfig, lc: &LayerConfig, z: u8) -> LayerOptions {
    let d = &config.defaults;
    let px = f64::from(d.extent) / 256.0;
    // From the detail zoom on tiles are exact (same features and geometry as ST_AsMVT).
    let detail = z >= d.detail_zoom;
    LayerOptions {
        extent: d.extent,
        buffer: d.buffer,
        simplify_tolerance: if detail { 0.0 } else { lc.simplify_px * px },
        min_size: if detail { 0.0 } else { lc.min_size_px * px },
        // Exact tiles keep every feature; the budget is a generalisation, like the others.
        max_features: (!detail).then_some(lc.max_features),
        cluster_cell: lc.clusters_at(z).then_some(lc.cluster_cell),
    }
}

thread_local! {
    // One encoder per worker thread: its buffers are reused across tiles.
    static ENCODER: RefCell<LayerEncoder> = RefCell::new(LayerEncoder::new());
}

/// What rendering one layer produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderedLayer {
    pub layer: Option<Layer>,
    pub candidates: usize,
    pub stats: LayerStats,
}

/// Cuts one layer of one tile and appends it to `out` (nothing is appended when the layer
/// has no feature in the tile).
pub fn render_layer(
    index: &SpatialIndex,
    config: &TilesConfig,
    layer: Layer,
    tile: TileCoord,
    class: Role,
    out: &mut Vec<u8>,
) -> Result<RenderedLayer, RenderError> {
    render_layer_in(index, config, layer, tile, class, Datum::Cgcs2000, out)
}

/// [`render_layer`] with the tile cut in `datum` (see [`super::datum`]).
pub fn render_layer_in(
    index: &SpatialIndex,
    config: &TilesConfig,
    layer: Layer,
    tile: TileCoord,
    class: Role,
    datum: Datum,
    out: &mut Vec<u8>,
) -> Result<RenderedLayer, RenderError> {
    let mut rendered = RenderedLayer {
        layer: Some(layer),
        ..Default::default()
    };
    let Some(lc) = config.layer(layer) else {
        return Ok(rendered);
    };
    let z = tile.z();
    if z < lc.minzoom {
        return Ok(rendered);
    }
    let d = &config.defaults;
    let bbox = datum.source_bbox(query_bbox(tile, d.extent, d.buffer));
    // The index skips what is not drawn at this zoom when it knows the tiers; the retain
    // keeps tiles right with an index built without them (or from another configuration).
    let mut records = index.bbox_candidates_at_zoom(layer, &bbox, z)?;
    if !index_filters_like(index, lc) {
        records.retain(|r| visible_at(r, lc, z));
    }
    // The index returns them in id order (R-tree order would depend on insertion history),
    // so a tile's bytes, and so its ETag, are a function of the data alone.
    debug_assert!(records.windows(2).all(|w| w[0].id() < w[1].id()));
    rendered.candidates = records.len();
    if records.is_empty() {
        return Ok(rendered);
    }

    let attrs: Vec<&str> = lc
        .attributes_at(z, class)
        .map(|a| a.name.as_str())
        .collect();
    let opts = layer_options(config, lc, z);
    // Importance only orders features when the budget can bite or points cluster; working
    // it out (a pipe's tier) for every feature of a dense tile would be wasted otherwise.
    let ranked =
        opts.cluster_cell.is_some() || opts.max_features.is_some_and(|m| records.len() > m);
    let mut props = Vec::with_capacity(records.len() * attrs.len());
    let mut spans = Vec::with_capacity(records.len());
    for r in &records {
        let start = props.len();
        for name in &attrs {
            if let Some(v) = fields::value(r, name) {
                props.push((*name, v));
            }
        }
        spans.push((start, props.len()));
    }
    // Geometries are borrowed from the records, not copied (the copy was a sixth of a
    // dense z14 tile's cost), except in another datum, where every vertex moves.
    let moved: Vec<Option<Geometry<f64>>> = if datum == Datum::Cgcs2000 {
        Vec::new()
    } else {
        records
            .iter()
            .map(|r| {
                let mut g = r.geometry()?;
                datum.apply(&mut g);
                Some(g)
            })
            .collect()
    };
    let features: Vec<SourceFeature<'_>> = records
        .iter()
        .zip(&spans)
        .enumerate()
        .filter_map(|(i, (r, &(a, b)))| {
            let geometry = match moved.get(i) {
                Some(g) => g.as_ref()?.into(),
                None => source_geometry(r)?,
            };
            Some(SourceFeature {
                id: u64::try_from(r.id()).ok(),
                geometry,
                properties: &props[a..b],
                importance: if ranked { importance(r, lc) } else { 0.0 },
            })
        })
        .collect();
    let start = out.len();
    let stats = ENCODER.with(|e| {
        e.borrow_mut()
            .encode_into(layer.as_str(), tile, &features, &opts, out)
    })?;
    if stats.output == 0 {
        out.truncate(start);
    }
    rendered.stats = stats;
    Ok(rendered)
}

/// A record's geometry as the encoder borrows it (owners have none).
fn source_geometry(record: &Record) -> Option<SourceGeometry<'_>> {
    match record {
        Record::Pipeline(p) => Some((&p.geometry).into()),
        Record::RiskPoint(p) => Some((&p.geometry).into()),
        Record::GridCell(c) => Some((&c.geometry).into()),
        Record::Sensor(s) => Some((&s.location).into()),
        Record::Node(n) => Some((&n.geometry).into()),
        Record::Owner(_) => None,
    }
}

/// Cuts a tile of several layers (in the order given). Empty `Vec`: no feature at all.
pub fn render_tile(
    index: &SpatialIndex,
    config: &TilesConfig,
    layers: &[Layer],
    tile: TileCoord,
    class: Role,
) -> Result<Vec<u8>, RenderError> {
    render_tile_in(index, config, layers, tile, class, Datum::Cgcs2000)
}

/// [`render_tile`] in `datum`.
pub fn render_tile_in(
    index: &SpatialIndex,
    config: &TilesConfig,
    layers: &[Layer],
    tile: TileCoord,
    class: Role,
    datum: Datum,
) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::new();
    for &layer in layers {
        render_layer_in(index, config, layer, tile, class, datum, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! Rendering from an in-memory index built from a small data set (no store).
    use super::*;
    use lifeline_model::crs::MetricCrs;
    use lifeline_model::*;
    use lifeline_tiles::{decode_tile, DecodedLayer};
    use std::sync::Arc;

    /// The south-west corner of the data: 10 % into the z16 tile around (106.5, 29.5), so
    /// every feature lies in one z16 tile (and so in one tile at every lower zoom).
    fn origin() -> (f64, f64) {
        let b = TileCoord::from_lonlat(106.5, 29.5, 16)
            .unwrap()
            .bounds_lonlat();
        (b.min().x + b.width() * 0.1, b.min().y + b.height() * 0.1)
    }

    fn pipe(id: i64, kind: PipeKind, diameter: Option<f64>, dx: f64) -> Pipeline {
        let (x, y) = origin();
        Pipeline {
            id,
            kind,
            sub_kind: (kind == PipeKind::Drainage).then_some(DrainageKind::Storm),
            pressure_class: None,
            voltage_kv: None,
            material: Some("steel".into()),
            diameter_mm: diameter,
            section_width_mm: None,
            section_height_mm: None,
            depth_start_m: Some(1.5),
            depth_end_m: Some(1.6),
            invert_start_m: None,
            invert_end_m: None,
            burial: Some(Burial::Direct),
            owner_id: 1,
            year_built: Some(1999),
            survey_date: None,
            plan_accuracy_cm: Some(5.0),
            depth_accuracy_cm: None,
            quality_level: Some(QualityLevel::QlB),
            status: PipeStatus::InService,
            from_node: None,
            to_node: None,
            // Short pipes around the centre, staggered so none overlap.
            geometry: geo::LineString::from(vec![
                (x + dx, y + dx),
                (x + dx + 0.0004, y + dx + 0.0001),
            ]),
        }
    }

    fn risk(id: i64, level: RiskLevel, dx: f64) -> RiskPoint {
        let (x, y) = origin();
        RiskPoint {
            id,
            category: "gas_pipe_leak".into(),
            level,
            name: format!("风险点 {id}"),
            grid_cell_id: None,
            responsible_unit: "街道办".into(),
            responsible_person: "张伟".into(),
            responsible_phone: None,
            emergency_plan: None,
            last_review: None,
            next_review: None,
            status: RiskStatus::Active,
            geometry: Geometry::Point(geo::point!(x: x + dx, y: y + dx)),
        }
    }

    fn square_with_hole(x: f64, y: f64, d: f64) -> geo::Polygon<f64> {
        let ring = |x0: f64, y0: f64, s: f64| {
            geo::LineString::from(vec![
                (x0, y0),
                (x0 + s, y0),
                (x0 + s, y0 + s),
                (x0, y0 + s),
                (x0, y0),
            ])
        };
        geo::Polygon::new(
            ring(x, y, d),
            vec![ring(x + d * 0.25, y + d * 0.25, d * 0.5)],
        )
    }

    fn cell(id: i64, level: GridLevel, parent: Option<i64>, poly: geo::Polygon<f64>) -> GridCell {
        GridCell {
            id,
            level,
            parent_id: parent,
            name: format!("cell {id}"),
            code: format!("C{id}"),
            geometry: geo::MultiPolygon(vec![poly]),
        }
    }

    fn dataset() -> Dataset {
        let (x, y) = origin();
        let mut oil = pipe(1, PipeKind::OilGas, Some(400.0), 0.0);
        oil.pressure_class = Some(GasPressure::HighA);
        let mut hp_gas = pipe(2, PipeKind::Gas, Some(200.0), 0.0005);
        hp_gas.pressure_class = Some(GasPressure::SubHighA);
        let mut gas = pipe(6, PipeKind::Gas, Some(100.0), 0.0025);
        gas.pressure_class = Some(GasPressure::Low);
        Dataset {
            pipelines: vec![
                oil,
                hp_gas,
                pipe(3, PipeKind::WaterSupply, Some(800.0), 0.001), // trunk main
                pipe(4, PipeKind::WaterSupply, Some(300.0), 0.0015), // main
                pipe(5, PipeKind::Telecom, None, 0.002),            // service
                gas,                                                // main (all gas)
                pipe(7, PipeKind::Drainage, Some(1200.0), 0.003),   // trunk
            ],
            risk_points: vec![
                risk(1, RiskLevel::Low, 0.0),
                risk(2, RiskLevel::Major, 0.00001),
                risk(3, RiskLevel::General, 0.00002),
            ],
            grid_cells: vec![
                cell(
                    1,
                    GridLevel::District,
                    None,
                    square_with_hole(x - 0.05, y - 0.05, 0.1),
                ),
                cell(
                    2,
                    GridLevel::Street,
                    Some(1),
                    square_with_hole(x - 0.01, y - 0.01, 0.02),
                ),
            ],
            sensors: vec![Sensor {
                id: 1,
                kind: SensorKind::GasLel,
                code: Some("SN-1".into()),
                pipeline_id: Some(2),
                risk_point_id: Some(2),
                status: SensorStatus::Online,
                installed: None,
                location: geo::point!(x: x + 0.001, y: y + 0.001),
            }],
            ..Default::default()
        }
    }

    fn index() -> Arc<SpatialIndex> {
        let idx = SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap());
        idx.load(dataset()).unwrap();
        Arc::new(idx)
    }

    fn tile_at(z: u8) -> TileCoord {
        let (x, y) = origin();
        TileCoord::from_lonlat(x, y, z).unwrap()
    }

    fn layer(
        cfg: &TilesConfig,
        idx: &SpatialIndex,
        l: Layer,
        z: u8,
        class: Role,
    ) -> Option<DecodedLayer> {
        let bytes = render_tile(idx, cfg, &[l], tile_at(z), class).unwrap();
        let t = decode_tile(&bytes).expect("valid MVT");
        t.layer(l.as_str()).cloned()
    }

    fn ids(l: &Option<DecodedLayer>) -> Vec<u64> {
        let mut v: Vec<u64> = l
            .iter()
            .flat_map(|l| l.features.iter().filter_map(|f| f.id))
            .collect();
        v.sort();
        v
    }

    fn keys(l: &DecodedLayer) -> Vec<String> {
        let mut k = l.keys.clone();
        k.sort();
        k
    }

    #[test]
    fn viewer_gets_kind_only_analyst_gets_attributes() {
        let (cfg, idx) = (TilesConfig::builtin(), index());
        let viewer = layer(cfg, &idx, Layer::Pipelines, 16, Role::Viewer).unwrap();
        assert_eq!(keys(&viewer), ["kind", "status", "sub_kind"]);
        let analyst = layer(cfg, &idx, Layer::Pipelines, 16, Role::Analyst).unwrap();
        for k in [
            "diameter_mm",
            "material",
            "owner_id",
            "depth_start_m",
            "quality_level",
        ] {
            assert!(
                analyst.keys.iter().any(|x| x == k),
                "{k} missing: {:?}",
                analyst.keys
            );
        }
        // Same features either way: roles change attributes, never what exists.
        assert_eq!(ids(&Some(viewer)), ids(&Some(analyst)));
        // A contractor's class is the viewer's for pipelines.
        assert_eq!(
            cfg.class_for(&[Layer::Pipelines], Role::Contractor),
            Role::Viewer
        );
    }

    #[test]
    fn attributes_follow_their_zoom() {
        let (cfg, idx) = (TilesConfig::builtin(), index());
        let z12 = keys(&layer(cfg, &idx, Layer::Pipelines, 12, Role::Analyst).unwrap());
        assert!(z12.contains(&"diameter_mm".to_string()));
        assert!(!z12.contains(&"material".to_string()));
        let z14 = keys(&layer(cfg, &idx, Layer::Pipelines, 14, Role::Analyst).unwrap());
        assert!(z14.contains(&"material".to_string()));
        assert!(!z14.contains(&"depth_start_m".to_string()));
        let z11 = keys(&layer(cfg, &idx, Layer::Pipelines, 11, Role::Analyst).unwrap());
        assert_eq!(z11, ["kind", "sub_kind"]);
    }

    #[test]
    fn pipe_tiers_decide_the_zoom_they_appear_at() {
        let (cfg, idx) = (TilesConfig::builtin(), index());
        assert!(
            layer(cfg, &idx, Layer::Pipelines, 8, Role::Viewer).is_none(),
            "below minzoom"
        );
        assert_eq!(
            ids(&layer(cfg, &idx, Layer::Pipelines, 9, Role::Viewer)),
            [1, 2]
        );
        assert_eq!(
            ids(&layer(cfg, &idx, Layer::Pipelines, 11, Role::Viewer)),
            [1, 2, 3, 7]
        );
        assert_eq!(
            ids(&layer(cfg, &idx, Layer::Pipelines, 13, Role::Viewer)),
            [1, 2, 3, 4, 6, 7]
        );
        assert_eq!(
            ids(&layer(cfg, &idx, Layer::Pipelines, 14, Role::Viewer)),
            [1, 2, 3, 4, 5, 6, 7]
        );
    }

    #[test]
    fn index_min_zoom_skips_exactly_what_tiles_do_not_draw() {
        let cfg = TilesConfig::builtin();
        let plain = index();
        let ranked = with_index_min_zoom(SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap()));
        ranked.load(dataset()).unwrap();
        for z in 6..=18 {
            let (a, b) = (
                render_tile(&plain, cfg, &Layer::SPATIAL, tile_at(z), Role::Analyst).unwrap(),
                render_tile(&ranked, cfg, &Layer::SPATIAL, tile_at(z), Role::Analyst).unwrap(),
            );
            assert_eq!(a, b, "z{z}");
        }
        // The pruning is real: at z9 only the major pipes come out of the tree.
        let bbox = query_bbox(tile_at(9), 4096, 64);
        let n = |i: &SpatialIndex| {
            i.bbox_candidates_at_zoom(Layer::Pipelines, &bbox, 9)
                .unwrap()
                .len()
        };
        assert_eq!(n(&ranked), 2);
        assert!(n(&plain) > 2);
        // A write recomputes the entry's zoom.
        let mut p = match &*ranked.get(Layer::Pipelines, 5).unwrap() {
            Record::Pipeline(p) => p.clone(),
            _ => unreachable!(),
        };
        p.kind = PipeKind::OilGas;
        ranked.upsert(Record::Pipeline(p)).unwrap();
        assert_eq!(n(&ranked), 3);
    }

    #[test]
    fn importance_orders_kinds_and_sizes() {
        let t = TilesConfig::builtin()
            .layer(Layer::Pipelines)
            .unwrap()
            .tiers
            .clone()
            .unwrap();
        let d = dataset();
        let imp: Vec<f64> = d.pipelines.iter().map(|p| pipe_importance(p, &t)).collect();
        // oil/gas > high-pressure gas > trunk water > gas main > water main > telecom.
        assert!(imp[0] > imp[1] && imp[1] > imp[6] && imp[6] > imp[2]);
        assert!(imp[2] > imp[5] && imp[5] > imp[3] && imp[3] > imp[4]);
        assert_eq!(pipe_tier(&d.pipelines[4], &t), Tier::Service);
    }

    #[test]
    fn a_tagged_index_is_trusted_only_for_the_rules_it_was_built_with() {
        // Built with the built-in tiers, asked with a configuration that draws service
        // pipes from z16: the tier check must run again, or they would show at z14.
        let text = include_str!("../../../data/tiles.toml").replace(
            "tier_minzoom = { major = 9, trunk = 11, main = 13, service = 14 }",
            "tier_minzoom = { major = 9, trunk = 11, main = 13, service = 16 }",
        );
        let cfg = TilesConfig::parse(&text).unwrap();
        let ranked = with_index_min_zoom(SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap()));
        ranked.load(dataset()).unwrap();
        let plain = index();
        for z in [13, 14, 15, 16] {
            assert_eq!(
                ids(&layer(&cfg, &ranked, Layer::Pipelines, z, Role::Viewer)),
                ids(&layer(&cfg, &plain, Layer::Pipelines, z, Role::Viewer)),
                "z{z}"
            );
        }
        assert_eq!(
            ids(&layer(&cfg, &ranked, Layer::Pipelines, 14, Role::Viewer)),
            [1, 2, 3, 4, 6, 7]
        );
    }

    #[test]
    fn budget_keeps_the_most_important() {
        let text = include_str!("../../../data/tiles.toml").replace(
            "[layers.pipelines]\nminzoom = 9",
            "[layers.pipelines]\nminzoom = 9\nmax_features = 3",
        );
        let cfg = TilesConfig::parse(&text).unwrap();
        let idx = index();
        // Oil/gas, high-pressure gas and the 1200 mm drain (the biggest trunk main).
        assert_eq!(
            ids(&layer(&cfg, &idx, Layer::Pipelines, 13, Role::Viewer)),
            [1, 2, 7]
        );
        let text = text.replace("max_features = 3", "max_features = 1");
        let cfg = TilesConfig::parse(&text).unwrap();
        assert_eq!(
            ids(&layer(&cfg, &idx, Layer::Pipelines, 13, Role::Viewer)),
            [1]
        );
        // From the detail zoom on tiles are exact: the budget does not apply.
        assert_eq!(
            ids(&layer(&cfg, &idx, Layer::Pipelines, 14, Role::Viewer)),
            [1, 2, 3, 4, 5, 6, 7]
        );
    }

    #[test]
    fn points_cluster_below_the_configured_zoom() {
        let (cfg, idx) = (TilesConfig::builtin(), index());
        let z12 = layer(cfg, &idx, Layer::RiskPoints, 12, Role::Viewer).unwrap();
        assert_eq!(
            z12.features.len(),
            1,
            "three points a metre apart make one cluster"
        );
        let f = &z12.features[0];
        assert_eq!(f.get("count").and_then(|v| v.as_i64()), Some(3));
        // The cluster shows its most severe member.
        assert_eq!(f.id, Some(2));
        assert_eq!(f.get("level").and_then(|v| v.as_str()), Some("major"));
        let z13 = layer(cfg, &idx, Layer::RiskPoints, 13, Role::Viewer).unwrap();
        assert_eq!(z13.features.len(), 3);
        assert!(z13.features.iter().all(|f| f.get("count").is_none()));
        assert!(z13.keys.iter().any(|k| k == "name"));
        // Responsible unit: contractor and up, from z15.
        let z15v = layer(cfg, &idx, Layer::RiskPoints, 15, Role::Viewer).unwrap();
        assert!(!z15v.keys.iter().any(|k| k == "responsible_unit"));
        let z15c = layer(cfg, &idx, Layer::RiskPoints, 15, Role::Contractor).unwrap();
        assert!(z15c.keys.iter().any(|k| k == "responsible_unit"));
    }

    #[test]
    fn grid_levels_and_polygons_stay_valid_with_holes() {
        let (cfg, idx) = (TilesConfig::builtin(), index());
        assert_eq!(
            ids(&layer(cfg, &idx, Layer::GridCells, 9, Role::Viewer)),
            [1]
        );
        assert_eq!(
            ids(&layer(cfg, &idx, Layer::GridCells, 10, Role::Viewer)),
            [1, 2]
        );
        // Cells with holes over a 3×3 block of tiles: at z12 the holes fit inside one tile
        // (interior rings), at z14 tile edges cut through them (notched exteriors). Every
        // decoded polygon must be valid either way.
        let (x, y) = origin();
        let (mut polygons, mut holes) = (0, 0);
        let blocks = (0..3).flat_map(|dx| (0..3).flat_map(move |dy| [(12, dx, dy), (14, dx, dy)]));
        for (z, dx, dy) in blocks {
            let t0 = TileCoord::from_lonlat(x - 0.01, y + 0.01, z).unwrap();
            let t = TileCoord::new(u32::from(z), t0.x() + dx, t0.y() + dy).unwrap();
            let bytes = render_tile(&idx, cfg, &[Layer::GridCells], t, Role::Viewer).unwrap();
            let tile = decode_tile(&bytes).expect("valid");
            for f in tile.layers.iter().flat_map(|l| &l.features) {
                let g = f.geometry.to_geo();
                assert!(geo::Validation::is_valid(&g), "tile {t} feature {:?}", f.id);
                let parts = match g {
                    Geometry::Polygon(p) => vec![p],
                    Geometry::MultiPolygon(m) => m.0,
                    other => panic!("not a polygon: {other:?}"),
                };
                polygons += parts.len();
                holes += parts.iter().map(|p| p.interiors().len()).sum::<usize>();
            }
        }
        assert!(
            polygons >= 9 && holes >= 1,
            "{polygons} polygons, {holes} holes"
        );
    }

    #[test]
    fn empty_tiles_are_empty() {
        let (cfg, idx) = (TilesConfig::builtin(), index());
        let far = TileCoord::from_lonlat(0.0, 0.0, 14).unwrap();
        assert!(render_tile(
            &idx,
            cfg,
            &[Layer::Pipelines, Layer::GridCells],
            far,
            Role::Admin
        )
        .unwrap()
        .is_empty());
        let (x, y) = origin();
        let low = TileCoord::from_lonlat(x, y, 5).unwrap();
        assert!(render_tile(&idx, cfg, &Layer::SPATIAL, low, Role::Viewer)
            .unwrap()
            .is_empty());
        // An empty index: every layer has zero features.
        let empty = SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap());
        assert!(
            render_tile(&empty, cfg, &Layer::SPATIAL, tile_at(14), Role::Viewer)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn composite_tiles_keep_request_order_and_bytes_are_deterministic() {
        let (cfg, idx) = (TilesConfig::builtin(), index());
        let order = [Layer::Sensors, Layer::Pipelines, Layer::GridCells];
        let a = render_tile(&idx, cfg, &order, tile_at(16), Role::Viewer).unwrap();
        let names: Vec<String> = decode_tile(&a)
            .unwrap()
            .layers
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, ["sensors", "pipelines", "grid_cells"]);
        assert_eq!(
            a,
            render_tile(&idx, cfg, &order, tile_at(16), Role::Viewer).unwrap()
        );
    }

    #[tokio::test]
    async fn cache_serves_and_a_write_shows_on_the_next_request() {
        use crate::{Encoding, LayerSet, TileService};
        let idx = index();
        let svc = TileService::with_config(idx.clone(), Arc::new(TilesConfig::builtin().clone()));
        let set = LayerSet::of(&[Layer::Pipelines]);
        let t = tile_at(16);
        let (x, y) = origin();
        let far = TileCoord::from_lonlat(x + 0.3, y + 0.3, 16).unwrap();
        let first = svc
            .tile(set, t, Role::Viewer, Encoding::Identity)
            .await
            .unwrap();
        let again = svc
            .tile(set, t, Role::Viewer, Encoding::Identity)
            .await
            .unwrap();
        assert!(
            Arc::ptr_eq(&first.body, &again.body),
            "second request is a cache hit"
        );
        let far1 = svc
            .tile(set, far, Role::Viewer, Encoding::Identity)
            .await
            .unwrap();
        assert!(far1.body.is_empty());
        let gz = svc
            .tile(set, t, Role::Viewer, Encoding::Gzip)
            .await
            .unwrap();
        assert_ne!(
            gz.body.etag, first.body.etag,
            "each encoding has its own ETag"
        );

        // Change pipe 4 from water to gas, as records::write does.
        let old = idx.get(Layer::Pipelines, 4).unwrap();
        let Record::Pipeline(mut p) = (*old).clone() else {
            unreachable!()
        };
        p.kind = PipeKind::Gas;
        idx.upsert(Record::Pipeline(p.clone())).unwrap();
        svc.record_changed(Some(&old), Some(&Record::Pipeline(p)));

        let after = svc
            .tile(set, t, Role::Viewer, Encoding::Identity)
            .await
            .unwrap();
        assert_ne!(after.body.etag, first.body.etag);
        let decoded = decode_tile(&after.body.bytes).unwrap();
        let f = decoded.layers[0]
            .features
            .iter()
            .find(|f| f.id == Some(4))
            .unwrap();
        assert_eq!(f.get("kind").and_then(|v| v.as_str()), Some("gas"));
        let gz2 = svc
            .tile(set, t, Role::Viewer, Encoding::Gzip)
            .await
            .unwrap();
        assert_ne!(
            gz2.body.etag, gz.body.etag,
            "compressed variants are invalidated too"
        );
        // A tile the pipe does not reach stays cached.
        let far2 = svc
            .tile(set, far, Role::Viewer, Encoding::Identity)
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&far1.body, &far2.body));

        // A large change (a district-sized box) goes through the predicate path.
        let big = Bbox::new(x - 0.5, y - 0.5, x + 0.5, y + 0.5).unwrap();
        let before = svc
            .tile(set, far, Role::Viewer, Encoding::Identity)
            .await
            .unwrap();
        svc.cache().invalidate(Layer::Pipelines, &[big]);
        let after = svc
            .tile(set, far, Role::Viewer, Encoding::Identity)
            .await
            .unwrap();
        assert!(
            !Arc::ptr_eq(&before.body, &after.body),
            "re-rendered after invalidation"
        );
        // Another layer's change leaves pipeline tiles alone.
        svc.cache().invalidate(Layer::Sensors, &[big]);
        let still = svc
            .tile(set, far, Role::Viewer, Encoding::Identity)
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&after.body, &still.body));
    }

    #[test]
    fn a_render_racing_a_write_is_not_cached() {
        use crate::cache::TileKey;
        use crate::{Encoding, LayerSet, TileBody, TileService};
        let svc = TileService::with_config(index(), Arc::new(TilesConfig::builtin().clone()));
        let key = TileKey {
            layers: LayerSet::of(&[Layer::Pipelines]),
            z: 16,
            x: tile_at(16).x(),
            y: tile_at(16).y(),
            class: Role::Viewer,
            encoding: Encoding::Identity,
            datum: Datum::Cgcs2000,
        };
        let body = Arc::new(TileBody {
            bytes: bytes::Bytes::from_static(b"x"),
            encoding: Encoding::Identity,
            etag: None,
        });
        let generation = svc.cache().generation();
        let (x, y) = origin();
        let b = Bbox::new(x, y, x, y).unwrap();
        svc.cache().invalidate(Layer::Pipelines, &[b]);
        assert!(!svc.cache().insert(key, body.clone(), generation));
        assert!(svc.cache().get(&key).is_none());
        assert!(svc.cache().insert(key, body, svc.cache().generation()));
        assert!(svc.cache().get(&key).is_some());
    }
}
