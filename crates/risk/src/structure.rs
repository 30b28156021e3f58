//! The static side of the risk statistics: the grid hierarchy (each cell's ancestor at
//! every level), which risk points sit in which cell, each risk point's linked sensors, and
//! where the sensors linked to no risk point are (the deepest grid cell containing them).
//!
//! Built once from the index (start-up, bulk load), then kept current record by record:
//! every index change is reported to the engine ([`super::RiskEngine::index_changed`]) and
//! applied from the index's current state of that record, so an edit costs microseconds
//! instead of a rebuild. Alarms and offline states change far more often than the data;
//! they are applied per request from the alarm book.
//!
//! A full build ([`Structure::build`]) locates every unlinked sensor once (split over the
//! cores), counts per cell, and rolls each cell's contents up the hierarchy once — not
//! each sensor — in integer-keyed maps with a fast hasher. [`Statistics`] runs the builds
//! on a background thread: at start-up the engine reports not ready until the first one
//! ends; after a bulk reload the previous structure keeps serving until the new one is
//! swapped in, and the records changed meanwhile are re-applied to it (applying a record
//! is idempotent: it makes the structure agree with the index's current state of it).

use lifeline_index::SpatialIndex;
use lifeline_model::{GridLevel, Layer, Record, RiskLevel, RiskStatus, SensorStatus};
use rstar::{RTree, RTreeObject, AABB};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Position of a level in [`GridLevel::ALL`].
pub(crate) fn level_slot(level: GridLevel) -> usize {
    GridLevel::ALL.iter().position(|l| *l == level).unwrap_or(0)
}

/// A cell as the statistics need it.
#[derive(Debug, Clone)]
pub(crate) struct CellNode {
    pub(crate) level: GridLevel,
    pub(crate) parent: Option<i64>,
    pub(crate) name: String,
    pub(crate) code: String,
    /// Its lon/lat envelope and record (to find its box in the locator trees).
    env: AABB<[f64; 2]>,
    record: Arc<Record>,
}

/// Counts of sensors in one group (linked to a risk point, or unlinked in a cell), by
/// their registered status; the live offline alarms are applied per request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SensorCounts {
    pub(crate) total: u32,
    /// Registered `online` (working unless an offline alarm is open).
    pub(crate) online: u32,
    /// Registered `offline`.
    pub(crate) offline: u32,
}

impl SensorCounts {
    fn add(&mut self, status: SensorStatus, sign: i32) {
        let step = |v: &mut u32| *v = v.saturating_add_signed(sign);
        step(&mut self.total);
        match status {
            SensorStatus::Online => step(&mut self.online),
            SensorStatus::Offline => step(&mut self.offline),
            _ => {}
        }
    }
}

/// The static totals of one cell at one level — everything rolled up under it — before
/// the alarm book's live corrections (open alarms, offline alarms) are applied per request.
/// Signed, so adding and taking away contributions in any order is exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Agg {
    /// Risk points by registered level, in [`RiskLevel::ALL`] order.
    pub(crate) by_level: [i64; 4],
    pub(crate) risk_points: i64,
    /// Risk points with at least one registered-online linked sensor.
    pub(crate) covered: i64,
    /// Linked sensors of the risk points, and those registered offline.
    pub(crate) sensors: i64,
    pub(crate) offline: i64,
    /// Unlinked sensors standing in the cell: all, registered online, registered offline.
    pub(crate) unlinked: i64,
    pub(crate) unlinked_online: i64,
    pub(crate) unlinked_offline: i64,
}

impl Agg {
    fn add(&mut self, o: &Agg, sign: i64) {
        for (a, b) in self.by_level.iter_mut().zip(o.by_level) {
            *a += sign * b;
        }
        self.risk_points += sign * o.risk_points;
        self.covered += sign * o.covered;
        self.sensors += sign * o.sensors;
        self.offline += sign * o.offline;
        self.unlinked += sign * o.unlinked;
        self.unlinked_online += sign * o.unlinked_online;
        self.unlinked_offline += sign * o.unlinked_offline;
    }

    fn of_point(node: &PointNode, links: Option<&SensorCounts>) -> Agg {
        let l = links.copied().unwrap_or_default();
        let mut a = Agg {
            risk_points: 1,
            covered: i64::from(l.online > 0),
            sensors: i64::from(l.total),
            offline: i64::from(l.offline),
            ..Agg::default()
        };
        a.by_level[level_index(node.level)] = 1;
        a
    }

    fn of_unlinked(c: &SensorCounts) -> Agg {
        Agg {
            unlinked: i64::from(c.total),
            unlinked_online: i64::from(c.online),
            unlinked_offline: i64::from(c.offline),
            ..Agg::default()
        }
    }

    fn of_sensor(status: SensorStatus) -> Agg {
        let mut c = SensorCounts::default();
        c.add(status, 1);
        Agg::of_unlinked(&c)
    }
}

/// Position of a risk level in [`RiskLevel::ALL`].
pub(crate) fn level_index(level: RiskLevel) -> usize {
    RiskLevel::ALL.iter().position(|l| *l == level).unwrap_or(0)
}

/// What hangs under one cell id (whether or not the cell itself exists: a child may name
/// a parent that is not loaded).
#[derive(Debug, Clone, Default)]
pub(crate) struct Under {
    pub(crate) cells: Vec<i64>,
    pub(crate) points: Vec<i64>,
    /// Sensors linked to no risk point whose deepest containing cell is this one.
    pub(crate) unlinked: SensorCounts,
}

impl Under {
    fn is_empty(&self) -> bool {
        self.cells.is_empty() && self.points.is_empty() && self.unlinked.total == 0
    }
}

/// A risk point as the statistics need it.
#[derive(Debug, Clone)]
pub(crate) struct PointNode {
    pub(crate) cell: Option<i64>,
    pub(crate) level: RiskLevel,
    pub(crate) status: RiskStatus,
    pub(crate) category: String,
}

/// A sensor as the statistics need it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SensorNode {
    pub(crate) point: Option<i64>,
    pub(crate) status: SensorStatus,
    pub(crate) lon: f64,
    pub(crate) lat: f64,
    /// For unlinked sensors: the deepest grid cell containing it.
    pub(crate) cell: Option<i64>,
}

/// A cell's envelope in its level's lon/lat locator tree.
#[derive(Debug, Clone)]
struct CellBox {
    id: i64,
    env: AABB<[f64; 2]>,
    record: Arc<Record>,
}

impl PartialEq for CellBox {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.env == other.env
    }
}

impl RTreeObject for CellBox {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.env
    }
}

/// A cell's lon/lat envelope (a point at the origin for an empty outline).
fn cell_env(c: &lifeline_model::GridCell) -> AABB<[f64; 2]> {
    use geo::BoundingRect;
    match c.geometry.bounding_rect() {
        Some(r) => AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
        None => AABB::from_point([0.0, 0.0]),
    }
}

/// A risk point as the statistics need it.
fn point_node(p: &lifeline_model::RiskPoint) -> PointNode {
    PointNode {
        cell: p.grid_cell_id,
        level: p.level,
        status: p.status,
        category: p.category.clone(),
    }
}

/// Interleaved bits of a lon/lat position (Z-order), to sort look-ups by place.
fn morton(lon: f64, lat: f64) -> u64 {
    let q = |v: f64, lo: f64, span: f64| -> u64 {
        let t = ((v - lo) / span).clamp(0.0, 1.0);
        // NaN clamps to NaN and casts to 0: any order is correct, only speed differs.
        (t * f64::from(u32::MAX)) as u64
    };
    let spread = |mut v: u64| {
        v &= 0xffff_ffff;
        v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
        v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
        v = (v | (v << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        v = (v | (v << 1)) & 0x5555_5555_5555_5555;
        v
    };
    spread(q(lon, -180.0, 360.0)) | (spread(q(lat, -90.0, 180.0)) << 1)
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct Structure {
    pub(crate) cells: HashMap<i64, CellNode>,
    /// Cell ids per level (in [`GridLevel::ALL`] order), ascending.
    pub(crate) by_level: [BTreeSet<i64>; 5],
    /// Per level: every cell → its ancestor at that level (itself at its own level).
    pub(crate) ancestors: [HashMap<i64, i64>; 5],
    pub(crate) under: HashMap<i64, Under>,
    pub(crate) points: HashMap<i64, PointNode>,
    /// Linked sensors per risk point (kept even while the point is missing).
    pub(crate) links: HashMap<i64, SensorCounts>,
    pub(crate) sensors: HashMap<i64, SensorNode>,
    /// Per level: each cell's static totals.
    pub(crate) agg: [HashMap<i64, Agg>; 5],
    /// Per level: the cells' outlines, so a look-up searches the deepest level first
    /// without walking the boxes of every level above it.
    locator: [RTree<CellBox>; 5],
}

/// Five levels; a longer chain is a cycle in bad data.
const MAX_CHAIN: usize = 8;

impl Structure {
    /// Builds everything from the index. Locating the unlinked sensors runs on all cores;
    /// the totals are then rolled up once per cell with contents. The result is the
    /// structure [`Structure::apply`] reaches record by record (unit test
    /// `build_equals_applying_every_record`).
    pub(crate) fn build(index: &SpatialIndex) -> Structure {
        let mut st = Structure::default();
        let cells = index.all(Layer::GridCells);
        st.cells.reserve(cells.len());
        let mut boxes: [Vec<CellBox>; 5] = Default::default();
        for r in &cells {
            if let Record::GridCell(c) = &**r {
                let env = cell_env(c);
                st.by_level[level_slot(c.level)].insert(c.id);
                if let Some(p) = c.parent_id {
                    st.under.entry(p).or_default().cells.push(c.id);
                }
                boxes[level_slot(c.level)].push(CellBox {
                    id: c.id,
                    env,
                    record: r.clone(),
                });
                st.cells.insert(
                    c.id,
                    CellNode {
                        level: c.level,
                        parent: c.parent_id,
                        name: c.name.clone(),
                        code: c.code.clone(),
                        env,
                        record: r.clone(),
                    },
                );
            }
        }
        drop(cells);
        st.locator = boxes.map(RTree::bulk_load);
        for a in &mut st.ancestors {
            a.reserve(st.cells.len());
        }
        let ids: Vec<i64> = st.cells.keys().copied().collect();
        for id in ids {
            st.set_ancestors(id);
        }
        let points = index.all(Layer::RiskPoints);
        st.points.reserve(points.len());
        for r in &points {
            if let Record::RiskPoint(p) = &**r {
                let node = point_node(p);
                if let Some(c) = node.cell {
                    st.under.entry(c).or_default().points.push(p.id);
                }
                st.points.insert(p.id, node);
            }
        }
        drop(points);
        let located = st.locate_sensors(&index.all(Layer::Sensors));
        st.sensors.reserve(located.len());
        for (id, node) in located {
            // Replaces nothing: ids are unique in the index.
            match (node.point, node.cell) {
                (Some(p), _) => st.links.entry(p).or_default().add(node.status, 1),
                (None, Some(c)) => st.under.entry(c).or_default().unlinked.add(node.status, 1),
                (None, None) => {}
            }
            st.sensors.insert(id, node);
        }
        // Each cell's direct contents, rolled up its ancestors once.
        let contents: Vec<(i64, Agg)> = st
            .under
            .keys()
            .map(|c| (*c, st.contents(*c)))
            .filter(|(_, a)| *a != Agg::default())
            .collect();
        for (c, a) in &contents {
            st.roll(*c, a, 1);
        }
        st
    }

    /// The statistics' view of every sensor record, the unlinked ones located in their
    /// deepest cell. Split over the cores; each part is walked in space-filling-curve
    /// order, so consecutive look-ups go down the same branches of the locator tree.
    fn locate_sensors(&self, sensors: &[Arc<Record>]) -> Vec<(i64, SensorNode)> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        let mut nodes: Vec<(u64, i64, SensorNode)> = sensors
            .iter()
            .filter_map(|r| match &**r {
                Record::Sensor(s) => {
                    let (lon, lat) = (s.location.x(), s.location.y());
                    let node = SensorNode {
                        point: s.risk_point_id,
                        status: s.status,
                        lon,
                        lat,
                        cell: None,
                    };
                    Some((morton(lon, lat), s.id, node))
                }
                _ => None,
            })
            .collect();
        nodes.sort_unstable_by_key(|(key, id, _)| (*key, *id));
        let chunk = nodes.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            for part in nodes.chunks_mut(chunk) {
                s.spawn(move || {
                    for (_, _, n) in part.iter_mut().filter(|(_, _, n)| n.point.is_none()) {
                        n.cell = self.locate(n.lon, n.lat);
                    }
                });
            }
        });
        nodes.into_iter().map(|(_, id, n)| (id, n)).collect()
    }

    /// Applies the index's current state of one record (`None`: deleted).
    pub(crate) fn apply(&mut self, index: &SpatialIndex, layer: Layer, id: i64) {
        let now = index.get(layer, id);
        match layer {
            Layer::GridCells => self.apply_cell(id, now),
            Layer::RiskPoints => {
                self.remove_point(id);
                if let Some(r) = now {
                    self.insert_point(id, &r);
                }
            }
            Layer::Sensors => {
                self.remove_sensor(id);
                if let Some(node) = now.as_deref().and_then(|r| self.sensor_node(r)) {
                    self.add_sensor(id, node);
                }
            }
            Layer::Pipelines | Layer::Nodes | Layer::Owners => {}
        }
    }

    /// The deepest cell containing a point (the smallest id among equals, so the answer
    /// does not depend on tree order).
    pub(crate) fn locate(&self, lon: f64, lat: f64) -> Option<i64> {
        use geo::Intersects;
        let p = geo::Coord { x: lon, y: lat };
        let at = AABB::from_point([lon, lat]);
        for tree in self.locator.iter().rev() {
            let mut best: Option<i64> = None;
            for b in tree.locate_in_envelope_intersecting(&at) {
                // Only a smaller id can change the answer: skip the polygon test otherwise.
                if best.is_some_and(|id| id <= b.id) {
                    continue;
                }
                let Record::GridCell(c) = &*b.record else {
                    continue;
                };
                // Polygon by polygon: `MultiPolygon::intersects` first computes the box of
                // every vertex, and the tree has already tested the box.
                if c.geometry.0.iter().any(|g| g.intersects(&p)) {
                    best = Some(b.id);
                }
            }
            if best.is_some() {
                return best;
            }
        }
        None
    }

    /// Cells of `level` meeting a lon/lat box (exactly), ascending.
    pub(crate) fn cells_in(&self, level: GridLevel, bbox: &lifeline_model::Bbox) -> Vec<i64> {
        let depth = level_slot(level);
        let rect = bbox.to_rect();
        let env = AABB::from_corners([bbox.min_x(), bbox.min_y()], [bbox.max_x(), bbox.max_y()]);
        let mut out: Vec<i64> = self.locator[depth]
            .locate_in_envelope_intersecting(&env)
            .filter(|b| b.record.intersects_rect(&rect))
            .map(|b| b.id)
            .collect();
        out.sort_unstable();
        out
    }

    fn sensor_node(&self, r: &Record) -> Option<SensorNode> {
        let Record::Sensor(s) = r else { return None };
        let (lon, lat) = (s.location.x(), s.location.y());
        Some(SensorNode {
            point: s.risk_point_id,
            status: s.status,
            lon,
            lat,
            cell: match s.risk_point_id {
                Some(_) => None,
                None => self.locate(lon, lat),
            },
        })
    }

    fn add_sensor(&mut self, id: i64, node: SensorNode) {
        self.count_sensor(&node, 1);
        self.sensors.insert(id, node);
    }

    /// Adds (`sign` 1) or takes away (-1) a sensor's part in the links, the unlinked
    /// counts and the totals.
    fn count_sensor(&mut self, node: &SensorNode, sign: i32) {
        match (node.point, node.cell) {
            (Some(p), _) => {
                let placed = self.points.get(&p).and_then(|n| n.cell.map(|c| (c, n)));
                let before = placed.map(|(c, n)| (c, Agg::of_point(n, self.links.get(&p))));
                let l = self.links.entry(p).or_default();
                l.add(node.status, sign);
                if l.total == 0 {
                    self.links.remove(&p);
                }
                if let Some((c, before)) = before {
                    let after = self
                        .points
                        .get(&p)
                        .map(|n| Agg::of_point(n, self.links.get(&p)))
                        .unwrap_or_default();
                    self.roll(c, &before, -1);
                    self.roll(c, &after, 1);
                }
            }
            (None, Some(c)) => {
                self.under
                    .entry(c)
                    .or_default()
                    .unlinked
                    .add(node.status, sign);
                self.roll(c, &Agg::of_sensor(node.status), i64::from(sign));
                self.prune(c);
            }
            (None, None) => {}
        }
    }

    /// Adds `a` (times `sign`) to the totals of every ancestor of `cell`.
    fn roll(&mut self, cell: i64, a: &Agg, sign: i64) {
        for l in 0..self.ancestors.len() {
            if let Some(anc) = self.ancestors[l].get(&cell).copied() {
                self.agg[l].entry(anc).or_default().add(a, sign);
            }
        }
    }

    /// The direct contents of a cell (its own risk points and unlinked sensors).
    fn contents(&self, cell: i64) -> Agg {
        let mut a = Agg::default();
        if let Some(u) = self.under.get(&cell) {
            for p in &u.points {
                if let Some(n) = self.points.get(p) {
                    a.add(&Agg::of_point(n, self.links.get(p)), 1);
                }
            }
            a.add(&Agg::of_unlinked(&u.unlinked), 1);
        }
        a
    }

    fn remove_sensor(&mut self, id: i64) -> Option<SensorNode> {
        let node = self.sensors.remove(&id)?;
        self.count_sensor(&node, -1);
        Some(node)
    }

    fn insert_point(&mut self, id: i64, r: &Record) {
        let Record::RiskPoint(p) = r else { return };
        let node = point_node(p);
        if let Some(c) = p.grid_cell_id {
            self.under.entry(c).or_default().points.push(id);
            self.roll(c, &Agg::of_point(&node, self.links.get(&id)), 1);
        }
        self.points.insert(id, node);
    }

    fn remove_point(&mut self, id: i64) {
        let Some(old) = self.points.remove(&id) else {
            return;
        };
        if let Some(c) = old.cell {
            self.roll(c, &Agg::of_point(&old, self.links.get(&id)), -1);
            if let Some(u) = self.under.get_mut(&c) {
                u.points.retain(|p| *p != id);
            }
            self.prune(c);
        }
    }

    fn prune(&mut self, cell: i64) {
        if self.under.get(&cell).is_some_and(Under::is_empty) {
            self.under.remove(&cell);
        }
    }

    fn apply_cell(&mut self, id: i64, now: Option<Arc<Record>>) {
        // The cell and everything under it (children that named it before it existed
        // too) may roll up elsewhere afterwards: take their contents out of the totals
        // under the old ancestors, put them back under the new.
        let moving = self.subtree(id);
        for d in &moving {
            let a = self.contents(*d);
            self.roll(*d, &a, -1);
        }
        let old = self.cells.remove(&id);
        if let Some(old) = &old {
            self.by_level[level_slot(old.level)].remove(&id);
            if let Some(p) = old.parent {
                if let Some(u) = self.under.get_mut(&p) {
                    u.cells.retain(|c| *c != id);
                }
                self.prune(p);
            }
            let _ = self.locator[level_slot(old.level)].remove(&CellBox {
                id,
                env: old.env,
                record: old.record.clone(),
            });
        }
        let mut moved = old.as_ref().map(|o| o.env);
        if let Some(r) = &now {
            if let Record::GridCell(c) = &**r {
                let env = cell_env(c);
                self.by_level[level_slot(c.level)].insert(id);
                if let Some(p) = c.parent_id {
                    self.under.entry(p).or_default().cells.push(id);
                }
                self.locator[level_slot(c.level)].insert(CellBox {
                    id,
                    env,
                    record: r.clone(),
                });
                self.cells.insert(
                    id,
                    CellNode {
                        level: c.level,
                        parent: c.parent_id,
                        name: c.name.clone(),
                        code: c.code.clone(),
                        env,
                        record: r.clone(),
                    },
                );
                moved = Some(match moved {
                    Some(m) => rstar::Envelope::merged(&m, &env),
                    None => env,
                });
            }
        }
        for d in &moving {
            self.set_ancestors(*d);
        }
        for d in &moving {
            let a = self.contents(*d);
            self.roll(*d, &a, 1);
        }
        // Unlinked sensors inside the old or new outline may now be in another cell.
        if let Some(env) = moved {
            let lower = env.lower();
            let upper = env.upper();
            let inside: Vec<i64> = self
                .sensors
                .iter()
                .filter(|(_, n)| {
                    n.point.is_none()
                        && (lower[0]..=upper[0]).contains(&n.lon)
                        && (lower[1]..=upper[1]).contains(&n.lat)
                })
                .map(|(id, _)| *id)
                .collect();
            for s in inside {
                if let Some(mut node) = self.remove_sensor(s) {
                    node.cell = self.locate(node.lon, node.lat);
                    self.add_sensor(s, node);
                }
            }
        }
    }

    /// A cell and everything under it (bounded, so a cycle in bad data ends).
    pub(crate) fn subtree(&self, root: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut seen = HashSet::default();
        let mut stack = vec![(root, 0usize)];
        while let Some((c, depth)) = stack.pop() {
            if depth > MAX_CHAIN || !seen.insert(c) {
                continue;
            }
            out.push(c);
            if let Some(u) = self.under.get(&c) {
                stack.extend(u.cells.iter().map(|k| (*k, depth + 1)));
            }
        }
        out
    }

    /// Recomputes one cell's ancestors from the parent chain.
    fn set_ancestors(&mut self, id: i64) {
        for a in &mut self.ancestors {
            a.remove(&id);
        }
        let mut cur = id;
        for _ in 0..MAX_CHAIN {
            let Some(node) = self.cells.get(&cur) else {
                break;
            };
            self.ancestors[level_slot(node.level)].insert(id, cur);
            match node.parent {
                Some(p) => cur = p,
                None => break,
            }
        }
    }
}

/// Index changes waiting for the structure, and the state of the builds.
#[derive(Debug, Default)]
struct Pending {
    /// Records the index changed since the structure last caught up (or, while a build
    /// runs, since it started): applied from the index's state of each.
    records: Vec<(Layer, i64)>,
    /// The whole index was (re)loaded: a build is due.
    reload: bool,
    /// A build is running on the background thread.
    building: bool,
    /// The first build has ended (the structure describes the index).
    built: bool,
    /// The last build panicked (a bug): no build restarts until the next reload.
    failed: bool,
    /// Completed builds, and how long the last one took.
    builds: u64,
    last_build: Duration,
}

/// Shared between the engine and its build thread.
struct Shared {
    index: Arc<SpatialIndex>,
    structure: parking_lot::RwLock<Structure>,
    pending: parking_lot::Mutex<Pending>,
    /// Signalled (with `pending`) when a build ends.
    built: parking_lot::Condvar,
    /// `true` from the end of the first build on.
    ready: tokio::sync::watch::Sender<bool>,
    /// Tests hold a build between building and swapping, to change the index meanwhile.
    #[cfg(test)]
    before_swap: parking_lot::Mutex<Option<Box<dyn Fn() + Send>>>,
}

/// The statistics structure with its builds: see the module docs. Lock order: the
/// structure before `pending`.
pub(crate) struct Statistics {
    shared: Arc<Shared>,
}

/// What `/ready` says about the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    /// The first build has ended.
    pub ready: bool,
    /// A build (start-up or after a bulk reload) is running.
    pub building: bool,
    /// Completed builds since start-up.
    pub builds: u64,
    /// Duration of the last completed build.
    pub last_build_ms: u64,
}

impl Statistics {
    /// Statistics over `index`, empty and not ready until [`Statistics::reloaded`] starts
    /// the first build (or a request does).
    pub(crate) fn new(index: Arc<SpatialIndex>) -> Statistics {
        Statistics {
            shared: Arc::new(Shared {
                index,
                structure: parking_lot::RwLock::new(Structure::default()),
                pending: parking_lot::Mutex::new(Pending {
                    reload: true,
                    ..Pending::default()
                }),
                built: parking_lot::Condvar::new(),
                ready: tokio::sync::watch::channel(false).0,
                #[cfg(test)]
                before_swap: parking_lot::Mutex::new(None),
            }),
        }
    }

    /// One record changed in the index (reported after the change).
    pub(crate) fn changed(&self, layer: Layer, id: i64) {
        self.shared.pending.lock().records.push((layer, id));
    }

    /// The whole index was reloaded: build anew in the background; the current structure
    /// keeps serving until then.
    pub(crate) fn reloaded(&self) {
        let mut p = self.shared.pending.lock();
        p.reload = true;
        p.failed = false;
        let inline = match p.building {
            true => None,
            false => Shared::start_build(&self.shared, &mut p),
        };
        drop(p);
        if let Some(build) = inline {
            build.run_builds();
        }
    }

    /// Whether the first build has ended, the running state and the last build's time.
    pub(crate) fn info(&self) -> BuildInfo {
        let p = self.shared.pending.lock();
        BuildInfo {
            ready: p.built,
            building: p.building,
            builds: p.builds,
            last_build_ms: u64::try_from(p.last_build.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Waits (at most `timeout`) for the end of the first build; whether it has ended.
    pub(crate) async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut rx = self.shared.ready.subscribe();
        let ready = tokio::time::timeout(timeout, rx.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok());
        ready
    }

    /// The structure, brought up to date first: the records the index changed since the
    /// last call are applied one by one. Before the first build ends this waits for it
    /// (readiness keeps requests away meanwhile); while a later build runs, the previous
    /// structure answers as it stands.
    pub(crate) fn read(&self) -> parking_lot::RwLockReadGuard<'_, Structure> {
        let sh = &self.shared;
        let dirty = loop {
            let mut p = sh.pending.lock();
            if (p.reload || !p.built) && !p.building && !p.failed {
                if let Some(build) = Shared::start_build(sh, &mut p) {
                    drop(p);
                    build.run_builds();
                    continue;
                }
            }
            while !p.built && !p.failed {
                sh.built.wait(&mut p);
            }
            break !p.building && !p.records.is_empty();
        };
        if !dirty {
            return sh.structure.read();
        }
        let mut w = sh.structure.write();
        // Taken under the write lock, so two callers never apply a batch out of order;
        // left alone if a build started meanwhile (it reads the index afresh).
        let records = {
            let mut p = sh.pending.lock();
            if p.building {
                Vec::new()
            } else {
                std::mem::take(&mut p.records)
            }
        };
        for (layer, id) in records {
            w.apply(&sh.index, layer, id);
        }
        parking_lot::RwLockWriteGuard::downgrade(w)
    }

    /// Holds every build, after building and before swapping, in `hook`.
    #[cfg(test)]
    fn hold_before_swap(&self, hook: impl Fn() + Send + 'static) {
        *self.shared.before_swap.lock() = Some(Box::new(hook));
    }
}

impl Shared {
    /// Marks a build as running and starts it on its own thread. Records changed so far
    /// are in the index the build reads, so they are dropped; those reported from now on
    /// are applied to the new structure after the swap.
    ///
    /// Returns the build for the caller to run itself (once it has let go of `pending`)
    /// if no thread could be started.
    #[must_use]
    fn start_build(this: &Arc<Shared>, p: &mut Pending) -> Option<Arc<Shared>> {
        p.building = true;
        p.reload = false;
        p.records.clear();
        let me = this.clone();
        match std::thread::Builder::new()
            .name("risk-stats-build".into())
            .spawn(move || me.run_builds())
        {
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "risk statistics: no build thread; building inline");
                Some(this.clone())
            }
        }
    }

    /// Builds, swaps the result in and re-applies what changed meanwhile; again while
    /// reloads keep arriving.
    fn run_builds(&self) {
        loop {
            let started = Instant::now();
            let build = || Structure::build(&self.index);
            let Ok(mut fresh) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(build))
            else {
                // A bug, not bad data: say so, keep what serves, and stay not ready if
                // nothing does; the next bulk load tries again.
                tracing::error!("risk statistics: the build failed; the previous structure stays");
                let mut p = self.pending.lock();
                p.building = false;
                p.failed = true;
                drop(p);
                self.built.notify_all();
                return;
            };
            #[cfg(test)]
            if let Some(hook) = &*self.before_swap.lock() {
                hook();
            }
            let mut w = self.structure.write();
            let mut p = self.pending.lock();
            for (layer, id) in std::mem::take(&mut p.records) {
                fresh.apply(&self.index, layer, id);
            }
            let old = std::mem::replace(&mut *w, fresh);
            p.builds += 1;
            p.last_build = started.elapsed();
            p.built = true;
            tracing::info!(
                ms = u64::try_from(p.last_build.as_millis()).unwrap_or(u64::MAX),
                cells = w.cells.len(),
                sensors = w.sensors.len(),
                "risk statistics built"
            );
            let again = p.reload;
            if again {
                // Another bulk load landed meanwhile: this structure serves until one
                // built from the reloaded index replaces it.
                p.reload = false;
                p.records.clear();
            } else {
                p.building = false;
            }
            drop(p);
            drop(w);
            self.built.notify_all();
            self.ready.send_replace(true);
            // The old structure is freed off the lock (hundreds of MB at city scale).
            drop(old);
            if !again {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_generate::{generate, GenerateOptions, Preset};
    use lifeline_model::crs::MetricCrs;
    use std::collections::BTreeMap;

    /// Per level and cell: (risk points, linked sensor counts, unlinked sensor counts),
    /// rolled up through the ancestors; both walks (flat and down the subtree) must agree.
    type Row = (Vec<i64>, (u32, u32, u32), (u32, u32, u32));
    type Rollup = BTreeMap<i64, Row>;

    fn rollup(st: &Structure, depth: usize) -> Rollup {
        let up = &st.ancestors[depth];
        let mut flat: Rollup = st.by_level[depth]
            .iter()
            .map(|c| (*c, Default::default()))
            .collect();
        let add = |e: &mut Row, u: &Under| {
            for p in &u.points {
                e.0.push(*p);
                let l = st.links.get(p).copied().unwrap_or_default();
                e.1 = (e.1 .0 + l.total, e.1 .1 + l.online, e.1 .2 + l.offline);
            }
            let c = u.unlinked;
            e.2 = (e.2 .0 + c.total, e.2 .1 + c.online, e.2 .2 + c.offline);
        };
        for (d, u) in &st.under {
            if let Some(e) = up.get(d).and_then(|c| flat.get_mut(c)) {
                add(e, u);
            }
        }
        let mut walked: Rollup = BTreeMap::new();
        for c in &st.by_level[depth] {
            let e = walked.entry(*c).or_default();
            for d in st.subtree(*c) {
                if up.get(&d) == Some(c) {
                    if let Some(u) = st.under.get(&d) {
                        add(e, u);
                    }
                }
            }
        }
        for m in [&mut flat, &mut walked] {
            for v in m.values_mut() {
                v.0.sort_unstable();
            }
        }
        assert_eq!(flat, walked, "flat pass and subtree walk agree");
        // The maintained totals are the same roll-up.
        for (cell, (points, linked, unlinked)) in &flat {
            let mut want = Agg::default();
            for p in points {
                want.add(&Agg::of_point(&st.points[p], st.links.get(p)), 1);
            }
            want.unlinked = i64::from(unlinked.0);
            want.unlinked_online = i64::from(unlinked.1);
            want.unlinked_offline = i64::from(unlinked.2);
            assert_eq!(want.sensors, i64::from(linked.0));
            let got = st.agg[depth].get(cell).copied().unwrap_or_default();
            assert_eq!(got, want, "totals of cell {cell} at depth {depth}");
        }
        flat
    }

    fn all_rollups(st: &Structure) -> Vec<Rollup> {
        (0..5).map(|d| rollup(st, d)).collect()
    }

    /// Everything a structure holds, in a comparable form (maps sorted, lists sorted,
    /// zero totals and empty cell contents left out: the incremental path may keep them).
    fn canonical(st: &Structure) -> String {
        let sorted = |v: &[i64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v
        };
        let cells: BTreeMap<i64, String> = st
            .cells
            .iter()
            .map(|(id, c)| {
                let env = (c.env.lower(), c.env.upper());
                (
                    *id,
                    format!("{:?} {:?} {} {} {env:?}", c.level, c.parent, c.name, c.code),
                )
            })
            .collect();
        let ancestors: Vec<BTreeMap<i64, i64>> = st
            .ancestors
            .iter()
            .map(|a| a.iter().map(|(k, v)| (*k, *v)).collect())
            .collect();
        let under: BTreeMap<i64, String> = st
            .under
            .iter()
            .filter(|(_, u)| !u.is_empty())
            .map(|(id, u)| {
                let s = format!(
                    "{:?} {:?} {:?}",
                    sorted(&u.cells),
                    sorted(&u.points),
                    u.unlinked
                );
                (*id, s)
            })
            .collect();
        let points: BTreeMap<i64, String> = st
            .points
            .iter()
            .map(|(id, p)| (*id, format!("{p:?}")))
            .collect();
        let links: BTreeMap<i64, SensorCounts> = st.links.iter().map(|(k, v)| (*k, *v)).collect();
        let sensors: BTreeMap<i64, String> = st
            .sensors
            .iter()
            .map(|(id, n)| (*id, format!("{n:?}")))
            .collect();
        let agg: Vec<BTreeMap<i64, Agg>> = st
            .agg
            .iter()
            .map(|m| {
                m.iter()
                    .filter(|(_, a)| **a != Agg::default())
                    .map(|(k, v)| (*k, *v))
                    .collect()
            })
            .collect();
        format!(
            "{cells:?}\n{:?}\n{ancestors:?}\n{under:?}\n{points:?}\n{links:?}\n{sensors:?}\n{agg:?}\n{:?}",
            st.by_level,
            st.locator.iter().map(RTree::size).collect::<Vec<_>>()
        )
    }

    /// The demo preset without pipes, with some bad data on top: a sensor linked to a
    /// missing risk point, a risk point filed under a missing cell, a cell whose parent is
    /// missing (its contents roll up only to itself), offline and maintenance sensors.
    fn demo_index() -> (SpatialIndex, lifeline_model::Dataset) {
        let (mut data, _) = generate(&GenerateOptions {
            preset: Preset::Demo,
            seed: 7,
            progress: false,
        })
        .expect("demo data");
        data.pipelines.clear();
        for (i, s) in data.sensors.iter_mut().enumerate() {
            s.pipeline_id = None;
            s.status = match i % 7 {
                0 => SensorStatus::Offline,
                1 => SensorStatus::Maintenance,
                _ => s.status,
            };
        }
        let mut s = data.sensors[5].clone();
        s.id = 9_100_000;
        s.risk_point_id = Some(9_999_999);
        data.sensors.push(s);
        let mut p = data.risk_points[4].clone();
        p.id = 9_200_000;
        p.grid_cell_id = Some(9_888_888);
        data.risk_points.push(p);
        let mut orphan = data
            .grid_cells
            .iter()
            .find(|c| c.parent_id.is_some())
            .expect("a child cell")
            .clone();
        orphan.id = 9_300_000;
        orphan.parent_id = Some(9_777_777);
        orphan.code.push('x');
        data.grid_cells.push(orphan);
        let index = SpatialIndex::new(MetricCrs::new("EPSG:4545").expect("crs"));
        index.load(data.clone()).expect("load");
        (index, data)
    }

    #[test]
    fn build_equals_applying_every_record() {
        let (index, data) = demo_index();
        let built = Structure::build(&index);
        // The incremental path from nothing: every record applied one by one (cells
        // first, then risk points, then sensors — the order of the old per-sensor build —
        // and again in the opposite order).
        let mut forward = Structure::default();
        let mut backward = Structure::default();
        let mut records: Vec<(Layer, i64)> = Vec::new();
        records.extend(data.grid_cells.iter().map(|c| (Layer::GridCells, c.id)));
        records.extend(data.risk_points.iter().map(|p| (Layer::RiskPoints, p.id)));
        records.extend(data.sensors.iter().map(|s| (Layer::Sensors, s.id)));
        for (l, id) in &records {
            forward.apply(&index, *l, *id);
        }
        for (l, id) in records.iter().rev() {
            backward.apply(&index, *l, *id);
        }
        let unlinked: u32 = built.under.values().map(|u| u.unlinked.total).sum();
        assert!(
            unlinked > 0,
            "the demo has unlinked sensors located in cells: {unlinked} of {}",
            data.sensors.len()
        );
        assert!(
            built.links.contains_key(&9_999_999),
            "a link to a missing point"
        );
        assert_eq!(built.sensors.len(), data.sensors.len());
        // Each located sensor is in the deepest cell containing it, the smallest id among
        // equals, by brute force over every cell (a sample, to keep the test quick).
        use geo::Intersects;
        let mut checked = 0;
        for (id, n) in built.sensors.iter().filter(|(id, _)| *id % 5 == 0) {
            if n.point.is_some() {
                continue;
            }
            let p = geo::Point::new(n.lon, n.lat);
            let want = data
                .grid_cells
                .iter()
                .filter(|c| c.geometry.intersects(&p))
                .min_by_key(|c| (std::cmp::Reverse(level_slot(c.level)), c.id))
                .map(|c| c.id);
            assert_eq!(n.cell, want, "sensor {id}");
            checked += usize::from(want.is_some());
        }
        assert!(checked > 0);
        assert_eq!(
            canonical(&built),
            canonical(&forward),
            "build == incremental"
        );
        assert_eq!(
            canonical(&built),
            canonical(&backward),
            "order does not matter"
        );
        assert_eq!(all_rollups(&built), all_rollups(&forward));
    }

    #[test]
    fn start_up_build_makes_the_statistics_ready() {
        let (index, _) = demo_index();
        let index = Arc::new(index);
        let stats = Statistics::new(index.clone());
        assert!(!stats.info().ready, "not ready before the first build");
        stats.reloaded();
        // A request arriving before the build ends waits for it.
        let st = stats.read();
        assert_eq!(canonical(&st), canonical(&Structure::build(&index)));
        drop(st);
        let info = stats.info();
        assert!(info.ready && !info.building, "{info:?}");
        assert_eq!(info.builds, 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        assert!(rt.block_on(stats.wait_ready(Duration::from_millis(1))));
    }

    #[test]
    fn a_bulk_reload_serves_the_previous_totals_then_swaps_and_reapplies_edits() {
        let (index, data) = demo_index();
        let index = Arc::new(index);
        let stats = Statistics::new(index.clone());
        stats.reloaded();
        let previous = all_rollups(&stats.read());
        let previous_sensors = stats.read().sensors.len();

        // Hold the next build after it has read the index, before it is swapped in.
        let (reached_tx, reached_rx) = std::sync::mpsc::channel::<()>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        stats.hold_before_swap(move || {
            let _ = reached_tx.send(());
            let _ = go_rx.recv_timeout(Duration::from_secs(60));
        });
        // A bulk load: a third of the sensors go, every risk point is re-levelled.
        let mut bulk = data.clone();
        bulk.sensors.retain(|s| s.id % 3 != 0);
        for p in &mut bulk.risk_points {
            p.level = RiskLevel::Major;
        }
        index.load(bulk.clone()).expect("reload");
        stats.reloaded();
        reached_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the build reached the swap");
        let built_from_bulk = all_rollups(&Structure::build(&index));
        assert_ne!(
            built_from_bulk, previous,
            "the bulk load changes the totals"
        );

        // Meanwhile: requests get the previous totals at once; the service stays ready.
        assert_eq!(all_rollups(&stats.read()), previous);
        assert_eq!(stats.read().sensors.len(), previous_sensors);
        let info = stats.info();
        assert!(info.ready && info.building, "{info:?}");

        // Edits landing after the build read the index: an unlinked sensor moves into a
        // risk point's link, a linked one is unlinked and goes offline, a risk point goes.
        let mut s0 = bulk
            .sensors
            .iter()
            .find(|s| s.risk_point_id.is_none())
            .unwrap()
            .clone();
        s0.risk_point_id = Some(bulk.risk_points[0].id);
        let mut s1 = bulk
            .sensors
            .iter()
            .find(|s| s.risk_point_id.is_some() && s.status == SensorStatus::Online)
            .unwrap()
            .clone();
        s1.risk_point_id = None;
        s1.status = SensorStatus::Offline;
        for s in [s0, s1] {
            let id = s.id;
            index.upsert(Record::Sensor(s)).unwrap();
            stats.changed(Layer::Sensors, id);
        }
        let gone = bulk.risk_points[1].id;
        index.remove(Layer::RiskPoints, gone);
        stats.changed(Layer::RiskPoints, gone);
        let want = Structure::build(&index);
        assert_ne!(
            all_rollups(&want),
            built_from_bulk,
            "the edits change the totals"
        );
        // Still the previous totals: edits wait for the new structure.
        assert_eq!(all_rollups(&stats.read()), previous);

        go_tx.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while stats.info().builds < 2 {
            assert!(Instant::now() < deadline, "the rebuild ended");
            std::thread::sleep(Duration::from_millis(5));
        }
        let st = stats.read();
        assert_eq!(
            canonical(&st),
            canonical(&want),
            "swapped, edits re-applied"
        );
        assert_eq!(all_rollups(&st), all_rollups(&want));
        drop(st);
        assert!(!stats.info().building);
    }

    #[test]
    fn incremental_updates_match_a_rebuild() {
        let (mut data, _) = generate(&GenerateOptions {
            preset: Preset::Demo,
            seed: 42,
            progress: false,
        })
        .expect("demo data");
        data.pipelines.clear();
        for s in &mut data.sensors {
            s.pipeline_id = None;
        }
        let index = SpatialIndex::new(MetricCrs::new("EPSG:4545").expect("crs"));
        index.load(data.clone()).expect("load");
        let mut st = Structure::build(&index);
        let before = all_rollups(&st);
        assert!(
            st.under.values().any(|u| u.unlinked.total > 0),
            "the demo has unlinked sensors located in cells"
        );
        assert!(before[1].values().any(|v| !v.0.is_empty()));

        let mut touched = Vec::new();
        // Unlink a linked sensor and take a working one offline.
        let mut s0 = data
            .sensors
            .iter()
            .find(|s| s.risk_point_id.is_some())
            .unwrap()
            .clone();
        s0.risk_point_id = None;
        s0.status = SensorStatus::Offline;
        touched.push((Layer::Sensors, s0.id));
        index.upsert(Record::Sensor(s0)).unwrap();
        // Link an unlinked sensor to a risk point.
        let mut s1 = data
            .sensors
            .iter()
            .find(|s| s.risk_point_id.is_none())
            .unwrap()
            .clone();
        s1.risk_point_id = Some(data.risk_points[0].id);
        touched.push((Layer::Sensors, s1.id));
        index.upsert(Record::Sensor(s1)).unwrap();
        // Delete a sensor; add a new unlinked one at a risk point's place.
        let gone = data.sensors.last().unwrap().id;
        index.remove(Layer::Sensors, gone);
        touched.push((Layer::Sensors, gone));
        let mut s2 = data.sensors[0].clone();
        s2.id = 9_000_000;
        s2.risk_point_id = None;
        s2.location = geo::Point::new(data.sensors[3].location.x(), data.sensors[3].location.y());
        touched.push((Layer::Sensors, s2.id));
        index.upsert(Record::Sensor(s2)).unwrap();
        // Move a risk point to another cell of the deepest level; delete another.
        let deepest = *st
            .by_level
            .iter()
            .rev()
            .find(|l| l.len() > 1)
            .unwrap()
            .last()
            .unwrap();
        let mut p0 = data.risk_points[1].clone();
        p0.grid_cell_id = Some(deepest);
        touched.push((Layer::RiskPoints, p0.id));
        index.upsert(Record::RiskPoint(p0)).unwrap();
        let p_gone = data.risk_points[2].id;
        index.remove(Layer::RiskPoints, p_gone);
        touched.push((Layer::RiskPoints, p_gone));
        // Re-parent a community under another street, and delete a grid cell (its
        // children and the unlinked sensors inside it roll up differently).
        let communities = &st.by_level[level_slot(GridLevel::Community)];
        let streets = &st.by_level[level_slot(GridLevel::Street)];
        let c_id = *communities.iter().next().unwrap();
        let mut moved = data
            .grid_cells
            .iter()
            .find(|c| c.id == c_id)
            .unwrap()
            .clone();
        let other = streets.iter().find(|s| Some(**s) != moved.parent_id);
        if let Some(o) = other {
            moved.parent_id = Some(*o);
        } else {
            // One street only: move it under a new street.
            let mut street = data
                .grid_cells
                .iter()
                .find(|c| Some(c.id) == moved.parent_id)
                .unwrap()
                .clone();
            street.id = 8_000_000;
            street.code.push('9');
            touched.push((Layer::GridCells, street.id));
            index.upsert(Record::GridCell(street)).unwrap();
            moved.parent_id = Some(8_000_000);
        }
        touched.push((Layer::GridCells, moved.id));
        index.upsert(Record::GridCell(moved)).unwrap();
        let grid = *st.by_level[level_slot(GridLevel::Grid)]
            .iter()
            .nth(1)
            .unwrap();
        index.remove(Layer::GridCells, grid);
        touched.push((Layer::GridCells, grid));

        for (l, id) in &touched {
            st.apply(&index, *l, *id);
        }
        let after = all_rollups(&st);
        let rebuilt = Structure::build(&index);
        assert_eq!(after, all_rollups(&rebuilt), "incremental == rebuild");
        assert_ne!(after, before, "the edits changed the statistics");
        // Applying the same changes again changes nothing.
        for (l, id) in &touched {
            st.apply(&index, *l, *id);
        }
        assert_eq!(all_rollups(&st), after);
        assert_eq!(st.sensors.len(), rebuilt.sensors.len());
    }
}
