//! The rule tables of the risk one map, as data: `data/rules/alarms.toml` (ingest limits,
//! thresholds with hysteresis and minimum duration, rate of rise, the offline rule and who
//! may move an alarm where) and `data/rules/risk_raise.toml` (how alarms raise a risk
//! point's level, which sensor kinds to suggest for which category group). Both are
//! compiled in and checked at start-up with errors that name the file and the entry.

use super::model::{AlarmStatus, Severity};
use lifeline_model::{Catalog, RiskLevel, Role, SensorKind};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// A rule file that does not make sense.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{file}: {message}")]
pub struct RuleError {
    pub file: &'static str,
    pub message: String,
}

fn err(file: &'static str, message: impl Into<String>) -> RuleError {
    RuleError {
        file,
        message: message.into(),
    }
}

/// Which values of a kind are dangerous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    High,
    Low,
    Abs,
}

impl Direction {
    /// The value on the danger axis: beyond a threshold means `danger(v) >= danger(t)`.
    pub fn danger(self, v: f64) -> f64 {
        match self {
            Direction::High => v,
            Direction::Low => -v,
            Direction::Abs => v.abs(),
        }
    }
}

/// One threshold level of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    pub severity: Severity,
    pub value: f64,
}

/// The checked rules of one sensor kind.
#[derive(Debug, Clone, PartialEq)]
pub struct KindRules {
    pub kind: SensorKind,
    pub unit: String,
    /// Plausible range: readings outside are refused as faulty.
    pub min: f64,
    pub max: f64,
    pub direction: Direction,
    /// Least severe first; on the danger axis strictly increasing.
    pub levels: Vec<Level>,
    pub hysteresis: f64,
    pub min_duration_ms: i64,
    pub rise_per_min: Option<f64>,
    pub offline_after_ms: i64,
}

/// Limits of `POST /sensors/readings`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRules {
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub max_future_s: i64,
    pub max_past_days: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfflineFile {
    check_every_s: u64,
    default_after_min: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KindFile {
    kind: SensorKind,
    hysteresis: f64,
    min_duration_s: f64,
    #[serde(default)]
    rise_per_min: Option<f64>,
    #[serde(default)]
    offline_after_min: Option<f64>,
    #[serde(default)]
    levels: Option<Vec<Level>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlarmsFile {
    ingest: IngestRules,
    offline: OfflineFile,
    lifecycle: HashMap<AlarmStatus, Role>,
    kind: Vec<KindFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RaiseEntry {
    severity: Severity,
    steps: u8,
    #[serde(default)]
    min_level: Option<RiskLevel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuggestFile {
    radius_m: f64,
    max: usize,
    kinds: HashMap<String, Vec<SensorKind>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RaiseFile {
    raise: Vec<RaiseEntry>,
    suggest: SuggestFile,
}

/// Every rule of the risk one map, checked.
#[derive(Debug, Clone)]
pub struct Rules {
    pub ingest: IngestRules,
    pub offline_check_ms: u64,
    kinds: Vec<KindRules>,
    /// Minimum role per target status.
    pub lifecycle: HashMap<AlarmStatus, Role>,
    /// Per severity: (steps, min level).
    raise: HashMap<Severity, (u8, Option<RiskLevel>)>,
    pub suggest_radius_m: f64,
    pub suggest_max: usize,
    suggest_kinds: HashMap<String, Vec<SensorKind>>,
}

/// A finite number above zero (NaN is not).
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// A finite number at or above zero (NaN is not).
fn non_negative(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

const ALARMS: &str = "data/rules/alarms.toml";
const RAISE: &str = "data/rules/risk_raise.toml";

impl Rules {
    /// Parses and checks both rule files against the catalog.
    pub fn parse(
        alarms_toml: &str,
        raise_toml: &str,
        catalog: &Catalog,
    ) -> Result<Rules, RuleError> {
        let a: AlarmsFile = toml::from_str(alarms_toml).map_err(|e| err(ALARMS, e.to_string()))?;
        let r: RaiseFile = toml::from_str(raise_toml).map_err(|e| err(RAISE, e.to_string()))?;
        if a.ingest.max_body_bytes < 1024 || a.ingest.max_batch == 0 {
            return Err(err(
                ALARMS,
                "[ingest] limits must allow at least one reading",
            ));
        }
        if a.ingest.max_future_s < 0 || a.ingest.max_past_days <= 0 {
            return Err(err(
                ALARMS,
                "[ingest] max_future_s >= 0 and max_past_days > 0",
            ));
        }
        if a.offline.check_every_s == 0 || !positive(a.offline.default_after_min) {
            return Err(err(
                ALARMS,
                "[offline] check_every_s and default_after_min must be positive",
            ));
        }
        for s in [
            AlarmStatus::Verified,
            AlarmStatus::Dispatched,
            AlarmStatus::Handled,
            AlarmStatus::Closed,
            AlarmStatus::FalseAlarm,
        ] {
            if !a.lifecycle.contains_key(&s) {
                return Err(err(ALARMS, format!("[lifecycle] has no role for '{s}'")));
            }
        }
        if a.lifecycle.contains_key(&AlarmStatus::Detected) {
            return Err(err(
                ALARMS,
                "[lifecycle] 'detected' is set by the rule engine only",
            ));
        }
        let mut kinds = Vec::new();
        for spec in &catalog.sensor_kinds {
            let entries: Vec<&KindFile> = a.kind.iter().filter(|k| k.kind == spec.kind).collect();
            if entries.len() > 1 {
                return Err(err(ALARMS, format!("kind '{}' appears twice", spec.kind)));
            }
            let f = entries.first();
            let direction = match spec.direction.as_str() {
                "low" => Direction::Low,
                "abs" => Direction::Abs,
                _ => Direction::High,
            };
            let levels = match f.and_then(|f| f.levels.clone()) {
                Some(l) => l,
                None => spec
                    .thresholds
                    .iter()
                    .map(|t| {
                        t.level
                            .parse::<Severity>()
                            .map(|severity| Level {
                                severity,
                                value: t.value,
                            })
                            .map_err(|e| {
                                err(
                                    ALARMS,
                                    format!("sensor_kinds.toml kind '{}': {e}", spec.kind),
                                )
                            })
                    })
                    .collect::<Result<_, _>>()?,
            };
            let name = spec.kind;
            for w in levels.windows(2) {
                if w[0].severity >= w[1].severity
                    || direction.danger(w[0].value) >= direction.danger(w[1].value)
                {
                    return Err(err(
                        ALARMS,
                        format!("kind '{name}': levels must rise in severity and in danger"),
                    ));
                }
            }
            for l in &levels {
                if !l.value.is_finite() || l.value < spec.min || l.value > spec.max {
                    return Err(err(
                        ALARMS,
                        format!(
                            "kind '{name}': threshold {} outside {}..{}",
                            l.value, spec.min, spec.max
                        ),
                    ));
                }
            }
            let hysteresis = f.map(|f| f.hysteresis).unwrap_or(0.0);
            if !non_negative(hysteresis) {
                return Err(err(
                    ALARMS,
                    format!("kind '{name}': hysteresis must be >= 0"),
                ));
            }
            let min_duration = f.map(|f| f.min_duration_s).unwrap_or(0.0);
            if !non_negative(min_duration) {
                return Err(err(
                    ALARMS,
                    format!("kind '{name}': min_duration_s must be >= 0"),
                ));
            }
            let rise = f.and_then(|f| f.rise_per_min);
            if let Some(x) = rise {
                if !positive(x) {
                    return Err(err(
                        ALARMS,
                        format!("kind '{name}': rise_per_min must be > 0"),
                    ));
                }
            }
            let offline = f
                .and_then(|f| f.offline_after_min)
                .unwrap_or(a.offline.default_after_min);
            if !positive(offline) {
                return Err(err(
                    ALARMS,
                    format!("kind '{name}': offline_after_min must be > 0"),
                ));
            }
            kinds.push(KindRules {
                kind: spec.kind,
                unit: spec.unit.clone(),
                min: spec.min,
                max: spec.max,
                direction,
                levels,
                hysteresis,
                min_duration_ms: (min_duration * 1000.0) as i64,
                rise_per_min: rise,
                offline_after_ms: (offline * 60_000.0) as i64,
            });
        }
        let mut raise = HashMap::new();
        for e in &r.raise {
            if raise.insert(e.severity, (e.steps, e.min_level)).is_some() {
                return Err(err(
                    RAISE,
                    format!("severity '{}' appears twice", e.severity),
                ));
            }
        }
        if !(r.suggest.radius_m > 0.0 && r.suggest.radius_m <= 10_000.0) || r.suggest.max == 0 {
            return Err(err(
                RAISE,
                "[suggest] radius_m must be in 0..10000 and max > 0",
            ));
        }
        for g in r.suggest.kinds.keys() {
            if !catalog.risk_categories.iter().any(|c| &c.group == g) {
                return Err(err(
                    RAISE,
                    format!("[suggest.kinds] unknown category group '{g}'"),
                ));
            }
        }
        Ok(Rules {
            ingest: a.ingest,
            offline_check_ms: a.offline.check_every_s * 1000,
            kinds,
            lifecycle: a.lifecycle,
            raise,
            suggest_radius_m: r.suggest.radius_m,
            suggest_max: r.suggest.max,
            suggest_kinds: r.suggest.kinds,
        })
    }

    /// The rules compiled in from `data/rules/`.
    pub fn builtin() -> &'static Rules {
        static RULES: OnceLock<Rules> = OnceLock::new();
        RULES.get_or_init(|| {
            Rules::parse(
                include_str!("../../../data/rules/alarms.toml"),
                include_str!("../../../data/rules/risk_raise.toml"),
                Catalog::builtin(),
            )
            .expect("the built-in rule files are checked by unit tests")
        })
    }

    /// The rules of a kind (every kind has them).
    pub fn kind(&self, kind: SensorKind) -> &KindRules {
        self.kinds
            .iter()
            .find(|k| k.kind == kind)
            .expect("every kind has rules; built at parse")
    }

    /// The level a risk point registered at `registered` shows with one open alarm of
    /// `severity`.
    pub fn raised(&self, registered: RiskLevel, severity: Severity) -> RiskLevel {
        let Some((steps, min)) = self.raise.get(&severity).copied() else {
            return registered;
        };
        let all = RiskLevel::ALL;
        let i = all.iter().position(|l| *l == registered).unwrap_or(0);
        let up = all[(i + steps as usize).min(all.len() - 1)];
        match min {
            Some(m) if m > up => m,
            _ => up,
        }
    }

    /// Sensor kinds that watch risk points of a category group.
    pub fn suggested_kinds(&self, group: &str) -> &[SensorKind] {
        self.suggest_kinds
            .get(group)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = include_str!("../../../data/rules/alarms.toml");
    const R: &str = include_str!("../../../data/rules/risk_raise.toml");

    #[test]
    fn builtin_rules_load_and_follow_the_catalog() {
        let r = Rules::builtin();
        let gas = r.kind(SensorKind::GasLel);
        assert_eq!(gas.levels.len(), 2);
        assert_eq!(gas.levels[0].value, 20.0);
        assert_eq!(gas.levels[1].severity, Severity::Emergency);
        assert_eq!(r.lifecycle[&AlarmStatus::Dispatched], Role::Operator);
        assert_eq!(
            r.raised(RiskLevel::Low, Severity::Emergency),
            RiskLevel::Major
        );
        assert_eq!(
            r.raised(RiskLevel::General, Severity::Alarm),
            RiskLevel::Large
        );
        assert_eq!(
            r.raised(RiskLevel::Major, Severity::Alarm),
            RiskLevel::Major
        );
        assert_eq!(r.raised(RiskLevel::Low, Severity::Notice), RiskLevel::Low);
    }

    #[test]
    fn bad_rule_files_are_refused_naming_the_problem() {
        let c = Catalog::builtin();
        let e =
            Rules::parse(&A.replace("hysteresis = 2.0", "hysteresis = -1.0"), R, c).unwrap_err();
        assert!(e.to_string().contains("hysteresis"), "{e}");
        let e = Rules::parse(&A.replace("dispatched = \"operator\"\n", ""), R, c).unwrap_err();
        assert!(e.to_string().contains("dispatched"), "{e}");
        let bad_levels = A.replace(
            "kind = \"flow\"\n",
            "kind = \"flow\"\nlevels = [{ severity = \"emergency\", value = 10.0 }, { severity = \"alarm\", value = 20.0 }]\n",
        );
        let e = Rules::parse(&bad_levels, R, c).unwrap_err();
        assert!(e.to_string().contains("levels must rise"), "{e}");
        let e = Rules::parse(A, &R.replace("flood = ", "floods = "), c).unwrap_err();
        assert!(e.to_string().contains("floods"), "{e}");
    }
}
