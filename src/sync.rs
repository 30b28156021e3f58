//! The change follower: one task per instance that reads the store's two append-only logs
//! — the risk-event log (alarm changes) and the change log (data edits) — in order, and
//! applies every entry to this instance's alarm book, R-tree index and tile cache, then
//! publishes it on the live event bus (`GET /events`).
//!
//! Local writes go through here too (the writer pokes the follower), so there is one path
//! and one order for everything, and two instances on one PostGIS database converge: a
//! change written through one is applied by the other's follower, woken by
//! `LISTEN lifeline_changes, lifeline_risk` (with a one-second poll as the fallback when the
//! listening connection is down). Edits are applied from the store's current state of the
//! record, so applying an entry twice, or late, is harmless.

use crate::model::{Change, ChangeOp, Layer, Record};
use crate::risk::events::{BusEvent, Cursor, EventKind, NewEvent};
use crate::risk::model::{LoggedEvent, RiskEvent, TraceEvent};
use crate::risk::{anchor, Book, RiskEngine};
use crate::state::AppState;
use crate::store::postgis::tls::PgTarget;
use crate::store::{Backend, Store, StoreError};
use futures::StreamExt;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Page size of one read of either log.
const PAGE: usize = 1000;

/// How far the follower has come, for `/metrics`: updated by every round.
#[derive(Debug, Default)]
pub struct FollowerProgress {
    /// Rounds that read both logs.
    pub rounds: AtomicU64,
    /// Rounds that failed to read the store.
    pub errors: AtomicU64,
    /// Age in milliseconds of the newest data change applied, when the last round found
    /// one; 0 when it found the logs caught up.
    pub lag_ms: AtomicU64,
    /// When the last round succeeded (Unix milliseconds; 0: not yet).
    pub last_round_ms: AtomicU64,
}

impl FollowerProgress {
    fn round(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        newest: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        let lag = newest.map_or(0, |at| (now - at).num_milliseconds().max(0) as u64);
        self.lag_ms.store(lag, Relaxed);
        self.last_round_ms
            .store(now.timestamp_millis().max(0) as u64, Relaxed);
        self.rounds.fetch_add(1, Relaxed);
    }
}

/// Spawns the follower (and, for PostGIS, its LISTEN connection). Runs until aborted.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let engine = state.risk.clone();
        if state.store.backend() == Backend::Postgis {
            let url = state.config.store_url.clone();
            let e = engine.clone();
            tokio::spawn(async move { listen(url, e).await });
        }
        let (mut r, mut c) = engine.start;
        loop {
            match step(&state, &mut r, &mut c).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    state.follower.errors.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, "change follower: store read failed; retrying")
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), engine.poke.notified()).await;
        }
    })
}

/// Keeps a LISTEN connection open and pokes the follower on every notification; reconnects
/// after failures. Ends when the engine is dropped. It connects as the store's pool does,
/// with the URL's `sslmode`/`sslrootcert` ([`PgTarget`]), named `lifeline-follower`.
async fn listen(url: String, engine: Arc<RiskEngine>) {
    let weak = Arc::downgrade(&engine);
    drop(engine);
    let target = match PgTarget::parse(&url) {
        Ok(t) => t.with_application_name("lifeline-follower"),
        Err(e) => {
            // The store opened with the same URL, so this is not expected; polling still works.
            tracing::warn!(error = %e, "cannot LISTEN; the follower polls every second");
            return;
        }
    };
    loop {
        match target.connect().await {
            Ok((client, mut conn)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
                    while let Some(m) = stream.next().await {
                        match m {
                            Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                                if tx.send(()).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if let Err(e) = client
                    .batch_execute("LISTEN lifeline_changes; LISTEN lifeline_risk")
                    .await
                {
                    tracing::warn!(error = %e, "cannot LISTEN; the follower polls every second");
                }
                while rx.recv().await.is_some() {
                    let Some(engine) = weak.upgrade() else {
                        driver.abort();
                        return;
                    };
                    engine.poke.notify_one();
                }
                driver.abort();
            }
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; the follower polls every second")
            }
        }
        if weak.upgrade().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// One round: applies what is new in both logs. `Ok(true)` when a page was full (more to
/// read at once).
pub async fn step(state: &AppState, r: &mut i64, c: &mut i64) -> Result<bool, StoreError> {
    let engine = &state.risk;
    let events = state.store.risk_events_since(*r, PAGE).await?;
    let mut more = events.len() == PAGE;
    let mut out = Vec::new();
    for ev in &events {
        *r = ev.id();
        let ev = match ev {
            LoggedEvent::Alarm(ev) => ev,
            LoggedEvent::Trace(t) => {
                out.push(trace_event(Cursor { r: *r, c: *c, k: 0 }, t));
                continue;
            }
        };
        let changes = engine.apply_event(ev);
        out.push(alarm_event(Cursor { r: *r, c: *c, k: 0 }, ev));
        for (i, ch) in changes.into_iter().enumerate() {
            out.push(NewEvent {
                cursor: Cursor {
                    r: *r,
                    c: *c,
                    k: i as u32 + 1,
                },
                kind: EventKind::RiskLevel,
                lon: Some(ch.lon),
                lat: Some(ch.lat),
                data: serde_json::to_value(&ch).unwrap_or_default(),
            });
        }
    }
    if let Some(last) = events.last() {
        engine.bus.publish(std::mem::take(&mut out));
        engine.mark_applied(last.id());
    }
    let changes = state.store.changes_since(*c, PAGE).await?;
    more |= changes.len() == PAGE;
    for ch in &changes {
        *c = ch.version;
        let mut k = 0;
        let (lon, lat) = apply_change(state, ch).await?;
        out.push(edit_event(Cursor { r: *r, c: *c, k }, ch, lon, lat));
        // A risk point edit may change its registered, and so its shown, level.
        if ch.layer == Layer::RiskPoints && ch.op != ChangeOp::Delete {
            let book = engine.book.read();
            k += 1;
            if let Some(e) = level_event(engine, &book, Cursor { r: *r, c: *c, k }, ch.record_id) {
                out.push(e);
            }
        }
    }
    if !out.is_empty() {
        engine.bus.publish(out);
    }
    // The wall clock, not the service clock: lag is real time behind the log.
    state
        .follower
        .round(chrono::Utc::now(), changes.last().map(|ch| ch.at));
    Ok(more)
}

fn alarm_event(cursor: Cursor, ev: &RiskEvent) -> NewEvent {
    NewEvent {
        cursor,
        kind: EventKind::Alarm,
        lon: Some(ev.alarm.lon),
        lat: Some(ev.alarm.lat),
        data: serde_json::to_value(&ev.alarm).unwrap_or_default(),
    }
}

/// A published trace as a `trace` event (sent to analysts and above only: see
/// `risk::feed::EventFilter`).
fn trace_event(cursor: Cursor, t: &TraceEvent) -> NewEvent {
    NewEvent {
        cursor,
        kind: EventKind::Trace,
        lon: Some(t.trace.lon),
        lat: Some(t.trace.lat),
        data: serde_json::to_value(&t.trace).unwrap_or_default(),
    }
}

fn edit_event(cursor: Cursor, ch: &Change, lon: Option<f64>, lat: Option<f64>) -> NewEvent {
    NewEvent {
        cursor,
        kind: EventKind::Edit,
        lon,
        lat,
        data: json!({
            "layer": ch.layer, "id": ch.record_id, "op": ch.op, "version": ch.version,
            "actor": ch.actor, "at": ch.at, "lon": lon, "lat": lat,
        }),
    }
}

/// The level a risk point shows now, as a `risk_level` event (`None`: not in the index).
fn level_event(engine: &RiskEngine, book: &Book, cursor: Cursor, id: i64) -> Option<NewEvent> {
    let (registered, level, lon, lat) = engine.shown_level(book, id)?;
    Some(NewEvent {
        cursor,
        kind: EventKind::RiskLevel,
        lon: Some(lon),
        lat: Some(lat),
        data: json!({"id": id, "registered": registered, "level": level, "lon": lon, "lat": lat}),
    })
}

/// Most log entries replayed from the store to one reconnecting client; a client further
/// behind gets `reset` (reloading the state is cheaper than streaming that history).
pub const REPLAY_MAX: usize = 50_000;

/// The events after a client's cursor `seen` up to `head` (the newest event this instance
/// has published), rebuilt from the store's two durable logs: for a client whose cursor is
/// older than the in-memory ring, or than this process (after a restart).
///
/// Alarm and edit events carry the same data as when they were live (alarm snapshots are
/// stored with each risk event; an edit's place is its record's current place). The two
/// logs are merged by time and each event's cursor advances only the log it came from, so
/// resuming from any replayed id continues without loss. The per-change `risk_level`
/// events are not stored; instead the replay ends with one `risk_level` event per risk
/// point the replayed entries touched, at the level it shows now (cursor `head`).
///
/// `Ok(None)`: the logs cannot cover it — the cursor is ahead of this instance (another
/// store's id), or more than [`REPLAY_MAX`] entries are missing.
pub async fn replay_from_store(
    engine: &RiskEngine,
    store: &dyn Store,
    seen: Cursor,
    head: Cursor,
) -> Result<Option<Vec<BusEvent>>, StoreError> {
    if seen.r > head.r || seen.c > head.c {
        return Ok(None);
    }
    let mut alarms: Vec<LoggedEvent> = Vec::new();
    let mut after = seen.r;
    while after < head.r {
        let page = store.risk_events_since(after, PAGE).await?;
        let full = page.len() == PAGE;
        for ev in page.into_iter().take_while(|e| e.id() <= head.r) {
            after = ev.id();
            alarms.push(ev);
        }
        if alarms.len() > REPLAY_MAX {
            return Ok(None);
        }
        if !full {
            break;
        }
    }
    let mut changes: Vec<Change> = Vec::new();
    let mut after = seen.c;
    while after < head.c {
        let page = store.changes_since(after, PAGE).await?;
        let full = page.len() == PAGE;
        for ch in page.into_iter().take_while(|c| c.version <= head.c) {
            after = ch.version;
            changes.push(ch);
        }
        if alarms.len() + changes.len() > REPLAY_MAX {
            return Ok(None);
        }
        if !full {
            break;
        }
    }
    let (mut r, mut c) = (seen.r, seen.c);
    let mut out = Vec::with_capacity(alarms.len() + changes.len());
    let mut points = std::collections::BTreeSet::new();
    let (mut a, mut e) = (alarms.iter().peekable(), changes.iter().peekable());
    loop {
        let take_alarm = match (a.peek(), e.peek()) {
            (Some(x), Some(y)) => x.at() <= y.at,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let ev = if take_alarm {
            let Some(ev) = a.next() else { break };
            r = ev.id();
            match ev {
                LoggedEvent::Alarm(ev) => {
                    points.extend(ev.alarm.risk_point_id);
                    alarm_event(Cursor { r, c, k: 0 }, ev)
                }
                LoggedEvent::Trace(t) => trace_event(Cursor { r, c, k: 0 }, t),
            }
        } else {
            let Some(ch) = e.next() else { break };
            c = ch.version;
            if ch.layer == Layer::RiskPoints && ch.op != ChangeOp::Delete {
                points.insert(ch.record_id);
            }
            let (lon, lat) = engine
                .index
                .get(ch.layer, ch.record_id)
                .and_then(|rec| anchor(&rec))
                .map(|(x, y)| (Some(x), Some(y)))
                .unwrap_or((None, None));
            edit_event(Cursor { r, c, k: 0 }, ch, lon, lat)
        };
        out.push(ev);
    }
    {
        let book = engine.book.read();
        out.extend(
            points
                .into_iter()
                .filter_map(|p| level_event(engine, &book, head, p)),
        );
    }
    Ok(Some(
        out.into_iter()
            .map(|e| BusEvent {
                seq: 0,
                cursor: e.cursor,
                kind: e.kind,
                lon: e.lon,
                lat: e.lat,
                data: e.data.to_string(),
            })
            .collect(),
    ))
}

/// Applies one change-log entry to the index and tile cache from the store's current
/// state of the record; returns where it is (if it has a place).
async fn apply_change(
    state: &AppState,
    ch: &Change,
) -> Result<(Option<f64>, Option<f64>), StoreError> {
    // No local write between reading the store and applying what it said.
    let _writes = state.lock_writes().await;
    if ch.op == ChangeOp::Bulk {
        // A local bulk load already rebuilt the index (and set its version past this one).
        if state.index.version() < ch.version {
            let data = state.store.load_all().await?;
            let idx = state.index.clone();
            let loaded = tokio::task::spawn_blocking(move || idx.load(data)).await;
            if !matches!(loaded, Ok(Ok(()))) {
                tracing::error!("change follower: reloading the index after a bulk load failed");
            }
            state.tiles.clear();
            state.index.set_version(ch.version);
            state.risk.index_reloaded();
        }
        return Ok((None, None));
    }
    let old = state.index.get(ch.layer, ch.record_id);
    let now = state.store.get(ch.layer, ch.record_id).await?;
    let place = |r: &Record| {
        anchor(r)
            .map(|(x, y)| (Some(x), Some(y)))
            .unwrap_or((None, None))
    };
    match now {
        Some(rec) => {
            let at = place(&rec);
            if old.as_deref() != Some(&rec) {
                if let Err(e) = state.index.upsert(rec.clone()) {
                    tracing::error!(error = %e, "change follower: index update failed");
                }
                state.tiles.record_changed(old.as_deref(), Some(&rec));
            }
            // Always (a local write already updated the index, and reported it; applying
            // it again is harmless): after the index, so the statistics see the change.
            state.risk.index_changed(ch.layer, ch.record_id);
            state.index.set_version(ch.version);
            Ok(at)
        }
        None => {
            let at = old.as_deref().map(place).unwrap_or((None, None));
            if old.is_some() {
                state.index.remove(ch.layer, ch.record_id);
                state.tiles.record_changed(old.as_deref(), None);
            }
            state.risk.index_changed(ch.layer, ch.record_id);
            // The index now reflects the log up to here, on this instance too (`/ready`).
            state.index.set_version(ch.version);
            Ok(at)
        }
    }
}
