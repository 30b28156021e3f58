//! `GET /events`: Server-Sent Events of alarm changes (`alarm`), risk-level changes
//! (`risk_level`), data edits (`edit`) and traces operators publish (`trace`, analysts and
//! above only), filterable by bbox and kinds, with `id:` cursors
//! and replay after `Last-Event-ID`. The stream is [`crate::risk::feed`]'s: from the
//! in-memory ring, else from the store's logs (`sync::replay_from_store`), else a `reset`
//! event; here each item becomes an SSE event.

use super::routes::Routes;
use super::{Caller, QueryParams};
use crate::model::{access, Role};
use crate::risk::events::EventKind;
use crate::risk::feed::{self, EventFilter, FeedItem};
use crate::state::AppState;
use crate::AppError;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use std::convert::Infallible;
use utoipa_axum::routes;

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new().routes(routes!(events))
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

/// An item of the feed as an SSE event: `id:` (events only), `event:` and `data:`, as the
/// caller's role may see it (no key names below operator: [`crate::model::access`]).
fn sse(item: FeedItem, role: Role) -> Event {
    match item {
        FeedItem::Event(e) => Event::default()
            .id(e.cursor.to_string())
            .event(e.kind.as_str())
            .data(shown(&e.kind, &e.data, role)),
        FeedItem::Reset(reason) => Event::default().event("reset").data(reason),
    }
}

/// An event's data as `role` may see it.
fn shown(kind: &EventKind, data: &str, role: Role) -> String {
    if access::sees_actors(role) || !matches!(kind, EventKind::Edit | EventKind::Alarm) {
        return data.to_string();
    }
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(data) else {
        return data.to_string();
    };
    match kind {
        EventKind::Edit => access::redact_edit(&mut v, role),
        _ => access::redact_alarm(&mut v, role),
    }
    v.to_string()
}

/// Live events. Reconnecting with `Last-Event-ID` replays what was missed: from memory, or
/// (older than memory, or from before a restart) from the store's durable logs; only when
/// those cannot cover it either does a `reset` event come first (reload, then follow).
#[utoipa::path(get, path = "/events", operation_id = "event_stream", tag = "risk",
    params(("bbox" = Option<String>, Query, description = "only events located in minLon,minLat,maxLon,maxLat"),
        ("kinds" = Option<String>, Query, description = "comma-separated: alarm, risk_level, edit, trace (default all; trace events reach analysts and above only)"),
        ("last_event_id" = Option<String>, Query, description = "same as the Last-Event-ID header")),
    responses((status = 200, description = "`text/event-stream`. `event: alarm` data = Alarm (see GET /alarms); `event: risk_level` data = `{\"id\", \"registered\", \"previous\"?, \"level\", \"lon\", \"lat\"}`; `event: edit` data = `{\"layer\", \"id\", \"op\", \"version\", \"actor\" (operators and admins only), \"at\", \"lon\", \"lat\"}`; below operator, an alarm's history names the role that acted (`by`), not the key; `event: trace` (analysts and above) data = `{\"message\", \"published_at\", \"role\", \"lon\", \"lat\", \"broken_valves\", \"closed_valves\", \"networks\": [{\"kind\", \"start_pipes\", \"valves_to_close\", \"segment_pipes\", \"pocket_pipes\", \"customers\", \"length_m\", \"source_inside\"}]}`; `event: reset` data = `{\"reason\"}`. Every event has an `id:` to resume from."),
        (status = 400, description = "Bad bbox, kinds or Last-Event-ID")))]
pub async fn events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    QueryParams(q): QueryParams<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let filter = EventFilter::parse(q.bbox.as_deref(), q.kinds.as_deref())?
        .with_traces(caller.has(crate::model::Role::Analyst));
    let header = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let last = feed::last_seen(header.or(q.last_event_id.as_deref()))?;
    let replay =
        |seen, head| crate::sync::replay_from_store(&state.risk, &*state.store, seen, head);
    let items = feed::subscribe(state.risk.clone(), filter, last, replay).await;
    let role = caller.role;
    Ok(Sse::new(items.map(move |i| Ok(sse(i, role)))).keep_alive(KeepAlive::default()))
}
