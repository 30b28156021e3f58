//! Views of the risk one map computed from the index and the alarm book: risk points at
//! their live level (list and detail), suggested sensors, the coverage report and per-grid
//! statistics rolled up through the grid hierarchy (`parent_id`), so a risk point filed
//! under a micro-grid counts in its grid, community, street and district.

use super::{anchor, RiskEngine, RiskError};
use crate::model::{
    Bbox, GridLevel, Layer, Record, RiskLevel, RiskPoint, RiskStatus, Sensor, SensorStatus,
};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Filter of `GET /risk/points`.
#[derive(Debug, Clone, Default)]
pub struct PointFilter {
    pub bbox: Option<Bbox>,
    /// Live (shown) levels to keep.
    pub levels: Vec<RiskLevel>,
    pub category: Option<String>,
    pub status: Option<RiskStatus>,
    pub limit: usize,
}

/// Position of a level in [`GridLevel::ALL`].
fn level_slot(level: GridLevel) -> usize {
    GridLevel::ALL.iter().position(|l| *l == level).unwrap_or(0)
}

/// What the statistics need from the index, rebuilt only when the index changes (keyed by
/// its version and the follower's edit counter): alarms and offline states change far
/// more often than the data, and are applied per request from the book.
pub(crate) struct Structure {
    key: (i64, u64),
    /// Per level (in [`GridLevel::ALL`] order): every cell → its ancestor at that level.
    ancestors: [HashMap<i64, i64>; 5],
    /// Per level: (id, name, code) of the cells of that level.
    cells: [Vec<(i64, String, String)>; 5],
    /// Risk point → its linked sensors (id, status).
    linked: HashMap<i64, Vec<(i64, SensorStatus)>>,
    /// Every risk point: (id, grid cell, registered level).
    points: Vec<(i64, Option<i64>, RiskLevel)>,
}

impl Structure {
    fn build(index: &crate::index::SpatialIndex, key: (i64, u64)) -> Structure {
        let mut tree: HashMap<i64, (GridLevel, Option<i64>)> = HashMap::new();
        let mut cells: [Vec<(i64, String, String)>; 5] = Default::default();
        for r in index.all(Layer::GridCells) {
            if let Record::GridCell(c) = &*r {
                tree.insert(c.id, (c.level, c.parent_id));
                cells[level_slot(c.level)].push((c.id, c.name.clone(), c.code.clone()));
            }
        }
        let mut ancestors: [HashMap<i64, i64>; 5] = Default::default();
        for &id in tree.keys() {
            let mut cur = id;
            // Five levels; a longer chain is a cycle in bad data.
            for _ in 0..8 {
                let Some(&(l, parent)) = tree.get(&cur) else {
                    break;
                };
                ancestors[level_slot(l)].insert(id, cur);
                match parent {
                    Some(p) => cur = p,
                    None => break,
                }
            }
        }
        let mut linked: HashMap<i64, Vec<(i64, SensorStatus)>> = HashMap::new();
        for r in index.all(Layer::Sensors) {
            if let Record::Sensor(s) = &*r {
                if let Some(p) = s.risk_point_id {
                    linked.entry(p).or_default().push((s.id, s.status));
                }
            }
        }
        let points = index
            .all(Layer::RiskPoints)
            .iter()
            .filter_map(|r| match &**r {
                Record::RiskPoint(p) => Some((p.id, p.grid_cell_id, p.level)),
                _ => None,
            })
            .collect();
        Structure {
            key,
            ancestors,
            cells,
            linked,
            points,
        }
    }
}

/// Counts per grid cell (one row of `GET /risk/grid-stats`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CellStats {
    pub id: i64,
    pub name: String,
    pub code: String,
    pub level: String,
    /// Risk points by live level.
    pub major: u32,
    pub large: u32,
    pub general: u32,
    pub low: u32,
    pub risk_points: u32,
    /// Risk points with at least one working linked sensor.
    pub covered: u32,
    /// `covered / risk_points` (1.0 for a cell without risk points).
    pub coverage: f64,
    pub open_alarms: u32,
    pub sensors: u32,
    pub offline_sensors: u32,
}

fn sensor_works(engine: &RiskEngine, s: &Sensor) -> bool {
    s.status == SensorStatus::Online && !engine.is_offline(s.id)
}

impl RiskEngine {
    fn point_json(&self, p: &RiskPoint, shown: RiskLevel, open: usize) -> Value {
        let (lon, lat) = anchor(&Record::RiskPoint(p.clone())).unwrap_or((0.0, 0.0));
        json!({
            "id": p.id,
            "name": p.name,
            "category": p.category,
            "registered_level": p.level,
            "level": shown,
            "colour": shown.colour(),
            "status": p.status,
            "grid_cell_id": p.grid_cell_id,
            "open_alarms": open,
            "lon": lon,
            "lat": lat,
        })
    }

    /// Risk points matching a filter, with their live level.
    pub fn risk_points(&self, f: &PointFilter) -> Result<Vec<Value>, RiskError> {
        let recs = match &f.bbox {
            Some(b) => self
                .index
                .bbox(Layer::RiskPoints, b)
                .map_err(|e| RiskError::BadRequest(e.to_string()))?,
            None => self.index.all(Layer::RiskPoints),
        };
        let book = self.book.read();
        let mut out = Vec::new();
        let mut points: Vec<&RiskPoint> = recs
            .iter()
            .filter_map(|r| match &**r {
                Record::RiskPoint(p) => Some(p),
                _ => None,
            })
            .collect();
        points.sort_by_key(|p| p.id);
        for p in points {
            if f.category.as_deref().is_some_and(|c| c != p.category) {
                continue;
            }
            if f.status.is_some_and(|s| s != p.status) {
                continue;
            }
            let shown = self.level_with(&book, p.id, p.level);
            if !f.levels.is_empty() && !f.levels.contains(&shown) {
                continue;
            }
            let open = book.by_point.get(&p.id).map(|s| s.len()).unwrap_or(0);
            out.push(self.point_json(p, shown, open));
            if out.len() >= f.limit {
                break;
            }
        }
        Ok(out)
    }

    fn point(&self, id: i64) -> Result<Arc<Record>, RiskError> {
        match self.index.get(Layer::RiskPoints, id) {
            Some(r) if matches!(&*r, Record::RiskPoint(_)) => Ok(r),
            _ => Err(RiskError::NotFound(format!(
                "risk point {id} does not exist"
            ))),
        }
    }

    /// One risk point with its sensors, their latest values, open alarms, plan and the
    /// people responsible.
    pub async fn risk_point(&self, id: i64) -> Result<Value, RiskError> {
        let rec = self.point(id)?;
        let Record::RiskPoint(p) = &*rec else {
            unreachable!("checked by point()")
        };
        let sensors: Vec<Sensor> = self
            .index
            .all(Layer::Sensors)
            .iter()
            .filter_map(|r| match &**r {
                Record::Sensor(s) if s.risk_point_id == Some(id) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let mut sensor_json = Vec::new();
        for s in &sensors {
            let latest = match self.state(s.id).and_then(|st| st.last) {
                Some(r) => Some(r),
                None => self.store.last_reading(s.id).await?,
            };
            sensor_json.push(json!({
                "id": s.id,
                "kind": s.kind,
                "code": s.code,
                "status": s.status,
                "offline": self.is_offline(s.id),
                "unit": self.rules.kind(s.kind).unit,
                "latest": latest,
                "lon": s.location.x(),
                "lat": s.location.y(),
            }));
        }
        let (shown, alarms) = {
            let book = self.book.read();
            let shown = self.level_with(&book, id, p.level);
            let mut alarms: Vec<_> = book
                .by_point
                .get(&id)
                .map(|ids| {
                    ids.iter()
                        .filter_map(|i| book.open.get(i).cloned())
                        .collect()
                })
                .unwrap_or_default();
            alarms.sort_by_key(|a: &super::model::Alarm| a.id);
            (shown, alarms)
        };
        let mut v = self.point_json(p, shown, alarms.len());
        let extra = json!({
            "responsible_unit": p.responsible_unit,
            "responsible_person": p.responsible_person,
            "responsible_phone": p.responsible_phone,
            "emergency_plan": p.emergency_plan,
            "last_review": p.last_review,
            "next_review": p.next_review,
            "sensors": sensor_json,
            "alarms": alarms,
        });
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        Ok(v)
    }

    /// Sensors near a risk point, of kinds that watch its category, not yet linked to it.
    pub fn suggested_sensors(&self, id: i64) -> Result<Vec<Value>, RiskError> {
        let rec = self.point(id)?;
        let Record::RiskPoint(p) = &*rec else {
            unreachable!("checked by point()")
        };
        let group = crate::model::Catalog::builtin()
            .risk_category(&p.category)
            .map(|c| c.group.clone())
            .unwrap_or_default();
        let kinds = self.rules.suggested_kinds(&group);
        let hits = self
            .index
            .within_distance(Layer::Sensors, &p.geometry, self.rules.suggest_radius_m)
            .map_err(|e| RiskError::BadRequest(e.to_string()))?;
        Ok(hits
            .into_iter()
            .filter_map(|h| match &*h.record {
                Record::Sensor(s) if s.risk_point_id != Some(id) && kinds.contains(&s.kind) => {
                    Some(json!({
                        "id": s.id,
                        "kind": s.kind,
                        "code": s.code,
                        "distance_m": (h.distance_m * 10.0).round() / 10.0,
                        "linked_to": s.risk_point_id,
                        "working": sensor_works(self, s),
                        "lon": s.location.x(),
                        "lat": s.location.y(),
                    }))
                }
                _ => None,
            })
            .take(self.rules.suggest_max)
            .collect())
    }

    /// The cached [`Structure`], rebuilt when the index has changed since it was built.
    pub(crate) fn structure(&self) -> Arc<Structure> {
        let key = (
            self.index.version(),
            self.edits.load(std::sync::atomic::Ordering::Acquire),
        );
        let mut cached = self.structure.lock();
        if let Some(s) = cached.as_ref().filter(|s| s.key == key) {
            return s.clone();
        }
        let built = Arc::new(Structure::build(&self.index, key));
        *cached = Some(built.clone());
        built
    }

    /// (linked, working, offline) sensors of a risk point.
    fn link_counts(&self, st: &Structure, book: &super::Book, point: i64) -> (u32, u32, u32) {
        let mut out = (0, 0, 0);
        for (id, status) in st.linked.get(&point).map(|v| v.as_slice()).unwrap_or(&[]) {
            let offline = book.offline_sensors.contains(id);
            out.0 += 1;
            if *status == SensorStatus::Online && !offline {
                out.1 += 1;
            }
            if offline || *status == SensorStatus::Offline {
                out.2 += 1;
            }
        }
        out
    }

    /// Per-cell statistics at a grid level, for the cells meeting `bbox` (all if none).
    pub fn grid_stats(
        &self,
        level: GridLevel,
        bbox: Option<&Bbox>,
    ) -> Result<Vec<CellStats>, RiskError> {
        let st = self.structure();
        let li = level_slot(level);
        let wanted: Option<std::collections::HashSet<i64>> = match bbox {
            Some(b) => Some(
                self.index
                    .bbox(Layer::GridCells, b)
                    .map_err(|e| RiskError::BadRequest(e.to_string()))?
                    .iter()
                    .map(|r| r.id())
                    .collect(),
            ),
            None => None,
        };
        let mut stats: HashMap<i64, CellStats> = st.cells[li]
            .iter()
            .filter(|(id, _, _)| wanted.as_ref().is_none_or(|w| w.contains(id)))
            .map(|(id, name, code)| {
                (
                    *id,
                    CellStats {
                        id: *id,
                        name: name.clone(),
                        code: code.clone(),
                        level: level.to_string(),
                        coverage: 1.0,
                        ..CellStats::default()
                    },
                )
            })
            .collect();
        if stats.is_empty() {
            return Ok(Vec::new());
        }
        let book = self.book.read();
        for (id, grid_cell, registered) in &st.points {
            let Some(cell) = grid_cell.and_then(|g| st.ancestors[li].get(&g)) else {
                continue;
            };
            let Some(s) = stats.get_mut(cell) else {
                continue;
            };
            s.risk_points += 1;
            match self.level_with(&book, *id, *registered) {
                RiskLevel::Major => s.major += 1,
                RiskLevel::Large => s.large += 1,
                RiskLevel::General => s.general += 1,
                RiskLevel::Low => s.low += 1,
            }
            let (n, working, offline) = self.link_counts(&st, &book, *id);
            s.sensors += n;
            s.offline_sensors += offline;
            if working > 0 {
                s.covered += 1;
            }
            s.open_alarms += book.by_point.get(id).map(|a| a.len() as u32).unwrap_or(0);
        }
        let mut out: Vec<CellStats> = stats.into_values().collect();
        for s in &mut out {
            if s.risk_points > 0 {
                s.coverage = f64::from(s.covered) / f64::from(s.risk_points);
            }
        }
        out.sort_by_key(|s| s.id);
        Ok(out)
    }

    /// Which risk points have no working sensor: totals, per category, per grid cell at
    /// `level`, and the ids of uncovered points (at most `limit`).
    pub fn coverage(
        &self,
        bbox: Option<&Bbox>,
        level: GridLevel,
        limit: usize,
    ) -> Result<Value, RiskError> {
        let recs = match bbox {
            Some(b) => self
                .index
                .bbox(Layer::RiskPoints, b)
                .map_err(|e| RiskError::BadRequest(e.to_string()))?,
            None => self.index.all(Layer::RiskPoints),
        };
        let st = self.structure();
        let up = &st.ancestors[level_slot(level)];
        let book = self.book.read();
        let (mut total, mut linked, mut working) = (0u32, 0u32, 0u32);
        let mut by_cat: HashMap<String, (u32, u32, u32)> = HashMap::new();
        let mut by_cell: HashMap<i64, (u32, u32, u32)> = HashMap::new();
        let mut uncovered = Vec::new();
        for r in &recs {
            let Record::RiskPoint(p) = &**r else { continue };
            if p.status == RiskStatus::Closed {
                continue;
            }
            let (n, w, _) = self.link_counts(&st, &book, p.id);
            total += 1;
            let l = u32::from(n > 0);
            let ok = u32::from(w > 0);
            linked += l;
            working += ok;
            let c = by_cat.entry(p.category.clone()).or_default();
            *c = (c.0 + 1, c.1 + l, c.2 + ok);
            if let Some(cell) = p.grid_cell_id.and_then(|g| up.get(&g)) {
                let c = by_cell.entry(*cell).or_default();
                *c = (c.0 + 1, c.1 + l, c.2 + ok);
            }
            if ok == 0 {
                uncovered.push(p.id);
            }
        }
        drop(book);
        uncovered.sort_unstable();
        let uncovered_total = uncovered.len();
        uncovered.truncate(limit);
        let pct = |a: u32, b: u32| {
            if b == 0 {
                1.0
            } else {
                f64::from(a) / f64::from(b)
            }
        };
        let mut cats: Vec<Value> = by_cat
            .into_iter()
            .map(|(k, (t, l, w))| json!({"category": k, "risk_points": t, "linked": l, "working": w, "coverage": pct(w, t)}))
            .collect();
        cats.sort_by(|a, b| a["category"].as_str().cmp(&b["category"].as_str()));
        let mut cells: Vec<Value> = by_cell
            .into_iter()
            .map(|(k, (t, l, w))| json!({"grid_cell_id": k, "risk_points": t, "linked": l, "working": w, "coverage": pct(w, t)}))
            .collect();
        cells.sort_by_key(|c| c["grid_cell_id"].as_i64());
        Ok(json!({
            "risk_points": total,
            "linked": linked,
            "working": working,
            "coverage": pct(working, total),
            "target": 1.0,
            "by_category": cats,
            "grid_level": level,
            "by_grid_cell": cells,
            "uncovered_total": uncovered_total,
            "uncovered": uncovered,
        }))
    }

    /// Open alarms as a GeoJSON FeatureCollection of points weighted by severity
    /// (notice 1, alarm 3, emergency 5): the source of a MapLibre heat-map layer.
    pub fn alarm_density(&self, bbox: Option<&Bbox>) -> Value {
        let book = self.book.read();
        let mut alarms: Vec<&super::model::Alarm> = book
            .open
            .values()
            .filter(|a| {
                bbox.is_none_or(|b| {
                    a.lon >= b.min_x()
                        && a.lon <= b.max_x()
                        && a.lat >= b.min_y()
                        && a.lat <= b.max_y()
                })
            })
            .collect();
        alarms.sort_by_key(|a| a.id);
        let features: Vec<Value> = alarms
            .iter()
            .map(|a| {
                let weight = match a.severity {
                    super::model::Severity::Notice => 1,
                    super::model::Severity::Alarm => 3,
                    super::model::Severity::Emergency => 5,
                };
                json!({
                    "type": "Feature",
                    "id": a.id,
                    "geometry": {"type": "Point", "coordinates": [a.lon, a.lat]},
                    "properties": {"id": a.id, "severity": a.severity, "rule": a.rule, "status": a.status, "sensor_id": a.sensor_id, "weight": weight},
                })
            })
            .collect();
        json!({"type": "FeatureCollection", "features": features})
    }

    /// Grid statistics as a GeoJSON FeatureCollection of the cells' polygons (the source
    /// of a choropleth layer).
    pub fn grid_stats_geojson(&self, stats: &[CellStats]) -> Value {
        let features: Vec<Value> = stats
            .iter()
            .filter_map(|s| {
                let rec = self.index.get(Layer::GridCells, s.id)?;
                let Record::GridCell(c) = &*rec else {
                    return None;
                };
                let geometry = serde_json::to_value(c).ok()?.get("geometry").cloned()?;
                Some(json!({
                    "type": "Feature",
                    "id": s.id,
                    "geometry": geometry,
                    "properties": serde_json::to_value(s).ok()?,
                }))
            })
            .collect();
        json!({"type": "FeatureCollection", "features": features})
    }
}
