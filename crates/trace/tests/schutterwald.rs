//! Topology from data on a real network (issue 15): the Schutterwald 1-bar gas network
//! (`../shared/data/real/schutterwald_gas_gk3.gpkg`, see its README), read through
//! `ogr2ogr -f GeoJSON`.
//! - From its attributes (`from_junction`/`to_junction`) it is one connected network with
//!   the README's counts, and with its feed every customer is fed.
//! - From its geometry alone (the attributes dropped), snapping rebuilds the same topology:
//!   the same pipe adjacency, nodes matched by position, as an edge set.

use lifeline_trace::topology::NearTo;
use lifeline_trace::{
    from_attributes, from_geometry, Id, LinePipe, NodeKind, NodeRecord, NodeRole, PipeRecord,
    PointNode, Scenario, Snapping,
};
use rstar::primitives::GeomWithData;
use rstar::RTree;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The feed: the junction of pandapipes' one `ext_grid`, which the GeoPackage does not
/// carry. Found once by reading `ext_grid` ("junction": 168) in
/// `pandapipes/networks/network_files/gas_net_schutterwald_1bar.json` inside the pandapipes
/// 0.16.0 wheel, the table `pandapipes.networks.schutterwald_gas()` loads.
const FEED: Id = 168;

/// Pipe ends lie exactly on their junctions and the closest two junctions are 0.58 m
/// apart, so 5 cm joins what is joined and nothing else.
const TOLERANCE_M: f64 = 0.05;

/// The file's pipes are straight lines drawn between their junctions (its README: the
/// source has no pipe geometry), so a few house connections pass over other house nodes.
/// A tee rule would join those, which the attributes do not, so it is off here and they
/// must come out as crossings instead.
fn snapping() -> Snapping {
    Snapping::new(TOLERANCE_M).unwrap().with_tees(false)
}

fn shared_data_dir() -> PathBuf {
    [
        std::env::var_os("LIFELINE_SHARED_DATA").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")),
        Some(PathBuf::from("/work/shared/data")),
    ]
    .into_iter()
    .flatten()
    .find(|d| d.join("real").is_dir())
    .expect("the shared real data (../shared/data) is missing; set LIFELINE_SHARED_DATA")
}

fn layer(dir: &Path, name: &str) -> Vec<Value> {
    let gpkg = shared_data_dir().join("real/schutterwald_gas_gk3.gpkg");
    let out = dir.join(format!("{name}.geojson"));
    let status = Command::new("ogr2ogr")
        .args(["-f", "GeoJSON"])
        .arg(&out)
        .arg(&gpkg)
        .arg(name)
        .status()
        .expect("ogr2ogr (gdal-bin) must be installed");
    assert!(status.success(), "ogr2ogr failed on {name}");
    let fc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    fc["features"].as_array().expect("features").clone()
}

struct Gas {
    /// id, from_junction, to_junction, line.
    pipes: Vec<(Id, Id, Id, Vec<[f64; 2]>)>,
    /// id, is a house node, position.
    junctions: Vec<(Id, bool, [f64; 2])>,
}

fn xy(v: &Value) -> [f64; 2] {
    [v[0].as_f64().unwrap(), v[1].as_f64().unwrap()]
}

fn gas() -> Gas {
    let dir = tempfile::tempdir().unwrap();
    let pipes = layer(dir.path(), "gas_pipes")
        .iter()
        .map(|f| {
            let p = &f["properties"];
            let line = f["geometry"]["coordinates"]
                .as_array()
                .unwrap()
                .iter()
                .map(xy)
                .collect();
            (
                p["id"].as_i64().unwrap(),
                p["from_junction"].as_i64().unwrap(),
                p["to_junction"].as_i64().unwrap(),
                line,
            )
        })
        .collect();
    let junctions = layer(dir.path(), "gas_junctions")
        .iter()
        .map(|f| {
            let p = &f["properties"];
            (
                p["id"].as_i64().unwrap(),
                p["type"].as_str().unwrap() == "house_node",
                xy(&f["geometry"]["coordinates"]),
            )
        })
        .collect();
    Gas { pipes, junctions }
}

fn kind(id: Id, house: bool) -> NodeKind {
    if id == FEED {
        NodeKind::Source
    } else if house {
        NodeKind::Customer { customers: 1 }
    } else {
        NodeKind::Junction
    }
}

/// Each pipe with its two end nodes, unordered.
type Edges = BTreeSet<(Id, Id, Id)>;

fn edge(pipe: Id, a: Id, b: Id) -> (Id, Id, Id) {
    (pipe, a.min(b), a.max(b))
}

/// Equal edge sets; on failure, only the differences are printed.
fn same_edges(rebuilt: &Edges, want: &Edges) {
    let extra: Vec<_> = rebuilt.difference(want).collect();
    let missing: Vec<_> = want.difference(rebuilt).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "rebuilt but not in the attributes: {extra:?}; in the attributes but not rebuilt: {missing:?}"
    );
}

fn attribute_edges(g: &Gas) -> Edges {
    g.pipes
        .iter()
        .map(|(id, f, t, _)| edge(*id, *f, *t))
        .collect()
}

#[test]
fn schutterwald_from_attributes_is_one_fed_network() {
    let g = gas();
    let nodes: Vec<NodeRecord> = g
        .junctions
        .iter()
        .map(|&(id, house, _)| NodeRecord {
            id,
            kind: kind(id, house),
        })
        .collect();
    let pipes: Vec<PipeRecord> = g
        .pipes
        .iter()
        .map(|&(id, from, to, _)| PipeRecord { id, from, to })
        .collect();
    let t = from_attributes(&nodes, &pipes).unwrap();
    assert!(t.report.is_empty(), "{:?}", t.report);
    let net = &t.network;
    // The README's counts.
    assert_eq!(net.pipes().len(), 2559);
    assert_eq!(net.nodes().len(), 2559);
    let customers = net
        .nodes()
        .iter()
        .filter(|n| matches!(n.role, NodeRole::Customer { .. }))
        .count();
    assert_eq!(customers, 1506);
    // One connected network, and with its feed no part is without a source.
    let all = net
        .connected(net.pipes()[0].id, &Scenario::default())
        .unwrap();
    assert_eq!((all.nodes.len(), all.pipes.len()), (2559, 2559));
    assert!(net.islands_without_source().is_empty());
    // Cutting the feed's pipes off leaves every customer without supply.
    let feed_pipes: Vec<Id> = net
        .pipes()
        .iter()
        .filter(|p| p.from == FEED || p.to == FEED)
        .map(|p| p.id)
        .collect();
    let iso = net.isolate(&feed_pipes, &Scenario::default()).unwrap();
    assert!(iso.source_inside);
    assert_eq!(iso.customers.count, 1506);
}

/// Pipe pairs (two-point lines) that meet other than at a junction both end at: a
/// junction of one within the tolerance of the other's line, or lines crossing.
fn brute_force_crossings(g: &Gas) -> BTreeSet<[Id; 2]> {
    let near = |p: [f64; 2], a: [f64; 2], b: [f64; 2]| {
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let t = (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
        (a[0] + t * dx - p[0]).hypot(a[1] + t * dy - p[1]) <= TOLERANCE_M
    };
    let side = |a: [f64; 2], b: [f64; 2], p: [f64; 2]| {
        // Not f64::signum, which gives 1 for 0 (a shared end is no crossing).
        let c = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
        (c > 0.0) as i8 - (c < 0.0) as i8
    };
    let mut found = BTreeSet::new();
    for (i, (pa, fa, ta, la)) in g.pipes.iter().enumerate() {
        for (pb, fb, tb, lb) in &g.pipes[i + 1..] {
            let (a0, a1, b0, b1) = (la[0], la[1], lb[0], lb[1]);
            let shared = |j: &Id| j == fb || j == tb;
            let touch = (!shared(fa) && near(a0, b0, b1))
                || (!shared(ta) && near(a1, b0, b1))
                || (*fb != *fa && *fb != *ta && near(b0, a0, a1))
                || (*tb != *fa && *tb != *ta && near(b1, a0, a1));
            let cross =
                side(a0, a1, b0) * side(a0, a1, b1) < 0 && side(b0, b1, a0) * side(b0, b1, a1) < 0;
            if touch || cross {
                found.insert([*pa.min(pb), *pa.max(pb)]);
            }
        }
    }
    found
}

/// Matches each built node to the junction at its position (within the tolerance).
fn by_position(g: &Gas, nodes: &[(Id, [f64; 2])]) -> HashMap<Id, Id> {
    let junctions: RTree<GeomWithData<[f64; 2], Id>> = RTree::bulk_load(
        g.junctions
            .iter()
            .map(|&(id, _, at)| GeomWithData::new(at, id))
            .collect(),
    );
    nodes
        .iter()
        .map(|&(id, at)| {
            let hits: Vec<Id> = junctions
                .locate_within_distance(at, TOLERANCE_M * TOLERANCE_M)
                .map(|j| j.data)
                .collect();
            assert_eq!(
                hits.len(),
                1,
                "node {id} at {at:?} matches junctions {hits:?}"
            );
            (id, hits[0])
        })
        .collect()
}

#[test]
fn schutterwald_from_geometry_alone_rebuilds_the_same_topology() {
    let g = gas();
    let lines: Vec<LinePipe> = g
        .pipes
        .iter()
        .map(|(id, _, _, line)| LinePipe {
            id: *id,
            line: line.clone(),
        })
        .collect();
    let built = from_geometry(&lines, &[], &snapping()).unwrap();
    let r = &built.report;
    assert!(r.splits.is_empty(), "{:?}", r.splits);
    assert!(r.zero_length.is_empty(), "{:?}", r.zero_length);
    // The crossings are the pipe pairs whose lines meet away from a shared junction,
    // found here by brute force over every pair, with the attributes' junctions.
    let got: BTreeSet<[Id; 2]> = r.crossings.iter().map(|c| c.pipes).collect();
    assert_eq!(got, brute_force_crossings(&g));
    assert!(!got.is_empty());
    assert!(r.attributes.is_empty(), "{:?}", r.attributes);
    let placed: Vec<(Id, [f64; 2])> = built.nodes.iter().map(|n| (n.id, n.at)).collect();
    let junction_of = by_position(&g, &placed);
    let rebuilt: Edges = built
        .pipes
        .iter()
        .map(|p| edge(p.id, junction_of[&p.from], junction_of[&p.to]))
        .collect();
    same_edges(&rebuilt, &attribute_edges(&g));
    // No two nodes became one junction.
    let matched: BTreeSet<Id> = junction_of.values().copied().collect();
    assert_eq!(matched.len(), built.nodes.len());

    // With no points, the dangles are exactly the junctions of degree 1 by the attributes.
    let mut degree: BTreeMap<Id, usize> = BTreeMap::new();
    for (_, f, t, _) in &g.pipes {
        *degree.entry(*f).or_default() += 1;
        *degree.entry(*t).or_default() += 1;
    }
    let ends: BTreeSet<Id> = degree
        .iter()
        .filter(|(_, d)| **d == 1)
        .map(|(j, _)| *j)
        .collect();
    let dangles: BTreeSet<Id> = r.dangles.iter().map(|d| junction_of[&d.node]).collect();
    assert_eq!(dangles, ends);
    // Every near-miss lies beyond the tolerance and within ten times it.
    for m in &r.near_misses {
        assert!(
            m.distance > TOLERANCE_M && m.distance <= 10.0 * TOLERANCE_M,
            "{m:?}"
        );
        if let NearTo::Node(n) = m.near {
            assert_ne!(junction_of[&n], junction_of[&m.node]);
        }
    }
}

#[test]
fn schutterwald_from_geometry_with_points_keeps_their_ids_and_feeds_everyone() {
    let g = gas();
    let lines: Vec<LinePipe> = g
        .pipes
        .iter()
        .map(|(id, _, _, line)| LinePipe {
            id: *id,
            line: line.clone(),
        })
        .collect();
    let points: Vec<PointNode> = g
        .junctions
        .iter()
        .map(|&(id, house, at)| PointNode {
            id,
            at,
            kind: kind(id, house),
        })
        .collect();
    let built = from_geometry(&lines, &points, &snapping()).unwrap();
    let r = &built.report;
    assert!(r.dangles.is_empty(), "{:?}", r.dangles);
    assert!(r.points_off_pipe.is_empty(), "{:?}", r.points_off_pipe);
    assert!(r.duplicate_nodes.is_empty(), "{:?}", r.duplicate_nodes);
    assert!(built.nodes.iter().all(|n| !n.created));
    let rebuilt: Edges = built
        .pipes
        .iter()
        .map(|p| edge(p.id, p.from, p.to))
        .collect();
    same_edges(&rebuilt, &attribute_edges(&g));
    assert!(built.network.islands_without_source().is_empty());
}
