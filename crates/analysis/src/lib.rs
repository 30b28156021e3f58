//! Analysis beyond OGC API – Features, over the in-memory index, measured in metres in the
//! deployment's projected CRS: pipelines within a distance of a geometry with lengths by
//! kind and owner; a network-wide clearance audit (pipes of two kinds crossing, or closer
//! than the horizontal clearance of the rule table `data/rules/clearances.toml`, loaded
//! through [`lifeline_excavation::rules::Rules`]), with the vertical clearance at each
//! crossing checked against the rule table's vertical clearances where both depths are
//! known; per-grid-cell pipeline statistics; and the sensors nearest a point. The use cases
//! the HTTP layer calls — access, parameters, the blocking pool, GeoJSON and CSV — are in
//! [`service`].

pub mod service;

use geo::{BooleanOps, Euclidean, Geometry, Intersects, Length, MultiLineString};
use lifeline_excavation::rules::Rules;
use lifeline_index::SpatialIndex;
use lifeline_model::{Bbox, GridLevel, Layer, PipeKind, Pipeline, Record, SensorKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why an analysis request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A parameter the client got wrong.
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    Index(#[from] lifeline_index::IndexError),
    #[error(transparent)]
    Crs(#[from] lifeline_model::crs::CrsError),
    /// A well-formed but invalid value (a box out of range).
    #[error(transparent)]
    Model(#[from] lifeline_model::ModelError),
    /// The caller's role is below what the analysis needs.
    #[error(transparent)]
    Forbidden(#[from] lifeline_model::access::Forbidden),
    /// The analysis task on the blocking pool did not finish.
    #[error("analysis task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Most pipes one audit examines (a city-wide audit is a batch job, not a request).
pub const MAX_AUDIT_PIPES: usize = 200_000;

fn pipe(r: &Record) -> Option<&Pipeline> {
    match r {
        Record::Pipeline(p) => Some(p),
        _ => None,
    }
}

/// Length of a lon/lat geometry in metres (projected).
pub fn length_m(index: &SpatialIndex, g: &Geometry<f64>) -> Result<f64, AnalysisError> {
    let m = index.crs().to_metric(g)?;
    Ok(match &m {
        Geometry::LineString(l) => Euclidean.length(l),
        Geometry::MultiLineString(l) => Euclidean.length(l),
        _ => 0.0,
    })
}

/// A pipeline found by [`pipelines_within`].
#[derive(Debug, Clone, Serialize)]
pub struct WithinHit {
    pub id: i64,
    pub kind: PipeKind,
    pub owner_id: i64,
    pub distance_m: f64,
    pub length_m: f64,
}

/// Totals of [`pipelines_within`].
#[derive(Debug, Clone, Serialize)]
pub struct WithinSummary {
    pub count: usize,
    pub total_length_m: f64,
    pub length_by_kind_m: BTreeMap<String, f64>,
    pub length_by_owner_m: BTreeMap<i64, f64>,
    #[serde(skip)]
    pub hits: Vec<(WithinHit, Arc<Record>)>,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Pipelines within `distance_m` of a lon/lat geometry, with whole-pipe lengths by kind and
/// owner.
pub fn pipelines_within(
    index: &SpatialIndex,
    geom: &Geometry<f64>,
    distance_m: f64,
    kind: Option<PipeKind>,
) -> Result<WithinSummary, AnalysisError> {
    let hits = index.within_distance(Layer::Pipelines, geom, distance_m)?;
    let mut s = WithinSummary {
        count: 0,
        total_length_m: 0.0,
        length_by_kind_m: BTreeMap::new(),
        length_by_owner_m: BTreeMap::new(),
        hits: Vec::new(),
    };
    for h in hits {
        let Some(p) = pipe(&h.record) else { continue };
        if kind.is_some_and(|k| k != p.kind) {
            continue;
        }
        let len = length_m(index, &Geometry::LineString(p.geometry.clone()))?;
        s.count += 1;
        s.total_length_m += len;
        *s.length_by_kind_m.entry(p.kind.to_string()).or_default() += len;
        *s.length_by_owner_m.entry(p.owner_id).or_default() += len;
        s.hits.push((
            WithinHit {
                id: p.id,
                kind: p.kind,
                owner_id: p.owner_id,
                distance_m: round3(h.distance_m),
                length_m: round3(len),
            },
            h.record.clone(),
        ));
    }
    s.total_length_m = round3(s.total_length_m);
    s.length_by_kind_m
        .values_mut()
        .for_each(|v| *v = round3(*v));
    s.length_by_owner_m
        .values_mut()
        .for_each(|v| *v = round3(*v));
    Ok(s)
}

/// One finding of the clearance audit.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub pipe_id: i64,
    pub pipe_kind: PipeKind,
    pub other_id: i64,
    pub other_kind: PipeKind,
    /// `crossing` (the lines meet) or `parallel` (closer than the clearance without meeting).
    pub relation: &'static str,
    pub distance_m: f64,
    pub required_m: f64,
    /// The rule that set `required_m` (`max_distance` when the caller gave the distance).
    pub rule_id: String,
    pub rule_confirmed: bool,
    /// Crossings only: depth of the top of each pipe below ground at the crossing point
    /// (interpolated between the pipe's start and end depths), m.
    pub pipe_depth_m: Option<f64>,
    pub other_depth_m: Option<f64>,
    /// Crossings only: the gap between the upper pipe's bottom (top depth + outside size;
    /// size 0 when unknown, see `size_known`) and the lower pipe's top, m.
    pub vertical_clearance_m: Option<f64>,
    /// The stricter of the two pipes' vertical clearances in the rule table, m.
    pub required_vertical_m: Option<f64>,
    pub vertical_rule_id: Option<String>,
    /// Whether both pipes' outside sizes are recorded (otherwise the gap is an upper bound).
    pub size_known: bool,
    /// `ok`, `violation`, `unknown_depth` (a depth is not recorded), `no_rule` (no vertical
    /// rule for either kind), or `not_applicable` (parallel pairs: horizontal clearance).
    pub vertical: &'static str,
    #[serde(skip)]
    pub geometry: MultiLineString<f64>,
}

/// The vertical part of a crossing finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Vertical {
    pub pipe_depth_m: Option<f64>,
    pub other_depth_m: Option<f64>,
    pub clearance_m: Option<f64>,
    pub required_m: Option<f64>,
    pub rule_id: Option<String>,
    pub size_known: bool,
    pub status: &'static str,
}

/// The first point where two lines meet, with its fraction along each (by planar length).
fn crossing_point(a: &geo::LineString<f64>, b: &geo::LineString<f64>) -> Option<(f64, f64)> {
    use geo::line_intersection::{line_intersection, LineIntersection};
    let frac = |l: &geo::LineString<f64>, seg: usize, p: geo::Coord<f64>| -> f64 {
        let lens: Vec<f64> = l.lines().map(|s| Euclidean.length(&s)).collect();
        let total: f64 = lens.iter().sum();
        if total <= 0.0 {
            return 0.0;
        }
        let before: f64 = lens[..seg].iter().sum();
        let s = l.lines().nth(seg).map(|s| s.start).unwrap_or(p);
        let along = ((p.x - s.x).powi(2) + (p.y - s.y).powi(2)).sqrt();
        ((before + along) / total).clamp(0.0, 1.0)
    };
    for (i, sa) in a.lines().enumerate() {
        for (j, sb) in b.lines().enumerate() {
            let p = match line_intersection(sa, sb) {
                Some(LineIntersection::SinglePoint { intersection, .. }) => intersection,
                Some(LineIntersection::Collinear { intersection }) => intersection.start,
                None => continue,
            };
            return Some((frac(a, i, p), frac(b, j, p)));
        }
    }
    None
}

/// Top-of-pipe depth at fraction `t` along the pipe; one recorded end stands for both.
fn depth_at(p: &Pipeline, t: f64) -> Option<f64> {
    match (p.depth_start_m, p.depth_end_m) {
        (Some(s), Some(e)) => Some(s + (e - s) * t),
        (Some(x), None) | (None, Some(x)) => Some(x),
        (None, None) => None,
    }
}

/// The strictest vertical clearance the rules give a pipe, with its rule id.
fn vertical_rule(rules: &Rules, p: &Pipeline) -> Option<(f64, String)> {
    rules
        .vertical
        .iter()
        .filter(|r| r.applies_to.matches(p))
        .map(|r| (r.clearance_m, r.id.clone()))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// The vertical clearance of two crossing pipes against the rule table.
pub fn vertical_check(rules: &Rules, a: &Pipeline, b: &Pipeline) -> Vertical {
    let required = match (vertical_rule(rules, a), vertical_rule(rules, b)) {
        (Some(x), Some(y)) => Some(if x.0 >= y.0 { x } else { y }),
        (x, y) => x.or(y),
    };
    let (fa, fb) = crossing_point(&a.geometry, &b.geometry).unwrap_or((0.5, 0.5));
    let (da, db) = (depth_at(a, fa), depth_at(b, fb));
    let size_known = a.size_m().is_some() && b.size_m().is_some();
    let clearance = match (da, db) {
        (Some(da), Some(db)) => {
            // The upper pipe's bottom to the lower pipe's top.
            let (upper_top, upper, lower_top) = if da <= db { (da, a, db) } else { (db, b, da) };
            Some(round3(
                lower_top - (upper_top + upper.size_m().unwrap_or(0.0)),
            ))
        }
        _ => None,
    };
    let status = match (clearance, &required) {
        (None, _) => "unknown_depth",
        (Some(_), None) => "no_rule",
        (Some(c), Some((r, _))) if c >= *r => "ok",
        _ => "violation",
    };
    Vertical {
        pipe_depth_m: da.map(round3),
        other_depth_m: db.map(round3),
        clearance_m: clearance,
        required_m: required.as_ref().map(|r| r.0),
        rule_id: required.map(|r| r.1),
        size_known,
        status,
    }
}

/// The strictest horizontal clearance the rules give a pipe, with its rule.
fn clearance(rules: &Rules, p: &Pipeline) -> Option<(f64, String, bool)> {
    rules
        .horizontal
        .iter()
        .filter(|r| r.applies_to.matches(p))
        .map(|r| (r.clearance_m, r.id.clone(), r.provenance.confirmed))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// Pipes of `kind` crossing, or closer than the required horizontal clearance to, pipes of
/// `other` (optionally inside a box). The required distance is the larger of the two pipes'
/// rule clearances, or `max_distance` when given. Pairs appear once.
pub fn clearance_audit(
    index: &SpatialIndex,
    rules: &Rules,
    kind: PipeKind,
    other: PipeKind,
    bbox: Option<&Bbox>,
    max_distance: Option<f64>,
) -> Result<Vec<Finding>, AnalysisError> {
    if let Some(d) = max_distance {
        if !d.is_finite() || !(0.0..=100.0).contains(&d) {
            return Err(AnalysisError::Bad("max_distance must be 0..100 m".into()));
        }
    }
    let pipes = match bbox {
        Some(b) => index.bbox(Layer::Pipelines, b)?,
        None => index.all(Layer::Pipelines),
    };
    let firsts: Vec<Arc<Record>> = pipes
        .into_iter()
        .filter(|r| pipe(r).is_some_and(|p| p.kind == kind))
        .collect();
    if firsts.len() > MAX_AUDIT_PIPES {
        return Err(AnalysisError::Bad(format!(
            "{} {kind} pipes in scope; narrow it with bbox (at most {MAX_AUDIT_PIPES})",
            firsts.len()
        )));
    }
    // The widest clearance any `other` pipe can need bounds the search radius.
    let widest = rules
        .horizontal
        .iter()
        .filter(|r| r.applies_to.kinds.contains(&other) || r.applies_to.kinds.contains(&kind))
        .map(|r| r.clearance_m)
        .fold(0.0, f64::max);
    let radius = max_distance.unwrap_or(widest);
    let mut out = Vec::new();
    for r in firsts {
        let Some(a) = pipe(&r) else { continue };
        let ga = Geometry::LineString(a.geometry.clone());
        for h in index.within_distance(Layer::Pipelines, &ga, radius)? {
            let Some(b) = pipe(&h.record) else { continue };
            if b.kind != other || b.id == a.id || (kind == other && b.id < a.id) {
                continue;
            }
            let (required, rule_id, confirmed) = match max_distance {
                Some(d) => (d, "max_distance".to_string(), false),
                None => {
                    let ca = clearance(rules, a);
                    let cb = clearance(rules, b);
                    match (ca, cb) {
                        (Some(x), Some(y)) => {
                            if x.0 >= y.0 {
                                x
                            } else {
                                y
                            }
                        }
                        (Some(x), None) | (None, Some(x)) => x,
                        (None, None) => continue,
                    }
                }
            };
            let crossing = a.geometry.intersects(&b.geometry);
            if !crossing && h.distance_m >= required {
                continue;
            }
            let v = if crossing {
                vertical_check(rules, a, b)
            } else {
                Vertical {
                    pipe_depth_m: None,
                    other_depth_m: None,
                    clearance_m: None,
                    required_m: None,
                    rule_id: None,
                    size_known: a.size_m().is_some() && b.size_m().is_some(),
                    status: "not_applicable",
                }
            };
            out.push(Finding {
                pipe_id: a.id,
                pipe_kind: a.kind,
                other_id: b.id,
                other_kind: b.kind,
                relation: if crossing { "crossing" } else { "parallel" },
                distance_m: round3(h.distance_m),
                required_m: required,
                rule_id,
                rule_confirmed: confirmed,
                pipe_depth_m: v.pipe_depth_m,
                other_depth_m: v.other_depth_m,
                vertical_clearance_m: v.clearance_m,
                required_vertical_m: v.required_m,
                vertical_rule_id: v.rule_id,
                size_known: v.size_known,
                vertical: v.status,
                geometry: MultiLineString(vec![a.geometry.clone(), b.geometry.clone()]),
            });
        }
    }
    out.sort_by_key(|f| (f.pipe_id, f.other_id));
    Ok(out)
}

/// Pipeline statistics of one grid cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellStats {
    pub cell_id: i64,
    pub name: String,
    pub code: String,
    pub total_length_m: f64,
    pub length_by_kind_m: BTreeMap<String, f64>,
    pub length_by_material_m: BTreeMap<String, f64>,
    /// Length-weighted mean age in years of the pipes that record `year_built`.
    pub mean_age_years: Option<f64>,
    #[serde(skip)]
    pub geometry: geo::MultiPolygon<f64>,
}

/// Per cell of `level` (inside `bbox` if given): the length of pipe inside the cell, by
/// kind and by material, and the length-weighted mean age. Pipes are clipped to each cell.
pub fn grid_stats(
    index: &SpatialIndex,
    level: GridLevel,
    bbox: Option<&Bbox>,
    current_year: i32,
) -> Result<Vec<CellStats>, AnalysisError> {
    let cells = match bbox {
        Some(b) => index.bbox(Layer::GridCells, b)?,
        None => index.all(Layer::GridCells),
    };
    let mut out = Vec::new();
    for c in cells {
        let Record::GridCell(cell) = &*c else {
            continue;
        };
        if cell.level != level {
            continue;
        }
        let Some(cb) = Bbox::of(&cell.geometry) else {
            continue;
        };
        let mut s = CellStats {
            cell_id: cell.id,
            name: cell.name.clone(),
            code: cell.code.clone(),
            total_length_m: 0.0,
            length_by_kind_m: BTreeMap::new(),
            length_by_material_m: BTreeMap::new(),
            mean_age_years: None,
            geometry: cell.geometry.clone(),
        };
        let (mut age_sum, mut age_len) = (0.0, 0.0);
        for r in index.bbox(Layer::Pipelines, &cb)? {
            let Some(p) = pipe(&r) else { continue };
            let inside = cell
                .geometry
                .clip(&MultiLineString(vec![p.geometry.clone()]), false);
            if inside.0.is_empty() {
                continue;
            }
            let len = length_m(index, &Geometry::MultiLineString(inside))?;
            if len <= 0.0 {
                continue;
            }
            s.total_length_m += len;
            *s.length_by_kind_m.entry(p.kind.to_string()).or_default() += len;
            let mat = p.material.clone().unwrap_or_else(|| "unknown".into());
            *s.length_by_material_m.entry(mat).or_default() += len;
            if let Some(y) = p.year_built {
                age_sum += f64::from(current_year - y) * len;
                age_len += len;
            }
        }
        s.total_length_m = round3(s.total_length_m);
        s.length_by_kind_m
            .values_mut()
            .for_each(|v| *v = round3(*v));
        s.length_by_material_m
            .values_mut()
            .for_each(|v| *v = round3(*v));
        s.mean_age_years = (age_len > 0.0).then(|| (age_sum / age_len * 10.0).round() / 10.0);
        out.push(s);
    }
    out.sort_by_key(|s| s.cell_id);
    Ok(out)
}

/// The `k` sensors nearest a point (of one kind if given), nearest first.
pub fn nearest_sensors(
    index: &SpatialIndex,
    lon: f64,
    lat: f64,
    k: usize,
    kind: Option<SensorKind>,
    max_distance: Option<f64>,
) -> Result<Vec<lifeline_index::Hit>, AnalysisError> {
    if !(1..=1000).contains(&k) {
        return Err(AnalysisError::Bad("k must be 1..1000".into()));
    }
    Bbox::new(lon, lat, lon, lat).map_err(|e| AnalysisError::Bad(format!("lon/lat: {e}")))?;
    let want = if kind.is_some() { usize::MAX } else { k };
    let mut hits = Vec::new();
    for h in index.nearest(Layer::Sensors, lon, lat, want.min(1_000_000), max_distance)? {
        if let (Some(kd), Record::Sensor(s)) = (kind, &*h.record) {
            if s.kind != kd {
                continue;
            }
        }
        hits.push(h);
        if hits.len() >= k {
            break;
        }
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::LineString;
    use lifeline_model::crs::MetricCrs;
    use lifeline_model::{Dataset, Owner};

    fn pipe(
        id: i64,
        kind: PipeKind,
        line: Vec<(f64, f64)>,
        depths: (Option<f64>, Option<f64>),
    ) -> Pipeline {
        Pipeline {
            diameter_mm: Some(300.0),
            depth_start_m: depths.0,
            depth_end_m: depths.1,
            ..Pipeline::new(id, kind, 1, LineString::from(line))
        }
    }

    /// A water main west–east and a gas pipe south–north crossing at its middle.
    fn pair(gas_depths: (Option<f64>, Option<f64>)) -> (Pipeline, Pipeline) {
        (
            pipe(
                1,
                PipeKind::WaterSupply,
                vec![(106.500, 29.5), (106.502, 29.5)],
                (Some(1.0), Some(1.0)),
            ),
            pipe(
                2,
                PipeKind::Gas,
                vec![(106.501, 29.499), (106.501, 29.501)],
                gas_depths,
            ),
        )
    }

    #[test]
    fn vertical_clearance_at_crossings() {
        let rules = Rules::builtin();
        let req = vertical_rule(&rules, &pair((None, None)).0).map(|r| r.0);
        assert!(
            req.is_some(),
            "the rule table has a vertical rule for water"
        );
        let req = req.unwrap();
        // Water top 1.0 m + 0.3 m pipe = bottom 1.3 m; gas top just below it: too close.
        let (w, g) = pair((Some(1.3 + req / 2.0), Some(1.3 + req / 2.0)));
        let v = vertical_check(&rules, &w, &g);
        assert_eq!(v.status, "violation", "{v:?}");
        assert!((v.clearance_m.unwrap() - req / 2.0).abs() < 1e-3, "{v:?}");
        // Depth interpolated along the gas pipe: 1.0 m at its start, 3.0 m at its end, so
        // 2.0 m at the crossing in its middle; gap 0.7 m.
        let (w, g) = pair((Some(1.0), Some(3.0)));
        let v = vertical_check(&rules, &w, &g);
        assert!((v.other_depth_m.unwrap() - 2.0).abs() < 1e-3, "{v:?}");
        assert_eq!(v.status, if 0.7 >= req { "ok" } else { "violation" });
        assert!((v.clearance_m.unwrap() - 0.7).abs() < 1e-3);
        // Unknown depth is flagged, never passed.
        let (w, g) = pair((None, None));
        assert_eq!(vertical_check(&rules, &w, &g).status, "unknown_depth");
    }

    #[test]
    fn audit_reports_vertical_for_crossings() {
        let (w, g) = pair((Some(1.35), Some(1.35)));
        let index = SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap());
        index
            .load(Dataset {
                owners: vec![Owner {
                    id: 1,
                    name: "o".into(),
                    emergency_contact: "d".into(),
                    emergency_phone: "1".into(),
                    email: None,
                }],
                pipelines: vec![w, g],
                ..Dataset::default()
            })
            .unwrap();
        let f = clearance_audit(
            &index,
            &Rules::builtin(),
            PipeKind::Gas,
            PipeKind::WaterSupply,
            None,
            None,
        )
        .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].relation, "crossing");
        assert_eq!(f[0].vertical, "violation");
        assert!(
            (f[0].vertical_clearance_m.unwrap() - 0.05).abs() < 1e-3,
            "{:?}",
            f[0]
        );
        assert_eq!(f[0].pipe_depth_m, Some(1.35));
        assert_eq!(f[0].other_depth_m, Some(1.0));
    }
}
