//! A seeded generator of a realistic water distribution network, for the pgRouting oracle
//! and the benches (issue 15).
//!
//! The layout is the one of a town: a street grid of mains (each block split in two by a
//! mid-block tee, a few blocks missing so the loops are uneven), dead-end side streets
//! branching off the grid, a few sources (plant, tanks) each on its own pipe to an
//! intersection, and customer connections on leaf service pipes. Valves follow the N-1
//! rule utilities use: at every node where three or more mains meet, a valve on each main
//! but one. Service pipes get none (their curb stops are not network valves), so a
//! customer is always in the segment of the main it hangs on. Every valve is open and
//! operable; callers set states themselves.

use lifeline_trace::{Id, Network, Node, NodeRole, Pipe, Position, Valve};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A network of exactly `pipes` pipes (at least a few hundred), the same for the same seed.
pub fn water_network(pipes: usize, seed: u64) -> Network {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut nodes: Vec<Node> = Vec::new();
    let mut list: Vec<Pipe> = Vec::new();
    // Mains only, as (pipe index): the N-1 rule counts them, not service pipes.
    let mut mains: Vec<usize> = Vec::new();
    let add_node = |nodes: &mut Vec<Node>, role: NodeRole| {
        let id = nodes.len() as Id + 1;
        nodes.push(Node { id, role });
        id
    };
    let add_pipe = |list: &mut Vec<Pipe>, from: Id, to: Id| {
        list.push(Pipe {
            id: list.len() as Id + 1,
            from,
            to,
        });
        list.len() - 1
    };

    // Mains make up about 40 % of the pipes: 4 k (k - 1) half-blocks on a k × k grid.
    let k = (((pipes as f64) * 0.1).sqrt().round() as usize).max(4);
    let at: Vec<Id> = (0..k * k)
        .map(|_| add_node(&mut nodes, NodeRole::Junction))
        .collect();
    let mut tees: Vec<Id> = Vec::new();
    for r in 0..k {
        for c in 0..k {
            let here = at[r * k + c];
            let next = [
                (c + 1 < k).then(|| at[r * k + c + 1]),
                (r + 1 < k).then(|| at[(r + 1) * k + c]),
            ];
            for there in next.into_iter().flatten() {
                // About one block in twelve is missing: uneven loops, some long detours.
                if rng.gen_bool(1.0 / 12.0) {
                    continue;
                }
                let mid = add_node(&mut nodes, NodeRole::Junction);
                tees.push(mid);
                mains.push(add_pipe(&mut list, here, mid));
                mains.push(add_pipe(&mut list, mid, there));
            }
        }
    }
    // Dead-end side streets of one to four pipes off a tee or an intersection.
    let mut service_at: Vec<Id> = tees.clone();
    for _ in 0..pipes / 50 {
        let mut from = if rng.gen_bool(0.5) {
            *tees.choose(&mut rng).expect("tees")
        } else {
            at[rng.gen_range(0..at.len())]
        };
        for _ in 0..rng.gen_range(1..=4) {
            let to = add_node(&mut nodes, NodeRole::Junction);
            mains.push(add_pipe(&mut list, from, to));
            service_at.push(to);
            from = to;
        }
    }
    // A few sources, each on its own main to an intersection.
    for _ in 0..(pipes / 4000).clamp(1, 4) {
        let s = add_node(&mut nodes, NodeRole::Source);
        mains.push(add_pipe(&mut list, s, at[rng.gen_range(0..at.len())]));
    }
    // Customers on leaf service pipes, until the network has `pipes` pipes.
    assert!(
        list.len() < pipes,
        "{pipes} pipes is too few for a {k} × {k} grid"
    );
    while list.len() < pipes {
        let on = *service_at.choose(&mut rng).expect("service nodes");
        let c = add_node(
            &mut nodes,
            NodeRole::Customer {
                customers: rng.gen_range(1..=12),
            },
        );
        add_pipe(&mut list, on, c);
    }

    // N-1: at each node where three or more mains meet, a valve on every main but one.
    let mut incident: Vec<Vec<usize>> = vec![Vec::new(); nodes.len() + 1];
    for &m in &mains {
        incident[list[m].from as usize].push(m);
        incident[list[m].to as usize].push(m);
    }
    let mut valves = Vec::new();
    for (node, ms) in incident.iter_mut().enumerate() {
        if ms.len() < 3 {
            continue;
        }
        ms.shuffle(&mut rng);
        for &m in &ms[1..] {
            valves.push(Valve {
                id: valves.len() as Id + 1,
                pipe: list[m].id,
                node: node as Id,
                position: Position::Open,
                operable: true,
            });
        }
    }
    Network::new(nodes, list, valves).expect("the generator builds a valid network")
}
