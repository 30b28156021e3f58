//! Parsing and checking a batch of readings for `POST /sensors/readings`: a JSON array or
//! newline-delimited JSON, each item `{"sensor_id", "time", "value", "quality"?, "unit"?}`.
//! Every item is judged on its own so one bad item never costs the rest of the batch; the
//! report says, per refused item, its position and why.

use super::model::{Quality, Reading};
use super::rules::Rules;
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use lifeline_index::SpatialIndex;
use lifeline_model::history::RetentionPolicy;
use lifeline_model::{Layer, Record, SensorKind};
use serde::Serialize;
use serde_json::Value;

/// Why a whole batch was refused (items are judged one by one; see [`ItemError`]).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BatchError {
    #[error("the body is not a JSON array of readings: {0}")]
    NotArray(String),
    #[error("the batch holds {0} readings; at most {1} are accepted per request")]
    TooMany(usize, usize),
    #[error("the batch is empty")]
    Empty,
    #[error("content type '{0}' is not accepted; send application/json (an array) or application/x-ndjson")]
    ContentType(String),
}

/// The outcome of one refused or duplicate item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemReport {
    /// Position in the batch (0-based; for NDJSON the line number among non-blank lines).
    pub index: usize,
    /// `rejected` or `duplicate`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensor_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A checked reading with the kind of its sensor and where the sensor is.
#[derive(Debug, Clone)]
pub struct Checked {
    pub index: usize,
    pub reading: Reading,
    pub kind: SensorKind,
    pub risk_point_id: Option<i64>,
    pub lon: f64,
    pub lat: f64,
}

/// Splits a body into items.
pub fn split_body(
    body: &[u8],
    content_type: &str,
) -> Result<Vec<Result<Value, String>>, BatchError> {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        "application/json" | "" => {
            let v: Vec<Value> =
                serde_json::from_slice(body).map_err(|e| BatchError::NotArray(e.to_string()))?;
            Ok(v.into_iter().map(Ok).collect())
        }
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Ok(body
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()))
            .map(|l| {
                serde_json::from_slice::<Value>(l).map_err(|e| format!("not a JSON object: {e}"))
            })
            .collect()),
        other => Err(BatchError::ContentType(other.chars().take(60).collect())),
    }
}

fn parse_time(v: &Value) -> Result<DateTime<Utc>, String> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                format!(
                    "time '{}' is not an RFC 3339 timestamp",
                    s.chars().take(40).collect::<String>()
                )
            }),
        Value::Number(n) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .ok_or_else(|| "time as a number must be Unix milliseconds".to_string()),
        Value::Null => Err("time is missing".into()),
        _ => Err("time must be an RFC 3339 string or Unix milliseconds".into()),
    }
}

fn parse_value(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| "value is not a finite number".into()),
        Value::String(s) => Err(format!(
            "value '{}' is not a number (NaN and infinities are refused)",
            s.chars().take(20).collect::<String>()
        )),
        Value::Null => Err("value is missing or null (NaN is refused)".into()),
        _ => Err("value must be a number".into()),
    }
}

/// Checks one item against the index (the sensor exists) and the rules (unit, range, time
/// window). `now` is passed in so a batch is judged against one clock.
pub fn check_item(
    index: usize,
    item: &Value,
    sensors: &SpatialIndex,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<Checked, ItemReport> {
    let reject = |sensor_id: Option<i64>, e: String| ItemReport {
        index,
        status: "rejected",
        sensor_id,
        error: Some(e),
    };
    let Some(obj) = item.as_object() else {
        return Err(reject(None, "an item must be a JSON object".into()));
    };
    for k in obj.keys() {
        if !matches!(
            k.as_str(),
            "sensor_id" | "time" | "value" | "quality" | "unit"
        ) {
            return Err(reject(
                None,
                format!("unknown field '{}'", k.chars().take(40).collect::<String>()),
            ));
        }
    }
    let sensor_id = match obj.get("sensor_id").and_then(Value::as_i64) {
        Some(id) if id > 0 => id,
        _ => return Err(reject(None, "sensor_id must be a positive integer".into())),
    };
    let rec = sensors.get(Layer::Sensors, sensor_id);
    let Some(Record::Sensor(sensor)) = rec.as_deref() else {
        return Err(reject(
            Some(sensor_id),
            format!("unknown sensor {sensor_id}"),
        ));
    };
    let t = parse_time(obj.get("time").unwrap_or(&Value::Null))
        .map_err(|e| reject(Some(sensor_id), e))?;
    if t > now + Duration::seconds(rules.ingest.max_future_s) {
        return Err(reject(
            Some(sensor_id),
            format!(
                "time {t} is more than {} s in the future",
                rules.ingest.max_future_s
            ),
        ));
    }
    if t < now - Duration::days(rules.ingest.max_past_days) {
        return Err(reject(
            Some(sensor_id),
            format!(
                "time {t} is more than {} days in the past",
                rules.ingest.max_past_days
            ),
        ));
    }
    let value = parse_value(obj.get("value").unwrap_or(&Value::Null))
        .map_err(|e| reject(Some(sensor_id), e))?;
    let kr = rules.kind(sensor.kind);
    if let Some(u) = obj.get("unit") {
        if u.as_str() != Some(kr.unit.as_str()) {
            return Err(reject(
                Some(sensor_id),
                format!(
                    "unit {u} does not match the {} unit '{}'",
                    sensor.kind, kr.unit
                ),
            ));
        }
    }
    if value < kr.min || value > kr.max {
        return Err(reject(
            Some(sensor_id),
            format!(
                "value {value} is outside the plausible range {}..{} {} of a {} sensor",
                kr.min, kr.max, kr.unit, sensor.kind
            ),
        ));
    }
    let quality = match obj.get("quality") {
        None | Some(Value::Null) => Quality::Good,
        Some(Value::String(s)) => s
            .parse::<Quality>()
            .map_err(|e| reject(Some(sensor_id), e.to_string()))?,
        Some(_) => {
            return Err(reject(
                Some(sensor_id),
                format!("quality must be one of {}", Quality::allowed()),
            ))
        }
    };
    Ok(Checked {
        index,
        reading: Reading {
            sensor_id,
            t: t.trunc_subsecs(3),
            value,
            quality,
        },
        kind: sensor.kind,
        risk_point_id: sensor.risk_point_id,
        lon: sensor.location.x(),
        lat: sensor.location.y(),
    })
}

/// Refuses a checked reading older than the raw readings' retention `horizon`: it would be
/// removed at once (and its day's partition is gone), so it is reported as expired rather
/// than stored. Only bites when retention is shorter than ingest's `max_past_days`.
pub fn check_retention(
    c: Checked,
    horizon: DateTime<Utc>,
    policy: &RetentionPolicy,
) -> Result<Checked, ItemReport> {
    if c.reading.t >= horizon {
        return Ok(c);
    }
    Err(ItemReport {
        index: c.index,
        status: "rejected",
        sensor_id: Some(c.reading.sensor_id),
        error: Some(format!(
            "time {} is expired: raw readings are kept {} days, nothing before {horizon} is stored",
            c.reading.t,
            policy.raw_days()
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_split_by_content_type() {
        let a = split_body(br#"[{"a":1},{"b":2}]"#, "application/json").unwrap();
        assert_eq!(a.len(), 2);
        let n = split_body(b"{\"a\":1}\n\n{oops\n{\"b\":2}\n", "application/x-ndjson").unwrap();
        assert_eq!(n.len(), 3);
        assert!(n[1].is_err());
        assert!(matches!(
            split_body(b"{}", "application/json"),
            Err(BatchError::NotArray(_))
        ));
        assert!(matches!(
            split_body(b"[]", "text/csv"),
            Err(BatchError::ContentType(_))
        ));
    }

    #[test]
    fn values_and_times_are_parsed_strictly() {
        assert!(parse_value(&Value::String("NaN".into()))
            .unwrap_err()
            .contains("NaN"));
        assert!(parse_value(&Value::Null).is_err());
        assert_eq!(parse_value(&serde_json::json!(1.5)).unwrap(), 1.5);
        assert!(parse_time(&serde_json::json!("2025-01-01T00:00:00Z")).is_ok());
        assert!(parse_time(&serde_json::json!(1_700_000_000_000i64)).is_ok());
        assert!(parse_time(&serde_json::json!("yesterday")).is_err());
    }
}
