//! What an operator runs the service with (issue 17 §3): `/metrics` judged by Prometheus'
//! own `promtool check metrics`, the connection limits (a header timeout that closes
//! half-open and idle connections, a cap on connections served at once), the service's JSON
//! errors for oversized request targets and heads, and per-key rate limits with 429 and
//! `Retry-After`. Real servers on port 0 over real stores.

mod app;

use app::{Backend, TestApp};
use lifeline::model::Role;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The samples of a text exposition: `name{labels}` → value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The value of the one sample whose name and labels contain every part of `parts`.
fn sample(all: &HashMap<String, f64>, name: &str, parts: &[&str]) -> Option<f64> {
    let found: Vec<f64> = all
        .iter()
        .filter(|(k, _)| k.split('{').next() == Some(name) && parts.iter().all(|p| k.contains(p)))
        .map(|(_, v)| *v)
        .collect();
    assert!(found.len() <= 1, "{name} {parts:?} is ambiguous: {found:?}");
    found.first().copied()
}

async fn metrics_text(app: &TestApp) -> String {
    let r = app.req(Method::GET, "/metrics", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

/// `promtool check metrics` (Debian's prometheus package) reads the scrape from stdin and
/// lints it: exit 0 and no output only for a well-formed exposition that follows the
/// naming rules.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt install prometheus; scripts/setup.sh --tests does)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n---\n{text}"
    );
}

async fn metrics_count_what_happened(backend: Backend) {
    let app = TestApp::start(backend).await;
    // A tile twice (a miss, then a hit), a 404, and a batch of readings with one bad item.
    for _ in 0..2 {
        let r = app
            .req(Method::GET, "/tiles/pipelines/14/13039/6788.mvt", None)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let r = app
        .req(Method::GET, "/no/such/thing", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let sensors: Value = app
        .req(Method::GET, "/features/sensors", Some(Role::Admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sensor = sensors["features"][0]["id"].as_i64().expect("a sensor");
    let now = app::now().timestamp_millis();
    let batch = serde_json::json!([
        {"sensor_id": sensor, "time": now, "value": 1.0},
        {"sensor_id": -5, "time": now, "value": 1.0}
    ]);
    let r = app
        .req(Method::POST, "/sensors/readings", Some(Role::Operator))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    let text = metrics_text(&app).await;
    promtool_accepts(&text);
    let m = samples(&text);
    // The recorder is per process: other tests' servers count into it too, so counts are
    // at least this test's own.
    // The tile route by its template (the tile here is empty: 204), whatever the status.
    let tiles: f64 = m
        .iter()
        .filter(|(k, _)| {
            k.starts_with("lifeline_http_requests_total{")
                && k.contains("route=\"/tiles/{layers}/{z}/{x}/{file}\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert!(tiles >= 2.0, "{text}");
    assert!(
        sample(
            &m,
            "lifeline_http_requests_total",
            &["route=\"unmatched\"", "status=\"404\""]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        sample(
            &m,
            "lifeline_http_request_duration_seconds_count",
            &["route=\"/tiles/{layers}/{z}/{x}/{file}\""]
        )
        .is_some()
            || text.contains("lifeline_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(sample(&m, "lifeline_tile_cache_requests_total", &["hit"]).unwrap() >= 1.0);
    assert!(sample(&m, "lifeline_tile_cache_requests_total", &["miss"]).unwrap() >= 1.0);
    assert!(sample(&m, "lifeline_tile_cache_bytes", &[]).unwrap() > 0.0);
    assert!(sample(&m, "lifeline_readings_total", &["stored"]).unwrap() >= 1.0);
    assert!(sample(&m, "lifeline_readings_total", &["rejected"]).unwrap() >= 1.0);
    // Index sizes are this server's own: the last scrape wrote them.
    let ready: Value = app
        .req(Method::GET, "/ready", None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pipelines = ready["index"]["counts"]["pipelines"]
        .as_f64()
        .unwrap_or_else(|| panic!("{ready}"));
    assert_eq!(
        sample(&m, "lifeline_index_features", &["layer=\"pipelines\""]),
        Some(pipelines)
    );
    for severity in ["notice", "alarm", "emergency"] {
        assert!(
            sample(&m, "lifeline_alarms_open", &[&format!("\"{severity}\"")]).is_some(),
            "{severity}: {text}"
        );
    }
    assert!(sample(&m, "lifeline_notifications", &["pending"]).is_some());
    let max = sample(&m, "lifeline_store_connections", &["state=\"max\""]).unwrap();
    let open = sample(&m, "lifeline_store_connections", &["state=\"open\""]).unwrap();
    assert!(max >= 1.0 && open <= max, "{text}");
    assert!(sample(&m, "lifeline_follower_rounds_total", &[]).unwrap() >= 1.0);
    assert!(sample(&m, "lifeline_follower_lag_seconds", &[]).is_some());
    dashboard_queries_exist(&m);
    app.stop().await;
}

/// Every metric the shipped Grafana dashboard (docs/grafana-dashboard.json) queries is one
/// the service exports, so the dashboard cannot drift from the code.
fn dashboard_queries_exist(m: &HashMap<String, f64>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let names: std::collections::HashSet<&str> =
        m.keys().filter_map(|k| k.split('{').next()).collect();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("lifeline_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    names.contains(name.as_str()),
                    "the dashboard queries {name}, which /metrics does not export ({expr})"
                );
                queried += 1;
                rest = &rest[at + name.len()..];
            }
        }
    }
    assert!(queried >= 10, "{queried}");
}
every_backend!(metrics_count_what_happened);

/// Opens a connection and sends a request head without its end, as a slow or hostile
/// client would.
async fn half_open(app: &TestApp) -> TcpStream {
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: lifeline\r\nX-Slow: ")
        .await
        .unwrap();
    s
}

/// Waits until the server closes `s` (reads to EOF, or a reset), for at most `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                // hyper may answer 408 before it closes.
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_and_idle_connections_are_closed_and_others_still_answer() {
    let timeout = Duration::from_secs(3);
    let app = TestApp::start_configured(Backend::Gpkg, Some(Role::Viewer), true, |c| {
        c.http.header_timeout = timeout;
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..300 {
        slow.push(half_open(&app).await);
    }
    // An idle keep-alive connection after one full request.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: lifeline\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    // A normal client is answered while the 300 are still open: it did not wait for them.
    let r = app.req(Method::GET, "/health", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut probe = [0u8; 1];
    let still_open = slow[0].try_read(&mut probe);
    assert!(
        matches!(still_open, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the slow connection was closed before the normal request was answered: {still_open:?}"
    );

    // Then every one of them is closed by the header timeout, the idle one too.
    let margin = timeout + Duration::from_secs(10);
    for s in slow.iter_mut() {
        assert!(
            closed_within(s, margin).await,
            "a half-open connection stayed open"
        );
    }
    assert!(
        closed_within(&mut idle, margin).await,
        "an idle connection stayed open"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_new_connections_until_one_closes() {
    let app = TestApp::start_configured(Backend::Gpkg, Some(Role::Viewer), true, |c| {
        c.http.header_timeout = Duration::from_secs(4);
        c.http.max_connections = 8;
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..8 {
        slow.push(half_open(&app).await);
    }
    // The ninth connection is accepted by the kernel but not served while the eight hold
    // every slot: no answer in a second (an uncapped server answers /health in
    // milliseconds; a loaded machine can only make this pass more easily, never fail it).
    let waiting = tokio::time::timeout(
        Duration::from_secs(1),
        app.req(Method::GET, "/health", None).send(),
    )
    .await;
    assert!(waiting.is_err(), "answered beyond the cap: {waiting:?}");
    // Once the header timeout closes the eight, new connections are served again.
    for s in slow.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(15)).await);
    }
    let r = app.req(Method::GET, "/health", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}

async fn error_of(r: reqwest::Response) -> (StatusCode, Value) {
    let s = r.status();
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{s}: not the JSON error shape ({e}): {text:?}"));
    assert_eq!(
        v["error"]["status"].as_u64(),
        Some(u64::from(s.as_u16())),
        "{v}"
    );
    (s, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_targets_and_heads_get_the_json_error() {
    let app = TestApp::start(Backend::Gpkg).await;
    let long = "a".repeat(20 * 1024);
    let r = app
        .req(Method::GET, &format!("/features/pipelines?x={long}"), None)
        .send()
        .await
        .unwrap();
    let (s, v) = error_of(r).await;
    assert_eq!(s, StatusCode::URI_TOO_LONG);
    assert_eq!(v["error"]["code"], "uri_too_long");
    assert!(v["error"]["message"].as_str().unwrap().contains("16384"));

    let r = app
        .req(Method::GET, "/health", None)
        .header("x-big", "b".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    let (s, v) = error_of(r).await;
    assert_eq!(s, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(v["error"]["code"], "header_fields_too_large");
    // Within the limits, the same requests are answered.
    let r = app
        .req(Method::GET, "/features/pipelines?limit=1", None)
        .header("x-big", "b".repeat(1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_beyond_a_keys_rate_get_429_with_retry_after() {
    let app = TestApp::start_configured(Backend::Gpkg, Some(Role::Viewer), true, |c| {
        c.http.checks_per_minute = 2;
    })
    .await;
    let dig = serde_json::json!({"geometry": {"type": "Point", "coordinates": [106.5, 29.5]},
        "work_type": "manual", "depth_m": 1.0});
    let check = |role: Role| {
        app.req(Method::POST, "/excavation/check", Some(role))
            .json(&dig)
            .send()
    };
    for _ in 0..2 {
        let r = check(Role::Contractor).await.unwrap();
        assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let r = check(Role::Contractor).await.unwrap();
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (s, v) = error_of(r).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(v["error"]["code"], "too_many_requests");
    // Another key has its own bucket; reads are not limited.
    assert_ne!(
        check(Role::Analyst).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let r = app
        .req(Method::GET, "/excavation/rules", Some(Role::Contractor))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}
