//! Precomputed valve segments (issue 15): every segment of the network as it stands (no
//! what-if), with its members, its boundary valves, its sources and its customers, kept
//! up to date by edits ([`crate::edit`]) and used by [`Network::isolate`].
//!
//! **Why a table.** An isolation needs the start pipe's segment, and then whether each part
//! beyond the segment's boundary still reaches a source. Walking pipes and nodes for that
//! costs the whole connected part of the network, and at city scale a pass over the
//! network's arrays. With the segments known, the same walk goes from segment to segment
//! over their boundary valves: a segment of a dozen pipes and nodes is one step. A what-if
//! (broken or closed valves in the [`Scenario`]) is answered from the same table: a broken
//! valve joins the two segments on its sides, a closed one only stops conduction. The one
//! exception is closing a valve that is open but inoperable, since the table's segments
//! run through it; that case is walked pipe by pipe.
//!
//! **Why it stays exact under edits.** An edit dissolves the segments of every element it
//! touches (a pipe added or removed and its end nodes, a valve added or removed and both
//! its sides, a node added, removed or changed), and [`Network::settle_segments`] labels
//! the dissolved elements again by walking from them, dissolving any untouched segment the
//! walk runs into (an edit can join segments). A segment nothing touched, and that no walk
//! reached, kept every pipe end inside it and on its boundary: any pipe end that changed
//! has a touched element on it. So it is still a segment, with the same boundary valves.
//! The tests check the table against a fresh computation after every random edit.

use crate::{
    Act, BoundaryValve, Customers, Dsu, Element, Id, Isolation, Network, NodeRole, Part, Scenario,
    Segments,
};
use std::collections::HashMap;

/// No segment (an element whose segment was dissolved and is not labelled yet).
pub(crate) const NO_SEG: u32 = u32::MAX;

/// One valve segment.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Seg {
    /// Member node ids, sorted.
    pub nodes: Vec<Id>,
    /// Member pipe ids, sorted.
    pub pipes: Vec<Id>,
    /// The valves with one side in the segment, as valve indices (edits that move a valve
    /// in the network's arrays fix them up).
    pub boundary: Vec<usize>,
    /// How many sources it holds.
    pub sources: u32,
    /// The customers it serves, and their connection nodes (sorted).
    pub customers: u64,
    pub customer_nodes: Vec<Id>,
    /// False once dissolved (its slot is free).
    pub live: bool,
}

/// Every segment of a network, with each node's and pipe's segment.
#[derive(Debug, Clone, Default)]
pub(crate) struct SegmentTable {
    /// Each node's segment, in the network's node order.
    pub node_seg: Vec<u32>,
    /// Each pipe's segment, in the network's pipe order.
    pub pipe_seg: Vec<u32>,
    pub segs: Vec<Seg>,
    free: Vec<u32>,
    /// Elements to label again, as (is a node, id): members of dissolved segments and new
    /// elements.
    pub pending: Vec<(bool, Id)>,
    /// Members dissolved since the last settle: past a share of the network, labelling
    /// everything afresh is cheaper than walking piecemeal.
    pub dissolved: usize,
}

/// A number per segment, for the segments one isolation visits.
struct Marks(Vec<usize>);

impl Marks {
    fn new(segments: usize) -> Self {
        Marks(vec![usize::MAX; segments])
    }

    fn get(&self, s: u32) -> Option<usize> {
        Some(self.0[s as usize]).filter(|&m| m != usize::MAX)
    }

    fn contains_key(&self, s: u32) -> bool {
        self.0[s as usize] != usize::MAX
    }

    fn insert(&mut self, s: u32, m: usize) {
        self.0[s as usize] = m;
    }
}

impl std::ops::Index<u32> for Marks {
    type Output = usize;
    fn index(&self, s: u32) -> &usize {
        &self.0[s as usize]
    }
}

/// A precomputed segment, for callers and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Member node ids, sorted.
    pub nodes: Vec<Id>,
    /// Member pipe ids, sorted.
    pub pipes: Vec<Id>,
    /// The valves with one side in the segment, sorted.
    pub boundary_valves: Vec<Id>,
    /// How many sources lie in it.
    pub sources: u32,
    /// The customers it serves.
    pub customers: Customers,
}

impl Network {
    /// Computes every valve segment of the network as it stands and keeps them: isolations
    /// then walk segments instead of pipes, and edits keep the table exact (see the
    /// module documentation of `segments.rs`).
    pub fn precompute_segments(&mut self) {
        self.table = Some(self.fresh_table());
    }

    /// Whether the segments are precomputed.
    pub fn has_precomputed_segments(&self) -> bool {
        self.table.is_some()
    }

    /// How many segments the precomputed table holds.
    pub fn segment_count(&self) -> Option<usize> {
        self.table
            .as_ref()
            .map(|t| t.segs.iter().filter(|s| s.live).count())
    }

    /// The precomputed segments numbered as [`Network::segments`] numbers them (0, 1, … in
    /// order of first appearance, nodes first), so the two are equal exactly when they are
    /// the same partition.
    pub fn precomputed_segments(&self) -> Option<Segments> {
        let t = self.table.as_ref()?;
        let mut number: HashMap<u32, usize> = HashMap::new();
        let mut of = |l: u32| {
            let next = number.len();
            *number.entry(l).or_insert(next)
        };
        let nodes = t.node_seg.iter().map(|&l| of(l)).collect();
        let pipes = t.pipe_seg.iter().map(|&l| of(l)).collect();
        Some(Segments { nodes, pipes })
    }

    /// The precomputed segment of pipe `pipe`.
    pub fn precomputed_segment(&self, pipe: Id) -> Option<SegmentInfo> {
        let t = self.table.as_ref()?;
        let pi = *self.pipe_ix.get(&pipe)?;
        Some(self.info(t.segs.get(t.pipe_seg[pi] as usize)?))
    }

    fn info(&self, s: &Seg) -> SegmentInfo {
        let mut boundary_valves: Vec<Id> = s.boundary.iter().map(|&v| self.valves[v].id).collect();
        boundary_valves.sort_unstable();
        SegmentInfo {
            nodes: s.nodes.clone(),
            pipes: s.pipes.clone(),
            boundary_valves,
            sources: s.sources,
            customers: Customers {
                count: s.customers,
                nodes: s.customer_nodes.clone(),
            },
        }
    }

    /// Checks the precomputed table against a fresh computation: the same partition, and
    /// for every element the same members, boundary valves, sources and customers. For
    /// tests and debugging; `Ok` when no table is kept.
    #[doc(hidden)]
    pub fn check_precomputed_segments(&self) -> Result<(), String> {
        let Some(t) = &self.table else {
            return Ok(());
        };
        if !t.pending.is_empty() {
            return Err(format!("{} elements wait to be labelled", t.pending.len()));
        }
        if t.node_seg.len() != self.nodes.len() || t.pipe_seg.len() != self.pipes.len() {
            return Err("the table is not aligned with the network".into());
        }
        let fresh = self.fresh_table();
        if self.precomputed_segments() != Some(self.segments(&Scenario::default())) {
            return Err("the partition differs from segments()".into());
        }
        let live = t.segs.iter().filter(|s| s.live).count();
        let want = fresh.segs.len();
        if live != want {
            return Err(format!("{live} live segments, {want} expected"));
        }
        let labels = t.node_seg.iter().zip(&fresh.node_seg);
        let labels = labels.chain(t.pipe_seg.iter().zip(&fresh.pipe_seg));
        for (&a, &b) in labels {
            let (Some(sa), Some(sb)) = (t.segs.get(a as usize), fresh.segs.get(b as usize)) else {
                return Err(format!("an element has no segment ({a}, {b})"));
            };
            if !sa.live {
                return Err(format!("an element is in dissolved segment {a}"));
            }
            let (ia, ib) = (self.info(sa), self.info(sb));
            if ia != ib {
                return Err(format!("segment differs:\n kept  {ia:?}\n fresh {ib:?}"));
            }
        }
        Ok(())
    }

    /// The element's segment label.
    fn label(t: &SegmentTable, nodes: usize, e: Element) -> u32 {
        if e < nodes {
            t.node_seg[e]
        } else {
            t.pipe_seg[e - nodes]
        }
    }

    fn set_label(t: &mut SegmentTable, nodes: usize, e: Element, l: u32) {
        if e < nodes {
            t.node_seg[e] = l;
        } else {
            t.pipe_seg[e - nodes] = l;
        }
    }

    /// Whether the pipe end (pipe index, side) joins its pipe and node within a segment as
    /// the network stands: no valve, or one that is open but cannot be operated.
    fn joins_in_segment(&self, pi: usize, side: usize) -> bool {
        self.valve_at[pi][side].is_none_or(|v| self.valves[v].act() == Act::Pass)
    }

    /// The elements joined to `e` within a segment.
    fn segment_neighbours(&self, e: Element, out: &mut Vec<Element>) {
        let nodes = self.nodes.len();
        out.clear();
        if e < nodes {
            for &(pi, side) in &self.adj[e] {
                if self.joins_in_segment(pi, side) {
                    out.push(nodes + pi);
                }
            }
        } else {
            let pi = e - nodes;
            for side in 0..2 {
                if self.joins_in_segment(pi, side) {
                    out.push(self.ends[pi][side]);
                }
            }
        }
    }

    /// Every segment, afresh.
    fn fresh_table(&self) -> SegmentTable {
        let nodes = self.nodes.len();
        let total = nodes + self.pipes.len();
        let mut t = SegmentTable {
            node_seg: vec![NO_SEG; nodes],
            pipe_seg: vec![NO_SEG; self.pipes.len()],
            ..SegmentTable::default()
        };
        let (mut stack, mut members, mut next) = (Vec::new(), Vec::new(), Vec::new());
        for start in 0..total {
            if Self::label(&t, nodes, start) != NO_SEG {
                continue;
            }
            let l = t.segs.len() as u32;
            Self::set_label(&mut t, nodes, start, l);
            members.clear();
            members.push(start);
            stack.push(start);
            while let Some(e) = stack.pop() {
                self.segment_neighbours(e, &mut next);
                for &x in &next {
                    if Self::label(&t, nodes, x) == NO_SEG {
                        Self::set_label(&mut t, nodes, x, l);
                        members.push(x);
                        stack.push(x);
                    }
                }
            }
            let seg = self.make_seg(&t, l, &members);
            t.segs.push(seg);
        }
        t
    }

    /// A segment's entry from its members, all labelled `l` already.
    fn make_seg(&self, t: &SegmentTable, l: u32, members: &[Element]) -> Seg {
        let n = self.nodes.len();
        let mut s = Seg {
            live: true,
            ..Seg::default()
        };
        // A valve is on the boundary when the side across it is in another segment.
        let mut bound = |v: Option<usize>, across: Element| {
            if let Some(v) = v {
                if self.valves[v].act() != Act::Pass && Self::label(t, n, across) != l {
                    s.boundary.push(v);
                }
            }
        };
        for &e in members {
            if e < n {
                for &(pi, side) in &self.adj[e] {
                    bound(self.valve_at[pi][side], n + pi);
                }
            } else {
                let pi = e - n;
                for side in 0..2 {
                    bound(self.valve_at[pi][side], self.ends[pi][side]);
                }
            }
        }
        for &e in members {
            if e < n {
                let node = &self.nodes[e];
                s.nodes.push(node.id);
                match node.role {
                    NodeRole::Source => s.sources += 1,
                    NodeRole::Customer { customers } => {
                        s.customers += u64::from(customers);
                        s.customer_nodes.push(node.id);
                    }
                    NodeRole::Junction => {}
                }
            } else {
                s.pipes.push(self.pipes[e - n].id);
            }
        }
        s.nodes.sort_unstable();
        s.pipes.sort_unstable();
        s.customer_nodes.sort_unstable();
        s.boundary.sort_unstable();
        s.boundary.dedup();
        s
    }

    /// Dissolves the segment of element `e` (if it has one): its members wait to be
    /// labelled again. Called by every edit on what it touches, before the change.
    pub(crate) fn touch(&mut self, e: Element) {
        let n = self.nodes.len();
        let Some(t) = &mut self.table else {
            return;
        };
        let l = Self::label(t, n, e);
        if l != NO_SEG {
            self.dissolve(l);
        }
    }

    fn dissolve(&mut self, l: u32) {
        let Some(t) = &mut self.table else {
            return;
        };
        let seg = std::mem::take(&mut t.segs[l as usize]);
        for id in &seg.nodes {
            if let Some(&i) = self.node_ix.get(id) {
                t.node_seg[i] = NO_SEG;
            }
            t.pending.push((true, *id));
        }
        for id in &seg.pipes {
            if let Some(&i) = self.pipe_ix.get(id) {
                t.pipe_seg[i] = NO_SEG;
            }
            t.pending.push((false, *id));
        }
        t.dissolved += seg.nodes.len() + seg.pipes.len();
        t.free.push(l);
    }

    /// Labels every element an edit left without a segment: each becomes the start of a
    /// walk that gathers its new segment, dissolving any kept segment the walk enters (an
    /// edit can join segments). Past a quarter of the network dissolved, the table is
    /// computed afresh instead.
    pub(crate) fn settle_segments(&mut self) {
        let n = self.nodes.len();
        let total = n + self.pipes.len();
        let Some(t) = &mut self.table else {
            return;
        };
        if t.dissolved > 4096 && t.dissolved * 4 > total {
            self.table = Some(self.fresh_table());
            return;
        }
        let (mut stack, mut members, mut next) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            let Some(t) = &mut self.table else {
                return;
            };
            let Some((is_node, id)) = t.pending.pop() else {
                t.dissolved = 0;
                return;
            };
            let ix = if is_node {
                self.node_ix.get(&id).copied()
            } else {
                self.pipe_ix.get(&id).map(|p| n + p)
            };
            let Some(start) = ix else {
                continue; // removed since
            };
            if Self::label(t, n, start) != NO_SEG {
                continue; // labelled by an earlier walk
            }
            let l = match t.free.pop() {
                Some(l) => l,
                None => {
                    t.segs.push(Seg::default());
                    (t.segs.len() - 1) as u32
                }
            };
            Self::set_label(t, n, start, l);
            members.clear();
            members.push(start);
            stack.push(start);
            while let Some(e) = stack.pop() {
                self.segment_neighbours(e, &mut next);
                for &x in &next {
                    let Some(t) = &self.table else { return };
                    let lx = Self::label(t, n, x);
                    if lx == l {
                        continue;
                    }
                    if lx != NO_SEG {
                        // A kept segment the edit joined to this one.
                        self.dissolve(lx);
                    }
                    let Some(t) = &mut self.table else { return };
                    Self::set_label(t, n, x, l);
                    members.push(x);
                    stack.push(x);
                }
            }
            let Some(t) = &self.table else { return };
            let seg = self.make_seg(t, l, &members);
            if let Some(t) = &mut self.table {
                t.segs[l as usize] = seg;
            }
        }
    }

    /// After the valve at index `from` moved to index `to` (a removal swapped it in): the
    /// boundary lists of the segments on its sides name it by its new index.
    pub(crate) fn valve_moved(&mut self, from: usize, to: usize) {
        let n = self.nodes.len();
        let Some(pi) = self.pipe_ix.get(&self.valves[to].pipe).copied() else {
            return;
        };
        let Some(t) = &mut self.table else {
            return;
        };
        let node = self.node_ix.get(&self.valves[to].node).copied();
        let sides = [Some(n + pi), node];
        for e in sides.into_iter().flatten() {
            let l = Self::label(t, n, e);
            if let Some(s) = t.segs.get_mut(l as usize) {
                for v in s.boundary.iter_mut().filter(|v| **v == from) {
                    *v = to;
                }
            }
        }
    }

    /// [`Network::isolate`] over the precomputed segments; `None` for the one what-if the
    /// table cannot answer (closing a valve that is open but inoperable). The steps are the
    /// walking isolation's, with a segment as the unit: the pieces (the start pipes'
    /// segments, joined through valves the scenario breaks), the boundary, the parts
    /// beyond it as the network stands with whether each holds a source, then what was
    /// one part before, the valves to close and the pockets.
    pub(crate) fn isolate_on_segments(
        &self,
        t: &SegmentTable,
        starts: &[usize],
        s: &Scenario,
    ) -> Option<Isolation> {
        for id in &s.closed {
            if self.valves[*self.valve_ix.get(id)?].act() == Act::Pass {
                return None;
            }
        }
        let act = |v: usize| {
            let valve = &self.valves[v];
            let base = valve.act();
            if s.closed.contains(&valve.id) {
                Act::Barrier
            } else if base == Act::Operable && s.broken.contains(&valve.id) {
                Act::Pass
            } else {
                base
            }
        };
        // A boundary valve's pipe index and side, and the segments on its two sides.
        let sides = |v: usize| {
            let pi = self.pipe_ix[&self.valves[v].pipe];
            let side = usize::from(self.valve_at[pi][0] != Some(v));
            (pi, side, t.pipe_seg[pi], t.node_seg[self.ends[pi][side]])
        };
        let across = |v: usize, from: u32| {
            let (pi, side, a, b) = sides(v);
            (pi, side, if a == from { b } else { a })
        };

        // The pieces: each start pipe's segment, grown through the valves the scenario
        // breaks. Marks by segment number in flat arrays: hashing each segment visited
        // cost more than the walk itself on a 15,000-pipe network.
        let mut piece = Marks::new(t.segs.len());
        let mut inside: Vec<u32> = Vec::new();
        let mut stack: Vec<u32> = Vec::new();
        let mut pieces = 0;
        for &p in starts {
            let first = t.pipe_seg[p];
            if piece.contains_key(first) {
                continue;
            }
            let id = pieces;
            pieces += 1;
            piece.insert(first, id);
            inside.push(first);
            stack.push(first);
            while let Some(x) = stack.pop() {
                for &v in &t.segs[x as usize].boundary {
                    if act(v) != Act::Pass {
                        continue;
                    }
                    let (_, _, other) = across(v, x);
                    if !piece.contains_key(other) {
                        piece.insert(other, id);
                        inside.push(other);
                        stack.push(other);
                    }
                }
            }
        }

        // The boundary, and the parts beyond it as the network stands (closed valves stop
        // conduction), each with whether it holds a source.
        let mut part_of = Marks::new(t.segs.len());
        let mut parts: Vec<Vec<u32>> = Vec::new();
        let mut part_fed: Vec<bool> = Vec::new();
        let mut boundary = Vec::new(); // (valve, pipe index, side, near piece, far part)
        let mut piece_links = Vec::new();
        for &x in &inside {
            let near = piece[x];
            for &v in &t.segs[x as usize].boundary {
                let a = act(v);
                let (pi, side, other) = across(v, x);
                if let Some(p) = piece.get(other) {
                    // Both sides cut off: not on the boundary; an open valve between two
                    // pieces made them one part before the isolation.
                    if a == Act::Operable && p != near {
                        piece_links.push((near, p));
                    }
                    continue;
                }
                let far = match part_of.get(other) {
                    Some(f) => f,
                    None => {
                        let id = parts.len();
                        part_of.insert(other, id);
                        let mut members = vec![other];
                        stack.push(other);
                        let mut fed = false;
                        while let Some(y) = stack.pop() {
                            let seg = &t.segs[y as usize];
                            fed |= seg.sources > 0;
                            for &w in &seg.boundary {
                                if act(w) == Act::Barrier {
                                    continue;
                                }
                                let (_, _, z) = across(w, y);
                                if piece.contains_key(z) || part_of.contains_key(z) {
                                    continue;
                                }
                                part_of.insert(z, id);
                                members.push(z);
                                stack.push(z);
                            }
                        }
                        parts.push(members);
                        part_fed.push(fed);
                        id
                    }
                };
                boundary.push((v, pi, side, near, far));
            }
        }

        let mut before = Dsu::new(pieces + parts.len());
        for &(a, b) in &piece_links {
            before.union(a, b);
        }
        let mut joined = vec![false; parts.len()];
        let mut valves_to_close = Vec::new();
        let mut boundary_valves = Vec::new();
        for &(v, pi, side, near, far) in &boundary {
            let a = act(v);
            boundary_valves.push(BoundaryValve {
                id: self.valves[v].id,
                pipe: self.pipes[pi].id,
                node: self.nodes[self.ends[pi][side]].id,
                closed: a == Act::Barrier,
                far_side_fed: part_fed[far],
            });
            if a == Act::Operable {
                joined[far] = true;
                before.union(near, pieces + far);
                if part_fed[far] {
                    valves_to_close.push(self.valves[v].id);
                }
            }
        }
        valves_to_close.sort_unstable();
        boundary_valves.sort_by_key(|b| b.id);
        let mut fed_before = vec![false; pieces + parts.len()];
        for x in &inside {
            if t.segs[*x as usize].sources > 0 {
                fed_before[before.find(piece[*x])] = true;
            }
        }
        for (i, _) in part_fed.iter().enumerate().filter(|(_, &fed)| fed) {
            fed_before[before.find(pieces + i)] = true;
        }

        let mut customers = Customers::default();
        let gather = |segs: &[u32], customers: &mut Customers| {
            let mut part = Part::default();
            for x in segs {
                let seg = &t.segs[*x as usize];
                part.nodes.extend_from_slice(&seg.nodes);
                part.pipes.extend_from_slice(&seg.pipes);
                customers.count += seg.customers;
                customers.nodes.extend_from_slice(&seg.customer_nodes);
            }
            part.sorted()
        };
        let mut pockets: Vec<Part> = Vec::new();
        for (i, members) in parts.iter().enumerate() {
            if joined[i] && !part_fed[i] && fed_before[before.find(pieces + i)] {
                pockets.push(gather(members, &mut customers));
            }
        }
        pockets.sort_by_key(|p| (p.pipes.first().copied(), p.nodes.first().copied()));
        let source_inside = inside.iter().any(|x| t.segs[*x as usize].sources > 0);
        let segment = gather(&inside, &mut customers);
        customers.nodes.sort_unstable();
        Some(Isolation {
            segment,
            valves_to_close,
            boundary_valves,
            pockets,
            source_inside,
            customers,
        })
    }
}
