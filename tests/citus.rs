//! Citus as the distributed system of record (issue 16), on a real cluster: a coordinator
//! and two workers started by `lifeline_pgcluster`.
//!
//! The store conformance suite (`tests/store_conformance.rs`, `citus::`) and the HTTP tests
//! (`every_backend!`) run on Citus like on PostGIS and GeoPackage. This file tests what is
//! Citus' own: that `lifeline migrate` lays every table out as `migrations/citus/` says,
//! that rows really spread over the workers, and what happens when a worker dies during
//! readings ingest (clear 503s, no half-committed batch, nothing lost after it restarts).

mod app;

use app::{Backend, TestApp};
use chrono::{Duration, SecondsFormat};
use lifeline::model::Role;
use lifeline_pgcluster::{CitusCluster, TempCluster};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The database name at the end of a store URL.
fn db_of(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().to_string()
}

/// One value of a query on the coordinator.
fn one(co: &TempCluster, db: &str, sql: &str) -> String {
    co.psql(db, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_lays_every_table_out_as_designed() {
    let app = TestApp::start(Backend::Citus).await;
    let co = lifeline_pgcluster::shared_citus().coordinator();
    let db = db_of(&app.store_url);
    let placement = |table: &str| -> String {
        one(
            co,
            &db,
            &format!(
                "SELECT coalesce((SELECT CASE partmethod WHEN 'n' THEN 'reference' \
                 WHEN 'h' THEN 'hash:' || column_to_column_name(logicalrelid, partkey) END \
                 FROM pg_dist_partition WHERE logicalrelid = '{table}'::regclass), 'local')"
            ),
        )
    };
    for t in [
        "owners",
        "grid_cells",
        "nodes",
        "pipelines",
        "risk_points",
        "sensors",
        "api_keys",
        "owner_channels",
    ] {
        assert_eq!(placement(t), "reference", "{t}");
    }
    for t in ["readings", "readings_hourly", "readings_daily", "alarms"] {
        assert_eq!(placement(t), "hash:sensor_id", "{t}");
    }
    for t in [
        "change_log",
        "risk_events",
        "audit_log",
        "excavation_tickets",
        "notification_outbox",
        "import_jobs",
        "schema_migrations",
    ] {
        assert_eq!(placement(t), "local", "{t}");
    }
    // Readings and alarms are co-located: one sensor's rows share a shard.
    let groups = one(
        co,
        &db,
        "SELECT count(DISTINCT colocationid) FROM pg_dist_partition \
         WHERE logicalrelid IN ('readings'::regclass, 'readings_hourly'::regclass, \
         'readings_daily'::regclass, 'alarms'::regclass)",
    );
    assert_eq!(groups, "1");
    // Every unique key of a distributed table includes its distribution column.
    let bad = one(
        co,
        &db,
        "SELECT count(*) FROM pg_index i JOIN pg_dist_partition p ON p.logicalrelid = i.indrelid \
         WHERE p.partmethod = 'h' AND i.indisunique \
         AND NOT (p.partkey IS NOT NULL AND \
           (SELECT attnum FROM pg_attribute WHERE attrelid = i.indrelid \
            AND attname = column_to_column_name(p.logicalrelid, p.partkey)) = ANY (i.indkey))",
    );
    assert_eq!(bad, "0");

    // Readings posted over HTTP land on both workers' shards, and read back whole.
    let now = app::now();
    let items: Vec<Value> = (0..60)
        .flat_map(|i| {
            let t = (now - Duration::seconds(600 - i)).to_rfc3339_opts(SecondsFormat::Millis, true);
            [
                json!({"sensor_id": 1, "time": t, "value": 1.0}),
                json!({"sensor_id": 2, "time": t, "value": 0.5}),
                json!({"sensor_id": 3, "time": t, "value": 0.3}),
            ]
        })
        .collect();
    let (s, v) = post_readings(&app, &Value::Array(items)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["stored"], 180, "{v}");
    assert_eq!(one(co, &db, "SELECT count(*) FROM readings"), "180");
    let nodes_with_rows = one(
        co,
        &db,
        "SELECT count(DISTINCT s.nodeport) FROM citus_shards s \
         WHERE s.table_name::text LIKE 'readings_p%' AND s.shard_size > 8192",
    );
    assert!(
        nodes_with_rows.parse::<i64>().unwrap_or(0) >= 1,
        "readings shards hold rows: {nodes_with_rows}"
    );
    let (s, r) = get_json(&app, "/sensors/2/readings?from=2000-01-01T00:00:00Z").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["readings"].as_array().map(Vec::len), Some(60), "{r}");
    app.stop().await;
}

async fn post_readings(app: &TestApp, items: &Value) -> (StatusCode, Value) {
    let resp = app
        .req(Method::POST, "/sensors/readings", Some(Role::Operator))
        .json(items)
        .send()
        .await
        .expect("send readings");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get_json(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let resp = app
        .req(Method::GET, path, Some(Role::Operator))
        .send()
        .await
        .expect("send");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// One batch of the fault test: 3 sensors × 40 readings at times no other batch uses.
fn batch(n: i64, base: chrono::DateTime<chrono::Utc>) -> Value {
    Value::Array(
        (0..40)
            .flat_map(|i| {
                let t = (base + Duration::seconds(n * 40 + i))
                    .to_rfc3339_opts(SecondsFormat::Millis, true);
                [
                    json!({"sensor_id": 1, "time": t, "value": 1.0}),
                    json!({"sensor_id": 2, "time": t, "value": 0.5}),
                    json!({"sensor_id": 3, "time": t, "value": 0.3}),
                ]
            })
            .collect(),
    )
}

/// What the fault test's batches got back.
#[derive(Debug, Default)]
struct Ledger {
    /// Readings the service said it stored, over the acknowledged batches.
    stored: i64,
    acknowledged: Vec<i64>,
    refused: Vec<i64>,
}

impl Ledger {
    /// Records batch `n`'s answer; `true` when it was acknowledged. Anything but 200 or a
    /// 503 with the `unavailable` code fails the test.
    fn record(&mut self, status: StatusCode, v: &Value, n: i64) -> bool {
        match status {
            StatusCode::OK => {
                self.stored += v["stored"].as_i64().unwrap_or(-1);
                self.acknowledged.push(n);
                true
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(v["error"]["code"], "unavailable", "{v}");
                self.refused.push(n);
                false
            }
            other => panic!("batch {n}: {other} {v}"),
        }
    }
}

/// Kills a worker with SIGKILL in the middle of readings ingest over HTTP.
///
/// * While it is down, ingest answers 503 with a JSON error (never 500, never a hang).
/// * No batch is half-committed: the rows in the store are exactly the ones of the batches
///   that were acknowledged with 200.
/// * After the worker restarts, ingest resumes; re-sending the refused batches stores them,
///   and in the end every reading sent is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_worker_during_ingest_gives_503s_and_loses_nothing() {
    // Its own cluster: killing a worker of the shared one would fail other tests.
    let cluster = CitusCluster::start(2).expect("start a Citus cluster");
    let url = cluster.fresh_database("fault").expect("database");
    let store = lifeline::store::open(&url, 4)
        .await
        .expect("open the Citus store");
    let app = TestApp::start_over(
        store,
        url.clone(),
        None,
        Some(Role::Viewer),
        Some(app::fixtures::dataset()),
        |_| {},
    )
    .await;
    let co = cluster.coordinator();
    let db = db_of(&url);
    let base = app::now() - Duration::hours(2);

    let mut ledger = Ledger::default();
    let mut n = 0i64;
    // Healthy ingest first.
    for _ in 0..5 {
        let (s, v) = post_readings(&app, &batch(n, base)).await;
        assert!(ledger.record(s, &v, n), "healthy batch {n}: {s} {v}");
        n += 1;
    }
    cluster.kill_worker(0).expect("kill worker 0");
    // While it is down: every batch touches both workers' shards (three sensors, four
    // shards), so each is refused as a whole.
    let mut refused_while_down = 0;
    for _ in 0..5 {
        let (s, v) = post_readings(&app, &batch(n, base)).await;
        if !ledger.record(s, &v, n) {
            refused_while_down += 1;
        }
        n += 1;
    }
    assert!(refused_while_down > 0, "a dead worker refuses ingest");
    // The excavation check and the tiles read the in-memory index, never the store: with a
    // worker down they still answer, so Citus cannot slow them down.
    let t = lifeline_tiles::TileCoord::from_lonlat(106.5005, 29.50005, 16).expect("tile");
    let tile = app
        .req(
            Method::GET,
            &format!("/tiles/pipelines/{}/{}/{}.mvt", t.z(), t.x(), t.y()),
            Some(Role::Analyst),
        )
        .send()
        .await
        .expect("tile");
    assert_eq!(tile.status(), StatusCode::OK);
    assert!(!tile.bytes().await.expect("tile body").is_empty());
    let today = app::today();
    let check = app
        .req(Method::POST, "/excavation/check", Some(Role::Contractor))
        .json(&json!({
            "geometry": {"type": "Polygon", "coordinates": [[[106.5003, 29.4999], [106.5006, 29.4999],
                [106.5006, 29.5004], [106.5003, 29.5004], [106.5003, 29.4999]]]},
            "top_depth_m": 0.0, "bottom_depth_m": 2.5, "method": "mechanical",
            "work_type": "water service connection", "start_date": today.to_string(),
            "end_date": (today + Duration::days(3)).to_string()
        }))
        .send()
        .await
        .expect("check");
    assert_eq!(check.status(), StatusCode::OK);
    let check: Value = check.json().await.expect("check body");
    assert!(
        !check["conflicts"].as_array().expect("conflicts").is_empty(),
        "{check}"
    );
    // No half-committed batch: what is stored is exactly what was acknowledged. Counted on
    // the live worker's shards too, by reading through the coordinator after the restart.
    cluster.restart_worker(0).expect("restart worker 0");
    // Transactions prepared on the dead worker are settled by Citus' recovery.
    one(co, &db, "SELECT recover_prepared_transactions()");
    let stored: i64 = one(co, &db, "SELECT count(*) FROM readings")
        .parse()
        .expect("count");
    assert_eq!(stored, ledger.stored, "{ledger:?}");
    for r in &ledger.refused {
        let (from, to) = (
            base + Duration::seconds(r * 40),
            base + Duration::seconds(r * 40 + 40),
        );
        let in_batch = one(
            co,
            &db,
            &format!(
                "SELECT count(*) FROM readings WHERE t >= '{}' AND t < '{}'",
                from.to_rfc3339(),
                to.to_rfc3339()
            ),
        );
        assert_eq!(in_batch, "0", "refused batch {r} left rows behind");
    }
    // Ingest resumes (the pool's broken connections are replaced), and the refused batches
    // go in when re-sent.
    let mut resumed = false;
    for _ in 0..20 {
        let (s, v) = post_readings(&app, &batch(n, base)).await;
        if ledger.record(s, &v, n) {
            resumed = true;
            n += 1;
            break;
        }
        n += 1;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(resumed, "ingest resumes after the worker restarts");
    for r in std::mem::take(&mut ledger.refused) {
        let (s, v) = post_readings(&app, &batch(r, base)).await;
        assert_eq!(s, StatusCode::OK, "re-sent batch {r}: {v}");
        assert_eq!(v["stored"], 120, "re-sent batch {r}: {v}");
    }
    let stored: i64 = one(co, &db, "SELECT count(*) FROM readings")
        .parse()
        .expect("count");
    assert_eq!(stored, n * 120, "every reading of {n} batches stored once");
    app.stop().await;
}

/// Maintenance on Citus moves the partitions older than the late-reading window to the
/// columnar access method; such a partition still answers reads and still finds
/// duplicates. Columnar has no speculative insertion, so a new reading there is refused:
/// the service never sends one, as conversion waits past ingest's late window
/// (`RetentionPolicy::with_late_window`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_partitions_go_columnar_and_still_take_late_readings() {
    use lifeline::model::alarm::{Quality, Reading};
    use lifeline::model::history::RetentionPolicy;
    let cluster = lifeline_pgcluster::shared_citus();
    let url = cluster.fresh_database("columnar").expect("database");
    let store = lifeline::store::open(&url, 4).await.expect("open");
    let now = app::now();
    let day = |days_ago: i64| {
        (now - Duration::days(days_ago))
            .date_naive()
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
    };
    let reading = |t: chrono::DateTime<chrono::Utc>, sensor_id: i64| Reading {
        sensor_id,
        t,
        value: 1.5,
        quality: Quality::Good,
    };
    let old: Vec<Reading> = (0..48)
        .flat_map(|i| [1, 2, 3].map(|s| reading(day(40) + Duration::minutes(30 * i), s)))
        .collect();
    let recent: Vec<Reading> = (0..10)
        .map(|i| reading(day(2) + Duration::minutes(i), 1))
        .collect();
    let new = store.insert_readings(&old).await.expect("old readings");
    assert!(new.iter().all(|n| *n));
    store
        .insert_readings(&recent)
        .await
        .expect("recent readings");

    let report = store
        .maintain_readings(now, &RetentionPolicy::default())
        .await
        .expect("maintain");
    let old_part = format!("readings_p{}", day(40).format("%Y_%m_%d"));
    assert_eq!(
        report.partitions_to_columnar,
        std::slice::from_ref(&old_part),
        "{report:?}"
    );
    let db = db_of(&url);
    let co = cluster.coordinator();
    let method = |part: &str| {
        one(
            co,
            &db,
            &format!(
                "SELECT access_method FROM time_partitions WHERE partition = '{part}'::regclass"
            ),
        )
    };
    assert_eq!(method(&old_part), "columnar");
    assert_eq!(
        method(&format!("readings_p{}", day(2).format("%Y_%m_%d"))),
        "heap"
    );

    // Reads, duplicates and a late reading on the columnar partition.
    let back = store
        .readings(2, day(40), day(39), 10_000)
        .await
        .expect("read columnar");
    assert_eq!(back.len(), 48);
    let again = store.insert_readings(&old).await.expect("re-send");
    assert!(
        again.iter().all(|n| !*n),
        "duplicates are found in columnar"
    );
    let late = [reading(day(40) + Duration::minutes(7), 9)];
    let refused = store
        .insert_readings(&late)
        .await
        .expect_err("no insert into columnar");
    assert!(
        format!("{refused:?}").contains("speculative"),
        "{refused:?}"
    );
    // Ingest's window (30 days by default) ends before the first columnar day.
    let policy = RetentionPolicy::default().with_late_window(30);
    assert!(policy.columnar_before(now) < now - Duration::days(30));
    assert!(
        RetentionPolicy::default()
            .with_late_window(45)
            .columnar_before(now)
            < now - Duration::days(45)
    );
    // A second round converts nothing more.
    let again = store
        .maintain_readings(now, &RetentionPolicy::default())
        .await
        .expect("maintain again");
    assert!(again.partitions_to_columnar.is_empty(), "{again:?}");
}
