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

use crate::model::{ChangeOp, Layer, Record};
use crate::risk::events::{Cursor, EventKind, NewEvent};
use crate::risk::{anchor, RiskEngine};
use crate::server::AppState;
use crate::store::{Backend, StoreError};
use futures::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Page size of one read of either log.
const PAGE: usize = 1000;

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
                    tracing::warn!(error = %e, "change follower: store read failed; retrying")
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), engine.poke.notified()).await;
        }
    })
}

/// Keeps a LISTEN connection open and pokes the follower on every notification; reconnects
/// after failures. Ends when the engine is dropped.
async fn listen(url: String, engine: Arc<RiskEngine>) {
    let weak = Arc::downgrade(&engine);
    drop(engine);
    loop {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
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
        *r = ev.id;
        let changes = engine.apply_event(ev);
        out.push(NewEvent {
            cursor: Cursor { r: *r, c: *c, k: 0 },
            kind: EventKind::Alarm,
            lon: Some(ev.alarm.lon),
            lat: Some(ev.alarm.lat),
            data: serde_json::to_value(&ev.alarm).unwrap_or_default(),
        });
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
        engine.mark_applied(last.id);
    }
    let changes = state.store.changes_since(*c, PAGE).await?;
    more |= changes.len() == PAGE;
    for ch in &changes {
        *c = ch.version;
        let mut k = 0;
        let (lon, lat) = apply_change(state, ch).await?;
        out.push(NewEvent {
            cursor: Cursor { r: *r, c: *c, k },
            kind: EventKind::Edit,
            lon,
            lat,
            data: json!({
                "layer": ch.layer, "id": ch.record_id, "op": ch.op, "version": ch.version,
                "actor": ch.actor, "at": ch.at, "lon": lon, "lat": lat,
            }),
        });
        // A risk point edit may change its registered, and so its shown, level.
        if ch.layer == Layer::RiskPoints && ch.op != ChangeOp::Delete {
            let book = engine.book.read();
            if let Some((registered, level, lon, lat)) = engine.shown_level(&book, ch.record_id) {
                k += 1;
                out.push(NewEvent {
                    cursor: Cursor { r: *r, c: *c, k },
                    kind: EventKind::RiskLevel,
                    lon: Some(lon),
                    lat: Some(lat),
                    data: json!({"id": ch.record_id, "registered": registered, "level": level, "lon": lon, "lat": lat}),
                });
            }
        }
    }
    if !out.is_empty() {
        engine.bus.publish(out);
    }
    Ok(more)
}

/// Applies one change-log entry to the index and tile cache from the store's current
/// state of the record; returns where it is (if it has a place).
async fn apply_change(
    state: &AppState,
    ch: &crate::model::Change,
) -> Result<(Option<f64>, Option<f64>), StoreError> {
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
            state
                .risk
                .edits
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
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
                // After the index: a statistics cache built from here on sees the change.
                state
                    .risk
                    .edits
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                state.tiles.record_changed(old.as_deref(), Some(&rec));
            }
            Ok(at)
        }
        None => {
            let at = old.as_deref().map(place).unwrap_or((None, None));
            if old.is_some() {
                state.index.remove(ch.layer, ch.record_id);
                state
                    .risk
                    .edits
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                state.tiles.record_changed(old.as_deref(), None);
            }
            Ok(at)
        }
    }
}
