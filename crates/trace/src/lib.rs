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
//! | [`flow`] | the flow direction from the sources, and the upstream and downstream traces |
//! | [`topology`] | building a network from records: from attributes, from geometry by snapping, with a report of what was wrong |
//! | [`inp`] | reading EPANET `.inp` text, and the mapping of its links to pipes and valves |
//!
//! Losing a source is never an error: an isolation whose segment holds a source says so in
//! [`Isolation::source_inside`] and its pockets.

pub mod check;
mod edit;
pub mod flow;
pub mod inp;
mod segments;
pub mod service;
pub mod topology;

pub use flow::{Directed, Direction, Flow};
pub use inp::{
    InpError, InpLink, InpLinkKind, InpModel, InpNetwork, InpNetworkError, InpNode, InpNodeKind,
    InpProblem, LayerValve, LinkStatus, Units,
};
pub use segments::SegmentInfo;
pub use topology::{
    from_attributes, from_geometry, AttributeReport, GeometryReport, GeometryTopology, LinePipe,
    LiveTopology, NodeKind, NodeRecord, PipeRecord, PointNode, Snapping, Topology, TopologyError,
    ValveNode,
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
    #[error("no node {0} in the network")]
    NoNode(Id),
    #[error("node {node} cannot be removed: {pipes} pipe(s) still end at it")]
    NodeInUse { node: Id, pipes: usize },
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
pub(crate) enum Act {
    /// Closed: always a barrier.
    Barrier,
    /// Open and operable: a segment boundary that may be closed.
    Operable,
    /// Broken or inaccessible while open: water passes.
    Pass,
}

impl Valve {
    /// How the valve acts as it stands (no what-if).
    pub(crate) fn act(&self) -> Act {
        match (self.position, self.operable) {
            (Position::Closed, _) => Act::Barrier,
            (Position::Open, false) => Act::Pass,
            (Position::Open, true) => Act::Operable,
        }
    }
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
    /// The pipe ends at each node, as (pipe index, side): isolation walks the graph from
    /// the pipes instead of building components of the whole network. A list per node
    /// (not one flat array) so that an edit changes only the nodes it touches.
    adj: Vec<Vec<(usize, usize)>>,
    node_ix: HashMap<Id, usize>,
    pipe_ix: HashMap<Id, usize>,
    valve_ix: HashMap<Id, usize>,
    /// The valve segments of the network as it stands (no what-if), when precomputed
    /// ([`Network::precompute_segments`]); kept up to date by edits.
    table: Option<segments::SegmentTable>,
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
        let mut adj: Vec<Vec<(usize, usize)>> = vec![Vec::new(); nodes.len()];
        for (pi, pipe_ends) in ends.iter().enumerate() {
            for (side, &n) in pipe_ends.iter().enumerate() {
                adj[n].push((pi, side));
            }
        }
        Ok(Network {
            nodes,
            pipes,
            valves,
            ends,
            valve_at,
            adj,
            node_ix,
            pipe_ix,
            valve_ix,
            table: None,
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

    /// Whether a valve of this id is in the network (a lookup, not a pass over the valves).
    pub fn has_valve(&self, id: Id) -> bool {
        self.valve_ix.contains_key(&id)
    }

    /// Each valve's act under a scenario, by valve index. The scenario's sets are looked up
    /// by their own ids, not once per valve: hashing every valve's id on every trace showed
    /// in the profile of the 15,000-pipe bench.
    fn acts(&self, s: &Scenario) -> Vec<Act> {
        let mut acts: Vec<Act> = self.valves.iter().map(Valve::act).collect();
        // Unknown ids are refused by `isolate`; elsewhere they change nothing.
        for v in s.broken.iter().filter_map(|id| self.valve_ix.get(id)) {
            if acts[*v] == Act::Operable {
                acts[*v] = Act::Pass;
            }
        }
        // Closed wins over broken: a closed valve bounds, whatever its state.
        for v in s.closed.iter().filter_map(|id| self.valve_ix.get(id)) {
            acts[*v] = Act::Barrier;
        }
        acts
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
        let acts = self.acts(s);
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
                if joins(self.valve_at[pi][side].map(|v| acts[v])) {
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
    ///
    /// With precomputed segments ([`Network::precompute_segments`]) it walks segments
    /// instead of pipes and nodes, and costs what it touches; the answer is the same. The
    /// one what-if the table cannot answer, closing a valve that is open but inoperable
    /// (which splits a precomputed segment), is walked pipe by pipe.
    pub fn isolate(&self, pipes: &[Id], s: &Scenario) -> Result<Isolation, TraceError> {
        let starts = self.starts(pipes, s)?;
        if let Some(table) = &self.table {
            if let Some(iso) = self.isolate_on_segments(table, &starts, s) {
                return Ok(iso);
            }
        }
        Ok(self.isolate_walking(&starts, s))
    }

    /// The start pipes' indices, once every pipe and every valve of the scenario is known
    /// to be in the network.
    fn starts(&self, pipes: &[Id], s: &Scenario) -> Result<Vec<usize>, TraceError> {
        for v in s.broken.iter().chain(&s.closed) {
            if !self.valve_ix.contains_key(v) {
                return Err(TraceError::NoValve(*v));
            }
        }
        pipes
            .iter()
            .map(|id| self.pipe_ix.get(id).copied().ok_or(TraceError::NoPipe(*id)))
            .collect()
    }

    /// [`Network::isolate`] walking pipes and nodes, without the precomputed segments
    /// (the reference the segment walk is tested against).
    #[doc(hidden)]
    pub fn isolate_without_table(
        &self,
        pipes: &[Id],
        s: &Scenario,
    ) -> Result<Isolation, TraceError> {
        let starts = self.starts(pipes, s)?;
        Ok(self.isolate_walking(&starts, s))
    }

    fn isolate_walking(&self, starts: &[usize], s: &Scenario) -> Isolation {
        // Each valve's act under the scenario, once: the walks below ask per pipe end.
        let acts = self.acts(s);
        let total = self.nodes.len() + self.pipes.len();

        // The segment: every valve that can be closed, and every closed one, bounds it. A
        // walk from each pipe touches only its segment and the boundary, not the network.
        // Each pipe's segment is numbered (a piece): pieces may lie in different parts of
        // the network, which matters for what was fed before.
        const NONE: usize = usize::MAX;
        let mut piece = vec![NONE; total];
        let mut stack = Vec::new();
        let mut pieces = 0;
        for &p in starts {
            let pe = self.pipe_element(p);
            if piece[pe] != NONE {
                continue;
            }
            let id = pieces;
            pieces += 1;
            piece[pe] = id;
            stack.push(pe);
            self.walk(
                &mut stack,
                &acts,
                |a| matches!(a, None | Some(Act::Pass)),
                |e| {
                    piece[e] == NONE && {
                        piece[e] = id;
                        true
                    }
                },
            );
        }
        let in_seg: Vec<bool> = piece.iter().map(|&k| k != NONE).collect();

        // The rest of the network without the segment, as it stands: open valves conduct,
        // closed ones do not. Only the parts that touch the segment's boundary can change
        // when it is cut off, so only they are walked, each labelled with whether it holds a
        // source. Every other part keeps its supply, or its lack of it.
        let conducts = |a: Option<Act>| !matches!(a, Some(Act::Barrier));
        let mut label = vec![NONE; total];
        let mut parts: Vec<(usize, usize)> = Vec::new(); // ranges into `walked`
        let mut part_fed: Vec<bool> = Vec::new();
        let mut walked: Vec<Element> = Vec::new();
        let mut boundary = Vec::new(); // (pipe index, side, valve, near element, far element)
        let mut piece_links = Vec::new();
        for (pi, ends) in self.ends.iter().enumerate() {
            let pe = self.pipe_element(pi);
            for (side, &n) in ends.iter().enumerate() {
                let Some(v) = self.valve_at[pi][side] else {
                    continue;
                };
                if in_seg[pe] && in_seg[n] && acts[v] == Act::Operable && piece[pe] != piece[n] {
                    // Two pieces joined by an open valve were one part before the
                    // isolation, though the valve is not on the boundary.
                    piece_links.push((piece[pe], piece[n]));
                }
                if acts[v] == Act::Pass || in_seg[pe] == in_seg[n] {
                    continue;
                }
                let (near, far) = if in_seg[pe] { (pe, n) } else { (n, pe) };
                boundary.push((pi, side, v, near, far));
                if label[far] != NONE {
                    continue;
                }
                let id = parts.len();
                let first = walked.len();
                label[far] = id;
                walked.push(far);
                stack.push(far);
                self.walk(&mut stack, &acts, conducts, |e| {
                    if in_seg[e] || label[e] != NONE {
                        return false;
                    }
                    label[e] = id;
                    walked.push(e);
                    true
                });
                parts.push((first, walked.len()));
                part_fed.push(
                    walked[first..]
                        .iter()
                        .any(|&e| e < self.nodes.len() && self.nodes[e].role == NodeRole::Source),
                );
            }
        }

        let mut valves_to_close = Vec::new();
        let mut boundary_valves = Vec::new();
        // What was one part before the isolation: the pieces and the parts joined to them
        // through open valves (a small union-find: pieces first, then parts). It had a
        // source if any of its members did.
        let mut before = Dsu::new(pieces + parts.len());
        for &(a, b) in &piece_links {
            before.union(a, b);
        }
        let mut joined = vec![false; parts.len()];
        for &(pi, side, v, near, far) in &boundary {
            let far_fed = part_fed[label[far]];
            boundary_valves.push(BoundaryValve {
                id: self.valves[v].id,
                pipe: self.pipes[pi].id,
                node: self.nodes[self.ends[pi][side]].id,
                closed: acts[v] == Act::Barrier,
                far_side_fed: far_fed,
            });
            if acts[v] == Act::Operable {
                joined[label[far]] = true;
                before.union(piece[near], pieces + label[far]);
                if far_fed {
                    valves_to_close.push(self.valves[v].id);
                }
            }
        }
        valves_to_close.sort_unstable();
        boundary_valves.sort_by_key(|b| b.id);
        let mut fed_before = vec![false; pieces + parts.len()];
        for n in (0..self.nodes.len()).filter(|&n| self.nodes[n].role == NodeRole::Source) {
            if piece[n] != NONE {
                fed_before[before.find(piece[n])] = true;
            }
        }
        for (i, _) in part_fed.iter().enumerate().filter(|(_, &fed)| fed) {
            fed_before[before.find(pieces + i)] = true;
        }

        // Pockets: parts joined to the segment that lose every source, when what they
        // formed with it had one. A part without a source before the isolation is not
        // blamed on it; a part not joined to the segment keeps what it had.
        let mut customers = Customers::default();
        let mut serves = |e: Element| {
            if let Some(Node {
                id,
                role: NodeRole::Customer { customers: c },
            }) = self.nodes.get(e)
            {
                customers.count += u64::from(*c);
                customers.nodes.push(*id);
            }
        };
        let mut pockets: Vec<Part> = Vec::new();
        for (i, &(first, last)) in parts.iter().enumerate() {
            if joined[i] && !part_fed[i] && fed_before[before.find(pieces + i)] {
                let mut pocket = Part::default();
                for &e in &walked[first..last] {
                    self.add_to(&mut pocket, e);
                    serves(e);
                }
                pockets.push(pocket.sorted());
            }
        }
        pockets.sort_by_key(|p| (p.pipes.first().copied(), p.nodes.first().copied()));
        let seg_source =
            (0..self.nodes.len()).any(|n| in_seg[n] && self.nodes[n].role == NodeRole::Source);

        let mut segment = Part::default();
        for e in (0..total).filter(|&e| in_seg[e]) {
            self.add_to(&mut segment, e);
            serves(e);
        }
        let segment = segment.sorted();
        customers.nodes.sort_unstable();
        Isolation {
            segment,
            valves_to_close,
            boundary_valves,
            pockets,
            source_inside: seg_source,
            customers,
        }
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

    /// Walks from the elements on `stack` to their neighbours through the pipe ends where
    /// `joins` says the valve there (if any) lets it, entering each neighbour `enter`
    /// accepts (it marks what it accepts, so nothing is entered twice).
    fn walk(
        &self,
        stack: &mut Vec<Element>,
        acts: &[Act],
        joins: impl Fn(Option<Act>) -> bool,
        mut enter: impl FnMut(Element) -> bool,
    ) {
        let nodes = self.nodes.len();
        let lets = |pi: usize, side: usize| joins(self.valve_at[pi][side].map(|v| acts[v]));
        while let Some(e) = stack.pop() {
            if e < nodes {
                for &(pi, side) in &self.adj[e] {
                    if lets(pi, side) && enter(nodes + pi) {
                        stack.push(nodes + pi);
                    }
                }
            } else {
                let pi = e - nodes;
                for (side, &n) in self.ends[pi].iter().enumerate() {
                    if lets(pi, side) && enter(n) {
                        stack.push(n);
                    }
                }
            }
        }
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
