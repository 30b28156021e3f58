//! The EPANET reader judged by WNTR (issue 15): on Net3, ky10 and Net6, networks that ship
//! inside the wntr package, Lifeline's `InpModel::parse` reads the same node names and
//! types, the same links with the same end nodes, status, check valves and valve types, and
//! the same coordinates and vertices (to 1e-9) as `wntr.network.WaterNetworkModel(path)`.
//! The helper `wntr_inp.py` prints what WNTR reads.

use lifeline_trace::{InpLinkKind, InpModel, InpNodeKind, LinkStatus};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

fn oracle(network: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wntr_inp.py");
    let out = Command::new("python3")
        .args([script, network])
        .output()
        .expect("python3 (scripts/setup.sh --tests installs wntr)");
    assert!(
        out.status.success(),
        "wntr oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle JSON")
}

fn close(ours: [f64; 2], theirs: &Value, what: &str) {
    let t = [theirs[0].as_f64().unwrap(), theirs[1].as_f64().unwrap()];
    for i in 0..2 {
        assert!(
            (ours[i] - t[i]).abs() <= 1e-9 * t[i].abs().max(1.0),
            "{what}: {ours:?} against WNTR's {t:?}"
        );
    }
}

fn compare(network: &str) {
    let o = oracle(network);
    let text = std::fs::read_to_string(o["path"].as_str().unwrap()).unwrap();
    let crs = "EPSG:3089 (as the caller says)";
    let m = InpModel::parse(&text, crs).unwrap_or_else(|e| panic!("{network}: {e}"));
    assert_eq!(m.crs, crs);

    let wn_nodes = o["nodes"].as_object().unwrap();
    let ours: BTreeSet<&str> = m.nodes.iter().map(|n| n.name.as_str()).collect();
    let theirs: BTreeSet<&str> = wn_nodes.keys().map(String::as_str).collect();
    assert_eq!(ours, theirs, "{network}: node names");
    assert_eq!(
        m.nodes.len(),
        wn_nodes.len(),
        "{network}: a node read twice"
    );
    for n in &m.nodes {
        let w = &wn_nodes[&n.name];
        let kind = match n.kind {
            InpNodeKind::Junction => "Junction",
            InpNodeKind::Reservoir => "Reservoir",
            InpNodeKind::Tank => "Tank",
        };
        assert_eq!(kind, w["type"], "{network}: node {}", n.name);
        match n.at {
            Some(at) => close(
                at,
                &w["coordinates"],
                &format!("{network}: node {}", n.name),
            ),
            None => assert!(w["coordinates"].is_null(), "{network}: node {}", n.name),
        }
    }

    let wn_links = o["links"].as_object().unwrap();
    let ours: BTreeSet<&str> = m.links.iter().map(|l| l.name.as_str()).collect();
    let theirs: BTreeSet<&str> = wn_links.keys().map(String::as_str).collect();
    assert_eq!(ours, theirs, "{network}: link names");
    assert_eq!(
        m.links.len(),
        wn_links.len(),
        "{network}: a link read twice"
    );
    for l in &m.links {
        let w = &wn_links[&l.name];
        let what = format!("{network}: link {}", l.name);
        let (kind, check_valve, valve_type) = match &l.kind {
            InpLinkKind::Pipe { check_valve } => ("Pipe", *check_valve, None),
            InpLinkKind::Pump => ("Pump", false, None),
            InpLinkKind::Valve { valve_type } => ("Valve", false, Some(valve_type.as_str())),
        };
        assert_eq!(kind, w["type"], "{what}");
        assert_eq!(l.from, w["start"], "{what}");
        assert_eq!(l.to, w["end"], "{what}");
        assert_eq!(
            l.status == LinkStatus::Closed,
            w["closed"],
            "{what}: closed"
        );
        assert_eq!(check_valve, w["check_valve"], "{what}: check valve");
        assert_eq!(valve_type, w["valve_type"].as_str(), "{what}: valve type");
        let vertices = w["vertices"].as_array().unwrap();
        assert_eq!(l.vertices.len(), vertices.len(), "{what}: vertices");
        for (ours, theirs) in l.vertices.iter().zip(vertices) {
            close(*ours, theirs, &what);
        }
    }
}

#[test]
fn net3_inp_reads_as_wntr_reads_it() {
    compare("Net3");
}

#[test]
fn ky10_inp_reads_as_wntr_reads_it() {
    compare("ky10");
}

#[test]
fn net6_inp_reads_as_wntr_reads_it() {
    compare("Net6");
}
