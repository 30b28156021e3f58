//! `lifeline check`: validates a whole store — invalid records and geometries, dangling
//! references, grid cells whose parent has the wrong level, and risk points that no sensor
//! watches (the city's target is 100 % linked). One implementation over [`Dataset`], so
//! both stores are checked by the same rules.

use super::{Catalog, Dataset, Layer};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// One problem found by the check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub layer: Layer,
    pub id: i64,
    /// `invalid`, `dangling_reference`, `hierarchy`, or `unmonitored` (a warning).
    pub kind: &'static str,
    pub message: String,
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckReport {
    pub records: usize,
    pub problems: Vec<Problem>,
    /// What is not wrong in the data but needs an operator soon, such as a working-day
    /// calendar that runs out (added by the caller, which knows the settings and the time).
    pub warnings: Vec<String>,
}

impl CheckReport {
    /// Problems that make the data wrong (not counting unmonitored risk points, which are
    /// a coverage gap rather than an error).
    pub fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.kind != "unmonitored")
            .count()
    }

    /// Risk points no sensor is linked to.
    pub fn unmonitored(&self) -> usize {
        self.problems.len() - self.errors()
    }
}

/// Runs every check over a data set.
pub fn run(data: &Dataset, catalog: &Catalog) -> CheckReport {
    let mut problems = Vec::new();
    let mut push = |layer, id, kind, message: String| {
        problems.push(Problem {
            layer,
            id,
            kind,
            message,
        })
    };
    let owners: HashSet<i64> = data.owners.iter().map(|o| o.id).collect();
    let cells: HashMap<i64, _> = data.grid_cells.iter().map(|c| (c.id, c.level)).collect();
    let pipes: HashSet<i64> = data.pipelines.iter().map(|p| p.id).collect();
    let risks: HashSet<i64> = data.risk_points.iter().map(|r| r.id).collect();

    for o in &data.owners {
        if let Err(e) = o.validate() {
            push(Layer::Owners, o.id, "invalid", e.to_string());
        }
    }
    for c in &data.grid_cells {
        if let Err(e) = c.validate() {
            push(Layer::GridCells, c.id, "invalid", e.to_string());
        }
        if let Some(p) = c.parent_id {
            match cells.get(&p) {
                None => push(
                    Layer::GridCells,
                    c.id,
                    "dangling_reference",
                    format!("parent {p} does not exist"),
                ),
                Some(level) if Some(*level) != c.level.parent_level() => push(
                    Layer::GridCells,
                    c.id,
                    "hierarchy",
                    format!("a {} cell's parent {p} is a {level}", c.level),
                ),
                _ => {}
            }
        }
    }
    for p in &data.pipelines {
        if let Err(e) = p.validate() {
            push(Layer::Pipelines, p.id, "invalid", e.to_string());
        }
        if !owners.contains(&p.owner_id) {
            push(
                Layer::Pipelines,
                p.id,
                "dangling_reference",
                format!("owner {} does not exist", p.owner_id),
            );
        }
    }
    let mut watched: HashSet<i64> = HashSet::new();
    for s in &data.sensors {
        if let Err(e) = s.validate() {
            push(Layer::Sensors, s.id, "invalid", e.to_string());
        }
        if let Some(p) = s.pipeline_id {
            if !pipes.contains(&p) {
                push(
                    Layer::Sensors,
                    s.id,
                    "dangling_reference",
                    format!("pipeline {p} does not exist"),
                );
            }
        }
        if let Some(r) = s.risk_point_id {
            if risks.contains(&r) {
                watched.insert(r);
            } else {
                push(
                    Layer::Sensors,
                    s.id,
                    "dangling_reference",
                    format!("risk point {r} does not exist"),
                );
            }
        }
    }
    for r in &data.risk_points {
        if let Err(e) = r.validate(catalog) {
            push(Layer::RiskPoints, r.id, "invalid", e.to_string());
        }
        if let Some(g) = r.grid_cell_id {
            if !cells.contains_key(&g) {
                push(
                    Layer::RiskPoints,
                    r.id,
                    "dangling_reference",
                    format!("grid cell {g} does not exist"),
                );
            }
        }
        if !watched.contains(&r.id) {
            push(
                Layer::RiskPoints,
                r.id,
                "unmonitored",
                "no sensor is linked to this risk point".into(),
            );
        }
    }
    CheckReport {
        records: data.len(),
        problems,
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;
    use geo::line_string;

    #[test]
    fn finds_dangling_and_unmonitored() {
        let catalog = Catalog::builtin();
        let line = line_string![(x: 106.5, y: 29.5), (x: 106.501, y: 29.5)];
        let data = Dataset {
            pipelines: vec![Pipeline {
                diameter_mm: Some(300.0),
                ..Pipeline::new(1, PipeKind::WaterSupply, 9, line)
            }],
            risk_points: vec![RiskPoint {
                id: 2,
                category: "landslide".into(),
                level: RiskLevel::Major,
                name: "slope".into(),
                grid_cell_id: None,
                responsible_unit: "u".into(),
                responsible_person: "p".into(),
                responsible_phone: None,
                emergency_plan: None,
                last_review: None,
                next_review: None,
                status: RiskStatus::Active,
                geometry: geo::Geometry::Point(geo::point!(x: 106.5, y: 29.5)),
            }],
            ..Default::default()
        };
        let report = run(&data, catalog);
        assert_eq!(report.errors(), 1);
        assert_eq!(report.unmonitored(), 1);
        assert!(report.problems[0].message.contains("owner 9"));
    }
}
