//! Splitting a polygon into parts of given relative areas, for the grid hierarchy: streets
//! inside districts, communities inside streets, grids, micro-grids.
//!
//! The split is recursive: the children are divided into two groups of about equal weight
//! and the polygon is cut by one straight line, roughly across its longer side with a random
//! tilt, placed so each side gets its group's share of the area. The cut position is found
//! by bisection on a cheap half-plane area (Sutherland–Hodgman clipping keeps the area exact
//! even for concave rings); the two sides are then computed once with the overlay engine
//! (`parent ∩ H` and `parent − H` with the same half-plane `H`), so siblings share their
//! boundary and cover the parent without overlapping.

use geo::orient::{Direction, Orient};
use geo::{Area, BooleanOps, BoundingRect, Centroid, Coord, LineString, MultiPolygon, Polygon};
use rand::Rng;

/// How many times a cut is retried at another angle when the overlay returns an empty or
/// invalid side (rare: snapping can pinch a ring).
const ATTEMPTS: usize = 12;

/// Splits `poly` (lon/lat) into `weights.len()` parts whose areas are about proportional to
/// the weights, returned in the order of the weights. With `attract`, children earlier in
/// the list end up nearer that point (used to put urban sub-districts towards the city
/// centre).
pub(super) fn split(
    poly: &MultiPolygon<f64>,
    weights: &[f64],
    attract: Option<Coord<f64>>,
    rng: &mut impl Rng,
) -> Result<Vec<MultiPolygon<f64>>, String> {
    if weights.is_empty() {
        return Ok(vec![]);
    }
    if weights.iter().any(|w| !w.is_finite() || *w <= 0.0) {
        return Err("split weights must be positive".into());
    }
    let mut out = Vec::with_capacity(weights.len());
    split_rec(poly.clone(), weights, attract, rng, &mut out)?;
    Ok(out)
}

fn split_rec(
    poly: MultiPolygon<f64>,
    weights: &[f64],
    attract: Option<Coord<f64>>,
    rng: &mut impl Rng,
    out: &mut Vec<MultiPolygon<f64>>,
) -> Result<(), String> {
    let n = weights.len();
    if n == 1 {
        out.push(poly);
        return Ok(());
    }
    let total: f64 = weights.iter().sum();
    // The split index whose prefix weight is closest to half.
    let (mut k, mut best, mut acc) = (1, f64::MAX, 0.0);
    for i in 1..n {
        acc += weights[i - 1];
        let d = (acc - total / 2.0).abs();
        if d < best {
            best = d;
            k = i;
        }
    }
    let frac = weights[..k].iter().sum::<f64>() / total;
    let (first, second) = cut(&poly, frac, attract, rng)?;
    split_rec(first, &weights[..k], attract, rng, out)?;
    split_rec(second, &weights[k..], attract, rng, out)
}

/// Cuts `poly` in two: the first part holds `frac` of the area (and lies towards `attract`
/// when given), the second the rest.
fn cut(
    poly: &MultiPolygon<f64>,
    frac: f64,
    attract: Option<Coord<f64>>,
    rng: &mut impl Rng,
) -> Result<(MultiPolygon<f64>, MultiPolygon<f64>), String> {
    let rect = poly
        .bounding_rect()
        .ok_or("cannot split an empty polygon")?;
    let lat = rect.center().y.to_radians();
    let coslat = lat.cos();
    let (w_m, h_m) = (rect.width() * coslat, rect.height());
    let area = poly.unsigned_area();
    if area <= 0.0 {
        return Err("cannot split a polygon without area".into());
    }
    let centre = rect.center();
    let mut last_err = String::new();
    for attempt in 0..ATTEMPTS {
        // Cut across the longer side (the normal points along it), tilted at random; later
        // attempts try any angle.
        let base = if w_m >= h_m {
            0.0
        } else {
            std::f64::consts::FRAC_PI_2
        };
        let spread = if attempt < 4 {
            0.35
        } else {
            std::f64::consts::PI
        };
        let angle = base + rng.gen_range(-spread..spread);
        // A metric direction expressed in degrees: x is shrunk by cos(lat).
        let (nx, ny) = (angle.cos() * coslat, angle.sin());
        let l = nx.hypot(ny);
        let u = Coord {
            x: nx / l,
            y: ny / l,
        };
        // The low side (dot(u, p) <= t) gets the first group when it faces `attract`.
        let low_first = match attract {
            Some(a) => dot(u, a) <= dot(u, centre),
            None => true,
        };
        let low_frac = if low_first { frac } else { 1.0 - frac };
        let t = find_cut(poly, u, low_frac * area);
        let h = half_plane(rect.center(), dist_deg(rect.min(), rect.max()), u, t);
        let low = clean(poly.intersection(&h), area);
        let high = clean(poly.difference(&h), area);
        match (low, high) {
            (Ok(low), Ok(high)) => {
                return Ok(if low_first { (low, high) } else { (high, low) });
            }
            (Err(e), _) | (_, Err(e)) => last_err = e,
        }
    }
    Err(format!(
        "no valid cut found after {ATTEMPTS} attempts: {last_err}"
    ))
}

fn dot(a: Coord<f64>, b: Coord<f64>) -> f64 {
    a.x * b.x + a.y * b.y
}

fn dist_deg(a: Coord<f64>, b: Coord<f64>) -> f64 {
    (a.x - b.x).hypot(a.y - b.y)
}

/// The offset `t` of the line dot(u, p) = t that leaves `target` area on its low side.
fn find_cut(poly: &MultiPolygon<f64>, u: Coord<f64>, target: f64) -> f64 {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for p in &poly.0 {
        for c in &p.exterior().0 {
            let d = dot(u, *c);
            lo = lo.min(d);
            hi = hi.max(d);
        }
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if low_side_area(poly, u, mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Area of the part of `poly` where dot(u, p) <= t.
fn low_side_area(poly: &MultiPolygon<f64>, u: Coord<f64>, t: f64) -> f64 {
    let mut a = 0.0;
    for p in &poly.0 {
        a += clipped_ring_area(&p.exterior().0, u, t);
        for h in p.interiors() {
            a -= clipped_ring_area(&h.0, u, t);
        }
    }
    a
}

/// Sutherland–Hodgman against one half-plane, returning the unsigned area. For a concave
/// ring the output may hold zero-width bridges along the cut line; they add no area.
fn clipped_ring_area(ring: &[Coord<f64>], u: Coord<f64>, t: f64) -> f64 {
    let n = ring.len();
    if n < 4 {
        return 0.0;
    }
    let inside = |c: Coord<f64>| dot(u, c) <= t;
    let mut first: Option<Coord<f64>> = None;
    let mut prev_out: Option<Coord<f64>> = None;
    let mut twice = 0.0;
    let mut emit = |c: Coord<f64>| {
        if let Some(p) = prev_out {
            twice += p.x * c.y - c.x * p.y;
        } else {
            first = Some(c);
        }
        prev_out = Some(c);
    };
    // The ring is closed: edges are (ring[i], ring[i + 1]).
    for i in 0..n - 1 {
        let (a, b) = (ring[i], ring[i + 1]);
        let (ia, ib) = (inside(a), inside(b));
        if ia {
            emit(a);
        }
        if ia != ib {
            let (da, db) = (dot(u, a) - t, dot(u, b) - t);
            let s = da / (da - db);
            emit(Coord {
                x: a.x + (b.x - a.x) * s,
                y: a.y + (b.y - a.y) * s,
            });
        }
    }
    if let (Some(f), Some(p)) = (first, prev_out) {
        twice += p.x * f.y - f.x * p.y;
    }
    (twice / 2.0).abs()
}

/// The half-plane dot(u, p) <= t, as a quadrilateral large enough to cover the polygon.
fn half_plane(centre: Coord<f64>, size: f64, u: Coord<f64>, t: f64) -> Polygon<f64> {
    let r = 2.0 * size.max(1e-6);
    let s = t - dot(u, centre);
    let p0 = Coord {
        x: centre.x + u.x * s,
        y: centre.y + u.y * s,
    };
    let v = Coord { x: -u.y, y: u.x };
    let pt = |a: f64, b: f64| Coord {
        x: p0.x + v.x * a - u.x * b,
        y: p0.y + v.y * a - u.y * b,
    };
    Polygon::new(
        LineString::new(vec![
            pt(-r, 0.0),
            pt(-r, r),
            pt(r, r),
            pt(r, 0.0),
            pt(-r, 0.0),
        ]),
        vec![],
    )
    .orient(Direction::Default)
}

/// Orients the overlay result as RFC 7946 asks, drops slivers (a few square millimetres
/// left by snapping) and checks the result is a usable grid cell.
fn clean(mp: MultiPolygon<f64>, parent_area: f64) -> Result<MultiPolygon<f64>, String> {
    let min_area = parent_area * 1e-9;
    let mp = MultiPolygon::new(
        mp.0.into_iter()
            .filter(|p| p.unsigned_area() > min_area)
            .collect(),
    )
    .orient(Direction::Default);
    if mp.0.is_empty() {
        return Err("one side of the cut is empty".into());
    }
    lifeline_model::geom::check_multipolygon(&mp).map_err(|e| e.to_string())?;
    if mp.centroid().is_none() {
        return Err("cell has no centroid".into());
    }
    Ok(mp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{polygon, Intersects};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn parts_cover_without_overlap_and_follow_weights() {
        // A concave L shape near Chongqing.
        let l: Polygon<f64> = polygon![
            (x: 106.50, y: 29.50), (x: 106.56, y: 29.50), (x: 106.56, y: 29.52),
            (x: 106.52, y: 29.52), (x: 106.52, y: 29.56), (x: 106.50, y: 29.56), (x: 106.50, y: 29.50),
        ];
        let mp = MultiPolygon::new(vec![l]);
        let weights = [1.0, 2.0, 1.0, 3.0, 1.5];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let parts = split(&mp, &weights, None, &mut rng).unwrap();
        assert_eq!(parts.len(), 5);
        let total = mp.unsigned_area();
        let sum: f64 = parts.iter().map(|p| p.unsigned_area()).sum();
        assert!((sum - total).abs() / total < 1e-6, "{sum} vs {total}");
        let wsum: f64 = weights.iter().sum();
        for (p, w) in parts.iter().zip(weights) {
            let share = p.unsigned_area() / total;
            assert!((share - w / wsum).abs() < 1e-3, "{share} vs {}", w / wsum);
            lifeline_model::geom::check_multipolygon(p).unwrap();
        }
        for i in 0..parts.len() {
            for j in i + 1..parts.len() {
                if parts[i].intersects(&parts[j]) {
                    let a = parts[i].intersection(&parts[j]).unsigned_area();
                    assert!(a < total * 1e-9, "parts {i} and {j} overlap by {a}");
                }
            }
        }
    }

    #[test]
    fn attract_pulls_first_children_closer() {
        let sq: Polygon<f64> = polygon![
            (x: 106.0, y: 29.0), (x: 106.2, y: 29.0), (x: 106.2, y: 29.1), (x: 106.0, y: 29.1), (x: 106.0, y: 29.0),
        ];
        let mp = MultiPolygon::new(vec![sq]);
        let target = Coord { x: 106.3, y: 29.05 };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let parts = split(&mp, &[1.0, 1.0], Some(target), &mut rng).unwrap();
        let d = |p: &MultiPolygon<f64>| {
            let c = p.centroid().unwrap();
            (c.x() - target.x).hypot(c.y() - target.y)
        };
        assert!(d(&parts[0]) < d(&parts[1]));
    }

    #[test]
    fn bad_weights_are_an_error() {
        let sq: Polygon<f64> = polygon![
            (x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 0.0),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(split(&MultiPolygon::new(vec![sq]), &[1.0, -1.0], None, &mut rng).is_err());
    }
}
