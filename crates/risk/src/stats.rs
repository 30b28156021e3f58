//! Views of the risk one map computed from the index and the alarm book: risk points at
//! their live level (list and detail), suggested sensors, the coverage report and per-grid
//! statistics rolled up through the grid hierarchy (`parent_id`), so a risk point filed
//! under a micro-grid counts in its grid, community, street and district.

use super::structure::{level_index, level_slot, PointNode, SensorCounts, Structure};
use super::{anchor, RiskEngine, RiskError};
use lifeline_model::{
    Bbox, GridLevel, Layer, Record, RiskLevel, RiskPoint, RiskStatus, Sensor, SensorStatus,
};
use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;
use serde_json::{json, Value};
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
    /// Sensors linked to the cell's risk points (counted in the risk point's cell).
    pub sensors: u32,
    /// Of those, registered offline or with an open offline alarm.
    pub offline_sensors: u32,
    /// Sensors linked to no risk point that stand in the cell (by position).
    pub unlinked_sensors: u32,
    /// Of those, registered online with no open offline alarm.
    pub unlinked_working: u32,
    /// Of those, registered offline or with an open offline alarm.
    pub unlinked_offline: u32,
}

/// The count of one risk level in a row.
fn level_count(s: &mut CellStats, level: RiskLevel) -> &mut u32 {
    match level {
        RiskLevel::Major => &mut s.major,
        RiskLevel::Large => &mut s.large,
        RiskLevel::General => &mut s.general,
        RiskLevel::Low => &mut s.low,
    }
}

/// A coverage row: (risk points, linked, working) and unlinked sensors (all, working,
/// offline).
#[derive(Default)]
struct CellCoverage {
    points: (u32, u32, u32),
    unlinked: (u32, u32, u32),
}

/// The open offline alarms of one request, mapped onto the structure: per risk point and
/// per cell of unlinked sensors, (registered-online sensors now offline, sensors offline
/// by alarm but not registered offline).
struct LiveOffline {
    point: HashMap<i64, (u32, u32)>,
    cell: HashMap<i64, (u32, u32)>,
}

impl LiveOffline {
    fn of(st: &Structure, book: &super::Book) -> LiveOffline {
        let mut out = LiveOffline {
            point: HashMap::default(),
            cell: HashMap::default(),
        };
        for s in &book.offline_sensors {
            let Some(n) = st.sensors.get(s) else { continue };
            let d = (
                u32::from(n.status == SensorStatus::Online),
                u32::from(n.status != SensorStatus::Offline),
            );
            let slot = match (n.point, n.cell) {
                (Some(p), _) => out.point.entry(p).or_default(),
                (None, Some(c)) => out.cell.entry(c).or_default(),
                (None, None) => continue,
            };
            *slot = (slot.0 + d.0, slot.1 + d.1);
        }
        out
    }

    /// (linked, working, offline) sensors of a risk point.
    fn linked(&self, st: &Structure, point: i64) -> (u32, u32, u32) {
        let Some(c) = st.links.get(&point) else {
            return (0, 0, 0);
        };
        let off = self.point.get(&point).copied().unwrap_or_default();
        (c.total, c.online.saturating_sub(off.0), c.offline + off.1)
    }

    /// (all, working, offline) unlinked sensors standing in one cell (not below it).
    fn unlinked(&self, cell: i64, c: &SensorCounts) -> (u32, u32, u32) {
        let off = self.cell.get(&cell).copied().unwrap_or_default();
        (c.total, c.online.saturating_sub(off.0), c.offline + off.1)
    }
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
            let latest = self.latest(s.id).await?;
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
        let group = lifeline_model::Catalog::builtin()
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

    /// Per-cell statistics at a grid level, for the cells meeting `bbox` (all if none).
    ///
    /// The structure keeps each cell's static totals (risk points by registered level,
    /// links, unlinked sensors); a request reads those for the wanted cells and corrects
    /// them with what the alarm book says now — raised levels and open alarms of the risk
    /// points that have some, sensors with an open offline alarm — so its cost follows the
    /// number of cells and live alarms, not the size of the city.
    pub fn grid_stats(
        &self,
        level: GridLevel,
        bbox: Option<&Bbox>,
    ) -> Result<Vec<CellStats>, RiskError> {
        let st = self.stats.read();
        let li = level_slot(level);
        let wanted: Vec<i64> = match bbox {
            Some(b) => st.cells_in(level, b),
            None => st.by_level[li].iter().copied().collect(),
        };
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let n = |v: i64| u32::try_from(v.max(0)).unwrap_or(u32::MAX);
        let mut stats: HashMap<i64, CellStats> = wanted
            .iter()
            .filter_map(|id| {
                let c = st.cells.get(id)?;
                let a = st.agg[li].get(id).copied().unwrap_or_default();
                let by = |l: RiskLevel| n(a.by_level[level_index(l)]);
                Some((
                    *id,
                    CellStats {
                        id: *id,
                        name: c.name.clone(),
                        code: c.code.clone(),
                        level: level.to_string(),
                        major: by(RiskLevel::Major),
                        large: by(RiskLevel::Large),
                        general: by(RiskLevel::General),
                        low: by(RiskLevel::Low),
                        risk_points: n(a.risk_points),
                        covered: n(a.covered),
                        coverage: 1.0,
                        open_alarms: 0,
                        sensors: n(a.sensors),
                        offline_sensors: n(a.offline),
                        unlinked_sensors: n(a.unlinked),
                        unlinked_working: n(a.unlinked_online),
                        unlinked_offline: n(a.unlinked_offline),
                    },
                ))
            })
            .collect();
        let up = &st.ancestors[li];
        let book = self.book.read();
        let live = LiveOffline::of(&st, &book);
        let cell_of = |point: &i64| -> Option<(i64, &PointNode)> {
            let node = st.points.get(point)?;
            Some((*node.cell.as_ref().and_then(|c| up.get(c))?, node))
        };
        for (p, alarms) in &book.by_point {
            if alarms.is_empty() {
                continue;
            }
            let Some((cell, node)) = cell_of(p) else {
                continue;
            };
            let Some(s) = stats.get_mut(&cell) else {
                continue;
            };
            s.open_alarms += alarms.len() as u32;
            let shown = self.level_with(&book, *p, node.level);
            if shown != node.level {
                let was = level_count(s, node.level);
                *was = was.saturating_sub(1);
                *level_count(s, shown) += 1;
            }
        }
        for (p, (off_online, off_other)) in &live.point {
            let Some(s) = cell_of(p).and_then(|(cell, _)| stats.get_mut(&cell)) else {
                continue;
            };
            let online = st.links.get(p).map_or(0, |l| l.online);
            s.offline_sensors += off_other;
            if online > 0 && online <= *off_online {
                s.covered = s.covered.saturating_sub(1);
            }
        }
        for (c, (off_online, off_other)) in &live.cell {
            let Some(s) = up.get(c).and_then(|cell| stats.get_mut(cell)) else {
                continue;
            };
            s.unlinked_working = s.unlinked_working.saturating_sub(*off_online);
            s.unlinked_offline += off_other;
        }
        drop(book);
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
    /// `level`, and the ids of uncovered points (at most `limit`); with the sensors linked
    /// to no risk point, per grid cell (where they stand) and in total.
    pub fn coverage(
        &self,
        bbox: Option<&Bbox>,
        level: GridLevel,
        limit: usize,
    ) -> Result<Value, RiskError> {
        let in_bbox: Option<std::collections::HashSet<i64>> = match bbox {
            Some(b) => Some(
                self.index
                    .bbox(Layer::RiskPoints, b)
                    .map_err(|e| RiskError::BadRequest(e.to_string()))?
                    .iter()
                    .map(|r| r.id())
                    .collect(),
            ),
            None => None,
        };
        let st = self.stats.read();
        let up = &st.ancestors[level_slot(level)];
        let book = self.book.read();
        let live = LiveOffline::of(&st, &book);
        let (mut total, mut linked, mut working) = (0u32, 0u32, 0u32);
        let mut by_cat: HashMap<&str, (u32, u32, u32)> = HashMap::default();
        let mut by_cell: HashMap<i64, CellCoverage> = HashMap::default();
        let mut uncovered = Vec::new();
        for (id, p) in &st.points {
            if p.status == RiskStatus::Closed || in_bbox.as_ref().is_some_and(|w| !w.contains(id)) {
                continue;
            }
            let (n, w, _) = live.linked(&st, *id);
            total += 1;
            let l = u32::from(n > 0);
            let ok = u32::from(w > 0);
            linked += l;
            working += ok;
            let c = by_cat.entry(p.category.as_str()).or_default();
            *c = (c.0 + 1, c.1 + l, c.2 + ok);
            if let Some(cell) = p.cell.and_then(|g| up.get(&g)) {
                let c = by_cell.entry(*cell).or_default();
                c.points = (c.points.0 + 1, c.points.1 + l, c.points.2 + ok);
            }
            if ok == 0 {
                uncovered.push(*id);
            }
        }
        // Sensors linked to no risk point, counted in the cell they stand in.
        let mut unlinked_total = (0u32, 0u32, 0u32);
        let mut add_unlinked = |cell: i64, n: (u32, u32, u32)| {
            unlinked_total = (
                unlinked_total.0 + n.0,
                unlinked_total.1 + n.1,
                unlinked_total.2 + n.2,
            );
            if let Some(c) = up.get(&cell) {
                let c = by_cell.entry(*c).or_default();
                c.unlinked = (c.unlinked.0 + n.0, c.unlinked.1 + n.1, c.unlinked.2 + n.2);
            }
        };
        match bbox {
            None => {
                for (cell, u) in &st.under {
                    if u.unlinked.total > 0 {
                        add_unlinked(*cell, live.unlinked(*cell, &u.unlinked));
                    }
                }
            }
            Some(b) => {
                for (sid, s) in &st.sensors {
                    let (Some(cell), None) = (s.cell, s.point) else {
                        continue;
                    };
                    if s.lon < b.min_x()
                        || s.lon > b.max_x()
                        || s.lat < b.min_y()
                        || s.lat > b.max_y()
                    {
                        continue;
                    }
                    let off = book.offline_sensors.contains(sid);
                    let works = s.status == SensorStatus::Online && !off;
                    let offline = off || s.status == SensorStatus::Offline;
                    add_unlinked(cell, (1, u32::from(works), u32::from(offline)));
                }
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
            .map(|(k, c)| {
                let (t, l, w) = c.points;
                json!({
                    "grid_cell_id": k, "risk_points": t, "linked": l, "working": w,
                    "coverage": pct(w, t),
                    "unlinked_sensors": c.unlinked.0, "unlinked_working": c.unlinked.1,
                    "unlinked_offline": c.unlinked.2,
                })
            })
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
            "unlinked_sensors": unlinked_total.0,
            "unlinked_working": unlinked_total.1,
            "unlinked_offline": unlinked_total.2,
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
