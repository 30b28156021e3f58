//! Topology from geometry alone: pipes as polylines, nodes as points, joined by snapping
//! within a tolerance. It owns the snapping rules and the geometry report.
//!
//! Coordinates are **planar metres** (x east, y north). The caller projects geographic data
//! first (a local UTM zone or national grid); a tolerance in degrees would mean different
//! distances in x and y.
//!
//! The rules, in order (pipes and points are taken in id order, so the same input always
//! gives the same node ids, positions and pipe ids, whatever order it came in):
//! 1. **Points within the tolerance of each other** are duplicates: the one with the lowest
//!    id is kept, the others are reported and left out.
//! 2. **Pipe ends within the tolerance of each other** become one node (single linkage:
//!    a chain of ends each within the tolerance of the next is one node).
//! 3. **A point within the tolerance of a pipe end** is that node, at the point's position
//!    (the pipe ends move to it). A second point on the same node is a duplicate.
//! 4. **A point within the tolerance of a pipe's interior** (and of no end) splits the
//!    nearest such pipe there. **A node of pipe ends within the tolerance of another pipe's
//!    interior** (a tee drawn without splitting the main) splits that pipe too.
//! 5. Ends that no point names become junctions at the mean of their positions.
//!
//! Ids: points keep theirs; new junctions are numbered from one above the largest point id,
//! in the order of their first pipe end (pipes by id, start before end). A split pipe keeps
//! its id for the piece at its start; the other pieces are numbered from one above the
//! largest pipe id, in the order of (pipe id, piece).
//!
//! The report (see [`GeometryReport`]) lists dangles, near-misses, crossings without a
//! node, points on no pipe, duplicate nodes, splits, zero-length pipes and bad records.

use super::{from_attributes, AttributeReport, NodeKind, NodeRecord, PipeRecord, TopologyError};
use crate::{Id, Network};
use rstar::primitives::{GeomWithData, Line};
use rstar::{PointDistance, RTree};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A point in planar metres.
type Xy = [f64; 2];

/// A pipe drawn as a polyline in planar metres.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinePipe {
    pub id: Id,
    pub line: Vec<Xy>,
}

/// A node drawn as a point in planar metres: a valve, source, customer or junction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointNode {
    pub id: Id,
    pub at: Xy,
    pub kind: NodeKind,
}

/// The snapping tolerance in metres and how far beyond it a miss is still reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapping {
    tolerance: f64,
    near_miss: f64,
    tees: bool,
}

impl Snapping {
    /// A tolerance in metres (finite, above 0); near-misses are reported up to 10 times it.
    pub fn new(tolerance: f64) -> Result<Self, TopologyError> {
        if !(tolerance.is_finite() && tolerance > 0.0) {
            return Err(TopologyError::Tolerance(tolerance));
        }
        Ok(Snapping {
            tolerance,
            near_miss: 10.0 * tolerance,
            tees: true,
        })
    }

    /// Reports near-misses up to `factor` times the tolerance (finite, at least 1).
    pub fn with_near_miss_factor(self, factor: f64) -> Result<Self, TopologyError> {
        if !(factor.is_finite() && factor >= 1.0) {
            return Err(TopologyError::NearMissFactor(factor));
        }
        Ok(Snapping {
            near_miss: factor * self.tolerance,
            ..self
        })
    }

    /// Whether a node of pipe ends on another pipe's interior splits that pipe (rule 4's
    /// second half; on by default). Turn it off for data whose lines are drawn straight
    /// between nodes and may pass over other nodes: what it would join is then reported as
    /// a crossing.
    pub fn with_tees(self, tees: bool) -> Self {
        Snapping { tees, ..self }
    }

    /// The tolerance in metres.
    pub fn tolerance(&self) -> f64 {
        self.tolerance
    }
}

/// A node of the built network and where it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacedNode {
    pub id: Id,
    pub at: Xy,
    /// Made from pipe ends that no point named (a junction with a new id).
    pub created: bool,
}

/// A pipe of the built network, with its line moved onto its end nodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacedPipe {
    pub id: Id,
    pub from: Id,
    pub to: Id,
    pub line: Vec<Xy>,
    /// The input pipe this is a piece of, when it was split.
    pub split_from: Option<Id>,
}

/// A pipe end of degree 1 that no point names: an open end, or a missed connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dangle {
    pub node: Id,
    pub pipe: Id,
    pub at: Xy,
}

/// What a dangle nearly touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum NearTo {
    /// Another node (a pipe end or a point).
    Node(Id),
    /// A pipe that does not end at the dangle.
    Pipe(Id),
}

/// A dangle within the near-miss distance of another node or pipe, but beyond the
/// tolerance: probably a connection drawn short.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearMiss {
    /// The dangling node.
    pub node: Id,
    pub near: NearTo,
    /// In metres.
    pub distance: f64,
}

/// Two pipes whose lines meet away from a shared node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Crossing {
    /// The two pipes, lower id first.
    pub pipes: [Id; 2],
    pub at: Xy,
}

/// A point left out because another one lies within the tolerance or already names the
/// same pipe end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DuplicateNode {
    /// The point left out.
    pub node: Id,
    /// The point kept.
    pub of: Id,
    /// In metres.
    pub distance: f64,
}

/// A pipe split by nodes on its interior.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Split {
    /// The input pipe (its id stays on the first piece).
    pub pipe: Id,
    /// The nodes it was split at, from its start.
    pub at_nodes: Vec<Id>,
    /// The pieces, from its start.
    pub pieces: Vec<Id>,
}

/// What building from geometry found. Lists are sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GeometryReport {
    /// Pipes left out: fewer than two distinct vertices, or a coordinate that is not finite.
    pub bad_pipes: Vec<Id>,
    /// Points left out: a coordinate that is not finite.
    pub bad_points: Vec<Id>,
    /// Pipe ids seen more than once (the first is kept).
    pub duplicate_pipe_ids: Vec<Id>,
    /// Point ids seen more than once (the first is kept).
    pub duplicate_point_ids: Vec<Id>,
    /// Points within the tolerance of another point, or on a pipe end another point holds.
    pub duplicate_nodes: Vec<DuplicateNode>,
    /// Points within the tolerance of no pipe; they are not in the network.
    pub points_off_pipe: Vec<Id>,
    /// Pipes split by a point or a tee on their interior.
    pub splits: Vec<Split>,
    /// Pipes whose two ends snapped into one node and that are no longer than the
    /// tolerance; they are left out.
    pub zero_length: Vec<Id>,
    /// Pipe ends of degree 1 that no point names.
    pub dangles: Vec<Dangle>,
    /// Dangles near another node or pipe, beyond the tolerance.
    pub near_misses: Vec<NearMiss>,
    /// Pipes crossing away from a shared node.
    pub crossings: Vec<Crossing>,
    /// What building the network from the snapped records found (misplaced valves,
    /// self-loops).
    pub attributes: AttributeReport,
}

/// A network built from geometry, the placed nodes and pipes, and the report.
#[derive(Debug, Clone)]
pub struct GeometryTopology {
    pub network: Network,
    /// The nodes in the network, by id.
    pub nodes: Vec<PlacedNode>,
    /// The pipes in the network, by id.
    pub pipes: Vec<PlacedPipe>,
    pub report: GeometryReport,
}

/// Where a node of the result comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NodeKey {
    /// A point, by index into the kept points.
    Point(usize),
    /// A cluster of pipe ends that no point names, by cluster index.
    Cluster(usize),
}

/// A place on a pipe's interior: segment index and the fraction along it.
#[derive(Debug, Clone, Copy)]
struct SplitAt {
    seg: usize,
    t: f64,
    node: NodeKey,
}

/// Builds a network from pipe lines and point nodes by snapping, as the module
/// documentation says. Bad records go into the report; only a bad tolerance is an error.
pub fn from_geometry(
    pipes: &[LinePipe],
    points: &[PointNode],
    snapping: &Snapping,
) -> Result<GeometryTopology, TopologyError> {
    let tol = snapping.tolerance;
    let tol2 = tol * tol;
    let mut report = GeometryReport::default();

    // Pipes in id order, without bad geometry or repeated vertices.
    let mut sorted: Vec<&LinePipe> = pipes.iter().collect();
    sorted.sort_by_key(|p| p.id);
    let mut lines: Vec<(Id, Vec<Xy>)> = Vec::with_capacity(sorted.len());
    for p in sorted {
        if lines.last().is_some_and(|(id, _)| *id == p.id) {
            report.duplicate_pipe_ids.push(p.id);
            continue;
        }
        let mut line: Vec<Xy> = Vec::with_capacity(p.line.len());
        let mut finite = true;
        for &xy in &p.line {
            finite &= xy[0].is_finite() && xy[1].is_finite();
            if line.last() != Some(&xy) {
                line.push(xy);
            }
        }
        if !finite || line.len() < 2 {
            report.bad_pipes.push(p.id);
            // Keep the id taken so a duplicate after it is still reported as one.
            lines.push((p.id, Vec::new()));
            continue;
        }
        lines.push((p.id, line));
    }
    lines.retain(|(_, l)| !l.is_empty());
    report.duplicate_pipe_ids.dedup();

    // Points in id order; the first of any two within the tolerance is kept.
    let mut sorted: Vec<&PointNode> = points.iter().collect();
    sorted.sort_by_key(|p| p.id);
    let mut kept: Vec<&PointNode> = Vec::with_capacity(sorted.len());
    let mut kept_tree: RTree<GeomWithData<Xy, usize>> = RTree::new();
    let mut last_id = None;
    for p in sorted {
        if last_id == Some(p.id) {
            if report.duplicate_point_ids.last() != Some(&p.id) {
                report.duplicate_point_ids.push(p.id);
            }
            continue;
        }
        last_id = Some(p.id);
        if !(p.at[0].is_finite() && p.at[1].is_finite()) {
            report.bad_points.push(p.id);
            continue;
        }
        let near = kept_tree
            .locate_within_distance(p.at, tol2)
            .map(|g| (dist2(g.geom(), &p.at), kept[g.data].id))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        if let Some((d2, of)) = near {
            report.duplicate_nodes.push(DuplicateNode {
                node: p.id,
                of,
                distance: d2.sqrt(),
            });
            continue;
        }
        kept_tree.insert(GeomWithData::new(p.at, kept.len()));
        kept.push(p);
    }

    // Pipe ends: end 2i is pipe i's start, 2i + 1 its end. Ends within the tolerance of
    // each other are one cluster.
    let end_xy = |e: usize| -> Xy {
        let l = &lines[e / 2].1;
        [l[0], l[l.len() - 1]][e % 2]
    };
    let ends: RTree<GeomWithData<Xy, usize>> = RTree::bulk_load(
        (0..2 * lines.len())
            .map(|e| GeomWithData::new(end_xy(e), e))
            .collect(),
    );
    let mut dsu = crate::Dsu::new(2 * lines.len());
    for e in 0..2 * lines.len() {
        for other in ends.locate_within_distance(end_xy(e), tol2) {
            dsu.union(e, other.data);
        }
    }
    // Clusters numbered in order of their first end.
    let mut cluster_of_root: HashMap<usize, usize> = HashMap::new();
    let mut cluster_of_end = vec![0usize; 2 * lines.len()];
    let mut cluster_ends: Vec<Vec<usize>> = Vec::new();
    for (e, c) in cluster_of_end.iter_mut().enumerate() {
        let root = dsu.find(e);
        let next = cluster_ends.len();
        *c = *cluster_of_root.entry(root).or_insert(next);
        if *c == next {
            cluster_ends.push(Vec::new());
        }
        cluster_ends[*c].push(e);
    }

    // Points on pipe ends name their cluster; others may split a pipe.
    let mut cluster_point: Vec<Option<usize>> = vec![None; cluster_ends.len()];
    let mut on_interior: Vec<usize> = Vec::new();
    for (k, p) in kept.iter().enumerate() {
        let nearest = ends
            .locate_within_distance(p.at, tol2)
            .map(|g| (dist2(g.geom(), &p.at), g.data))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        match nearest {
            Some((_, e)) => {
                let c = cluster_of_end[e];
                match cluster_point[c] {
                    None => cluster_point[c] = Some(k),
                    Some(first) => report.duplicate_nodes.push(DuplicateNode {
                        node: p.id,
                        of: kept[first].id,
                        distance: dist2(&kept[first].at, &p.at).sqrt(),
                    }),
                }
            }
            None => on_interior.push(k),
        }
    }
    let node_xy = |key: NodeKey| -> Xy {
        match key {
            NodeKey::Point(k) => kept[k].at,
            NodeKey::Cluster(c) => match cluster_point[c] {
                Some(k) => kept[k].at,
                None => mean(cluster_ends[c].iter().map(|&e| end_xy(e))),
            },
        }
    };

    // Interior splits: points first, then clusters of ends lying on another pipe.
    let segments: RTree<GeomWithData<Line<Xy>, (usize, usize)>> = RTree::bulk_load(
        lines
            .iter()
            .enumerate()
            .flat_map(|(i, (_, l))| {
                l.windows(2)
                    .enumerate()
                    .map(move |(s, w)| GeomWithData::new(Line::new(w[0], w[1]), (i, s)))
            })
            .collect(),
    );
    let mut splits: BTreeMap<usize, Vec<SplitAt>> = BTreeMap::new();
    for k in on_interior {
        let at = kept[k].at;
        let nearest = segments
            .locate_within_distance(at, tol2)
            .map(|g| (g.geom().distance_2(&at), lines[g.data.0].0, g))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        match nearest {
            Some((_, _, g)) => {
                let (i, seg) = g.data;
                splits.entry(i).or_default().push(SplitAt {
                    seg,
                    t: fraction(g.geom(), &at),
                    node: NodeKey::Point(k),
                });
            }
            None => report.points_off_pipe.push(kept[k].id),
        }
    }
    let tee_clusters = if snapping.tees { cluster_ends.len() } else { 0 };
    for (c, members) in cluster_ends.iter().enumerate().take(tee_clusters) {
        let at = node_xy(NodeKey::Cluster(c));
        let own: HashSet<usize> = members.iter().map(|e| e / 2).collect();
        // The nearest segment of each other pipe within the tolerance.
        let mut best: BTreeMap<usize, (f64, usize, f64)> = BTreeMap::new();
        for g in segments.locate_within_distance(at, tol2) {
            let (i, seg) = g.data;
            if own.contains(&i) {
                continue;
            }
            let d2 = g.geom().distance_2(&at);
            let t = fraction(g.geom(), &at);
            let entry = best.entry(i).or_insert((d2, seg, t));
            if d2 < entry.0 {
                *entry = (d2, seg, t);
            }
        }
        for (i, (_, seg, t)) in best {
            splits.entry(i).or_default().push(SplitAt {
                seg,
                t,
                node: NodeKey::Cluster(c),
            });
        }
    }

    // Node ids: points keep theirs; clusters no point names get new ones.
    // New ids count up from one above the largest input id; refuse if that could overflow.
    let room = |max: Option<Id>, need: usize, what: &'static str| {
        let max = max.unwrap_or(0);
        let last = i64::try_from(need)
            .ok()
            .and_then(|n| n.checked_add(1))
            .and_then(|n| max.checked_add(n));
        match last {
            Some(_) => Ok(max + 1),
            None => Err(TopologyError::IdSpace(what)),
        }
    };
    let mut next_node = room(
        points.iter().map(|p| p.id).max(),
        cluster_ends.len(),
        "node",
    )?;
    let mut cluster_id: Vec<Id> = Vec::with_capacity(cluster_ends.len());
    let mut placed: BTreeMap<Id, PlacedNode> = BTreeMap::new();
    let mut records: BTreeMap<Id, NodeKind> = BTreeMap::new();
    for (c, point) in cluster_point.iter().enumerate() {
        let (id, created) = match point {
            Some(k) => (kept[*k].id, false),
            None => {
                next_node += 1;
                (next_node - 1, true)
            }
        };
        cluster_id.push(id);
        let at = node_xy(NodeKey::Cluster(c));
        placed.insert(id, PlacedNode { id, at, created });
        records.insert(
            id,
            point.map_or(NodeKind::Junction, |k| kept[k].kind.clone()),
        );
    }
    let id_of = |key: NodeKey| match key {
        NodeKey::Point(k) => kept[k].id,
        NodeKey::Cluster(c) => cluster_id[c],
    };
    for list in splits.values() {
        for s in list {
            if let NodeKey::Point(k) = s.node {
                let p = kept[k];
                placed.entry(p.id).or_insert(PlacedNode {
                    id: p.id,
                    at: p.at,
                    created: false,
                });
                records.entry(p.id).or_insert_with(|| p.kind.clone());
            }
        }
    }

    // Pieces: each pipe from its start node through its split nodes to its end node.
    let cut_count: usize = splits.values().map(Vec::len).sum();
    let mut next_pipe = room(pipes.iter().map(|p| p.id).max(), cut_count, "pipe")?;
    let mut out_pipes: Vec<PlacedPipe> = Vec::with_capacity(lines.len());
    for (i, (id, line)) in lines.iter().enumerate() {
        let start = NodeKey::Cluster(cluster_of_end[2 * i]);
        let end = NodeKey::Cluster(cluster_of_end[2 * i + 1]);
        let mut cuts = splits.remove(&i).unwrap_or_default();
        cuts.sort_by(|a, b| a.seg.cmp(&b.seg).then(a.t.total_cmp(&b.t)));
        cuts.dedup_by_key(|c| c.node);
        if cuts.is_empty() {
            out_pipes.push(placed_pipe(
                *id,
                start,
                end,
                line.clone(),
                None,
                &id_of,
                &node_xy,
            ));
            continue;
        }
        let mut split = Split {
            pipe: *id,
            at_nodes: cuts.iter().map(|c| id_of(c.node)).collect(),
            pieces: Vec::with_capacity(cuts.len() + 1),
        };
        let mut from = start;
        let mut piece = vec![line[0]];
        let mut next_vertex = 1;
        for (n, cut) in cuts.iter().enumerate() {
            piece.extend_from_slice(&line[next_vertex..=cut.seg]);
            next_vertex = cut.seg + 1;
            piece.push(node_xy(cut.node));
            let piece_id = if n == 0 {
                *id
            } else {
                next_pipe += 1;
                next_pipe - 1
            };
            split.pieces.push(piece_id);
            let drawn = std::mem::replace(&mut piece, vec![node_xy(cut.node)]);
            out_pipes.push(placed_pipe(
                piece_id,
                from,
                cut.node,
                drawn,
                Some(*id),
                &id_of,
                &node_xy,
            ));
            from = cut.node;
        }
        piece.extend_from_slice(&line[next_vertex..]);
        next_pipe += 1;
        split.pieces.push(next_pipe - 1);
        out_pipes.push(placed_pipe(
            next_pipe - 1,
            from,
            end,
            piece,
            Some(*id),
            &id_of,
            &node_xy,
        ));
        report.splits.push(split);
    }
    out_pipes.retain(|p| {
        let zero = p.from == p.to && length(&p.line) <= tol;
        if zero {
            report.zero_length.push(p.id);
        }
        !zero
    });
    out_pipes.sort_by_key(|p| p.id);

    dangles_and_near_misses(&out_pipes, &placed, snapping, &mut report);
    report.crossings = crossings(&out_pipes, tol);

    let node_records: Vec<NodeRecord> = records
        .into_iter()
        .map(|(id, kind)| NodeRecord { id, kind })
        .collect();
    let pipe_records: Vec<PipeRecord> = out_pipes
        .iter()
        .map(|p| PipeRecord {
            id: p.id,
            from: p.from,
            to: p.to,
        })
        .collect();
    let built = from_attributes(&node_records, &pipe_records)?;
    report.attributes = built.report;
    report.zero_length.sort_unstable();
    report.duplicate_nodes.sort_by_key(|d| d.node);
    report.points_off_pipe.sort_unstable();
    Ok(GeometryTopology {
        network: built.network,
        nodes: placed.into_values().collect(),
        pipes: out_pipes,
        report,
    })
}

/// A piece of pipe with its line's ends moved onto its nodes.
fn placed_pipe(
    id: Id,
    from: NodeKey,
    to: NodeKey,
    mut line: Vec<Xy>,
    split_from: Option<Id>,
    id_of: &impl Fn(NodeKey) -> Id,
    node_xy: &impl Fn(NodeKey) -> Xy,
) -> PlacedPipe {
    if let Some(first) = line.first_mut() {
        *first = node_xy(from);
    }
    if let Some(last) = line.last_mut() {
        *last = node_xy(to);
    }
    line.dedup();
    if line.len() == 1 {
        // Both ends on one point: keep it a line of two vertices.
        line.push(line[0]);
    }
    PlacedPipe {
        id,
        from: id_of(from),
        to: id_of(to),
        line,
        split_from,
    }
}

/// Dangles (created nodes of degree 1), and what each one nearly touches.
fn dangles_and_near_misses(
    pipes: &[PlacedPipe],
    nodes: &BTreeMap<Id, PlacedNode>,
    snapping: &Snapping,
    report: &mut GeometryReport,
) {
    let mut incident: HashMap<Id, Vec<Id>> = HashMap::new();
    for p in pipes {
        incident.entry(p.from).or_default().push(p.id);
        if p.to != p.from {
            incident.entry(p.to).or_default().push(p.id);
        }
    }
    let node_tree: RTree<GeomWithData<Xy, Id>> = RTree::bulk_load(
        nodes
            .values()
            .filter(|n| incident.contains_key(&n.id))
            .map(|n| GeomWithData::new(n.at, n.id))
            .collect(),
    );
    let seg_tree: RTree<GeomWithData<Line<Xy>, Id>> = RTree::bulk_load(
        pipes
            .iter()
            .flat_map(|p| {
                p.line
                    .windows(2)
                    .map(move |w| GeomWithData::new(Line::new(w[0], w[1]), p.id))
            })
            .collect(),
    );
    let near2 = snapping.near_miss * snapping.near_miss;
    for n in nodes.values().filter(|n| n.created) {
        let Some(at_pipes) = incident.get(&n.id) else {
            continue;
        };
        if at_pipes.len() != 1 {
            continue;
        }
        report.dangles.push(Dangle {
            node: n.id,
            pipe: at_pipes[0],
            at: n.at,
        });
        // What the dangle's own pipe already joins is not a miss: its far node, and the
        // pipes there (a short stub is always near the main it branches from).
        let own = at_pipes[0];
        let far = pipes
            .binary_search_by_key(&own, |p| p.id)
            .map(|i| {
                if pipes[i].from == n.id {
                    pipes[i].to
                } else {
                    pipes[i].from
                }
            })
            .unwrap_or(n.id);
        let joined: &[Id] = incident.get(&far).map_or(&[], Vec::as_slice);
        let mut near: BTreeMap<NearTo, f64> = BTreeMap::new();
        for g in node_tree.locate_within_distance(n.at, near2) {
            if g.data != n.id && g.data != far {
                near.insert(NearTo::Node(g.data), dist2(g.geom(), &n.at).sqrt());
            }
        }
        for g in seg_tree.locate_within_distance(n.at, near2) {
            if g.data == own || joined.contains(&g.data) {
                continue;
            }
            let d = g.geom().distance_2(&n.at).sqrt();
            let entry = near.entry(NearTo::Pipe(g.data)).or_insert(d);
            *entry = entry.min(d);
        }
        report
            .near_misses
            .extend(near.into_iter().map(|(near, distance)| NearMiss {
                node: n.id,
                near,
                distance,
            }));
    }
}

/// Points where two pipes' lines meet, other than at a node both pipes end at.
fn crossings(pipes: &[PlacedPipe], tol: f64) -> Vec<Crossing> {
    let tree: RTree<GeomWithData<Line<Xy>, usize>> = RTree::bulk_load(
        pipes
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                p.line
                    .windows(2)
                    .map(move |w| GeomWithData::new(Line::new(w[0], w[1]), i))
            })
            .collect(),
    );
    let tol2 = tol * tol;
    // Where two lines meet (their boxes overlap), and where an end of one lies within the
    // tolerance of the other (a touch that was not snapped; the boxes need not overlap).
    let mut meets: Vec<(usize, usize, Xy)> = Vec::new();
    for (a, b) in tree.intersection_candidates_with_other_tree(&tree) {
        if pipes[a.data].id < pipes[b.data].id {
            for at in intersection(a.geom(), b.geom()) {
                meets.push((a.data, b.data, at));
            }
        }
    }
    for (i, p) in pipes.iter().enumerate() {
        for end in [p.line[0], p.line[p.line.len() - 1]] {
            for g in tree.locate_within_distance(end, tol2) {
                if g.data != i {
                    meets.push((i, g.data, end));
                }
            }
        }
    }
    let mut found: BTreeMap<[Id; 2], Vec<Xy>> = BTreeMap::new();
    for (a, b, at) in meets {
        let (pa, pb) = if pipes[a].id < pipes[b].id {
            (&pipes[a], &pipes[b])
        } else {
            (&pipes[b], &pipes[a])
        };
        let end_of = |p: &PlacedPipe| {
            let (s, e) = (p.line[0], p.line[p.line.len() - 1]);
            if dist2(&s, &at) <= tol2 {
                Some(p.from)
            } else if dist2(&e, &at) <= tol2 {
                Some(p.to)
            } else {
                None
            }
        };
        if let (Some(na), Some(nb)) = (end_of(pa), end_of(pb)) {
            if na == nb {
                continue;
            }
        }
        let list = found.entry([pa.id, pb.id]).or_default();
        // One crossing where a line passes through a vertex of the other (two segments).
        if list.iter().all(|x| dist2(x, &at) > tol2) {
            list.push(at);
        }
    }
    found
        .into_iter()
        .flat_map(|(pipes, ats)| ats.into_iter().map(move |at| Crossing { pipes, at }))
        .collect()
}

fn dist2(a: &Xy, b: &Xy) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

fn sub(a: &Xy, b: &Xy) -> Xy {
    [a[0] - b[0], a[1] - b[1]]
}

fn cross(a: &Xy, b: &Xy) -> f64 {
    a[0] * b[1] - a[1] * b[0]
}

fn dot(a: &Xy, b: &Xy) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}

fn mean(points: impl Iterator<Item = Xy>) -> Xy {
    let (mut x, mut y, mut n) = (0.0, 0.0, 0.0);
    for p in points {
        x += p[0];
        y += p[1];
        n += 1.0;
    }
    [x / n, y / n]
}

fn length(line: &[Xy]) -> f64 {
    line.windows(2).map(|w| dist2(&w[0], &w[1]).sqrt()).sum()
}

/// Where the point nearest to `p` lies along the segment, from 0 (its start) to 1.
fn fraction(seg: &Line<Xy>, p: &Xy) -> f64 {
    let d = sub(&seg.to, &seg.from);
    let len2 = dot(&d, &d);
    if len2 == 0.0 {
        return 0.0;
    }
    (dot(&sub(p, &seg.from), &d) / len2).clamp(0.0, 1.0)
}

/// The points the two segments share: none, one, or for overlapping collinear segments the
/// two ends of the overlap.
fn intersection(a: &Line<Xy>, b: &Line<Xy>) -> Vec<Xy> {
    let r = sub(&a.to, &a.from);
    let s = sub(&b.to, &b.from);
    let qp = sub(&b.from, &a.from);
    let denom = cross(&r, &s);
    let scale = dot(&r, &r).sqrt() * dot(&s, &s).sqrt();
    if denom.abs() <= 1e-12 * scale {
        // Parallel: they meet only if collinear and overlapping.
        if cross(&qp, &r).abs() > 1e-12 * scale.max(dot(&qp, &qp)) {
            return Vec::new();
        }
        let on_a = |p: &Xy| {
            let t = dot(&sub(p, &a.from), &r);
            (0.0..=dot(&r, &r)).contains(&t)
        };
        let on_b = |p: &Xy| {
            let t = dot(&sub(p, &b.from), &s);
            (0.0..=dot(&s, &s)).contains(&t)
        };
        let mut overlap: Vec<Xy> = [b.from, b.to].into_iter().filter(|p| on_a(p)).collect();
        overlap.extend([a.from, a.to].into_iter().filter(|p| on_b(p)));
        overlap.sort_by(|p, q| p[0].total_cmp(&q[0]).then(p[1].total_cmp(&q[1])));
        overlap.dedup();
        return overlap;
    }
    let t = cross(&qp, &s) / denom;
    let u = cross(&qp, &r) / denom;
    if (0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&u) {
        vec![[a.from[0] + t * r[0], a.from[1] + t * r[1]]]
    } else {
        Vec::new()
    }
}
