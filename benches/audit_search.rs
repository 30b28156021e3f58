//! The audit search on a year of simulated traffic (issue 21; a `harness = false` bench
//! that prints Markdown rows for BENCHMARKS.md): "who saw pipes within this area last
//! month" through `AuditLog::search_audit`, the query `GET /admin/audit` runs, on both
//! stores.
//!
//! The year: 365 days of the city's reads above a viewer's, 3,500 entries a day (1.28 M):
//! 900 excavation checks (digs of 20–80 m), 1,800 layer reads, traces and analyses (boxes
//! of 100 m–3 km), 800 tile groups (boxes of z14–z16 ranges), by 400 keys, in working
//! hours, over the central city (106.30–106.80 E, 29.35–29.75 N). The rows are written
//! directly (their chain columns are filler: the search does not read them, and sealing a
//! year one entry at a time is not what is measured).
//!
//! `cargo bench --bench audit_search -- [postgis|gpkg|both] [days]`

use chrono::{DateTime, Duration, TimeZone, Utc};
use lifeline::model::audit::AuditFilter;
use lifeline::model::{Bbox, Layer};
use lifeline::store::{self, SharedStore};
use rand::{Rng, SeedableRng};
use std::time::Instant;

const PER_DAY: usize = 3_500;

struct Row {
    at: DateTime<Utc>,
    actor: String,
    role: &'static str,
    action: &'static str,
    layers: &'static str,
    bbox: [f64; 4],
}

fn year(days: i64, end: DateTime<Utc>) -> Vec<Row> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    let mut out = Vec::with_capacity(days as usize * PER_DAY);
    for d in 0..days {
        let day = end - Duration::days(days - d);
        for i in 0..PER_DAY {
            let at = day + Duration::seconds(rng.gen_range(8 * 3600..20 * 3600));
            let (action, role, layers, size_m) = match i % 35 {
                0..=8 => (
                    "excavation_check",
                    "contractor",
                    r#"["pipelines","owners"]"#,
                    rng.gen_range(20.0..80.0),
                ),
                9..=26 => {
                    let a = ["features", "ogc_items", "trace", "analysis"][i % 4];
                    (
                        a,
                        "analyst",
                        r#"["pipelines"]"#,
                        rng.gen_range(100.0..3000.0),
                    )
                }
                _ => (
                    "tiles",
                    "operator",
                    r#"["pipelines"]"#,
                    rng.gen_range(600.0..5000.0),
                ),
            };
            let (x, y) = (rng.gen_range(106.30..106.80), rng.gen_range(29.35..29.75));
            let (dx, dy) = (size_m / 96_900.0, size_m / 110_800.0);
            out.push(Row {
                at,
                actor: format!("key-{}", rng.gen_range(0..400)),
                role,
                action,
                layers,
                bbox: [x, y, x + dx, y + dy],
            });
        }
    }
    out
}

async fn load_postgis(url: &str, rows: &[Row]) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain")
        .await
        .expect("disable");
    for (n, chunk) in rows.chunks(20_000).enumerate() {
        let base = (n * 20_000) as i64;
        let at: Vec<_> = chunk.iter().map(|r| r.at).collect();
        let actor: Vec<_> = chunk.iter().map(|r| r.actor.as_str()).collect();
        let role: Vec<_> = chunk.iter().map(|r| r.role).collect();
        let action: Vec<_> = chunk.iter().map(|r| r.action).collect();
        let detail: Vec<String> = chunk
            .iter()
            .map(|r| format!(r#"{{"layers":{},"features":12}}"#, r.layers))
            .collect();
        let c = |i: usize| chunk.iter().map(|r| r.bbox[i]).collect::<Vec<f64>>();
        let seq: Vec<i64> = (0..chunk.len() as i64).map(|i| base + i + 1).collect();
        client
            .execute(
                "INSERT INTO audit_log (at, actor, role, action, target, detail, area, seq, prev_hash, hash)
                 SELECT at, actor, role, action, action, detail::jsonb,
                        ST_MakeEnvelope(x0, y0, x1, y1, 4490), seq, '', ''
                 FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::int8[])
                      AS t(at, actor, role, action, detail, x0, y0, x1, y1, seq)",
                &[&at, &actor, &role, &action, &detail, &c(0), &c(1), &c(2), &c(3), &seq],
            )
            .await
            .expect("insert");
    }
    client
        .batch_execute("ANALYZE audit_log")
        .await
        .expect("analyze");
}

fn load_gpkg(path: &str, rows: &[Row]) {
    let mut c = rusqlite::Connection::open(path).expect("open");
    c.execute_batch("DROP TRIGGER audit_log_chain")
        .expect("drop");
    let tx = c.transaction().expect("tx");
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO audit_log (at, actor, role, action, target, detail, min_x, min_y, max_x, max_y, seq, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10, '', '')",
            )
            .expect("prepare");
        let mut rt = tx
            .prepare("INSERT INTO rtree_audit_log_area (id, minx, maxx, miny, maxy) VALUES (last_insert_rowid(), ?1, ?2, ?3, ?4)")
            .expect("prepare");
        for (i, r) in rows.iter().enumerate() {
            let at = r.at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            let detail = format!(r#"{{"layers":{},"features":12}}"#, r.layers);
            let b = r.bbox;
            ins.execute(rusqlite::params![
                at,
                r.actor,
                r.role,
                r.action,
                detail,
                b[0],
                b[1],
                b[2],
                b[3],
                i as i64 + 1
            ])
            .expect("insert");
            rt.execute(rusqlite::params![b[0], b[2], b[1], b[3]])
                .expect("rtree");
        }
    }
    tx.commit().expect("commit");
    c.execute_batch("ANALYZE").expect("analyze");
}

async fn measure(name: &str, store: &SharedStore, end: DateTime<Utc>, n: usize) {
    // About a district block: 1.5 km × 1.5 km in the middle of the city.
    let area = Bbox::new(106.55, 29.55, 106.5655, 29.5635).expect("bbox");
    let filter = AuditFilter {
        action: Some("read".into()),
        layer: Some(Layer::Pipelines),
        bbox: Some(area),
        from: Some(end - Duration::days(30)),
        to: Some(end),
        limit: 100_000,
        ..Default::default()
    };
    let by_actor = AuditFilter {
        actor: Some("key-7".into()),
        from: Some(end - Duration::days(30)),
        to: Some(end),
        limit: 100_000,
        ..Default::default()
    };
    for (what, f) in [
        ("area + last month", &filter),
        ("one key, last month", &by_actor),
    ] {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..11 {
            let t = Instant::now();
            found = store.search_audit(f).await.expect("search").len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {name} | {n} entries | {what} | {found} found | median {:.1} ms | max {:.1} ms |",
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let which = args.first().map_or("both", String::as_str).to_string();
    let days: i64 = args.get(1).and_then(|d| d.parse().ok()).unwrap_or(365);
    let end = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let t = Instant::now();
    let rows = year(days, end);
    eprintln!("generated {} entries in {:?}", rows.len(), t.elapsed());
    if which == "postgis" || which == "both" {
        let url = lifeline_pgcluster::shared()
            .create_database("audit_bench")
            .expect("database");
        let store = store::open(&url, 4).await.expect("open");
        let t = Instant::now();
        load_postgis(&url, &rows).await;
        eprintln!("postgis loaded in {:?}", t.elapsed());
        measure("PostGIS", &store, end, rows.len()).await;
    }
    if which == "gpkg" || which == "both" {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.gpkg").display().to_string();
        drop(store::open(&path, 1).await.expect("create"));
        let t = Instant::now();
        load_gpkg(&path, &rows);
        eprintln!("gpkg loaded in {:?}", t.elapsed());
        let store = store::open(&path, 1).await.expect("open");
        measure("GeoPackage", &store, end, rows.len()).await;
    }
}
