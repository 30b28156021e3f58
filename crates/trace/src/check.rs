//! The network part of `lifeline check` (issue 15): what the model's record check cannot
//! see because it needs the graph. Per utility network: pipes left out of it and valves
//! that cannot be placed (`topology`), parts that reach no source (`island`), and nodes
//! drawn on top of each other (`duplicate`). The CLI adds these to the model's report.

use crate::service::network_of;
use lifeline_model::check::Problem;
use lifeline_model::{Dataset, Layer, PipeKind};
use std::collections::BTreeMap;

/// Two nodes of one network closer than this (degrees, about 1 cm) are one node drawn twice.
const SAME_PLACE_DEG: f64 = 1e-7;

/// How many ids an island's message lists before "…".
const LISTED: usize = 10;

/// The network problems of a data set, network by network (kinds in vocabulary order).
pub fn network_problems(data: &Dataset) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut kinds: Vec<PipeKind> = data.nodes.iter().map(|n| n.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        let nodes: Vec<_> = data
            .nodes
            .iter()
            .filter(|n| n.kind == kind)
            .cloned()
            .collect();
        let pipes: Vec<_> = data
            .pipelines
            .iter()
            .filter(|p| p.kind == kind && (p.from_node.is_some() || p.to_node.is_some()))
            .cloned()
            .collect();
        duplicates(kind, &nodes, &mut out);
        let (network, problems) = match network_of(&nodes, &pipes) {
            Ok(built) => built,
            Err(e) => {
                out.push(Problem {
                    layer: Layer::Nodes,
                    id: 0,
                    kind: "topology",
                    message: format!("the {kind} network cannot be built: {e}"),
                });
                continue;
            }
        };
        for p in problems {
            out.push(Problem {
                layer: if p.starts_with("valve") {
                    Layer::Nodes
                } else {
                    Layer::Pipelines
                },
                id: first_number(&p),
                kind: "topology",
                message: p,
            });
        }
        for island in network.islands_without_source() {
            let (layer, id) = match (island.pipes.first(), island.nodes.first()) {
                (Some(p), _) => (Layer::Pipelines, *p),
                (None, Some(n)) => (Layer::Nodes, *n),
                (None, None) => continue,
            };
            // A lone node with no pipe is not a part of the network worth a problem.
            if island.pipes.is_empty() {
                continue;
            }
            out.push(Problem {
                layer,
                id,
                kind: "island",
                message: format!(
                    "{} pipe(s) and {} node(s) of the {kind} network reach no source: pipes {}",
                    island.pipes.len(),
                    island.nodes.len(),
                    listed(&island.pipes)
                ),
            });
        }
    }
    out
}

fn duplicates(kind: PipeKind, nodes: &[lifeline_model::NetworkNode], out: &mut Vec<Problem>) {
    let cell = |v: f64| (v / SAME_PLACE_DEG).round() as i64;
    let mut at: BTreeMap<(i64, i64), Vec<i64>> = BTreeMap::new();
    for n in nodes {
        at.entry((cell(n.geometry.x()), cell(n.geometry.y())))
            .or_default()
            .push(n.id);
    }
    for ids in at.values_mut().filter(|ids| ids.len() > 1) {
        ids.sort_unstable();
        out.push(Problem {
            layer: Layer::Nodes,
            id: ids[0],
            kind: "duplicate",
            message: format!(
                "{} nodes of the {kind} network sit at the same place: {}",
                ids.len(),
                listed(ids)
            ),
        });
    }
}

fn listed(ids: &[i64]) -> String {
    let mut s: Vec<String> = ids.iter().take(LISTED).map(i64::to_string).collect();
    if ids.len() > LISTED {
        s.push("…".into());
    }
    s.join(", ")
}

/// The id a problem message names first ("valve 12 …", "pipeline 7 …").
fn first_number(message: &str) -> i64 {
    message
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::{NetworkNode, NodeType, Pipeline};

    fn node(id: i64, t: NodeType, x: f64) -> NetworkNode {
        NetworkNode::new(id, PipeKind::Gas, t, (106.5 + x, 29.5).into())
    }

    fn pipe(id: i64, a: i64, b: i64) -> Pipeline {
        Pipeline {
            from_node: Some(a),
            to_node: Some(b),
            ..Pipeline::new(
                id,
                PipeKind::Gas,
                1,
                vec![(106.5, 29.5), (106.501, 29.5)].into(),
            )
        }
    }

    #[test]
    fn islands_duplicates_and_unplaceable_valves() {
        // A fed part (1–2–3 with a tee valve 3 naming no pipe) and an island (5–6), with
        // node 6 drawn twice (as 6 and 7).
        let data = Dataset {
            nodes: vec![
                node(1, NodeType::Source, 0.0),
                node(2, NodeType::Junction, 0.001),
                node(3, NodeType::Valve, 0.002),
                node(4, NodeType::Junction, 0.003),
                node(8, NodeType::Junction, 0.004),
                node(5, NodeType::Junction, 0.010),
                node(6, NodeType::Customer, 0.011),
                node(7, NodeType::Junction, 0.011),
            ],
            pipelines: vec![
                pipe(10, 1, 2),
                pipe(11, 2, 3),
                pipe(12, 3, 4),
                pipe(13, 3, 8),
                pipe(20, 5, 6),
            ],
            ..Default::default()
        };
        let found: Vec<(&str, Layer, i64)> = network_problems(&data)
            .iter()
            .map(|p| (p.kind, p.layer, p.id))
            .collect();
        assert_eq!(
            found,
            [
                ("duplicate", Layer::Nodes, 6),
                ("topology", Layer::Nodes, 3),
                ("island", Layer::Pipelines, 20),
            ]
        );
    }

    #[test]
    fn a_fed_network_has_no_problems() {
        let data = Dataset {
            nodes: vec![
                node(1, NodeType::Source, 0.0),
                node(2, NodeType::Valve, 0.001),
                node(3, NodeType::Customer, 0.002),
            ],
            pipelines: vec![pipe(10, 1, 2), pipe(11, 2, 3)],
            ..Default::default()
        };
        assert!(network_problems(&data).is_empty());
    }
}
