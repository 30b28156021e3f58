//! The datum tiles are cut in. Data is stored and served in CGCS2000 lon/lat (EPSG:4490,
//! equal to WGS84 to a few centimetres, far below a tile pixel); GCJ-02 is an output
//! option only, for maps drawn over a Chinese commercial basemap (AMap, Tencent), whose
//! imagery is in GCJ-02 and so sits a few hundred metres off our data.
//!
//! A GCJ-02 tile is the same cut with every vertex moved by the published forward offset
//! ([`wgs84_to_gcj02`], the one function the importer inverts, [`gcj02_to_wgs84`]) before
//! it is quantised into the tile; the candidates are taken from the CGCS2000 box whose
//! offset image covers the tile ([`Datum::source_bbox`]), and a write invalidates the
//! tiles its offset box touches too ([`Datum::display_bbox`]). The datum is part of the
//! cache key.

use crate::Bbox;
use geo::{Coord, Geometry, MapCoordsInPlace};

/// The datum of a tile's coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Datum {
    /// The canonical datum: CGCS2000 lon/lat (WGS84 at tile precision).
    #[default]
    Cgcs2000,
    /// GCJ-02 offset coordinates.
    Gcj02,
}

/// An unknown datum name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown datum '{0}'; expected cgcs2000 (or wgs84) or gcj02")]
pub struct DatumError(pub String);

impl Datum {
    /// Every datum (for cache invalidation).
    pub const ALL: [Datum; 2] = [Datum::Cgcs2000, Datum::Gcj02];

    /// The name used in URLs and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Datum::Cgcs2000 => "cgcs2000",
            Datum::Gcj02 => "gcj02",
        }
    }

    /// Moves every vertex of `g` from CGCS2000 into this datum, in place.
    pub fn apply(self, g: &mut Geometry<f64>) {
        if self == Datum::Gcj02 {
            g.map_coords_in_place(|c| {
                let (x, y) = wgs84_to_gcj02(c.x, c.y);
                Coord { x, y }
            });
        }
    }

    /// One lon/lat moved from CGCS2000 into this datum.
    pub fn point(self, lon: f64, lat: f64) -> (f64, f64) {
        match self {
            Datum::Cgcs2000 => (lon, lat),
            Datum::Gcj02 => wgs84_to_gcj02(lon, lat),
        }
    }

    /// The CGCS2000 box holding every point whose image in this datum lies in `display`
    /// (the candidates of a tile cut in this datum).
    pub fn source_bbox(self, display: Bbox) -> Bbox {
        if self == Datum::Cgcs2000 {
            return display;
        }
        // The offset at a source point equals the offset at its image to well under a
        // metre (it changes by metres over kilometres), so the offsets sampled over the
        // display box bound the shift back; the pad covers the variation between samples.
        let (lo, hi) = offset_range(&display, |x, y| {
            let (gx, gy) = wgs84_to_gcj02(x, y);
            (gx - x, gy - y)
        });
        grown(&display, (-hi.0, -hi.1), (-lo.0, -lo.1), lo, hi)
    }

    /// The box in this datum covering the image of a CGCS2000 box (which tiles of this
    /// datum a record with that box can appear in).
    pub fn display_bbox(self, source: &Bbox) -> Bbox {
        if self == Datum::Cgcs2000 {
            return *source;
        }
        let (lo, hi) = offset_range(source, |x, y| {
            let (gx, gy) = wgs84_to_gcj02(x, y);
            (gx - x, gy - y)
        });
        grown(source, lo, hi, lo, hi)
    }
}

impl Datum {
    /// The `datum` parameter of a query string (`None` or no such parameter: CGCS2000);
    /// other parameters are left to their handlers.
    pub fn from_query(query: Option<&str>) -> Result<Datum, DatumError> {
        let Some(q) = query else {
            return Ok(Datum::Cgcs2000);
        };
        match q.split('&').find_map(|kv| kv.strip_prefix("datum=")) {
            Some(v) => v.parse(),
            None => Ok(Datum::Cgcs2000),
        }
    }
}

impl std::str::FromStr for Datum {
    type Err = DatumError;

    fn from_str(s: &str) -> Result<Datum, DatumError> {
        match s.to_ascii_lowercase().as_str() {
            "cgcs2000" | "wgs84" | "epsg:4490" | "epsg:4326" => Ok(Datum::Cgcs2000),
            "gcj02" | "gcj-02" => Ok(Datum::Gcj02),
            _ => Err(DatumError(s.chars().take(40).collect())),
        }
    }
}

impl std::fmt::Display for Datum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The smallest and largest offset `(dlon, dlat)` on a 5×5 grid over the box.
fn offset_range(b: &Bbox, offset: impl Fn(f64, f64) -> (f64, f64)) -> ((f64, f64), (f64, f64)) {
    let mut lo = (f64::INFINITY, f64::INFINITY);
    let mut hi = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for i in 0..=4 {
        for j in 0..=4 {
            let x = b.min_x() + (b.max_x() - b.min_x()) * f64::from(i) / 4.0;
            let y = b.min_y() + (b.max_y() - b.min_y()) * f64::from(j) / 4.0;
            let (dx, dy) = offset(x, y);
            lo = (lo.0.min(dx), lo.1.min(dy));
            hi = (hi.0.max(dx), hi.1.max(dy));
        }
    }
    (lo, hi)
}

/// `b` moved by `min` at its minimum corner and `max` at its maximum corner, padded by a
/// metre plus a tenth of the sampled offsets' spread, clamped to lon/lat range.
fn grown(b: &Bbox, min: (f64, f64), max: (f64, f64), lo: (f64, f64), hi: (f64, f64)) -> Bbox {
    let pad_x = 1e-5 + (hi.0 - lo.0) * 0.1;
    let pad_y = 1e-5 + (hi.1 - lo.1) * 0.1;
    Bbox::new(
        (b.min_x() + min.0 - pad_x).clamp(-180.0, 180.0),
        (b.min_y() + min.1 - pad_y).clamp(-90.0, 90.0),
        (b.max_x() + max.0 + pad_x).clamp(-180.0, 180.0),
        (b.max_y() + max.1 + pad_y).clamp(-90.0, 90.0),
    )
    .unwrap_or(*b)
}

// GCJ-02 ("Mars coordinates"): the published forward offset, inverted by fixed-point
// iteration. PROJ has no GCJ-02, so it lives here.
const GCJ_A: f64 = 6_378_245.0;
const GCJ_EE: f64 = 0.006_693_421_622_965_943;

fn gcj_dlat(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn gcj_dlon(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// WGS84 → GCJ-02 (the forward offset; identity outside China's rough box).
pub fn wgs84_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    use std::f64::consts::PI;
    if !(72.004..=137.8347).contains(&lon) || !(0.8293..=55.8271).contains(&lat) {
        return (lon, lat);
    }
    let dlat = gcj_dlat(lon - 105.0, lat - 35.0);
    let dlon = gcj_dlon(lon - 105.0, lat - 35.0);
    let radlat = lat / 180.0 * PI;
    let magic = 1.0 - GCJ_EE * radlat.sin() * radlat.sin();
    let sq = magic.sqrt();
    let dlat = (dlat * 180.0) / ((GCJ_A * (1.0 - GCJ_EE)) / (magic * sq) * PI);
    let dlon = (dlon * 180.0) / (GCJ_A / sq * radlat.cos() * PI);
    (lon + dlon, lat + dlat)
}

/// GCJ-02 → WGS84 by iterating the forward offset (converges to well under a millimetre).
pub fn gcj02_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    let (mut x, mut y) = (lon, lat);
    for _ in 0..20 {
        let (gx, gy) = wgs84_to_gcj02(x, y);
        let (dx, dy) = (gx - lon, gy - lat);
        x -= dx;
        y -= dy;
        if dx.abs() < 1e-12 && dy.abs() < 1e-12 {
            break;
        }
    }
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcj_round_trip_is_sub_millimetre() {
        let (gx, gy) = wgs84_to_gcj02(106.55, 29.56);
        // The offset around Chongqing is a few hundred metres.
        assert!((gx - 106.55).abs() > 1e-4 || (gy - 29.56).abs() > 1e-4);
        let (x, y) = gcj02_to_wgs84(gx, gy);
        assert!(
            (x - 106.55).abs() < 1e-9 && (y - 29.56).abs() < 1e-9,
            "{x} {y}"
        );
    }

    #[test]
    fn names_parse_with_a_clear_error() {
        assert_eq!("gcj02".parse::<Datum>().unwrap(), Datum::Gcj02);
        assert_eq!("GCJ-02".parse::<Datum>().unwrap(), Datum::Gcj02);
        assert_eq!("wgs84".parse::<Datum>().unwrap(), Datum::Cgcs2000);
        assert_eq!("cgcs2000".parse::<Datum>().unwrap(), Datum::Cgcs2000);
        let e = "bd09".parse::<Datum>().unwrap_err().to_string();
        assert!(e.contains("bd09") && e.contains("gcj02"), "{e}");
        assert_eq!(Datum::Gcj02.to_string(), "gcj02");
        assert_eq!(Datum::from_query(None).unwrap(), Datum::Cgcs2000);
        assert_eq!(
            Datum::from_query(Some("a=1&datum=gcj02")).unwrap(),
            Datum::Gcj02
        );
        assert_eq!(Datum::from_query(Some("v=3")).unwrap(), Datum::Cgcs2000);
        assert!(Datum::from_query(Some("datum=mars")).is_err());
    }

    /// The published test vector of eviltransform (github.com/googollee/eviltransform,
    /// transform tests): WGS84 (31.1774276 N, 121.5272106 E), Shanghai, is GCJ-02
    /// (31.17530398364597 N, 121.531541859215 E).
    #[test]
    fn vertices_move_by_the_published_offset() {
        let mut g = Geometry::LineString(geo::LineString::from(vec![
            (121.5272106, 31.1774276),
            (106.55, 29.56),
        ]));
        Datum::Gcj02.apply(&mut g);
        let Geometry::LineString(ls) = &g else {
            unreachable!()
        };
        assert!((ls.0[0].x - 121.531541859215).abs() < 1e-9, "{:?}", ls.0[0]);
        assert!(
            (ls.0[0].y - 31.17530398364597).abs() < 1e-9,
            "{:?}",
            ls.0[0]
        );
        assert_eq!(
            (ls.0[1].x, ls.0[1].y),
            wgs84_to_gcj02(106.55, 29.56),
            "the same function as the importer's"
        );
        let mut same = g.clone();
        Datum::Cgcs2000.apply(&mut same);
        assert_eq!(same, g);
    }

    #[test]
    fn source_box_holds_every_point_whose_image_is_in_the_tile() {
        // A z14 tile in Jiulongpo and one at z8 over Chongqing.
        for (z, lon, lat) in [(14u8, 106.5, 29.5), (8, 106.5, 29.5)] {
            let t = lifeline_tiles::TileCoord::from_lonlat(lon, lat, z).unwrap();
            let r = t.bounds_lonlat();
            let display = Bbox::new(r.min().x, r.min().y, r.max().x, r.max().y).unwrap();
            let src = Datum::Gcj02.source_bbox(display);
            // Walk a grid of source points around the box: each whose image lands in the
            // tile must be in the source box.
            let (w, h) = (r.width(), r.height());
            let mut inside = 0;
            for i in -20..=60 {
                for j in -20..=60 {
                    let x = r.min().x + w * f64::from(i) / 40.0;
                    let y = r.min().y + h * f64::from(j) / 40.0;
                    let (gx, gy) = wgs84_to_gcj02(x, y);
                    if display.intersects(&Bbox::new(gx, gy, gx, gy).unwrap()) {
                        inside += 1;
                        assert!(
                            src.intersects(&Bbox::new(x, y, x, y).unwrap()),
                            "z{z}: ({x},{y}) → ({gx},{gy}) is in the tile but not in {src:?}"
                        );
                    }
                }
            }
            assert!(inside > 100);
            // And the display box of the source box covers the tile again.
            let back = Datum::Gcj02.display_bbox(&src);
            assert!(back.min_x() <= display.min_x() && back.max_y() >= display.max_y());
        }
    }
}
