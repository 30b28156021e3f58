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
    with_cached(from, to, f, || proj::Proj::new_known_crs(from, to, None))
}

/// Marks a cache entry whose `from` is a PROJ pipeline rather than a CRS.
const PIPELINE: &str = "<pipeline>";

/// Runs `f` with a (cached, per-thread) transformer built by `make` on a cache miss.
fn with_cached<R>(
    from: &str,
    to: &str,
    f: impl FnOnce(&proj::Proj) -> R,
    make: impl FnOnce() -> Result<proj::Proj, proj::ProjCreateError>,
) -> Result<R, CrsError> {
    CACHE.with(|cell| {
        let mut cache = cell.borrow_mut();
        if let Some(p) = cache.iter().find(|p| p.from == from && p.to == to) {
            return Ok(f(&p.proj));
        }
        let proj = make().map_err(|e| CrsError::Unknown {
            code: if to == PIPELINE {
                from.to_string()
            } else {
                format!("{from} -> {to}")
            },
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

/// Transforms every coordinate of `g` with one PROJ call (`proj_trans_generic` over the
/// whole coordinate array), which is much cheaper than one call per vertex.
fn convert_all(p: &proj::Proj, g: &Geometry<f64>, to: &str) -> Result<Geometry<f64>, CrsError> {
    use geo::CoordsIter;
    let mut xy: Vec<(f64, f64)> = g.coords_iter().map(|c| (c.x, c.y)).collect();
    let failed = |c: Option<&(f64, f64)>| CrsError::Transform {
        code: to.to_string(),
        x: c.map_or(f64::NAN, |c| c.0),
        y: c.map_or(f64::NAN, |c| c.1),
    };
    let first = xy.first().copied();
    p.convert_array(&mut xy)
        .map_err(|_| failed(first.as_ref()))?;
    if let Some(bad) = xy.iter().find(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return Err(failed(Some(bad)));
    }
    // `map_coords` visits the coordinates in `coords_iter` order.
    let next = std::cell::Cell::new(0usize);
    let (xy, next) = (&xy, &next);
    g.try_map_coords(|_| {
        let i = next.get();
        next.set(i + 1);
        xy.get(i)
            .map(|&(x, y)| Coord { x, y })
            .ok_or_else(|| failed(None))
    })
}

/// How source coordinates reach the canonical CRS (CGCS2000 lon/lat) on import.
///
/// PROJ's straight route from a foreign datum to EPSG:4490 is often only a *ballpark*
/// operation: EPSG has no transformation from e.g. DHDN to CGCS2000, so
/// `EPSG:31467 → EPSG:4490` shifts by ~127 m. Every datum does have transformations to
/// WGS 84, and CGCS2000 and WGS 84 agree to centimetres (PROJ itself relates them by a
/// no-op), so a foreign source goes to WGS 84 with the best operation PROJ has available
/// for the coordinates' area (`proj_create_crs_to_crs` picks among the candidates per
/// point, skipping those whose grids are missing), and the result is taken as CGCS2000.
/// A delivery whose surveyor names the exact operation gives it as an explicit PROJ
/// pipeline instead ([`Route::Pipeline`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// The source is already CGCS2000 lon/lat.
    Identity,
    /// PROJ from this CRS to WGS 84 (EPSG:4326) with the best available operation.
    ViaWgs84(String),
    /// An explicit PROJ pipeline from source x (easting/longitude), y (northing/latitude)
    /// to CGCS2000 longitude, latitude in degrees.
    Pipeline(String),
}

impl Route {
    /// The route for a source CRS (`AUTHORITY:CODE`, WKT or PROJ string).
    pub fn for_crs(crs: &str) -> Route {
        if crs == CANONICAL {
            Route::Identity
        } else {
            Route::ViaWgs84(crs.to_string())
        }
    }

    /// Builds the transformer now, so an unusable CRS or pipeline fails before any row.
    pub fn check(&self) -> Result<(), CrsError> {
        match self.apply(&Geometry::Point(geo::point!(x: 0.0, y: 0.0))) {
            Ok(_) | Err(CrsError::Transform { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// What the report says about the operation.
    pub fn describe(&self) -> String {
        match self {
            Route::Identity => "none (source is EPSG:4490)".into(),
            Route::ViaWgs84(c) => {
                format!("{c} -> EPSG:4326 (best available PROJ operation), taken as EPSG:4490")
            }
            Route::Pipeline(p) => format!("explicit pipeline: {p}"),
        }
    }

    /// [`Route::apply`] on an owned geometry: the identity hands it back without a copy.
    pub fn apply_owned(&self, g: Geometry<f64>) -> Result<Geometry<f64>, CrsError> {
        match self {
            Route::Identity => Ok(g),
            _ => self.apply(&g),
        }
    }

    /// Transforms one geometry to CGCS2000 lon/lat.
    pub fn apply(&self, g: &Geometry<f64>) -> Result<Geometry<f64>, CrsError> {
        match self {
            Route::Identity => Ok(g.clone()),
            Route::ViaWgs84(from) => with_cached(
                from,
                "EPSG:4326",
                |p| convert_all(p, g, CANONICAL),
                || proj::Proj::new_known_crs(from, "EPSG:4326", None),
            )?,
            Route::Pipeline(def) => with_cached(
                def,
                PIPELINE,
                |p| convert_all(p, g, CANONICAL),
                || proj::Proj::new(def),
            )?,
        }
    }
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
