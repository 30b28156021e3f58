//! Isolations, connectivity and islands judged by pgRouting (issue 15): the network goes
//! into a throwaway PostGIS cluster as an edge table, and `pgr_connectedComponents` says
//! what is cut off when valves close.
//!
//! **The edge table.** Every node is a vertex. A pipe end that carries a valve gets a vertex
//! of its own, joined to the node by a *valve edge*; a pipe edge joins its two end vertices
//! (the node's, or the valve's where a valve sits). Closing a valve removes its edge; a
//! broken valve keeps it. A pipe belongs to the component of its edge, a node to the one of
//! its vertex (a node without pipes, which pgRouting does not list, is a component alone).
//!
//! **One trial** isolates one or two random pipes under a random scenario (a few valves
//! broken, a few closed) on a network whose stored valves are themselves randomly normally
//! closed or inoperable. pgRouting computes components on three graphs:
//! - *segment graph*: every valve edge removed except those of open broken or inoperable
//!   valves. The components of the pipes must be Lifeline's `segment` (S).
//! - *before*: the edges of the closed valves removed (normally closed, and closed in the
//!   scenario). U is everything in a component without a source: already without supply.
//! - *after*: additionally the edges of Lifeline's `valves_to_close` removed. A source inside
//!   S counts as out of service here, since the segment is drained for the repair (which is
//!   what `source_inside` reports): a component is fed only by a source outside S. X is
//!   everything in a component that is not fed, minus U.
//!
//! **The equivalence:** X = (S ∪ pockets) \ U, as node sets and as pipe sets, with the
//! pockets disjoint from U. Why: closing the listed valves and the closed ones separates S
//! from every part outside it that still reaches a source; the boundary valves left open
//! (those whose far side reaches no source without S) join S only to parts that have no
//! source without S. So S's component after closing has no source outside S, and every
//! other component is a part of the network without S, fed exactly when Lifeline says it
//! is. Taking U away is what "a part without a source before is not blamed on the
//! isolation" means; it also takes S away when S itself lay in a part without a source,
//! which the trials make happen. Also:
//! - `source_inside` holds exactly when pgRouting's S holds a source;
//! - each listed valve is needed: left open with the others closed, S's side of it reaches a
//!   source outside S;
//! - `connected(pipe)` is the pipe's component in *before*;
//! - `islands_without_source` is the sourceless components of *before* without a
//!   scenario, as parts.
//!
//! Networks: WNTR's Net3 and ky10 with their frozen valve layers (`tests/fixtures/`, read
//! through `wntr_segments.py`) and a seeded 1,500-pipe street grid (`common/grid.rs`, the
//! benches' generator). The tests also assert that the cases the equivalence tells apart
//! occurred: pockets and valves left open on purpose on every network, a source inside the
//! segment on Net3 and ky10, islands and a segment already without supply on ky10 and the
//! grid. Trials with two pipes in different parts of the network are what caught a wrong
//! "fed before" in a first version of the faster isolation.

#[path = "common/grid.rs"]
mod grid;
#[path = "common/wntr_net.rs"]
mod wntr_net;

use lifeline_trace::{Id, Isolation, Network, NodeRole, Part, Position, Scenario, Valve};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeSet, HashMap, HashSet};
use tokio_postgres::{Client, NoTls};

/// A database of the shared throwaway cluster with pgRouting, and a client on a small
/// runtime (the workspace has no synchronous PostgreSQL client).
struct Pg {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Pg {
    fn new(prefix: &str) -> Pg {
        let url = lifeline_pgcluster::shared()
            .fresh_database(prefix)
            .expect("a test database (scripts/setup.sh installs PostgreSQL)");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
            // The connection runs whenever the runtime is driven, i.e. in each block_on.
            tokio::spawn(conn);
            client
        });
        let pg = Pg { rt, client };
        pg.exec(
            "CREATE EXTENSION IF NOT EXISTS postgis; \
             CREATE EXTENSION IF NOT EXISTS pgrouting;",
        );
        pg
    }

    fn exec(&self, sql: &str) {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql:.200}: {e}"));
    }
}

/// A network as pgRouting's edge table, and how its elements map to vertices.
struct Graph<'a> {
    net: &'a Network,
    pg: &'a Pg,
    /// The vertex at each pipe's two ends (a valve's own vertex where one sits).
    pipe_ends: Vec<[i64; 2]>,
}

/// Component labels of every element: nodes in network order, then pipes.
struct Components {
    nodes: Vec<i64>,
    pipes: Vec<i64>,
}

impl<'a> Graph<'a> {
    /// Loads `net` into table `edges`: vertices 1..=n are the nodes in network order, then
    /// one per valve; edges are the pipes, then the valve edges.
    fn load(net: &'a Network, pg: &'a Pg) -> Graph<'a> {
        let node_vertex: HashMap<Id, i64> = net
            .nodes()
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id, i as i64 + 1))
            .collect();
        let base = net.nodes().len() as i64;
        let mut valve_vertex: HashMap<(Id, Id), i64> = HashMap::new();
        let mut rows = Vec::new();
        let np = net.pipes().len() as i64;
        for (j, v) in net.valves().iter().enumerate() {
            let vertex = base + j as i64 + 1;
            valve_vertex.insert((v.pipe, v.node), vertex);
            rows.push(format!(
                "({},{vertex},{},NULL,{})",
                np + j as i64 + 1,
                node_vertex[&v.node],
                v.id
            ));
        }
        let mut pipe_ends = Vec::new();
        for (i, p) in net.pipes().iter().enumerate() {
            let end = |node: Id| {
                valve_vertex
                    .get(&(p.id, node))
                    .copied()
                    .unwrap_or(node_vertex[&node])
            };
            let ends = [end(p.from), end(p.to)];
            rows.push(format!("({},{},{},{},NULL)", i + 1, ends[0], ends[1], p.id));
            pipe_ends.push(ends);
        }
        pg.exec(
            "CREATE TABLE edges (id bigint PRIMARY KEY, source bigint NOT NULL, \
             target bigint NOT NULL, pipe bigint, valve bigint, \
             cost float8 NOT NULL DEFAULT 1, reverse_cost float8 NOT NULL DEFAULT 1)",
        );
        for chunk in rows.chunks(2000) {
            pg.exec(&format!(
                "INSERT INTO edges (id, source, target, pipe, valve) VALUES {}",
                chunk.join(",")
            ));
        }
        Graph { net, pg, pipe_ends }
    }

    /// `pgr_connectedComponents` with the edges of the valves `removed` taken out.
    fn components(&self, removed: &BTreeSet<Id>) -> Components {
        let list: Vec<String> = removed.iter().map(|v| v.to_string()).collect();
        let edges = format!(
            "SELECT id, source, target, cost, reverse_cost FROM edges \
             WHERE valve IS NULL OR valve <> ALL('{{{}}}'::bigint[])",
            list.join(",")
        );
        let rows = self
            .pg
            .rt
            .block_on(self.pg.client.query(
                "SELECT node, component FROM pgr_connectedComponents($1)",
                &[&edges],
            ))
            .expect("pgr_connectedComponents");
        let of: HashMap<i64, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        // A vertex pgRouting does not list has no edge left: a component of its own, with
        // a label no component of pgRouting's (positive vertex ids) can have.
        let nodes = (1..=self.net.nodes().len() as i64)
            .map(|v| of.get(&v).copied().unwrap_or(-v))
            .collect();
        let pipes = self.pipe_ends.iter().map(|e| of[&e[0]]).collect();
        Components { nodes, pipes }
    }

    /// The labels holding a source, leaving out the sources `out` (by node index).
    fn fed(&self, c: &Components, out: &dyn Fn(usize) -> bool) -> HashSet<i64> {
        (0..self.net.nodes().len())
            .filter(|&n| self.net.nodes()[n].role == NodeRole::Source && !out(n))
            .map(|n| c.nodes[n])
            .collect()
    }

    /// The elements whose label satisfies `keep`, as a part.
    fn part(&self, c: &Components, keep: &dyn Fn(Element) -> bool) -> Part {
        let nodes = (0..c.nodes.len())
            .filter(|&i| keep(Element::Node(i)))
            .map(|i| self.net.nodes()[i].id)
            .collect();
        let pipes = (0..c.pipes.len())
            .filter(|&i| keep(Element::Pipe(i)))
            .map(|i| self.net.pipes()[i].id)
            .collect();
        Part { nodes, pipes }
    }
}

/// A node or a pipe, by its index in the network.
#[derive(Clone, Copy)]
enum Element {
    Node(usize),
    Pipe(usize),
}

impl Components {
    fn of(&self, e: Element) -> i64 {
        match e {
            Element::Node(i) => self.nodes[i],
            Element::Pipe(i) => self.pipes[i],
        }
    }
}

/// What the trials of one network ran into, to show the equivalence was tested where its
/// parts differ.
#[derive(Default, Debug)]
struct Seen {
    pockets: usize,
    source_inside: usize,
    segment_unfed_before: usize,
    left_open: usize,
    to_close: usize,
    islands: usize,
}

fn union(a: &Part, b: &Part) -> (BTreeSet<Id>, BTreeSet<Id>) {
    (
        a.nodes.iter().chain(&b.nodes).copied().collect(),
        a.pipes.iter().chain(&b.pipes).copied().collect(),
    )
}

fn sets(p: &Part) -> (BTreeSet<Id>, BTreeSet<Id>) {
    union(p, &Part::default())
}

/// The network with random stored valve states: some normally closed, some inoperable.
fn with_states(net: &Network, rng: &mut ChaCha8Rng, closed: f64, inoperable: f64) -> Network {
    let valves = net
        .valves()
        .iter()
        .map(|v| Valve {
            position: if rng.gen_bool(closed) {
                Position::Closed
            } else {
                Position::Open
            },
            operable: !rng.gen_bool(inoperable),
            ..v.clone()
        })
        .collect();
    Network::new(net.nodes().to_vec(), net.pipes().to_vec(), valves).expect("same network")
}

/// One isolation judged by pgRouting; see the module's documentation.
fn trial(g: &Graph, pipes: &[Id], s: &Scenario, seen: &mut Seen) {
    let net = g.net;
    let what = format!("isolating {pipes:?} with {s:?}");
    let iso: Isolation = net.isolate(pipes, s).expect("isolate");
    // The precomputed segments give the same answer, so pgRouting judges both paths.
    let mut on_table = net.clone();
    on_table.precompute_segments();
    assert_eq!(
        on_table.isolate(pipes, s).expect("isolate"),
        iso,
        "{what}: on precomputed segments"
    );
    let closed: BTreeSet<Id> = net
        .valves()
        .iter()
        .filter(|v| v.position == Position::Closed || s.closed.contains(&v.id))
        .map(|v| v.id)
        .collect();
    let passing = |v: &Valve| !closed.contains(&v.id) && (!v.operable || s.broken.contains(&v.id));
    let pipe_ix: HashMap<Id, usize> = net
        .pipes()
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id, i))
        .collect();

    // The segment: only broken or inoperable open valves conduct.
    let all_but_passing: BTreeSet<Id> = net
        .valves()
        .iter()
        .filter(|v| !passing(v))
        .map(|v| v.id)
        .collect();
    let seg = g.components(&all_but_passing);
    let seg_labels: HashSet<i64> = pipes.iter().map(|p| seg.pipes[pipe_ix[p]]).collect();
    let in_s = |e: Element| seg_labels.contains(&seg.of(e));
    let s_part = g.part(&seg, &in_s);
    assert_eq!(sets(&iso.segment), sets(&s_part), "{what}: the segment");
    let s_has_source = (0..net.nodes().len())
        .any(|n| net.nodes()[n].role == NodeRole::Source && in_s(Element::Node(n)));
    assert_eq!(iso.source_inside, s_has_source, "{what}: source inside");

    let before = g.components(&closed);
    let fed_before = g.fed(&before, &|_| false);
    let unfed_before = |e: Element| !fed_before.contains(&before.of(e));
    let u = g.part(&before, &unfed_before);

    let to_close: BTreeSet<Id> = iso.valves_to_close.iter().copied().collect();
    let after_removed: BTreeSet<Id> = closed.union(&to_close).copied().collect();
    let after = g.components(&after_removed);
    let fed_after = g.fed(&after, &|n| in_s(Element::Node(n)));
    let x = g.part(&after, &|e| {
        !fed_after.contains(&after.of(e)) && !unfed_before(e)
    });

    // X = (S ∪ pockets) \ U, and the pockets are never in U.
    let mut pockets = Part::default();
    for p in &iso.pockets {
        pockets.nodes.extend(&p.nodes);
        pockets.pipes.extend(&p.pipes);
    }
    let (u_nodes, u_pipes) = sets(&u);
    let (mut want_nodes, mut want_pipes) = union(&iso.segment, &pockets);
    assert!(
        pockets.nodes.iter().all(|n| !u_nodes.contains(n))
            && pockets.pipes.iter().all(|p| !u_pipes.contains(p)),
        "{what}: a pocket was already without a source"
    );
    want_nodes.retain(|n| !u_nodes.contains(n));
    want_pipes.retain(|p| !u_pipes.contains(p));
    let (x_nodes, x_pipes) = sets(&x);
    assert_eq!(x_nodes, want_nodes, "{what}: nodes cut off");
    assert_eq!(x_pipes, want_pipes, "{what}: pipes cut off");

    // Every listed valve is needed: left open, S's side of it reaches a source outside S.
    let node_ix: HashMap<Id, usize> = net
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id, i))
        .collect();
    for &v in &to_close {
        let valve = net
            .valves()
            .iter()
            .find(|x| x.id == v)
            .expect("listed valve");
        let (p, n) = (
            Element::Pipe(pipe_ix[&valve.pipe]),
            Element::Node(node_ix[&valve.node]),
        );
        let inside = if in_s(p) { p } else { n };
        let mut open = after_removed.clone();
        open.remove(&v);
        let c = g.components(&open);
        let fed = g.fed(&c, &|n| in_s(Element::Node(n)));
        assert!(
            fed.contains(&c.of(inside)),
            "{what}: valve {v} is listed but the segment reaches no source through it"
        );
    }

    // connected(): the pipe's component as the network stands.
    let first = pipe_ix[&pipes[0]];
    let label = before.pipes[first];
    let want = g.part(&before, &|e| before.of(e) == label);
    let got = net.connected(pipes[0], s).expect("connected");
    assert_eq!(sets(&got), sets(&want), "{what}: connected");

    seen.pockets += usize::from(!iso.pockets.is_empty());
    seen.source_inside += usize::from(iso.source_inside);
    seen.segment_unfed_before +=
        usize::from(!s_part.pipes.is_empty() && s_part.pipes.iter().all(|p| u_pipes.contains(p)));
    seen.left_open += usize::from(
        iso.boundary_valves
            .iter()
            .any(|b| !b.closed && !b.far_side_fed),
    );
    seen.to_close += usize::from(!to_close.is_empty());
}

/// `islands_without_source` against pgRouting's sourceless components as the network
/// stands (only normally closed valves removed).
fn islands(g: &Graph, seen: &mut Seen) {
    let closed: BTreeSet<Id> = g
        .net
        .valves()
        .iter()
        .filter(|v| v.position == Position::Closed)
        .map(|v| v.id)
        .collect();
    let c = g.components(&closed);
    let fed = g.fed(&c, &|_| false);
    let mut parts: HashMap<i64, Part> = HashMap::new();
    for (i, n) in g.net.nodes().iter().enumerate() {
        if !fed.contains(&c.nodes[i]) {
            parts.entry(c.nodes[i]).or_default().nodes.push(n.id);
        }
    }
    for (i, p) in g.net.pipes().iter().enumerate() {
        if !fed.contains(&c.pipes[i]) {
            parts.entry(c.pipes[i]).or_default().pipes.push(p.id);
        }
    }
    let want: BTreeSet<_> = parts.values().map(sets).collect();
    let got: BTreeSet<_> = g.net.islands_without_source().iter().map(sets).collect();
    assert_eq!(got, want, "islands without a source");
    seen.islands += want.len();
}

/// Runs `trials` random isolations on `net` with random stored states and scenarios.
fn judge(name: &str, net: &Network, trials: usize, seed: u64) -> Seen {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let net = with_states(net, &mut rng, 0.06, 0.1);
    let pg = Pg::new(&format!("pgr_{}", name.to_lowercase()));
    let g = Graph::load(&net, &pg);
    let mut seen = Seen::default();
    islands(&g, &mut seen);
    let valve_ids: Vec<Id> = net.valves().iter().map(|v| v.id).collect();
    for _ in 0..trials {
        let (np, nb, nc) = (
            rng.gen_range(1..=2),
            rng.gen_range(0..=3),
            rng.gen_range(0..=3),
        );
        let pipes: Vec<Id> = net
            .pipes()
            .choose_multiple(&mut rng, np)
            .map(|p| p.id)
            .collect();
        let s = Scenario {
            broken: valve_ids.choose_multiple(&mut rng, nb).copied().collect(),
            closed: valve_ids.choose_multiple(&mut rng, nc).copied().collect(),
        };
        trial(&g, &pipes, &s, &mut seen);
    }
    eprintln!("{name}: {trials} trials, {seen:?}");
    seen
}

/// The cases the equivalence tells apart all occurred, so the trials were not vacuous.
fn assert_covered(name: &str, seen: &Seen) {
    assert!(
        seen.pockets > 0 && seen.to_close > 0 && seen.left_open > 0,
        "{name}: the trials never cut off a pocket or never left a valve open: {seen:?}"
    );
}

#[test]
fn net3_isolations_equal_pgrouting() {
    let o = wntr_net::oracle("Net3", 7, 2, "-");
    let seen = judge("Net3", &wntr_net::network(&o), 150, 15);
    assert_covered("Net3", &seen);
    assert!(
        seen.source_inside > 0,
        "Net3: never a source inside: {seen:?}"
    );
}

#[test]
fn ky10_isolations_equal_pgrouting() {
    let o = wntr_net::oracle("ky10", 7, 2, "-");
    let seen = judge("ky10", &wntr_net::network(&o), 120, 16);
    assert_covered("ky10", &seen);
    assert!(
        seen.source_inside > 0 && seen.islands > 0 && seen.segment_unfed_before > 0,
        "ky10: never a source inside, an island or a segment already without supply: {seen:?}"
    );
}

#[test]
fn grid_isolations_equal_pgrouting() {
    let seen = judge("grid", &grid::water_network(1500, 17), 150, 18);
    assert_covered("grid", &seen);
    assert!(
        seen.islands > 0 && seen.segment_unfed_before > 0,
        "grid: never an island or a segment already without supply: {seen:?}"
    );
}
