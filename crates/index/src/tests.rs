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

/// The exact answer for a window: every pipe whose lon/lat geometry meets it.
fn brute_bbox(idx: &SpatialIndex, bbox: &Bbox) -> Vec<i64> {
    let rect = bbox.to_rect();
    let mut ids: Vec<i64> = idx
        .all(Layer::Pipelines)
        .iter()
        .filter(|r| r.geometry().unwrap().intersects(&rect))
        .map(|r| r.id())
        .collect();
    ids.sort();
    ids
}

fn sorted(records: Vec<std::sync::Arc<Record>>) -> Vec<i64> {
    let mut ids: Vec<i64> = records.iter().map(|r| r.id()).collect();
    ids.sort();
    ids
}

#[test]
fn any_valid_window_gives_the_exact_answer() {
    let idx = index_with(random_pipes(1500, 10));
    let all = sorted(idx.all(Layer::Pipelines));
    let windows = [
        // The world, and nearly the world: larger than any projected zone.
        (-180.0, -90.0, 180.0, 90.0),
        (-179.0, -89.0, 179.0, 89.0),
        // Half the world, partly outside what EPSG:4545 can project.
        (0.0, 0.0, 180.0, 90.0),
        // Touching ±180°, and wholly outside the data.
        (170.0, -10.0, 180.0, 10.0),
        (-180.0, -90.0, -170.0, 90.0),
        (0.0, 0.0, 1.0, 1.0),
        // Beyond the zone on one side, cutting through the data on the other.
        (106.5, -90.0, 180.0, 29.5),
        (-180.0, 29.48, 106.47, 90.0),
        // Inside the data, large and small.
        (106.44, 29.44, 106.56, 29.56),
        (106.47, 29.47, 106.49, 29.48),
    ];
    for (x0, y0, x1, y1) in windows {
        let b = Bbox::new(x0, y0, x1, y1).unwrap();
        let want = brute_bbox(&idx, &b);
        assert_eq!(
            sorted(idx.bbox(Layer::Pipelines, &b).unwrap()),
            want,
            "{b:?}"
        );
        // The candidates are a superset, in every query that narrows by window.
        let cand = sorted(idx.bbox_candidates(Layer::Pipelines, &b).unwrap());
        assert!(
            want.iter().all(|id| cand.binary_search(id).is_ok()),
            "{b:?}"
        );
        let at_zoom = sorted(
            idx.bbox_candidates_at_zoom(Layer::Pipelines, &b, 0)
                .unwrap(),
        );
        assert_eq!(at_zoom, cand, "{b:?}");
    }
    let world = Bbox::new(-180.0, -90.0, 180.0, 90.0).unwrap();
    assert_eq!(sorted(idx.bbox(Layer::Pipelines, &world).unwrap()), all);
    // An empty layer answers any window with nothing.
    assert!(idx.bbox(Layer::Sensors, &world).unwrap().is_empty());
}

#[test]
fn distance_queries_far_away_or_larger_than_the_zone() {
    let idx = index_with(random_pipes(800, 11));
    let all = sorted(idx.all(Layer::Pipelines));
    let ids = |hits: Vec<Hit>| {
        let mut v: Vec<i64> = hits.iter().map(|h| h.record.id()).collect();
        v.sort();
        v
    };
    // A polygon covering the world holds every pipe: each is at 0 m.
    let world = Geometry::Polygon(geo::Polygon::new(
        geo::LineString::from(vec![
            (-180.0, -90.0),
            (180.0, -90.0),
            (180.0, 90.0),
            (-180.0, 90.0),
            (-180.0, -90.0),
        ]),
        vec![],
    ));
    let hits = idx.within_distance(Layer::Pipelines, &world, 0.0).unwrap();
    assert!(hits.iter().all(|h| h.distance_m == 0.0));
    assert_eq!(ids(hits), all);
    // A line crossing half the world through the data: the same pipes as its part near
    // the data, measured in metres. (Edges are projected vertex by vertex, as PostGIS's
    // ST_Transform does, so the part compared has the same vertices over the data.)
    let long = Geometry::LineString(geo::LineString::from(vec![
        (0.0, 29.5),
        (106.46, 29.5),
        (106.54, 29.5),
        (179.0, 29.5),
    ]));
    let local = Geometry::LineString(geo::LineString::from(vec![
        (106.44, 29.5),
        (106.46, 29.5),
        (106.54, 29.5),
        (106.56, 29.5),
    ]));
    for d in [0.0, 25.0, 300.0] {
        assert_eq!(
            ids(idx.within_distance(Layer::Pipelines, &long, d).unwrap()),
            brute_within(&idx, &local, d),
            "{d} m"
        );
    }
    // Far from the data (and from the zone): nothing, not an error.
    let far = Geometry::Point(geo::point!(x: -3.0, y: 40.0));
    assert!(idx
        .within_distance(Layer::Pipelines, &far, 50_000.0)
        .unwrap()
        .is_empty());
    assert!(idx
        .nearest(Layer::Pipelines, -3.0, 40.0, 5, Some(50_000.0))
        .unwrap()
        .is_empty());
    // Just outside the data's box but within reach: found, as near the data.
    let beside = Geometry::Point(geo::point!(x: 106.449, y: 29.5));
    assert_eq!(
        ids(idx
            .within_distance(Layer::Pipelines, &beside, 400.0)
            .unwrap()),
        brute_within(&idx, &beside, 400.0)
    );
}

#[test]
fn the_change_log_names_what_changed_after_a_generation() {
    let idx = index_with(random_pipes(10, 12));
    let loaded = idx.generation();
    assert!(loaded > 0, "a load is a mutation");
    // Nothing changed since the load.
    let none = idx.changed_since(loaded).unwrap();
    assert!(none.records.is_empty());
    assert_eq!(none.generation, loaded);
    // A reload since: the log cannot say what changed before it.
    assert_eq!(idx.changed_since(loaded - 1), None);
    // A generation from the future is not one of this index's.
    assert_eq!(idx.changed_since(loaded + 1), None);

    idx.upsert(Record::Pipeline(pipe(3, 106.5, 29.5, 0.001, 0.0)))
        .unwrap();
    let after_3 = idx.generation();
    idx.upsert(Record::Pipeline(pipe(11, 106.5, 29.5, 0.001, 0.0)))
        .unwrap();
    assert!(idx.remove(Layer::Pipelines, 4));
    // Removing what is not there changes nothing, and is not logged.
    let before_noop = idx.generation();
    assert!(!idx.remove(Layer::Pipelines, 4));
    assert_eq!(idx.generation(), before_noop);
    idx.upsert(Record::Pipeline(pipe(3, 106.6, 29.5, 0.001, 0.0)))
        .unwrap();
    let all = idx.changed_since(loaded).unwrap();
    assert_eq!(all.generation, idx.generation());
    // Each record once, in the order of its latest change.
    assert_eq!(
        all.records,
        vec![
            (Layer::Pipelines, 11),
            (Layer::Pipelines, 4),
            (Layer::Pipelines, 3)
        ]
    );
    let later = idx.changed_since(after_3).unwrap();
    assert_eq!(
        later.records,
        vec![
            (Layer::Pipelines, 11),
            (Layer::Pipelines, 4),
            (Layer::Pipelines, 3)
        ]
    );
    let last = idx.changed_since(before_noop).unwrap();
    assert_eq!(last.records, vec![(Layer::Pipelines, 3)]);
}

#[test]
fn the_change_log_is_bounded_and_says_when_it_cannot_answer() {
    let idx = index_with(random_pipes(10, 13));
    let start = idx.generation();
    for i in 0..CHANGE_LOG_LEN + 5 {
        idx.upsert(Record::Pipeline(pipe(
            1 + (i % 7) as i64,
            106.5,
            29.5,
            0.001,
            0.0,
        )))
        .unwrap();
    }
    // The first changes have been dropped: a cache at `start` must rebuild.
    assert_eq!(idx.changed_since(start), None);
    // A cache a few changes behind is still answered.
    let near = idx.generation() - 3;
    let c = idx.changed_since(near).unwrap();
    assert_eq!(c.records.len(), 3);
    // A reload makes every earlier generation unanswerable.
    let before = idx.generation();
    idx.load(Dataset::default()).unwrap();
    assert_eq!(idx.changed_since(before), None);
    assert!(idx
        .changed_since(idx.generation())
        .unwrap()
        .records
        .is_empty());
}
