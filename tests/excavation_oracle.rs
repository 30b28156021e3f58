//! PostGIS as the oracle of the excavation check (issue 4): the `jiulongpo` preset is loaded
//! into a real PostGIS database and into the index; for hundreds of random digs (polygons,
//! some with holes, and trenches as LineString + width; random depths and methods) the set
//! of conflicting pipelines and each one's severity must equal what PostGIS computes with
//! `ST_DWithin` on `ST_Transform(geom, 4545)` using the same rule distances, and the 3D
//! clearance must equal `ST_3DDistance` between the dig and the pipe placed at their
//! nearest depths.
//!
//! What PostGIS computes independently: the reprojection, every distance, the depth bands
//! and depth uncertainty (from the table's columns). What it takes from the rule table:
//! each candidate pipe's rule distances ([`Rules::thresholds`], unit-tested on its own).

mod app;

use app::{fresh_store, Backend};
use lifeline::excavation::check::{run, Dig};
use lifeline::excavation::{CheckRequest, DigMethod, Excavation};
use lifeline::generate::{generate, GenerateOptions, Preset};
use lifeline::index::SpatialIndex;
use lifeline::model::crs::MetricCrs;
use lifeline::model::{Actor, Layer, Pipeline, Record};
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

const DLAT: f64 = 1.0 / 110_800.0;
const DLON: f64 = 1.0 / 96_900.0;
const DIGS: usize = 300;

const CANDIDATES: &str = "
WITH dig AS (SELECT ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON($1::text), 4490), 4545) AS g)
SELECT pl.id FROM pipelines pl, dig
WHERE pl.geom && ST_Transform(ST_Expand(dig.g, $2::float8 + 2.0), 4490)
  AND pl.status NOT IN ('planned', 'removed')
  AND ST_DWithin(ST_Transform(pl.geom, 4545), dig.g, $2::float8)";

const SEVERITY: &str = "
WITH dig AS (SELECT ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON($1::text), 4490), 4545) AS g),
thr AS (SELECT * FROM unnest($2::bigint[], $3::float8[], $4::float8[], $5::float8[], $6::float8[],
                             $7::float8[], $8::float8[]) AS t(id, clear, tol, info, nodig, permit, vclear)),
p AS (
  SELECT pl.id, ST_Transform(pl.geom, 4545) AS g, thr.clear, thr.tol, thr.info, thr.nodig,
         thr.permit, thr.vclear, pl.depth_accuracy_cm,
         LEAST(pl.depth_start_m, pl.depth_end_m) AS btop,
         GREATEST(pl.depth_start_m, pl.depth_end_m)
           + COALESCE(COALESCE(pl.diameter_mm, GREATEST(pl.section_width_mm, pl.section_height_mm)) / 1000.0, 0) AS bbot,
         COALESCE(COALESCE(pl.diameter_mm, GREATEST(pl.section_width_mm, pl.section_height_mm)) / 1000.0, 0) AS size
  FROM pipelines pl JOIN thr ON thr.id = pl.id),
q AS (
  SELECT p.*, dig.g AS dg,
         GREATEST(p.btop - $10::float8, $9::float8 - p.bbot, 0) AS gap,
         p.vclear + COALESCE(p.depth_accuracy_cm / 100.0, 0.075 * GREATEST(p.bbot - p.size / 2, 1)) AS vreq,
         LEAST(GREATEST(p.btop, $9::float8), $10::float8) AS zdig
  FROM p, dig)
SELECT id,
  CASE
    WHEN nodig >= 0 AND ST_DWithin(g, dg, nodig + $11::float8) THEN 'violation'
    WHEN ST_DWithin(g, dg, clear + $11::float8) AND (btop IS NULL OR gap <= vreq) THEN 'violation'
    WHEN ST_DWithin(g, dg, tol + $11::float8)
      OR (permit >= 0 AND ST_DWithin(g, dg, permit + $11::float8)) THEN 'warning'
    WHEN ST_DWithin(g, dg, info + $11::float8) THEN 'info'
  END AS severity,
  GREATEST(ST_Distance(g, dg) - $11::float8, 0) AS d,
  CASE WHEN btop IS NOT NULL THEN
    ST_3DDistance(ST_Force3D(dg, -zdig), ST_Force3D(g, -LEAST(GREATEST(zdig, btop), bbot)))
  END AS d3
FROM q";

/// A star-shaped (so simple) polygon around (x, y) of radius about `r` metres, with an
/// optional hexagonal hole.
fn star(rng: &mut impl Rng, x: f64, y: f64, r: f64, hole: bool) -> serde_json::Value {
    let n = rng.gen_range(4..=16);
    let step = std::f64::consts::TAU / n as f64;
    let mut ring: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let a = i as f64 * step + rng.gen_range(-0.3..0.3) * step;
            let rr = r * rng.gen_range(0.5..1.0);
            [x + rr * a.cos() * DLON, y + rr * a.sin() * DLAT]
        })
        .collect();
    ring.push(ring[0]);
    let mut rings = vec![ring];
    if hole && n >= 6 {
        let mut h: Vec<[f64; 2]> = (0..=6)
            .map(|i| {
                let a = -(i as f64) * std::f64::consts::TAU / 6.0;
                [x + 0.2 * r * a.cos() * DLON, y + 0.2 * r * a.sin() * DLAT]
            })
            .collect();
        h[6] = h[0];
        rings.push(h);
    }
    json!({"type": "Polygon", "coordinates": rings})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_equal_postgis_on_jiulongpo() {
    let (data, _) = generate(&GenerateOptions {
        preset: Preset::Jiulongpo,
        seed: 42,
        progress: false,
    })
    .expect("generate");
    let (store, url, _dir) = fresh_store(Backend::Postgis).await;
    store
        .bulk_load(&data, &Actor::cli())
        .await
        .expect("bulk load");
    let index = SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap());
    index.load(data).unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let candidates = client.prepare(CANDIDATES).await.unwrap();
    let severity = client.prepare(SEVERITY).await.unwrap();

    let ex = Excavation::builtin();
    let pipes: Vec<Pipeline> = index
        .all(Layer::Pipelines)
        .iter()
        .filter_map(|r| match &**r {
            Record::Pipeline(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    let by_id: HashMap<i64, &Pipeline> = pipes.iter().map(|p| (p.id, p)).collect();
    let today = app::today();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut compared_3d = 0usize;
    for n in 0..DIGS {
        let p = &pipes[rng.gen_range(0..pipes.len())];
        let c = p.geometry.0[0];
        let (x, y) = (
            c.x + rng.gen_range(-30.0..30.0) * DLON,
            c.y + rng.gen_range(-30.0..30.0) * DLAT,
        );
        let line = rng.gen_bool(0.3);
        let (geometry, width) = if line {
            let mut pts = vec![[x, y]];
            for _ in 0..rng.gen_range(1..=4) {
                let [px, py] = *pts.last().unwrap();
                let len = rng.gen_range(10.0..80.0);
                let a: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
                pts.push([px + len * a.cos() * DLON, py + len * a.sin() * DLAT]);
            }
            (
                json!({"type": "LineString", "coordinates": pts}),
                Some(rng.gen_range(0.5..10.0)),
            )
        } else {
            let r = rng.gen_range(3.0..120.0);
            let hole = rng.gen_bool(0.2);
            (star(&mut rng, x, y, r, hole), None)
        };
        let top = rng.gen_range(0.0..1.0);
        let req = CheckRequest {
            geometry: geometry.clone(),
            width_m: width,
            top_depth_m: top,
            bottom_depth_m: top + rng.gen_range(0.3..6.0),
            // Blasting reaches 200 m (its permit radius): a few such digs, not a fifth.
            method: if rng.gen_bool(0.05) {
                DigMethod::Blasting
            } else {
                DigMethod::ALL[rng.gen_range(0..DigMethod::ALL.len() - 1)]
            },
            work_type: "oracle".into(),
            start_date: today,
            end_date: today,
        };
        let dig = match Dig::parse(&req, &ex.limits, index.crs(), today) {
            Ok(d) => d,
            // A random trench may cross itself; that is a valid line, so this should not
            // happen — but if it does, it must be a named 4xx, never a panic.
            Err(e) => panic!("dig {n} refused: {e}"),
        };
        let ours = run(&index, &ex, &dig, app::now()).expect("check");
        let half = dig.half_width_m;
        let reach = ex.rules.max_reach_m(req.method) + half;
        let gj = geometry.to_string();
        let ids: Vec<i64> = client
            .query(&candidates, &[&gj, &reach])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut cols: [Vec<f64>; 6] = Default::default();
        for id in &ids {
            let t = ex.rules.thresholds(by_id[id], req.method);
            cols[0].push(t.clearance_m);
            cols[1].push(t.tolerance_m);
            cols[2].push(t.info_m);
            cols[3].push(t.no_dig_m.unwrap_or(-1.0));
            cols[4].push(t.permit_m.unwrap_or(-1.0));
            cols[5].push(t.vertical_clearance_m.unwrap_or(0.0));
        }
        let rows = client
            .query(
                &severity,
                &[
                    &gj,
                    &ids,
                    &cols[0],
                    &cols[1],
                    &cols[2],
                    &cols[3],
                    &cols[4],
                    &cols[5],
                    &req.top_depth_m,
                    &req.bottom_depth_m,
                    &half,
                ],
            )
            .await
            .unwrap();
        let mut oracle: BTreeMap<i64, (String, f64, Option<f64>)> = BTreeMap::new();
        for r in rows {
            let sev: Option<String> = r.get(1);
            if let Some(s) = sev {
                oracle.insert(r.get(0), (s, r.get(2), r.get(3)));
            }
        }
        let mine: BTreeMap<i64, String> = ours
            .conflicts
            .iter()
            .map(|c| (c.pipeline_id, c.severity.to_string()))
            .collect();
        let theirs: BTreeMap<i64, String> = oracle.iter().map(|(k, v)| (*k, v.0.clone())).collect();
        assert_eq!(
            mine, theirs,
            "dig {n} ({req:?}): conflicting set or severities differ from PostGIS"
        );
        for c in &ours.conflicts {
            let (sev, d, d3) = &oracle[&c.pipeline_id];
            *tally.entry(sev.clone()).or_default() += 1;
            assert!(
                (c.horizontal_distance_m - d).abs() < 0.002,
                "dig {n}, pipe {}: distance {} vs PostGIS {d}",
                c.pipeline_id,
                c.horizontal_distance_m
            );
            if !line {
                assert_eq!(c.clearance_3d_m.is_some(), d3.is_some());
                if let (Some(a), Some(b)) = (c.clearance_3d_m, d3) {
                    assert!(
                        (a - b).abs() < 0.002,
                        "dig {n}, pipe {}: 3D clearance {a} vs ST_3DDistance {b}",
                        c.pipeline_id
                    );
                    compared_3d += 1;
                }
            }
        }
    }
    eprintln!("oracle: {DIGS} digs, severities {tally:?}, 3D distances compared {compared_3d}");
    // The digs must exercise every branch, not pass vacuously.
    for s in ["violation", "warning", "info"] {
        assert!(tally.get(s).copied().unwrap_or(0) >= 20, "{s}: {tally:?}");
    }
    assert!(compared_3d >= 100, "{compared_3d}");
}
