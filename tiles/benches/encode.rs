//! Encode time of the per-request path on synthetic tiles (moved here from a timing test:
//! timings belong in benches, never in tests). Run with `cargo bench -p lifeline-tiles
//! --bench encode`; results go to `BENCHMARKS.md` with machine and date.
//!
//! Cases: 10k random-walk lines in one z14 tile with the defaults, without simplification
//! or size filter, and with a 2,000-feature budget; 20k mixed features (10k lines, 5k
//! polygons, 5k points); and the reused encoder against a fresh one per tile.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use geo::Geometry;
use lifeline_tiles::{encode_layer, LayerEncoder, LayerOptions, SourceFeature, Value};
use std::hint::black_box;

const KINDS: [&str; 5] = ["water_supply", "drainage", "gas", "heat", "power"];
const MATERIALS: [&str; 4] = ["ductile_iron", "pe100", "steel", "concrete"];

/// `n` pipes as random walks of 6–25 vertices, mostly inside the tile, some crossing its
/// edges.
fn pipes(n: usize, seed: u64) -> Vec<Geometry<f64>> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let (mut x, mut y) = (rng.range(-200.0, 4300.0), rng.range(-200.0, 4300.0));
            let k = 6 + (rng.next_u64() % 20) as usize;
            let pts: Vec<(f64, f64)> = (0..k)
                .map(|_| {
                    x += rng.range(-60.0, 60.0);
                    y += rng.range(-60.0, 60.0);
                    (x, y)
                })
                .collect();
            line(&pts)
        })
        .collect()
}

fn mixed(seed: u64) -> Vec<Geometry<f64>> {
    let mut rng = Rng::new(seed);
    let mut geoms = pipes(10_000, seed + 1);
    for _ in 0..5_000 {
        let (x, y) = (rng.range(-300.0, 4300.0), rng.range(-300.0, 4300.0));
        let s = rng.range(20.0, 200.0);
        geoms.push(Geometry::Polygon(polygon(&square(x, y, x + s, y + s), &[])));
    }
    for _ in 0..5_000 {
        geoms.push(point(rng.range(-100.0, 4196.0), rng.range(-100.0, 4196.0)));
    }
    geoms
}

type Props = [(&'static str, Value<'static>); 4];

fn props(n: usize) -> Vec<Props> {
    (0..n)
        .map(|i| {
            [
                ("kind", Value::from(KINDS[i % KINDS.len()])),
                ("material", Value::from(MATERIALS[i % MATERIALS.len()])),
                ("diameter_mm", Value::SInt(100 + 50 * (i as i64 % 12))),
                ("age_years", Value::Double((i % 80) as f64 + 0.5)),
            ]
        })
        .collect()
}

fn features<'a>(geoms: &'a [Geometry<f64>], props: &'a [Props]) -> Vec<SourceFeature<'a>> {
    geoms
        .iter()
        .enumerate()
        .map(|(i, g)| SourceFeature {
            id: Some(i as u64),
            geometry: g.into(),
            properties: &props[i],
            importance: (i % 12) as f64,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = pipes(10_000, 3);
    let line_props = props(lines.len());
    let line_features = features(&lines, &line_props);
    let mixed_geoms = mixed(5);
    let mixed_props = props(mixed_geoms.len());
    let mixed_features = features(&mixed_geoms, &mixed_props);

    let mut g = c.benchmark_group("encode one z14 tile");
    g.sample_size(20);
    let cases: [(&str, &[SourceFeature<'_>], LayerOptions); 4] = [
        (
            "10k lines, defaults",
            &line_features,
            LayerOptions::default(),
        ),
        (
            "10k lines, no simplification or size filter",
            &line_features,
            LayerOptions {
                simplify_tolerance: 0.0,
                min_size: 0.0,
                ..LayerOptions::default()
            },
        ),
        (
            "10k lines, budget 2000",
            &line_features,
            LayerOptions {
                max_features: Some(2000),
                ..LayerOptions::default()
            },
        ),
        ("20k mixed", &mixed_features, LayerOptions::default()),
    ];
    for (name, feats, opts) in &cases {
        g.throughput(Throughput::Elements(feats.len() as u64));
        let mut enc = LayerEncoder::new();
        g.bench_with_input(BenchmarkId::new("reused encoder", name), feats, |b, f| {
            b.iter(|| black_box(enc.encode("pipes", tile(), f, opts).unwrap().bytes.len()))
        });
    }
    g.throughput(Throughput::Elements(line_features.len() as u64));
    g.bench_function("fresh encoder per tile/10k lines, defaults", |b| {
        b.iter(|| {
            black_box(
                encode_layer("pipes", tile(), &line_features, &LayerOptions::default())
                    .unwrap()
                    .bytes
                    .len(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
