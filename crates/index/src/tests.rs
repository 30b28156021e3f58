//! Index tests: every query is compared with a brute-force scan over the same records.

use super::*;
use geo::Intersects;
use lifeline_model::*;
use rand::{Rng, SeedableRng};

fn pipe(id: i64, x: f64, y: f64, dx: f64, dy: f64) -> Pipeline {
    Pipeline {
        diameter_mm: Some(200.0),
        ..Pipeline::new(
            id,
            PipeKind::WaterSupply,
            1,
            geo::LineString::from(vec![(x, y), (x + dx, y + dy)]),
        )
    }
}

fn random_pipes(n: usize, seed: u64) -> Vec<Pipeline> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (1..=n as i64)
        .map(|id| {
            let x = 106.45 + rng.gen::<f64>() * 0.1;
            let y = 29.45 + rng.gen::<f64>() * 0.1;
            pipe(
                id,
                x,
                y,
                (rng.gen::<f64>() - 0.5) * 0.001,
                (rng.gen::<f64>() - 0.5) * 0.001,
            )
        })
        .collect()
}

fn index_with(pipes: Vec<Pipeline>) -> SpatialIndex {
    let idx = SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap());
    idx.load(Dataset {
        pipelines: pipes,
        ..Default::default()
    })
    .unwrap();
    idx
}

fn brute_within(idx: &SpatialIndex, q: &Geometry<f64>, d: f64) -> Vec<i64> {
    let qm = idx.crs().to_metric(q).unwrap();
    let mut ids: Vec<i64> = idx
        .all(Layer::Pipelines)
        .iter()
        .filter(|r| {
            let g = idx.crs().to_metric(&r.geometry().unwrap()).unwrap();
            Euclidean.distance(&qm, &g) <= d
        })
        .map(|r| r.id())
        .collect();
    ids.sort();
    ids
}

#[test]
fn within_distance_matches_brute_force() {
    let idx = index_with(random_pipes(2000, 7));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for _ in 0..30 {
        let q = Geometry::Point(
            geo::point!(x: 106.45 + rng.gen::<f64>() * 0.1, y: 29.45 + rng.gen::<f64>() * 0.1),
        );
        let d = rng.gen::<f64>() * 400.0;
        let mut got: Vec<i64> = idx
            .within_distance(Layer::Pipelines, &q, d)
            .unwrap()
            .iter()
            .map(|h| h.record.id())
            .collect();
        got.sort();
        assert_eq!(got, brute_within(&idx, &q, d), "distance {d}");
    }
}

#[test]
fn bbox_matches_brute_force() {
    let idx = index_with(random_pipes(2000, 8));
    let bbox = Bbox::new(106.47, 29.47, 106.49, 29.48).unwrap();
    let rect = bbox.to_rect();
    let mut got: Vec<i64> = idx
        .bbox(Layer::Pipelines, &bbox)
        .unwrap()
        .iter()
        .map(|r| r.id())
        .collect();
    got.sort();
    let mut want: Vec<i64> = idx
        .all(Layer::Pipelines)
        .iter()
        .filter(|r| r.geometry().unwrap().intersects(&rect))
        .map(|r| r.id())
        .collect();
    want.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[test]
fn nearest_is_sorted_and_matches_brute_force() {
    let idx = index_with(random_pipes(1000, 9));
    let hits = idx.nearest(Layer::Pipelines, 106.5, 29.5, 5, None).unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.windows(2).all(|w| w[0].distance_m <= w[1].distance_m));
    // The 5th nearest distance bounds the brute-force count within it.
    let q = Geometry::Point(geo::point!(x: 106.5, y: 29.5));
    assert_eq!(brute_within(&idx, &q, hits[4].distance_m).len(), 5);
}

#[test]
fn upsert_and_remove_keep_tree_and_records_in_step() {
    let idx = index_with(random_pipes(100, 10));
    let far = pipe(5, 106.9, 29.9, 0.0005, 0.0);
    idx.upsert(Record::Pipeline(far)).unwrap();
    assert_eq!(idx.count(Layer::Pipelines), 100);
    let q = Geometry::Point(geo::point!(x: 106.9, y: 29.9));
    let hits = idx.within_distance(Layer::Pipelines, &q, 1.0).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].record.id(), 5);
    assert!(idx.remove(Layer::Pipelines, 5));
    assert!(idx
        .within_distance(Layer::Pipelines, &q, 1.0)
        .unwrap()
        .is_empty());
    assert_eq!(idx.count(Layer::Pipelines), 99);
    assert!(!idx.remove(Layer::Pipelines, 5));
}

#[test]
fn distance_limits_and_owner_layer() {
    let idx = index_with(random_pipes(10, 11));
    let q = Geometry::Point(geo::point!(x: 106.5, y: 29.5));
    assert!(matches!(
        idx.within_distance(Layer::Pipelines, &q, -1.0),
        Err(IndexError::Distance(_))
    ));
    assert!(matches!(
        idx.within_distance(Layer::Pipelines, &q, f64::NAN),
        Err(IndexError::Distance(_))
    ));
    assert!(matches!(
        idx.within_distance(Layer::Owners, &q, 1.0),
        Err(IndexError::NotSpatial(_))
    ));
}
