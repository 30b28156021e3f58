//! Criterion benches of cutting vector tiles from the index (candidates, attributes,
//! clipping, generalisation, encoding; no cache, no HTTP) at z10, z14 and z18, for the
//! pipelines layer alone and for all four layers in one tile, over the generated city
//! (`LIFELINE_BENCH_PRESET`, default `jiulongpo`; the figures are for `city`).
//! Tiles are the ones around random pipes, so they are where people look, not empty sea.
//! Before timing, the mean and largest tile size per zoom are printed (the low-zoom size
//! goal is 200 KB). Results go to `BENCHMARKS.md` with machine and date.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use geo::Geometry;
use lifeline::generate::bench_dataset;
use lifeline::index::SpatialIndex;
use lifeline::model::crs::MetricCrs;
use lifeline::model::{Layer, Role};
use lifeline::tileserver::{render, TilesConfig};
use lifeline_tiles::TileCoord;
use rand::{Rng, SeedableRng};
use std::hint::black_box;

fn setup() -> SpatialIndex {
    let (data, _) = bench_dataset();
    // As the server builds it: entries know their lowest drawn zoom.
    let index =
        render::with_index_min_zoom(SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap()));
    index.load(data).unwrap();
    index
}

/// `n` distinct tiles at zoom `z` containing the start of a random pipe.
fn tiles(index: &SpatialIndex, z: u8, n: usize) -> Vec<TileCoord> {
    let pipes = index.all(Layer::Pipelines);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7 + u64::from(z));
    let mut out = Vec::new();
    for _ in 0..n * 20 {
        if out.len() == n {
            break;
        }
        let r = &pipes[rng.gen_range(0..pipes.len())];
        let Some(Geometry::LineString(l)) = r.geometry() else {
            continue;
        };
        let t = TileCoord::from_lonlat(l.0[0].x, l.0[0].y, z).unwrap();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let index = setup();
    let config = TilesConfig::builtin();
    let all = Layer::SPATIAL;
    let mut g = c.benchmark_group("tile from index");
    g.sample_size(30);
    let zooms: Vec<u8> = std::env::var("LIFELINE_BENCH_ZOOMS")
        .ok()
        .map(|v| v.split(',').filter_map(|z| z.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 14, 18]);
    for z in zooms {
        let ts = tiles(&index, z, 64);
        let sizes: Vec<usize> = ts
            .iter()
            .map(|t| {
                render::render_tile(&index, config, &all, *t, Role::Analyst)
                    .unwrap()
                    .len()
            })
            .collect();
        eprintln!(
            "z{z}: {} tiles, all layers as analyst: mean {:.1} KB, max {:.1} KB",
            ts.len(),
            sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64 / 1024.0,
            *sizes.iter().max().unwrap_or(&0) as f64 / 1024.0
        );
        for (name, layers) in [
            ("pipelines", &[Layer::Pipelines][..]),
            ("all layers", &all[..]),
        ] {
            let mut i = 0usize;
            g.bench_function(BenchmarkId::new(name, format!("z{z}")), |b| {
                b.iter(|| {
                    i = (i + 1) % ts.len();
                    black_box(
                        render::render_tile(&index, config, layers, ts[i], Role::Viewer)
                            .unwrap()
                            .len(),
                    )
                })
            });
        }
    }
    // The tail the z14 latency goal is about: the densest tiles of the city centre, cut and
    // gzip-compressed as the server sends them (viewer role).
    let mut dense: Vec<(usize, TileCoord)> = tiles(&index, 14, 256)
        .into_iter()
        .map(|t| {
            let bbox = render::query_bbox(t, 4096, 64);
            let n = index
                .bbox_candidates_at_zoom(Layer::Pipelines, &bbox, 14)
                .map_or(0, |c| c.len());
            (n, t)
        })
        .collect();
    dense.sort_by_key(|d| std::cmp::Reverse(d.0));
    dense.truncate(8);
    eprintln!(
        "z14 densest {} of 256: {:?} pipes",
        dense.len(),
        dense.iter().map(|d| d.0).collect::<Vec<_>>()
    );
    let mut i = 0usize;
    g.bench_function("pipelines z14 densest 8 + gzip", |b| {
        b.iter(|| {
            i = (i + 1) % dense.len();
            let raw = render::render_tile(
                &index,
                config,
                &[Layer::Pipelines],
                dense[i].1,
                Role::Viewer,
            )
            .unwrap();
            black_box(
                lifeline::tileserver::compress(&raw, lifeline::tileserver::Encoding::Gzip)
                    .unwrap()
                    .len(),
            )
        })
    });
    let mut i = 0usize;
    g.bench_function("pipelines z14 densest 8", |b| {
        b.iter(|| {
            i = (i + 1) % dense.len();
            black_box(
                render::render_tile(
                    &index,
                    config,
                    &[Layer::Pipelines],
                    dense[i].1,
                    Role::Viewer,
                )
                .unwrap()
                .len(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
