//! Network traces on a utility network (issue 15): Walski's valve segments, the isolation
//! trace with the minimal set of valves to close, the pockets cut off from every source as
//! a side effect, and plain connectivity. No I/O: the store and the HTTP layer build a
//! [`Network`] and render the answers.
//!
//! The model is the one hydraulic tools use (WNTR's valve layer, Walski 1993): a **valve**
//! sits on a pipe at one of its end nodes, and closing it separates that pipe from that
//! node. A valve drawn in the middle of a pipe becomes a node that splits the pipe when the
//! topology is built. A **segment** is what remains connected when every valve that can be
//! closed is closed: the smallest part of the network that valves can cut off.
//!
//! Valve states, under a [`Scenario`] (the field's what-if):
//! - closed (normally closed, or closed in the scenario): a barrier, never listed to operate;
//! - broken or inaccessible: passed through, so a segment grows to the next valves;
//! - open and operable: a segment boundary, and listed to close when its far side still
//!   reaches a source.
//!
//! | module | owns |
//! |---|---|
//! | this one | the [`Network`] and its traces |
//! | [`topology`] | building a network from records: from attributes, from geometry by snapping, with a report of what was wrong |
//! | [`inp`] | reading EPANET `.inp` text, and the mapping of its links to pipes and valves |
//!
//! Losing a source is never an error: an isolation whose segment holds a source says so in
//! [`Isolation::source_inside`] and its pockets.

pub mod inp;
pub mod service;
pub mod topology;

pub use inp::{
    InpError, InpLink, InpLinkKind, InpModel, InpNetwork, InpNetworkError, InpNode, InpNodeKind,
    InpProblem, LayerValve, LinkStatus,
};
pub use topology::{
    from_attributes, from_geometry, AttributeReport, GeometryReport, GeometryTopology, LinePipe,
    NodeKind, NodeRecord, PipeRecord, PointNode, Snapping, Topology, TopologyError, ValveNode,
};

use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// A network element's id as stored (pipes, nodes and valves have their own id spaces).
pub type Id = i64;

/// What a node is, as far as a trace cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum NodeRole {
    /// A junction (or any node that neither feeds nor serves).
    Junction,
    /// A source: water plant, reservoir, tank; gas gate station or regulator; substation;
    /// heat plant.
    Source,
    /// A customer connection serving `customers` customers.
    Customer { customers: u32 },
}

/// A node of the network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub id: Id,
    pub role: NodeRole,
}

/// A pipe between two nodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pipe {
    pub id: Id,
    pub from: Id,
    pub to: Id,
}

/// A valve's normal position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    Open,
    /// Normally closed (a boundary between zones).
    Closed,
}

/// A valve on `pipe` at its end `node`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Valve {
    pub id: Id,
    pub pipe: Id,
    pub node: Id,
    pub position: Position,
    /// Whether it can be operated: not broken and accessible.
    pub operable: bool,
}

/// Why a network cannot be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TraceError {
    #[error("duplicate {what} id {id}")]
    Duplicate { what: &'static str, id: Id },
    #[error("pipe {pipe} refers to node {node}, which is not in the network")]
    UnknownNode { pipe: Id, node: Id },
    #[error("valve {valve} is on pipe {pipe}, which is not in the network")]
    UnknownPipe { valve: Id, pipe: Id },
    #[error("valve {valve} is at node {node}, which is not an end of pipe {pipe}")]
    NotAtPipeEnd { valve: Id, pipe: Id, node: Id },
    #[error("two valves ({first} and {second}) sit on pipe {pipe} at node {node}")]
    TwoValves {
        first: Id,
        second: Id,
        pipe: Id,
        node: Id,
    },
    #[error("no pipe {0} in the network")]
    NoPipe(Id),
    #[error("no valve {0} in the network")]
    NoValve(Id),
}

/// What the field says about valves, on top of their stored state.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    /// Valves found broken or inaccessible: passed through.
    pub broken: HashSet<Id>,
    /// Valves already closed: barriers, never listed to operate.
    pub closed: HashSet<Id>,
}

/// How a valve acts in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// Closed: always a barrier.
    Barrier,
    /// Open and operable: a segment boundary that may be closed.
    Operable,
    /// Broken or inaccessible while open: water passes.
    Pass,
}

/// A utility network with its valves, indexed for traces.
#[derive(Debug, Clone)]
pub struct Network {
    nodes: Vec<Node>,
    pipes: Vec<Pipe>,
    valves: Vec<Valve>,
    /// The two ends of each pipe, as node indices.
    ends: Vec<[usize; 2]>,
    /// The valve at each pipe end, if any, by valve index.
    valve_at: Vec<[Option<usize>; 2]>,
    node_ix: HashMap<Id, usize>,
    pipe_ix: HashMap<Id, usize>,
    valve_ix: HashMap<Id, usize>,
}

/// An element of the network graph: nodes first, then pipes.
type Element = usize;

impl Network {
    /// Builds the network, refusing dangling references, duplicate ids and valves that are
    /// not at an end of their pipe.
    pub fn new(nodes: Vec<Node>, pipes: Vec<Pipe>, valves: Vec<Valve>) -> Result<Self, TraceError> {
        let node_ix = index("node", nodes.iter().map(|n| n.id))?;
        let pipe_ix = index("pipe", pipes.iter().map(|p| p.id))?;
        let valve_ix = index("valve", valves.iter().map(|v| v.id))?;
        let ends = pipes
            .iter()
            .map(|p| {
                let at = |node: Id| {
                    node_ix
                        .get(&node)
                        .copied()
                        .ok_or(TraceError::UnknownNode { pipe: p.id, node })
                };
                Ok([at(p.from)?, at(p.to)?])
            })
            .collect::<Result<Vec<_>, TraceError>>()?;
        let mut valve_at: Vec<[Option<usize>; 2]> = vec![[None, None]; pipes.len()];
        for (vi, v) in valves.iter().enumerate() {
            let pi = *pipe_ix.get(&v.pipe).ok_or(TraceError::UnknownPipe {
                valve: v.id,
                pipe: v.pipe,
            })?;
            let node = node_ix.get(&v.node).copied();
            let side = match node {
                Some(n) if ends[pi][0] == n => 0,
                Some(n) if ends[pi][1] == n => 1,
                _ => {
                    return Err(TraceError::NotAtPipeEnd {
                        valve: v.id,
                        pipe: v.pipe,
                        node: v.node,
                    })
                }
            };
            if let Some(first) = valve_at[pi][side] {
                return Err(TraceError::TwoValves {
                    first: valves[first].id,
                    second: v.id,
                    pipe: v.pipe,
                    node: v.node,
                });
            }
            valve_at[pi][side] = Some(vi);
        }
        Ok(Network {
            nodes,
            pipes,
            valves,
            ends,
            valve_at,
            node_ix,
            pipe_ix,
            valve_ix,
        })
    }

    /// The nodes, as given.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The pipes, as given.
    pub fn pipes(&self) -> &[Pipe] {
        &self.pipes
    }

    /// The valves, as given.
    pub fn valves(&self) -> &[Valve] {
        &self.valves
    }

    fn act(&self, valve: usize, s: &Scenario) -> Act {
        let v = &self.valves[valve];
        if v.position == Position::Closed || s.closed.contains(&v.id) {
            Act::Barrier
        } else if !v.operable || s.broken.contains(&v.id) {
            Act::Pass
        } else {
            Act::Operable
        }
    }

    fn pipe_element(&self, pipe: usize) -> Element {
        self.nodes.len() + pipe
    }

    /// Union-find over the elements under a scenario, joining each pipe to its end nodes
    /// where `joins` says the valve there (if any) lets it, and leaving out the elements
    /// `skip` names.
    fn components_in(
        &self,
        s: &Scenario,
        joins: impl Fn(Option<Act>) -> bool,
        skip: impl Fn(Element) -> bool,
    ) -> Dsu {
        let mut dsu = Dsu::new(self.nodes.len() + self.pipes.len());
        for (pi, ends) in self.ends.iter().enumerate() {
            let pe = self.pipe_element(pi);
            if skip(pe) {
                continue;
            }
            for (side, &n) in ends.iter().enumerate() {
                if skip(n) {
                    continue;
                }
                let act = self.valve_at[pi][side].map(|v| self.act(v, s));
                if joins(act) {
                    dsu.union(pe, n);
                }
            }
        }
        dsu
    }

    /// Walski's valve segments under a scenario: every node and pipe numbered by its
    /// segment (0, 1, … in order of first appearance, nodes first).
    pub fn segments(&self, s: &Scenario) -> Segments {
        let mut dsu = self.components_in(s, |a| matches!(a, None | Some(Act::Pass)), |_| false);
        let mut number: HashMap<usize, usize> = HashMap::new();
        let mut of = |e: Element| {
            let root = dsu.find(e);
            let next = number.len();
            *number.entry(root).or_insert(next)
        };
        let nodes = (0..self.nodes.len()).map(&mut of).collect();
        let pipes = (0..self.pipes.len())
            .map(|p| of(self.nodes.len() + p))
            .collect();
        Segments { nodes, pipes }
    }

    /// The isolation trace of `pipes` (ids): their valve segments, the valves to close, the
    /// pockets cut off as a side effect, and the customers who lose supply.
    pub fn isolate(&self, pipes: &[Id], s: &Scenario) -> Result<Isolation, TraceError> {
        for v in s.broken.iter().chain(&s.closed) {
            if !self.valve_ix.contains_key(v) {
                return Err(TraceError::NoValve(*v));
            }
        }
        let starts = pipes
            .iter()
            .map(|id| self.pipe_ix.get(id).copied().ok_or(TraceError::NoPipe(*id)))
            .collect::<Result<Vec<_>, _>>()?;
        // The segment: every valve that can be closed, and every closed one, bounds it.
        let mut seg_dsu = self.components_in(s, |a| matches!(a, None | Some(Act::Pass)), |_| false);
        let roots: HashSet<usize> = starts
            .iter()
            .map(|&p| seg_dsu.find(self.pipe_element(p)))
            .collect();
        let total = self.nodes.len() + self.pipes.len();
        let in_seg: Vec<bool> = (0..total)
            .map(|e| roots.contains(&seg_dsu.find(e)))
            .collect();

        // The rest of the network as it stands without the segment: open valves conduct,
        // closed ones do not. A part of it without a source now, that had one before, is a
        // pocket cut off by the isolation.
        let conducts = |a: Option<Act>| !matches!(a, Some(Act::Barrier));
        let mut before = self.components_in(s, conducts, |_| false);
        let mut after = self.components_in(s, conducts, |e| in_seg[e]);
        let sourced = |dsu: &mut Dsu, skip: &dyn Fn(Element) -> bool| -> HashSet<usize> {
            (0..self.nodes.len())
                .filter(|&n| self.nodes[n].role == NodeRole::Source && !skip(n))
                .map(|n| dsu.find(n))
                .collect()
        };
        let fed_before = sourced(&mut before, &|_| false);
        let fed_after = sourced(&mut after, &|e| in_seg[e]);

        let mut valves_to_close = Vec::new();
        let mut boundary_valves = Vec::new();
        for (pi, ends) in self.ends.iter().enumerate() {
            let pe = self.pipe_element(pi);
            for (side, &n) in ends.iter().enumerate() {
                let Some(v) = self.valve_at[pi][side] else {
                    continue;
                };
                let act = self.act(v, s);
                if act == Act::Pass || in_seg[pe] == in_seg[n] {
                    continue;
                }
                let far = if in_seg[pe] { n } else { pe };
                let far_fed = fed_after.contains(&after.find(far));
                boundary_valves.push(BoundaryValve {
                    id: self.valves[v].id,
                    pipe: self.pipes[pi].id,
                    node: self.nodes[n].id,
                    closed: act == Act::Barrier,
                    far_side_fed: far_fed,
                });
                if act == Act::Operable && far_fed {
                    valves_to_close.push(self.valves[v].id);
                }
            }
        }
        valves_to_close.sort_unstable();
        boundary_valves.sort_by_key(|b| b.id);

        // Pockets: parts outside the segment that lose every source.
        let mut pockets: HashMap<usize, Part> = HashMap::new();
        for e in (0..total).filter(|&e| !in_seg[e]) {
            let was_fed = fed_before.contains(&before.find(e));
            let root = after.find(e);
            if was_fed && !fed_after.contains(&root) {
                self.add_to(pockets.entry(root).or_default(), e);
            }
        }
        let mut pockets: Vec<Part> = pockets.into_values().map(Part::sorted).collect();
        pockets.sort_by_key(|p| (p.pipes.first().copied(), p.nodes.first().copied()));

        let mut segment = Part::default();
        for e in (0..total).filter(|&e| in_seg[e]) {
            self.add_to(&mut segment, e);
        }
        let segment = segment.sorted();
        let source_inside = segment
            .nodes
            .iter()
            .any(|id| self.nodes[self.node_ix[id]].role == NodeRole::Source);
        let mut customers = Customers::default();
        for id in segment
            .nodes
            .iter()
            .chain(pockets.iter().flat_map(|p| &p.nodes))
        {
            if let NodeRole::Customer { customers: c } = self.nodes[self.node_ix[id]].role {
                customers.count += u64::from(c);
                customers.nodes.push(*id);
            }
        }
        customers.nodes.sort_unstable();
        Ok(Isolation {
            segment,
            valves_to_close,
            boundary_valves,
            pockets,
            source_inside,
            customers,
        })
    }

    /// Everything connected to pipe `pipe` as the network stands: open valves (broken or
    /// not) conduct, closed ones do not.
    pub fn connected(&self, pipe: Id, s: &Scenario) -> Result<Part, TraceError> {
        let p = *self.pipe_ix.get(&pipe).ok_or(TraceError::NoPipe(pipe))?;
        let mut dsu = self.components_in(s, |a| !matches!(a, Some(Act::Barrier)), |_| false);
        let root = dsu.find(self.pipe_element(p));
        let mut part = Part::default();
        for e in 0..self.nodes.len() + self.pipes.len() {
            if dsu.find(e) == root {
                self.add_to(&mut part, e);
            }
        }
        Ok(part.sorted())
    }

    /// Parts of the network with no source at all, as it stands (closed valves bound).
    pub fn islands_without_source(&self) -> Vec<Part> {
        let mut dsu = self.components_in(
            &Scenario::default(),
            |a| !matches!(a, Some(Act::Barrier)),
            |_| false,
        );
        let fed: HashSet<usize> = (0..self.nodes.len())
            .filter(|&n| self.nodes[n].role == NodeRole::Source)
            .map(|n| dsu.find(n))
            .collect();
        let mut parts: HashMap<usize, Part> = HashMap::new();
        for e in 0..self.nodes.len() + self.pipes.len() {
            let root = dsu.find(e);
            if !fed.contains(&root) {
                self.add_to(parts.entry(root).or_default(), e);
            }
        }
        let mut parts: Vec<Part> = parts.into_values().map(Part::sorted).collect();
        parts.sort_by_key(|p| (p.pipes.first().copied(), p.nodes.first().copied()));
        parts
    }

    fn add_to(&self, part: &mut Part, e: Element) {
        if e < self.nodes.len() {
            part.nodes.push(self.nodes[e].id);
        } else {
            part.pipes.push(self.pipes[e - self.nodes.len()].id);
        }
    }
}

fn index(
    what: &'static str,
    ids: impl Iterator<Item = Id>,
) -> Result<HashMap<Id, usize>, TraceError> {
    let mut ix = HashMap::new();
    for (i, id) in ids.enumerate() {
        if ix.insert(id, i).is_some() {
            return Err(TraceError::Duplicate { what, id });
        }
    }
    Ok(ix)
}

/// Each node's and each pipe's segment number, in the order the network holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segments {
    pub nodes: Vec<usize>,
    pub pipes: Vec<usize>,
}

/// A set of nodes and pipes, by id, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Part {
    pub nodes: Vec<Id>,
    pub pipes: Vec<Id>,
}

impl Part {
    fn sorted(mut self) -> Self {
        self.nodes.sort_unstable();
        self.pipes.sort_unstable();
        self
    }
}

/// A valve on the boundary of an isolated segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoundaryValve {
    pub id: Id,
    pub pipe: Id,
    pub node: Id,
    /// Already closed: bounds the segment, never listed to operate.
    pub closed: bool,
    /// Whether its far side still reaches a source once the segment is cut off; only
    /// those need closing.
    pub far_side_fed: bool,
}

/// Customers who lose supply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Customers {
    /// The sum of the customer connections' counts.
    pub count: u64,
    /// The customer connection nodes.
    pub nodes: Vec<Id>,
}

/// The answer of an isolation trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Isolation {
    /// What closing the valves cuts off (Walski's valve segment of the pipes).
    pub segment: Part,
    /// The minimal set: boundary valves that are open, operable, and whose far side still
    /// reaches a source.
    pub valves_to_close: Vec<Id>,
    /// Every valve on the segment's boundary.
    pub boundary_valves: Vec<BoundaryValve>,
    /// Parts outside the segment that lose every source as a side effect.
    pub pockets: Vec<Part>,
    /// A source lies inside the segment: isolating it takes that source out of service.
    pub source_inside: bool,
    /// Customers in the segment and the pockets.
    pub customers: Customers,
}

/// Disjoint sets with path halving and union by size.
struct Dsu {
    parent: Vec<usize>,
    size: Vec<u32>,
}

impl Dsu {
    fn new(n: usize) -> Self {
        Dsu {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

#[cfg(test)]
mod tests;
