//! Excavation-check latency (issue 4): the whole check of a dig (parse, limits, metric
//! area, index lookup, per-pipe rules, nearest points, owners, risk points and sensors)
//! against a generated preset in memory, for 100 m × 100 m and 1 km² square digs centred
//! on random pipeline vertices.
//!
//! Two parts: individually timed runs that print p50/p99/max (the goal is p99 < 5 ms for
//! 1 km² against the city's 1.2 M segments), then criterion means.
//! `LIFELINE_BENCH_PRESET=city cargo bench --bench excavation_check` (default `jiulongpo`);
//! `LIFELINE_BENCH_RUNS` sets the timed runs per size (default 300). The digs are drawn by
//! pipeline id with fixed seeds, so every run times the same digs.
//! `LIFELINE_BENCH_DUMP=<file>` writes the check's renderings of fixed digs instead of
//! timing (see `dump`), to show that a change for speed leaves the output unchanged.

use criterion::{criterion_group, criterion_main, Criterion};
use geo::Geometry;
use lifeline::excavation::check::{run, Dig};
use lifeline::excavation::{CheckRequest, DigMethod, Excavation};
use lifeline::generate::bench_dataset;
use lifeline::index::SpatialIndex;
use lifeline::model::crs::MetricCrs;
use lifeline::model::Layer;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Output check (`LIFELINE_BENCH_DUMP=<file>`): instead of timing, writes the JSON, GeoJSON
/// and HTML renderings of a fixed set of varied digs (every method, depths, polygons with
/// a hole, trenches) to `<file>`, with `checked_at` pinned, so two builds' outputs can be
/// compared byte for byte (`cmp`) after a change meant only for speed.
fn dump(index: &SpatialIndex, ex: &Excavation, path: &str) {
    use lifeline::excavation::report;
    use std::io::Write;
    let mut pipes = index.all(Layer::Pipelines);
    pipes.sort_by_key(|r| r.id());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let today = chrono::Utc::now().date_naive();
    let fixed = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("a valid time");
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("dump file"));
    let methods = DigMethod::ALL;
    for i in 0..120 {
        let r = &pipes[rng.gen_range(0..pipes.len())];
        let Some(Geometry::LineString(l)) = r.geometry() else {
            unreachable!("pipelines are lines")
        };
        let (x, y) = (l.0[0].x, l.0[0].y);
        let m = [20.0, 150.0, 600.0][i % 3];
        let dx = m / 2.0 / (111_320.0 * y.to_radians().cos());
        let dy = m / 2.0 / 110_900.0;
        let (geometry, width_m) = match i % 4 {
            // A trench along a diagonal.
            0 => (
                serde_json::json!({"type": "LineString", "coordinates": [[x - dx, y - dy], [x + dx, y + dy]]}),
                Some(1.0 + (i % 5) as f64),
            ),
            // A square with a hole in the middle.
            1 => (
                serde_json::json!({"type": "Polygon", "coordinates": [
                    [[x - dx, y - dy], [x + dx, y - dy], [x + dx, y + dy], [x - dx, y + dy], [x - dx, y - dy]],
                    [[x - dx / 3.0, y - dy / 3.0], [x - dx / 3.0, y + dy / 3.0], [x + dx / 3.0, y + dy / 3.0], [x + dx / 3.0, y - dy / 3.0], [x - dx / 3.0, y - dy / 3.0]]]}),
                None,
            ),
            // A square offset from the pipe's vertex.
            _ => (
                serde_json::json!({"type": "Polygon", "coordinates": [[
                    [x, y], [x + 2.0 * dx, y], [x + 2.0 * dx, y + dy], [x, y + dy], [x, y]]]}),
                None,
            ),
        };
        let req = CheckRequest {
            geometry,
            width_m,
            top_depth_m: [0.0, 0.5, 1.5][i % 3],
            bottom_depth_m: [0.0, 0.5, 1.5][i % 3] + [0.3, 1.5, 2.5, 4.5][i % 4],
            method: methods[i % methods.len()],
            work_type: "dump".into(),
            start_date: today,
            end_date: today,
        };
        let dig = Dig::parse(&req, &ex.limits, index.crs(), today).expect("valid dig");
        let mut res = run(index, ex, &dig, chrono::Utc::now()).expect("check");
        res.checked_at = fixed;
        writeln!(out, "{}", serde_json::to_string(&res).expect("json")).expect("write");
        writeln!(out, "{}", report::geojson(&res)).expect("write");
        writeln!(out, "{}", report::html(&res, index.crs(), "dump")).expect("write");
    }
}

fn setup() -> (SpatialIndex, String) {
    let (data, name) = bench_dataset();
    let index = SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap());
    index.load(data).unwrap();
    (index, name)
}

/// Square digs of `m` metres a side centred on random pipeline vertices.
fn digs(index: &SpatialIndex, m: f64, n: usize, seed: u64) -> Vec<CheckRequest> {
    // By id: `all` is in hash-map order, and the same seed should give the same digs in
    // every run, so that runs of two builds time the same work.
    let mut pipes = index.all(Layer::Pipelines);
    pipes.sort_by_key(|r| r.id());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let today = chrono::Utc::now().date_naive();
    (0..n)
        .map(|_| {
            let r = &pipes[rng.gen_range(0..pipes.len())];
            let Some(Geometry::LineString(l)) = r.geometry() else {
                unreachable!("pipelines are lines")
            };
            let (x, y) = (l.0[0].x, l.0[0].y);
            let dx = m / 2.0 / (111_320.0 * y.to_radians().cos());
            let dy = m / 2.0 / 110_900.0;
            CheckRequest {
                geometry: serde_json::json!({"type": "Polygon", "coordinates": [[
                    [x - dx, y - dy], [x + dx, y - dy], [x + dx, y + dy], [x - dx, y + dy], [x - dx, y - dy]]]}),
                width_m: None,
                top_depth_m: 0.0,
                bottom_depth_m: 3.0,
                method: DigMethod::Mechanical,
                work_type: "bench".into(),
                start_date: today,
                end_date: today,
            }
        })
        .collect()
}

fn check(index: &SpatialIndex, ex: &Excavation, req: &CheckRequest) -> usize {
    let today = chrono::Utc::now().date_naive();
    let dig = Dig::parse(req, &ex.limits, index.crs(), today).expect("valid dig");
    run(index, ex, &dig, chrono::Utc::now())
        .expect("check")
        .conflicts
        .len()
}

fn tails(index: &SpatialIndex, ex: &Excavation, preset: &str) {
    let runs: usize = std::env::var("LIFELINE_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for (label, m) in [("100 m × 100 m", 100.0), ("1 km²", 999.0)] {
        let reqs = digs(index, m, runs, 11);
        let mut times = Vec::with_capacity(runs);
        let mut conflicts = 0usize;
        for r in &reqs {
            let t = Instant::now();
            conflicts += black_box(check(index, ex, r));
            times.push(t.elapsed());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {preset} | {label} | {runs} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms |",
            conflicts as f64 / runs as f64,
            ms(times[runs / 2]),
            ms(times[runs * 99 / 100]),
            ms(times[runs - 1])
        );
    }
}

fn bench(c: &mut Criterion) {
    let (index, preset) = setup();
    let ex = Excavation::builtin();
    if let Ok(path) = std::env::var("LIFELINE_BENCH_DUMP") {
        dump(&index, &ex, &path);
        println!("wrote {path}");
        return;
    }
    println!("| preset | dig | runs | avg conflicts | p50 | p99 | max |");
    tails(&index, &ex, &preset);
    let mut g = c.benchmark_group(format!("excavation_check_{preset}"));
    g.sample_size(20);
    for (label, m) in [("100m", 100.0), ("1km2", 999.0)] {
        let reqs = digs(&index, m, 64, 5);
        let mut i = 0;
        g.bench_function(label, |b| {
            b.iter(|| {
                i = (i + 1) % reqs.len();
                black_box(check(&index, &ex, &reqs[i]))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
