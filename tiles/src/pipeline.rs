//! The per-request path: lon/lat features in, one encoded MVT layer out.
//!
//! Owns [`SourceFeature`], [`LayerOptions`], [`LayerStats`],
//! [`EncodedLayer`], the reusable [`LayerEncoder`] and the one-shot
//! [`encode_layer`].
//!
//! Per feature: project to tile units → drop parts smaller than `min_size`
//! (measured on the whole, unclipped part, so a feature does not flicker
//! between neighbouring tiles) → clip to the buffered tile → simplify
//! (Douglas–Peucker, tile units) → quantise/orient. Point features can
//! instead be grid-clustered. With a budget, candidates are processed most
//! important first and processing stops once the budget is filled, so
//! dropped features cost nothing; kept features are then emitted **in input
//! order**, leaving draw order to the caller.
//!
//! Allocation: all intermediate geometry lives in buffers owned by the
//! [`LayerEncoder`] and is reused across features and calls; the only
//! per-feature allocations are for polygons that actually cross the tile
//! edge (geo's boolean intersection).

use geo::{BooleanOps, Coord, Geometry, LineString, Polygon};

use crate::clip::{bbox, clip_line_into, ClipRect};
use crate::error::TileError;
use crate::generalize::{
    grid_cluster_into, importance_order, line_length, pixel_size, ring_area, Cluster, ClusterItem,
    Simplifier,
};
use crate::geometry::{GeomRef, GeomType, TileGeometry};
use crate::mvt::{LayerBuilder, Value};
use crate::quantize::{
    keep_hole_if_inside, quantize_line, quantize_point, quantize_ring, TileTransform,
};
use crate::tilemath::TileCoord;

/// Largest accepted extent. Keeps every tile coordinate (plus buffer) and
/// every delta comfortably inside `i32`.
pub const MAX_EXTENT: u32 = 1 << 20;

/// Name of the property carrying a cluster's member count.
pub const CLUSTER_COUNT_KEY: &str = "count";

/// A feature's geometry, borrowed in whichever form the caller keeps it (so a line or a
/// multipolygon held by a record need not be copied into a [`Geometry`] first: at city
/// scale that copy was a sixth of a dense tile's cost).
#[derive(Debug, Clone, Copy)]
pub enum SourceGeometry<'a> {
    /// Any geometry.
    Geometry(&'a Geometry<f64>),
    /// A single point.
    Point(&'a geo::Point<f64>),
    /// A single line.
    LineString(&'a LineString<f64>),
    /// Polygons.
    MultiPolygon(&'a geo::MultiPolygon<f64>),
}

impl<'a> From<&'a Geometry<f64>> for SourceGeometry<'a> {
    fn from(g: &'a Geometry<f64>) -> Self {
        SourceGeometry::Geometry(g)
    }
}

impl<'a> From<&'a geo::Point<f64>> for SourceGeometry<'a> {
    fn from(p: &'a geo::Point<f64>) -> Self {
        SourceGeometry::Point(p)
    }
}

impl<'a> From<&'a LineString<f64>> for SourceGeometry<'a> {
    fn from(l: &'a LineString<f64>) -> Self {
        SourceGeometry::LineString(l)
    }
}

impl<'a> From<&'a geo::MultiPolygon<f64>> for SourceGeometry<'a> {
    fn from(m: &'a geo::MultiPolygon<f64>) -> Self {
        SourceGeometry::MultiPolygon(m)
    }
}

impl SourceGeometry<'_> {
    /// The point, when the geometry is a single point.
    fn as_point(&self) -> Option<geo::Point<f64>> {
        match *self {
            SourceGeometry::Point(p) | SourceGeometry::Geometry(Geometry::Point(p)) => Some(*p),
            _ => None,
        }
    }
}

/// One input feature, borrowed from the caller's rows.
///
/// Tip: to avoid a `Vec` per feature, keep all rows' properties in one flat
/// `Vec<(&str, Value)>` and give each feature a sub-slice.
#[derive(Debug, Clone, Copy)]
pub struct SourceFeature<'a> {
    /// Feature id written to the tile (`None` = no id field).
    pub id: Option<u64>,
    /// Geometry in lon/lat degrees (EPSG:4326 axis order x = lon, y = lat).
    /// Geometry collections are skipped (MVT features have one type).
    pub geometry: SourceGeometry<'a>,
    /// Properties, written in order; a repeated key keeps its first value.
    pub properties: &'a [(&'a str, Value<'a>)],
    /// Larger = more important; decides what survives the feature budget and
    /// which point represents a cluster. NaN counts as least important.
    pub importance: f64,
}

/// Knobs for one layer. All sizes are in tile units (1/extent of the tile
/// width); one pixel of a 256-px tile is `extent / 256` units.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerOptions {
    /// Tile coordinate range, default 4096.
    pub extent: u32,
    /// Clip buffer around the tile, default 64 (of 4096).
    pub buffer: u32,
    /// Douglas–Peucker tolerance, default `extent / 256` (one pixel); 0
    /// disables simplification.
    pub simplify_tolerance: f64,
    /// Lines (per part) shorter than this and polygons (per part) with area
    /// below `min_size²` are dropped; default `extent / 256` (one pixel,
    /// one square pixel). 0 disables.
    pub min_size: f64,
    /// Keep at most this many features (the most important). `None` = all.
    pub max_features: Option<usize>,
    /// If set, single-point features are grid-clustered with this cell size
    /// (pick a divisor of `extent` so the grid is seamless across tiles).
    /// Every clustered output point gets a `count` property (1 for lone
    /// points); the cluster takes the id and other properties of its most
    /// important member. Only points inside the tile proper (not the buffer)
    /// are clustered, so each point is counted in exactly one tile.
    /// MultiPoint features are not clustered.
    pub cluster_cell: Option<u32>,
}

impl Default for LayerOptions {
    fn default() -> Self {
        Self::for_extent(crate::mvt::DEFAULT_EXTENT)
    }
}

impl LayerOptions {
    /// Defaults scaled to an extent: buffer `extent/64`, tolerance and min
    /// size one pixel (`extent/256`), no budget, no clustering.
    pub fn for_extent(extent: u32) -> Self {
        LayerOptions {
            extent,
            buffer: extent / 64,
            simplify_tolerance: pixel_size(extent),
            min_size: pixel_size(extent),
            max_features: None,
            cluster_cell: None,
        }
    }

    /// Check ranges; the error names the option and value.
    pub fn validate(&self) -> Result<(), TileError> {
        let bad =
            |name: &'static str, reason: String| Err(TileError::InvalidOption { name, reason });
        if self.extent == 0 || self.extent > MAX_EXTENT {
            return bad(
                "extent",
                format!("{} is not in 1..={MAX_EXTENT}", self.extent),
            );
        }
        if self.buffer > self.extent {
            return bad(
                "buffer",
                format!("{} is larger than the extent {}", self.buffer, self.extent),
            );
        }
        if !(self.simplify_tolerance.is_finite() && self.simplify_tolerance >= 0.0) {
            return bad(
                "simplify_tolerance",
                format!("{} must be finite and >= 0", self.simplify_tolerance),
            );
        }
        if !(self.min_size.is_finite() && self.min_size >= 0.0) {
            return bad(
                "min_size",
                format!("{} must be finite and >= 0", self.min_size),
            );
        }
        if self.cluster_cell == Some(0) {
            return bad("cluster_cell", "0 must be > 0 (use None to disable)".into());
        }
        Ok(())
    }
}

/// What happened to the input, for logging/metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Input features.
    pub input: usize,
    /// Features written to the layer.
    pub output: usize,
    /// Features with nothing inside the buffered tile.
    pub outside: usize,
    /// Features dropped as smaller than `min_size`, or collapsed by
    /// simplification/quantisation.
    pub too_small: usize,
    /// Candidates not processed because the budget was already full.
    pub over_budget: usize,
    /// Features skipped for unsupported (collection) or non-finite geometry.
    pub unsupported: usize,
    /// Point features that went into clustering.
    pub clustered_points: usize,
    /// Clusters produced (including single-member ones).
    pub clusters: usize,
}

/// One encoded layer: `bytes` is a complete one-layer tile; concatenate
/// several (or use [`crate::mvt::TileBuilder::add_encoded`]) for a
/// multi-layer tile.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedLayer {
    /// Layer name.
    pub name: String,
    /// Encoded `Tile` with this single layer.
    pub bytes: Vec<u8>,
    /// Processing statistics.
    pub stats: LayerStats,
}

const NO_CLUSTER: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Candidate {
    feature: u32,
    cluster: u32,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    cand: u32,
    kind: GeomType,
    pts: (u32, u32),
    ends: (u32, u32),
}

enum Outcome {
    Kept(GeomType),
    Outside,
    Small,
    Unsupported,
}

struct Ctx {
    xf: TileTransform,
    clip: ClipRect,
    clip_poly: Polygon<f64>,
    tol: f64,
    min_len: f64,
    min_area: f64,
}

// Per-feature scratch, separate from the arena so both can be borrowed.
#[derive(Default)]
struct Scratch {
    proj: Vec<Coord<f64>>,
    proj_ends: Vec<usize>,
    clipped: Vec<Coord<f64>>,
    clipped_ends: Vec<usize>,
    simp: Vec<Coord<f64>>,
    simplifier: Simplifier,
}

/// Reusable encoder: keeps every buffer (projection, clipping, the geometry
/// arena, the layer's dictionaries) between calls. Not `Sync`-shared — keep
/// one per worker (e.g. in a `thread_local!` or a small pool).
pub struct LayerEncoder {
    s: Scratch,
    arena: TileGeometry,
    cands: Vec<Candidate>,
    cand_imp: Vec<f64>,
    order: Vec<u32>,
    records: Vec<Record>,
    citems: Vec<ClusterItem>,
    citem_src: Vec<u32>,
    cscratch: Vec<(i64, i64, u32)>,
    clusters: Vec<Cluster>,
    layer: LayerBuilder,
    /// Buffers for the second thread of a split dense tile.
    helper: Option<Box<Helper>>,
    /// Whether dense tiles may be split over two threads.
    parallel: bool,
}

impl Default for LayerEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerEncoder {
    /// An encoder with empty buffers.
    pub fn new() -> Self {
        LayerEncoder {
            s: Scratch::default(),
            arena: TileGeometry::default(),
            cands: Vec::new(),
            cand_imp: Vec::new(),
            order: Vec::new(),
            records: Vec::new(),
            citems: Vec::new(),
            citem_src: Vec::new(),
            cscratch: Vec::new(),
            clusters: Vec::new(),
            layer: LayerBuilder::new("", crate::mvt::DEFAULT_EXTENT),
            helper: None,
            parallel: machine_is_parallel(),
        }
    }

    /// Allows or forbids splitting dense tiles over two threads (allowed by default on a
    /// machine with more than one core). The output is the same either way.
    pub fn set_parallel(&mut self, parallel: bool) {
        self.parallel = parallel;
    }

    /// Encode one layer and return it as a one-layer tile.
    pub fn encode(
        &mut self,
        name: &str,
        tile: TileCoord,
        features: &[SourceFeature<'_>],
        opts: &LayerOptions,
    ) -> Result<EncodedLayer, TileError> {
        let mut bytes = Vec::new();
        let stats = self.encode_into(name, tile, features, opts, &mut bytes)?;
        Ok(EncodedLayer {
            name: name.to_owned(),
            bytes,
            stats,
        })
    }

    /// Encode one layer and append it (as a `Tile.layers` field) to `out`,
    /// so several layers can be written into one buffer. The caller is
    /// responsible for layer names being unique within the tile.
    pub fn encode_into(
        &mut self,
        name: &str,
        tile: TileCoord,
        features: &[SourceFeature<'_>],
        opts: &LayerOptions,
        out: &mut Vec<u8>,
    ) -> Result<LayerStats, TileError> {
        opts.validate()?;
        if name.is_empty() {
            return Err(TileError::EmptyLayerName);
        }
        if features.len() >= u32::MAX as usize {
            return Err(TileError::InvalidOption {
                name: "features",
                reason: format!("{} features exceed the u32 index range", features.len()),
            });
        }
        let extent = opts.extent as f64;
        let clip = ClipRect::for_tile(opts.extent, opts.buffer);
        let ctx = Ctx {
            xf: TileTransform::new(tile, opts.extent),
            clip,
            clip_poly: clip.to_rect().to_polygon(),
            tol: opts.simplify_tolerance,
            min_len: opts.min_size,
            min_area: opts.min_size * opts.min_size,
        };
        let mut stats = LayerStats {
            input: features.len(),
            ..Default::default()
        };

        // 1. Candidates: every non-clustered feature, plus one per cluster.
        self.cands.clear();
        self.cand_imp.clear();
        self.clusters.clear();
        if let Some(cell) = opts.cluster_cell {
            self.citems.clear();
            self.citem_src.clear();
            for (i, f) in features.iter().enumerate() {
                if let Some(p) = f.geometry.as_point() {
                    let t = ctx.xf.lonlat_to_tile(p.x(), p.y());
                    if !(t.x.is_finite() && t.y.is_finite()) {
                        stats.unsupported += 1;
                    } else if t.x >= 0.0 && t.x < extent && t.y >= 0.0 && t.y < extent {
                        self.citems.push(ClusterItem {
                            pos: t,
                            importance: f.importance,
                        });
                        self.citem_src.push(i as u32);
                    } else {
                        stats.outside += 1;
                    }
                } else {
                    self.cands.push(Candidate {
                        feature: i as u32,
                        cluster: NO_CLUSTER,
                    });
                    self.cand_imp.push(f.importance);
                }
            }
            grid_cluster_into(
                &self.citems,
                cell as f64,
                &mut self.cscratch,
                &mut self.clusters,
            );
            for (j, c) in self.clusters.iter().enumerate() {
                self.cands.push(Candidate {
                    feature: self.citem_src[c.representative],
                    cluster: j as u32,
                });
                self.cand_imp.push(c.importance);
            }
            stats.clustered_points = self.citems.len();
            stats.clusters = self.clusters.len();
        } else {
            self.cands
                .extend((0..features.len() as u32).map(|i| Candidate {
                    feature: i,
                    cluster: NO_CLUSTER,
                }));
        }

        // 2. Processing order: by importance only when the budget can bite.
        let budget = opts.max_features.unwrap_or(usize::MAX);
        if budget < self.cands.len() {
            if opts.cluster_cell.is_none() {
                self.cand_imp.extend(features.iter().map(|f| f.importance));
            }
            importance_order(&self.cand_imp, &mut self.order);
        } else {
            self.order.clear();
            self.order.extend(0..self.cands.len() as u32);
        }

        // 3. Generalise/clip/quantise into the arena until the budget is full. A dense
        // tile whose budget cannot bite is split over two threads (the second half into
        // a helper arena appended afterwards): this step is most of a dense tile's cost,
        // and one request should not wait on one core while the other idles.
        self.arena.clear(GeomType::Unknown);
        self.records.clear();
        let n = self.order.len();
        let split = self.parallel && budget >= n && n >= PAR_MIN_FEATURES;
        let (order, cands, clusters) = (&self.order, &self.cands, &self.clusters);
        let mut main = Part {
            s: &mut self.s,
            arena: &mut self.arena,
            records: &mut self.records,
            stats: &mut stats,
        };
        if split {
            let (a, b) = order.split_at(n / 2);
            let helper = self.helper.get_or_insert_with(Default::default);
            helper.arena.clear(GeomType::Unknown);
            helper.records.clear();
            helper.stats = LayerStats::default();
            let mut other = Part {
                s: &mut helper.s,
                arena: &mut helper.arena,
                records: &mut helper.records,
                stats: &mut helper.stats,
            };
            let ctx = &ctx;
            std::thread::scope(|sc| {
                let h = sc.spawn(move || {
                    process_range(b, cands, clusters, features, ctx, usize::MAX, &mut other)
                });
                process_range(a, cands, clusters, features, ctx, usize::MAX, &mut main);
                if let Err(panic) = h.join() {
                    std::panic::resume_unwind(panic);
                }
            });
            let (pts, ends) = (
                self.arena.points().len() as u32,
                self.arena.part_ends().len() as u32,
            );
            self.arena.append(&helper.arena);
            self.records.extend(helper.records.iter().map(|r| Record {
                pts: (r.pts.0 + pts, r.pts.1 + pts),
                ends: (r.ends.0 + ends, r.ends.1 + ends),
                ..*r
            }));
            stats.outside += helper.stats.outside;
            stats.too_small += helper.stats.too_small;
            stats.unsupported += helper.stats.unsupported;
        } else {
            process_range(order, cands, clusters, features, &ctx, budget, &mut main);
        }
        let cands = &self.cands;
        self.records
            .sort_unstable_by_key(|r| cands[r.cand as usize].feature);

        // 4. Encode in input order.
        self.layer.reset(name, opts.extent);
        // Every key and string value is borrowed from `features` for this whole call.
        self.layer.memoize_strings();
        let points = self.arena.points();
        let ends = self.arena.part_ends();
        for r in &self.records {
            let cand = cands[r.cand as usize];
            let f = &features[cand.feature as usize];
            let geom = GeomRef {
                kind: r.kind,
                points: &points[r.pts.0 as usize..r.pts.1 as usize],
                ends: &ends[r.ends.0 as usize..r.ends.1 as usize],
                base: r.pts.0,
            };
            if cand.cluster != NO_CLUSTER {
                let count = Value::UInt(self.clusters[cand.cluster as usize].count as u64);
                self.layer.add_feature_ref(
                    f.id,
                    geom,
                    f.properties,
                    Some((CLUSTER_COUNT_KEY, &count)),
                )?;
            } else {
                self.layer.add_feature_ref(f.id, geom, f.properties, None)?;
            }
        }
        self.layer.write_to(out);
        stats.output = self.layer.len();
        Ok(stats)
    }
}

/// Fewest candidates for which step 3 of [`LayerEncoder::encode_into`] is split over two
/// threads (below this a thread costs more than it saves).
const PAR_MIN_FEATURES: usize = 2_048;

/// Whether this machine has a second core to split dense tiles over (asked once).
fn machine_is_parallel() -> bool {
    static PARALLEL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PARALLEL.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// The buffers of the second half of a split tile, kept between tiles.
#[derive(Default)]
struct Helper {
    s: Scratch,
    arena: TileGeometry,
    records: Vec<Record>,
    stats: LayerStats,
}

/// Where one thread's share of step 3 goes.
struct Part<'p> {
    s: &'p mut Scratch,
    arena: &'p mut TileGeometry,
    records: &'p mut Vec<Record>,
    stats: &'p mut LayerStats,
}

/// Step 3 for the candidates `order` (indices into `cands`), in that order, until
/// `budget` features are kept.
fn process_range(
    order: &[u32],
    cands: &[Candidate],
    clusters: &[Cluster],
    features: &[SourceFeature<'_>],
    ctx: &Ctx,
    budget: usize,
    out: &mut Part<'_>,
) {
    for (n, &ci) in order.iter().enumerate() {
        if out.records.len() >= budget {
            out.stats.over_budget = order.len() - n;
            break;
        }
        let cand = cands[ci as usize];
        let pts0 = out.arena.points().len() as u32;
        let ends0 = out.arena.part_ends().len() as u32;
        let outcome = if cand.cluster != NO_CLUSTER {
            quantize_point(clusters[cand.cluster as usize].pos, out.arena);
            Outcome::Kept(GeomType::Point)
        } else {
            process(
                features[cand.feature as usize].geometry,
                ctx,
                out.s,
                out.arena,
            )
        };
        match outcome {
            Outcome::Kept(kind) => out.records.push(Record {
                cand: ci,
                kind,
                pts: (pts0, out.arena.points().len() as u32),
                ends: (ends0, out.arena.part_ends().len() as u32),
            }),
            Outcome::Outside => out.stats.outside += 1,
            Outcome::Small => out.stats.too_small += 1,
            Outcome::Unsupported => out.stats.unsupported += 1,
        }
    }
}

/// One-shot convenience: a fresh [`LayerEncoder`] per call. Prefer keeping
/// a `LayerEncoder` per worker on hot paths.
pub fn encode_layer(
    name: &str,
    tile: TileCoord,
    features: &[SourceFeature<'_>],
    opts: &LayerOptions,
) -> Result<EncodedLayer, TileError> {
    LayerEncoder::new().encode(name, tile, features, opts)
}

// Project `coords` into `s.proj`, returning false on a non-finite result.
#[inline]
fn project_into(xf: &TileTransform, coords: &[Coord<f64>], proj: &mut Vec<Coord<f64>>) -> bool {
    let mut ok = true;
    proj.extend(coords.iter().map(|c| {
        let t = xf.lonlat_to_tile(c.x, c.y);
        ok &= t.x.is_finite() && t.y.is_finite();
        t
    }));
    ok
}

fn process(g: SourceGeometry<'_>, ctx: &Ctx, s: &mut Scratch, arena: &mut TileGeometry) -> Outcome {
    match g {
        SourceGeometry::Geometry(g) => process_geometry(g, ctx, s, arena),
        SourceGeometry::Point(p) => process_points(std::slice::from_ref(&p.0), ctx, arena),
        SourceGeometry::LineString(ls) => process_lines([&ls.0[..]].into_iter(), ctx, s, arena),
        SourceGeometry::MultiPolygon(mp) => process_polygons(&mp.0, ctx, s, arena),
    }
}

fn process_geometry(
    g: &Geometry<f64>,
    ctx: &Ctx,
    s: &mut Scratch,
    arena: &mut TileGeometry,
) -> Outcome {
    match g {
        Geometry::Point(p) => process_points(std::slice::from_ref(&p.0), ctx, arena),
        Geometry::MultiPoint(mp) => {
            // Points are `Coord` newtypes; gather into scratch to reuse one path.
            s.clipped.clear();
            s.clipped.extend(mp.0.iter().map(|p| p.0));
            let pts = std::mem::take(&mut s.clipped);
            let o = process_points(&pts, ctx, arena);
            s.clipped = pts;
            o
        }
        Geometry::Line(l) => process_lines([&[l.start, l.end][..]].into_iter(), ctx, s, arena),
        Geometry::LineString(ls) => process_lines([&ls.0[..]].into_iter(), ctx, s, arena),
        Geometry::MultiLineString(mls) => {
            process_lines(mls.0.iter().map(|l| &l.0[..]), ctx, s, arena)
        }
        Geometry::Polygon(p) => process_polygons(std::slice::from_ref(p), ctx, s, arena),
        Geometry::MultiPolygon(mp) => process_polygons(&mp.0, ctx, s, arena),
        Geometry::Rect(r) => process_polygons(&[r.to_polygon()], ctx, s, arena),
        Geometry::Triangle(t) => process_polygons(&[t.to_polygon()], ctx, s, arena),
        Geometry::GeometryCollection(_) => Outcome::Unsupported,
    }
}

fn process_points(pts: &[Coord<f64>], ctx: &Ctx, arena: &mut TileGeometry) -> Outcome {
    let start = arena.points().len();
    for c in pts {
        let t = ctx.xf.lonlat_to_tile(c.x, c.y);
        if !(t.x.is_finite() && t.y.is_finite()) {
            let parts = arena.part_ends().len();
            arena.truncate_to(start, parts);
            return Outcome::Unsupported;
        }
        if ctx.clip.contains(t) {
            quantize_point(t, arena);
        }
    }
    if arena.points().len() > start {
        Outcome::Kept(GeomType::Point)
    } else {
        Outcome::Outside
    }
}

fn process_lines<'g>(
    parts: impl Iterator<Item = &'g [Coord<f64>]>,
    ctx: &Ctx,
    s: &mut Scratch,
    arena: &mut TileGeometry,
) -> Outcome {
    let (start_pts, start_parts) = (arena.points().len(), arena.part_ends().len());
    let (mut touched, mut kept) = (false, false);
    for part in parts {
        s.proj.clear();
        if !project_into(&ctx.xf, part, &mut s.proj) {
            arena.truncate_to(start_pts, start_parts);
            return Outcome::Unsupported;
        }
        let Some((lo, hi)) = bbox(&s.proj) else {
            continue;
        };
        if s.proj.len() < 2 || !ctx.clip.intersects_box(lo, hi) {
            continue;
        }
        touched = true;
        // A part at least as long as its bbox's longer side needs no
        // length computation.
        if ctx.min_len > 0.0
            && (hi.x - lo.x).max(hi.y - lo.y) < ctx.min_len
            && line_length(&s.proj) < ctx.min_len
        {
            continue;
        }
        s.clipped.clear();
        s.clipped_ends.clear();
        if ctx.clip.contains_box(lo, hi) {
            s.clipped.extend_from_slice(&s.proj);
            s.clipped_ends.push(s.clipped.len());
        } else {
            clip_line_into(&s.proj, &ctx.clip, &mut s.clipped, &mut s.clipped_ends);
        }
        let mut from = 0;
        for &to in &s.clipped_ends {
            s.simp.clear();
            s.simplifier
                .simplify_line(&s.clipped[from..to], ctx.tol, &mut s.simp);
            kept |= quantize_line(&s.simp, arena);
            from = to;
        }
    }
    if kept {
        Outcome::Kept(GeomType::LineString)
    } else if touched {
        Outcome::Small
    } else {
        Outcome::Outside
    }
}

// Simplify one ring into `out` (cleared first). Douglas–Peucker collapses
// small rings (a 1.25-px square is within 1 px of its diagonal), which
// would make polygons that passed the size filter vanish; such rings fall
// back to their unsimplified shape.
fn simplify_ring_or_keep(
    ring: &[Coord<f64>],
    tol: f64,
    min_area: f64,
    simplifier: &mut Simplifier,
    out: &mut Vec<Coord<f64>>,
) {
    out.clear();
    simplifier.simplify_ring(ring, tol, out);
    if tol > 0.0 && ring_area(out) < min_area.max(f64::MIN_POSITIVE) {
        out.clear();
        out.extend_from_slice(ring);
    }
}

// Simplify and quantise one ring; rings below `min_area` (sub-pixel holes,
// clip slivers) are dropped.
fn emit_ring(
    ring: &[Coord<f64>],
    exterior: bool,
    tol: f64,
    ctx: &Ctx,
    simplifier: &mut Simplifier,
    simp: &mut Vec<Coord<f64>>,
    arena: &mut TileGeometry,
) -> bool {
    simplify_ring_or_keep(ring, tol, ctx.min_area, simplifier, simp);
    ring_area(simp) >= ctx.min_area && quantize_ring(simp, exterior, arena)
}

// Simplify and quantise one polygon already inside the clip window;
// returns whether its exterior survived (holes go with it).
fn emit_polygon<'r>(
    exterior: &[Coord<f64>],
    holes: impl Iterator<Item = &'r [Coord<f64>]>,
    tol: f64,
    ctx: &Ctx,
    s: &mut Scratch,
    arena: &mut TileGeometry,
) -> bool {
    let ext_start = arena.points().len();
    if !emit_ring(
        exterior,
        true,
        tol,
        ctx,
        &mut s.simplifier,
        &mut s.simp,
        arena,
    ) {
        return false;
    }
    let ext_end = arena.points().len();
    for h in holes {
        if emit_ring(h, false, tol, ctx, &mut s.simplifier, &mut s.simp, arena) {
            keep_hole_if_inside(arena, ext_start, ext_end);
        }
    }
    true
}

fn process_polygons(
    polys: &[Polygon<f64>],
    ctx: &Ctx,
    s: &mut Scratch,
    arena: &mut TileGeometry,
) -> Outcome {
    let (start_pts, start_parts) = (arena.points().len(), arena.part_ends().len());
    let (mut touched, mut kept) = (false, false);
    for poly in polys {
        s.proj.clear();
        s.proj_ends.clear();
        let mut finite = project_into(&ctx.xf, &poly.exterior().0, &mut s.proj);
        s.proj_ends.push(s.proj.len());
        for h in poly.interiors() {
            finite &= project_into(&ctx.xf, &h.0, &mut s.proj);
            s.proj_ends.push(s.proj.len());
        }
        if !finite {
            arena.truncate_to(start_pts, start_parts);
            return Outcome::Unsupported;
        }
        let ext = &s.proj[..s.proj_ends[0]];
        let Some((lo, hi)) = bbox(ext) else { continue };
        if !ctx.clip.intersects_box(lo, hi) {
            continue;
        }
        touched = true;
        let holes = || s.proj_ends.windows(2).map(|w| &s.proj[w[0]..w[1]]);
        let area = ring_area(ext) - holes().map(ring_area).sum::<f64>();
        if area < ctx.min_area {
            continue;
        }
        if ctx.clip.contains_box(lo, hi) {
            // Borrow dance: the rings live in `s.proj`, which emit_polygon
            // must not see mutably; take it out for the call.
            let proj = std::mem::take(&mut s.proj);
            let ends = std::mem::take(&mut s.proj_ends);
            let holes = ends.windows(2).map(|w| &proj[w[0]..w[1]]);
            kept |= emit_polygon(&proj[..ends[0]], holes, ctx.tol, ctx, s, arena);
            s.proj = proj;
            s.proj_ends = ends;
        } else {
            // Exact clip (see clip.rs for why not Sutherland–Hodgman).
            // Simplify and snap to the integer grid *before* clipping: the
            // boolean op then sees exactly the vertices that get encoded,
            // resolves any self-intersection simplification or snapping
            // introduced, and only adds intersections that lie on the
            // (integral) window edges. Rounding only after clipping can snap
            // a vertex a fraction of a unit inside the window onto its edge
            // and make the ring self-touching.
            let mut snapped = |ring: &[Coord<f64>]| {
                simplify_ring_or_keep(ring, ctx.tol, ctx.min_area, &mut s.simplifier, &mut s.simp);
                LineString(
                    s.simp
                        .iter()
                        .map(|c| Coord {
                            x: c.x.round(),
                            y: c.y.round(),
                        })
                        .collect(),
                )
            };
            let exterior = snapped(&s.proj[..s.proj_ends[0]]);
            let mut interiors = Vec::with_capacity(s.proj_ends.len() - 1);
            for w in s.proj_ends.windows(2) {
                interiors.push(snapped(&s.proj[w[0]..w[1]]));
            }
            let p = Polygon::new(exterior, interiors);
            for part in p.intersection(&ctx.clip_poly) {
                let holes = part.interiors().iter().map(|h| &h.0[..]);
                kept |= emit_polygon(&part.exterior().0, holes, 0.0, ctx, s, arena);
            }
        }
    }
    if kept {
        Outcome::Kept(GeomType::Polygon)
    } else if touched {
        Outcome::Small
    } else {
        Outcome::Outside
    }
}
