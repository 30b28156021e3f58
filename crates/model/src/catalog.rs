//! The catalog: vocabularies that are data, not code — the 40 risk categories
//! (`data/risk_categories.toml`) and per-kind sensor units, ranges and alarm thresholds
//! (`data/sensor_kinds.toml`). Both files are compiled in and validated on first use.

use super::{ModelError, RiskLevel, SensorKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

/// One risk category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskCategory {
    pub code: String,
    pub group: String,
    pub name_zh: String,
    pub name_en: String,
    pub default_level: RiskLevel,
}

/// One alarm threshold of a sensor kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// `alarm` or `emergency`.
    pub level: String,
    pub value: f64,
    pub source: String,
    pub confirmed: bool,
}

/// Unit, plausible range and thresholds of a sensor kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorKindSpec {
    pub kind: SensorKind,
    pub unit: String,
    pub min: f64,
    pub max: f64,
    /// `high`, `low` or `abs`: which values are dangerous.
    pub direction: String,
    pub thresholds: Vec<Threshold>,
}

#[derive(Deserialize)]
struct CategoryFile {
    category: Vec<RiskCategory>,
}

#[derive(Deserialize)]
struct SensorFile {
    kind: Vec<SensorKindSpec>,
}

/// Every vocabulary that lives in `data/`.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub risk_categories: Vec<RiskCategory>,
    pub sensor_kinds: Vec<SensorKindSpec>,
    by_code: HashMap<String, usize>,
}

impl Catalog {
    /// Parses and checks the two catalog files.
    pub fn parse(categories_toml: &str, sensors_toml: &str) -> Result<Catalog, ModelError> {
        let cats: CategoryFile = toml::from_str(categories_toml)
            .map_err(|e| ModelError::invalid("risk_categories.toml", e.to_string()))?;
        let sensors: SensorFile = toml::from_str(sensors_toml)
            .map_err(|e| ModelError::invalid("sensor_kinds.toml", e.to_string()))?;
        let mut by_code = HashMap::new();
        for (i, c) in cats.category.iter().enumerate() {
            if by_code.insert(c.code.clone(), i).is_some() {
                return Err(ModelError::invalid(
                    "risk_categories.toml",
                    format!("category code '{}' appears twice", c.code),
                ));
            }
        }
        for k in SensorKind::ALL {
            let n = sensors.kind.iter().filter(|s| s.kind == *k).count();
            if n != 1 {
                return Err(ModelError::invalid(
                    "sensor_kinds.toml",
                    format!("sensor kind '{k}' must appear exactly once, found {n}"),
                ));
            }
        }
        for s in &sensors.kind {
            if s.min.partial_cmp(&s.max) != Some(std::cmp::Ordering::Less) {
                return Err(ModelError::invalid(
                    "sensor_kinds.toml",
                    format!("kind '{}': min must be below max", s.kind),
                ));
            }
            if !["high", "low", "abs"].contains(&s.direction.as_str()) {
                return Err(ModelError::invalid(
                    "sensor_kinds.toml",
                    format!("kind '{}': direction must be high, low or abs", s.kind),
                ));
            }
        }
        Ok(Catalog {
            risk_categories: cats.category,
            sensor_kinds: sensors.kind,
            by_code,
        })
    }

    /// The catalog compiled in from `data/`.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            Catalog::parse(
                include_str!("../../../data/risk_categories.toml"),
                include_str!("../../../data/sensor_kinds.toml"),
            )
            .expect("the built-in catalog files are checked by unit tests")
        })
    }

    /// A risk category by its code.
    pub fn risk_category(&self, code: &str) -> Option<&RiskCategory> {
        self.by_code.get(code).map(|&i| &self.risk_categories[i])
    }

    /// The spec of a sensor kind (every kind has one; checked at parse).
    pub fn sensor_kind(&self, kind: SensorKind) -> &SensorKindSpec {
        self.sensor_kinds
            .iter()
            .find(|s| s.kind == kind)
            .expect("every sensor kind is present; checked at parse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_is_complete() {
        let c = Catalog::builtin();
        assert_eq!(c.risk_categories.len(), 40);
        assert!(c.risk_category("landslide").is_some());
        assert_eq!(c.sensor_kind(SensorKind::GasLel).unit, "%LEL");
    }

    #[test]
    fn duplicate_codes_are_refused() {
        let cats =
            "[[category]]\ncode='a'\ngroup='g'\nname_zh='x'\nname_en='x'\ndefault_level='low'\n";
        let twice = format!("{cats}{cats}");
        let e =
            Catalog::parse(&twice, include_str!("../../../data/sensor_kinds.toml")).unwrap_err();
        assert!(e.to_string().contains("twice"));
    }
}
