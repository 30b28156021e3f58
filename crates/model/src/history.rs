//! The readings history at city scale (issue 16): how long raw readings are kept
//! ([`RetentionPolicy`]), the hourly and daily rollups that outlive them ([`Rollup`]), which
//! source answers a bucketed query ([`BucketSource`]), and what one maintenance round did
//! ([`MaintenanceReport`]). Pure values and time arithmetic; the stores do the work.
//!
//! Every boundary is UTC and aligned to the Unix epoch, like the buckets of
//! `GET /sensors/{id}/readings?every=`: a day is `[00:00Z, 24:00Z)`, an hour `[hh:00Z, +1 h)`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a (UTC) day.
pub const DAY_MS: i64 = 86_400_000;

/// Why a retention setting is unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct RetentionError(pub String);

/// How long raw readings are kept. The rollups (hourly, daily) are kept for good: they are
/// 60 and 1,440 times smaller than minute data, and they are what answers history beyond
/// the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    raw_days: u32,
    /// Days after which raw partitions go columnar on Citus ([`Self::columnar_before`]).
    columnar_after_days: i64,
}

impl RetentionPolicy {
    /// Default raw retention: 90 days. Longer than ingest's late-reading window (30 days,
    /// `[ingest] max_past_days`), so no reading ingest accepts is already expired; a quarter
    /// of minute data is what incident reviews ask for, and at Chongqing's 630 M rows a day
    /// it is what one PostGIS disk (or a small Citus cluster) holds — longer history is
    /// served by the rollups.
    pub const DEFAULT_RAW_DAYS: u32 = 90;
    /// Longest raw retention accepted (ten years), so day arithmetic never overflows.
    pub const MAX_RAW_DAYS: u32 = 3_650;
    /// Partitions (PostGIS) are kept ready this many days past "now": a reading up to
    /// ingest's future skew, and hours of missed maintenance, never lack a partition.
    pub const AHEAD_DAYS: i64 = 3;

    /// A policy keeping raw readings `raw_days` days (1..=3650).
    pub fn new(raw_days: u32) -> Result<RetentionPolicy, RetentionError> {
        if raw_days == 0 || raw_days > Self::MAX_RAW_DAYS {
            return Err(RetentionError(format!(
                "retention_days {raw_days}: must be 1..={}",
                Self::MAX_RAW_DAYS
            )));
        }
        Ok(RetentionPolicy {
            raw_days,
            columnar_after_days: Self::COLUMNAR_AFTER_DAYS,
        })
    }

    /// Days raw readings are kept.
    pub fn raw_days(&self) -> u32 {
        self.raw_days
    }

    /// The oldest time a raw reading may have at `now`: the start of the UTC day
    /// `raw_days` before `now`'s day. Day-aligned, so retention drops whole daily
    /// partitions and a reading is expired on every engine at the same instant.
    pub fn horizon(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        floor(now, DAY_MS) - Duration::days(i64::from(self.raw_days))
    }

    /// The end of the window partitions must cover at `now` (exclusive, day-aligned).
    pub fn ahead(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        floor(now, DAY_MS) + Duration::days(Self::AHEAD_DAYS + 1)
    }

    /// Days after which a day's raw readings move to Citus' columnar access method, by
    /// default: past ingest's default late-reading window (30 days). Citus' columnar
    /// tables cannot take `INSERT … ON CONFLICT` of new rows (no speculative insertion),
    /// so no day ingest still accepts may be columnar: see [`Self::with_late_window`].
    pub const COLUMNAR_AFTER_DAYS: i64 = 31;

    /// This policy with columnar conversion held back until after ingest's late-reading
    /// window (`max_past_days`), so ingest never writes into a columnar partition.
    pub fn with_late_window(self, max_past_days: i64) -> RetentionPolicy {
        RetentionPolicy {
            columnar_after_days: Self::COLUMNAR_AFTER_DAYS.max(max_past_days.saturating_add(1)),
            ..self
        }
    }

    /// Partitions ending at or before this time go columnar (Citus only).
    pub fn columnar_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        floor(now, DAY_MS) - Duration::days(self.columnar_after_days.min(100_000))
    }
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            raw_days: Self::DEFAULT_RAW_DAYS,
            columnar_after_days: Self::COLUMNAR_AFTER_DAYS,
        }
    }
}

/// `t` rounded down to a multiple of `width_ms` since the Unix epoch.
pub fn floor(t: DateTime<Utc>, width_ms: i64) -> DateTime<Utc> {
    let ms = t.timestamp_millis().div_euclid(width_ms) * width_ms;
    Utc.timestamp_millis_opt(ms).single().unwrap_or(t)
}

crate::string_enum! {
    /// A rollup table of the readings: per sensor and hour (`readings_hourly`) or UTC day
    /// (`readings_daily`), the count, sum, min and max of the readings that are not of bad
    /// quality.
    pub enum Rollup {
        Hourly = "hourly",
        Daily = "daily",
    }
}

impl Rollup {
    /// Coarsest first: the order in which a query tries them.
    pub const COARSEST_FIRST: [Rollup; 2] = [Rollup::Daily, Rollup::Hourly];

    /// Width of one rollup row, in milliseconds.
    pub fn width_ms(self) -> i64 {
        match self {
            Rollup::Hourly => HOUR_MS,
            Rollup::Daily => DAY_MS,
        }
    }

    /// Whether buckets of `every_ms` over `[from, to)` can be made of this rollup's rows
    /// exactly: `every` is a multiple of the rollup's width and both ends sit on its
    /// boundaries, so every rollup row falls wholly inside one requested bucket and inside
    /// the range.
    pub fn fits(self, from: DateTime<Utc>, to: DateTime<Utc>, every_ms: i64) -> bool {
        let w = self.width_ms();
        every_ms > 0
            && every_ms % w == 0
            && from.timestamp_millis().rem_euclid(w) == 0
            && to.timestamp_millis().rem_euclid(w) == 0
    }

    /// The coarsest rollup that fits (see [`Rollup::fits`]), if any.
    pub fn coarsest_fitting(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        every_ms: i64,
    ) -> Option<Rollup> {
        Self::COARSEST_FIRST
            .into_iter()
            .find(|r| r.fits(from, to, every_ms))
    }
}

crate::string_enum! {
    /// Where the buckets of a history query come from: the raw readings or a rollup.
    pub enum BucketSource {
        Raw = "raw",
        Hourly = "hourly",
        Daily = "daily",
    }
}

impl From<Rollup> for BucketSource {
    fn from(r: Rollup) -> Self {
        match r {
            Rollup::Hourly => BucketSource::Hourly,
            Rollup::Daily => BucketSource::Daily,
        }
    }
}

impl BucketSource {
    /// The rollup behind this source; `None` for raw.
    pub fn rollup(self) -> Option<Rollup> {
        match self {
            BucketSource::Raw => None,
            BucketSource::Hourly => Some(Rollup::Hourly),
            BucketSource::Daily => Some(Rollup::Daily),
        }
    }
}

/// What one maintenance round of the readings history did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MaintenanceReport {
    /// Raw readings older than this were removed (and ingest now refuses them).
    pub horizon: Option<DateTime<Utc>>,
    /// Time partitions created (PostGIS: `readings_pYYYY_MM_DD`), oldest first.
    pub partitions_created: Vec<String>,
    /// Time partitions dropped whole because they ended at or before the horizon.
    pub partitions_dropped: Vec<String>,
    /// Partitions moved to the columnar access method (Citus only; 0 elsewhere).
    pub partitions_to_columnar: Vec<String>,
    /// Raw rows deleted one by one (GeoPackage, which has no partitions).
    pub rows_deleted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn horizon_is_day_aligned_and_policy_checked() {
        let p = RetentionPolicy::new(90).unwrap();
        let now = t("2026-12-07T15:30:00Z");
        assert_eq!(p.horizon(now), t("2026-09-08T00:00:00Z"));
        assert_eq!(p.ahead(now), t("2026-12-11T00:00:00Z"));
        assert!(RetentionPolicy::new(0).is_err());
        assert!(RetentionPolicy::new(3651)
            .unwrap_err()
            .to_string()
            .contains("retention_days"));
        assert_eq!(RetentionPolicy::default().raw_days(), 90);
    }

    #[test]
    fn the_coarsest_fitting_rollup_is_chosen() {
        let (d0, d2) = (t("2026-12-01T00:00:00Z"), t("2026-12-03T00:00:00Z"));
        assert_eq!(
            Rollup::coarsest_fitting(d0, d2, DAY_MS),
            Some(Rollup::Daily)
        );
        assert_eq!(
            Rollup::coarsest_fitting(d0, d2, HOUR_MS),
            Some(Rollup::Hourly)
        );
        assert_eq!(
            Rollup::coarsest_fitting(d0, t("2026-12-02T05:00:00Z"), DAY_MS),
            Some(Rollup::Hourly)
        );
        assert_eq!(
            Rollup::coarsest_fitting(t("2026-12-01T00:30:00Z"), d2, HOUR_MS),
            None
        );
        assert_eq!(Rollup::coarsest_fitting(d0, d2, 90 * 60_000), None);
        assert_eq!(
            floor(t("1969-12-31T23:30:00Z"), HOUR_MS),
            t("1969-12-31T23:00:00Z")
        );
    }
}
