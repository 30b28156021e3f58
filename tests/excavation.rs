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
    chrono::Utc::now().date_naive()
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
both_backends!(check_answers_in_three_formats);

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
both_backends!(bad_digs_are_4xx_naming_the_problem);

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
both_backends!(edge_cases);

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
both_backends!(tickets_follow_the_dig);

async fn body_of(resp: reqwest::Response) -> (StatusCode, Value) {
    body(resp).await
}
