//! The risk one map (风险一张图, issue 5): sensor readings in, alarms out, risk points shown
//! at their live level, per-grid statistics, and the live event stream.
//!
//! [`RiskEngine`] owns the in-memory side: each sensor's latest reading and rule state
//! ([`alarms::SensorState`]), the book of open alarms and the level each risk point shows,
//! and the [`events::EventBus`]. The store is the system of record for readings, alarms and
//! the risk-event log (`store::readings::RiskStore`).
//!
//! Flow of a batch: parse and check every item ([`readings`]) → store the valid ones in one
//! statement (duplicates by sensor id + time are reported, not stored twice) → evaluate the
//! new ones against the rules ([`alarms::evaluate`]) → each alarm change is one store
//! transaction that also appends a risk event → the follower (src/sync.rs) applies risk
//! events and change-log entries, in store order, to the book, the index and the bus. Local
//! and remote changes take that same path, which is what keeps two instances on one
//! PostGIS database consistent; a request that changed an alarm waits (briefly) until the
//! follower has applied it, so its caller reads its own write.
//!
//! The HTTP layer calls the engine's methods, [`service`] (parameters parsed into the
//! engine's types, a sensor's readings) and [`feed`] (the live event stream of
//! `GET /events`, with its replay).

pub mod alarms;
pub mod events;
pub mod feed;
pub use lifeline_model::alarm as model;
pub mod readings;
pub mod rules;
pub mod service;
pub mod stats;
mod structure;
pub use structure::BuildInfo;

use alarms::{Action, SensorState};
use chrono::{DateTime, Utc};
use events::EventBus;
use lifeline_index::SpatialIndex;
use lifeline_model::alarm::AlarmOp;
use lifeline_model::history::{MaintenanceReport, RetentionPolicy};
use lifeline_model::{Actor, Clock, Layer, Record, RiskLevel, Role};
use lifeline_store::readings::RiskStore;
use lifeline_store::{AuditLog, SharedStore, StoreError};
use model::{Alarm, AlarmFilter, AlarmRule, AlarmStatus, Detection, RiskEvent, Severity};
use readings::{BatchError, ItemReport};
use rules::Rules;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Failures of the risk domain, mapped to HTTP statuses in one place.
#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The rule engine's identity in histories and the audit log.
pub fn system_actor() -> Actor {
    Actor {
        name: "system".into(),
        key_id: None,
        role: Role::Admin,
    }
}

/// The summary of one ingested batch.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub received: usize,
    pub stored: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// Alarm changes the batch caused.
    pub alarm_changes: usize,
    /// Every item that was not stored, with its position and the reason.
    pub items: Vec<ItemReport>,
}

/// Readings ingested since start-up, by outcome (for `/metrics`).
#[derive(Debug, Default)]
pub struct IngestTotals {
    pub stored: std::sync::atomic::AtomicU64,
    pub duplicates: std::sync::atomic::AtomicU64,
    pub rejected: std::sync::atomic::AtomicU64,
}

impl IngestTotals {
    fn add(&self, r: &IngestReport) {
        use std::sync::atomic::Ordering::Relaxed;
        self.stored.fetch_add(r.stored as u64, Relaxed);
        self.duplicates.fetch_add(r.duplicates as u64, Relaxed);
        self.rejected.fetch_add(r.rejected as u64, Relaxed);
    }
}

/// Open alarms and the levels risk points show; changed only by [`RiskEngine::apply_event`].
#[derive(Debug, Default)]
pub struct Book {
    pub open: HashMap<i64, Alarm>,
    /// Newest risk event applied per alarm (open or not), so replays change nothing.
    applied: HashMap<i64, i64>,
    pub by_point: HashMap<i64, HashSet<i64>>,
    pub offline_sensors: HashSet<i64>,
}

/// A change of the level a risk point shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelChange {
    pub id: i64,
    pub registered: RiskLevel,
    pub previous: RiskLevel,
    pub level: RiskLevel,
    pub lon: f64,
    pub lat: f64,
}

/// See the module docs.
pub struct RiskEngine {
    pub rules: &'static Rules,
    pub store: Arc<dyn RiskStore>,
    /// Where refused alarm moves are recorded.
    audit: Arc<dyn AuditLog>,
    pub index: Arc<SpatialIndex>,
    states: Vec<parking_lot::Mutex<HashMap<i64, SensorState>>>,
    pub book: parking_lot::RwLock<Book>,
    pub bus: EventBus,
    /// Wakes the follower after a local write.
    pub poke: tokio::sync::Notify,
    /// The newest risk-event id the follower has applied.
    applied_tx: tokio::sync::watch::Sender<i64>,
    started: DateTime<Utc>,
    /// The service's clock: the readings window, offline durations and alarm stamps.
    pub clock: Clock,
    /// Where the follower starts: (risk-event id, change version) at start-up.
    pub start: (i64, i64),
    /// Cancelled when the server shuts down; live event streams end with it.
    pub closing: tokio_util::sync::CancellationToken,
    /// The static side of the statistics, built in the background and kept current from
    /// the index changes reported to [`RiskEngine::index_changed`].
    pub(crate) stats: structure::Statistics,
    /// Readings this instance ingested, by outcome.
    pub totals: IngestTotals,
    /// How long raw readings are kept (`[readings]` of the config): ingest refuses older
    /// ones, maintenance removes them.
    pub retention: RetentionPolicy,
}

const SHARDS: usize = 64;

/// A representative point of a record (its own point, or the first coordinate).
pub fn anchor(r: &Record) -> Option<(f64, f64)> {
    use geo::Centroid;
    match r {
        Record::Sensor(s) => Some((s.location.x(), s.location.y())),
        Record::Node(n) => Some((n.geometry.x(), n.geometry.y())),
        Record::RiskPoint(p) => p.geometry.centroid().map(|c| (c.x(), c.y())),
        Record::Pipeline(p) => p.geometry.0.first().map(|c| (c.x, c.y)),
        Record::GridCell(g) => g.geometry.centroid().map(|c| (c.x(), c.y())),
        Record::Owner(_) => None,
    }
}

impl RiskEngine {
    /// Loads the open alarms and notes where the follower starts; raw readings kept as
    /// long as [`RetentionPolicy::default`] says.
    pub async fn open(
        store: SharedStore,
        index: Arc<SpatialIndex>,
        clock: Clock,
    ) -> Result<Arc<RiskEngine>, StoreError> {
        Self::open_with_retention(store, index, clock, RetentionPolicy::default()).await
    }

    /// [`RiskEngine::open`] with the raw readings' retention of the configuration.
    pub async fn open_with_retention(
        store: SharedStore,
        index: Arc<SpatialIndex>,
        clock: Clock,
        retention: RetentionPolicy,
    ) -> Result<Arc<RiskEngine>, StoreError> {
        let start = store.cursors().await?;
        let open = store.open_alarms().await?;
        let (applied_tx, _) = tokio::sync::watch::channel(start.0);
        let stats = structure::Statistics::new(index.clone());
        let engine = RiskEngine {
            rules: Rules::builtin(),
            audit: store.clone(),
            store,
            index,
            states: (0..SHARDS)
                .map(|_| parking_lot::Mutex::new(HashMap::new()))
                .collect(),
            book: parking_lot::RwLock::new(Book::default()),
            bus: EventBus::new(100_000),
            poke: tokio::sync::Notify::new(),
            applied_tx,
            started: clock.now(),
            clock,
            start,
            closing: tokio_util::sync::CancellationToken::new(),
            stats,
            totals: IngestTotals::default(),
            retention,
        };
        engine.bus.start_at(start.0, start.1);
        {
            let mut book = engine.book.write();
            for a in open {
                if a.rule == AlarmRule::Offline && a.cleared_at.is_none() {
                    book.offline_sensors.insert(a.sensor_id);
                    engine.with_state(a.sensor_id, |s| s.offline = true);
                }
                if a.rule == AlarmRule::Threshold {
                    // After a restart the rules resume from the level the alarm is at.
                    engine.adopt_threshold(&a);
                }
                if let Some(p) = a.risk_point_id {
                    book.by_point.entry(p).or_default().insert(a.id);
                }
                book.open.insert(a.id, a);
            }
        }
        // Build the statistics structure now, on its own thread; `/ready` waits for it.
        engine.stats.reloaded();
        Ok(Arc::new(engine))
    }

    /// Tells the statistics that the index changed one record (after the change): it is
    /// applied from the index's state of that record before the next statistics request.
    /// Every index write must report here (the write path and the change follower do).
    pub fn index_changed(&self, layer: Layer, id: i64) {
        if matches!(layer, Layer::GridCells | Layer::RiskPoints | Layer::Sensors) {
            self.stats.changed(layer, id);
        }
    }

    /// Tells the statistics that the whole index was reloaded (bulk load): they are
    /// rebuilt in the background while the previous totals keep answering, and the
    /// records changed meanwhile are re-applied to the new structure.
    pub fn index_reloaded(&self) {
        self.stats.reloaded();
    }

    /// Whether the start-up build of the grid statistics has ended (readiness).
    pub fn statistics_ready(&self) -> bool {
        self.stats.info().ready
    }

    /// Waits at most `timeout` for the start-up build of the grid statistics; whether it
    /// has ended.
    pub async fn wait_statistics_ready(&self, timeout: Duration) -> bool {
        self.stats.wait_ready(timeout).await
    }

    /// The state of the statistics builds, for `/ready` and benchmarks.
    pub fn statistics_info(&self) -> BuildInfo {
        self.stats.info()
    }

    fn with_state<T>(&self, sensor_id: i64, f: impl FnOnce(&mut SensorState) -> T) -> T {
        let shard = &self.states[(sensor_id as u64 % SHARDS as u64) as usize];
        let mut map = shard.lock();
        f(map.entry(sensor_id).or_default())
    }

    /// A copy of a sensor's rule state, if it has reported since start-up.
    pub fn state(&self, sensor_id: i64) -> Option<SensorState> {
        let shard = &self.states[(sensor_id as u64 % SHARDS as u64) as usize];
        shard.lock().get(&sensor_id).cloned()
    }

    /// Ingests a body of readings; see the module docs.
    pub async fn ingest(&self, body: &[u8], content_type: &str) -> Result<IngestReport, RiskError> {
        let items = readings::split_body(body, content_type)?;
        if items.is_empty() {
            return Err(BatchError::Empty.into());
        }
        if items.len() > self.rules.ingest.max_batch {
            return Err(BatchError::TooMany(items.len(), self.rules.ingest.max_batch).into());
        }
        let now = self.clock.now();
        let mut report = IngestReport {
            received: items.len(),
            stored: 0,
            duplicates: 0,
            rejected: 0,
            alarm_changes: 0,
            items: Vec::new(),
        };
        let mut ok = Vec::with_capacity(items.len());
        let horizon = self.retention.horizon(now);
        for (i, item) in items.iter().enumerate() {
            let checked = match item {
                Ok(v) => readings::check_item(i, v, &self.index, self.rules, now)
                    .and_then(|c| readings::check_retention(c, horizon, &self.retention)),
                Err(e) => Err(ItemReport {
                    index: i,
                    status: "rejected",
                    sensor_id: None,
                    error: Some(e.clone()),
                }),
            };
            match checked {
                Ok(c) => ok.push(c),
                Err(r) => report.items.push(r),
            }
        }
        report.rejected = report.items.len();
        let batch: Vec<model::Reading> = ok.iter().map(|c| c.reading).collect();
        let fresh = self.store.insert_readings(&batch).await?;
        let mut new = Vec::with_capacity(ok.len());
        for (c, is_new) in ok.into_iter().zip(fresh) {
            if is_new {
                new.push(c);
            } else {
                report.items.push(ItemReport {
                    index: c.index,
                    status: "duplicate",
                    sensor_id: Some(c.reading.sensor_id),
                    error: Some(format!(
                        "sensor {} already has a reading at {}",
                        c.reading.sensor_id, c.reading.t
                    )),
                });
            }
        }
        report.stored = new.len();
        report.duplicates = report.items.len() - report.rejected;
        report.items.sort_by_key(|r| r.index);
        // Evaluate in time order per sensor, whatever the order in the body.
        new.sort_by_key(|c| (c.reading.sensor_id, c.reading.t));
        let mut ops = Vec::new();
        for c in &new {
            let kr = self.rules.kind(c.kind);
            let actions =
                self.with_state(c.reading.sensor_id, |s| alarms::evaluate(s, kr, &c.reading));
            for a in actions {
                ops.push(match a {
                    Action::Detect {
                        rule,
                        severity,
                        value,
                        at,
                    } => AlarmOp::Detect(Detection {
                        sensor_id: c.reading.sensor_id,
                        sensor_kind: c.kind,
                        risk_point_id: c.risk_point_id,
                        rule,
                        severity,
                        value,
                        at,
                        lon: c.lon,
                        lat: c.lat,
                    }),
                    Action::Clear { rule, at } => AlarmOp::Clear {
                        sensor_id: c.reading.sensor_id,
                        rule,
                        at,
                    },
                });
            }
        }
        let mut newest = 0;
        let sys = system_actor();
        for op in &ops {
            if let Some(ev) = self.store.apply_alarm(op, &sys, now).await? {
                report.alarm_changes += 1;
                newest = newest.max(ev.id);
            }
        }
        if newest > 0 {
            self.wait_applied(newest).await;
        }
        self.totals.add(&report);
        Ok(report)
    }

    /// One maintenance round of the readings history at the clock's "now" (partitions
    /// ahead, raw readings past retention removed; see `RiskStore::maintain_readings`).
    pub async fn maintain_readings(&self) -> Result<MaintenanceReport, RiskError> {
        let report = self
            .store
            .maintain_readings(
                self.clock.now(),
                &self
                    .retention
                    .with_late_window(self.rules.ingest.max_past_days),
            )
            .await?;
        tracing::info!(
            horizon = ?report.horizon,
            created = report.partitions_created.len(),
            dropped = report.partitions_dropped.len(),
            to_columnar = report.partitions_to_columnar.len(),
            rows_deleted = report.rows_deleted,
            "readings history maintained"
        );
        Ok(report)
    }

    /// Wakes the follower and waits (at most 2 s) until it has applied risk event `id`.
    pub async fn wait_applied(&self, id: i64) {
        self.poke.notify_one();
        let mut rx = self.applied_tx.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(2), rx.wait_for(|v| *v >= id)).await;
    }

    /// Records that the follower has applied risk events up to `id`.
    pub fn mark_applied(&self, id: i64) {
        self.applied_tx.send_if_modified(|v| {
            if id > *v {
                *v = id;
                true
            } else {
                false
            }
        });
    }

    /// The least role that may make any alarm move (`[lifecycle]`): who may call the
    /// transition endpoint at all, decided before its body is read.
    pub fn least_mover_role(&self) -> Option<Role> {
        self.rules.lifecycle.values().copied().min()
    }

    /// Who may make which alarm move, for messages: "verified, false_alarm: analyst;
    /// dispatched, handled, closed: operator" (from the lifecycle rules).
    pub fn movers(&self) -> String {
        let mut by_role: Vec<(Role, Vec<&str>)> = Vec::new();
        for status in AlarmStatus::ALL {
            if let Some(role) = self.rules.lifecycle.get(status) {
                match by_role.iter_mut().find(|(r, _)| r == role) {
                    Some((_, v)) => v.push(status.as_str()),
                    None => by_role.push((*role, vec![status.as_str()])),
                }
            }
        }
        by_role.sort_by_key(|(r, _)| *r);
        by_role
            .iter()
            .map(|(r, v)| format!("{}: {r}", v.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Moves an alarm along its lifecycle, if the caller's role allows it.
    pub async fn transition(
        &self,
        id: i64,
        to: AlarmStatus,
        comment: Option<String>,
        actor: &Actor,
    ) -> Result<Alarm, RiskError> {
        let Some(need) = self.rules.lifecycle.get(&to).copied() else {
            return Err(RiskError::BadRequest(format!(
                "'{to}' is set by the rule engine only; move an alarm to one of verified, dispatched, handled, closed, false_alarm"
            )));
        };
        if let Some(c) = &comment {
            if c.trim().is_empty()
                || c.chars().count() > 2000
                || c.chars().any(|ch| ch.is_control() && ch != '\n')
            {
                return Err(RiskError::BadRequest(
                    "comment must be 1..2000 characters without control characters".into(),
                ));
            }
        }
        if !actor.has(need) {
            // Refusals are audited too: who tried to do what.
            let _ = self
                .audit
                .audit(
                    actor,
                    "alarm_denied",
                    &format!("alarms/{id}"),
                    serde_json::json!({"to": to}),
                )
                .await;
            return Err(RiskError::Forbidden(format!(
                "moving an alarm to '{to}' needs the {need} role; you are {}",
                actor.role
            )));
        }
        let op = AlarmOp::Transition { id, to, comment };
        match self.store.apply_alarm(&op, actor, self.clock.now()).await? {
            Some(ev) => {
                self.wait_applied(ev.id).await;
                Ok(ev.alarm)
            }
            None => Err(RiskError::NotFound(format!("alarm {id} does not exist"))),
        }
    }

    /// Puts a trace on the event stream (operators and above): appended to the store's
    /// risk-event log with its audit entry, so every instance following the store sends it
    /// (`event: trace`, to analysts and above) and reconnecting clients get it in their
    /// replay. Returns once this instance has sent it, with its log id.
    pub async fn publish_trace(
        &self,
        trace: &model::PublishedTrace,
        actor: &Actor,
    ) -> Result<i64, RiskError> {
        if !actor.has(Role::Operator) {
            return Err(RiskError::Forbidden(format!(
                "publishing a trace needs the operator role; you are {}",
                actor.role
            )));
        }
        let id = self.store.publish_trace(trace, actor).await?;
        self.wait_applied(id).await;
        Ok(id)
    }

    /// Applies one risk event to the book; returns the level changes of risk points.
    pub fn apply_event(&self, ev: &RiskEvent) -> Vec<LevelChange> {
        let a = &ev.alarm;
        let mut book = self.book.write();
        if book.applied.get(&a.id).is_some_and(|e| *e >= ev.id) {
            return Vec::new();
        }
        let before = a.risk_point_id.map(|p| self.shown_level(&book, p));
        book.applied.insert(a.id, ev.id);
        if a.rule == AlarmRule::Threshold {
            self.adopt_threshold(a);
        }
        let old = book.open.remove(&a.id);
        if let Some(old) = &old {
            if let Some(p) = old.risk_point_id {
                if let Some(s) = book.by_point.get_mut(&p) {
                    s.remove(&a.id);
                }
            }
        }
        if a.rule == AlarmRule::Offline {
            if a.status.is_open() && a.cleared_at.is_none() {
                book.offline_sensors.insert(a.sensor_id);
            } else {
                book.offline_sensors.remove(&a.sensor_id);
            }
        }
        if a.status.is_open() {
            if let Some(p) = a.risk_point_id {
                book.by_point.entry(p).or_default().insert(a.id);
            }
            book.open.insert(a.id, a.clone());
        }
        let mut out = Vec::new();
        if let (Some(p), Some(Some((registered, previous, lon, lat)))) = (a.risk_point_id, before) {
            if let Some((_, level, _, _)) = self.shown_level(&book, p) {
                if level != previous {
                    out.push(LevelChange {
                        id: p,
                        registered,
                        previous,
                        level,
                        lon,
                        lat,
                    });
                }
            }
        }
        out
    }

    /// Takes over the threshold level of an alarm decided from a reading newer than any
    /// this instance has evaluated for the sensor — i.e. by another instance — so that a
    /// reading ingested here next clears (with hysteresis) or escalates from the level the
    /// alarm is at, instead of detecting it again or never clearing it. Decisions from
    /// readings this instance has seen (its own) leave its state alone.
    fn adopt_threshold(&self, a: &Alarm) {
        // The time of the reading behind the latest rule-engine decision.
        let decided = match a.cleared_at {
            Some(t) => t,
            None => a
                .history
                .iter()
                .rev()
                .find(|h| h.by == system_actor().name)
                .map(|h| h.at)
                .unwrap_or(a.detected_at),
        };
        let level = match a.cleared_at {
            Some(_) => 0,
            None => self
                .rules
                .kind(a.sensor_kind)
                .levels
                .iter()
                .position(|l| l.severity == a.severity)
                .map_or(0, |i| i + 1),
        };
        self.with_state(a.sensor_id, |s| {
            if s.last.is_none_or(|r| r.t < decided) {
                s.level = level;
                s.pending = None;
            }
        });
    }

    /// (registered, shown, lon, lat) of a risk point, `None` if it is not in the index.
    pub fn shown_level(&self, book: &Book, point: i64) -> Option<(RiskLevel, RiskLevel, f64, f64)> {
        let rec = self.index.get(Layer::RiskPoints, point)?;
        let Record::RiskPoint(p) = &*rec else {
            return None;
        };
        let (lon, lat) = anchor(&rec).unwrap_or((0.0, 0.0));
        Some((p.level, self.level_with(book, point, p.level), lon, lat))
    }

    /// The level a risk point registered at `registered` shows with its open alarms.
    pub fn level_with(&self, book: &Book, point: i64, registered: RiskLevel) -> RiskLevel {
        let mut level = registered;
        if let Some(ids) = book.by_point.get(&point) {
            for id in ids {
                if let Some(a) = book.open.get(id) {
                    level = level.max(self.rules.raised(registered, a.severity));
                }
            }
        }
        level
    }

    /// Runs the offline rule once: sensors silent for longer than their kind allows (the
    /// store confirms, since readings may arrive through another instance) get an
    /// `offline` alarm. Returns how many alarms were raised.
    pub async fn check_offline(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut candidates = Vec::new();
        for rec in self.index.all(Layer::Sensors) {
            let Record::Sensor(s) = &*rec else { continue };
            if s.status == lifeline_model::SensorStatus::Maintenance {
                continue;
            }
            let after = self.rules.kind(s.kind).offline_after_ms;
            // A read that does not insert: most sensors of a city may never have reported.
            let (last, offline, never) = self
                .state(s.id)
                .map(|st| (st.last.map(|r| r.t), st.offline, st.never_reported))
                .unwrap_or((None, false, false));
            if offline || (last.is_none() && never) {
                continue;
            }
            if (now - last.unwrap_or(self.started)).num_milliseconds() > after {
                candidates.push((s.clone(), after));
            }
        }
        let mut raised = 0;
        let mut newest = 0;
        let sys = system_actor();
        // Bounded per round so a fleet going silent at once does not stall the store.
        for (s, after) in candidates.into_iter().take(2000) {
            match self.store.last_reading(s.id).await? {
                // Never reported (not commissioned yet): not offline, and not asked again.
                None => {
                    self.with_state(s.id, |st| st.never_reported = true);
                    continue;
                }
                Some(r) if (now - r.t).num_milliseconds() <= after => {
                    self.with_state(s.id, |st| {
                        if st.last.is_none_or(|l| l.t < r.t) {
                            st.last = Some(r);
                        }
                    });
                    continue;
                }
                Some(_) => {}
            }
            self.with_state(s.id, |st| st.offline = true);
            let op = AlarmOp::Detect(Detection {
                sensor_id: s.id,
                sensor_kind: s.kind,
                risk_point_id: s.risk_point_id,
                rule: AlarmRule::Offline,
                severity: Severity::Notice,
                value: None,
                at: now,
                lon: s.location.x(),
                lat: s.location.y(),
            });
            if let Some(ev) = self.store.apply_alarm(&op, &sys, now).await? {
                raised += 1;
                newest = newest.max(ev.id);
            }
        }
        if newest > 0 {
            self.wait_applied(newest).await;
        }
        Ok(raised)
    }

    /// Alarms from the store (the system of record, so closed ones too).
    pub async fn alarms(&self, filter: &AlarmFilter) -> Result<Vec<Alarm>, RiskError> {
        Ok(self.store.alarms(filter).await?)
    }

    /// One alarm with the moves its status allows next.
    pub async fn alarm(&self, id: i64) -> Result<Alarm, RiskError> {
        self.store
            .alarm(id)
            .await?
            .ok_or_else(|| RiskError::NotFound(format!("alarm {id} does not exist")))
    }

    /// Open alarms of a sensor, from the book.
    pub fn open_alarms_of_sensor(&self, sensor_id: i64) -> Vec<Alarm> {
        let book = self.book.read();
        let mut v: Vec<Alarm> = book
            .open
            .values()
            .filter(|a| a.sensor_id == sensor_id)
            .cloned()
            .collect();
        v.sort_by_key(|a| a.id);
        v
    }

    /// A sensor's newest reading: the newer of this instance's rule state and the store.
    /// Readings ingested through another instance on the same database are in the store
    /// only, so asking it keeps every instance's answer current (one indexed read).
    pub async fn latest(&self, sensor_id: i64) -> Result<Option<model::Reading>, StoreError> {
        let local = self.state(sensor_id).and_then(|st| st.last);
        let stored = self.store.last_reading(sensor_id).await?;
        Ok(match (local, stored) {
            (Some(l), Some(s)) if s.t > l.t => Some(s),
            (Some(l), _) => Some(l),
            (None, s) => s,
        })
    }

    /// The threshold level a sensor is at, from the alarm book (the highest severity of
    /// its open, uncleared threshold alarms): the same on every instance, whichever one
    /// ingested the readings, since alarm changes reach every book through the follower.
    pub fn threshold_level(&self, sensor_id: i64) -> Option<Severity> {
        let book = self.book.read();
        book.open
            .values()
            .filter(|a| {
                a.sensor_id == sensor_id && a.rule == AlarmRule::Threshold && a.cleared_at.is_none()
            })
            .map(|a| a.severity)
            .max()
    }

    /// Whether a sensor has an open, uncleared offline alarm.
    pub fn is_offline(&self, sensor_id: i64) -> bool {
        self.book.read().offline_sensors.contains(&sensor_id)
    }
}

/// Spawns the offline rule; it runs every `check_every_s` until the handle is aborted.
/// How often the readings history is maintained while the server runs.
pub const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// Maintains the readings history every [`MAINTENANCE_EVERY`] (the first round one period
/// after start: the server runs one before it serves). The server aborts the task when it
/// shuts down; a failed round is logged and tried again next period (partitions are made
/// [`RetentionPolicy::AHEAD_DAYS`] ahead, and ingest makes a missing one itself).
pub fn spawn_readings_maintenance(engine: Arc<RiskEngine>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + MAINTENANCE_EVERY,
            MAINTENANCE_EVERY,
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = engine.closing.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = engine.maintain_readings().await {
                tracing::warn!(error = %e, "readings maintenance failed; retrying next round");
            }
        }
    })
}

pub fn spawn_offline_checker(engine: Arc<RiskEngine>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_millis(engine.rules.offline_check_ms);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = engine.check_offline(engine.clock.now()).await {
                tracing::warn!(error = %e, "offline check failed; retrying next round");
            }
        }
    })
}
