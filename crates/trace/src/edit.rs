//! Edits of a [`Network`] in place: nodes, pipes and valves added, removed or changed, so
//! that a change to a few records costs what it touches instead of a rebuild of the
//! network (issue 15: edits invalidate precomputed segments precisely).
//!
//! Each edit keeps the network's arrays dense (a removal moves the last element into the
//! gap and renumbers it), and dissolves the precomputed segments of what it touches
//! ([`Network::touch`]); [`Network::settle_segments`] labels them again once a batch of
//! edits is done. They check what [`Network::new`] checks, so an edited network is one
//! `new` could have built. The callers are [`crate::topology::LiveTopology`] (records in,
//! edits out) and the tests.

use crate::{Id, Network, Node, NodeRole, Pipe, TraceError, Valve};

impl Network {
    /// Adds a node.
    pub(crate) fn add_node(&mut self, node: Node) -> Result<(), TraceError> {
        if self.node_ix.contains_key(&node.id) {
            return Err(TraceError::Duplicate {
                what: "node",
                id: node.id,
            });
        }
        let i = self.nodes.len();
        self.node_ix.insert(node.id, i);
        if let Some(t) = &mut self.table {
            t.node_seg.push(crate::segments::NO_SEG);
            t.pending.push((true, node.id));
        }
        self.nodes.push(node);
        self.adj.push(Vec::new());
        Ok(())
    }

    /// Changes what a node is (junction, source, customer).
    pub(crate) fn set_node_role(&mut self, id: Id, role: NodeRole) -> Result<(), TraceError> {
        let i = *self.node_ix.get(&id).ok_or(TraceError::NoNode(id))?;
        if self.nodes[i].role != role {
            // Its segment's sources and customers change.
            self.touch(i);
            self.nodes[i].role = role;
        }
        Ok(())
    }

    /// Removes a node no pipe ends at.
    pub(crate) fn remove_node(&mut self, id: Id) -> Result<(), TraceError> {
        let i = *self.node_ix.get(&id).ok_or(TraceError::NoNode(id))?;
        if !self.adj[i].is_empty() {
            return Err(TraceError::NodeInUse {
                node: id,
                pipes: self.adj[i].len(),
            });
        }
        self.touch(i);
        self.node_ix.remove(&id);
        self.nodes.swap_remove(i);
        self.adj.swap_remove(i);
        if let Some(t) = &mut self.table {
            t.node_seg.swap_remove(i);
        }
        if i < self.nodes.len() {
            // The last node moved into the gap: its pipes' ends name its new index.
            self.node_ix.insert(self.nodes[i].id, i);
            for &(pi, side) in &self.adj[i] {
                self.ends[pi][side] = i;
            }
        }
        Ok(())
    }

    /// Adds a pipe between two nodes of the network.
    pub(crate) fn add_pipe(&mut self, pipe: Pipe) -> Result<(), TraceError> {
        if self.pipe_ix.contains_key(&pipe.id) {
            return Err(TraceError::Duplicate {
                what: "pipe",
                id: pipe.id,
            });
        }
        let at = |node: Id| {
            self.node_ix
                .get(&node)
                .copied()
                .ok_or(TraceError::UnknownNode {
                    pipe: pipe.id,
                    node,
                })
        };
        let ends = [at(pipe.from)?, at(pipe.to)?];
        // The pipe may join its end nodes' segments.
        for &n in &ends {
            self.touch(n);
        }
        let pi = self.pipes.len();
        self.pipe_ix.insert(pipe.id, pi);
        if let Some(t) = &mut self.table {
            t.pipe_seg.push(crate::segments::NO_SEG);
            t.pending.push((false, pipe.id));
        }
        self.pipes.push(pipe);
        self.ends.push(ends);
        self.valve_at.push([None, None]);
        for (side, &n) in ends.iter().enumerate() {
            self.adj[n].push((pi, side));
        }
        Ok(())
    }

    /// Removes a pipe, with the valves on it.
    pub(crate) fn remove_pipe(&mut self, id: Id) -> Result<(), TraceError> {
        let pi = *self.pipe_ix.get(&id).ok_or(TraceError::NoPipe(id))?;
        for side in 0..2 {
            if let Some(v) = self.valve_at[pi][side] {
                let vid = self.valves[v].id;
                self.remove_valve(vid)?;
            }
        }
        let nodes = self.nodes.len();
        self.touch(nodes + pi);
        let ends = self.ends[pi];
        for n in ends {
            self.touch(n);
        }
        for (side, &n) in ends.iter().enumerate() {
            if let Some(k) = self.adj[n].iter().position(|&e| e == (pi, side)) {
                self.adj[n].swap_remove(k);
            }
        }
        self.pipe_ix.remove(&id);
        self.pipes.swap_remove(pi);
        self.ends.swap_remove(pi);
        self.valve_at.swap_remove(pi);
        if let Some(t) = &mut self.table {
            t.pipe_seg.swap_remove(pi);
        }
        let last = self.pipes.len();
        if pi < last {
            // The last pipe moved into the gap: its end nodes list it by its new index.
            self.pipe_ix.insert(self.pipes[pi].id, pi);
            let moved = self.ends[pi];
            for (side, &n) in moved.iter().enumerate() {
                for e in self.adj[n].iter_mut().filter(|e| **e == (last, side)) {
                    *e = (pi, side);
                }
            }
        }
        Ok(())
    }

    /// Puts a valve on a pipe at one of its end nodes.
    pub(crate) fn add_valve(&mut self, v: Valve) -> Result<(), TraceError> {
        if self.valve_ix.contains_key(&v.id) {
            return Err(TraceError::Duplicate {
                what: "valve",
                id: v.id,
            });
        }
        let pi = *self.pipe_ix.get(&v.pipe).ok_or(TraceError::UnknownPipe {
            valve: v.id,
            pipe: v.pipe,
        })?;
        // The same side rule as `Network::new`: the first end that is the node.
        let side = match self.node_ix.get(&v.node) {
            Some(&n) if self.ends[pi][0] == n => 0,
            Some(&n) if self.ends[pi][1] == n => 1,
            _ => {
                return Err(TraceError::NotAtPipeEnd {
                    valve: v.id,
                    pipe: v.pipe,
                    node: v.node,
                })
            }
        };
        if let Some(first) = self.valve_at[pi][side] {
            return Err(TraceError::TwoValves {
                first: self.valves[first].id,
                second: v.id,
                pipe: v.pipe,
                node: v.node,
            });
        }
        // The valve may split the segment it sits in.
        let nodes = self.nodes.len();
        self.touch(nodes + pi);
        self.touch(self.ends[pi][side]);
        let vi = self.valves.len();
        self.valve_ix.insert(v.id, vi);
        self.valves.push(v);
        self.valve_at[pi][side] = Some(vi);
        Ok(())
    }

    /// Takes a valve off its pipe.
    pub(crate) fn remove_valve(&mut self, id: Id) -> Result<(), TraceError> {
        let vi = *self.valve_ix.get(&id).ok_or(TraceError::NoValve(id))?;
        let pi = *self
            .pipe_ix
            .get(&self.valves[vi].pipe)
            .ok_or(TraceError::NoPipe(self.valves[vi].pipe))?;
        let side = usize::from(self.valve_at[pi][0] != Some(vi));
        // Both sides' segments change: they may join, and they list the valve.
        let nodes = self.nodes.len();
        self.touch(nodes + pi);
        self.touch(self.ends[pi][side]);
        self.valve_at[pi][side] = None;
        self.valve_ix.remove(&id);
        self.valves.swap_remove(vi);
        let last = self.valves.len();
        if vi < last {
            // The last valve moved into the gap: its pipe end and its segments' boundary
            // lists name it by its new index.
            self.valve_ix.insert(self.valves[vi].id, vi);
            if let Some(&mp) = self.pipe_ix.get(&self.valves[vi].pipe) {
                for slot in self.valve_at[mp].iter_mut() {
                    if *slot == Some(last) {
                        *slot = Some(vi);
                    }
                }
            }
            self.valve_moved(last, vi);
        }
        Ok(())
    }
}
