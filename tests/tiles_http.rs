//! Vector tiles end to end: the real server on port 0 over a real GeoPackage and a real
//! PostGIS (throwaway cluster), judged by our strict decoder, the `mvt-reader` crate,
//! GDAL's MVT driver (`ogrinfo`), `gl-style-validate` for the styles, and PostGIS's own
//! `ST_AsMVT` on the same rows.

mod app;

use app::{Backend, TestApp};
use lifeline::model::{Actor, Dataset, Layer, Role};
use lifeline_tiles::{decode_tile, DecodedTile, TileCoord};
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Read;
use std::process::Command;

/// The z14 tile holding fixture pipes 1 and 2 (gas and water near 106.5005, 29.50005).
fn pipe_tile(z: u8) -> TileCoord {
    TileCoord::from_lonlat(106.5005, 29.50005, z).unwrap()
}

fn tile_path(layers: &str, t: TileCoord) -> String {
    format!("/tiles/{layers}/{}/{}/{}.mvt", t.z(), t.x(), t.y())
}

async fn get(app: &TestApp, path: &str, role: Option<Role>) -> reqwest::Response {
    app.req(Method::GET, path, role)
        .send()
        .await
        .expect("request")
}

async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let s = resp.status();
    let text = resp.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})),
    )
}

/// Asserts a JSON error naming `needle`.
async fn assert_error(resp: reqwest::Response, want: StatusCode, needle: &str) {
    let (s, v) = json_of(resp).await;
    assert_eq!(s, want, "{v}");
    let msg = v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {v}"));
    assert!(
        msg.contains(needle),
        "message {msg:?} should mention {needle:?}"
    );
}

async fn tile_of(app: &TestApp, path: &str, role: Option<Role>) -> DecodedTile {
    let r = get(app, path, role).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    decode_tile(&r.bytes().await.unwrap()).expect("valid MVT")
}

fn ids(t: &DecodedTile, layer: &str) -> Vec<u64> {
    let mut v: Vec<u64> = t
        .layer(layer)
        .map(|l| l.features.iter().filter_map(|f| f.id).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(b, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

async fn tiles_http_behaviour(backend: Backend) {
    let app = TestApp::start(backend).await;
    let path = tile_path("pipelines", pipe_tile(14));

    // 200 with the MVT type, a strong ETag, public caching for the anonymous viewer.
    let r = get(&app, &path, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()[CONTENT_TYPE],
        "application/vnd.mapbox-vector-tile"
    );
    assert!(r.headers().get(CONTENT_ENCODING).is_none());
    assert_eq!(r.headers()[CACHE_CONTROL], "public, max-age=60");
    assert!(r.headers()[VARY]
        .to_str()
        .unwrap()
        .contains("Accept-Encoding"));
    let etag = r.headers()[ETAG].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    let raw = r.bytes().await.unwrap().to_vec();
    let tile = decode_tile(&raw).unwrap();
    assert_eq!(ids(&tile, "pipelines"), [1, 2]);

    // The same tile as .pbf (GDAL's default extension).
    let pbf = get(&app, &path.replace(".mvt", ".pbf"), None).await;
    assert_eq!(pbf.bytes().await.unwrap().to_vec(), raw);

    // Conditional request: 304 with the validator, no body.
    let r = app
        .req(Method::GET, &path, None)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()[ETAG], etag.as_str());
    assert!(r.bytes().await.unwrap().is_empty());

    // gzip and brotli, each with its own ETag; the bytes decompress to the same tile.
    let mut etags = vec![etag.clone()];
    for (enc, decode) in [("gzip", gunzip as fn(&[u8]) -> Vec<u8>), ("br", unbrotli)] {
        let r = app
            .req(Method::GET, &path, None)
            .header(ACCEPT_ENCODING, enc)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CONTENT_ENCODING], enc);
        let e = r.headers()[ETAG].to_str().unwrap().to_string();
        assert!(
            !etags.contains(&e),
            "{enc} ETag {e} must differ from {etags:?}"
        );
        let body = r.bytes().await.unwrap();
        assert_eq!(decode(&body), raw);
        let r = app
            .req(Method::GET, &path, None)
            .header(ACCEPT_ENCODING, enc)
            .header(IF_NONE_MATCH, &e)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{enc}");
        etags.push(e);
    }
    // "gzip, deflate, br" (what browsers send) gets brotli.
    let r = app
        .req(Method::GET, &path, None)
        .header(ACCEPT_ENCODING, "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[CONTENT_ENCODING], "br");

    // Empty tiles are 204, also for layers with zero features and for composites.
    for p in [
        "/tiles/pipelines/14/0/0.mvt".to_string(),
        tile_path("sensors", TileCoord::from_lonlat(106.6, 29.6, 16).unwrap()),
        tile_path(
            "pipelines,sensors",
            TileCoord::from_lonlat(106.6, 29.6, 16).unwrap(),
        ),
        tile_path("pipelines", pipe_tile(5)),
    ] {
        let r = get(&app, &p, None).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{p}");
        assert!(r.bytes().await.unwrap().is_empty());
    }

    // A composite tile holds the layers in the order asked.
    let t = tile_of(
        &app,
        &tile_path("sensors,risk_points,pipelines,grid_cells", pipe_tile(16)),
        None,
    )
    .await;
    let names: Vec<&str> = t.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["sensors", "risk_points", "pipelines", "grid_cells"]);
    assert_eq!(ids(&t, "sensors"), [1, 3]);
    assert_eq!(ids(&t, "risk_points"), [1]);

    // Documented in OpenAPI.
    let (_, api) = json_of(get(&app, "/openapi.json", None).await).await;
    for p in [
        "/tiles/{layers}/{z}/{x}/{y}.mvt",
        "/tiles/{layers}.json",
        "/styles/{name}.json",
    ] {
        assert!(
            api["paths"][p]["get"].is_object(),
            "{p} missing from OpenAPI"
        );
    }
    app.stop().await;
}
every_backend!(tiles_http_behaviour);

async fn raw_request(app: &TestApp, target: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

async fn tiles_bad_paths(backend: Backend) {
    let app = TestApp::start(backend).await;
    assert_error(
        get(&app, "/tiles/pipelines/99/1/1.mvt", None).await,
        StatusCode::BAD_REQUEST,
        "zoom 99",
    )
    .await;
    assert_error(
        get(&app, "/tiles/pipelines/3/9/9.mvt", None).await,
        StatusCode::BAD_REQUEST,
        "x 9",
    )
    .await;
    assert_error(
        get(&app, "/tiles/pipelines/3/1/9.mvt", None).await,
        StatusCode::BAD_REQUEST,
        "y 9",
    )
    .await;
    assert_error(
        get(&app, "/tiles/pipelines/x/1/1.mvt", None).await,
        StatusCode::BAD_REQUEST,
        "'x'",
    )
    .await;
    assert_error(
        get(&app, "/tiles/pipes/3/1/1.mvt", None).await,
        StatusCode::NOT_FOUND,
        "pipes",
    )
    .await;
    assert_error(
        get(&app, "/tiles/owners/3/1/1.mvt", None).await,
        StatusCode::NOT_FOUND,
        "owners",
    )
    .await;
    assert_error(
        get(&app, "/tiles/pipelines/3/1/1.png", None).await,
        StatusCode::NOT_FOUND,
        ".png",
    )
    .await;
    assert_error(
        get(&app, "/tiles/pipelines,pipelines/3/1/1.mvt", None).await,
        StatusCode::BAD_REQUEST,
        "twice",
    )
    .await;
    assert_error(
        get(&app, "/tiles/a,b,c,d,e,f,g,h,i/3/1/1.mvt", None).await,
        StatusCode::BAD_REQUEST,
        "at most 8",
    )
    .await;
    assert_error(
        get(&app, "/tiles/nope.json", None).await,
        StatusCode::NOT_FOUND,
        "nope",
    )
    .await;
    assert_error(
        get(&app, "/styles/nope.json", None).await,
        StatusCode::NOT_FOUND,
        "network.json",
    )
    .await;
    // A long layer list that fits the request-target limit reaches the handler (400 naming
    // the length); 10,000 names exceed the limit (16 KiB by default) and get the service's
    // JSON 414 before routing; beyond hyper's own limit (64 KiB) hyper answers (4xx).
    let many = vec!["a"; 2_000].join(",");
    assert_error(
        get(&app, &format!("/tiles/{many}/3/1/1.mvt"), None).await,
        StatusCode::BAD_REQUEST,
        "bytes",
    )
    .await;
    let many = vec!["a"; 10_000].join(",");
    assert_error(
        get(&app, &format!("/tiles/{many}/3/1/1.mvt"), None).await,
        StatusCode::URI_TOO_LONG,
        "request target",
    )
    .await;
    let many = vec!["pipelines"; 10_000].join(",");
    let (status, _) = raw_request(&app, &format!("/tiles/{many}/3/1/1.mvt")).await;
    assert!((400..500).contains(&status), "{status}");
    // `..` is not normalised away by clients that send it raw.
    let (status, text) = raw_request(&app, "/tiles/../x").await;
    assert!((400..500).contains(&status), "{text}");
    let (status, text) = raw_request(&app, "/tiles/../../etc/passwd/1/1.mvt").await;
    assert!((400..500).contains(&status), "{text}");
    assert!(!text.contains("root:"), "{text}");
    app.stop().await;
}
every_backend!(tiles_bad_paths);

async fn tiles_roles(backend: Backend) {
    let app = TestApp::start(backend).await;
    let path = tile_path("pipelines", pipe_tile(16));
    let viewer = tile_of(&app, &path, None).await;
    let mut keys = viewer.layer("pipelines").unwrap().keys.clone();
    keys.sort();
    assert_eq!(
        keys,
        ["kind", "status"],
        "a viewer sees the kind (and status), nothing else"
    );
    let contractor = tile_of(&app, &path, Some(Role::Contractor)).await;
    assert_eq!(contractor, viewer);
    let r = get(&app, &path, Some(Role::Analyst)).await;
    assert_eq!(r.headers()[CACHE_CONTROL], "private, max-age=60");
    let analyst = decode_tile(&r.bytes().await.unwrap()).unwrap();
    let l = analyst.layer("pipelines").unwrap();
    let gas = l.features.iter().find(|f| f.id == Some(2)).unwrap();
    assert_eq!(
        gas.get("pressure_class").and_then(|v| v.as_str()),
        Some("medium_b")
    );
    assert_eq!(gas.get("diameter_mm").and_then(|v| v.as_f64()), Some(300.0));
    assert_eq!(
        gas.get("material").and_then(|v| v.as_str()),
        Some("ductile iron")
    );
    assert_eq!(ids(&analyst, "pipelines"), ids(&viewer, "pipelines"));
    // Admins share the analyst's tile (same class, same bytes).
    assert_eq!(tile_of(&app, &path, Some(Role::Admin)).await, analyst);
    // Zoom-dependent attributes: at z12 the analyst has diameter but not material.
    let z12 = tile_of(
        &app,
        &tile_path("pipelines", pipe_tile(13)),
        Some(Role::Analyst),
    )
    .await;
    let keys = &z12.layer("pipelines").unwrap().keys;
    assert!(
        keys.iter().any(|k| k == "diameter_mm") && !keys.iter().any(|k| k == "material"),
        "{keys:?}"
    );
    // TileJSON fields follow the role too.
    let (_, v) = json_of(get(&app, "/tiles/pipelines.json", None).await).await;
    assert!(v["vector_layers"][0]["fields"].get("diameter_mm").is_none());
    let (_, v) = json_of(get(&app, "/tiles/pipelines.json", Some(Role::Analyst)).await).await;
    assert_eq!(v["vector_layers"][0]["fields"]["diameter_mm"], "Number");
    app.stop().await;
}
every_backend!(tiles_roles);

async fn tiles_follow_writes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let here = tile_path("pipelines", pipe_tile(16));
    let before = tile_of(&app, &here, None).await;
    let f = before
        .layer("pipelines")
        .unwrap()
        .features
        .iter()
        .find(|f| f.id == Some(1))
        .unwrap()
        .clone();
    assert_eq!(f.get("kind").and_then(|v| v.as_str()), Some("water_supply"));
    let etag = get(&app, &here, None).await.headers()[ETAG]
        .to_str()
        .unwrap()
        .to_string();

    // Change pipe 1 from water to heat (same place): the next request shows it.
    let body = json!({
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[106.50, 29.50], [106.501, 29.5001]]},
        "properties": {"kind": "heat", "owner_id": 1, "diameter_mm": 300.0}
    });
    let r = app
        .req(Method::PUT, "/features/pipelines/1", Some(Role::Operator))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = app
        .req(Method::GET, &here, None)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the old ETag no longer matches");
    let after = decode_tile(&r.bytes().await.unwrap()).unwrap();
    let f = after
        .layer("pipelines")
        .unwrap()
        .features
        .iter()
        .find(|f| f.id == Some(1))
        .unwrap();
    assert_eq!(f.get("kind").and_then(|v| v.as_str()), Some("heat"));

    // Move it far away: gone here, present there.
    let there = TileCoord::from_lonlat(106.555, 29.555, 16).unwrap();
    let there_path = tile_path("pipelines", there);
    assert_eq!(
        get(&app, &there_path, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let body = json!({
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[106.555, 29.555], [106.5552, 29.5551]]},
        "properties": {"kind": "heat", "owner_id": 1, "diameter_mm": 300.0}
    });
    let r = app
        .req(Method::PUT, "/features/pipelines/1", Some(Role::Operator))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(ids(&tile_of(&app, &here, None).await, "pipelines"), [2]);
    assert_eq!(
        ids(&tile_of(&app, &there_path, None).await, "pipelines"),
        [1]
    );
    // Composite tiles that include pipelines follow too.
    let comp = tile_path("grid_cells,pipelines", there);
    assert_eq!(ids(&tile_of(&app, &comp, None).await, "pipelines"), [1]);

    // Insert and delete.
    let r = app
        .req(Method::POST, "/features/pipelines", Some(Role::Operator))
        .json(&json!({
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[106.5551, 29.5552], [106.5553, 29.5553]]},
            "properties": {"kind": "gas", "owner_id": 2}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let new_id = json_of(r).await.1["id"].as_u64().unwrap();
    assert_eq!(
        ids(&tile_of(&app, &comp, None).await, "pipelines"),
        [1, new_id]
    );
    let r = app
        .req(
            Method::DELETE,
            &format!("/features/pipelines/{new_id}"),
            Some(Role::Operator),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(ids(&tile_of(&app, &comp, None).await, "pipelines"), [1]);

    // A bulk load reloads the index and clears the cache.
    let mut extra = Dataset::default();
    let mut p = app::fixtures::pipe(
        500,
        1,
        lifeline::model::PipeKind::Drainage,
        106.5554,
        29.5554,
        0.0002,
    );
    p.sub_kind = Some(lifeline::model::DrainageKind::Storm);
    extra.pipelines.push(p);
    let r = app
        .req(Method::POST, "/bulk", Some(Role::Operator))
        .json(&extra)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(
        ids(&tile_of(&app, &comp, None).await, "pipelines"),
        [1, 500]
    );
    app.stop().await;
}
every_backend!(tiles_follow_writes);

fn tool(name: &str, arg: &str) -> bool {
    Command::new(name)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn tilejson_styles_and_outside_validators(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (s, tj) = json_of(get(&app, "/tiles/pipelines,risk_points.json", None).await).await;
    assert_eq!(s, StatusCode::OK, "{tj}");
    assert_eq!(tj["tilejson"], "3.0.0");
    assert_eq!(
        tj["tiles"][0],
        format!(
            "http://{}/tiles/pipelines,risk_points/{{z}}/{{x}}/{{y}}.mvt",
            app.addr
        )
    );
    assert_eq!(tj["minzoom"], 8);
    assert_eq!(tj["maxzoom"], 18);
    assert_eq!(tj["vector_layers"][0]["id"], "pipelines");
    assert_eq!(tj["vector_layers"][0]["fields"]["kind"], "String");
    assert_eq!(tj["vector_layers"][1]["fields"]["count"], "Number");
    let b: Vec<f64> = tj["bounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        (b[0] - 106.50).abs() < 1e-9 && (b[2] - 106.531).abs() < 1e-9,
        "{b:?}"
    );
    assert!(tj["center"][0].as_f64().unwrap() > b[0] && tj["center"][2] == 13);

    let dir = tempfile::tempdir().unwrap();
    // Styles: every source is ours, and `gl-style-validate` accepts them.
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web");
    let validator = web.join("node_modules/.bin/gl-style-validate");
    if !validator.exists() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&web)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("npm ci in tests/web failed; gl-style-validate may be missing");
        }
    }
    for name in ["network", "risk"] {
        let (s, style) = json_of(get(&app, &format!("/styles/{name}.json"), None).await).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(style["version"], 8);
        let text = style.to_string();
        for url in text.split('"').filter(|t| t.starts_with("http")) {
            assert!(
                url.starts_with(&format!("http://{}/", app.addr)),
                "outside URL {url}"
            );
        }
        // The style's TileJSON resolves.
        let src = style["sources"]["lifeline"]["url"].as_str().unwrap();
        let path = src.trim_start_matches(&format!("http://{}", app.addr));
        assert_eq!(get(&app, path, None).await.status(), StatusCode::OK);
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(&style).unwrap()).unwrap();
        if validator.exists() {
            let out = Command::new(&validator).arg(&file).output().unwrap();
            assert!(
                out.status.success() && out.stdout.is_empty(),
                "gl-style-validate {name}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            eprintln!(
                "skipping gl-style-validate: tests/web/node_modules missing (npm ci in tests/web)"
            );
        }
    }

    // GDAL's MVT driver over HTTP (GDAL 3.6.2 quirks: see gdal_reads_tiles_over_http).
    if tool("ogrinfo", "--version") {
        let meta = dir.path().join("pipelines.json");
        let tj = get(&app, "/tiles/pipelines.json", None)
            .await
            .bytes()
            .await
            .unwrap();
        std::fs::write(&meta, &tj).unwrap();
        let report = ogrinfo(
            &app,
            "pipelines",
            &[format!("METADATA_FILE={}", meta.display())],
        );
        assert_layer(&report, "pipelines", 5, &["kind: String"]);
        // Without METADATA_FILE GDAL looks for metadata.json beside the zoom directory.
        let report = ogrinfo(&app, "pipelines,grid_cells", &[]);
        assert_layer(&report, "pipelines", 5, &["kind: String"]);
        assert_layer(&report, "grid_cells", 2, &["name: String", "level: String"]);
    } else {
        eprintln!("skipping the GDAL check: ogrinfo not installed (apt-get install gdal-bin)");
    }

    // The mvt-reader crate decodes our tiles too.
    let bytes = get(
        &app,
        &tile_path("pipelines,grid_cells", pipe_tile(14)),
        Some(Role::Analyst),
    )
    .await
    .bytes()
    .await
    .unwrap();
    let reader = mvt_reader::Reader::new(bytes.to_vec()).expect("mvt-reader parses the tile");
    let names: Vec<String> = reader.get_layer_names().unwrap();
    assert_eq!(names, ["pipelines", "grid_cells"]);
    let feats = reader.get_features(0).unwrap();
    assert_eq!(feats.len(), 2);
    for f in &feats {
        assert!(matches!(
            f.geometry,
            geo_types::Geometry::LineString(_) | geo_types::Geometry::MultiLineString(_)
        ));
        let props = f.properties.as_ref().unwrap();
        assert!(
            props.contains_key("kind") && props.contains_key("material"),
            "{props:?}"
        );
    }
    for f in reader.get_features(1).unwrap() {
        assert!(matches!(
            f.geometry,
            geo_types::Geometry::Polygon(_) | geo_types::Geometry::MultiPolygon(_)
        ));
    }
    app.stop().await;
}
every_backend!(tilejson_styles_and_outside_validators);

/// `ogrinfo -ro -al -so MVT:http://…/tiles/{layers}/14 -oo TILE_EXTENSION=mvt …`.
///
/// What GDAL 3.6.2's MVT driver does with a directory URL (checked by this test):
/// (1) it asks for `{z}/{x}/{y}.pbf` unless told `-oo TILE_EXTENSION=mvt` (we serve both);
/// (2) it enumerates every tile of that zoom inside the metadata's bounds and reads each,
/// so empty tiles must not be errors (our 204 reads as an empty tile; a 404 would not);
/// (3) it takes layers and field types from `-oo METADATA_FILE=`, and accepts our TileJSON
/// there as it is (it reads a root-level `vector_layers` when there is no MBTiles `json`
/// string), but only from a local file, so the TileJSON is downloaded first; (4) without
/// METADATA_FILE it fetches `metadata.json` beside the zoom directory, which we serve in
/// the MBTiles shape at `/tiles/{layers}/metadata.json`; (5) without `tilestats` it reports
/// the geometry type as "Unknown (any)".
fn ogrinfo(app: &TestApp, layers: &str, extra: &[String]) -> String {
    let mut cmd = Command::new("ogrinfo");
    cmd.args(["-ro", "-al", "-so"])
        .arg(format!("MVT:http://{}/tiles/{layers}/14", app.addr))
        .args(["-oo", "TILE_EXTENSION=mvt", "-oo", "CLIP=NO"]);
    for e in extra {
        cmd.args(["-oo", e]);
    }
    let out = cmd.output().expect("run ogrinfo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ogrinfo failed: {text}");
    text
}

/// Asserts `ogrinfo -so` reports `layer` with at least `min` features and the fields.
fn assert_layer(report: &str, layer: &str, min: usize, fields: &[&str]) {
    let start = report
        .find(&format!("Layer name: {layer}\n"))
        .unwrap_or_else(|| panic!("no layer {layer} in {report}"));
    let section = &report[start..];
    let end = section[1..]
        .find("Layer name:")
        .map_or(section.len(), |i| i + 1);
    let section = &section[..end];
    let count: usize = section
        .lines()
        .find_map(|l| l.strip_prefix("Feature Count: "))
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or_else(|| panic!("no feature count in {section}"));
    assert!(count >= min, "{layer}: {count} features < {min}: {section}");
    for f in fields {
        assert!(section.contains(f), "{layer}: no field {f} in {section}");
    }
}

/// Same feature ids per tile as PostGIS's `ST_AsMVT` on the same rows at z ≥ 14, and
/// decoded geometries within one tile unit of PostGIS's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential_against_postgis_st_asmvt() {
    let app = TestApp::start(Backend::Postgis).await;
    // More rows than the fixtures: random pipes (some crossing tile edges) and risk areas.
    let extra = random_rows(400, 7);
    let r = app
        .req(Method::POST, "/bulk", Some(Role::Operator))
        .json(&extra)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let (client, conn) = tokio_postgres::connect(&app.store_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let queries = [
        ("pipelines", "SELECT id, geom FROM pipelines"),
        ("risk_points", "SELECT id, geom FROM risk_points"),
        ("sensors", "SELECT id, location AS geom FROM sensors"),
        // Grid levels by zoom, as in tiles.toml (every fixture cell shows from z14).
        ("grid_cells", "SELECT id, geom FROM grid_cells"),
    ];
    let mut compared = 0;
    for z in [14u8, 15, 16, 17] {
        let a = TileCoord::from_lonlat(106.495, 29.535, z).unwrap();
        let b = TileCoord::from_lonlat(106.535, 29.495, z).unwrap();
        let step = ((b.x() - a.x()) / 4).max(1);
        for x in (a.x()..=b.x()).step_by(step as usize) {
            for y in (a.y()..=b.y()).step_by(step as usize) {
                let t = TileCoord::new(u32::from(z), x, y).unwrap();
                for (layer, rows) in queries {
                    // Sensors cluster below z15 (a documented generalisation).
                    if layer == "sensors" && z < 15 {
                        continue;
                    }
                    let sql = format!(
                        "WITH env AS (SELECT ST_TileEnvelope($1::int, $2::int, $3::int) AS e),
                         src AS ({rows}),
                         q AS (SELECT src.id, ST_AsMVTGeom(ST_Transform(src.geom, 3857), env.e, 4096, 64, true) AS g
                               FROM src, env
                               WHERE ST_Transform(src.geom, 3857) && ST_Expand(env.e, (ST_XMax(env.e) - ST_XMin(env.e)) * 64 / 4096))
                         SELECT ST_AsMVT(q, '{layer}', 4096, 'g', 'id') FROM q WHERE g IS NOT NULL"
                    );
                    let row = client
                        .query_one(&sql, &[&i32::from(z), &(x as i32), &(y as i32)])
                        .await
                        .unwrap();
                    let theirs: Vec<u8> = row.get(0);
                    let theirs = decode_tile(&theirs).expect("PostGIS tile decodes");
                    let r = get(&app, &tile_path(layer, t), None).await;
                    let ours = if r.status() == StatusCode::NO_CONTENT {
                        DecodedTile::default()
                    } else {
                        decode_tile(&r.bytes().await.unwrap()).unwrap()
                    };
                    assert_eq!(ids(&ours, layer), ids(&theirs, layer), "{layer} tile {t}");
                    if let (Some(o), Some(p)) = (ours.layer(layer), theirs.layer(layer)) {
                        for f in &o.features {
                            let g = p.features.iter().find(|g| g.id == f.id).unwrap();
                            let d = hausdorff(&f.geometry.to_geo(), &g.geometry.to_geo());
                            assert!(
                                d <= 1.0 + 1e-9,
                                "{layer} {t} id {:?}: {d} tile units apart:\nours {:?}\nPostGIS {:?}",
                                f.id,
                                f.geometry.to_geo(),
                                g.geometry.to_geo()
                            );
                            compared += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(compared > 200, "only {compared} features compared");
    app.stop().await;
}

fn hausdorff(a: &geo::Geometry<f64>, b: &geo::Geometry<f64>) -> f64 {
    use geo::{Coord, CoordsIter, Distance, Euclidean};
    // Each vertex inside the tile proper to the other geometry, both ways. Vertices in the
    // buffer are left out: where a line leaves the buffer at a shallow angle, PostGIS's
    // simplify-then-clip and our clip-then-simplify put the cut point a few units apart
    // along the buffer edge, outside what is drawn.
    let inside = |c: &Coord<f64>| (0.0..=4096.0).contains(&c.x) && (0.0..=4096.0).contains(&c.y);
    let one_way = |x: &geo::Geometry<f64>, y: &geo::Geometry<f64>| {
        x.coords_iter()
            .filter(inside)
            .map(|c: Coord<f64>| Euclidean.distance(&geo::Point(c), y))
            .fold(0.0, f64::max)
    };
    one_way(a, b).max(one_way(b, a))
}

/// Random rows inside the fixtures' street cell: pipes of 2–6 vertices (some long enough to
/// cross z16 tile edges) and polygonal risk areas.
fn random_rows(n: usize, seed: u64) -> Dataset {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut d = Dataset::default();
    for i in 0..n {
        let (mut x, mut y) = (rng.gen_range(106.49..106.53), rng.gen_range(29.49..29.53));
        let k = rng.gen_range(2..7);
        let pts: Vec<(f64, f64)> = (0..k)
            .map(|_| {
                x += rng.gen_range(-0.002..0.002);
                y += rng.gen_range(-0.002..0.002);
                (x, y)
            })
            .collect();
        let mut p = app::fixtures::pipe(
            1000 + i as i64,
            1,
            lifeline::model::PipeKind::WaterSupply,
            0.0,
            0.0,
            0.0,
        );
        p.geometry = geo::LineString::from(pts);
        d.pipelines.push(p);
    }
    for i in 0..40 {
        let (x, y) = (rng.gen_range(106.49..106.53), rng.gen_range(29.49..29.53));
        let s = rng.gen_range(0.0002..0.003);
        let mut r = app::fixtures::dataset().risk_points[0].clone();
        r.id = 100 + i;
        r.geometry = geo::Geometry::Polygon(app::fixtures::square(x, y, s));
        d.risk_points.push(r);
    }
    d
}

/// The service state can be built without HTTP, so a PMTiles export runs over the same
/// store-backed index the server uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pmtiles_export_from_a_store_backed_index() {
    let (store, _url, _dir) = app::fresh_store(Backend::Gpkg).await;
    store
        .bulk_load(&app::fixtures::dataset(), &Actor::cli())
        .await
        .unwrap();
    let state = lifeline::AppState::with_store(
        store,
        lifeline::config::Config::default(),
        app::test_clock(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixtures.pmtiles");
    let layers = lifeline::tileserver::LayerSet::of(&[Layer::GridCells, Layer::Pipelines]);
    let report =
        lifeline::tileserver::pmtiles::export(&state.index, &layers, 8, 15, &path, false).unwrap();
    assert!(
        report.tiles_written > 0 && report.file_bytes > 127,
        "{report}"
    );
    let mut r = lifeline::tileserver::pmtiles::Reader::open(&path).unwrap();
    let t = pipe_tile(15);
    let tile = decode_tile(
        &r.tile(15, t.x(), t.y())
            .unwrap()
            .expect("the pipe tile is in the archive"),
    )
    .unwrap();
    assert_eq!(ids(&tile, "pipelines"), [1, 2]);
}
