//! Topology from data as it arrives (issue 15): the stage between raw records and a
//! [`Network`]. It owns turning records into nodes, pipes and valves, and the report of what
//! was wrong with them. Bad records are reported and left out where the rest still makes
//! sense, so one typo does not stop an import of 100,000 pipes.
//!
//! - [`from_attributes`]: pipes that name their end nodes (`from_node`/`to_node`, as
//!   Schutterwald's `from_junction`/`to_junction`).
//! - [`from_geometry`] (in `geometry`): pipes as polylines and nodes as points, joined by
//!   snapping within a tolerance in metres.
//!
//! Valves stored as **nodes** become the engine's [`Valve`] (on a pipe at one of its ends):
//! - degree 1 (a valve capping a pipe end) or 2 (a valve in-line between two pipes): the
//!   valve acts on the incident pipe with the lowest id, at the valve node. This is
//!   equivalent to a valve in the line: closing it separates that pipe from the valve node,
//!   so the two sides of the valve fall apart. The valve node itself is a point with no
//!   demand and no source, so which side it lands on changes no pipe's segment, no other
//!   node's segment, no customer and no source; the lowest id only makes the choice
//!   deterministic.
//! - degree 0 or 3 and more: the valve cannot tell which pipe it closes, so it is reported
//!   as misplaced and the node stays a plain junction (it conducts), unless the record names
//!   the pipe it acts on (`on_pipe`), and that pipe ends at the valve node.

mod geometry;
mod live;

pub use live::LiveTopology;

pub use geometry::{
    from_geometry, Crossing, Dangle, DuplicateNode, GeometryReport, GeometryTopology, LinePipe,
    NearMiss, NearTo, PlacedNode, PlacedPipe, PointNode, Snapping, Split,
};

use crate::{Id, Network, Node, NodeRole, Pipe, Position, TraceError, Valve};
use serde::Serialize;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

/// What a node record is. Unlike [`NodeRole`], a valve is a kind of node here: that is how
/// GIS data stores valves.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum NodeKind {
    /// A junction (or any node that neither feeds nor serves).
    Junction,
    /// A source (plant, reservoir, tank, gate station, regulator, substation, heat plant).
    Source,
    /// A customer connection serving `customers` customers.
    Customer { customers: u32 },
    /// A valve stored as a node.
    Valve(ValveNode),
}

/// A valve stored as a node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValveNode {
    pub position: Position,
    /// Whether it can be operated: not broken and accessible.
    pub operable: bool,
    /// The pipe it acts on, when the record says so. Needed for a valve at a node of degree
    /// 3 or more (a valve drawn on a tee).
    pub on_pipe: Option<Id>,
}

/// A node record: an id and what it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRecord {
    pub id: Id,
    pub kind: NodeKind,
}

/// A pipe record that names its end nodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipeRecord {
    pub id: Id,
    pub from: Id,
    pub to: Id,
}

/// A pipe that refers to a node that is not in the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownNode {
    pub pipe: Id,
    pub node: Id,
}

/// A valve node that cannot be put on a pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MisplacedValve {
    /// The valve node (and valve) id.
    pub node: Id,
    /// How many pipes end at it.
    pub degree: usize,
    /// The pipe the record named, which does not end at the valve node.
    pub on_pipe: Option<Id>,
}

/// What was wrong with the records of [`from_attributes`]. Every list is in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AttributeReport {
    /// Node ids seen more than once; the first record is kept.
    pub duplicate_nodes: Vec<Id>,
    /// Pipe ids seen more than once; the first record is kept.
    pub duplicate_pipes: Vec<Id>,
    /// Pipes to a node that is not in the data; such a pipe is left out.
    pub unknown_nodes: Vec<UnknownNode>,
    /// Pipes that start and end at the same node. They are kept: they join nothing, but can
    /// still be isolated.
    pub self_loops: Vec<Id>,
    /// Valve nodes of degree 0 or 3+ without a usable `on_pipe`; they stay junctions.
    pub misplaced_valves: Vec<MisplacedValve>,
}

impl AttributeReport {
    /// Nothing to report.
    pub fn is_empty(&self) -> bool {
        self == &AttributeReport::default()
    }
}

/// A network built from records, with the report of what was left out or doubtful.
#[derive(Debug, Clone)]
pub struct Topology {
    pub network: Network,
    pub report: AttributeReport,
}

/// Why no network can be built at all (everything else goes into a report).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TopologyError {
    #[error("the snapping tolerance must be a finite number of metres above 0, got {0}")]
    Tolerance(f64),
    #[error("the near-miss factor must be a finite number of at least 1, got {0}")]
    NearMissFactor(f64),
    #[error("no {0} ids are left above the largest one given, to number new {0}s")]
    IdSpace(&'static str),
    #[error(transparent)]
    Network(#[from] TraceError),
}

/// What a node record is in a trace: a valve node is a junction (its valve acts on a pipe).
pub(crate) fn role_of(kind: &NodeKind) -> NodeRole {
    match kind {
        NodeKind::Junction | NodeKind::Valve(_) => NodeRole::Junction,
        NodeKind::Source => NodeRole::Source,
        NodeKind::Customer { customers } => NodeRole::Customer {
            customers: *customers,
        },
    }
}

/// The pipe a valve node acts on, given the pipes ending at it (each once), as the module
/// documentation says; `None`: misplaced.
pub(crate) fn place_valve(v: &ValveNode, at: &[Id]) -> Option<Id> {
    match v.on_pipe {
        Some(named) if at.contains(&named) => Some(named),
        Some(_) => None,
        None if matches!(at.len(), 1 | 2) => at.iter().min().copied(),
        None => None,
    }
}

/// Builds a network from pipes that name their end nodes, and nodes with their kinds.
/// Valve nodes become valves as the module documentation says; problems go into the report.
pub fn from_attributes(
    nodes: &[NodeRecord],
    pipes: &[PipeRecord],
) -> Result<Topology, TopologyError> {
    let mut report = AttributeReport::default();
    let mut kinds: HashMap<Id, &NodeKind> = HashMap::with_capacity(nodes.len());
    let mut kept_nodes = Vec::with_capacity(nodes.len());
    for n in nodes {
        match kinds.entry(n.id) {
            Entry::Occupied(_) => report.duplicate_nodes.push(n.id),
            Entry::Vacant(slot) => {
                slot.insert(&n.kind);
                kept_nodes.push(n);
            }
        }
    }
    let mut seen = HashSet::with_capacity(pipes.len());
    let mut kept_pipes = Vec::with_capacity(pipes.len());
    // The pipes ending at each node: a valve node's degree and its choice of pipe.
    let mut incident: HashMap<Id, Vec<Id>> = HashMap::new();
    for p in pipes {
        if !seen.insert(p.id) {
            report.duplicate_pipes.push(p.id);
            continue;
        }
        let ends: &[Id] = if p.from == p.to {
            &[p.from]
        } else {
            &[p.from, p.to]
        };
        let unknown: Vec<Id> = ends
            .iter()
            .copied()
            .filter(|n| !kinds.contains_key(n))
            .collect();
        if !unknown.is_empty() {
            report.unknown_nodes.extend(
                unknown
                    .into_iter()
                    .map(|node| UnknownNode { pipe: p.id, node }),
            );
            continue;
        }
        if p.from == p.to {
            report.self_loops.push(p.id);
        }
        for &n in ends {
            incident.entry(n).or_default().push(p.id);
        }
        kept_pipes.push(Pipe {
            id: p.id,
            from: p.from,
            to: p.to,
        });
    }

    let mut valves = Vec::new();
    let mut net_nodes = Vec::with_capacity(kept_nodes.len());
    for n in kept_nodes {
        net_nodes.push(Node {
            id: n.id,
            role: role_of(&n.kind),
        });
        let NodeKind::Valve(v) = &n.kind else {
            continue;
        };
        let at: &[Id] = incident.get(&n.id).map_or(&[], Vec::as_slice);
        match place_valve(v, at) {
            Some(pipe) => valves.push(Valve {
                id: n.id,
                pipe,
                node: n.id,
                position: v.position,
                operable: v.operable,
            }),
            None => report.misplaced_valves.push(MisplacedValve {
                node: n.id,
                degree: at.len(),
                on_pipe: v.on_pipe,
            }),
        }
    }
    let network = Network::new(net_nodes, kept_pipes, valves)?;
    Ok(Topology { network, report })
}

#[cfg(test)]
mod tests;
