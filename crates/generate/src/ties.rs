//! One network per utility across the streets (issue 15): ties where the streets' mains
//! meet, trunk mains between the streets' built-up areas, and a few sources for the whole.
//!
//! Each street lays its own road grid, so `nodes` builds each street's networks on their
//! own, every part with its own source. This module runs once the streets are assembled
//! (global ids, lon/lat), in one metric frame for the whole plan (an equirectangular frame
//! around the city centre, < 0.3 % scale error across the central city):
//!
//! 1. **Ties where roads meet.** Dead ends of mains of one network and one pressure tier,
//!    in different streets (or districts), at most [`TIE_M`] apart are joined by a tie
//!    pipe, nearest first, while it joins two parts not yet connected; a second tie between
//!    the same two street parts, at least [`SECOND_FEED_APART_M`] from the first, gives a
//!    loop.
//! 2. **Trunk mains.** Within a district, the water network and both gas tiers still in
//!    several parts are joined by trunk mains between the nearest dead ends of two parts
//!    (a spanning tree over the parts, shortest first), laid with a gentle wander and cut
//!    into [`TRUNK_SEGMENT_M`] pipes, like the long-distance lines. Heat is left alone:
//!    Chongqing's heat schemes are local (a hospital, a hotel quarter, a river-water heat
//!    pump station), each with its own plant.
//! 3. **Second feeds.** Where one link alone would feed more than
//!    [`MAX_CUSTOMERS_ONE_FEED`] customers on both of its sides, a second trunk main goes
//!    from the smaller side to the nearest dead end elsewhere, at least
//!    [`SECOND_FEED_APART_M`] from the first and at most [`MAX_SECOND_FEED_M`] long, so
//!    the parts form loops; farther out, the part keeps a source of its own (step 5).
//! 4. **Valves.** A tie or trunk main has a valve at each end, on the link: a dead end it
//!    starts from becomes the valve (the joint of the main and the link); elsewhere the
//!    valve sits on a [`STUB_M`] stub of the link. A trunk main has interval valves at
//!    its joints at the network's spacing ([`Net::valve_spacing_m`]). States are drawn with
//!    the shares `nodes` uses; no link valve is normally closed.
//! 5. **Sources.** Each connected network keeps one source per [`Net::km_per_joined_source`]
//!    km of pipe and at least one, chosen among the street parts' sources (plants and gate
//!    stations first, then reservoirs, then spread out, each next one the farthest from
//!    those kept); the others become plain junctions. Then, with the valves as they stand,
//!    every part is fed (a part no kept source reaches gets its own source back, or its
//!    closed boundary valves open) and no link's isolation cuts off more than
//!    [`MAX_CUSTOMERS_ONE_FEED`] customers (if one would, a source on the cut-off side is
//!    kept).

use super::geom::{self, Frame, Walk};
use super::nodes::{Net, BROKEN, INACCESSIBLE, STUB_M};
use geo::{Coord, LineString};
use lifeline_model::{
    Dataset, NetworkNode, NodeType, PipeKind, SourceKind, ValveCondition, ValvePosition,
};
use rand::Rng;
use std::collections::{HashMap, HashSet, VecDeque};

/// Dead ends of two streets' mains this close are the same road meeting across the street
/// edge, m: a road is clipped on a 20 m step on each side of the edge, and the lanes of a
/// network lie up to 21 m apart across a road (the arterial's water mains), so facing ends
/// lie up to about 60 m apart; a block (90–200 m) apart they belong to different roads.
pub(super) const TIE_M: f64 = 60.0;
/// A second tie or feed between the same parts starts at least this far from the first,
/// m, so that one dig does not cut both.
const SECOND_FEED_APART_M: f64 = 500.0;
/// The most customers one link may be the only feed of, on both of its sides: the upper
/// size of a district metered area (DMAs of 500–3,000 properties, the usual guidance of
/// water leakage management, fed through one or two inlets). Gas districts behind one
/// regulator are held to the same figure.
pub(super) const MAX_CUSTOMERS_ONE_FEED: u64 = 3000;
/// The longest second feed, m: farther out, a part keeps a source of its own (a service
/// reservoir or regulator station) rather than a second long main.
const MAX_SECOND_FEED_M: f64 = 2000.0;
/// Length of the pipes of a trunk main, m: the 100–250 m between marker posts of the
/// long-distance lines (`network`), as a trunk main runs outside the built-up blocks.
const TRUNK_SEGMENT_M: (f64, f64) = (100.0, 250.0);
/// Vertex spacing and the most lateral wander of a trunk main's route, m.
const TRUNK_VERTEX_M: f64 = 200.0;
const TRUNK_WANDER_M: f64 = 80.0;
/// The networks joined by trunk mains within a district.
const TRUNK_NETS: [Net; 3] = [Net::Water, Net::GasSubHigh, Net::GasDist];
/// Candidate trunk mains kept per pair of parts: the nearest pairs of nodes (the nearest
/// may join parts already joined).
const PAIRS_PER_PARTS: usize = 8;

impl Net {
    /// Pipe km one source feeds once the streets are joined: a water plant or service
    /// reservoir per 250 km of water pipe (Jiulongpo's ≈ 760 km get four, a few plants and
    /// reservoirs per district as in Chongqing's hill city supply); a gate station or
    /// regulator station per 250 km of gas pipe. Heat schemes keep their one plant.
    pub(super) fn km_per_joined_source(self) -> f64 {
        match self {
            Net::Water | Net::GasSubHigh | Net::GasDist => 250.0,
            Net::HeatSupply | Net::HeatReturn => f64::INFINITY,
        }
    }
}

/// What the join needs to know of the assembled pipes and nodes, by index (id − 1).
#[derive(Default)]
pub(super) struct Topo {
    /// Each pipe's traceable network, if any.
    pub pipe_net: Vec<Option<Net>>,
    /// Whether a pipe is a service (from a main to a building).
    pub pipe_service: Vec<bool>,
    /// Each node's street (job index) and district (index).
    pub node_street: Vec<usize>,
    pub node_district: Vec<usize>,
}

/// What [`join`] did.
#[derive(Debug, Default)]
pub(super) struct Joined {
    /// Ties where the streets' mains meet, and trunk mains (second feeds included).
    pub ties: usize,
    pub trunks: usize,
    /// Ids of the pipes of every tie and trunk main (stubs included).
    pub link_pipes: Vec<i64>,
    /// Km of link pipe added, by district index and kind.
    pub km: Vec<(usize, PipeKind, f64)>,
    /// Sources the street parts had before the join.
    pub sources_before: usize,
    /// Normally closed valves opened because a part would otherwise have no source.
    pub reopened: usize,
    /// Pipes of the traceable networks no source feeds, as the valves stand.
    pub unfed_pipes: usize,
}

/// Union-find joining towards the smaller index (deterministic).
struct Dsu(Vec<usize>);

impl Dsu {
    fn new(n: usize) -> Self {
        Dsu((0..n).collect())
    }
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) -> bool {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return false;
        }
        self.0[a.max(b)] = a.min(b);
        true
    }
}

/// One tie or trunk main: its street-side end nodes and its pipes.
struct Link {
    net: Net,
    ends: [usize; 2],
    pipes: Vec<usize>,
}

/// The working state: the data set plus per-index facts, kept up to date as links are laid.
struct Work<'a> {
    data: &'a mut Dataset,
    frame: Frame,
    pipe_net: Vec<Option<Net>>,
    pipe_service: Vec<bool>,
    node_net: Vec<Option<Net>>,
    node_street: Vec<usize>,
    node_district: Vec<usize>,
    /// Node positions in the frame, m.
    pos: Vec<Coord<f64>>,
    /// Pipes at each node, and one main at each node (for depths and pressure).
    deg: Vec<usize>,
    main_at: Vec<Option<usize>>,
    /// The street parts as built (before any link), and the parts as joined so far.
    street_part: Dsu,
    joined: Dsu,
    links: Vec<Link>,
    /// Nodes a link added (its joints and stub valves).
    link_node: Vec<bool>,
    /// The largest main (by diameter) of each street part, by its root.
    largest_main: HashMap<usize, usize>,
    new_valves: Vec<usize>,
}

/// Joins the streets' networks of an assembled data set; see the module docs.
pub(super) fn join(data: &mut Dataset, topo: &Topo, frame: Frame, rng: &mut impl Rng) -> Joined {
    // Ids were assigned in order from 1: an id less one is the record's index.
    debug_assert!(data
        .nodes
        .iter()
        .enumerate()
        .all(|(i, n)| n.id == i as i64 + 1));
    debug_assert!(data
        .pipelines
        .iter()
        .enumerate()
        .all(|(k, p)| p.id == k as i64 + 1));
    let nn = data.nodes.len();
    let mut w = Work {
        frame,
        pipe_net: topo.pipe_net.clone(),
        pipe_service: topo.pipe_service.clone(),
        node_net: vec![None; nn],
        node_street: topo.node_street.clone(),
        node_district: topo.node_district.clone(),
        pos: data
            .nodes
            .iter()
            .map(|n| frame.to_m(n.geometry.0))
            .collect(),
        deg: vec![0; nn],
        main_at: vec![None; nn],
        street_part: Dsu::new(nn),
        joined: Dsu::new(nn),
        links: Vec::new(),
        link_node: vec![false; nn],
        largest_main: HashMap::new(),
        new_valves: Vec::new(),
        data,
    };
    for k in 0..w.data.pipelines.len() {
        if let Some([a, b]) = w.ends_of(k) {
            w.street_part.union(a, b);
            w.joined.union(a, b);
            for x in [a, b] {
                w.deg[x] += 1;
                w.node_net[x] = w.pipe_net[k];
                if !w.pipe_service[k] {
                    w.main_at[x] = Some(k);
                }
            }
        }
    }
    for k in 0..w.data.pipelines.len() {
        let (Some([a, _]), false) = (w.ends_of(k), w.pipe_service[k]) else {
            continue;
        };
        let r = w.street_part.find(a);
        let size = |k: usize| w.data.pipelines[k].diameter_mm.unwrap_or(0.0);
        match w.largest_main.get(&r) {
            Some(&j) if size(j) >= size(k) => {}
            _ => {
                w.largest_main.insert(r, k);
            }
        }
    }
    let sources_before = w.sources().len();
    let ties = w.near_ties(rng);
    let districts = w.node_district.iter().copied().max().map_or(0, |d| d + 1);
    let mut trunks = 0;
    for d in 0..districts {
        for net in TRUNK_NETS {
            trunks += w.trunk_mains(d, net, rng);
            trunks += w.second_feeds(d, net, rng);
        }
    }
    for &v in &w.new_valves {
        let r: f64 = rng.gen();
        w.data.nodes[v].valve_condition = if r < BROKEN {
            Some(ValveCondition::Broken)
        } else if r < BROKEN + INACCESSIBLE {
            Some(ValveCondition::Inaccessible)
        } else {
            None
        };
    }
    let reopened = w.choose_sources();
    let mut km = Vec::new();
    let mut link_pipes = Vec::new();
    for l in &w.links {
        let d = w.node_district[l.ends[0]];
        for &k in &l.pipes {
            link_pipes.push(w.data.pipelines[k].id);
            km.push((d, l.net.kind(), w.length_m(k) / 1000.0));
        }
    }
    Joined {
        ties,
        trunks,
        link_pipes,
        km,
        sources_before,
        reopened,
        unfed_pipes: w.unfed(),
    }
}

impl Work<'_> {
    fn ends_of(&self, k: usize) -> Option<[usize; 2]> {
        let p = &self.data.pipelines[k];
        Some([(p.from_node? - 1) as usize, (p.to_node? - 1) as usize])
    }

    fn length_m(&self, k: usize) -> f64 {
        let pts: Vec<Coord<f64>> = self.data.pipelines[k]
            .geometry
            .0
            .iter()
            .map(|c| self.frame.to_m(*c))
            .collect();
        geom::length(&pts)
    }

    fn sources(&self) -> Vec<usize> {
        (0..self.data.nodes.len())
            .filter(|&v| self.data.nodes[v].node_type == NodeType::Source)
            .collect()
    }

    /// A dead end of a main: a plain junction with one pipe, a main of a traced network.
    fn dead_end(&self, v: usize) -> bool {
        self.deg[v] == 1
            && self.data.nodes[v].node_type == NodeType::Junction
            && self.main_at[v].is_some()
            && self.node_net[v].is_some()
    }

    /// The pressure tier of the main at a node: a link joins mains of one tier only (low,
    /// medium or sub-high; the A and B classes of a tier already meet inside the streets).
    fn tier_at(&self, v: usize) -> u8 {
        use lifeline_model::GasPressure as P;
        match self.main_at[v].and_then(|k| self.data.pipelines[k].pressure_class) {
            None => 0,
            Some(P::Low) => 1,
            Some(P::MediumA | P::MediumB) => 2,
            Some(P::SubHighA | P::SubHighB) => 3,
            Some(P::HighA | P::HighB) => 4,
        }
    }

    /// Step 1, ties between dead ends of different streets at most [`TIE_M`] apart.
    fn near_ties(&mut self, rng: &mut impl Rng) -> usize {
        let ends: Vec<usize> = (0..self.data.nodes.len())
            .filter(|&v| self.dead_end(v))
            .collect();
        let cell = |c: Coord<f64>| ((c.x / TIE_M).floor() as i64, (c.y / TIE_M).floor() as i64);
        let mut grid: HashMap<(Net, i64, i64), Vec<usize>> = HashMap::new();
        for &v in &ends {
            let (x, y) = cell(self.pos[v]);
            if let Some(net) = self.node_net[v] {
                grid.entry((net, x, y)).or_default().push(v);
            }
        }
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for &a in &ends {
            let Some(net) = self.node_net[a] else {
                continue;
            };
            let (cx, cy) = cell(self.pos[a]);
            for x in cx - 1..=cx + 1 {
                for y in cy - 1..=cy + 1 {
                    for &b in grid.get(&(net, x, y)).map_or(&[][..], |v| v.as_slice()) {
                        if b <= a
                            || self.node_street[a] == self.node_street[b]
                            || self.tier_at(a) != self.tier_at(b)
                        {
                            continue;
                        }
                        let d = geom::dist(self.pos[a], self.pos[b]);
                        if d <= TIE_M {
                            pairs.push((d, a, b));
                        }
                    }
                }
            }
        }
        pairs.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
        let mut used: HashSet<usize> = HashSet::new();
        // The first tie between two street parts (by their roots), and pairs with a second.
        let mut first: HashMap<(usize, usize), [usize; 2]> = HashMap::new();
        let mut second: HashSet<(usize, usize)> = HashSet::new();
        let mut laid = 0;
        for pass in 0..2 {
            for &(_, a, b) in &pairs {
                if used.contains(&a) || used.contains(&b) {
                    continue;
                }
                let (pa, pb) = (self.street_part.find(a), self.street_part.find(b));
                let key = (pa.min(pb), pa.max(pb));
                let ok = if pass == 0 {
                    self.joined.find(a) != self.joined.find(b)
                } else {
                    // A second tie between the same two street parts, away from the first.
                    match first.get(&key) {
                        Some(&[fa, fb]) if !second.contains(&key) => {
                            let near = |x: usize| {
                                geom::dist(self.pos[x], self.pos[fa])
                                    .min(geom::dist(self.pos[x], self.pos[fb]))
                            };
                            near(a) >= SECOND_FEED_APART_M && near(b) >= SECOND_FEED_APART_M
                        }
                        _ => false,
                    }
                };
                if !ok || !self.lay(a, b, false, rng) {
                    continue;
                }
                if pass == 0 {
                    first.insert(key, [a, b]);
                } else {
                    second.insert(key);
                }
                used.insert(a);
                used.insert(b);
                laid += 1;
            }
        }
        laid
    }

    /// Nodes a link may start from in a part: its dead ends, else (a closed loop) its
    /// junctions of mains.
    fn link_nodes(&self, members: &[usize]) -> Vec<usize> {
        let ends: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&v| self.dead_end(v))
            .collect();
        if !ends.is_empty() {
            return ends;
        }
        members
            .iter()
            .copied()
            .filter(|&v| {
                self.main_at[v].is_some()
                    && matches!(self.data.nodes[v].node_type, NodeType::Junction)
            })
            .collect()
    }

    /// The parts of `net` in district `d` (by their root in `joined`), with their members.
    fn parts(&mut self, d: usize, net: Net) -> Vec<(usize, Vec<usize>)> {
        let mut of: HashMap<usize, Vec<usize>> = HashMap::new();
        for v in 0..self.node_net.len() {
            if self.node_net[v] == Some(net) && self.node_district[v] == d && self.deg[v] > 0 {
                let r = self.joined.find(v);
                of.entry(r).or_default().push(v);
            }
        }
        let mut parts: Vec<(usize, Vec<usize>)> = of.into_iter().collect();
        parts.sort_unstable_by_key(|p| p.0);
        parts
    }

    /// Candidate links between nodes of different parts, nearest first: per pair of parts
    /// the [`PAIRS_PER_PARTS`] nearest pairs of nodes of the same pressure tier.
    fn candidate_pairs(&self, sets: &[(usize, Vec<usize>)]) -> Vec<(f64, usize, usize)> {
        let mut pairs = Vec::new();
        for (i, (_, a_nodes)) in sets.iter().enumerate() {
            for (_, b_nodes) in &sets[i + 1..] {
                let mut best: Vec<(f64, usize, usize)> = Vec::new();
                for &a in a_nodes {
                    for &b in b_nodes {
                        if self.tier_at(a) != self.tier_at(b) {
                            continue;
                        }
                        let d = geom::dist(self.pos[a], self.pos[b]);
                        if best.len() < PAIRS_PER_PARTS || d < best[best.len() - 1].0 {
                            best.push((d, a, b));
                            best.sort_by(|x, y| x.0.total_cmp(&y.0));
                            best.truncate(PAIRS_PER_PARTS);
                        }
                    }
                }
                pairs.extend(best);
            }
        }
        pairs.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
        pairs
    }

    /// Step 2, trunk mains joining the parts of a network in a district, shortest first.
    fn trunk_mains(&mut self, d: usize, net: Net, rng: &mut impl Rng) -> usize {
        let parts = self.parts(d, net);
        if parts.len() < 2 {
            return 0;
        }
        let sets: Vec<(usize, Vec<usize>)> = parts
            .iter()
            .map(|(r, m)| (*r, self.link_nodes(m)))
            .collect();
        // A node may start several trunk mains: the later ones get a stub for their valve.
        let mut laid = 0;
        for (_, a, b) in self.candidate_pairs(&sets) {
            if self.joined.find(a) != self.joined.find(b) && self.lay(a, b, true, rng) {
                laid += 1;
            }
        }
        laid
    }

    /// Customers of each street part (by root in `street_part`).
    fn customers_of_parts(&mut self) -> HashMap<usize, u64> {
        let mut out: HashMap<usize, u64> = HashMap::new();
        for v in 0..self.data.nodes.len() {
            if self.data.nodes[v].node_type == NodeType::Customer {
                let r = self.street_part.find(v);
                *out.entry(r).or_default() += self.data.nodes[v].customer_count() as u64;
            }
        }
        out
    }

    /// Step 3, second feeds: while a link of `net` in district `d` is the only path between two
    /// sides of more than [`MAX_CUSTOMERS_ONE_FEED`] customers each, a trunk main from the
    /// smaller side to the nearest dead end elsewhere, away from that link.
    fn second_feeds(&mut self, d: usize, net: Net, rng: &mut impl Rng) -> usize {
        let customers = self.customers_of_parts();
        let of_net: Vec<usize> = (0..self.node_net.len())
            .filter(|&v| self.node_net[v] == Some(net) && self.node_district[v] == d)
            .collect();
        let mut tried: HashSet<usize> = HashSet::new();
        let mut laid = 0;
        loop {
            // The street parts of the district and the links between them.
            let links: Vec<(usize, [usize; 2])> = self
                .links
                .iter()
                .enumerate()
                .filter(|(_, l)| l.net == net && l.ends.iter().all(|&x| self.node_district[x] == d))
                .map(|(i, l)| (i, l.ends))
                .collect();
            let edges: Vec<(usize, usize, usize)> = links
                .iter()
                .map(|&(i, [a, b])| (i, self.street_part.find(a), self.street_part.find(b)))
                .collect();
            let graph = Graph::new(&edges);
            let mut fixed = false;
            for &(i, pa, pb) in &edges {
                if tried.contains(&i) {
                    continue;
                }
                let side = graph.reach(&[pa], Some(i));
                if side.contains(&pb) {
                    continue;
                }
                let other = graph.reach(&[pb], Some(i));
                let sum = |s: &HashSet<usize>| {
                    s.iter()
                        .map(|r| customers.get(r).copied().unwrap_or(0))
                        .sum::<u64>()
                };
                let (ca, cb) = (sum(&side), sum(&other));
                if ca.min(cb) <= MAX_CUSTOMERS_ONE_FEED {
                    continue;
                }
                tried.insert(i);
                // The link's ends on the smaller and on the larger side.
                let [a, b] = self.links[i].ends;
                let (small, large, ea, eb) = if ca <= cb {
                    (side, other, a, b)
                } else {
                    (other, side, b, a)
                };
                let members = |s: &HashSet<usize>, w: &mut Self| -> Vec<usize> {
                    of_net
                        .iter()
                        .copied()
                        .filter(|&v| w.dead_end(v) && s.contains(&w.street_part.find(v)))
                        .collect()
                };
                let a_nodes: Vec<usize> = members(&small, self)
                    .into_iter()
                    .filter(|&v| geom::dist(self.pos[v], self.pos[ea]) >= SECOND_FEED_APART_M)
                    .collect();
                let b_nodes: Vec<usize> = members(&large, self)
                    .into_iter()
                    .filter(|&v| geom::dist(self.pos[v], self.pos[eb]) >= SECOND_FEED_APART_M)
                    .collect();
                let best = self
                    .candidate_pairs(&[(0, a_nodes), (1, b_nodes)])
                    .into_iter()
                    .next()
                    .filter(|p| p.0 <= MAX_SECOND_FEED_M);
                if let Some((_, a, b)) = best {
                    if self.lay(a, b, true, rng) {
                        laid += 1;
                        fixed = true;
                        break;
                    }
                }
            }
            if !fixed {
                return laid;
            }
        }
    }

    /// Lays a link from node `a` to node `b` (a tie, or a trunk main with its wander and
    /// interval valves), with a valve at each end on the link. Returns whether it was laid
    /// (not where a stub would not fit).
    fn lay(&mut self, a: usize, b: usize, trunk: bool, rng: &mut impl Rng) -> bool {
        let Some(net) = self.node_net[a] else {
            return false;
        };
        let (pa, pb) = (self.pos[a], self.pos[b]);
        let dist = geom::dist(pa, pb);
        let mut route = vec![pa];
        if trunk {
            let n = (dist / TRUNK_VERTEX_M).ceil().max(1.0) as usize;
            let (ux, uy) = (
                (pb.x - pa.x) / dist.max(1e-9),
                (pb.y - pa.y) / dist.max(1e-9),
            );
            let bound = TRUNK_WANDER_M.min(0.05 * dist);
            let mut drift = 0.0f64;
            for k in 1..n {
                drift = (drift + rng.gen_range(-0.3..0.3) * bound).clamp(-bound, bound);
                // Tapered towards the ends, so the route leaves and meets its ends squarely.
                let t = k as f64 / n as f64;
                let lat = drift * (std::f64::consts::PI * t).sin();
                route.push(Coord {
                    x: pa.x + ux * dist * t - uy * lat,
                    y: pa.y + uy * dist * t + ux * lat,
                });
            }
        }
        route.push(pb);
        let walk = Walk::new(&route);
        let total = walk.len();
        // Where the link is cut: stubs at ends that are not dead ends, pipes along a trunk.
        let stub = [!self.dead_end(a), !self.dead_end(b)];
        if stub.contains(&true) && total < 4.0 * STUB_M {
            return false;
        }
        let mut marks = vec![0.0];
        if stub[0] {
            marks.push(STUB_M);
        }
        if trunk {
            let mut s = marks[marks.len() - 1];
            loop {
                s += rng.gen_range(TRUNK_SEGMENT_M.0..=TRUNK_SEGMENT_M.1);
                if s >= total - 0.4 * TRUNK_SEGMENT_M.0 {
                    break;
                }
                marks.push(s);
            }
        }
        if stub[1] {
            marks.push(total - STUB_M);
        }
        marks.push(total);
        // Attributes: the larger of the mains at the two ends (a trunk main: the largest
        // main of the two street parts), with the ends' depths.
        let main_a = self.main_at[a];
        let main_b = self.main_at[b];
        let size = |k: Option<usize>, w: &Self| {
            k.and_then(|k| w.data.pipelines[k].diameter_mm)
                .unwrap_or(0.0)
        };
        let template = if trunk {
            let (ra, rb) = (self.street_part.find(a), self.street_part.find(b));
            let (la, lb) = (self.largest_main.get(&ra), self.largest_main.get(&rb));
            let (la, lb) = (la.copied().or(main_a), lb.copied().or(main_b));
            if size(lb, self) > size(la, self) {
                lb
            } else {
                la
            }
        } else if size(main_b, self) > size(main_a, self) {
            main_b
        } else {
            main_a
        };
        let Some(template) = template else {
            return false;
        };
        let depth_at = |v: usize, w: &Self| -> Option<f64> {
            let k = w.main_at[v]?;
            let p = &w.data.pipelines[k];
            if p.from_node == Some(v as i64 + 1) {
                p.depth_start_m
            } else {
                p.depth_end_m
            }
        };
        let (da, db) = (depth_at(a, self), depth_at(b, self));
        let mut tpl = self.data.pipelines[template].clone();
        tpl.pressure_class = main_a.and_then(|k| self.data.pipelines[k].pressure_class);
        tpl.invert_start_m = None;
        tpl.invert_end_m = None;
        // Nodes at the marks: the two ends, new junctions between.
        let kind = net.kind();
        let mut at: Vec<usize> = Vec::with_capacity(marks.len());
        for (i, &m) in marks.iter().enumerate() {
            if i == 0 {
                at.push(a);
            } else if i == marks.len() - 1 {
                at.push(b);
            } else {
                let p = walk.at(m).0;
                let ll = self.frame.to_ll(p);
                let id = self.data.nodes.len() as i64 + 1;
                self.data
                    .nodes
                    .push(NetworkNode::new(id, kind, NodeType::Junction, ll.into()));
                self.pos.push(p);
                self.node_net.push(Some(net));
                self.node_street.push(self.node_street[a]);
                self.node_district.push(self.node_district[a]);
                self.deg.push(0);
                self.main_at.push(None);
                self.street_part.0.push(self.street_part.0.len());
                self.link_node.push(true);
                self.joined.0.push(self.joined.0.len());
                at.push(self.data.nodes.len() - 1);
            }
        }
        let lerp = |t: f64| match (da, db) {
            (Some(x), Some(y)) => Some(((x + (y - x) * t) * 100.0).round() / 100.0),
            (x, y) => x.or(y),
        };
        let mut pipes = Vec::with_capacity(marks.len() - 1);
        for (i, w2) in marks.windows(2).enumerate() {
            let pts = walk.slice(w2[0], w2[1]);
            let mut line: Vec<Coord<f64>> = pts.iter().map(|c| self.frame.to_ll(*c)).collect();
            // The ends are the nodes' own coordinates.
            let last = line.len() - 1;
            line[0] = self.data.nodes[at[i]].geometry.0;
            line[last] = self.data.nodes[at[i + 1]].geometry.0;
            let k = self.data.pipelines.len();
            let mut p = tpl.clone();
            p.id = k as i64 + 1;
            p.geometry = LineString::new(line);
            p.from_node = Some(at[i] as i64 + 1);
            p.to_node = Some(at[i + 1] as i64 + 1);
            p.depth_start_m = lerp(w2[0] / total.max(1e-9));
            p.depth_end_m = lerp(w2[1] / total.max(1e-9));
            self.data.pipelines.push(p);
            self.pipe_net.push(Some(net));
            self.pipe_service.push(false);
            for x in [at[i], at[i + 1]] {
                self.deg[x] += 1;
                if self.main_at[x].is_none() {
                    self.main_at[x] = Some(k);
                }
            }
            pipes.push(k);
        }
        self.joined.union(a, b);
        for &x in &at[1..at.len() - 1] {
            self.joined.union(a, x);
        }
        // Valves: at each end on the link (the dead end itself, or the stub's far end), and
        // interval valves along a trunk main.
        let n = pipes.len();
        let valve = |w: &mut Self, v: usize, k: usize| {
            let node = &mut w.data.nodes[v];
            node.node_type = NodeType::Valve;
            node.on_pipe_id = Some(w.data.pipelines[k].id);
            w.new_valves.push(v);
        };
        let (va, first) = if stub[0] { (at[1], 1) } else { (a, 0) };
        valve(self, va, pipes[0]);
        let (vb, last) = if stub[1] {
            (at[n - 1], n - 2)
        } else {
            (b, n - 1)
        };
        valve(self, vb, pipes[n - 1]);
        let spacing = net.valve_spacing_m();
        let mut run = 0.0;
        for i in first..=last.min(n - 1) {
            let len = marks[i + 1] - marks[i];
            if i > first && run + len > spacing {
                valve(self, at[i], pipes[i]);
                run = 0.0;
            }
            run += len;
        }
        self.links.push(Link {
            net,
            ends: [a, b],
            pipes,
        });
        true
    }

    /// Step 5, sources: chooses the sources to keep and demotes the others; opens closed
    /// valves where a part would otherwise be cut off. Returns the valves opened.
    fn choose_sources(&mut self) -> usize {
        let originals = self.sources();
        let mut kept: HashSet<usize> = HashSet::new();
        // Per joined network: its km, then its sources by rank and spread.
        let mut km: HashMap<usize, f64> = HashMap::new();
        for k in 0..self.data.pipelines.len() {
            if let Some([a, _]) = self.ends_of(k) {
                let r = self.joined.find(a);
                *km.entry(r).or_default() += self.length_m(k) / 1000.0;
            }
        }
        let mut by_net: HashMap<usize, Vec<usize>> = HashMap::new();
        for &s in &originals {
            let r = self.joined.find(s);
            by_net.entry(r).or_default().push(s);
        }
        let mut roots: Vec<usize> = by_net.keys().copied().collect();
        roots.sort_unstable();
        for r in roots {
            let cand = &by_net[&r];
            let Some(net) = self.node_net[cand[0]] else {
                continue;
            };
            let want = (1.0 + (km[&r] / net.km_per_joined_source()).floor()) as usize;
            let mut chosen: Vec<usize> = Vec::new();
            if let Some(&best) = cand.iter().min_by_key(|&&s| (self.rank(s), s)) {
                chosen.push(best);
            }
            while chosen.len() < want.min(cand.len()) {
                let far = cand
                    .iter()
                    .copied()
                    .filter(|s| !chosen.contains(s))
                    .max_by(|&x, &y| {
                        let d = |v: usize| {
                            chosen
                                .iter()
                                .map(|&c| geom::dist(self.pos[v], self.pos[c]))
                                .fold(f64::MAX, f64::min)
                        };
                        d(x).total_cmp(&d(y)).then(y.cmp(&x))
                    });
                match far {
                    Some(v) => chosen.push(v),
                    None => break,
                }
            }
            kept.extend(chosen);
        }
        // With the valves as they stand: every part fed, no link the only feed of more
        // than MAX_CUSTOMERS_ONE_FEED customers.
        let mut reopened = 0;
        'parts: loop {
            let parts = self.operated_parts();
            let edges: Vec<(usize, usize, usize)> = self
                .links
                .iter()
                .enumerate()
                .map(|(i, l)| (i, parts.root[l.ends[0]], parts.root[l.ends[1]]))
                .collect();
            let mut roots: Vec<usize> = parts.customers.keys().copied().collect();
            roots.sort_unstable();
            // Pockets nothing can feed (no source of their own, no closed valve to open),
            // by their first part: left as they are.
            let mut hopeless: HashSet<usize> = HashSet::new();
            loop {
                let fed_roots: Vec<usize> = kept.iter().map(|&s| parts.root[s]).collect();
                let Some(pocket) = self.pocket(&parts, &edges, &roots, &fed_roots, &hopeless)
                else {
                    break 'parts;
                };
                // Keep the best source in the pocket, else open its closed boundary valves.
                let best = originals
                    .iter()
                    .copied()
                    .filter(|s| !kept.contains(s) && pocket.contains(&parts.root[*s]))
                    .min_by_key(|&s| {
                        let c = parts.customers.get(&parts.root[s]).copied().unwrap_or(0);
                        (self.rank(s), std::cmp::Reverse(c), s)
                    });
                if let Some(s) = best {
                    kept.insert(s);
                    continue;
                }
                let mut opened = 0;
                for v in 0..self.data.nodes.len() {
                    let n = &self.data.nodes[v];
                    if n.valve_position != Some(ValvePosition::Closed) {
                        continue;
                    }
                    let Some(k) = n.on_pipe_id.map(|id| (id - 1) as usize) else {
                        continue;
                    };
                    if pocket.contains(&parts.root[v]) != pocket.contains(&parts.pipe_root[k]) {
                        self.data.nodes[v].valve_position = None;
                        opened += 1;
                    }
                }
                if opened > 0 {
                    reopened += opened;
                    continue 'parts;
                }
                hopeless.extend(pocket.iter().min().copied());
            }
        }
        for s in originals {
            if !kept.contains(&s) {
                let n = &mut self.data.nodes[s];
                n.node_type = NodeType::Junction;
                n.source_kind = None;
            }
        }
        reopened
    }

    /// The first pocket, as the valves stand and with the `fed` parts holding a kept source:
    /// parts no kept source reaches, else the parts a single link is the only feed of when
    /// they hold more than [`MAX_CUSTOMERS_ONE_FEED`] customers. Pockets whose first part
    /// is `hopeless` are passed over.
    fn pocket(
        &self,
        parts: &OperatedParts,
        edges: &[(usize, usize, usize)],
        roots: &[usize],
        fed: &[usize],
        hopeless: &HashSet<usize>,
    ) -> Option<HashSet<usize>> {
        let graph = Graph::new(edges);
        let reached = graph.reach(fed, None);
        for &r in roots {
            if !reached.contains(&r) {
                let pocket = graph.reach(&[r], None);
                if pocket.iter().min().is_some_and(|m| !hopeless.contains(m)) {
                    return Some(pocket);
                }
            }
        }
        for &(i, _, _) in edges {
            let reached = graph.reach(fed, Some(i));
            let cut: HashSet<usize> = roots
                .iter()
                .copied()
                .filter(|r| !reached.contains(r))
                .collect();
            let lost: u64 = cut.iter().map(|r| parts.customers[r]).sum();
            if lost > MAX_CUSTOMERS_ONE_FEED
                && cut.iter().min().is_some_and(|m| !hopeless.contains(m))
            {
                return Some(cut);
            }
        }
        None
    }

    /// A source's rank: plants, reservoirs and gate stations before tanks and regulators.
    fn rank(&self, s: usize) -> u8 {
        match self.data.nodes[s].source_kind {
            Some(SourceKind::WaterPlant | SourceKind::GateStation | SourceKind::HeatPlant) => 0,
            Some(SourceKind::Reservoir) => 1,
            _ => 2,
        }
    }

    /// The parts of the networks as the valves stand, links left out: closed valves cut
    /// their pipe from their node.
    fn operated_parts(&mut self) -> OperatedParts {
        let nn = self.data.nodes.len();
        let np = self.data.pipelines.len();
        let mut link = vec![false; np];
        for l in &self.links {
            for &k in &l.pipes {
                link[k] = true;
            }
        }
        let mut d = Dsu::new(nn + np);
        for (k, &is_link) in link.iter().enumerate() {
            let Some(e) = self.ends_of(k) else { continue };
            if is_link {
                continue;
            }
            for x in e {
                let n = &self.data.nodes[x];
                let cut = n.valve_position == Some(ValvePosition::Closed)
                    && n.on_pipe_id == Some(k as i64 + 1);
                if !cut {
                    d.union(x, nn + k);
                }
            }
        }
        let root: Vec<usize> = (0..nn).map(|v| d.find(v)).collect();
        let pipe_root: Vec<usize> = (0..np).map(|k| d.find(nn + k)).collect();
        let mut customers: HashMap<usize, u64> = HashMap::new();
        for (v, &r) in root.iter().enumerate() {
            if self.node_net[v].is_some() && !self.link_node[v] {
                let c = &self.data.nodes[v];
                let e = customers.entry(r).or_default();
                if c.node_type == NodeType::Customer {
                    *e += c.customer_count() as u64;
                }
            }
        }
        OperatedParts {
            root,
            pipe_root,
            customers,
        }
    }

    /// Pipes of the traceable networks in a part no source feeds, as the valves stand.
    fn unfed(&mut self) -> usize {
        let nn = self.data.nodes.len();
        let np = self.data.pipelines.len();
        let mut d = Dsu::new(nn + np);
        for k in 0..np {
            let Some(e) = self.ends_of(k) else { continue };
            for x in e {
                let n = &self.data.nodes[x];
                let cut = n.valve_position == Some(ValvePosition::Closed)
                    && n.on_pipe_id == Some(k as i64 + 1);
                if !cut {
                    d.union(x, nn + k);
                }
            }
        }
        let fed: HashSet<usize> = self.sources().into_iter().map(|v| d.find(v)).collect();
        (0..np)
            .filter(|&k| self.ends_of(k).is_some() && !fed.contains(&d.find(nn + k)))
            .count()
    }
}

/// The parts of the networks as the valves stand (see [`Work::operated_parts`]).
struct OperatedParts {
    /// Each node's and each pipe's part.
    root: Vec<usize>,
    pipe_root: Vec<usize>,
    /// Customers of each part of a traceable network.
    customers: HashMap<usize, u64>,
}

/// The parts and the links between them, for reachability.
struct Graph(HashMap<usize, Vec<(usize, usize)>>);

impl Graph {
    /// From links (id, part, part).
    fn new(edges: &[(usize, usize, usize)]) -> Self {
        let mut adj: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        for &(i, a, b) in edges {
            adj.entry(a).or_default().push((i, b));
            adj.entry(b).or_default().push((i, a));
        }
        Graph(adj)
    }

    /// The parts reachable from `starts`, leaving out link `skip`.
    fn reach(&self, starts: &[usize], skip: Option<usize>) -> HashSet<usize> {
        let mut seen: HashSet<usize> = starts.iter().copied().collect();
        let mut queue: VecDeque<usize> = starts.iter().copied().collect();
        while let Some(x) = queue.pop_front() {
            for &(i, y) in self.0.get(&x).map_or(&[][..], |v| v.as_slice()) {
                if Some(i) != skip && seen.insert(y) {
                    queue.push_back(y);
                }
            }
        }
        seen
    }
}
