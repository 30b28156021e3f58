//! `/ogc/analysis/*`: analysis endpoints beyond the OGC standard, documented in the OGC
//! API's OpenAPI (`/ogc/api`) and, through the utoipa annotations here, in `/openapi.json`: pipelines within a distance, the clearance audit (GeoJSON
//! or CSV), per-grid statistics, nearest sensors. Pipeline details need `analyst`. Handlers
//! extract, call [`crate::analysis::service`], and render; the geometry parameter (GeoJSON
//! or WKT, the latter read by GDAL in [`crate::io`]) is parsed here.

use super::routes::Routes;
use super::{Caller, QueryParams, ReqId};
use crate::analysis::service::{self, Analyst, AuditFormat, AuditRequest, NearestRequest};
use crate::model::audit::{ReadEntry, ReadKind};
use crate::model::Bbox;
use crate::model::Layer;
use crate::state::AppState;
use crate::AppError;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(pipelines_within))
        .routes(routes!(clearance_audit))
        .routes(routes!(grid_stats))
        .routes(routes!(nearest_sensors))
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
#[utoipa::path(get, path = "/ogc/analysis/pipelines-within", operation_id = "pipelines_within", tag = "analysis",
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
    rid: ReqId,
    QueryParams(q): QueryParams<WithinQuery>,
) -> Result<Json<Value>, AppError> {
    let analyst = Analyst::check(&caller.0)?;
    let g = parse_geometry(&q.geometry)?;
    let area = Bbox::of(&g).map(|b| b.grown_by_metres(q.distance));
    let (kind, features) = (q.kind.as_deref(), q.features.unwrap_or(true));
    let v =
        service::pipelines_within(&analyst, &state.index, g, q.distance, kind, features).await?;
    let n = v["count"].as_u64().unwrap_or(0);
    let entry = ReadEntry::new(ReadKind::Analysis, "ogc/analysis/pipelines-within");
    let entry = entry.within(area).read(&[Layer::Pipelines], n);
    state.audit.record(&caller.0, rid.as_deref(), entry).await?;
    Ok(Json(v))
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
#[utoipa::path(get, path = "/ogc/analysis/clearance-audit", operation_id = "clearance_audit", tag = "analysis",
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
    rid: ReqId,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Response, AppError> {
    let analyst = Analyst::check(&caller.0)?;
    let area = q.bbox.as_deref().and_then(|b| Bbox::parse(b).ok());
    let req = AuditRequest {
        kind: &q.kind,
        other: &q.other,
        bbox: q.bbox.as_deref(),
        max_distance: q.max_distance,
        format: q.f.as_deref(),
    };
    let audit = service::clearance_audit(&analyst, &state.index, req).await?;
    let f = &audit.findings;
    let entry = ReadEntry::new(ReadKind::Analysis, "ogc/analysis/clearance-audit");
    let entry = entry.within(area).read(&[Layer::Pipelines], f.len() as u64);
    state.audit.record(&caller.0, rid.as_deref(), entry).await?;
    Ok(match audit.format {
        AuditFormat::Csv => (
            content_type("text/csv; charset=utf-8"),
            service::audit_csv(f),
        )
            .into_response(),
        AuditFormat::GeoJson => (
            content_type(super::ogc::GEOJSON),
            Json(service::audit_geojson(f)),
        )
            .into_response(),
    })
}

fn content_type(t: &'static str) -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CONTENT_TYPE, HeaderValue::from_static(t))]
}

/// Query of `grid-stats`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridQuery {
    pub level: Option<String>,
    pub bbox: Option<String>,
}

/// Per grid cell: pipeline length by kind, by material, and mean age.
#[utoipa::path(get, path = "/ogc/analysis/grid-stats", operation_id = "analysis_grid_stats", tag = "analysis",
    params(("level" = Option<String>, Query, description = "district, street (default), community, grid or micro_grid"),
        ("bbox" = Option<String>, Query, description = "minLon,minLat,maxLon,maxLat (CRS84)")),
    responses((status = 200, description = "GeoJSON FeatureCollection, one feature per cell: `cell_id, name, code, total_length_m, length_by_kind_m, length_by_material_m, mean_age_years` (pipes clipped to the cell, age length-weighted)", content_type = "application/geo+json"),
        (status = 400, description = "Bad level or bbox"),
        (status = 403, description = "Below the analyst role")))]
pub async fn grid_stats(
    State(state): State<AppState>,
    caller: Caller,
    rid: ReqId,
    QueryParams(q): QueryParams<GridQuery>,
) -> Result<Json<Value>, AppError> {
    let analyst = Analyst::check(&caller.0)?;
    let year = chrono::Datelike::year(&state.clock.now());
    let (level, bbox) = (q.level.as_deref(), q.bbox.as_deref());
    let v = service::grid_stats(&analyst, &state.index, level, bbox, year).await?;
    let n = v["features"].as_array().map_or(0, |a| a.len() as u64);
    let area = bbox.and_then(|b| Bbox::parse(b).ok());
    let entry = ReadEntry::new(ReadKind::Analysis, "ogc/analysis/grid-stats");
    let entry = entry
        .within(area)
        .read(&[Layer::Pipelines, Layer::GridCells], n);
    state.audit.record(&caller.0, rid.as_deref(), entry).await?;
    Ok(Json(v))
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
#[utoipa::path(get, path = "/ogc/analysis/nearest-sensors", operation_id = "nearest_sensors", tag = "analysis",
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
    let req = NearestRequest {
        lon: q.lon,
        lat: q.lat,
        k: q.k,
        kind: q.kind.as_deref(),
        max_distance: q.max_distance,
    };
    Ok(Json(service::nearest_sensors(
        &state.index,
        caller.0.role,
        req,
    )?))
}
