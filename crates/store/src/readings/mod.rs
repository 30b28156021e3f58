//! Persistence of the risk one map (issue 5): the [`RiskStore`] sub-trait of
//! [`Store`](super::Store) — sensor readings (idempotent by sensor id + time), alarms and
//! the risk-event log — and its two implementations.
//!
//! * PostGIS: readings go in with one `INSERT … SELECT unnest(…) ON CONFLICT DO NOTHING`
//!   per batch (the primary key `(sensor_id, t)` decides duplicates; `RETURNING` says which
//!   rows were new), in a statement whose other parts add those new rows to the hourly and
//!   daily rollups. `readings` is partitioned by day (migration 0010); retention drops
//!   whole partitions. Alarm changes run in one transaction holding a per-sensor advisory
//!   lock, so two instances never raise the same alarm twice, and append a `risk_events`
//!   row whose trigger notifies `lifeline_risk`.
//! * GeoPackage: the same tables as plain SQLite tables, times as Unix milliseconds, every
//!   batch (readings and their rollups) one `BEGIN IMMEDIATE` transaction on the writer
//!   connection; retention deletes expired rows sensor by sensor in short transactions.
//!
//! What an alarm change does to an alarm is decided once, in [`lifeline_model::alarm::apply`];
//! the stores only read the current row, call it, and write the result with its event and
//! audit entry in the same transaction.
//!
//! This file holds the trait and what both implementations share (a time as Unix
//! milliseconds, the risk event's payload, the audit action of an alarm change); the
//! implementations are beside it: `postgis.rs` (statements in `postgis.sql`) and `gpkg.rs`
//! (statements in `gpkg.sql`).

mod gpkg;
mod postgis;

use super::{BackendError, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeline_model::alarm::{
    Alarm, AlarmFilter, Bucket, LoggedEvent, PublishedTrace, Reading, RiskEvent, TraceEvent,
};
use lifeline_model::history::{MaintenanceReport, RetentionPolicy, Rollup};
use lifeline_model::Actor;

pub use lifeline_model::alarm::AlarmOp;

/// Storage of readings, alarms and risk events. Both stores pass the same tests
/// (`tests/risk_api.rs`).
#[async_trait]
pub trait RiskStore: Send + Sync {
    /// Stores a batch of checked readings; returns, per reading, whether it was new
    /// (`false`: a reading of that sensor at that time was already stored). The hourly and
    /// daily rollups take in the new rows (not of bad quality) in the same transaction, so a
    /// reading sent again never counts twice. A reading whose day has no partition yet
    /// (PostGIS) gets one made on the spot: the batch never fails for that.
    async fn insert_readings(&self, readings: &[Reading]) -> StoreResult<Vec<bool>>;

    /// min/mean/max per bucket of `every_ms` re-aggregated from a rollup's rows (count and
    /// sum added up, min of mins, max of maxes), oldest first. The caller has checked that
    /// the rollup fits ([`Rollup::fits`]): the result then equals [`Self::reading_buckets`]
    /// over the raw rows still kept.
    async fn rollup_buckets(
        &self,
        sensor_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        every_ms: i64,
        rollup: Rollup,
    ) -> StoreResult<Vec<Bucket>>;

    /// One maintenance round of the readings history at `now` (the service clock's time):
    /// makes sure time partitions exist from today to a few days ahead (a past day gets its
    /// partition from `insert_readings` when a reading for it arrives),
    /// removes raw readings older than the horizon (PostGIS: drops whole daily partitions;
    /// GeoPackage: deletes rows in batches), never touches the rollups, and reports what it
    /// did.
    async fn maintain_readings(
        &self,
        now: DateTime<Utc>,
        policy: &RetentionPolicy,
    ) -> StoreResult<MaintenanceReport>;

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

    /// Appends a published trace to the risk-event log, with its audit entry
    /// (`trace_published`, naming the actor), in one transaction; returns its id.
    async fn publish_trace(&self, trace: &PublishedTrace, actor: &Actor) -> StoreResult<i64>;

    /// Risk-event log entries with id > `after`, oldest first, at most `limit`.
    async fn risk_events_since(&self, after: i64, limit: usize) -> StoreResult<Vec<LoggedEvent>>;

    /// The newest risk-event id and change-log version (0 when empty): where a follower
    /// starts.
    async fn cursors(&self) -> StoreResult<(i64, i64)>;
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The JSON payload of a risk event: the alarm as it is now.
fn payload(a: &Alarm) -> serde_json::Value {
    serde_json::to_value(a).unwrap_or(serde_json::Value::Null)
}

fn event_from_payload(id: i64, kind: &str, p: serde_json::Value) -> StoreResult<LoggedEvent> {
    let unreadable = |e: serde_json::Error| {
        StoreError::Backend(BackendError::with_source(
            format!("risk event {id} ({kind}) unreadable: {e}"),
            e,
        ))
    };
    Ok(match kind {
        "trace" => LoggedEvent::Trace(TraceEvent {
            id,
            trace: serde_json::from_value(p).map_err(unreadable)?,
        }),
        _ => LoggedEvent::Alarm(RiskEvent {
            id,
            alarm: serde_json::from_value(p).map_err(unreadable)?,
        }),
    })
}

/// The audit entry's detail of a published trace: what was published, not the whole of it.
fn trace_detail(id: i64, t: &PublishedTrace) -> serde_json::Value {
    serde_json::json!({
        "event": id,
        "networks": t.networks.iter().map(|n| serde_json::json!({
            "kind": n.kind, "start_pipes": n.start_pipes,
            "valves_to_close": n.valves_to_close, "customers": n.customers,
        })).collect::<Vec<_>>(),
        "message": t.message,
    })
}

fn audit_action(op: &AlarmOp, before: Option<&Alarm>, after: &Alarm) -> String {
    match op {
        AlarmOp::Detect(_) if before.is_none() => "alarm_detected".into(),
        AlarmOp::Detect(_) => "alarm_escalated".into(),
        AlarmOp::Clear { .. } => "alarm_cleared".into(),
        AlarmOp::Transition { .. } => format!("alarm_{}", after.status),
    }
}

#[cfg(test)]
mod tests {
    use super::gpkg::gp_sql;
    use super::postgis::pg_sql;

    #[test]
    fn every_statement_is_present() {
        for n in [
            "insert_readings",
            "readings_rollup_hourly",
            "readings_rollup_daily",
            "readings_create_partitions",
            "readings_drop_partitions",
            "readings_columnar_partitions",
            "readings_raw",
            "readings_buckets",
            "last_reading",
            "alarm_lock",
            "trace_event_insert",
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
            "rollup_hourly_add",
            "rollup_daily_add",
            "readings_rollup_hourly",
            "readings_rollup_daily",
            "readings_next_sensor",
            "readings_expire_sensor",
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
            "trace_event_insert",
            "events_since",
            "event_latest",
            "change_latest",
            "audit_insert",
        ] {
            assert!(!gp_sql(n).is_empty());
        }
    }
}
