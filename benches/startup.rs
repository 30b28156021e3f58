//! Start-up and tail-latency measurement (a `harness = false` bench):
//! 1. generates a preset, bulk-loads it into a throwaway PostGIS database and a GeoPackage;
//! 2. times the service's start-up load (`AppState::with_store`: read the whole store and
//!    build the R-trees) from each, and the resident memory the index adds;
//! 3. times 100,000 individual R-tree queries (200 m × 200 m bbox, 100 m within-distance)
//!    and prints p50/p99/max.
//!
//! `cargo bench --bench startup -- [demo|jiulongpo|city] [postgis|gpkg|both]`
//! (defaults: jiulongpo both). Prints Markdown rows for BENCHMARKS.md.

use geo::Geometry;
use lifeline::config::Config;
use lifeline::generate::{generate, GenerateOptions, Preset};
use lifeline::model::{Actor, Layer};
use lifeline::store::{self, SharedStore};
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Gives freed memory back to the OS so RSS deltas measure what is live.
fn trim() {
    extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: glibc's malloc_trim has no preconditions.
    unsafe {
        malloc_trim(0);
    }
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (
        us(v[v.len() / 2]),
        us(v[v.len() * 99 / 100]),
        us(v[v.len() - 1]),
    )
}

async fn measure(name: &str, store: SharedStore, preset: &str) -> lifeline::AppState {
    trim();
    let before = rss_mb();
    let started = Instant::now();
    let state = lifeline::AppState::with_store(
        store,
        Config {
            metric_crs: Some("EPSG:4545".into()),
            ..Config::default()
        },
        lifeline::model::Clock::system(),
    )
    .await
    .expect("start-up load");
    let secs = started.elapsed().as_secs_f64();
    trim();
    let after = rss_mb();
    println!(
        "| start-up load | {preset} | {name} | {secs:.2} s | index RSS +{:.0} MB (process {:.0} MB) |",
        after - before,
        after
    );
    state
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let preset_name = args.first().cloned().unwrap_or_else(|| "jiulongpo".into());
    let which = args.get(1).cloned().unwrap_or_else(|| "both".into());
    let preset: Preset = preset_name
        .parse()
        .expect("preset: demo, jiulongpo or city");

    let t = Instant::now();
    let (data, report) = generate(&GenerateOptions {
        preset,
        seed: 42,
        progress: false,
    })
    .expect("generate");
    println!(
        "generated {preset_name} in {:.1} s: {report}",
        t.elapsed().as_secs_f64()
    );

    let mut stores: Vec<(&str, SharedStore)> = Vec::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster;
    if which == "postgis" || which == "both" {
        cluster = lifeline_pgcluster::TempCluster::start().expect("start PostgreSQL");
        let url = cluster.create_database("bench_startup").expect("create db");
        let s = store::open(&url, 8).await.expect("open postgis");
        let t = Instant::now();
        s.bulk_load(&data, &Actor::cli())
            .await
            .expect("bulk load postgis");
        println!(
            "| bulk load | {preset_name} | postgis | {:.1} s | {} records |",
            t.elapsed().as_secs_f64(),
            data.len()
        );
        stores.push(("postgis", s));
    }
    if which == "gpkg" || which == "both" {
        let path = dir.path().join("bench.gpkg");
        let s = store::open(&path.display().to_string(), 1)
            .await
            .expect("open gpkg");
        let t = Instant::now();
        s.bulk_load(&data, &Actor::cli())
            .await
            .expect("bulk load gpkg");
        println!(
            "| bulk load | {preset_name} | geopackage | {:.1} s | {} records |",
            t.elapsed().as_secs_f64(),
            data.len()
        );
        stores.push(("geopackage", s));
    }
    drop(data);

    let mut last = None;
    for (name, s) in stores {
        last = Some(measure(name, s, &preset_name).await);
    }
    let Some(state) = last else { return };
    let index = &state.index;
    let pipes = index.all(Layer::Pipelines);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let n = 100_000;
    let pts: Vec<(f64, f64)> = (0..n)
        .map(|_| match pipes[rng.gen_range(0..pipes.len())].geometry() {
            Some(Geometry::LineString(l)) => (l.0[0].x, l.0[0].y),
            _ => unreachable!("pipelines are lines"),
        })
        .collect();
    drop(pipes);
    let mut bbox_t = Vec::with_capacity(n);
    let mut hits = 0usize;
    for &(x, y) in &pts {
        let dy = 100.0 / 111_320.0;
        let dx = 100.0 / (111_320.0 * y.to_radians().cos());
        let b = lifeline::model::Bbox::new(x - dx, y - dy, x + dx, y + dy).unwrap();
        let t = Instant::now();
        hits += index.bbox(Layer::Pipelines, &b).unwrap().len();
        bbox_t.push(t.elapsed());
    }
    let (p50, p99, max) = percentiles(bbox_t);
    println!("| bbox 200 m × 200 m, exact | {preset_name} | {n} queries, {:.1} hits avg | p50 {p50:.1} µs | p99 {p99:.1} µs, max {max:.0} µs |", hits as f64 / n as f64);
    let mut dist_t = Vec::with_capacity(n);
    hits = 0;
    for &(x, y) in &pts {
        let q = Geometry::Point(geo::point!(x: x, y: y));
        let t = Instant::now();
        hits += index
            .within_distance(Layer::Pipelines, &q, 100.0)
            .unwrap()
            .len();
        dist_t.push(t.elapsed());
    }
    let (p50, p99, max) = percentiles(dist_t);
    println!("| within 100 m of a point | {preset_name} | {n} queries, {:.1} hits avg | p50 {p50:.1} µs | p99 {p99:.1} µs, max {max:.0} µs |", hits as f64 / n as f64);
}
