//! Upstream and downstream traces: which way supply flows from the sources, without a
//! hydraulic model.
//!
//! A network's **flow direction** is set the way GIS utility networks set it from their
//! sources (Esri's "flow direction from sources", ArcFM's feeder tracing): every node gets
//! its distance along the pipes from the nearest source (Dijkstra, pipe lengths in metres,
//! closed valves bounding, broken and open ones conducting), and each pipe flows from its
//! end nearer a source to its end farther away. On a branched network that is the
//! direction water, gas or heat really flows. On a looped network it is the
//! shortest-path approximation: a pipe whose two ends are equally far from the sources is
//! fed from both ends (a *meeting pipe*), and what a hydraulic model would say about the
//! loops' real split is not claimed. Distances only grow along a flow, so the directions
//! never form a cycle and both traces end.
//!
//! - **Downstream** of a pipe: the pipe and everything the flow carries on to from its
//!   farther end, with the customers there: what this pipe feeds.
//! - **Upstream** of a pipe: the pipe and every way back to the sources from its nearer
//!   end(s), with the sources reached: where its supply comes from.
//!
//! A pipe no source reaches has no direction: both traces answer with the pipe alone and
//! `fed: false`, never an error.

use crate::{Act, Customers, Id, Network, NodeRole, Part, Scenario, TraceError};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Distances closer than this (metres) count as equal: floating sums along two paths of
/// the same length must not invent a direction.
const SAME_M: f64 = 1e-6;
/// The least length a pipe counts for (metres): a zero-length pipe (a split at a valve, a
/// joint drawn twice) still runs from one end to the other.
const MIN_LENGTH_M: f64 = 1e-3;

/// The flow direction of a network under a scenario: each node's distance from the nearest
/// source. Build once with [`Network::flow`], then trace from any pipe.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Distance from the nearest source along the pipes, metres; infinite when unfed.
    dist: Vec<f64>,
    /// Each valve's act under the scenario, by valve index.
    acts: Vec<Act>,
}

impl Flow {
    /// A node's distance from the nearest source, metres (`None`: no source reaches it).
    pub fn distance(&self, net: &Network, node: Id) -> Option<f64> {
        let n = *net.node_ix.get(&node)?;
        Some(self.dist[n]).filter(|d| d.is_finite())
    }
}

/// Which way a trace goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Towards the sources.
    Upstream,
    /// Away from the sources.
    Downstream,
}

/// The answer of an upstream or downstream trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Directed {
    /// The nodes and pipes on the way, the start pipe included.
    #[serde(flatten)]
    pub part: Part,
    /// Valves on the way (on a pipe of the trace, at a node of the trace), sorted.
    pub valves: Vec<Id>,
    /// Upstream: the sources reached. Downstream: empty.
    pub sources: Vec<Id>,
    /// Downstream: the customer connections reached and their count. Upstream: none.
    pub customers: Customers,
    /// Whether a source reaches the start pipe at all.
    pub fed: bool,
}

impl Network {
    /// The flow direction under scenario `s`; `length` gives a pipe's length in metres by
    /// its id (shorter, negative or non-finite lengths count as 1 mm).
    pub fn flow(&self, s: &Scenario, length: impl Fn(Id) -> f64) -> Flow {
        let acts = self.acts(s);
        let len: Vec<f64> = self
            .pipes
            .iter()
            .map(|p| {
                let l = length(p.id);
                if l.is_finite() {
                    l.max(MIN_LENGTH_M)
                } else {
                    MIN_LENGTH_M
                }
            })
            .collect();
        let mut dist = vec![f64::INFINITY; self.nodes.len()];
        // Non-negative floats order as their bit patterns do, so the heap needs no wrapper.
        let mut heap = BinaryHeap::new();
        for (n, node) in self.nodes.iter().enumerate() {
            if node.role == NodeRole::Source {
                dist[n] = 0.0;
                heap.push(Reverse((0f64.to_bits(), n)));
            }
        }
        while let Some(Reverse((d, n))) = heap.pop() {
            let d = f64::from_bits(d);
            if d > dist[n] {
                continue;
            }
            for &(pi, side) in &self.adj[n] {
                let other = 1 - side;
                if !self.conducts(&acts, pi, side) || !self.conducts(&acts, pi, other) {
                    continue;
                }
                let m = self.ends[pi][other];
                let dm = d + len[pi];
                if dm < dist[m] {
                    dist[m] = dm;
                    heap.push(Reverse((dm.to_bits(), m)));
                }
            }
        }
        Flow { dist, acts }
    }

    /// The downstream trace of `pipe` (id) under `flow`: what it feeds.
    pub fn downstream(&self, flow: &Flow, pipe: Id) -> Result<Directed, TraceError> {
        self.directed(flow, pipe, Direction::Downstream)
    }

    /// The upstream trace of `pipe` (id) under `flow`: where its supply comes from.
    pub fn upstream(&self, flow: &Flow, pipe: Id) -> Result<Directed, TraceError> {
        self.directed(flow, pipe, Direction::Upstream)
    }

    fn conducts(&self, acts: &[Act], pi: usize, side: usize) -> bool {
        self.valve_at[pi][side].is_none_or(|v| acts[v] != Act::Barrier)
    }

    /// The ends of pipe `pi` the flow enters by (`up`) and leaves by (`down`): from the end
    /// nearer a source to the farther one; a meeting pipe has two entries and no exit, a
    /// pipe with a closed end is entered from its open end only, and an unfed pipe has
    /// neither.
    fn ends_of(&self, flow: &Flow, pi: usize) -> (Vec<usize>, Option<usize>) {
        let [a, b] = self.ends[pi];
        let open = [
            self.conducts(&flow.acts, pi, 0),
            self.conducts(&flow.acts, pi, 1),
        ];
        let (da, db) = (flow.dist[a], flow.dist[b]);
        match open {
            [true, true] if da.is_finite() || db.is_finite() => {
                if (da - db).abs() <= SAME_M {
                    (vec![a, b], None)
                } else if da < db {
                    (vec![a], Some(b))
                } else {
                    (vec![b], Some(a))
                }
            }
            [true, false] if da.is_finite() => (vec![a], None),
            [false, true] if db.is_finite() => (vec![b], None),
            _ => (Vec::new(), None),
        }
    }

    fn directed(&self, flow: &Flow, pipe: Id, dir: Direction) -> Result<Directed, TraceError> {
        let start = *self.pipe_ix.get(&pipe).ok_or(TraceError::NoPipe(pipe))?;
        let nodes = self.nodes.len();
        let mut seen = vec![false; nodes + self.pipes.len()];
        let mut order: Vec<usize> = vec![nodes + start];
        seen[nodes + start] = true;
        let (up, down) = self.ends_of(flow, start);
        let fed = !up.is_empty();
        let mut stack: Vec<usize> = match dir {
            Direction::Upstream => up,
            Direction::Downstream => down.into_iter().collect(),
        };
        for &n in &stack {
            seen[n] = true;
            order.push(n);
        }
        while let Some(n) = stack.pop() {
            for &(pi, side) in &self.adj[n] {
                if seen[nodes + pi] || !self.conducts(&flow.acts, pi, side) {
                    continue;
                }
                let (ups, down) = self.ends_of(flow, pi);
                // Upstream: pipes that flow into `n` (it is their exit). Downstream: pipes
                // `n` flows into (it is one of their entries).
                let next = match dir {
                    Direction::Upstream if down == Some(n) => ups,
                    Direction::Downstream if ups.contains(&n) => down.into_iter().collect(),
                    _ => continue,
                };
                seen[nodes + pi] = true;
                order.push(nodes + pi);
                for m in next {
                    if !seen[m] {
                        seen[m] = true;
                        order.push(m);
                        stack.push(m);
                    }
                }
            }
        }
        let mut out = Directed {
            fed,
            ..Directed::default()
        };
        for &e in &order {
            self.add_to(&mut out.part, e);
            if e < nodes {
                match self.nodes[e].role {
                    NodeRole::Source if dir == Direction::Upstream => {
                        out.sources.push(self.nodes[e].id)
                    }
                    NodeRole::Customer { customers } if dir == Direction::Downstream => {
                        out.customers.count += u64::from(customers);
                        out.customers.nodes.push(self.nodes[e].id);
                    }
                    _ => {}
                }
            } else {
                let pi = e - nodes;
                for (side, &n) in self.ends[pi].iter().enumerate() {
                    if let Some(v) = self.valve_at[pi][side].filter(|_| seen[n]) {
                        out.valves.push(self.valves[v].id);
                    }
                }
            }
        }
        out.part = out.part.sorted();
        out.valves.sort_unstable();
        out.sources.sort_unstable();
        out.customers.nodes.sort_unstable();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! Each answer worked out on paper, on the networks drawn in each test.

    use crate::*;

    fn n(id: Id, role: NodeRole) -> Node {
        Node { id, role }
    }
    fn p(id: Id, from: Id, to: Id) -> Pipe {
        Pipe { id, from, to }
    }
    fn closed(id: Id, pipe: Id, node: Id) -> Valve {
        Valve {
            id,
            pipe,
            node,
            position: Position::Closed,
            operable: true,
        }
    }
    const J: NodeRole = NodeRole::Junction;
    const S: NodeRole = NodeRole::Source;
    fn c(k: u32) -> NodeRole {
        NodeRole::Customer { customers: k }
    }

    /// ```text
    /// S1 --p1-- J2 --p2-- J3 --p3-- C4(10)
    ///                     |
    ///                     p4
    ///                     |
    ///                     J5 --p5-- C6(5)
    /// ```
    fn tree() -> Network {
        Network::new(
            vec![n(1, S), n(2, J), n(3, J), n(4, c(10)), n(5, J), n(6, c(5))],
            vec![p(1, 1, 2), p(2, 2, 3), p(3, 3, 4), p(4, 3, 5), p(5, 5, 6)],
            vec![],
        )
        .unwrap()
    }

    #[test]
    fn on_a_tree_downstream_is_the_subtree_and_upstream_the_path_home() {
        let net = tree();
        let f = net.flow(&Scenario::default(), |_| 100.0);
        let down = net.downstream(&f, 2).unwrap();
        assert_eq!(down.part.pipes, vec![2, 3, 4, 5]);
        assert_eq!(down.part.nodes, vec![3, 4, 5, 6]);
        assert_eq!(down.customers.count, 15);
        assert_eq!(down.customers.nodes, vec![4, 6]);
        assert!(down.sources.is_empty() && down.fed);
        let up = net.upstream(&f, 4).unwrap();
        assert_eq!(up.part.pipes, vec![1, 2, 4]);
        assert_eq!(up.part.nodes, vec![1, 2, 3]);
        assert_eq!(up.sources, vec![1]);
        assert_eq!(up.customers.count, 0);
        // A leaf pipe feeds only its customer.
        let leaf = net.downstream(&f, 5).unwrap();
        assert_eq!((leaf.part.pipes, leaf.part.nodes), (vec![5], vec![6]));
    }

    #[test]
    fn direction_does_not_depend_on_how_pipes_are_drawn() {
        // The same tree with every pipe drawn against the flow.
        let net = Network::new(
            vec![n(1, S), n(2, J), n(3, J), n(4, c(10)), n(5, J), n(6, c(5))],
            vec![p(1, 2, 1), p(2, 3, 2), p(3, 4, 3), p(4, 5, 3), p(5, 6, 5)],
            vec![],
        )
        .unwrap();
        let f = net.flow(&Scenario::default(), |_| 100.0);
        assert_eq!(net.downstream(&f, 2).unwrap().part.pipes, vec![2, 3, 4, 5]);
        assert_eq!(net.upstream(&f, 5).unwrap().part.pipes, vec![1, 2, 4, 5]);
    }

    /// A loop fed from S1: J2 reaches J4 two ways; p3 (J3–J4) is 300 m, p4 (J2–J4) 100 m.
    /// ```text
    /// S1 --p1-- J2 --p2-- J3
    ///           |         |
    ///           p4        p3
    ///           |         |
    ///           J4 --------
    ///           |
    ///           p5
    ///           |
    ///           C5(7)
    /// ```
    #[test]
    fn on_a_loop_the_nearer_path_sets_the_direction() {
        let net = Network::new(
            vec![n(1, S), n(2, J), n(3, J), n(4, J), n(5, c(7))],
            vec![p(1, 1, 2), p(2, 2, 3), p(3, 3, 4), p(4, 2, 4), p(5, 4, 5)],
            vec![],
        )
        .unwrap();
        let len = |id: Id| match id {
            3 => 300.0,
            _ => 100.0,
        };
        let f = net.flow(&Scenario::default(), len);
        // dist: S1 0, J2 100, J3 200, J4 200 (via p4), C5 300. p3 joins J3 (200) and J4
        // (200): a meeting pipe, fed from both ends.
        assert_eq!(f.distance(&net, 4), Some(200.0));
        let down = net.downstream(&f, 4).unwrap();
        assert_eq!(down.part.pipes, vec![3, 4, 5]);
        assert_eq!(down.customers.count, 7);
        let up = net.upstream(&f, 3).unwrap();
        assert_eq!(up.part.pipes, vec![1, 2, 3, 4]);
        assert_eq!(up.sources, vec![1]);
        // The meeting pipe feeds nothing on.
        assert_eq!(net.downstream(&f, 3).unwrap().part.pipes, vec![3]);
    }

    #[test]
    fn a_closed_valve_turns_the_flow_and_the_what_if_counts() {
        // Two sources at either end of a line: S1 -p1- J2 -p2- C3 -p3- S4, with a closed
        // valve on p2 at J2 and an open one on p3 at C3.
        let mut open = closed(8, 3, 3);
        open.position = Position::Open;
        let net = Network::new(
            vec![n(1, S), n(2, J), n(3, c(4)), n(4, S)],
            vec![p(1, 1, 2), p(2, 2, 3), p(3, 3, 4)],
            vec![closed(9, 2, 2), open],
        )
        .unwrap();
        let f = net.flow(&Scenario::default(), |_| 10.0);
        // C3 is fed from S4 only.
        let up = net.upstream(&f, 2).unwrap();
        assert_eq!(up.sources, vec![4]);
        assert_eq!(up.part.pipes, vec![2, 3]);
        assert_eq!(up.valves, vec![8], "the valve at J2 is not on the way");
        // Behind the closed valve p2 is entered from C3 only: it feeds nothing on.
        assert_eq!(net.downstream(&f, 2).unwrap().part.pipes, vec![2]);
        assert_eq!(net.downstream(&f, 3).unwrap().customers.count, 4);
        // A broken valve still conducts.
        let broken = Scenario {
            broken: [8].into_iter().collect(),
            closed: Default::default(),
        };
        let fb = net.flow(&broken, |_| 10.0);
        assert_eq!(net.upstream(&fb, 2).unwrap().sources, vec![4]);
        // Closing valve 8 in the what-if leaves p2 and C3 unfed: no direction, no error.
        let shut = Scenario {
            closed: [8].into_iter().collect(),
            broken: Default::default(),
        };
        let fs = net.flow(&shut, |_| 10.0);
        let lone = net.upstream(&fs, 2).unwrap();
        assert!(!lone.fed);
        assert_eq!(lone.part.pipes, vec![2]);
        assert!(lone.sources.is_empty());
        assert_eq!(net.downstream(&fs, 2).unwrap().part.pipes, vec![2]);
        assert_eq!(fs.distance(&net, 3), None);
    }

    #[test]
    fn zero_length_pipes_still_have_a_direction() {
        let net = tree();
        let f = net.flow(
            &Scenario::default(),
            |id| if id == 1 { 0.0 } else { f64::NAN },
        );
        assert_eq!(net.upstream(&f, 5).unwrap().sources, vec![1]);
        assert_eq!(
            net.downstream(&f, 1).unwrap().part.pipes,
            vec![1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn an_unknown_pipe_is_an_error() {
        let net = tree();
        let f = net.flow(&Scenario::default(), |_| 1.0);
        assert_eq!(net.upstream(&f, 99), Err(TraceError::NoPipe(99)));
    }

    /// On random trees (every node fed once), downstream of a pipe is exactly what loses
    /// supply when the pipe alone is removed, and a pipe lies upstream of another exactly
    /// when the other lies downstream of it.
    #[test]
    fn on_random_trees_downstream_is_what_the_pipe_feeds() {
        let mut seed = 0x5eed_u64;
        let mut next = |m: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as usize
        };
        for _ in 0..40 {
            let size = 2 + next(40);
            let mut nodes = vec![n(0, S)];
            let mut pipes = Vec::new();
            for i in 1..size {
                let parent = next(i) as Id;
                nodes.push(n(i as Id, if next(3) == 0 { c(1) } else { J }));
                // Drawn either way round.
                pipes.push(if next(2) == 0 {
                    p(i as Id, parent, i as Id)
                } else {
                    p(i as Id, i as Id, parent)
                });
            }
            let net = Network::new(nodes.clone(), pipes.clone(), vec![]).unwrap();
            let f = net.flow(&Scenario::default(), |id| 1.0 + (id % 7) as f64);
            for cut in &pipes {
                let down = net.downstream(&f, cut.id).unwrap();
                // Remove the pipe: what no longer reaches node 0?
                let rest: Vec<Pipe> = pipes.iter().filter(|q| q.id != cut.id).cloned().collect();
                let without = Network::new(nodes.clone(), rest, vec![]).unwrap();
                let islands = without.islands_without_source();
                let lost: Vec<Id> = islands.iter().flat_map(|i| i.nodes.clone()).collect();
                let mut lost = lost;
                lost.sort_unstable();
                assert_eq!(down.part.nodes, lost, "pipe {}", cut.id);
                for other in &pipes {
                    let up = net.upstream(&f, other.id).unwrap();
                    assert_eq!(
                        up.part.pipes.contains(&cut.id),
                        down.part.pipes.contains(&other.id),
                        "pipes {} and {}",
                        cut.id,
                        other.id
                    );
                }
            }
        }
    }
}
