//! The web client end to end, judged by a real browser: the real server on port 0 over a
//! GeoPackage holding the `jiulongpo` preset, and `node tests/web/e2e.mjs <url>` driving
//! Debian's headless chromium through it with playwright-core (no browser download).
//! The script checks rendering (queryRenderedFeatures), login and roles, navigation,
//! the excavation check and owner responses, live alarms (from the ingest API and from
//! `lifeline simulate`, the real binary), frame times while panning, and (issue 18) the
//! first view holding the whole network, the 3D underground view of a checked dig (tubes
//! at their projected depth, by pixels), the cross-section against the API's depths, a
//! viewer's depth-free 3D view, and frame times while orbiting the densest 500 m in 3D;
//! then, against a
//! second server over the same store configured with a raster basemap in GCJ-02 (served
//! by a local tile listener here — nothing comes from the internet), that the basemap is
//! drawn under our layers and that features are drawn at their GCJ-02 position. It writes
//! screenshots and `report.json` into `target/web-artifacts/`. This test fails when the
//! script does.
//!
//! Needs: node and npm, /usr/bin/chromium (both installed by `scripts/setup.sh`), and the
//! web client built (`web/vendor/`, done by setup.sh; done here too when missing).

mod app;

use lifeline::generate::{GenerateOptions, Preset};
use lifeline::model::{Actor, Dataset, Role, SensorKind, SensorStatus};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The colour of the test basemap's tiles (a sand tone no style of ours uses).
const BASEMAP_RGB: [u8; 3] = [236, 222, 190];

/// A 256×256 PNG of one colour with a darker one-pixel border (so the tile grid shows in
/// screenshots): truecolour, 8 bits, zlib by flate2, CRCs by flate2's CRC-32.
fn png_tile(rgb: [u8; 3]) -> Vec<u8> {
    use std::io::Write;
    let n = 256usize;
    let mut raw = Vec::with_capacity(n * (1 + 3 * n));
    for y in 0..n {
        raw.push(0); // filter: none
        for x in 0..n {
            let edge = x == 0 || y == 0;
            raw.extend(rgb.map(|c| if edge { c - 40 } else { c }));
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).expect("deflate");
    let idat = z.finish().expect("deflate");
    let mut ihdr = Vec::new();
    ihdr.extend((n as u32).to_be_bytes());
    ihdr.extend((n as u32).to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // depth 8, truecolour, deflate, no filter method, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", &idat), (b"IEND", &[])] {
        png.extend((data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        png.extend(kind);
        png.extend(data);
        png.extend(crc.sum().to_be_bytes());
    }
    png
}

/// A raster tile server on port 0 standing in for a commercial basemap: every
/// `/{z}/{x}/{y}.png` is [`png_tile`], with CORS (MapLibre fetches tiles cross-origin).
/// Returns its address and the number of tiles served.
async fn basemap_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    use axum::http::header;
    let served = Arc::new(AtomicUsize::new(0));
    let png = bytes::Bytes::from(png_tile(BASEMAP_RGB));
    let count = served.clone();
    let app = axum::Router::new().route(
        "/{z}/{x}/{y}",
        axum::routing::get(move || {
            count.fetch_add(1, Ordering::SeqCst);
            let png = png.clone();
            async move {
                (
                    [
                        (header::CONTENT_TYPE, "image/png"),
                        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                    ],
                    png,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("basemap server") });
    (addr, served)
}

/// Starts the service over `store` with `config` on port 0: its URL and the stop handle.
async fn serve(
    store: lifeline::store::SharedStore,
    config: lifeline::config::Config,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let state = lifeline::AppState::with_store(store, config, app::test_clock())
        .await
        .expect("state");
    let (addr, tx, server) = app::serve(state).await;
    (format!("http://{addr}"), tx, server)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `npm ci` (and the build, for web/) where the installed packages are missing.
fn ensure_npm(dir: &Path, marker: &str, build: bool) {
    if !dir.join(marker).exists() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "npm ci in {} failed", dir.display());
    }
    if build {
        let ok = Command::new("npm")
            .args(["run", "build"])
            .current_dir(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "npm run build in {} failed", dir.display());
    }
}

/// What the script pushes through `POST /sensors/readings` to raise an alarm
/// (`LIFELINE_E2E_ALARM`): an online gas detector of the data set, and two readings of
/// 40 %LEL 20 s apart — above the emergency threshold of data/sensor_kinds.toml (35) for
/// longer than its `min_duration_s` (data/rules/alarms.toml). The script stamps them
/// relative to the moment it posts them.
fn alarm_push(data: &Dataset) -> Option<Value> {
    let s = data
        .sensors
        .iter()
        .find(|s| s.kind == SensorKind::GasLel && s.status == SensorStatus::Online)?;
    Some(json!({
        "sensor_id": s.id,
        "at": [s.location.x(), s.location.y()],
        "readings": [{"dt_s": -20, "value": 40.0}, {"dt_s": 0, "value": 40.0}],
    }))
}

/// The gas detector `lifeline simulate --leak-now` leaks at (`LIFELINE_E2E_LEAK`): another
/// online one than [`alarm_push`]'s, so its alarm is a new one.
fn leak_sensor(data: &Dataset) -> Option<Value> {
    let s = data
        .sensors
        .iter()
        .filter(|s| s.kind == SensorKind::GasLel && s.status == SensorStatus::Online)
        .nth(1)?;
    Some(json!({"sensor_id": s.id, "at": [s.location.x(), s.location.y()]}))
}

/// A point risk point and where GCJ-02 puts it (`LIFELINE_E2E_GCJ`), by the service's own
/// function, for the GCJ-02 checks in the browser.
fn gcj_probe(data: &Dataset) -> Option<Value> {
    let r = data
        .risk_points
        .iter()
        .find(|r| matches!(r.geometry, geo::Geometry::Point(_)))?;
    let geo::Geometry::Point(p) = r.geometry else {
        return None;
    };
    let (gx, gy) = lifeline::model::datum::wgs84_to_gcj02(p.x(), p.y());
    Some(json!({"id": r.id, "cgcs": [p.x(), p.y()], "gcj": [gx, gy]}))
}

/// The centre of the densest 500 m × 500 m window of the data set (`LIFELINE_E2E_DENSE`):
/// pipe length per cell of a 500 m grid (each segment counted in the cell of its middle),
/// for the 3D view's frame-time measurement.
fn densest_window(data: &Dataset) -> Option<Value> {
    let lat0 = data.pipelines.first()?.geometry.0.first()?.y;
    let ky = 110_574.0;
    let kx = 111_320.0 * lat0.to_radians().cos();
    let cell = |x: f64, y: f64| {
        (
            (x * kx / 500.0).floor() as i64,
            (y * ky / 500.0).floor() as i64,
        )
    };
    let mut length: HashMap<(i64, i64), f64> = HashMap::new();
    for p in &data.pipelines {
        for w in p.geometry.0.windows(2) {
            let (a, b) = (w[0], w[1]);
            let key = cell((a.x + b.x) / 2.0, (a.y + b.y) / 2.0);
            *length.entry(key).or_default() += ((b.x - a.x) * kx).hypot((b.y - a.y) * ky);
        }
    }
    let ((cx, cy), _) = length
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
    Some(json!([
        (cx as f64 + 0.5) * 500.0 / kx,
        (cy as f64 + 0.5) * 500.0 / ky
    ]))
}

/// `GET /me`, which the client's login uses: the role of a key, 401 for a bad one, the
/// anonymous role without one (or 401 when anonymous access is off).
async fn me_tells_the_client_its_role(backend: app::Backend) {
    let app = app::TestApp::start(backend).await;
    let get = |key: Option<&str>| {
        let b = app.client.get(app.url("/me"));
        let b = match key {
            Some(k) => b.bearer_auth(k),
            None => b,
        };
        async move {
            let r = b.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    let (s, v) = get(Some(&app.keys[&Role::Operator])).await;
    assert_eq!(s, 200);
    assert_eq!(v["role"], "operator");
    assert_eq!(v["name"], "test-operator");
    assert_eq!(v["authenticated"], true);
    assert_eq!(
        v["roles"],
        json!(["viewer", "contractor", "analyst", "operator"])
    );
    let (s, v) = get(None).await;
    assert_eq!((s, v["role"].as_str()), (200, Some("viewer")));
    assert_eq!(v["authenticated"], false);
    let (s, v) = get(Some("ll_0000000000000000000000000000000000000000")).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["status"], 401);
    app.stop().await;

    let closed = app::TestApp::start_with(backend, None, false).await;
    let r = closed.client.get(closed.url("/me")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = closed
        .req(reqwest::Method::GET, "/me", Some(Role::Contractor))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["role"], "contractor");
    closed.stop().await;
}
both_backends!(me_tells_the_client_its_role);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_client_end_to_end_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run `bash scripts/setup.sh` (apt package chromium)"
    );
    ensure_npm(
        &root().join("web"),
        "node_modules/@deck.gl/mapbox/package.json",
        true,
    );
    ensure_npm(
        &root().join("tests/web"),
        "node_modules/playwright-core/package.json",
        false,
    );

    // The district preset: the size the frame-time goal is stated for.
    let (data, report) = tokio::task::spawn_blocking(|| {
        lifeline::generate::generate(&GenerateOptions {
            preset: Preset::Jiulongpo,
            seed: 42,
            progress: false,
        })
    })
    .await
    .expect("join")
    .expect("generate jiulongpo");
    eprintln!("generated {report}");
    let (store, store_url, _dir) = app::fresh_store(app::Backend::Gpkg).await;
    store
        .bulk_load(&data, &Actor::cli())
        .await
        .expect("load jiulongpo");
    let mut keys = HashMap::new();
    for role in Role::ALL {
        let key = lifeline::auth::generate_key();
        store
            .create_api_key(
                &format!("e2e-{role}"),
                *role,
                &lifeline::auth::hash_key(&key),
                &Actor::cli(),
            )
            .await
            .expect("create key");
        keys.insert(role.as_str().to_string(), key);
    }
    let config = lifeline::config::Config {
        store_url,
        anonymous_role: Some(Role::Viewer),
        web_dir: root().join("web"),
        http: lifeline::config::HttpLimits::default().without_rate_limits(),
        ..lifeline::config::Config::default()
    };
    // The second instance: the same store, with a raster basemap in GCJ-02.
    let (basemap, basemap_tiles) = basemap_server().await;
    let gcj_config = lifeline::config::Config {
        basemap: Some(lifeline::config::Basemap {
            url: format!("http://{basemap}/{{z}}/{{x}}/{{y}}.png"),
            attribution: "测试底图 (GCJ-02)".into(),
            datum: lifeline::model::datum::Datum::Gcj02,
            tile_size: 256,
            max_zoom: 18,
        }),
        ..config.clone()
    };
    let (url, tx, server) = serve(store.clone(), config).await;
    let (gcj_url, gcj_tx, gcj_server) = serve(store.clone(), gcj_config).await;

    let artefacts = root().join("target/web-artifacts");
    let alarm = alarm_push(&data);
    let leak = leak_sensor(&data);
    let probe = gcj_probe(&data);
    let dense = densest_window(&data);
    let script = root().join("tests/web/e2e.mjs");
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .arg(url)
            .current_dir(root())
            .env("LIFELINE_E2E_KEYS", json!(keys).to_string())
            .env("LIFELINE_E2E_ARTIFACTS", &artefacts)
            .env("LIFELINE_E2E_FRAMES", "1")
            .env("LIFELINE_BIN", env!("CARGO_BIN_EXE_lifeline"))
            .env("LIFELINE_E2E_GCJ_URL", gcj_url)
            .env("LIFELINE_E2E_BASEMAP", format!("http://{basemap}"))
            .env("LIFELINE_E2E_BASEMAP_RGB", json!(BASEMAP_RGB).to_string())
            .env("CHROMIUM", chromium);
        for (name, v) in [
            ("LIFELINE_E2E_ALARM", alarm),
            ("LIFELINE_E2E_LEAK", leak),
            ("LIFELINE_E2E_GCJ", probe),
            ("LIFELINE_E2E_DENSE", dense),
        ] {
            if let Some(v) = v {
                cmd.env(name, v.to_string());
            }
        }
        cmd.output().expect("run node")
    })
    .await
    .expect("join");
    let _ = tx.send(());
    let _ = gcj_tx.send(());
    let _ = server.await;
    let _ = gcj_server.await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the web end-to-end script failed:\n{stdout}"
    );
    // The script must have judged something: the rendering checks always run.
    assert!(
        stdout.contains("ok   network view: queryRenderedFeatures finds pipelines")
            && stdout.contains("ok   risk view: queryRenderedFeatures finds risk points")
            && stdout.contains("ok   no console errors"),
        "{stdout}"
    );
    for check in [
        "ok   an alarm raised by `lifeline simulate` appears on the map within 2 s",
        "ok   an operator records owner responses in the excavation view",
        "ok   basemap: a configured raster basemap is drawn under our layers",
        "ok   GCJ-02: features are drawn at their GCJ-02 position",
        "ok   frame times while panning",
        "ok   first view: the whole network is on screen (map bounds and pixels)",
        "ok   the last view is kept per browser",
        "ok   3D: the tubes of a checked dig are drawn at their depth (pixels at the projected positions)",
        "ok   cross-section: the SVG lists the pipes crossing the line in order, with the depths of the API",
        "ok   3D and cross-section for a viewer: no depth anywhere",
        "ok   a contractor sees the excavation view but no analyst attributes or alarm actions, and their dig in 3D at the check's depths only",
        "ok   frame times while orbiting the 3D view over the densest 500 m",
        "ok   nothing fetched from outside the service",
    ] {
        assert!(stdout.contains(check), "missing: {check}\n{stdout}");
    }
    assert!(
        basemap_tiles.load(Ordering::SeqCst) > 0,
        "the browser fetched no basemap tile"
    );
}

/// `?datum=gcj02` on tile URLs: vertices moved by the service's GCJ-02 function, cached
/// under their own key, invalidated by writes like the CGCS2000 tiles; a bad datum is a
/// 400 naming it; `/client-config` has no basemap by default.
async fn gcj02_tiles_over_http(backend: app::Backend) {
    use lifeline_tiles::tilemath::mercator_to_lonlat;
    use lifeline_tiles::{decode_tile, TileCoord};
    let app = app::TestApp::start(backend).await;
    let get = |path: String| {
        let r = app.client.get(app.url(&path));
        async move { r.send().await.expect("request") }
    };
    // Where a tile's point feature `id` of `layer` lies, lon/lat.
    let position = |bytes: &[u8], t: TileCoord, layer: &str, id: u64| -> Option<(f64, f64)> {
        let tile = decode_tile(bytes).expect("MVT");
        let l = tile.layer(layer)?;
        let f = l.features.iter().find(|f| f.id == Some(id))?;
        let p = f.geometry.points()[0];
        let m = t.bounds_mercator();
        let e = f64::from(l.extent);
        let c = mercator_to_lonlat(
            m.min().x + f64::from(p.x) / e * m.width(),
            m.max().y - f64::from(p.y) / e * m.height(),
        );
        Some((c.x, c.y))
    };
    let r = get("/features/risk_points/1".into()).await;
    let mut feature: Value = r.json().await.unwrap();
    let at = feature["geometry"]["coordinates"].clone();
    let (lon, lat) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
    let (glon, glat) = lifeline::model::datum::wgs84_to_gcj02(lon, lat);
    // Hundreds of metres in Chongqing.
    assert!((glon - lon).abs() > 1e-3 && (glat - lat).abs() > 1e-3);
    let t = TileCoord::from_lonlat(glon, glat, 17).unwrap();
    let path = format!("/tiles/risk_points/17/{}/{}.mvt", t.x(), t.y());
    let r = get(format!("{path}?datum=gcj02")).await;
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let (x, y) = position(&r.bytes().await.unwrap(), t, "risk_points", 1).expect("in the tile");
    // One tile unit at z17 is ~7e-8°.
    assert!(
        (x - glon).abs() < 3e-7 && (y - glat).abs() < 3e-7,
        "({x},{y}) against ({glon},{glat})"
    );
    // The same z/x/y in CGCS2000 is another tile body: the point is not where GCJ-02 puts it.
    let plain = get(path.clone()).await;
    assert_ne!(
        plain.headers().get("etag").map(|v| v.to_str().unwrap()),
        Some(etag.as_str())
    );
    if plain.status() == 200 {
        let b = plain.bytes().await.unwrap();
        assert!(position(&b, t, "risk_points", 1).is_none_or(|(x, _)| (x - glon).abs() > 1e-4));
    }
    // Cached: the same ETag again.
    let r = get(format!("{path}?datum=gcj02")).await;
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);

    // Move the point 20 m east: the cached GCJ-02 tile follows.
    feature["geometry"]["coordinates"] = json!([lon + 0.0002, lat]);
    let r = app
        .req(
            reqwest::Method::PUT,
            "/features/risk_points/1",
            Some(Role::Operator),
        )
        .json(&feature)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (glon2, glat2) = lifeline::model::datum::wgs84_to_gcj02(lon + 0.0002, lat);
    let t2 = TileCoord::from_lonlat(glon2, glat2, 17).unwrap();
    let r = get(format!(
        "/tiles/risk_points/17/{}/{}.mvt?datum=gcj02",
        t2.x(),
        t2.y()
    ))
    .await;
    let (x, y) = position(&r.bytes().await.unwrap(), t2, "risk_points", 1).expect("moved");
    assert!((x - glon2).abs() < 3e-7 && (y - glat2).abs() < 3e-7);
    if t2 == t {
        let r = get(format!("{path}?datum=gcj02")).await;
        assert_ne!(
            r.headers()["etag"].to_str().unwrap(),
            etag,
            "stale GCJ-02 tile"
        );
    }

    // Bad input: a 400 naming the problem.
    let r = get(format!("{path}?datum=bd09")).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("bd09"),
        "{v}"
    );
    let r = get(format!(
        "/tiles/grid_stats/17/{}/{}.mvt?datum=gcj02",
        t.x(),
        t.y()
    ))
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = get("/client-config".into()).await.json().await.unwrap();
    assert_eq!(v, json!({"basemap": null}));
    app.stop().await;
}
both_backends!(gcj02_tiles_over_http);
