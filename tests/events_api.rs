//! Live updates end to end (issue 5): `GET /events` (SSE) delivering alarm changes,
//! risk-level changes and data edits, replay after reconnecting with `Last-Event-ID` with no
//! event lost, filters; and two Lifeline instances on one PostGIS database staying
//! consistent through the change follower (LISTEN/NOTIFY).

mod app;

use app::sse::{Sse, SseClient};
use app::{fixtures, Backend, TestApp};
use chrono::{Duration, SecondsFormat};
use lifeline::model::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration as StdDuration;

fn ago(secs: i64) -> String {
    (app::now() - Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = req.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn gas_alarm(base: &TestApp) -> i64 {
    let (s, v) = send(
        base.req(Method::POST, "/sensors/readings", Some(Role::Operator))
            .json(&json!([
                {"sensor_id": 1, "time": ago(100), "value": 25.0},
                {"sensor_id": 1, "time": ago(80), "value": 25.0},
            ])),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["alarm_changes"], 1, "{v}");
    let (_, a) = send(base.req(Method::GET, "/alarms?sensor_id=1", None)).await;
    a["alarms"][0]["id"].as_i64().unwrap()
}

async fn reconnect_with_last_event_id_loses_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let base = format!("http://{}", app.addr);
    let mut control = SseClient::connect(&base, "?kinds=alarm", None).await;
    let mut x = SseClient::connect(&base, "?kinds=alarm", None).await;
    let id = gas_alarm(&app).await;
    let move_to = |to: &'static str, role: Role| {
        let req = app
            .req(
                Method::POST,
                &format!("/alarms/{id}/transitions"),
                Some(role),
            )
            .json(&json!({"to": to}));
        async move {
            let (s, v) = send(req).await;
            assert_eq!(s, StatusCode::OK, "{to}: {v}");
        }
    };
    move_to("verified", Role::Analyst).await;
    let first = x.take(2).await;
    assert_eq!(first[0].event, "alarm");
    assert_eq!(first[0].data["status"], "detected");
    assert_eq!(first[1].data["status"], "verified");
    assert!(first[0].data["lon"].is_number());
    let last = first[1].id.clone();
    drop(x);
    // Missed while disconnected.
    move_to("dispatched", Role::Operator).await;
    move_to("handled", Role::Operator).await;
    let mut x = SseClient::connect(&base, "?kinds=alarm", Some(&last)).await;
    let replayed = x.take(2).await;
    move_to("closed", Role::Operator).await;
    let live = x.take(1).await;
    let seen: Vec<Sse> = first.into_iter().chain(replayed).chain(live).collect();
    let all = control.take(5).await;
    assert_eq!(
        seen, all,
        "the reconnecting client saw exactly what a connected one saw"
    );
    let statuses: Vec<&str> = all
        .iter()
        .map(|e| e.data["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["detected", "verified", "dispatched", "handled", "closed"]
    );
    // The same id in the query string works for clients that cannot set headers.
    let mut q = SseClient::connect(
        &base,
        &format!("?kinds=alarm&last_event_id={}", all[3].id),
        None,
    )
    .await;
    assert_eq!(q.take(1).await[0].data["status"], "closed");
    // Edits: only those inside the bbox; alarms at sensor 1 (106.5005) are outside it.
    let mut boxed = SseClient::connect(&base, "?bbox=106.504,29.504,106.507,29.507", None).await;
    move_raise_more(&app).await;
    let (s, created) = send(
        app.req(Method::POST, "/features/pipelines", Some(Role::Operator))
            .json(&fixtures::pipe_feature()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let e = boxed
        .next(StdDuration::from_secs(5))
        .await
        .expect("an edit event");
    assert_eq!(e.event, "edit");
    assert_eq!(e.data["layer"], "pipelines");
    assert_eq!(e.data["op"], "insert");
    // Bad ids and filters are 400s.
    let r = reqwest::get(format!("{base}/events?kinds=alarms"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = reqwest::Client::new()
        .get(format!("{base}/events"))
        .header("Last-Event-ID", "garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // An id from before this server started is replayed from the store's logs: the whole
    // alarm history, no reset.
    let mut old = SseClient::connect(&base, "?kinds=alarm", Some("0-0-0")).await;
    let history = old.take(5).await;
    assert!(history.iter().all(|e| e.event == "alarm"), "{history:?}");
    let data: Vec<&Value> = history.iter().map(|e| &e.data).collect();
    let seen_data: Vec<&Value> = all.iter().map(|e| &e.data).collect();
    assert_eq!(data, seen_data, "replayed from the store = what was live");
    // An id this store never issued (risk event far ahead): reset first.
    let mut alien = SseClient::connect(&base, "", Some("999999-0-0")).await;
    assert_eq!(
        alien.next(StdDuration::from_secs(5)).await.unwrap().event,
        "reset"
    );
    drop((control, x, q, boxed, old, alien));
    app.stop().await;
}
every_backend!(reconnect_with_last_event_id_loses_nothing);

/// Posts readings and transitions through `base` with an admin key.
struct Writer {
    base: String,
    key: String,
    client: reqwest::Client,
}

impl Writer {
    async fn post(&self, path: &str, body: Value) -> Value {
        let (s, v) = send(
            self.client
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.key)
                .json(&body),
        )
        .await;
        assert!(s.is_success(), "{path}: {s} {v}");
        v
    }
}

/// Events missed across a restart (older than any in-memory ring) come back from the
/// store's durable logs with the data a connected client saw, then live events follow;
/// resuming from a replayed id loses nothing.
async fn replay_after_restart_comes_from_the_store(backend: Backend) {
    let (store, url, _dir) = app::fresh_store(backend).await;
    store
        .bulk_load(&fixtures::dataset(), &lifeline::model::Actor::cli())
        .await
        .expect("load");
    let key = lifeline::auth::generate_key();
    store
        .create_api_key(
            "test-admin",
            Role::Admin,
            &lifeline::auth::hash_key(&key),
            &lifeline::model::Actor::cli(),
        )
        .await
        .expect("key");
    drop(store);
    let (addr, stop, handle) = second_instance(&url).await;
    let w = Writer {
        base: format!("http://{addr}"),
        key: key.clone(),
        client: reqwest::Client::new(),
    };
    let mut live = SseClient::connect(&w.base, "?kinds=alarm,edit", None).await;
    let v = w
        .post(
            "/sensors/readings",
            json!([
                {"sensor_id": 1, "time": ago(100), "value": 25.0},
                {"sensor_id": 1, "time": ago(80), "value": 25.0},
            ]),
        )
        .await;
    assert_eq!(v["alarm_changes"], 1, "{v}");
    let detected = live.take(1).await;
    let alarm = detected[0].data["id"].as_i64().expect("alarm id");
    w.post(
        &format!("/alarms/{alarm}/transitions"),
        json!({"to": "verified"}),
    )
    .await;
    w.post("/features/pipelines", fixtures::pipe_feature())
        .await;
    let before = live.take(2).await;
    assert_eq!(before[0].data["status"], "verified");
    assert_eq!(before[1].event, "edit");
    drop(live);
    let _ = stop.send(());
    let _ = handle.await;

    // Restarted: its ring is empty. Two more changes while nobody listens.
    let (addr, stop, handle) = second_instance(&url).await;
    let w = Writer {
        base: format!("http://{addr}"),
        ..w
    };
    w.post(
        &format!("/alarms/{alarm}/transitions"),
        json!({"to": "dispatched"}),
    )
    .await;
    let mut feature = fixtures::pipe_feature();
    feature["geometry"]["coordinates"] = json!([[106.503, 29.503], [106.5035, 29.5032]]);
    w.post("/features/pipelines", feature).await;
    let mut x = SseClient::connect(&w.base, "?kinds=alarm,edit", Some(&detected[0].id)).await;
    let replayed = x.take(4).await;
    assert!(
        replayed.iter().all(|e| e.event != "reset"),
        "no reset: {replayed:?}"
    );
    let alarms: Vec<&Sse> = replayed.iter().filter(|e| e.event == "alarm").collect();
    let edits: Vec<&Sse> = replayed.iter().filter(|e| e.event == "edit").collect();
    assert_eq!(alarms.len(), 2, "{replayed:?}");
    assert_eq!(edits.len(), 2, "{replayed:?}");
    assert_eq!(
        alarms[0].data, before[0].data,
        "the replayed alarm is what was live"
    );
    assert_eq!(alarms[1].data["status"], "dispatched");
    assert_eq!(
        edits[0].data, before[1].data,
        "the replayed edit is what was live"
    );
    assert_eq!(edits[1].data["op"], "insert");
    assert_ne!(edits[1].data["id"], edits[0].data["id"]);
    // Live events follow the replay; a client resuming from the last replayed id gets
    // exactly the new ones.
    let mut y = SseClient::connect(&w.base, "?kinds=alarm,edit", Some(&replayed[3].id)).await;
    w.post(
        &format!("/alarms/{alarm}/transitions"),
        json!({"to": "handled"}),
    )
    .await;
    assert_eq!(x.take(1).await[0].data["status"], "handled");
    let next = y.take(1).await;
    assert_eq!(next[0].data["status"], "handled", "{next:?}");
    assert!(y.next(StdDuration::from_millis(500)).await.is_none());
    drop((x, y));
    let _ = stop.send(());
    let _ = handle.await;
}
every_backend!(replay_after_restart_comes_from_the_store);

/// Another alarm (on the level sensor, away from the box of the caller).
async fn move_raise_more(app: &TestApp) {
    let (s, v) = send(
        app.req(Method::POST, "/sensors/readings", Some(Role::Operator))
            .json(&json!([
                {"sensor_id": 2, "time": ago(200), "value": 0.3},
                {"sensor_id": 2, "time": ago(140), "value": 2.0},
                {"sensor_id": 2, "time": ago(100), "value": 2.0},
            ])),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Starts a second server over an existing database.
async fn second_instance(
    url: &str,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let store = lifeline::store::open(url, 4).await.expect("open store");
    let config = lifeline::config::Config {
        store_url: url.to_string(),
        anonymous_role: Some(Role::Viewer),
        http: lifeline::config::HttpLimits::default().without_rate_limits(),
        ..lifeline::config::Config::default()
    };
    let state = lifeline::AppState::with_store(store, config, app::test_clock())
        .await
        .expect("state");
    app::serve(state).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgis_instances_stay_consistent() {
    let a = TestApp::start(Backend::Postgis).await;
    let (b_addr, b_stop, b_handle) = second_instance(&a.store_url).await;
    let b = format!("http://{b_addr}");
    let key = |r: Role| a.keys[&r].clone();
    let mut b_events = SseClient::connect(&b, "", None).await;
    // Alarms raised through A reach B's stream, book and risk levels.
    move_raise_more(&a).await;
    let mut got = Vec::new();
    while let Some(e) = b_events.next(StdDuration::from_secs(5)).await {
        got.push(e);
        if got.iter().any(|e| e.event == "risk_level")
            && got.iter().filter(|e| e.event == "alarm").count() >= 2
        {
            break;
        }
    }
    let level = got
        .iter()
        .find(|e| e.event == "risk_level")
        .unwrap_or_else(|| panic!("no risk_level on B: {got:?}"));
    assert_eq!(level.data["id"], 2);
    assert_eq!(level.data["level"], "large");
    let c = reqwest::Client::new();
    let p: Value = c
        .get(format!("{b}/risk/points/2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["level"], "large", "{p}");
    assert_eq!(p["alarms"].as_array().unwrap().len(), 2);
    // B's latest state of the sensor follows readings ingested through A: the newest
    // value (from the store) and the threshold level (from the alarm book).
    assert_eq!(p["sensors"][0]["latest"]["value"], 2.0, "{p}");
    let s_on_b: Value = c
        .get(format!("{b}/sensors/2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, s_on_a) = send(a.req(Method::GET, "/sensors/2", None)).await;
    assert_eq!(s_on_b["latest"]["value"], 2.0, "{s_on_b}");
    assert_eq!(s_on_b["latest"], s_on_a["latest"]);
    assert!(s_on_b["level"].is_string(), "{s_on_b}");
    assert_eq!(s_on_b["level"], s_on_a["level"]);
    assert_eq!(s_on_b["alarms"], s_on_a["alarms"]);
    // The sensor's stream continues through B: a reading back under the band clears the
    // threshold alarm A raised (B took over the level from A's alarm event).
    let r = c
        .post(format!("{b}/sensors/readings"))
        .bearer_auth(key(Role::Operator))
        .json(&json!([{"sensor_id": 2, "time": ago(50), "value": 0.2}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert!(v["alarm_changes"].as_u64().unwrap() >= 1, "{v}");
    let (_, alarms) = send(a.req(Method::GET, "/alarms?sensor_id=2", None)).await;
    let threshold = alarms["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule"] == "threshold")
        .unwrap_or_else(|| panic!("a threshold alarm: {alarms}"))
        .clone();
    assert!(
        threshold["cleared_at"].is_string(),
        "cleared through B: {threshold}"
    );
    // A transition through B is seen by A.
    let alarm = got.iter().find(|e| e.event == "alarm").unwrap().data["id"]
        .as_i64()
        .unwrap();
    let r = c
        .post(format!("{b}/alarms/{alarm}/transitions"))
        .bearer_auth(key(Role::Analyst))
        .json(&json!({"to": "false_alarm", "comment": "pump test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, on_a) = send(a.req(Method::GET, &format!("/alarms/{alarm}"), None)).await;
    assert_eq!(on_a["status"], "false_alarm");
    let mut seen_on_a = false;
    for _ in 0..20 {
        let (_, p) = send(a.req(Method::GET, "/risk/points/2", None)).await;
        if p["alarms"].as_array().unwrap().len() == 1 {
            seen_on_a = true;
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(250)).await;
    }
    assert!(seen_on_a, "A's book dropped the alarm closed through B");
    // A data edit through A: B's index has it and B's stream says so.
    let (s, created) = send(
        a.req(Method::POST, "/features/pipelines", Some(Role::Operator))
            .json(&fixtures::pipe_feature()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let pid = created["id"]
        .as_i64()
        .or_else(|| created["properties"]["id"].as_i64())
        .expect("new id");
    let mut edit = None;
    while let Some(e) = b_events.next(StdDuration::from_secs(5)).await {
        if e.event == "edit" {
            edit = Some(e);
            break;
        }
    }
    let edit = edit.expect("an edit event on B");
    assert_eq!(edit.data["id"], pid);
    let r = c
        .get(format!("{b}/features/pipelines/{pid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "B's index has the pipeline written through A"
    );
    // B's index says it reflects the log up to that edit.
    let ready: Value = c
        .get(format!("{b}/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["index"]["version"], edit.data["version"], "{ready}");
    // A trace published through A reaches B's analysts (never its anonymous stream).
    let mut b_analyst =
        SseClient::connect_with(&b, "?kinds=trace", None, Some(&key(Role::Analyst))).await;
    let (s, published) = send(
        a.req(
            Method::POST,
            "/trace/isolate?publish=true",
            Some(Role::Operator),
        )
        .json(&json!({"pipes": [1], "message": "main 1"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{published}");
    let trace = b_analyst.take(1).await.remove(0);
    assert_eq!(
        (trace.event.as_str(), &trace.data["message"]),
        ("trace", &json!("main 1"))
    );
    assert!(trace
        .id
        .starts_with(&format!("{}-", published["published"])));
    while let Some(e) = b_events.next(StdDuration::from_millis(500)).await {
        assert_ne!(e.event, "trace", "an anonymous stream carried a trace");
    }
    drop(b_events);
    let _ = b_stop.send(());
    let _ = b_handle.await;
    a.stop().await;
}

/// Waits for B's stream to report an edit of pipeline `id` with `op`.
async fn wait_edit(events: &mut SseClient, id: i64, op: &str) {
    while let Some(e) = events.next(StdDuration::from_secs(5)).await {
        if e.data["id"] == id && e.data["op"] == op {
            return;
        }
    }
    panic!("no {op} edit of pipeline {id} on B");
}

/// Pipeline ids in B's `pipelines` tile at `path` (empty for 204).
async fn pipe_ids_in_tile(b: &str, path: &str) -> (Vec<u64>, Option<String>) {
    let r = reqwest::get(format!("{b}{path}")).await.unwrap();
    let etag = r
        .headers()
        .get(reqwest::header::ETAG)
        .map(|v| v.to_str().unwrap().to_string());
    if r.status() == StatusCode::NO_CONTENT {
        return (Vec::new(), etag);
    }
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    let bytes = r.bytes().await.unwrap();
    let tile = lifeline_tiles::decode_tile(&bytes).expect("valid MVT");
    let mut ids: Vec<u64> = tile
        .layer("pipelines")
        .map(|l| l.features.iter().filter_map(|f| f.id).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    (ids, etag)
}

/// B's tile cache follows changes written through A: a tile B has cut and cached is
/// invalidated by B's change follower when a pipeline is inserted, moved away and deleted
/// through A, and B serves the changed tile on the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_cached_on_b_follow_changes_through_a() {
    let a = TestApp::start(Backend::Postgis).await;
    let (b_addr, b_stop, b_handle) = second_instance(&a.store_url).await;
    let b = format!("http://{b_addr}");
    let t = lifeline_tiles::TileCoord::from_lonlat(106.5055, 29.5052, 16).unwrap();
    let path = format!("/tiles/pipelines/{}/{}/{}.mvt", t.z(), t.x(), t.y());
    let (before, tag1) = pipe_ids_in_tile(&b, &path).await;
    // Served again from B's cache: the same tile.
    let (again, tag2) = pipe_ids_in_tile(&b, &path).await;
    assert_eq!(before, again);
    assert_eq!(tag1, tag2);
    let mut b_events = SseClient::connect(&b, "?kinds=edit", None).await;

    let (s, created) = send(
        a.req(Method::POST, "/features/pipelines", Some(Role::Operator))
            .json(&fixtures::pipe_feature()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let pid = created["id"]
        .as_i64()
        .or_else(|| created["properties"]["id"].as_i64())
        .expect("new id");
    assert!(!before.contains(&(pid as u64)));
    wait_edit(&mut b_events, pid, "insert").await;
    let (with_new, _) = pipe_ids_in_tile(&b, &path).await;
    assert!(
        with_new.contains(&(pid as u64)),
        "B serves the tile with the pipeline written through A: {with_new:?}"
    );

    // Moved out of the tile through A.
    let mut moved = created.clone();
    moved["geometry"]["coordinates"] = json!([[106.53, 29.53], [106.531, 29.531]]);
    let (s, v) = send(
        a.req(
            Method::PUT,
            &format!("/features/pipelines/{pid}"),
            Some(Role::Operator),
        )
        .json(&moved),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_edit(&mut b_events, pid, "update").await;
    let (after_move, _) = pipe_ids_in_tile(&b, &path).await;
    assert_eq!(after_move, before, "the moved pipeline left B's tile");

    // Back in, then deleted through A.
    let (s, v) = send(
        a.req(
            Method::PUT,
            &format!("/features/pipelines/{pid}"),
            Some(Role::Operator),
        )
        .json(&created),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_edit(&mut b_events, pid, "update").await;
    assert!(pipe_ids_in_tile(&b, &path).await.0.contains(&(pid as u64)));
    let (s, v) = send(a.req(
        Method::DELETE,
        &format!("/features/pipelines/{pid}"),
        Some(Role::Operator),
    ))
    .await;
    assert!(s.is_success(), "{s} {v}");
    wait_edit(&mut b_events, pid, "delete").await;
    let (after_delete, _) = pipe_ids_in_tile(&b, &path).await;
    assert_eq!(after_delete, before, "the deleted pipeline left B's tile");
    drop(b_events);
    let _ = b_stop.send(());
    let _ = b_handle.await;
    a.stop().await;
}
