//! WNTR's networks with a frozen valve layer, shared by the WNTR and pgRouting oracles.
//!
//! The valve layers are CSV fixtures in `tests/fixtures/` (`valve,link,node`, WNTR's
//! names), written once by `freeze_valve_layers.py` from WNTR's seeded strategic generator.
//! `wntr_segments.py` reads the network from the wntr package and the layer from the
//! fixture, and answers with both as integer ids plus WNTR's valve segments.

use lifeline_trace::{Network, Node, NodeRole, Pipe, Position, Valve};
use serde_json::Value;
use std::process::Command;

/// The fixture holding the layer `generate_valve_layer(wn, 'strategic', n, seed)` gave.
fn fixture(network: &str, seed: u32, n: u32) -> String {
    let path = format!(
        "{}/tests/fixtures/valves_{network}_seed{seed}_n{n}.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run python3 crates/trace/tests/freeze_valve_layers.py"
    );
    path
}

/// The network, its frozen valve layer, and WNTR's segments with and without the layer's
/// valves at the indices in `broken` (comma-separated, or `-`).
pub fn oracle(network: &str, seed: u32, n: u32, broken: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wntr_segments.py");
    let out = Command::new("python3")
        .args([script, network, &fixture(network, seed, n), broken])
        .output()
        .expect("python3 (scripts/setup.sh --tests installs wntr)");
    assert!(
        out.status.success(),
        "wntr oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle JSON")
}

/// The elements of a JSON array.
fn ids(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().expect("array").iter()
}

/// The oracle's network as Lifeline's: tanks and reservoirs are the sources, every valve
/// open and operable.
pub fn network(o: &Value) -> Network {
    let nodes = ids(&o["nodes"])
        .map(|n| Node {
            id: n["id"].as_i64().unwrap(),
            role: if n["source"].as_bool().unwrap() {
                NodeRole::Source
            } else {
                NodeRole::Junction
            },
        })
        .collect();
    let pipes = ids(&o["links"])
        .map(|l| Pipe {
            id: l["id"].as_i64().unwrap(),
            from: l["from"].as_i64().unwrap(),
            to: l["to"].as_i64().unwrap(),
        })
        .collect();
    let valves = ids(&o["valves"])
        .map(|v| Valve {
            id: v["id"].as_i64().unwrap(),
            pipe: v["link"].as_i64().unwrap(),
            node: v["node"].as_i64().unwrap(),
            position: Position::Open,
            operable: true,
        })
        .collect();
    Network::new(nodes, pipes, valves).expect("a valid network")
}
