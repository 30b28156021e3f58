//! OGC API – Features end to end: the real server on port 0 over a real PostGIS and a real
//! GeoPackage, read by the service's own HTTP client and by outside judges — GDAL's OAPIF
//! driver (`ogrinfo`, `ogr2ogr`), OWSLib's `Features` client, and the `ogctests`
//! conformance suite (Core, GeoJSON, OpenAPI) run with its real exit code.

mod app;

use app::{fixtures, Backend, TestApp};
use lifeline::model::Role;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::process::Command;

async fn get(app: &TestApp, path: &str, role: Option<Role>) -> (StatusCode, Value) {
    let r = app
        .req(Method::GET, path, role)
        .send()
        .await
        .expect("request");
    let s = r.status();
    let t = r.text().await.expect("body");
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

fn enc(s: &str) -> String {
    lifeline::ogc::encode(s)
}

fn ids(v: &Value) -> Vec<i64> {
    v["features"]
        .as_array()
        .unwrap_or_else(|| panic!("no features in {v}"))
        .iter()
        .map(|f| f["id"].as_i64().expect("id"))
        .collect()
}

/// Installs the Python clients the tests drive, if missing (the lead's setup script is the
/// primary place; this keeps the test self-sufficient).
fn ensure_python(module: &str, package: &str) {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let st = Command::new("python3")
            .args(["-m", "pip", "install", "-q", package])
            .status()
            .expect("run pip");
        assert!(st.success(), "pip install {package} failed");
    }
}

async fn core_resources(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (s, v) = get(&app, "/ogc", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rels: Vec<&str> = v["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect();
    for r in ["self", "service-desc", "conformance", "data"] {
        assert!(rels.contains(&r), "landing page lacks {r}: {rels:?}");
    }
    let (s, v) = get(&app, "/ogc/conformance", None).await;
    assert_eq!(s, StatusCode::OK);
    let classes: Vec<&str> = v["conformsTo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(classes.contains(&"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"));
    assert!(classes.contains(&"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter"));
    let (s, v) = get(&app, "/ogc/collections", None).await;
    assert_eq!(s, StatusCode::OK);
    let cols: Vec<&str> = v["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        ["pipelines", "risk_points", "grid_cells", "sensors", "nodes"]
    );
    let (s, v) = get(&app, "/ogc/collections/pipelines", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["crs"][0], "http://www.opengis.net/def/crs/OGC/1.3/CRS84");
    assert!(v["crs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "http://www.opengis.net/def/crs/EPSG/0/4545"));
    let bbox = v["extent"]["spatial"]["bbox"][0].as_array().unwrap();
    assert!((bbox[0].as_f64().unwrap() - 106.50).abs() < 1e-9);
    let (s, _) = get(&app, "/ogc/collections/lava", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The OpenAPI document is self-contained: every $ref is local.
    let (s, api) = get(&app, "/ogc/api", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = api.to_string();
    let mut rest = text.as_str();
    let mut refs = 0;
    while let Some(i) = rest.find("\"$ref\":\"") {
        rest = &rest[i + 8..];
        assert!(
            rest.starts_with("#/"),
            "remote $ref in OpenAPI: {}",
            &rest[..40.min(rest.len())]
        );
        refs += 1;
    }
    assert!(refs > 0);
    assert!(
        api["paths"]["/collections/pipelines/items"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "filter")
    );
    assert!(api["paths"]["/analysis/clearance-audit"].is_object());

    // Paging: follow next links; the pages add up to numberMatched, no duplicates.
    let (s, first) = get(&app, "/ogc/collections/pipelines/items?limit=2", None).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["numberMatched"], fixtures::dataset().pipelines.len());
    assert_eq!(first["numberReturned"], 2);
    let mut seen = ids(&first);
    let mut page = first;
    loop {
        let next = page["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rel"] == "next")
            .map(|l| l["href"].as_str().unwrap().to_string());
        let Some(next) = next else { break };
        let r = app.client.get(&next).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        page = r.json().await.unwrap();
        seen.extend(ids(&page));
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);

    // Unknown and invalid parameters are 400s naming the parameter.
    for (q, needle) in [
        ("ooga=booga", "ooga"),
        ("limit=unlimited", "limit"),
        ("bbox=1,2,3", "bbox"),
        ("datetime=yesterday", "datetime"),
        ("crs=EPSG:2000", "crs"),
        ("sortby=colour", "colour"),
        ("filter-lang=sql&filter=1", "filter-lang"),
    ] {
        let (s, v) = get(&app, &format!("/ogc/collections/pipelines/items?{q}"), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(needle),
            "{q}: {v}"
        );
    }

    // Sorting, property selection, queryable-as-parameter.
    let (_, v) = get(
        &app,
        "/ogc/collections/pipelines/items?sortby=-id&limit=3&properties=kind",
        None,
    )
    .await;
    assert_eq!(ids(&v), vec![5, 4, 3]);
    assert_eq!(
        v["features"][0]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["kind"]
    );
    let (_, v) = get(&app, "/ogc/collections/pipelines/items?kind=gas", None).await;
    assert_eq!(ids(&v), vec![2]);

    // bbox and datetime.
    let (_, v) = get(
        &app,
        "/ogc/collections/pipelines/items?bbox=106.505,29.505,106.515,29.515",
        None,
    )
    .await;
    assert_eq!(ids(&v), vec![3]);
    let (_, v) = get(
        &app,
        "/ogc/collections/sensors/items?datetime=2024-03-01",
        None,
    )
    .await;
    assert_eq!(ids(&v), vec![1, 2, 3]);
    let (_, v) = get(
        &app,
        "/ogc/collections/sensors/items?datetime=2024-03-02/..",
        None,
    )
    .await;
    assert_eq!(ids(&v), Vec::<i64>::new());

    // One feature, with links; unknown ids are 404.
    let (s, v) = get(
        &app,
        "/ogc/collections/pipelines/items/3",
        Some(Role::Analyst),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["properties"]["material"], "ductile iron");
    assert!(v["links"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["rel"] == "collection"));
    let (s, _) = get(&app, "/ogc/collections/pipelines/items/999", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.stop().await;
}
every_backend!(core_resources);

async fn access_control(backend: Backend) {
    let app = TestApp::start(backend).await;
    // A viewer sees only kind-level attributes, may not filter or sort on the rest, and
    // the queryables say so.
    let (_, q) = get(&app, "/ogc/collections/pipelines/queryables", None).await;
    assert!(q["properties"]["kind"].is_object());
    assert!(q["properties"]["material"].is_null(), "{q}");
    let (_, q) = get(
        &app,
        "/ogc/collections/pipelines/queryables",
        Some(Role::Analyst),
    )
    .await;
    assert_eq!(q["properties"]["material"]["type"], "string");
    let (_, v) = get(&app, "/ogc/collections/pipelines/items/1", None).await;
    assert!(v["properties"].get("material").is_none(), "{v}");
    let path = format!(
        "/ogc/collections/pipelines/items?filter={}",
        enc("material = 'ductile iron'")
    );
    let (s, v) = get(&app, &path, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("material"));
    let (s, v) = get(&app, &path, Some(Role::Analyst)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["numberMatched"], 5);
    let (s, _) = get(
        &app,
        "/ogc/collections/pipelines/items?sortby=diameter_mm",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = get(&app, "/ogc/collections/pipelines/items?material=PE", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Analysis of pipeline details needs analyst.
    let (s, _) = get(&app, "/ogc/analysis/grid-stats", Some(Role::Viewer)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.stop().await;
}
every_backend!(access_control);

/// Owners are a collection without geometry for contractors and above, with the same
/// fields as `/features/owners`; a viewer sees neither the collection nor its items.
/// Owners have no geometry, so they are not an OGC feature collection for any role: the
/// API lists the four spatial layers and answers `/collections/owners…` with a 404 that
/// says where owners are (`/features/owners`, contractors and above).
async fn owners_collection(backend: Backend) {
    let app = TestApp::start(backend).await;
    for role in [None, Some(Role::Contractor), Some(Role::Admin)] {
        let (_, v) = get(&app, "/ogc/collections", role).await;
        let ids: Vec<&str> = v["collections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["pipelines", "risk_points", "grid_cells", "sensors", "nodes"],
            "{role:?}"
        );
        let (_, api) = get(&app, "/ogc/api", role).await;
        assert!(
            !api["paths"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.contains("owners")),
            "{role:?}"
        );
        for path in [
            "/ogc/collections/owners",
            "/ogc/collections/owners/items",
            "/ogc/collections/owners/items/1",
            "/ogc/collections/owners/queryables",
        ] {
            let (s, v) = get(&app, path, role).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("/features/owners"),
                "{v}"
            );
        }
    }
    let (s, plain) = get(&app, "/features/owners", Some(Role::Contractor)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&plain).len(), fixtures::dataset().owners.len());
    app.stop().await;
}
every_backend!(owners_collection);

/// HTML views for browsers: `f=html` or an `Accept: text/html` header; JSON otherwise.
async fn html_views(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a = Some(Role::Analyst);
    for path in [
        "/ogc?f=html",
        "/ogc/conformance?f=html",
        "/ogc/collections?f=html",
        "/ogc/collections/pipelines?f=html",
        "/ogc/collections/pipelines/items?f=html&limit=2",
        "/ogc/collections/pipelines/items/1?f=html",
    ] {
        let r = app.req(Method::GET, path, a).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let t = r.text().await.unwrap();
        assert!(t.starts_with("<!DOCTYPE html>"), "{path}: {t}");
        // No external assets: no scripts, no remote style sheets or images.
        assert!(!t.contains("<script") && !t.contains("<link") && !t.contains("<img"));
    }
    // The items page lists the page's features with their attributes and a next link.
    let t = app
        .req(
            Method::GET,
            "/ogc/collections/pipelines/items?f=html&limit=2",
            a,
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(t.contains("ductile iron") && t.contains("Next page"), "{t}");
    assert!(t.contains("items/1?f=html") && t.contains("items/2?f=html"));
    // A browser's Accept header gets HTML; GDAL-like clients get JSON.
    let r = app
        .req(Method::GET, "/ogc/collections", None)
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let (s, v) = get(&app, "/ogc/collections", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["collections"].is_array());
    // The API definition is JSON only (so the HTML conformance class is not declared).
    let (s, _) = get(&app, "/ogc/api?f=html", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    app.stop().await;
}
every_backend!(html_views);

/// The analysis endpoints are in the service's `/openapi.json` as well as `/ogc/api`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysis_in_openapi() {
    let app = TestApp::start(Backend::Gpkg).await;
    let (s, v) = get(&app, "/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    for p in [
        "/ogc/analysis/pipelines-within",
        "/ogc/analysis/clearance-audit",
        "/ogc/analysis/grid-stats",
        "/ogc/analysis/nearest-sensors",
    ] {
        let op = &v["paths"][p]["get"];
        assert!(op.is_object(), "{p} missing from /openapi.json");
        assert!(!op["parameters"].as_array().unwrap().is_empty(), "{p}");
    }
    let audit = v["paths"]["/ogc/analysis/clearance-audit"]["get"].to_string();
    assert!(audit.contains("vertical_clearance_m"));
    app.stop().await;
}

async fn hostile_filters(backend: Backend) {
    let app = TestApp::start(backend).await;
    let deep = format!("{}kind='gas'{}", "(".repeat(5000), ")".repeat(5000));
    let mut deep_json = String::from(r#"{"op":"=","args":[{"property":"kind"},"gas"]}"#);
    for _ in 0..300 {
        deep_json = format!(r#"{{"op":"not","args":[{deep_json}]}}"#);
    }
    let huge = format!("kind = '{}'", "x".repeat(20_000));
    let many_in = format!(
        "kind IN ({})",
        (0..1200)
            .map(|i| format!("'k{i}'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let cases: Vec<(String, Option<&str>)> = vec![
        (deep, None),
        (deep_json, Some("cql2-json")),
        ("NOT ".repeat(2000) + "kind = 'gas'", None),
        (many_in, None),
        (huge, None),
        ("kind = 'gas'; DROP TABLE pipelines; --".into(), None),
        ("kind = 'gas' OR 1=1 --'".into(), None),
        ("S_INTERSECTS(geometry, POLYGON((0 0, 1 0)))".into(), None),
        ("S_DWITHIN(geometry, POINT(106.5 29.5), 1e9)".into(), None),
        ("kind > 5".into(), None),
        ("unknown_prop = 1".into(), None),
        ("T_BEFORE(kind, DATE('2020-13-45'))".into(), None),
        (
            r#"{"op":"=","args":[{"property":"kind"}]}"#.into(),
            Some("cql2-json"),
        ),
        ("{not json".into(), Some("cql2-json")),
        ("ACCENTI(kind) = 'gas'".into(), None),
    ];
    for (f, lang) in cases {
        let mut path = format!("/ogc/collections/pipelines/items?filter={}", enc(&f));
        if let Some(l) = lang {
            path.push_str(&format!("&filter-lang={l}"));
        }
        let (s, v) = get(&app, &path, None).await;
        // A URL of 200 kB may be refused by the HTTP layer itself; never a 5xx.
        assert!(
            s == StatusCode::BAD_REQUEST
                || s == StatusCode::URI_TOO_LONG
                || s == StatusCode::PAYLOAD_TOO_LARGE,
            "{}: {s} {v}",
            &f[..f.len().min(60)]
        );
    }
    // Still serving, data intact.
    let (s, v) = get(&app, "/ogc/collections/pipelines/items", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["numberMatched"], 5);
    assert_eq!(
        app.store
            .counts()
            .await
            .unwrap()
            .iter()
            .find(|(l, _)| *l == lifeline::model::Layer::Pipelines)
            .unwrap()
            .1,
        5
    );
    app.stop().await;
}
every_backend!(hostile_filters);

/// Runs `cs2cs` (PROJ's command line) on one position given in the source CRS's axis order.
fn cs2cs(from: &str, to: &str, a: f64, b: f64) -> (f64, f64) {
    let out = Command::new("sh")
        .args(["-c", &format!("echo '{a} {b}' | cs2cs -f %.6f {from} {to}")])
        .output()
        .expect("cs2cs");
    let s = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<f64> = s
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    (nums[0], nums[1])
}

async fn crs_output(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (s, v) = get(&app, "/ogc/collections/sensors/items/1", None).await;
    assert_eq!(s, StatusCode::OK);
    let lon = v["geometry"]["coordinates"][0].as_f64().unwrap();
    let lat = v["geometry"]["coordinates"][1].as_f64().unwrap();
    for code in [4326, 4490, 3857, 4544, 4545] {
        let uri = format!("http://www.opengis.net/def/crs/EPSG/0/{code}");
        let r = app
            .req(
                Method::GET,
                &format!("/ogc/collections/sensors/items/1?crs={}", enc(&uri)),
                None,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-crs"], format!("<{uri}>"));
        let f: Value = r.json().await.unwrap();
        let (x, y) = (
            f["geometry"]["coordinates"][0].as_f64().unwrap(),
            f["geometry"]["coordinates"][1].as_f64().unwrap(),
        );
        // cs2cs takes and gives coordinates in each CRS's own axis order, as Part 2 wants.
        let (ex, ey) = cs2cs("EPSG:4490", &format!("EPSG:{code}"), lat, lon);
        let tol = if code == 4326 || code == 4490 {
            1e-8
        } else {
            0.001
        };
        assert!(
            (x - ex).abs() < tol && (y - ey).abs() < tol,
            "EPSG:{code}: ({x}, {y}) vs cs2cs ({ex}, {ey})"
        );
    }
    // bbox in a projected CRS selects the same features as the lon/lat box.
    let merc = lifeline::model::crs::MetricCrs::new("EPSG:3857").unwrap();
    let e0 = merc.to_metric_xy(106.505, 29.505).unwrap();
    let e1 = merc.to_metric_xy(106.515, 29.515).unwrap();
    let path = format!(
        "/ogc/collections/pipelines/items?bbox={},{},{},{}&bbox-crs={}",
        e0.0,
        e0.1,
        e1.0,
        e1.1,
        enc("http://www.opengis.net/def/crs/EPSG/0/3857")
    );
    let (s, v) = get(&app, &path, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), vec![3]);
    // A filter literal in EPSG:4326 (lat/lon order) via filter-crs.
    let f = "S_INTERSECTS(geometry, POLYGON((29.505 106.505, 29.505 106.515, 29.515 106.515, 29.515 106.505, 29.505 106.505)))";
    let path = format!(
        "/ogc/collections/pipelines/items?filter={}&filter-crs={}",
        enc(f),
        enc("http://www.opengis.net/def/crs/EPSG/0/4326")
    );
    let (s, v) = get(&app, &path, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), vec![3]);
    app.stop().await;
}
every_backend!(crs_output);

async fn flatgeobuf_output(backend: Backend) {
    let app = TestApp::start(backend).await;
    let r = app
        .req(
            Method::GET,
            "/ogc/collections/pipelines/items?f=fgb&limit=100",
            Some(Role::Analyst),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/flatgeobuf");
    let bytes = r.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.fgb");
    std::fs::write(&p, &bytes).unwrap();
    let out = Command::new("ogrinfo")
        .args(["-ro", "-al", "-so"])
        .arg(&p)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Feature Count: 5"), "{text}");
    assert!(text.contains("diameter_mm: Real"), "{text}");
    app.stop().await;
}
every_backend!(flatgeobuf_output);

/// GDAL's OAPIF driver lists every collection and copies a filtered, box-limited layer
/// with ogr2ogr; the copy equals what the API itself selects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdal_oapif_client() {
    let app = TestApp::start_with(Backend::Gpkg, Some(Role::Analyst), true).await;
    let url = format!("OAPIF:http://{}/ogc", app.addr);
    let u2 = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("ogrinfo")
            .args(["-ro", "-q", &u2])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for c in ["pipelines", "risk_points", "grid_cells", "sensors", "nodes"] {
        assert!(text.contains(c), "ogrinfo did not list {c}: {text}");
    }
    // Owners have no geometry and are not a feature collection (docs/ogc.md).
    assert!(!text.contains("owners"), "{text}");
    // Every collection reads completely.
    for (c, n) in [
        ("pipelines", 5),
        ("risk_points", 2),
        ("grid_cells", 2),
        ("sensors", 3),
    ] {
        let u = url.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("ogrinfo")
                .args(["-ro", "-so", &u, c])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let t = String::from_utf8_lossy(&out.stdout);
        assert!(t.contains(&format!("Feature Count: {n}")), "{c}: {t}");
    }
    let dir = tempfile::tempdir().unwrap();
    let gpkg = dir.path().join("out.gpkg");
    let g2 = gpkg.clone();
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("ogr2ogr")
            .args(["-f", "GPKG"])
            .arg(&g2)
            .arg(&u)
            .args([
                "-preserve_fid",
                "pipelines",
                "-spat",
                "106.49",
                "29.49",
                "106.525",
                "29.53",
                "-where",
                "kind IN ('gas', 'water_supply', 'power') AND diameter_mm > 100",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = enc("kind IN ('gas', 'water_supply', 'power') AND diameter_mm > 100");
    let (_, v) = get(
        &app,
        &format!("/ogc/collections/pipelines/items?bbox=106.49,29.49,106.525,29.53&filter={f}"),
        Some(Role::Analyst),
    )
    .await;
    let want = ids(&v);
    assert_eq!(want, vec![1, 2, 4]);
    // GDAL keeps the feature id as the GeoPackage FID.
    let out = Command::new("ogrinfo")
        .args(["-ro", "-al", "-q"])
        .arg(&gpkg)
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&out.stdout);
    let mut got: Vec<i64> = t
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("OGRFeature(pipelines):")
                .and_then(|x| x.parse().ok())
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, want, "{t}");
    app.stop().await;
}

/// OWSLib's `Features` client lists the collections and pages through items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owslib_client() {
    ensure_python("owslib", "OWSLib");
    let app = TestApp::start(Backend::Gpkg).await;
    let url = format!("http://{}/ogc", app.addr);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ogc/owslib_client.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("script prints JSON");
    assert_eq!(
        v["collections"],
        serde_json::json!(["pipelines", "risk_points", "grid_cells", "sensors", "nodes"])
    );
    assert_eq!(v["paged_ids"], serde_json::json!([1, 2, 3, 4, 5]));
    assert_eq!(v["pages"], 3);
    // CQL2 through `filter=`, in text and in JSON: the gas pipes of the fixtures.
    let gas: Vec<i64> = fixtures::dataset()
        .pipelines
        .iter()
        .filter(|p| p.kind == lifeline::model::PipeKind::Gas)
        .map(|p| p.id)
        .collect();
    assert_eq!(v["gas_text"], serde_json::json!(gas));
    assert_eq!(v["gas_json"], serde_json::json!(gas));
    // `cql=` POSTs: a 405 whose body agrees, naming the way that works.
    assert_eq!(v["cql_post"]["status"], 405, "{}", v["cql_post"]);
    assert_eq!(v["cql_post"]["body"]["error"]["status"], 405);
    assert!(v["cql_post"]["allow"]
        .as_str()
        .is_some_and(|a| a.contains("GET")));
    assert!(v["conformance"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c.as_str().unwrap().ends_with("conf/core")));
    app.stop().await;
}

/// The `ogctests` suite for Part 1 Core, GeoJSON and OpenAPI 3.0 passes: its pytest exit
/// code is 0 and the JUnit report has no failures or errors.
/// The OGC conformance suites (`ogctests`: Part 1 Core with GeoJSON and OpenAPI, and
/// Part 3 Filtering) for every caller: anonymous (the viewer role) and a key of each role,
/// since collections, attributes and queryables follow the role. The CLI exits 0 whatever
/// happens, so each run's JUnit report is parsed: every test must pass, none may error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ogctests_conformance() {
    ensure_python("ogctests", "ogctests");
    ensure_python("geopandas", "geopandas");
    let app = TestApp::start(Backend::Gpkg).await;
    // The suite judges `timeStamp` against this machine's clock (A.2.7.x: "set to the time
    // when the response was generated"), so this server reads the machine's time even in
    // the clock guard's run.
    app.clock.set(chrono::Utc::now());
    let url = format!("http://{}/ogc", app.addr);
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_path_buf();
    let mut callers = vec!["anonymous=".to_string()];
    for role in Role::ALL {
        callers.push(format!("{role}={}", app.keys[role]));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ogc/run_ogctests.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(&url)
            .arg(&out_dir)
            .args(&callers)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut names = vec!["anonymous".to_string()];
    names.extend(Role::ALL.iter().map(|r| r.to_string()));
    for suite in ["core", "filtering"] {
        for name in &names {
            let report = dir.path().join(format!("{suite}-{name}.xml"));
            let xml = std::fs::read_to_string(&report).unwrap_or_else(|e| {
                panic!("{suite} as {name}: no report ({e}):\n{stdout}\n{stderr}")
            });
            let count = |attr: &str| -> usize {
                let at = xml
                    .find(&format!(" {attr}=\""))
                    .unwrap_or_else(|| panic!("{attr} in {xml}"));
                let rest = &xml[at + attr.len() + 3..];
                rest[..rest.find('"').unwrap()].parse().unwrap()
            };
            assert!(count("tests") > 0, "{suite} as {name} ran nothing: {xml}");
            let failed = failed_cases(&xml);
            let judge_defects: &[(&str, &str)] = if suite == "filtering" {
                FILTERING_JUDGE_DEFECTS
            } else {
                &[]
            };
            for (case, message) in &failed {
                assert!(
                    judge_defects
                        .iter()
                        .any(|(c, sig)| c == case && message.contains(sig)),
                    "{suite} as {name}: {case} failed: {message}\n{xml}"
                );
            }
            assert_eq!(count("errors"), 0, "{suite} as {name}:\n{xml}");
            // Everything else of the suite ran and passed.
            assert!(
                count("tests") >= failed.len() + 6,
                "{suite} as {name}: too few tests passed:\n{xml}"
            );
        }
    }
    // pytest's exit code 1 is "some tests failed" (the judge defects above, judged by the
    // reports); anything else means the runner itself broke.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "ogctests runner failed:\n{stdout}\n{stderr}"
    );
    app.stop().await;
}

/// Tests of the `ogctests` 0.1.15 Filtering suite that no server can pass, each with the
/// signature of its defect (docs/ogc.md, "Conformance"): a failure of these tests with any
/// other message, or of any other test, fails ours.
const FILTERING_JUDGE_DEFECTS: &[(&str, &str)] = &[
    // Sends `{queryable}=[invalid-value]` for a free-text queryable and expects a 400: any
    // string is a valid value of a string property.
    ("test_ct5", "assert 200 in [400]"),
    // The same test first sends the word `valid` as a valid value of each collection's last
    // queryable and expects success; where that queryable is an integer (pipelines'
    // `to_node`, nodes' `customers`) the word is no valid value, and a 400 is right.
    ("test_ct5", "assert 400 in [200, 204]"),
    // Sends `filter={queryable}=valid` and expects success: in CQL2 text `valid` is a
    // property name, unknown here (a 400 is right), and as `filter-lang=cql2-json` the text
    // is not JSON at all.
    ("test_ct7", "assert 400 in [200, 204]"),
    // Reads `queryable['key']` from the string the suite itself stored as the queryable.
    ("test_ct8", "string indices must be integers"),
    // Formats its filter template with `str.format`, whose braces are the JSON's own.
    ("test_ct10", "KeyError: ' \"property\"'"),
];

/// The failed test cases of a JUnit report: (name, failure message).
fn failed_cases(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for case in xml.split("<testcase ").skip(1) {
        let attr = |a: &str| -> String {
            case.find(&format!(" {a}=\""))
                .map(|at| {
                    let rest = &case[at + a.len() + 3..];
                    rest[..rest.find('"').unwrap_or(0)].to_string()
                })
                .unwrap_or_default()
        };
        let name = attr("name");
        let body = &case[..case.find("</testcase>").unwrap_or(case.len())];
        if let Some(at) = body.find("<failure message=\"") {
            let rest = &body[at + 18..];
            let message = rest[..rest.find('"').unwrap_or(0)]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            out.push((name, message));
        }
    }
    out
}

async fn analysis_endpoints(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a = Some(Role::Analyst);
    // Pipes 1 and 2 run side by side 11 m apart; within 50 m of pipe 1's start.
    let (s, v) = get(
        &app,
        &format!(
            "/ogc/analysis/pipelines-within?geometry={}&distance=50",
            enc("POINT(106.5 29.5)")
        ),
        a,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), vec![1, 2]);
    let total: f64 = v["length_by_kind_m"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_f64().unwrap())
        .sum();
    assert!((total - v["total_length_m"].as_f64().unwrap()).abs() < 0.01);
    // Pipe 1 is 0.001° east and 0.0001° north: about 97 m at 29.5° N.
    let l1 = v["features"][0]["properties"]["length_m"].as_f64().unwrap();
    assert!((l1 - 97.6).abs() < 1.5, "{l1}");
    let by_owner = v["length_by_owner_m"].as_object().unwrap();
    assert!(by_owner.contains_key("1") && by_owner.contains_key("2"));
    // Clearance audit: gas (pipe 2) and water (pipe 1) are ~11 m apart: clean at the rule
    // distance, a finding when the caller asks for 20 m.
    let (s, v) = get(
        &app,
        "/ogc/analysis/clearance-audit?kind=gas&other=water_supply",
        a,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["numberReturned"], 0);
    let (_, v) = get(
        &app,
        "/ogc/analysis/clearance-audit?kind=gas&other=water_supply&max_distance=20",
        a,
    )
    .await;
    assert_eq!(v["numberReturned"], 1, "{v}");
    assert_eq!(v["features"][0]["properties"]["relation"], "parallel");
    let d = v["features"][0]["properties"]["distance_m"]
        .as_f64()
        .unwrap();
    assert!((9.0..13.0).contains(&d), "{d}");
    let r = app
        .req(
            Method::GET,
            "/ogc/analysis/clearance-audit?kind=gas&other=water_supply&max_distance=20&f=csv",
            a,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    // The vertical columns are there; a parallel pair is judged horizontally.
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    for col in [
        "pipe_depth_m",
        "vertical_clearance_m",
        "required_vertical_m",
        "vertical",
    ] {
        assert!(header.contains(&col), "{csv}");
    }
    assert!(
        csv.lines().nth(1).unwrap().ends_with(",not_applicable"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("2,gas,1,water_supply,parallel,"),
        "{csv}"
    );
    // Grid stats: the street cell holds all five pipes.
    let (s, v) = get(&app, "/ogc/analysis/grid-stats?level=street", a).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let p = &v["features"][0]["properties"];
    assert_eq!(p["cell_id"], 2);
    assert_eq!(
        p["length_by_material_m"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["ductile iron"]
    );
    assert!(p["mean_age_years"].as_f64().unwrap() > 19.0);
    // Nearest sensors.
    let (s, v) = get(
        &app,
        "/ogc/analysis/nearest-sensors?lon=106.5002&lat=29.50002&k=2",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&v), vec![3, 1]);
    assert_eq!(v["features"][0]["properties"]["distance_m"], 0.0);
    let (_, v) = get(
        &app,
        "/ogc/analysis/nearest-sensors?lon=106.5002&lat=29.50002&k=1&kind=level",
        None,
    )
    .await;
    assert_eq!(ids(&v), vec![2]);
    let (s, _) = get(&app, "/ogc/analysis/nearest-sensors?lon=500&lat=29", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    app.stop().await;
}
every_backend!(analysis_endpoints);

/// Any valid lon/lat window gives the exact answer on every endpoint that takes one: the
/// world, windows larger than the metric CRS's zone, touching ±180°, or outside the data.
/// The expected ids are computed here from the fixtures' own geometries (lon/lat
/// intersection, as PostGIS answers `ST_Intersects` on EPSG:4490).
async fn any_window(backend: Backend) {
    use geo::Intersects;
    let app = TestApp::start(backend).await;
    let data = fixtures::dataset();
    let meets = |g: &geo::Geometry<f64>, w: [f64; 4]| {
        g.intersects(&geo::Rect::new((w[0], w[1]), (w[2], w[3])))
    };
    let expected = |layer: &str, w: [f64; 4]| -> Vec<i64> {
        let all: Vec<(i64, geo::Geometry<f64>)> = match layer {
            "pipelines" => data
                .pipelines
                .iter()
                .map(|p| (p.id, p.geometry.clone().into()))
                .collect(),
            "risk_points" => data
                .risk_points
                .iter()
                .map(|r| (r.id, r.geometry.clone()))
                .collect(),
            "grid_cells" => data
                .grid_cells
                .iter()
                .map(|c| (c.id, c.geometry.clone().into()))
                .collect(),
            _ => data
                .sensors
                .iter()
                .map(|s| (s.id, s.location.into()))
                .collect(),
        };
        let mut ids: Vec<i64> = all
            .into_iter()
            .filter(|(_, g)| meets(g, w))
            .map(|(id, _)| id)
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<i64>| {
        v.sort();
        v
    };
    let windows: [[f64; 4]; 8] = [
        [-180.0, -90.0, 180.0, 90.0],
        [-179.0, -89.0, 179.0, 89.0],
        [0.0, 0.0, 180.0, 90.0],
        [170.0, -10.0, 180.0, 10.0],
        [-180.0, -90.0, -170.0, 90.0],
        [0.0, 0.0, 1.0, 1.0],
        [106.505, -90.0, 180.0, 29.515],
        [-180.0, 29.505, 106.515, 90.0],
    ];
    let analyst = Some(Role::Analyst);
    for w in windows {
        let b = format!("{},{},{},{}", w[0], w[1], w[2], w[3]);
        let poly = format!(
            "POLYGON(({0} {1},{2} {1},{2} {3},{0} {3},{0} {1}))",
            w[0], w[1], w[2], w[3]
        );
        for layer in ["pipelines", "risk_points", "grid_cells", "sensors"] {
            let want = expected(layer, w);
            for q in [
                format!("bbox={b}"),
                format!(
                    "filter={}",
                    enc(&format!("S_INTERSECTS(geometry,BBOX({b}))"))
                ),
                format!("filter={}", enc(&format!("S_INTERSECTS(geometry,{poly})"))),
            ] {
                let path = format!("/ogc/collections/{layer}/items?{q}&limit=1000");
                let (s, v) = get(&app, &path, analyst).await;
                assert_eq!(s, StatusCode::OK, "{path}: {v}");
                assert_eq!(sorted(ids(&v)), want, "{path}");
            }
            let path = format!("/features/{layer}?bbox={b}");
            let (s, v) = get(&app, &path, None).await;
            assert_eq!(s, StatusCode::OK, "{path}: {v}");
            assert_eq!(sorted(ids(&v)), want, "{path}");
        }
        let (s, v) = get(&app, &format!("/risk/points?bbox={b}"), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let got = v["risk_points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        assert_eq!(sorted(got), expected("risk_points", w), "/risk/points {b}");
        let (s, v) = get(
            &app,
            &format!("/risk/grid-stats?level=street&bbox={b}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let got = v["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        let streets: Vec<i64> = expected("grid_cells", w)
            .into_iter()
            .filter(|id| *id == 2)
            .collect();
        assert_eq!(sorted(got), streets, "/risk/grid-stats {b}");
        for path in [
            format!("/risk/alarm-density?bbox={b}"),
            format!("/alarms?bbox={b}"),
            format!("/ogc/analysis/grid-stats?level=street&bbox={b}"),
            format!("/ogc/analysis/clearance-audit?kind=gas&other=water_supply&max_distance=20&bbox={b}"),
        ] {
            let (s, v) = get(&app, &path, analyst).await;
            assert_eq!(s, StatusCode::OK, "{path}: {v}");
        }
        // The clearance finding (pipes 1 and 2) is reported exactly when both are in the window.
        let (_, v) = get(
            &app,
            &format!("/ogc/analysis/clearance-audit?kind=gas&other=water_supply&max_distance=20&bbox={b}"),
            analyst,
        )
        .await;
        let pipes = expected("pipelines", w);
        let both = pipes.contains(&1) && pipes.contains(&2);
        assert_eq!(
            v["numberReturned"],
            if both { 1 } else { 0 },
            "clearance in {b}: {v}"
        );
    }
    // Distance queries from far away, or larger than the zone: an answer, not an error.
    let world = "POLYGON((-180 -90,180 -90,180 90,-180 90,-180 -90))";
    let (s, v) = get(
        &app,
        &format!(
            "/ogc/collections/pipelines/items?filter={}",
            enc(&format!("S_DWITHIN(geometry,{world},10)"))
        ),
        analyst,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        sorted(ids(&v)),
        expected("pipelines", [-180.0, -90.0, 180.0, 90.0])
    );
    let (s, v) = get(
        &app,
        &format!(
            "/ogc/collections/pipelines/items?filter={}",
            enc("S_DWITHIN(geometry,POINT(-3 40),1000)")
        ),
        analyst,
    )
    .await;
    assert_eq!((s, ids(&v)), (StatusCode::OK, vec![]), "{v}");
    let (s, v) = get(
        &app,
        &format!(
            "/ogc/analysis/pipelines-within?geometry={}&distance=50",
            enc("POINT(-3 40)")
        ),
        analyst,
    )
    .await;
    assert_eq!((s, ids(&v)), (StatusCode::OK, vec![]), "{v}");
    // Tiles at zoom 0 (the world) and at the antimeridian answer without error.
    for path in ["/tiles/pipelines/0/0/0.mvt", "/tiles/pipelines/2/3/1.mvt"] {
        let r = app.req(Method::GET, path, None).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    app.stop().await;
}
every_backend!(any_window);

/// One rule, everywhere: what a literal or parameter does not say exactly is refused with
/// a 400 naming it, never repaired; counts clamp however large; a method a resource does
/// not answer is a 405 whose body says 405; access is decided before the body is read.
async fn strict_rules(backend: Backend) {
    let app = TestApp::start(backend).await;
    let items = "/ogc/collections/pipelines/items";
    for (q, says) in [
        (
            format!(
                "filter={}",
                enc("S_INTERSECTS(geometry,POLYGON((106.5 29.5,106.6 29.5,106.6 29.6)))")
            ),
            "not closed",
        ),
        (
            format!(
                "filter={}",
                enc("S_INTERSECTS(geometry,BBOX(106.6,29.6,106.5,29.5))")
            ),
            "minimum is greater",
        ),
        (
            format!("filter={}", enc("S_INTERSECTS(geometry,POINT(200 29.5))")),
            "outside longitude",
        ),
        (
            "bbox=106.6,29.6,106.5,29.5".to_string(),
            "minimum is greater",
        ),
        ("datetime=-9999-01-01".to_string(), "RFC 3339"),
        ("datetime=%2B10000-01-01".to_string(), "RFC 3339"),
        ("limit=-1".to_string(), "limit"),
        ("limit=1.5".to_string(), "limit"),
        ("limit=0".to_string(), "limit"),
    ] {
        let (s, v) = get(&app, &format!("{items}?{q}"), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["error"]["status"], 400, "{q}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{q}: {v}"
        );
    }
    // A closed ring and an ordered box are answered.
    let (s, v) = get(
        &app,
        &format!(
            "{items}?filter={}",
            enc("S_INTERSECTS(geometry,POLYGON((106.4 29.4,106.6 29.4,106.6 29.6,106.4 29.4)))")
        ),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Counts of any length clamp to the endpoint's maximum.
    let huge = "9".repeat(30);
    for path in [
        format!("{items}?limit={huge}"),
        format!("/features/pipelines?limit={huge}"),
        format!("/alarms?limit={huge}"),
        format!("/risk/points?limit={huge}"),
    ] {
        let (s, v) = get(&app, &path, Some(Role::Operator)).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
    }
    let (_, v) = get(&app, &format!("{items}?limit={huge}"), None).await;
    assert_eq!(v["numberReturned"], fixtures::dataset().pipelines.len());
    // OWSLib's `cql=` POSTs the filter to items: 405 with `Allow`, and a body that agrees.
    let r = app
        .req(Method::POST, items, Some(Role::Analyst))
        .json(&serde_json::json!({"op": "=", "args": [{"property": "kind"}, "gas"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = r
        .headers()
        .get("allow")
        .map(|h| h.to_str().unwrap().to_string());
    assert!(
        allow.as_deref().is_some_and(|a| a.contains("GET")),
        "{allow:?}"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], 405, "{v}");
    assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("filter-lang"),
        "{v}"
    );
    // Access before the body: a viewer (anonymous) gets 403, whatever it sends.
    for (path, body) in [
        ("/excavation/check", "{\"not\": \"a check\"}"),
        ("/excavation/tickets", "[]"),
        ("/features/pipelines", "{\"type\": \"nonsense\"}"),
        ("/bulk", "{}"),
        ("/alarms/1/transitions", "{\"to\": 5}"),
        ("/admin/keys", "{}"),
    ] {
        let r = app
            .req(Method::POST, path, None)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let s = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
        assert_eq!(v["error"]["status"], 403, "{path}: {v}");
    }
    app.stop().await;
}
every_backend!(strict_rules);
