//! The interfaces other tools read (issue 22), judged by those tools: both OpenAPI
//! documents pass `openapi-spec-validator`; the router and the documents agree both ways
//! (every route of the router is documented, every documented operation answers, and no
//! undocumented method does); and a Python client generated from `/openapi.json` by
//! `openapi-python-client` scripts a check, a ticket and the alarms against the real server.

mod app;

use app::{Backend, TestApp};
use lifeline::http::routes::{Document, Route};
use lifeline::model::Role;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

async fn get_json(app: &TestApp, path: &str) -> Value {
    let r = app.req(Method::GET, path, None).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK, "GET {path}");
    r.json().await.expect("JSON")
}

/// The installed Python tools (`scripts/setup.sh --tests` installs them).
fn python(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("python3")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run python3")
}

fn run_ok(what: &str, out: std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Both documents, as served, pass openapi-spec-validator (3.1 and 3.0.3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_documents_validate() {
    let app = TestApp::start(Backend::Gpkg).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let service = get_json(&app, "/openapi.json").await;
    let ogc = get_json(&app, "/ogc/api").await;
    assert!(service["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(ogc["openapi"].as_str().unwrap().starts_with("3.0"));
    for (name, doc) in [("service.json", &service), ("ogc.json", &ogc)] {
        std::fs::write(dir.path().join(name), doc.to_string()).expect("write");
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openapi/validate.py");
    let out = run_ok(
        "openapi-spec-validator",
        python(&[script, "service.json", "ogc.json"], dir.path()),
    );
    assert_eq!(out.matches(": valid OpenAPI").count(), 2, "{out}");
    app.stop().await;
}

/// A sample value for a path parameter, so that the request reaches its handler.
fn sample(segment: &str) -> String {
    match segment {
        "{layer}" | "{layers}" | "{collectionId}" => "pipelines".into(),
        "{y}.mvt" => "0.mvt".into(),
        "{layers}.json" => "pipelines.json".into(),
        "{name}.json" => "network.json".into(),
        s if s.starts_with('{') => "1".into(),
        s => s.into(),
    }
}

fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(sample)
        .collect::<Vec<_>>()
        .join("/")
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// The documented operations of a document: (path relative to the server root, method).
fn operations(doc: &Value, base: &str) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                let full = format!("{base}{path}");
                ops.push((full.trim_end_matches('/').to_string(), m.to_string()));
            }
        }
    }
    ops
}

/// Whether the router answered: anything but its 405, or its 404 for a path it has no
/// route for (the body of which says "no resource at").
async fn routed(app: &TestApp, method: &str, path: &str) -> (bool, StatusCode) {
    let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let r = app
        .req(m, path, Some(Role::Admin))
        .timeout(std::time::Duration::from_secs(20))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = r.status();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return (false, status);
    }
    if status == StatusCode::NOT_FOUND {
        let v: Value = r.json().await.unwrap_or_default();
        let message = v["error"]["message"].as_str().unwrap_or("");
        return (!message.starts_with("no resource at"), status);
    }
    // Not read further: `/events` is a stream that does not end.
    (true, status)
}

/// The router and the documents agree both ways, from the router's own route table:
/// every route is in its document; every documented operation answers; a method a path does
/// not document is a 405; a path no document names is a 404.
async fn router_and_documents_agree(backend: Backend) {
    let app = TestApp::start(backend).await;
    let service = get_json(&app, "/openapi.json").await;
    let ogc = get_json(&app, "/ogc/api").await;
    let table: Vec<Route> = lifeline::http::api(&lifeline::config::Config::default())
        .table()
        .to_vec();
    assert!(table.len() >= 50, "{} routes", table.len());

    // The router → the documents.
    for r in &table {
        let doc = match r.document {
            Document::Service => &service,
            Document::Ogc => &ogc,
        };
        let documented = doc["paths"].as_object().expect("paths").keys();
        assert!(
            documented.clone().any(|p| r.matches(p)),
            "{} is routed but not in the {:?} document",
            r.path,
            r.document
        );
    }

    // The documents → the router.
    let mut ops = operations(&service, "");
    ops.extend(operations(&ogc, lifeline::http::routes::OGC_BASE));
    assert!(ops.len() >= 60, "{} operations", ops.len());
    for (template, method) in &ops {
        let path = concrete(template);
        let path = if path.is_empty() { "/".into() } else { path };
        let (answered, status) = routed(&app, method, &path).await;
        assert!(
            answered,
            "{method} {template} is documented but the router gives {status} at {path}"
        );
        for other in METHODS
            .iter()
            .filter(|m| !ops.contains(&(template.clone(), m.to_string())))
        {
            let (answered, status) = routed(&app, other, &path).await;
            assert!(
                !answered && status == StatusCode::METHOD_NOT_ALLOWED,
                "{other} {path} is not documented but the router gives {status}"
            );
        }
    }
    let (answered, status) = routed(&app, "get", "/no/such/route").await;
    assert!(!answered && status == StatusCode::NOT_FOUND);
    app.stop().await;
}
every_backend!(router_and_documents_agree);

/// A client generated from `/openapi.json` by openapi-python-client (PyPI) scripts what an
/// analyst or an integrator would: a check, a ticket (submitted, listed, read), readings
/// that raise an alarm, and the alarm list. The script prints what it got; the test
/// compares it with the server's own answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_scripts_a_check_a_ticket_and_alarms() {
    let app = TestApp::start(Backend::Postgis).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let doc = get_json(&app, "/openapi.json").await;
    std::fs::write(dir.path().join("openapi.json"), doc.to_string()).expect("write");
    run_ok(
        "openapi-python-client generate",
        Command::new("openapi-python-client")
            .args(["generate", "--path", "openapi.json", "--meta", "none"])
            .args(["--output-path", "lifeline_client"])
            .current_dir(dir.path())
            .output()
            .expect("run openapi-python-client (scripts/setup.sh --tests installs it)"),
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/openapi/client_script.py"
    );
    let base = app.url("");
    let out = run_ok(
        "the generated client's script",
        Command::new("python3")
            .arg(script)
            .arg(&base)
            .arg(&app.keys[&Role::Contractor])
            .arg(&app.keys[&Role::Operator])
            .env("PYTHONPATH", dir.path())
            .current_dir(dir.path())
            .output()
            .expect("run python3"),
    );
    let got: Value = serde_json::from_str(out.lines().last().unwrap_or("")).expect("JSON");

    // The check: the same conflicts the server gives to a plain request.
    let req: Value = got["check_request"].clone();
    let r = app
        .req(Method::POST, "/excavation/check", Some(Role::Contractor))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let direct: Value = r.json().await.unwrap();
    let conflicts = direct["conflicts"].as_array().expect("conflicts");
    assert!(
        !conflicts.is_empty(),
        "the fixture dig crosses pipes: {direct}"
    );
    assert_eq!(got["check_conflicts"], conflicts.len(), "{got}");

    // The ticket: stored as the client submitted it, and listed for its contractor.
    let id = got["ticket_id"].as_i64().expect("ticket id");
    let r = app
        .req(
            Method::GET,
            &format!("/excavation/tickets/{id}"),
            Some(Role::Contractor),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ticket: Value = r.json().await.unwrap();
    assert_eq!(got["ticket_state"], ticket["state"]);
    assert!(got["listed_ticket_ids"]
        .as_array()
        .unwrap()
        .contains(&Value::from(id)));

    // The alarms: the list the client read holds the alarm its readings raised.
    let r = app
        .req(Method::GET, "/alarms?sensor_id=1", Some(Role::Operator))
        .send()
        .await
        .unwrap();
    let alarms: Value = r.json().await.unwrap();
    let ids: Vec<&Value> = alarms["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert!(!ids.is_empty(), "the readings raised no alarm: {alarms}");
    for id in got["alarm_ids"].as_array().expect("alarm ids") {
        assert!(ids.contains(&id), "{id} not among {ids:?}");
    }
    assert_eq!(got["alarm_ids"].as_array().unwrap().len(), ids.len());
    app.stop().await;
}
