//! Criterion benches of R-tree queries at preset scale: a 200 m × 200 m bbox window, a
//! 100 m within-distance query around a point, and the 10 nearest pipelines.
//! `LIFELINE_BENCH_PRESET=city` (default `jiulongpo`) picks the data set. Tail latencies
//! (p50/p99) come from `benches/startup.rs`, which times every query individually.

use criterion::{criterion_group, criterion_main, Criterion};
use geo::Geometry;
use lifeline::generate::bench_dataset;
use lifeline::index::SpatialIndex;
use lifeline::model::crs::MetricCrs;
use lifeline::model::{Bbox, Layer};
use rand::{Rng, SeedableRng};
use std::hint::black_box;

fn setup() -> (SpatialIndex, Bbox) {
    let (data, _) = bench_dataset();
    let index = SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap());
    index.load(data).unwrap();
    let extent = index
        .stats()
        .into_iter()
        .find(|s| s.layer == Layer::Pipelines)
        .and_then(|s| s.bbox)
        .expect("pipelines");
    (index, extent)
}

/// Random query centres on pipelines (where people look), so windows are not mostly empty.
pub fn centres(index: &SpatialIndex, n: usize) -> Vec<(f64, f64)> {
    let pipes = index.all(Layer::Pipelines);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    (0..n)
        .map(|_| {
            let r = &pipes[rng.gen_range(0..pipes.len())];
            let Some(Geometry::LineString(l)) = r.geometry() else {
                unreachable!("pipelines are lines")
            };
            (l.0[0].x, l.0[0].y)
        })
        .collect()
}

/// A lon/lat box of about `m` metres a side around a point at Chongqing's latitude.
pub fn window(x: f64, y: f64, m: f64) -> Bbox {
    let dy = m / 2.0 / 111_320.0;
    let dx = m / 2.0 / (111_320.0 * y.to_radians().cos());
    Bbox::new(x - dx, y - dy, x + dx, y + dy).unwrap()
}

fn bench(c: &mut Criterion) {
    let (index, _) = setup();
    let pts = centres(&index, 4096);
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) % pts.len();
        pts[i]
    };
    c.bench_function("bbox 200m x 200m (exact)", |b| {
        b.iter(|| {
            let (x, y) = next();
            black_box(
                index
                    .bbox(Layer::Pipelines, &window(x, y, 200.0))
                    .unwrap()
                    .len(),
            )
        })
    });
    c.bench_function("within 100 m of a point", |b| {
        b.iter(|| {
            let (x, y) = next();
            let q = Geometry::Point(geo::point!(x: x, y: y));
            black_box(
                index
                    .within_distance(Layer::Pipelines, &q, 100.0)
                    .unwrap()
                    .len(),
            )
        })
    });
    c.bench_function("10 nearest pipelines", |b| {
        b.iter(|| {
            let (x, y) = next();
            black_box(
                index
                    .nearest(Layer::Pipelines, x, y, 10, None)
                    .unwrap()
                    .len(),
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench
}
criterion_main!(benches);
