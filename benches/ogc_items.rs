//! OGC API items latency (issue 6), timed per operation so tails are
//! real: (1) `/items` work — parameter parsing, CQL2 compilation, R-tree candidates, typed
//! filter evaluation, paging, and the whole GeoJSON FeatureCollection written to bytes — for
//! a 1.5 km bbox plus a CQL2 filter with `limit=1000`, at 2,000 random windows on pipelines,
//! and the same filter over the whole layer (no bbox; what the SQL pushdown serves on
//! PostGIS). Import throughput has its own bench, `benches/import.rs`.
//! `LIFELINE_BENCH_PRESET` (default `jiulongpo`; `city` for city scale);
//! `LIFELINE_BENCH_PG=1` also loads the
//! preset into a throwaway PostGIS and times the same whole-layer queries through the SQL
//! pushdown path (translate, PostGIS page + count, records from the index, bytes).
//! Run: `cargo bench --bench ogc_items`.

use lifeline::generate::bench_dataset;
use lifeline::index::SpatialIndex;
use lifeline::model::crs::MetricCrs;
use lifeline::model::{Actor, Layer, Role};
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let (data, _) = bench_dataset();
    let n_pipes = data.pipelines.len();
    let pg_data = std::env::var("LIFELINE_BENCH_PG")
        .is_ok_and(|v| v == "1")
        .then(|| data.clone());
    let index = SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap());
    index.load(data).unwrap();
    let pipes = index.all(Layer::Pipelines);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let filter = "kind IN ('gas','water_supply','drainage') AND diameter_mm >= 100";
    let mut times = Vec::new();
    let mut returned = 0usize;
    for _ in 0..2000 {
        let r = &pipes[rng.gen_range(0..pipes.len())];
        let Some(geo::Geometry::LineString(l)) = r.geometry() else {
            continue;
        };
        let (x, y) = (l.0[0].x, l.0[0].y);
        let (dx, dy) = (
            750.0 / (111_320.0 * y.to_radians().cos()),
            750.0 / 111_320.0,
        );
        let pairs = vec![
            (
                "bbox".to_string(),
                format!("{},{},{},{}", x - dx, y - dy, x + dx, y + dy),
            ),
            ("filter".to_string(), filter.to_string()),
            ("limit".to_string(), "1000".to_string()),
        ];
        let t = Instant::now();
        let q = lifeline::ogc::parse_items_query(&pairs, Layer::Pipelines, Role::Analyst, &index)
            .unwrap();
        let page = lifeline::ogc::items(&index, Layer::Pipelines, Role::Analyst, &q).unwrap();
        let names = lifeline::ogc::output_names(Layer::Pipelines, Role::Analyst, &q);
        let body = lifeline::ogc::render_collection(
            &page,
            &names,
            &q.crs,
            &serde_json::json!([]),
            chrono::Utc::now(),
        )
        .unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        returned += page.records.len();
        std::hint::black_box(body);
    }
    let avg = returned as f64 / times.len() as f64;
    println!(
        "items bbox 1.5 km + CQL2, limit 1000 ({n_pipes} pipelines): avg returned {avg:.0}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&mut times, 0.5),
        pct(&mut times, 0.99),
        pct(&mut times, 1.0)
    );

    // The whole layer, attribute filter only (what the SQL pushdown serves on PostGIS):
    // first page of 1,000 by id, and sorted by an attribute.
    for sortby in [None, Some("-diameter_mm")] {
        let mut times = Vec::new();
        let mut matched = 0usize;
        for _ in 0..20 {
            let mut pairs = vec![
                ("filter".to_string(), filter.to_string()),
                ("limit".to_string(), "1000".to_string()),
            ];
            if let Some(s) = sortby {
                pairs.push(("sortby".to_string(), s.to_string()));
            }
            let t = Instant::now();
            let q =
                lifeline::ogc::parse_items_query(&pairs, Layer::Pipelines, Role::Analyst, &index)
                    .unwrap();
            let page = lifeline::ogc::items(&index, Layer::Pipelines, Role::Analyst, &q).unwrap();
            let names = lifeline::ogc::output_names(Layer::Pipelines, Role::Analyst, &q);
            let body = lifeline::ogc::render_collection(
                &page,
                &names,
                &q.crs,
                &serde_json::json!([]),
                chrono::Utc::now(),
            )
            .unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            matched = page.matched.unwrap_or(0);
            std::hint::black_box(body);
        }
        println!(
            "items whole layer + CQL2, limit 1000, sortby {:?} (matched {matched}): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            sortby.unwrap_or("id"),
            pct(&mut times, 0.5),
            pct(&mut times, 0.99),
            pct(&mut times, 1.0)
        );
    }
    if let Some(pg_data) = pg_data {
        pushdown(&index, pg_data, filter);
    }
}

/// The whole-layer queries through the PostGIS pushdown path.
fn pushdown(index: &SpatialIndex, data: lifeline::model::Dataset, filter: &str) {
    use lifeline::ogc::sql::{plan, translate, Plan, PlanRequest};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cluster = lifeline_pgcluster::TempCluster::start().expect("start PostgreSQL");
    let url = cluster.create_database("bench_ogc").expect("create db");
    let store = rt.block_on(async {
        let s = lifeline::store::open(&url, 4).await.expect("open postgis");
        let t = Instant::now();
        s.bulk_load(&data, &Actor::cli()).await.expect("bulk load");
        println!("bulk load into PostGIS: {:.1} s", t.elapsed().as_secs_f64());
        s
    });
    drop(data);
    for sortby in [None, Some("-diameter_mm")] {
        let mut times = Vec::new();
        let mut matched = 0usize;
        for _ in 0..20 {
            let mut pairs = vec![
                ("filter".to_string(), filter.to_string()),
                ("limit".to_string(), "1000".to_string()),
            ];
            if let Some(s) = sortby {
                pairs.push(("sortby".to_string(), s.to_string()));
            }
            let t = Instant::now();
            let q =
                lifeline::ogc::parse_items_query(&pairs, Layer::Pipelines, Role::Analyst, index)
                    .unwrap();
            let p = plan(PlanRequest::Auto, store.backend(), Layer::Pipelines, &q).unwrap();
            assert_eq!(p, Plan::Sql);
            let sq = translate(Layer::Pipelines, &q).unwrap();
            let sp = rt.block_on(store.ogc_items(&sq)).unwrap().unwrap();
            let records = sp
                .ids
                .iter()
                .filter_map(|id| index.get(Layer::Pipelines, *id))
                .collect();
            let page = lifeline::ogc::Page::new(records, sp.matched, &q);
            let names = lifeline::ogc::output_names(Layer::Pipelines, Role::Analyst, &q);
            let body = lifeline::ogc::render_collection(
                &page,
                &names,
                &q.crs,
                &serde_json::json!([]),
                chrono::Utc::now(),
            )
            .unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            matched = sp.matched;
            std::hint::black_box(body);
        }
        println!(
            "items whole layer + CQL2 via PostGIS pushdown, limit 1000, sortby {:?} (matched {matched}): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            sortby.unwrap_or("id"),
            pct(&mut times, 0.5),
            pct(&mut times, 0.99),
            pct(&mut times, 1.0)
        );
    }
}
