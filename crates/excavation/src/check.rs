//! The check engine: a dig request is parsed into a [`Dig`] (geometry valid, limits kept,
//! area measured in metres of the projected CRS), then every pipeline the index returns
//! within the largest reach the rules allow is judged against its own thresholds
//! ([`Rules::thresholds`](super::Rules::thresholds)):
//!
//! - **violation**: inside the protection no-dig zone (whatever the depth), or inside the
//!   required horizontal clearance where the depths are unknown or the dig reaches within
//!   the vertical clearance (plus depth uncertainty) of the pipe;
//! - **warning**: inside the tolerance zone (clearance widened by positional accuracy), or
//!   inside a permit zone;
//! - **info**: inside the information margin.
//!
//! A LineString dig with width `w` is the set of points within `w/2` of the line, so its
//! distance to a pipe is the line's distance minus `w/2` — exact, with no buffer polygon
//! approximation. Depths: a pipe occupies the depth band from its shallowest recorded top
//! to its deepest top plus its size; the dig occupies `top_depth_m..bottom_depth_m`; the 3D
//! clearance is the distance between these two vertical prisms, `sqrt(h² + v²)`.

use super::rules::Thresholds;
use super::{Excavation, ExcavationError, Limits};
use chrono::{DateTime, NaiveDate, Utc};
use geo::{Area, Coord, Geometry, Length, LineString, Polygon};
use lifeline_index::SpatialIndex;
use lifeline_model::check_result::{
    AccuracySource, CheckRequest, CheckResult, Conflict, DepthReason, DigSummary, MainReason,
    NearbyFeature, OwnerNotice, PipeGeometry, Reasons, Severity, ShortText, Summary,
};
use lifeline_model::crs::MetricCrs;
use lifeline_model::{geom, Layer, PipeStatus, Pipeline, Record};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A validated dig: geometry in lon/lat and in metres, depths, method and dates.
#[derive(Debug, Clone)]
pub struct Dig {
    /// The geometry as given (a polygon re-oriented to RFC 7946 winding).
    pub lonlat: Geometry<f64>,
    /// The same in metres of the index's CRS.
    pub metric: Geometry<f64>,
    /// Half the trench width for a LineString, 0 for a Polygon.
    pub half_width_m: f64,
    pub area_m2: f64,
    pub request: CheckRequest,
}

fn invalid(m: impl Into<String>) -> ExcavationError {
    ExcavationError::Invalid(m.into())
}

impl Dig {
    /// Checks a request against the limits and measures it in `crs`. `today` (the local
    /// date, from the service's clock) bounds the start date: no more than
    /// `max_start_in_past_days` ago, nor `max_start_ahead_days` ahead.
    pub fn parse(
        req: &CheckRequest,
        limits: &Limits,
        crs: &MetricCrs,
        today: NaiveDate,
    ) -> Result<Dig, ExcavationError> {
        let gj: geojson::Geometry = serde_json::from_value(req.geometry.clone())
            .map_err(|e| ExcavationError::BadRequest(format!("geometry: not GeoJSON: {e}")))?;
        let g = geom::from_geojson(gj).map_err(|e| invalid(format!("geometry: {e}")))?;
        let vertices = geo::CoordsIter::coords_count(&g);
        if vertices > limits.max_vertices {
            return Err(invalid(format!(
                "geometry has {vertices} vertices; the limit is {}",
                limits.max_vertices
            )));
        }
        let (lonlat, half_width_m) = match g {
            Geometry::Polygon(p) => {
                if req.width_m.is_some() {
                    return Err(ExcavationError::BadRequest(
                        "width_m applies only to a LineString dig; a Polygon already has its area"
                            .into(),
                    ));
                }
                use geo::orient::{Direction, Orient};
                let p: Polygon<f64> = p.orient(Direction::Default);
                geom::check_polygon(&p).map_err(|e| invalid(format!("geometry: {e}")))?;
                (Geometry::Polygon(p), 0.0)
            }
            Geometry::LineString(l) => {
                let w = req.width_m.ok_or_else(|| {
                    ExcavationError::BadRequest(
                        "width_m is required for a LineString dig (the trench width in metres)"
                            .into(),
                    )
                })?;
                if !w.is_finite() || w <= 0.0 || w > limits.max_width_m {
                    return Err(invalid(format!(
                        "width_m = {w} must be in (0, {}] m",
                        limits.max_width_m
                    )));
                }
                geom::check_line(&l).map_err(|e| invalid(format!("geometry: {e}")))?;
                (Geometry::LineString(l), w / 2.0)
            }
            other => {
                return Err(ExcavationError::BadRequest(format!(
                    "geometry must be a Polygon or a LineString, not {}",
                    geometry_type(&other)
                )))
            }
        };
        let (top, bottom) = (req.top_depth_m, req.bottom_depth_m);
        if !top.is_finite() || !bottom.is_finite() {
            return Err(invalid(
                "top_depth_m and bottom_depth_m must be finite numbers",
            ));
        }
        if top < 0.0 {
            return Err(invalid(format!(
                "top_depth_m = {top} is above ground; depths are metres below ground (>= 0)"
            )));
        }
        if top >= bottom {
            return Err(invalid(format!(
                "depths are inverted or empty: top_depth_m = {top} must be less than bottom_depth_m = {bottom}"
            )));
        }
        if bottom > limits.max_depth_m {
            return Err(invalid(format!(
                "bottom_depth_m = {bottom} exceeds the limit of {} m",
                limits.max_depth_m
            )));
        }
        let wt = req.work_type.trim();
        if wt.is_empty() || wt.chars().count() > limits.max_work_type_chars {
            return Err(invalid(format!(
                "work_type must be 1..{} characters",
                limits.max_work_type_chars
            )));
        }
        if req.end_date < req.start_date {
            return Err(invalid(format!(
                "end_date {} is before start_date {}",
                req.end_date, req.start_date
            )));
        }
        let days = (req.end_date - req.start_date).num_days() + 1;
        if days > limits.max_duration_days {
            return Err(invalid(format!(
                "the work lasts {days} days; the limit is {}",
                limits.max_duration_days
            )));
        }
        if (today - req.start_date).num_days() > limits.max_start_in_past_days {
            return Err(invalid(format!(
                "start_date {} is more than {} days in the past",
                req.start_date, limits.max_start_in_past_days
            )));
        }
        if (req.start_date - today).num_days() > limits.max_start_ahead_days {
            return Err(invalid(format!(
                "start_date {} is more than {} days ahead",
                req.start_date, limits.max_start_ahead_days
            )));
        }
        let metric = crs
            .to_metric(&lonlat)
            .map_err(|e| invalid(format!("geometry: {e}")))?;
        let area_m2 = match &metric {
            Geometry::LineString(l) => {
                let w = 2.0 * half_width_m;
                geo::Euclidean.length(l) * w + std::f64::consts::PI * half_width_m * half_width_m
            }
            other => other.unsigned_area(),
        };
        if area_m2 > limits.max_area_m2 {
            return Err(invalid(format!(
                "dig area is {:.0} m² ({:.3} km²); the limit is {:.0} m²",
                area_m2,
                area_m2 / 1e6,
                limits.max_area_m2
            )));
        }
        Ok(Dig {
            lonlat,
            metric,
            half_width_m,
            area_m2,
            request: req.clone(),
        })
    }

    /// The dig's footprint in lon/lat: the polygon itself, or the trench buffered in metres.
    pub fn footprint(&self, crs: &MetricCrs) -> Geometry<f64> {
        match (&self.metric, self.half_width_m > 0.0) {
            (Geometry::LineString(l), true) => {
                use geo::Buffer;
                let mp = l.buffer(self.half_width_m);
                crs.to_lonlat(&Geometry::MultiPolygon(mp))
                    .unwrap_or_else(|_| self.lonlat.clone())
            }
            _ => self.lonlat.clone(),
        }
    }
}

fn geometry_type(g: &Geometry<f64>) -> &'static str {
    match g {
        Geometry::Point(_) => "Point",
        Geometry::MultiPoint(_) => "MultiPoint",
        Geometry::MultiLineString(_) => "MultiLineString",
        Geometry::MultiPolygon(_) => "MultiPolygon",
        Geometry::GeometryCollection(_) => "GeometryCollection",
        _ => "this geometry type",
    }
}

/// The vertical figures of one pipe against the dig.
struct Vertical {
    band: [f64; 2],
    gap: f64,
    required: f64,
}

/// The depth band of a pipe and the depth uncertainty (CJJ 61: ±0.075·h, h the depth to
/// the pipe centre, at least 1 m), if any depth is recorded.
fn depth_band(p: &Pipeline) -> Option<([f64; 2], f64)> {
    // No Vec of the tops: this runs for every pipe of a check (thousands for 1 km²).
    let (top, deepest) = match (p.depth_start_m, p.depth_end_m) {
        (Some(a), Some(b)) => (a.min(b), a.max(b)),
        (Some(a), None) | (None, Some(a)) => (a, a),
        (None, None) => return None,
    };
    let size = p.size_m().unwrap_or(0.0);
    let bottom = deepest + size;
    let acc = match p.depth_accuracy_cm {
        Some(cm) => cm / 100.0,
        None => 0.075 * (bottom - size / 2.0).max(1.0),
    };
    Some(([top, bottom], acc))
}

/// Gap between two depth intervals (0 when they overlap).
pub fn interval_gap(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[1]).max(b[0] - a[1]).max(0.0)
}

/// Judges one pipe at horizontal distance `d` (m) from the dig. `None`: out of reach.
pub fn judge(
    p: &Pipeline,
    t: &Thresholds,
    d: f64,
    dig_depth: [f64; 2],
) -> Option<(Severity, Reasons, Option<[f64; 3]>)> {
    if d > t.reach_m() {
        return None;
    }
    let vertical = depth_band(p).map(|(band, acc)| Vertical {
        band,
        gap: interval_gap(dig_depth, band),
        required: t.vertical_clearance_m.unwrap_or(0.0) + acc,
    });
    let in_no_dig = t.no_dig_m.is_some_and(|n| d <= n);
    let permit = t.permit_m.is_some_and(|pm| d <= pm);
    let vertical_reach = vertical.as_ref().is_none_or(|v| v.gap <= v.required);
    // The texts are written from these figures when the result is rendered (`Reasons`).
    let (severity, main) = if in_no_dig {
        (
            Severity::Violation,
            MainReason::NoDig {
                no_dig_m: t.no_dig_m.unwrap_or(0.0),
                rule: t.protection_rule_id.clone(),
            },
        )
    } else if d <= t.clearance_m && vertical_reach {
        (
            Severity::Violation,
            MainReason::Clearance {
                d,
                clearance_m: t.clearance_m,
                rule: t.rule_id.clone(),
            },
        )
    } else if d <= t.tolerance_m {
        let main = if d <= t.clearance_m {
            match &vertical {
                Some(v) => MainReason::VerticallyClear {
                    gap: v.gap,
                    required: v.required,
                },
                None => MainReason::None,
            }
        } else {
            MainReason::Tolerance {
                d,
                tolerance_m: t.tolerance_m,
                widening_m: t.widening_m,
            }
        };
        (Severity::Warning, main)
    } else if permit {
        (Severity::Warning, MainReason::None)
    } else if d <= t.info_m {
        (Severity::Info, MainReason::Info { d })
    } else {
        return None;
    };
    let depth = match &vertical {
        None => DepthReason::Unknown,
        Some(v) if severity == Severity::Violation && !in_no_dig => DepthReason::Reaches {
            gap: v.gap,
            band: v.band,
            required: v.required,
        },
        _ => DepthReason::None,
    };
    let reasons = Reasons::figures(
        p.id,
        p.kind,
        main,
        permit.then(|| t.permit_m.unwrap_or(0.0)),
        depth,
        t.assumed.clone(),
    );
    let v = vertical.map(|v| [v.band[0], v.band[1], v.gap]);
    Some((severity, reasons, v))
}

// ---------------------------------------------------------------------------------------
// Nearest point on a pipe
// ---------------------------------------------------------------------------------------

fn seg_closest(p: Coord<f64>, a: Coord<f64>, b: Coord<f64>) -> (f64, f64) {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p.x - a.x) * dx + (p.y - a.y) * dy) / len2).clamp(0.0, 1.0)
    };
    let (cx, cy) = (a.x + t * dx, a.y + t * dy);
    (t, ((p.x - cx).powi(2) + (p.y - cy).powi(2)).sqrt())
}

fn seg_cross(a: Coord<f64>, b: Coord<f64>, c: Coord<f64>, d: Coord<f64>) -> Option<f64> {
    let r = (b.x - a.x, b.y - a.y);
    let s = (d.x - c.x, d.y - c.y);
    let den = r.0 * s.1 - r.1 * s.0;
    if den == 0.0 {
        return None;
    }
    let q = (c.x - a.x, c.y - a.y);
    let t = (q.0 * s.1 - q.1 * s.0) / den;
    let u = (q.0 * r.1 - q.1 * r.0) / den;
    ((0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&u)).then_some(t)
}

/// The rings (or the line) of a metric dig, the edges [`nearest_on_pipe`] walks.
fn dig_rings(dig: &Geometry<f64>) -> Vec<&LineString<f64>> {
    match dig {
        Geometry::Polygon(p) => std::iter::once(p.exterior())
            .chain(p.interiors().iter())
            .collect(),
        Geometry::LineString(l) => vec![l],
        _ => Vec::new(),
    }
}

/// Where on `pipe` (segment index, fraction) it comes nearest the dig (both metric).
pub fn nearest_on_pipe(dig: &Geometry<f64>, pipe: &LineString<f64>) -> (usize, f64) {
    nearest_on_pipe_with(dig, &dig_rings(dig), pipe)
}

/// [`nearest_on_pipe`] with the dig's rings taken apart once per check, not once per pipe.
fn nearest_on_pipe_with(
    dig: &Geometry<f64>,
    rings: &[&LineString<f64>],
    pipe: &LineString<f64>,
) -> (usize, f64) {
    use geo::Intersects;
    let pts = &pipe.0;
    let nseg = pts.len().saturating_sub(1).max(1);
    if let Geometry::Polygon(poly) = dig {
        for (i, c) in pts.iter().enumerate() {
            if poly.intersects(c) {
                return if i < nseg { (i, 0.0) } else { (nseg - 1, 1.0) };
            }
        }
    }
    for i in 0..pts.len().saturating_sub(1) {
        for r in rings {
            for e in r.0.windows(2) {
                if let Some(t) = seg_cross(pts[i], pts[i + 1], e[0], e[1]) {
                    return (i, t);
                }
            }
        }
    }
    let mut best = (f64::INFINITY, 0usize, 0.0);
    for (i, c) in pts.iter().enumerate() {
        for r in rings {
            for e in r.0.windows(2) {
                let (_, d) = seg_closest(*c, e[0], e[1]);
                if d < best.0 {
                    best = if i < nseg {
                        (d, i, 0.0)
                    } else {
                        (d, nseg - 1, 1.0)
                    };
                }
            }
            if r.0.len() == 1 {
                let d = ((c.x - r.0[0].x).powi(2) + (c.y - r.0[0].y).powi(2)).sqrt();
                if d < best.0 {
                    best = (d, i.min(nseg - 1), if i < nseg { 0.0 } else { 1.0 });
                }
            }
        }
    }
    for r in rings {
        for v in &r.0 {
            for i in 0..pts.len().saturating_sub(1) {
                let (t, d) = seg_closest(*v, pts[i], pts[i + 1]);
                if d < best.0 {
                    best = (d, i, t);
                }
            }
        }
    }
    (best.1, best.2)
}

/// The point at (segment, fraction) of a line. Over one pipe segment (metres to tens of
/// metres) the projection is affine to far below a millimetre, so the fraction found in
/// metres locates the same point in lon/lat without a second PROJ call.
fn point_at(l: &LineString<f64>, seg: usize, t: f64) -> [f64; 2] {
    let pts = &l.0;
    if pts.len() < 2 {
        return pts.first().map(|c| [c.x, c.y]).unwrap_or([0.0, 0.0]);
    }
    let (a, b) = (pts[seg], pts[(seg + 1).min(pts.len() - 1)]);
    [a.x + t * (b.x - a.x), a.y + t * (b.y - a.y)]
}

// ---------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------

/// Reorders `v` so that `v[k]` becomes the old `v[order[k]]` (`order` a permutation), one
/// cycle at a time with swaps: each element moves at most twice.
fn permute<T>(v: &mut [T], order: &[usize]) {
    let mut done = vec![false; v.len()];
    for i in 0..v.len() {
        if done[i] {
            continue;
        }
        let mut cur = i;
        loop {
            done[cur] = true;
            let next = order[cur];
            if next == i {
                break;
            }
            v.swap(cur, next);
            cur = next;
        }
    }
}

/// Whether a pipe physically lies in the ground (planned and removed pipes do not).
pub fn in_ground(p: &Pipeline) -> bool {
    !matches!(p.status, PipeStatus::Planned | PipeStatus::Removed)
}

/// Runs the check of a validated dig against the index.
/// The most violated pipes a check traces ("if struck"); a dig that violates more is one
/// no operator will weigh pipe by pipe.
pub const MAX_IF_STRUCK: usize = 200;

pub fn run(
    index: &SpatialIndex,
    ex: &Excavation,
    dig: &Dig,
    now: DateTime<Utc>,
) -> Result<CheckResult, ExcavationError> {
    let req = &dig.request;
    let method = req.method;
    let rules = &ex.rules;
    let crs = index.crs();
    let reach = rules.max_reach_m(method) + dig.half_width_m;
    let dig_depth = [req.top_depth_m, req.bottom_depth_m];
    let hits = index
        .within_distance(Layer::Pipelines, &dig.lonlat, reach)
        .map_err(|e| invalid(e.to_string()))?;
    let rings = dig_rings(&dig.metric);
    // Owner names by id, looked up once per owner rather than once per pipe (a handful of
    // owners against ~1,900 pipes for a 1 km² dig in the city), and shared by the conflicts.
    let mut owner_names: Vec<(i64, Arc<str>)> = Vec::new();
    let mut conflicts = Vec::with_capacity(hits.len());
    for h in &hits {
        let Record::Pipeline(p) = &*h.record else {
            continue;
        };
        if !in_ground(p) {
            continue;
        }
        let d = (h.distance_m - dig.half_width_m).max(0.0);
        let t = rules.thresholds(p, method);
        let Some((severity, reasons, vertical)) = judge(p, &t, d, dig_depth) else {
            continue;
        };
        // The index hands out the pipe already in metres (its tree geometry): no PROJ call
        // per pipe. The nearest point is then found in metres and located in lon/lat by
        // its segment and fraction (see `point_at`).
        let Geometry::LineString(ml) = &*h.metric else {
            return Err(ExcavationError::Internal(
                "pipe is not a line in the index".into(),
            ));
        };
        let (seg, frac) = nearest_on_pipe_with(&dig.metric, &rings, ml);
        let owner_name = match owner_names.iter().find(|(id, _)| *id == p.owner_id) {
            Some((_, name)) => name.clone(),
            None => {
                let name: Arc<str> = match index.get(Layer::Owners, p.owner_id).as_deref() {
                    Some(Record::Owner(o)) => o.name.as_str().into(),
                    _ => format!("owner {}", p.owner_id).into(),
                };
                owner_names.push((p.owner_id, name.clone()));
                name
            }
        };
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let required_vertical_m =
            depth_band(p).map(|(_, acc)| round(t.vertical_clearance_m.unwrap_or(0.0) + acc));
        let in_no_dig_zone = t.no_dig_m.is_some_and(|n| d <= n);
        let permit_required = t.permit_m.is_some_and(|pm| d <= pm);
        // The thresholds are this pipe's own: move their shared strings into the conflict.
        // No allocation per conflict: the strings are shared, the reasons are figures and
        // the geometry is the index's record.
        conflicts.push(Conflict {
            pipeline_id: p.id,
            kind: p.kind,
            sub_kind: p.sub_kind,
            pressure_class: p.pressure_class,
            diameter_mm: p.diameter_mm,
            owner_id: p.owner_id,
            owner_name,
            severity,
            reasons,
            horizontal_distance_m: round(d),
            depth_known: vertical.is_some(),
            pipe_depth_m: vertical.map(|v| [v[0], v[1]]),
            vertical_gap_m: vertical.map(|v| round(v[2])),
            clearance_3d_m: vertical.map(|v| round((d * d + v[2] * v[2]).sqrt())),
            required_clearance_m: round(t.clearance_m),
            rule_id: t.rule_id,
            rule_source: t.rule_source,
            rule_confirmed: t.rule_confirmed,
            required_vertical_m,
            vertical_rule_id: t.vertical_rule_id,
            accuracy_m: round(t.accuracy_m),
            accuracy_source: t.accuracy_source,
            widening_m: round(t.widening_m),
            tolerance_m: round(t.tolerance_m),
            info_m: round(t.info_m),
            in_no_dig_zone,
            permit_required,
            protection_rule_id: t.protection_rule_id,
            assumed: t.assumed,
            nearest_point: point_at(&p.geometry, seg, frac),
            if_struck: None,
            geometry: PipeGeometry::of_record(h.record.clone()),
        });
    }
    // What striking each violated pipe would cut off, from the network traces (issue 15).
    for c in conflicts
        .iter_mut()
        .filter(|c| c.severity == Severity::Violation)
        .take(MAX_IF_STRUCK)
    {
        c.if_struck = lifeline_trace::service::if_struck(index, &ex.networks, c.pipeline_id);
    }
    // Pipeline ids are unique, so the order is total and an unstable sort gives the same
    // result as a stable one. The keys are sorted beside the indices and each conflict is
    // then moved once into place: a conflict is a few hundred bytes, and sorting the
    // conflicts themselves moved each of them many times.
    let mut order: Vec<(Severity, f64, i64, usize)> = conflicts
        .iter()
        .enumerate()
        .map(|(i, c)| (c.severity, c.horizontal_distance_m, c.pipeline_id, i))
        .collect();
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
    let order: Vec<usize> = order.into_iter().map(|o| o.3).collect();
    permute(&mut conflicts, &order);
    let mut owners: BTreeMap<i64, OwnerNotice> = BTreeMap::new();
    for c in &conflicts {
        let entry = owners.entry(c.owner_id).or_insert_with(|| {
            let (name, contact, phone, email) =
                match index.get(Layer::Owners, c.owner_id).as_deref() {
                    Some(Record::Owner(o)) => (
                        o.name.clone(),
                        o.emergency_contact.clone(),
                        o.emergency_phone.clone(),
                        o.email.clone(),
                    ),
                    _ => (c.owner_name.to_string(), String::new(), String::new(), None),
                };
            OwnerNotice {
                owner_id: c.owner_id,
                name,
                emergency_contact: contact,
                emergency_phone: phone,
                email,
                worst_severity: c.severity,
                pipeline_ids: Vec::new(),
            }
        });
        entry.worst_severity = entry.worst_severity.min(c.severity);
        entry.pipeline_ids.push(c.pipeline_id);
    }
    let mut owners: Vec<OwnerNotice> = owners.into_values().collect();
    owners.sort_by(|a, b| {
        a.worst_severity
            .cmp(&b.worst_severity)
            .then(a.owner_id.cmp(&b.owner_id))
    });
    let margin = rules.tolerance.info_margin_m + dig.half_width_m;
    let nearby = |layer: Layer| -> Result<Vec<NearbyFeature>, ExcavationError> {
        let hits = index
            .within_distance(layer, &dig.lonlat, margin)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(hits
            .into_iter()
            .filter_map(|h| {
                let d = ((h.distance_m - dig.half_width_m).max(0.0) * 1000.0).round() / 1000.0;
                match &*h.record {
                    Record::RiskPoint(r) => Some(NearbyFeature {
                        id: r.id,
                        kind: Cow::Owned(r.category.clone()),
                        status: Cow::Borrowed(r.level.as_str()),
                        name: Some(ShortText::new(&r.name)),
                        distance_m: d,
                        geometry: Some(r.geometry.clone()),
                    }),
                    Record::Sensor(s) => Some(NearbyFeature {
                        id: s.id,
                        kind: Cow::Borrowed(s.kind.as_str()),
                        status: Cow::Borrowed(s.status.as_str()),
                        name: s.code.as_deref().map(ShortText::new),
                        distance_m: d,
                        geometry: Some(Geometry::Point(s.location)),
                    }),
                    _ => None,
                }
            })
            .collect())
    };
    let risk_points = nearby(Layer::RiskPoints)?;
    let sensors = nearby(Layer::Sensors)?;
    let count = |s: Severity| conflicts.iter().filter(|c| c.severity == s).count();
    let (violations, warnings, infos) = (
        count(Severity::Violation),
        count(Severity::Warning),
        count(Severity::Info),
    );
    let permit_required = conflicts.iter().any(|c| c.permit_required);
    let depth_unknown = conflicts.iter().filter(|c| !c.depth_known).count();
    let verdict = if violations > 0 {
        "stop"
    } else if warnings > 0 {
        "caution"
    } else {
        "clear"
    };
    let text = match verdict {
        "stop" => format!(
            "{violations} pipeline(s) inside their required clearance or no-dig zone: do not dig until the {} owner(s) have marked them and agreed the precautions",
            owners.iter().filter(|o| o.worst_severity == Severity::Violation).count()
        ),
        "caution" => format!(
            "{warnings} pipeline(s) inside their tolerance or permit zone: hand-dig near them and notify the owners"
        ),
        _ => "no pipeline inside any clearance or tolerance zone".to_string(),
    };
    let footprint = dig.footprint(crs);
    Ok(CheckResult {
        dig: DigSummary {
            geometry: serde_json::to_value(geom::to_geojson(&footprint))
                .map_err(|e| ExcavationError::Internal(e.to_string()))?,
            area_m2: (dig.area_m2 * 100.0).round() / 100.0,
            width_m: req.width_m,
            top_depth_m: req.top_depth_m,
            bottom_depth_m: req.bottom_depth_m,
            method,
            method_factor: rules.method(method).factor,
            work_type: req.work_type.trim().to_string(),
            start_date: req.start_date,
            end_date: req.end_date,
            metric_crs: crs.code().to_string(),
        },
        summary: Summary {
            violations,
            warnings,
            infos,
            owners_to_notify: owners.len(),
            permit_required,
            depth_unknown,
            verdict: verdict.into(),
            text,
        },
        conflicts,
        owners,
        risk_points,
        sensors,
        rules_version: rules.version,
        checked_at: now,
    })
}

/// Parses and runs a check in one call (what the handlers use) at `now`, the service
/// clock's time: the start date is judged against its local date (China Standard Time with
/// the built-in settings), which is also the result's `checked_at`.
pub fn check(
    index: &SpatialIndex,
    ex: &Excavation,
    req: &CheckRequest,
    now: DateTime<Utc>,
) -> Result<CheckResult, ExcavationError> {
    let today = ex.tickets.calendar.local_date(now);
    let dig = Dig::parse(req, &ex.limits, index.crs(), today)?;
    run(index, ex, &dig, now)
}

/// Accuracy source as text (for reports).
pub fn accuracy_label(a: AccuracySource) -> &'static str {
    match a {
        AccuracySource::Surveyed => "surveyed",
        AccuracySource::QualityLevel => "quality level",
        AccuracySource::Unknown => "unknown (widest)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Excavation;
    use lifeline_model::check_result::DigMethod;
    use lifeline_model::{Dataset, GasPressure, Owner, PipeKind};

    fn crs() -> MetricCrs {
        MetricCrs::new("EPSG:4545").unwrap()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    /// Noon of `d` in China (04:00 UTC).
    fn noon_of(d: NaiveDate) -> DateTime<Utc> {
        d.and_hms_opt(4, 0, 0).unwrap().and_utc()
    }

    fn req(geometry: serde_json::Value) -> CheckRequest {
        CheckRequest {
            geometry,
            width_m: None,
            top_depth_m: 0.0,
            bottom_depth_m: 2.5,
            method: DigMethod::Mechanical,
            work_type: "trench".into(),
            start_date: today(),
            end_date: today(),
        }
    }

    /// A square of side `m` metres (approximately, in degrees) at (x, y).
    fn square(x: f64, y: f64, m: f64) -> serde_json::Value {
        let dx = m / 96_900.0;
        let dy = m / 110_800.0;
        serde_json::json!({"type": "Polygon", "coordinates": [[[x, y], [x + dx, y], [x + dx, y + dy], [x, y + dy], [x, y]]]})
    }

    fn err(r: &CheckRequest) -> String {
        Dig::parse(r, &Excavation::builtin().limits, &crs(), today())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn limits_name_the_problem() {
        let mut r = req(square(106.5, 29.5, 10.0));
        r.top_depth_m = 3.0;
        assert!(err(&r).contains("inverted"));
        let r = req(square(106.5, 29.5, 1200.0));
        assert!(err(&r).contains("limit"), "{}", err(&r));
        let bow = serde_json::json!({"type": "Polygon", "coordinates": [[[106.5, 29.5], [106.501, 29.501], [106.501, 29.5], [106.5, 29.501], [106.5, 29.5]]]});
        let e = err(&req(bow));
        assert!(e.contains("geometry"), "{e}");
        let mut r = req(
            serde_json::json!({"type": "LineString", "coordinates": [[106.5, 29.5], [106.501, 29.5]]}),
        );
        assert!(err(&r).contains("width_m is required"));
        r.width_m = Some(2.0);
        let d = Dig::parse(&r, &Excavation::builtin().limits, &crs(), today()).unwrap();
        // ~97 m long, 2 m wide, round caps.
        assert!(
            (d.area_m2 - (2.0 * 96.9 + std::f64::consts::PI)).abs() < 2.0,
            "{}",
            d.area_m2
        );
        let p = serde_json::json!({"type": "Point", "coordinates": [106.5, 29.5]});
        assert!(err(&req(p)).contains("Polygon or a LineString"));
        let mut r = req(square(106.5, 29.5, 10.0));
        r.end_date = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert!(err(&r).contains("end_date"));
        let mut r = req(square(106.5, 29.5, 10.0));
        r.bottom_depth_m = 500.0;
        assert!(err(&r).contains("bottom_depth_m"));
    }

    #[test]
    fn clockwise_polygons_are_accepted() {
        let cw = serde_json::json!({"type": "Polygon", "coordinates": [[[106.5, 29.5], [106.5, 29.5001], [106.5001, 29.5001], [106.5001, 29.5], [106.5, 29.5]]]});
        Dig::parse(&req(cw), &Excavation::builtin().limits, &crs(), today()).unwrap();
    }

    fn index_with(pipes: Vec<Pipeline>) -> SpatialIndex {
        let idx = SpatialIndex::new(crs());
        idx.load(Dataset {
            owners: vec![Owner {
                id: 1,
                name: "Gas Co".into(),
                emergency_contact: "duty".into(),
                emergency_phone: "023 1".into(),
                email: None,
            }],
            pipelines: pipes,
            ..Default::default()
        })
        .unwrap();
        idx
    }

    #[test]
    fn depth_decides_between_violation_and_warning() {
        // A medium-pressure gas main 3 m deep crossing the dig.
        let mut p = Pipeline::new(
            1,
            PipeKind::Gas,
            1,
            LineString::from(vec![(106.4999, 29.50005), (106.5002, 29.50005)]),
        );
        p.pressure_class = Some(GasPressure::MediumB);
        p.depth_start_m = Some(3.0);
        p.depth_end_m = Some(3.0);
        p.depth_accuracy_cm = Some(5.0);
        p.plan_accuracy_cm = Some(10.0);
        let idx = index_with(vec![p.clone()]);
        let ex = Excavation::builtin();
        let mut r = req(square(106.5, 29.5, 10.0));
        // 1.0 m deep: 2 m above the pipe, beyond 0.15 + 0.05 m vertical clearance — but
        // still inside the 0.5 m no-dig protection zone of city gas, so a violation.
        r.bottom_depth_m = 1.0;
        let out = check(&idx, &ex, &r, noon_of(today())).unwrap();
        assert_eq!(out.conflicts[0].severity, Severity::Violation);
        assert!(out.conflicts[0].in_no_dig_zone);
        // A water main instead (no protection zone): vertically clear means a warning.
        let mut w = p.clone();
        w.kind = PipeKind::WaterSupply;
        w.pressure_class = None;
        w.diameter_mm = Some(300.0);
        let idx = index_with(vec![w]);
        let out = check(&idx, &ex, &r, noon_of(today())).unwrap();
        let c = &out.conflicts[0];
        assert_eq!(c.severity, Severity::Warning, "{c:?}");
        assert_eq!(c.horizontal_distance_m, 0.0);
        assert!((c.vertical_gap_m.unwrap() - 2.0).abs() < 1e-9);
        r.bottom_depth_m = 2.9;
        let out = check(&idx, &ex, &r, noon_of(today())).unwrap();
        assert_eq!(out.conflicts[0].severity, Severity::Violation);
        // The nearest point lies on the pipe and inside the dig square.
        let [lon, lat] = out.conflicts[0].nearest_point;
        assert!((lat - 29.50005).abs() < 1e-9, "{lat}");
        assert!(
            (106.5 - 1e-9..=106.5 + 10.0 / 96_900.0 + 1e-9).contains(&lon),
            "{lon}"
        );
    }

    /// The index computes the check's distances itself (no allocation per candidate):
    /// they must be geo's figures, for polygons with and without holes, concave ones and
    /// trench lines, pipes crossing, inside, in the hole and outside.
    #[test]
    fn index_distances_are_geos() {
        use geo::{Distance, Euclidean};
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (x0, y0) = (106.5, 29.5);
        let pipes: Vec<Pipeline> = (1..=600)
            .map(|id| {
                let mut c = (
                    x0 + rng.gen_range(-0.004..0.004),
                    y0 + rng.gen_range(-0.004..0.004),
                );
                let mut pts = vec![c];
                for _ in 0..rng.gen_range(1..6) {
                    c = (
                        c.0 + rng.gen_range(-0.0005..0.0005),
                        c.1 + rng.gen_range(-0.0005..0.0005),
                    );
                    pts.push(c);
                }
                Pipeline::new(id, PipeKind::Power, 1, LineString::from(pts))
            })
            .collect();
        let idx = index_with(pipes.clone());
        let d = 0.001;
        let square = Polygon::new(
            LineString::from(vec![
                (x0 - d, y0 - d),
                (x0 + d, y0 - d),
                (x0 + d, y0 + d),
                (x0 - d, y0 + d),
                (x0 - d, y0 - d),
            ]),
            vec![],
        );
        let holed = Polygon::new(
            square.exterior().clone(),
            vec![LineString::from(vec![
                (x0 - d / 2.0, y0 - d / 2.0),
                (x0 - d / 2.0, y0 + d / 2.0),
                (x0 + d / 2.0, y0 + d / 2.0),
                (x0 + d / 2.0, y0 - d / 2.0),
                (x0 - d / 2.0, y0 - d / 2.0),
            ])],
        );
        let concave = Polygon::new(
            LineString::from(vec![
                (x0 - d, y0 - d),
                (x0 + d, y0 - d),
                (x0, y0),
                (x0 + d, y0 + d),
                (x0 - d, y0 + d),
                (x0 - d, y0 - d),
            ]),
            vec![],
        );
        let trench = LineString::from(vec![(x0 - d, y0 - d), (x0, y0 + d / 3.0), (x0 + d, y0)]);
        let digs = [
            Geometry::Polygon(square),
            Geometry::Polygon(holed),
            Geometry::Polygon(concave),
            Geometry::LineString(trench),
        ];
        let crs = crs();
        let (mut inside, mut outside) = (0, 0);
        for dig in &digs {
            let hits = idx.within_distance(Layer::Pipelines, dig, 80.0).unwrap();
            let got: BTreeMap<i64, f64> =
                hits.iter().map(|h| (h.record.id(), h.distance_m)).collect();
            let m = crs.to_metric(dig).unwrap();
            let mut want = BTreeMap::new();
            for p in &pipes {
                let pm = crs
                    .to_metric(&Geometry::LineString(p.geometry.clone()))
                    .unwrap();
                let e = Euclidean.distance(&m, &pm);
                if e <= 80.0 {
                    want.insert(p.id, e);
                }
            }
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>(),
                "{dig:?}"
            );
            for (id, e) in &want {
                assert!(
                    (got[id] - e).abs() < 1e-9,
                    "pipe {id}: {} vs geo {e}",
                    got[id]
                );
                if *e == 0.0 {
                    inside += 1;
                } else {
                    outside += 1;
                }
            }
            // Nearest first, ties by id.
            assert!(hits.windows(2).all(
                |w| (w[0].distance_m, w[0].record.id()) <= (w[1].distance_m, w[1].record.id())
            ));
        }
        assert!(
            inside > 50 && outside > 50,
            "{inside} meeting, {outside} apart"
        );
    }

    #[test]
    fn reasons_serialise_as_their_texts() {
        let mut p = Pipeline::new(
            7,
            PipeKind::Gas,
            1,
            LineString::from(vec![(106.5, 29.5), (106.501, 29.5)]),
        );
        p.depth_start_m = Some(1.0);
        p.depth_end_m = Some(1.2);
        let rules = Excavation::builtin().rules;
        let t = rules.thresholds(&p, DigMethod::Mechanical);
        let (sev, reasons, _) = judge(&p, &t, 0.3, [0.0, 2.0]).unwrap();
        assert_eq!(sev, Severity::Violation);
        let texts = reasons.texts();
        assert!(texts[0].starts_with("inside the 5.00 m no-dig protection zone of gas pipe 7 (cjj51-gas-protection-high)"), "{texts:?}");
        assert!(
            texts.iter().any(|t| t.contains("pressure_class unknown")),
            "{texts:?}"
        );
        assert_eq!(
            serde_json::to_value(&reasons).unwrap(),
            serde_json::json!(texts)
        );
        assert_eq!(reasons.to_string(), texts.join("; "));
        assert_eq!(reasons.len(), texts.len());
        let stored = Reasons::from(texts.clone());
        assert_eq!(
            serde_json::to_value(&stored).unwrap(),
            serde_json::json!(texts)
        );
        assert_eq!(
            serde_json::to_value(&t.assumed).unwrap(),
            serde_json::json!(t.assumed.iter().collect::<Vec<_>>())
        );
    }

    #[test]
    fn permute_moves_each_to_its_place() {
        use rand::{seq::SliceRandom, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for n in [0, 1, 2, 7, 100] {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut rng);
            let mut v: Vec<usize> = (0..n).map(|i| i * 10).collect();
            permute(&mut v, &order);
            assert_eq!(v, order.iter().map(|i| i * 10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn nearest_point_when_disjoint() {
        let pipe = LineString::from(vec![(0.0, 10.0), (10.0, 10.0)]);
        let dig = Geometry::Polygon(Polygon::new(
            LineString::from(vec![
                (2.0, 0.0),
                (4.0, 0.0),
                (4.0, 2.0),
                (2.0, 2.0),
                (2.0, 0.0),
            ]),
            vec![],
        ));
        let (seg, t) = nearest_on_pipe(&dig, &pipe);
        assert_eq!(seg, 0);
        assert!((0.2..=0.4).contains(&t), "{t}");
        let line = Geometry::LineString(LineString::from(vec![(5.0, 0.0), (5.0, 20.0)]));
        let (_, t) = nearest_on_pipe(&line, &pipe);
        assert!((t - 0.5).abs() < 1e-12);
    }
}
