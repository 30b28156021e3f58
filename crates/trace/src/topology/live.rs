//! A network kept in step with changing records (issue 15: edits invalidate precomputed
//! segments precisely). [`LiveTopology::build`] is [`from_attributes`] plus precomputed
//! segments and the records the network alone does not keep; [`LiveTopology::update`]
//! takes the current state of the records that changed and edits the network in place, so
//! that the result is the network, segments and report `from_attributes` would build from
//! all the records as they now are.
//!
//! What a changed record can affect is local: a pipe's inclusion depends on its own two end
//! nodes existing, and a valve node's placement on the pipes ending at it (the rules of
//! [`from_attributes`]). So an update re-derives the changed pipes and nodes, the pipes at
//! changed nodes, the pipes left out for naming a changed node, and the valves at every end
//! node of those pipes; everything else is left as it is.

use super::{
    from_attributes, place_valve, role_of, AttributeReport, MisplacedValve, NodeKind, NodeRecord,
    PipeRecord, Topology, TopologyError, UnknownNode,
};
use crate::{Id, Network, Node, Pipe, Valve};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The records behind a network that the network does not keep: every node's kind (a valve
/// node's state and `on_pipe`, and misplaced valves, which the network sees as junctions),
/// the pipes left out for naming an unknown node, and the misplaced valves.
#[derive(Debug, Clone, Default)]
pub struct LiveTopology {
    nodes: HashMap<Id, NodeKind>,
    /// Pipes left out because an end node is not in the data, by id.
    left_out: HashMap<Id, PipeRecord>,
    /// The left-out pipes naming each node (either end): a node that appears, or changes,
    /// may bring them in or change what is reported about them.
    waiting: HashMap<Id, Vec<Id>>,
    misplaced: BTreeMap<Id, MisplacedValve>,
}

impl LiveTopology {
    /// The network of the records ([`from_attributes`]), with its segments precomputed,
    /// and what it takes to update it.
    pub fn build(
        nodes: &[NodeRecord],
        pipes: &[PipeRecord],
    ) -> Result<(Network, LiveTopology), TopologyError> {
        let Topology {
            mut network,
            report,
        } = from_attributes(nodes, pipes)?;
        let mut live = LiveTopology::default();
        for n in nodes {
            // The first record of an id is the one kept, as in `from_attributes`.
            live.nodes.entry(n.id).or_insert_with(|| n.kind.clone());
        }
        let unknown: HashSet<Id> = report.unknown_nodes.iter().map(|u| u.pipe).collect();
        for p in pipes {
            if unknown.contains(&p.id) && !live.left_out.contains_key(&p.id) {
                live.leave_out(p.clone());
            }
        }
        live.misplaced = report
            .misplaced_valves
            .into_iter()
            .map(|m| (m.node, m))
            .collect();
        network.precompute_segments();
        Ok((network, live))
    }

    /// Whether a node record of this id is held (in the network or not).
    pub fn holds_node(&self, id: Id) -> bool {
        self.nodes.contains_key(&id)
    }

    /// Whether a pipe record of this id is held: in `network`, or left out.
    pub fn holds_pipe(&self, network: &Network, id: Id) -> bool {
        network.pipe_ix.contains_key(&id) || self.left_out.contains_key(&id)
    }

    /// The problems `from_attributes` would report for the records as they now are: pipes
    /// to unknown nodes (by pipe id) and misplaced valves (by node id). Duplicates cannot
    /// arise here (a record per id), and self-loops are not tracked.
    pub fn report(&self) -> AttributeReport {
        let mut unknown_nodes = Vec::new();
        let mut ids: Vec<&Id> = self.left_out.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let p = &self.left_out[id];
            let ends: &[Id] = if p.from == p.to {
                &[p.from]
            } else {
                &[p.from, p.to]
            };
            for &node in ends.iter().filter(|n| !self.nodes.contains_key(n)) {
                unknown_nodes.push(UnknownNode { pipe: p.id, node });
            }
        }
        AttributeReport {
            unknown_nodes,
            misplaced_valves: self.misplaced.values().cloned().collect(),
            ..AttributeReport::default()
        }
    }

    fn leave_out(&mut self, p: PipeRecord) {
        self.waiting.entry(p.from).or_default().push(p.id);
        if p.to != p.from {
            self.waiting.entry(p.to).or_default().push(p.id);
        }
        self.left_out.insert(p.id, p);
    }

    fn take_back(&mut self, id: Id) -> Option<PipeRecord> {
        let p = self.left_out.remove(&id)?;
        for end in [p.from, p.to] {
            if let Some(w) = self.waiting.get_mut(&end) {
                w.retain(|&x| x != id);
                if w.is_empty() {
                    self.waiting.remove(&end);
                }
            }
        }
        Some(p)
    }

    /// The pipe record of `id` as the network or the left-out pipes hold it.
    fn pipe_record(&self, network: &Network, id: Id) -> Option<PipeRecord> {
        match network.pipe_ix.get(&id) {
            Some(&pi) => {
                let p = &network.pipes[pi];
                Some(PipeRecord {
                    id,
                    from: p.from,
                    to: p.to,
                })
            }
            None => self.left_out.get(&id).cloned(),
        }
    }

    /// Applies the current state of changed records: `nodes` and `pipes` give each changed
    /// id with its record now (`None`: gone from this network, deleted or now of another
    /// kind). Ids not given are taken as unchanged. Afterwards `network`, its precomputed
    /// segments and [`LiveTopology::report`] are what [`LiveTopology::build`] would give
    /// for all the records as they now are.
    ///
    /// An error means the records broke an invariant the rules keep (it should not
    /// happen); the network may then be half edited, and must be built afresh.
    pub fn update(
        &mut self,
        network: &mut Network,
        nodes: &[(Id, Option<NodeRecord>)],
        pipes: &[(Id, Option<PipeRecord>)],
    ) -> Result<(), TopologyError> {
        // The last word on each id.
        let node_now: BTreeMap<Id, Option<&NodeRecord>> =
            nodes.iter().map(|(id, r)| (*id, r.as_ref())).collect();
        let mut pipe_now: BTreeMap<Id, Option<PipeRecord>> =
            pipes.iter().map(|(id, r)| (*id, r.clone())).collect();

        // The pipes to derive again: the changed ones, those at changed nodes, and those
        // left out that name a changed node.
        let mut candidates: BTreeSet<Id> = pipe_now.keys().copied().collect();
        for id in node_now.keys() {
            if let Some(&i) = network.node_ix.get(id) {
                candidates.extend(network.adj[i].iter().map(|&(pi, _)| network.pipes[pi].id));
            }
            if let Some(w) = self.waiting.get(id) {
                candidates.extend(w.iter().copied());
            }
        }
        for id in &candidates {
            if !pipe_now.contains_key(id) {
                let current = self.pipe_record(network, *id);
                pipe_now.insert(*id, current);
            }
        }
        // The nodes whose valve placement may change: changed nodes and both ends, before
        // and after, of every candidate pipe.
        let mut affected: BTreeSet<Id> = node_now.keys().copied().collect();
        for id in &candidates {
            if let Some(p) = self.pipe_record(network, *id) {
                affected.extend([p.from, p.to]);
            }
            if let Some(Some(p)) = pipe_now.get(id) {
                affected.extend([p.from, p.to]);
            }
        }

        // Out with the old: valves at affected nodes (a valve has its node's id), the
        // candidate pipes, then the changed nodes (no pipe ends at them any more).
        for id in &affected {
            if network.valve_ix.contains_key(id) {
                network.remove_valve(*id)?;
            }
        }
        for id in &candidates {
            if network.pipe_ix.contains_key(id) {
                network.remove_pipe(*id)?;
            } else {
                self.take_back(*id);
            }
        }
        for (&id, rec) in &node_now {
            match rec {
                Some(r) => {
                    self.nodes.insert(id, r.kind.clone());
                    let role = role_of(&r.kind);
                    if network.node_ix.contains_key(&id) {
                        network.set_node_role(id, role)?;
                    } else {
                        network.add_node(Node { id, role })?;
                    }
                }
                None => {
                    self.nodes.remove(&id);
                    if network.node_ix.contains_key(&id) {
                        network.remove_node(id)?;
                    }
                }
            }
        }

        // In with the new: the candidate pipes whose end nodes exist, the others left out,
        // then every valve at an affected node placed by the rules.
        for (_, rec) in pipe_now {
            let Some(p) = rec else {
                continue;
            };
            if self.nodes.contains_key(&p.from) && self.nodes.contains_key(&p.to) {
                network.add_pipe(Pipe {
                    id: p.id,
                    from: p.from,
                    to: p.to,
                })?;
            } else {
                self.leave_out(p);
            }
        }
        for &id in &affected {
            self.misplaced.remove(&id);
            let Some(NodeKind::Valve(v)) = self.nodes.get(&id) else {
                continue;
            };
            let mut at: Vec<Id> = network
                .node_ix
                .get(&id)
                .map(|&i| {
                    network.adj[i]
                        .iter()
                        .map(|&(pi, _)| network.pipes[pi].id)
                        .collect()
                })
                .unwrap_or_default();
            // A self-loop ends at its node twice but counts once, as in `from_attributes`.
            at.sort_unstable();
            at.dedup();
            match place_valve(v, &at) {
                Some(pipe) => network.add_valve(Valve {
                    id,
                    pipe,
                    node: id,
                    position: v.position,
                    operable: v.operable,
                })?,
                None => {
                    self.misplaced.insert(
                        id,
                        MisplacedValve {
                            node: id,
                            degree: at.len(),
                            on_pipe: v.on_pipe,
                        },
                    );
                }
            }
        }
        network.settle_segments();
        Ok(())
    }
}
