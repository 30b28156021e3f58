//! The parameters of the risk endpoints parsed once into the engine's types (vocabulary
//! lists, boxes, grid levels, the risk-point filter, the grid statistics' format), and the
//! use case of a sensor's readings ([`RiskEngine::sensor_readings`]: raw, or downsampled
//! into min/mean/max buckets by the store). Every refusal is a [`RiskError::BadRequest`]
//! or [`RiskError::NotFound`] naming the parameter.

use super::stats::PointFilter;
use super::{RiskEngine, RiskError};
use chrono::{DateTime, Duration, Utc};
use lifeline_model::{Bbox, Catalog, GridLevel, Layer, ModelError, Record, RiskLevel, RiskStatus};
use serde_json::{json, Value};
use std::str::FromStr;

fn bad(e: impl std::fmt::Display) -> RiskError {
    RiskError::BadRequest(e.to_string())
}

/// Parses a comma-separated list of vocabulary values (blank items skipped); `None` is
/// the empty list.
pub fn parse_list<T: FromStr<Err = ModelError>>(s: Option<&str>) -> Result<Vec<T>, RiskError> {
    match s {
        None => Ok(Vec::new()),
        Some(s) => s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.trim().parse::<T>().map_err(bad))
            .collect(),
    }
}

/// Parses an optional `minLon,minLat,maxLon,maxLat`.
pub fn parse_bbox(s: Option<&str>) -> Result<Option<Bbox>, RiskError> {
    s.map(|b| Bbox::parse(b).map_err(bad)).transpose()
}

/// Parses an optional grid level (default `street`).
pub fn parse_grid_level(s: Option<&str>) -> Result<GridLevel, RiskError> {
    s.unwrap_or("street").parse::<GridLevel>().map_err(bad)
}

/// The parameters of `GET /risk/points`, as given.
#[derive(Debug, Clone, Copy, Default)]
pub struct PointParams<'q> {
    pub bbox: Option<&'q str>,
    /// Comma-separated live levels.
    pub level: Option<&'q str>,
    /// A category code of the catalog.
    pub category: Option<&'q str>,
    /// active, mitigated or closed.
    pub status: Option<&'q str>,
    /// 1..=100000, default 10000.
    pub limit: Option<usize>,
}

/// Parses the risk-point filter, checking the category against `catalog`.
pub fn point_filter(catalog: &Catalog, p: PointParams<'_>) -> Result<PointFilter, RiskError> {
    let limit = lifeline_model::page_limit(p.limit, 10_000, 100_000)
        .map_err(|e| RiskError::BadRequest(e.to_string()))?;
    if let Some(c) = p.category {
        if catalog.risk_category(c).is_none() {
            return Err(RiskError::BadRequest(format!(
                "unknown risk category '{}'",
                c.chars().take(60).collect::<String>()
            )));
        }
    }
    Ok(PointFilter {
        bbox: parse_bbox(p.bbox)?,
        levels: parse_list::<RiskLevel>(p.level)?,
        category: p.category.map(str::to_string),
        status: p
            .status
            .map(str::parse::<RiskStatus>)
            .transpose()
            .map_err(bad)?,
        limit,
    })
}

/// Encodings of the grid statistics: `json` (cells) or `geojson` (a FeatureCollection of
/// the cells' polygons, for a choropleth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GridFormat {
    Json,
    GeoJson,
}

impl FromStr for GridFormat {
    type Err = RiskError;

    fn from_str(s: &str) -> Result<Self, RiskError> {
        match s {
            "json" => Ok(GridFormat::Json),
            "geojson" => Ok(GridFormat::GeoJson),
            other => Err(RiskError::BadRequest(format!(
                "format '{}' is not json or geojson",
                other.chars().take(20).collect::<String>()
            ))),
        }
    }
}

fn parse_when(name: &str, s: &str) -> Result<DateTime<Utc>, RiskError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            RiskError::BadRequest(format!(
                "{name} '{}' is not an RFC 3339 timestamp",
                s.chars().take(40).collect::<String>()
            ))
        })
}

/// Parses a bucket width: `90`, `90s`, `5m`, `1h`, `1d`; milliseconds, at least 1 s.
pub fn parse_every(s: &str) -> Result<i64, RiskError> {
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
            return Err(RiskError::BadRequest(format!(
                "every '{s}': unit must be ms, s, m, h or d"
            )))
        }
    };
    match num.parse::<i64>() {
        Ok(n) if n > 0 && n.checked_mul(mult).is_some() && n * mult >= 1000 => Ok(n * mult),
        _ => Err(RiskError::BadRequest(format!(
            "every '{s}' must be a positive duration of at least 1 s"
        ))),
    }
}

/// The parameters of a sensor's readings query, as given.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadingsQuery<'q> {
    /// RFC 3339; default `to` − 24 h.
    pub from: Option<&'q str>,
    /// RFC 3339, exclusive; default now.
    pub to: Option<&'q str>,
    /// Bucket width ([`parse_every`]); without it, raw readings.
    pub every: Option<&'q str>,
    /// Raw readings: 1..=10000, default 10000.
    pub limit: Option<usize>,
}

impl RiskEngine {
    /// Readings of sensor `id` between `from` and `to`: raw
    /// (`{sensor_id, unit, from, to, readings: [{t, value, quality}]}`), or with `every`
    /// min/mean/max buckets (`{sensor_id, unit, from, to, every_ms, buckets}`, at most
    /// 10000, bad-quality readings left out).
    pub async fn sensor_readings(&self, id: i64, q: ReadingsQuery<'_>) -> Result<Value, RiskError> {
        let rec = self.index.get(Layer::Sensors, id);
        let Some(Record::Sensor(s)) = rec.as_deref() else {
            return Err(RiskError::NotFound(format!("sensor {id} does not exist")));
        };
        let unit = self.rules.kind(s.kind).unit.clone();
        let to = match q.to {
            Some(t) => parse_when("to", t)?,
            None => self.clock.now(),
        };
        let from = match q.from {
            Some(t) => parse_when("from", t)?,
            None => to - Duration::hours(24),
        };
        if from >= to {
            return Err(RiskError::BadRequest("from must be before to".into()));
        }
        let Some(every) = q.every else {
            let limit = lifeline_model::page_limit(q.limit, 10_000, 10_000)
                .map_err(|e| RiskError::BadRequest(e.to_string()))?;
            let rows = self.store.readings(id, from, to, limit).await?;
            let readings: Vec<Value> = rows
                .iter()
                .map(|r| json!({"t": r.t, "value": r.value, "quality": r.quality}))
                .collect();
            return Ok(
                json!({"sensor_id": id, "unit": unit, "from": from, "to": to, "readings": readings}),
            );
        };
        let every = parse_every(every)?;
        let n = (to - from).num_milliseconds() / every;
        if n > 10_000 {
            return Err(RiskError::BadRequest(format!(
                "{n} buckets requested; at most 10000 (widen every or narrow from..to)"
            )));
        }
        let buckets = self.store.reading_buckets(id, from, to, every).await?;
        Ok(
            json!({"sensor_id": id, "unit": unit, "from": from, "to": to, "every_ms": every, "buckets": buckets}),
        )
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

    #[test]
    fn grid_formats_parse_once() {
        assert_eq!(
            "geojson".parse::<GridFormat>().unwrap(),
            GridFormat::GeoJson
        );
        let e = "csv".parse::<GridFormat>().unwrap_err();
        assert_eq!(e.to_string(), "format 'csv' is not json or geojson");
    }

    #[test]
    fn lists_skip_blanks_and_name_bad_items() {
        let l: Vec<RiskLevel> = parse_list(Some("major, ,low")).unwrap();
        assert_eq!(l, vec![RiskLevel::Major, RiskLevel::Low]);
        assert!(parse_list::<RiskLevel>(Some("huge")).is_err());
        assert!(parse_bbox(Some("1,2,3")).is_err());
        assert_eq!(parse_grid_level(None).unwrap(), GridLevel::Street);
    }

    #[test]
    fn point_filters_check_limit_and_category() {
        let c = Catalog::builtin();
        let f = point_filter(c, PointParams::default()).unwrap();
        assert_eq!(f.limit, 10_000);
        let e = point_filter(
            c,
            PointParams {
                limit: Some(0),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
        let e = point_filter(
            c,
            PointParams {
                category: Some("no-such"),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "unknown risk category 'no-such'");
    }
}
