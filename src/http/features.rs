//! `/features`: records as GeoJSON — read one, query a layer by bbox or nearness, and
//! (operators) insert, replace, delete, or bulk-load a whole data set. Writes reach the
//! store first and the index after the commit ([`AppState::write`]).

use super::{parse_id, parse_layer, Caller, JsonBody, QueryParams};
use crate::auth::require;
use crate::config::Config;
use crate::model::feature::{from_feature, to_feature};
use crate::model::{Bbox, Dataset, Layer, Record, Role};
use crate::state::{AppState, IndexUpdate};
use crate::AppError;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Most features one query returns.
pub const MAX_LIMIT: usize = 10_000;

/// Routes of this resource; single-record bodies and bulk bodies have separate size limits.
pub fn router(config: &Config) -> Router<AppState> {
    let single = Router::new()
        .route("/features/{layer}", get(query).post(create))
        .route("/features/{layer}/nearest", get(nearest))
        .route(
            "/features/{layer}/{id}",
            get(read).put(replace).delete(remove),
        )
        .layer(DefaultBodyLimit::max(config.max_body_bytes));
    let bulk = Router::new()
        .route("/bulk", post(bulk_load))
        .layer(DefaultBodyLimit::max(config.max_bulk_body_bytes));
    single.merge(bulk)
}

fn need_read(caller: &Caller, layer: Layer) -> Result<(), AppError> {
    if layer == Layer::Owners {
        require(&caller.0, Role::Contractor)?;
    }
    Ok(())
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
#[utoipa::path(get, path = "/features/{layer}/{id}", tag = "features",
    params(("layer" = String, Path, description = "pipelines, risk_points, grid_cells, sensors or owners"), ("id" = i64, Path, description = "record id")),
    responses((status = 200, description = "GeoJSON Feature"), (status = 404, description = "Unknown layer or id")))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path((layer, id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let layer = parse_layer(&layer)?;
    let id = parse_id(&id)?;
    need_read(&caller, layer)?;
    let record = state
        .index
        .get(layer, id)
        .ok_or_else(|| AppError::NotFound(format!("{layer} {id} does not exist")))?;
    Ok(Json(to_feature(&record, caller.0.role)))
}

/// Query parameters of a layer query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerQuery {
    /// `minLon,minLat,maxLon,maxLat` in EPSG:4490.
    pub bbox: Option<String>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// Records of a layer, optionally inside a bbox, ordered by id, paged by limit/offset.
#[utoipa::path(get, path = "/features/{layer}", tag = "features",
    params(("layer" = String, Path, description = "layer name"),
        ("bbox" = Option<String>, Query, description = "minLon,minLat,maxLon,maxLat (EPSG:4490)"),
        ("limit" = Option<usize>, Query, description = "at most 10000, default 100"),
        ("offset" = Option<usize>, Query, description = "records to skip")),
    responses((status = 200, description = "GeoJSON FeatureCollection"), (status = 400, description = "Bad parameter")))]
pub async fn query(
    State(state): State<AppState>,
    caller: Caller,
    Path(layer): Path<String>,
    QueryParams(q): QueryParams<LayerQuery>,
) -> Result<Json<Value>, AppError> {
    let layer = parse_layer(&layer)?;
    need_read(&caller, layer)?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(AppError::BadRequest(format!(
            "limit must be 1..{MAX_LIMIT}"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    let mut records = match q.bbox {
        Some(b) => {
            if layer == Layer::Owners {
                return Err(AppError::BadRequest(
                    "owners have no geometry; bbox does not apply".into(),
                ));
            }
            let bbox = Bbox::parse(&b).map_err(|e| AppError::BadRequest(e.to_string()))?;
            state.index.bbox(layer, &bbox)?
        }
        None => state.index.all(layer),
    };
    records.sort_unstable_by_key(|r| r.id());
    let matched = records.len();
    let page: Vec<Arc<Record>> = records.into_iter().skip(offset).take(limit).collect();
    Ok(Json(collection(
        &page,
        caller.0.role,
        json!({"numberMatched": matched}),
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
#[utoipa::path(get, path = "/features/{layer}/nearest", tag = "features",
    params(("layer" = String, Path, description = "spatial layer"), ("lon" = f64, Query, description = "longitude"), ("lat" = f64, Query, description = "latitude"),
        ("k" = Option<usize>, Query, description = "1..1000"), ("max_distance_m" = Option<f64>, Query, description = "radius in metres")),
    responses((status = 200, description = "GeoJSON FeatureCollection, nearest first, each with distance_m")))]
pub async fn nearest(
    State(state): State<AppState>,
    caller: Caller,
    Path(layer): Path<String>,
    QueryParams(q): QueryParams<NearestQuery>,
) -> Result<Json<Value>, AppError> {
    let layer = parse_layer(&layer)?;
    need_read(&caller, layer)?;
    Bbox::new(q.lon, q.lat, q.lon, q.lat)
        .map_err(|e| AppError::BadRequest(format!("lon/lat: {e}")))?;
    let k = q.k.unwrap_or(10);
    if !(1..=1000).contains(&k) {
        return Err(AppError::BadRequest("k must be 1..1000".into()));
    }
    if let Some(d) = q.max_distance_m {
        if !d.is_finite() || d < 0.0 {
            return Err(AppError::BadRequest(
                "max_distance_m must be a non-negative number".into(),
            ));
        }
    }
    let hits = state
        .index
        .nearest(layer, q.lon, q.lat, k, q.max_distance_m)?;
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

fn parse_record(state: &AppState, layer: Layer, body: Value) -> Result<Record, AppError> {
    let record = from_feature(layer, body)?;
    record.validate(state.catalog)?;
    Ok(record)
}

/// Inserts a record (operator). Body: a GeoJSON Feature; `id` optional.
#[utoipa::path(post, path = "/features/{layer}", tag = "features",
    params(("layer" = String, Path, description = "layer name")),
    request_body(content = Object, description = "GeoJSON Feature", content_type = "application/json"),
    responses((status = 201, description = "Created; the stored Feature"), (status = 409, description = "Duplicate id or dangling reference"),
        (status = 413, description = "Body too large"), (status = 422, description = "Invalid record or geometry")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(layer): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<impl IntoResponse, AppError> {
    let layer = parse_layer(&layer)?;
    require(&caller.0, Role::Operator)?;
    let record = parse_record(&state, layer, body)?;
    let actor = caller.0.clone();
    let updates = state
        .write(|store| async move {
            let w = store.insert(&record, &actor).await?;
            Ok((vec![IndexUpdate::Upsert(Box::new(w.record))], w.version))
        })
        .await?;
    let Some(IndexUpdate::Upsert(stored)) = updates.into_iter().next() else {
        return Err(AppError::Internal("insert returned no record".into()));
    };
    let location = format!("/features/{layer}/{}", stored.id());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(to_feature(&stored, caller.0.role)),
    ))
}

/// Replaces a record (operator); the body's id, if any, must match the path.
#[utoipa::path(put, path = "/features/{layer}/{id}", tag = "features",
    params(("layer" = String, Path, description = "layer name"), ("id" = i64, Path, description = "record id")),
    request_body(content = Object, description = "GeoJSON Feature", content_type = "application/json"),
    responses((status = 200, description = "The stored Feature"), (status = 404, description = "No such record"), (status = 422, description = "Invalid record")))]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path((layer, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, AppError> {
    let layer = parse_layer(&layer)?;
    let id = parse_id(&id)?;
    require(&caller.0, Role::Operator)?;
    let mut record = parse_record(&state, layer, body)?;
    if record.id() != 0 && record.id() != id {
        return Err(AppError::BadRequest(format!(
            "body id {} does not match path id {id}",
            record.id()
        )));
    }
    record.set_id(id);
    let actor = caller.0.clone();
    let updates = state
        .write(|store| async move {
            let w = store.update(&record, &actor).await?;
            Ok((vec![IndexUpdate::Upsert(Box::new(w.record))], w.version))
        })
        .await?;
    let Some(IndexUpdate::Upsert(stored)) = updates.into_iter().next() else {
        return Err(AppError::Internal("update returned no record".into()));
    };
    Ok(Json(to_feature(&stored, caller.0.role)))
}

/// Deletes a record (operator). 409 if other records still reference it.
#[utoipa::path(delete, path = "/features/{layer}/{id}", tag = "features",
    params(("layer" = String, Path, description = "layer name"), ("id" = i64, Path, description = "record id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such record"), (status = 409, description = "Still referenced")))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((layer, id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let layer = parse_layer(&layer)?;
    let id = parse_id(&id)?;
    require(&caller.0, Role::Operator)?;
    let actor = caller.0.clone();
    state
        .write(|store| async move {
            let version = store.delete(layer, id, &actor).await?;
            Ok((vec![IndexUpdate::Remove(layer, id)], version))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Loads a whole data set in one transaction (operator): all of it or nothing. Body: a JSON
/// object with arrays `owners`, `grid_cells`, `pipelines`, `risk_points`, `sensors` of
/// records in their flat JSON form (as `lifeline generate --json` writes them).
#[utoipa::path(post, path = "/bulk", tag = "features",
    request_body(content = Object, description = "Dataset: arrays per layer", content_type = "application/json"),
    responses((status = 200, description = "Loaded; counts per layer and the change-log version"), (status = 409, description = "Reference or id conflict; nothing written"),
        (status = 422, description = "An invalid record, named; nothing written")))]
pub async fn bulk_load(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(data): JsonBody<Dataset>,
) -> Result<Json<Value>, AppError> {
    require(&caller.0, Role::Operator)?;
    data.validate(state.catalog)?;
    let counts: serde_json::Map<String, Value> = data
        .counts()
        .iter()
        .map(|(l, n)| (l.to_string(), json!(n)))
        .collect();
    let actor = caller.0.clone();
    let data = Arc::new(data);
    state
        .write(|store| async move {
            let version = store.bulk_load(&data, &actor).await?;
            Ok((vec![IndexUpdate::Reload], version))
        })
        .await?;
    Ok(Json(
        json!({"loaded": counts, "version": state.index.version()}),
    ))
}
