//! Isolation semantics on small networks drawn by hand, each answer worked out on paper.
//!
//! The main network (S = source, C = customer, V = valve on the pipe at the node):
//!
//! ```text
//!   S1 --p1-- J2 --p2-- J3 --p3-- C4(10)
//!                       |
//!                       p4
//!                       |
//!                       J5 --p5-- C6(5)
//! ```
//! Valves: v1 on p2 at J2, v2 on p2 at J3, v3 on p4 at J3, v4 on p3 at J3.

use super::*;

fn node(id: Id, role: NodeRole) -> Node {
    Node { id, role }
}

fn pipe(id: Id, from: Id, to: Id) -> Pipe {
    Pipe { id, from, to }
}

fn valve(id: Id, pipe: Id, node: Id) -> Valve {
    Valve {
        id,
        pipe,
        node,
        position: Position::Open,
        operable: true,
    }
}

fn main_network(valves: Vec<Valve>) -> Network {
    Network::new(
        vec![
            node(1, NodeRole::Source),
            node(2, NodeRole::Junction),
            node(3, NodeRole::Junction),
            node(4, NodeRole::Customer { customers: 10 }),
            node(5, NodeRole::Junction),
            node(6, NodeRole::Customer { customers: 5 }),
        ],
        vec![
            pipe(1, 1, 2),
            pipe(2, 2, 3),
            pipe(3, 3, 4),
            pipe(4, 3, 5),
            pipe(5, 5, 6),
        ],
        valves,
    )
    .unwrap()
}

fn valves() -> Vec<Valve> {
    vec![
        valve(1, 2, 2),
        valve(2, 2, 3),
        valve(3, 4, 3),
        valve(4, 3, 3),
    ]
}

#[test]
fn isolating_a_pipe_closes_only_the_valves_towards_a_source() {
    let net = main_network(valves());
    let iso = net.isolate(&[2], &Scenario::default()).unwrap();
    // p2 alone, between v1 and v2; J2 and J3 lie outside it (the valves sit on p2).
    assert_eq!(iso.segment.pipes, vec![2]);
    assert!(iso.segment.nodes.is_empty());
    // v1's far side (J2) reaches S1: close it. v2's far side (J3) only had supply through
    // p2: no need to close it; J3 and everything behind it is a pocket.
    assert_eq!(iso.valves_to_close, vec![1]);
    assert_eq!(iso.boundary_valves.len(), 2);
    assert_eq!(iso.pockets.len(), 1);
    assert_eq!(iso.pockets[0].pipes, vec![3, 4, 5]);
    assert_eq!(iso.pockets[0].nodes, vec![3, 4, 5, 6]);
    assert_eq!(iso.customers.count, 15);
    assert_eq!(iso.customers.nodes, vec![4, 6]);
    assert!(!iso.source_inside);
}

#[test]
fn a_branch_behind_one_valve_closes_that_valve() {
    let net = main_network(valves());
    let iso = net.isolate(&[5], &Scenario::default()).unwrap();
    // p4 and p5 with J5 and C6, behind v3.
    assert_eq!(iso.segment.pipes, vec![4, 5]);
    assert_eq!(iso.segment.nodes, vec![5, 6]);
    assert_eq!(iso.valves_to_close, vec![3]);
    assert!(iso.pockets.is_empty());
    assert_eq!(iso.customers.count, 5);
}

#[test]
fn a_broken_valve_grows_the_segment_to_the_next_valves() {
    let net = main_network(valves());
    let s = Scenario {
        broken: [3].into(),
        ..Scenario::default()
    };
    let iso = net.isolate(&[5], &s).unwrap();
    // v3 passes: the segment reaches J3 and stops at v2 and v4.
    assert_eq!(iso.segment.pipes, vec![4, 5]);
    assert_eq!(iso.segment.nodes, vec![3, 5, 6]);
    assert_eq!(iso.valves_to_close, vec![2]);
    // v4's far side (p3, C4) loses its supply: a pocket, and v4 need not be closed.
    assert_eq!(iso.pockets.len(), 1);
    assert_eq!(iso.pockets[0].nodes, vec![4]);
    assert_eq!(iso.customers.count, 15);
    let listed: Vec<Id> = iso.boundary_valves.iter().map(|b| b.id).collect();
    assert_eq!(listed, vec![2, 4]);
}

#[test]
fn a_closed_valve_bounds_the_segment_but_is_never_listed_to_operate() {
    let net = main_network(valves());
    let s = Scenario {
        closed: [2].into(),
        ..Scenario::default()
    };
    let iso = net.isolate(&[2], &s).unwrap();
    assert_eq!(iso.segment.pipes, vec![2]);
    assert_eq!(iso.valves_to_close, vec![1]);
    let v2 = iso.boundary_valves.iter().find(|b| b.id == 2).unwrap();
    assert!(v2.closed);
    // Behind the closed v2 nothing was fed before: no pocket is blamed on the isolation.
    assert!(iso.pockets.is_empty());
    assert_eq!(iso.customers.count, 0);
}

#[test]
fn a_source_inside_the_segment_is_reported_not_refused() {
    let net = main_network(valves());
    let iso = net.isolate(&[1], &Scenario::default()).unwrap();
    assert!(iso.source_inside);
    assert_eq!(iso.segment.nodes, vec![1, 2]);
    // v1's far side (p2) has no other source: nothing to close, everything is cut off.
    assert!(iso.valves_to_close.is_empty());
    assert_eq!(iso.customers.count, 15);
}

#[test]
fn a_loop_with_two_sources_keeps_its_supply() {
    // S1 -p1- J2 -p2- S3, and J2 -p3- C4; valves on p1 and p2 at J2, and on p3 at J2.
    let net = Network::new(
        vec![
            node(1, NodeRole::Source),
            node(2, NodeRole::Junction),
            node(3, NodeRole::Source),
            node(4, NodeRole::Customer { customers: 1 }),
        ],
        vec![pipe(1, 1, 2), pipe(2, 2, 3), pipe(3, 2, 4)],
        vec![valve(1, 1, 2), valve(2, 2, 2), valve(3, 3, 2)],
    )
    .unwrap();
    let iso = net.isolate(&[1], &Scenario::default()).unwrap();
    assert_eq!(iso.segment.pipes, vec![1]);
    assert!(iso.source_inside);
    // J2 is still fed from S3: close v1.
    assert_eq!(iso.valves_to_close, vec![1]);
    assert!(iso.pockets.is_empty());
    assert_eq!(iso.customers.count, 0);
}

#[test]
fn connectivity_and_islands_follow_closed_valves() {
    let mut vs = valves();
    vs[1].position = Position::Closed;
    let net = main_network(vs);
    let part = net.connected(1, &Scenario::default()).unwrap();
    assert_eq!(part.pipes, vec![1, 2]);
    let islands = net.islands_without_source();
    assert_eq!(islands.len(), 1);
    assert_eq!(islands[0].pipes, vec![3, 4, 5]);
}

#[test]
fn a_bad_network_is_refused_with_its_reason() {
    let bad = |pipes: Vec<Pipe>, valves: Vec<Valve>| {
        Network::new(
            vec![node(1, NodeRole::Source), node(2, NodeRole::Junction)],
            pipes,
            valves,
        )
        .unwrap_err()
    };
    assert_eq!(
        bad(vec![pipe(1, 1, 9)], vec![]),
        TraceError::UnknownNode { pipe: 1, node: 9 }
    );
    assert_eq!(
        bad(vec![pipe(1, 1, 2), pipe(1, 2, 1)], vec![]),
        TraceError::Duplicate {
            what: "pipe",
            id: 1
        }
    );
    assert_eq!(
        bad(vec![pipe(1, 1, 2)], vec![valve(1, 7, 1)]),
        TraceError::UnknownPipe { valve: 1, pipe: 7 }
    );
    assert!(matches!(
        bad(vec![pipe(1, 1, 1)], vec![valve(1, 1, 2)]),
        TraceError::NotAtPipeEnd { .. }
    ));
    assert!(matches!(
        bad(vec![pipe(1, 1, 2)], vec![valve(1, 1, 2), valve(2, 1, 2)]),
        TraceError::TwoValves { .. }
    ));
    let net = main_network(valves());
    assert_eq!(
        net.isolate(&[99], &Scenario::default()).unwrap_err(),
        TraceError::NoPipe(99)
    );
}

/// Two start pipes in adjacent segments, joined by an open valve: the part beyond the second
/// was fed through the first before the isolation, so it is a pocket afterwards.
///
/// ```text
///   S1 --p10-- a2 --p11-- b3 --p12-- c4 --p13-- C5(7)
/// ```
/// Valves: v20 on p10 at a2, v21 on p11 at b3, v22 on p12 at c4.
#[test]
fn a_part_fed_through_another_start_pipe_is_a_pocket() {
    let mut net = Network::new(
        vec![
            node(1, NodeRole::Source),
            node(2, NodeRole::Junction),
            node(3, NodeRole::Junction),
            node(4, NodeRole::Junction),
            node(5, NodeRole::Customer { customers: 7 }),
        ],
        vec![
            pipe(10, 1, 2),
            pipe(11, 2, 3),
            pipe(12, 3, 4),
            pipe(13, 4, 5),
        ],
        vec![valve(20, 10, 2), valve(21, 11, 3), valve(22, 12, 4)],
    )
    .unwrap();
    let walked = net.isolate(&[11, 12], &Scenario::default()).unwrap();
    assert_eq!(walked.segment.pipes, vec![11, 12]);
    // v21 lies between the two pieces: not on the boundary, and not to close.
    let ids: Vec<Id> = walked.boundary_valves.iter().map(|b| b.id).collect();
    assert_eq!(ids, vec![20, 22]);
    // Only v20 needs closing: beyond v22 nothing is fed once the segment is cut off.
    assert_eq!(walked.valves_to_close, vec![20]);
    assert_eq!(
        walked.pockets,
        vec![Part {
            nodes: vec![4, 5],
            pipes: vec![13]
        }]
    );
    assert_eq!(walked.customers.count, 7);
    // The precomputed segments give the same answer.
    net.precompute_segments();
    assert_eq!(
        net.isolate(&[11, 12], &Scenario::default()).unwrap(),
        walked
    );
}

/// The precomputed segments answer what the walk answers on the main network, for every
/// pipe and every single broken or closed valve.
#[test]
fn precomputed_segments_answer_as_the_walk_does() {
    let mut net = main_network(valves());
    net.precompute_segments();
    net.check_precomputed_segments().unwrap();
    assert_eq!(net.segment_count(), Some(5));
    let seg = net.precomputed_segment(3).unwrap();
    assert_eq!(seg.pipes, vec![3]);
    assert_eq!(seg.boundary_valves, vec![4]);
    assert_eq!(seg.customers.count, 10);
    let mut scenarios = vec![Scenario::default()];
    for v in 1..=4 {
        scenarios.push(Scenario {
            broken: [v].into(),
            ..Scenario::default()
        });
        scenarios.push(Scenario {
            closed: [v].into(),
            ..Scenario::default()
        });
    }
    for s in &scenarios {
        for p in 1..=5 {
            assert_eq!(
                net.isolate(&[p], s).unwrap(),
                net.isolate_without_table(&[p], s).unwrap(),
                "pipe {p}, {s:?}"
            );
        }
    }
}

/// The edits themselves, one at a time and without the records' bookkeeping (which
/// re-derives whole neighbourhoods): after each random edit and `settle_segments`, the
/// precomputed segments equal a fresh computation, and isolations on them equal the walk.
#[test]
fn single_edits_keep_the_precomputed_segments_exact() {
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    for seed in 0..30u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: Id = 60;
        let nodes = (1..=n)
            .map(|id| {
                let role = match rng.gen_range(0..8) {
                    0 => NodeRole::Source,
                    1 | 2 => NodeRole::Customer {
                        customers: rng.gen_range(1..9),
                    },
                    _ => NodeRole::Junction,
                };
                node(id, role)
            })
            .collect();
        let pipes: Vec<Pipe> = (1..=n)
            .map(|a| pipe(100 + a, a, (a + rng.gen_range(0..4)).min(n)))
            .collect();
        let mut net = Network::new(nodes, pipes, Vec::new()).unwrap();
        net.precompute_segments();
        let mut next: Id = 1000;
        for step in 0..150 {
            let node_ids: Vec<Id> = net.nodes().iter().map(|n| n.id).collect();
            let pipe_ids: Vec<Id> = net.pipes().iter().map(|p| p.id).collect();
            next += 1;
            let done = match rng.gen_range(0..8) {
                0 => net.add_node(node(next, NodeRole::Junction)),
                1 => {
                    // Only a node no pipe ends at can go.
                    let free: Vec<Id> = node_ids
                        .iter()
                        .copied()
                        .filter(|id| !net.pipes().iter().any(|p| p.from == *id || p.to == *id))
                        .collect();
                    match free.choose(&mut rng) {
                        Some(&id) => net.remove_node(id),
                        None => Ok(()),
                    }
                }
                2 => {
                    let id = *node_ids.choose(&mut rng).unwrap();
                    let role = if rng.gen_bool(0.5) {
                        NodeRole::Source
                    } else {
                        NodeRole::Customer { customers: 3 }
                    };
                    net.set_node_role(id, role)
                }
                3 | 4 => net.add_pipe(pipe(
                    next,
                    *node_ids.choose(&mut rng).unwrap(),
                    *node_ids.choose(&mut rng).unwrap(),
                )),
                5 => match pipe_ids.choose(&mut rng) {
                    Some(&id) => net.remove_pipe(id),
                    None => Ok(()),
                },
                6 => match net.pipes().choose(&mut rng).cloned() {
                    Some(p) => {
                        let at = if rng.gen_bool(0.5) { p.from } else { p.to };
                        let v = Valve {
                            id: next,
                            pipe: p.id,
                            node: at,
                            position: if rng.gen_bool(0.2) {
                                Position::Closed
                            } else {
                                Position::Open
                            },
                            operable: rng.gen_bool(0.8),
                        };
                        // Refused when that end has a valve already: nothing changes then.
                        match net.add_valve(v) {
                            Err(TraceError::TwoValves { .. }) => Ok(()),
                            other => other,
                        }
                    }
                    None => Ok(()),
                },
                _ => match net.valves().choose(&mut rng).map(|v| v.id) {
                    Some(id) => net.remove_valve(id),
                    None => Ok(()),
                },
            };
            done.unwrap_or_else(|e| panic!("seed {seed}, step {step}: {e}"));
            net.settle_segments();
            if let Err(e) = net.check_precomputed_segments() {
                panic!("seed {seed}, step {step}: {e}");
            }
            // The edited network is one `new` would build from its parts.
            let again = Network::new(
                net.nodes().to_vec(),
                net.pipes().to_vec(),
                net.valves().to_vec(),
            )
            .unwrap();
            let valves: Vec<Id> = net.valves().iter().map(|v| v.id).collect();
            for p in net.pipes().choose_multiple(&mut rng, 3) {
                let mut s = Scenario::default();
                if let Some(&v) = valves.choose(&mut rng) {
                    if rng.gen_bool(0.5) {
                        s.broken.insert(v);
                    } else {
                        s.closed.insert(v);
                    }
                }
                let on_table = net.isolate(&[p.id], &s).unwrap();
                assert_eq!(on_table, net.isolate_without_table(&[p.id], &s).unwrap());
                assert_eq!(on_table, again.isolate(&[p.id], &s).unwrap());
            }
        }
    }
}
