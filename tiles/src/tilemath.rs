//! Web Mercator tile math (the "Google"/XYZ scheme: y grows southwards).
//!
//! Owns [`TileCoord`] (a validated `z/x/y` address), the lon/lat ↔ EPSG:3857
//! conversions, tile bounds, point → tile lookup, bbox coverage
//! ([`tiles_covering`] / [`TileRange`]) and the parent/child relation.
//!
//! Latitudes are clamped to ±[`MAX_LATITUDE`] (≈ 85.0511°), the latitude at
//! which Web Mercator's square world ends; beyond it `y` would diverge.

use std::f64::consts::PI;
use std::fmt;

use geo::{Coord, Rect};

use crate::error::TileError;

/// Highest zoom level accepted by [`TileCoord::new`].
///
/// 22 is the conventional limit of Web Mercator tile servers; it also keeps
/// `2^z * extent` far below `i32::MAX / 2` for any sane extent.
pub const MAX_ZOOM: u8 = 22;

/// The latitude where Web Mercator's square world ends: `atan(sinh(π))` in
/// degrees (≈ 85.0511°).
pub const MAX_LATITUDE: f64 = 85.051_128_779_806_59;

/// WGS84 semi-major axis used by EPSG:3857, metres.
pub const EARTH_RADIUS_M: f64 = 6_378_137.0;

/// Half the width of the EPSG:3857 world square, metres (`π · R`).
pub const HALF_WORLD_M: f64 = PI * EARTH_RADIUS_M;

/// Clamp a latitude to the Web Mercator domain.
#[inline]
pub fn clamp_lat(lat: f64) -> f64 {
    lat.clamp(-MAX_LATITUDE, MAX_LATITUDE)
}

/// Longitude/latitude (degrees) → EPSG:3857 metres. Latitude is clamped to
/// ±[`MAX_LATITUDE`]; longitude is not wrapped.
#[inline]
pub fn lonlat_to_mercator(lon: f64, lat: f64) -> Coord<f64> {
    let lat = clamp_lat(lat).to_radians();
    Coord {
        x: lon.to_radians() * EARTH_RADIUS_M,
        y: (PI / 4.0 + lat / 2.0).tan().ln() * EARTH_RADIUS_M,
    }
}

/// EPSG:3857 metres → longitude/latitude (degrees).
#[inline]
pub fn mercator_to_lonlat(x: f64, y: f64) -> Coord<f64> {
    Coord {
        x: (x / EARTH_RADIUS_M).to_degrees(),
        y: (y / EARTH_RADIUS_M).sinh().atan().to_degrees(),
    }
}

/// Longitude/latitude → normalised world coordinates in `[0, 1]`, origin at
/// the north-west corner, y down. Multiplying by `2^z` gives fractional tile
/// numbers; this is the common step of every tile lookup and of the
/// per-coordinate transform in [`crate::quantize::TileTransform`].
#[inline]
pub(crate) fn lonlat_to_unit(lon: f64, lat: f64) -> (f64, f64) {
    let m = lonlat_to_mercator(lon, lat);
    (
        (m.x + HALF_WORLD_M) / (2.0 * HALF_WORLD_M),
        (HALF_WORLD_M - m.y) / (2.0 * HALF_WORLD_M),
    )
}

/// A validated tile address in the XYZ scheme (`y = 0` is the northernmost
/// row). Construct with [`TileCoord::new`]; the fields are private so an
/// out-of-range tile cannot exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileCoord {
    z: u8,
    x: u32,
    y: u32,
}

impl TileCoord {
    /// Validate and build a tile address: `z <= 22`, `x, y < 2^z`.
    ///
    /// Accepts `u32` zoom so that values parsed from a URL (e.g. `300`) are
    /// reported as they were given rather than truncated.
    pub fn new(z: u32, x: u32, y: u32) -> Result<Self, TileError> {
        if z > MAX_ZOOM as u32 {
            return Err(TileError::ZoomOutOfRange { z, max: MAX_ZOOM });
        }
        let z = z as u8;
        let limit = 1u64 << z;
        if x as u64 >= limit {
            return Err(TileError::XOutOfRange { z, x, limit });
        }
        if y as u64 >= limit {
            return Err(TileError::YOutOfRange { z, y, limit });
        }
        Ok(TileCoord { z, x, y })
    }

    /// Zoom level.
    #[inline]
    pub fn z(&self) -> u8 {
        self.z
    }

    /// Column (0 = westernmost).
    #[inline]
    pub fn x(&self) -> u32 {
        self.x
    }

    /// Row (0 = northernmost).
    #[inline]
    pub fn y(&self) -> u32 {
        self.y
    }

    /// Number of tiles along one axis at this tile's zoom (`2^z`).
    #[inline]
    pub fn tiles_per_axis(&self) -> u32 {
        1u32 << self.z
    }

    /// The tile containing a lon/lat at zoom `z`. Latitude is clamped, longitude
    /// clamped to ±180; points on the east/south world edge map to the last
    /// column/row.
    pub fn from_lonlat(lon: f64, lat: f64, z: u8) -> Result<Self, TileError> {
        if !lon.is_finite() || !lat.is_finite() {
            return Err(TileError::NonFiniteCoordinate { x: lon, y: lat });
        }
        if z > MAX_ZOOM {
            return Err(TileError::ZoomOutOfRange {
                z: z as u32,
                max: MAX_ZOOM,
            });
        }
        let n = (1u64 << z) as f64;
        let (ux, uy) = lonlat_to_unit(lon.clamp(-180.0, 180.0), lat);
        let max = (1u32 << z) - 1;
        let x = ((ux * n).floor().max(0.0) as u32).min(max);
        let y = ((uy * n).floor().max(0.0) as u32).min(max);
        TileCoord::new(z as u32, x, y)
    }

    /// Tile bounds in EPSG:3857 metres (`min` = south-west corner).
    pub fn bounds_mercator(&self) -> Rect<f64> {
        let size = 2.0 * HALF_WORLD_M / self.tiles_per_axis() as f64;
        let min_x = -HALF_WORLD_M + self.x as f64 * size;
        let max_y = HALF_WORLD_M - self.y as f64 * size;
        Rect::new(
            Coord {
                x: min_x,
                y: max_y - size,
            },
            Coord {
                x: min_x + size,
                y: max_y,
            },
        )
    }

    /// Tile bounds in degrees (`min` = south-west corner, i.e. `(west, south)`).
    pub fn bounds_lonlat(&self) -> Rect<f64> {
        let n = self.tiles_per_axis() as f64;
        let lon = |x: f64| x / n * 360.0 - 180.0;
        let lat = |y: f64| (PI * (1.0 - 2.0 * y / n)).sinh().atan().to_degrees();
        let (x, y) = (self.x as f64, self.y as f64);
        Rect::new(
            Coord {
                x: lon(x),
                y: lat(y + 1.0),
            },
            Coord {
                x: lon(x + 1.0),
                y: lat(y),
            },
        )
    }

    /// The tile one zoom level up containing this one; `None` at z = 0.
    pub fn parent(&self) -> Option<TileCoord> {
        (self.z > 0).then(|| TileCoord {
            z: self.z - 1,
            x: self.x >> 1,
            y: self.y >> 1,
        })
    }

    /// The four tiles one zoom level down, in order NW, NE, SW, SE; `None` at
    /// [`MAX_ZOOM`].
    pub fn children(&self) -> Option<[TileCoord; 4]> {
        if self.z >= MAX_ZOOM {
            return None;
        }
        let (z, x, y) = (self.z + 1, self.x * 2, self.y * 2);
        Some([
            TileCoord { z, x, y },
            TileCoord { z, x: x + 1, y },
            TileCoord { z, x, y: y + 1 },
            TileCoord {
                z,
                x: x + 1,
                y: y + 1,
            },
        ])
    }
}

impl fmt::Display for TileCoord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

impl TryFrom<(u32, u32, u32)> for TileCoord {
    type Error = TileError;
    fn try_from((z, x, y): (u32, u32, u32)) -> Result<Self, TileError> {
        TileCoord::new(z, x, y)
    }
}

/// An inclusive rectangle of tiles at one zoom, as returned by
/// [`tiles_covering`]. It is a description, not a list: at z22 a city bbox is
/// millions of tiles, so iterate lazily with [`TileRange::iter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRange {
    /// Zoom of every tile in the range.
    pub z: u8,
    /// Westernmost column (inclusive).
    pub min_x: u32,
    /// Northernmost row (inclusive).
    pub min_y: u32,
    /// Easternmost column (inclusive).
    pub max_x: u32,
    /// Southernmost row (inclusive).
    pub max_y: u32,
}

impl TileRange {
    /// Number of tiles in the range.
    pub fn len(&self) -> u64 {
        (self.max_x - self.min_x + 1) as u64 * (self.max_y - self.min_y + 1) as u64
    }

    /// Always `false`: a range produced by [`tiles_covering`] holds at least one
    /// tile. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `t` lies in the range.
    pub fn contains(&self, t: &TileCoord) -> bool {
        t.z == self.z
            && (self.min_x..=self.max_x).contains(&t.x)
            && (self.min_y..=self.max_y).contains(&t.y)
    }

    /// Row-major iterator (north to south, west to east).
    pub fn iter(&self) -> impl Iterator<Item = TileCoord> + '_ {
        let z = self.z;
        (self.min_y..=self.max_y)
            .flat_map(move |y| (self.min_x..=self.max_x).map(move |x| TileCoord { z, x, y }))
    }
}

/// Tiles at zoom `z` intersecting a lon/lat bbox (`rect.min()` = west/south).
///
/// The bbox is treated as half-open on its east and south edges, so the exact
/// bounds of a tile yield just that tile (up to 1e-9 tile of float noise)
/// rather than also its east/south neighbours. A degenerate bbox (a point)
/// yields the single tile containing it. Bboxes crossing the antimeridian must
/// be split by the caller (`geo::Rect` normalises min/max, so west > east
/// cannot be expressed).
pub fn tiles_covering(bbox: Rect<f64>, z: u8) -> Result<TileRange, TileError> {
    let (min, max) = (bbox.min(), bbox.max());
    for c in [min, max] {
        if !c.x.is_finite() || !c.y.is_finite() {
            return Err(TileError::NonFiniteCoordinate { x: c.x, y: c.y });
        }
    }
    if z > MAX_ZOOM {
        return Err(TileError::ZoomOutOfRange {
            z: z as u32,
            max: MAX_ZOOM,
        });
    }
    // Float noise from bounds → tile round trips is ~1e-12 tile; 1e-9 is
    // still far below one tile-extent unit even at z22.
    const EPS: f64 = 1e-9;
    let n = (1u64 << z) as f64;
    let last = (1u32 << z) - 1;
    let (wx, ny) = lonlat_to_unit(min.x.clamp(-180.0, 180.0), max.y);
    let (ex, sy) = lonlat_to_unit(max.x.clamp(-180.0, 180.0), min.y);
    let lo = |v: f64| (((v * n) + EPS).floor().max(0.0) as u32).min(last);
    let hi = |v: f64| ((((v * n) - EPS).ceil() - 1.0).max(0.0) as u32).min(last);
    let (min_x, min_y) = (lo(wx), lo(ny));
    Ok(TileRange {
        z,
        min_x,
        min_y,
        max_x: hi(ex).max(min_x),
        max_y: hi(sy).max(min_y),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_world_value() {
        assert!((HALF_WORLD_M - 20_037_508.342_789_244).abs() < 1e-6);
        // MAX_LATITUDE is exactly where mercator y reaches the world edge.
        let m = lonlat_to_mercator(180.0, MAX_LATITUDE);
        assert!((m.x - HALF_WORLD_M).abs() < 1e-6);
        assert!((m.y - HALF_WORLD_M).abs() < 1e-3);
    }

    #[test]
    fn latitude_is_clamped() {
        let a = lonlat_to_mercator(0.0, 89.9);
        let b = lonlat_to_mercator(0.0, MAX_LATITUDE);
        assert_eq!(a, b);
        assert!(lonlat_to_mercator(0.0, -90.0).y.is_finite());
    }

    #[test]
    fn from_lonlat_edges() {
        let t = TileCoord::from_lonlat(180.0, -90.0, 3).unwrap();
        assert_eq!((t.x(), t.y()), (7, 7));
        let t = TileCoord::from_lonlat(-180.0, 90.0, 3).unwrap();
        assert_eq!((t.x(), t.y()), (0, 0));
        assert!(TileCoord::from_lonlat(f64::NAN, 0.0, 3).is_err());
    }

    #[test]
    fn display_and_try_from() {
        let t = TileCoord::try_from((14, 13279, 6795)).unwrap();
        assert_eq!(t.to_string(), "14/13279/6795");
    }
}
