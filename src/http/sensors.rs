//! `/sensors`: reading ingest (`POST /sensors/readings`, JSON array or NDJSON, per-item
//! report), a sensor's latest state, and its readings with server-side downsampling.

use super::{parse_id, Caller, QueryParams};
use crate::auth::require;
use crate::model::{Layer, Record, Role};
use crate::state::AppState;
use crate::AppError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sensors/readings", post(ingest))
        .route("/sensors/{id}", get(sensor))
        .route("/sensors/{id}/readings", get(readings))
}

/// Stores a batch of readings and evaluates the alarm rules on the new ones.
#[utoipa::path(post, path = "/sensors/readings", tag = "risk",
    request_body(content = Object, description = "A JSON array (`application/json`) or newline-delimited JSON (`application/x-ndjson`) of readings `{\"sensor_id\": 12, \"time\": \"2025-06-01T08:00:00Z\" | unix-ms, \"value\": 21.5, \"quality\"?: \"good|uncertain|bad\", \"unit\"?: \"%LEL\"}`. At most `[ingest] max_batch` readings and `max_body_bytes` bytes (data/rules/alarms.toml). Needs the operator role."),
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
#[utoipa::path(get, path = "/sensors/{id}", tag = "risk", params(("id" = i64, Path, description = "sensor id")),
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
    limit: Option<usize>,
}

fn parse_when(name: &str, s: &str) -> Result<DateTime<Utc>, AppError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            AppError::BadRequest(format!(
                "{name} '{}' is not an RFC 3339 timestamp",
                s.chars().take(40).collect::<String>()
            ))
        })
}

/// Parses a bucket width: `90`, `90s`, `5m`, `1h`, `1d`.
pub fn parse_every(s: &str) -> Result<i64, AppError> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let mult = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(AppError::BadRequest(format!(
                "every '{s}': unit must be ms, s, m, h or d"
            )))
        }
    };
    match num.parse::<i64>() {
        Ok(n) if n > 0 && n.checked_mul(mult).is_some() && n * mult >= 1000 => Ok(n * mult),
        _ => Err(AppError::BadRequest(format!(
            "every '{s}' must be a positive duration of at least 1 s"
        ))),
    }
}

/// Readings of a sensor between `from` and `to`, raw or as min/mean/max buckets.
#[utoipa::path(get, path = "/sensors/{id}/readings", tag = "risk",
    params(("id" = i64, Path, description = "sensor id"),
        ("from" = Option<String>, Query, description = "RFC 3339, default `to` - 24 h"),
        ("to" = Option<String>, Query, description = "RFC 3339, exclusive, default now"),
        ("every" = Option<String>, Query, description = "bucket width (`30s`, `5m`, `1h`, `1d`); without it, raw readings"),
        ("limit" = Option<usize>, Query, description = "raw readings: 1..10000, default 10000")),
    responses((status = 200, description = "Raw: `{\"sensor_id\", \"unit\", \"readings\": [{\"t\",\"value\",\"quality\"}]}`; downsampled: `{\"sensor_id\", \"unit\", \"every_ms\", \"buckets\": [{\"t\",\"min\",\"mean\",\"max\",\"count\"}]}` (bad-quality readings left out)"),
        (status = 400, description = "Bad time, bucket width, or more than 10000 buckets"), (status = 404, description = "No such sensor")))]
pub async fn readings(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<ReadingsQuery>,
) -> Result<Json<Value>, AppError> {
    let id = parse_id(&id)?;
    let rec = state.index.get(Layer::Sensors, id);
    let Some(Record::Sensor(s)) = rec.as_deref() else {
        return Err(AppError::NotFound(format!("sensor {id} does not exist")));
    };
    let unit = state.risk.rules.kind(s.kind).unit.clone();
    let to = match &q.to {
        Some(t) => parse_when("to", t)?,
        None => state.clock.now(),
    };
    let from = match &q.from {
        Some(t) => parse_when("from", t)?,
        None => to - Duration::hours(24),
    };
    if from >= to {
        return Err(AppError::BadRequest("from must be before to".into()));
    }
    match &q.every {
        Some(e) => {
            let every = parse_every(e)?;
            let n = (to - from).num_milliseconds() / every;
            if n > 10_000 {
                return Err(AppError::BadRequest(format!(
                    "{n} buckets requested; at most 10000 (widen every or narrow from..to)"
                )));
            }
            let buckets = state.store.reading_buckets(id, from, to, every).await?;
            Ok(Json(
                json!({"sensor_id": id, "unit": unit, "from": from, "to": to, "every_ms": every, "buckets": buckets}),
            ))
        }
        None => {
            let limit = q.limit.unwrap_or(10_000);
            if !(1..=10_000).contains(&limit) {
                return Err(AppError::BadRequest("limit must be 1..10000".into()));
            }
            let rows = state.store.readings(id, from, to, limit).await?;
            let readings: Vec<Value> = rows
                .iter()
                .map(|r| json!({"t": r.t, "value": r.value, "quality": r.quality}))
                .collect();
            Ok(Json(
                json!({"sensor_id": id, "unit": unit, "from": from, "to": to, "readings": readings}),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_widths_parse() {
        assert_eq!(parse_every("90").unwrap(), 90_000);
        assert_eq!(parse_every("5m").unwrap(), 300_000);
        assert_eq!(parse_every("1h").unwrap(), 3_600_000);
        assert!(parse_every("0s").is_err());
        assert!(parse_every("5x").is_err());
        assert!(parse_every("500ms").is_err());
    }
}
