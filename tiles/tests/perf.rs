//! Rough timing of the per-request path, printed, never asserted (timings
//! on shared CI machines are noise). Meaningful only in release mode:
//! `cargo test -p lifeline-tiles --release --test perf -- --nocapture`.

mod common;

use std::time::Instant;

use common::*;
use geo::Geometry;
use lifeline_tiles::{decode_tile, LayerEncoder, LayerOptions, SourceFeature, Value};

const KINDS: [&str; 5] = ["water_supply", "sewer", "gas", "district_heat", "power"];
const MATERIALS: [&str; 4] = ["ductile_iron", "pe100", "steel", "concrete"];

/// `n` pipes as random walks of 6–25 vertices, mostly inside the tile,
/// some crossing its edges.
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

fn props(n: usize) -> Vec<[(&'static str, Value<'static>); 4]> {
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

fn features<'a>(
    geoms: &'a [Geometry<f64>],
    props: &'a [[(&'static str, Value<'static>); 4]],
) -> Vec<SourceFeature<'a>> {
    geoms
        .iter()
        .enumerate()
        .map(|(i, g)| SourceFeature {
            id: Some(i as u64),
            geometry: g,
            properties: &props[i],
            importance: (i % 12) as f64,
        })
        .collect()
}

fn time(label: &str, feats: &[SourceFeature<'_>], opts: &LayerOptions) {
    let mut enc = LayerEncoder::new();
    let t0 = Instant::now();
    let first = enc.encode("pipes", tile(), feats, opts).unwrap();
    let cold = t0.elapsed();
    let runs = 5;
    let t0 = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(enc.encode("pipes", tile(), feats, opts).unwrap());
    }
    let warm = t0.elapsed() / runs;
    let decoded = decode_tile(&first.bytes).unwrap();
    println!(
        "{label}: {} in → {} out, {} KiB; cold {:.1} ms, reused encoder {:.1} ms/tile",
        feats.len(),
        decoded.layers[0].features.len(),
        first.bytes.len() / 1024,
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3
    );
}

#[test]
fn timing_10k_lines_in_one_tile() {
    let geoms = pipes(10_000, 3);
    let p = props(geoms.len());
    let f = features(&geoms, &p);
    time("10k lines, defaults", &f, &LayerOptions::default());
    time(
        "10k lines, no simplification/min size",
        &f,
        &LayerOptions {
            simplify_tolerance: 0.0,
            min_size: 0.0,
            ..LayerOptions::default()
        },
    );
    time(
        "10k lines, budget 2000",
        &f,
        &LayerOptions {
            max_features: Some(2000),
            ..LayerOptions::default()
        },
    );
}

#[test]
fn timing_20k_mixed_in_one_tile() {
    let mut rng = Rng::new(5);
    let mut geoms = pipes(10_000, 4);
    for _ in 0..5_000 {
        let (x, y) = (rng.range(-300.0, 4300.0), rng.range(-300.0, 4300.0));
        let s = rng.range(20.0, 200.0);
        geoms.push(Geometry::Polygon(polygon(&square(x, y, x + s, y + s), &[])));
    }
    for _ in 0..5_000 {
        geoms.push(point(rng.range(-100.0, 4196.0), rng.range(-100.0, 4196.0)));
    }
    let p = props(geoms.len());
    let f = features(&geoms, &p);
    time(
        "20k mixed (10k lines, 5k polygons, 5k points)",
        &f,
        &LayerOptions::default(),
    );
}
