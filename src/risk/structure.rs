//! The static side of the risk statistics: the grid hierarchy (each cell's ancestor at
//! every level), which risk points sit in which cell, each risk point's linked sensors, and
//! where the sensors linked to no risk point are (the deepest grid cell containing them).
//!
//! Built once from the index (start-up, bulk load), then kept current record by record:
//! every index change is reported to the engine ([`super::RiskEngine::index_changed`]) and
//! applied from the index's current state of that record, so an edit costs microseconds
//! instead of a rebuild (0.9 s at city scale). Alarms and offline states change far more
//! often than the data; they are applied per request from the alarm book.

use crate::index::SpatialIndex;
use crate::model::{GridLevel, Layer, Record, RiskLevel, RiskStatus, SensorStatus};
use rstar::{RTree, RTreeObject, AABB};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

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
    /// Its lon/lat envelope and record (to find its box in the locator tree).
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

/// A cell's envelope in the lon/lat locator tree.
#[derive(Debug, Clone)]
struct CellBox {
    id: i64,
    depth: usize,
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

fn env_of(r: &Record) -> Option<AABB<[f64; 2]>> {
    let b = crate::model::Bbox::of(&r.geometry()?)?;
    Some(AABB::from_corners(
        [b.min_x(), b.min_y()],
        [b.max_x(), b.max_y()],
    ))
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
    locator: RTree<CellBox>,
}

/// Five levels; a longer chain is a cycle in bad data.
const MAX_CHAIN: usize = 8;

impl Structure {
    /// Builds everything from the index. Locating the unlinked sensors runs on all cores.
    pub(crate) fn build(index: &SpatialIndex) -> Structure {
        let mut st = Structure::default();
        let mut boxes = Vec::new();
        for r in index.all(Layer::GridCells) {
            if let Record::GridCell(c) = &*r {
                let env = env_of(&r).unwrap_or_else(|| AABB::from_point([0.0, 0.0]));
                st.by_level[level_slot(c.level)].insert(c.id);
                if let Some(p) = c.parent_id {
                    st.under.entry(p).or_default().cells.push(c.id);
                }
                boxes.push(CellBox {
                    id: c.id,
                    depth: level_slot(c.level),
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
        st.locator = RTree::bulk_load(boxes);
        let ids: Vec<i64> = st.cells.keys().copied().collect();
        for id in ids {
            st.set_ancestors(id);
        }
        for r in index.all(Layer::RiskPoints) {
            if let Record::RiskPoint(p) = &*r {
                st.insert_point(p.id, &r);
            }
        }
        let sensors = index.all(Layer::Sensors);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let chunk = sensors.len().div_ceil(threads).max(1);
        let located: Vec<Vec<(i64, SensorNode)>> = std::thread::scope(|s| {
            let st = &st;
            let handles: Vec<_> = sensors
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .filter_map(|r| st.sensor_node(r).map(|n| (r.id(), n)))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        st.sensors.reserve(sensors.len());
        for (id, node) in located.into_iter().flatten() {
            st.add_sensor(id, node);
        }
        st
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
            Layer::Pipelines | Layer::Owners => {}
        }
    }

    /// The deepest cell containing a point (the smallest id among equals, so the answer
    /// does not depend on tree order).
    pub(crate) fn locate(&self, lon: f64, lat: f64) -> Option<i64> {
        use geo::Intersects;
        let p = geo::Point::new(lon, lat);
        let mut hits: Vec<&CellBox> = self
            .locator
            .locate_in_envelope_intersecting(&AABB::from_point([lon, lat]))
            .collect();
        hits.sort_unstable_by_key(|b| (std::cmp::Reverse(b.depth), b.id));
        hits.into_iter()
            .find(|b| match &*b.record {
                Record::GridCell(c) => c.geometry.intersects(&p),
                _ => false,
            })
            .map(|b| b.id)
    }

    /// Cells of `level` meeting a lon/lat box (exactly), ascending.
    pub(crate) fn cells_in(&self, level: GridLevel, bbox: &crate::model::Bbox) -> Vec<i64> {
        let depth = level_slot(level);
        let rect = bbox.to_rect();
        let env = AABB::from_corners([bbox.min_x(), bbox.min_y()], [bbox.max_x(), bbox.max_y()]);
        let mut out: Vec<i64> = self
            .locator
            .locate_in_envelope_intersecting(&env)
            .filter(|b| b.depth == depth && b.record.intersects_rect(&rect))
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
        let node = PointNode {
            cell: p.grid_cell_id,
            level: p.level,
            status: p.status,
            category: p.category.clone(),
        };
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
            let _ = self.locator.remove(&CellBox {
                id,
                depth: level_slot(old.level),
                env: old.env,
                record: old.record.clone(),
            });
        }
        let mut moved = old.as_ref().map(|o| o.env);
        if let Some(r) = &now {
            if let Record::GridCell(c) = &**r {
                let env = env_of(r).unwrap_or_else(|| AABB::from_point([0.0, 0.0]));
                self.by_level[level_slot(c.level)].insert(id);
                if let Some(p) = c.parent_id {
                    self.under.entry(p).or_default().cells.push(id);
                }
                self.locator.insert(CellBox {
                    id,
                    depth: level_slot(c.level),
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
        let mut seen = HashSet::new();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{generate, GenerateOptions, Preset};
    use crate::io::crs::MetricCrs;
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
