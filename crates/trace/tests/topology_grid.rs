//! Topology from geometry on a generated network whose true topology is known (issue 15):
//! a grid of mains drawn the way GIS data arrives — ends jittered within the tolerance,
//! lines reversed at random, extra vertices, shuffled order, valves as points somewhere on
//! a pipe's interior. Snapping must give back the generator's topology exactly: every pipe
//! between the nodes the generator joined it to, every valve splitting its pipe, and each
//! valve acting on one of its two pieces at its own node.

use lifeline_trace::{
    from_geometry, Id, LinePipe, NodeKind, PointNode, Position, Snapping, ValveNode,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeSet, HashMap};

const SPACING_M: f64 = 50.0;
const TOLERANCE_M: f64 = 0.1;

#[test]
fn a_jittered_grid_snaps_back_to_its_topology() {
    // 80 × 80 nodes: 12,640 pipes. LIFELINE_GRID_N=224 gives 99,904 (the scale check in
    // docs/trace.md, run with --release).
    let n: i64 = std::env::var("LIFELINE_GRID_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(80);
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let grid = |i: i64| [(i % n) as f64 * SPACING_M, (i / n) as f64 * SPACING_M];
    // Each coordinate moves by at most a third of the tolerance, so two ends of one node
    // are at most 0.94 tolerances apart.
    let jitter = |p: [f64; 2], rng: &mut ChaCha8Rng| {
        let j = TOLERANCE_M / 3.0;
        [p[0] + rng.gen_range(-j..j), p[1] + rng.gen_range(-j..j)]
    };
    let mut pipes = Vec::new();
    let mut truth: HashMap<Id, (i64, i64)> = HashMap::new();
    let mut valves = Vec::new();
    let mut next_id = 1;
    for node in 0..n * n {
        for other in [node + 1, node + n] {
            if (other == node + 1 && node % n == n - 1) || other >= n * n {
                continue;
            }
            let id = next_id;
            next_id += 1;
            let (a, b) = (grid(node), grid(other));
            let mut line = vec![jitter(a, &mut rng)];
            if rng.gen_bool(0.3) {
                // A bend of a few centimetres half way: an extra vertex.
                let mid = [(a[0] + b[0]) / 2.0 + 0.03, (a[1] + b[1]) / 2.0 - 0.02];
                line.push(mid);
            }
            line.push(jitter(b, &mut rng));
            if rng.gen_bool(0.5) {
                line.reverse();
            }
            truth.insert(id, (node, other));
            if rng.gen_bool(0.2) {
                // A valve somewhere on the straight first quarter, 2 cm off the line.
                let f = rng.gen_range(0.1..0.25);
                let at = [
                    a[0] + f * (b[0] - a[0]) + 0.02,
                    a[1] + f * (b[1] - a[1]) + 0.02,
                ];
                valves.push((id, at));
            }
            pipes.push(LinePipe { id, line });
        }
    }
    pipes.shuffle(&mut rng);
    // Valve ids above every grid id; the grid nodes themselves are not given as points.
    let points: Vec<PointNode> = valves
        .iter()
        .enumerate()
        .map(|(k, &(_, at))| PointNode {
            id: 1_000_000 + k as Id,
            at,
            kind: NodeKind::Valve(ValveNode {
                position: Position::Open,
                operable: true,
                on_pipe: None,
            }),
        })
        .collect();
    let started = std::time::Instant::now();
    let built = from_geometry(&pipes, &points, &Snapping::new(TOLERANCE_M).unwrap()).unwrap();
    eprintln!(
        "from_geometry: {} pipes, {} valve points in {:?}",
        pipes.len(),
        points.len(),
        started.elapsed()
    );
    let r = &built.report;
    assert!(r.crossings.is_empty() && r.near_misses.is_empty() && r.points_off_pipe.is_empty());
    assert_eq!(r.dangles.len(), 0);
    assert_eq!(r.splits.len(), valves.len());

    // Nodes back to the grid by position; valves by id.
    let node_of: HashMap<Id, String> = built
        .nodes
        .iter()
        .map(|p| {
            let label = if p.created {
                let (i, j) = (
                    (p.at[0] / SPACING_M).round() as i64,
                    (p.at[1] / SPACING_M).round() as i64,
                );
                let g = grid(j * n + i);
                assert!((g[0] - p.at[0]).hypot(g[1] - p.at[1]) < TOLERANCE_M);
                format!("g{}", j * n + i)
            } else {
                format!("v{}", p.id)
            };
            (p.id, label)
        })
        .collect();
    let key = |orig: Id, a: &str, b: &str| (orig, a.min(b).to_string(), a.max(b).to_string());
    let got: BTreeSet<(Id, String, String)> = built
        .pipes
        .iter()
        .map(|p| {
            key(
                p.split_from.unwrap_or(p.id),
                &node_of[&p.from],
                &node_of[&p.to],
            )
        })
        .collect();
    let valve_on: HashMap<Id, Id> = valves
        .iter()
        .enumerate()
        .map(|(k, &(pipe, _))| (pipe, 1_000_000 + k as Id))
        .collect();
    let mut want = BTreeSet::new();
    for (&id, &(a, b)) in &truth {
        let (a, b) = (format!("g{a}"), format!("g{b}"));
        match valve_on.get(&id) {
            Some(v) => {
                let v = format!("v{v}");
                want.insert(key(id, &a, &v));
                want.insert(key(id, &v, &b));
            }
            None => {
                want.insert(key(id, &a, &b));
            }
        }
    }
    assert_eq!(
        got.len(),
        built.pipes.len(),
        "two pieces with the same ends"
    );
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "extra {extra:?}, missing {missing:?}"
    );

    // Every valve point became a valve on one of its pipe's pieces, at itself.
    let valves_built = built.network.valves();
    assert_eq!(valves_built.len(), valves.len());
    let pieces: HashMap<Id, &lifeline_trace::topology::PlacedPipe> =
        built.pipes.iter().map(|p| (p.id, p)).collect();
    for v in valves_built {
        let piece = pieces[&v.pipe];
        assert_eq!(v.node, v.id);
        assert!(piece.from == v.id || piece.to == v.id);
        let (pipe, _) = valves[(v.id - 1_000_000) as usize];
        assert_eq!(piece.split_from, Some(pipe));
    }
}
