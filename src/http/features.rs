//! `/features`: records as GeoJSON — read one, query a layer by bbox or nearness, and
//! (operators) insert, replace, delete, or bulk-load a whole data set. Handlers extract,
//! call [`crate::records`], and render; writes reach the store first and the index after
//! the commit ([`crate::records::write`]).

use super::routes::Routes;
use super::{parse_id, parse_layer, roles, AtLeast, Caller, JsonBody, QueryParams, ReqId};
use crate::audit;
use crate::config::Config;
use crate::model::audit::ReadKind;
use crate::model::feature::to_feature;
use crate::model::{Dataset, Record, Role};
use crate::records;
use crate::state::AppState;
use crate::AppError;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use utoipa_axum::routes;

pub use crate::records::MAX_LIMIT;

/// Routes of this resource; single-record bodies and bulk bodies have separate size limits.
pub fn router(config: &Config) -> Routes {
    let single = Routes::new()
        .routes(routes!(query, create))
        .routes(routes!(nearest))
        .routes(routes!(read, replace, remove))
        .layer(DefaultBodyLimit::max(config.max_body_bytes));
    let bulk = Routes::new()
        .routes(routes!(bulk_load))
        .layer(DefaultBodyLimit::max(config.max_bulk_body_bytes));
    single.merge(bulk)
}

fn collection(records: &[Arc<Record>], role: Role, extra: Value) -> Value {
    let features: Vec<Value> = records.iter().map(|r| to_feature(r, role)).collect();
    let mut v = json!({"type": "FeatureCollection", "numberReturned": features.len(), "features": features});
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

/// One record as a GeoJSON Feature (pipeline attributes beyond kind need `analyst`).
#[utoipa::path(get, path = "/features/{layer}/{id}", operation_id = "get_feature", tag = "features",
    params(("layer" = String, Path, description = "pipelines, risk_points, grid_cells, sensors or owners"), ("id" = i64, Path, description = "record id")),
    responses((status = 200, description = "GeoJSON Feature"), (status = 404, description = "Unknown layer or id")))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    rid: ReqId,
    Path((layer, id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let layer = parse_layer(&layer)?;
    let id = parse_id(&id)?;
    let record = records::get(&state.index, &caller.0, layer, id)?;
    let target = format!("features/{layer}/{id}");
    let entry = audit::of_records(ReadKind::Features, target, layer, std::iter::once(&*record));
    state.audit.record(&caller.0, rid.as_deref(), entry).await?;
    Ok(Json(to_feature(&record, caller.0.role)))
}

/// Query parameters of a layer query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerQuery {
    /// `minLon,minLat,maxLon,maxLat` in EPSG:4490.
    pub bbox: Option<String>,
    #[serde(default, deserialize_with = "super::limit")]
    pub limit: Option<usize>,
    #[serde(default, deserialize_with = "super::offset")]
    pub offset: Option<usize>,
}

/// Records of a layer, optionally inside a bbox, ordered by id, paged by limit/offset.
#[utoipa::path(get, path = "/features/{layer}", operation_id = "query_features", tag = "features",
    params(("layer" = String, Path, description = "layer name"),
        ("bbox" = Option<String>, Query, description = "minLon,minLat,maxLon,maxLat (EPSG:4490)"),
        ("limit" = Option<usize>, Query, description = "at most 10000, default 100"),
        ("offset" = Option<usize>, Query, description = "records to skip")),
    responses((status = 200, description = "GeoJSON FeatureCollection"), (status = 400, description = "Bad parameter")))]
pub async fn query(
    State(state): State<AppState>,
    caller: Caller,
    rid: ReqId,
    Path(layer): Path<String>,
    QueryParams(q): QueryParams<LayerQuery>,
) -> Result<Json<Value>, AppError> {
    let layer = parse_layer(&layer)?;
    let bbox = q.bbox.as_deref();
    let page = records::query(&state.index, &caller.0, layer, bbox, q.limit, q.offset)?;
    let recs = page.records.iter().map(|r| &**r);
    let entry = audit::of_records(ReadKind::Features, format!("features/{layer}"), layer, recs);
    state.audit.record(&caller.0, rid.as_deref(), entry).await?;
    Ok(Json(collection(
        &page.records,
        caller.0.role,
        json!({"numberMatched": page.matched}),
    )))
}

/// Query parameters of a nearest query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NearestQuery {
    pub lon: f64,
    pub lat: f64,
    /// How many, 1..=1000 (default 10).
    pub k: Option<usize>,
    /// Only records within this many metres.
    pub max_distance_m: Option<f64>,
}

/// The k records nearest a point, with distances in metres (projected CRS).
#[utoipa::path(get, path = "/features/{layer}/nearest", operation_id = "nearest_features", tag = "features",
    params(("layer" = String, Path, description = "spatial layer"), ("lon" = f64, Query, description = "longitude"), ("lat" = f64, Query, description = "latitude"),
        ("k" = Option<usize>, Query, description = "1..1000"), ("max_distance_m" = Option<f64>, Query, description = "radius in metres")),
    responses((status = 200, description = "GeoJSON FeatureCollection, nearest first, each with distance_m")))]
pub async fn nearest(
    State(state): State<AppState>,
    caller: Caller,
    rid: ReqId,
    Path(layer): Path<String>,
    QueryParams(q): QueryParams<NearestQuery>,
) -> Result<Json<Value>, AppError> {
    let layer = parse_layer(&layer)?;
    let at = (q.lon, q.lat);
    let hits = records::nearest(&state.index, &caller.0, layer, at, q.k, q.max_distance_m)?;
    let recs = hits.iter().map(|h| &*h.record);
    let target = format!("features/{layer}/nearest");
    let entry = audit::of_records(ReadKind::Features, target, layer, recs);
    state.audit.record(&caller.0, rid.as_deref(), entry).await?;
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

/// Inserts a record (operator). Body: a GeoJSON Feature; `id` optional.
#[utoipa::path(post, path = "/features/{layer}", operation_id = "create_feature", tag = "features",
    params(("layer" = String, Path, description = "layer name")),
    request_body(content = Object, description = "GeoJSON Feature", content_type = "application/json"),
    responses((status = 201, description = "Created; the stored Feature"), (status = 409, description = "Duplicate id or dangling reference"),
        (status = 413, description = "Body too large"), (status = 422, description = "Invalid record or geometry")))]
pub async fn create(
    State(state): State<AppState>,
    AtLeast(actor, _): AtLeast<roles::Operator>,
    Path(layer): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<impl IntoResponse, AppError> {
    let layer = parse_layer(&layer)?;
    let stored = records::create(&state, &actor, layer, body).await?;
    let location = format!("/features/{layer}/{}", stored.id());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(to_feature(&stored, actor.role)),
    ))
}

/// Replaces a record (operator); the body's id, if any, must match the path.
#[utoipa::path(put, path = "/features/{layer}/{id}", operation_id = "replace_feature", tag = "features",
    params(("layer" = String, Path, description = "layer name"), ("id" = i64, Path, description = "record id")),
    request_body(content = Object, description = "GeoJSON Feature", content_type = "application/json"),
    responses((status = 200, description = "The stored Feature"), (status = 404, description = "No such record"), (status = 422, description = "Invalid record")))]
pub async fn replace(
    State(state): State<AppState>,
    AtLeast(actor, _): AtLeast<roles::Operator>,
    Path((layer, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, AppError> {
    let layer = parse_layer(&layer)?;
    let id = parse_id(&id)?;
    let stored = records::replace(&state, &actor, layer, id, body).await?;
    Ok(Json(to_feature(&stored, actor.role)))
}

/// Deletes a record (operator). 409 if other records still reference it.
#[utoipa::path(delete, path = "/features/{layer}/{id}", operation_id = "delete_feature", tag = "features",
    params(("layer" = String, Path, description = "layer name"), ("id" = i64, Path, description = "record id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such record"), (status = 409, description = "Still referenced")))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((layer, id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let layer = parse_layer(&layer)?;
    let id = parse_id(&id)?;
    records::delete(&state, &caller.0, layer, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Loads a whole data set in one transaction (operator): all of it or nothing. Body: a JSON
/// object with arrays `owners`, `grid_cells`, `pipelines`, `risk_points`, `sensors` of
/// records in their flat JSON form (as `lifeline generate --out` writes them).
#[utoipa::path(post, path = "/bulk", operation_id = "bulk_load", tag = "features",
    request_body(content = Object, description = "Dataset: arrays per layer", content_type = "application/json"),
    responses((status = 200, description = "Loaded; counts per layer and the change-log version"), (status = 409, description = "Reference or id conflict; nothing written"),
        (status = 422, description = "An invalid record, named; nothing written")))]
pub async fn bulk_load(
    State(state): State<AppState>,
    AtLeast(actor, _): AtLeast<roles::Operator>,
    JsonBody(data): JsonBody<Dataset>,
) -> Result<Json<Value>, AppError> {
    let loaded = records::bulk_load(&state, &actor, data).await?;
    let counts: serde_json::Map<String, Value> = loaded
        .counts
        .iter()
        .map(|(l, n)| (l.to_string(), json!(n)))
        .collect();
    Ok(Json(json!({"loaded": counts, "version": loaded.version})))
}
