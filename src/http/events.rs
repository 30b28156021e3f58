//! `GET /events`: Server-Sent Events of alarm changes (`alarm`), risk-level changes
//! (`risk_level`) and data edits (`edit`), filterable by bbox and kinds, with `id:` cursors
//! and replay after `Last-Event-ID` (see src/risk/events.rs): from the in-memory ring, else
//! from the store's logs (`sync::replay_from_store`), else a `reset` event.

use super::{Caller, QueryParams};
use crate::model::Bbox;
use crate::risk::events::{BusEvent, Cursor, EventKind};
use crate::state::AppState;
use crate::AppError;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

/// Query of `GET /events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    bbox: Option<String>,
    kinds: Option<String>,
    /// For clients that cannot set the header (the id of the last event seen).
    last_event_id: Option<String>,
}

/// Which events a client wants.
#[derive(Debug, Clone)]
struct Filter {
    bbox: Option<Bbox>,
    kinds: Vec<EventKind>,
}

impl Filter {
    fn wants(&self, e: &BusEvent) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&e.kind) {
            return false;
        }
        match (&self.bbox, e.lon, e.lat) {
            (None, _, _) => true,
            (Some(b), Some(x), Some(y)) => {
                x >= b.min_x() && x <= b.max_x() && y >= b.min_y() && y <= b.max_y()
            }
            // Events without a place cannot be inside a box.
            (Some(_), _, _) => false,
        }
    }
}

fn sse(e: &BusEvent) -> Event {
    Event::default()
        .id(e.cursor.to_string())
        .event(e.kind.as_str())
        .data(e.data.clone())
}

fn reset_event() -> Event {
    Event::default().event("reset").data(
        r#"{"reason":"events after your Last-Event-ID are no longer kept; reload the state"}"#,
    )
}

struct Feed {
    rx: tokio::sync::broadcast::Receiver<Arc<BusEvent>>,
    queue: VecDeque<Event>,
    /// Local sequence of the newest event handled (sent or filtered out).
    seq: u64,
    filter: Filter,
    state: AppState,
}

/// Live events. Reconnecting with `Last-Event-ID` replays what was missed: from memory, or
/// (older than memory, or from before a restart) from the store's durable logs; only when
/// those cannot cover it either does a `reset` event come first (reload, then follow).
#[utoipa::path(get, path = "/events", tag = "risk",
    params(("bbox" = Option<String>, Query, description = "only events located in minLon,minLat,maxLon,maxLat"),
        ("kinds" = Option<String>, Query, description = "comma-separated: alarm, risk_level, edit (default all)"),
        ("last_event_id" = Option<String>, Query, description = "same as the Last-Event-ID header")),
    responses((status = 200, description = "`text/event-stream`. `event: alarm` data = Alarm (see GET /alarms); `event: risk_level` data = `{\"id\", \"registered\", \"previous\"?, \"level\", \"lon\", \"lat\"}`; `event: edit` data = `{\"layer\", \"id\", \"op\", \"version\", \"actor\", \"at\", \"lon\", \"lat\"}`; `event: reset` data = `{\"reason\"}`. Every event has an `id:` to resume from."),
        (status = 400, description = "Bad bbox, kinds or Last-Event-ID")))]
pub async fn events(
    State(state): State<AppState>,
    _caller: Caller,
    headers: HeaderMap,
    QueryParams(q): QueryParams<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let bbox = q
        .bbox
        .as_deref()
        .map(|b| Bbox::parse(b).map_err(|e| AppError::BadRequest(e.to_string())))
        .transpose()?;
    let kinds = match &q.kinds {
        None => Vec::new(),
        Some(k) => k
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse::<EventKind>()
                    .map_err(|e| AppError::BadRequest(e.to_string()))
            })
            .collect::<Result<_, _>>()?,
    };
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(q.last_event_id);
    let last = match last.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Cursor::parse(s).ok_or_else(|| {
            AppError::BadRequest(format!(
                "Last-Event-ID '{}' is not an id this service sent",
                s.chars().take(40).collect::<String>()
            ))
        })?),
    };
    let filter = Filter { bbox, kinds };
    let bus = &state.risk.bus;
    // Subscribe before replaying, so nothing published in between is lost; the sequence
    // numbers drop what the replay already sent.
    let rx = bus.subscribe();
    let mut queue = VecDeque::new();
    let mut seq = 0;
    if let Some(c) = last {
        let (mut missed, gap) = bus.replay_after(&c);
        if gap {
            // Older than the ring (or than this process): rebuild from the store's logs
            // up to the newest published event; live events after it follow by sequence.
            let (head, head_seq) = bus.head_seq();
            match crate::sync::replay_from_store(&state.risk, &*state.store, c, head).await {
                Ok(Some(replayed)) => {
                    seq = head_seq;
                    missed.clear();
                    queue.extend(replayed.iter().filter(|e| filter.wants(e)).map(sse));
                }
                Ok(None) => queue.push_back(reset_event()),
                Err(e) => {
                    tracing::warn!(error = %e, "SSE replay from the store failed; sending reset");
                    queue.push_back(reset_event());
                }
            }
        }
        for e in missed {
            seq = seq.max(e.seq);
            if filter.wants(&e) {
                queue.push_back(sse(&e));
            }
        }
    }
    let feed = Feed {
        rx,
        queue,
        seq,
        filter,
        state: state.clone(),
    };
    let closing = state.risk.closing.clone();
    let stream = futures::stream::unfold(feed, move |mut f| {
        let closing = closing.clone();
        async move {
            loop {
                if let Some(e) = f.queue.pop_front() {
                    return Some((Ok(e), f));
                }
                let got = tokio::select! {
                    _ = closing.cancelled() => return None,
                    got = f.rx.recv() => got,
                };
                match got {
                    Ok(e) => {
                        if e.seq <= f.seq {
                            continue;
                        }
                        f.seq = e.seq;
                        if f.filter.wants(&e) {
                            f.queue.push_back(sse(&e));
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        // A slow client: catch up from the ring, or tell it to reload.
                        let (missed, gap) = f.state.risk.bus.since_seq(f.seq);
                        if gap {
                            f.queue.push_back(Event::default().event("reset").data(
                                r#"{"reason":"this client fell too far behind; reload the state"}"#,
                            ));
                        }
                        for e in missed {
                            f.seq = f.seq.max(e.seq);
                            if f.filter.wants(&e) {
                                f.queue.push_back(sse(&e));
                            }
                        }
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
