//! The store conformance suite: the contract of `lifeline::store::Store`, written once
//! against `&dyn Store` and run against every engine — PostGIS (a fresh database of the
//! throwaway cluster per test), Citus (a fresh database laid out over the throwaway
//! coordinator and two workers, issue 16) and GeoPackage (a fresh file per test).
//!
//! `conformance!(case, …)` instantiates every case as `postgis::case`, `citus::case` and
//! `gpkg::case`, so `cargo test --test store_conformance citus::` runs one engine.
//!
//! The ignored `postgis_scale` test bulk-loads and reads back a synthetic 200,000-pipeline
//! network and prints how long each took (`-- --ignored --nocapture`).

mod common;

use common::*;
use lifeline::model::*;
use lifeline::store::{Store, StoreError};

macro_rules! conformance {
    ($($case:ident),+ $(,)?) => {
        mod postgis {
            $(
                #[tokio::test]
                async fn $case() {
                    let s = super::common::postgis().await;
                    super::cases::$case(&*s).await;
                }
            )+
        }
        mod citus {
            $(
                #[tokio::test]
                async fn $case() {
                    let s = super::common::citus().await;
                    super::cases::$case(&*s).await;
                }
            )+
        }
        mod gpkg {
            $(
                #[tokio::test]
                async fn $case() {
                    let s = super::common::gpkg().await;
                    super::cases::$case(&*s).await;
                }
            )+
        }
    };
}

conformance!(
    insert_get_roundtrip_every_layer,
    ids_are_assigned_after_explicit_ones,
    duplicate_id_is_a_conflict,
    dangling_references_are_conflicts_naming_the_id,
    failed_writes_leave_nothing_behind,
    update_replaces_and_missing_is_not_found,
    delete_and_referenced_delete,
    change_log_versions_and_paging,
    bulk_load_is_all_or_nothing,
    bulk_load_upserts_and_logs_per_layer,
    bulk_load_assigns_ids,
    api_keys_lifecycle,
    audit_entries_for_every_write,
    migrate_twice_is_a_no_op,
    load_all_equals_what_was_written,
    risk_event_log_keeps_alarms_and_traces_in_order,
    rollups_equal_raw_after_random_batches_with_resends,
    maintenance_expires_raw_readings_and_keeps_rollups,
);

/// Counts as a map, for readable comparisons.
async fn counts(s: &dyn Store) -> std::collections::BTreeMap<Layer, i64> {
    s.counts().await.expect("counts").into_iter().collect()
}

/// Everything a failed write must leave unchanged.
async fn snapshot(
    s: &dyn Store,
) -> (
    std::collections::BTreeMap<Layer, i64>,
    Vec<Change>,
    usize,
    Dataset,
) {
    (
        counts(s).await,
        s.changes_since(0, 10_000).await.expect("changes"),
        s.audit_log(10_000).await.expect("audit").len(),
        sorted(s.load_all().await.expect("load_all")),
    )
}

/// The references the fixtures need: owner 1, district 10, street 11.
async fn seed_parents(s: &dyn Store) {
    let a = actor();
    for r in [
        Record::Owner(owner_full(1)),
        Record::GridCell(district(10)),
        Record::GridCell(street(11, 10)),
    ] {
        s.insert(&r, &a).await.expect("seed");
    }
}

fn conflict_message(r: Result<impl std::fmt::Debug, StoreError>) -> String {
    match r {
        Err(StoreError::Conflict(m)) => m,
        other => panic!("expected a Conflict, got {other:?}"),
    }
}

mod cases {
    use super::*;

    pub async fn insert_get_roundtrip_every_layer(s: &dyn Store) {
        let a = actor();
        let records = vec![
            Record::Owner(owner_full(1)),
            Record::Owner(owner_min(2)),
            Record::GridCell(district(10)),
            Record::GridCell(street(11, 10)),
            Record::Node(node_full(400, 100)),
            Record::Node(node_min(401)),
            Record::Pipeline(pipeline_joined(100, 1)),
            Record::Pipeline(pipeline_min(101, 2)),
            Record::RiskPoint(risk_point_full(200, 11)),
            Record::RiskPoint(risk_point_min(201)),
            Record::Sensor(sensor_full(300, 100, 200)),
            Record::Sensor(sensor_min(301)),
        ];
        for r in &records {
            let w = s.insert(r, &a).await.expect("insert");
            assert_eq!(&w.record, r, "the written record is the input");
            assert!(w.version > 0);
        }
        for r in &records {
            let back = s.get(r.layer(), r.id()).await.expect("get");
            assert_eq!(
                back.as_ref(),
                Some(r),
                "{} {} reads back equal",
                r.layer(),
                r.id()
            );
        }
        assert_eq!(s.get(Layer::Pipelines, 999).await.expect("get"), None);
        let c = counts(s).await;
        for l in Layer::ALL {
            assert_eq!(c[l], 2, "{l}");
        }
    }

    pub async fn ids_are_assigned_after_explicit_ones(s: &dyn Store) {
        let a = actor();
        let first = s
            .insert(&Record::Owner(owner_min(0)), &a)
            .await
            .expect("insert with id 0");
        assert!(first.record.id() > 0, "an id is assigned");
        s.insert(&Record::Owner(owner_full(100)), &a)
            .await
            .expect("explicit id");
        let next = s
            .insert(&Record::Owner(owner_min(0)), &a)
            .await
            .expect("insert with id 0 after an explicit id");
        assert!(
            next.record.id() > 100,
            "assigned id {} must not collide with explicit ids",
            next.record.id()
        );
        let back = s.get(Layer::Owners, next.record.id()).await.expect("get");
        assert_eq!(back, Some(next.record.clone()));
        // Layers with geometry too.
        let p = s
            .insert(&Record::Pipeline(pipeline_min(0, first.record.id())), &a)
            .await
            .expect("pipeline with id 0");
        assert!(p.record.id() > 0);
        assert_eq!(
            s.get(Layer::Pipelines, p.record.id()).await.expect("get"),
            Some(p.record)
        );
    }

    pub async fn duplicate_id_is_a_conflict(s: &dyn Store) {
        let a = actor();
        seed_parents(s).await;
        s.insert(&Record::Pipeline(pipeline_full(12, 1)), &a)
            .await
            .expect("first insert");
        let before = snapshot(s).await;
        let msg = conflict_message(s.insert(&Record::Pipeline(pipeline_min(12, 1)), &a).await);
        assert!(msg.contains("12"), "the message names the id: {msg}");
        let msg = conflict_message(s.insert(&Record::Owner(owner_min(1)), &a).await);
        assert!(msg.contains('1'), "{msg}");
        assert_eq!(snapshot(s).await, before, "nothing written");
        assert_eq!(
            s.get(Layer::Pipelines, 12).await.expect("get"),
            Some(Record::Pipeline(pipeline_full(12, 1))),
            "the original is untouched"
        );
    }

    pub async fn dangling_references_are_conflicts_naming_the_id(s: &dyn Store) {
        let a = actor();
        seed_parents(s).await;
        s.insert(&Record::Pipeline(pipeline_full(100, 1)), &a)
            .await
            .expect("pipeline");
        s.insert(&Record::RiskPoint(risk_point_full(200, 11)), &a)
            .await
            .expect("risk point");
        let cases = [
            (Record::Pipeline(pipeline_min(101, 99)), "99"),
            (Record::GridCell(street(12, 44)), "44"),
            (Record::RiskPoint(risk_point_full(201, 55)), "55"),
            (Record::Sensor(sensor_full(300, 77, 200)), "77"),
            (Record::Sensor(sensor_full(301, 100, 66)), "66"),
        ];
        for (r, id) in cases {
            let msg = conflict_message(s.insert(&r, &a).await);
            assert!(
                msg.contains(id),
                "{} insert: message names {id}: {msg}",
                r.layer()
            );
        }
        // Updates are checked too.
        let msg = conflict_message(
            s.update(&Record::Pipeline(pipeline_full(100, 98)), &a)
                .await,
        );
        assert!(msg.contains("98"), "update: {msg}");
    }

    pub async fn failed_writes_leave_nothing_behind(s: &dyn Store) {
        let a = actor();
        seed_parents(s).await;
        s.insert(&Record::Pipeline(pipeline_full(100, 1)), &a)
            .await
            .expect("pipeline");
        let before = snapshot(s).await;
        assert!(s
            .insert(&Record::Pipeline(pipeline_min(101, 99)), &a)
            .await
            .is_err());
        assert!(s
            .insert(&Record::Pipeline(pipeline_min(100, 1)), &a)
            .await
            .is_err());
        assert!(s
            .update(&Record::Pipeline(pipeline_min(555, 1)), &a)
            .await
            .is_err());
        assert!(s
            .update(&Record::Pipeline(pipeline_min(100, 97)), &a)
            .await
            .is_err());
        assert!(s.delete(Layer::Owners, 1, &a).await.is_err());
        assert!(s.delete(Layer::Sensors, 4242, &a).await.is_err());
        let mut bad = dataset();
        bad.pipelines.push(pipeline_min(102, 999));
        assert!(s.bulk_load(&bad, &a).await.is_err());
        assert_eq!(
            snapshot(s).await,
            before,
            "counts, change log, audit log and data unchanged"
        );
    }

    pub async fn update_replaces_and_missing_is_not_found(s: &dyn Store) {
        let a = actor();
        seed_parents(s).await;
        s.insert(&Record::Owner(owner_min(2)), &a)
            .await
            .expect("owner 2");
        let w = s
            .insert(&Record::Pipeline(pipeline_full(100, 1)), &a)
            .await
            .expect("insert");
        // Every optional field cleared, the owner and the geometry changed.
        let changed = Record::Pipeline(pipeline_min(100, 2));
        let u = s.update(&changed, &a).await.expect("update");
        assert_eq!(u.record, changed);
        assert!(u.version > w.version);
        assert_eq!(
            s.get(Layer::Pipelines, 100).await.expect("get"),
            Some(changed)
        );
        // And back to every field set.
        let full = Record::Pipeline(pipeline_full(100, 1));
        s.update(&full, &a).await.expect("update back");
        assert_eq!(s.get(Layer::Pipelines, 100).await.expect("get"), Some(full));
        let last = s.changes_since(u.version, 10).await.expect("changes");
        assert_eq!(last.len(), 1);
        assert_eq!(
            (last[0].op, last[0].layer, last[0].record_id),
            (ChangeOp::Update, Layer::Pipelines, 100)
        );

        match s.update(&Record::Sensor(sensor_min(4040)), &a).await {
            Err(StoreError::NotFound { layer, id }) => {
                assert_eq!((layer, id), (Layer::Sensors, 4040))
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
        assert_eq!(
            s.get(Layer::Sensors, 4040).await.expect("get"),
            None,
            "update must not insert"
        );
    }

    pub async fn delete_and_referenced_delete(s: &dyn Store) {
        let a = actor();
        seed_parents(s).await;
        s.insert(&Record::Pipeline(pipeline_full(5, 1)), &a)
            .await
            .expect("pipeline");
        let mut sensor = sensor_full(300, 5, 1);
        sensor.risk_point_id = None;
        s.insert(&Record::Sensor(sensor), &a).await.expect("sensor");
        let msg = conflict_message(s.delete(Layer::Pipelines, 5, &a).await);
        assert!(msg.contains('5'), "{msg}");
        let msg = conflict_message(s.delete(Layer::GridCells, 10, &a).await);
        assert!(msg.contains("10"), "{msg}");
        assert!(s.get(Layer::Pipelines, 5).await.expect("get").is_some());

        let v1 = s
            .delete(Layer::Sensors, 300, &a)
            .await
            .expect("delete sensor");
        let v2 = s
            .delete(Layer::Pipelines, 5, &a)
            .await
            .expect("delete pipeline");
        assert!(v2 > v1);
        assert_eq!(s.get(Layer::Pipelines, 5).await.expect("get"), None);
        match s.delete(Layer::Pipelines, 5, &a).await {
            Err(StoreError::NotFound { layer, id }) => {
                assert_eq!((layer, id), (Layer::Pipelines, 5))
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
        let c = s.changes_since(v1 - 1, 10).await.expect("changes");
        let ops: Vec<_> = c.iter().map(|c| (c.op, c.layer, c.record_id)).collect();
        assert_eq!(
            ops,
            vec![
                (ChangeOp::Delete, Layer::Sensors, 300),
                (ChangeOp::Delete, Layer::Pipelines, 5)
            ]
        );
    }

    pub async fn change_log_versions_and_paging(s: &dyn Store) {
        let a = actor();
        assert!(s.changes_since(0, 100).await.expect("changes").is_empty());
        let mut versions = vec![];
        let mut expect = vec![];
        for (r, op) in [
            (Record::Owner(owner_full(1)), ChangeOp::Insert),
            (Record::Owner(owner_min(2)), ChangeOp::Insert),
            (Record::Owner(owner_min(1)), ChangeOp::Update),
            (Record::Pipeline(pipeline_full(7, 2)), ChangeOp::Insert),
            (Record::Pipeline(pipeline_min(7, 1)), ChangeOp::Update),
        ] {
            let w = if op == ChangeOp::Insert {
                s.insert(&r, &a).await
            } else {
                s.update(&r, &a).await
            }
            .expect("write");
            versions.push(w.version);
            expect.push((op, r.layer(), r.id()));
        }
        versions.push(s.delete(Layer::Pipelines, 7, &a).await.expect("delete"));
        expect.push((ChangeOp::Delete, Layer::Pipelines, 7));
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");

        let all = s.changes_since(0, 100).await.expect("changes");
        assert_eq!(all.iter().map(|c| c.version).collect::<Vec<_>>(), versions);
        assert_eq!(
            all.iter()
                .map(|c| (c.op, c.layer, c.record_id))
                .collect::<Vec<_>>(),
            expect
        );
        assert!(all.iter().all(|c| c.actor == "conformance"));
        // Commit stamps are the store's own time (PostGIS's now(), as a database records
        // it), not the service clock's: compare them with the system's.
        let now = chrono::Utc::now();
        assert!(
            all.iter().all(|c| (now - c.at).num_seconds().abs() < 300),
            "timestamps are now"
        );

        // Paging two at a time gives the same list.
        let mut paged = vec![];
        let mut after = 0;
        loop {
            let page = s.changes_since(after, 2).await.expect("page");
            assert!(page.len() <= 2);
            let Some(last) = page.last() else { break };
            after = last.version;
            paged.extend(page);
        }
        assert_eq!(paged, all);
        assert!(s.changes_since(after, 10).await.expect("tail").is_empty());
        let from_third = s.changes_since(versions[2], 100).await.expect("from third");
        assert_eq!(from_third, all[3..].to_vec());
    }

    pub async fn bulk_load_is_all_or_nothing(s: &dyn Store) {
        let a = actor();
        let before = snapshot(s).await;
        // A dangling owner in the middle of the pipelines.
        let mut bad = dataset();
        bad.pipelines.insert(1, pipeline_min(150, 4242));
        assert!(matches!(
            s.bulk_load(&bad, &a).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            snapshot(s).await,
            before,
            "the owners and cells before it are gone too"
        );
        // A dangling pipeline in the last layer.
        let mut bad = dataset();
        bad.sensors.push(sensor_full(399, 4343, 200));
        let msg = conflict_message(s.bulk_load(&bad, &a).await);
        assert!(msg.contains("4343"), "{msg}");
        assert_eq!(snapshot(s).await, before);
        // The good set loads.
        s.bulk_load(&dataset(), &a).await.expect("good load");
        assert_eq!(
            sorted(s.load_all().await.expect("load_all")),
            sorted(dataset())
        );
    }

    pub async fn bulk_load_upserts_and_logs_per_layer(s: &dyn Store) {
        let a = actor();
        let v1 = s.bulk_load(&dataset(), &a).await.expect("first load");
        let c1 = counts(s).await;
        let log1 = s.changes_since(0, 100).await.expect("changes");
        assert_eq!(
            log1.len(),
            Layer::ALL.len(),
            "one bulk entry per layer: {log1:?}"
        );
        assert!(log1
            .iter()
            .all(|c| c.op == ChangeOp::Bulk && c.record_id == 0));
        let layers: std::collections::BTreeSet<_> = log1.iter().map(|c| c.layer).collect();
        assert_eq!(layers.len(), Layer::ALL.len());
        assert_eq!(
            log1.last().map(|c| c.version),
            Some(v1),
            "the returned version is the last"
        );

        // Same data again, one pipeline changed: counts unchanged, the change visible.
        let mut again = dataset();
        again.pipelines[0] = pipeline_min(100, 2);
        let v2 = s.bulk_load(&again, &a).await.expect("second load");
        assert!(v2 > v1);
        assert_eq!(counts(s).await, c1);
        assert_eq!(
            s.get(Layer::Pipelines, 100).await.expect("get"),
            Some(Record::Pipeline(pipeline_min(100, 2)))
        );
        // A load touching only owners logs one entry.
        let only = Dataset {
            owners: vec![owner_min(3)],
            ..Dataset::default()
        };
        let v3 = s.bulk_load(&only, &a).await.expect("owners only");
        let log = s.changes_since(v2, 100).await.expect("changes");
        assert_eq!(log.len(), 1);
        assert_eq!(
            (log[0].layer, log[0].op, log[0].version),
            (Layer::Owners, ChangeOp::Bulk, v3)
        );
        assert_eq!(counts(s).await[&Layer::Owners], 3);
    }

    pub async fn bulk_load_assigns_ids(s: &dyn Store) {
        let a = actor();
        let data = Dataset {
            owners: vec![owner_full(0), owner_min(50), owner_min(0)],
            ..Dataset::default()
        };
        s.bulk_load(&data, &a).await.expect("load");
        let loaded = sorted(s.load_all().await.expect("load_all"));
        let ids: Vec<i64> = loaded.owners.iter().map(|o| o.id).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids.iter().all(|&id| id > 0), "{ids:?}");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "distinct: {ids:?}");
        assert!(ids.contains(&50));
        let next = s
            .insert(&Record::Owner(owner_min(0)), &a)
            .await
            .expect("insert after load");
        assert!(
            !ids.contains(&next.record.id()),
            "{} collides",
            next.record.id()
        );
    }

    pub async fn api_keys_lifecycle(s: &dyn Store) {
        let a = Actor::cli();
        assert!(s.list_api_keys().await.expect("list").is_empty());
        let h1 = "a".repeat(64);
        let h2 = "b".repeat(64);
        let k1 = s
            .create_api_key("九龙坡调度", Role::Operator, &h1, &a)
            .await
            .expect("key 1");
        let k2 = s
            .create_api_key("施工单位", Role::Contractor, &h2, &a)
            .await
            .expect("key 2");
        assert_ne!(k1.id, k2.id);
        assert_eq!(
            (k1.name.as_str(), k1.role, k1.key_hash.as_str()),
            ("九龙坡调度", Role::Operator, h1.as_str())
        );
        assert_eq!(k1.revoked_at, None);
        assert_eq!(
            s.api_key_by_hash(&h1).await.expect("find"),
            Some(k1.clone())
        );
        assert_eq!(
            s.api_key_by_hash(&"c".repeat(64)).await.expect("find"),
            None
        );
        let list = s.list_api_keys().await.expect("list");
        assert_eq!(
            list.iter().map(|k| k.id).collect::<Vec<_>>(),
            vec![k2.id, k1.id],
            "newest first"
        );

        conflict_message(s.create_api_key("dup", Role::Viewer, &h1, &a).await);

        assert!(s.revoke_api_key(k1.id, &a).await.expect("revoke"));
        assert!(
            !s.revoke_api_key(k1.id, &a).await.expect("revoke again"),
            "already revoked"
        );
        assert!(!s.revoke_api_key(987_654, &a).await.expect("revoke missing"));
        let revoked = s
            .api_key_by_hash(&h1)
            .await
            .expect("find")
            .expect("still there");
        assert!(revoked.revoked_at.is_some());
        assert_eq!(s.list_api_keys().await.expect("list").len(), 2);
    }

    pub async fn audit_entries_for_every_write(s: &dyn Store) {
        let a = actor();
        s.insert(&Record::Owner(owner_full(1)), &a)
            .await
            .expect("insert");
        s.update(&Record::Owner(owner_min(1)), &a)
            .await
            .expect("update");
        s.insert(&Record::Sensor(sensor_min(9)), &a)
            .await
            .expect("insert");
        s.delete(Layer::Sensors, 9, &a).await.expect("delete");
        s.bulk_load(&dataset(), &a).await.expect("bulk");
        let key = s
            .create_api_key("k", Role::Viewer, &"d".repeat(64), &a)
            .await
            .expect("key");
        s.revoke_api_key(key.id, &a).await.expect("revoke");
        s.audit(
            &a,
            "denied",
            "pipelines/1",
            serde_json::json!({"reason": "role"}),
        )
        .await
        .expect("audit");
        // A failed write adds nothing.
        assert!(s.delete(Layer::Sensors, 9, &a).await.is_err());

        let log = s.audit_log(100).await.expect("audit log");
        let got: Vec<(&str, &str)> = log
            .iter()
            .map(|e| (e.action.as_str(), e.target.as_str()))
            .collect();
        let key_target = format!("keys/{}", key.id);
        assert_eq!(
            got,
            vec![
                ("denied", "pipelines/1"),
                ("key_revoke", key_target.as_str()),
                ("key_create", key_target.as_str()),
                ("bulk_load", got[3].1),
                ("delete", "sensors/9"),
                ("insert", "sensors/9"),
                ("update", "owners/1"),
                ("insert", "owners/1"),
            ],
            "newest first"
        );
        assert!(log
            .iter()
            .all(|e| e.actor == "conformance" && e.role == Role::Operator));
        assert_eq!(log[0].detail, serde_json::json!({"reason": "role"}));
        assert!(log
            .windows(2)
            .all(|w| w[0].id > w[1].id && w[0].at >= w[1].at));
        assert_eq!(s.audit_log(3).await.expect("limited").len(), 3);
    }

    /// Alarm changes and published traces share one log: ids in order of writing, each
    /// read back as what it was, the trace whole, and each with its audit entry.
    pub async fn risk_event_log_keeps_alarms_and_traces_in_order(s: &dyn Store) {
        use lifeline::model::alarm::*;
        let a = actor();
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let trace = |n: i64| PublishedTrace {
            message: Some(format!("爆管 {n}")),
            published_at: at + chrono::Duration::minutes(n),
            role: Role::Operator,
            lon: 106.5,
            lat: 29.5,
            broken_valves: vec![n],
            closed_valves: vec![],
            networks: vec![PublishedIsolation {
                kind: PipeKind::WaterSupply,
                start_pipes: vec![n, n + 1],
                valves_to_close: vec![7, 9],
                segment_pipes: vec![n, n + 1, n + 2],
                pocket_pipes: vec![40],
                customers: 1234,
                length_m: 812.5,
                source_inside: false,
            }],
        };
        let first = s.publish_trace(&trace(1), &a).await.expect("publish");
        let detect = AlarmOp::Detect(Detection {
            sensor_id: 5,
            sensor_kind: SensorKind::Pressure,
            risk_point_id: None,
            rule: AlarmRule::Threshold,
            severity: Severity::Alarm,
            value: Some(0.6),
            at,
            lon: 106.5,
            lat: 29.5,
        });
        let alarm = s
            .apply_alarm(&detect, &a, at)
            .await
            .expect("alarm")
            .expect("a new alarm");
        let second = s.publish_trace(&trace(2), &a).await.expect("publish");
        assert!(
            first < alarm.id && alarm.id < second,
            "{first} {} {second}",
            alarm.id
        );
        let log = s.risk_events_since(0, 10).await.expect("log");
        assert_eq!(log.len(), 3);
        assert_eq!(
            log[0],
            LoggedEvent::Trace(TraceEvent {
                id: first,
                trace: trace(1)
            })
        );
        assert_eq!(log[1], LoggedEvent::Alarm(alarm.clone()));
        assert_eq!(
            log[2],
            LoggedEvent::Trace(TraceEvent {
                id: second,
                trace: trace(2)
            })
        );
        assert_eq!(
            s.risk_events_since(first, 1).await.expect("page")[0].id(),
            alarm.id
        );
        assert_eq!(s.cursors().await.expect("cursors").0, second);
        let audit = s.audit_log(10).await.expect("audit");
        let published: Vec<&str> = audit
            .iter()
            .filter(|e| e.action == "trace_published")
            .map(|e| e.target.as_str())
            .collect();
        assert_eq!(published.len(), 2, "{audit:?}");
        assert!(published.contains(&format!("risk_events/{first}").as_str()));
        assert!(audit
            .iter()
            .all(|e| e.action != "trace_published" || e.actor == a.name));
    }

    /// Issue 16: random batches of readings over two days and three sensors (some of bad
    /// quality, some keys repeated within a batch), with earlier readings sent again in
    /// later batches (some with another value, which must change nothing): the hourly and
    /// daily rollups then give the same buckets as the raw rows, for every width they fit.
    pub async fn rollups_equal_raw_after_random_batches_with_resends(s: &dyn Store) {
        use lifeline::model::alarm::{Quality, Reading};
        use lifeline::model::history::{Rollup, DAY_MS, HOUR_MS};
        let day0 = chrono::DateTime::parse_from_rfc3339("2026-11-29T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut sent: Vec<Reading> = Vec::new();
        // The first reading of each key is the stored one.
        let mut stored: std::collections::HashMap<(i64, i64), Reading> = Default::default();
        let mut new_total = 0;
        for _ in 0..40 {
            let mut batch: Vec<Reading> = (0..next(120) + 1)
                .map(|_| Reading {
                    sensor_id: 1 + next(3) as i64,
                    // Whole seconds over two days: keys repeat now and then.
                    t: day0 + chrono::Duration::seconds(next(2 * 86_400) as i64),
                    value: next(10_000) as f64 / 100.0 - 50.0,
                    quality: match next(10) {
                        0 => Quality::Bad,
                        1 => Quality::Uncertain,
                        _ => Quality::Good,
                    },
                })
                .collect();
            for _ in 0..next(30) {
                if sent.is_empty() {
                    break;
                }
                let mut again = sent[next(sent.len() as u64) as usize];
                if next(2) == 0 {
                    again.value += 1.0;
                }
                batch.push(again);
            }
            let fresh = s.insert_readings(&batch).await.expect("insert");
            for (r, is_new) in batch.iter().zip(&fresh) {
                let key = (r.sensor_id, r.t.timestamp_millis());
                assert_eq!(*is_new, !stored.contains_key(&key), "{r:?}");
                if *is_new {
                    stored.insert(key, *r);
                    new_total += 1;
                }
            }
            sent.extend(batch);
        }
        assert_eq!(new_total, stored.len());
        let (from, to) = (day0, day0 + chrono::Duration::days(2));
        let mut counted = 0;
        for sensor in 1..=3 {
            for (every, rollup) in [
                (HOUR_MS, Rollup::Hourly),
                (2 * HOUR_MS, Rollup::Hourly),
                (DAY_MS, Rollup::Hourly),
                (DAY_MS, Rollup::Daily),
                (2 * DAY_MS, Rollup::Daily),
            ] {
                let raw = s
                    .reading_buckets(sensor, from, to, every)
                    .await
                    .expect("raw buckets");
                let rolled = s
                    .rollup_buckets(sensor, from, to, every, rollup)
                    .await
                    .expect("rollup buckets");
                assert_eq!(raw.len(), rolled.len(), "sensor {sensor}, {every} ms");
                for (a, b) in raw.iter().zip(&rolled) {
                    assert_eq!(
                        (a.t, a.count, a.min, a.max),
                        (b.t, b.count, b.min, b.max),
                        "sensor {sensor}, {every} ms, {rollup}"
                    );
                    assert!(
                        (a.mean - b.mean).abs() <= 1e-9 * a.mean.abs().max(1.0),
                        "{a:?} {b:?}"
                    );
                }
                if every == DAY_MS && rollup == Rollup::Daily {
                    counted += rolled.iter().map(|b| b.count).sum::<i64>();
                }
            }
        }
        let good = stored
            .values()
            .filter(|r| r.quality != Quality::Bad)
            .count();
        assert_eq!(counted as usize, good, "every new reading counted once");
    }

    /// Issue 16: a maintenance round removes raw readings older than the horizon (whole
    /// daily partitions on PostGIS, rows on GeoPackage), makes partitions ahead, keeps the
    /// rollups of the removed days, and a second round at the same time does nothing.
    pub async fn maintenance_expires_raw_readings_and_keeps_rollups(s: &dyn Store) {
        use lifeline::model::alarm::{Quality, Reading};
        use lifeline::model::history::{RetentionPolicy, Rollup, DAY_MS};
        use lifeline::store::Backend;
        let at = |v: &str| {
            chrono::DateTime::parse_from_rfc3339(v)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let start = at("2026-11-20T00:00:00Z");
        // Four readings a day from 11-20 to 12-07.
        let rows: Vec<Reading> = (0..18 * 4)
            .map(|i| Reading {
                sensor_id: 7,
                t: start + chrono::Duration::hours(6 * i),
                value: i as f64,
                quality: Quality::Good,
            })
            .collect();
        s.insert_readings(&rows).await.expect("insert");
        let (from, to) = (start, at("2026-12-08T00:00:00Z"));
        let before = s
            .rollup_buckets(7, from, to, DAY_MS, Rollup::Daily)
            .await
            .expect("daily");
        assert_eq!(before.len(), 18);
        let now = at("2026-12-07T15:00:00Z");
        let policy = RetentionPolicy::new(10).expect("policy");
        let horizon = at("2026-11-27T00:00:00Z");
        let report = s.maintain_readings(now, &policy).await.expect("maintain");
        assert_eq!(report.horizon, Some(horizon));
        let expired = rows.iter().filter(|r| r.t < horizon).count();
        match s.backend() {
            Backend::Postgis => {
                let dropped: Vec<String> = (20..=26)
                    .map(|d| format!("readings_p2026_11_{d}"))
                    .collect();
                assert_eq!(report.partitions_dropped, dropped);
                // The days with readings have partitions already (made by ingest); the
                // three ahead of today are new.
                assert_eq!(
                    report.partitions_created,
                    [
                        "readings_p2026_12_08",
                        "readings_p2026_12_09",
                        "readings_p2026_12_10"
                    ]
                );
                assert_eq!(report.rows_deleted, 0);
            }
            _ => {
                assert_eq!(report.rows_deleted as usize, expired);
                assert!(report.partitions_created.is_empty());
            }
        }
        assert!(report.partitions_to_columnar.is_empty());
        let old = s
            .readings(7, start, horizon, 10_000)
            .await
            .expect("old raw");
        assert!(old.is_empty(), "{old:?}");
        let kept = s.readings(7, horizon, to, 10_000).await.expect("raw");
        assert_eq!(kept.len(), rows.len() - expired);
        let after = s
            .rollup_buckets(7, from, to, DAY_MS, Rollup::Daily)
            .await
            .expect("daily");
        assert_eq!(after, before, "rollups outlive retention");
        let again = s.maintain_readings(now, &policy).await.expect("again");
        assert!(again.partitions_created.is_empty());
        assert!(again.partitions_dropped.is_empty());
        assert_eq!(again.rows_deleted, 0);
    }

    pub async fn migrate_twice_is_a_no_op(s: &dyn Store) {
        let v1 = s.migrate().await.expect("migrate");
        assert!(v1 >= 1);
        s.bulk_load(&dataset(), &actor()).await.expect("load");
        let before = snapshot(s).await;
        let v2 = s.migrate().await.expect("migrate again");
        assert_eq!(v1, v2);
        assert_eq!(snapshot(s).await, before);
        s.ping().await.expect("ping");
    }

    pub async fn load_all_equals_what_was_written(s: &dyn Store) {
        let a = actor();
        assert!(s.load_all().await.expect("empty load").is_empty());
        s.bulk_load(&dataset(), &a).await.expect("load");
        let mut expect = dataset();
        // Writes after the bulk load show up too.
        let extra = s
            .insert(&Record::Pipeline(pipeline_min(0, 1)), &a)
            .await
            .expect("insert");
        if let Record::Pipeline(p) = extra.record {
            expect.pipelines.push(p);
        }
        s.update(&Record::Sensor(sensor_min(300)), &a)
            .await
            .expect("update");
        expect.sensors[0] = sensor_min(300);
        s.delete(Layer::Sensors, 301, &a).await.expect("delete");
        expect.sensors.pop();
        assert_eq!(
            sorted(s.load_all().await.expect("load_all")),
            sorted(expect)
        );
    }
}

/// Bulk-loads and reads back a synthetic network of 200,000 pipelines (+ 50,000 sensors)
/// on PostGIS, checks it reads back equal, and prints the timings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale run: cargo test --test store_conformance postgis_scale -- --ignored --nocapture"]
async fn postgis_scale() {
    let n: usize = std::env::var("LIFELINE_SCALE_PIPES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let data = synthetic(n);
    let s = postgis().await;
    let t = std::time::Instant::now();
    s.bulk_load(&data, &actor()).await.expect("bulk load");
    let load = t.elapsed();
    let t = std::time::Instant::now();
    let back = s.load_all().await.expect("load_all");
    let read = t.elapsed();
    println!(
        "postgis: {} records ({} pipelines, {} sensors): bulk_load {:.2} s, load_all {:.2} s",
        data.len(),
        data.pipelines.len(),
        data.sensors.len(),
        load.as_secs_f64(),
        read.as_secs_f64()
    );
    // Upsert of the same data: every row conflicts and is replaced.
    let t = std::time::Instant::now();
    s.bulk_load(&data, &actor()).await.expect("bulk load again");
    println!(
        "postgis: bulk_load again (all upserts) {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(sorted(back), sorted(data));
}
