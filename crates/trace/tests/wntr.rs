//! Valve segments judged by WNTR (issue 15): on EPANET networks that ship inside the wntr
//! package (Net3, ky10, Net6), with a strategic valve layer WNTR generated once and that is
//! frozen in `tests/fixtures/` (see `freeze_valve_layers.py`), Lifeline's segments
//! equal `wntr.metrics.topographic.valve_segments` element by element; the isolation of a
//! pipe covers exactly its WNTR segment with exactly the valves on that segment's boundary;
//! and a broken valve (dropped from WNTR's layer) grows the segments the same way on both.
//! Built instead from Lifeline's own reading of the `.inp` file (`InpModel`), with the same
//! valve layer by name, the segments are WNTR's too.

#[path = "common/wntr_net.rs"]
mod wntr_net;

use lifeline_trace::{InpModel, LayerValve, Scenario};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use wntr_net::{network, oracle};

fn ids(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().expect("array").iter()
}

/// Two numberings of the same elements describe the same partition.
fn same_partition(ours: &[usize], theirs: &[usize], what: &str) {
    assert_eq!(ours.len(), theirs.len());
    let (mut a, mut b) = (HashMap::new(), HashMap::new());
    for (i, (&o, &t)) in ours.iter().zip(theirs).enumerate() {
        let ta = *a.entry(o).or_insert(t);
        let ob = *b.entry(t).or_insert(o);
        assert!(
            ta == t && ob == o,
            "{what} {i}: Lifeline's segment {o} holds WNTR's {ta} and {t}, or WNTR's {t} holds Lifeline's {ob} and {o}"
        );
    }
}

fn numbering(o: &Value, key: &str, part: &str) -> Vec<usize> {
    ids(&o[key][part])
        .map(|s| s.as_u64().unwrap() as usize)
        .collect()
}

fn compare(network_name: &str, seed: u32, n: u32, broken: &str) {
    let o = oracle(network_name, seed, n, broken);
    let mut net = network(&o);
    let all = net.segments(&Scenario::default());
    // WNTR judges the precomputed segments too: the same partition, and the isolations
    // below run on them.
    net.precompute_segments();
    assert_eq!(net.precomputed_segments().as_ref(), Some(&all));
    let wntr_nodes = numbering(&o, "segments", "nodes");
    let wntr_links = numbering(&o, "segments", "links");
    let ours: Vec<usize> = all.nodes.iter().chain(&all.pipes).copied().collect();
    let theirs: Vec<usize> = wntr_nodes.iter().chain(&wntr_links).copied().collect();
    same_partition(&ours, &theirs, network_name);

    // Isolating a pipe: its WNTR segment, and the valves on that segment's boundary.
    let valves: Vec<(i64, usize, usize)> = ids(&o["valves"])
        .map(|v| {
            let (l, n) = (v["link"].as_u64().unwrap(), v["node"].as_u64().unwrap());
            (v["id"].as_i64().unwrap(), l as usize, n as usize)
        })
        .collect();
    let step = (wntr_links.len() / 25).max(1);
    for pipe in (0..wntr_links.len()).step_by(step) {
        let seg = wntr_links[pipe];
        let iso = net
            .isolate(&[pipe as i64], &Scenario::default())
            .expect("isolate");
        let want_pipes: Vec<i64> = (0..wntr_links.len())
            .filter(|&l| wntr_links[l] == seg)
            .map(|l| l as i64)
            .collect();
        let want_nodes: Vec<i64> = (0..wntr_nodes.len())
            .filter(|&n| wntr_nodes[n] == seg)
            .map(|n| n as i64)
            .collect();
        assert_eq!(iso.segment.pipes, want_pipes, "{network_name} pipe {pipe}");
        assert_eq!(iso.segment.nodes, want_nodes, "{network_name} pipe {pipe}");
        let want: BTreeSet<i64> = valves
            .iter()
            .filter(|(_, l, n)| (wntr_links[*l] == seg) != (wntr_nodes[*n] == seg))
            .map(|(id, _, _)| *id)
            .collect();
        let got: BTreeSet<i64> = iso.boundary_valves.iter().map(|b| b.id).collect();
        assert_eq!(got, want, "{network_name} pipe {pipe}: boundary valves");
        // Only boundary valves are ever listed to close.
        assert!(iso.valves_to_close.iter().all(|v| want.contains(v)));
    }

    // A broken valve is passed through: the same segments as WNTR without it.
    let broken: Scenario = Scenario {
        broken: ids(&o["broken"]).map(|i| i.as_i64().unwrap()).collect(),
        ..Scenario::default()
    };
    let grown = net.segments(&broken);
    let ours: Vec<usize> = grown.nodes.iter().chain(&grown.pipes).copied().collect();
    let theirs: Vec<usize> = numbering(&o, "segments_broken", "nodes")
        .into_iter()
        .chain(numbering(&o, "segments_broken", "links"))
        .collect();
    same_partition(
        &ours,
        &theirs,
        &format!("{network_name} with broken valves"),
    );
}

#[test]
fn net3_segments_equal_wntr() {
    compare("Net3", 7, 2, "0,5,11");
    compare("Net3", 8, 1, "3");
}

#[test]
fn ky10_segments_equal_wntr() {
    compare("ky10", 7, 2, "0,1,2,40");
}

#[test]
fn net6_segments_equal_wntr() {
    compare("Net6", 7, 2, "10,20,30");
}

/// The network read from the `.inp` by Lifeline, with WNTR's valve layer given by name.
#[test]
fn ky10_from_inp_segments_equal_wntr() {
    let o = oracle("ky10", 7, 2, "-");
    let names = |key: &str| -> Vec<String> {
        ids(&o[key])
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    let (node_names, link_names) = (names("node_names"), names("link_names"));
    let path = String::from_utf8(
        Command::new("python3")
            .args([
                "-c",
                "import wntr,os;print(os.path.dirname(wntr.__file__),end='')",
            ])
            .output()
            .expect("python3 with wntr")
            .stdout,
    )
    .unwrap()
        + "/library/networks/ky10.inp";
    let model = InpModel::parse(&std::fs::read_to_string(path).unwrap(), "").unwrap();
    let layer: Vec<LayerValve> = ids(&o["valves"])
        .map(|v| LayerValve {
            link: link_names[v["link"].as_u64().unwrap() as usize].clone(),
            node: node_names[v["node"].as_u64().unwrap() as usize].clone(),
        })
        .collect();
    let built = model.network(&layer).unwrap();
    assert!(
        built.added_closed_valves.is_empty(),
        "ky10 has no closed link"
    );
    let seg = built.network.segments(&Scenario::default());
    // Ours, in WNTR's order of elements, by name.
    let our_node: HashMap<&str, usize> = built
        .node_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let our_link: HashMap<&str, usize> = built
        .link_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let ours: Vec<usize> = node_names
        .iter()
        .map(|n| seg.nodes[our_node[n.as_str()]])
        .chain(link_names.iter().map(|l| seg.pipes[our_link[l.as_str()]]))
        .collect();
    let theirs: Vec<usize> = numbering(&o, "segments", "nodes")
        .into_iter()
        .chain(numbering(&o, "segments", "links"))
        .collect();
    assert_eq!(our_node.len(), node_names.len());
    assert_eq!(our_link.len(), link_names.len());
    same_partition(&ours, &theirs, "ky10 from .inp");
}
