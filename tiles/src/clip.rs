//! Clipping to the buffered tile window, in (fractional) tile units.
//!
//! Owns [`ClipRect`] and the clip routines for points, lines and polygons.
//!
//! * Points: kept when inside the window (edges inclusive).
//! * Lines: Liang–Barsky per segment; consecutive inside segments are joined,
//!   so a line that leaves and re-enters becomes several pieces. Because every
//!   tile clips to its extent *plus a buffer*, neighbouring tiles overlap and
//!   the rendered line is continuous across the seam.
//! * Polygons: [`clip_polygon`] is exact (geo's `BooleanOps` intersection,
//!   which keeps holes, turns holes crossing the edge into notches and splits
//!   concave polygons into several parts so the output stays OGC-valid), with
//!   fast paths for the common fully-inside / fully-outside cases.
//!   [`sutherland_hodgman`] is also provided: cheaper and allocation-free, but
//!   for concave rings it leaves zero-width "bridges" along the window edge and
//!   a hole crossing the edge ends up touching the exterior along a line —
//!   harmless for rendering (they lie in the buffer) but invalid geometry, so
//!   the pipeline does not use it. (The pipeline calls geo's intersection
//!   itself, on rings already simplified and snapped to the integer grid; see
//!   `pipeline.rs` for why the snapping comes first.)

use geo::{BooleanOps, Coord, LineString, MultiLineString, MultiPolygon, Polygon, Rect};

/// An axis-aligned clip window (inclusive), in the same units as the
/// geometries being clipped (normally fractional tile units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipRect {
    /// West edge.
    pub min_x: f64,
    /// North edge in tile space (y down).
    pub min_y: f64,
    /// East edge.
    pub max_x: f64,
    /// South edge in tile space.
    pub max_y: f64,
}

impl ClipRect {
    /// The window `[-buffer, extent + buffer]²` of a tile.
    pub fn for_tile(extent: u32, buffer: u32) -> Self {
        let (lo, hi) = (-(buffer as f64), extent as f64 + buffer as f64);
        ClipRect {
            min_x: lo,
            min_y: lo,
            max_x: hi,
            max_y: hi,
        }
    }

    /// Whether `c` lies inside or on the edge.
    #[inline]
    pub fn contains(&self, c: Coord<f64>) -> bool {
        c.x >= self.min_x && c.x <= self.max_x && c.y >= self.min_y && c.y <= self.max_y
    }

    /// Whether the bbox `[lo, hi]` lies entirely inside.
    #[inline]
    pub fn contains_box(&self, lo: Coord<f64>, hi: Coord<f64>) -> bool {
        lo.x >= self.min_x && hi.x <= self.max_x && lo.y >= self.min_y && hi.y <= self.max_y
    }

    /// Whether the bbox `[lo, hi]` touches the window at all.
    #[inline]
    pub fn intersects_box(&self, lo: Coord<f64>, hi: Coord<f64>) -> bool {
        lo.x <= self.max_x && hi.x >= self.min_x && lo.y <= self.max_y && hi.y >= self.min_y
    }

    /// As a `geo::Rect`.
    pub fn to_rect(&self) -> Rect<f64> {
        Rect::new(
            Coord {
                x: self.min_x,
                y: self.min_y,
            },
            Coord {
                x: self.max_x,
                y: self.max_y,
            },
        )
    }

    // Interpolated points can land a few ulps outside the window; clamping
    // keeps "inside" exact for later tests.
    #[inline]
    fn clamp(&self, c: Coord<f64>) -> Coord<f64> {
        Coord {
            x: c.x.clamp(self.min_x, self.max_x),
            y: c.y.clamp(self.min_y, self.max_y),
        }
    }
}

/// Result of clipping one segment: the surviving piece and whether each end
/// was moved onto the window edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClippedSegment {
    /// Start of the surviving piece.
    pub a: Coord<f64>,
    /// End of the surviving piece.
    pub b: Coord<f64>,
    /// The start was outside and has been moved onto the edge.
    pub a_clipped: bool,
    /// The end was outside and has been moved onto the edge.
    pub b_clipped: bool,
}

/// Liang–Barsky: the part of segment `a→b` inside `r`, or `None`.
///
/// Unclipped ends are returned bit-for-bit unchanged, which is what lets
/// [`clip_line_into`] chain consecutive segments by equality.
pub fn clip_segment(a: Coord<f64>, b: Coord<f64>, r: &ClipRect) -> Option<ClippedSegment> {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.x - r.min_x),
        (dx, r.max_x - a.x),
        (-dy, a.y - r.min_y),
        (dy, r.max_y - a.y),
    ] {
        if p == 0.0 {
            // Parallel to this edge: entirely outside or irrelevant.
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                if t > t1 {
                    return None;
                }
                if t > t0 {
                    t0 = t;
                }
            } else {
                if t < t0 {
                    return None;
                }
                if t < t1 {
                    t1 = t;
                }
            }
        }
    }
    let a_clipped = t0 > 0.0;
    let b_clipped = t1 < 1.0;
    let lerp = |t: f64| {
        r.clamp(Coord {
            x: a.x + t * dx,
            y: a.y + t * dy,
        })
    };
    Some(ClippedSegment {
        a: if a_clipped { lerp(t0) } else { a },
        b: if b_clipped { lerp(t1) } else { b },
        a_clipped,
        b_clipped,
    })
}

/// Clip one polyline, appending each surviving piece to `coords` and its
/// exclusive end offset to `ends`. Allocation-free once the buffers have grown.
///
/// Pieces with fewer than two points are not emitted. Returns the number of
/// pieces appended.
pub fn clip_line_into(
    line: &[Coord<f64>],
    r: &ClipRect,
    coords: &mut Vec<Coord<f64>>,
    ends: &mut Vec<usize>,
) -> usize {
    let before = ends.len();
    if line.len() < 2 {
        return 0;
    }
    let mut piece_start = coords.len();
    let mut open = false;
    let finish = |coords: &mut Vec<Coord<f64>>, ends: &mut Vec<usize>, start: usize| {
        if coords.len() - start >= 2 {
            ends.push(coords.len());
        } else {
            coords.truncate(start);
        }
    };
    for w in line.windows(2) {
        match clip_segment(w[0], w[1], r) {
            None => {
                if open {
                    finish(coords, ends, piece_start);
                    open = false;
                }
            }
            Some(s) => {
                if !open || s.a_clipped {
                    if open {
                        finish(coords, ends, piece_start);
                    }
                    piece_start = coords.len();
                    coords.push(s.a);
                }
                coords.push(s.b);
                open = true;
                if s.b_clipped {
                    finish(coords, ends, piece_start);
                    open = false;
                }
            }
        }
    }
    if open {
        finish(coords, ends, piece_start);
    }
    ends.len() - before
}

/// Clip a `LineString` to the window; the pieces inside, in order.
pub fn clip_line_string(line: &LineString<f64>, r: &ClipRect) -> MultiLineString<f64> {
    clip_multi_line_string(&MultiLineString(vec![line.clone()]), r)
}

/// Clip every line of a `MultiLineString`.
pub fn clip_multi_line_string(lines: &MultiLineString<f64>, r: &ClipRect) -> MultiLineString<f64> {
    let (mut coords, mut ends) = (Vec::new(), Vec::new());
    for l in &lines.0 {
        clip_line_into(&l.0, r, &mut coords, &mut ends);
    }
    let mut start = 0;
    MultiLineString(
        ends.iter()
            .map(|&e| {
                let ls = LineString(coords[start..e].to_vec());
                start = e;
                ls
            })
            .collect(),
    )
}

/// Bounding box of a coordinate slice, `None` if empty.
pub fn bbox(coords: &[Coord<f64>]) -> Option<(Coord<f64>, Coord<f64>)> {
    let first = *coords.first()?;
    let (mut lo, mut hi) = (first, first);
    for c in &coords[1..] {
        lo.x = lo.x.min(c.x);
        lo.y = lo.y.min(c.y);
        hi.x = hi.x.max(c.x);
        hi.y = hi.y.max(c.y);
    }
    Some((lo, hi))
}

/// What [`classify_polygon`] found about a polygon relative to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolygonPosition {
    /// Entirely inside: no clipping needed.
    Inside,
    /// Bbox disjoint from the window: drop.
    Outside,
    /// Crosses the window edge: needs [`clip_polygon`].
    Crossing,
}

/// Cheap bbox test deciding whether a polygon (given by its exterior ring)
/// needs real clipping.
pub fn classify_polygon(exterior: &[Coord<f64>], r: &ClipRect) -> PolygonPosition {
    match bbox(exterior) {
        None => PolygonPosition::Outside,
        Some((lo, hi)) if r.contains_box(lo, hi) => PolygonPosition::Inside,
        Some((lo, hi)) if r.intersects_box(lo, hi) => PolygonPosition::Crossing,
        Some(_) => PolygonPosition::Outside,
    }
}

/// Exact polygon clip: the parts of `poly` inside the window.
///
/// Holes are kept; a hole crossing the window edge becomes a notch in the
/// exterior; rings that vanish are dropped; a concave polygon may split into
/// several polygons. Output ring orientation is whatever geo produces —
/// quantisation re-orients for MVT.
pub fn clip_polygon(poly: &Polygon<f64>, r: &ClipRect) -> MultiPolygon<f64> {
    match classify_polygon(&poly.exterior().0, r) {
        PolygonPosition::Inside => MultiPolygon(vec![poly.clone()]),
        PolygonPosition::Outside => MultiPolygon(vec![]),
        PolygonPosition::Crossing => poly.intersection(&r.to_rect().to_polygon()),
    }
}

/// [`clip_polygon`] for each member of a `MultiPolygon`.
pub fn clip_multi_polygon(mp: &MultiPolygon<f64>, r: &ClipRect) -> MultiPolygon<f64> {
    MultiPolygon(mp.0.iter().flat_map(|p| clip_polygon(p, r).0).collect())
}

/// Sutherland–Hodgman clip of one ring (open or closed) against the window,
/// writing an open ring to `out` (cleared first); `scratch` is a reusable
/// buffer. Returns `false` when fewer than 3 points survive (the ring
/// vanished).
///
/// Correct for convex rings; see the module docs for why the pipeline prefers
/// [`clip_polygon`] for concave rings and holes on the edge.
pub fn sutherland_hodgman(
    ring: &[Coord<f64>],
    r: &ClipRect,
    out: &mut Vec<Coord<f64>>,
    scratch: &mut Vec<Coord<f64>>,
) -> bool {
    out.clear();
    out.extend_from_slice(ring);
    if out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
    // Each pass keeps the half-plane `inside(c)`; `cross(a, b)` is the
    // intersection of segment a→b with that edge line.
    #[derive(Clone, Copy)]
    enum Edge {
        Left(f64),
        Right(f64),
        Top(f64),
        Bottom(f64),
    }
    let edges = [
        Edge::Left(r.min_x),
        Edge::Right(r.max_x),
        Edge::Top(r.min_y),
        Edge::Bottom(r.max_y),
    ];
    for edge in edges {
        if out.is_empty() {
            break;
        }
        let inside = |c: Coord<f64>| match edge {
            Edge::Left(v) => c.x >= v,
            Edge::Right(v) => c.x <= v,
            Edge::Top(v) => c.y >= v,
            Edge::Bottom(v) => c.y <= v,
        };
        let cross = |a: Coord<f64>, b: Coord<f64>| match edge {
            Edge::Left(v) | Edge::Right(v) => {
                let t = (v - a.x) / (b.x - a.x);
                Coord {
                    x: v,
                    y: a.y + t * (b.y - a.y),
                }
            }
            Edge::Top(v) | Edge::Bottom(v) => {
                let t = (v - a.y) / (b.y - a.y);
                Coord {
                    x: a.x + t * (b.x - a.x),
                    y: v,
                }
            }
        };
        scratch.clear();
        let mut prev = *out.last().unwrap();
        let mut prev_in = inside(prev);
        for &cur in out.iter() {
            let cur_in = inside(cur);
            if cur_in {
                if !prev_in {
                    scratch.push(cross(prev, cur));
                }
                scratch.push(cur);
            } else if prev_in {
                scratch.push(cross(prev, cur));
            }
            prev = cur;
            prev_in = cur_in;
        }
        std::mem::swap(out, scratch);
    }
    out.len() >= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(x: f64, y: f64) -> Coord<f64> {
        Coord { x, y }
    }

    #[test]
    fn segment_inside_is_untouched() {
        let r = ClipRect::for_tile(100, 0);
        let s = clip_segment(c(1.0, 1.0), c(50.0, 60.0), &r).unwrap();
        assert_eq!(
            (s.a, s.b, s.a_clipped, s.b_clipped),
            (c(1.0, 1.0), c(50.0, 60.0), false, false)
        );
    }

    #[test]
    fn segment_outside_is_dropped() {
        let r = ClipRect::for_tile(100, 0);
        assert!(clip_segment(c(-10.0, -10.0), c(-1.0, 200.0), &r).is_none());
        // Passing by a corner without touching.
        assert!(clip_segment(c(-10.0, 5.0), c(5.0, -10.0), &r).is_none());
    }

    #[test]
    fn line_string_pieces() {
        use geo::line_string;
        let r = ClipRect::for_tile(100, 0);
        // In, out through the top, back in, out through the right.
        let l = line_string![(x: 10.0, y: 50.0), (x: 30.0, y: -50.0), (x: 50.0, y: 50.0), (x: 150.0, y: 50.0)];
        let m = clip_line_string(&l, &r);
        assert_eq!(m.0.len(), 2);
        assert_eq!(m.0[0].0, vec![c(10.0, 50.0), c(20.0, 0.0)]);
        assert_eq!(m.0[1].0, vec![c(40.0, 0.0), c(50.0, 50.0), c(100.0, 50.0)]);
    }

    #[test]
    fn polygon_hole_across_edge_becomes_notch() {
        use geo::{polygon, Area, Validation};
        let r = ClipRect::for_tile(100, 0);
        let p = polygon!(
            exterior: [(x: -50.0, y: 10.0), (x: 50.0, y: 10.0), (x: 50.0, y: 90.0), (x: -50.0, y: 90.0)],
            interiors: [[(x: -10.0, y: 40.0), (x: 10.0, y: 40.0), (x: 10.0, y: 60.0), (x: -10.0, y: 60.0)]],
        );
        let out = clip_polygon(&p, &r);
        assert!(out.is_valid(), "{:?}", out.validation_errors());
        assert_eq!(out.0.len(), 1);
        assert!(out.0[0].interiors().is_empty());
        assert!((out.unsigned_area() - (50.0 * 80.0 - 10.0 * 20.0)).abs() < 1e-6);
        // Fast paths.
        let inside = polygon![(x: 1.0, y: 1.0), (x: 5.0, y: 1.0), (x: 5.0, y: 5.0)];
        assert_eq!(clip_polygon(&inside, &r).0, vec![inside]);
        let outside = polygon![(x: 200.0, y: 1.0), (x: 205.0, y: 1.0), (x: 205.0, y: 5.0)];
        assert!(clip_polygon(&outside, &r).0.is_empty());
    }

    #[test]
    fn sutherland_hodgman_square() {
        let r = ClipRect::for_tile(10, 0);
        let ring = [
            c(-5.0, -5.0),
            c(5.0, -5.0),
            c(5.0, 5.0),
            c(-5.0, 5.0),
            c(-5.0, -5.0),
        ];
        let (mut out, mut s) = (Vec::new(), Vec::new());
        assert!(sutherland_hodgman(&ring, &r, &mut out, &mut s));
        let (lo, hi) = bbox(&out).unwrap();
        assert_eq!((lo, hi), (c(0.0, 0.0), c(5.0, 5.0)));
        let far = [c(20.0, 20.0), c(30.0, 20.0), c(30.0, 30.0)];
        assert!(!sutherland_hodgman(&far, &r, &mut out, &mut s));
    }
}
