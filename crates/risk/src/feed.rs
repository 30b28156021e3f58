//! The live event stream of `GET /events` as a use case: which events a client wants
//! ([`EventFilter`]), where it resumes ([`last_seen`]), and the stream itself
//! ([`subscribe`]). A reconnecting client first gets what it missed — from the bus's ring
//! ([`super::events::EventBus`]), else from the store's durable logs through the replay
//! the caller supplies (the server's `sync::replay_from_store`, which reads the change log
//! this crate does not own), else a `reset` — and then live events in order, until the
//! server shuts down ([`RiskEngine::closing`]). The HTTP layer renders each [`FeedItem`] as
//! a Server-Sent Event.

use super::events::{BusEvent, Cursor, EventKind};
use super::{RiskEngine, RiskError};
use futures::stream::{BoxStream, StreamExt};
use lifeline_model::Bbox;
use lifeline_store::StoreError;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// The `data:` of the `reset` sent when the events after a client's cursor are no longer
/// kept anywhere.
pub const RESET_NOT_KEPT: &str =
    r#"{"reason":"events after your Last-Event-ID are no longer kept; reload the state"}"#;

/// The `data:` of the `reset` sent to a client that fell behind the ring while connected.
pub const RESET_BEHIND: &str = r#"{"reason":"this client fell too far behind; reload the state"}"#;

/// Which events a client wants: located in a box, of some kinds (empty: all); and which
/// it may have: `trace` events (the valves, pipes and customers of a published isolation)
/// only when `traces` says the caller may trace (analysts and above).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub bbox: Option<Bbox>,
    pub kinds: Vec<EventKind>,
    pub traces: bool,
}

impl EventFilter {
    /// Parses the `bbox` (`minLon,minLat,maxLon,maxLat`) and `kinds` (comma-separated)
    /// query parameters.
    pub fn parse(bbox: Option<&str>, kinds: Option<&str>) -> Result<EventFilter, RiskError> {
        let bad = |e: lifeline_model::ModelError| RiskError::BadRequest(e.to_string());
        let bbox = bbox.map(|b| Bbox::parse(b).map_err(bad)).transpose()?;
        let kinds = match kinds {
            None => Vec::new(),
            Some(k) => k
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse::<EventKind>().map_err(bad))
                .collect::<Result<_, _>>()?,
        };
        Ok(EventFilter {
            bbox,
            kinds,
            traces: false,
        })
    }

    /// The same filter, letting `trace` events through when `may` (the caller's role
    /// allows traces).
    pub fn with_traces(self, may: bool) -> EventFilter {
        EventFilter {
            traces: may,
            ..self
        }
    }

    /// Whether the client wants `e`. Events without a place cannot be inside a box.
    pub fn wants(&self, e: &BusEvent) -> bool {
        if e.kind == EventKind::Trace && !self.traces {
            return false;
        }
        if !self.kinds.is_empty() && !self.kinds.contains(&e.kind) {
            return false;
        }
        match (&self.bbox, e.lon, e.lat) {
            (None, _, _) => true,
            (Some(b), Some(x), Some(y)) => {
                x >= b.min_x() && x <= b.max_x() && y >= b.min_y() && y <= b.max_y()
            }
            (Some(_), _, _) => false,
        }
    }
}

/// Parses the id of the last event a client saw (`Last-Event-ID`); blank is none.
pub fn last_seen(id: Option<&str>) -> Result<Option<Cursor>, RiskError> {
    match id.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => Cursor::parse(s).map(Some).ok_or_else(|| {
            RiskError::BadRequest(format!(
                "Last-Event-ID '{}' is not an id this service sent",
                s.chars().take(40).collect::<String>()
            ))
        }),
    }
}

/// One item of a client's stream.
#[derive(Debug, Clone)]
pub enum FeedItem {
    /// An event, with its cursor as the SSE `id:`.
    Event(Arc<BusEvent>),
    /// Reload the state, then follow: `data:` says why ([`RESET_NOT_KEPT`],
    /// [`RESET_BEHIND`]).
    Reset(&'static str),
}

struct Feed {
    rx: tokio::sync::broadcast::Receiver<Arc<BusEvent>>,
    queue: VecDeque<FeedItem>,
    /// Local sequence of the newest event handled (sent or filtered out).
    seq: u64,
    filter: EventFilter,
    engine: Arc<RiskEngine>,
    /// Cancelled when the server shuts down.
    closing: tokio_util::sync::CancellationToken,
}

impl Feed {
    /// Queues the events of `missed` the client wants, advancing the sequence.
    fn take(&mut self, missed: Vec<Arc<BusEvent>>) {
        for e in missed {
            self.seq = self.seq.max(e.seq);
            if self.filter.wants(&e) {
                self.queue.push_back(FeedItem::Event(e));
            }
        }
    }

    /// The next item: queued, else live (catching up from the ring after a lag); `None`
    /// when the server shuts down or the bus closes.
    async fn next(&mut self) -> Option<FeedItem> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            let got = tokio::select! {
                _ = self.closing.cancelled() => return None,
                got = self.rx.recv() => got,
            };
            match got {
                Ok(e) => {
                    if e.seq <= self.seq {
                        continue;
                    }
                    self.seq = e.seq;
                    if self.filter.wants(&e) {
                        self.queue.push_back(FeedItem::Event(e));
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // A slow client: catch up from the ring, or tell it to reload.
                    let (missed, gap) = self.engine.bus.since_seq(self.seq);
                    if gap {
                        self.queue.push_back(FeedItem::Reset(RESET_BEHIND));
                    }
                    self.take(missed);
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// A client's stream: after `last` (if given) the events it missed, then live events that
/// pass `filter`, until the server shuts down. `replay(seen, head)` rebuilds the events
/// between two cursors from the store's logs when the ring no longer holds them
/// (`Ok(None)`: the logs cannot cover it either).
pub async fn subscribe<R, Fut>(
    engine: Arc<RiskEngine>,
    filter: EventFilter,
    last: Option<Cursor>,
    replay: R,
) -> BoxStream<'static, FeedItem>
where
    R: FnOnce(Cursor, Cursor) -> Fut,
    Fut: Future<Output = Result<Option<Vec<BusEvent>>, StoreError>>,
{
    // Subscribe before replaying, so nothing published in between is lost; the sequence
    // numbers drop what the replay already sent.
    let rx = engine.bus.subscribe();
    let mut feed = Feed {
        rx,
        queue: VecDeque::new(),
        seq: 0,
        filter,
        engine: engine.clone(),
        closing: engine.closing.clone(),
    };
    if let Some(c) = last {
        let (mut missed, gap) = engine.bus.replay_after(&c);
        if gap {
            // Older than the ring (or than this process): rebuild from the store's logs
            // up to the newest published event; live events after it follow by sequence.
            let (head, head_seq) = engine.bus.head_seq();
            match replay(c, head).await {
                Ok(Some(replayed)) => {
                    feed.seq = head_seq;
                    missed.clear();
                    let wanted = replayed.into_iter().filter(|e| feed.filter.wants(e));
                    let items: Vec<FeedItem> =
                        wanted.map(|e| FeedItem::Event(Arc::new(e))).collect();
                    feed.queue.extend(items);
                }
                Ok(None) => feed.queue.push_back(FeedItem::Reset(RESET_NOT_KEPT)),
                Err(e) => {
                    tracing::warn!(error = %e, "SSE replay from the store failed; sending reset");
                    feed.queue.push_back(FeedItem::Reset(RESET_NOT_KEPT));
                }
            }
        }
        feed.take(missed);
    }
    futures::stream::unfold(feed, |mut f| async move { f.next().await.map(|i| (i, f)) }).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_cursors_parse_with_named_errors() {
        let f = EventFilter::parse(Some("106,29,107,30"), Some("alarm, edit,")).unwrap();
        assert_eq!(f.kinds, vec![EventKind::Alarm, EventKind::Edit]);
        let e = BusEvent {
            seq: 1,
            cursor: Cursor::default(),
            kind: EventKind::Alarm,
            lon: Some(106.5),
            lat: Some(29.5),
            data: "{}".into(),
        };
        assert!(f.wants(&e));
        assert!(!f.wants(&BusEvent {
            lon: None,
            ..e.clone()
        }));
        assert!(!f.wants(&BusEvent {
            kind: EventKind::RiskLevel,
            ..e
        }));
        assert!(EventFilter::parse(None, Some("nope")).is_err());
        assert_eq!(last_seen(Some("  ")).unwrap(), None);
        assert_eq!(
            last_seen(Some("3-4-0")).unwrap(),
            Some(Cursor { r: 3, c: 4, k: 0 })
        );
        let e = last_seen(Some("x")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Last-Event-ID 'x' is not an id this service sent"
        );
    }
}
