//! The GeoPackage binary geometry codec: the `GP` header with its envelope, then ISO WKB
//! (EWKB-flagged input read too), for the model's geometries; and the envelope of a stored
//! blob, which the R*Tree SQL functions read. Hand-written on purpose; see below.

use super::SRS_ID;
use geo::{BoundingRect, Coord, Geometry, LineString, MultiPolygon, Point, Polygon};

// Why this codec is hand-written although geozero (already a dependency, for PostGIS) has a
// GeoPackage WKB dialect (issue 14, item 4: "keep it only if a bench shows geozero is
// slower"): geozero was tried in commit 55676be (branch `wkb`), and
// `crates/store/benches/gpkg_codec.rs` holds that geozero codec next to this one
// (`cargo bench -p lifeline-store --bench gpkg_codec`; BENCHMARKS.md, "GeoPackage geometry
// codec"). In two sessions on 2026-12-07 (2 cores, load 2.4–4.8), per geometry geozero was
// 1.5–2.5x slower to encode and 2.7–9x slower to decode; the second, hand-written against
// geozero: a Point 45 / 75 ns to encode, 40 / 107 ns to decode; a 20-vertex line 201 / 297 ns
// and 105 / 759 ns; a grid cell's 101-vertex MultiPolygon 0.81 / 1.33 µs and 0.54 / 3.79 µs.
// Over all 183,781 geometries of the `jiulongpo` preset that is +8 ms on a 1.05 s GeoPackage
// `bulk_load` (~1 %) and +14 ms on a 0.35 s `load_all`, i.e. start-up (4 %; 4–6 % in the
// first session).
// geozero also lacks the guards a reader of blobs written elsewhere needs; 55676be had to
// rebuild them in a ~130-line `GeomProcessor` wrapper (timed in the bench) or lost them:
// its reader takes a count at its word and geo-types' writer reserves that much (here a
// count is checked against the bytes left), it recurses into collections without a depth
// limit (16 here), it hands curves to no-op callbacks (refused here), and it reads any
// byte-order byte but 0 as little-endian (only 0 and 1 accepted here; the wrapper cannot
// see that byte). So the codec below stays. If it is ever replaced, run the bench again
// and keep the tests that pin its bytes and its refusals.

/// A 2D bounding box in the GeoPackage sense.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Envelope {
    pub(crate) min_x: f64,
    pub(crate) max_x: f64,
    pub(crate) min_y: f64,
    pub(crate) max_y: f64,
}

impl Envelope {
    const EMPTY: Envelope = Envelope {
        min_x: f64::INFINITY,
        max_x: f64::NEG_INFINITY,
        min_y: f64::INFINITY,
        max_y: f64::NEG_INFINITY,
    };

    pub(crate) fn add(&mut self, c: Coord<f64>) {
        // NaN compares false, so a NaN is caught by `is_finite` on the result, not lost.
        if c.x.is_nan() || c.y.is_nan() {
            self.min_x = f64::NAN;
            return;
        }
        self.min_x = self.min_x.min(c.x);
        self.max_x = self.max_x.max(c.x);
        self.min_y = self.min_y.min(c.y);
        self.max_y = self.max_y.max(c.y);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.min_x == f64::INFINITY && self.max_x == f64::NEG_INFINITY
    }

    pub(crate) fn is_finite(&self) -> bool {
        [self.min_x, self.max_x, self.min_y, self.max_y]
            .iter()
            .all(|v| v.is_finite())
    }

    pub(crate) fn union(a: Option<Envelope>, b: Option<Envelope>) -> Option<Envelope> {
        match (a, b) {
            (Some(a), Some(b)) => Some(Envelope {
                min_x: a.min_x.min(b.min_x),
                max_x: a.max_x.max(b.max_x),
                min_y: a.min_y.min(b.min_y),
                max_y: a.max_y.max(b.max_y),
            }),
            (a, b) => a.or(b),
        }
    }
}

/// A geometry blob that is not what a GeoPackage holds.
#[derive(Debug, thiserror::Error)]
#[error("bad GeoPackage geometry: {0}")]
pub(crate) struct GeomError(String);

/// Writes ISO WKB, little-endian, 2D, tracking the envelope.
pub(crate) struct WkbWriter {
    pub(crate) buf: Vec<u8>,
    pub(crate) env: Envelope,
}

pub(crate) const WKB_POINT: u32 = 1;
pub(crate) const WKB_LINESTRING: u32 = 2;
pub(crate) const WKB_POLYGON: u32 = 3;
pub(crate) const WKB_MULTIPOINT: u32 = 4;
pub(crate) const WKB_MULTILINESTRING: u32 = 5;
pub(crate) const WKB_MULTIPOLYGON: u32 = 6;
pub(crate) const WKB_COLLECTION: u32 = 7;

/// Header size: magic (2), version (1), flags (1), srs_id (4).
pub(crate) const GP_HEADER: usize = 8;
/// Envelope [minx, maxx, miny, maxy] as four doubles.
pub(crate) const GP_ENVELOPE: usize = 32;

impl WkbWriter {
    pub(crate) fn head(&mut self, ty: u32) {
        self.buf.push(1); // little-endian
        self.buf.extend_from_slice(&ty.to_le_bytes());
    }

    pub(crate) fn count(&mut self, n: usize) {
        // WKB counts are u32; model geometries are bounded far below that (MAX_VERTICES).
        self.buf
            .extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    }

    pub(crate) fn coord(&mut self, c: Coord<f64>) {
        self.buf.extend_from_slice(&c.x.to_le_bytes());
        self.buf.extend_from_slice(&c.y.to_le_bytes());
        self.env.add(c);
    }

    pub(crate) fn coords(&mut self, l: &LineString<f64>) {
        self.count(l.0.len());
        for c in &l.0 {
            self.coord(*c);
        }
    }

    pub(crate) fn point(&mut self, p: &Point<f64>) {
        self.head(WKB_POINT);
        self.coord(p.0);
    }

    pub(crate) fn line(&mut self, l: &LineString<f64>) {
        self.head(WKB_LINESTRING);
        self.coords(l);
    }

    pub(crate) fn polygon(&mut self, p: &Polygon<f64>) {
        self.head(WKB_POLYGON);
        if p.exterior().0.is_empty() {
            self.count(0);
            return;
        }
        self.count(1 + p.interiors().len());
        self.coords(p.exterior());
        for r in p.interiors() {
            self.coords(r);
        }
    }

    pub(crate) fn multi_polygon(&mut self, m: &MultiPolygon<f64>) {
        self.head(WKB_MULTIPOLYGON);
        self.count(m.0.len());
        for p in &m.0 {
            self.polygon(p);
        }
    }

    pub(crate) fn geometry(&mut self, g: &Geometry<f64>) {
        match g {
            Geometry::Point(p) => self.point(p),
            Geometry::Line(l) => self.line(&LineString(vec![l.start, l.end])),
            Geometry::LineString(l) => self.line(l),
            Geometry::Polygon(p) => self.polygon(p),
            Geometry::MultiPoint(m) => {
                self.head(WKB_MULTIPOINT);
                self.count(m.0.len());
                for p in &m.0 {
                    self.point(p);
                }
            }
            Geometry::MultiLineString(m) => {
                self.head(WKB_MULTILINESTRING);
                self.count(m.0.len());
                for l in &m.0 {
                    self.line(l);
                }
            }
            Geometry::MultiPolygon(m) => self.multi_polygon(m),
            Geometry::GeometryCollection(c) => {
                self.head(WKB_COLLECTION);
                self.count(c.0.len());
                for g in &c.0 {
                    self.geometry(g);
                }
            }
            Geometry::Rect(r) => self.polygon(&r.to_polygon()),
            Geometry::Triangle(t) => self.polygon(&t.to_polygon()),
        }
    }
}

/// Encodes a geometry as a GeoPackage binary: `GP`, version 0, flags (little-endian, with
/// an [minx, maxx, miny, maxy] envelope, or the empty flag), srs_id 4490, then ISO WKB.
/// Returns the blob and the envelope (`None` for an empty geometry).
pub(crate) fn encode_gpkg(write: impl FnOnce(&mut WkbWriter)) -> (Vec<u8>, Option<Envelope>) {
    let mut w = WkbWriter {
        buf: Vec::with_capacity(128),
        env: Envelope::EMPTY,
    };
    // Room for the header and envelope, filled in once the envelope is known.
    w.buf.resize(GP_HEADER + GP_ENVELOPE, 0);
    write(&mut w);
    let mut buf = w.buf;
    buf[0..2].copy_from_slice(b"GP");
    buf[2] = 0;
    buf[4..8].copy_from_slice(&SRS_ID.to_le_bytes());
    if w.env.is_empty() {
        buf[3] = 0b0001_0001; // empty, no envelope, little-endian
        buf.drain(GP_HEADER..GP_HEADER + GP_ENVELOPE);
        return (buf, None);
    }
    buf[3] = 0b0000_0011; // envelope [minx, maxx, miny, maxy], little-endian
    let e = w.env;
    for (i, v) in [e.min_x, e.max_x, e.min_y, e.max_y].iter().enumerate() {
        let at = GP_HEADER + 8 * i;
        buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    (buf, Some(e))
}

/// The parts of a GeoPackage binary header.
pub(crate) struct GpHeader {
    pub(crate) empty: bool,
    pub(crate) envelope: Option<Envelope>,
    /// Where the WKB starts.
    pub(crate) wkb_at: usize,
}

pub(crate) fn parse_header(b: &[u8]) -> Result<GpHeader, GeomError> {
    if b.len() < GP_HEADER || &b[0..2] != b"GP" {
        return Err(GeomError("missing the 'GP' magic".into()));
    }
    if b[2] != 0 {
        return Err(GeomError(format!("unknown version {}", b[2])));
    }
    let flags = b[3];
    if flags & 0b0010_0000 != 0 {
        return Err(GeomError(
            "extended GeoPackage geometries are not supported".into(),
        ));
    }
    let le = flags & 1 == 1;
    let env_doubles = match (flags >> 1) & 0b111 {
        0 => 0,
        1 => 4,
        2 | 3 => 6,
        4 => 8,
        e => return Err(GeomError(format!("invalid envelope indicator {e}"))),
    };
    let wkb_at = GP_HEADER + 8 * env_doubles;
    if b.len() < wkb_at {
        return Err(GeomError("truncated header".into()));
    }
    let envelope = (env_doubles > 0).then(|| {
        let d = |i: usize| read_f64(&b[GP_HEADER + 8 * i..GP_HEADER + 8 * i + 8], le);
        Envelope {
            min_x: d(0),
            max_x: d(1),
            min_y: d(2),
            max_y: d(3),
        }
    });
    Ok(GpHeader {
        empty: flags & 0b0001_0000 != 0,
        envelope,
        wkb_at,
    })
}

pub(crate) fn read_f64(b: &[u8], le: bool) -> f64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    if le {
        f64::from_le_bytes(a)
    } else {
        f64::from_be_bytes(a)
    }
}

/// Decodes a GeoPackage binary geometry (any envelope, either byte order, ISO or EWKB
/// Z/M flags; extra ordinates are dropped since the layers are 2D).
pub(crate) fn decode_gpkg(b: &[u8]) -> Result<Geometry<f64>, GeomError> {
    let h = parse_header(b)?;
    let mut r = WkbReader {
        b: &b[h.wkb_at..],
        pos: 0,
    };
    r.geometry(0)
}

/// Reads WKB.
pub(crate) struct WkbReader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) pos: usize,
}

impl WkbReader<'_> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&[u8], GeomError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| GeomError("truncated WKB".into()))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u32(&mut self, le: bool) -> Result<u32, GeomError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    /// A count, refused if the rest of the blob could not possibly hold that many items
    /// of at least `min_size` bytes (a corrupt count must not allocate gigabytes).
    pub(crate) fn count(&mut self, le: bool, min_size: usize) -> Result<usize, GeomError> {
        let n = self.u32(le)? as usize;
        if n.saturating_mul(min_size) > self.b.len() - self.pos {
            return Err(GeomError(format!("count {n} exceeds the blob")));
        }
        Ok(n)
    }

    pub(crate) fn coord(&mut self, le: bool, extra: usize) -> Result<Coord<f64>, GeomError> {
        let s = self.take(16 + 8 * extra)?;
        Ok(Coord {
            x: read_f64(&s[0..8], le),
            y: read_f64(&s[8..16], le),
        })
    }

    pub(crate) fn line(&mut self, le: bool, extra: usize) -> Result<LineString<f64>, GeomError> {
        let n = self.count(le, 16 + 8 * extra)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.coord(le, extra)?);
        }
        Ok(LineString(v))
    }

    pub(crate) fn polygon(&mut self, le: bool, extra: usize) -> Result<Polygon<f64>, GeomError> {
        let n = self.count(le, 4)?;
        if n == 0 {
            return Ok(Polygon::new(LineString(vec![]), vec![]));
        }
        let exterior = self.line(le, extra)?;
        let mut holes = Vec::with_capacity(n - 1);
        for _ in 1..n {
            holes.push(self.line(le, extra)?);
        }
        Ok(Polygon::new(exterior, holes))
    }

    pub(crate) fn members(
        &mut self,
        le: bool,
        depth: usize,
    ) -> Result<Vec<Geometry<f64>>, GeomError> {
        let n = self.count(le, 5)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.geometry(depth + 1)?);
        }
        Ok(v)
    }

    pub(crate) fn geometry(&mut self, depth: usize) -> Result<Geometry<f64>, GeomError> {
        if depth > 16 {
            return Err(GeomError("collections nested too deeply".into()));
        }
        let le = match self.take(1)?[0] {
            0 => false,
            1 => true,
            o => return Err(GeomError(format!("invalid WKB byte order {o}"))),
        };
        let raw = self.u32(le)?;
        // EWKB flags (PostGIS style) or ISO thousands for Z / M / ZM.
        let (ewkb_z, ewkb_m, ewkb_srid) = (
            raw & 0x8000_0000 != 0,
            raw & 0x4000_0000 != 0,
            raw & 0x2000_0000 != 0,
        );
        let code = raw & 0x0FFF_FFFF;
        let (base, iso_extra) = (
            code % 1000,
            match code / 1000 {
                0 => 0,
                1 | 2 => 1,
                3 => 2,
                _ => return Err(GeomError(format!("unknown WKB type {raw}"))),
            },
        );
        let extra = iso_extra + usize::from(ewkb_z) + usize::from(ewkb_m);
        if ewkb_srid {
            self.take(4)?;
        }
        Ok(match base {
            WKB_POINT => Geometry::Point(Point(self.coord(le, extra)?)),
            WKB_LINESTRING => Geometry::LineString(self.line(le, extra)?),
            WKB_POLYGON => Geometry::Polygon(self.polygon(le, extra)?),
            WKB_MULTIPOINT => {
                let parts = self.members(le, depth)?;
                let pts = parts
                    .into_iter()
                    .map(|g| match g {
                        Geometry::Point(p) => Ok(p),
                        _ => Err(GeomError("a MultiPoint member is not a Point".into())),
                    })
                    .collect::<Result<_, _>>()?;
                Geometry::MultiPoint(geo::MultiPoint(pts))
            }
            WKB_MULTILINESTRING => {
                let parts = self.members(le, depth)?;
                let lines = parts
                    .into_iter()
                    .map(|g| match g {
                        Geometry::LineString(l) => Ok(l),
                        _ => Err(GeomError(
                            "a MultiLineString member is not a LineString".into(),
                        )),
                    })
                    .collect::<Result<_, _>>()?;
                Geometry::MultiLineString(geo::MultiLineString(lines))
            }
            WKB_MULTIPOLYGON => {
                let parts = self.members(le, depth)?;
                let polys = parts
                    .into_iter()
                    .map(|g| match g {
                        Geometry::Polygon(p) => Ok(p),
                        _ => Err(GeomError("a MultiPolygon member is not a Polygon".into())),
                    })
                    .collect::<Result<_, _>>()?;
                Geometry::MultiPolygon(MultiPolygon(polys))
            }
            WKB_COLLECTION => {
                Geometry::GeometryCollection(geo::GeometryCollection(self.members(le, depth)?))
            }
            _ => return Err(GeomError(format!("unsupported WKB type {raw}"))),
        })
    }
}

/// The store's geometry codec, public for `benches/gpkg_codec.rs` only (not an API).
#[doc(hidden)]
pub mod codec {
    use geo::Geometry;

    /// The GeoPackage blob the store writes for `g`.
    pub fn encode(g: &Geometry<f64>) -> Vec<u8> {
        super::encode_gpkg(|w| w.geometry(g)).0
    }

    /// The geometry the store reads from `blob`.
    pub fn decode(blob: &[u8]) -> Result<Geometry<f64>, String> {
        super::decode_gpkg(blob).map_err(|e| e.to_string())
    }
}

/// The envelope of a GeoPackage geometry blob: from its header when it has one (every
/// blob this module writes does), else computed from the WKB (GDAL writes points without).
pub(crate) fn blob_envelope(b: &[u8]) -> Option<Envelope> {
    let h = parse_header(b).ok()?;
    if h.empty {
        return None;
    }
    if let Some(e) = h.envelope {
        return Some(e);
    }
    let r = decode_gpkg(b).ok()?.bounding_rect()?;
    Some(Envelope {
        min_x: r.min().x,
        max_x: r.max().x,
        min_y: r.min().y,
        max_y: r.max().y,
    })
}
