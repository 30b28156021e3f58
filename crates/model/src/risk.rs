//! Risk points of the "risk one map": a category from the catalog, a level, a point or
//! area, the grid cell that governs it and the people and plan responsible.

use super::{check_id, check_required_text, check_text, geom, Catalog, ModelError};
use chrono::NaiveDate;
use geo::Geometry;
use serde::{Deserialize, Serialize};

string_enum! {
    /// Risk levels, most severe first: major (red), large (orange), general (yellow),
    /// low (blue). `Ord` follows severity: `Low < General < Large < Major`.
    pub enum RiskLevel {
        Low = "low",
        General = "general",
        Large = "large",
        Major = "major",
    }
}

impl RiskLevel {
    /// The national map colour name.
    pub fn colour(self) -> &'static str {
        match self {
            RiskLevel::Major => "red",
            RiskLevel::Large => "orange",
            RiskLevel::General => "yellow",
            RiskLevel::Low => "blue",
        }
    }
}

string_enum! {
    /// Whether a risk point is still being managed.
    pub enum RiskStatus {
        Active = "active",
        Mitigated = "mitigated",
        Closed = "closed",
    }
}

/// One registered risk point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskPoint {
    #[serde(default)]
    pub id: i64,
    /// Category code from `data/risk_categories.toml`.
    pub category: String,
    /// The registered level (live alarms may raise the displayed level).
    pub level: RiskLevel,
    pub name: String,
    /// The grid cell that governs the point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_cell_id: Option<i64>,
    pub responsible_unit: String,
    pub responsible_person: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsible_phone: Option<String>,
    /// Reference of the emergency plan document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_review: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_review: Option<NaiveDate>,
    #[serde(default = "default_status")]
    pub status: RiskStatus,
    /// A Point or a Polygon, CGCS2000 lon/lat.
    #[serde(with = "geom::point_or_polygon")]
    pub geometry: Geometry<f64>,
}

fn default_status() -> RiskStatus {
    RiskStatus::Active
}

impl RiskPoint {
    /// Checks the category against the catalog, the texts, dates and geometry.
    pub fn validate(&self, catalog: &Catalog) -> Result<(), ModelError> {
        check_id("id", self.id, true)?;
        if catalog.risk_category(&self.category).is_none() {
            return Err(ModelError::UnknownValue {
                what: "risk category",
                value: self.category.chars().take(64).collect(),
                allowed: "a code from data/risk_categories.toml (GET /layers lists them)".into(),
            });
        }
        check_required_text("name", &self.name, 200)?;
        if let Some(g) = self.grid_cell_id {
            check_id("grid_cell_id", g, false)?;
        }
        check_required_text("responsible_unit", &self.responsible_unit, 200)?;
        check_required_text("responsible_person", &self.responsible_person, 100)?;
        check_text("responsible_phone", &self.responsible_phone, 40)?;
        check_text("emergency_plan", &self.emergency_plan, 200)?;
        if let (Some(a), Some(b)) = (self.last_review, self.next_review) {
            if b < a {
                return Err(ModelError::invalid("next_review", "is before last_review"));
            }
        }
        match &self.geometry {
            Geometry::Point(p) => geom::check_point(p),
            Geometry::Polygon(p) => geom::check_polygon(p),
            _ => Err(ModelError::Geometry(
                "a risk point is a Point or a Polygon".into(),
            )),
        }
    }
}
