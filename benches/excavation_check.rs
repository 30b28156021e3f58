//! Excavation-check latency (issue 4): the whole check of a dig (parse, limits, metric
//! area, index lookup, per-pipe rules, nearest points, owners, risk points and sensors)
//! against a generated preset in memory, for 100 m × 100 m and 1 km² square digs centred
//! on random pipeline vertices.
//!
//! Two parts: individually timed runs that print p50/p99/max (the goal is p99 < 5 ms for
//! 1 km² against the city's 1.2 M segments), then criterion means.
//! `LIFELINE_BENCH_PRESET=city cargo bench --bench excavation_check` (default `jiulongpo`);
//! `LIFELINE_BENCH_RUNS` sets the timed runs per size (default 300).

use criterion::{criterion_group, criterion_main, Criterion};
use geo::Geometry;
use lifeline::excavation::check::{run, Dig};
use lifeline::excavation::{CheckRequest, DigMethod, Excavation};
use lifeline::generate::bench_dataset;
use lifeline::index::SpatialIndex;
use lifeline::io::crs::MetricCrs;
use lifeline::model::Layer;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn setup() -> (SpatialIndex, String) {
    let (data, name) = bench_dataset();
    let index = SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap());
    index.load(data).unwrap();
    (index, name)
}

/// Square digs of `m` metres a side centred on random pipeline vertices.
fn digs(index: &SpatialIndex, m: f64, n: usize, seed: u64) -> Vec<CheckRequest> {
    let pipes = index.all(Layer::Pipelines);
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
    run(index, ex, &dig).expect("check").conflicts.len()
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
