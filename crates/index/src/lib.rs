//! The in-memory spatial index: one rstar R-tree per spatial layer, in metres of the
//! deployment's [`MetricCrs`], plus every record by id (owners too). It is a mirror of the
//! store: bulk-loaded from it at start-up and updated after every committed write.
//!
//! **Concurrency choice:** one `parking_lot::RwLock` per layer. Readers hold the read lock
//! only while they walk the tree and clone `Arc`s of the hits (microseconds); a single-record
//! write holds the write lock for one R-tree removal and insertion, which is O(log n) and
//! also microseconds, so readers never wait long. A whole reload (start-up, bulk load)
//! builds the new tree off-lock and swaps it in, so the write lock is held only for the
//! swap. Copy-on-write of the whole tree per write (`ArcSwap`) was rejected: copying a
//! 1.2 M-entry tree costs ~1 s per write.
//!
//! The trees are in metres so that "within distance" and "k nearest" are exact Euclidean
//! queries in a projected CRS, as the design requires; lon/lat bounding boxes are turned into
//! metric envelopes by projecting a densified outline.
//!
//! **What changed, for caches built on the index.** Besides the store's change-log
//! [`version`](SpatialIndex::version), the index numbers its own mutations
//! ([`generation`](SpatialIndex::generation)) and keeps a bounded log of the records each
//! one touched ([`changed_since`](SpatialIndex::changed_since)). Every mutation goes
//! through [`SpatialIndex::upsert`], [`SpatialIndex::remove`] or [`SpatialIndex::load`],
//! whoever calls them (a local write or the change follower applying another instance's
//! write), so a cache keyed by the generation stays consistent with what this index holds
//! on every instance, and a cache that knows which records changed can update only what
//! they touch (the trace networks' precomputed segments do).

use geo::{BoundingRect, Distance, Euclidean, Geometry};
use lifeline_model::crs::{CrsError, MetricCrs};
use lifeline_model::{Bbox, Dataset, Layer, Record};
use parking_lot::{Mutex, RwLock};
use rstar::{PointDistance, RStarInsertionStrategy, RTree, RTreeObject, RTreeParams, AABB};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Largest distance accepted by distance queries, metres. Larger radii are analyst jobs
/// for the OGC API, not index lookups.
pub const MAX_DISTANCE_M: f64 = 50_000.0;

/// Why an index operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Crs(#[from] CrsError),
    #[error("{0} has no geometry and cannot be queried spatially")]
    NotSpatial(Layer),
    #[error("distance {0} m is outside 0..{MAX_DISTANCE_M} m")]
    Distance(f64),
}

/// One R-tree entry: a record's id, its metric geometry and envelope.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    env: AABB<[f64; 2]>,
    /// The record's geometry in metres.
    pub geom: Arc<Geometry<f64>>,
    /// The record itself, so a query hands out hits without a lookup by id (at city scale
    /// that lookup, a cache miss per hit, was a fifth of a dense tile's cost).
    pub record: Arc<Record>,
    /// The lowest map zoom the record is drawn at (see [`SpatialIndex::with_min_zoom`]).
    /// Kept in the entry, beside the envelope, so a low-zoom tile skips the records it does
    /// not draw without touching them: at city scale a z10 tile's box holds ~300 k pipes
    /// of which only the major ones are drawn.
    pub min_zoom: u8,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.env == other.env
    }
}

impl RTreeObject for Entry {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.env
    }
}

impl PointDistance for Entry {
    fn distance_2(&self, p: &[f64; 2]) -> f64 {
        let d = Euclidean.distance(&Geometry::Point(geo::point!(x: p[0], y: p[1])), &*self.geom);
        d * d
    }
}

fn envelope_of(g: &Geometry<f64>) -> Option<AABB<[f64; 2]>> {
    g.bounding_rect()
        .map(|r| AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]))
}

/// A record with its tree entry (none for owners or empty geometries).
type Slot = (Arc<Record>, Option<Entry>);

/// Node sizes of the trees: wider than rstar's default (3–6 children), because the hot
/// queries are large boxes (a dense city tile walks ~15,000 leaves), where fewer, fuller
/// nodes mean fewer pointer chases.
pub struct IndexParams;

impl RTreeParams for IndexParams {
    const MIN_SIZE: usize = 8;
    const MAX_SIZE: usize = 24;
    const REINSERTION_COUNT: usize = 6;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// The records and tree of one layer.
#[derive(Default)]
struct LayerIndex {
    tree: RTree<Entry, IndexParams>,
    records: HashMap<i64, Slot>,
    /// Lon/lat extent; grows on insert, recomputed on reload (deletes do not shrink it).
    bbox: Option<Bbox>,
}

/// A record that matched a distance query, with its distance in metres.
#[derive(Debug, Clone)]
pub struct Hit {
    pub record: Arc<Record>,
    pub distance_m: f64,
    /// The record's geometry in metres of the index's CRS (already projected: callers
    /// measuring further need not project it again).
    pub metric: Arc<Geometry<f64>>,
}

/// Per-layer summary for `/ready` and `/layers`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerStats {
    pub layer: Layer,
    pub count: usize,
    pub bbox: Option<Bbox>,
}

/// Gives a record's lowest drawn zoom (see [`SpatialIndex::with_min_zoom`]).
pub type MinZoomFn = Box<dyn Fn(&Record) -> u8 + Send + Sync>;

/// How many record changes the index remembers for [`SpatialIndex::changed_since`]. A
/// cache further behind than this rebuilds whole, which at that size it would nearly have
/// to anyway. 64 Ki entries are 1.5 MiB.
pub const CHANGE_LOG_LEN: usize = 1 << 16;

/// The mutations of the index, numbered, with the records the latest ones touched.
#[derive(Debug, Default)]
struct ChangeLog {
    /// The number of the latest mutation (0: none yet).
    generation: u64,
    /// `(generation, layer, id)` of the latest record changes, oldest first.
    entries: VecDeque<(u64, Layer, i64)>,
    /// The log answers for every generation from this one on: what changed after it is all
    /// in `entries`. Raised by a reload (which changes everything) and by dropping the
    /// oldest entry.
    floor: u64,
}

/// The records changed after a generation ([`SpatialIndex::changed_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Each changed record once, as (layer, id), in the order of their latest change.
    pub records: Vec<(Layer, i64)>,
    /// The generation these changes bring a cache up to.
    pub generation: u64,
}

/// The whole in-memory index. Cheap to share behind an `Arc`.
pub struct SpatialIndex {
    crs: MetricCrs,
    layers: [RwLock<LayerIndex>; 6],
    version: AtomicI64,
    /// Logged after each mutation is in the layer, so that a reader who reads the
    /// generation first and the records after sees at least that generation's content.
    log: Mutex<ChangeLog>,
    min_zoom: Option<MinZoomFn>,
    /// Names the rules `min_zoom` applies (see [`SpatialIndex::with_min_zoom_tagged`]).
    min_zoom_tag: Option<&'static str>,
}

fn slot(layer: Layer) -> usize {
    match layer {
        Layer::Pipelines => 0,
        Layer::RiskPoints => 1,
        Layer::GridCells => 2,
        Layer::Sensors => 3,
        Layer::Nodes => 4,
        Layer::Owners => 5,
    }
}

impl SpatialIndex {
    /// An empty index measuring in `crs`.
    pub fn new(crs: MetricCrs) -> Self {
        SpatialIndex {
            crs,
            layers: Default::default(),
            version: AtomicI64::new(0),
            log: Mutex::new(ChangeLog::default()),
            min_zoom: None,
            min_zoom_tag: None,
        }
    }

    /// Sets how each record's lowest drawn zoom is found (the tile configuration's tiers
    /// and levels); [`SpatialIndex::bbox_candidates_at_zoom`] then skips records not drawn
    /// at the asked zoom. Without it every record counts as drawn from zoom 0. Set it
    /// before loading: entries take the value when they are built.
    pub fn with_min_zoom(mut self, f: MinZoomFn) -> Self {
        self.min_zoom = Some(f);
        self.min_zoom_tag = None;
        self
    }

    /// [`SpatialIndex::with_min_zoom`], naming the rules `f` applies, so a caller that
    /// knows those rules can trust [`SpatialIndex::bbox_candidates_at_zoom`] without
    /// checking each record again.
    pub fn with_min_zoom_tagged(mut self, f: MinZoomFn, tag: &'static str) -> Self {
        self.min_zoom = Some(f);
        self.min_zoom_tag = Some(tag);
        self
    }

    /// The name given with [`SpatialIndex::with_min_zoom_tagged`].
    pub fn min_zoom_tag(&self) -> Option<&'static str> {
        self.min_zoom_tag
    }

    /// The metric CRS of the trees.
    pub fn crs(&self) -> &MetricCrs {
        &self.crs
    }

    /// The change-log version the index reflects.
    pub fn version(&self) -> i64 {
        self.version.load(Ordering::Acquire)
    }

    /// Records that the index now reflects the store up to `version`.
    pub fn set_version(&self, version: i64) {
        self.version.fetch_max(version, Ordering::AcqRel);
    }

    /// The number of the latest mutation of the index (upsert, remove or load), counted by
    /// this index from 0. Unlike [`SpatialIndex::version`], which is the store's and is set
    /// by whoever applies a write, it moves with every change to what the index holds, on
    /// every instance. Read it before reading records to key a cache on them.
    pub fn generation(&self) -> u64 {
        self.log.lock().generation
    }

    /// The records changed after `generation` (each once), or `None` when the log cannot
    /// say: the index was reloaded since, or more than [`CHANGE_LOG_LEN`] changes ago.
    /// A cache built at `generation` that applies these records' current state is
    /// consistent with the index up to the returned generation.
    pub fn changed_since(&self, generation: u64) -> Option<Changed> {
        let log = self.log.lock();
        if generation < log.floor || generation > log.generation {
            return None;
        }
        // Entries are in generation order: the ones after `generation` are a suffix.
        let start = log.entries.partition_point(|e| e.0 <= generation);
        let mut seen = std::collections::HashSet::new();
        let mut records: Vec<(Layer, i64)> = Vec::new();
        for &(_, layer, id) in log.entries.range(start..).rev() {
            if seen.insert((layer, id)) {
                records.push((layer, id));
            }
        }
        records.reverse();
        Some(Changed {
            records,
            generation: log.generation,
        })
    }

    fn logged(&self, layer: Layer, id: i64) {
        let mut log = self.log.lock();
        log.generation += 1;
        let g = log.generation;
        log.entries.push_back((g, layer, id));
        if log.entries.len() > CHANGE_LOG_LEN {
            if let Some((dropped, _, _)) = log.entries.pop_front() {
                log.floor = dropped;
            }
        }
    }

    fn reset_log(&self) {
        let mut log = self.log.lock();
        log.generation += 1;
        log.entries.clear();
        log.floor = log.generation;
    }

    fn entry_for(&self, record: &Arc<Record>) -> Result<Option<Entry>, CrsError> {
        let Some(g) = record.geometry() else {
            return Ok(None);
        };
        let m = self.crs.to_metric(&g)?;
        let min_zoom = self.min_zoom.as_ref().map_or(0, |f| f(record));
        Ok(envelope_of(&m).map(|env| Entry {
            id: record.id(),
            env,
            geom: Arc::new(m),
            record: record.clone(),
            min_zoom,
        }))
    }

    /// Replaces the whole content of every layer with `data` (start-up, after a bulk load).
    /// Projection runs on all cores, off-lock; each layer is swapped in at the end.
    pub fn load(&self, data: Dataset) -> Result<(), CrsError> {
        let Dataset {
            owners,
            grid_cells,
            pipelines,
            risk_points,
            sensors,
            nodes,
        } = data;
        let batches: Vec<(Layer, Vec<Record>)> = vec![
            (
                Layer::Owners,
                owners.into_iter().map(Record::Owner).collect(),
            ),
            (
                Layer::GridCells,
                grid_cells.into_iter().map(Record::GridCell).collect(),
            ),
            (
                Layer::Pipelines,
                pipelines.into_iter().map(Record::Pipeline).collect(),
            ),
            (
                Layer::RiskPoints,
                risk_points.into_iter().map(Record::RiskPoint).collect(),
            ),
            (
                Layer::Sensors,
                sensors.into_iter().map(Record::Sensor).collect(),
            ),
            (Layer::Nodes, nodes.into_iter().map(Record::Node).collect()),
        ];
        for (layer, records) in batches {
            // Even a load that fails halfway has replaced layers: caches must start over.
            let built = match self.build_layer(records) {
                Ok(b) => b,
                Err(e) => {
                    self.reset_log();
                    return Err(e);
                }
            };
            *self.layers[slot(layer)].write() = built;
        }
        self.reset_log();
        Ok(())
    }

    fn build_layer(&self, records: Vec<Record>) -> Result<LayerIndex, CrsError> {
        let total = records.len();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let chunk = total.div_ceil(threads).max(1);
        // Owned chunks, so each record moves into its Arc instead of being copied: at city
        // scale a copy would double peak memory during start-up.
        let mut parts = Vec::with_capacity(threads);
        let mut rest = records;
        while rest.len() > chunk {
            let tail = rest.split_off(chunk);
            parts.push(rest);
            rest = tail;
        }
        parts.push(rest);
        let built: Vec<Result<Vec<Slot>, CrsError>> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|part| {
                    s.spawn(move || {
                        part.into_iter()
                            .map(|r| {
                                let r = Arc::new(r);
                                let entry = self.entry_for(&r)?;
                                Ok((r, entry))
                            })
                            .collect::<Result<Vec<_>, CrsError>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut map = HashMap::with_capacity(total);
        let mut entries = Vec::with_capacity(total);
        let mut bbox: Option<Bbox> = None;
        for part in built {
            for (rec, entry) in part? {
                if let Some(g) = rec.geometry() {
                    bbox = merge(bbox, Bbox::of(&g));
                }
                if let Some(e) = &entry {
                    entries.push(e.clone());
                }
                map.insert(rec.id(), (rec, entry));
            }
        }
        Ok(LayerIndex {
            tree: RTree::bulk_load_with_params(entries),
            records: map,
            bbox,
        })
    }

    /// Inserts or replaces one record (after the store committed it).
    pub fn upsert(&self, record: Record) -> Result<(), CrsError> {
        // Project before taking the lock: PROJ is the slow part.
        let layer = record.layer();
        let bbox = record.geometry().and_then(|g| Bbox::of(&g));
        let rec = Arc::new(record);
        let entry = self.entry_for(&rec)?;
        let mut li = self.layers[slot(layer)].write();
        if let Some((_, Some(old))) = li.records.remove(&rec.id()) {
            li.tree.remove(&old);
        }
        if let Some(e) = &entry {
            li.tree.insert(e.clone());
        }
        li.bbox = merge(li.bbox, bbox);
        let id = rec.id();
        li.records.insert(id, (rec, entry));
        drop(li);
        self.logged(layer, id);
        Ok(())
    }

    /// Removes one record (after the store deleted it); true if it was there.
    pub fn remove(&self, layer: Layer, id: i64) -> bool {
        let mut li = self.layers[slot(layer)].write();
        match li.records.remove(&id) {
            Some((_, entry)) => {
                if let Some(e) = entry {
                    li.tree.remove(&e);
                }
                drop(li);
                self.logged(layer, id);
                true
            }
            None => false,
        }
    }

    /// A record by id.
    pub fn get(&self, layer: Layer, id: i64) -> Option<Arc<Record>> {
        self.layers[slot(layer)]
            .read()
            .records
            .get(&id)
            .map(|(r, _)| r.clone())
    }

    /// Whether a record exists.
    pub fn contains(&self, layer: Layer, id: i64) -> bool {
        self.layers[slot(layer)].read().records.contains_key(&id)
    }

    /// Count and extent of every layer.
    pub fn stats(&self) -> Vec<LayerStats> {
        Layer::ALL
            .iter()
            .map(|&layer| {
                let li = self.layers[slot(layer)].read();
                LayerStats {
                    layer,
                    count: li.records.len(),
                    bbox: li.bbox,
                }
            })
            .collect()
    }

    /// Number of records in a layer.
    pub fn count(&self, layer: Layer) -> usize {
        self.layers[slot(layer)].read().records.len()
    }

    /// Every record of a layer (for checks and exports; clones `Arc`s only).
    pub fn all(&self, layer: Layer) -> Vec<Arc<Record>> {
        self.layers[slot(layer)]
            .read()
            .records
            .values()
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The metric envelope covering a lon/lat box: the box outline is densified before
    /// projecting, because a projected box's edges are curves. Only for boxes the metric
    /// CRS can project (a window larger than its zone fails, or comes back wrong); the
    /// queries below first clamp a window to the layer's data ([`SpatialIndex::window`]).
    pub fn metric_envelope(&self, bbox: &Bbox) -> Result<AABB<[f64; 2]>, CrsError> {
        let (x0, y0, x1, y1) = (bbox.min_x(), bbox.min_y(), bbox.max_x(), bbox.max_y());
        // A projected parallel bows between two samples by about chord² · tan φ / 8N (N the
        // radius of curvature): a few centimetres for a 0.025° step (≤ 2.8 km), well inside
        // the slack below. So small boxes (map windows, tiles at z >= 14) need only their corners:
        // each point is a PROJ call, the dominant cost of a small query.
        let span = (x1 - x0).max(y1 - y0);
        let steps = ((span / 0.025).ceil() as usize).clamp(1, 1024);
        let mut pts = Vec::with_capacity(4 * steps);
        for i in 0..steps {
            let t = i as f64 / steps as f64;
            pts.push((x0 + (x1 - x0) * t, y0));
            pts.push((x1, y0 + (y1 - y0) * t));
            pts.push((x1 - (x1 - x0) * t, y1));
            pts.push((x0, y1 - (y1 - y0) * t));
        }
        let mut lo = [f64::INFINITY; 2];
        let mut hi = [f64::NEG_INFINITY; 2];
        for (x, y) in pts {
            let (mx, my) = self.crs.to_metric_xy(x, y)?;
            lo = [lo[0].min(mx), lo[1].min(my)];
            hi = [hi[0].max(mx), hi[1].max(my)];
        }
        // A metre of slack for curvature between the densified points.
        Ok(AABB::from_corners(
            [lo[0] - 1.0, lo[1] - 1.0],
            [hi[0] + 1.0, hi[1] + 1.0],
        ))
    }

    /// The metric envelope to search for a lon/lat window in one layer: the window is first
    /// clamped to the layer's extent (`None`: they do not meet, so nothing can match).
    /// Clamping is what makes any valid window exact: the world, or a window beyond the
    /// metric CRS's zone, cannot be projected (or projects to a wrong box), while the part
    /// that holds data can, since every record in it was projected when it was indexed. The
    /// extent only grows between reloads, so it always covers the data. Should even the
    /// clamped window fail to project, the whole tree is searched: a superset, never a
    /// wrong answer.
    fn window(
        li: &LayerIndex,
        crs_env: impl FnOnce(&Bbox) -> Result<AABB<[f64; 2]>, CrsError>,
        bbox: &Bbox,
    ) -> Option<AABB<[f64; 2]>> {
        let part = li.bbox.and_then(|extent| extent.intersection(bbox))?;
        match crs_env(&part) {
            Ok(env) => Some(env),
            Err(_) => Some(li.tree.root().envelope()),
        }
    }

    /// Records whose envelope meets the box (a superset of the exact answer; what tile
    /// encoding wants, since it clips anyway).
    pub fn bbox_candidates(
        &self,
        layer: Layer,
        bbox: &Bbox,
    ) -> Result<Vec<Arc<Record>>, IndexError> {
        let li = self.spatial(layer)?;
        let Some(env) = Self::window(&li, |b| self.metric_envelope(b), bbox) else {
            return Ok(Vec::new());
        };
        Ok(li
            .tree
            .locate_in_envelope_intersecting(&env)
            .map(|e| e.record.clone())
            .collect())
    }

    /// Like [`SpatialIndex::bbox_candidates`], but only records drawn at zoom `z` (their
    /// entry's `min_zoom` is at most `z`), in ascending id order. The others are skipped in
    /// the tree walk without touching their records; the hits are sorted by the id beside
    /// their envelope, which is far cheaper than sorting the records afterwards (each
    /// comparison there chases a pointer).
    pub fn bbox_candidates_at_zoom(
        &self,
        layer: Layer,
        bbox: &Bbox,
        z: u8,
    ) -> Result<Vec<Arc<Record>>, IndexError> {
        let li = self.spatial(layer)?;
        let Some(env) = Self::window(&li, |b| self.metric_envelope(b), bbox) else {
            return Ok(Vec::new());
        };
        // Sorted as (id, entry) pairs, so comparisons do not chase the entry pointers.
        let mut hits: Vec<(i64, &Entry)> = li
            .tree
            .locate_in_envelope_intersecting(&env)
            .filter(|e| e.min_zoom <= z)
            .map(|e| (e.id, e))
            .collect();
        hits.sort_unstable_by_key(|h| h.0);
        Ok(hits.into_iter().map(|(_, e)| e.record.clone()).collect())
    }

    /// Records whose geometry intersects the lon/lat box, exactly.
    pub fn bbox(&self, layer: Layer, bbox: &Bbox) -> Result<Vec<Arc<Record>>, IndexError> {
        let rect = bbox.to_rect();
        let mut out = self.bbox_candidates(layer, bbox)?;
        out.retain(|r| r.intersects_rect(&rect));
        Ok(out)
    }

    /// Records within `distance_m` metres of a lon/lat geometry, with their distances,
    /// nearest first.
    pub fn within_distance(
        &self,
        layer: Layer,
        geom: &Geometry<f64>,
        distance_m: f64,
    ) -> Result<Vec<Hit>, IndexError> {
        if !(0.0..=MAX_DISTANCE_M).contains(&distance_m) || !distance_m.is_finite() {
            return Err(IndexError::Distance(distance_m));
        }
        // Only the part of the query near the layer's data can be within reach of a record,
        // and only that part can be projected when the query is larger than the metric
        // CRS's zone (a world polygon) or lies far outside it.
        let Some(reach) = self.extent(layer)?.map(|e| e.grown_by_metres(distance_m)) else {
            return Ok(Vec::new());
        };
        let near;
        let geom = match Bbox::of(geom) {
            Some(b) if reach.contains(&b) => geom,
            Some(b) if reach.intersects(&b) => match clip_to(geom, &reach) {
                Some(g) => {
                    near = g;
                    &near
                }
                None => return Ok(Vec::new()),
            },
            _ => return Ok(Vec::new()),
        };
        let q = self.crs.to_metric(geom)?;
        let Some(env) = envelope_of(&q) else {
            return Ok(Vec::new());
        };
        let (lo, hi) = (env.lower(), env.upper());
        let search = AABB::from_corners(
            [lo[0] - distance_m, lo[1] - distance_m],
            [hi[0] + distance_m, hi[1] + distance_m],
        );
        let li = self.spatial(layer)?;
        // Distances first, beside their entries; sorted by (distance, id) with the id kept
        // in the entry, so the sort never touches a record, and the `Arc`s are cloned once
        // per hit into an exactly sized result (a 1 km² dig in the city has ~2,500 hits).
        let mut found: Vec<(f64, &Entry)> = Vec::with_capacity(256);
        for e in li.tree.locate_in_envelope_intersecting(&search) {
            // The entry's box alone may already be out of reach (the search box's corners);
            // a micrometre of slack so rounding never drops a pipe at the limit.
            let gap = Self::box_gap(&e.envelope(), &env);
            if gap > distance_m + 1e-6 {
                continue;
            }
            let d = Self::query_distance(&q, &e.geom, gap > 0.0);
            if d <= distance_m {
                found.push((d, e));
            }
        }
        found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
        Ok(found
            .into_iter()
            .map(|(d, e)| Hit {
                record: e.record.clone(),
                distance_m: d,
                metric: e.geom.clone(),
            })
            .collect())
    }

    /// Distance in metres between a metric query and an entry's geometry: geo's Euclidean
    /// distance, except that the excavation check's cases — a polygon (holes allowed) or
    /// a line against a line — are computed here without allocating. When their boxes
    /// overlap, geo's polygon–line and line–line distances build two small R-trees per
    /// call, which was most of a 1 km² dig's lookup. The figure is the same: 0 when they
    /// meet, else the least of the same point-to-segment distances (geo's primitive),
    /// over every ring. Large pairs go to geo, whose trees then pay off. `apart`: their
    /// boxes are disjoint, so they cannot meet.
    fn query_distance(q: &Geometry<f64>, g: &Geometry<f64>, apart: bool) -> f64 {
        use geo::{Intersects, LineString};
        let Geometry::LineString(l) = g else {
            return Euclidean.distance(q, g);
        };
        let (poly, first, rest): (_, &LineString<f64>, &[LineString<f64>]) = match q {
            Geometry::Polygon(p) => (Some(p), p.exterior(), p.interiors()),
            Geometry::LineString(a) => (None, a, &[]),
            _ => return Euclidean.distance(q, g),
        };
        let rings = || std::iter::once(first).chain(rest);
        let ring_points: usize = rings().map(|r| r.0.len()).sum();
        if l.0.len() < 2 || rings().any(|r| r.0.len() < 2) || ring_points * l.0.len() > 4096 {
            return Euclidean.distance(q, g);
        }
        // They meet if a vertex of the line lies in the polygon, or a segment crosses a
        // ring (or the query line).
        if !apart {
            if poly.is_some_and(|p| l.0.iter().any(|c| p.intersects(c))) {
                return 0.0;
            }
            for s in l.lines() {
                for r in rings() {
                    if r.lines().any(|e| s.intersects(&e)) {
                        return 0.0;
                    }
                }
            }
        }
        // Every vertex against every segment of the other. A cheap squared distance finds
        // the nearest pairs; geo's exact distance (its `hypot`s are the slow part) is taken
        // only for pairs within a micrometre of that, so the figure is geo's minimum.
        let pairs = || {
            rings().flat_map(|r| {
                let a = r.lines().flat_map(|e| l.0.iter().map(move |c| (*c, e)));
                let b = r.0.iter().flat_map(|c| l.lines().map(move |s| (*c, s)));
                a.chain(b)
            })
        };
        let near2 = pairs()
            .map(|(c, e)| Self::seg_dist2(c, &e))
            .fold(f64::INFINITY, f64::min);
        let limit = (near2.sqrt() + 1e-6).powi(2);
        pairs()
            .filter(|(c, e)| Self::seg_dist2(*c, e) <= limit)
            .map(|(c, e)| Euclidean.distance(c, &e))
            .fold(f64::INFINITY, f64::min)
    }

    /// Squared distance from a point to a segment (no square root; for ranking pairs).
    fn seg_dist2(p: geo::Coord<f64>, s: &geo::Line<f64>) -> f64 {
        let (dx, dy) = (s.end.x - s.start.x, s.end.y - s.start.y);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 {
            (((p.x - s.start.x) * dx + (p.y - s.start.y) * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (ex, ey) = (s.start.x + t * dx - p.x, s.start.y + t * dy - p.y);
        ex * ex + ey * ey
    }

    /// Distance between two boxes (0 when they overlap).
    fn box_gap(a: &AABB<[f64; 2]>, b: &AABB<[f64; 2]>) -> f64 {
        let (al, au, bl, bu) = (a.lower(), a.upper(), b.lower(), b.upper());
        let dx = (bl[0] - au[0]).max(al[0] - bu[0]).max(0.0);
        let dy = (bl[1] - au[1]).max(al[1] - bu[1]).max(0.0);
        dx.hypot(dy)
    }

    /// The `k` records nearest a lon/lat point, nearest first, optionally no farther than
    /// `max_m` metres.
    pub fn nearest(
        &self,
        layer: Layer,
        lon: f64,
        lat: f64,
        k: usize,
        max_m: Option<f64>,
    ) -> Result<Vec<Hit>, IndexError> {
        // A point beyond `max_m` of the whole layer has no answer, even where it could not
        // be projected.
        if let Some(m) = max_m {
            let here = Bbox::new(lon, lat, lon, lat).map_err(|_| CrsError::Transform {
                code: self.crs.code().to_string(),
                x: lon,
                y: lat,
            })?;
            let reach = self.extent(layer)?.map(|e| e.grown_by_metres(m));
            if !reach.is_some_and(|r| r.contains(&here)) {
                return Ok(Vec::new());
            }
        }
        let (x, y) = self.crs.to_metric_xy(lon, lat)?;
        let li = self.spatial(layer)?;
        let mut out = Vec::with_capacity(k.min(1024));
        for (e, d2) in li.tree.nearest_neighbor_iter_with_distance_2(&[x, y]) {
            let d = d2.sqrt();
            if out.len() >= k || max_m.is_some_and(|m| d > m) {
                break;
            }
            out.push(Hit {
                record: e.record.clone(),
                distance_m: d,
                metric: e.geom.clone(),
            });
        }
        Ok(out)
    }

    /// Records whose geometry intersects a lon/lat geometry (tested in metres).
    pub fn intersects(
        &self,
        layer: Layer,
        geom: &Geometry<f64>,
    ) -> Result<Vec<Arc<Record>>, IndexError> {
        Ok(self
            .within_distance(layer, geom, 0.0)?
            .into_iter()
            .map(|h| h.record)
            .collect())
    }

    /// The lon/lat extent of a spatial layer's records (`None` when it has none).
    fn extent(&self, layer: Layer) -> Result<Option<Bbox>, IndexError> {
        Ok(self.spatial(layer)?.bbox)
    }

    fn spatial(
        &self,
        layer: Layer,
    ) -> Result<parking_lot::RwLockReadGuard<'_, LayerIndex>, IndexError> {
        if layer == Layer::Owners {
            return Err(IndexError::NotSpatial(layer));
        }
        Ok(self.layers[slot(layer)].read())
    }
}

/// The part of a lon/lat geometry inside `b` (`None` when nothing is), cut with geo's
/// boolean operations in lon/lat, where the geometry's edges are straight.
fn clip_to(g: &Geometry<f64>, b: &Bbox) -> Option<Geometry<f64>> {
    use geo::{BooleanOps, Intersects, LineString, MultiLineString, MultiPoint, MultiPolygon};
    let rect = b.to_rect();
    let frame = rect.to_polygon();
    let lines = |ls: MultiLineString<f64>| Geometry::MultiLineString(frame.clip(&ls, false));
    let out = match g {
        Geometry::Point(p) => Geometry::MultiPoint(MultiPoint(
            rect.intersects(p).then_some(*p).into_iter().collect(),
        )),
        Geometry::MultiPoint(m) => Geometry::MultiPoint(MultiPoint(
            m.iter().filter(|p| rect.intersects(*p)).copied().collect(),
        )),
        Geometry::Line(l) => lines(MultiLineString(vec![LineString::from(*l)])),
        Geometry::LineString(l) => lines(MultiLineString(vec![l.clone()])),
        Geometry::MultiLineString(m) => lines(m.clone()),
        Geometry::Polygon(p) => Geometry::MultiPolygon(p.intersection(&frame)),
        Geometry::MultiPolygon(m) => {
            Geometry::MultiPolygon(m.intersection(&MultiPolygon(vec![frame.clone()])))
        }
        Geometry::Rect(r) => Geometry::MultiPolygon(r.to_polygon().intersection(&frame)),
        Geometry::Triangle(t) => Geometry::MultiPolygon(t.to_polygon().intersection(&frame)),
        Geometry::GeometryCollection(c) => Geometry::GeometryCollection(geo::GeometryCollection(
            c.iter().filter_map(|m| clip_to(m, b)).collect(),
        )),
    };
    Bbox::of(&out).map(|_| out)
}

fn merge(a: Option<Bbox>, b: Option<Bbox>) -> Option<Bbox> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.union(&b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests;
