//! `/ogc/analysis/*`: analysis endpoints beyond the OGC standard, documented in the OGC
//! API's OpenAPI (`/ogc/api`) and, through the utoipa annotations here, in `/openapi.json`: pipelines within a distance, the clearance audit (GeoJSON
//! or CSV), per-grid statistics, nearest sensors. Pipeline details need `analyst`.

use super::{Caller, QueryParams};
use crate::analysis;
use crate::auth::require;
use crate::excavation::rules::Rules;
use crate::model::feature::to_feature;
use crate::model::geom::to_geojson;
use crate::model::{Bbox, GridLevel, PipeKind, Role, SensorKind};
use crate::state::AppState;
use crate::AppError;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::OnceLock;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ogc/analysis/pipelines-within", get(pipelines_within))
        .route("/ogc/analysis/clearance-audit", get(clearance_audit))
        .route("/ogc/analysis/grid-stats", get(grid_stats))
        .route("/ogc/analysis/nearest-sensors", get(nearest_sensors))
}

fn rules() -> &'static Rules {
    static R: OnceLock<Rules> = OnceLock::new();
    R.get_or_init(Rules::builtin)
}

fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, AppError>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>()
        .map_err(|e| AppError::BadRequest(format!("{what}: {e}")))
}

/// Parses a geometry given as WKT or GeoJSON (CRS84).
fn parse_geometry(s: &str) -> Result<geo::Geometry<f64>, AppError> {
    if s.len() > 64 * 1024 {
        return Err(AppError::BadRequest(
            "geometry is larger than 64 KiB".into(),
        ));
    }
    let g = if s.trim_start().starts_with('{') {
        let gj: geojson::Geometry =
            serde_json::from_str(s).map_err(|e| AppError::BadRequest(format!("geometry: {e}")))?;
        crate::model::geom::from_geojson(gj)?
    } else {
        crate::io::gdal::geometry_from_wkt(s).map_err(|e| {
            AppError::BadRequest(format!("geometry is neither GeoJSON nor WKT: {e}"))
        })?
    };
    let b = Bbox::of(&g).ok_or_else(|| AppError::BadRequest("geometry is empty".into()))?;
    Bbox::new(b.min_x(), b.min_y(), b.max_x(), b.max_y())
        .map_err(|e| AppError::BadRequest(format!("geometry: {e}")))?;
    Ok(g)
}

/// Query of `pipelines-within`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithinQuery {
    pub geometry: String,
    pub distance: f64,
    pub kind: Option<String>,
    pub features: Option<bool>,
}

/// Pipelines within a distance of a geometry, with lengths by kind and owner.
#[utoipa::path(get, path = "/ogc/analysis/pipelines-within", tag = "analysis",
    params(("geometry" = String, Query, description = "WKT or GeoJSON geometry in CRS84 (lon/lat), at most 64 KiB"),
        ("distance" = f64, Query, description = "metres, 0..50000 (measured in the deployment's projected CRS)"),
        ("kind" = Option<String>, Query, description = "only this pipe kind"),
        ("features" = Option<bool>, Query, description = "include the pipelines as GeoJSON features (default true)")),
    responses((status = 200, description = "`{\"count\", \"total_length_m\", \"length_by_kind_m\": {kind: m}, \"length_by_owner_m\": {owner_id: m}, \"type\": \"FeatureCollection\", \"features\"}`; each feature's properties add `distance_m` and `length_m` (whole pipe)"),
        (status = 400, description = "Bad geometry, distance or kind"),
        (status = 403, description = "Below the analyst role")))]
pub async fn pipelines_within(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<WithinQuery>,
) -> Result<Json<Value>, AppError> {
    require(&caller.0, Role::Analyst)?;
    let g = parse_geometry(&q.geometry)?;
    let kind = q
        .kind
        .as_deref()
        .map(|k| parse::<PipeKind>("kind", k))
        .transpose()?;
    let index = state.index.clone();
    let s = tokio::task::spawn_blocking(move || {
        analysis::pipelines_within(&index, &g, q.distance, kind)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    let features: Vec<Value> = if q.features.unwrap_or(true) {
        s.hits
            .iter()
            .map(|(h, r)| {
                let mut f = to_feature(r, caller.0.role);
                f["properties"]["distance_m"] = json!(h.distance_m);
                f["properties"]["length_m"] = json!(h.length_m);
                f
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Json(json!({
        "count": s.count,
        "total_length_m": s.total_length_m,
        "length_by_kind_m": s.length_by_kind_m,
        "length_by_owner_m": s.length_by_owner_m,
        "type": "FeatureCollection",
        "features": features,
    })))
}

/// Query of `clearance-audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub kind: String,
    pub other: String,
    pub bbox: Option<String>,
    pub max_distance: Option<f64>,
    pub f: Option<String>,
}

/// The clearance audit between two pipe kinds, as GeoJSON or CSV.
#[utoipa::path(get, path = "/ogc/analysis/clearance-audit", tag = "analysis",
    params(("kind" = String, Query, description = "first pipe kind"),
        ("other" = String, Query, description = "second pipe kind"),
        ("bbox" = Option<String>, Query, description = "minLon,minLat,maxLon,maxLat (CRS84); without it at most 200,000 pipes of `kind`"),
        ("max_distance" = Option<f64>, Query, description = "override the rule table's horizontal clearance, metres (0..100)"),
        ("f" = Option<String>, Query, description = "json (GeoJSON, default) or csv")),
    responses((status = 200, description = "One feature (or CSV row) per pair that crosses or runs closer than the stricter horizontal clearance of data/rules/clearances.toml: `pipe_id, pipe_kind, other_id, other_kind, relation (crossing|parallel), distance_m, required_m, rule_id, rule_confirmed`, and for crossings the vertical check: `pipe_depth_m, other_depth_m` (top of pipe at the crossing), `vertical_clearance_m` (upper pipe's bottom to lower pipe's top), `required_vertical_m, vertical_rule_id, size_known, vertical (ok|violation|unknown_depth|no_rule|not_applicable)`. Geometry: both pipes as a MultiLineString. With f=csv the same columns as text/csv.",
            content_type = "application/geo+json"),
        (status = 400, description = "Bad kind, bbox, max_distance or f; too many pipes in scope"),
        (status = 403, description = "Below the analyst role")))]
pub async fn clearance_audit(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Response, AppError> {
    require(&caller.0, Role::Analyst)?;
    let kind = parse::<PipeKind>("kind", &q.kind)?;
    let other = parse::<PipeKind>("other", &q.other)?;
    let bbox = q.bbox.as_deref().map(Bbox::parse).transpose()?;
    let csv = match q.f.as_deref() {
        None | Some("json") | Some("geojson") => false,
        Some("csv") => true,
        Some(o) => {
            return Err(AppError::BadRequest(format!(
                "f='{}' is not supported; use json or csv",
                o.chars().take(20).collect::<String>()
            )))
        }
    };
    let index = state.index.clone();
    let findings = tokio::task::spawn_blocking(move || {
        analysis::clearance_audit(&index, rules(), kind, other, bbox.as_ref(), q.max_distance)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    if csv {
        let mut out = String::from("pipe_id,pipe_kind,other_id,other_kind,relation,distance_m,required_m,rule_id,rule_confirmed,pipe_depth_m,other_depth_m,vertical_clearance_m,required_vertical_m,vertical_rule_id,size_known,vertical\n");
        let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
        for f in &findings {
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
        return Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            )],
            out,
        )
            .into_response());
    }
    let features: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({"type": "Feature", "geometry": to_geojson(&geo::Geometry::MultiLineString(f.geometry.clone())),
                   "properties": serde_json::to_value(f).unwrap_or(Value::Null)})
        })
        .collect();
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(super::ogc::GEOJSON))],
        Json(json!({"type": "FeatureCollection", "numberReturned": features.len(), "features": features})),
    )
        .into_response())
}

/// Query of `grid-stats`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridQuery {
    pub level: Option<String>,
    pub bbox: Option<String>,
}

/// Per grid cell: pipeline length by kind, by material, and mean age.
#[utoipa::path(get, path = "/ogc/analysis/grid-stats", tag = "analysis",
    params(("level" = Option<String>, Query, description = "district, street (default), community, grid or micro_grid"),
        ("bbox" = Option<String>, Query, description = "minLon,minLat,maxLon,maxLat (CRS84)")),
    responses((status = 200, description = "GeoJSON FeatureCollection, one feature per cell: `cell_id, name, code, total_length_m, length_by_kind_m, length_by_material_m, mean_age_years` (pipes clipped to the cell, age length-weighted)", content_type = "application/geo+json"),
        (status = 400, description = "Bad level or bbox"),
        (status = 403, description = "Below the analyst role")))]
pub async fn grid_stats(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<GridQuery>,
) -> Result<Json<Value>, AppError> {
    require(&caller.0, Role::Analyst)?;
    let level = parse::<GridLevel>("level", q.level.as_deref().unwrap_or("street"))?;
    let bbox = q.bbox.as_deref().map(Bbox::parse).transpose()?;
    let index = state.index.clone();
    let year = chrono::Datelike::year(&state.clock.now());
    let stats = tokio::task::spawn_blocking(move || {
        analysis::grid_stats(&index, level, bbox.as_ref(), year)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    let features: Vec<Value> = stats
        .iter()
        .map(|s| {
            json!({"type": "Feature", "id": s.cell_id, "geometry": to_geojson(&geo::Geometry::MultiPolygon(s.geometry.clone())),
                   "properties": serde_json::to_value(s).unwrap_or(Value::Null)})
        })
        .collect();
    Ok(Json(
        json!({"type": "FeatureCollection", "numberReturned": features.len(), "features": features}),
    ))
}

/// Query of `nearest-sensors`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NearestQuery {
    pub lon: f64,
    pub lat: f64,
    pub k: Option<usize>,
    pub kind: Option<String>,
    pub max_distance: Option<f64>,
}

/// The sensors nearest a point, with distances in metres.
#[utoipa::path(get, path = "/ogc/analysis/nearest-sensors", tag = "analysis",
    params(("lon" = f64, Query, description = "longitude (CRS84)"),
        ("lat" = f64, Query, description = "latitude (CRS84)"),
        ("k" = Option<usize>, Query, description = "1..1000, default 10"),
        ("kind" = Option<String>, Query, description = "only this sensor kind"),
        ("max_distance" = Option<f64>, Query, description = "only sensors within this many metres")),
    responses((status = 200, description = "GeoJSON FeatureCollection of sensors, nearest first, each with `distance_m`", content_type = "application/geo+json"),
        (status = 400, description = "Bad point, k, kind or max_distance")))]
pub async fn nearest_sensors(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<NearestQuery>,
) -> Result<Json<Value>, AppError> {
    let kind = q
        .kind
        .as_deref()
        .map(|k| parse::<SensorKind>("kind", k))
        .transpose()?;
    if let Some(d) = q.max_distance {
        if !d.is_finite() || d < 0.0 {
            return Err(AppError::BadRequest(
                "max_distance must be a non-negative number".into(),
            ));
        }
    }
    let hits = analysis::nearest_sensors(
        &state.index,
        q.lon,
        q.lat,
        q.k.unwrap_or(10),
        kind,
        q.max_distance,
    )?;
    let features: Vec<Value> = hits
        .iter()
        .map(|h| {
            let mut f = to_feature(&h.record, caller.0.role);
            f["properties"]["distance_m"] = json!((h.distance_m * 1000.0).round() / 1000.0);
            f
        })
        .collect();
    Ok(Json(
        json!({"type": "FeatureCollection", "numberReturned": features.len(), "features": features}),
    ))
}
