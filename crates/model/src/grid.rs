//! Grid-governance cells: district → street → community → grid → micro-grid.

use super::{check_id, check_required_text, geom, ModelError};
use geo::MultiPolygon;
use serde::{Deserialize, Serialize};

string_enum! {
    /// Levels of the governance hierarchy, from largest to smallest.
    pub enum GridLevel {
        District = "district",
        Street = "street",
        Community = "community",
        Grid = "grid",
        MicroGrid = "micro_grid",
    }
}

impl GridLevel {
    /// The level a cell of this level's parent must have, `None` for districts.
    pub fn parent_level(self) -> Option<GridLevel> {
        match self {
            GridLevel::District => None,
            GridLevel::Street => Some(GridLevel::District),
            GridLevel::Community => Some(GridLevel::Street),
            GridLevel::Grid => Some(GridLevel::Community),
            GridLevel::MicroGrid => Some(GridLevel::Grid),
        }
    }
}

/// One governance cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridCell {
    #[serde(default)]
    pub id: i64,
    pub level: GridLevel,
    /// The enclosing cell; required for every level below district.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<i64>,
    pub name: String,
    /// Statistical code (districts and streets: national codes; below: derived).
    pub code: String,
    #[serde(with = "geom::multipolygon")]
    pub geometry: MultiPolygon<f64>,
}

impl GridCell {
    /// Checks the hierarchy rule, texts and the polygon.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_id("id", self.id, true)?;
        match (self.level, self.parent_id) {
            (GridLevel::District, Some(_)) => {
                return Err(ModelError::invalid("parent_id", "a district has no parent"))
            }
            (l, None) if l != GridLevel::District => {
                return Err(ModelError::invalid(
                    "parent_id",
                    format!("a {l} cell needs a parent"),
                ))
            }
            (_, Some(p)) => check_id("parent_id", p, false)?,
            _ => {}
        }
        check_required_text("name", &self.name, 200)?;
        check_required_text("code", &self.code, 40)?;
        geom::check_multipolygon(&self.geometry)
    }
}
