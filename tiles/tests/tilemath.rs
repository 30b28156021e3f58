//! Tile math: known values (computed from independent formulas), round trips,
//! coverage, hierarchy and range errors.

use std::f64::consts::PI;

use geo::{Coord, Rect};
use lifeline_tiles::tilemath::{
    lonlat_to_mercator, mercator_to_lonlat, tiles_covering, TileCoord, HALF_WORLD_M, MAX_LATITUDE,
    MAX_ZOOM,
};
use lifeline_tiles::TileError;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// Independent formulas: the library uses atan(sinh(.)) for latitude; here the
// Gudermannian's 2·atan(exp(.)) − π/2 form, and world width 2πR directly.
fn ref_lon(x: f64, n: f64) -> f64 {
    x / n * 360.0 - 180.0
}
fn ref_lat(y: f64, n: f64) -> f64 {
    (2.0 * (PI * (1.0 - 2.0 * y / n)).exp().atan() - PI / 2.0).to_degrees()
}
const WORLD: f64 = 2.0 * PI * 6_378_137.0;

#[test]
fn z0_bounds() {
    let t = TileCoord::new(0, 0, 0).unwrap();
    let m = t.bounds_mercator();
    for v in [m.min().x, m.min().y] {
        assert!(close(v, -20_037_508.342_789_244, 1e-6), "{v}");
    }
    for v in [m.max().x, m.max().y] {
        assert!(close(v, 20_037_508.342_789_244, 1e-6), "{v}");
    }
    let g = t.bounds_lonlat();
    assert_eq!((g.min().x, g.max().x), (-180.0, 180.0));
    assert!(close(g.max().y, 85.051_128_78, 1e-8) && close(g.min().y, -85.051_128_78, 1e-8));
    assert!(close(g.max().y, MAX_LATITUDE, 1e-12));
}

#[test]
fn tile_14_13279_6795_known_values() {
    let t = TileCoord::new(14, 13279, 6795).unwrap();
    let n = 16384.0;
    let g = t.bounds_lonlat();
    // ≈ 111.774902°E .. 111.796875°E, 29.305561°N .. 29.324720°N
    assert!(close(g.min().x, ref_lon(13279.0, n), 1e-9));
    assert!(close(g.max().x, ref_lon(13280.0, n), 1e-9));
    assert!(close(g.max().y, ref_lat(6795.0, n), 1e-9));
    assert!(close(g.min().y, ref_lat(6796.0, n), 1e-9));
    assert!(close(g.min().x, 111.774_902_343_75, 1e-9));
    assert!(close(g.max().y, 29.324_720_16, 1e-7));

    let m = t.bounds_mercator();
    assert!(close(m.min().x, -WORLD / 2.0 + 13279.0 * WORLD / n, 1e-6));
    assert!(close(m.max().x, -WORLD / 2.0 + 13280.0 * WORLD / n, 1e-6));
    assert!(close(m.max().y, WORLD / 2.0 - 6795.0 * WORLD / n, 1e-6));
    assert!(close(m.min().y, WORLD / 2.0 - 6796.0 * WORLD / n, 1e-6));
    // The two bounds agree through the projection.
    let sw = lonlat_to_mercator(g.min().x, g.min().y);
    let ne = lonlat_to_mercator(g.max().x, g.max().y);
    assert!(close(sw.x, m.min().x, 1e-6) && close(sw.y, m.min().y, 1e-6));
    assert!(close(ne.x, m.max().x, 1e-6) && close(ne.y, m.max().y, 1e-6));

    // Its centre maps back to it.
    let c = TileCoord::from_lonlat(
        (g.min().x + g.max().x) / 2.0,
        (g.min().y + g.max().y) / 2.0,
        14,
    )
    .unwrap();
    assert_eq!(c, t);
}

#[test]
fn lonlat_mercator_round_trip() {
    for &(lon, lat) in &[
        (0.0, 0.0),
        (111.78, 29.31),
        (-73.9857, 40.7484),
        (179.999, -84.9),
        (-180.0, 85.0),
    ] {
        let m = lonlat_to_mercator(lon, lat);
        let back = mercator_to_lonlat(m.x, m.y);
        assert!(
            close(back.x, lon, 1e-9) && close(back.y, lat, 1e-9),
            "{lon},{lat} -> {back:?}"
        );
    }
    // Known value: lon 180 is the world edge; the equator is y = 0.
    let m = lonlat_to_mercator(180.0, 0.0);
    assert!(close(m.x, HALF_WORLD_M, 1e-6) && m.y.abs() < 1e-9);
    // Clamping beyond ±85.0511.
    assert_eq!(
        lonlat_to_mercator(10.0, 90.0),
        lonlat_to_mercator(10.0, MAX_LATITUDE)
    );
    assert_eq!(
        lonlat_to_mercator(10.0, -90.0),
        lonlat_to_mercator(10.0, -MAX_LATITUDE)
    );
}

#[test]
fn point_to_tile_and_back_at_every_zoom() {
    let (lon, lat) = (111.785, 29.315);
    for z in 0..=MAX_ZOOM {
        let t = TileCoord::from_lonlat(lon, lat, z).unwrap();
        let b = t.bounds_lonlat();
        assert!(b.min().x <= lon && lon < b.max().x, "z{z}");
        assert!(b.min().y < lat && lat <= b.max().y, "z{z}");
        if let Some(p) = t.parent() {
            assert_eq!(p, TileCoord::from_lonlat(lon, lat, z - 1).unwrap());
            assert!(p.children().unwrap().contains(&t));
        }
    }
}

#[test]
fn parent_children() {
    let t = TileCoord::new(14, 13279, 6795).unwrap();
    let p = t.parent().unwrap();
    assert_eq!((p.z(), p.x(), p.y()), (13, 6639, 3397));
    let kids = t.children().unwrap();
    assert_eq!(
        kids.map(|k| (k.z(), k.x(), k.y())),
        [
            (15, 26558, 13590),
            (15, 26559, 13590),
            (15, 26558, 13591),
            (15, 26559, 13591)
        ]
    );
    for k in kids {
        assert_eq!(k.parent(), Some(t));
    }
    assert_eq!(TileCoord::new(0, 0, 0).unwrap().parent(), None);
    assert_eq!(TileCoord::new(22, 0, 0).unwrap().children(), None);
}

#[test]
fn out_of_range_errors_name_the_value() {
    let e = TileCoord::new(23, 0, 0).unwrap_err();
    assert_eq!(e, TileError::ZoomOutOfRange { z: 23, max: 22 });
    assert!(e.to_string().contains("23"), "{e}");
    let e = TileCoord::new(3, 8, 0).unwrap_err();
    assert_eq!(
        e,
        TileError::XOutOfRange {
            z: 3,
            x: 8,
            limit: 8
        }
    );
    assert_eq!(
        e.to_string(),
        "tile x 8 is out of range at zoom 3 (must be < 8)"
    );
    let e = TileCoord::new(14, 0, 16384).unwrap_err();
    assert!(e.to_string().contains("16384"), "{e}");
    assert!(matches!(e, TileError::YOutOfRange { .. }));
    assert!(TileCoord::new(0, 1, 0).is_err());
    assert!(TileCoord::new(22, (1 << 22) - 1, (1 << 22) - 1).is_ok());
    assert!(TileCoord::from_lonlat(0.0, 0.0, 23).is_err());
    assert!(TileCoord::from_lonlat(f64::INFINITY, 0.0, 3).is_err());
}

#[test]
fn coverage_of_a_tile_is_that_tile() {
    let t = TileCoord::new(14, 13279, 6795).unwrap();
    let r = tiles_covering(t.bounds_lonlat(), 14).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r.iter().collect::<Vec<_>>(), vec![t]);
    let r = tiles_covering(t.bounds_lonlat(), 15).unwrap();
    let mut got: Vec<_> = r.iter().collect();
    let mut want = t.children().unwrap().to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let r = tiles_covering(t.bounds_lonlat(), 13).unwrap();
    assert_eq!(r.iter().collect::<Vec<_>>(), vec![t.parent().unwrap()]);
}

#[test]
fn coverage_of_bboxes() {
    // Whole world.
    let world = Rect::new(
        Coord {
            x: -180.0,
            y: -90.0,
        },
        Coord { x: 180.0, y: 90.0 },
    );
    let r = tiles_covering(world, 3).unwrap();
    assert_eq!(
        (r.min_x, r.min_y, r.max_x, r.max_y, r.len()),
        (0, 0, 7, 7, 64)
    );
    // A point is one tile.
    let p = Rect::new(
        Coord {
            x: 111.785,
            y: 29.315,
        },
        Coord {
            x: 111.785,
            y: 29.315,
        },
    );
    let r = tiles_covering(p, 14).unwrap();
    assert_eq!(
        r.iter().collect::<Vec<_>>(),
        vec![TileCoord::from_lonlat(111.785, 29.315, 14).unwrap()]
    );
    // A city-sized box: every tile in the range intersects the box, and the
    // box's corners are in the range.
    let city = Rect::new(
        Coord {
            x: 111.60,
            y: 29.20,
        },
        Coord {
            x: 111.95,
            y: 29.45,
        },
    );
    let r = tiles_covering(city, 12).unwrap();
    for t in r.iter() {
        let b = t.bounds_lonlat();
        assert!(b.min().x < city.max().x && b.max().x > city.min().x);
        assert!(b.min().y < city.max().y && b.max().y > city.min().y);
    }
    for (lon, lat) in [
        (111.60, 29.20),
        (111.95, 29.45),
        (111.60, 29.45),
        (111.95, 29.20),
    ] {
        assert!(r.contains(&TileCoord::from_lonlat(lon, lat, 12).unwrap()));
    }
    assert_eq!(r.len() as usize, r.iter().count());
    assert!(tiles_covering(city, 30).is_err());
    let nan = Rect::new(
        Coord {
            x: f64::NAN,
            y: 0.0,
        },
        Coord { x: 1.0, y: 1.0 },
    );
    assert!(tiles_covering(nan, 3).is_err());
}
