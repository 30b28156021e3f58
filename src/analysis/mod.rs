//! Analysis beyond OGC API – Features, over the in-memory index, measured in metres in the
//! deployment's projected CRS: pipelines within a distance of a geometry with lengths by
//! kind and owner; a network-wide clearance audit (pipes of two kinds crossing, or closer
//! than the horizontal clearance of the rule table `data/rules/clearances.toml`, loaded
//! through [`crate::excavation::rules::Rules`]); per-grid-cell pipeline statistics; and the
//! sensors nearest a point.

use crate::excavation::rules::Rules;
use crate::index::SpatialIndex;
use crate::model::{Bbox, GridLevel, Layer, PipeKind, Pipeline, Record, SensorKind};
use geo::{BooleanOps, Euclidean, Geometry, Intersects, Length, MultiLineString};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why an analysis request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    #[error(transparent)]
    Crs(#[from] crate::io::crs::CrsError),
}

impl From<AnalysisError> for crate::AppError {
    fn from(e: AnalysisError) -> Self {
        match e {
            AnalysisError::Bad(m) => crate::AppError::BadRequest(m),
            AnalysisError::Index(i) => i.into(),
            AnalysisError::Crs(c) => c.into(),
        }
    }
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
    #[serde(skip)]
    pub geometry: MultiLineString<f64>,
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
) -> Result<Vec<crate::index::Hit>, AnalysisError> {
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
