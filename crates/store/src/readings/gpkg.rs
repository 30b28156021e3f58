//! [`RiskStore`] on the GeoPackage: plain SQLite tables, times as Unix milliseconds, every
//! write one `BEGIN IMMEDIATE` transaction on the writer connection (an ingest batch and
//! its rollup rows together); retention deletes expired raw rows sensor by sensor in short
//! transactions, as there are no partitions; statements in `gpkg.sql` beside this file.

use super::{audit_action, event_from_payload, ms, payload, trace_detail, AlarmOp, RiskStore};
use crate::gpkg::{begin, GpkgStore, SqlExt};
use crate::{backend_error, BackendError, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use lifeline_model::alarm::{
    Alarm, AlarmFilter, Bucket, LoggedEvent, PublishedTrace, Quality, Reading, RiskEvent,
};
use lifeline_model::history::{MaintenanceReport, RetentionPolicy, Rollup, DAY_MS, HOUR_MS};
use lifeline_model::Actor;
use std::collections::HashMap;

crate::sqlfile::named_sql!(pub(super) fn gp_sql = "readings/gpkg.sql", include_str!("gpkg.sql"));

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn gpkg_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn gp_alarm(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alarm> {
    let txt = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let parse = |i: usize, s: String| -> rusqlite::Result<_> { Ok((i, s)) };
    let conv = |(i, s): (usize, String)| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unexpected stored value '{s}'").into(),
        )
    };
    let kind = txt(2)?;
    let rule = txt(4)?;
    let severity = txt(5)?;
    let status = txt(6)?;
    let history: String = r.get(13)?;
    Ok(Alarm {
        id: r.get(0)?,
        sensor_id: r.get(1)?,
        sensor_kind: kind
            .parse()
            .map_err(|_| conv(parse(2, kind.clone()).unwrap_or_default()))?,
        risk_point_id: r.get(3)?,
        rule: rule
            .parse()
            .map_err(|_| conv(parse(4, rule.clone()).unwrap_or_default()))?,
        severity: severity
            .parse()
            .map_err(|_| conv(parse(5, severity.clone()).unwrap_or_default()))?,
        status: status
            .parse()
            .map_err(|_| conv(parse(6, status.clone()).unwrap_or_default()))?,
        value: r.get(7)?,
        detected_at: from_ms(r.get(8)?),
        updated_at: from_ms(r.get(9)?),
        cleared_at: r.get::<_, Option<i64>>(10)?.map(from_ms),
        lon: r.get(11)?,
        lat: r.get(12)?,
        history: serde_json::from_str(&history).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(13, rusqlite::types::Type::Text, e.into())
        })?,
    })
}

/// A bucket row: start (ms), min, mean, max, count.
fn gp_bucket(r: &rusqlite::Row<'_>) -> rusqlite::Result<Bucket> {
    Ok(Bucket {
        t: from_ms(r.get(0)?),
        min: r.get(1)?,
        mean: r.get(2)?,
        max: r.get(3)?,
        count: r.get(4)?,
    })
}

/// Sensors whose expired rows one retention transaction deletes at most.
const EXPIRY_SENSORS_PER_TX: usize = 500;
/// Rows after which a retention transaction commits (then the next one goes on).
const EXPIRY_ROWS_PER_TX: u64 = 20_000;

/// A batch's new readings added up per (sensor, bucket) before they reach a rollup table:
/// one upsert per row of the rollup instead of one per reading.
#[derive(Default)]
struct RollupRows(HashMap<(i64, i64), (i64, f64, f64, f64)>);

impl RollupRows {
    fn add(&mut self, r: &Reading, width_ms: i64) {
        let bucket = ms(r.t).div_euclid(width_ms) * width_ms;
        let e = self.0.entry((r.sensor_id, bucket)).or_insert((
            0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ));
        e.0 += 1;
        e.1 += r.value;
        e.2 = e.2.min(r.value);
        e.3 = e.3.max(r.value);
    }

    fn write(self, tx: &rusqlite::Transaction<'_>, statement: &str) -> StoreResult<()> {
        let mut stmt = tx.prepare_cached(gp_sql(statement)).sql()?;
        let mut rows: Vec<_> = self.0.into_iter().collect();
        rows.sort_by_key(|(k, _)| *k);
        for ((sensor, bucket), (n, sum, min, max)) in rows {
            stmt.execute(rusqlite::params![sensor, bucket, n, sum, min, max])
                .sql()?;
        }
        Ok(())
    }
}

/// min/mean/max buckets of `every_ms` from one of the bucket statements (raw readings or a
/// rollup): they all take (sensor, from, to, bucket width in milliseconds).
async fn buckets(
    store: &GpkgStore,
    statement: &'static str,
    sensor_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    every_ms: i64,
) -> StoreResult<Vec<Bucket>> {
    store
        .read(move |c| {
            let mut stmt = c.prepare_cached(gp_sql(statement)).sql()?;
            let rows = stmt
                .query_map(
                    rusqlite::params![sensor_id, ms(from), ms(to), every_ms],
                    gp_bucket,
                )
                .sql()?;
            rows.collect::<rusqlite::Result<_>>().sql()
        })
        .await
}

fn gp_reading(sensor_id: i64, r: &rusqlite::Row<'_>) -> rusqlite::Result<Reading> {
    let q: String = r.get(2)?;
    Ok(Reading {
        sensor_id,
        t: from_ms(r.get(0)?),
        value: r.get(1)?,
        quality: q.parse().unwrap_or(Quality::Uncertain),
    })
}

fn gp_apply(
    conn: &mut rusqlite::Connection,
    op: &AlarmOp,
    actor: &Actor,
    now: DateTime<Utc>,
) -> StoreResult<Option<RiskEvent>> {
    use rusqlite::OptionalExtension;
    let tx = begin(conn)?;
    let current = match op {
        AlarmOp::Detect(d) => tx
            .prepare_cached(gp_sql("alarm_open_for"))
            .sql()?
            .query_row(rusqlite::params![d.sensor_id, d.rule.as_str()], gp_alarm)
            .optional()
            .sql()?,
        AlarmOp::Clear {
            sensor_id, rule, ..
        } => tx
            .prepare_cached(gp_sql("alarm_open_for"))
            .sql()?
            .query_row(rusqlite::params![sensor_id, rule.as_str()], gp_alarm)
            .optional()
            .sql()?,
        AlarmOp::Transition { id, .. } => {
            let a = tx
                .prepare_cached(gp_sql("alarm_get"))
                .sql()?
                .query_row([id], gp_alarm)
                .optional()
                .sql()?;
            if a.is_none() {
                return Err(StoreError::Invalid(format!("alarm {id} does not exist")));
            }
            a
        }
    };
    let Some(mut next) = lifeline_model::alarm::apply(op, current.clone(), actor, now)? else {
        return Ok(None);
    };
    let history = serde_json::to_string(&next.history).map_err(backend_error)?;
    if next.id == 0 {
        tx.prepare_cached(gp_sql("alarm_insert"))
            .sql()?
            .execute(rusqlite::params![
                next.sensor_id,
                next.sensor_kind.as_str(),
                next.risk_point_id,
                next.rule.as_str(),
                next.severity.as_str(),
                next.status.as_str(),
                next.value,
                ms(next.detected_at),
                ms(next.updated_at),
                next.cleared_at.map(ms),
                next.lon,
                next.lat,
                history,
            ])
            .sql()?;
        next.id = tx.last_insert_rowid();
    } else {
        tx.prepare_cached(gp_sql("alarm_update"))
            .sql()?
            .execute(rusqlite::params![
                next.id,
                next.severity.as_str(),
                next.status.as_str(),
                next.value,
                ms(next.updated_at),
                next.cleared_at.map(ms),
                history,
            ])
            .sql()?;
    }
    tx.prepare_cached(gp_sql("event_insert"))
        .sql()?
        .execute(rusqlite::params![
            next.id,
            payload(&next).to_string(),
            ms(now)
        ])
        .sql()?;
    let event_id = tx.last_insert_rowid();
    let action = audit_action(op, current.as_ref(), &next);
    let detail =
        serde_json::json!({"event": event_id, "status": next.status, "severity": next.severity});
    tx.prepare_cached(gp_sql("audit_insert"))
        .sql()?
        .execute(rusqlite::params![
            gpkg_stamp(now),
            actor.name,
            actor.role.as_str(),
            action,
            format!("alarms/{}", next.id),
            detail.to_string()
        ])
        .sql()?;
    tx.commit().sql()?;
    Ok(Some(RiskEvent {
        id: event_id,
        alarm: next,
    }))
}

#[async_trait]
impl RiskStore for GpkgStore {
    async fn insert_readings(&self, readings: &[Reading]) -> StoreResult<Vec<bool>> {
        if readings.is_empty() {
            return Ok(Vec::new());
        }
        let batch = readings.to_vec();
        self.write(move |c| {
            let tx = begin(c)?;
            let mut out = Vec::with_capacity(batch.len());
            let mut hourly = RollupRows::default();
            let mut daily = RollupRows::default();
            {
                let mut stmt = tx.prepare_cached(gp_sql("insert_reading")).sql()?;
                for r in &batch {
                    let n = stmt
                        .execute(rusqlite::params![
                            r.sensor_id,
                            ms(r.t),
                            r.value,
                            r.quality.as_str()
                        ])
                        .sql()?;
                    // Only rows that were new count in the rollups: a reading sent again
                    // is ignored by the insert and must not be added twice.
                    if n == 1 && r.quality != Quality::Bad {
                        hourly.add(r, HOUR_MS);
                        daily.add(r, DAY_MS);
                    }
                    out.push(n == 1);
                }
            }
            hourly.write(&tx, "rollup_hourly_add")?;
            daily.write(&tx, "rollup_daily_add")?;
            tx.commit().sql()?;
            Ok(out)
        })
        .await
    }

    async fn rollup_buckets(
        &self,
        sensor_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        every_ms: i64,
        rollup: Rollup,
    ) -> StoreResult<Vec<Bucket>> {
        let name = match rollup {
            Rollup::Hourly => "readings_rollup_hourly",
            Rollup::Daily => "readings_rollup_daily",
        };
        buckets(self, name, sensor_id, from, to, every_ms).await
    }

    async fn maintain_readings(
        &self,
        now: DateTime<Utc>,
        policy: &RetentionPolicy,
    ) -> StoreResult<MaintenanceReport> {
        let horizon = ms(policy.horizon(now));
        let mut deleted = 0u64;
        let mut after = i64::MIN;
        // Short transactions of a few hundred sensors each, so ingest batches interleave
        // with a large expiry instead of waiting for all of it.
        loop {
            let (done, n, last) = self
                .write(move |c| {
                    use rusqlite::OptionalExtension;
                    let tx = begin(c)?;
                    let (mut n, mut last, mut done) = (0u64, after, false);
                    {
                        let mut next = tx.prepare_cached(gp_sql("readings_next_sensor")).sql()?;
                        let mut expire =
                            tx.prepare_cached(gp_sql("readings_expire_sensor")).sql()?;
                        for _ in 0..EXPIRY_SENSORS_PER_TX {
                            let Some(id) = next
                                .query_row([last], |r| r.get::<_, i64>(0))
                                .optional()
                                .sql()?
                            else {
                                done = true;
                                break;
                            };
                            n += expire.execute(rusqlite::params![id, horizon]).sql()? as u64;
                            last = id;
                            if n >= EXPIRY_ROWS_PER_TX {
                                break;
                            }
                        }
                    }
                    tx.commit().sql()?;
                    Ok((done, n, last))
                })
                .await?;
            deleted += n;
            after = last;
            if done {
                break;
            }
        }
        Ok(MaintenanceReport {
            horizon: Some(from_ms(horizon)),
            rows_deleted: deleted,
            ..MaintenanceReport::default()
        })
    }

    async fn readings(
        &self,
        sensor_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Reading>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(gp_sql("readings_raw")).sql()?;
            let rows = stmt
                .query_map(
                    rusqlite::params![sensor_id, ms(from), ms(to), limit as i64],
                    |r| gp_reading(sensor_id, r),
                )
                .sql()?;
            rows.collect::<rusqlite::Result<_>>().sql()
        })
        .await
    }

    async fn reading_buckets(
        &self,
        sensor_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        every_ms: i64,
    ) -> StoreResult<Vec<Bucket>> {
        buckets(self, "readings_buckets", sensor_id, from, to, every_ms).await
    }

    async fn last_reading(&self, sensor_id: i64) -> StoreResult<Option<Reading>> {
        use rusqlite::OptionalExtension;
        self.read(move |c| {
            c.prepare_cached(gp_sql("last_reading"))
                .sql()?
                .query_row([sensor_id], |r| gp_reading(sensor_id, r))
                .optional()
                .sql()
        })
        .await
    }

    async fn apply_alarm(
        &self,
        op: &AlarmOp,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RiskEvent>> {
        let (op, actor) = (op.clone(), actor.clone());
        self.write(move |c| gp_apply(c, &op, &actor, now)).await
    }

    async fn alarm(&self, id: i64) -> StoreResult<Option<Alarm>> {
        use rusqlite::OptionalExtension;
        self.read(move |c| {
            c.prepare_cached(gp_sql("alarm_get"))
                .sql()?
                .query_row([id], gp_alarm)
                .optional()
                .sql()
        })
        .await
    }

    async fn alarms(&self, f: &AlarmFilter) -> StoreResult<Vec<Alarm>> {
        let statuses = if f.statuses.is_empty() {
            String::new()
        } else {
            let list: Vec<&str> = f.statuses.iter().map(|s| s.as_str()).collect();
            format!(",{},", list.join(","))
        };
        let b = f.bbox.map(|b| b.map(Some)).unwrap_or([None; 4]);
        let (sensor, limit) = (f.sensor_id, f.limit as i64);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(gp_sql("alarm_list")).sql()?;
            let rows = stmt
                .query_map(
                    rusqlite::params![statuses, b[0], b[1], b[2], b[3], sensor, limit],
                    gp_alarm,
                )
                .sql()?;
            rows.collect::<rusqlite::Result<_>>().sql()
        })
        .await
    }

    async fn open_alarms(&self) -> StoreResult<Vec<Alarm>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(gp_sql("alarms_open")).sql()?;
            let rows = stmt.query_map([], gp_alarm).sql()?;
            rows.collect::<rusqlite::Result<_>>().sql()
        })
        .await
    }

    async fn publish_trace(&self, trace: &PublishedTrace, actor: &Actor) -> StoreResult<i64> {
        let payload = serde_json::to_string(trace).map_err(backend_error)?;
        let (trace, actor) = (trace.clone(), actor.clone());
        self.write(move |c| {
            let tx = begin(c)?;
            tx.prepare_cached(gp_sql("trace_event_insert"))
                .sql()?
                .execute(rusqlite::params![payload, ms(trace.published_at)])
                .sql()?;
            let id = tx.last_insert_rowid();
            tx.prepare_cached(gp_sql("audit_insert"))
                .sql()?
                .execute(rusqlite::params![
                    gpkg_stamp(trace.published_at),
                    actor.name,
                    actor.role.as_str(),
                    "trace_published",
                    format!("risk_events/{id}"),
                    trace_detail(id, &trace).to_string()
                ])
                .sql()?;
            tx.commit().sql()?;
            Ok(id)
        })
        .await
    }

    async fn risk_events_since(&self, after: i64, limit: usize) -> StoreResult<Vec<LoggedEvent>> {
        let rows: Vec<(i64, String, String)> = self
            .read(move |c| {
                let mut stmt = c.prepare_cached(gp_sql("events_since")).sql()?;
                let rows = stmt
                    .query_map(rusqlite::params![after, limit as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .sql()?;
                rows.collect::<rusqlite::Result<_>>().sql()
            })
            .await?;
        rows.into_iter()
            .map(|(id, kind, p)| {
                let v = serde_json::from_str(&p).map_err(|e| {
                    StoreError::Backend(BackendError::with_source(
                        format!("risk event {id}: {e}"),
                        e,
                    ))
                })?;
                event_from_payload(id, &kind, v)
            })
            .collect()
    }

    async fn cursors(&self) -> StoreResult<(i64, i64)> {
        self.read(move |c| {
            let r: i64 = c
                .query_row(gp_sql("event_latest"), [], |r| r.get(0))
                .sql()?;
            let v: i64 = c
                .query_row(gp_sql("change_latest"), [], |r| r.get(0))
                .sql()?;
            Ok((r, v))
        })
        .await
    }
}
