//! [`RiskStore`] on PostGIS: batched `unnest` inserts of readings that also keep the hourly
//! and daily rollups, daily time partitions made ahead and dropped past retention (by the
//! functions of migration 0010), alarm changes under a per-sensor advisory lock; statements
//! in `postgis.sql` beside this file.

use super::{audit_action, event_from_payload, ms, payload, trace_detail, AlarmOp, RiskStore};
use crate::postgis::PostgisStore;
use crate::{backend_error, BackendError, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeline_model::alarm::{
    Alarm, AlarmFilter, Bucket, LoggedEvent, PublishedTrace, Reading, RiskEvent,
};
use lifeline_model::history::{floor, MaintenanceReport, RetentionPolicy, Rollup, DAY_MS};
use lifeline_model::{Actor, SensorKind};
use std::collections::HashSet;
use std::str::FromStr;

crate::sqlfile::named_sql!(pub(super) fn pg_sql = "readings/postgis.sql", include_str!("postgis.sql"));

/// Advisory-lock key space of per-sensor alarm changes ("LIFE" + sensor id).
const ALARM_LOCK_BASE: i64 = 0x4c49_4645_0000_0000;

fn bad_text<T: FromStr>(s: &str) -> Result<T, StoreError> {
    s.parse::<T>().map_err(|_| {
        StoreError::Backend(BackendError::new(format!("unexpected stored value '{s}'")))
    })
}

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

/// A bucket row: start, min, mean, max, count.
fn pg_bucket(r: &tokio_postgres::Row) -> StoreResult<Bucket> {
    Ok(Bucket {
        t: r.try_get(0).map_err(backend_error)?,
        min: r.try_get(1).map_err(backend_error)?,
        mean: r.try_get(2).map_err(backend_error)?,
        max: r.try_get(3).map_err(backend_error)?,
        count: r.try_get(4).map_err(backend_error)?,
    })
}

/// Whether an insert failed because no partition of `readings` takes a row's time.
fn no_partition(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        *d.code() == tokio_postgres::error::SqlState::CHECK_VIOLATION
            && d.message().starts_with("no partition of relation")
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
        let rows = match client.query(&stmt, &[&ids, &ts, &vs, &qs]).await {
            Err(e) if no_partition(&e) => {
                // A day maintenance has not prepared (a clock jump, a backfill, a store
                // used without the server): make the batch's days, then insert again.
                // The failed statement changed nothing, rollups included.
                // Only the batch's own days, not the span between them.
                let days: std::collections::BTreeSet<DateTime<Utc>> =
                    ts.iter().map(|t| floor(*t, DAY_MS)).collect();
                let mut made = 0;
                for day in days {
                    let end = day + chrono::Duration::days(1);
                    made += client
                        .query(pg_sql("readings_create_partitions"), &[&day, &end])
                        .await
                        .map_err(backend_error)?
                        .len();
                }
                tracing::info!(
                    partitions = made,
                    "readings partitions created on demand by ingest"
                );
                client
                    .query(&stmt, &[&ids, &ts, &vs, &qs])
                    .await
                    .map_err(backend_error)?
            }
            other => other.map_err(backend_error)?,
        };
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
        let client = self.client().await?;
        let horizon = policy.horizon(now);
        // Each statement commits on its own: the locks a partition's creation or drop takes
        // on `readings` are held for that one step only, never across the round.
        let names = |rows: Vec<tokio_postgres::Row>| -> StoreResult<Vec<String>> {
            rows.iter()
                .filter_map(|r| r.try_get::<_, Option<String>>(0).transpose())
                .collect::<Result<_, _>>()
                .map_err(backend_error)
        };
        // Partitions are made from today on: a past day gets its partition when a reading
        // for it arrives (`insert_readings`), so no empty partitions back to the horizon.
        let today = now
            .date_naive()
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .max(horizon);
        let created = client
            .query(
                pg_sql("readings_create_partitions"),
                &[&today, &policy.ahead(now)],
            )
            .await
            .map_err(backend_error)?;
        let dropped = client
            .query(pg_sql("readings_drop_partitions"), &[&horizon])
            .await
            .map_err(backend_error)?;
        let columnar = if self.citus.load(std::sync::atomic::Ordering::Relaxed) {
            // Citus: partitions wholly older than the late-reading window go columnar (about
            // a third of the row store's bytes, measured in docs/scale-out.md). The
            // procedure commits per partition, so it runs outside any transaction.
            let before = policy.columnar_before(now);
            let rows = client
                .query(pg_sql("readings_heap_partitions_before"), &[&before])
                .await
                .map_err(backend_error)?;
            if !rows.is_empty() {
                client
                    .execute(pg_sql("readings_to_columnar_citus"), &[&before])
                    .await
                    .map_err(backend_error)?;
            }
            rows
        } else {
            client
                .query(pg_sql("readings_columnar_partitions"), &[&horizon])
                .await
                .map_err(backend_error)?
        };
        Ok(MaintenanceReport {
            horizon: Some(horizon),
            partitions_created: names(created)?,
            partitions_dropped: names(dropped)?,
            partitions_to_columnar: names(columnar)?,
            rows_deleted: 0,
        })
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
        buckets(self, "readings_buckets", sensor_id, from, to, every_ms).await
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

    async fn publish_trace(&self, trace: &PublishedTrace, actor: &Actor) -> StoreResult<i64> {
        let payload = serde_json::to_value(trace).map_err(backend_error)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend_error)?;
        let row = tx
            .query_one(
                pg_sql("trace_event_insert"),
                &[&payload, &trace.published_at],
            )
            .await
            .map_err(backend_error)?;
        let id: i64 = row.try_get(0).map_err(backend_error)?;
        tx.execute(
            pg_sql("audit_insert"),
            &[
                &actor.name,
                &actor.role.as_str(),
                &"trace_published",
                &format!("risk_events/{id}"),
                &trace_detail(id, trace),
            ],
        )
        .await
        .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        Ok(id)
    }

    async fn risk_events_since(&self, after: i64, limit: usize) -> StoreResult<Vec<LoggedEvent>> {
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
                let kind: &str = r.try_get(1).map_err(backend_error)?;
                event_from_payload(
                    r.try_get(0).map_err(backend_error)?,
                    kind,
                    r.try_get(2).map_err(backend_error)?,
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

/// min/mean/max buckets of `every_ms` from one of the bucket statements (raw readings or a
/// rollup): they all take (sensor, from, to, bucket width in seconds).
async fn buckets(
    store: &PostgisStore,
    statement: &str,
    sensor_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    every_ms: i64,
) -> StoreResult<Vec<Bucket>> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(pg_sql(statement))
        .await
        .map_err(backend_error)?;
    let every_s = every_ms as f64 / 1000.0;
    client
        .query(&stmt, &[&sensor_id, &from, &to, &every_s])
        .await
        .map_err(backend_error)?
        .iter()
        .map(pg_bucket)
        .collect()
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
