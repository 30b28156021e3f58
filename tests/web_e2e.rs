//! The web client end to end, judged by a real browser: the real server on port 0 over a
//! GeoPackage holding the `jiulongpo` preset, and `node tests/web/e2e.mjs <url>` driving
//! Debian's headless chromium through it with playwright-core (no browser download).
//! The script checks rendering (queryRenderedFeatures), login and roles, navigation,
//! the excavation check, live alarms and frame times while panning; it writes screenshots
//! and `report.json` into `target/web-artifacts/`. This test fails when the script does.
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
        "node_modules/maplibre-gl/package.json",
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
        ..lifeline::config::Config::default()
    };
    let state = lifeline::AppState::with_store(store.clone(), config)
        .await
        .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        lifeline::run(listener, state, async {
            let _ = rx.await;
        })
        .await
        .expect("server");
    });

    let artefacts = root().join("target/web-artifacts");
    let alarm = alarm_push(&data);
    let script = root().join("tests/web/e2e.mjs");
    let url = format!("http://{addr}");
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .arg(url)
            .current_dir(root())
            .env("LIFELINE_E2E_KEYS", json!(keys).to_string())
            .env("LIFELINE_E2E_ARTIFACTS", &artefacts)
            .env("LIFELINE_E2E_FRAMES", "1")
            .env("CHROMIUM", chromium);
        if let Some(a) = alarm {
            cmd.env("LIFELINE_E2E_ALARM", a.to_string());
        }
        cmd.output().expect("run node")
    })
    .await
    .expect("join");
    let _ = tx.send(());
    let _ = server.await;
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
}
