//! The parameters of the risk endpoints parsed once into the engine's types (vocabulary
//! lists, boxes, grid levels, the risk-point filter, the grid statistics' format), and the
//! use case of a sensor's readings ([`RiskEngine::sensor_readings`]: raw, or downsampled
//! into min/mean/max buckets by the store, from the coarsest rollup that fits
//! ([`choose_source`]) or the raw rows). Every refusal is a [`RiskError::BadRequest`]
//! or [`RiskError::NotFound`] naming the parameter.

use super::stats::PointFilter;
use super::{RiskEngine, RiskError};
use chrono::{DateTime, Duration, Utc};
use lifeline_model::history::{BucketSource, Rollup};
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
    /// Where buckets come from ([`parse_source`]): `auto` (default), `raw`, `hourly`,
    /// `daily`.
    pub source: Option<&'q str>,
}

/// The `source=` of a bucketed readings query: let the service pick (`auto`), or name one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceChoice {
    /// The coarsest rollup that fits, else raw.
    Auto,
    Named(BucketSource),
}

/// Parses `source=`: `auto`, `raw`, `hourly` or `daily`.
pub fn parse_source(s: Option<&str>) -> Result<SourceChoice, RiskError> {
    match s.map(str::trim) {
        None | Some("auto") => Ok(SourceChoice::Auto),
        Some(v) => v
            .parse::<BucketSource>()
            .map(SourceChoice::Named)
            .map_err(|_| {
                RiskError::BadRequest(format!(
                    "source '{}' is not auto, {}",
                    v.chars().take(20).collect::<String>(),
                    BucketSource::allowed()
                ))
            }),
    }
}

/// The source that answers buckets of `every_ms` over `[from, to)`: with `auto` the
/// coarsest rollup that fits ([`Rollup::fits`]: `every` a multiple of its width, both ends
/// on its boundaries, UTC), else the raw readings; a named rollup that does not fit is a
/// 400 saying why.
pub fn choose_source(
    choice: SourceChoice,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    every_ms: i64,
) -> Result<BucketSource, RiskError> {
    match choice {
        SourceChoice::Auto => Ok(Rollup::coarsest_fitting(from, to, every_ms)
            .map(BucketSource::from)
            .unwrap_or(BucketSource::Raw)),
        SourceChoice::Named(BucketSource::Raw) => Ok(BucketSource::Raw),
        SourceChoice::Named(named) => {
            let r = named.rollup().unwrap_or(Rollup::Hourly);
            if r.fits(from, to, every_ms) {
                Ok(named)
            } else {
                let unit = match r {
                    Rollup::Hourly => "hour",
                    Rollup::Daily => "day (UTC)",
                };
                Err(RiskError::BadRequest(format!(
                    "source={named} needs every to be a whole number of {unit}s and from and to on {unit} boundaries"
                )))
            }
        }
    }
}

impl RiskEngine {
    /// Readings of sensor `id` between `from` and `to`: raw
    /// (`{sensor_id, unit, from, to, readings: [{t, value, quality}]}`), or with `every`
    /// min/mean/max buckets (`{sensor_id, unit, from, to, every_ms, source, buckets}`, at
    /// most 10000, bad-quality readings left out), from the source [`choose_source`] picks
    /// (`source`: `daily`, `hourly` or `raw`).
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
            if q.source.is_some() {
                return Err(RiskError::BadRequest(
                    "source applies to buckets: give every as well".into(),
                ));
            }
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
        let source = choose_source(parse_source(q.source)?, from, to, every)?;
        let buckets = match source.rollup() {
            Some(r) => self.store.rollup_buckets(id, from, to, every, r).await?,
            None => self.store.reading_buckets(id, from, to, every).await?,
        };
        Ok(json!({
            "sensor_id": id, "unit": unit, "from": from, "to": to, "every_ms": every,
            "source": source, "buckets": buckets,
        }))
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
    fn sources_are_chosen_by_alignment_and_named_ones_checked() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let (d0, d1) = (t("2026-12-01T00:00:00Z"), t("2026-12-08T00:00:00Z"));
        let auto = parse_source(None).unwrap();
        assert_eq!(auto, SourceChoice::Auto);
        assert_eq!(
            choose_source(auto, d0, d1, 86_400_000).unwrap(),
            BucketSource::Daily
        );
        assert_eq!(
            choose_source(auto, d0, d1, 3_600_000).unwrap(),
            BucketSource::Hourly
        );
        let odd = t("2026-12-01T00:00:30Z");
        assert_eq!(
            choose_source(auto, odd, d1, 3_600_000).unwrap(),
            BucketSource::Raw
        );
        let raw = parse_source(Some("raw")).unwrap();
        assert_eq!(
            choose_source(raw, d0, d1, 86_400_000).unwrap(),
            BucketSource::Raw
        );
        let daily = parse_source(Some("daily")).unwrap();
        let e = choose_source(daily, d0, d1, 3_600_000).unwrap_err();
        assert!(e.to_string().contains("source=daily"), "{e}");
        let e = parse_source(Some("weekly")).unwrap_err();
        assert!(e.to_string().contains("'weekly'"), "{e}");
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
