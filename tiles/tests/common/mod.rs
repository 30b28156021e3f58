//! Helpers shared by the integration tests: a deterministic RNG and builders
//! that place lon/lat geometry at given *tile-space* positions, so tests can
//! reason in tile units.
#![allow(dead_code)]

use geo::{Coord, Geometry, LineString, Point, Polygon};
use lifeline_tiles::quantize::TileTransform;
use lifeline_tiles::TileCoord;

/// xorshift64*: deterministic, dependency-free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

pub fn tile() -> TileCoord {
    TileCoord::new(14, 13279, 6795).unwrap()
}

pub fn xf() -> TileTransform {
    TileTransform::new(tile(), 4096)
}

/// lon/lat of a tile-space position in the test tile.
pub fn ll(x: f64, y: f64) -> Coord<f64> {
    xf().tile_to_lonlat(Coord { x, y })
}

pub fn point(x: f64, y: f64) -> Geometry<f64> {
    Geometry::Point(Point(ll(x, y)))
}

pub fn line(pts: &[(f64, f64)]) -> Geometry<f64> {
    Geometry::LineString(ring(pts))
}

pub fn ring(pts: &[(f64, f64)]) -> LineString<f64> {
    LineString(pts.iter().map(|&(x, y)| ll(x, y)).collect())
}

/// Axis-aligned square ring in tile space, counter-clockwise *on screen*
/// (i.e. counter-clockwise in tile space with y down — the MVT *interior*
/// orientation), closed.
pub fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<(f64, f64)> {
    vec![(x0, y0), (x0, y1), (x1, y1), (x1, y0), (x0, y0)]
}

pub fn polygon(exterior: &[(f64, f64)], holes: &[Vec<(f64, f64)>]) -> Polygon<f64> {
    Polygon::new(ring(exterior), holes.iter().map(|h| ring(h)).collect())
}
