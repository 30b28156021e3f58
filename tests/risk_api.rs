//! The risk one map end to end (issue 5) on a real PostGIS and a real GeoPackage: reading
//! ingest and its bad input, thresholds with minimum duration and hysteresis, rate of
//! rise, offline detection, the alarm lifecycle and its permissions, live risk levels,
//! downsampling, grid statistics, coverage and suggested sensors.
//!
//! Fixtures (tests/app/fixtures.rs): risk point 1 (gas_pipe_leak, major) watched by gas
//! sensor 1; risk point 2 (drain_waterlogging, general) watched by level sensor 2; pressure
//! sensor 3 unlinked, ~35 m from risk point 1; both points in street 2 of district 1.

mod app;

use app::{Backend, TestApp};
use chrono::{Duration, SecondsFormat};
use lifeline::model::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn body(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text}));
    (status, v)
}

fn ago(secs: i64) -> String {
    (app::now() - Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn post_readings(app: &TestApp, items: Value) -> (StatusCode, Value) {
    body(
        app.req(Method::POST, "/sensors/readings", Some(Role::Operator))
            .json(&items)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn alarms_of(app: &TestApp, sensor: i64) -> Vec<Value> {
    let (s, v) = body(
        app.req(Method::GET, &format!("/alarms?sensor_id={sensor}"), None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["alarms"].as_array().unwrap().clone()
}

async fn transition(app: &TestApp, id: i64, to: &str, role: Role) -> (StatusCode, Value) {
    body(
        app.req(
            Method::POST,
            &format!("/alarms/{id}/transitions"),
            Some(role),
        )
        .json(&json!({"to": to, "comment": format!("{to} by {role}")}))
        .send()
        .await
        .unwrap(),
    )
    .await
}

/// Raises one threshold alarm on gas sensor 1 and returns it.
async fn raise_gas_alarm(app: &TestApp) -> Value {
    let (s, v) = post_readings(
        app,
        json!([
            {"sensor_id": 1, "time": ago(120), "value": 25.0},
            {"sensor_id": 1, "time": ago(100), "value": 26.0},
        ]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let a = alarms_of(app, 1).await;
    assert_eq!(a.len(), 1, "{a:?}");
    a[0].clone()
}

async fn thresholds_hysteresis_and_live_levels(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Over 20 %LEL for 5 s only: below the 10 s minimum duration, no alarm.
    let (s, v) = post_readings(
        &app,
        json!([
            {"sensor_id": 1, "time": ago(300), "value": 5.0},
            {"sensor_id": 1, "time": ago(290), "value": 25.0, "unit": "%LEL"},
            {"sensor_id": 1, "time": ago(285), "value": 24.0},
        ]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["stored"], 3);
    assert_eq!(v["alarm_changes"], 0);
    assert!(alarms_of(&app, 1).await.is_empty());
    // Still over 11 s after it first crossed: an alarm.
    let (_, v) = post_readings(
        &app,
        json!([{"sensor_id": 1, "time": ago(279), "value": 26.0}]),
    )
    .await;
    assert_eq!(v["alarm_changes"], 1, "{v}");
    let a = alarms_of(&app, 1).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["rule"], "threshold");
    assert_eq!(a[0]["severity"], "alarm");
    assert_eq!(a[0]["status"], "detected");
    assert_eq!(a[0]["risk_point_id"], 1);
    assert!(a[0]["cleared_at"].is_null());
    // 19 is inside the 2 %LEL hysteresis band: still active. 17.5 clears it.
    post_readings(
        &app,
        json!([{"sensor_id": 1, "time": ago(270), "value": 19.0}]),
    )
    .await;
    assert!(alarms_of(&app, 1).await[0]["cleared_at"].is_null());
    post_readings(
        &app,
        json!([{"sensor_id": 1, "time": ago(260), "value": 17.5}]),
    )
    .await;
    let a = alarms_of(&app, 1).await;
    assert_eq!(a.len(), 1, "clearing does not close: people close alarms");
    assert!(!a[0]["cleared_at"].is_null(), "{:?}", a[0]);
    // Over 35 %LEL for 10 s: the same open alarm escalates to emergency.
    post_readings(
        &app,
        json!([
            {"sensor_id": 1, "time": ago(250), "value": 40.0},
            {"sensor_id": 1, "time": ago(240), "value": 41.0},
        ]),
    )
    .await;
    let a = alarms_of(&app, 1).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["severity"], "emergency");
    assert!(a[0]["cleared_at"].is_null());
    let (_, s1) = body(
        app.req(Method::GET, "/sensors/1", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s1["latest"]["value"], 41.0);
    assert_eq!(s1["level"], "emergency");
    assert_eq!(s1["unit"], "%LEL");

    // Water level on sensor 2 rises fast and stays over 1.5 m: threshold and rate-of-rise
    // alarms; risk point 2 (registered general) shows large.
    let (_, before) = body(
        app.req(Method::GET, "/risk/points/2", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(before["level"], "general");
    let (_, v) = post_readings(
        &app,
        json!([
            {"sensor_id": 2, "time": ago(400), "value": 0.3},
            {"sensor_id": 2, "time": ago(340), "value": 1.8},
            {"sensor_id": 2, "time": ago(300), "value": 1.9},
        ]),
    )
    .await;
    assert_eq!(v["alarm_changes"], 2, "{v}");
    let rules: Vec<String> = alarms_of(&app, 2)
        .await
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_string())
        .collect();
    assert!(
        rules.contains(&"threshold".to_string()) && rules.contains(&"rate_of_rise".to_string()),
        "{rules:?}"
    );
    let (_, p) = body(
        app.req(Method::GET, "/risk/points/2", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p["registered_level"], "general");
    assert_eq!(p["level"], "large", "{p}");
    assert_eq!(p["colour"], "orange");
    assert_eq!(p["alarms"].as_array().unwrap().len(), 2);
    assert_eq!(p["sensors"][0]["id"], 2);
    assert_eq!(p["sensors"][0]["latest"]["value"], 1.9);
    assert_eq!(p["responsible_person"], "张伟");
    assert_eq!(p["emergency_plan"], "YA-2024-001");
    let (_, l) = body(
        app.req(Method::GET, "/risk/points?level=large", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let ids: Vec<i64> = l["risk_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![2]);
    let (_, l) = body(
        app.req(
            Method::GET,
            "/risk/points?category=gas_pipe_leak&bbox=106.49,29.49,106.51,29.51",
            None,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(l["risk_points"].as_array().unwrap().len(), 1);
    // Grid statistics roll the street's points up into the district.
    let (_, g) = body(
        app.req(Method::GET, "/risk/grid-stats?level=district", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let cells = g["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0]["id"], 1);
    assert_eq!(cells[0]["risk_points"], 2);
    assert_eq!(cells[0]["major"], 1);
    assert_eq!(cells[0]["large"], 1);
    assert_eq!(cells[0]["open_alarms"], 3);
    assert_eq!(cells[0]["covered"], 2);
    let (_, g) = body(
        app.req(
            Method::GET,
            "/risk/grid-stats?level=street&bbox=106.0,29.0,106.3,29.3",
            None,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(
        g["cells"].as_array().unwrap().is_empty(),
        "no street there: {g}"
    );
    let (_, gj) = body(
        app.req(
            Method::GET,
            "/risk/grid-stats?level=street&format=geojson",
            None,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(gj["type"], "FeatureCollection");
    assert_eq!(gj["features"][0]["geometry"]["type"], "MultiPolygon");
    assert_eq!(gj["features"][0]["properties"]["risk_points"], 2);
    let (_, heat) = body(
        app.req(Method::GET, "/risk/alarm-density", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let weights: Vec<i64> = heat["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["weight"].as_i64().unwrap())
        .collect();
    assert_eq!(
        weights,
        vec![5, 3, 3],
        "emergency gas alarm, two water-level alarms"
    );
    let (_, heat) = body(
        app.req(
            Method::GET,
            "/risk/alarm-density?bbox=106.505,29.505,106.52,29.52",
            None,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(heat["features"].as_array().unwrap().len(), 2);
    let (s, _) = body(
        app.req(Method::GET, "/risk/grid-stats?level=county", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    app.stop().await;
}
every_backend!(thresholds_hysteresis_and_live_levels);

async fn bad_input_is_reported_item_by_item(backend: Backend) {
    let app = TestApp::start(backend).await;
    let future = (app::now() + Duration::hours(2)).to_rfc3339();
    let past = (app::now() - Duration::days(400)).to_rfc3339();
    let t = ago(60);
    let batch = json!([
        {"sensor_id": 3, "time": t, "value": 0.3},
        {"sensor_id": 999, "time": ago(59), "value": 0.3},
        {"sensor_id": 3, "time": future, "value": 0.3},
        {"sensor_id": 3, "time": past, "value": 0.3},
        {"sensor_id": 3, "time": ago(58), "value": "NaN"},
        {"sensor_id": 3, "time": ago(57), "value": null},
        {"sensor_id": 3, "time": ago(56), "value": 55.0},
        {"sensor_id": 3, "time": ago(55), "value": 0.3, "unit": "bar"},
        {"sensor_id": 3, "time": "yesterday", "value": 0.3},
        "not an object",
        {"sensor_id": 3, "time": ago(54), "value": 0.31, "quality": "uncertain"},
    ]);
    let (s, v) = post_readings(&app, batch.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["received"], 11);
    assert_eq!(v["stored"], 2);
    assert_eq!(v["rejected"], 9);
    let items = v["items"].as_array().unwrap();
    let reason = |i: usize| -> String {
        items
            .iter()
            .find(|it| it["index"] == i)
            .map(|it| it["error"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(reason(1).contains("unknown sensor 999"), "{}", reason(1));
    assert!(reason(2).contains("future"), "{}", reason(2));
    assert!(reason(3).contains("past"), "{}", reason(3));
    assert!(reason(4).contains("NaN"), "{}", reason(4));
    assert!(reason(5).contains("null"), "{}", reason(5));
    assert!(reason(6).contains("plausible range"), "{}", reason(6));
    assert!(reason(7).contains("unit"), "{}", reason(7));
    assert!(reason(8).contains("RFC 3339"), "{}", reason(8));
    assert!(reason(9).contains("object"), "{}", reason(9));
    // The same batch again: the two valid readings are duplicates, nothing is stored twice.
    let (s, v) = post_readings(&app, batch).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["stored"], 0);
    assert_eq!(v["duplicates"], 2);
    let (_, r) = body(
        app.req(
            Method::GET,
            "/sensors/3/readings?from=2000-01-01T00:00:00Z",
            None,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r["readings"].as_array().unwrap().len(), 2, "{r}");
    // NDJSON with a broken line: the other lines are stored.
    let nd = format!(
        "{}\n{{broken\n{}\n",
        json!({"sensor_id": 3, "time": ago(30), "value": 0.3}),
        json!({"sensor_id": 3, "time": ago(29), "value": 0.3})
    );
    let (s, v) = body(
        app.req(Method::POST, "/sensors/readings", Some(Role::Operator))
            .header("content-type", "application/x-ndjson")
            .body(nd)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["stored"], 2);
    assert_eq!(v["items"][0]["index"], 1);
    // Only invalid items: 422 with the report.
    let (s, v) = post_readings(
        &app,
        json!([{"sensor_id": 999, "time": ago(1), "value": 1.0}]),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["status"], 422);
    assert_eq!(v["rejected"], 1);
    // Whole-body problems.
    let (s, v) = body(
        app.req(Method::POST, "/sensors/readings", Some(Role::Operator))
            .header("content-type", "application/json")
            .body("{\"sensor_id\": 1}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("array"));
    let (s, _) = post_readings(&app, json!([])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = body(
        app.req(Method::POST, "/sensors/readings", Some(Role::Operator))
            .header("content-type", "text/csv")
            .body("1,2,3")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // A viewer may not ingest.
    let (s, _) = body(
        app.req(Method::POST, "/sensors/readings", Some(Role::Viewer))
            .json(&json!([{"sensor_id": 3, "time": ago(1), "value": 0.3}]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // 100 MB: refused with 413 (or the connection is cut after the answer), nothing stored.
    let big = vec![b' '; 100 * 1024 * 1024];
    let res = app
        .req(Method::POST, "/sensors/readings", Some(Role::Operator))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await;
    if let Ok(r) = res {
        let (s, v) = body(r).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("bytes"));
    }
    let (_, r) = body(
        app.req(
            Method::GET,
            "/sensors/3/readings?from=2000-01-01T00:00:00Z",
            None,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r["readings"].as_array().unwrap().len(), 4, "{r}");
    // Reads: unknown sensor, bad times and widths.
    let (s, _) = body(
        app.req(Method::GET, "/sensors/999", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = body(
        app.req(Method::GET, "/sensors/3/readings?every=5x", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = body(
        app.req(Method::GET, "/sensors/3/readings?from=2025-13-01", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = body(
        app.req(
            Method::GET,
            "/sensors/3/readings?from=2000-01-01T00:00:00Z&every=1s",
            None,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "too many buckets");
    app.stop().await;
}
every_backend!(bad_input_is_reported_item_by_item);

async fn downsampling_gives_min_mean_max_per_bucket(backend: Backend) {
    let app = TestApp::start(backend).await;
    // 120 readings 10 s apart, aligned to a 5-minute boundary an hour ago.
    let start_ms = (app::now() - Duration::hours(1)).timestamp_millis() / 300_000 * 300_000;
    let values: Vec<(i64, f64)> = (0..120)
        .map(|i| (start_ms + i * 10_000, 0.3 + (i % 7) as f64 * 0.01))
        .collect();
    let items: Vec<Value> = values
        .iter()
        .map(|(t, v)| json!({"sensor_id": 3, "time": t, "value": v}))
        .collect();
    let (s, v) = post_readings(&app, Value::Array(items)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["stored"], 120);
    let from = chrono::DateTime::from_timestamp_millis(start_ms)
        .unwrap()
        .to_rfc3339();
    let to = chrono::DateTime::from_timestamp_millis(start_ms + 1_200_000)
        .unwrap()
        .to_rfc3339();
    let url = format!(
        "/sensors/3/readings?from={}&to={}&every=5m",
        urlenc(&from),
        urlenc(&to)
    );
    let (s, v) = body(app.req(Method::GET, &url, None).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let buckets = v["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 4);
    for (i, b) in buckets.iter().enumerate() {
        let inside: Vec<f64> = values
            .iter()
            .filter(|(t, _)| (*t - start_ms) / 300_000 == i as i64)
            .map(|(_, v)| *v)
            .collect();
        let min = inside.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = inside.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mean = inside.iter().sum::<f64>() / inside.len() as f64;
        assert_eq!(b["count"], inside.len());
        assert!((b["min"].as_f64().unwrap() - min).abs() < 1e-9, "{b}");
        assert!((b["max"].as_f64().unwrap() - max).abs() < 1e-9, "{b}");
        assert!((b["mean"].as_f64().unwrap() - mean).abs() < 1e-9, "{b}");
        let bt = chrono::DateTime::parse_from_rfc3339(b["t"].as_str().unwrap()).unwrap();
        assert_eq!(bt.timestamp_millis(), start_ms + i as i64 * 300_000);
    }
    app.stop().await;
}
every_backend!(downsampling_gives_min_mean_max_per_bucket);

/// `GET /sensors/3/readings` with `query` appended: status and body.
async fn history(app: &TestApp, query: &str) -> (StatusCode, Value) {
    let url = format!("/sensors/3/readings?{query}");
    body(app.req(Method::GET, &url, None).send().await.unwrap()).await
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    urlenc(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Buckets of two answers are equal: count, min, max exactly, mean to floating tolerance.
fn same_buckets(a: &Value, b: &Value) {
    let (a, b) = (
        a["buckets"].as_array().unwrap(),
        b["buckets"].as_array().unwrap(),
    );
    assert!(!a.is_empty());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        for k in ["t", "count", "min", "max"] {
            assert_eq!(x[k], y[k], "{x} {y}");
        }
        let (m, n) = (x["mean"].as_f64().unwrap(), y["mean"].as_f64().unwrap());
        assert!((m - n).abs() <= 1e-9 * m.abs().max(1.0), "{x} {y}");
    }
}

/// Issue 16: `every=` answers from the coarsest rollup that fits and says so; a range off
/// the rollup's boundaries falls back to the raw rows; every answer equals `source=raw`'s.
/// The readings are sent twice (the second time as duplicates), which must not count.
async fn history_answers_from_the_coarsest_rollup_that_fits(backend: Backend) {
    let app = TestApp::start(backend).await;
    let day = lifeline::model::history::DAY_MS;
    let day0_ms = (app::now() - Duration::days(3))
        .timestamp_millis()
        .div_euclid(day)
        * day;
    let day0 = chrono::DateTime::from_timestamp_millis(day0_ms).unwrap();
    // Three days, one reading every 7 minutes, every 11th of bad quality.
    let items: Vec<Value> = (0..3 * 24 * 60 / 7)
        .map(|i: i64| {
            json!({"sensor_id": 3, "time": day0_ms + i * 7 * 60_000,
                   "value": 0.3 + (i * 37 % 100) as f64 * 0.001,
                   "quality": if i % 11 == 0 { "bad" } else { "good" }})
        })
        .collect();
    let n = items.len();
    let (s, v) = post_readings(&app, Value::Array(items.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["stored"], n);
    let (s, v) = post_readings(&app, Value::Array(items)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["duplicates"], n);
    let end = day0 + Duration::days(3);
    let hour = Duration::hours(1);
    for (from, to, every, want) in [
        (day0, end, "1h", "hourly"),
        (day0, end, "6h", "hourly"),
        (day0, end, "1d", "daily"),
        (day0 + hour, end - Duration::hours(2), "1d", "hourly"),
        (day0 + Duration::minutes(30), end, "1h", "raw"),
        (day0, end, "90m", "raw"),
    ] {
        let q = format!("from={}&to={}&every={every}", stamp(from), stamp(to));
        let (s, auto) = history(&app, &q).await;
        assert_eq!(s, StatusCode::OK, "{auto}");
        assert_eq!(auto["source"], want, "{q}");
        let (s, raw) = history(&app, &format!("{q}&source=raw")).await;
        assert_eq!(s, StatusCode::OK, "{raw}");
        assert_eq!(raw["source"], "raw");
        same_buckets(&auto, &raw);
        if want == "daily" {
            // Every good reading counted once, despite the second sending.
            let total: i64 = auto["buckets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["count"].as_i64().unwrap())
                .sum();
            assert_eq!(total as usize, n - n.div_ceil(11));
        }
    }
    // A named rollup that does not fit, an unknown source, a source without every.
    let q = format!("from={}&to={}&every=1h", stamp(day0), stamp(end));
    for (extra, says) in [
        ("&source=daily", "source=daily"),
        ("&source=weekly", "'weekly'"),
    ] {
        let (s, v) = history(&app, &format!("{q}{extra}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v.to_string().contains(says), "{v}");
    }
    let (s, v) = history(&app, "source=hourly").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("every"), "{v}");
    app.stop().await;
}
both_backends!(history_answers_from_the_coarsest_rollup_that_fits);

/// Issue 16: with raw retention shorter than ingest's late window, a reading older than the
/// horizon is refused in the batch's report as expired (never a 500), and the others of the
/// batch are stored.
async fn readings_older_than_retention_are_refused_as_expired(backend: Backend) {
    let app = TestApp::start_configured(backend, Some(Role::Viewer), true, |c| {
        c.retention = lifeline::model::history::RetentionPolicy::new(7).unwrap();
    })
    .await;
    let items = json!([
        {"sensor_id": 3, "time": ago(12 * 86_400), "value": 0.31},
        {"sensor_id": 3, "time": ago(2 * 86_400), "value": 0.32},
        {"sensor_id": 3, "time": ago(60), "value": 0.33},
    ]);
    let (s, v) = post_readings(&app, items).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["stored"].as_u64(), v["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{v}"
    );
    let item = &v["items"][0];
    assert_eq!(item["index"], 0);
    assert_eq!(item["status"], "rejected");
    let e = item["error"].as_str().unwrap();
    assert!(e.contains("expired") && e.contains("7 days"), "{e}");
    app.stop().await;
}
both_backends!(readings_older_than_retention_are_refused_as_expired);

fn urlenc(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn lifecycle_permissions_and_audit(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a = raise_gas_alarm(&app).await;
    let id = a["id"].as_i64().unwrap();
    assert_eq!(a["history"][0]["to"], "detected");
    assert_eq!(a["history"][0]["by"], "system");
    // A viewer can neither verify nor dispatch.
    let (s, v) = transition(&app, id, "dispatched", Role::Viewer).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("operator"));
    let (s, _) = transition(&app, id, "verified", Role::Viewer).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Moves the lifecycle does not have are conflicts naming what is allowed.
    let (s, v) = transition(&app, id, "closed", Role::Operator).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("verified"));
    let (s, _) = transition(&app, id, "detected", Role::Admin).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = transition(&app, 9999, "verified", Role::Admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = transition(&app, id, "verified", Role::Analyst).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "verified");
    let (s, _) = transition(&app, id, "dispatched", Role::Analyst).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an analyst cannot dispatch");
    for (to, role) in [
        ("dispatched", Role::Operator),
        ("handled", Role::Operator),
        ("closed", Role::Operator),
    ] {
        let (s, v) = transition(&app, id, to, role).await;
        assert_eq!(s, StatusCode::OK, "{to}: {v}");
    }
    // Who moved it, by key name, for operators and admins (issue 21: below them, the role).
    let (_, anon) = body(
        app.req(Method::GET, &format!("/alarms/{id}"), None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let shown: Vec<&str> = anon["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["by"].as_str().unwrap())
        .collect();
    assert_eq!(
        shown,
        ["system", "analyst", "operator", "operator", "operator"]
    );
    let (_, a) = body(
        app.req(Method::GET, &format!("/alarms/{id}"), Some(Role::Operator))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a["status"], "closed");
    assert_eq!(a["next"], json!([]));
    let steps: Vec<(String, String)> = a["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["to"].as_str().unwrap().to_string(),
                h["by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("detected".into(), "system".into()),
            ("verified".into(), "test-analyst".into()),
            ("dispatched".into(), "test-operator".into()),
            ("handled".into(), "test-operator".into()),
            ("closed".into(), "test-operator".into()),
        ]
    );
    assert_eq!(a["history"][1]["comment"], "verified by analyst");
    // Closed: not open any more, and a new exceedance raises a new alarm.
    let (_, open) = body(
        app.req(Method::GET, "/alarms?status=open", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(open["alarms"].as_array().unwrap().is_empty(), "{open}");
    // Every step and the refusals are in the audit log.
    let (_, log) = body(
        app.req(Method::GET, "/admin/audit?limit=100", Some(Role::Admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let actions: Vec<String> = log["entries"]
        .as_array()
        .or_else(|| log["audit"].as_array())
        .unwrap_or_else(|| panic!("audit shape {log}"))
        .iter()
        .filter(|e| e["target"] == format!("alarms/{id}"))
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "alarm_detected",
        "alarm_denied",
        "alarm_verified",
        "alarm_dispatched",
        "alarm_handled",
        "alarm_closed",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "{want} missing from {actions:?}"
        );
    }
    // false_alarm from detected.
    post_readings(&app, json!([{"sensor_id": 1, "time": ago(50), "value": 27.0}, {"sensor_id": 1, "time": ago(30), "value": 27.0}])).await;
    post_readings(
        &app,
        json!([{"sensor_id": 1, "time": ago(20), "value": 1.0}]),
    )
    .await;
    post_readings(&app, json!([{"sensor_id": 1, "time": ago(15), "value": 27.0}, {"sensor_id": 1, "time": ago(2), "value": 27.0}])).await;
    let all = alarms_of(&app, 1).await;
    let newest = all
        .iter()
        .find(|a| a["status"] == "detected")
        .expect("a new alarm after closing");
    let (s, v) = transition(
        &app,
        newest["id"].as_i64().unwrap(),
        "false_alarm",
        Role::Analyst,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.stop().await;
}
every_backend!(lifecycle_permissions_and_audit);

async fn offline_sensors_raise_and_clear(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Pressure sensor 3 last reported two hours ago (its kind allows 30 minutes).
    post_readings(
        &app,
        json!([{"sensor_id": 3, "time": ago(7200), "value": 0.3}]),
    )
    .await;
    let mut found = None;
    for _ in 0..40 {
        let a = alarms_of(&app, 3).await;
        if let Some(x) = a.into_iter().find(|a| a["rule"] == "offline") {
            found = Some(x);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let a = found.expect("an offline alarm within 20 s");
    assert_eq!(a["severity"], "notice");
    assert!(a["cleared_at"].is_null());
    // The store has it; the follower applies it to this instance's book right after.
    let mut offline = false;
    for _ in 0..20 {
        let (_, s) = body(
            app.req(Method::GET, "/sensors/3", None)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if s["offline"] == true {
            offline = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(offline, "GET /sensors/3 reports the sensor offline");
    // Sensors that reported recently (or never, since start-up) stay online.
    assert!(alarms_of(&app, 1).await.is_empty());
    // Coverage: sensor 3 is unlinked, so both risk points are still covered.
    let (_, c) = body(
        app.req(Method::GET, "/risk/coverage?level=district", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(c["risk_points"], 2);
    assert_eq!(c["working"], 2);
    assert_eq!(c["by_grid_cell"][0]["grid_cell_id"], 1);
    // ... but it is counted where it stands, as an unlinked sensor that is offline.
    let cell = &c["by_grid_cell"][0];
    assert_eq!(cell["unlinked_sensors"], 1, "{c}");
    assert_eq!(cell["unlinked_working"], 0, "{c}");
    assert_eq!(cell["unlinked_offline"], 1, "{c}");
    assert_eq!(c["unlinked_offline"], 1, "{c}");
    let (_, g) = body(
        app.req(Method::GET, "/risk/grid-stats?level=street", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(g["cells"][0]["unlinked_sensors"], 1, "{g}");
    assert_eq!(g["cells"][0]["unlinked_offline"], 1, "{g}");
    assert_eq!(
        g["cells"][0]["offline_sensors"], 0,
        "linked sensors only: {g}"
    );
    // It reports again: the alarm is cleared (people still close it).
    post_readings(
        &app,
        json!([{"sensor_id": 3, "time": ago(1), "value": 0.3}]),
    )
    .await;
    let a = alarms_of(&app, 3).await;
    assert_eq!(a.len(), 1);
    assert!(!a[0]["cleared_at"].is_null(), "{:?}", a[0]);
    let (_, s) = body(
        app.req(Method::GET, "/sensors/3", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s["offline"], false);
    let (_, c) = body(
        app.req(Method::GET, "/risk/coverage?level=district", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(c["by_grid_cell"][0]["unlinked_working"], 1, "{c}");
    assert_eq!(c["by_grid_cell"][0]["unlinked_offline"], 0, "{c}");
    app.stop().await;
}
every_backend!(offline_sensors_raise_and_clear);

async fn coverage_and_suggested_sensors(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (s, v) = body(
        app.req(Method::GET, "/risk/points/1/suggested-sensors", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids: Vec<i64> = v["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    // Pressure sensor 3 watches gas; sensor 1 is already linked; level sensor 2 does not fit.
    assert_eq!(ids, vec![3], "{v}");
    assert!(v["sensors"][0]["distance_m"].as_f64().unwrap() < 100.0);
    let (s, _) = body(
        app.req(Method::GET, "/risk/points/77/suggested-sensors", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Take sensor 2 out of service: risk point 2 loses its only working sensor.
    let (_, feat) = body(
        app.req(Method::GET, "/features/sensors/2", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let mut feat = feat;
    feat["properties"]["status"] = json!("fault");
    let (s, v) = body(
        app.req(Method::PUT, "/features/sensors/2", Some(Role::Operator))
            .json(&feat)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, c) = body(
        app.req(Method::GET, "/risk/coverage", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(c["risk_points"], 2);
    assert_eq!(c["linked"], 2);
    assert_eq!(c["working"], 1);
    assert_eq!(c["uncovered"], json!([2]));
    let cat = c["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["category"] == "drain_waterlogging")
        .unwrap()
        .clone();
    assert_eq!(cat["working"], 0);
    let (_, g) = body(
        app.req(Method::GET, "/risk/grid-stats", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(g["level"], "street");
    assert_eq!(g["cells"][0]["covered"], 1);
    assert_eq!(g["cells"][0]["coverage"], 0.5);
    // Pressure sensor 3 stands in the street, linked to nothing.
    assert_eq!(g["cells"][0]["unlinked_sensors"], 1, "{g}");
    assert_eq!(g["cells"][0]["unlinked_working"], 1, "{g}");
    // Link it to risk point 2: no longer unlinked, and the point is covered again (the
    // statistics follow the edit at once).
    let (_, feat) = body(
        app.req(Method::GET, "/features/sensors/3", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let mut feat = feat;
    feat["properties"]["risk_point_id"] = json!(2);
    let (s, v) = body(
        app.req(Method::PUT, "/features/sensors/3", Some(Role::Operator))
            .json(&feat)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, g) = body(
        app.req(Method::GET, "/risk/grid-stats", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(g["cells"][0]["unlinked_sensors"], 0, "{g}");
    assert_eq!(g["cells"][0]["covered"], 2, "{g}");
    assert_eq!(g["cells"][0]["sensors"], 3, "{g}");
    let (_, c) = body(
        app.req(Method::GET, "/risk/coverage", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(c["unlinked_sensors"], 0, "{c}");
    assert_eq!(c["working"], 2, "{c}");
    app.stop().await;
}
every_backend!(coverage_and_suggested_sensors);

/// `/ready` reports the grid statistics built once the server is up (it waits for the
/// start-up build), and a bulk load rebuilds them in the background: the instance stays
/// ready throughout and the statistics follow the loaded data once the build is swapped in.
async fn ready_waits_for_statistics_and_bulk_loads_rebuild_them(backend: Backend) {
    let app = TestApp::start_with(backend, Some(Role::Viewer), false).await;
    let ready = |app: &TestApp| {
        let r = app.req(Method::GET, "/ready", None).send();
        async move { body(r.await.unwrap()).await }
    };
    let (s, v) = ready(&app).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["risk_statistics"]["ready"], true, "{v}");
    assert_eq!(v["risk_statistics"]["builds"], 1, "{v}");
    let (s, g) = body(
        app.req(Method::GET, "/risk/grid-stats?level=street", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{g}");
    assert_eq!(g["cells"], json!([]), "an empty store has no cells");

    let (s, v) = body(
        app.req(Method::POST, "/bulk", Some(Role::Operator))
            .json(&app::fixtures::dataset())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = ready(&app).await;
    assert_eq!(s, StatusCode::OK, "still ready while rebuilding: {v}");
    // The rebuild ends and is swapped in: the fixtures' street with its two risk points,
    // the linked sensors and the unlinked pressure sensor.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let cell = loop {
        let (_, g) = body(
            app.req(Method::GET, "/risk/grid-stats?level=street", None)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if g["cells"][0]["risk_points"] == 2 {
            break g["cells"][0].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "statistics never followed the bulk load: {g}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(cell["sensors"], 2, "{cell}");
    assert_eq!(cell["unlinked_sensors"], 1, "{cell}");
    let (s, v) = ready(&app).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["risk_statistics"]["builds"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(v["risk_statistics"]["building"], false, "{v}");
    app.stop().await;
}
every_backend!(ready_waits_for_statistics_and_bulk_loads_rebuild_them);
