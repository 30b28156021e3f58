//! The traceable networks of one street (issue 15): which pipes meet, where the valves,
//! sources and customer connections are.
//!
//! This module owns turning the pipes `network` laid for the pressurised utilities (water
//! supply, gas in two pressure tiers, heat supply and heat return) into nodes plus
//! pipelines with `from_node`/`to_node`. It works in the district frame's metres:
//!
//! 1. **Ends that meet share a node.** Consecutive segments of a run share their cut
//!    point exactly, so ends are merged by position (1 cm). Mains of one network that cross
//!    (lanes of crossing roads) are cut at the crossing and share a node there; a service
//!    or branch that starts on a main cuts the main where it starts.
//! 2. **Connectors.** A main that still ends alone is joined to the nearest main of its
//!    network within [`CONNECT_M`] by a short connector pipe with the run's attributes, if
//!    that main is not yet connected to it (lane offsets and road ends leave such gaps).
//! 3. **Valves, N-1.** Where k ≥ 3 mains meet, k−1 of them get a valve (the largest main,
//!    the one feeding the junction, goes without); every service gets one at its tee. The
//!    node where they meet carries the first valve (with `on_pipe_id`, as 3+ pipes meet
//!    there); the others sit on a stub [`STUB_M`] from it, so every valve is placeable.
//!    Every source also gets an outlet valve on each pipe leaving it.
//! 4. **Customers** at the building end of every service (water, gas, and the supply and
//!    return services of a building's heat substation), **sources** in every connected
//!    part (plants and tanks, gate stations and regulators, heat plants), more in larger
//!    parts, at the ends of mains. Once the streets are joined (`ties`), a few of them
//!    are kept for the whole network.
//! 5. **Interval valves.** Along a run of mains between junctions, a sectionalising valve
//!    wherever the main since the last valve would grow past the network's spacing
//!    ([`Net::valve_spacing_m`]): at the joint between two pipes where it is a plain joint,
//!    else on a stub, so no valve segment holds more than that much main.
//! 6. **Valve states**, seeded: a few broken or inaccessible; a few junction valves
//!    normally closed, each only where closing it leaves every part still fed (zone
//!    boundaries).

use super::geom::{self, Frame, Walk};
use super::network::{PipeInfo, StreetNet};
use geo::Coord;
use lifeline_model::{
    NetworkNode, NodeType, PipeKind, Pipeline, SourceKind, ValveCondition, ValvePosition,
};
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::{HashMap, HashSet};

/// A main that ends alone is joined to another main of its network this close, m.
const CONNECT_M: f64 = 40.0;
/// A run's end (or a service's start) this close to a main is on it, m.
const ON_MAIN_M: f64 = 1.5;
/// Cuts closer than this to a pipe's end, or to each other, are one node, m.
const MERGE_M: f64 = 0.5;
/// How far from the junction a valve on a stub sits, m.
pub(super) const STUB_M: f64 = 1.0;
/// Grid cell of the spatial lookups, m.
const CELL_M: f64 = 50.0;
/// Interval (sectionalising) valve spacing along water mains, m: the middle of the
/// 300–500 m common in urban water distribution (see [`Net::valve_spacing_m`]).
const WATER_SPACING_M: f64 = 400.0;
/// Block valve spacing along gas mains of both tiers, m: a common utility practice value
/// (gas lines are sectionalised more sparsely than water mains).
const GAS_SPACING_M: f64 = 1000.0;
/// Sectionalising valve spacing along district heating mains, m: a common utility practice
/// value for distribution mains.
const HEAT_SPACING_M: f64 = 1000.0;
/// Shares of valves broken and inaccessible, and of main valves normally closed.
pub(super) const BROKEN: f64 = 0.02;
pub(super) const INACCESSIBLE: f64 = 0.03;
const CLOSED: f64 = 0.02;

/// One traceable network of a street. Gas is split by pressure tier (the sub-high ring
/// and the medium/low distribution meet only through regulators), heat into its supply and
/// its return line: they run side by side and share no node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Net {
    Water,
    GasSubHigh,
    GasDist,
    HeatSupply,
    HeatReturn,
}

impl Net {
    pub(super) fn kind(self) -> PipeKind {
        match self {
            Net::Water => PipeKind::WaterSupply,
            Net::GasSubHigh | Net::GasDist => PipeKind::Gas,
            Net::HeatSupply | Net::HeatReturn => PipeKind::Heat,
        }
    }

    /// The most main a run of it carries between two valves, m: utilities put a
    /// sectionalising valve every so often along a main even where nothing branches off, so
    /// that a break shuts off a bounded stretch. These are common urban utility practice
    /// values, not figures of a standard (the domain reference gives none): water
    /// distribution mains every 300–500 m, here [`WATER_SPACING_M`]; gas block valves and
    /// district heating sectionalising valves farther apart, [`GAS_SPACING_M`] and
    /// [`HEAT_SPACING_M`].
    pub(super) fn valve_spacing_m(self) -> f64 {
        match self {
            Net::Water => WATER_SPACING_M,
            Net::GasSubHigh | Net::GasDist => GAS_SPACING_M,
            Net::HeatSupply | Net::HeatReturn => HEAT_SPACING_M,
        }
    }

    /// Pipe km one source feeds: a part this long or longer gets another.
    fn km_per_source(self) -> f64 {
        match self {
            Net::Water => 25.0,
            Net::GasSubHigh | Net::GasDist => 40.0,
            Net::HeatSupply | Net::HeatReturn => f64::INFINITY,
        }
    }

    /// What the `nth` source of a part is; `main` marks the largest part of the street.
    fn source_kind(self, nth: usize, main: bool, rng: &mut impl Rng) -> SourceKind {
        match (self, nth) {
            // A street's main water part is fed from a plant or a service reservoir
            // (Chongqing's hills make reservoirs common); the others from tanks.
            (Net::Water, 0) if main => {
                if rng.gen_bool(0.3) {
                    SourceKind::WaterPlant
                } else {
                    SourceKind::Reservoir
                }
            }
            (Net::Water, _) => SourceKind::Tank,
            (Net::GasSubHigh, 0) => SourceKind::GateStation,
            (Net::GasSubHigh | Net::GasDist, _) => SourceKind::Regulator,
            (Net::HeatSupply | Net::HeatReturn, 0) => SourceKind::HeatPlant,
            (Net::HeatSupply | Net::HeatReturn, _) => SourceKind::CirculationPump,
        }
    }
}

/// A node of a street, before ids: `on_pipe` is the index of a pipe of the street.
pub(super) struct LocalNode {
    pub node: NetworkNode,
    pub on_pipe: Option<usize>,
}

/// What [`build`] adds to a street.
#[derive(Default)]
pub(super) struct StreetNodes {
    pub nodes: Vec<LocalNode>,
    /// Each pipe's end nodes (indices into `nodes`), for the pipes of a network.
    pub ends: Vec<Option<[usize; 2]>>,
    /// Pipes in a part with no source, as the valves stand.
    pub unfed_pipes: usize,
}

/// Union-find over node slots, joining towards the smaller index (deterministic).
struct Dsu(Vec<usize>);

impl Dsu {
    fn add(&mut self) -> usize {
        self.0.push(self.0.len());
        self.0.len() - 1
    }
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            let (lo, hi) = (a.min(b), a.max(b));
            self.0[hi] = lo;
        }
    }
}

/// Node slots: points that may turn out to be the same node.
struct Slots {
    pts: Vec<Coord<f64>>,
    dsu: Dsu,
}

impl Slots {
    fn add(&mut self, p: Coord<f64>) -> usize {
        self.pts.push(p);
        self.dsu.add()
    }
}

/// Grid of the mains of each network, for nearest-pipe and crossing lookups.
struct Grid(HashMap<(Net, i64, i64), Vec<usize>>);

impl Grid {
    fn cell(v: f64) -> i64 {
        (v / CELL_M).floor() as i64
    }
    fn insert(&mut self, net: Net, line: &[Coord<f64>], i: usize) {
        let (min, max) = bounds(line);
        for x in Self::cell(min.x)..=Self::cell(max.x) {
            for y in Self::cell(min.y)..=Self::cell(max.y) {
                self.0.entry((net, x, y)).or_default().push(i);
            }
        }
    }
    /// Pipes whose cells come within `r` of `p`, sorted, each once.
    fn near(&self, net: Net, p: Coord<f64>, r: f64) -> Vec<usize> {
        let mut out = Vec::new();
        for x in Self::cell(p.x - r)..=Self::cell(p.x + r) {
            for y in Self::cell(p.y - r)..=Self::cell(p.y + r) {
                if let Some(v) = self.0.get(&(net, x, y)) {
                    out.extend_from_slice(v);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn bounds(line: &[Coord<f64>]) -> (Coord<f64>, Coord<f64>) {
    let mut min = Coord {
        x: f64::MAX,
        y: f64::MAX,
    };
    let mut max = Coord {
        x: f64::MIN,
        y: f64::MIN,
    };
    for c in line {
        min.x = min.x.min(c.x);
        min.y = min.y.min(c.y);
        max.x = max.x.max(c.x);
        max.y = max.y.max(c.y);
    }
    (min, max)
}

/// The nearest point of a polyline to `p`: (distance, distance along, point).
fn nearest_on(line: &[Coord<f64>], p: Coord<f64>) -> (f64, f64, Coord<f64>) {
    let mut best = (f64::MAX, 0.0, p);
    let mut along = 0.0;
    for w in line.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 {
            (((p.x - a.x) * dx + (p.y - a.y) * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let q = Coord {
            x: a.x + t * dx,
            y: a.y + t * dy,
        };
        let d = geom::dist(p, q);
        if d < best.0 {
            best = (d, along + t * len2.sqrt(), q);
        }
        along += len2.sqrt();
    }
    best
}

/// Where two polylines cross: (distance along `a`, distance along `b`, point).
fn crossings(a: &[Coord<f64>], b: &[Coord<f64>]) -> Vec<(f64, f64, Coord<f64>)> {
    let mut out = Vec::new();
    let mut sa = 0.0;
    for wa in a.windows(2) {
        let (p, r) = (
            wa[0],
            Coord {
                x: wa[1].x - wa[0].x,
                y: wa[1].y - wa[0].y,
            },
        );
        let la = r.x.hypot(r.y);
        let mut sb = 0.0;
        for wb in b.windows(2) {
            let (q, s) = (
                wb[0],
                Coord {
                    x: wb[1].x - wb[0].x,
                    y: wb[1].y - wb[0].y,
                },
            );
            let lb = s.x.hypot(s.y);
            let den = r.x * s.y - r.y * s.x;
            if den.abs() > 1e-9 * la * lb {
                let (qx, qy) = (q.x - p.x, q.y - p.y);
                let t = (qx * s.y - qy * s.x) / den;
                let u = (qx * r.y - qy * r.x) / den;
                if (0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&u) {
                    out.push((
                        sa + t * la,
                        sb + u * lb,
                        Coord {
                            x: p.x + t * r.x,
                            y: p.y + t * r.y,
                        },
                    ));
                }
            }
            sb += lb;
        }
        sa += la;
    }
    out
}

/// A pipe of the result: where it comes from and which part of it it is.
struct Piece {
    /// Index of the pipe laid by `network` it is part of (its attributes).
    src: usize,
    line: Vec<Coord<f64>>,
    /// Fractions of the source pipe's length at its ends (for depths).
    f: (f64, f64),
    /// End slots, for the pipes of a network.
    ends: Option<[usize; 2]>,
}

/// Builds the nodes of a street's networks, replacing its pipes by the pieces they are cut
/// into (and the connectors and valve stubs added), in a deterministic order: each laid
/// pipe's pieces where it was, connectors and stubs after.
pub(super) fn build(net: &mut StreetNet, frame: &Frame, rng: &mut impl Rng) -> StreetNodes {
    let n = net.pipes.len();
    let is_service = |i: usize| net.info[i].role.is_service();
    let mut slots = Slots {
        pts: Vec::new(),
        dsu: Dsu(Vec::new()),
    };
    // 1. End slots, merged by position.
    let key = |net: Net, c: Coord<f64>| {
        (
            net,
            (c.x * 100.0).round() as i64,
            (c.y * 100.0).round() as i64,
        )
    };
    let mut by_pos: HashMap<(Net, i64, i64), usize> = HashMap::new();
    let mut end_slot: Vec<Option<[usize; 2]>> = vec![None; n];
    let mut grid = Grid(HashMap::new());
    for (i, (nt, es)) in net.nets.iter().zip(end_slot.iter_mut()).enumerate() {
        let Some(nt) = *nt else { continue };
        let line = &net.lines[i];
        let (a, b) = (line[0], line[line.len() - 1]);
        let mut slot = |c: Coord<f64>| *by_pos.entry(key(nt, c)).or_insert_with(|| slots.add(c));
        *es = Some([slot(a), slot(b)]);
        if !is_service(i) {
            grid.insert(nt, line, i);
        }
    }
    let mut cuts: Vec<Vec<(f64, usize)>> = vec![Vec::new(); n];
    // 2. Crossings of mains of one network.
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for v in grid.0.values() {
        for (k, &a) in v.iter().enumerate() {
            for &b in &v[k + 1..] {
                pairs.push((a.min(b), a.max(b)));
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    for (a, b) in pairs {
        let (la, lb) = (&net.lines[a], &net.lines[b]);
        let (lena, lenb) = (geom::length(la), geom::length(lb));
        for (da, db, p) in crossings(la, lb) {
            let at_end = |d: f64, len: f64| d < MERGE_M || d > len - MERGE_M;
            if at_end(da, lena) && at_end(db, lenb) {
                // Ends that meet; merged by position, or close enough to join below.
                if let (Some(ea), Some(eb)) = (end_slot[a], end_slot[b]) {
                    let sa = ea[usize::from(da > lena / 2.0)];
                    let sb = eb[usize::from(db > lenb / 2.0)];
                    slots.dsu.union(sa, sb);
                }
                continue;
            }
            let s = slots.add(p);
            cuts[a].push((da, s));
            cuts[b].push((db, s));
        }
    }
    // Cuts at a pipe's end join that end.
    let settle = |cuts: &mut Vec<Vec<(f64, usize)>>, slots: &mut Slots, i: usize| {
        let Some([s0, s1]) = end_slot[i] else { return };
        let len = geom::length(&net.lines[i]);
        cuts[i].retain(|&(d, s)| {
            if d < MERGE_M {
                slots.dsu.union(s, s0);
                false
            } else if d > len - MERGE_M {
                slots.dsu.union(s, s1);
                false
            } else {
                true
            }
        });
    };
    for i in 0..n {
        settle(&mut cuts, &mut slots, i);
    }
    // 3. Starts of services and loose ends of mains that lie on a main.
    let degree = |slots: &mut Slots, cuts: &[Vec<(f64, usize)>]| {
        let mut deg: HashMap<usize, usize> = HashMap::new();
        for i in 0..n {
            if let Some(e) = end_slot[i] {
                for s in e {
                    *deg.entry(slots.dsu.find(s)).or_default() += 1;
                }
            }
            for &(_, s) in &cuts[i] {
                *deg.entry(slots.dsu.find(s)).or_default() += 2;
            }
        }
        deg
    };
    let deg = degree(&mut slots, &cuts);
    let mut loose: Vec<(usize, usize)> = Vec::new();
    for (i, (nt, e)) in net.nets.iter().zip(&end_slot).enumerate() {
        let (Some(nt), Some(e)) = (*nt, *e) else {
            continue;
        };
        let sides: &[usize] = if is_service(i) { &[0] } else { &[0, 1] };
        for &side in sides {
            let root = slots.dsu.find(e[side]);
            if !is_service(i) && deg.get(&root).copied().unwrap_or(0) > 1 {
                continue;
            }
            let line = &net.lines[i];
            let p = if side == 0 {
                line[0]
            } else {
                line[line.len() - 1]
            };
            let hit = grid
                .near(nt, p, ON_MAIN_M)
                .into_iter()
                .filter(|&j| j != i)
                .map(|j| (nearest_on(&net.lines[j], p), j))
                .filter(|((d, _, _), _)| *d <= ON_MAIN_M)
                .min_by(|a, b| a.0 .0.total_cmp(&b.0 .0));
            match hit {
                Some(((_, along, _), j)) => {
                    cuts[j].push((along, e[side]));
                    settle(&mut cuts, &mut slots, j);
                }
                None if !is_service(i) => loose.push((i, side)),
                None => {}
            }
        }
    }
    // 4. Connectors between parts that lane offsets and road ends keep apart.
    let mut comp = Dsu((0..slots.pts.len()).collect());
    let link = |comp: &mut Dsu, slots: &mut Slots, cuts: &[Vec<(f64, usize)>]| {
        for i in 0..n {
            if let Some([a, b]) = end_slot[i] {
                let (a, b) = (slots.dsu.find(a), slots.dsu.find(b));
                comp.union(a, b);
                for &(_, s) in &cuts[i] {
                    let s = slots.dsu.find(s);
                    comp.union(a, s);
                }
            }
        }
    };
    link(&mut comp, &mut slots, &cuts);
    let mut connectors: Vec<Piece> = Vec::new();
    for (i, side) in loose {
        let (Some(nt), Some(e)) = (net.nets[i], end_slot[i]) else {
            continue;
        };
        let line = &net.lines[i];
        let p = if side == 0 {
            line[0]
        } else {
            line[line.len() - 1]
        };
        let here = {
            let r = slots.dsu.find(e[side]);
            comp.find(r)
        };
        let mut best: Option<(f64, f64, Coord<f64>, usize)> = None;
        for j in grid.near(nt, p, CONNECT_M) {
            let (Some(ej), true) = (end_slot[j], j != i) else {
                continue;
            };
            let rj = slots.dsu.find(ej[0]);
            if comp.find(rj) == here {
                continue;
            }
            let (d, along, q) = nearest_on(&net.lines[j], p);
            if d <= CONNECT_M && best.is_none_or(|b| d < b.0) {
                best = Some((d, along, q, j));
            }
        }
        let Some((_, along, q, j)) = best else {
            continue;
        };
        let s = slots.add(q);
        comp.0.push(s);
        cuts[j].push((along, s));
        settle(&mut cuts, &mut slots, j);
        let rs = slots.dsu.find(s);
        comp.union(here, rs);
        let rj = slots.dsu.find(e[side]);
        comp.union(rj, rs);
        let rt = end_slot[j].map(|e| slots.dsu.find(e[0])).unwrap_or(rs);
        comp.union(rs, rt);
        connectors.push(Piece {
            src: i,
            line: vec![p, q],
            f: (
                if side == 0 { 0.0 } else { 1.0 },
                if side == 0 { 0.0 } else { 1.0 },
            ),
            ends: Some([e[side], s]),
        });
    }
    // 5. Cut pipes into pieces.
    let mut pieces: Vec<Piece> = Vec::with_capacity(n + connectors.len());
    for i in 0..n {
        let line = &net.lines[i];
        let Some([s0, s1]) = end_slot[i] else {
            pieces.push(Piece {
                src: i,
                line: line.clone(),
                f: (0.0, 1.0),
                ends: None,
            });
            continue;
        };
        let walk = Walk::new(line);
        let len = walk.len();
        let mut cs = std::mem::take(&mut cuts[i]);
        cs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut marks: Vec<(f64, usize)> = vec![(0.0, s0)];
        for (d, s) in cs {
            let last = marks[marks.len() - 1];
            if d - last.0 < MERGE_M {
                slots.dsu.union(s, last.1);
            } else {
                marks.push((d, s));
            }
        }
        let last = marks[marks.len() - 1];
        if marks.len() > 1 && len - last.0 < MERGE_M {
            slots.dsu.union(last.1, s1);
            marks.pop();
        }
        marks.push((len, s1));
        for w in marks.windows(2) {
            pieces.push(Piece {
                src: i,
                line: walk.slice(w[0].0, w[1].0),
                f: (w[0].0 / len.max(1e-9), w[1].0 / len.max(1e-9)),
                ends: Some([w[0].1, w[1].1]),
            });
        }
    }
    pieces.append(&mut connectors);
    // 6. Nodes: one per slot root, in order of first use; pipe ends moved onto them.
    let mut pieces: Vec<Piece> = pieces
        .into_iter()
        .filter(|pc| {
            // A piece whose ends became one node joins nothing: left out.
            pc.ends.is_none_or(|[a, b]| {
                slots.dsu.find(a) != slots.dsu.find(b) || geom::length(&pc.line) >= 5.0
            })
        })
        .collect();
    let mut node_of: HashMap<usize, usize> = HashMap::new();
    let mut nodes: Vec<LocalNode> = Vec::new();
    let mut piece_ends: Vec<Option<[usize; 2]>> = Vec::with_capacity(pieces.len());
    for pc in &mut pieces {
        let Some([a, b]) = pc.ends else {
            piece_ends.push(None);
            continue;
        };
        let kind = net.nets[pc.src].map_or(PipeKind::WaterSupply, Net::kind);
        let (ra, rb) = (slots.dsu.find(a), slots.dsu.find(b));
        let mut node = |r: usize| {
            *node_of.entry(r).or_insert_with(|| {
                nodes.push(LocalNode {
                    node: NetworkNode::new(0, kind, NodeType::Junction, slots.pts[r].into()),
                    on_pipe: None,
                });
                nodes.len() - 1
            })
        };
        let na = node(ra);
        let last = pc.line.len() - 1;
        pc.line[0] = slots.pts[ra];
        let nb = if ra == rb {
            // Both ends merged into one node (a longer piece between two close cuts): its
            // far end stays a node of its own rather than a loop.
            nodes.push(LocalNode {
                node: NetworkNode::new(0, kind, NodeType::Junction, pc.line[last].into()),
                on_pipe: None,
            });
            nodes.len() - 1
        } else {
            pc.line[last] = slots.pts[rb];
            node(rb)
        };
        piece_ends.push(Some([na, nb]));
    }
    // 7. Valves: N-1 at junctions of mains, one on each service at its tee.
    let mut inc: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (k, e) in piece_ends.iter().enumerate() {
        if let Some([a, b]) = e {
            inc[*a].push(k);
            if b != a {
                inc[*b].push(k);
            }
        }
    }
    let service_piece = |k: usize, pieces: &[Piece]| is_service(pieces[k].src);
    let mut valves: Vec<usize> = Vec::new();
    let mut main_valves: Vec<usize> = Vec::new();
    for j in 0..nodes.len() {
        let mains: Vec<usize> = inc[j]
            .iter()
            .copied()
            .filter(|&k| !service_piece(k, &pieces))
            .collect();
        let mut need: Vec<(usize, bool)> = inc[j]
            .iter()
            .copied()
            .filter(|&k| service_piece(k, &pieces) && piece_ends[k].is_some_and(|e| e[0] == j))
            .map(|k| (k, false))
            .collect();
        if mains.len() >= 3 {
            let size = |k: usize| net.info[pieces[k].src].size_mm;
            let feed = mains
                .iter()
                .copied()
                .max_by(|&a, &b| size(a).total_cmp(&size(b)).then(b.cmp(&a)));
            need.extend(
                mains
                    .iter()
                    .filter(|&&k| Some(k) != feed)
                    .map(|&k| (k, true)),
            );
        }
        for (t, &(k, main)) in need.iter().enumerate() {
            let v = if t == 0 {
                nodes[j].on_pipe = Some(k);
                j
            } else {
                match stub(&mut pieces, &mut piece_ends, &mut nodes, k, j) {
                    Some(v) => v,
                    None => continue,
                }
            };
            nodes[v].node.node_type = NodeType::Valve;
            valves.push(v);
            if main {
                main_valves.push(v);
            }
        }
    }
    let mut node_net: Vec<Option<Net>> = vec![None; nodes.len()];
    for (pc, e) in pieces.iter().zip(&piece_ends) {
        if let Some(e) = e {
            for x in e {
                node_net[*x] = net.nets[pc.src];
            }
        }
    }
    // Incidence after the stubs.
    let mut deg = vec![0usize; nodes.len()];
    let mut main_deg = vec![0usize; nodes.len()];
    for (k, e) in piece_ends.iter().enumerate() {
        if let Some(e) = e {
            for x in e {
                deg[*x] += 1;
                if !service_piece(k, &pieces) {
                    main_deg[*x] += 1;
                }
            }
        }
    }
    // 8. Customers at the building end of services. A building's heat substation takes a
    // supply and a return service (laid one after the other): it is a customer connection
    // on both lines, with one count, since cutting either stops its heat.
    let mut count_of_src: HashMap<usize, i32> = HashMap::new();
    for (k, e) in piece_ends.iter().enumerate() {
        if let (Some([_, b]), true) = (e, service_piece(k, &pieces)) {
            let b = *b;
            if deg[b] == 1 && nodes[b].node.node_type == NodeType::Junction {
                let src = pieces[k].src;
                let twin = (net.nets[src] == Some(Net::HeatReturn))
                    .then(|| src.checked_sub(1).and_then(|s| count_of_src.get(&s)))
                    .flatten();
                let count = match twin {
                    Some(&c) => c,
                    None => customers(rng),
                };
                count_of_src.insert(src, count);
                nodes[b].node.node_type = NodeType::Customer;
                nodes[b].node.customers = Some(count);
            }
        }
    }
    // 9. Sources: every connected part of a network gets one, larger parts more.
    let mut parts = Dsu((0..nodes.len()).collect());
    for e in piece_ends.iter().flatten() {
        parts.union(e[0], e[1]);
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (v, nt) in node_net.iter().enumerate() {
        if nt.is_some() {
            let r = parts.find(v);
            members[r].push(v);
        }
    }
    let mut part_km = vec![0.0; nodes.len()];
    for (pc, e) in pieces.iter().zip(&piece_ends) {
        if let Some(e) = e {
            let r = parts.find(e[0]);
            part_km[r] += geom::length(&pc.line) / 1000.0;
        }
    }
    let mut outlets: Vec<usize> = Vec::new();
    let mut largest: HashMap<Net, usize> = HashMap::new();
    for r in 0..nodes.len() {
        if let (Some(nt), false) = (node_net[r], members[r].is_empty()) {
            let e = largest.entry(nt).or_insert(r);
            if part_km[r] > part_km[*e] {
                *e = r;
            }
        }
    }
    for r in 0..nodes.len() {
        let Some(nt) = node_net[r] else { continue };
        if members[r].is_empty() {
            continue;
        }
        let pt = |v: usize| Coord::from(nodes[v].node.geometry);
        let candidates = |pred: &dyn Fn(usize) -> bool| -> Vec<usize> {
            members[r].iter().copied().filter(|&v| pred(v)).collect()
        };
        let junction = |v: usize| nodes[v].node.node_type == NodeType::Junction;
        let mut cand = candidates(&|v| junction(v) && main_deg[v] == 1 && deg[v] == 1);
        if cand.is_empty() {
            cand = candidates(&|v| junction(v));
        }
        if cand.is_empty() {
            cand = candidates(&|v| nodes[v].node.node_type != NodeType::Customer);
        }
        if cand.is_empty() {
            cand = members[r].clone();
        }
        let want = (1 + (part_km[r] / nt.km_per_source()).floor() as usize).min(cand.len());
        let mut chosen: Vec<usize> = Vec::new();
        if let Some(&first) = cand.choose(rng) {
            chosen.push(first);
        }
        while chosen.len() < want {
            // The candidate farthest from the sources so far spreads them over the part.
            let far = cand
                .iter()
                .copied()
                .filter(|v| !chosen.contains(v))
                .max_by(|&a, &b| {
                    let d = |v: usize| {
                        chosen
                            .iter()
                            .map(|&c| geom::dist(pt(v), pt(c)))
                            .fold(f64::MAX, f64::min)
                    };
                    d(a).total_cmp(&d(b)).then(b.cmp(&a))
                });
            match far {
                Some(v) => chosen.push(v),
                None => break,
            }
        }
        let main = largest.get(&nt) == Some(&r);
        for (nth, v) in chosen.into_iter().enumerate() {
            let nd = &mut nodes[v];
            if nd.node.node_type == NodeType::Valve {
                valves.retain(|&x| x != v);
                main_valves.retain(|&x| x != v);
            }
            nd.node.node_type = NodeType::Source;
            nd.node.customers = None;
            nd.on_pipe = None;
            nd.node.source_kind = Some(nt.source_kind(nth, main, rng));
            outlets.push(v);
        }
    }
    // Every source has a valve on each pipe leaving it (the outlet valve at the plant).
    let mut at_source: HashMap<usize, Vec<usize>> = HashMap::new();
    for (k, e) in piece_ends.iter().enumerate() {
        for &x in e.iter().flatten() {
            if nodes[x].node.node_type == NodeType::Source {
                at_source.entry(x).or_default().push(k);
            }
        }
    }
    for v in outlets {
        for &k in at_source.get(&v).map_or(&[][..], |ks| ks.as_slice()) {
            if let Some(valve) = stub(&mut pieces, &mut piece_ends, &mut nodes, k, v) {
                valves.push(valve);
            }
        }
    }
    // 10. Interval valves along runs of mains, so no segment holds more than the spacing.
    valves.extend(interval_valves(
        &mut pieces,
        &mut piece_ends,
        &mut nodes,
        &|src| is_service(src),
        &net.nets,
    ));
    // 11. Valve states.
    for &v in &valves {
        let r: f64 = rng.gen();
        nodes[v].node.valve_condition = if r < BROKEN {
            Some(ValveCondition::Broken)
        } else if r < BROKEN + INACCESSIBLE {
            Some(ValveCondition::Inaccessible)
        } else {
            None
        };
    }
    let target = (main_valves.len() as f64 * CLOSED).round() as usize;
    let mut order = main_valves.clone();
    order.shuffle(rng);
    let mut closed: HashSet<usize> = HashSet::new();
    for &v in order.iter().take(4 * target) {
        if closed.len() >= target {
            break;
        }
        closed.insert(v);
        if unfed(&nodes, &piece_ends, &closed) > 0 {
            closed.remove(&v);
        }
    }
    for &v in &closed {
        nodes[v].node.valve_position = Some(ValvePosition::Closed);
    }
    let unfed_pipes = unfed(&nodes, &piece_ends, &closed);
    // 12. Replace the street's pipes.
    let mut pipes = Vec::with_capacity(pieces.len());
    let mut info = Vec::with_capacity(pieces.len());
    let mut lines = Vec::with_capacity(pieces.len());
    let mut nets = Vec::with_capacity(pieces.len());
    for pc in pieces {
        let (p, i) = piece_pipe(&net.pipes[pc.src], &net.info[pc.src], &pc, frame);
        pipes.push(p);
        info.push(i);
        nets.push(net.nets[pc.src]);
        lines.push(pc.line);
    }
    net.pipes = pipes;
    net.info = info;
    // Nodes were placed in metres.
    for n in &mut nodes {
        n.node.geometry = frame.to_ll(n.node.geometry.into()).into();
    }
    net.lines = lines;
    net.nets = nets;
    StreetNodes {
        nodes,
        ends: piece_ends,
        unfed_pipes,
    }
}

/// Cuts a stub [`STUB_M`] long off piece `k` at its end `j`, with a new node there that
/// becomes a valve on the stub (`on_pipe`). The rest of the piece keeps its place; the stub
/// goes to the end. Returns the new node.
fn stub(
    pieces: &mut Vec<Piece>,
    piece_ends: &mut Vec<Option<[usize; 2]>>,
    nodes: &mut Vec<LocalNode>,
    k: usize,
    j: usize,
) -> Option<usize> {
    let [a, b] = piece_ends[k]?;
    let pc = &pieces[k];
    let at_start = a == j;
    let walk = Walk::new(&pc.line);
    let len = walk.len();
    let d = STUB_M.min(len / 2.0);
    let cut = if at_start { d } else { len - d };
    let (p, _) = walk.at(cut);
    let (near, far) = if at_start {
        (walk.slice(0.0, cut), walk.slice(cut, len))
    } else {
        (walk.slice(cut, len), walk.slice(0.0, cut))
    };
    let (src, f) = (pc.src, pc.f);
    let fcut = f.0 + (f.1 - f.0) * cut / len.max(1e-9);
    let v = nodes.len();
    nodes.push(LocalNode {
        node: NetworkNode::new(0, nodes[j].node.kind, NodeType::Valve, p.into()),
        on_pipe: Some(pieces.len()),
    });
    let (keep_f, stub_f, keep_ends, stub_ends) = if at_start {
        ((fcut, f.1), (f.0, fcut), [v, b], [j, v])
    } else {
        ((f.0, fcut), (fcut, f.1), [a, v], [v, j])
    };
    pieces[k].line = far;
    pieces[k].f = keep_f;
    piece_ends[k] = Some(keep_ends);
    pieces.push(Piece {
        src,
        line: near,
        f: stub_f,
        ends: None,
    });
    piece_ends.push(Some(stub_ends));
    Some(v)
}

/// Places sectionalising valves along the runs of mains: walking each run from a node
/// where it stops (an end, a junction of three or more mains, a source, a valve on a
/// main), a valve goes at the joint before the pipe that would take the main since the
/// last valve past its network's spacing. At a plain joint (two pipes, no service) the
/// joint itself becomes the valve, on the pipe ahead; anywhere else (a service's tee) the
/// pipe ahead gets a stub with the valve. Runs that are closed loops are walked from their
/// first node. `service` says whether a laid pipe is a service; `nets` gives each laid
/// pipe's network. Returns the new valves.
fn interval_valves(
    pieces: &mut Vec<Piece>,
    piece_ends: &mut Vec<Option<[usize; 2]>>,
    nodes: &mut Vec<LocalNode>,
    service: &dyn Fn(usize) -> bool,
    nets: &[Option<Net>],
) -> Vec<usize> {
    let is_main =
        |pieces: &[Piece], k: usize| !service(pieces[k].src) && nets[pieces[k].src].is_some();
    // Main pipes at each node, and every pipe's count (a joint with a service is a tee).
    let mut mains: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut deg = vec![0usize; nodes.len()];
    for (k, e) in piece_ends.iter().enumerate() {
        let Some([a, b]) = *e else { continue };
        for x in [a, b].into_iter().take(if a == b { 1 } else { 2 }) {
            deg[x] += 1;
            if is_main(pieces, k) {
                mains[x].push(k);
            }
        }
    }
    let stops = |nodes: &[LocalNode], mains: &[Vec<usize>], pieces: &[Piece], v: usize| {
        let n = &nodes[v];
        mains[v].len() != 2
            || n.node.node_type == NodeType::Source
            || (n.node.node_type == NodeType::Valve
                && n.on_pipe.is_some_and(|k| is_main(pieces, k)))
    };
    let mut seen = vec![false; pieces.len()];
    let mut added = Vec::new();
    let first: Vec<usize> = (0..nodes.len())
        .filter(|&v| stops(nodes, &mains, pieces, v))
        .collect();
    // Stops first; then any node, which only finds runs that are loops without a stop.
    for start in first.into_iter().chain(0..nodes.len()) {
        for t in 0..mains[start].len() {
            let k0 = mains[start][t];
            if seen[k0] {
                continue;
            }
            let Some(spacing) = nets[pieces[k0].src].map(Net::valve_spacing_m) else {
                continue;
            };
            let (mut at, mut k, mut run) = (start, k0, 0.0);
            loop {
                seen[k] = true;
                run += geom::length(&pieces[k].line);
                let Some([a, b]) = piece_ends[k] else { break };
                let next = if a == at { b } else { a };
                if next == start || stops(nodes, &mains, pieces, next) {
                    break;
                }
                let Some(&ahead) = mains[next].iter().find(|&&x| x != k) else {
                    break;
                };
                if seen[ahead] {
                    break;
                }
                if run + geom::length(&pieces[ahead].line) > spacing {
                    if deg[next] == 2 && nodes[next].node.node_type == NodeType::Junction {
                        nodes[next].node.node_type = NodeType::Valve;
                        nodes[next].on_pipe = Some(ahead);
                        added.push(next);
                        run = 0.0;
                    } else if let Some(v) = stub(pieces, piece_ends, nodes, ahead, next) {
                        // The 1 m stub stays with this run (its valve is at its far end);
                        // the pipe ahead now starts at the valve.
                        let s = pieces.len() - 1;
                        seen.push(true);
                        for x in mains[next].iter_mut().filter(|x| **x == ahead) {
                            *x = s;
                        }
                        mains.push(vec![s, ahead]);
                        deg.push(2);
                        added.push(v);
                        (at, k, run) = (v, ahead, 0.0);
                        continue;
                    }
                }
                (at, k) = (next, ahead);
            }
        }
    }
    added
}

/// Pipes in a part with no source when the `closed` valves are shut.
fn unfed(nodes: &[LocalNode], ends: &[Option<[usize; 2]>], closed: &HashSet<usize>) -> usize {
    // Elements: nodes, then pipes; a closed valve cuts its pipe from its node.
    let nn = nodes.len();
    let mut d = Dsu((0..nn + ends.len()).collect());
    for (k, e) in ends.iter().enumerate() {
        let Some(e) = e else { continue };
        for &x in e {
            let cut = closed.contains(&x) && nodes[x].on_pipe == Some(k);
            if !cut {
                d.union(x, nn + k);
            }
        }
    }
    let fed: HashSet<usize> = (0..nn)
        .filter(|&v| nodes[v].node.node_type == NodeType::Source)
        .map(|v| d.find(v))
        .collect();
    (0..ends.len())
        .filter(|&k| ends[k].is_some() && !fed.contains(&d.find(nn + k)))
        .count()
}

/// Customers one service connection serves: shops and houses, small blocks, the
/// 18–33-storey towers that dominate Chongqing's housing, and a few large estates.
fn customers(rng: &mut impl Rng) -> i32 {
    let r: f64 = rng.gen();
    if r < 0.15 {
        1
    } else if r < 0.35 {
        rng.gen_range(2..=12)
    } else if r < 0.75 {
        rng.gen_range(13..=72)
    } else if r < 0.97 {
        rng.gen_range(73..=264)
    } else {
        rng.gen_range(265..=800)
    }
}

/// The pipeline record of a piece: its source pipe's attributes, its own geometry and
/// depths interpolated along the source pipe.
fn piece_pipe(src: &Pipeline, info: &PipeInfo, pc: &Piece, frame: &Frame) -> (Pipeline, PipeInfo) {
    let len = geom::length(&pc.line);
    if pc.ends.is_none() && pc.f == (0.0, 1.0) && (info.len_m - len).abs() < 1e-9 {
        return (src.clone(), info.clone());
    }
    let lerp = |a: Option<f64>, b: Option<f64>, f: f64| match (a, b) {
        (Some(a), Some(b)) => Some(((a + (b - a) * f) * 100.0).round() / 100.0),
        _ => None,
    };
    let mut p = src.clone();
    p.depth_start_m = lerp(src.depth_start_m, src.depth_end_m, pc.f.0);
    p.depth_end_m = lerp(src.depth_start_m, src.depth_end_m, pc.f.1);
    p.invert_start_m = lerp(src.invert_start_m, src.invert_end_m, pc.f.0);
    p.invert_end_m = lerp(src.invert_start_m, src.invert_end_m, pc.f.1);
    p.geometry = frame.line_to_ll(&pc.line);
    let mut i = info.clone();
    i.a = pc.line[0];
    i.b = pc.line[pc.line.len() - 1];
    i.len_m = len;
    (p, i)
}

#[cfg(test)]
mod tests {
    use crate::{generate, GenerateOptions, Preset};
    use lifeline_model::{
        check, Catalog, Dataset, GasPressure, Layer, NetworkNode, NodeType, PipeKind, Pipeline,
    };
    use lifeline_trace::{service::network_of, Scenario};
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::{BTreeMap, HashMap, HashSet};

    use super::Net;
    use crate::ties::MAX_CUSTOMERS_ONE_FEED;

    /// The kinds the generator builds as traceable networks.
    const TRACED: [PipeKind; 3] = [PipeKind::WaterSupply, PipeKind::Gas, PipeKind::Heat];

    fn preset(preset: Preset) -> Dataset {
        generate(&GenerateOptions {
            preset,
            seed: 42,
            progress: false,
        })
        .expect("generates")
        .0
    }

    /// The nodes and pipelines of one network kind.
    fn of_kind(data: &Dataset, kind: PipeKind) -> (Vec<NetworkNode>, Vec<Pipeline>) {
        let nodes = data
            .nodes
            .iter()
            .filter(|n| n.kind == kind)
            .cloned()
            .collect();
        let pipes = data
            .pipelines
            .iter()
            .filter(|p| p.kind == kind)
            .cloned()
            .collect();
        (nodes, pipes)
    }

    /// Per traced kind, as `/trace` builds it: no problem, every part fed, every pipe with
    /// both ends; isolating a sample of pipes cuts off less than the network and names a
    /// valve to close (or takes a source out of service, for the stub at a plant).
    fn assert_traceable(data: &Dataset, sample: usize) {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for kind in TRACED {
            let (nodes, pipes) = of_kind(data, kind);
            assert!(!pipes.is_empty(), "{kind}: no pipes");
            assert!(
                pipes
                    .iter()
                    .all(|p| p.from_node.is_some() && p.to_node.is_some()),
                "{kind}: a pipe without both ends"
            );
            let (net, problems) = network_of(&nodes, &pipes).expect("a network");
            assert!(
                problems.is_empty(),
                "{kind}: {:?}",
                &problems[..problems.len().min(5)]
            );
            let islands = net.islands_without_source();
            assert!(islands.is_empty(), "{kind}: {} unfed parts", islands.len());
            let valves = nodes
                .iter()
                .filter(|n| n.node_type == NodeType::Valve)
                .count();
            assert_eq!(net.valves().len(), valves, "{kind}: every valve placed");
            let ids: Vec<i64> = pipes.iter().map(|p| p.id).collect();
            for &id in ids.choose_multiple(&mut rng, sample) {
                let iso = net.isolate(&[id], &Scenario::default()).expect("isolates");
                assert!(
                    iso.segment.pipes.len() < pipes.len(),
                    "{kind}: pipe {id} cuts off all"
                );
                assert!(
                    !iso.valves_to_close.is_empty() || iso.source_inside,
                    "{kind}: pipe {id} has no valve to close: {iso:?}"
                );
            }
        }
    }

    /// A pipe's length on the ground, m.
    fn length_m(p: &lifeline_model::Pipeline) -> f64 {
        use geo::{Distance, Haversine, Point};
        p.geometry
            .0
            .windows(2)
            .map(|w| Haversine.distance(Point(w[0]), Point(w[1])))
            .sum()
    }

    /// Per traced kind, with every valve open and operable (a broken valve joins two
    /// segments by design): no valve segment holds more pipe than the kind's valve spacing,
    /// plus the 1 m valve stubs at its ends and 1 % for the district frame's projection.
    fn assert_segments_bounded(data: &Dataset) {
        for kind in TRACED {
            let spacing = [
                Net::Water,
                Net::GasSubHigh,
                Net::GasDist,
                Net::HeatSupply,
                Net::HeatReturn,
            ]
            .into_iter()
            .filter(|n| n.kind() == kind)
            .map(Net::valve_spacing_m)
            .fold(0.0, f64::max);
            let nodes: Vec<_> = data
                .nodes
                .iter()
                .filter(|n| n.kind == kind)
                .map(|n| {
                    let mut n = n.clone();
                    if n.node_type == NodeType::Valve {
                        n.valve_position = None;
                        n.valve_condition = None;
                    }
                    n
                })
                .collect();
            let pipes: Vec<_> = data
                .pipelines
                .iter()
                .filter(|p| p.kind == kind)
                .cloned()
                .collect();
            let (net, _) = network_of(&nodes, &pipes).expect("a network");
            let len: HashMap<i64, f64> = pipes.iter().map(|p| (p.id, length_m(p))).collect();
            let segments = net.segments(&Scenario::default());
            let mut of_segment: HashMap<usize, f64> = HashMap::new();
            for (pipe, &seg) in net.pipes().iter().zip(&segments.pipes) {
                *of_segment.entry(seg).or_default() += len[&pipe.id];
            }
            let (seg, most) = of_segment
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(s, m)| (*s, *m))
                .expect("segments");
            assert!(
                most <= spacing * 1.01 + 6.0,
                "{kind}: segment {seg} holds {most:.0} m of pipe, spacing {spacing} m"
            );
        }
    }

    /// Every customer connection, heat included, ends one service with a valve at its tee:
    /// isolating that service cuts off the customer (fed before: no island) and names a
    /// valve to close. A heat customer (a building substation) has a twin on the other line
    /// of its pair, with the same count, in another part of the network.
    fn assert_customers_served(data: &Dataset) {
        for kind in TRACED {
            let (nodes, pipes) = of_kind(data, kind);
            let (net, _) = network_of(&nodes, &pipes).expect("a network");
            let customers: Vec<_> = nodes
                .iter()
                .filter(|n| n.node_type == NodeType::Customer)
                .collect();
            assert!(!customers.is_empty(), "{kind}: no customer connection");
            let mut pipe_at: HashMap<i64, Vec<i64>> = HashMap::new();
            for p in &pipes {
                for n in [p.from_node, p.to_node].into_iter().flatten() {
                    pipe_at.entry(n).or_default().push(p.id);
                }
            }
            for c in &customers {
                let [service] = pipe_at[&c.id][..] else {
                    panic!("{kind}: customer {} ends {:?}", c.id, pipe_at[&c.id]);
                };
                let iso = net
                    .isolate(&[service], &Scenario::default())
                    .expect("isolates");
                assert!(
                    iso.customers.nodes.contains(&c.id),
                    "{kind}: customer {} not cut off by its service",
                    c.id
                );
                assert!(
                    !iso.valves_to_close.is_empty(),
                    "{kind}: no valve shuts off customer {}",
                    c.id
                );
                if kind == PipeKind::Heat {
                    use geo::{Distance, Haversine};
                    let part = net.connected(service, &Scenario::default()).expect("part");
                    let twin = customers.iter().find(|t| {
                        t.id != c.id
                            && t.customers == c.customers
                            && Haversine.distance(t.geometry, c.geometry) < 2.0
                    });
                    let twin = twin.unwrap_or_else(|| panic!("heat customer {} alone", c.id));
                    assert!(
                        !part.nodes.contains(&twin.id),
                        "heat supply and return joined at customer {}",
                        c.id
                    );
                }
            }
        }
    }

    /// What `lifeline check` says about nodes and pipe ends: nothing.
    fn assert_checked(data: &Dataset) {
        let catalog = Catalog::builtin();
        data.validate(catalog).expect("every record validates");
        let bad: Vec<_> = check::run(data, catalog)
            .problems
            .into_iter()
            .filter(|p| {
                matches!(p.kind, "topology" | "dangling_reference") || p.layer == Layer::Nodes
            })
            .take(5)
            .collect();
        assert!(bad.is_empty(), "{bad:?}");
    }

    #[test]
    fn demo_networks_are_traceable() {
        let data = preset(Preset::Demo);
        assert_checked(&data);
        assert_traceable(&data, 200);
        assert_segments_bounded(&data);
        assert_customers_served(&data);
        let count = |t: NodeType| data.nodes.iter().filter(|n| n.node_type == t).count();
        assert!(
            count(NodeType::Source) >= 5,
            "a source per network at least"
        );
        println!(
            "{:?}",
            NodeType::ALL
                .iter()
                .map(|t| (t, count(*t)))
                .collect::<Vec<_>>()
        );
        assert!(count(NodeType::Customer) >= 10);
        assert!(count(NodeType::Valve) > count(NodeType::Customer));
        assert!(data.nodes.iter().any(|n| n.on_pipe_id.is_some()));
        // Sources of every traced kind, and the right kinds of source.
        for kind in TRACED {
            assert!(data
                .nodes
                .iter()
                .any(|n| n.kind == kind && n.node_type == NodeType::Source));
        }
    }

    #[test]
    fn demo_networks_are_deterministic() {
        let (a, b) = (preset(Preset::Demo), preset(Preset::Demo));
        assert!(a.nodes == b.nodes, "same seed, same nodes");
        assert!(a.pipelines == b.pipelines, "same seed, same pipes");
    }

    /// An empty street in a frame near Chongqing, for lines laid by hand.
    fn hand_laid() -> (crate::geom::Frame, crate::network::StreetNet) {
        let frame = crate::geom::Frame::new(geo::Coord { x: 106.5, y: 29.5 });
        let net = crate::network::StreetNet {
            pipes: vec![],
            info: vec![],
            lines: vec![],
            nets: vec![],
            roads: vec![],
        };
        (frame, net)
    }

    /// Lays a straight run of `role` in network `nt` from `a` to `b` (frame metres), cut
    /// into `pieces` equal pipes.
    fn lay(
        frame: &crate::geom::Frame,
        net: &mut crate::network::StreetNet,
        role: crate::network::Role,
        nt: Net,
        a: (f64, f64),
        b: (f64, f64),
        pieces: usize,
    ) {
        use geo::Coord;
        for k in 0..pieces {
            let f = |t: f64| Coord {
                x: a.0 + (b.0 - a.0) * t,
                y: a.1 + (b.1 - a.1) * t,
            };
            let line = vec![
                f(k as f64 / pieces as f64),
                f((k + 1) as f64 / pieces as f64),
            ];
            let kind = nt.kind();
            net.pipes.push(lifeline_model::Pipeline::new(
                0,
                kind,
                1,
                frame.line_to_ll(&line),
            ));
            net.info.push(crate::network::PipeInfo {
                kind,
                role,
                owner: 1,
                a: line[0],
                b: line[1],
                year: None,
                size_mm: 200.0,
                tunnel: false,
                len_m: crate::geom::length(&line),
            });
            net.lines.push(line);
            net.nets.push(Some(nt));
        }
    }

    /// Long straight mains laid by hand, each a single run with nothing branching off but
    /// services: a water main with a service at every second joint (so some intervals fall
    /// on a tee), a gas main, and a heat pair with two building substations. With every
    /// valve open and operable, no valve segment holds more main than its network's
    /// spacing (plus a 1 m stub), each long main got interval valves, and each substation
    /// is a customer on both lines with one count.
    #[test]
    fn interval_valves_bound_long_mains() {
        use super::build;
        use crate::network::Role;
        use lifeline_trace::{Network, Node, NodeRole, Pipe, Position, Valve};

        let (frame, mut net) = hand_laid();
        let mut lay = |role: Role, nt: Net, a: (f64, f64), b: (f64, f64), pieces: usize| {
            lay(&frame, &mut net, role, nt, a, b, pieces)
        };
        lay(Role::WaterDist, Net::Water, (0.0, 0.0), (2000.0, 0.0), 40);
        for k in 1..20 {
            let x = 100.0 * k as f64;
            lay(Role::WaterService, Net::Water, (x, 0.0), (x, 15.0), 1);
        }
        lay(Role::GasMain, Net::GasDist, (0.0, 20.0), (3000.0, 20.0), 60);
        lay(
            Role::Heat,
            Net::HeatSupply,
            (0.0, -10.0),
            (2500.0, -10.0),
            50,
        );
        lay(
            Role::Heat,
            Net::HeatReturn,
            (0.0, -10.8),
            (2500.0, -10.8),
            50,
        );
        for x in [730.0, 1610.0] {
            lay(
                Role::HeatService,
                Net::HeatSupply,
                (x, -10.0),
                (x, -25.0),
                1,
            );
            lay(
                Role::HeatService,
                Net::HeatReturn,
                (x + 1.0, -10.8),
                (x + 1.0, -25.0),
                1,
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let out = build(&mut net, &frame, &mut rng);
        assert_eq!(out.unfed_pipes, 0);
        // The street as the trace engine sees it: ids are indices.
        let nodes = out
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| Node {
                id: i as i64,
                role: match n.node.node_type {
                    NodeType::Source => NodeRole::Source,
                    NodeType::Customer => NodeRole::Customer {
                        customers: n.node.customer_count(),
                    },
                    _ => NodeRole::Junction,
                },
            })
            .collect();
        let pipes = out
            .ends
            .iter()
            .enumerate()
            .map(|(k, e)| {
                let [a, b] = e.expect("every pipe has ends");
                Pipe {
                    id: k as i64,
                    from: a as i64,
                    to: b as i64,
                }
            })
            .collect();
        let valves = out
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.node.node_type == NodeType::Valve)
            .map(|(i, n)| Valve {
                id: i as i64,
                pipe: n.on_pipe.expect("a valve names its pipe") as i64,
                node: i as i64,
                position: Position::Open,
                operable: true,
            })
            .collect();
        let trace = Network::new(nodes, pipes, valves).expect("a network");
        let segments = trace.segments(&Scenario::default());
        let mut held: BTreeMap<usize, (Net, f64)> = BTreeMap::new();
        for (k, &seg) in segments.pipes.iter().enumerate() {
            let nt = net.nets[k].expect("a network");
            let e = held.entry(seg).or_insert((nt, 0.0));
            assert_eq!(e.0, nt, "a segment spans two networks");
            e.1 += crate::geom::length(&net.lines[k]);
        }
        for (seg, (nt, m)) in &held {
            assert!(
                *m <= nt.valve_spacing_m() + 1.0 + 1e-6,
                "{nt:?}: segment {seg} holds {m:.1} m"
            );
        }
        // Every long main is cut into several segments.
        for nt in [Net::Water, Net::GasDist, Net::HeatSupply, Net::HeatReturn] {
            let main_segments = held
                .values()
                .filter(|(n, m)| *n == nt && *m > 100.0)
                .count();
            assert!(main_segments >= 2, "{nt:?}: {main_segments} segments");
        }
        // Each substation: a customer on supply and on return, one count.
        let heat_customers: Vec<(Net, i32)> = out
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.node.node_type == NodeType::Customer)
            .filter_map(|(i, n)| {
                let k = out
                    .ends
                    .iter()
                    .position(|e| e.is_some_and(|e| e.contains(&i)))?;
                let nt = net.nets[k]?;
                matches!(nt, Net::HeatSupply | Net::HeatReturn)
                    .then(|| (nt, n.node.customers.expect("a count")))
            })
            .collect();
        assert_eq!(heat_customers.len(), 4, "{heat_customers:?}");
        for pair in heat_customers.chunks(2) {
            assert_eq!(pair[0].0, Net::HeatSupply);
            assert_eq!(pair[1].0, Net::HeatReturn);
            assert_eq!(pair[0].1, pair[1].1, "one building, one count");
        }
    }

    /// Lines laid by hand: heat supply and return of two crossing roads, a water main that
    /// stops short of another, and a water service on a main.
    #[test]
    fn crossings_join_within_a_network_only() {
        use super::build;
        use crate::network::Role;
        use std::collections::BTreeSet;

        let (frame, mut net) = hand_laid();
        let mut lay = |role: Role, nt: Net, a: (f64, f64), b: (f64, f64), pieces: usize| {
            lay(&frame, &mut net, role, nt, a, b, pieces)
        };
        lay(Role::Heat, Net::HeatSupply, (-100.0, 0.0), (100.0, 0.0), 4);
        lay(
            Role::Heat,
            Net::HeatReturn,
            (-100.0, -0.8),
            (100.0, -0.8),
            4,
        );
        lay(Role::Heat, Net::HeatSupply, (0.0, -100.0), (0.0, 100.0), 3);
        lay(Role::Heat, Net::HeatReturn, (0.8, -100.0), (0.8, 100.0), 3);
        lay(
            Role::WaterDist,
            Net::Water,
            (-100.0, 30.0),
            (100.0, 30.0),
            4,
        );
        lay(Role::WaterDist, Net::Water, (50.0, 50.0), (50.0, 200.0), 2);
        lay(
            Role::WaterService,
            Net::Water,
            (-30.0, 30.0),
            (-30.0, 50.0),
            1,
        );
        let laid = net.pipes.len();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let out = build(&mut net, &frame, &mut rng);
        assert_eq!(out.unfed_pipes, 0);
        assert!(
            net.pipes.len() > laid,
            "cut at crossings, a connector, valve stubs"
        );
        let mut of_net: BTreeMap<Net, BTreeSet<usize>> = BTreeMap::new();
        for (nt, e) in net.nets.iter().zip(&out.ends) {
            let (Some(nt), Some(e)) = (nt, e) else {
                panic!("a pipe without ends");
            };
            of_net.entry(*nt).or_default().extend(e.iter().copied());
        }
        assert!(of_net[&Net::HeatSupply].is_disjoint(&of_net[&Net::HeatReturn]));
        assert!(of_net[&Net::Water].is_disjoint(&of_net[&Net::HeatSupply]));
        // Each network is one part: crossings and the connector joined them.
        for (nt, nodes) in &of_net {
            let mut parts: BTreeMap<usize, usize> = nodes.iter().map(|&n| (n, n)).collect();
            fn find(p: &mut BTreeMap<usize, usize>, x: usize) -> usize {
                let up = p[&x];
                if up == x {
                    x
                } else {
                    let r = find(p, up);
                    p.insert(x, r);
                    r
                }
            }
            for e in out.ends.iter().flatten() {
                if nodes.contains(&e[0]) {
                    let (a, b) = (find(&mut parts, e[0]), find(&mut parts, e[1]));
                    parts.insert(a.max(b), a.min(b));
                }
            }
            let roots: BTreeSet<usize> = nodes.iter().map(|&n| find(&mut parts, n)).collect();
            assert_eq!(roots.len(), 1, "{nt:?} falls apart");
        }
        // N-1 where four heat pipes cross: three valves there (one the node, two on stubs),
        // plus the outlet valves of the sources; one valve on the service at its tee.
        let valves = |nt: Net| {
            of_net[&nt]
                .iter()
                .filter(|&&n| out.nodes[n].node.node_type == NodeType::Valve)
                .count()
        };
        assert!(valves(Net::HeatSupply) >= 3, "{}", valves(Net::HeatSupply));
        let service = net
            .info
            .iter()
            .position(|i| i.role == Role::WaterService)
            .expect("the service");
        let [tee, building] = out.ends[service].expect("ends");
        let tee_node = &out.nodes[tee];
        assert_eq!(tee_node.node.node_type, NodeType::Valve);
        assert_eq!(tee_node.on_pipe, Some(service));
        assert_eq!(out.nodes[building].node.node_type, NodeType::Customer);
        assert!(out.nodes.iter().all(|n| n.node.validate().is_ok()));
    }

    /// The parts of a kind's network with every valve open: for each, its pipes' total
    /// length (m), its sources and its pipes' pressure classes.
    fn parts_of(data: &Dataset, kind: PipeKind) -> Vec<(f64, usize, Vec<Option<GasPressure>>)> {
        let nodes: Vec<_> = data
            .nodes
            .iter()
            .filter(|n| n.kind == kind)
            .map(|n| {
                let mut n = n.clone();
                n.valve_position = None;
                n
            })
            .collect();
        let pipes: HashMap<i64, &lifeline_model::Pipeline> = data
            .pipelines
            .iter()
            .filter(|p| p.kind == kind && p.from_node.is_some())
            .map(|p| (p.id, p))
            .collect();
        let list: Vec<_> = pipes.values().map(|p| (*p).clone()).collect();
        let (net, _) = network_of(&nodes, &list).expect("a network");
        let source: HashSet<i64> = nodes
            .iter()
            .filter(|n| n.node_type == NodeType::Source)
            .map(|n| n.id)
            .collect();
        let mut ids: Vec<i64> = pipes.keys().copied().collect();
        ids.sort_unstable();
        let mut seen: HashSet<i64> = HashSet::new();
        let mut out = Vec::new();
        for id in ids {
            if seen.contains(&id) {
                continue;
            }
            let part = net.connected(id, &Scenario::default()).expect("a part");
            seen.extend(part.pipes.iter().copied());
            let m = part.pipes.iter().map(|p| length_m(pipes[p])).sum();
            let sources = part.nodes.iter().filter(|n| source.contains(n)).count();
            let mut classes: Vec<_> = part.pipes.iter().map(|p| pipes[p].pressure_class).collect();
            classes.sort_unstable();
            classes.dedup();
            out.push((m, sources, classes));
        }
        out
    }

    /// The streets' networks joined (`ties`), for a preset:
    /// - water is one network per district; gas two, the sub-high tier and the
    ///   distribution (they meet only through regulators); heat schemes stay local, each
    ///   with one plant;
    /// - each network has at least one source; water and gas have at most one for every
    ///   two streets, so most streets get their supply through the links, and fewer
    ///   sources than the streets had;
    /// - with every valve operable, isolating any pipe of a tie or trunk main cuts off at
    ///   most [`MAX_CUSTOMERS_ONE_FEED`] customers (no link alone feeds a large area);
    /// - the links add less than 5 % to the pipes.
    fn assert_joined(preset: Preset) {
        let plan = crate::Plan::for_preset(preset);
        let (data, report, joined) = crate::generate_joined(&plan, 42, false).expect("generates");
        let districts = report.districts.len();
        assert_eq!(report.unfed_pipes, 0);
        assert!(
            joined.link_pipes.len() * 20 < data.pipelines.len(),
            "{} link pipes of {}",
            joined.link_pipes.len(),
            data.pipelines.len()
        );
        for kind in TRACED {
            let parts = parts_of(&data, kind);
            let sources: usize = parts.iter().map(|p| p.1).sum();
            println!(
                "{kind}: {} parts, {sources} sources, {} streets",
                parts.len(),
                report.streets
            );
            assert!(
                parts.iter().all(|p| p.1 >= 1),
                "{kind}: a part without a source"
            );
            match kind {
                PipeKind::WaterSupply => {
                    assert!(parts.len() <= districts, "{kind}: {}", parts.len())
                }
                // The sub-high tier and the distribution meet only through regulators.
                PipeKind::Gas => assert!(parts.len() <= 2 * districts, "{kind}: {}", parts.len()),
                _ => assert!(
                    parts.iter().all(|p| p.1 == 1),
                    "{kind}: one plant per scheme"
                ),
            }
            // Most streets are fed through the links: at most half of them hold a source.
            if kind != PipeKind::Heat && report.streets > 1 {
                assert!(2 * sources <= report.streets, "{kind}: {sources} sources");
            }
        }
        let sources = data
            .nodes
            .iter()
            .filter(|n| n.node_type == NodeType::Source)
            .count();
        assert!(sources < report.street_sources || report.streets == 1);
        assert_eq!(joined.link_pipes.len(), report.link_pipes);
        // No link alone feeds more than a district metered area.
        let mut nodes: Vec<_> = data.nodes.clone();
        for n in &mut nodes {
            n.valve_condition = None;
        }
        for kind in TRACED {
            let nodes: Vec<_> = nodes.iter().filter(|n| n.kind == kind).cloned().collect();
            let pipes: Vec<_> = data
                .pipelines
                .iter()
                .filter(|p| p.kind == kind)
                .cloned()
                .collect();
            let (net, _) = network_of(&nodes, &pipes).expect("a network");
            let links: HashSet<i64> = joined.link_pipes.iter().copied().collect();
            for p in pipes.iter().filter(|p| links.contains(&p.id)) {
                let iso = net
                    .isolate(&[p.id], &Scenario::default())
                    .expect("isolates");
                assert!(
                    iso.customers.count <= MAX_CUSTOMERS_ONE_FEED,
                    "{kind}: link pipe {} alone feeds {} customers",
                    p.id,
                    iso.customers.count
                );
            }
        }
    }

    #[test]
    fn demo_networks_are_joined() {
        assert_joined(Preset::Demo);
    }

    /// The whole district: a few seconds in a debug build.
    #[test]
    fn jiulongpo_networks_are_joined() {
        assert_joined(Preset::Jiulongpo);
    }

    /// The whole district: a few seconds in a debug build.
    #[test]
    fn jiulongpo_networks_are_traceable() {
        let data = preset(Preset::Jiulongpo);
        assert_checked(&data);
        assert_traceable(&data, 300);
        assert_segments_bounded(&data);
        assert_customers_served(&data);
    }
}
