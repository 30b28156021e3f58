//! The live event bus behind `GET /events`: a bounded ring of recent events for
//! `Last-Event-ID` replay plus a broadcast channel for live fan-out.
//!
//! Event ids are cursors into the store, not counters of this process: `r-c-k` where `r`
//! is the risk-event id and `c` the change-log version after which the event was produced,
//! and `k` its position among the events one store entry produced (an alarm change can
//! also change a risk point's level). Every instance follows the same store logs in the
//! same order (src/sync.rs), so an id means the same on every instance and a client can
//! reconnect to another one behind a load balancer. When a client's cursor is older than
//! the ring holds (or than this process: after a restart), the events it missed are
//! rebuilt from the store's two durable logs ([`crate::sync::replay_from_store`]); only
//! when even those cannot cover it does it get a `reset` event first (reload the state,
//! then follow).

use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast;

/// A position in the combined store logs; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Cursor {
    pub r: i64,
    pub c: i64,
    pub k: u32,
}

impl Cursor {
    /// Parses `r-c-k` (the SSE id); anything else is `None`.
    pub fn parse(s: &str) -> Option<Cursor> {
        let mut it = s.trim().split('-');
        let r = it.next()?.parse().ok()?;
        let c = it.next()?.parse().ok()?;
        let k = it.next()?.parse().ok()?;
        if it.next().is_some() || r < 0 || c < 0 {
            return None;
        }
        Some(Cursor { r, c, k })
    }

    /// Whether an event at `self` comes after a client that has seen `seen`.
    pub fn after(&self, seen: &Cursor) -> bool {
        self.r > seen.r
            || self.c > seen.c
            || (self.r == seen.r && self.c == seen.c && self.k > seen.k)
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.r, self.c, self.k)
    }
}

lifeline_model::string_enum! {
    /// Names of the SSE events.
    pub enum EventKind {
        Alarm = "alarm",
        RiskLevel = "risk_level",
        Edit = "edit",
        Trace = "trace",
    }
}

/// One published event.
#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent {
    /// Local sequence (for lag recovery inside this process).
    pub seq: u64,
    pub cursor: Cursor,
    pub kind: EventKind,
    /// Where it happened, for bbox filters; `None` for events without a place.
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    /// The JSON `data:` line.
    pub data: String,
}

/// An event before publication.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub cursor: Cursor,
    pub kind: EventKind,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub data: serde_json::Value,
}

struct Ring {
    events: VecDeque<Arc<BusEvent>>,
    next_seq: u64,
    /// The newest cursor no longer in the ring (everything before the follower started
    /// counts as evicted).
    evicted: Cursor,
}

/// Ring buffer + broadcast; see the module docs.
pub struct EventBus {
    ring: parking_lot::Mutex<Ring>,
    cap: usize,
    tx: broadcast::Sender<Arc<BusEvent>>,
}

impl EventBus {
    /// A bus keeping the last `cap` events for replay.
    pub fn new(cap: usize) -> EventBus {
        let (tx, _) = broadcast::channel(4096);
        EventBus {
            ring: parking_lot::Mutex::new(Ring {
                events: VecDeque::with_capacity(cap.min(65_536)),
                next_seq: 1,
                evicted: Cursor::default(),
            }),
            cap: cap.max(1),
            tx,
        }
    }

    /// Marks where following started: cursors up to here can no longer be replayed.
    pub fn start_at(&self, r: i64, c: i64) {
        let mut ring = self.ring.lock();
        ring.evicted = Cursor { r, c, k: u32::MAX };
    }

    /// Publishes events in order (the ring first, so a subscriber that replays after
    /// subscribing never misses one).
    pub fn publish(&self, events: Vec<NewEvent>) {
        let mut ring = self.ring.lock();
        for e in events {
            let ev = Arc::new(BusEvent {
                seq: ring.next_seq,
                cursor: e.cursor,
                kind: e.kind,
                lon: e.lon,
                lat: e.lat,
                data: e.data.to_string(),
            });
            ring.next_seq += 1;
            if ring.events.len() == self.cap {
                if let Some(old) = ring.events.pop_front() {
                    ring.evicted = old.cursor;
                }
            }
            ring.events.push_back(ev.clone());
            // No receivers is fine.
            let _ = self.tx.send(ev);
        }
    }

    /// A live receiver.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>> {
        self.tx.subscribe()
    }

    /// Number of live subscribers.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Events after a client's cursor, and whether some were already evicted (the client
    /// must reload).
    pub fn replay_after(&self, seen: &Cursor) -> (Vec<Arc<BusEvent>>, bool) {
        let ring = self.ring.lock();
        let gap = ring.evicted.after(seen);
        let out = ring
            .events
            .iter()
            .filter(|e| e.cursor.after(seen))
            .cloned()
            .collect();
        (out, gap)
    }

    /// Events with a local sequence above `seq` (lag recovery), and whether some were
    /// evicted.
    pub fn since_seq(&self, seq: u64) -> (Vec<Arc<BusEvent>>, bool) {
        let ring = self.ring.lock();
        let first = ring.events.front().map(|e| e.seq).unwrap_or(ring.next_seq);
        let out = ring
            .events
            .iter()
            .filter(|e| e.seq > seq)
            .cloned()
            .collect();
        (out, first > seq + 1)
    }

    /// The cursor of the newest event (where a fresh client stands).
    pub fn head(&self) -> Cursor {
        self.head_seq().0
    }

    /// The cursor and local sequence of the newest event, read together: a replay from the
    /// store up to that cursor is joined by live events with a higher sequence.
    pub fn head_seq(&self) -> (Cursor, u64) {
        let ring = self.ring.lock();
        match ring.events.back() {
            Some(e) => (e.cursor, e.seq),
            None => (ring.evicted, ring.next_seq - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(r: i64, c: i64, k: u32) -> NewEvent {
        NewEvent {
            cursor: Cursor { r, c, k },
            kind: EventKind::Alarm,
            lon: None,
            lat: None,
            data: serde_json::json!({"r": r}),
        }
    }

    #[test]
    fn cursors_round_trip_and_order() {
        let c = Cursor { r: 3, c: 7, k: 1 };
        assert_eq!(Cursor::parse(&c.to_string()), Some(c));
        assert_eq!(Cursor::parse("x"), None);
        assert_eq!(Cursor::parse("1-2"), None);
        assert!(Cursor { r: 4, c: 7, k: 0 }.after(&c));
        assert!(Cursor { r: 3, c: 8, k: 0 }.after(&c));
        assert!(Cursor { r: 3, c: 7, k: 2 }.after(&c));
        assert!(!Cursor { r: 3, c: 7, k: 1 }.after(&c));
    }

    #[test]
    fn replay_returns_what_a_client_missed_and_reports_gaps() {
        let bus = EventBus::new(3);
        bus.start_at(0, 0);
        bus.publish(vec![ev(1, 0, 0), ev(1, 0, 1), ev(2, 0, 0)]);
        let (missed, gap) = bus.replay_after(&Cursor { r: 1, c: 0, k: 0 });
        assert!(!gap);
        assert_eq!(missed.len(), 2);
        bus.publish(vec![ev(3, 0, 0)]);
        let (_, gap) = bus.replay_after(&Cursor {
            r: 0,
            c: 0,
            k: u32::MAX,
        });
        assert!(gap, "the first event was evicted");
        let (missed, gap) = bus.replay_after(&Cursor { r: 2, c: 0, k: 0 });
        assert!(!gap);
        assert_eq!(missed.len(), 1);
    }
}
