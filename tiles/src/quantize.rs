//! lon/lat → tile space, and fractional tile space → valid integer MVT
//! geometry.
//!
//! Owns [`TileTransform`] (the per-tile affine map from Web Mercator to tile
//! units, y down) and the quantisers that round to integers while keeping the
//! result encodable: repeated points are dropped, lines shorter than two
//! distinct points and rings with fewer than three distinct points or zero
//! area are dropped, and rings are oriented per MVT 2.1 — exterior rings with
//! positive surveyor's area (clockwise on screen), interior rings negative.
//! A polygon whose exterior collapses loses its holes too, so every hole in
//! the output follows its own exterior and a MultiPolygon stays well-formed.
//!
//! Rounding can make a ring self-intersect or a hole touch its exterior.
//! Two cheap repairs cover the common cases: collinear vertices (which
//! include rounding "spikes" A→B→A) are removed from rings, and a hole
//! with a vertex on or outside its exterior is dropped
//! ([`keep_hole_if_inside`]). There is no full snap-rounding repair (à la
//! `ST_MakeValid`); the residual rate is measured in
//! `tests/pipeline.rs::random_star_polygons_are_almost_always_valid`.

use geo::{Coord, Geometry, MapCoords};

use crate::error::TileError;
use crate::geometry::{hole_inside, ring_area2, GeomType, TileGeometry, TilePoint};
use crate::tilemath::{
    lonlat_to_mercator, lonlat_to_unit, mercator_to_lonlat, TileCoord, HALF_WORLD_M,
};

/// Maps lon/lat (or EPSG:3857 metres) into one tile's coordinate space:
/// `(0,0)` = the tile's north-west corner, `(extent, extent)` = south-east,
/// fractional, unclamped (geometry outside the tile maps outside the range).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileTransform {
    tile: TileCoord,
    extent: u32,
    // World size in tile units (2^z · extent) and the tile's origin in
    // the same units; precomputed so the per-coordinate cost is a mul+sub.
    world: f64,
    origin_x: f64,
    origin_y: f64,
    // Latitudes within `band` degrees of `lat0` take y from a quartic in the latitude
    // offset instead of `ln(tan(…))` (see `FAST_Y_MIN_ZOOM`); `band` is 0 when off.
    lat0: f64,
    band: f64,
    fy: [f64; 5],
}

/// From this zoom on a tile's y comes from a Taylor polynomial of Web Mercator around the
/// tile's middle latitude, for latitudes within two tile heights of it: the polynomial is
/// within 1e-6 tile units of `ln(tan(π/4 + φ/2))` there (`fast_y_matches_the_exact_
/// projection`), far below the rounding to integers, and `tan`/`ln` per vertex were a
/// twentieth of a dense tile's cost. Vertices farther out use the exact formula.
const FAST_Y_MIN_ZOOM: u8 = 12;

impl TileTransform {
    /// Transform for `tile` with the given extent (usually 4096).
    pub fn new(tile: TileCoord, extent: u32) -> Self {
        let e = extent as f64;
        let mut t = TileTransform {
            tile,
            extent,
            world: tile.tiles_per_axis() as f64 * e,
            origin_x: tile.x() as f64 * e,
            origin_y: tile.y() as f64 * e,
            lat0: 0.0,
            band: 0.0,
            fy: [0.0; 5],
        };
        let b = tile.bounds_lonlat();
        let (south, north) = (b.min().y, b.max().y);
        let lat0 = (south + north) / 2.0;
        if tile.z() >= FAST_Y_MIN_ZOOM && lat0.abs() < 80.0 {
            // y(φ0 + δ) = y0 + k·(u1·δ + u2·δ²/2 + u3·δ³/6 + u4·δ⁴/24), u = ln tan(π/4 + φ/2),
            // k = −world/2π; the derivatives of u are sec φ, sec φ·tan φ,
            // sec φ·(tan²φ + sec²φ), sec φ·tan φ·(tan²φ + 5·sec²φ).
            let phi = lat0.to_radians();
            let (sec, tan) = (1.0 / phi.cos(), phi.tan());
            let k = -t.world / (2.0 * std::f64::consts::PI);
            t.fy = [
                t.exact_y(lat0),
                k * sec,
                k * sec * tan / 2.0,
                k * sec * (tan * tan + sec * sec) / 6.0,
                k * sec * tan * (tan * tan + 5.0 * sec * sec) / 24.0,
            ];
            t.lat0 = lat0;
            t.band = 2.0 * (north - south);
        }
        t
    }

    #[inline]
    fn exact_y(&self, lat: f64) -> f64 {
        lonlat_to_unit(0.0, lat).1 * self.world - self.origin_y
    }

    /// The tile.
    pub fn tile(&self) -> TileCoord {
        self.tile
    }

    /// The extent.
    pub fn extent(&self) -> u32 {
        self.extent
    }

    /// lon/lat (degrees) → fractional tile units. Latitude is clamped to the
    /// Web Mercator domain.
    #[inline]
    pub fn lonlat_to_tile(&self, lon: f64, lat: f64) -> Coord<f64> {
        let d = lat - self.lat0;
        if d.abs() < self.band {
            let [y0, a, b, c, e] = self.fy;
            let d = d.to_radians();
            let ux = (lon + 180.0) / 360.0;
            return Coord {
                x: ux * self.world - self.origin_x,
                y: y0 + d * (a + d * (b + d * (c + d * e))),
            };
        }
        let (ux, uy) = lonlat_to_unit(lon, lat);
        Coord {
            x: ux * self.world - self.origin_x,
            y: uy * self.world - self.origin_y,
        }
    }

    /// EPSG:3857 metres → fractional tile units.
    #[inline]
    pub fn mercator_to_tile(&self, x: f64, y: f64) -> Coord<f64> {
        let s = self.world / (2.0 * HALF_WORLD_M);
        Coord {
            x: (x + HALF_WORLD_M) * s - self.origin_x,
            y: (HALF_WORLD_M - y) * s - self.origin_y,
        }
    }

    /// Fractional tile units → lon/lat (inverse of [`lonlat_to_tile`](Self::lonlat_to_tile)).
    pub fn tile_to_lonlat(&self, p: Coord<f64>) -> Coord<f64> {
        let s = 2.0 * HALF_WORLD_M / self.world;
        let mx = (p.x + self.origin_x) * s - HALF_WORLD_M;
        let my = HALF_WORLD_M - (p.y + self.origin_y) * s;
        mercator_to_lonlat(mx, my)
    }

    /// Project a whole lon/lat geometry into tile units (allocating
    /// convenience; the pipeline projects into reused buffers instead).
    pub fn project(&self, g: &Geometry<f64>) -> Geometry<f64> {
        g.map_coords(|c| self.lonlat_to_tile(c.x, c.y))
    }

    /// Project a whole EPSG:3857 geometry into tile units.
    pub fn project_mercator(&self, g: &Geometry<f64>) -> Geometry<f64> {
        g.map_coords(|c| self.mercator_to_tile(c.x, c.y))
    }
}

/// Round one coordinate to the integer grid (saturating at `i32` bounds).
#[inline]
pub fn quantize_coord(c: Coord<f64>) -> TilePoint {
    Coord {
        x: c.x.round() as i32,
        y: c.y.round() as i32,
    }
}

// Push rounded coordinates, skipping consecutive duplicates.
fn push_dedup(out: &mut Vec<TilePoint>, start: usize, coords: &[Coord<f64>]) {
    for &c in coords {
        let q = quantize_coord(c);
        if out.len() == start || *out.last().unwrap() != q {
            out.push(q);
        }
    }
}

// z-component of (b − a) × (c − b); 0 ⇔ a, b, c collinear.
#[inline]
fn cross(a: TilePoint, b: TilePoint, c: TilePoint) -> i64 {
    (b.x as i64 - a.x as i64) * (c.y as i64 - b.y as i64)
        - (b.y as i64 - a.y as i64) * (c.x as i64 - b.x as i64)
}

/// Append one point to a `Point` geometry.
pub fn quantize_point(c: Coord<f64>, out: &mut TileGeometry) {
    out.push_point(quantize_coord(c));
}

/// Quantise a line and append it as a part of `out` if it still has two
/// distinct points; returns whether it was kept.
pub fn quantize_line(line: &[Coord<f64>], out: &mut TileGeometry) -> bool {
    let (start, parts) = (out.points().len(), out.num_ends());
    let pts = out.raw_points_mut();
    push_dedup(pts, start, line);
    if pts.len() - start >= 2 {
        out.end_part();
        true
    } else {
        out.truncate_to(start, parts);
        false
    }
}

/// Quantise a ring (open or closed, any orientation) and append it, oriented
/// as an exterior (`true`) or interior ring, if it has ≥ 3 distinct points and
/// non-zero area; returns whether it was kept.
pub fn quantize_ring(ring: &[Coord<f64>], exterior: bool, out: &mut TileGeometry) -> bool {
    let (start, parts) = (out.points().len(), out.num_ends());
    let pts = out.raw_points_mut();
    // Round, dropping repeats and collinear vertices as we go. Rounding a
    // dense ring onto the grid creates A→B→A "spikes" and back-tracking
    // collinear runs, which are self-intersections (§4.3.4.4 forbids them);
    // a vertex collinear with its neighbours carries no shape, so dropping
    // every such vertex removes the spikes without changing the outline.
    for &c in ring {
        let q = quantize_coord(c);
        if pts.len() > start && *pts.last().unwrap() == q {
            continue;
        }
        pts.push(q);
        while pts.len() - start >= 3 {
            let n = pts.len();
            if cross(pts[n - 3], pts[n - 2], pts[n - 1]) != 0 {
                break;
            }
            pts.remove(n - 2);
            if pts[n - 3] == pts[n - 2] {
                pts.pop();
            }
        }
    }
    // Drop the closing point(s): MVT's ClosePath implies it and a repeated
    // final point would be a zero-length segment (§4.3.4.4).
    while pts.len() - start > 1 && pts[start] == *pts.last().unwrap() {
        pts.pop();
    }
    // The same collinearity clean-up across the seam where the ring closes.
    loop {
        let n = pts.len();
        if n - start < 3 {
            break;
        }
        if cross(pts[n - 2], pts[n - 1], pts[start]) == 0 {
            pts.pop();
        } else if cross(pts[n - 1], pts[start], pts[start + 1]) == 0 {
            pts.remove(start);
        } else {
            break;
        }
    }
    let area2 = if pts.len() - start >= 3 {
        ring_area2(&pts[start..])
    } else {
        0
    };
    if area2 == 0 {
        out.truncate_to(start, parts);
        return false;
    }
    if (area2 > 0) != exterior {
        pts[start..].reverse();
    }
    out.end_part();
    true
}

/// Quantise a polygon given as exterior + holes. If the exterior does not
/// survive nothing is appended (its holes would otherwise be attached to the
/// previous polygon). Returns whether the exterior was kept.
pub fn quantize_polygon<'a>(
    exterior: &[Coord<f64>],
    holes: impl IntoIterator<Item = &'a [Coord<f64>]>,
    out: &mut TileGeometry,
) -> bool {
    let ext_start = out.points().len();
    if !quantize_ring(exterior, true, out) {
        return false;
    }
    let ext_end = out.points().len();
    for h in holes {
        if quantize_ring(h, false, out) {
            keep_hole_if_inside(out, ext_start, ext_end);
        }
    }
    true
}

// Above this many vertex×edge tests the hole check is skipped: a pathological
// polygon should not make a tile request quadratic.
const HOLE_CHECK_LIMIT: usize = 4_000_000;

/// Call right after [`quantize_ring`] appended a hole: removes it again when
/// rounding put one of its vertices on or outside the polygon's exterior
/// `out.points()[ext_start..ext_end]` (see [`hole_inside`]). Returns whether
/// the hole was kept.
pub fn keep_hole_if_inside(out: &mut TileGeometry, ext_start: usize, ext_end: usize) -> bool {
    let ends = out.part_ends();
    let parts = ends.len();
    debug_assert!(parts >= 2, "exterior and hole must both be parts");
    // The hole directly follows the previous part of the same polygon.
    let hole_start = ends[parts - 2] as usize;
    let pts = out.points();
    let (hole, ext) = (&pts[hole_start..], &pts[ext_start..ext_end]);
    if hole.len() * ext.len() > HOLE_CHECK_LIMIT || hole_inside(hole, ext) {
        return true;
    }
    out.truncate_to(hole_start, parts - 1);
    false
}

/// Quantise a `geo` geometry already in tile units into `out` (cleared
/// first, kind set from the geometry). Returns `Ok(false)` when nothing
/// survived. Geometry collections are rejected: an MVT feature has a single
/// geometry type.
pub fn quantize_geometry(g: &Geometry<f64>, out: &mut TileGeometry) -> Result<bool, TileError> {
    match g {
        Geometry::Point(p) => {
            out.clear(GeomType::Point);
            quantize_point(p.0, out);
        }
        Geometry::MultiPoint(mp) => {
            out.clear(GeomType::Point);
            for p in &mp.0 {
                quantize_point(p.0, out);
            }
        }
        Geometry::Line(l) => {
            out.clear(GeomType::LineString);
            quantize_line(&[l.start, l.end], out);
        }
        Geometry::LineString(ls) => {
            out.clear(GeomType::LineString);
            quantize_line(&ls.0, out);
        }
        Geometry::MultiLineString(mls) => {
            out.clear(GeomType::LineString);
            for ls in &mls.0 {
                quantize_line(&ls.0, out);
            }
        }
        Geometry::Polygon(p) => {
            out.clear(GeomType::Polygon);
            quantize_polygon(&p.exterior().0, p.interiors().iter().map(|r| &r.0[..]), out);
        }
        Geometry::MultiPolygon(mp) => {
            out.clear(GeomType::Polygon);
            for p in &mp.0 {
                quantize_polygon(&p.exterior().0, p.interiors().iter().map(|r| &r.0[..]), out);
            }
        }
        Geometry::Rect(r) => {
            out.clear(GeomType::Polygon);
            quantize_polygon(&r.to_polygon().exterior().0, [], out);
        }
        Geometry::Triangle(t) => {
            out.clear(GeomType::Polygon);
            quantize_polygon(&t.to_array(), [], out);
        }
        Geometry::GeometryCollection(_) => {
            return Err(TileError::UnsupportedGeometry("GeometryCollection"));
        }
    }
    Ok(!out.is_empty())
}

/// One-call convenience: lon/lat geometry → quantised tile geometry for
/// `tile` **without clipping** (use [`crate::pipeline`] for the full chain).
pub fn lonlat_geometry_to_tile(
    g: &Geometry<f64>,
    tile: TileCoord,
    extent: u32,
) -> Result<TileGeometry, TileError> {
    let t = TileTransform::new(tile, extent);
    let mut out = TileGeometry::default();
    quantize_geometry(&t.project(g), &mut out)?;
    Ok(out)
}

/// lon/lat → EPSG:3857 for a whole geometry (convenience for callers that
/// store 3857).
pub fn geometry_to_mercator(g: &Geometry<f64>) -> Geometry<f64> {
    g.map_coords(|c| lonlat_to_mercator(c.x, c.y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_y_matches_the_exact_projection() {
        // Tiles from the equator to 79°, at the zooms that use the polynomial; every
        // latitude inside the band (and a little beyond it, where the exact formula takes
        // over) must land within 1e-6 tile units of ln(tan(π/4 + φ/2)).
        for z in [12u8, 14, 16, 22] {
            // At z22 the world is 1.7e10 units wide, so both formulas carry ~1e-5 units of
            // f64 rounding noise there; below, the polynomial's own error dominates.
            let tol = if z == 22 { 1e-4 } else { 1e-6 };
            let mut worst = 0.0f64;
            for lat in [0.0, 12.3, 29.56, 45.0, 61.7, 79.0] {
                for lon in [-179.9, 0.0, 106.55] {
                    let tile = TileCoord::from_lonlat(lon, lat, z).unwrap();
                    let xf = TileTransform::new(tile, 4096);
                    assert!(xf.band > 0.0, "z{z} {lat}");
                    for k in -300..=300 {
                        let la = xf.lat0 + xf.band * f64::from(k) / 250.0;
                        let fast = xf.lonlat_to_tile(lon, la);
                        let (ux, uy) = lonlat_to_unit(lon, la);
                        let ex = ux * xf.world - xf.origin_x;
                        let ey = uy * xf.world - xf.origin_y;
                        worst = worst.max((fast.y - ey).abs()).max((fast.x - ex).abs());
                    }
                }
            }
            assert!(worst < tol, "z{z}: worst error {worst} tile units");
        }
        // Low zooms and polar tiles keep the exact formula.
        let low = TileTransform::new(TileCoord::from_lonlat(106.5, 29.5, 11).unwrap(), 4096);
        assert_eq!(low.band, 0.0);
        let polar = TileTransform::new(TileCoord::from_lonlat(0.0, 84.0, 14).unwrap(), 4096);
        assert_eq!(polar.band, 0.0);
    }

    fn c(x: f64, y: f64) -> Coord<f64> {
        Coord { x, y }
    }

    #[test]
    fn transform_corners() {
        let t = TileTransform::new(TileCoord::new(14, 13279, 6795).unwrap(), 4096);
        let b = t.tile().bounds_lonlat();
        let nw = t.lonlat_to_tile(b.min().x, b.max().y);
        let se = t.lonlat_to_tile(b.max().x, b.min().y);
        assert!(nw.x.abs() < 1e-6 && nw.y.abs() < 1e-6, "{nw:?}");
        assert!(
            (se.x - 4096.0).abs() < 1e-6 && (se.y - 4096.0).abs() < 1e-6,
            "{se:?}"
        );
        let back = t.tile_to_lonlat(c(1234.5, 777.25));
        let again = t.lonlat_to_tile(back.x, back.y);
        assert!((again.x - 1234.5).abs() < 1e-6 && (again.y - 777.25).abs() < 1e-6);
        let m = lonlat_to_mercator(back.x, back.y);
        let via_m = t.mercator_to_tile(m.x, m.y);
        assert!((via_m.x - 1234.5).abs() < 1e-6 && (via_m.y - 777.25).abs() < 1e-6);
    }

    #[test]
    fn line_dedup_and_drop() {
        let mut g = TileGeometry::new(GeomType::LineString);
        assert!(!quantize_line(
            &[c(1.1, 1.1), c(0.9, 1.2), c(1.4, 0.6)],
            &mut g
        ));
        assert!(g.is_empty());
        assert!(quantize_line(
            &[c(0.0, 0.0), c(0.2, 0.1), c(5.0, 5.0), c(5.0, 5.0)],
            &mut g
        ));
        assert_eq!(g.points().len(), 2);
    }

    #[test]
    fn ring_orientation_and_degenerates() {
        let mut g = TileGeometry::new(GeomType::Polygon);
        // Counter-clockwise on screen → must be reversed for an exterior.
        let ccw = [
            c(0.0, 0.0),
            c(0.0, 10.0),
            c(10.0, 10.0),
            c(10.0, 0.0),
            c(0.0, 0.0),
        ];
        assert!(quantize_ring(&ccw, true, &mut g));
        assert!(ring_area2(g.points()) > 0);
        assert_eq!(g.points().len(), 4);
        // Collinear after rounding → zero area → dropped.
        let flat = [c(0.0, 0.0), c(5.0, 0.2), c(10.0, -0.3), c(0.0, 0.0)];
        assert!(!quantize_ring(&flat, true, &mut g));
        assert_eq!(g.part_ends().len(), 1);
    }
}
