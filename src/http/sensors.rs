//! `/sensors`: reading ingest (`POST /sensors/readings`, JSON array or NDJSON, per-item
//! report), a sensor's latest state, and its readings with server-side downsampling
//! ([`crate::risk::service`]).

use super::routes::Routes;
use super::{parse_id, Caller, QueryParams};
use crate::auth::require;
use crate::model::{Layer, Record, Role};
use crate::risk::service;
use crate::state::AppState;
use crate::AppError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(ingest))
        .routes(routes!(sensor))
        .routes(routes!(readings))
}

/// Stores a batch of readings and evaluates the alarm rules on the new ones.
#[utoipa::path(post, path = "/sensors/readings", operation_id = "ingest_readings", tag = "risk",
    request_body(content = [Object], description = "A JSON array (`application/json`) or newline-delimited JSON (`application/x-ndjson`) of readings `{\"sensor_id\": 12, \"time\": \"2025-06-01T08:00:00Z\" | unix-ms, \"value\": 21.5, \"quality\"?: \"good|uncertain|bad\", \"unit\"?: \"%LEL\"}`. At most `[ingest] max_batch` readings and `max_body_bytes` bytes (data/rules/alarms.toml). Needs the operator role."),
    responses(
        (status = 200, description = "`{\"received\", \"stored\", \"duplicates\", \"rejected\", \"alarm_changes\", \"items\": [{\"index\", \"status\": \"rejected|duplicate\", \"sensor_id\"?, \"error\"}]}`: duplicates (same sensor and time) are not stored twice; the valid rest of the batch is stored"),
        (status = 400, description = "Not an array / NDJSON, wrong content type, empty or too many readings"),
        (status = 413, description = "Body larger than the limit"),
        (status = 422, description = "No item was valid; the body also carries the per-item report")))]
pub async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    require(&caller.0, Role::Operator)?;
    let limit = state.risk.rules.ingest.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        AppError::PayloadTooLarge(format!(
            "the body is larger than {limit} bytes; send smaller batches"
        ))
    })?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let report = state.risk.ingest(&bytes, ct).await?;
    if report.stored == 0 && report.duplicates == 0 {
        let mut body = serde_json::to_value(&report).unwrap_or_default();
        body["error"] = json!({"status": 422, "code": "invalid", "message": "no reading of the batch is valid; see items"});
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
    }
    Ok(Json(report).into_response())
}

/// A sensor with its latest reading, rule state and open alarms.
#[utoipa::path(get, path = "/sensors/{id}", operation_id = "get_sensor", tag = "risk", params(("id" = i64, Path, description = "sensor id")),
    responses((status = 200, description = "`{\"sensor\": {…}, \"unit\", \"latest\": {\"sensor_id\",\"t\",\"value\",\"quality\"} | null, \"level\": null | \"alarm\" | \"emergency\", \"offline\": bool, \"alarms\": [Alarm]}`"),
        (status = 404, description = "No such sensor")))]
pub async fn sensor(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = parse_id(&id)?;
    let rec = state.index.get(Layer::Sensors, id);
    let Some(Record::Sensor(s)) = rec.as_deref() else {
        return Err(AppError::NotFound(format!("sensor {id} does not exist")));
    };
    let engine = &state.risk;
    // Both from state every instance shares (the store, the alarm book), so the answer
    // does not depend on which instance ingested the sensor's readings.
    let latest = engine.latest(id).await?;
    let kr = engine.rules.kind(s.kind);
    let level = engine.threshold_level(id);
    Ok(Json(json!({
        "sensor": s,
        "unit": kr.unit,
        "latest": latest,
        "level": level,
        "offline": engine.is_offline(id),
        "alarms": engine.open_alarms_of_sensor(id),
    })))
}

/// Query of `GET /sensors/{id}/readings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadingsQuery {
    from: Option<String>,
    to: Option<String>,
    every: Option<String>,
    source: Option<String>,
    #[serde(default, deserialize_with = "super::limit")]
    limit: Option<usize>,
}

/// Readings of a sensor between `from` and `to`, raw or as min/mean/max buckets.
#[utoipa::path(get, path = "/sensors/{id}/readings", operation_id = "list_sensor_readings", tag = "risk",
    params(("id" = i64, Path, description = "sensor id"),
        ("from" = Option<String>, Query, description = "RFC 3339, default `to` - 24 h"),
        ("to" = Option<String>, Query, description = "RFC 3339, exclusive, default now"),
        ("every" = Option<String>, Query, description = "bucket width (`30s`, `5m`, `1h`, `1d`); without it, raw readings"),
        ("source" = Option<String>, Query, description = "with `every`: `auto` (default) answers from the coarsest rollup that fits — `daily` when `every` is a whole number of days and `from`/`to` are on UTC day boundaries, else `hourly` when a whole number of hours on hour boundaries, else `raw`; or name `raw`, `hourly` or `daily` (a rollup that does not fit is a 400). Rollups outlive raw retention"),
        ("limit" = Option<usize>, Query, description = "raw readings: 1..10000, default 10000")),
    responses((status = 200, description = "Raw: `{\"sensor_id\", \"unit\", \"readings\": [{\"t\",\"value\",\"quality\"}]}`; downsampled: `{\"sensor_id\", \"unit\", \"every_ms\", \"source\": \"daily\"|\"hourly\"|\"raw\", \"buckets\": [{\"t\",\"min\",\"mean\",\"max\",\"count\"}]}` (bad-quality readings left out; `source` says which table answered, the results are equal)"),
        (status = 400, description = "Bad time, bucket width, source, or more than 10000 buckets"), (status = 404, description = "No such sensor")))]
pub async fn readings(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<ReadingsQuery>,
) -> Result<Json<Value>, AppError> {
    let id = parse_id(&id)?;
    let q = service::ReadingsQuery {
        from: q.from.as_deref(),
        to: q.to.as_deref(),
        every: q.every.as_deref(),
        limit: q.limit,
        source: q.source.as_deref(),
    };
    Ok(Json(state.risk.sensor_readings(id, q).await?))
}
