//! Plane geometry for the generator: a local metric frame per district (roads and pipes are
//! designed in metres, then stored as CGCS2000 lon/lat), polylines with offsets and cuts,
//! small shapes for area risk points, and a smooth synthetic terrain for ground and invert
//! elevations.

use geo::{Coord, LineString, Polygon};
use rand::Rng;

/// Metres per degree of latitude near 30° N (the CGCS2000 ellipsoid).
const M_PER_DEG_LAT: f64 = 110_850.0;
/// Metres per degree of longitude at the equator.
const M_PER_DEG_LON_EQ: f64 = 111_320.0;

/// A local east/north frame in metres around an origin. An equirectangular map: inside one
/// district (< 60 km across) its scale error stays below 0.3 %, which is irrelevant for
/// sample data designed in metres.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame {
    lon0: f64,
    lat0: f64,
    kx: f64,
    ky: f64,
}

impl Frame {
    /// A frame centred on `origin` (lon/lat).
    pub fn new(origin: Coord<f64>) -> Self {
        Frame {
            lon0: origin.x,
            lat0: origin.y,
            kx: M_PER_DEG_LON_EQ * origin.y.to_radians().cos(),
            ky: M_PER_DEG_LAT,
        }
    }

    /// Lon/lat to metres.
    pub fn to_m(self, c: Coord<f64>) -> Coord<f64> {
        Coord {
            x: (c.x - self.lon0) * self.kx,
            y: (c.y - self.lat0) * self.ky,
        }
    }

    /// Metres to lon/lat, rounded to 1e-7° (about 1 cm, the precision of a survey).
    pub fn to_ll(self, c: Coord<f64>) -> Coord<f64> {
        Coord {
            x: round7(self.lon0 + c.x / self.kx),
            y: round7(self.lat0 + c.y / self.ky),
        }
    }

    /// A polyline in metres as a lon/lat `LineString`.
    pub fn line_to_ll(&self, pts: &[Coord<f64>]) -> LineString<f64> {
        LineString::new(pts.iter().map(|c| self.to_ll(*c)).collect())
    }

    /// A polygon in lon/lat converted to metres.
    pub fn polygon_to_m(&self, p: &Polygon<f64>) -> Polygon<f64> {
        let ring =
            |r: &LineString<f64>| LineString::new(r.0.iter().map(|c| self.to_m(*c)).collect());
        Polygon::new(ring(p.exterior()), p.interiors().iter().map(ring).collect())
    }

    /// Area of a lon/lat multipolygon in km².
    pub fn km2(&self, mp: &geo::MultiPolygon<f64>) -> f64 {
        use geo::Area;
        mp.unsigned_area() * self.kx * self.ky / 1e6
    }

    /// A ring in metres as a lon/lat polygon.
    pub fn ring_to_ll(&self, pts: &[Coord<f64>]) -> Polygon<f64> {
        let mut ring: Vec<Coord<f64>> = pts.iter().map(|c| self.to_ll(*c)).collect();
        ring.dedup();
        let mut ls = LineString::new(ring);
        ls.close();
        Polygon::new(ls, vec![])
    }
}

fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

/// Distance between two points.
pub(super) fn dist(a: Coord<f64>, b: Coord<f64>) -> f64 {
    (a.x - b.x).hypot(a.y - b.y)
}

/// Distance from `p` to the segment `a`–`b`.
pub(super) fn dist_to_segment(p: Coord<f64>, a: Coord<f64>, b: Coord<f64>) -> f64 {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len2 = dx * dx + dy * dy;
    if len2 == 0.0 {
        return dist(p, a);
    }
    let t = (((p.x - a.x) * dx + (p.y - a.y) * dy) / len2).clamp(0.0, 1.0);
    dist(
        p,
        Coord {
            x: a.x + t * dx,
            y: a.y + t * dy,
        },
    )
}

/// Length of a polyline.
pub(super) fn length(pts: &[Coord<f64>]) -> f64 {
    pts.windows(2).map(|w| dist(w[0], w[1])).sum()
}

/// The polyline shifted sideways by `d` metres (positive = left of the direction of
/// travel). Vertices are mitred, which is exact for the gentle bends of generated roads.
pub(super) fn offset(pts: &[Coord<f64>], d: f64) -> Vec<Coord<f64>> {
    if pts.len() < 2 || d == 0.0 {
        return pts.to_vec();
    }
    let normal = |a: Coord<f64>, b: Coord<f64>| {
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let l = dx.hypot(dy).max(1e-9);
        Coord {
            x: -dy / l,
            y: dx / l,
        }
    };
    let n = pts.len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let nv = if i == 0 {
            normal(pts[0], pts[1])
        } else if i == n - 1 {
            normal(pts[n - 2], pts[n - 1])
        } else {
            let a = normal(pts[i - 1], pts[i]);
            let b = normal(pts[i], pts[i + 1]);
            let m = Coord {
                x: a.x + b.x,
                y: a.y + b.y,
            };
            let ml = m.x.hypot(m.y);
            if ml < 1e-6 {
                a
            } else {
                // Mitre: scale so the offset lines stay `d` from both segments.
                let cos_half = (ml / 2.0).max(0.5);
                Coord {
                    x: m.x / ml / cos_half,
                    y: m.y / ml / cos_half,
                }
            }
        };
        out.push(Coord {
            x: pts[i].x + nv.x * d,
            y: pts[i].y + nv.y * d,
        });
    }
    out
}

/// A polyline with cumulative lengths, for walking along it.
pub(super) struct Walk<'a> {
    pts: &'a [Coord<f64>],
    cum: Vec<f64>,
}

impl<'a> Walk<'a> {
    pub fn new(pts: &'a [Coord<f64>]) -> Self {
        let mut cum = Vec::with_capacity(pts.len());
        let mut s = 0.0;
        cum.push(0.0);
        for w in pts.windows(2) {
            s += dist(w[0], w[1]);
            cum.push(s);
        }
        Walk { pts, cum }
    }

    /// Total length.
    pub fn len(&self) -> f64 {
        self.cum.last().copied().unwrap_or(0.0)
    }

    fn seg_at(&self, s: f64) -> usize {
        match self
            .cum
            .binary_search_by(|c| c.partial_cmp(&s).unwrap_or(std::cmp::Ordering::Less))
        {
            Ok(i) => i.min(self.pts.len().saturating_sub(2)),
            Err(i) => i.saturating_sub(1).min(self.pts.len().saturating_sub(2)),
        }
    }

    /// The point at distance `s` along, and the unit direction there.
    pub fn at(&self, s: f64) -> (Coord<f64>, Coord<f64>) {
        if self.pts.len() < 2 {
            let p = self
                .pts
                .first()
                .copied()
                .unwrap_or(Coord { x: 0.0, y: 0.0 });
            return (p, Coord { x: 1.0, y: 0.0 });
        }
        let s = s.clamp(0.0, self.len());
        let i = self.seg_at(s);
        let (a, b) = (self.pts[i], self.pts[i + 1]);
        let l = (self.cum[i + 1] - self.cum[i]).max(1e-9);
        let t = ((s - self.cum[i]) / l).clamp(0.0, 1.0);
        (
            Coord {
                x: a.x + (b.x - a.x) * t,
                y: a.y + (b.y - a.y) * t,
            },
            Coord {
                x: (b.x - a.x) / l,
                y: (b.y - a.y) / l,
            },
        )
    }

    /// The part between distances `s0 < s1`, with every vertex in between.
    pub fn slice(&self, s0: f64, s1: f64) -> Vec<Coord<f64>> {
        let (p0, _) = self.at(s0);
        let (p1, _) = self.at(s1);
        let mut out = vec![p0];
        for (i, c) in self.cum.iter().enumerate() {
            if *c > s0 + 1e-6 && *c < s1 - 1e-6 {
                out.push(self.pts[i]);
            }
        }
        out.push(p1);
        out
    }

    /// Cuts the polyline into pieces whose lengths are drawn by `next_len`; a last piece
    /// shorter than `min_last` joins the one before (a manhole is never a metre away from
    /// the previous one).
    pub fn cut(&self, mut next_len: impl FnMut() -> f64, min_last: f64) -> Vec<Vec<Coord<f64>>> {
        let total = self.len();
        let mut marks = vec![0.0];
        let mut s = 0.0;
        loop {
            s += next_len().max(1.0);
            if s >= total {
                break;
            }
            marks.push(s);
        }
        if marks.len() > 1 && total - marks[marks.len() - 1] < min_last {
            marks.pop();
        }
        marks.push(total);
        marks.windows(2).map(|w| self.slice(w[0], w[1])).collect()
    }
}

/// A regular polygon (counter-clockwise) around `c`, radius `r`, rotated by `rot` radians.
pub(super) fn regular_ring(c: Coord<f64>, r: f64, n: usize, rot: f64) -> Vec<Coord<f64>> {
    let mut ring: Vec<Coord<f64>> = (0..n)
        .map(|i| {
            let a = rot + i as f64 * std::f64::consts::TAU / n as f64;
            Coord {
                x: c.x + r * a.cos(),
                y: c.y + r * a.sin(),
            }
        })
        .collect();
    ring.push(ring[0]);
    ring
}

/// A smooth synthetic terrain (1985 height datum, metres): central Chongqing lies between
/// the rivers at about 160–180 m and ridges above 400 m. A sum of a few long waves is enough
/// for drainage to run downhill and for low points to exist where waterlogging happens.
#[derive(Debug, Clone)]
pub(super) struct Terrain {
    waves: Vec<(f64, f64, f64, f64, f64)>,
}

impl Terrain {
    pub fn new(rng: &mut impl Rng) -> Self {
        let waves = (0..5)
            .map(|i| {
                let wavelength = 1500.0 * (1.0 + i as f64) + rng.gen_range(0.0..1500.0);
                let k = std::f64::consts::TAU / wavelength;
                let dir: f64 = rng.gen_range(0.0..std::f64::consts::PI);
                let amp = 60.0 / (1.0 + 0.5 * i as f64);
                (
                    k * dir.cos(),
                    k * dir.sin(),
                    rng.gen_range(0.0..std::f64::consts::TAU),
                    amp,
                    k,
                )
            })
            .collect();
        Terrain { waves }
    }

    /// Ground elevation at a point in the district frame.
    pub fn z(&self, c: Coord<f64>) -> f64 {
        let mut z = 260.0;
        for &(kx, ky, ph, amp, k) in &self.waves {
            z += amp * (kx * c.x + ky * c.y + ph).sin() * (0.5 + 0.5 * (k * 0.37 * c.y + ph).cos());
        }
        z.clamp(160.0, 600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_cuts_cover_the_line() {
        let pts = vec![
            Coord { x: 0.0, y: 0.0 },
            Coord { x: 100.0, y: 0.0 },
            Coord { x: 100.0, y: 120.0 },
        ];
        let w = Walk::new(&pts);
        assert!((w.len() - 220.0).abs() < 1e-9);
        let pieces = w.cut(|| 60.0, 25.0);
        let total: f64 = pieces.iter().map(|p| length(p)).sum();
        assert!((total - 220.0).abs() < 1e-6, "{total}");
        assert_eq!(pieces.len(), 4, "the 20 m remainder joins the last piece");
        assert_eq!(
            pieces[1].len(),
            3,
            "the bend stays in the piece that spans it"
        );
    }

    #[test]
    fn offset_keeps_distance() {
        let pts = vec![Coord { x: 0.0, y: 0.0 }, Coord { x: 100.0, y: 0.0 }];
        let o = offset(&pts, 5.0);
        assert!((o[0].y - 5.0).abs() < 1e-9 && (o[1].y - 5.0).abs() < 1e-9);
    }

    #[test]
    fn frame_round_trip() {
        let f = Frame::new(Coord { x: 106.5, y: 29.5 });
        let c = Coord {
            x: 106.52,
            y: 29.51,
        };
        let back = f.to_ll(f.to_m(c));
        assert!((back.x - c.x).abs() < 1e-7 && (back.y - c.y).abs() < 1e-7);
    }
}
