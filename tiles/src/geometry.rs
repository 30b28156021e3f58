//! Integer tile-space geometry: what the MVT encoder consumes and the decoder
//! produces.
//!
//! Owns [`TileGeometry`], [`GeomType`], [`TilePoint`] and the surveyor's-formula
//! ring area used everywhere ring orientation matters.
//!
//! The representation is deliberately flat — one coordinate vector plus a
//! vector of part end offsets — instead of nested `Vec<Vec<_>>`: a geometry
//! can be cleared and refilled without freeing memory, and the high-level
//! pipeline keeps every feature of a tile in one such arena. Polygons are a
//! flat sequence of rings exactly as MVT stores them: a ring with positive
//! area (clockwise on screen, y down) starts a new polygon, negative-area
//! rings are holes of the preceding exterior. Rings are stored *open* (the
//! closing point is implied, as MVT's ClosePath implies it).

use geo::{Coord, Geometry, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};

/// A point in tile coordinates (x right, y down, `0..extent` inside the tile).
pub type TilePoint = Coord<i32>;

/// MVT `GeomType` (vector_tile.proto). The discriminants are the wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum GeomType {
    /// `UNKNOWN = 0`: experimental geometry, ignored by renderers.
    #[default]
    Unknown = 0,
    /// `POINT = 1`: point or multipoint.
    Point = 1,
    /// `LINESTRING = 2`: linestring or multilinestring.
    LineString = 2,
    /// `POLYGON = 3`: polygon or multipolygon.
    Polygon = 3,
}

impl GeomType {
    /// Map a wire value to the enum; unknown values map to [`GeomType::Unknown`]
    /// (protobuf enums must tolerate values from newer schemas).
    pub fn from_wire(v: u64) -> GeomType {
        match v {
            1 => GeomType::Point,
            2 => GeomType::LineString,
            3 => GeomType::Polygon,
            _ => GeomType::Unknown,
        }
    }
}

/// Twice the signed area of a ring by the surveyor's (shoelace) formula in
/// tile coordinates: `Σ (x_i · y_{i+1} − x_{i+1} · y_i)`.
///
/// Positive ⇔ exterior ring per MVT 2.1 §4.3.4.4 (clockwise on screen since
/// y points down). The ring may be open or closed; a closing duplicate adds a
/// zero term. Computed in `i64`, exact for any `i32` coordinates of rings
/// with fewer than 2³⁰ vertices.
pub fn ring_area2(ring: &[TilePoint]) -> i64 {
    let n = ring.len();
    if n < 3 {
        return 0;
    }
    let mut sum = 0i64;
    let mut prev = ring[n - 1];
    for &p in ring {
        sum += prev.x as i64 * p.y as i64 - p.x as i64 * prev.y as i64;
        prev = p;
    }
    sum
}

/// Whether every vertex of `hole` lies strictly inside `exterior` (not on
/// its boundary). Rounding to the integer grid can snap a hole that was
/// close to its exterior onto it, which MVT 2.1 (§4.3.4.4) and OGC forbid;
/// quantisation uses this to drop such holes. It does not detect a hole edge
/// crossing an exterior edge between vertices — after snapping by at most
/// half a unit that requires a reflex exterior vertex inside the hole, which
/// is accepted as a residual risk.
pub fn hole_inside(hole: &[TilePoint], exterior: &[TilePoint]) -> bool {
    hole.iter().all(|&p| point_strictly_in_ring(p, exterior))
}

fn point_strictly_in_ring(p: TilePoint, ring: &[TilePoint]) -> bool {
    let n = ring.len();
    if n < 3 {
        return false;
    }
    let (px, py) = (p.x as i64, p.y as i64);
    let mut inside = false;
    let mut a = ring[n - 1];
    for &b in ring {
        let (ax, ay, bx, by) = (a.x as i64, a.y as i64, b.x as i64, b.y as i64);
        // On the edge a–b: collinear and within its bbox.
        let cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax);
        if cross == 0
            && px >= ax.min(bx)
            && px <= ax.max(bx)
            && py >= ay.min(by)
            && py <= ay.max(by)
        {
            return false;
        }
        // Even-odd ray cast towards +x with half-open edge rule.
        if (ay > py) != (by > py) {
            // x of the edge at py compared to px, without division:
            // sign((bx-ax)*(py-ay) - (px-ax)*(by-ay)) relative to edge direction.
            let lhs = (bx - ax) * (py - ay);
            let rhs = (px - ax) * (by - ay);
            if (by > ay && lhs > rhs) || (by < ay && lhs < rhs) {
                inside = !inside;
            }
        }
        a = b;
    }
    inside
}

/// A geometry in integer tile coordinates, ready for MVT encoding.
///
/// * `Point`: [`points`](Self::points) is the (multi)point; no parts.
/// * `LineString`: each part is one line (≥ 2 points).
/// * `Polygon`: each part is one open ring; orientation encodes the
///   exterior/interior role (see module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TileGeometry {
    kind: GeomType,
    points: Vec<TilePoint>,
    // Exclusive end offset into `points` of each part (line or ring).
    ends: Vec<u32>,
}

impl TileGeometry {
    /// An empty geometry of the given kind.
    pub fn new(kind: GeomType) -> Self {
        TileGeometry {
            kind,
            points: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Empty the geometry, keeping its allocations, and set a new kind.
    pub fn clear(&mut self, kind: GeomType) {
        self.kind = kind;
        self.points.clear();
        self.ends.clear();
    }

    /// The geometry kind.
    pub fn kind(&self) -> GeomType {
        self.kind
    }

    /// All coordinates, parts concatenated.
    pub fn points(&self) -> &[TilePoint] {
        &self.points
    }

    /// Exclusive end offsets of the parts (lines/rings) into [`points`](Self::points).
    pub fn part_ends(&self) -> &[u32] {
        &self.ends
    }

    /// `true` when there is nothing to encode.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Number of parts (lines or rings); for points, the number of points.
    pub fn num_parts(&self) -> usize {
        match self.kind {
            GeomType::Point => self.points.len(),
            _ => self.ends.len(),
        }
    }

    /// Iterate over the parts (lines or rings) as slices. For points this
    /// yields nothing; use [`points`](Self::points).
    pub fn parts(&self) -> impl Iterator<Item = &[TilePoint]> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&e| {
            let s = start;
            start = e as usize;
            &self.points[s..e as usize]
        })
    }

    /// Append one point (for `Point` geometries).
    pub fn push_point(&mut self, p: TilePoint) {
        self.points.push(p);
    }

    /// Append one part (a line, or a ring stored as given — no orientation
    /// fix-up). Use [`push_ring`](Self::push_ring) for rings from untrusted
    /// sources.
    pub fn push_part(&mut self, part: &[TilePoint]) {
        self.points.extend_from_slice(part);
        self.ends.push(self.points.len() as u32);
    }

    /// Append a ring, dropping a closing duplicate point and orienting it as
    /// an exterior (positive area) or interior (negative area) ring. Returns
    /// `false` (and appends nothing) if the ring has zero area.
    pub fn push_ring(&mut self, ring: &[TilePoint], exterior: bool) -> bool {
        let mut ring = ring;
        while ring.len() > 1 && ring.first() == ring.last() {
            ring = &ring[..ring.len() - 1];
        }
        let a = ring_area2(ring);
        if a == 0 {
            return false;
        }
        let start = self.points.len();
        self.push_part(ring);
        if (a > 0) != exterior {
            self.points[start..].reverse();
        }
        true
    }

    // Internal: let quantisation write straight into the buffers.
    pub(crate) fn raw_points_mut(&mut self) -> &mut Vec<TilePoint> {
        &mut self.points
    }

    /// Appends all of `other`'s parts (their end offsets shifted past ours).
    pub(crate) fn append(&mut self, other: &TileGeometry) {
        let base = self.points.len() as u32;
        self.points.extend_from_slice(&other.points);
        self.ends.extend(other.ends.iter().map(|e| e + base));
    }

    pub(crate) fn end_part(&mut self) {
        self.ends.push(self.points.len() as u32);
    }

    pub(crate) fn truncate_to(&mut self, points: usize, parts: usize) {
        self.points.truncate(points);
        self.ends.truncate(parts);
    }

    pub(crate) fn num_ends(&self) -> usize {
        self.ends.len()
    }

    /// A single point.
    pub fn point(x: i32, y: i32) -> Self {
        let mut g = TileGeometry::new(GeomType::Point);
        g.push_point(Coord { x, y });
        g
    }

    /// A multipoint.
    pub fn multi_point<C: Into<TilePoint>>(points: impl IntoIterator<Item = C>) -> Self {
        let mut g = TileGeometry::new(GeomType::Point);
        g.points.extend(points.into_iter().map(Into::into));
        g
    }

    /// A single line.
    pub fn line_string<C: Into<TilePoint>>(points: impl IntoIterator<Item = C>) -> Self {
        Self::multi_line_string([points])
    }

    /// A multiline.
    pub fn multi_line_string<C, P, I>(lines: I) -> Self
    where
        C: Into<TilePoint>,
        P: IntoIterator<Item = C>,
        I: IntoIterator<Item = P>,
    {
        let mut g = TileGeometry::new(GeomType::LineString);
        for line in lines {
            g.points.extend(line.into_iter().map(Into::into));
            g.end_part();
        }
        g
    }

    /// A polygon from rings (first = exterior, rest = holes), open or closed,
    /// in any orientation: rings are oriented per MVT and zero-area rings are
    /// dropped (a zero-area exterior drops the whole polygon).
    pub fn polygon<C, P, I>(rings: I) -> Self
    where
        C: Into<TilePoint>,
        P: IntoIterator<Item = C>,
        I: IntoIterator<Item = P>,
    {
        Self::multi_polygon([rings])
    }

    /// A multipolygon; see [`polygon`](Self::polygon) for ring handling.
    pub fn multi_polygon<C, P, I, M>(polygons: M) -> Self
    where
        C: Into<TilePoint>,
        P: IntoIterator<Item = C>,
        I: IntoIterator<Item = P>,
        M: IntoIterator<Item = I>,
    {
        let mut g = TileGeometry::new(GeomType::Polygon);
        let mut ring: Vec<TilePoint> = Vec::new();
        for poly in polygons {
            let mut exterior_ok = false;
            for (i, r) in poly.into_iter().enumerate() {
                ring.clear();
                ring.extend(r.into_iter().map(Into::into));
                if i == 0 {
                    exterior_ok = g.push_ring(&ring, true);
                } else if exterior_ok {
                    g.push_ring(&ring, false);
                }
            }
        }
        g
    }

    /// Group polygon rings into polygons by winding: each positive-area ring
    /// starts a polygon, following negative-area rings are its holes.
    /// Zero-area rings and holes before any exterior are skipped (the decoder
    /// rejects both, so they only occur in hand-built geometries).
    pub fn polygons(&self) -> Vec<Vec<&[TilePoint]>> {
        let mut out: Vec<Vec<&[TilePoint]>> = Vec::new();
        for ring in self.parts() {
            let a = ring_area2(ring);
            if a > 0 {
                out.push(vec![ring]);
            } else if a < 0 {
                if let Some(last) = out.last_mut() {
                    last.push(ring);
                }
            }
        }
        out
    }

    /// Convert to a `geo` geometry in tile units (f64), e.g. to run
    /// `geo::Validation` on decoded output. Single-part geometries become
    /// `Point`/`LineString`/`Polygon`, multi-part ones the `Multi*` variant;
    /// rings are closed. An `Unknown` geometry becomes an empty
    /// `GeometryCollection`.
    pub fn to_geo(&self) -> Geometry<f64> {
        let f = |c: &TilePoint| Coord {
            x: c.x as f64,
            y: c.y as f64,
        };
        match self.kind {
            GeomType::Point => {
                if self.points.len() == 1 {
                    Geometry::Point(Point(f(&self.points[0])))
                } else {
                    Geometry::MultiPoint(MultiPoint(
                        self.points.iter().map(|c| Point(f(c))).collect(),
                    ))
                }
            }
            GeomType::LineString => {
                let lines: Vec<LineString<f64>> = self
                    .parts()
                    .map(|p| LineString(p.iter().map(f).collect()))
                    .collect();
                if lines.len() == 1 {
                    Geometry::LineString(lines.into_iter().next().unwrap())
                } else {
                    Geometry::MultiLineString(MultiLineString(lines))
                }
            }
            GeomType::Polygon => {
                let close = |r: &[TilePoint]| {
                    let mut v: Vec<Coord<f64>> = r.iter().map(f).collect();
                    if let Some(&first) = v.first() {
                        v.push(first);
                    }
                    LineString(v)
                };
                let polys: Vec<Polygon<f64>> = self
                    .polygons()
                    .into_iter()
                    .map(|rings| {
                        Polygon::new(
                            close(rings[0]),
                            rings[1..].iter().map(|r| close(r)).collect(),
                        )
                    })
                    .collect();
                if polys.len() == 1 {
                    Geometry::Polygon(polys.into_iter().next().unwrap())
                } else {
                    Geometry::MultiPolygon(MultiPolygon(polys))
                }
            }
            GeomType::Unknown => Geometry::GeometryCollection(Default::default()),
        }
    }

    pub(crate) fn as_ref(&self) -> GeomRef<'_> {
        GeomRef {
            kind: self.kind,
            points: &self.points,
            ends: &self.ends,
            base: 0,
        }
    }
}

/// A borrowed view of one geometry, possibly a slice of a larger arena whose
/// part ends are offset by `base`. Lets the pipeline encode straight from its
/// per-tile arena without copying each feature out.
#[derive(Clone, Copy)]
pub(crate) struct GeomRef<'a> {
    pub kind: GeomType,
    pub points: &'a [TilePoint],
    pub ends: &'a [u32],
    pub base: u32,
}

impl<'a> GeomRef<'a> {
    pub(crate) fn parts(&self) -> impl Iterator<Item = &'a [TilePoint]> + 'a {
        let (points, base) = (self.points, self.base);
        let mut start = 0usize;
        self.ends.iter().map(move |&e| {
            let e = (e - base) as usize;
            let s = start;
            start = e;
            &points[s..e]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_sign_matches_spec_examples() {
        // MVT 2.1 §4.3.5.6: exterior (0,0)(10,0)(10,10)(0,10) is positive,
        // interior (13,13)(13,17)(17,17)(17,13) is negative.
        let ext: Vec<TilePoint> = [(0, 0), (10, 0), (10, 10), (0, 10)]
            .map(Into::into)
            .to_vec();
        let int: Vec<TilePoint> = [(13, 13), (13, 17), (17, 17), (17, 13)]
            .map(Into::into)
            .to_vec();
        assert_eq!(ring_area2(&ext), 200);
        assert_eq!(ring_area2(&int), -32);
    }

    #[test]
    fn polygon_constructor_orients_and_opens() {
        // Counter-clockwise on screen (negative) exterior, closed.
        let g = TileGeometry::polygon([
            vec![(0, 0), (0, 10), (10, 10), (10, 0), (0, 0)],
            vec![(2, 2), (4, 2), (4, 4), (2, 4)],
        ]);
        let parts: Vec<_> = g.parts().collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), 4);
        assert!(ring_area2(parts[0]) > 0);
        assert!(ring_area2(parts[1]) < 0);
        assert_eq!(g.polygons().len(), 1);
    }

    #[test]
    fn zero_area_exterior_drops_polygon() {
        let g =
            TileGeometry::polygon([vec![(0, 0), (5, 5), (10, 10)], vec![(1, 1), (2, 1), (2, 2)]]);
        assert!(g.is_empty());
    }
}
