//! Persistence of the risk one map (issue 5): the [`RiskStore`] sub-trait of
//! [`Store`](super::Store) — sensor readings (idempotent by sensor id + time), alarms and
//! the risk-event log — and its two implementations.
//!
//! * PostGIS: readings go in with one `INSERT … SELECT unnest(…) ON CONFLICT DO NOTHING`
//!   per batch (the primary key `(sensor_id, t)` decides duplicates; `RETURNING` says which
//!   rows were new). Alarm changes run in one transaction holding a per-sensor advisory
//!   lock, so two instances never raise the same alarm twice, and append a `risk_events`
//!   row whose trigger notifies `lifeline_risk`.
//! * GeoPackage: the same tables as plain SQLite tables, times as Unix milliseconds, every
//!   batch one `BEGIN IMMEDIATE` transaction on the writer connection.
//!
//! What an alarm change does to an alarm is decided once, in [`lifeline_model::alarm::apply`];
//! the stores only read the current row, call it, and write the result with its event and
//! audit entry in the same transaction.
//!
//! Statements live in `risk_postgis.sql` and `risk_gpkg.sql` next to this file.

use super::gpkg::{begin, GpkgStore, SqlExt};
use super::postgis::PostgisStore;
use super::{backend_error, BackendError, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use lifeline_model::alarm::{Alarm, AlarmFilter, Bucket, Quality, Reading, RiskEvent};
use lifeline_model::{Actor, SensorKind};
use std::collections::HashSet;
use std::str::FromStr;

pub use lifeline_model::alarm::AlarmOp;

/// Storage of readings, alarms and risk events. Both stores pass the same tests
/// (`tests/risk_api.rs`).
#[async_trait]
pub trait RiskStore: Send + Sync {
    /// Stores a batch of checked readings; returns, per reading, whether it was new
    /// (`false`: a reading of that sensor at that time was already stored).
    async fn insert_readings(&self, readings: &[Reading]) -> StoreResult<Vec<bool>>;

    /// Raw readings of a sensor with `from <= t < to`, oldest first, at most `limit`.
    async fn readings(
        &self,
        sensor_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Reading>>;

    /// min/mean/max per bucket of `every_ms` (aligned to the Unix epoch), bad-quality
    /// readings left out, oldest first.
    async fn reading_buckets(
        &self,
        sensor_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        every_ms: i64,
    ) -> StoreResult<Vec<Bucket>>;

    /// The newest stored reading of a sensor.
    async fn last_reading(&self, sensor_id: i64) -> StoreResult<Option<Reading>>;

    /// Applies one alarm change at `now` (the service clock's time) in one transaction with
    /// its risk event and audit entry. `None` when the change changes nothing (e.g. the same
    /// level again).
    async fn apply_alarm(
        &self,
        op: &AlarmOp,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RiskEvent>>;

    /// One alarm by id.
    async fn alarm(&self, id: i64) -> StoreResult<Option<Alarm>>;

    /// Alarms matching a filter, newest first.
    async fn alarms(&self, filter: &AlarmFilter) -> StoreResult<Vec<Alarm>>;

    /// Every open alarm (start-up state of the engine).
    async fn open_alarms(&self) -> StoreResult<Vec<Alarm>>;

    /// Risk events with id > `after`, oldest first, at most `limit`.
    async fn risk_events_since(&self, after: i64, limit: usize) -> StoreResult<Vec<RiskEvent>>;

    /// The newest risk-event id and change-log version (0 when empty): where a follower
    /// starts.
    async fn cursors(&self) -> StoreResult<(i64, i64)>;
}

crate::sqlfile::named_sql!(fn pg_sql = "risk_postgis.sql", include_str!("risk_postgis.sql"));

crate::sqlfile::named_sql!(fn gp_sql = "risk_gpkg.sql", include_str!("risk_gpkg.sql"));

/// Advisory-lock key space of per-sensor alarm changes ("LIFE" + sensor id).
const ALARM_LOCK_BASE: i64 = 0x4c49_4645_0000_0000;

fn bad_text<T: FromStr>(s: &str) -> Result<T, StoreError> {
    s.parse::<T>().map_err(|_| {
        StoreError::Backend(BackendError::new(format!("unexpected stored value '{s}'")))
    })
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn gpkg_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The JSON payload of a risk event: the alarm as it is now.
fn payload(a: &Alarm) -> serde_json::Value {
    serde_json::to_value(a).unwrap_or(serde_json::Value::Null)
}

fn event_from_payload(id: i64, p: serde_json::Value) -> StoreResult<RiskEvent> {
    let alarm: Alarm = serde_json::from_value(p).map_err(|e| {
        StoreError::Backend(BackendError::with_source(
            format!("risk event {id} unreadable: {e}"),
            e,
        ))
    })?;
    Ok(RiskEvent { id, alarm })
}

fn audit_action(op: &AlarmOp, before: Option<&Alarm>, after: &Alarm) -> String {
    match op {
        AlarmOp::Detect(_) if before.is_none() => "alarm_detected".into(),
        AlarmOp::Detect(_) => "alarm_escalated".into(),
        AlarmOp::Clear { .. } => "alarm_cleared".into(),
        AlarmOp::Transition { .. } => format!("alarm_{}", after.status),
    }
}

// ---------------------------------------------------------------------------------------
// PostGIS
// ---------------------------------------------------------------------------------------

fn pg_alarm(r: &tokio_postgres::Row) -> StoreResult<Alarm> {
    let get = |e: tokio_postgres::Error| backend_error(e);
    let history: serde_json::Value = r.try_get(13).map_err(get)?;
    Ok(Alarm {
        id: r.try_get(0).map_err(get)?,
        sensor_id: r.try_get(1).map_err(get)?,
        sensor_kind: bad_text::<SensorKind>(r.try_get(2).map_err(get)?)?,
        risk_point_id: r.try_get(3).map_err(get)?,
        rule: bad_text(r.try_get(4).map_err(get)?)?,
        severity: bad_text(r.try_get(5).map_err(get)?)?,
        status: bad_text(r.try_get(6).map_err(get)?)?,
        value: r.try_get(7).map_err(get)?,
        detected_at: r.try_get(8).map_err(get)?,
        updated_at: r.try_get(9).map_err(get)?,
        cleared_at: r.try_get(10).map_err(get)?,
        lon: r.try_get(11).map_err(get)?,
        lat: r.try_get(12).map_err(get)?,
        history: serde_json::from_value(history).map_err(|e| {
            StoreError::Backend(BackendError::with_source(
                format!("alarm history unreadable: {e}"),
                e,
            ))
        })?,
    })
}

fn pg_reading(sensor_id: i64, r: &tokio_postgres::Row) -> StoreResult<Reading> {
    Ok(Reading {
        sensor_id,
        t: r.try_get(0).map_err(backend_error)?,
        value: r.try_get(1).map_err(backend_error)?,
        quality: bad_text(r.try_get::<_, &str>(2).map_err(backend_error)?)?,
    })
}

#[async_trait]
impl RiskStore for PostgisStore {
    async fn insert_readings(&self, readings: &[Reading]) -> StoreResult<Vec<bool>> {
        if readings.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(pg_sql("insert_readings"))
            .await
            .map_err(backend_error)?;
        let ids: Vec<i64> = readings.iter().map(|r| r.sensor_id).collect();
        let ts: Vec<DateTime<Utc>> = readings.iter().map(|r| r.t).collect();
        let vs: Vec<f64> = readings.iter().map(|r| r.value).collect();
        let qs: Vec<&str> = readings.iter().map(|r| r.quality.as_str()).collect();
        let rows = client
            .query(&stmt, &[&ids, &ts, &vs, &qs])
            .await
            .map_err(backend_error)?;
        let mut new: HashSet<(i64, i64)> = HashSet::with_capacity(rows.len());
        for r in &rows {
            let t: DateTime<Utc> = r.try_get(1).map_err(backend_error)?;
            new.insert((r.try_get(0).map_err(backend_error)?, ms(t)));
        }
        // Within one batch the first of two equal keys is the stored one.
        Ok(readings
            .iter()
            .map(|r| new.remove(&(r.sensor_id, ms(r.t))))
            .collect())
    }

    async fn readings(
        &self,
        sensor_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Reading>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(pg_sql("readings_raw"))
            .await
            .map_err(backend_error)?;
        client
            .query(&stmt, &[&sensor_id, &from, &to, &(limit as i64)])
            .await
            .map_err(backend_error)?
            .iter()
            .map(|r| pg_reading(sensor_id, r))
            .collect()
    }

    async fn reading_buckets(
        &self,
        sensor_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        every_ms: i64,
    ) -> StoreResult<Vec<Bucket>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(pg_sql("readings_buckets"))
            .await
            .map_err(backend_error)?;
        let every_s = every_ms as f64 / 1000.0;
        client
            .query(&stmt, &[&sensor_id, &from, &to, &every_s])
            .await
            .map_err(backend_error)?
            .iter()
            .map(|r| {
                Ok(Bucket {
                    t: r.try_get(0).map_err(backend_error)?,
                    min: r.try_get(1).map_err(backend_error)?,
                    mean: r.try_get(2).map_err(backend_error)?,
                    max: r.try_get(3).map_err(backend_error)?,
                    count: r.try_get(4).map_err(backend_error)?,
                })
            })
            .collect()
    }

    async fn last_reading(&self, sensor_id: i64) -> StoreResult<Option<Reading>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(pg_sql("last_reading"))
            .await
            .map_err(backend_error)?;
        client
            .query_opt(&stmt, &[&sensor_id])
            .await
            .map_err(backend_error)?
            .map(|r| pg_reading(sensor_id, &r))
            .transpose()
    }

    async fn apply_alarm(
        &self,
        op: &AlarmOp,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RiskEvent>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend_error)?;
        let current = match op {
            AlarmOp::Detect(d) => {
                lock_sensor_pg(&tx, d.sensor_id).await?;
                let rule = d.rule.as_str();
                tx.query_opt(pg_sql("alarm_open_for"), &[&d.sensor_id, &rule])
                    .await
                    .map_err(backend_error)?
            }
            AlarmOp::Clear {
                sensor_id, rule, ..
            } => {
                lock_sensor_pg(&tx, *sensor_id).await?;
                let rule = rule.as_str();
                tx.query_opt(pg_sql("alarm_open_for"), &[sensor_id, &rule])
                    .await
                    .map_err(backend_error)?
            }
            AlarmOp::Transition { id, .. } => {
                // The sensor is known only after reading the row; read, lock, read again.
                let Some(row) = tx
                    .query_opt(pg_sql("alarm_get"), &[id])
                    .await
                    .map_err(backend_error)?
                else {
                    return Err(StoreError::Invalid(format!("alarm {id} does not exist")));
                };
                let sensor: i64 = row.try_get(1).map_err(backend_error)?;
                lock_sensor_pg(&tx, sensor).await?;
                tx.query_opt(pg_sql("alarm_get"), &[id])
                    .await
                    .map_err(backend_error)?
            }
        };
        let current = current.as_ref().map(pg_alarm).transpose()?;
        let Some(next) = lifeline_model::alarm::apply(op, current.clone(), actor, now)? else {
            return Ok(None);
        };
        let history = serde_json::to_value(&next.history).map_err(backend_error)?;
        let mut next = next;
        if next.id == 0 {
            let row = tx
                .query_one(
                    pg_sql("alarm_insert"),
                    &[
                        &next.sensor_id,
                        &next.sensor_kind.as_str(),
                        &next.risk_point_id,
                        &next.rule.as_str(),
                        &next.severity.as_str(),
                        &next.status.as_str(),
                        &next.value,
                        &next.detected_at,
                        &next.updated_at,
                        &next.cleared_at,
                        &next.lon,
                        &next.lat,
                        &history,
                    ],
                )
                .await
                .map_err(backend_error)?;
            next.id = row.try_get(0).map_err(backend_error)?;
        } else {
            tx.execute(
                pg_sql("alarm_update"),
                &[
                    &next.id,
                    &next.severity.as_str(),
                    &next.status.as_str(),
                    &next.value,
                    &next.updated_at,
                    &next.cleared_at,
                    &history,
                ],
            )
            .await
            .map_err(backend_error)?;
        }
        let row = tx
            .query_one(pg_sql("event_insert"), &[&next.id, &payload(&next)])
            .await
            .map_err(backend_error)?;
        let event_id: i64 = row.try_get(0).map_err(backend_error)?;
        let action = audit_action(op, current.as_ref(), &next);
        let detail = serde_json::json!({"event": event_id, "status": next.status, "severity": next.severity});
        tx.execute(
            pg_sql("audit_insert"),
            &[
                &actor.name,
                &actor.role.as_str(),
                &action,
                &format!("alarms/{}", next.id),
                &detail,
            ],
        )
        .await
        .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        Ok(Some(RiskEvent {
            id: event_id,
            alarm: next,
        }))
    }

    async fn alarm(&self, id: i64) -> StoreResult<Option<Alarm>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(pg_sql("alarm_get"))
            .await
            .map_err(backend_error)?;
        client
            .query_opt(&stmt, &[&id])
            .await
            .map_err(backend_error)?
            .as_ref()
            .map(pg_alarm)
            .transpose()
    }

    async fn alarms(&self, f: &AlarmFilter) -> StoreResult<Vec<Alarm>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(pg_sql("alarm_list"))
            .await
            .map_err(backend_error)?;
        let statuses: Vec<&str> = f.statuses.iter().map(|s| s.as_str()).collect();
        let b = f.bbox.map(|b| b.map(Some)).unwrap_or([None; 4]);
        client
            .query(
                &stmt,
                &[
                    &statuses,
                    &b[0],
                    &b[1],
                    &b[2],
                    &b[3],
                    &f.sensor_id,
                    &(f.limit as i64),
                ],
            )
            .await
            .map_err(backend_error)?
            .iter()
            .map(pg_alarm)
            .collect()
    }

    async fn open_alarms(&self) -> StoreResult<Vec<Alarm>> {
        let client = self.client().await?;
        client
            .query(pg_sql("alarms_open"), &[])
            .await
            .map_err(backend_error)?
            .iter()
            .map(pg_alarm)
            .collect()
    }

    async fn risk_events_since(&self, after: i64, limit: usize) -> StoreResult<Vec<RiskEvent>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(pg_sql("events_since"))
            .await
            .map_err(backend_error)?;
        client
            .query(&stmt, &[&after, &(limit as i64)])
            .await
            .map_err(backend_error)?
            .iter()
            .map(|r| {
                event_from_payload(
                    r.try_get(0).map_err(backend_error)?,
                    r.try_get(1).map_err(backend_error)?,
                )
            })
            .collect()
    }

    async fn cursors(&self) -> StoreResult<(i64, i64)> {
        let client = self.client().await?;
        let r: i64 = client
            .query_one(pg_sql("event_latest"), &[])
            .await
            .map_err(backend_error)?
            .try_get(0)
            .map_err(backend_error)?;
        let c: i64 = client
            .query_one(pg_sql("change_latest"), &[])
            .await
            .map_err(backend_error)?
            .try_get(0)
            .map_err(backend_error)?;
        Ok((r, c))
    }
}

async fn lock_sensor_pg(
    tx: &deadpool_postgres::Transaction<'_>,
    sensor_id: i64,
) -> StoreResult<()> {
    tx.execute(pg_sql("alarm_lock"), &[&(ALARM_LOCK_BASE ^ sensor_id)])
        .await
        .map_err(backend_error)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// GeoPackage
// ---------------------------------------------------------------------------------------

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
                    out.push(n == 1);
                }
            }
            tx.commit().sql()?;
            Ok(out)
        })
        .await
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
        self.read(move |c| {
            let mut stmt = c.prepare_cached(gp_sql("readings_buckets")).sql()?;
            let rows = stmt
                .query_map(
                    rusqlite::params![sensor_id, ms(from), ms(to), every_ms],
                    |r| {
                        Ok(Bucket {
                            t: from_ms(r.get(0)?),
                            min: r.get(1)?,
                            mean: r.get(2)?,
                            max: r.get(3)?,
                            count: r.get(4)?,
                        })
                    },
                )
                .sql()?;
            rows.collect::<rusqlite::Result<_>>().sql()
        })
        .await
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

    async fn risk_events_since(&self, after: i64, limit: usize) -> StoreResult<Vec<RiskEvent>> {
        let rows: Vec<(i64, String)> = self
            .read(move |c| {
                let mut stmt = c.prepare_cached(gp_sql("events_since")).sql()?;
                let rows = stmt
                    .query_map(rusqlite::params![after, limit as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .sql()?;
                rows.collect::<rusqlite::Result<_>>().sql()
            })
            .await?;
        rows.into_iter()
            .map(|(id, p)| {
                let v = serde_json::from_str(&p).map_err(|e| {
                    StoreError::Backend(BackendError::with_source(
                        format!("risk event {id}: {e}"),
                        e,
                    ))
                })?;
                event_from_payload(id, v)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_is_present() {
        for n in [
            "insert_readings",
            "readings_raw",
            "readings_buckets",
            "last_reading",
            "alarm_lock",
            "alarm_open_for",
            "alarm_get",
            "alarm_insert",
            "alarm_update",
            "alarm_list",
            "alarms_open",
            "event_insert",
            "events_since",
            "event_latest",
            "change_latest",
            "audit_insert",
        ] {
            assert!(!pg_sql(n).is_empty());
        }
        for n in [
            "insert_reading",
            "readings_raw",
            "readings_buckets",
            "last_reading",
            "alarm_open_for",
            "alarm_get",
            "alarm_insert",
            "alarm_update",
            "alarm_list",
            "alarms_open",
            "event_insert",
            "events_since",
            "event_latest",
            "change_latest",
            "audit_insert",
        ] {
            assert!(!gp_sql(n).is_empty());
        }
    }
}
