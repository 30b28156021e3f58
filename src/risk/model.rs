//! The values of the risk one map: sensor readings, alarms with their lifecycle history,
//! and the risk events every alarm change appends (what instances and live clients follow).

use crate::model::{Role, SensorKind};
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
