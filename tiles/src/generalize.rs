//! Generalisation in tile units: simplification, size thresholds, point
//! clustering and the per-tile feature budget.
//!
//! Owns [`Simplifier`] (Douglas–Peucker with reusable scratch), the size
//! measures used for "smaller than a pixel" filtering ([`line_length`],
//! [`ring_area`]), grid clustering ([`grid_cluster`]) and importance-based
//! selection ([`importance_order`], [`select_top`]).
//!
//! Everything works in tile units so thresholds mean the same on screen at
//! every zoom: one pixel of a 256-px rendering is [`pixel_size`]`(extent)`
//! units (16 for extent 4096).

use std::cmp::Ordering;

use geo::{Coord, LineString};

/// Tile units per pixel of a 256-px tile: `extent / 256`.
#[inline]
pub fn pixel_size(extent: u32) -> f64 {
    extent as f64 / 256.0
}

/// Length of a polyline.
pub fn line_length(pts: &[Coord<f64>]) -> f64 {
    pts.windows(2)
        .map(|w| (w[1].x - w[0].x).hypot(w[1].y - w[0].y))
        .sum()
}

/// Absolute area of a ring (open or closed), shoelace formula.
pub fn ring_area(pts: &[Coord<f64>]) -> f64 {
    let n = pts.len();
    if n < 3 {
        return 0.0;
    }
    let mut s = 0.0;
    let mut prev = pts[n - 1];
    for &p in pts {
        s += prev.x * p.y - p.x * prev.y;
        prev = p;
    }
    (s * 0.5).abs()
}

// Squared distance from p to segment a–b (to the point a when a == b, which
// is what makes closed rings work: the first split picks the vertex farthest
// from the start).
#[inline]
fn seg_dist2(p: Coord<f64>, a: Coord<f64>, b: Coord<f64>) -> f64 {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len2 = dx * dx + dy * dy;
    let (px, py) = (p.x - a.x, p.y - a.y);
    if len2 == 0.0 {
        return px * px + py * py;
    }
    let t = ((px * dx + py * dy) / len2).clamp(0.0, 1.0);
    let (ex, ey) = (px - t * dx, py - t * dy);
    ex * ex + ey * ey
}

/// Douglas–Peucker simplifier with reusable scratch buffers (iterative, so
/// very long lines cannot overflow the stack).
#[derive(Debug, Default, Clone)]
pub struct Simplifier {
    keep: Vec<bool>,
    stack: Vec<(usize, usize)>,
    ring: Vec<Coord<f64>>,
}

impl Simplifier {
    /// A simplifier with empty scratch buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Simplify an open polyline, appending the kept points to `out`. The
    /// end points are always kept; `tolerance <= 0` copies the input.
    pub fn simplify_line(&mut self, pts: &[Coord<f64>], tolerance: f64, out: &mut Vec<Coord<f64>>) {
        if tolerance <= 0.0 || pts.len() <= 2 {
            out.extend_from_slice(pts);
            return;
        }
        let n = pts.len();
        self.keep.clear();
        self.keep.resize(n, false);
        self.keep[0] = true;
        self.keep[n - 1] = true;
        let tol2 = tolerance * tolerance;
        self.stack.clear();
        self.stack.push((0, n - 1));
        while let Some((a, b)) = self.stack.pop() {
            if b <= a + 1 {
                continue;
            }
            let (mut best, mut best_d) = (0, -1.0);
            for (i, &p) in pts.iter().enumerate().take(b).skip(a + 1) {
                let d = seg_dist2(p, pts[a], pts[b]);
                if d > best_d {
                    best = i;
                    best_d = d;
                }
            }
            if best_d > tol2 {
                self.keep[best] = true;
                self.stack.push((a, best));
                self.stack.push((best, b));
            }
        }
        out.extend(
            pts.iter()
                .zip(&self.keep)
                .filter(|(_, &k)| k)
                .map(|(p, _)| *p),
        );
    }

    /// Simplify a ring (open or closed), appending a *closed* ring to `out`.
    /// The result may have fewer than 4 points (collapsed); quantisation
    /// drops such rings.
    pub fn simplify_ring(
        &mut self,
        ring: &[Coord<f64>],
        tolerance: f64,
        out: &mut Vec<Coord<f64>>,
    ) {
        if ring.is_empty() {
            return;
        }
        let closed = ring.len() > 1 && ring.first() == ring.last();
        if closed {
            self.simplify_line(ring, tolerance, out);
        } else {
            let mut r = std::mem::take(&mut self.ring);
            r.clear();
            r.extend_from_slice(ring);
            r.push(ring[0]);
            self.simplify_line(&r, tolerance, out);
            self.ring = r;
        }
    }
}

/// Allocating convenience around [`Simplifier::simplify_line`].
pub fn simplify_line_string(line: &LineString<f64>, tolerance: f64) -> LineString<f64> {
    let mut out = Vec::new();
    Simplifier::new().simplify_line(&line.0, tolerance, &mut out);
    LineString(out)
}

/// One point to cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterItem {
    /// Position in tile units.
    pub pos: Coord<f64>,
    /// Importance; the most important member represents the cluster.
    pub importance: f64,
}

/// One output cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cluster {
    /// Mean position of the members.
    pub pos: Coord<f64>,
    /// Number of members (≥ 1).
    pub count: u32,
    /// Index (into the input items) of the most important member; ties go to
    /// the lowest index so the choice is deterministic.
    pub representative: usize,
    /// Importance of the representative.
    pub importance: f64,
}

// Total order on importance with NaN treated as least important.
#[inline]
fn imp(v: f64) -> f64 {
    if v.is_nan() {
        f64::NEG_INFINITY
    } else {
        v
    }
}

/// Grid clustering: items falling into the same `cell × cell` square of
/// tile space (cells aligned to the tile origin, so with a cell size that
/// divides the extent neighbouring tiles use the same global grid) become
/// one cluster. Clusters are appended to `out` ordered by representative
/// index (i.e. in input order); `scratch` is reused between calls.
/// Counts always sum to `items.len()`.
pub fn grid_cluster_into(
    items: &[ClusterItem],
    cell: f64,
    scratch: &mut Vec<(i64, i64, u32)>,
    out: &mut Vec<Cluster>,
) {
    let start = out.len();
    scratch.clear();
    scratch.extend(items.iter().enumerate().map(|(i, it)| {
        (
            (it.pos.x / cell).floor() as i64,
            (it.pos.y / cell).floor() as i64,
            i as u32,
        )
    }));
    // Sorting groups cells together; the index tiebreak makes the
    // representative choice independent of the sort's stability.
    scratch.sort_unstable();
    let mut i = 0;
    while i < scratch.len() {
        let (cx, cy, _) = scratch[i];
        let mut j = i;
        let (mut sx, mut sy) = (0.0, 0.0);
        let mut rep = scratch[i].2 as usize;
        while j < scratch.len() && scratch[j].0 == cx && scratch[j].1 == cy {
            let k = scratch[j].2 as usize;
            sx += items[k].pos.x;
            sy += items[k].pos.y;
            // Strictly greater: the earlier (lower) index wins ties.
            if imp(items[k].importance) > imp(items[rep].importance) {
                rep = k;
            }
            j += 1;
        }
        let n = (j - i) as f64;
        out.push(Cluster {
            pos: Coord {
                x: sx / n,
                y: sy / n,
            },
            count: (j - i) as u32,
            representative: rep,
            importance: items[rep].importance,
        });
        i = j;
    }
    out[start..].sort_unstable_by_key(|c| c.representative);
}

/// Allocating convenience around [`grid_cluster_into`].
pub fn grid_cluster(items: &[ClusterItem], cell: f64) -> Vec<Cluster> {
    let mut out = Vec::new();
    grid_cluster_into(items, cell, &mut Vec::new(), &mut out);
    out
}

/// Fill `order` with `0..importance.len()` sorted most important first;
/// equal importance keeps input order, NaN counts as least important.
pub fn importance_order(importance: &[f64], order: &mut Vec<u32>) {
    order.clear();
    order.extend(0..importance.len() as u32);
    order.sort_unstable_by(|&a, &b| {
        imp(importance[b as usize])
            .partial_cmp(&imp(importance[a as usize]))
            .unwrap_or(Ordering::Equal)
            .then(a.cmp(&b))
    });
}

/// Indices of the `budget` most important items, returned in input order
/// (ties broken towards earlier items).
pub fn select_top(importance: &[f64], budget: usize) -> Vec<usize> {
    let mut order = Vec::new();
    importance_order(importance, &mut order);
    order.truncate(budget);
    let mut v: Vec<usize> = order.into_iter().map(|i| i as usize).collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(x: f64, y: f64) -> Coord<f64> {
        Coord { x, y }
    }

    #[test]
    fn dp_removes_small_wiggles_keeps_corners() {
        let line = [c(0.0, 0.0), c(50.0, 3.0), c(100.0, 0.0), c(100.0, 100.0)];
        let mut out = Vec::new();
        Simplifier::new().simplify_line(&line, 5.0, &mut out);
        assert_eq!(out, [c(0.0, 0.0), c(100.0, 0.0), c(100.0, 100.0)]);
        out.clear();
        Simplifier::new().simplify_line(&line, 1.0, &mut out);
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn ring_simplification_keeps_square() {
        let ring = [
            c(0.0, 0.0),
            c(50.0, 0.5),
            c(100.0, 0.0),
            c(100.0, 100.0),
            c(0.0, 100.0),
        ];
        let mut out = Vec::new();
        Simplifier::new().simplify_ring(&ring, 2.0, &mut out);
        assert_eq!(out.len(), 5, "{out:?}");
        assert_eq!(out.first(), out.last());
        assert!((ring_area(&out) - 10_000.0).abs() < 1e-9);
    }

    #[test]
    fn top_selection_ties_and_nan() {
        let imp = [1.0, 5.0, f64::NAN, 5.0, 3.0];
        assert_eq!(select_top(&imp, 2), vec![1, 3]);
        assert_eq!(select_top(&imp, 3), vec![1, 3, 4]);
        assert_eq!(select_top(&imp, 10), vec![0, 1, 2, 3, 4]);
    }
}
