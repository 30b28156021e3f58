//! Migration 0010 (the readings history, issue 16) on stores that already hold readings,
//! and what retention leaves on disk, on both engines:
//!
//! * a database migrated to 0009 with readings written into the old, unpartitioned table
//!   keeps every row through 0010; PostGIS then has `readings` partitioned by day (the
//!   partitions of the old rows' days, found through `pg_inherits`) under the old key and
//!   constraint names, and both engines have the rollups backfilled to equal the raw rows;
//! * maintenance creates the partitions ahead and drops those past the horizon (PostGIS,
//!   checked in `pg_inherits`), or deletes the old rows (GeoPackage, checked in the file),
//!   and the rollups survive it.

use chrono::{DateTime, Duration, Utc};
use lifeline_model::alarm::{Quality, Reading};
use lifeline_model::history::{RetentionPolicy, Rollup, DAY_MS, HOUR_MS};
use lifeline_store::gpkg::GpkgStore;
use lifeline_store::postgis::PostgisStore;
use lifeline_store::readings::RiskStore;
use lifeline_store::StoreInfo;
use std::path::PathBuf;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The migration files of an engine numbered below `below`, in order.
fn migrations_before(engine: &str, below: u32) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(engine);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("migrations dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.get(..4))
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n < below)
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read migration"))
        .collect()
}

fn version_of(sql_index: usize, engine: &str) -> i64 {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(engine);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.get(..4)
                .and_then(|v| v.parse::<u32>().ok())
                .is_some_and(|v| v < 10)
        })
        .collect();
    names.sort();
    names[sql_index][..4].parse().unwrap()
}

/// The rows written before the migration: three sensors over three days (one day skipped),
/// some of bad quality (kept raw, left out of the rollups).
fn old_rows() -> Vec<Reading> {
    let mut out = Vec::new();
    for (i, day) in ["2026-11-01", "2026-11-02", "2026-11-05"]
        .iter()
        .enumerate()
    {
        for sensor in 1..=3i64 {
            for k in 0..30i64 {
                let at = t(&format!("{day}T00:00:00Z")) + Duration::minutes(47 * k + sensor);
                out.push(Reading {
                    sensor_id: sensor,
                    t: at,
                    value: (sensor * 10 + k) as f64 * 0.25 - i as f64,
                    quality: if k % 9 == 4 {
                        Quality::Bad
                    } else {
                        Quality::Good
                    },
                });
            }
        }
    }
    out
}

/// Rollup buckets equal the raw ones over the aligned range (count, min, max exactly; mean
/// to floating tolerance).
async fn assert_rollups_equal_raw(s: &dyn RiskStore, from: DateTime<Utc>, to: DateTime<Utc>) {
    for sensor in 1..=3 {
        for (every, rollup) in [
            (HOUR_MS, Rollup::Hourly),
            (3 * HOUR_MS, Rollup::Hourly),
            (DAY_MS, Rollup::Daily),
        ] {
            let raw = s.reading_buckets(sensor, from, to, every).await.unwrap();
            let rolled = s
                .rollup_buckets(sensor, from, to, every, rollup)
                .await
                .unwrap();
            assert!(!raw.is_empty());
            assert_eq!(raw.len(), rolled.len(), "sensor {sensor} every {every}");
            for (a, b) in raw.iter().zip(&rolled) {
                assert_eq!((a.t, a.count, a.min, a.max), (b.t, b.count, b.min, b.max));
                assert!((a.mean - b.mean).abs() <= 1e-9 * a.mean.abs().max(1.0));
            }
        }
    }
}

#[tokio::test]
async fn postgis_0010_keeps_old_rows_partitions_them_and_retention_drops_partitions() {
    let url = lifeline_pgcluster::shared()
        .fresh_database("history")
        .expect("create a test database");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    // The schema as it was before 0010, recorded as applied so the store adds only 0010.
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .unwrap();
    for (i, sql) in migrations_before("postgis", 10).iter().enumerate() {
        client.batch_execute(sql).await.expect("old migration");
        client
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, 'old')",
                &[&version_of(i, "postgis")],
            )
            .await
            .unwrap();
    }
    let rows = old_rows();
    for r in &rows {
        client
            .execute(
                "INSERT INTO readings (sensor_id, t, value, quality) VALUES ($1, $2, $3, $4)",
                &[&r.sensor_id, &r.t, &r.value, &r.quality.as_str()],
            )
            .await
            .unwrap();
    }
    let store = PostgisStore::connect(&url, 2)
        .await
        .expect("migrate to 0010");
    let count: i64 = client
        .query_one("SELECT count(*) FROM readings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, rows.len() as i64);
    let kind: i8 = client
        .query_one(
            "SELECT relkind::\"char\" FROM pg_class WHERE oid = 'readings'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kind as u8, b'p', "readings is partitioned");
    let list = children(&client).await;
    // The days from the oldest row's to the newest's, empty ones included.
    let want_list: Vec<String> = (1..=5)
        .map(|d| format!("readings_p2026_11_{d:02}"))
        .collect();
    assert_eq!(list, want_list);
    let constraints: Vec<String> = client
        .query(
            "SELECT conname::text FROM pg_constraint WHERE conrelid = 'readings'::regclass \
             ORDER BY conname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(constraints, ["readings_pkey", "readings_quality_check"]);
    // Each old row is where it was, value and quality included.
    let back = store
        .readings(
            2,
            t("2026-11-01T00:00:00Z"),
            t("2026-11-06T00:00:00Z"),
            1000,
        )
        .await
        .unwrap();
    let mut want: Vec<_> = rows.iter().filter(|r| r.sensor_id == 2).cloned().collect();
    want.sort_by_key(|r| r.t);
    assert_eq!(back, want);
    assert_rollups_equal_raw(&store, t("2026-11-01T00:00:00Z"), t("2026-11-06T00:00:00Z")).await;

    // Retention of 10 days at 2026-11-13 15:00: horizon 2026-11-03, partitions to 11-16.
    let policy = RetentionPolicy::new(10).unwrap();
    let daily_before = store
        .rollup_buckets(
            1,
            t("2026-11-01T00:00:00Z"),
            t("2026-11-06T00:00:00Z"),
            DAY_MS,
            Rollup::Daily,
        )
        .await
        .unwrap();
    let report = store
        .maintain_readings(t("2026-11-13T15:00:00Z"), &policy)
        .await
        .unwrap();
    assert_eq!(report.horizon, Some(t("2026-11-03T00:00:00Z")));
    assert_eq!(
        report.partitions_dropped,
        ["readings_p2026_11_01", "readings_p2026_11_02"]
    );
    // From today on only: past days get theirs when a reading for them arrives.
    let want_created: Vec<String> = (13..=16)
        .map(|d| format!("readings_p2026_11_{d:02}"))
        .collect();
    assert_eq!(report.partitions_created, want_created);
    assert!(report.partitions_to_columnar.is_empty());
    let list = children(&client).await;
    let want_list: Vec<String> = (3..=5)
        .chain(13..=16)
        .map(|d| format!("readings_p2026_11_{d:02}"))
        .collect();
    assert_eq!(list, want_list);
    // Raw rows of the dropped days are gone, the others kept; the rollups keep every day.
    let count: i64 = client
        .query_one("SELECT count(*) FROM readings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, (rows.len() / 3) as i64);
    let daily_after = store
        .rollup_buckets(
            1,
            t("2026-11-01T00:00:00Z"),
            t("2026-11-06T00:00:00Z"),
            DAY_MS,
            Rollup::Daily,
        )
        .await
        .unwrap();
    assert_eq!(daily_after, daily_before);
    assert_eq!(daily_after.len(), 3);
    // A second round at the same time finds nothing to do.
    let again = store
        .maintain_readings(t("2026-11-13T15:00:00Z"), &policy)
        .await
        .unwrap();
    assert!(again.partitions_created.is_empty() && again.partitions_dropped.is_empty());
    // A reading on a day without a partition gets one on the spot.
    let late = Reading {
        sensor_id: 1,
        t: t("2027-02-01T08:00:00Z"),
        value: 1.0,
        quality: Quality::Good,
    };
    assert_eq!(store.insert_readings(&[late]).await.unwrap(), [true]);
    assert!(children(&client)
        .await
        .contains(&"readings_p2027_02_01".to_string()));
}

/// The partitions of `readings`, by name, from the catalogue.
async fn children(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'readings'::regclass ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn geopackage_0010_keeps_old_rows_backfills_rollups_and_retention_deletes_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.gpkg");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at DATETIME NOT NULL)",
        )
        .unwrap();
        for (i, sql) in migrations_before("gpkg", 10).iter().enumerate() {
            c.execute_batch(sql).expect("old migration");
            c.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, '2026-11-01')",
                [version_of(i, "gpkg")],
            )
            .unwrap();
        }
        for r in old_rows() {
            c.execute(
                "INSERT INTO readings (sensor_id, t, value, quality) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    r.sensor_id,
                    r.t.timestamp_millis(),
                    r.value,
                    r.quality.as_str()
                ],
            )
            .unwrap();
        }
    }
    let store = GpkgStore::open(&path).unwrap();
    // 0010 and whatever came after it.
    assert!(store.migrate().await.unwrap() >= 10);
    let rows = old_rows();
    let back = store
        .readings(
            3,
            t("2026-11-01T00:00:00Z"),
            t("2026-11-06T00:00:00Z"),
            1000,
        )
        .await
        .unwrap();
    let mut want: Vec<_> = rows.iter().filter(|r| r.sensor_id == 3).cloned().collect();
    want.sort_by_key(|r| r.t);
    assert_eq!(back, want);
    assert_rollups_equal_raw(&store, t("2026-11-01T00:00:00Z"), t("2026-11-06T00:00:00Z")).await;
    let daily_before = store
        .rollup_buckets(
            2,
            t("2026-11-01T00:00:00Z"),
            t("2026-11-06T00:00:00Z"),
            DAY_MS,
            Rollup::Daily,
        )
        .await
        .unwrap();
    let report = store
        .maintain_readings(
            t("2026-11-13T15:00:00Z"),
            &RetentionPolicy::new(10).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(report.horizon, Some(t("2026-11-03T00:00:00Z")));
    assert_eq!(report.rows_deleted, (rows.len() * 2 / 3) as u64);
    assert!(report.partitions_created.is_empty() && report.partitions_dropped.is_empty());
    drop(store);
    let c = rusqlite::Connection::open(&path).unwrap();
    let (left, oldest): (i64, i64) = c
        .query_row("SELECT count(*), min(t) FROM readings", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(left, (rows.len() / 3) as i64);
    assert!(oldest >= t("2026-11-03T00:00:00Z").timestamp_millis());
    let store = GpkgStore::open(&path).unwrap();
    let daily_after = store
        .rollup_buckets(
            2,
            t("2026-11-01T00:00:00Z"),
            t("2026-11-06T00:00:00Z"),
            DAY_MS,
            Rollup::Daily,
        )
        .await
        .unwrap();
    assert_eq!(daily_after, daily_before);
}

/// Measurements for BENCHMARKS.md ("Readings history"), printed as Markdown rows:
///
/// * store-level ingest on PostGIS, 300,000 readings in batches of 10,000 (5,000 sensors,
///   one reading a minute each): the statement before issue 16 (`INSERT … unnest … ON
///   CONFLICT DO NOTHING RETURNING`) into the old unpartitioned table and into the
///   partitioned one, against today's `insert_readings` (the same plus both rollups), in
///   alternating rounds;
/// * the history query: one sensor with a year of minute data (525,600 rows), `every=1h`
///   over the year (8,760 buckets) from the hourly rollup and from the raw rows, p50/p99,
///   on both engines.
///
/// `cargo test -p lifeline-store --test readings_history history_bench -- --ignored
/// --nocapture` (the client is a test build; the work measured is the database's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: -- --ignored --nocapture"]
async fn history_bench() {
    let rounds: usize = std::env::var("LIFELINE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let url = lifeline_pgcluster::shared()
        .fresh_database("history_bench")
        .expect("database");
    let store = PostgisStore::connect(&url, 4).await.expect("connect");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE readings_flat (sensor_id bigint NOT NULL, t timestamptz NOT NULL, \
             value double precision NOT NULL, quality text NOT NULL \
             CHECK (quality IN ('good', 'uncertain', 'bad')), PRIMARY KEY (sensor_id, t)); \
             CREATE INDEX ON readings_flat USING brin (t)",
        )
        .await
        .unwrap();
    let old_stmt = |table: &str| {
        format!(
            "INSERT INTO {table} (sensor_id, t, value, quality) \
             SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::float8[], $4::text[]) \
             ON CONFLICT DO NOTHING RETURNING sensor_id, t"
        )
    };
    // 300,000 readings: 5,000 sensors, 60 minutes of day `day`.
    let batches = |day: i64| -> Vec<Vec<Reading>> {
        let base = t("2026-12-01T00:00:00Z") + Duration::days(day);
        let all: Vec<Reading> = (0..60)
            .flat_map(|m| {
                (1..=5_000i64).map(move |s| Reading {
                    sensor_id: s,
                    t: base + Duration::minutes(m),
                    value: (s % 97) as f64 + m as f64 * 0.01,
                    quality: if (s + m) % 50 == 0 {
                        Quality::Bad
                    } else {
                        Quality::Good
                    },
                })
            })
            .collect();
        all.chunks(10_000).map(<[Reading]>::to_vec).collect()
    };
    // Every day's partition made beforehand, so no run pays for one.
    client
        .query(
            "SELECT lifeline_readings_partitions($1, $2)",
            &[&t("2026-12-01T00:00:00Z"), &t("2027-01-01T00:00:00Z")],
        )
        .await
        .unwrap();
    let mut rates: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds as i64 {
        for (k, which) in ["flat", "partitioned", "rollups"].iter().enumerate() {
            // Each run its own day: no run meets another's rows.
            let data = batches(round * 3 + k as i64);
            let n: usize = data.iter().map(Vec::len).sum();
            let start = std::time::Instant::now();
            for b in &data {
                match *which {
                    "rollups" => {
                        store.insert_readings(b).await.unwrap();
                    }
                    table => {
                        let table = if table == "flat" {
                            "readings_flat"
                        } else {
                            "readings"
                        };
                        let ids: Vec<i64> = b.iter().map(|r| r.sensor_id).collect();
                        let ts: Vec<DateTime<Utc>> = b.iter().map(|r| r.t).collect();
                        let vs: Vec<f64> = b.iter().map(|r| r.value).collect();
                        let qs: Vec<&str> = b.iter().map(|r| r.quality.as_str()).collect();
                        client
                            .query(&old_stmt(table), &[&ids, &ts, &vs, &qs])
                            .await
                            .unwrap();
                    }
                }
            }
            rates[k].push(n as f64 / start.elapsed().as_secs_f64());
        }
    }
    let fmt = |v: &Vec<f64>| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let each: Vec<String> = v.iter().map(|r| format!("{:.1}", r / 1e3)).collect();
        format!("**{:.1} k/s** ({})", mean / 1e3, each.join(", "))
    };
    println!(
        "| PostGIS store ingest, before issue 16 (unpartitioned table, no rollups) | 300,000 × {rounds} | {} |",
        fmt(&rates[0])
    );
    println!(
        "| PostGIS store ingest, daily partitions, no rollups | 300,000 × {rounds} | {} |",
        fmt(&rates[1])
    );
    println!(
        "| PostGIS store ingest, daily partitions + hourly and daily rollups (`insert_readings`) | 300,000 × {rounds} | {} |",
        fmt(&rates[2])
    );

    // The history query: one sensor, a year of minute data.
    let dir = tempfile::tempdir().unwrap();
    let gpkg = GpkgStore::open(&dir.path().join("bench.gpkg")).unwrap();
    gpkg.migrate().await.unwrap();
    let year0 = t("2025-12-01T00:00:00Z");
    let minutes = 525_600i64;
    for (name, s) in [("PostGIS", &store as &dyn RiskStore), ("GeoPackage", &gpkg)] {
        let load = std::time::Instant::now();
        for chunk in (0..minutes).collect::<Vec<_>>().chunks(10_000) {
            let b: Vec<Reading> = chunk
                .iter()
                .map(|m| Reading {
                    sensor_id: 900_001,
                    t: year0 + Duration::minutes(*m),
                    value: ((*m as f64) / 1440.0).sin() * 5.0 + (*m % 7) as f64 * 0.1,
                    quality: Quality::Good,
                })
                .collect();
            s.insert_readings(&b).await.unwrap();
        }
        println!(
            "<!-- {name}: 525,600 minute readings of one sensor stored in {:.1} s -->",
            load.elapsed().as_secs_f64()
        );
        let to = year0 + Duration::minutes(minutes);
        for source in ["hourly rollup", "raw rows"] {
            let mut times = Vec::new();
            let mut buckets = 0;
            for i in 0..40 {
                let start = std::time::Instant::now();
                let b = if source == "raw rows" {
                    s.reading_buckets(900_001, year0, to, HOUR_MS)
                        .await
                        .unwrap()
                } else {
                    s.rollup_buckets(900_001, year0, to, HOUR_MS, Rollup::Hourly)
                        .await
                        .unwrap()
                };
                if i >= 3 {
                    times.push(start.elapsed().as_secs_f64() * 1e3);
                }
                buckets = b.len();
                if source == "raw rows" && i >= 12 {
                    break;
                }
            }
            times.sort_by(f64::total_cmp);
            let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
            println!(
                "| history, one sensor, 525,600 minute readings, `every=1h` over the year ({buckets} buckets), {source} | {name} | {} calls | p50 **{:.1} ms**, p99 {:.1} ms |",
                times.len(),
                pct(0.5),
                pct(0.99)
            );
        }
    }
}
