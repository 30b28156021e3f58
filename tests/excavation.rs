//! The excavation check and tickets end to end (issue 4): the real server on port 0 over a
//! real PostGIS and a real GeoPackage, every case on both.

mod app;

use app::{Backend, TestApp};
use lifeline::model::{Actor, Role};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Degrees per metre at Chongqing's latitude (29.5° N), for building fixtures in metres.
const DLAT: f64 = 1.0 / 110_800.0;
const DLON: f64 = 1.0 / 96_900.0;

async fn body(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text}));
    (status, v)
}

fn assert_error(status: StatusCode, v: &Value, want: StatusCode, needle: &str) {
    assert_eq!(status, want, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.to_lowercase().contains(&needle.to_lowercase()),
        "message {msg:?} should mention {needle:?}"
    );
}

fn today() -> chrono::NaiveDate {
    app::today()
}

/// A rectangle from (x, y) of `w` × `h` metres, counter-clockwise.
fn rect(x: f64, y: f64, w: f64, h: f64) -> Vec<[f64; 2]> {
    let (x1, y1) = (x + w * DLON, y + h * DLAT);
    vec![[x, y], [x1, y], [x1, y1], [x, y1], [x, y]]
}

fn dig(geometry: Value) -> Value {
    json!({
        "geometry": geometry, "top_depth_m": 0.0, "bottom_depth_m": 2.5, "method": "mechanical",
        "work_type": "water service connection",
        "start_date": today().to_string(), "end_date": (today() + chrono::Duration::days(3)).to_string()
    })
}

/// A dig across fixture pipes 1 (water) and 2 (medium-pressure gas), over risk point 1 and
/// sensor 1.
fn fixture_dig() -> Value {
    dig(
        json!({"type": "Polygon", "coordinates": [[[106.5003, 29.4999], [106.5006, 29.4999], [106.5006, 29.5004], [106.5003, 29.5004], [106.5003, 29.4999]]]}),
    )
}

async fn post(app: &TestApp, path: &str, role: Option<Role>, v: &Value) -> (StatusCode, Value) {
    body(
        app.req(Method::POST, path, role)
            .json(v)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn check_answers_in_three_formats(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (s, v) = post(
        &app,
        "/excavation/check",
        Some(Role::Contractor),
        &fixture_dig(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let conflicts = v["conflicts"].as_array().unwrap();
    let ids: Vec<i64> = conflicts
        .iter()
        .map(|c| c["pipeline_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&1) && ids.contains(&2));
    for c in conflicts {
        assert_eq!(c["severity"], "violation", "{c}");
        assert_eq!(c["horizontal_distance_m"], 0.0);
        assert_eq!(c["depth_known"], true);
        // Fixture pipes are 1.2–1.4 m deep (top) with 300 mm diameter: band 1.2–1.7 m.
        assert_eq!(c["pipe_depth_m"], json!([1.2, 1.7]));
        assert_eq!(c["vertical_gap_m"], 0.0);
        let [lon, lat] = [
            c["nearest_point"][0].as_f64().unwrap(),
            c["nearest_point"][1].as_f64().unwrap(),
        ];
        assert!((106.5003 - 1e-7..=106.5006 + 1e-7).contains(&lon), "{lon}");
        assert!((29.4999..=29.5004).contains(&lat), "{lat}");
    }
    let gas = conflicts.iter().find(|c| c["kind"] == "gas").unwrap();
    assert_eq!(gas["required_clearance_m"], 1.2);
    assert_eq!(gas["rule_id"], "gb50289-4.1.9-gas-medium");
    assert_eq!(gas["in_no_dig_zone"], true);
    let owners: Vec<i64> = v["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["owner_id"].as_i64().unwrap())
        .collect();
    assert_eq!(owners, vec![1, 2]);
    assert_eq!(v["owners"][0]["emergency_phone"], "023-6888 0000");
    assert_eq!(v["risk_points"][0]["id"], 1);
    let sensors: Vec<i64> = v["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        sensors,
        vec![1],
        "sensor 3 is ~10 m west, beyond the 5 m margin"
    );
    assert_eq!(v["summary"]["verdict"], "stop");
    assert_eq!(v["summary"]["violations"], 2);
    assert_eq!(v["dig"]["metric_crs"], "EPSG:4545");
    let area = v["dig"]["area_m2"].as_f64().unwrap();
    // 0.0003° × 0.0005° ≈ 29.1 m × 55.4 m.
    assert!((area - 29.07 * 55.4).abs() < 40.0, "{area}");

    // GeoJSON: by query and by Accept.
    let (s, g) = post(
        &app,
        "/excavation/check?format=geojson",
        Some(Role::Contractor),
        &fixture_dig(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(g["type"], "FeatureCollection");
    let roles: Vec<&str> = g["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles[0], "dig_area");
    assert_eq!(roles.iter().filter(|r| **r == "pipe").count(), 2);
    assert_eq!(roles.iter().filter(|r| **r == "nearest_point").count(), 2);
    assert!(roles.contains(&"risk_point") && roles.contains(&"sensor"));
    let resp = app
        .req(Method::POST, "/excavation/check", Some(Role::Contractor))
        .header("accept", "application/geo+json")
        .json(&fixture_dig())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/geo+json"
    );
    // HTML: a printable report with an inline SVG map.
    let resp = app
        .req(Method::POST, "/excavation/check", Some(Role::Contractor))
        .header("accept", "text/html")
        .json(&fixture_dig())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("<svg") && html.contains("重庆燃气集团") && html.contains("Verdict: stop")
    );
    // OpenAPI documents the contract.
    let (_, doc) = body(
        app.req(Method::GET, "/openapi.json", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(doc["paths"]["/excavation/check"]["post"].is_object());
    assert!(doc["paths"]["/excavation/tickets/{id}/transitions"]["post"].is_object());
    assert!(
        doc["components"]["schemas"]["CheckRequest"].is_object(),
        "{}",
        doc["components"]
    );
    app.stop().await;
}
every_backend!(check_answers_in_three_formats);

async fn bad_digs_are_4xx_naming_the_problem(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = Some(Role::Contractor);
    let (s, v) = post(&app, "/excavation/check", None, &fixture_dig()).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "contractor");
    let (s, v) = post(
        &app,
        "/excavation/check",
        Some(Role::Viewer),
        &fixture_dig(),
    )
    .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "contractor");
    let mut inverted = fixture_dig();
    inverted["top_depth_m"] = json!(3.0);
    let (s, v) = post(&app, "/excavation/check", c, &inverted).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "inverted");
    let mut deep = fixture_dig();
    deep["bottom_depth_m"] = json!(500.0);
    let (s, v) = post(&app, "/excavation/check", c, &deep).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "bottom_depth_m");
    let bow = dig(
        json!({"type": "Polygon", "coordinates": [[[106.5, 29.5], [106.501, 29.501], [106.501, 29.5], [106.5, 29.501], [106.5, 29.5]]]}),
    );
    let (s, v) = post(&app, "/excavation/check", c, &bow).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "geometry");
    let big = dig(json!({"type": "Polygon", "coordinates": [rect(106.5, 29.5, 1100.0, 1000.0)]}));
    let (s, v) = post(&app, "/excavation/check", c, &big).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "limit is 1000000");
    let many: Vec<[f64; 2]> = (0..=600)
        .map(|i| {
            let a = i as f64 / 600.0 * std::f64::consts::TAU;
            [106.5 + 0.0001 * a.cos(), 29.5 + 0.0001 * a.sin()]
        })
        .collect();
    let (s, v) = post(
        &app,
        "/excavation/check",
        c,
        &dig(json!({"type": "Polygon", "coordinates": [many]})),
    )
    .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "vertices");
    let line = dig(json!({"type": "LineString", "coordinates": [[106.5, 29.5], [106.501, 29.5]]}));
    let (s, v) = post(&app, "/excavation/check", c, &line).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "width_m");
    let point = dig(json!({"type": "Point", "coordinates": [106.5, 29.5]}));
    let (s, v) = post(&app, "/excavation/check", c, &point).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "Polygon or a LineString");
    let mut method = fixture_dig();
    method["method"] = json!("dynamite");
    let (s, v) = post(&app, "/excavation/check", c, &method).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "dynamite");
    let mut extra = fixture_dig();
    extra["colour"] = json!("red");
    let (s, v) = post(&app, "/excavation/check", c, &extra).await;
    assert!(s.is_client_error(), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("colour"));
    let (s, v) = post(&app, "/excavation/check?format=pdf", c, &fixture_dig()).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "pdf");
    app.stop().await;
}
every_backend!(bad_digs_are_4xx_naming_the_problem);

async fn add_pipe(app: &TestApp, props: Value, coords: Vec<[f64; 2]>) -> i64 {
    let f = json!({"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords}, "properties": props});
    let (s, v) = post(app, "/features/pipelines", Some(Role::Operator), &f).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_i64().unwrap()
}

async fn edge_cases(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = Some(Role::Contractor);
    // A telecom duct of unknown depth crossed by the dig: horizontal rule only, flagged.
    let (x, y) = (106.54, 29.54);
    let tel = add_pipe(
        &app,
        json!({"kind": "telecom", "owner_id": 1, "quality_level": "QL-C"}),
        vec![[x, y], [x + 50.0 * DLON, y]],
    )
    .await;
    let (s, v) = post(&app, "/excavation/check", c, &dig(json!({"type": "Polygon", "coordinates": [rect(x + 10.0 * DLON, y - 5.0 * DLAT, 10.0, 10.0)]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let t = &v["conflicts"][0];
    assert_eq!(t["pipeline_id"], tel);
    assert_eq!(t["severity"], "violation");
    assert_eq!(t["depth_known"], false);
    assert!(t.get("clearance_3d_m").is_none());
    assert!(
        t["reasons"].to_string().contains("horizontal rule only"),
        "{t}"
    );
    assert_eq!(t["accuracy_source"], "quality_level");
    assert_eq!(t["accuracy_m"], 1.0);
    assert_eq!(v["summary"]["depth_unknown"], 1);

    // A power cable of unknown accuracy: the widest tolerance (2 m), so a dig 2 m away is
    // a warning although the 0.5 m clearance is kept.
    let (x, y) = (106.55, 29.55);
    let pow = add_pipe(
        &app,
        json!({"kind": "power", "owner_id": 2, "depth_start_m": 0.8, "depth_end_m": 0.8}),
        vec![[x, y], [x + 50.0 * DLON, y]],
    )
    .await;
    let (s, v) = post(&app, "/excavation/check", c, &dig(json!({"type": "Polygon", "coordinates": [rect(x + 10.0 * DLON, y + 2.0 * DLAT, 10.0, 10.0)]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let p = &v["conflicts"][0];
    assert_eq!(p["pipeline_id"], pow);
    assert_eq!(p["severity"], "warning", "{p}");
    assert_eq!(p["accuracy_source"], "unknown");
    assert_eq!(p["widening_m"], 2.0);
    assert!(
        (p["horizontal_distance_m"].as_f64().unwrap() - 2.0).abs() < 0.05,
        "{p}"
    );
    assert!(p["assumed"].to_string().contains("accuracy unknown"));

    // A polygon with a hole: a pipe inside the hole, 25 m from its edge, is not in the dig;
    // the same outer ring without the hole digs right over it.
    let (x, y) = (106.56, 29.56);
    let water = add_pipe(&app, json!({"kind": "water_supply", "owner_id": 1, "diameter_mm": 100.0, "plan_accuracy_cm": 10.0}), vec![[x + 45.0 * DLON, y + 50.0 * DLAT], [x + 55.0 * DLON, y + 50.0 * DLAT]]).await;
    let outer = rect(x, y, 100.0, 100.0);
    let mut hole = rect(x + 20.0 * DLON, y + 20.0 * DLAT, 60.0, 60.0);
    hole.reverse();
    let (s, v) = post(
        &app,
        "/excavation/check",
        c,
        &dig(json!({"type": "Polygon", "coordinates": [outer.clone(), hole]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["pipeline_id"] != water),
        "{v}"
    );
    let (s, v) = post(
        &app,
        "/excavation/check",
        c,
        &dig(json!({"type": "Polygon", "coordinates": [outer]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["conflicts"][0]["pipeline_id"], water);
    assert_eq!(v["conflicts"][0]["severity"], "violation");

    // A small dig wholly inside the 5 m no-dig zone of a long-distance oil/gas pipeline, and
    // above it (shallow): still a violation, and a permit is needed.
    let (x, y) = (106.57, 29.57);
    let oil = add_pipe(&app, json!({"kind": "oil_gas", "owner_id": 2, "depth_start_m": 3.0, "depth_end_m": 3.0, "diameter_mm": 500.0, "plan_accuracy_cm": 5.0}), vec![[x, y], [x + 100.0 * DLON, y]]).await;
    let mut shallow = dig(
        json!({"type": "Polygon", "coordinates": [rect(x + 40.0 * DLON, y + 2.0 * DLAT, 2.0, 2.0)]}),
    );
    shallow["bottom_depth_m"] = json!(0.5);
    shallow["method"] = json!("manual");
    let (s, v) = post(&app, "/excavation/check", c, &shallow).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let o = &v["conflicts"][0];
    assert_eq!(o["pipeline_id"], oil);
    assert_eq!(o["severity"], "violation", "{o}");
    assert_eq!(o["in_no_dig_zone"], true);
    assert_eq!(o["permit_required"], true);
    assert_eq!(o["rule_id"], "oil-gas-law-art30");
    assert!((o["vertical_gap_m"].as_f64().unwrap() - 2.5).abs() < 1e-9);
    assert_eq!(v["summary"]["permit_required"], true);

    // A LineString trench 1 m wide passing 3 m from the oil pipeline (edge at 2.5 m).
    let trench = json!({"geometry": {"type": "LineString", "coordinates": [[x + 10.0 * DLON, y + 3.0 * DLAT], [x + 60.0 * DLON, y + 3.0 * DLAT]]},
        "width_m": 1.0, "top_depth_m": 0.0, "bottom_depth_m": 1.0, "method": "manual", "work_type": "cable trench",
        "start_date": today().to_string(), "end_date": today().to_string()});
    let (s, v) = post(&app, "/excavation/check", c, &trench).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let o = &v["conflicts"][0];
    assert!(
        (o["horizontal_distance_m"].as_f64().unwrap() - 2.5).abs() < 0.05,
        "{o}"
    );
    assert_eq!(v["dig"]["geometry"]["type"], "MultiPolygon");
    app.stop().await;
}
every_backend!(edge_cases);

async fn tickets_follow_the_dig(backend: Backend) {
    let app = TestApp::start(backend).await;
    let contractor = Some(Role::Contractor);
    let rival_key = lifeline::auth::generate_key();
    app.store
        .create_api_key(
            "rival",
            Role::Contractor,
            &lifeline::auth::hash_key(&rival_key),
            &Actor::cli(),
        )
        .await
        .unwrap();
    let mut req = fixture_dig();
    req["requester"] = json!({"name": "王工", "company": "渝建三公司", "phone": "138 0000 0000"});
    // Viewers cannot submit.
    let (s, v) = post(&app, "/excavation/tickets", Some(Role::Viewer), &req).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "contractor");
    // Submit, then retry with the same key: the same ticket, nothing new written.
    let submit = |key: &'static str, body: Value| {
        let b = app
            .req(Method::POST, "/excavation/tickets", contractor)
            .header("Idempotency-Key", key)
            .json(&body);
        async move { body_of(b.send().await.unwrap()).await }
    };
    let (s, t) = submit("k-1", req.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let id = t["id"].as_i64().unwrap();
    assert_eq!(t["state"], "owners_notified");
    assert_eq!(t["submitted_by"], "test-contractor");
    assert_eq!(t["owners"].as_array().unwrap().len(), 2);
    assert_eq!(t["owners"][0]["status"], "pending");
    assert_eq!(t["check"]["summary"]["violations"], 2);
    let (s, again) = submit("k-1", req.clone()).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["id"], id);
    let mut other = req.clone();
    other["bottom_depth_m"] = json!(3.0);
    let (s, v) = submit("k-1", other).await;
    assert_error(s, &v, StatusCode::CONFLICT, "Idempotency-Key");
    let (s, _) = submit("k-2", req.clone()).await;
    assert_eq!(s, StatusCode::CREATED);

    // Visibility: the rival sees neither ticket; an operator sees all.
    let rival = |m: Method, p: String| app.client.request(m, app.url(&p)).bearer_auth(&rival_key);
    let (s, v) = body_of(
        rival(Method::GET, format!("/excavation/tickets/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "does not exist");
    let (_, v) = body_of(
        rival(Method::GET, "/excavation/tickets".into())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["numberReturned"], 0);
    let (_, v) = body(
        app.req(Method::GET, "/excavation/tickets", contractor)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["numberReturned"], 2);
    let (_, v) = body(
        app.req(
            Method::GET,
            "/excavation/tickets?state=owners_notified",
            Some(Role::Operator),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(v["numberReturned"], 2);
    let (s, v) = body(
        app.req(Method::GET, "/excavation/tickets", Some(Role::Viewer))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // Work cannot start before the owners answer.
    let tr = |to: &str| json!({"to": to});
    let path = |p: &str| format!("/excavation/tickets/{id}/{p}");
    let (s, v) = post(&app, &path("transitions"), contractor, &tr("in_progress")).await;
    assert_error(s, &v, StatusCode::CONFLICT, "must mark");
    // Owners respond through an operator; the contractor cannot answer for them.
    let resp = |owner: i64, st: &str| json!({"owner_id": owner, "status": st, "note": "marked with paint"});
    let (s, v) = post(&app, &path("responses"), contractor, &resp(1, "marked")).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "operator");
    let (s, v) = post(
        &app,
        &path("responses"),
        Some(Role::Operator),
        &resp(1, "marked"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(
        &app,
        &path("responses"),
        Some(Role::Operator),
        &resp(2, "partially_marked"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "owners_notified");
    let (s, v) = post(
        &app,
        &path("responses"),
        Some(Role::Operator),
        &resp(9, "clear"),
    )
    .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "owner 9");
    let (s, v) = post(
        &app,
        &path("responses"),
        Some(Role::Operator),
        &resp(2, "marked"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "cleared");
    // The rival cannot move it; the contractor starts, then closes.
    let (s, _) = body_of(
        rival(Method::POST, path("transitions"))
            .json(&tr("cancelled"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = post(&app, &path("transitions"), contractor, &tr("in_progress")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(&app, &path("transitions"), contractor, &tr("closed")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(&app, &path("transitions"), contractor, &tr("in_progress")).await;
    assert_error(s, &v, StatusCode::CONFLICT, "closed");
    let (s, v) = post(&app, &path("transitions"), contractor, &tr("teleported")).await;
    assert!(s.is_client_error(), "{v}");
    let (_, v) = body(
        app.req(
            Method::GET,
            &format!("/excavation/tickets/{id}"),
            contractor,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let states: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "submitted",
            "owners_notified",
            "cleared",
            "in_progress",
            "closed"
        ]
    );
    assert_eq!(v["version"], 6, "1 + three responses + two transitions");

    // Every state change is in the audit log.
    let audit = app.store.audit_log(100).await.unwrap();
    let target = format!("excavation_tickets/{id}");
    let actions: Vec<&str> = audit
        .iter()
        .filter(|a| a.target == target)
        .map(|a| a.action.as_str())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "ticket_submit").count(),
        1,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "ticket_response").count(),
        3
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "ticket_transition")
            .count(),
        2
    );

    // An emergency ticket starts at once; a cancelled ticket stays cancelled.
    let mut em = req.clone();
    em["ticket_type"] = json!("emergency");
    let (s, e) = submit("k-3", em).await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    assert_eq!(e["state"], "emergency");
    let eid = e["id"].as_i64().unwrap();
    let (s, v) = post(
        &app,
        &format!("/excavation/tickets/{eid}/transitions"),
        contractor,
        &tr("in_progress"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(
        &app,
        &format!("/excavation/tickets/{eid}/transitions"),
        Some(Role::Operator),
        &tr("closed"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.stop().await;
}
every_backend!(tickets_follow_the_dig);

async fn body_of(resp: reqwest::Response) -> (StatusCode, Value) {
    body(resp).await
}

async fn get_path(app: &TestApp, path: &str, role: Option<Role>) -> (StatusCode, Value) {
    body(app.req(Method::GET, path, role).send().await.unwrap()).await
}

/// A stored ticket renders like a check — GeoJSON and a printable HTML report — from what
/// was checked at submission, with its state, requester, owners' responses and deadlines;
/// a pipe laid afterwards does not appear in it. Deadlines follow the working-day calendar.
async fn stored_ticket_renders_like_a_check(backend: Backend) {
    let app = TestApp::start(backend).await;
    let contractor = Some(Role::Contractor);
    let mut req = fixture_dig();
    req["requester"] = json!({"name": "王工", "company": "渝建三公司", "phone": "138 0000 0000"});
    let (s, t) = post(&app, "/excavation/tickets", contractor, &req).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let id = t["id"].as_i64().unwrap();
    // The answer is written from the live check, the stored ticket from its document:
    // both carry the same check and geometries.
    let (s, back) = get_path(
        &app,
        &format!("/excavation/tickets/{id}?f=json"),
        contractor,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{back}");
    assert_eq!(back["check"], t["check"]);
    assert_eq!(back["check_geometry"], t["check_geometry"]);
    assert_eq!(
        t["check_geometry"]["pipes"].as_object().unwrap().len(),
        2,
        "{t}"
    );
    assert!(
        !t["check_geometry"]["risk_points"]
            .as_object()
            .unwrap()
            .is_empty(),
        "{t}"
    );
    if backend == Backend::Postgis {
        // Migration 0007: the document is plain `json` text (SQL never looks inside it),
        // LZ4-compressed, and this one was stored compressed with it.
        let (pg, conn) = tokio_postgres::connect(&app.store_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let row = pg
            .query_one(
                "SELECT format_type(atttypid, atttypmod), attcompression::text \
                 FROM pg_attribute WHERE attrelid = 'excavation_tickets'::regclass \
                 AND attname = 'doc'",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "json");
        assert_eq!(row.get::<_, String>(1), "l");
        let row = pg
            .query_one(
                "SELECT octet_length(doc::text), pg_column_compression(doc) \
                 FROM excavation_tickets WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        let (len, method): (i32, Option<String>) = (row.get(0), row.get(1));
        assert!(
            len > 2048,
            "a document this size is compressed: {len} bytes"
        );
        assert_eq!(method.as_deref(), Some("lz4"));
    }
    // Working days: each owner's deadline is 24 h of working-day time (Beijing time) from
    // submission, per data/excavation.toml.
    let ex = lifeline::excavation::Excavation::builtin();
    let created: chrono::DateTime<chrono::Utc> = t["created_at"].as_str().unwrap().parse().unwrap();
    let due: chrono::DateTime<chrono::Utc> =
        t["owners"][0]["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(due, ex.tickets.calendar.add_hours(created, 24));
    assert!(due >= created + chrono::Duration::hours(24));

    // A gas main laid across the dig after submission.
    let (x, y) = (106.5003, 29.5001);
    let later = add_pipe(
        &app,
        json!({"kind": "gas", "owner_id": 2, "pressure_class": "low", "depth_start_m": 1.0, "depth_end_m": 1.0}),
        vec![[x - 10.0 * DLON, y], [x + 40.0 * DLON, y]],
    )
    .await;
    let (_, fresh) = post(&app, "/excavation/check", contractor, &fixture_dig()).await;
    assert_eq!(fresh["conflicts"].as_array().unwrap().len(), 3, "{fresh}");

    // GeoJSON, by ?f= and by Accept: the check as at submission plus the ticket.
    let path = format!("/excavation/tickets/{id}?f=geojson");
    let resp = app
        .req(Method::GET, &path, contractor)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/geo+json"
    );
    let (s, g) = body(resp).await;
    assert_eq!(s, StatusCode::OK, "{g}");
    assert_eq!(g["type"], "FeatureCollection");
    let features = g["features"].as_array().unwrap();
    assert_eq!(features[0]["properties"]["role"], "dig_area");
    assert_eq!(features[0]["geometry"]["type"], "Polygon");
    let pipes: Vec<&Value> = features
        .iter()
        .filter(|f| f["properties"]["role"] == "pipe")
        .collect();
    let mut ids: Vec<i64> = pipes
        .iter()
        .map(|f| f["properties"]["pipeline_id"].as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2], "pipe {later} was laid after submission");
    for p in &pipes {
        assert_eq!(p["geometry"]["type"], "LineString");
        assert!(
            p["geometry"]["coordinates"].as_array().unwrap().len() >= 2,
            "{p}"
        );
        assert_eq!(p["properties"]["severity"], "violation");
    }
    assert!(features
        .iter()
        .any(|f| f["properties"]["role"] == "risk_point" && f["geometry"]["type"] == "Point"));
    assert_eq!(g["summary"]["violations"], 2);
    assert_eq!(g["ticket"]["id"], id);
    assert_eq!(g["ticket"]["state"], "owners_notified");
    assert_eq!(g["ticket"]["requester"]["name"], "王工");
    assert_eq!(g["ticket"]["owners"][0]["due_at"], t["owners"][0]["due_at"]);
    assert_eq!(g["ticket"]["geometry_as_of"], "submission");
    let resp = app
        .req(
            Method::GET,
            &format!("/excavation/tickets/{id}"),
            contractor,
        )
        .header("accept", "application/geo+json")
        .send()
        .await
        .unwrap();
    let (_, g2) = body(resp).await;
    assert_eq!(g2["features"], g["features"]);

    // An owner answers; the HTML report shows the state, the answer and the deadlines.
    let (s, v) = post(
        &app,
        &format!("/excavation/tickets/{id}/responses"),
        Some(Role::Operator),
        &json!({"owner_id": 1, "status": "marked", "note": "黄色喷漆标记"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for path in [
        format!("/excavation/tickets/{id}?f=html"),
        format!("/excavation/tickets/{id}?format=html"),
    ] {
        let resp = app
            .req(Method::GET, &path, contractor)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = resp.text().await.unwrap();
        for needle in [
            &format!("Ticket {id}: owners_notified"),
            "王工",
            "渝建三公司",
            "Owners' responses",
            "黄色喷漆标记",
            "marked",
            "pending",
            "+08:00",
            "<svg",
            "Verdict: stop",
            "重庆燃气集团",
            "not re-run",
        ] {
            assert!(html.contains(needle), "HTML lacks {needle:?}");
        }
        assert!(
            !html.contains(&format!("pipeline {later} (")),
            "later pipe drawn"
        );
    }
    let resp = app
        .req(
            Method::GET,
            &format!("/excavation/tickets/{id}"),
            contractor,
        )
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("<svg"));

    // JSON stays the default and carries the notifications.
    let (s, v) = get_path(&app, &format!("/excavation/tickets/{id}"), contractor).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["id"], id);
    assert!(v["notifications"].is_array());
    // Same access rules as the JSON: another contractor gets 404 in every format.
    let rival_key = lifeline::auth::generate_key();
    app.store
        .create_api_key(
            "rival",
            Role::Contractor,
            &lifeline::auth::hash_key(&rival_key),
            &Actor::cli(),
        )
        .await
        .unwrap();
    for f in ["json", "geojson", "html"] {
        let resp = app
            .client
            .get(app.url(&format!("/excavation/tickets/{id}?f={f}")))
            .bearer_auth(&rival_key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{f}");
    }
    let (s, v) = get_path(&app, &format!("/excavation/tickets/{id}?f=pdf"), contractor).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "pdf");
    let (s, g) = get_path(
        &app,
        &format!("/excavation/tickets/{id}?f=geojson"),
        Some(Role::Operator),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(g["ticket"]["owners"][0]["status"], "marked");
    let (_, doc) = get_path(&app, "/openapi.json", None).await;
    let params = doc["paths"]["/excavation/tickets/{id}"]["get"]["parameters"].to_string();
    assert!(params.contains("format"), "{params}");
    assert!(doc["paths"]["/excavation/notifications"]["get"].is_object());
    assert!(doc["paths"]["/excavation/owners/{id}/channels"]["put"].is_object());
    app.stop().await;
}
every_backend!(stored_ticket_renders_like_a_check);

/// What a test webhook receiver saw: path, Idempotency-Key header, body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>;

/// A real HTTP listener on port 0: `/ok/...` answers 200, `/fail/...` 503.
async fn webhook_receiver() -> (std::net::SocketAddr, Received, tokio::task::JoinHandle<()>) {
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    let got: Received = Default::default();
    async fn hook(
        State(got): State<Received>,
        Path((mode, rest)): Path<(String, String)>,
        headers: HeaderMap,
        axum::Json(v): axum::Json<Value>,
    ) -> axum::http::StatusCode {
        let key = headers
            .get("idempotency-key")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        got.lock()
            .unwrap()
            .push((format!("/{mode}/{rest}"), key, v));
        if mode == "ok" {
            axum::http::StatusCode::OK
        } else {
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        }
    }
    let app = axum::Router::new()
        .route("/{mode}/{rest}", axum::routing::post(hook))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let h = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, got, h)
}

/// Submitting a ticket notifies each owner by every channel of its contact data, durably in
/// the outbox; webhooks are POSTed by the worker (retried on failure), e-mail and SMS wait
/// for a gateway that reports back; everything is audited.
async fn owners_are_notified(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (addr, got, receiver) = webhook_receiver().await;
    let op = Some(Role::Operator);
    let contractor = Some(Role::Contractor);
    let put = |path: String, role: Option<Role>, v: Value| {
        let b = app.req(Method::PUT, &path, role).json(&v);
        async move { body(b.send().await.unwrap()).await }
    };
    // Owners register their channels (operators only, validated, owner must exist).
    let hook1 = format!("http://{addr}/ok/owner1");
    let (s, v) = put(
        "/excavation/owners/1/channels".into(),
        op,
        json!({"webhook_url": hook1, "sms": "139 0000 0001"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["owner_id"], 1);
    let (s, v) = put(
        "/excavation/owners/2/channels".into(),
        op,
        json!({"webhook_url": format!("http://{addr}/fail/owner2")}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = put(
        "/excavation/owners/2/channels".into(),
        contractor,
        json!({"webhook_url": "http://127.0.0.1:1/x"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = put(
        "/excavation/owners/1/channels".into(),
        op,
        json!({"webhook_url": "ftp://example.cn/x"}),
    )
    .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "http");
    let (s, v) = put(
        "/excavation/owners/999/channels".into(),
        op,
        json!({"webhook_url": hook1}),
    )
    .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "owner 999");
    let (s, v) = get_path(&app, "/excavation/owners/1/channels", op).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["webhook_url"], hook1);

    // Submit: owners 1 and 2 are affected.
    let mut req = fixture_dig();
    req["requester"] = json!({"name": "王工", "phone": "138 0000 0000"});
    let submit = |body: Value| {
        let b = app
            .req(Method::POST, "/excavation/tickets", contractor)
            .header("Idempotency-Key", "n-1")
            .json(&body);
        async move { body_of(b.send().await.unwrap()).await }
    };
    let (s, t) = submit(req.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let id = t["id"].as_i64().unwrap();

    // The worker delivers owner 1's webhook and records owner 2's failure for a retry.
    let list_path = format!("/excavation/notifications?ticket={id}");
    let mut list = Value::Null;
    for _ in 0..100 {
        let (s, v) = get_path(&app, &list_path, op).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let done =
            v["notifications"].as_array().unwrap().iter().any(|n| {
                n["channel"] == "webhook" && n["owner_id"] == 1 && n["status"] == "delivered"
            }) && v["notifications"].as_array().unwrap().iter().any(|n| {
                n["channel"] == "webhook"
                    && n["owner_id"] == 2
                    && n["attempts"] == 1
                    && n["last_error"].is_string()
            });
        list = v;
        if done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ns = list["notifications"].as_array().unwrap().clone();
    let find = |owner: i64, channel: &str| {
        ns.iter()
            .find(|n| n["owner_id"] == owner && n["channel"] == channel)
            .unwrap_or_else(|| panic!("no {channel} for owner {owner}: {list}"))
            .clone()
    };
    assert_eq!(ns.len(), 6, "email, sms and webhook for each owner: {list}");
    let w1 = find(1, "webhook");
    assert_eq!(w1["status"], "delivered", "{w1}");
    assert!(w1["delivered_at"].is_string());
    let w2 = find(2, "webhook");
    assert_eq!(w2["status"], "pending", "{w2}");
    assert!(w2["last_error"].as_str().unwrap().contains("503"), "{w2}");
    let next: chrono::DateTime<chrono::Utc> =
        w2["next_attempt_at"].as_str().unwrap().parse().unwrap();
    assert!(next > app::now(), "retry is backed off");
    // E-mail from the owner record, SMS from the registered override or the emergency phone.
    assert_eq!(find(1, "email")["address"], "duty@example.cn");
    assert_eq!(find(1, "sms")["address"], "139 0000 0001");
    assert_eq!(find(2, "sms")["address"], "023-6888 0000");
    for n in &ns {
        assert_eq!(n["ticket_id"], id);
        let owner = t["owners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["owner_id"] == n["owner_id"])
            .unwrap();
        assert_eq!(n["due_at"], owner["due_at"], "the response deadline");
        assert!(n["message"].as_str().unwrap().contains(&format!("#{id}")));
    }
    for ch in ["email", "sms"] {
        assert_eq!(find(1, ch)["status"], "pending", "left for the gateway");
    }
    // What the receivers got: the notification as JSON, with its Idempotency-Key.
    let seen = got.lock().unwrap().clone();
    let ok: Vec<_> = seen.iter().filter(|(p, _, _)| p == "/ok/owner1").collect();
    assert_eq!(ok.len(), 1, "{seen:?}");
    let (_, key, b) = ok[0];
    assert_eq!(key, &format!("lifeline-notification-{}", w1["id"]));
    assert_eq!(b["ticket_id"], id);
    assert_eq!(b["owner_id"], 1);
    assert_eq!(b["due_at"], t["owners"][0]["due_at"]);
    assert_eq!(b["message"], w1["message"]);
    assert!(seen.iter().any(|(p, _, _)| p == "/fail/owner2"));

    // The ticket view shows its notifications; webhook URLs only to operators.
    let (_, v) = get_path(&app, &format!("/excavation/tickets/{id}"), contractor).await;
    let mine = v["notifications"].as_array().unwrap();
    assert_eq!(mine.len(), 6);
    assert!(mine
        .iter()
        .filter(|n| n["channel"] == "webhook")
        .all(|n| n["address"] == "(webhook)"));
    let (_, v) = get_path(&app, &format!("/excavation/tickets/{id}"), op).await;
    assert!(v["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["address"] == hook1));
    let (s, v) = get_path(&app, "/excavation/notifications", contractor).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = get_path(&app, "/excavation/notifications?status=sent", op).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "sent");

    // The gateway reports e-mail and SMS outcomes; webhooks are not its to report.
    let email = find(1, "email")["id"].as_i64().unwrap();
    let report = |n: i64, v: Value| {
        let b = app
            .req(
                Method::POST,
                &format!("/excavation/notifications/{n}/status"),
                op,
            )
            .json(&v);
        async move { body(b.send().await.unwrap()).await }
    };
    let (s, v) = report(email, json!({"status": "delivered"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "delivered");
    let (s, v) = report(email, json!({"status": "failed"})).await;
    assert_error(s, &v, StatusCode::CONFLICT, "already delivered");
    let sms2 = find(2, "sms")["id"].as_i64().unwrap();
    let (s, v) = report(
        sms2,
        json!({"status": "failed", "error": "landline: no SMS"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["last_error"], "landline: no SMS");
    let (s, v) = report(w2["id"].as_i64().unwrap(), json!({"status": "delivered"})).await;
    assert_error(s, &v, StatusCode::CONFLICT, "webhook");
    let (s, v) = report(999_999, json!({"status": "delivered"})).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "999999");
    let (s, v) = get_path(&app, &format!("{list_path}&status=pending"), op).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["numberReturned"], 3, "{v}");

    // A retried submission writes no second set.
    let (s, _) = submit(req.clone()).await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = get_path(&app, &list_path, op).await;
    assert_eq!(v["numberReturned"], 6);
    // A dig that reaches no owner notifies nobody.
    let mut far = dig(json!({"type": "Polygon", "coordinates": [rect(106.60, 29.60, 10.0, 10.0)]}));
    far["requester"] = json!({"name": "王工", "phone": "138 0000 0000"});
    let (s, t2) = post(&app, "/excavation/tickets", contractor, &far).await;
    assert_eq!(s, StatusCode::CREATED, "{t2}");
    assert_eq!(t2["state"], "cleared");
    let (_, v) = get_path(
        &app,
        &format!("/excavation/notifications?ticket={}", t2["id"]),
        op,
    )
    .await;
    assert_eq!(v["numberReturned"], 0);

    // A channel change counts from the next submission on: the submission resolves the
    // channels inside its own transaction (no cache). Owner 2 now has an SMS number and no
    // webhook.
    let (s, v) = put(
        "/excavation/owners/2/channels".into(),
        op,
        json!({"sms": "139 0000 0002"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let b = app
        .req(Method::POST, "/excavation/tickets", contractor)
        .header("Idempotency-Key", "n-2")
        .json(&req);
    let (s, t3) = body_of(b.send().await.unwrap()).await;
    assert_eq!(s, StatusCode::CREATED, "{t3}");
    let id3 = t3["id"].as_i64().unwrap();
    let (_, v) = get_path(&app, &format!("/excavation/notifications?ticket={id3}"), op).await;
    let ns3 = v["notifications"].as_array().unwrap();
    let got: Vec<(i64, &str, &str)> = ns3
        .iter()
        .map(|n| {
            (
                n["owner_id"].as_i64().unwrap(),
                n["channel"].as_str().unwrap(),
                n["address"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(got.contains(&(2, "sms", "139 0000 0002")), "{v}");
    assert!(got.contains(&(1, "webhook", hook1.as_str())), "{v}");
    assert!(!got.contains(&(2, "sms", "023-6888 0000")), "{v}");
    assert!(!got.iter().any(|g| g.0 == 2 && g.1 == "webhook"), "{v}");
    assert_eq!(ns3.len(), 5, "{v}");
    for n in ns3 {
        let m = n["message"].as_str().unwrap();
        assert!(m.contains(&format!("#{id3}】")), "{m}");
        assert!(
            m.ends_with(&format!("/excavation/tickets/{id3}/responses.")),
            "{m}"
        );
    }

    // Every notification and outcome is audited.
    let audit = app.store.audit_log(500).await.unwrap();
    let count = |action: &str| audit.iter().filter(|a| a.action == action).count();
    assert_eq!(count("notification_created"), 11);
    assert_eq!(count("owner_channels_set"), 3);
    assert!(count("notification_delivered") >= 2, "webhook + e-mail");
    assert_eq!(count("notification_failed"), 1);
    assert!(count("notification_retry") >= 1);
    let created: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "notification_created")
        .collect();
    assert!(created
        .iter()
        .all(|a| a.target.starts_with("notification_outbox/") && a.actor == "test-contractor"));
    receiver.abort();
    app.stop().await;
}
every_backend!(owners_are_notified);

/// The clock is an input: the service's time, set here near the end of the holiday lists,
/// decides the start-date limits, the ticket's calendar warning and what `/ready` and
/// `/health` report; none of it depends on the day the test runs.
async fn the_service_clock_decides_dates_and_calendar_warnings(backend: Backend) {
    let app = TestApp::start(backend).await;
    // 10:00 in Beijing on Monday 20 December 2027: the lists (covered until 2027-12-31)
    // run out within 60 days, and a ticket's 20 working days reach into 2028.
    app.clock.set("2027-12-20T02:00:00Z".parse().unwrap());
    let (s, v) = get_path(&app, "/health", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let reported: chrono::DateTime<chrono::Utc> = v["time"].as_str().unwrap().parse().unwrap();
    assert!(
        (reported - app.clock.now()).num_seconds().abs() < 60,
        "/health reports the service clock: {v}"
    );
    let (s, v) = get_path(&app, "/ready", None).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a warning does not make the service unready: {v}"
    );
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("runs out on 2027-12-31 (in 11 days)"),
        "{v}"
    );

    let mut req = fixture_dig();
    let dated = |req: &mut Value, start: &str, end: &str| {
        req["start_date"] = json!(start);
        req["end_date"] = json!(end);
    };
    // Start-date limits, judged against the service's date, not the machine's.
    dated(&mut req, "2027-12-17", "2027-12-22");
    let (s, v) = post(&app, "/excavation/check", Some(Role::Contractor), &req).await;
    assert_error(
        s,
        &v,
        StatusCode::UNPROCESSABLE_ENTITY,
        "more than 2 days in the past",
    );
    dated(&mut req, "2028-12-21", "2028-12-22");
    let (s, v) = post(&app, "/excavation/check", Some(Role::Contractor), &req).await;
    assert_error(
        s,
        &v,
        StatusCode::UNPROCESSABLE_ENTITY,
        "more than 366 days ahead",
    );
    dated(&mut req, "2027-12-19", "2028-01-31");
    let (s, v) = post(&app, "/excavation/check", Some(Role::Contractor), &req).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["checked_at"]
            .as_str()
            .unwrap()
            .starts_with("2027-12-20T02:"),
        "{v}"
    );

    // A ticket whose validity reaches past the lists says which holidays are unknown, in
    // every rendering.
    req["requester"] = json!({"name": "王工", "phone": "138 0000 0000"});
    let (s, t) = post(&app, "/excavation/tickets", Some(Role::Contractor), &req).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let want =
        "holidays after 2027-12-31 are not known: deadlines after that date count weekends only";
    assert_eq!(t["warnings"], json!([want]), "{t}");
    // 20 working days of working-day time from Monday 20 December, 10:00 (Beijing): the
    // 20th ends on Friday 14 January at 24:00 less the first day's 10 hours, so Monday 17
    // January, 10:00 (1 January 2028 is a Saturday; after 2027 only weekends are known).
    assert!(
        t["valid_until"]
            .as_str()
            .unwrap()
            .starts_with("2028-01-17T02:00"),
        "{t}"
    );
    let id = t["id"].as_i64().unwrap();
    let (s, g) = get_path(
        &app,
        &format!("/excavation/tickets/{id}?f=geojson"),
        Some(Role::Contractor),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{g}");
    assert_eq!(g["ticket"]["warnings"], json!([want]), "{g}");
    let html = app
        .req(
            Method::GET,
            &format!("/excavation/tickets/{id}?f=html"),
            Some(Role::Contractor),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(want), "the HTML report carries the warning");
    app.stop().await;
}
every_backend!(the_service_clock_decides_dates_and_calendar_warnings);
