//! Coordinate reference systems. The canonical CRS is CGCS2000 lon/lat (EPSG:4490); every
//! distance and clearance is computed in metres in a projected CRS through PROJ, never in
//! degrees. [`MetricCrs`] is that projected CRS: by default the CGCS2000 3-degree
//! Gauss–Krüger zone (EPSG:4534–4554) whose central meridian is nearest the data, or the
//! WGS84 UTM zone outside China's zones.
//!
//! `proj::Proj` is `Send` but not `Sync`, and creating one costs about a millisecond, so
//! each thread keeps its own transformer per CRS pair in a thread-local cache.

use geo::{Coord, Geometry, MapCoords};
use std::cell::RefCell;

/// Why a CRS or a transformation failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum CrsError {
    /// PROJ does not know the CRS, or cannot build the transformation.
    #[error("unknown or unusable CRS '{code}': {reason}")]
    Unknown { code: String, reason: String },
    /// A coordinate that PROJ cannot transform (far outside the projection's domain).
    #[error("coordinate ({x}, {y}) cannot be transformed to {code}")]
    Transform { code: String, x: f64, y: f64 },
}

/// The canonical storage CRS.
pub const CANONICAL: &str = "EPSG:4490";

struct Pair {
    from: String,
    to: String,
    proj: proj::Proj,
}

thread_local! {
    static CACHE: RefCell<Vec<Pair>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a (cached, per-thread) transformer from `from` to `to`, axis order
/// normalised to x = easting/longitude, y = northing/latitude.
fn with_proj<R>(from: &str, to: &str, f: impl FnOnce(&proj::Proj) -> R) -> Result<R, CrsError> {
    CACHE.with(|cell| {
        let mut cache = cell.borrow_mut();
        if let Some(p) = cache.iter().find(|p| p.from == from && p.to == to) {
            return Ok(f(&p.proj));
        }
        let proj = proj::Proj::new_known_crs(from, to, None).map_err(|e| CrsError::Unknown {
            code: format!("{from} -> {to}"),
            reason: e.to_string(),
        })?;
        let r = f(&proj);
        // A handful of pairs per thread at most; keep the cache small anyway.
        if cache.len() >= 16 {
            cache.remove(0);
        }
        cache.push(Pair {
            from: from.to_string(),
            to: to.to_string(),
            proj,
        });
        Ok(r)
    })
}

/// Transforms one geometry between two CRSs given as `AUTHORITY:CODE` strings.
pub fn transform(g: &Geometry<f64>, from: &str, to: &str) -> Result<Geometry<f64>, CrsError> {
    with_proj(from, to, |p| {
        g.try_map_coords(|c: Coord<f64>| {
            p.convert((c.x, c.y))
                .ok()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|(x, y)| Coord { x, y })
                .ok_or(CrsError::Transform {
                    code: to.to_string(),
                    x: c.x,
                    y: c.y,
                })
        })
    })?
}

/// The projected CRS in which distances are measured, in metres.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricCrs {
    code: String,
}

impl MetricCrs {
    /// A projected CRS by code (e.g. `EPSG:4545`); checked with PROJ now so a typo fails at
    /// start-up, not at the first query.
    pub fn new(code: &str) -> Result<Self, CrsError> {
        let crs = MetricCrs {
            code: code.to_string(),
        };
        crs.to_metric_xy(106.5, 29.5).or_else(|e| match e {
            // A valid CRS whose domain is elsewhere (e.g. a UTM zone in Europe) is fine.
            CrsError::Transform { .. } => Ok((0.0, 0.0)),
            other => Err(other),
        })?;
        Ok(crs)
    }

    /// The CGCS2000 3-degree Gauss–Krüger zone nearest `lon` inside China's zones
    /// (central meridians 75°–132° E: EPSG:4534–4553), otherwise the WGS84 UTM zone.
    pub fn auto(lon: f64, lat: f64) -> Self {
        let code = if (73.5..=133.5).contains(&lon) && (15.0..=55.0).contains(&lat) {
            let zone = ((lon - 75.0) / 3.0).round().clamp(0.0, 19.0) as i32;
            format!("EPSG:{}", 4534 + zone)
        } else {
            let zone = (((lon + 180.0) / 6.0).floor() as i32).clamp(0, 59) + 1;
            let base = if lat >= 0.0 { 32600 } else { 32700 };
            format!("EPSG:{}", base + zone)
        };
        MetricCrs { code }
    }

    /// The CRS code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Projects one lon/lat position to metres.
    pub fn to_metric_xy(&self, lon: f64, lat: f64) -> Result<(f64, f64), CrsError> {
        with_proj(CANONICAL, &self.code, |p| p.convert((lon, lat)))?.map_err(|_| {
            CrsError::Transform {
                code: self.code.clone(),
                x: lon,
                y: lat,
            }
        })
    }

    /// Projects a lon/lat geometry to metres.
    pub fn to_metric(&self, g: &Geometry<f64>) -> Result<Geometry<f64>, CrsError> {
        transform(g, CANONICAL, &self.code)
    }

    /// Back from metres to lon/lat.
    pub fn to_lonlat(&self, g: &Geometry<f64>) -> Result<Geometry<f64>, CrsError> {
        transform(g, &self.code, CANONICAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_gauss_kruger_zone() {
        assert_eq!(MetricCrs::auto(106.5, 29.5).code(), "EPSG:4545"); // CM 108° E (10.5 rounds up)
        assert_eq!(MetricCrs::auto(105.0, 29.5).code(), "EPSG:4544");
        assert_eq!(MetricCrs::auto(7.9, 48.45).code(), "EPSG:32632");
        assert_eq!(MetricCrs::auto(-85.6, 38.0).code(), "EPSG:32616");
    }

    #[test]
    fn metres_match_known_distance() {
        // 0.01° of latitude is about 1,108 m at 29.5° N; the projected distance must agree
        // to well under a metre (a degree-based distance would be off by orders of magnitude).
        let crs = MetricCrs::new("EPSG:4545").unwrap();
        let (x1, y1) = crs.to_metric_xy(106.5, 29.50).unwrap();
        let (x2, y2) = crs.to_metric_xy(106.5, 29.51).unwrap();
        let d = ((x2 - x1).powi(2) + (y2 - y1).powi(2)).sqrt();
        assert!((d - 1108.5).abs() < 3.0, "{d}");
        let back = crs
            .to_lonlat(&Geometry::Point(geo::point!(x: x1, y: y1)))
            .unwrap();
        let Geometry::Point(p) = back else { panic!() };
        assert!((p.x() - 106.5).abs() < 1e-9 && (p.y() - 29.5).abs() < 1e-9);
    }

    #[test]
    fn unknown_crs_is_an_error() {
        assert!(MetricCrs::new("EPSG:999999").is_err());
    }
}
