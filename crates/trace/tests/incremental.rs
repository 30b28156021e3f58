//! Precomputed segments under edits (issue 15: edits invalidate precomputed segments
//! precisely). Random networks of records get random batches of edits — nodes and pipes
//! added, removed and changed, valves added, removed, moved, closed, broken and misplaced
//! — and after every batch the network updated in place ([`LiveTopology::update`]) must
//! equal the one built afresh from all the records ([`LiveTopology::build`]): the same
//! nodes, pipes and valves, the same report, precomputed segments equal to a fresh
//! computation (partition, members, boundary valves, sources, customers) and to
//! `segments()`, and the same isolations, with and without a what-if, with and without the
//! table.

use lifeline_trace::{
    Id, LiveTopology, Network, NodeKind, NodeRecord, PipeRecord, Position, Scenario, ValveNode,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// The records of one network, by id.
#[derive(Default, Clone)]
struct Records {
    nodes: BTreeMap<Id, NodeRecord>,
    pipes: BTreeMap<Id, PipeRecord>,
}

fn random_kind(rng: &mut ChaCha8Rng, pipes: &[Id]) -> NodeKind {
    match rng.gen_range(0..10) {
        0..=2 => NodeKind::Junction,
        3 => NodeKind::Source,
        4..=5 => NodeKind::Customer {
            customers: rng.gen_range(1..50),
        },
        _ => NodeKind::Valve(ValveNode {
            position: if rng.gen_bool(0.15) {
                Position::Closed
            } else {
                Position::Open
            },
            operable: rng.gen_bool(0.85),
            // Mostly none (placed by degree), sometimes a pipe that may or may not end at
            // the node (misplaced when it does not).
            on_pipe: if rng.gen_bool(0.3) {
                pipes.choose(rng).copied()
            } else {
                None
            },
        }),
    }
}

/// A random network: nodes 1..=n, pipes mostly between nearby ids (so segments are of
/// realistic size and loops are common), a few self-loops and pipes to unknown nodes.
fn random_records(rng: &mut ChaCha8Rng, n: Id) -> Records {
    let mut r = Records::default();
    let mut next_pipe = 1000;
    for a in 1..=n {
        for _ in 0..rng.gen_range(1..3) {
            let b = if rng.gen_bool(0.03) {
                a // a self-loop
            } else if rng.gen_bool(0.03) {
                n + rng.gen_range(1..5) // an unknown node, for now
            } else {
                (a + rng.gen_range(1..6)).min(n + 1).min(n)
            };
            r.pipes.insert(
                next_pipe,
                PipeRecord {
                    id: next_pipe,
                    from: a,
                    to: b,
                },
            );
            next_pipe += 1;
        }
    }
    // Valve nodes often name a pipe at them, as stored data does at tees.
    let at = |r: &Records, node: Id| -> Vec<Id> {
        r.pipes
            .values()
            .filter(|p| p.from == node || p.to == node)
            .map(|p| p.id)
            .collect()
    };
    for id in 1..=n {
        let mut kind = random_kind(rng, &[]);
        if let NodeKind::Valve(v) = &mut kind {
            if rng.gen_bool(0.5) {
                v.on_pipe = at(&r, id).choose(rng).copied();
            }
        }
        r.nodes.insert(id, NodeRecord { id, kind });
    }
    r
}

/// The changed node and pipe ids of a batch, each with its record now (`None`: gone).
type Batch = (Vec<(Id, Option<NodeRecord>)>, Vec<(Id, Option<PipeRecord>)>);

/// A batch of random edits of the records.
fn random_batch(rng: &mut ChaCha8Rng, r: &mut Records, next_id: &mut Id) -> Batch {
    let mut nodes = Vec::new();
    let mut pipes = Vec::new();
    for _ in 0..rng.gen_range(1..=5) {
        let node_ids: Vec<Id> = r.nodes.keys().copied().collect();
        let pipe_ids: Vec<Id> = r.pipes.keys().copied().collect();
        let limit = *next_id;
        let any_node = |rng: &mut ChaCha8Rng| -> Id {
            // Sometimes a node that does not exist (yet): the pipe is left out.
            if node_ids.is_empty() || rng.gen_bool(0.05) {
                rng.gen_range(1..limit)
            } else {
                *node_ids.choose(rng).unwrap()
            }
        };
        match rng.gen_range(0..9) {
            // A new node, sometimes at an id pipes already name.
            0 => {
                let id = if rng.gen_bool(0.3) {
                    rng.gen_range(1..*next_id)
                } else {
                    *next_id += 1;
                    *next_id
                };
                let rec = NodeRecord {
                    id,
                    kind: random_kind(rng, &pipe_ids),
                };
                r.nodes.insert(id, rec.clone());
                nodes.push((id, Some(rec)));
            }
            // A node removed (its pipes stay, naming an unknown node).
            1 => {
                if let Some(&id) = node_ids.choose(rng) {
                    r.nodes.remove(&id);
                    nodes.push((id, None));
                }
            }
            // A node changed: another kind, or a valve's state or pipe.
            2 | 3 => {
                if let Some(&id) = node_ids.choose(rng) {
                    let at: Vec<Id> = r
                        .pipes
                        .values()
                        .filter(|p| p.from == id || p.to == id)
                        .map(|p| p.id)
                        .collect();
                    let mut kind = random_kind(rng, &pipe_ids);
                    if let NodeKind::Valve(v) = &mut kind {
                        if rng.gen_bool(0.5) {
                            v.on_pipe = at.choose(rng).copied();
                        }
                    }
                    let rec = NodeRecord { id, kind };
                    r.nodes.insert(id, rec.clone());
                    nodes.push((id, Some(rec)));
                }
            }
            // A new pipe.
            4 | 5 => {
                *next_id += 1;
                let id = *next_id + 1_000_000;
                let from = any_node(rng);
                let to = if rng.gen_bool(0.05) {
                    from
                } else {
                    any_node(rng)
                };
                let rec = PipeRecord { id, from, to };
                r.pipes.insert(id, rec.clone());
                pipes.push((id, Some(rec)));
            }
            // A pipe removed.
            6 => {
                if let Some(&id) = pipe_ids.choose(rng) {
                    r.pipes.remove(&id);
                    pipes.push((id, None));
                }
            }
            // A pipe moved to other end nodes.
            _ => {
                if let Some(&id) = pipe_ids.choose(rng) {
                    let rec = PipeRecord {
                        id,
                        from: any_node(rng),
                        to: any_node(rng),
                    };
                    r.pipes.insert(id, rec.clone());
                    pipes.push((id, Some(rec)));
                }
            }
        }
    }
    (nodes, pipes)
}

fn build(r: &Records) -> (Network, LiveTopology) {
    let nodes: Vec<NodeRecord> = r.nodes.values().cloned().collect();
    let pipes: Vec<PipeRecord> = r.pipes.values().cloned().collect();
    LiveTopology::build(&nodes, &pipes).expect("build")
}

/// The network's content as sets, whatever the order of its arrays.
fn content(net: &Network) -> [Vec<String>; 3] {
    let mut nodes: Vec<String> = net
        .nodes()
        .iter()
        .map(|n| format!("{} {:?}", n.id, n.role))
        .collect();
    nodes.sort();
    let mut pipes: Vec<String> = net.pipes().iter().map(|p| format!("{p:?}")).collect();
    pipes.sort();
    let mut valves: Vec<String> = net.valves().iter().map(|v| format!("{v:?}")).collect();
    valves.sort();
    [nodes, pipes, valves]
}

/// Everything the updated network must share with the fresh one, and the isolations.
fn assert_same(rng: &mut ChaCha8Rng, kept: &Network, live: &LiveTopology, r: &Records, what: &str) {
    let (fresh, fresh_live) = build(r);
    assert_eq!(content(kept), content(&fresh), "{what}: network");
    assert_eq!(live.report(), fresh_live.report(), "{what}: report");
    if let Err(e) = kept.check_precomputed_segments() {
        panic!("{what}: {e}");
    }
    assert_eq!(
        kept.segment_count(),
        fresh.segment_count(),
        "{what}: segment count"
    );
    let pipes: Vec<Id> = kept.pipes().iter().map(|p| p.id).collect();
    let valves: Vec<Id> = kept.valves().iter().map(|v| v.id).collect();
    for _ in 0..6 {
        let Some(&p) = pipes.choose(rng) else {
            return;
        };
        let mut start = vec![p];
        if rng.gen_bool(0.4) {
            start.extend(pipes.choose(rng));
        }
        let mut s = Scenario::default();
        if rng.gen_bool(0.5) {
            for _ in 0..rng.gen_range(1..=3) {
                if let Some(&v) = valves.choose(rng) {
                    if rng.gen_bool(0.5) {
                        s.broken.insert(v);
                    } else {
                        s.closed.insert(v);
                    }
                }
            }
        }
        let on_table = kept.isolate(&start, &s).expect("isolate");
        let walked = kept.isolate_without_table(&start, &s).expect("walk");
        assert_eq!(on_table, walked, "{what}: isolate {start:?} {s:?}");
        assert_eq!(
            on_table,
            fresh.isolate(&start, &s).expect("fresh"),
            "{what}: isolate {start:?} {s:?} on the fresh network"
        );
    }
}

#[test]
fn segments_kept_in_place_equal_segments_built_afresh_after_every_edit() {
    for seed in 0..40u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = rng.gen_range(20..120);
        let mut r = random_records(&mut rng, n);
        let (mut net, mut live) = build(&r);
        assert!(net.has_precomputed_segments());
        assert_same(&mut rng, &net, &live, &r, &format!("seed {seed}, built"));
        let mut next_id = n + 10;
        for step in 0..60 {
            let (nodes, pipes) = random_batch(&mut rng, &mut r, &mut next_id);
            live.update(&mut net, &nodes, &pipes)
                .unwrap_or_else(|e| panic!("seed {seed}, step {step}: {e}"));
            let what = format!("seed {seed}, step {step}, nodes {nodes:?}, pipes {pipes:?}");
            assert_same(&mut rng, &net, &live, &r, &what);
        }
    }
}

/// A change to a few records re-labels only the segments it touches: every other segment
/// keeps its members (checked on a network large enough that re-labelling all would show).
#[test]
fn an_edit_leaves_untouched_segments_as_they_were() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut r = random_records(&mut rng, 3000);
    let (mut net, mut live) = build(&r);
    let before: Vec<_> = net
        .pipes()
        .iter()
        .map(|p| (p.id, net.precomputed_segment(p.id).unwrap()))
        .collect();
    // One valve node turned into a plain junction: the two segments beside it join.
    let (&id, _) = r
        .nodes
        .iter()
        .find(|(id, n)| {
            matches!(n.kind, NodeKind::Valve(_)) && net.valves().iter().any(|v| v.id == **id)
        })
        .expect("a placed valve");
    let rec = NodeRecord {
        id,
        kind: NodeKind::Junction,
    };
    r.nodes.insert(id, rec.clone());
    live.update(&mut net, &[(id, Some(rec))], &[]).unwrap();
    net.check_precomputed_segments().unwrap();
    let changed = before
        .iter()
        .filter(|(p, seg)| net.precomputed_segment(*p).as_ref() != Some(seg))
        .count();
    assert!(changed > 0, "the valve's two segments join");
    assert!(
        changed < 50,
        "only the segments beside the valve change, not {changed} pipes' segments"
    );
}

/// A batch that dissolves more than a quarter of a large network labels it afresh; the
/// result is the same.
#[test]
fn a_large_batch_relabels_everything_and_stays_exact() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut r = random_records(&mut rng, 6000);
    let (mut net, mut live) = build(&r);
    let gone: Vec<Id> = r
        .pipes
        .keys()
        .copied()
        .filter(|_| rng.gen_bool(0.4))
        .collect();
    let pipes: Vec<(Id, Option<PipeRecord>)> = gone.iter().map(|&id| (id, None)).collect();
    for id in &gone {
        r.pipes.remove(id);
    }
    live.update(&mut net, &[], &pipes).unwrap();
    assert_same(&mut rng, &net, &live, &r, "after the large batch");
}
