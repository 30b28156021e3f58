//! The analysis use cases the HTTP layer calls (`/ogc/analysis/*`): each parses its
//! parameters, runs the analysis on the blocking pool (projections and clipping are CPU
//! work) and renders the answer — GeoJSON FeatureCollections, or CSV for the clearance
//! audit ([`audit_csv`]). Pipeline details need the analyst role: those use cases take an
//! [`Analyst`], which only [`Analyst::check`] makes, so no entry point can skip the check.
//! Geometry input (GeoJSON or WKT) is parsed by the caller: WKT needs GDAL, which lives in
//! a tier this crate does not see.

use super::{AnalysisError, CellStats, Finding, WithinSummary};
use geo::Geometry;
use lifeline_excavation::rules::Rules;
use lifeline_index::SpatialIndex;
use lifeline_model::access::require;
use lifeline_model::feature::to_feature;
use lifeline_model::geom::to_geojson;
use lifeline_model::{Actor, Bbox, GridLevel, PipeKind, Role, SensorKind};
use serde_json::{json, Value};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

/// A caller checked to hold the analyst role or above.
#[derive(Debug, Clone, Copy)]
pub struct Analyst<'a>(&'a Actor);

impl<'a> Analyst<'a> {
    /// Checks that `actor` may see pipeline details (analyst and above).
    pub fn check(actor: &'a Actor) -> Result<Analyst<'a>, AnalysisError> {
        require(actor, Role::Analyst)?;
        Ok(Analyst(actor))
    }

    /// The caller's role (attributes are shown as it may read them).
    pub fn role(&self) -> Role {
        self.0.role
    }
}

/// The clearance rule table the audit judges by (`data/rules/clearances.toml`).
fn rules() -> &'static Rules {
    static R: OnceLock<Rules> = OnceLock::new();
    R.get_or_init(Rules::builtin)
}

fn parse<T: FromStr>(what: &str, s: &str) -> Result<T, AnalysisError>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>()
        .map_err(|e| AnalysisError::Bad(format!("{what}: {e}")))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AnalysisError> + Send + 'static,
) -> Result<T, AnalysisError> {
    tokio::task::spawn_blocking(f).await?
}

fn collection(features: Vec<Value>) -> Value {
    json!({"type": "FeatureCollection", "numberReturned": features.len(), "features": features})
}

/// Pipelines within `distance_m` of a lon/lat geometry (of one `kind` if given): counts and
/// lengths by kind and owner, and unless `features` is false the pipelines as GeoJSON
/// features with `distance_m` and `length_m`.
pub async fn pipelines_within(
    analyst: &Analyst<'_>,
    index: &Arc<SpatialIndex>,
    geometry: Geometry<f64>,
    distance_m: f64,
    kind: Option<&str>,
    features: bool,
) -> Result<Value, AnalysisError> {
    let kind = kind.map(|k| parse::<PipeKind>("kind", k)).transpose()?;
    let index = index.clone();
    let s = blocking(move || super::pipelines_within(&index, &geometry, distance_m, kind)).await?;
    Ok(within_json(&s, features.then_some(analyst.role())))
}

/// The answer of [`pipelines_within`]; features when `role` is given.
fn within_json(s: &WithinSummary, role: Option<Role>) -> Value {
    let features: Vec<Value> = match role {
        Some(role) => s
            .hits
            .iter()
            .map(|(h, r)| {
                let mut f = to_feature(r, role);
                f["properties"]["distance_m"] = json!(h.distance_m);
                f["properties"]["length_m"] = json!(h.length_m);
                f
            })
            .collect(),
        None => Vec::new(),
    };
    json!({
        "count": s.count,
        "total_length_m": s.total_length_m,
        "length_by_kind_m": s.length_by_kind_m,
        "length_by_owner_m": s.length_by_owner_m,
        "type": "FeatureCollection",
        "features": features,
    })
}

/// Encodings of the clearance audit (`f=json|geojson` or `f=csv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFormat {
    GeoJson,
    Csv,
}

impl FromStr for AuditFormat {
    type Err = AnalysisError;

    fn from_str(s: &str) -> Result<Self, AnalysisError> {
        match s {
            "json" | "geojson" => Ok(AuditFormat::GeoJson),
            "csv" => Ok(AuditFormat::Csv),
            o => Err(AnalysisError::Bad(format!(
                "f='{}' is not supported; use json or csv",
                o.chars().take(20).collect::<String>()
            ))),
        }
    }
}

/// The parameters of a clearance audit, as given.
#[derive(Debug, Clone, Copy)]
pub struct AuditRequest<'q> {
    pub kind: &'q str,
    pub other: &'q str,
    /// `minLon,minLat,maxLon,maxLat`.
    pub bbox: Option<&'q str>,
    /// Overrides the rule table's horizontal clearance, metres.
    pub max_distance: Option<f64>,
    /// `f`: the encoding.
    pub format: Option<&'q str>,
}

/// The findings of a clearance audit and the encoding asked for.
#[derive(Debug)]
pub struct Audit {
    pub findings: Vec<Finding>,
    pub format: AuditFormat,
}

/// The clearance audit between two pipe kinds (see [`super::clearance_audit`]).
pub async fn clearance_audit(
    _analyst: &Analyst<'_>,
    index: &Arc<SpatialIndex>,
    req: AuditRequest<'_>,
) -> Result<Audit, AnalysisError> {
    let kind = parse::<PipeKind>("kind", req.kind)?;
    let other = parse::<PipeKind>("other", req.other)?;
    let bbox = req.bbox.map(Bbox::parse).transpose()?;
    let format = req.format.map(str::parse).transpose()?;
    let (index, max_distance) = (index.clone(), req.max_distance);
    let findings = blocking(move || {
        super::clearance_audit(&index, rules(), kind, other, bbox.as_ref(), max_distance)
    })
    .await?;
    Ok(Audit {
        findings,
        format: format.unwrap_or(AuditFormat::GeoJson),
    })
}

/// The audit's findings as CSV, one row per pair, with a header row.
pub fn audit_csv(findings: &[Finding]) -> String {
    let mut out = String::from("pipe_id,pipe_kind,other_id,other_kind,relation,distance_m,required_m,rule_id,rule_confirmed,pipe_depth_m,other_depth_m,vertical_clearance_m,required_vertical_m,vertical_rule_id,size_known,vertical\n");
    let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
    for f in findings {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            f.pipe_id,
            f.pipe_kind,
            f.other_id,
            f.other_kind,
            f.relation,
            f.distance_m,
            f.required_m,
            f.rule_id,
            f.rule_confirmed,
            opt(f.pipe_depth_m),
            opt(f.other_depth_m),
            opt(f.vertical_clearance_m),
            opt(f.required_vertical_m),
            f.vertical_rule_id.as_deref().unwrap_or(""),
            f.size_known,
            f.vertical
        ));
    }
    out
}

/// The audit's findings as a GeoJSON FeatureCollection: both pipes as a MultiLineString,
/// the finding as properties.
pub fn audit_geojson(findings: &[Finding]) -> Value {
    let features: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({"type": "Feature", "geometry": to_geojson(&Geometry::MultiLineString(f.geometry.clone())),
                   "properties": serde_json::to_value(f).unwrap_or(Value::Null)})
        })
        .collect();
    collection(features)
}

/// Per grid cell of `level` (default `street`), inside `bbox` if given: pipeline length by
/// kind and material and the mean age in `current_year`, as a GeoJSON FeatureCollection.
pub async fn grid_stats(
    _analyst: &Analyst<'_>,
    index: &Arc<SpatialIndex>,
    level: Option<&str>,
    bbox: Option<&str>,
    current_year: i32,
) -> Result<Value, AnalysisError> {
    let level = parse::<GridLevel>("level", level.unwrap_or("street"))?;
    let bbox = bbox.map(Bbox::parse).transpose()?;
    let index = index.clone();
    let stats =
        blocking(move || super::grid_stats(&index, level, bbox.as_ref(), current_year)).await?;
    Ok(collection(stats.iter().map(cell_feature).collect()))
}

fn cell_feature(s: &CellStats) -> Value {
    json!({"type": "Feature", "id": s.cell_id, "geometry": to_geojson(&Geometry::MultiPolygon(s.geometry.clone())),
           "properties": serde_json::to_value(s).unwrap_or(Value::Null)})
}

/// The parameters of a nearest-sensors query, as given.
#[derive(Debug, Clone, Copy)]
pub struct NearestRequest<'q> {
    pub lon: f64,
    pub lat: f64,
    /// How many, 1..=1000 (default 10).
    pub k: Option<usize>,
    /// Only this sensor kind.
    pub kind: Option<&'q str>,
    /// Only sensors within this many metres.
    pub max_distance: Option<f64>,
}

/// The sensors nearest a point, nearest first, as a GeoJSON FeatureCollection whose
/// features carry `distance_m` (attributes as `role` may read them).
pub fn nearest_sensors(
    index: &SpatialIndex,
    role: Role,
    req: NearestRequest<'_>,
) -> Result<Value, AnalysisError> {
    let kind = req
        .kind
        .map(|k| parse::<SensorKind>("kind", k))
        .transpose()?;
    if let Some(d) = req.max_distance {
        if !d.is_finite() || d < 0.0 {
            return Err(AnalysisError::Bad(
                "max_distance must be a non-negative number".into(),
            ));
        }
    }
    let k = req.k.unwrap_or(10);
    let hits = super::nearest_sensors(index, req.lon, req.lat, k, kind, req.max_distance)?;
    let features: Vec<Value> = hits
        .iter()
        .map(|h| {
            let mut f = to_feature(&h.record, role);
            f["properties"]["distance_m"] = json!((h.distance_m * 1000.0).round() / 1000.0);
            f
        })
        .collect();
    Ok(collection(features))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_formats_parse_once() {
        assert_eq!(
            "geojson".parse::<AuditFormat>().unwrap(),
            AuditFormat::GeoJson
        );
        assert_eq!("csv".parse::<AuditFormat>().unwrap(), AuditFormat::Csv);
        let e = "xlsx".parse::<AuditFormat>().unwrap_err();
        assert_eq!(e.to_string(), "f='xlsx' is not supported; use json or csv");
    }

    #[test]
    fn only_analysts_pass() {
        let actor = |role| Actor {
            name: "t".into(),
            key_id: None,
            role,
        };
        assert!(Analyst::check(&actor(Role::Analyst)).is_ok());
        let viewer = actor(Role::Viewer);
        assert!(matches!(
            Analyst::check(&viewer),
            Err(AnalysisError::Forbidden(_))
        ));
    }

    #[test]
    fn csv_has_a_header_row() {
        assert!(audit_csv(&[]).starts_with("pipe_id,pipe_kind,other_id"));
        assert_eq!(audit_csv(&[]).lines().count(), 1);
    }
}
