//! The alarm rules at work: per-sensor evaluation of readings (multi-level thresholds with
//! hysteresis and a minimum duration, rate of rise, back-online), and the one function
//! that decides what an [`AlarmOp`] does to an alarm ([`apply`]) — raising, escalating,
//! re-arming, clearing, and the lifecycle moves with who and when. Pure code: the stores
//! call [`apply`] inside their transaction, the engine calls [`evaluate`] under its lock.

use super::rules::KindRules;
use chrono::{DateTime, Utc};
pub use lifeline_model::alarm::{allowed, apply, next_statuses};
use lifeline_model::alarm::{AlarmRule, Reading, Severity};

/// What the engine remembers of one sensor between readings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SensorState {
    /// The newest reading evaluated (any quality).
    pub last: Option<Reading>,
    /// Active threshold level: 0 none, `i + 1` for `levels[i]`.
    pub level: usize,
    /// A higher level waiting for its minimum duration: (level, first reading time).
    pub pending: Option<(usize, DateTime<Utc>)>,
    /// The rate-of-rise rule is firing.
    pub rising: bool,
    /// The good reading the current rate of rise is measured from (at least a minute back).
    pub rise_ref: Option<Reading>,
    /// An offline alarm was raised and the sensor has not reported since.
    pub offline: bool,
    /// The offline rule found no reading of this sensor in the store: it was never
    /// commissioned, so it is not "offline" until it has reported once.
    pub never_reported: bool,
}

/// What a reading makes the engine do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Detect {
        rule: AlarmRule,
        severity: Severity,
        value: Option<f64>,
        at: DateTime<Utc>,
    },
    Clear {
        rule: AlarmRule,
        at: DateTime<Utc>,
    },
}

/// Evaluates one new reading of a sensor against its kind's rules. Readings older than the
/// newest one seen are stored but not evaluated (they would replay history out of order);
/// bad-quality readings only count as a sign of life.
pub fn evaluate(state: &mut SensorState, rules: &KindRules, r: &Reading) -> Vec<Action> {
    let mut out = Vec::new();
    if let Some(last) = &state.last {
        if r.t <= last.t {
            return out;
        }
    }
    if state.offline {
        state.offline = false;
        out.push(Action::Clear {
            rule: AlarmRule::Offline,
            at: r.t,
        });
    }
    if r.quality == lifeline_model::alarm::Quality::Bad {
        // Alive, but the value says nothing; keep the previous good value for rates.
        if let Some(last) = &mut state.last {
            last.t = r.t;
        } else {
            state.last = Some(*r);
        }
        return out;
    }
    let dir = rules.direction;
    let d = dir.danger(r.value);
    let levels = &rules.levels;
    let raw = levels
        .iter()
        .rposition(|l| d >= dir.danger(l.value))
        .map(|i| i + 1)
        .unwrap_or(0);
    // An active level holds while the value stays within the hysteresis band below it.
    let held = (0..state.level)
        .rev()
        .find(|&i| d > dir.danger(levels[i].value) - rules.hysteresis)
        .map(|i| i + 1)
        .unwrap_or(0);
    let target = raw.max(held);
    if target > state.level {
        let since = match state.pending {
            Some((_, since)) => since,
            None => r.t,
        };
        state.pending = Some((target, since));
        if (r.t - since).num_milliseconds() >= rules.min_duration_ms {
            state.level = target;
            state.pending = None;
            out.push(Action::Detect {
                rule: AlarmRule::Threshold,
                severity: levels[target - 1].severity,
                value: Some(r.value),
                at: r.t,
            });
        }
    } else {
        state.pending = None;
        if target < state.level {
            state.level = target;
            if target == 0 {
                out.push(Action::Clear {
                    rule: AlarmRule::Threshold,
                    at: r.t,
                });
            }
        }
    }
    if let Some(rate) = rules.rise_per_min {
        // The slope is taken over at least a minute, so sensor noise between readings a
        // few seconds apart does not read as a rise.
        match state.rise_ref {
            None => state.rise_ref = Some(*r),
            Some(reference) => {
                let minutes = (r.t - reference.t).num_milliseconds() as f64 / 60_000.0;
                if minutes >= 1.0 {
                    let slope = (r.value - reference.value) / minutes;
                    state.rise_ref = Some(*r);
                    if slope >= rate && !state.rising {
                        state.rising = true;
                        out.push(Action::Detect {
                            rule: AlarmRule::RateOfRise,
                            severity: Severity::Alarm,
                            value: Some(r.value),
                            at: r.t,
                        });
                    } else if slope < rate / 2.0 && state.rising {
                        state.rising = false;
                        out.push(Action::Clear {
                            rule: AlarmRule::RateOfRise,
                            at: r.t,
                        });
                    }
                }
            }
        }
    }
    state.last = Some(*r);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rules;
    use chrono::TimeZone;
    use lifeline_model::alarm::{AlarmOp, AlarmStatus, Detection, Quality};
    use lifeline_model::Actor;
    use lifeline_model::SensorKind;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + s, 0).unwrap()
    }

    fn r(s: i64, v: f64) -> Reading {
        Reading {
            sensor_id: 1,
            t: at(s),
            value: v,
            quality: Quality::Good,
        }
    }

    fn detects(a: &[Action]) -> Vec<(AlarmRule, Severity)> {
        a.iter()
            .filter_map(|a| match a {
                Action::Detect { rule, severity, .. } => Some((*rule, *severity)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn thresholds_need_their_minimum_duration_and_escalate() {
        let rules = Rules::builtin().kind(SensorKind::GasLel).clone();
        let mut s = SensorState::default();
        assert!(evaluate(&mut s, &rules, &r(0, 5.0)).is_empty());
        // One reading over 20 %LEL starts the clock; 10 s later it is an alarm.
        assert!(evaluate(&mut s, &rules, &r(1, 25.0)).is_empty());
        assert!(evaluate(&mut s, &rules, &r(5, 24.0)).is_empty());
        let a = evaluate(&mut s, &rules, &r(11, 26.0));
        assert_eq!(detects(&a), vec![(AlarmRule::Threshold, Severity::Alarm)]);
        assert!(evaluate(&mut s, &rules, &r(20, 36.0)).is_empty());
        let a = evaluate(&mut s, &rules, &r(31, 37.0));
        assert_eq!(
            detects(&a),
            vec![(AlarmRule::Threshold, Severity::Emergency)]
        );
    }

    #[test]
    fn a_single_noisy_reading_does_not_alarm() {
        let rules = Rules::builtin().kind(SensorKind::GasLel).clone();
        let mut s = SensorState::default();
        assert!(evaluate(&mut s, &rules, &r(0, 30.0)).is_empty());
        assert!(evaluate(&mut s, &rules, &r(5, 3.0)).is_empty());
        assert!(evaluate(&mut s, &rules, &r(20, 3.0)).is_empty());
        assert_eq!(s.level, 0);
    }

    #[test]
    fn hysteresis_keeps_a_level_until_the_value_is_clearly_back() {
        let rules = Rules::builtin().kind(SensorKind::GasLel).clone();
        let mut s = SensorState::default();
        evaluate(&mut s, &rules, &r(0, 22.0));
        assert_eq!(detects(&evaluate(&mut s, &rules, &r(10, 22.0))).len(), 1);
        // 19 is under 20 but within the 2 %LEL band: still active, no new alarm either.
        assert!(evaluate(&mut s, &rules, &r(20, 19.0)).is_empty());
        assert!(evaluate(&mut s, &rules, &r(30, 21.0)).is_empty());
        assert_eq!(s.level, 1);
        let a = evaluate(&mut s, &rules, &r(40, 17.5));
        assert_eq!(
            a,
            vec![Action::Clear {
                rule: AlarmRule::Threshold,
                at: at(40)
            }]
        );
    }

    #[test]
    fn rate_of_rise_fires_once_and_clears() {
        let rules = Rules::builtin().kind(SensorKind::Level).clone();
        let mut s = SensorState::default();
        evaluate(&mut s, &rules, &r(0, 0.1));
        let a = evaluate(&mut s, &rules, &r(60, 0.5));
        assert_eq!(detects(&a), vec![(AlarmRule::RateOfRise, Severity::Alarm)]);
        assert!(detects(&evaluate(&mut s, &rules, &r(120, 0.9))).is_empty());
        let a = evaluate(&mut s, &rules, &r(180, 0.9));
        assert!(a.iter().any(|a| matches!(
            a,
            Action::Clear {
                rule: AlarmRule::RateOfRise,
                ..
            }
        )));
    }

    #[test]
    fn noise_between_close_readings_is_not_a_rise() {
        let rules = Rules::builtin().kind(SensorKind::Level).clone();
        let mut s = SensorState::default();
        for i in 0..120 {
            let v = 0.4 + if i % 2 == 0 { 0.02 } else { -0.02 };
            assert!(
                evaluate(&mut s, &rules, &r(i * 2, v)).is_empty(),
                "reading {i}"
            );
        }
    }

    #[test]
    fn old_readings_are_not_evaluated() {
        let rules = Rules::builtin().kind(SensorKind::GasLel).clone();
        let mut s = SensorState::default();
        evaluate(&mut s, &rules, &r(100, 1.0));
        assert!(evaluate(&mut s, &rules, &r(50, 90.0)).is_empty());
        assert!(evaluate(&mut s, &rules, &r(60, 90.0)).is_empty());
        assert_eq!(s.level, 0);
    }

    #[test]
    fn lifecycle_moves_follow_the_graph() {
        assert!(allowed(AlarmStatus::Detected, AlarmStatus::Verified));
        assert!(allowed(AlarmStatus::Verified, AlarmStatus::Dispatched));
        assert!(!allowed(AlarmStatus::Detected, AlarmStatus::Closed));
        assert!(!allowed(AlarmStatus::Closed, AlarmStatus::Verified));
        let d = Detection {
            sensor_id: 1,
            sensor_kind: SensorKind::GasLel,
            risk_point_id: None,
            rule: AlarmRule::Threshold,
            severity: Severity::Alarm,
            value: Some(25.0),
            at: at(0),
            lon: 106.5,
            lat: 29.5,
        };
        let sys = Actor::cli();
        let a = apply(&AlarmOp::Detect(d.clone()), None, &sys, at(0))
            .unwrap()
            .unwrap();
        assert_eq!(a.status, AlarmStatus::Detected);
        // Same level again: nothing to write.
        assert!(apply(&AlarmOp::Detect(d), Some(a.clone()), &sys, at(1))
            .unwrap()
            .is_none());
        let e = apply(
            &AlarmOp::Transition {
                id: 1,
                to: AlarmStatus::Closed,
                comment: None,
            },
            Some(a),
            &sys,
            at(2),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("allowed next: verified, false_alarm"),
            "{e}"
        );
    }
}
