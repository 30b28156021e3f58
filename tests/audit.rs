//! The access audit (issue 21) end to end, on a real PostGIS and a real GeoPackage: reads
//! above a viewer's are logged with who, role, area, layers, count, purpose and request
//! id; tiles are grouped; the hash chain verifies, names a tampered entry and survives a
//! retention cut; the search (admins and auditors, JSON and CSV); quotas with a grant;
//! no key names for lower roles on the event stream; the CORS policy per route group.

mod app;

use app::sse::SseClient;
use app::{Backend, TestApp};
use lifeline::model::audit::{AuditFilter, ReadEntry, ReadKind};
use lifeline::model::{Actor, Role};
use lifeline::store::SharedStore;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = req.send().await.expect("request");
    let (s, h) = (r.status(), r.headers().clone());
    let text = r.text().await.unwrap_or_default();
    (
        s,
        h,
        serde_json::from_str(&text).unwrap_or(json!({"raw": text})),
    )
}

/// A dig across fixture pipes 1 and 2 (as tests/excavation.rs).
fn fixture_dig() -> Value {
    let today = app::today();
    json!({
        "geometry": {"type": "Polygon", "coordinates": [[[106.5003, 29.4999], [106.5006, 29.4999], [106.5006, 29.5004], [106.5003, 29.5004], [106.5003, 29.4999]]]},
        "top_depth_m": 0.0, "bottom_depth_m": 2.5, "method": "mechanical",
        "work_type": "water service connection",
        "start_date": today.to_string(), "end_date": (today + chrono::Duration::days(3)).to_string()
    })
}

/// The audit entries the search returns for `query`, read as the auditor.
async fn search(app: &TestApp, query: &str) -> Vec<Value> {
    let (s, _, v) = send(app.req(
        Method::GET,
        &format!("/admin/audit?{query}"),
        Some(Role::Auditor),
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["entries"].as_array().cloned().unwrap_or_default()
}

async fn reads_above_a_viewers_are_audited(backend: Backend) {
    let app = TestApp::start(backend).await;

    // An excavation check: who, role, area, layers, count, purpose, request id.
    let (s, h, check) = send(
        app.req(Method::POST, "/excavation/check", Some(Role::Contractor))
            .header("x-request-id", "dig-42")
            .json(&fixture_dig()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{check}");
    assert_eq!(h["x-request-id"], "dig-42");
    let e = search(&app, "action=excavation_check").await;
    assert_eq!(e.len(), 1, "{e:?}");
    let e = &e[0];
    assert_eq!(e["actor"], "test-contractor");
    assert_eq!(e["role"], "contractor");
    assert_eq!(e["request_id"], "dig-42");
    assert_eq!(e["detail"]["purpose"], "water service connection");
    let n = ["conflicts", "owners", "risk_points", "sensors"]
        .iter()
        .map(|k| check[k].as_array().map_or(0, Vec::len))
        .sum::<usize>();
    assert!(n > 0);
    assert_eq!(e["detail"]["features"], n);
    assert_eq!(e["detail"]["area"]["type"], "Polygon");
    let b = e["bbox"].as_array().expect("an area");
    assert!((b[0].as_f64().unwrap() - 106.5003).abs() < 1e-9, "{b:?}");
    assert!(e["detail"]["layers"]
        .as_array()
        .unwrap()
        .contains(&json!("pipelines")));

    // Layer reads: a viewer's are not logged, an analyst's (restricted attributes) are.
    let before = search(&app, "action=features").await.len();
    let (s, h, _) = send(app.req(Method::GET, "/features/pipelines", Some(Role::Viewer))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h.contains_key("x-request-id"), "every response has an id");
    assert_eq!(search(&app, "action=features").await.len(), before);
    let (s, h, page) = send(app.req(
        Method::GET,
        "/features/pipelines?limit=3",
        Some(Role::Analyst),
    ))
    .await;
    assert_eq!(s, StatusCode::OK);
    let e = search(&app, "action=features").await;
    assert_eq!(e.len(), before + 1);
    assert_eq!(e[0]["actor"], "test-analyst");
    assert_eq!(e[0]["detail"]["features"], page["numberReturned"]);
    assert_eq!(e[0]["request_id"], h["x-request-id"].to_str().unwrap());

    // OGC items and a single feature.
    let (s, _, items) = send(app.req(
        Method::GET,
        "/ogc/collections/pipelines/items?limit=2",
        Some(Role::Analyst),
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{items}");
    let e = search(&app, "action=ogc_items").await;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["detail"]["features"], items["numberReturned"]);
    let (s, _, _) = send(app.req(
        Method::GET,
        "/ogc/collections/pipelines/items/2",
        Some(Role::Operator),
    ))
    .await;
    assert_eq!(s, StatusCode::OK);
    let e = search(&app, "action=ogc_feature").await;
    assert_eq!((e.len(), e[0]["detail"]["features"].as_u64()), (1, Some(1)));

    // A trace, and an analysis.
    let (s, _, _) = send(
        app.req(Method::POST, "/trace/connected", Some(Role::Analyst))
            .json(&json!({"pipes": [1]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let e = search(&app, "action=trace").await;
    assert_eq!(e.len(), 1);
    assert!(e[0]["detail"]["features"].as_u64().unwrap() >= 1);
    let (s, _, _) = send(app.req(
        Method::GET,
        "/ogc/analysis/grid-stats?bbox=106.4,29.4,106.6,29.6",
        Some(Role::Analyst),
    ))
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(search(&app, "action=analysis").await.len(), 1);

    // `read` is every read; the search by area and actor.
    let reads = search(&app, "action=read").await;
    assert_eq!(reads.len(), 6, "{reads:?}");
    let near_dig = search(&app, "action=read&bbox=106.5004,29.5,106.5005,29.5001").await;
    assert!(near_dig.iter().any(|e| e["action"] == "excavation_check"));
    assert!(search(&app, "action=read&bbox=100,20,100.1,20.1")
        .await
        .is_empty());
    let mine = search(&app, "actor=test-contractor&action=read").await;
    assert_eq!(mine.len(), 1);
    assert!(search(&app, "action=read&layer=grid_cells").await.len() == 1);
    // A window around now holds them; one that ended before holds none.
    let at = reads[0]["at"].as_str().unwrap();
    let t = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    let from = (t - chrono::Duration::hours(1)).to_rfc3339();
    let to = (t + chrono::Duration::hours(1)).to_rfc3339();
    let q = format!(
        "action=read&from={}&to={}",
        urlencode(&from),
        urlencode(&to)
    );
    assert_eq!(search(&app, &q).await.len(), 6);
    let q = format!("action=read&to={}", urlencode(&from));
    assert!(search(&app, &q).await.is_empty());
    app.stop().await;
}
both_backends!(reads_above_a_viewers_are_audited);

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn the_search_is_for_admins_and_auditors_in_json_and_csv(backend: Backend) {
    let app = TestApp::start(backend).await;
    for role in Role::ALL {
        let (s, _, v) = send(app.req(Method::GET, "/admin/audit", Some(*role))).await;
        let may = matches!(role, Role::Admin | Role::Auditor);
        assert_eq!(s.is_success(), may, "{role}: {v}");
        if !may {
            assert_eq!(s, StatusCode::FORBIDDEN, "{role}");
        }
    }
    // The auditor reads nothing else.
    let (s, _, _) =
        send(app.req(Method::GET, "/ogc/analysis/grid-stats", Some(Role::Auditor))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r = app
        .req(Method::GET, "/admin/audit?f=csv", Some(Role::Auditor))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let json = search(&app, "").await;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("id,seq,at,actor,role,action"));
    assert_eq!(lines.len(), json.len() + 1, "{csv}");
    assert!(lines[1].contains(&json[0]["hash"].as_str().unwrap().to_string()));
    // Bad parameters are named.
    for (q, needle) in [
        ("f=xml", "json or csv"),
        ("bbox=1,2,3", "bbox"),
        ("from=yesterday", "from"),
        ("layer=pipes", "pipes"),
    ] {
        let (s, _, v) =
            send(app.req(Method::GET, &format!("/admin/audit?{q}"), Some(Role::Admin))).await;
        assert!(s.is_client_error(), "{q}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{q}: {v}"
        );
    }
    app.stop().await;
}
both_backends!(the_search_is_for_admins_and_auditors_in_json_and_csv);

async fn tiles_are_grouped_per_key_layer_hour_and_zoom(backend: Backend) {
    let app = TestApp::start(backend).await;
    let store = app.store.clone();
    let tile = lifeline_tiles::TileCoord::from_lonlat(106.5005, 29.5001, 15).unwrap();
    let (x, y) = (tile.x(), tile.y());
    let mut served = 0;
    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1), (0, 0)] {
        let path = format!("/tiles/pipelines/15/{}/{}.mvt", x + dx, y + dy);
        let (s, _, _) = send(app.req(Method::GET, &path, Some(Role::Analyst))).await;
        assert!(s.is_success(), "{path}: {s}");
        served += 1;
        // A viewer's tiles are not restricted: not counted.
        let (s, _, _) = send(app.req(Method::GET, &path, Some(Role::Viewer))).await;
        assert!(s.is_success());
    }
    // Nothing is written per tile; shutdown writes the group.
    assert!(tiles_entries(&store).await.is_empty());
    app.stop().await;
    let e = tiles_entries(&store).await;
    assert_eq!(e.len(), 1, "{e:?}");
    let d = &e[0].detail;
    assert_eq!(e[0].actor, "test-analyst");
    assert_eq!(d["tiles"], served);
    assert_eq!(d["layers"], json!(["pipelines"]));
    assert_eq!(
        d["tile_range"],
        json!({"z": 15, "min_x": x, "max_x": x + 1, "min_y": y, "max_y": y + 1})
    );
    let b = e[0].bbox.expect("the range's box");
    assert!(b[0] < 106.5005 && b[2] > 106.5005 && b[1] < 29.5001 && b[3] > 29.5001);
}
both_backends!(tiles_are_grouped_per_key_layer_hour_and_zoom);

async fn tiles_entries(store: &SharedStore) -> Vec<lifeline::store::AuditEntry> {
    store
        .search_audit(&AuditFilter {
            action: Some("tiles".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Changes a stored entry behind the store's back (as someone with database access
/// would), bypassing the append-only guard.
async fn tamper(backend: Backend, url: &str, seq: i64) {
    match backend {
        Backend::Postgis | Backend::Citus => {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
                .await
                .unwrap();
            client
                .execute(
                    "UPDATE audit_log SET actor = 'mallory' WHERE seq = $1",
                    &[&seq],
                )
                .await
                .unwrap();
        }
        Backend::Gpkg => {
            let c = rusqlite::Connection::open(url).unwrap();
            c.execute_batch("DROP TRIGGER audit_log_append_only")
                .unwrap();
            c.execute(
                "UPDATE audit_log SET actor = 'mallory' WHERE seq = ?1",
                [seq],
            )
            .unwrap();
        }
    }
}

async fn entries(store: &SharedStore, n: usize, who: &Actor) {
    for i in 0..n {
        let e = ReadEntry::new(ReadKind::Features, format!("features/pipelines/{i}"))
            .read(&[lifeline::model::Layer::Pipelines], i as u64);
        store
            .append_audit(who, &e.into_record(Some(format!("r{i}"))))
            .await
            .unwrap();
    }
}

async fn the_chain_verifies_names_a_tampered_entry_and_survives_a_cut(backend: Backend) {
    let (store, url, _dir) = app::fresh_store(backend).await;
    let who = Actor {
        name: "crew-7".into(),
        key_id: Some(7),
        role: Role::Contractor,
    };
    // Writes append through the stores' own statements; reads through append_audit.
    store
        .bulk_load(&app::fixtures::dataset(), &Actor::cli())
        .await
        .unwrap();
    entries(&store, 9, &who).await;
    let v = lifeline::audit::verify(store.as_ref()).await.unwrap();
    assert!(v.broken.is_none(), "{v:?}");
    assert_eq!(v.checked, 10);
    assert_eq!(v.last_seq, 10);

    // The log refuses changes through the store's own connection rules.
    let refused = match backend {
        Backend::Postgis | Backend::Citus => {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .execute("DELETE FROM audit_log WHERE seq = 2", &[])
                .await
                .map(|_| ())
                .map_err(|e| {
                    e.as_db_error()
                        .map(|d| d.message().to_string())
                        .unwrap_or_default()
                })
        }
        Backend::Gpkg => rusqlite::Connection::open(&url)
            .unwrap()
            .execute("UPDATE audit_log SET actor = 'x' WHERE seq = 2", [])
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    assert!(refused.unwrap_err().contains("append-only"));

    // A cut removes whole segments of 4 older than the cut time: seq 1..=8.
    let cut = store
        .cut_audit(chrono::Utc::now() + chrono::Duration::days(1), 4)
        .await
        .unwrap();
    assert_eq!((cut.removed, cut.anchor.seq), (8, 8));
    entries(&store, 2, &who).await;
    let v = lifeline::audit::verify(store.as_ref()).await.unwrap();
    assert!(v.broken.is_none(), "{v:?}");
    assert_eq!((v.anchor_seq, v.checked, v.last_seq), (8, 4, 12));
    // Nothing is cut while no segment is whole and old.
    let none = store
        .cut_audit(chrono::Utc::now() - chrono::Duration::days(1), 4)
        .await
        .unwrap();
    assert_eq!(none.removed, 0);

    // A changed entry is named, by the library and by the command line.
    tamper(backend, &url, 10).await;
    let v = lifeline::audit::verify(store.as_ref()).await.unwrap();
    let broken = v.broken.expect("the change is found");
    assert_eq!(broken.seq, 10);
    assert_eq!(v.checked, 1);
    drop(store);
    let store_flag = match backend {
        Backend::Postgis | Backend::Citus => "--database-url",
        Backend::Gpkg => "--gpkg",
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .args([store_flag, &url, "--quiet", "audit", "verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("entry {} (seq 10)", broken.id)),
        "{stdout}"
    );
}
both_backends!(the_chain_verifies_names_a_tampered_entry_and_survives_a_cut);

async fn quotas_refuse_with_retry_after_and_admins_grant(backend: Backend) {
    let app = TestApp::start_configured(backend, Some(Role::Viewer), true, |c| {
        c.quotas.insert(
            Role::Analyst,
            lifeline::config::Quota {
                features: Some(3),
                area_km2: None,
            },
        );
    })
    .await;
    let get = |limit: usize| {
        app.req(
            Method::GET,
            &format!("/features/pipelines?limit={limit}"),
            Some(Role::Analyst),
        )
    };
    let (s, _, _) = send(get(2)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, h, v) = send(get(2)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    assert!(v["error"]["message"].as_str().unwrap().contains("quota"));
    let refused = search(&app, "action=quota_exceeded").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["actor"], "test-analyst");
    assert_eq!(refused[0]["detail"]["features"], 2);
    // Other roles have no quota.
    let (s, _, _) = send(app.req(
        Method::GET,
        "/features/pipelines?limit=5",
        Some(Role::Operator),
    ))
    .await;
    assert_eq!(s, StatusCode::OK);
    // Only an admin grants; the grant is audited and lets the read through.
    let grant = json!({"actor": "test-analyst", "features": 5});
    let (s, _, _) = send(
        app.req(Method::POST, "/admin/quota-grants", Some(Role::Operator))
            .json(&grant),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, usage) = send(
        app.req(Method::POST, "/admin/quota-grants", Some(Role::Admin))
            .json(&grant),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{usage}");
    assert_eq!(
        (usage["features"].as_u64(), usage["extra_features"].as_u64()),
        (Some(2), Some(5))
    );
    let grants = search(&app, "action=quota_grant").await;
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["actor"], "test-admin");
    assert_eq!(grants[0]["detail"]["grantee"], "test-analyst");
    let (s, _, _) = send(get(2)).await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}
both_backends!(quotas_refuse_with_retry_after_and_admins_grant);

async fn no_key_names_reach_lower_roles(backend: Backend) {
    let app = TestApp::start(backend).await;
    let base = format!("http://{}", app.addr);
    // One listener per role (and one anonymous), for every event kind.
    let mut listeners = Vec::new();
    for role in Role::ALL.iter().copied().map(Some).chain([None]) {
        let key = role.map(|r| app.keys[&r].clone());
        listeners.push((
            role,
            SseClient::connect_with(&base, "", None, key.as_deref()).await,
        ));
    }
    // An alarm, moved by a named analyst; an edit by a named operator; a published trace.
    let ago = |s: i64| (app::now() - chrono::Duration::seconds(s)).to_rfc3339();
    let (s, _, v) = send(
        app.req(Method::POST, "/sensors/readings", Some(Role::Operator))
            .json(&json!([
                {"sensor_id": 1, "time": ago(100), "value": 25.0},
                {"sensor_id": 1, "time": ago(80), "value": 25.0},
            ])),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, _, alarms) = send(app.req(Method::GET, "/alarms?sensor_id=1", None)).await;
    let alarm = alarms["alarms"][0]["id"].as_i64().unwrap();
    let (s, _, _) = send(
        app.req(
            Method::POST,
            &format!("/alarms/{alarm}/transitions"),
            Some(Role::Analyst),
        )
        .json(&json!({"to": "verified"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = send(
        app.req(Method::POST, "/features/pipelines", Some(Role::Operator))
            .json(&app::fixtures::pipe_feature()),
    )
    .await;
    assert!(s.is_success());
    let (s, _, v) = send(
        app.req(
            Method::POST,
            "/trace/isolate?publish=true",
            Some(Role::Operator),
        )
        .json(&json!({"pipes": [1], "message": "burst main"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for (role, mut sse) in listeners {
        let sees = role.is_some_and(lifeline::model::access::sees_actors);
        let mut kinds = std::collections::BTreeSet::new();
        let mut names_seen = 0;
        while let Some(e) = sse.next(Duration::from_millis(700)).await {
            kinds.insert(e.event.clone());
            let text = e.data.to_string();
            let named = text.contains("test-analyst") || text.contains("test-operator");
            assert!(sees || !named, "{role:?} {}: {text}", e.event);
            names_seen += usize::from(named);
            if e.event == "edit" {
                assert_eq!(e.data.get("actor").is_some(), sees, "{role:?}: {text}");
            }
        }
        for k in ["alarm", "edit"] {
            assert!(kinds.contains(k), "{role:?} got {kinds:?}");
        }
        // Those who may see names see the analyst's alarm move and the operator's edit.
        assert_eq!(names_seen >= 2, sees, "{role:?}: {names_seen}");
        let traces = role.is_some_and(|r| r >= Role::Analyst);
        assert_eq!(kinds.contains("trace"), traces, "{role:?} got {kinds:?}");
    }
    // The alarm itself, and errors and headers: no key name below operator.
    for role in [
        None,
        Some(Role::Viewer),
        Some(Role::Contractor),
        Some(Role::Analyst),
    ] {
        let (_, h, a) = send(app.req(Method::GET, &format!("/alarms/{alarm}"), role)).await;
        let (_, h2, err) = send(app.req(Method::GET, "/admin/audit", role)).await;
        for text in [a.to_string(), err.to_string(), format!("{h:?}{h2:?}")] {
            assert!(!text.contains("test-"), "{role:?}: {text}");
        }
    }
    let (_, _, a) = send(app.req(
        Method::GET,
        &format!("/alarms/{alarm}"),
        Some(Role::Operator),
    ))
    .await;
    assert!(a.to_string().contains("test-analyst"), "{a}");
    app.stop().await;
}
both_backends!(no_key_names_reach_lower_roles);

async fn cors_follows_the_policy_per_route_group(backend: Backend) {
    const COCKPIT: &str = "http://cockpit.example.cn";
    // Default: same origin only, no CORS header anywhere.
    let plain = TestApp::start(backend).await;
    let r = plain
        .req(Method::GET, "/tiles/pipelines.json", None)
        .header("origin", COCKPIT)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    plain.stop().await;

    let app = TestApp::start_configured(backend, Some(Role::Viewer), true, |c| {
        let o = vec![axum::http::HeaderValue::from_static(COCKPIT)];
        c.cors.tiles = o.clone();
        c.cors.read = o;
    })
    .await;
    let preflight = |path: &str, method: &str, origin: &str| {
        app.req(Method::OPTIONS, path, None)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "authorization")
    };
    // Tiles and reads: allowed to the cockpit, with the methods and headers.
    let r = preflight("/tiles/pipelines/15/1/1.mvt", "GET", COCKPIT)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(r.headers()["access-control-allow-origin"], COCKPIT);
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("GET"));
    assert!(r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    let r = app
        .req(Method::GET, "/ogc/collections", None)
        .header("origin", COCKPIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], COCKPIT);
    assert!(r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("x-request-id"));
    // Another origin: nothing.
    let r = preflight("/ogc/collections", "GET", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // Writes are not configured: no permission to the cockpit either.
    let r = preflight("/features/pipelines", "POST", COCKPIT)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // Refusals carry the headers too, so the page can read them.
    let r = app
        .req(Method::GET, "/admin/audit", Some(Role::Viewer))
        .header("origin", COCKPIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers()["access-control-allow-origin"], COCKPIT);
    app.stop().await;
}
both_backends!(cors_follows_the_policy_per_route_group);

/// `lifeline export` is audited (as `cli`) and its files name who exported them, when and
/// how they were cut: a GeoPackage metadata item, a GeoJSON top-level member, a CSV
/// header comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_audited_and_carry_their_provenance() {
    use gdal::Metadata;
    let (store, url, dir) = app::fresh_store(Backend::Gpkg).await;
    store
        .bulk_load(&app::fixtures::dataset(), &Actor::cli())
        .await
        .unwrap();
    drop(store);
    let dir = dir.expect("a temp dir");
    let export = |format: &str| {
        let out = dir.path().join(format!("pipes.{format}"));
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_lifeline"))
            .args(["--gpkg", &url, "--quiet", "export", "--layer", "pipelines"])
            .args(["--format", format, "--bbox", "106.4,29.4,106.6,29.6", "-o"])
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success(), "{format}");
        out
    };
    let geojson: Value =
        serde_json::from_str(&std::fs::read_to_string(export("geojson")).unwrap()).unwrap();
    let p = &geojson["lifeline:provenance"];
    assert_eq!(p["exported_by"], "cli", "{geojson}");
    assert_eq!(p["layer"], "pipelines");
    assert_eq!(p["filter"]["bbox"], json!([106.4, 29.4, 106.6, 29.6]));
    assert_eq!(p["filter"]["crs"], "EPSG:4490");
    assert!(p["exported_at"].is_string());
    assert_eq!(geojson["features"].as_array().unwrap().len(), 5);

    let csv = std::fs::read_to_string(export("csv")).unwrap();
    let first = csv.lines().next().unwrap();
    assert!(
        first.starts_with("# lifeline export of pipelines by cli at "),
        "{first}"
    );
    assert!(first.contains("106.4"), "{first}");

    let gpkg = export("gpkg");
    let ds = gdal::Dataset::open(&gpkg).unwrap();
    let item = ds
        .metadata_item("lifeline_provenance", "")
        .expect("the GeoPackage's metadata item");
    let item: Value = serde_json::from_str(&item).unwrap();
    assert_eq!(item["exported_by"], "cli");

    // Three exports, three audit entries with their counts and cuts.
    let store = lifeline::store::open(&url, 1).await.unwrap();
    let e = store
        .search_audit(&AuditFilter {
            action: Some("export".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(e.len(), 3);
    assert!(e
        .iter()
        .all(|e| e.actor == "cli" && e.detail["features"] == 5));
    assert_eq!(e[0].bbox, Some([106.4, 29.4, 106.6, 29.6]));
    assert_eq!(e[0].detail["format"], "gpkg");
}
