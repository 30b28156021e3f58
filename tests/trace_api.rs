//! Network traces over HTTP (issue 15), on both stores: the real Schutterwald gas network
//! (1,506 house connections; `../shared/data/real/schutterwald_gas_gk3.gpkg`) is loaded as
//! nodes and pipelines that name their end nodes, with a valve on each house connection
//! and on every seventh main. The oracle is the trace engine run directly on the same
//! network read from the file (through `ogr2ogr`, not through a store): for many pipes
//! `POST /trace/isolate` must give exactly its segment, valves, pockets, source and
//! customers, with and without a broken valve; `POST /trace/connected` likewise; and the
//! excavation check's "if struck" on every violated pipe; upstream and downstream likewise,
//! and downstream holding whatever removing the pipe cuts off (found by components). Then
//! the GeoJSON and HTML forms, the roles (checked before the body), and bad requests; and
//! where the trace is wired in: a contractor's ticket, a leak alarm's link, a trace
//! published on the event stream.

mod app;

use app::{Backend, TestApp};
use geo::Length;
use lifeline::model::*;
use lifeline::trace::{
    from_attributes, Network, NodeKind, NodeRecord, PipeRecord, Position, Scenario, ValveNode,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// The feed junction of the pandapipes model (see `crates/trace/tests/schutterwald.rs`).
const FEED: i64 = 168;

fn geojson(layer: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("{layer}.geojson"));
    let src = app::shared_data_dir().join("real/schutterwald_gas_gk3.gpkg");
    let ok = std::process::Command::new("ogr2ogr")
        .args(["-f", "GeoJSON", "-t_srs", "EPSG:4490"])
        .arg(&out)
        .arg(&src)
        .arg(layer)
        .status()
        .expect("ogr2ogr (scripts/setup.sh installs gdal-bin)");
    assert!(ok.success());
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// The network as stored records (ids shifted by one: stored ids are positive) and the
/// engine's network built from the same file without any store.
fn schutterwald() -> (Dataset, Network) {
    let junctions = geojson("gas_junctions");
    let pipes = geojson("gas_pipes");
    let features = |v: &Value| v["features"].as_array().unwrap().clone();
    let int = |v: &Value| v.as_i64().unwrap();
    // A valve at the main-side end of each house connection (the first one per junction),
    // and at the start of every seventh main.
    let mut valve_on: BTreeMap<i64, i64> = BTreeMap::new();
    let house: std::collections::HashSet<i64> = features(&junctions)
        .iter()
        .filter(|f| f["properties"]["type"] == "house_node")
        .map(|f| int(&f["properties"]["id"]))
        .collect();
    for f in features(&pipes) {
        let p = &f["properties"];
        let (id, a, b) = (
            int(&p["id"]),
            int(&p["from_junction"]),
            int(&p["to_junction"]),
        );
        let main_side = if p["type"] == "house_connection" {
            Some(if house.contains(&a) { b } else { a })
        } else {
            (id % 7 == 0).then_some(a)
        };
        if let Some(j) = main_side.filter(|j| *j != FEED) {
            valve_on.entry(j).or_insert(id);
        }
    }
    let mut data = Dataset {
        owners: vec![Owner {
            id: 1,
            name: "Gasversorgung Schutterwald".into(),
            emergency_contact: "Leitstelle".into(),
            emergency_phone: "0781-000".into(),
            email: None,
        }],
        ..Default::default()
    };
    let mut records = Vec::new();
    for f in features(&junctions) {
        let id = int(&f["properties"]["id"]);
        let c = &f["geometry"]["coordinates"];
        let at = geo::point!(x: c[0].as_f64().unwrap(), y: c[1].as_f64().unwrap());
        let (node, kind) = if id == FEED {
            (
                NetworkNode {
                    source_kind: Some(SourceKind::GateStation),
                    ..NetworkNode::new(id + 1, PipeKind::Gas, NodeType::Source, at)
                },
                NodeKind::Source,
            )
        } else if house.contains(&id) {
            (
                NetworkNode::new(id + 1, PipeKind::Gas, NodeType::Customer, at),
                NodeKind::Customer { customers: 1 },
            )
        } else if let Some(pipe) = valve_on.get(&id) {
            (
                NetworkNode {
                    on_pipe_id: Some(pipe + 1),
                    ..NetworkNode::new(id + 1, PipeKind::Gas, NodeType::Valve, at)
                },
                NodeKind::Valve(ValveNode {
                    position: Position::Open,
                    operable: true,
                    on_pipe: Some(pipe + 1),
                }),
            )
        } else {
            (
                NetworkNode::new(id + 1, PipeKind::Gas, NodeType::Junction, at),
                NodeKind::Junction,
            )
        };
        data.nodes.push(node);
        records.push(NodeRecord { id: id + 1, kind });
    }
    let mut joins = Vec::new();
    for f in features(&pipes) {
        let p = &f["properties"];
        let (id, a, b) = (
            int(&p["id"]),
            int(&p["from_junction"]),
            int(&p["to_junction"]),
        );
        let line: Vec<(f64, f64)> = f["geometry"]["coordinates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap()))
            .collect();
        data.pipelines.push(Pipeline {
            pressure_class: Some(GasPressure::Low),
            from_node: Some(a + 1),
            to_node: Some(b + 1),
            ..Pipeline::new(id + 1, PipeKind::Gas, 1, line.into())
        });
        joins.push(PipeRecord {
            id: id + 1,
            from: a + 1,
            to: b + 1,
        });
    }
    let topo = from_attributes(&records, &joins).expect("the file's topology");
    assert!(topo.report.is_empty(), "{:?}", topo.report);
    (data, topo.network)
}

/// The nodes that lose every source when pipe `pipe` is taken out of `net` (and were fed
/// before), found by components (islands without a source), not by the flow.
fn cut_off_by_removing(net: &Network, pipe: i64) -> Vec<i64> {
    let unfed = |n: &Network| -> std::collections::HashSet<i64> {
        n.islands_without_source()
            .into_iter()
            .flat_map(|p| p.nodes)
            .collect()
    };
    let before = unfed(net);
    let without = Network::new(
        net.nodes().to_vec(),
        net.pipes()
            .iter()
            .filter(|p| p.id != pipe)
            .cloned()
            .collect(),
        net.valves()
            .iter()
            .filter(|v| v.pipe != pipe)
            .cloned()
            .collect(),
    )
    .unwrap();
    let mut lost: Vec<i64> = unfed(&without).difference(&before).copied().collect();
    lost.sort_unstable();
    lost
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

async fn post(app: &TestApp, path: &str, role: Role, body: Value) -> (StatusCode, Value) {
    let r = app
        .req(Method::POST, path, Some(role))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn traces_equal_the_engine(backend: Backend) {
    let (data, net) = schutterwald();
    // The flow direction as the engine sets it, from the pipes' own lengths.
    let lengths: HashMap<i64, f64> = data
        .pipelines
        .iter()
        .map(|p| (p.id, geo::Geodesic.length(&p.geometry)))
        .collect();
    let flow = net.flow(&Scenario::default(), |id| lengths[&id]);
    let app = TestApp::start_loaded(backend, Some(Role::Viewer), Some(data), |_| {}).await;
    let pipes: Vec<i64> = net.pipes().iter().map(|p| p.id).collect();
    let valves: Vec<i64> = net.valves().iter().map(|v| v.id).collect();
    assert!(valves.len() > 500, "{} valves", valves.len());
    let mut saw_pockets = false;
    for (i, pipe) in pipes.iter().step_by(97).enumerate() {
        // Every other trace with one of the would-be valves found broken.
        let plain = net.isolate(&[*pipe], &Scenario::default()).unwrap();
        let broken: Vec<i64> = if i % 2 == 1 {
            plain.valves_to_close.iter().take(1).copied().collect()
        } else {
            vec![]
        };
        let s = Scenario {
            broken: broken.iter().copied().collect(),
            ..Default::default()
        };
        let want = net.isolate(&[*pipe], &s).unwrap();
        let (status, got) = post(
            &app,
            "/trace/isolate",
            Role::Operator,
            json!({"pipes": [pipe], "broken_valves": broken}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{got}");
        let n = &got["networks"][0];
        assert_eq!(n["kind"], "gas");
        assert_eq!(
            ids(&n["segment"]["pipes"]),
            want.segment.pipes,
            "pipe {pipe}"
        );
        assert_eq!(
            ids(&n["segment"]["nodes"]),
            want.segment.nodes,
            "pipe {pipe}"
        );
        assert_eq!(
            ids(&n["valves_to_close"]),
            want.valves_to_close,
            "pipe {pipe}"
        );
        let boundary: Vec<i64> = n["boundary_valves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_i64().unwrap())
            .collect();
        let want_boundary: Vec<i64> = want.boundary_valves.iter().map(|b| b.id).collect();
        assert_eq!(boundary, want_boundary);
        let pockets: Vec<Vec<i64>> = n["pockets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| ids(&p["pipes"]))
            .collect();
        let want_pockets: Vec<Vec<i64>> = want.pockets.iter().map(|p| p.pipes.clone()).collect();
        assert_eq!(pockets, want_pockets, "pipe {pipe}");
        saw_pockets |= !pockets.is_empty();
        assert_eq!(n["source_inside"], want.source_inside);
        assert_eq!(n["customers"]["count"], want.customers.count);
        assert_eq!(got["totals"]["customers"], want.customers.count);
        if want.source_inside {
            let notes = n["notes"].to_string();
            assert!(notes.contains("source"), "{notes}");
        }
        // The lengths are the pipes' own.
        assert!(n["impact"]["segment_length_m"].as_f64().unwrap() > 0.0);

        let (status, got) = post(
            &app,
            "/trace/connected",
            Role::Analyst,
            json!({"pipes": [pipe]}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{got}");
        let want = net.connected(*pipe, &Scenario::default()).unwrap();
        assert_eq!(ids(&got[0]["pipes"]), want.pipes);
        assert_eq!(got[0]["fed"], want.nodes.contains(&(FEED + 1)));

        // Upstream and downstream, as the engine traces them.
        for (path, up) in [("/trace/upstream", true), ("/trace/downstream", false)] {
            let (status, got) = post(&app, path, Role::Analyst, json!({"pipes": [pipe]})).await;
            assert_eq!(status, StatusCode::OK, "{got}");
            let want = if up {
                net.upstream(&flow, *pipe)
            } else {
                net.downstream(&flow, *pipe)
            }
            .unwrap();
            let g = &got[0];
            assert_eq!(g["direction"], if up { "upstream" } else { "downstream" });
            assert_eq!(ids(&g["pipes"]), want.part.pipes, "{path} {pipe}");
            assert_eq!(ids(&g["nodes"]), want.part.nodes, "{path} {pipe}");
            assert_eq!(ids(&g["valves"]), want.valves, "{path} {pipe}");
            assert_eq!(ids(&g["sources"]), want.sources, "{path} {pipe}");
            assert_eq!(g["customers"]["count"], want.customers.count);
            assert_eq!(g["fed"], want.fed);
        }
        // Whatever only this pipe feeds (what removing it cuts off) lies downstream of it,
        // and upstream of a fed pipe is the feed.
        let down = net.downstream(&flow, *pipe).unwrap();
        for lost in cut_off_by_removing(&net, *pipe) {
            assert!(
                down.part.nodes.contains(&lost),
                "node {lost} below pipe {pipe}"
            );
        }
        let up = net.upstream(&flow, *pipe).unwrap();
        if up.fed {
            assert_eq!(up.sources, vec![FEED + 1]);
        }
    }
    // Isolating the feed's own pipe takes the source out: reported, not refused.
    let feed_pipe = net
        .pipes()
        .iter()
        .find(|p| p.from == FEED + 1 || p.to == FEED + 1)
        .unwrap()
        .id;
    let (status, got) = post(
        &app,
        "/trace/isolate",
        Role::Operator,
        json!({"pipes": [feed_pipe]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["networks"][0]["source_inside"], true);
    let want = net.isolate(&[feed_pipe], &Scenario::default()).unwrap();
    assert_eq!(got["totals"]["customers"], want.customers.count);
    assert!(saw_pockets || !want.pockets.is_empty());

    // The excavation check: every violated pipe says what striking it would cut off, as
    // the engine isolates it.
    for pipe in pipes.iter().step_by(331) {
        let rec = app
            .req(
                Method::GET,
                &format!("/features/pipelines/{pipe}"),
                Some(Role::Analyst),
            )
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let c = &rec["geometry"]["coordinates"];
        let (x, y) = (
            (c[0][0].as_f64().unwrap() + c[1][0].as_f64().unwrap()) / 2.0,
            (c[0][1].as_f64().unwrap() + c[1][1].as_f64().unwrap()) / 2.0,
        );
        let d = 0.00002;
        let dig = json!({
            "geometry": {"type": "Polygon", "coordinates": [[[x - d, y - d], [x + d, y - d], [x + d, y + d], [x - d, y + d], [x - d, y - d]]]},
            "top_depth_m": 0.0, "bottom_depth_m": 2.5, "method": "mechanical", "work_type": "gas service repair",
            "start_date": app::today().to_string(), "end_date": (app::today() + chrono::Duration::days(2)).to_string()
        });
        let (status, check) = post(&app, "/excavation/check", Role::Contractor, dig).await;
        assert_eq!(status, StatusCode::OK, "{check}");
        let violated: Vec<&Value> = check["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["severity"] == "violation")
            .collect();
        assert!(
            violated.iter().any(|c| c["pipeline_id"] == *pipe),
            "the dig on pipe {pipe} violates it"
        );
        for c in violated {
            let id = c["pipeline_id"].as_i64().unwrap();
            let want = net.isolate(&[id], &Scenario::default()).unwrap();
            let s = &c["if_struck"];
            assert_eq!(
                ids(&s["valves_to_close"]),
                want.valves_to_close,
                "pipe {id}"
            );
            assert_eq!(s["customers"], want.customers.count, "pipe {id}");
            assert_eq!(s["segment_pipes"], want.segment.pipes.len(), "pipe {id}");
            assert_eq!(s["source_inside"], want.source_inside, "pipe {id}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn traces_equal_the_engine_on_postgis() {
    traces_equal_the_engine(Backend::Postgis).await;
}

#[tokio::test]
async fn traces_equal_the_engine_on_gpkg() {
    traces_equal_the_engine(Backend::Gpkg).await;
}

async fn forms_roles_and_bad_requests(backend: Backend) {
    // The fixtures: water main 1 from the plant (node 1) to a valve (node 2); the other
    // pipes have no topology.
    let app = TestApp::start(backend).await;
    let (status, got) = post(&app, "/trace/isolate", Role::Analyst, json!({"pipes": [1]})).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let n = &got["networks"][0];
    assert_eq!(ids(&n["segment"]["pipes"]), vec![1]);
    assert_eq!(n["source_inside"], true);
    // The valve's far side reaches no other source: nothing to close.
    assert_eq!(ids(&n["valves_to_close"]), Vec::<i64>::new());
    assert_eq!(n["boundary_valves"][0]["id"], 2);
    // The sensors watching the main are affected, with the risk points they watch.
    let data = app::fixtures::dataset();
    let watching: Vec<&Sensor> = data
        .sensors
        .iter()
        .filter(|s| s.pipeline_id == Some(1))
        .collect();
    assert!(!watching.is_empty());
    assert_eq!(
        ids(&n["impact"]["sensors"]),
        watching.iter().map(|s| s.id).collect::<Vec<_>>()
    );
    let mut risks: Vec<i64> = watching.iter().filter_map(|s| s.risk_point_id).collect();
    risks.sort_unstable();
    risks.dedup();
    assert_eq!(ids(&n["impact"]["risk_points"]), risks);

    // A point beside the main finds it.
    let (status, got) = post(
        &app,
        "/trace/isolate",
        Role::Operator,
        json!({"point": [106.5005, 29.50006], "within_m": 50}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(ids(&got["networks"][0]["start_pipes"]), vec![1]);

    // GeoJSON: the segment's pipe, its boundary valve and its outline.
    let r = app
        .req(
            Method::POST,
            "/trace/isolate?f=geojson",
            Some(Role::Analyst),
        )
        .json(&json!({"pipes": [1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/geo+json");
    let fc: Value = r.json().await.unwrap();
    let roles: Vec<&str> = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["segment", "boundary_valve"]);
    assert_eq!(fc["features"][1]["properties"]["code"], "V-0001");
    // HTML: a printable report naming the network.
    let r = app
        .req(Method::POST, "/trace/isolate", Some(Role::Analyst))
        .header("accept", "text/html")
        .json(&json!({"pipes": [1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("water_supply network") && html.contains("source inside: yes"));

    // Roles: below analyst is refused before the body is read (a malformed body still
    // gets the 403).
    for role in [Role::Viewer, Role::Contractor] {
        let r = app
            .req(Method::POST, "/trace/isolate", Some(role))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{role}");
    }
    // Bad requests name the problem.
    for (body, says) in [
        (json!({}), "exactly one"),
        (json!({"pipes": [1], "point": [106.5, 29.5]}), "exactly one"),
        (json!({"pipes": [999]}), "pipeline 999 does not exist"),
        (json!({"pipes": [3]}), "no from_node/to_node"),
        (json!({"pipes": [1], "broken_valves": [77]}), "valve 77"),
        (
            json!({"point": [106.9, 29.9], "within_m": 10}),
            "no pipe with topology",
        ),
        (
            json!({"point": [106.5, 29.5], "within_m": 5000}),
            "within_m",
        ),
        (json!({"geometry": {"type": "Point"}}), "geometry"),
    ] {
        let (status, got) = post(&app, "/trace/isolate", Role::Operator, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {got}");
        assert!(got.to_string().contains(says), "{body}: {got}");
    }
    // A field the request does not have is a body the service cannot use: 422, named.
    let (status, got) = post(
        &app,
        "/trace/isolate",
        Role::Operator,
        json!({"pipes": [1], "colour": "red"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{got}");
    assert!(got.to_string().contains("colour"), "{got}");
    app.stop().await;
}

#[tokio::test]
async fn forms_roles_and_bad_requests_on_postgis() {
    forms_roles_and_bad_requests(Backend::Postgis).await;
}

#[tokio::test]
async fn forms_roles_and_bad_requests_on_gpkg() {
    forms_roles_and_bad_requests(Backend::Gpkg).await;
}

/// The nodes layer is served like the others: OGC items with attributes by role.
#[tokio::test]
async fn nodes_are_a_layer() {
    let app = TestApp::start(Backend::Gpkg).await;
    let items = |role| {
        app.req(Method::GET, "/ogc/collections/nodes/items", role)
            .send()
    };
    let full: Value = items(Some(Role::Analyst))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let by_id: HashMap<i64, &Value> = full["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_i64().unwrap(), &f["properties"]))
        .collect();
    assert_eq!(by_id[&1]["source_kind"], "water_plant");
    assert_eq!(by_id[&2]["code"], "V-0001");
    let public: Value = items(None).await.unwrap().json().await.unwrap();
    let valve = public["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == 2)
        .unwrap();
    assert_eq!(valve["properties"]["node_type"], "valve");
    assert!(valve["properties"].get("code").is_none(), "{valve}");
    app.stop().await;
}

fn ago(secs: i64) -> String {
    (app::now() - chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = req.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Where the trace is wired in, on the fixtures (water main 1 from the plant to valve 2,
/// watched by pressure sensor 3; gas pipe 2 without topology, watched by gas sensor 1):
/// a contractor traces their own ticket's conflicts and nothing else; an open leak alarm
/// links to its isolation for the roles that may trace; an operator publishes a trace on
/// the event stream, which analysts receive (live and replayed) and viewers never do.
async fn tickets_alarms_and_published_traces(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (analyst, viewer) = (Role::Analyst, Role::Viewer);

    // A contractor's ticket across mains 1 and 2.
    let dig = json!({
        "geometry": {"type": "Polygon", "coordinates": [[[106.5003, 29.4999], [106.5006, 29.4999], [106.5006, 29.5004], [106.5003, 29.5004], [106.5003, 29.4999]]]},
        "top_depth_m": 0.0, "bottom_depth_m": 2.5, "method": "mechanical", "work_type": "water service connection",
        "start_date": app::today().to_string(), "end_date": (app::today() + chrono::Duration::days(3)).to_string(),
        "requester": {"name": "王工", "company": "渝建三公司", "phone": "138 0000 0000"}
    });
    let (s, t) = post(&app, "/excavation/tickets", Role::Contractor, dig).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let ticket = t["id"].as_i64().unwrap();
    let on = format!("/trace/isolate?ticket={ticket}");
    let (s, got) = post(&app, &on, Role::Contractor, json!({"pipes": [1]})).await;
    assert_eq!(s, StatusCode::OK, "{got}");
    let (_, whole) = post(&app, "/trace/isolate", analyst, json!({"pipes": [1]})).await;
    assert_eq!(got, whole, "a ticket's trace is the trace itself");
    // A point finds the ticket's pipe; the other forms follow the ticket too.
    let (s, got) = post(
        &app,
        &format!("/trace/upstream?ticket={ticket}"),
        Role::Contractor,
        json!({"point": [106.5005, 29.50006]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(got[0]["start_pipe"], 1);
    assert_eq!(ids(&got[0]["sources"]), vec![1]);
    // A pipe that is not a conflict of the ticket is refused before anything is said
    // about it, existing or not.
    for pipe in [5, 999] {
        let (s, got) = post(&app, &on, Role::Contractor, json!({"pipes": [pipe]})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{got}");
        let says = got.to_string();
        assert!(
            says.contains(&format!(
                "pipeline {pipe} is not a conflict of excavation ticket {ticket}"
            )),
            "{says}"
        );
    }
    // Without a ticket a contractor may not trace; another contractor's ticket is missing;
    // a viewer may see no ticket at all. Each is decided before the body is read.
    let rival = lifeline::auth::generate_key();
    app.store
        .create_api_key(
            "rival",
            Role::Contractor,
            &lifeline::auth::hash_key(&rival),
            &Actor::cli(),
        )
        .await
        .unwrap();
    for (req, status) in [
        (
            app.req(Method::POST, "/trace/isolate", Some(Role::Contractor)),
            StatusCode::FORBIDDEN,
        ),
        (
            app.client.post(app.url(&on)).bearer_auth(&rival),
            StatusCode::NOT_FOUND,
        ),
        (
            app.req(Method::POST, &on, Some(viewer)),
            StatusCode::FORBIDDEN,
        ),
        (
            app.req(
                Method::POST,
                "/trace/isolate?ticket=abc",
                Some(Role::Contractor),
            ),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (s, got) = send(
            req.header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
        assert_eq!(s, status, "{got}");
    }

    // Alarms: pressure on main 1 (traceable), gas on pipe 2 (no topology).
    let (s, v) = send(
        app.req(Method::POST, "/sensors/readings", Some(Role::Operator))
            .json(&json!([
                {"sensor_id": 3, "time": ago(100), "value": 0.6},
                {"sensor_id": 3, "time": ago(60), "value": 0.6},
                {"sensor_id": 1, "time": ago(100), "value": 25.0},
                {"sensor_id": 1, "time": ago(80), "value": 25.0},
            ])),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["alarm_changes"], 2, "{v}");
    let alarm_of = |list: &Value, sensor: i64| -> Value {
        list["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["sensor_id"] == sensor)
            .unwrap()
            .clone()
    };
    let (_, list) = send(app.req(Method::GET, "/alarms", Some(analyst))).await;
    let (pressure, gas) = (alarm_of(&list, 3), alarm_of(&list, 1));
    let pid = pressure["id"].as_i64().unwrap();
    assert_eq!(pressure["isolation"], format!("/alarms/{pid}/isolation"));
    assert!(gas.get("isolation").is_none(), "{gas}");
    let (_, list) = send(app.req(Method::GET, "/alarms", Some(viewer))).await;
    assert!(
        alarm_of(&list, 3).get("isolation").is_none(),
        "viewers get no link"
    );
    let (_, one) = send(app.req(Method::GET, &format!("/alarms/{pid}"), Some(analyst))).await;
    assert_eq!(one["isolation"], pressure["isolation"]);
    let (s, iso) = send(app.req(
        Method::GET,
        &format!("/alarms/{pid}/isolation"),
        Some(analyst),
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{iso}");
    assert_eq!(iso, whole, "the alarm's isolation is its pipe's");
    let gid = gas["id"].as_i64().unwrap();
    let (s, why) = send(app.req(
        Method::GET,
        &format!("/alarms/{gid}/isolation"),
        Some(analyst),
    ))
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{why}");
    assert!(
        why.to_string()
            .contains("pipeline 2, which its sensor watches, has no topology"),
        "{why}"
    );
    let (s, _) = send(app.req(
        Method::GET,
        &format!("/alarms/{pid}/isolation"),
        Some(viewer),
    ))
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = send(
        app.req(
            Method::POST,
            &format!("/alarms/{pid}/transitions"),
            Some(analyst),
        )
        .json(&json!({"to": "false_alarm"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, why) = send(app.req(
        Method::GET,
        &format!("/alarms/{pid}/isolation"),
        Some(analyst),
    ))
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{why}");
    assert!(why.to_string().contains("only open alarms"), "{why}");

    // Publishing: analysts (and above) receive it; viewers do not.
    let base = app.url("");
    let mut watcher = app::sse::SseClient::connect_with(
        &base,
        "?kinds=trace,edit",
        None,
        Some(&app.keys[&analyst]),
    )
    .await;
    let mut public = app::sse::SseClient::connect_with(
        &base,
        "?kinds=trace,edit",
        None,
        Some(&app.keys[&viewer]),
    )
    .await;
    let (s, got) = post(
        &app,
        "/trace/isolate?publish=true",
        Role::Operator,
        json!({"pipes": [1], "message": "爆管：九龙坡水厂出厂干管"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{got}");
    let published = got["published"].as_i64().expect("the event's id");
    let ev = watcher.take(1).await.remove(0);
    assert_eq!(ev.event, "trace");
    assert!(ev.id.starts_with(&format!("{published}-")), "{}", ev.id);
    assert_eq!(ev.data["message"], "爆管：九龙坡水厂出厂干管");
    assert_eq!(ev.data["role"], "operator");
    assert!(ev.data.get("actor").is_none() && !ev.data.to_string().contains("test-operator"));
    let n = &ev.data["networks"][0];
    assert_eq!(n["kind"], "water_supply");
    assert_eq!(
        ids(&n["segment_pipes"]),
        ids(&whole["networks"][0]["segment"]["pipes"])
    );
    assert_eq!(
        ids(&n["valves_to_close"]),
        ids(&whole["networks"][0]["valves_to_close"])
    );
    assert_eq!(n["customers"], whole["networks"][0]["customers"]["count"]);
    // An edit after it reaches the viewer first: the trace went by without them.
    let (s, _) = send(
        app.req(Method::POST, "/features/pipelines", Some(Role::Operator))
            .json(&app::fixtures::pipe_feature()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(public.take(1).await[0].event, "edit");
    assert_eq!(watcher.take(1).await[0].event, "edit");
    // A client reconnecting from before it gets the trace again.
    let mut late = app::sse::SseClient::connect_with(
        &base,
        "?kinds=trace",
        Some("0-0-0"),
        Some(&app.keys[&analyst]),
    )
    .await;
    let again = late.take(1).await.remove(0);
    assert_eq!((again.event.as_str(), &again.data), ("trace", &ev.data));
    // The audit log names who published.
    let audit = app.store.audit_log(100).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "trace_published" && e.actor == "test-operator"),
        "{audit:?}"
    );
    // Publishing needs the operator role, checked before the body; a message goes with a
    // publication only, and has a limit.
    let (s, _) = send(
        app.req(Method::POST, "/trace/isolate?publish=true", Some(analyst))
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for (path, body, says) in [
        (
            "/trace/isolate",
            json!({"pipes": [1], "message": "x"}),
            "publish=true",
        ),
        (
            "/trace/isolate?publish=true",
            json!({"pipes": [1], "message": "长".repeat(501)}),
            "500 characters",
        ),
    ] {
        let (s, got) = post(&app, path, Role::Operator, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{got}");
        assert!(got.to_string().contains(says), "{got}");
    }
    app.stop().await;
}

#[tokio::test]
async fn tickets_alarms_and_published_traces_on_postgis() {
    tickets_alarms_and_published_traces(Backend::Postgis).await;
}

#[tokio::test]
async fn tickets_alarms_and_published_traces_on_gpkg() {
    tickets_alarms_and_published_traces(Backend::Gpkg).await;
}
