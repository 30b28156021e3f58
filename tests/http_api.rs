//! The HTTP API end to end: the real server on port 0 against a real PostGIS (throwaway
//! cluster) and a real GeoPackage, every case run on both.

mod app;

use app::{fixtures, Backend, TestApp};
use lifeline::model::{Layer, Role};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn body(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text}));
    (status, v)
}

async fn counts(app: &TestApp) -> Vec<(Layer, i64)> {
    app.store.counts().await.expect("counts")
}

/// Asserts an error response: the status, JSON shape, and that the message names `needle`.
fn assert_error(status: StatusCode, v: &Value, want: StatusCode, needle: &str) {
    assert_eq!(status, want, "{v}");
    let msg = v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {v}"));
    assert!(
        msg.to_lowercase().contains(&needle.to_lowercase()),
        "message {msg:?} should mention {needle:?}"
    );
    assert_eq!(v["error"]["status"], want.as_u16());
}

async fn health_and_ready(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (s, v) = body(app.req(Method::GET, "/health", None).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    let (s, v) = body(app.req(Method::GET, "/ready", None).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let data = fixtures::dataset();
    assert_eq!(v["index"]["counts"]["pipelines"], data.pipelines.len());
    assert_eq!(v["index"]["counts"]["sensors"], data.sensors.len());
    assert_eq!(v["index"]["counts"]["owners"], data.owners.len());
    assert_eq!(
        v["store"],
        // Citus is PostGIS to the service: the same store over the coordinator.
        if backend == Backend::Gpkg {
            "geopackage"
        } else {
            "postgis"
        }
    );
    let (s, v) = body(app.req(Method::GET, "/layers", None).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let pipes = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "pipelines")
        .unwrap();
    assert_eq!(pipes["count"], data.pipelines.len());
    let bbox = pipes["bbox"].as_array().unwrap();
    assert!((bbox[0].as_f64().unwrap() - 106.50).abs() < 1e-9);
    assert!(pipes["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "diameter_mm" && a["min_role"] == "analyst"));
    let (s, v) = body(
        app.req(Method::GET, "/openapi.json", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["paths"]["/features/{layer}/{id}"].is_object(),
        "{}",
        v["paths"]
    );
    app.stop().await;
}
every_backend!(health_and_ready);

async fn roles_filter_attributes(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Anonymous = viewer by default: kind only.
    let (s, v) = body(
        app.req(Method::GET, "/features/pipelines/2", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["type"], "Feature");
    assert_eq!(v["id"], 2);
    assert_eq!(v["properties"]["kind"], "gas");
    assert!(v["properties"].get("pressure_class").is_none(), "{v}");
    assert!(v["properties"].get("owner_id").is_none());
    assert_eq!(v["geometry"]["type"], "LineString");
    // Analyst: everything.
    let (_, v) = body(
        app.req(Method::GET, "/features/pipelines/2", Some(Role::Analyst))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["properties"]["pressure_class"], "medium_b");
    assert_eq!(v["properties"]["owner_id"], 2);
    // Contractor: still kind only at this stage, but owners are readable.
    let (_, v) = body(
        app.req(Method::GET, "/features/pipelines/2", Some(Role::Contractor))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(v["properties"].get("material").is_none());
    let (s, v) = body(
        app.req(Method::GET, "/features/owners/2", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "contractor");
    let (s, v) = body(
        app.req(Method::GET, "/features/owners/2", Some(Role::Contractor))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["properties"]["name"], "重庆燃气集团");
    // A wrong key is a 401, not a silent downgrade to anonymous.
    let (s, v) = body(
        app.client
            .get(app.url("/features/pipelines/2"))
            .bearer_auth("ll_nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "not valid");
    app.stop().await;

    // Anonymous access off: a key is required.
    let app = TestApp::start_with(backend, None, true).await;
    let (s, v) = body(
        app.req(Method::GET, "/features/pipelines/2", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "API key is required");
    let (s, _) = body(
        app.req(Method::GET, "/features/pipelines/2", Some(Role::Viewer))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}
every_backend!(roles_filter_attributes);

async fn crud_reaches_store_and_index(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Writes need operator.
    let (s, v) = body(
        app.req(Method::POST, "/features/pipelines", Some(Role::Analyst))
            .json(&fixtures::pipe_feature())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "operator");
    let resp = app
        .req(Method::POST, "/features/pipelines", Some(Role::Operator))
        .json(&fixtures::pipe_feature())
        .send()
        .await
        .unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|h| h.to_str().unwrap().to_string());
    let (s, v) = body(resp).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_i64().unwrap();
    assert!(id > 5);
    assert_eq!(
        location.as_deref(),
        Some(format!("/features/pipelines/{id}").as_str())
    );
    // In the store...
    let stored = app
        .store
        .get(Layer::Pipelines, id)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.id(), id);
    // ...and in the index: a bbox query and a nearest query find it.
    let (_, v) = body(
        app.req(
            Method::GET,
            "/features/pipelines?bbox=106.5049,29.5049,106.5061,29.5056",
            None,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(
        v["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == id),
        "{v}"
    );
    let (_, v) = body(
        app.req(
            Method::GET,
            "/features/pipelines/nearest?lon=106.505&lat=29.505&k=1",
            None,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(v["features"][0]["id"], id);
    assert!(
        v["features"][0]["properties"]["distance_m"]
            .as_f64()
            .unwrap()
            < 0.01
    );
    // Replace.
    let mut f = fixtures::pipe_feature();
    f["properties"]["diameter_mm"] = json!(400.0);
    let (s, v) = body(
        app.req(
            Method::PUT,
            &format!("/features/pipelines/{id}"),
            Some(Role::Operator),
        )
        .json(&f)
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["properties"]["diameter_mm"], 400.0);
    let (_, v) = body(
        app.req(
            Method::GET,
            &format!("/features/pipelines/{id}"),
            Some(Role::Analyst),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(v["properties"]["diameter_mm"], 400.0);
    // Delete of a referenced record is refused; of ours works.
    let (s, v) = body(
        app.req(
            Method::DELETE,
            "/features/pipelines/2",
            Some(Role::Operator),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let s = app
        .req(
            Method::DELETE,
            &format!("/features/pipelines/{id}"),
            Some(Role::Operator),
        )
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = body(
        app.req(Method::GET, &format!("/features/pipelines/{id}"), None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(app.store.get(Layer::Pipelines, id).await.unwrap().is_none());
    // The audit log has who did it.
    let (s, v) = body(
        app.req(Method::GET, "/admin/audit", Some(Role::Admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let entries = v["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["actor"] == "test-operator"
            && e["target"].as_str().unwrap_or("").contains(&id.to_string())),
        "{v}"
    );
    app.stop().await;
}
every_backend!(crud_reaches_store_and_index);

async fn bad_input_is_a_clear_4xx_and_writes_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let before = counts(&app).await;
    let op = Some(Role::Operator);
    let post = |layer: &str, v: Value| {
        app.req(Method::POST, &format!("/features/{layer}"), op)
            .json(&v)
            .send()
    };

    // Unknown kind.
    let mut f = fixtures::pipe_feature();
    f["properties"]["kind"] = json!("lava");
    let (s, v) = body(post("pipelines", f).await.unwrap()).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "lava");
    // Dangling owner.
    let mut f = fixtures::pipe_feature();
    f["properties"]["owner_id"] = json!(999);
    let (s, v) = body(post("pipelines", f).await.unwrap()).await;
    assert_error(s, &v, StatusCode::CONFLICT, "999");
    // Coordinates out of range / wrong CRS (projected metres sent as lon/lat).
    let mut f = fixtures::pipe_feature();
    f["geometry"]["coordinates"] = json!([[3417000.0, 5369000.0], [3417100.0, 5369000.0]]);
    let (s, v) = body(post("pipelines", f).await.unwrap()).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "EPSG:4490");
    // Infinity (1e999 overflows f64): JSON cannot carry NaN, so a huge literal is the attack.
    let text = r#"{"type":"Feature","geometry":{"type":"LineString","coordinates":[[106.5,29.5],[1e999,29.5]]},"properties":{"kind":"gas","owner_id":1}}"#;
    let (s, v) = body(
        app.req(Method::POST, "/features/pipelines", op)
            .header("content-type", "application/json")
            .body(text)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        s == StatusCode::BAD_REQUEST || s == StatusCode::UNPROCESSABLE_ENTITY,
        "{s} {v}"
    );
    assert!(v["error"]["message"].is_string());
    // Degenerate line.
    let mut f = fixtures::pipe_feature();
    f["geometry"]["coordinates"] = json!([[106.5, 29.5], [106.5, 29.5]]);
    let (s, v) = body(post("pipelines", f).await.unwrap()).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "zero length");
    // Wrong geometry type.
    let mut f = fixtures::pipe_feature();
    f["geometry"] = json!({"type": "Point", "coordinates": [106.5, 29.5]});
    let (s, v) = body(post("pipelines", f).await.unwrap()).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "LineString");
    // Wrong winding (clockwise exterior) and self-intersection (bow-tie).
    let cell = |coords: Value| {
        json!({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [coords]},
        "properties": {"level": "street", "parent_id": 1, "name": "测试街道", "code": "500107999"}})
    };
    let cw = json!([
        [106.45, 29.45],
        [106.45, 29.46],
        [106.46, 29.46],
        [106.46, 29.45],
        [106.45, 29.45]
    ]);
    let (s, v) = body(post("grid_cells", cell(cw)).await.unwrap()).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "winding");
    let bow = json!([
        [106.45, 29.45],
        [106.46, 29.46],
        [106.46, 29.45],
        [106.45, 29.46],
        [106.45, 29.45]
    ]);
    let (s, v) = body(post("grid_cells", cell(bow)).await.unwrap()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Unknown field, unknown layer, bad id, malformed JSON, wrong content type.
    let mut f = fixtures::pipe_feature();
    f["properties"]["colour"] = json!("red");
    let (s, v) = body(post("pipelines", f).await.unwrap()).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "colour");
    let (s, v) = body(post("volcanoes", fixtures::pipe_feature()).await.unwrap()).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "volcanoes");
    let (s, v) = body(
        app.req(Method::GET, "/features/pipelines/abc", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "abc");
    let (s, v) = body(
        app.req(Method::POST, "/features/pipelines", op)
            .header("content-type", "application/json")
            .body("{\"type\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["message"].is_string());
    let (s, v) = body(
        app.req(Method::POST, "/features/pipelines", op)
            .body("kind=gas")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(s.is_client_error(), "{s}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{v}"
    );
    // A 10 MB body.
    let big = format!(
        "{{\"type\":\"Feature\",\"properties\":{{\"material\":\"{}\"}}}}",
        "x".repeat(10 * 1024 * 1024)
    );
    // The server answers 413 from the Content-Length alone and closes the connection; a
    // client still writing the body may see that as a broken pipe before it reads the
    // answer. Either way the upload is refused (and the count check below shows nothing
    // was written).
    match app
        .req(Method::POST, "/features/pipelines", op)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
    {
        Ok(resp) => {
            let (s, v) = body(resp).await;
            assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
            assert!(v["error"]["message"].is_string());
        }
        Err(e) => assert!(
            e.is_request() || e.is_body(),
            "the refused upload failed in an unexpected way: {e:?}"
        ),
    }
    // Bad query parameters.
    for q in [
        "bbox=1,2,3",
        "bbox=106.6,29.5,106.5,29.6",
        "limit=0",
        "limit=abc",
        "colour=red",
    ] {
        let (s, v) = body(
            app.req(Method::GET, &format!("/features/pipelines?{q}"), None)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert!(v["error"]["message"].is_string());
    }
    let (s, v) = body(
        app.req(Method::GET, "/no/such/thing", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "/no/such/thing");
    // Nothing was written by any of it.
    assert_eq!(counts(&app).await, before);
    app.stop().await;
}
every_backend!(bad_input_is_a_clear_4xx_and_writes_nothing);

async fn bulk_load_is_all_or_nothing(backend: Backend) {
    let app = TestApp::start_with(backend, Some(Role::Viewer), false).await;
    let op = Some(Role::Operator);
    // An invalid record in the middle: 422 naming it, nothing written.
    let mut data = fixtures::dataset();
    data.pipelines[3].geometry = geo::LineString::from(vec![(106.5, 29.5), (106.5, 29.5)]);
    let (s, v) = body(
        app.req(Method::POST, "/bulk", op)
            .json(&data)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "pipelines[4]");
    // A dangling reference the store catches: 409, nothing written.
    let mut data = fixtures::dataset();
    data.sensors[2].pipeline_id = Some(777);
    let (s, v) = body(
        app.req(Method::POST, "/bulk", op)
            .json(&data)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        counts(&app).await.iter().all(|(_, n)| *n == 0),
        "{:?}",
        counts(&app).await
    );
    // The valid set loads and the index sees it.
    let (s, v) = body(
        app.req(Method::POST, "/bulk", op)
            .json(&fixtures::dataset())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["loaded"]["pipelines"], 5);
    let (_, v) = body(app.req(Method::GET, "/ready", None).send().await.unwrap()).await;
    assert_eq!(v["index"]["counts"]["pipelines"], 5);
    assert_eq!(v["index"]["counts"]["sensors"], 3);
    app.stop().await;
}
every_backend!(bulk_load_is_all_or_nothing);

/// The GeoPackage the service writes is a GeoPackage GDAL reads, with the right counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpkg_written_by_the_service_opens_in_ogrinfo() {
    let app = TestApp::start(Backend::Gpkg).await;
    let (s, _) = body(
        app.req(Method::POST, "/features/pipelines", Some(Role::Operator))
            .json(&fixtures::pipe_feature())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let path = app.store_url.clone();
    let out = std::process::Command::new("ogrinfo")
        .args(["-so", "-al", &path])
        .output()
        .expect("ogrinfo (gdal-bin) must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("ERROR"), "{err}");
    let data = fixtures::dataset();
    for (layer, n) in [
        ("pipelines", data.pipelines.len() + 1),
        ("risk_points", data.risk_points.len()),
        ("grid_cells", data.grid_cells.len()),
        ("sensors", data.sensors.len()),
    ] {
        let section = text
            .split("Layer name: ")
            .find(|s| s.starts_with(layer))
            .unwrap_or_else(|| panic!("layer {layer} missing:\n{text}"));
        assert!(
            section.contains(&format!("Feature Count: {n}\n")),
            "{layer} should have {n}:\n{section}"
        );
    }
    app.stop().await;
}
