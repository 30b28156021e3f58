//! The clearance rule table (`data/rules/clearances.toml`) as typed data: horizontal and
//! vertical clearances by pipe kind/sub-kind/pressure/diameter, protection zones, the
//! accuracy widening of the tolerance zone and the dig-method factors. A file is parsed and
//! validated as a whole at load; every problem names the rule and the field.
//!
//! How a pipe's thresholds follow from the rules is [`Rules::thresholds`]; the check engine
//! and the PostGIS oracle test both use it, so the rule mapping is defined in one place.

use lifeline_model::check_result::{
    ser_shared, ser_shared_opt, AccuracySource, Assumed, DigMethod,
};
use lifeline_model::{DrainageKind, GasPressure, PipeKind, Pipeline, QualityLevel};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Largest pipe size (m) the model accepts (`diameter_mm` ≤ 10,000); the candidate search
/// radius adds half of it so the index lookup never misses a wide pipe.
pub const MAX_PIPE_SIZE_M: f64 = 10.0;

/// Why a rule file is unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RuleError {
    #[error("rule file does not parse: {0}")]
    Parse(String),
    #[error("rule '{id}': {message}")]
    Rule { id: String, message: String },
    #[error("rule file: {0}")]
    File(String),
}

/// A value or a list of values in the TOML (`kind = "gas"` or `kind = ["gas", "heat"]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelector {
    kind: OneOrMany<PipeKind>,
    #[serde(default)]
    sub_kind: Option<OneOrMany<DrainageKind>>,
    #[serde(default)]
    pressure_class: Option<OneOrMany<GasPressure>>,
    #[serde(default)]
    min_diameter_mm: Option<f64>,
    #[serde(default)]
    max_diameter_mm: Option<f64>,
}

/// Which pipes a rule applies to. An attribute the pipe does not record matches every
/// value (the strictest matching rule then wins), because an unknown pressure or diameter
/// must never loosen a clearance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selector {
    pub kinds: Vec<PipeKind>,
    pub sub_kinds: Option<Vec<DrainageKind>>,
    pub pressure_classes: Option<Vec<GasPressure>>,
    pub min_diameter_mm: Option<f64>,
    pub max_diameter_mm: Option<f64>,
}

impl Selector {
    fn from_raw(id: &str, r: RawSelector) -> Result<Self, RuleError> {
        let err = |m: &str| RuleError::Rule {
            id: id.to_string(),
            message: m.to_string(),
        };
        let kinds = r.kind.into_vec();
        if kinds.is_empty() {
            return Err(err("applies_to.kind is empty"));
        }
        for (name, v) in [
            ("min_diameter_mm", r.min_diameter_mm),
            ("max_diameter_mm", r.max_diameter_mm),
        ] {
            if let Some(x) = v {
                if !x.is_finite() || x < 0.0 {
                    return Err(err(&format!("applies_to.{name} must be a number >= 0")));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (r.min_diameter_mm, r.max_diameter_mm) {
            if lo > hi {
                return Err(err("applies_to.min_diameter_mm > max_diameter_mm"));
            }
        }
        let pressure_classes = r.pressure_class.map(OneOrMany::into_vec);
        if pressure_classes.is_some()
            && kinds
                .iter()
                .any(|k| !matches!(k, PipeKind::Gas | PipeKind::OilGas))
        {
            return Err(err("pressure_class applies only to gas and oil_gas"));
        }
        let sub_kinds = r.sub_kind.map(OneOrMany::into_vec);
        if sub_kinds.is_some() && kinds.iter().any(|k| *k != PipeKind::Drainage) {
            return Err(err("sub_kind applies only to drainage"));
        }
        Ok(Selector {
            kinds,
            sub_kinds,
            pressure_classes,
            min_diameter_mm: r.min_diameter_mm,
            max_diameter_mm: r.max_diameter_mm,
        })
    }

    /// Whether the rule applies to `p` (unknown attributes match, see the type docs).
    pub fn matches(&self, p: &Pipeline) -> bool {
        if !self.kinds.contains(&p.kind) {
            return false;
        }
        if let (Some(s), Some(v)) = (&self.sub_kinds, p.sub_kind) {
            if !s.contains(&v) {
                return false;
            }
        }
        if let (Some(s), Some(v)) = (&self.pressure_classes, p.pressure_class) {
            if !s.contains(&v) {
                return false;
            }
        }
        if let Some(d) = p.diameter_mm {
            if self.min_diameter_mm.is_some_and(|lo| d < lo)
                || self.max_diameter_mm.is_some_and(|hi| d > hi)
            {
                return false;
            }
        }
        true
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDistanceRule {
    id: String,
    applies_to: RawSelector,
    clearance_m: f64,
    source: String,
    confirmed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtectionRule {
    id: String,
    applies_to: RawSelector,
    no_dig_m: f64,
    permit_m: f64,
    source: String,
    confirmed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTolerance {
    quality_level_cm: BTreeMap<String, f64>,
    unknown_cm: f64,
    min_widening_m: f64,
    half_diameter: bool,
    source: String,
    confirmed: bool,
    info_margin_m: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMethod {
    factor: f64,
    #[serde(default)]
    permit_within_m: Option<f64>,
    source: String,
    confirmed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    version: u32,
    #[serde(default)]
    horizontal: Vec<RawDistanceRule>,
    #[serde(default)]
    vertical: Vec<RawDistanceRule>,
    #[serde(default)]
    protection: Vec<RawProtectionRule>,
    tolerance: RawTolerance,
    methods: BTreeMap<String, RawMethod>,
}

/// Where a figure comes from and whether it was checked against the standard's text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    pub source: String,
    pub confirmed: bool,
}

/// A rule's id and source as shared strings, made once at load: every threshold and
/// conflict the rule decides points at them instead of copying them (a 1 km² dig in the
/// city reports ~1,900 pipes).
#[derive(Debug, Clone, PartialEq)]
struct SharedText {
    id: Arc<str>,
    source: Arc<str>,
}

impl SharedText {
    fn new(id: &str, p: &Provenance) -> SharedText {
        SharedText {
            id: id.into(),
            source: p.source.as_str().into(),
        }
    }
}

/// A horizontal or vertical clearance rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DistanceRule {
    pub id: String,
    pub applies_to: Selector,
    pub clearance_m: f64,
    #[serde(flatten)]
    pub provenance: Provenance,
    #[serde(skip)]
    shared: SharedText,
}

/// A protection zone: no digging within `no_dig_m`, a permit within `permit_m`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProtectionRule {
    pub id: String,
    pub applies_to: Selector,
    pub no_dig_m: f64,
    pub permit_m: f64,
    #[serde(flatten)]
    pub provenance: Provenance,
    #[serde(skip)]
    shared: SharedText,
}

/// How the tolerance zone widens the clearance by a pipe's positional uncertainty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tolerance {
    pub quality_level_m: BTreeMap<QualityLevel, f64>,
    pub unknown_m: f64,
    pub min_widening_m: f64,
    pub half_diameter: bool,
    pub info_margin_m: f64,
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// A dig method's factor on the horizontal clearance, and its permit radius if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodRule {
    pub factor: f64,
    pub permit_within_m: Option<f64>,
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// The whole validated rule table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rules {
    pub version: u32,
    pub horizontal: Vec<DistanceRule>,
    pub vertical: Vec<DistanceRule>,
    pub protection: Vec<ProtectionRule>,
    pub tolerance: Tolerance,
    pub methods: BTreeMap<DigMethod, MethodRule>,
}

/// Every distance the check compares a pipe against, derived from the rules for one pipe
/// and one dig method. All in metres, horizontal unless named vertical. The rule ids and
/// sources are the rules' own shared strings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    /// The required horizontal clearance (rule × method factor, at least the no-dig zone).
    pub clearance_m: f64,
    /// The rule that set `clearance_m`.
    #[serde(serialize_with = "ser_shared")]
    pub rule_id: Arc<str>,
    #[serde(serialize_with = "ser_shared")]
    pub rule_source: Arc<str>,
    pub rule_confirmed: bool,
    /// Outer edge of the tolerance zone: the clearance widened by the positional accuracy.
    pub tolerance_m: f64,
    /// The widening applied (accuracy, at least the one-call minimum, plus half the size).
    pub widening_m: f64,
    pub accuracy_m: f64,
    pub accuracy_source: AccuracySource,
    /// Outer edge of the information margin.
    pub info_m: f64,
    /// Protection no-dig zone (violation whatever the depth), if a protection rule applies.
    pub no_dig_m: Option<f64>,
    /// Permit zone (protection rule or the method's permit radius), if any.
    pub permit_m: Option<f64>,
    #[serde(serialize_with = "ser_shared_opt")]
    pub protection_rule_id: Option<Arc<str>>,
    /// Required vertical clearance, and the depth uncertainty added to it.
    pub vertical_clearance_m: Option<f64>,
    #[serde(serialize_with = "ser_shared_opt")]
    pub vertical_rule_id: Option<Arc<str>>,
    /// Attributes the pipe does not record, for which the strictest rule was assumed.
    pub assumed: Assumed,
}

impl Thresholds {
    /// The largest distance at which this pipe is reported at all.
    pub fn reach_m(&self) -> f64 {
        self.info_m.max(self.permit_m.unwrap_or(0.0))
    }
}

fn check_distance(id: &str, field: &str, v: f64) -> Result<(), RuleError> {
    if !v.is_finite() || !(0.0..=1000.0).contains(&v) {
        return Err(RuleError::Rule {
            id: id.to_string(),
            message: format!("{field} = {v} must be a number of metres in 0..1000"),
        });
    }
    Ok(())
}

fn check_source(id: &str, s: &str) -> Result<(), RuleError> {
    if s.trim().is_empty() {
        return Err(RuleError::Rule {
            id: id.to_string(),
            message: "source must name where the figure comes from".into(),
        });
    }
    Ok(())
}

impl Rules {
    /// The table compiled in from `data/rules/clearances.toml`.
    pub fn builtin() -> Rules {
        Rules::parse(include_str!("../../../data/rules/clearances.toml"))
            .expect("the built-in rule file is checked by unit tests")
    }

    /// Reads and validates a rule file.
    pub fn load(path: &std::path::Path) -> Result<Rules, RuleError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RuleError::File(format!("cannot read {}: {e}", path.display())))?;
        Rules::parse(&text)
    }

    /// Parses and validates rule text: ids unique, distances finite and non-negative,
    /// sources named, every pipe kind covered by a horizontal or protection rule, every
    /// quality level and dig method present.
    pub fn parse(text: &str) -> Result<Rules, RuleError> {
        let raw: RawRules = toml::from_str(text).map_err(|e| RuleError::Parse(e.to_string()))?;
        if raw.version != 1 {
            return Err(RuleError::File(format!(
                "version {} is not supported (expected 1)",
                raw.version
            )));
        }
        let mut ids = HashSet::new();
        let mut seen = |id: &str| -> Result<(), RuleError> {
            if id.trim().is_empty() {
                return Err(RuleError::File("a rule has an empty id".into()));
            }
            if !ids.insert(id.to_string()) {
                return Err(RuleError::Rule {
                    id: id.to_string(),
                    message: "id is used twice".into(),
                });
            }
            Ok(())
        };
        let mut distance = |rules: Vec<RawDistanceRule>| -> Result<Vec<DistanceRule>, RuleError> {
            rules
                .into_iter()
                .map(|r| {
                    seen(&r.id)?;
                    check_distance(&r.id, "clearance_m", r.clearance_m)?;
                    check_source(&r.id, &r.source)?;
                    let provenance = Provenance {
                        source: r.source,
                        confirmed: r.confirmed,
                    };
                    Ok(DistanceRule {
                        applies_to: Selector::from_raw(&r.id, r.applies_to)?,
                        shared: SharedText::new(&r.id, &provenance),
                        id: r.id,
                        clearance_m: r.clearance_m,
                        provenance,
                    })
                })
                .collect()
        };
        let horizontal = distance(raw.horizontal)?;
        let vertical = distance(raw.vertical)?;
        let mut protection = Vec::new();
        for r in raw.protection {
            seen(&r.id)?;
            check_distance(&r.id, "no_dig_m", r.no_dig_m)?;
            check_distance(&r.id, "permit_m", r.permit_m)?;
            check_source(&r.id, &r.source)?;
            if r.permit_m < r.no_dig_m {
                return Err(RuleError::Rule {
                    id: r.id,
                    message: "permit_m must be at least no_dig_m".into(),
                });
            }
            let provenance = Provenance {
                source: r.source,
                confirmed: r.confirmed,
            };
            protection.push(ProtectionRule {
                applies_to: Selector::from_raw(&r.id, r.applies_to)?,
                shared: SharedText::new(&r.id, &provenance),
                id: r.id,
                no_dig_m: r.no_dig_m,
                permit_m: r.permit_m,
                provenance,
            });
        }
        for kind in PipeKind::ALL {
            let covered = horizontal.iter().any(|r| r.applies_to.kinds.contains(kind))
                || protection.iter().any(|r| r.applies_to.kinds.contains(kind));
            if !covered {
                return Err(RuleError::File(format!(
                    "no horizontal or protection rule applies to pipe kind '{kind}'"
                )));
            }
        }
        let t = raw.tolerance;
        let tid = "tolerance";
        let mut quality_level_m = BTreeMap::new();
        for (k, cm) in t.quality_level_cm {
            let ql: QualityLevel =
                k.parse()
                    .map_err(|e: lifeline_model::ModelError| RuleError::Rule {
                        id: tid.into(),
                        message: format!("quality_level_cm: {e}"),
                    })?;
            check_distance(tid, &format!("quality_level_cm.{k}"), cm / 100.0)?;
            quality_level_m.insert(ql, cm / 100.0);
        }
        for ql in QualityLevel::ALL {
            if !quality_level_m.contains_key(ql) {
                return Err(RuleError::Rule {
                    id: tid.into(),
                    message: format!("quality_level_cm has no entry for {ql}"),
                });
            }
        }
        check_distance(tid, "unknown_cm", t.unknown_cm / 100.0)?;
        check_distance(tid, "min_widening_m", t.min_widening_m)?;
        check_distance(tid, "info_margin_m", t.info_margin_m)?;
        check_source(tid, &t.source)?;
        let widest = quality_level_m.values().cloned().fold(0.0, f64::max);
        if t.unknown_cm / 100.0 < widest {
            return Err(RuleError::Rule {
                id: tid.into(),
                message: "unknown_cm must be at least the widest quality level (unknown accuracy gets the widest tolerance)".into(),
            });
        }
        let tolerance = Tolerance {
            quality_level_m,
            unknown_m: t.unknown_cm / 100.0,
            min_widening_m: t.min_widening_m,
            half_diameter: t.half_diameter,
            info_margin_m: t.info_margin_m,
            provenance: Provenance {
                source: t.source,
                confirmed: t.confirmed,
            },
        };
        let mut methods = BTreeMap::new();
        for (name, m) in raw.methods {
            let method: DigMethod =
                name.parse()
                    .map_err(|e: lifeline_model::ModelError| RuleError::Rule {
                        id: format!("methods.{name}"),
                        message: e.to_string(),
                    })?;
            let mid = format!("methods.{name}");
            if !m.factor.is_finite() || !(1.0..=100.0).contains(&m.factor) {
                return Err(RuleError::Rule {
                    id: mid,
                    message: format!("factor = {} must be in 1..100", m.factor),
                });
            }
            if let Some(p) = m.permit_within_m {
                check_distance(&mid, "permit_within_m", p)?;
            }
            check_source(&mid, &m.source)?;
            methods.insert(
                method,
                MethodRule {
                    factor: m.factor,
                    permit_within_m: m.permit_within_m,
                    provenance: Provenance {
                        source: m.source,
                        confirmed: m.confirmed,
                    },
                },
            );
        }
        for m in DigMethod::ALL {
            if !methods.contains_key(m) {
                return Err(RuleError::File(format!(
                    "[methods] has no entry for dig method '{m}'"
                )));
            }
        }
        Ok(Rules {
            version: raw.version,
            horizontal,
            vertical,
            protection,
            tolerance,
            methods,
        })
    }

    /// The factor and rule of a dig method (every method is present after validation).
    pub fn method(&self, m: DigMethod) -> &MethodRule {
        &self.methods[&m]
    }

    /// The thresholds for one pipe dug near with `method`. This runs for every candidate
    /// pipe of a check, so it does not allocate: ids and sources are shared, the
    /// assumptions are flags.
    pub fn thresholds(&self, p: &Pipeline, method: DigMethod) -> Thresholds {
        let m = self.method(method);
        let horizontal = strictest(
            self.horizontal
                .iter()
                .filter(|r| r.applies_to.matches(p))
                .map(|r| (r, r.clearance_m)),
        );
        let protection = strictest(
            self.protection
                .iter()
                .filter(|r| r.applies_to.matches(p))
                .map(|r| (r, r.no_dig_m)),
        );
        let vertical = strictest(
            self.vertical
                .iter()
                .filter(|r| r.applies_to.matches(p))
                .map(|r| (r, r.clearance_m)),
        );
        let uses_pressure = |sel: &Selector| sel.pressure_classes.is_some();
        let uses_diameter =
            |sel: &Selector| sel.min_diameter_mm.is_some() || sel.max_diameter_mm.is_some();
        let rules_of_kind = || {
            self.horizontal
                .iter()
                .map(|r| &r.applies_to)
                .chain(self.protection.iter().map(|r| &r.applies_to))
                .filter(|s| s.kinds.contains(&p.kind))
        };
        let assumed_pressure = p.pressure_class.is_none() && rules_of_kind().any(uses_pressure);
        let assumed_diameter = p.diameter_mm.is_none() && rules_of_kind().any(uses_diameter);
        let base_h = horizontal.map(|r| r.clearance_m).unwrap_or(0.0);
        let no_dig = protection.map(|r| r.no_dig_m);
        let h_scaled = base_h * m.factor;
        let (clearance_m, rule_id, source, confirmed) = match (horizontal, protection) {
            (Some(_), Some(pr)) if pr.no_dig_m > h_scaled => (
                pr.no_dig_m,
                pr.shared.id.clone(),
                pr.shared.source.clone(),
                pr.provenance.confirmed,
            ),
            (Some(h), _) => (
                h_scaled,
                h.shared.id.clone(),
                h.shared.source.clone(),
                h.provenance.confirmed,
            ),
            (None, Some(pr)) => (
                pr.no_dig_m,
                pr.shared.id.clone(),
                pr.shared.source.clone(),
                pr.provenance.confirmed,
            ),
            // Validation guarantees every kind has one of the two; keep a safe value anyway.
            (None, None) => (
                self.tolerance.min_widening_m,
                "none".into(),
                "no rule".into(),
                false,
            ),
        };
        let (accuracy_m, accuracy_source) = match (p.plan_accuracy_cm, p.quality_level) {
            (Some(cm), _) => (cm / 100.0, AccuracySource::Surveyed),
            (None, Some(ql)) => (
                self.tolerance.quality_level_m[&ql],
                AccuracySource::QualityLevel,
            ),
            (None, None) => (self.tolerance.unknown_m, AccuracySource::Unknown),
        };
        let assumed_accuracy = accuracy_source == AccuracySource::Unknown;
        let assumed = Assumed::Flags {
            pressure: assumed_pressure,
            diameter: assumed_diameter,
            accuracy: assumed_accuracy,
        };
        let half_size = if self.tolerance.half_diameter {
            p.size_m().unwrap_or(0.0) / 2.0
        } else {
            0.0
        };
        let widening_m = accuracy_m.max(self.tolerance.min_widening_m) + half_size;
        let tolerance_m =
            ((base_h + widening_m) * m.factor).max(no_dig.map_or(0.0, |n| n + widening_m));
        let tolerance_m = tolerance_m.max(clearance_m);
        let info_m = tolerance_m + self.tolerance.info_margin_m;
        let permit_m = match (protection.map(|r| r.permit_m), m.permit_within_m) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Thresholds {
            clearance_m,
            rule_id,
            rule_source: source,
            rule_confirmed: confirmed,
            tolerance_m,
            widening_m,
            accuracy_m,
            accuracy_source,
            info_m,
            no_dig_m: no_dig,
            permit_m,
            protection_rule_id: protection.map(|r| r.shared.id.clone()),
            vertical_clearance_m: vertical.map(|r| r.clearance_m),
            vertical_rule_id: vertical.map(|r| r.shared.id.clone()),
            assumed,
        }
    }

    /// A search radius no pipe's [`Thresholds::reach_m`] can exceed for `method`: the
    /// index lookup uses it, then each candidate is compared with its own thresholds.
    pub fn max_reach_m(&self, method: DigMethod) -> f64 {
        let m = self.method(method);
        let max_h = self
            .horizontal
            .iter()
            .map(|r| r.clearance_m)
            .fold(0.0, f64::max);
        let max_no_dig = self
            .protection
            .iter()
            .map(|r| r.no_dig_m)
            .fold(0.0, f64::max);
        let max_permit = self
            .protection
            .iter()
            .map(|r| r.permit_m)
            .fold(m.permit_within_m.unwrap_or(0.0), f64::max);
        // Plan accuracy is bounded by the model (plan_accuracy_cm <= 10,000 cm).
        let max_acc = self.tolerance.unknown_m.max(100.0);
        let half = if self.tolerance.half_diameter {
            MAX_PIPE_SIZE_M / 2.0
        } else {
            0.0
        };
        let w = max_acc.max(self.tolerance.min_widening_m) + half;
        let tol = ((max_h + w) * m.factor).max(max_no_dig + w);
        (tol + self.tolerance.info_margin_m).max(max_permit)
    }
}

/// The rule with the largest distance among matches (ties: the first in file order).
fn strictest<'a, R>(it: impl Iterator<Item = (&'a R, f64)>) -> Option<&'a R> {
    let mut best: Option<(&R, f64)> = None;
    for (r, d) in it {
        if best.is_none_or(|(_, bd)| d > bd) {
            best = Some((r, d));
        }
    }
    best.map(|(r, _)| r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::{PipeKind, Pipeline};

    fn line() -> geo::LineString<f64> {
        geo::LineString::from(vec![(106.5, 29.5), (106.501, 29.5)])
    }

    #[test]
    fn builtin_rules_load_and_cover_every_kind() {
        let r = Rules::builtin();
        assert!(r.horizontal.len() >= 9);
        for k in PipeKind::ALL {
            let p = Pipeline::new(1, *k, 1, line());
            let t = r.thresholds(&p, DigMethod::Manual);
            assert!(t.clearance_m > 0.0, "{k}: {t:?}");
            assert!(t.tolerance_m >= t.clearance_m && t.info_m > t.tolerance_m);
            assert!(t.reach_m() <= r.max_reach_m(DigMethod::Manual), "{k}");
        }
    }

    #[test]
    fn gas_pressure_selects_rows_and_unknown_is_strictest() {
        let r = Rules::builtin();
        let mut p = Pipeline::new(1, PipeKind::Gas, 1, line());
        p.pressure_class = Some(GasPressure::MediumB);
        p.plan_accuracy_cm = Some(10.0);
        let t = r.thresholds(&p, DigMethod::Mechanical);
        assert_eq!(t.clearance_m, 1.2);
        assert_eq!(&*t.rule_id, "gb50289-4.1.9-gas-medium");
        assert!(t.rule_confirmed);
        assert_eq!(t.no_dig_m, Some(0.5));
        assert_eq!(t.permit_m, Some(5.0));
        // Accuracy 0.10 m is below the one-call minimum 0.61 m.
        assert!((t.widening_m - 0.61).abs() < 1e-12);
        assert!((t.tolerance_m - 1.81).abs() < 1e-12);
        assert!(t.assumed.is_empty(), "{:?}", t.assumed);
        p.pressure_class = None;
        // Unknown pressure: the strictest gas rows, including the high-pressure 5 m no-dig zone.
        let t = r.thresholds(&p, DigMethod::Mechanical);
        assert_eq!(t.clearance_m, 5.0);
        assert_eq!(&*t.rule_id, "cjj51-gas-protection-high");
        assert_eq!(t.permit_m, Some(50.0));
        assert!(t.assumed.iter().any(|a| a.contains("pressure_class")));
    }

    #[test]
    fn water_diameter_boundary_and_unknown_accuracy() {
        let r = Rules::builtin();
        let mut p = Pipeline::new(1, PipeKind::WaterSupply, 1, line());
        p.diameter_mm = Some(200.0);
        assert_eq!(r.thresholds(&p, DigMethod::Manual).clearance_m, 1.0);
        p.diameter_mm = Some(300.0);
        let t = r.thresholds(&p, DigMethod::Manual);
        assert_eq!(t.clearance_m, 1.5);
        // Unknown accuracy: the widest (2.0 m) plus half the diameter.
        assert_eq!(t.accuracy_source, AccuracySource::Unknown);
        assert!((t.widening_m - 2.15).abs() < 1e-12);
        p.quality_level = Some(QualityLevel::QlB);
        let t = r.thresholds(&p, DigMethod::Manual);
        assert_eq!(t.accuracy_source, AccuracySource::QualityLevel);
        assert!((t.widening_m - (0.61 + 0.15)).abs() < 1e-12);
    }

    #[test]
    fn method_factor_scales_but_not_below_the_no_dig_zone() {
        let r = Rules::builtin();
        let mut p = Pipeline::new(1, PipeKind::OilGas, 1, line());
        p.plan_accuracy_cm = Some(5.0);
        let manual = r.thresholds(&p, DigMethod::Manual);
        assert_eq!(manual.clearance_m, 5.0);
        assert_eq!(&*manual.rule_id, "oil-gas-law-art30");
        assert_eq!(manual.permit_m, Some(50.0));
        let blast = r.thresholds(&p, DigMethod::Blasting);
        assert_eq!(blast.permit_m, Some(200.0));
        let mut w = Pipeline::new(2, PipeKind::Power, 1, line());
        w.plan_accuracy_cm = Some(5.0);
        assert_eq!(r.thresholds(&w, DigMethod::Piling).clearance_m, 1.0);
        assert_eq!(r.thresholds(&w, DigMethod::Blasting).clearance_m, 20.0);
    }

    fn minimal(extra: &str) -> String {
        format!(
            r#"version = 1
{extra}
[[horizontal]]
id = "all"
applies_to = {{ kind = ["water_supply","drainage","gas","oil_gas","power","telecom","broadcast_tv","street_lighting","traffic_signal","heat"] }}
clearance_m = 1.0
source = "test"
confirmed = false
[tolerance]
quality_level_cm = {{ "QL-A" = 5, "QL-B" = 30, "QL-C" = 100, "QL-D" = 200 }}
unknown_cm = 200
min_widening_m = 0.61
half_diameter = true
source = "t"
confirmed = true
info_margin_m = 5.0
[methods]
manual = {{ factor = 1.0, source = "t", confirmed = false }}
mechanical = {{ factor = 1.0, source = "t", confirmed = false }}
directional_drilling = {{ factor = 1.5, source = "t", confirmed = false }}
piling = {{ factor = 2.0, source = "t", confirmed = false }}
blasting = {{ factor = 40.0, source = "t", confirmed = false }}
"#
        )
    }

    #[test]
    fn bad_rule_files_are_named() {
        Rules::parse(&minimal("")).unwrap();
        let dup = r#"[[vertical]]
id = "all"
applies_to = { kind = "gas" }
clearance_m = 0.1
source = "x"
confirmed = false"#;
        let e = Rules::parse(&minimal(dup)).unwrap_err().to_string();
        assert!(e.contains("'all'") && e.contains("twice"), "{e}");
        let neg = dup.replace("\"all\"", "\"v\"").replace("0.1", "-1");
        let e = Rules::parse(&minimal(&neg)).unwrap_err().to_string();
        assert!(e.contains("'v'") && e.contains("clearance_m"), "{e}");
        let kind = dup
            .replace("\"all\"", "\"v\"")
            .replace("\"gas\"", "\"lava\"");
        let e = Rules::parse(&minimal(&kind)).unwrap_err().to_string();
        assert!(e.contains("lava"), "{e}");
        let e = Rules::parse(&minimal("").replace("blasting =", "dynamite ="))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dynamite"), "{e}");
        let e = Rules::parse(&minimal("").replace("\"heat\"", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not parse") || e.contains("heat"), "{e}");
        let e = Rules::parse(&minimal("").replace(", \"QL-D\" = 200", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("QL-D"), "{e}");
        let e = Rules::parse(&minimal("").replace("source = \"test\"", "source = \" \""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("source"), "{e}");
    }
}
