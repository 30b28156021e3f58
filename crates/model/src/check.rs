//! `lifeline check`: validates a whole store — invalid records and geometries, dangling
//! references, grid cells whose parent has the wrong level, pipes joined to a node of
//! another network, valves that name a pipe not ending at them, and risk points that no
//! sensor watches (the city's target is 100 % linked). The network's own shape (islands
//! without a source, duplicate nodes) is judged by the trace crate on top of this. One implementation over [`Dataset`], so
//! both stores are checked by the same rules.

use super::{Catalog, Dataset, Layer};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// One problem found by the check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub layer: Layer,
    pub id: i64,
    /// `invalid`, `dangling_reference`, `hierarchy`, `topology` (a pipe joined to a node of
    /// another network, a valve not on its pipe), or `unmonitored` (a warning); the trace
    /// crate's network check adds `island` (no source) and `duplicate` (nodes at one place).
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
    let nodes: HashMap<i64, _> = data.nodes.iter().map(|n| (n.id, n.kind)).collect();
    let ends: HashMap<i64, [Option<i64>; 2]> = data
        .pipelines
        .iter()
        .map(|p| (p.id, [p.from_node, p.to_node]))
        .collect();

    for n in &data.nodes {
        if let Err(e) = n.validate() {
            push(Layer::Nodes, n.id, "invalid", e.to_string());
        }
        if let Some(p) = n.on_pipe_id {
            match ends.get(&p) {
                None => push(
                    Layer::Nodes,
                    n.id,
                    "dangling_reference",
                    format!("valve on pipeline {p}, which does not exist"),
                ),
                Some(e) if !e.contains(&Some(n.id)) => push(
                    Layer::Nodes,
                    n.id,
                    "topology",
                    format!("valve on pipeline {p}, which neither starts nor ends at it"),
                ),
                _ => {}
            }
        }
    }

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
        for (end, node) in [("from_node", p.from_node), ("to_node", p.to_node)] {
            let Some(n) = node else { continue };
            match nodes.get(&n) {
                None => push(
                    Layer::Pipelines,
                    p.id,
                    "dangling_reference",
                    format!("{end} {n} does not exist"),
                ),
                Some(kind) if *kind != p.kind => push(
                    Layer::Pipelines,
                    p.id,
                    "topology",
                    format!(
                        "a {} pipe's {end} {n} is a node of the {kind} network",
                        p.kind
                    ),
                ),
                _ => {}
            }
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

    #[test]
    fn pipes_and_valves_out_of_their_network() {
        let catalog = Catalog::builtin();
        let line = line_string![(x: 106.5, y: 29.5), (x: 106.501, y: 29.5)];
        let at = |x| geo::point!(x: x, y: 29.5);
        let mut valve = NetworkNode::new(11, PipeKind::Gas, NodeType::Valve, at(106.5));
        valve.on_pipe_id = Some(1);
        let data = Dataset {
            owners: vec![Owner {
                id: 9,
                name: "Water Co".into(),
                emergency_contact: "desk".into(),
                emergency_phone: "023-1".into(),
                email: None,
            }],
            nodes: vec![
                valve,
                NetworkNode::new(12, PipeKind::WaterSupply, NodeType::Junction, at(106.501)),
            ],
            pipelines: vec![Pipeline {
                from_node: Some(11),
                to_node: Some(13),
                ..Pipeline::new(1, PipeKind::WaterSupply, 9, line)
            }],
            ..Default::default()
        };
        let report = run(&data, catalog);
        let found: Vec<(Layer, i64, &str)> = report
            .problems
            .iter()
            .map(|p| (p.layer, p.id, p.kind))
            .collect();
        assert_eq!(
            found,
            [
                (Layer::Pipelines, 1, "topology"),
                (Layer::Pipelines, 1, "dangling_reference")
            ]
        );
        assert!(report.problems[0].message.contains("gas network"));
        assert!(report.problems[1].message.contains("to_node 13"));
    }
}
