//! The values of the risk one map: sensor readings, alarms with their lifecycle history,
//! and the risk-event log every alarm change appends to (what instances and live clients
//! follow), which also carries the network traces operators publish ([`PublishedTrace`]);
//! the changes to an alarm ([`AlarmOp`]) and what each does to it ([`apply`]), which the
//! store runs inside the transaction that writes the result.

use crate::{Actor, PipeKind, Role, SensorKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

crate::string_enum! {
    /// Quality flag a device or gateway attaches to a reading. Bad readings are stored but
    /// never evaluated against alarm rules.
    pub enum Quality {
        Good = "good",
        Uncertain = "uncertain",
        Bad = "bad",
    }
}

crate::string_enum! {
    /// Which rule raised an alarm.
    pub enum AlarmRule {
        Threshold = "threshold",
        RateOfRise = "rate_of_rise",
        Offline = "offline",
    }
}

crate::string_enum! {
    /// How serious an alarm is, least first (`Notice < Alarm < Emergency`). Threshold
    /// levels in the rule files are named after these.
    pub enum Severity {
        Notice = "notice",
        Alarm = "alarm",
        Emergency = "emergency",
    }
}

crate::string_enum! {
    /// Lifecycle of an alarm (domain reference §5): detected → verified → dispatched →
    /// handled → closed, or false_alarm. Who may move an alarm where is data
    /// (`data/rules/alarms.toml`, `[lifecycle]`).
    pub enum AlarmStatus {
        Detected = "detected",
        Verified = "verified",
        Dispatched = "dispatched",
        Handled = "handled",
        Closed = "closed",
        FalseAlarm = "false_alarm",
    }
}

impl AlarmStatus {
    /// Whether the alarm still needs people (and still raises its risk point).
    pub fn is_open(self) -> bool {
        !matches!(self, AlarmStatus::Closed | AlarmStatus::FalseAlarm)
    }
}

/// One stored sensor reading. `(sensor_id, t)` is its identity: storing it twice is a no-op.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub sensor_id: i64,
    /// Measurement time, truncated to milliseconds (both stores keep milliseconds).
    pub t: DateTime<Utc>,
    pub value: f64,
    pub quality: Quality,
}

/// One step of an alarm's lifecycle: who moved it where, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// `None` for the detection itself.
    pub from: Option<AlarmStatus>,
    pub to: AlarmStatus,
    /// API key name, or `system` for the rule engine.
    pub by: String,
    pub role: Option<Role>,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// An alarm as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub id: i64,
    pub sensor_id: i64,
    pub sensor_kind: SensorKind,
    /// The risk point the sensor was linked to when the alarm was raised.
    pub risk_point_id: Option<i64>,
    pub rule: AlarmRule,
    pub severity: Severity,
    pub status: AlarmStatus,
    /// The reading that raised (or last escalated) the alarm; none for offline alarms.
    pub value: Option<f64>,
    pub detected_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the condition went away (value back under the threshold less hysteresis, or
    /// the sensor reporting again); the alarm stays open until people close it.
    pub cleared_at: Option<DateTime<Utc>>,
    /// Where the sensor is (CGCS2000 lon/lat).
    pub lon: f64,
    pub lat: f64,
    pub history: Vec<Transition>,
}

/// A condition the rule engine found: raise an alarm, or escalate / re-arm the open one of
/// the same sensor and rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub sensor_id: i64,
    pub sensor_kind: SensorKind,
    pub risk_point_id: Option<i64>,
    pub rule: AlarmRule,
    pub severity: Severity,
    pub value: Option<f64>,
    pub at: DateTime<Utc>,
    pub lon: f64,
    pub lat: f64,
}

/// One entry of the risk-event log: the alarm as it is after a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskEvent {
    /// Monotonic id assigned by the store (the SSE cursor's first part).
    pub id: i64,
    pub alarm: Alarm,
}

/// One entry of the risk-event log as it is read back: an alarm change, or a trace an
/// operator published.
#[derive(Debug, Clone, PartialEq)]
pub enum LoggedEvent {
    Alarm(RiskEvent),
    Trace(TraceEvent),
}

impl LoggedEvent {
    /// The entry's id in the log.
    pub fn id(&self) -> i64 {
        match self {
            LoggedEvent::Alarm(e) => e.id,
            LoggedEvent::Trace(t) => t.id,
        }
    }

    /// When it happened: the alarm's change, or the trace's publication.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            LoggedEvent::Alarm(e) => e.alarm.updated_at,
            LoggedEvent::Trace(t) => t.trace.published_at,
        }
    }
}

/// A published trace as a log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEvent {
    /// Its id in the risk-event log (the SSE cursor's first part).
    pub id: i64,
    pub trace: PublishedTrace,
}

/// The longest message an operator may attach to a published trace, in characters.
pub const MAX_TRACE_MESSAGE: usize = 500;

/// An isolation trace an operator published to the event stream (`event: trace`): enough
/// for a field crew's client to draw it (pipe and valve ids, which the network layers
/// hold) and count it, without the publisher's key name (the stream reaches every analyst
/// and operator; the audit log keeps who).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedTrace {
    /// What the operator says about it, e.g. the incident.
    pub message: Option<String>,
    /// When it was published (the service clock).
    pub published_at: DateTime<Utc>,
    /// The publisher's role.
    pub role: Role,
    /// Where it starts (the first start pipe's first vertex, CGCS2000 lon/lat): for the
    /// stream's bbox filter and the map.
    pub lon: f64,
    pub lat: f64,
    /// The field's what-if the trace was made under.
    pub broken_valves: Vec<i64>,
    pub closed_valves: Vec<i64>,
    /// One per network traced.
    pub networks: Vec<PublishedIsolation>,
}

/// One network's isolation in a [`PublishedTrace`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedIsolation {
    pub kind: PipeKind,
    pub start_pipes: Vec<i64>,
    pub valves_to_close: Vec<i64>,
    pub segment_pipes: Vec<i64>,
    /// Pipes of the pockets cut off as a side effect.
    pub pocket_pipes: Vec<i64>,
    /// Customers who lose supply.
    pub customers: u64,
    /// Length cut off (segment and pockets), metres.
    pub length_m: f64,
    pub source_inside: bool,
}

/// Filter of `GET /alarms`.
#[derive(Debug, Clone, Default)]
pub struct AlarmFilter {
    pub statuses: Vec<AlarmStatus>,
    /// lon/lat box.
    pub bbox: Option<[f64; 4]>,
    pub sensor_id: Option<i64>,
    pub limit: usize,
}

/// One bucket of a downsampled series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    /// Start of the bucket.
    pub t: DateTime<Utc>,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub count: i64,
}

/// A change to one alarm, decided by [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmOp {
    /// A rule fired: raise a new alarm, or escalate / re-arm the open one.
    Detect(Detection),
    /// The condition of the open alarm of this sensor and rule went away.
    Clear {
        sensor_id: i64,
        rule: AlarmRule,
        at: DateTime<Utc>,
    },
    /// A person moves an alarm along its lifecycle.
    Transition {
        id: i64,
        to: AlarmStatus,
        comment: Option<String>,
    },
}

/// Why an alarm change cannot be applied (the store maps these to its own errors).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlarmChangeError {
    /// The alarm a transition names does not exist.
    #[error("{0}")]
    Missing(String),
    /// A move the lifecycle does not allow from the alarm's status.
    #[error("{0}")]
    Conflict(String),
}

/// Which lifecycle moves exist (who may make them is data: `[lifecycle]` in alarms.toml).
pub fn allowed(from: AlarmStatus, to: AlarmStatus) -> bool {
    use AlarmStatus::*;
    matches!(
        (from, to),
        (Detected, Verified)
            | (Detected, FalseAlarm)
            | (Verified, Dispatched)
            | (Verified, FalseAlarm)
            | (Dispatched, Handled)
            | (Dispatched, FalseAlarm)
            | (Handled, Closed)
    )
}

/// The statuses an alarm in `from` may move to.
pub fn next_statuses(from: AlarmStatus) -> Vec<AlarmStatus> {
    AlarmStatus::ALL
        .iter()
        .copied()
        .filter(|to| allowed(from, *to))
        .collect()
}

fn new_alarm(d: &Detection, actor: &Actor) -> Alarm {
    Alarm {
        id: 0,
        sensor_id: d.sensor_id,
        sensor_kind: d.sensor_kind,
        risk_point_id: d.risk_point_id,
        rule: d.rule,
        severity: d.severity,
        status: AlarmStatus::Detected,
        value: d.value,
        detected_at: d.at,
        updated_at: d.at,
        cleared_at: None,
        lon: d.lon,
        lat: d.lat,
        history: vec![Transition {
            from: None,
            to: AlarmStatus::Detected,
            by: actor.name.clone(),
            role: Some(actor.role),
            at: d.at,
            comment: Some(format!("{} {}", d.rule, d.severity)),
        }],
    }
}

/// What `op` does to `current` (the open alarm of the sensor and rule for detections and
/// clears, the alarm with that id for transitions): the alarm to write (id 0: insert), or
/// `None` when nothing changes. A move the lifecycle does not allow is a `Conflict`.
/// The store applies it inside the transaction that writes the result.
pub fn apply(
    op: &AlarmOp,
    current: Option<Alarm>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<Alarm>, AlarmChangeError> {
    match op {
        AlarmOp::Detect(d) => Ok(match current {
            None => Some(new_alarm(d, actor)),
            Some(mut a) if d.severity > a.severity => {
                a.history.push(Transition {
                    from: Some(a.status),
                    to: a.status,
                    by: actor.name.clone(),
                    role: Some(actor.role),
                    at: d.at,
                    comment: Some(format!("escalated from {} to {}", a.severity, d.severity)),
                });
                a.severity = d.severity;
                a.value = d.value;
                a.cleared_at = None;
                a.updated_at = now;
                Some(a)
            }
            Some(mut a) if a.cleared_at.is_some() => {
                a.history.push(Transition {
                    from: Some(a.status),
                    to: a.status,
                    by: actor.name.clone(),
                    role: Some(actor.role),
                    at: d.at,
                    comment: Some("condition returned".into()),
                });
                a.cleared_at = None;
                a.value = d.value;
                a.updated_at = now;
                Some(a)
            }
            Some(_) => None,
        }),
        AlarmOp::Clear { at, .. } => Ok(match current {
            Some(mut a) if a.cleared_at.is_none() => {
                a.cleared_at = Some(*at);
                a.updated_at = now;
                Some(a)
            }
            _ => None,
        }),
        AlarmOp::Transition { id, to, comment } => {
            let Some(mut a) = current else {
                return Err(AlarmChangeError::Missing(format!(
                    "alarm {id} does not exist"
                )));
            };
            if !allowed(a.status, *to) {
                let next: Vec<&str> = next_statuses(a.status).iter().map(|s| s.as_str()).collect();
                return Err(AlarmChangeError::Conflict(format!(
                    "alarm {id} is '{}' and cannot become '{to}' (allowed next: {})",
                    a.status,
                    if next.is_empty() {
                        "none".to_string()
                    } else {
                        next.join(", ")
                    }
                )));
            }
            a.history.push(Transition {
                from: Some(a.status),
                to: *to,
                by: actor.name.clone(),
                role: Some(actor.role),
                at: now,
                comment: comment.clone(),
            });
            a.status = *to;
            a.updated_at = now;
            Ok(Some(a))
        }
    }
}
