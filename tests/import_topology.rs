//! Topology built while importing (issue 15), into real stores (a GeoPackage and a
//! database of the throwaway PostGIS cluster), judged by outside references:
//! - **Geometry only:** the Schutterwald gas network's pipes
//!   (`../shared/data/real/schutterwald_gas_gk3.gpkg`) imported with their
//!   `from_junction`/`to_junction` attributes dropped, plus valve points drawn on every
//!   seventh pipe, snapped within 5 cm (tees off, as `crates/trace/tests/schutterwald.rs`
//!   explains). The stored records, built into a network as `/trace` builds it
//!   (`lifeline_trace::service::network_of`), have the file's edge set (nodes matched to
//!   the file's junctions by position, valve nodes contracted) and the valve segments of
//!   the attribute-based network with the same valves. The GeoJSON topology report is read
//!   back by GDAL's `ogrinfo`.
//! - **EPANET:** WNTR's Net3 (shipped inside the wntr package) with its frozen valve layer
//!   (`crates/trace/tests/fixtures/valves_Net3_seed7_n2.csv`), given a source CRS: the
//!   stored network's valve segments equal those of the trace crate's direct reading of
//!   the file (itself judged by WNTR in `crates/trace/tests/wntr.rs`), element by element
//!   by EPANET name; diameters are the file's inches in millimetres; every node's
//!   coordinates, projected back with PROJ, are the file's within 1 mm. A small SI file
//!   keeps its `[VERTICES]` and millimetres, and a junction without coordinates is a
//!   per-record rejection.
//! - **Bad inputs** through the binary: no `--source-crs`, a malformed section, a pipe to
//!   an unknown node: each a clear error naming the problem.

mod app;

use app::{fresh_store, Backend};
use geo::{Geometry, Point};
use lifeline::io::gdal::read_layer;
use lifeline::io::import::{FieldRule, ImportOptions, Mapping};
use lifeline::io::network::{self, GeometryOptions, InpRequest};
use lifeline::io::service::ImportRequest;
use lifeline::model::crs::transform;
use lifeline::model::node::NodeType;
use lifeline::model::{Actor, Catalog, Layer, Owner, PipeKind};
use lifeline::trace::service::network_of;
use lifeline::trace::{
    from_attributes, InpModel, LayerValve, Network, NodeKind, NodeRecord, PipeRecord, Position,
    Scenario, ValveNode,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn gas_file() -> PathBuf {
    app::shared_data_dir().join("real/schutterwald_gas_gk3.gpkg")
}

fn gas_mapping() -> Mapping {
    Mapping::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mappings/schutterwald_gas.toml"),
    )
    .unwrap()
}

fn constant(v: &str) -> FieldRule {
    FieldRule {
        from: None,
        value: Some(json!(v)),
        scale: None,
        map: BTreeMap::new(),
    }
}

/// A partition as a set of sets of labels.
type Partition = BTreeSet<BTreeSet<String>>;

/// The labelled elements of a network grouped by valve segment; elements without a
/// label (stubs, valve nodes) are left out.
fn partition(
    net: &Network,
    node_label: &dyn Fn(i64) -> Option<String>,
    pipe_label: &dyn Fn(i64) -> Option<String>,
) -> Partition {
    let s = net.segments(&Scenario::default());
    let mut parts: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (n, seg) in net.nodes().iter().zip(&s.nodes) {
        if let Some(l) = node_label(n.id) {
            parts.entry(*seg).or_default().insert(l);
        }
    }
    for (p, seg) in net.pipes().iter().zip(&s.pipes) {
        if let Some(l) = pipe_label(p.id) {
            parts.entry(*seg).or_default().insert(l);
        }
    }
    parts.into_values().collect()
}

/// The file's pipes: id, from_junction, to_junction, the line in GK3 metres.
fn gas_pipes() -> Vec<(i64, i64, i64, Vec<[f64; 2]>)> {
    read_layer(&gas_file(), Some("gas_pipes"), None)
        .unwrap()
        .rows
        .into_iter()
        .map(|r| {
            let Ok(Some(Geometry::LineString(l))) = r.geometry else {
                panic!("row {}: not a line", r.row)
            };
            let int = |c: &str| r.fields[c].as_i64().unwrap();
            (
                int("id"),
                int("from_junction"),
                int("to_junction"),
                l.0.iter().map(|c| [c.x, c.y]).collect(),
            )
        })
        .collect()
}

/// The file's junctions in CGCS2000 through the importer's own route (the mapping's
/// Helmert pipeline), with their ids: where the stored nodes must lie.
fn gas_junctions() -> Vec<(i64, [f64; 2])> {
    let mut m = gas_mapping();
    m.source_layer = Some("gas_junctions".into());
    m.owner = None;
    m.fields = BTreeMap::from([
        ("kind".to_string(), constant("gas")),
        ("node_type".to_string(), constant("junction")),
    ]);
    let opts = ImportOptions {
        layer: Layer::Nodes,
        source_crs: None,
        gcj02: false,
    };
    let report =
        lifeline::io::import::prepare(&gas_file(), &m, &opts, Catalog::builtin(), &mut |_, _| {})
            .unwrap();
    let raw = read_layer(&gas_file(), Some("gas_junctions"), None).unwrap();
    assert_eq!(report.accepted, raw.rows.len());
    raw.rows
        .iter()
        .zip(&report.data.nodes)
        .map(|(r, n)| {
            (
                r.fields["id"].as_i64().unwrap(),
                [n.geometry.x(), n.geometry.y()],
            )
        })
        .collect()
}

/// The pipes that get a valve point, a third along their line.
fn valved(id: i64) -> bool {
    id % 7 == 0
}

/// The valve points as GeoJSON in the pipes' coordinates (the importer reads a point
/// layer in the pipes' CRS).
fn write_valves(dir: &Path, pipes: &[(i64, i64, i64, Vec<[f64; 2]>)]) -> PathBuf {
    let features: Vec<Value> = pipes
        .iter()
        .filter(|p| valved(p.0))
        .map(|(id, _, _, l)| {
            let (a, b) = (l[0], l[l.len() - 1]);
            let at = [a[0] + (b[0] - a[0]) / 3.0, a[1] + (b[1] - a[1]) / 3.0];
            json!({"type": "Feature", "properties": {"name": format!("valve on {id}")},
                   "geometry": {"type": "Point", "coordinates": at}})
        })
        .collect();
    let path = dir.join("valves.geojson");
    std::fs::write(
        &path,
        json!({"type": "FeatureCollection", "features": features}).to_string(),
    )
    .unwrap();
    path
}

async fn geometry_only_import_rebuilds_the_attribute_topology(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let pipes = gas_pipes();
    let junctions = gas_junctions();
    let valves = write_valves(dir.path(), &pipes);
    let (store, _, _d) = fresh_store(backend).await;
    let mut mapping = gas_mapping();
    // Geometry only: the mapping reads no end-node attribute (it never did; say so).
    assert!(mapping.fields.keys().all(|f| !f.contains("node")));
    mapping.where_ = None;
    let req = ImportRequest {
        file: gas_file(),
        mapping,
        options: ImportOptions {
            layer: Layer::Pipelines,
            source_crs: None,
            gcj02: false,
        },
        strict: true,
        batch_size: None,
        resume: false,
    };
    let opts = GeometryOptions {
        snap_m: 0.05,
        tees: false,
        points: Some(valves),
    };
    let done = network::import_geometry(
        Some(store.as_ref()),
        req,
        opts,
        &Actor::cli(),
        Box::new(|_, _| {}),
    )
    .await
    .unwrap();
    let n_valves = pipes.iter().filter(|p| valved(p.0)).count();
    assert_eq!(done.summary.report.accepted, pipes.len());
    assert_eq!(done.points.as_ref().unwrap().accepted, n_valves);
    let c = &done.counts;
    assert_eq!(c.nodes_from_points, n_valves);
    assert_eq!(c.pipes_split, n_valves);
    assert_eq!(c.pipes_joined, pipes.len() + n_valves);
    assert_eq!(c.junctions_created, junctions.len());
    assert_eq!((c.pipes_without_nodes, c.misplaced_valves), (0, 0));
    assert!(c.dangles > 0 && c.crossings > 0, "{c:?}");

    // The report maps: GDAL reads it, with one feature per finding.
    let report_path = dir.path().join("topology.geojson");
    network::write_topology_report(&done.report, &report_path).unwrap();
    let info = Command::new("ogrinfo")
        .args(["-so", "-al"])
        .arg(&report_path)
        .output()
        .expect("ogrinfo (gdal-bin)");
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success(), "{text}");
    let features = done.report["features"].as_array().unwrap().len();
    assert!(
        text.contains(&format!("Feature Count: {features}")),
        "{text}"
    );
    assert!(features >= c.dangles + c.crossings);

    // The stored records as /trace builds them.
    let data = store.load_all().await.unwrap();
    assert_eq!(data.nodes.len(), junctions.len() + n_valves);
    assert_eq!(data.pipelines.len(), pipes.len() + n_valves);
    let (net, problems) = network_of(&data.nodes, &data.pipelines).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(net.valves().len(), n_valves);
    // Stored nodes matched to the file's junctions by position (1e-6° is about 10 cm; the
    // closest two junctions are 0.58 m apart).
    let junction_of: HashMap<i64, i64> = data
        .nodes
        .iter()
        .filter(|n| n.node_type == NodeType::Junction)
        .map(|n| {
            let hits: Vec<i64> = junctions
                .iter()
                .filter(|(_, at)| {
                    (at[0] - n.geometry.x()).abs() < 1e-6 && (at[1] - n.geometry.y()).abs() < 1e-6
                })
                .map(|(j, _)| *j)
                .collect();
            assert_eq!(hits.len(), 1, "node {} matches junctions {hits:?}", n.id);
            (n.id, hits[0])
        })
        .collect();
    let matched: BTreeSet<i64> = junction_of.values().copied().collect();
    assert_eq!(matched.len(), junctions.len());

    // The edge set, with each valve node contracted (its two pieces are one file pipe).
    let mut at_valve: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut stored_edges: Vec<(i64, i64)> = Vec::new();
    for p in &data.pipelines {
        let (a, b) = (p.from_node.unwrap(), p.to_node.unwrap());
        match (junction_of.get(&a), junction_of.get(&b)) {
            (Some(x), Some(y)) => stored_edges.push((*x.min(y), *x.max(y))),
            (Some(x), None) => at_valve.entry(b).or_default().push(*x),
            (None, Some(y)) => at_valve.entry(a).or_default().push(*y),
            (None, None) => panic!("pipeline {} joins two valves", p.id),
        }
    }
    for (v, ends) in &at_valve {
        assert_eq!(ends.len(), 2, "valve {v} joins {ends:?}");
        stored_edges.push((ends[0].min(ends[1]), ends[0].max(ends[1])));
    }
    let mut file_edges: Vec<(i64, i64)> = pipes
        .iter()
        .map(|(_, a, b, _)| (*a.min(b), *a.max(b)))
        .collect();
    stored_edges.sort();
    file_edges.sort();
    assert_eq!(stored_edges, file_edges);

    // The attribute-based network with the same valves: each valved pipe a → b becomes
    // a → V → b with V a valve node (as an in-line valve is stored).
    let mut nodes: Vec<NodeRecord> = junctions
        .iter()
        .map(|(j, _)| NodeRecord {
            id: j + 1,
            kind: NodeKind::Junction,
        })
        .collect();
    let mut recs = Vec::new();
    let base = 1_000_000;
    for (id, a, b, _) in &pipes {
        if valved(*id) {
            let v = base + id;
            nodes.push(NodeRecord {
                id: v,
                kind: NodeKind::Valve(ValveNode {
                    position: Position::Open,
                    operable: true,
                    on_pipe: None,
                }),
            });
            recs.push(PipeRecord {
                id: id + 1,
                from: a + 1,
                to: v,
            });
            recs.push(PipeRecord {
                id: base + id,
                from: v,
                to: b + 1,
            });
        } else {
            recs.push(PipeRecord {
                id: id + 1,
                from: a + 1,
                to: b + 1,
            });
        }
    }
    let reference = from_attributes(&nodes, &recs).unwrap();
    assert!(reference.report.is_empty(), "{:?}", reference.report);
    let want = partition(
        &reference.network,
        &|n| (n < base).then(|| format!("j{}", n - 1)),
        &|_| None,
    );
    let got = partition(
        &net,
        &|n| junction_of.get(&n).map(|j| format!("j{j}")),
        &|_| None,
    );
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    assert!(want.len() > 100, "{} segments", want.len());
}

#[tokio::test]
async fn geometry_only_import_gpkg() {
    geometry_only_import_rebuilds_the_attribute_topology(Backend::Gpkg).await;
}

#[tokio::test]
async fn geometry_only_import_postgis() {
    geometry_only_import_rebuilds_the_attribute_topology(Backend::Postgis).await;
}

/// Where the wntr package keeps its example networks.
fn wntr_network(name: &str) -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, wntr; print(os.path.dirname(wntr.__file__))",
        ])
        .output()
        .expect("python3 (scripts/setup.sh --tests installs wntr)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        .join("library/networks")
        .join(format!("{name}.inp"))
}

fn net3_layer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/trace/tests/fixtures/valves_Net3_seed7_n2.csv")
}

/// A transverse Mercator around Chongqing in kilometres: Net3's coordinates (tens of
/// units) become a town-sized network there.
const KM_CRS: &str =
    "+proj=tmerc +lat_0=29.5 +lon_0=106.5 +k=1 +x_0=0 +y_0=0 +ellps=GRS80 +units=km +no_defs +type=crs";

fn owner() -> Owner {
    Owner {
        id: 7,
        name: "Net3 water utility".into(),
        emergency_contact: "control room".into(),
        emergency_phone: "023-000".into(),
        email: None,
    }
}

/// Projects lon/lat back to the file's CRS with PROJ.
fn back(lon: f64, lat: f64) -> [f64; 2] {
    match transform(&Geometry::Point(Point::new(lon, lat)), "EPSG:4490", KM_CRS).unwrap() {
        Geometry::Point(p) => [p.x(), p.y()],
        _ => unreachable!(),
    }
}

async fn net3_imports_with_the_segments_of_the_file(backend: Backend) {
    let path = wntr_network("Net3");
    let (store, _, _d) = fresh_store(backend).await;
    let req = InpRequest {
        file: path.clone(),
        kind: PipeKind::WaterSupply,
        source_crs: Some(KM_CRS.into()),
        owner_id: None,
        owner: Some(owner()),
        valve_layer: Some(net3_layer()),
        strict: true,
    };
    let done = network::import_inp(
        Some(store.as_ref()),
        req,
        &Actor::cli(),
        Box::new(|_, _| {}),
    )
    .await
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let model = InpModel::parse(&text, KM_CRS).unwrap();
    let csv = std::fs::read_to_string(net3_layer()).unwrap();
    let layer: Vec<LayerValve> = csv
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            LayerValve {
                link: f[1].trim().into(),
                node: f[2].trim().into(),
            }
        })
        .collect();
    let direct = model.network(&layer).unwrap();
    let r = &done.summary.report;
    assert_eq!(r.rejected, 0, "{:?}", r.issues);
    assert_eq!(r.read, model.nodes.len() + model.links.len());
    let c = &done.counts;
    assert_eq!(c.layer_valves, layer.len());
    assert_eq!(c.closed_link_valves, direct.added_closed_valves.len());
    assert_eq!((c.reservoirs, c.tanks, c.pumps), (2, 3, 2));

    let data = store.load_all().await.unwrap();
    assert_eq!(data.owners.len(), 1);
    let (net, problems) = network_of(&data.nodes, &data.pipelines).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(net.valves().len(), direct.network.valves().len());
    let node_name: HashMap<i64, &str> = done
        .node_ids
        .iter()
        .map(|(n, id)| (*id, n.as_str()))
        .collect();
    let link_name: HashMap<i64, &str> = done
        .link_ids
        .iter()
        .map(|(n, id)| (*id, n.as_str()))
        .collect();
    let got = partition(
        &net,
        &|id| node_name.get(&id).map(|n| format!("node {n}")),
        &|id| link_name.get(&id).map(|n| format!("link {n}")),
    );
    let want = partition(
        &direct.network,
        &|id| Some(format!("node {}", direct.node_names[id as usize])),
        &|id| Some(format!("link {}", direct.link_names[id as usize])),
    );
    assert_eq!(got, want);
    assert!(want.len() > 10, "{} segments", want.len());
    // Sources as the reader has them: the reservoirs and tanks.
    let sources = data
        .nodes
        .iter()
        .filter(|n| n.node_type == NodeType::Source)
        .count();
    assert_eq!(sources, 5);

    // Diameters: Net3 is in GPM, so inches.
    let by_id: HashMap<i64, &lifeline::model::Pipeline> =
        data.pipelines.iter().map(|p| (p.id, p)).collect();
    for l in &model.links {
        let p = by_id[&done.link_ids[&l.name]];
        match l.diameter {
            Some(d) => assert!(
                (p.diameter_mm.unwrap() - d * 25.4).abs() < 1e-9,
                "{}",
                l.name
            ),
            None => assert_eq!(p.diameter_mm, None),
        }
    }
    // Coordinates: back in the file's CRS, within 1 mm (1e-6 km).
    let node_at: HashMap<i64, Point<f64>> = data.nodes.iter().map(|n| (n.id, n.geometry)).collect();
    for n in &model.nodes {
        let at = node_at[&done.node_ids[&n.name]];
        let xy = back(at.x(), at.y());
        let file = n.at.unwrap();
        assert!(
            (xy[0] - file[0]).abs() < 1e-6 && (xy[1] - file[1]).abs() < 1e-6,
            "node {}: {xy:?} against the file's {file:?}",
            n.name
        );
    }
}

#[tokio::test]
async fn net3_gpkg() {
    net3_imports_with_the_segments_of_the_file(Backend::Gpkg).await;
}

#[tokio::test]
async fn net3_postgis() {
    net3_imports_with_the_segments_of_the_file(Backend::Postgis).await;
}

const SMALL_SI: &str = "\
[TITLE]
SI units, a bent pipe, a closed pipe and a junction nobody drew
[OPTIONS]
 Units LPS
[JUNCTIONS]
 J1 10 1
 J2 10 1
 J3 10 1
 J4 10 1
[RESERVOIRS]
 R1 50
[PIPES]
 P1 R1 J1 1000 300 100 0 Open
 P2 J1 J2 800 200 100 0 Open
 P3 J2 J3 500 150 100 0 Closed
 P4 J3 J4 500 150 100 0 Open
[COORDINATES]
 R1 0 0
 J1 1 0
 J2 2 1
 J3 3 1
[VERTICES]
 P2 1.5 0.2
 P2 1.8 0.7
[END]
";

#[tokio::test]
async fn si_units_vertices_and_a_junction_without_coordinates() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.inp");
    std::fs::write(&file, SMALL_SI).unwrap();
    let (store, _, _d) = fresh_store(Backend::Gpkg).await;
    let req = InpRequest {
        file,
        kind: PipeKind::WaterSupply,
        source_crs: Some(KM_CRS.into()),
        owner_id: None,
        owner: Some(owner()),
        valve_layer: None,
        strict: false,
    };
    let done = network::import_inp(
        Some(store.as_ref()),
        req,
        &Actor::cli(),
        Box::new(|_, _| {}),
    )
    .await
    .unwrap();
    let r = &done.summary.report;
    assert_eq!((r.read, r.rejected), (9, 2), "{:?}", r.issues);
    let reasons: Vec<&str> = r.issues.iter().map(|i| i.reason.as_str()).collect();
    assert!(
        reasons[0].contains("junction \"J4\" has no [COORDINATES]"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("pipe \"P4\"") && reasons[1].contains("\"J4\""),
        "{reasons:?}"
    );
    assert_eq!(done.counts.closed_link_valves, 1);
    let data = store.load_all().await.unwrap();
    let p2 = data
        .pipelines
        .iter()
        .find(|p| p.id == done.link_ids["P2"])
        .unwrap();
    assert_eq!(p2.diameter_mm, Some(200.0), "SI: millimetres as written");
    // Both vertices kept, between the end nodes.
    let line: Vec<[f64; 2]> = p2.geometry.0.iter().map(|c| back(c.x, c.y)).collect();
    assert_eq!(line.len(), 4);
    for (got, want) in line
        .iter()
        .zip([[1.0, 0.0], [1.5, 0.2], [1.8, 0.7], [2.0, 1.0]])
    {
        assert!(
            (got[0] - want[0]).abs() < 1e-6 && (got[1] - want[1]).abs() < 1e-6,
            "{line:?}"
        );
    }
    // The closed pipe is cut off by a normally closed valve at its start.
    let (net, problems) = network_of(&data.nodes, &data.pipelines).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let islands = net.islands_without_source();
    assert_eq!(islands.len(), 1, "{islands:?}");
    assert!(islands[0].pipes.contains(&done.link_ids["P3"]));
}

/// Runs `lifeline --gpkg STORE import ARGS…` and returns (success, stderr).
fn import(store: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .arg("--gpkg")
        .arg(store)
        .arg("import")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_inp_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.gpkg");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let good = write("good.inp", SMALL_SI);
    let (ok, err) = import(&store, &[&good, "--kind", "water", "--owner-id", "1"]);
    assert!(!ok);
    assert!(
        err.contains("states no CRS") && err.contains("--source-crs"),
        "{err}"
    );
    assert!(
        !store.exists(),
        "nothing opened or written before the check"
    );

    let malformed = write(
        "malformed.inp",
        "[JUNCTIONS]\n J1 1\n J2 1\n[PIPES]\n P1 J1 J2 long 300 100\n",
    );
    let (ok, err) = import(
        &store,
        &[
            &malformed,
            "--kind",
            "water",
            "--source-crs",
            KM_CRS,
            "--owner-id",
            "1",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("line 5, [PIPES]: length \"long\" is not a number"),
        "{err}"
    );

    let unknown = write(
        "unknown.inp",
        "[JUNCTIONS]\n J1 1\n[PIPES]\n P1 J1 J9 100 300 100\n",
    );
    let (ok, err) = import(
        &store,
        &[
            &unknown,
            "--kind",
            "water",
            "--source-crs",
            KM_CRS,
            "--owner-id",
            "1",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("line 4, [PIPES]: node \"J9\" is not defined"),
        "{err}"
    );

    let (ok, err) = import(&store, &[&good, "--source-crs", KM_CRS, "--owner-id", "1"]);
    assert!(!ok);
    assert!(err.contains("--kind"), "{err}");
}
