//! Live updates end to end (issue 5): `GET /events` (SSE) delivering alarm changes,
//! risk-level changes and data edits, replay after reconnecting with `Last-Event-ID` with no
//! event lost, filters; and two Lifeline instances on one PostGIS database staying
//! consistent through the change follower (LISTEN/NOTIFY).

mod app;

use app::{fixtures, Backend, TestApp};
use chrono::{Duration, SecondsFormat, Utc};
use lifeline::model::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration as StdDuration;

/// One received server-sent event.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: String,
    event: String,
    data: Value,
}

/// A minimal SSE reader over a streaming response.
struct SseClient {
    resp: reqwest::Response,
    buf: String,
}

impl SseClient {
    async fn connect(base: &str, query: &str, last: Option<&str>) -> SseClient {
        let client = reqwest::Client::new();
        let mut req = client.get(format!("{base}/events{query}"));
        if let Some(l) = last {
            req = req.header("Last-Event-ID", l);
        }
        let resp = req.send().await.expect("connect /events");
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        SseClient {
            resp,
            buf: String::new(),
        }
    }

    /// The next event, or `None` after `wait` without one.
    async fn next(&mut self, wait: StdDuration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf[..pos].to_string();
                self.buf.drain(..pos + 2);
                let (mut id, mut event, mut data) =
                    (String::new(), String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return Some(Sse {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
                });
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(c))) => self.buf.push_str(&String::from_utf8_lossy(&c)),
                _ => return None,
            }
        }
    }

    async fn take(&mut self, n: usize) -> Vec<Sse> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.next(StdDuration::from_secs(5)).await {
                Some(e) => out.push(e),
                None => panic!("expected {n} events, got {}: {out:?}", out.len()),
            }
        }
        out
    }
}

fn ago(secs: i64) -> String {
    (Utc::now() - Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Millis, true)
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
    // An id from before this server started cannot be replayed: reset first.
    let mut old = SseClient::connect(&base, "", Some("0-0-0")).await;
    assert_eq!(
        old.next(StdDuration::from_secs(5)).await.unwrap().event,
        "reset"
    );
    drop((control, x, q, boxed, old));
    app.stop().await;
}
both_backends!(reconnect_with_last_event_id_loses_nothing);

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
        ..lifeline::config::Config::default()
    };
    let state = lifeline::AppState::with_store(store, config)
        .await
        .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = tokio::spawn(async move {
        lifeline::run(listener, state, async {
            let _ = rx.await;
        })
        .await
        .expect("server");
    });
    (addr, tx, h)
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
    drop(b_events);
    let _ = b_stop.send(());
    let _ = b_handle.await;
    a.stop().await;
}
