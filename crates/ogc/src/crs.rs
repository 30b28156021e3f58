//! CRS handling of OGC API – Features Part 2: the CRSs the API offers, their URIs, and their
//! axis order. Data are stored in CGCS2000 lon/lat (EPSG:4490); the default output is
//! `CRS84` (lon/lat, which CGCS2000 equals to the centimetre). Every other CRS is reached
//! through PROJ ([`lifeline_model::crs::transform`]), whose transformers are normalised to
//! x = east, y = north; the authority's axis order (lat/lon for EPSG:4326 and 4490,
//! northing/easting for the CGCS2000 Gauss–Krüger zones) is restored here, because Part 2
//! requires coordinates in the order the CRS defines.

use super::OgcError;
use geo::{Coord, Geometry, MapCoords};
use lifeline_model::crs::CANONICAL;

/// URI of OGC's lon/lat WGS84 (the default of Part 1).
pub const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";

/// An output or input CRS the API accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCrs {
    /// PROJ code (`EPSG:4490`); CRS84 maps to EPSG:4490 since the data are CGCS2000.
    pub code: String,
    /// Whether the authority's axis order is (north, east), so x and y swap on the wire.
    pub swap: bool,
    /// The URI clients use.
    pub uri: String,
}

/// EPSG codes offered besides CRS84: CGCS2000 and WGS84 lon/lat, Web Mercator, and the 20
/// CGCS2000 3-degree Gauss–Krüger zones with the CM in the false easting-free form
/// (EPSG:4534–4553).
pub fn supported_epsg() -> Vec<u32> {
    let mut v = vec![4490, 4326, 3857];
    v.extend(4534..=4553);
    v
}

/// Every supported CRS URI, CRS84 first.
pub fn supported_uris() -> Vec<String> {
    std::iter::once(CRS84.to_string())
        .chain(supported_epsg().into_iter().map(epsg_uri))
        .collect()
}

/// The OGC URI of an EPSG code.
pub fn epsg_uri(code: u32) -> String {
    format!("http://www.opengis.net/def/crs/EPSG/0/{code}")
}

/// The storage CRS URI.
pub fn storage_uri() -> String {
    epsg_uri(4490)
}

fn axis_swapped(code: u32) -> bool {
    // Geographic CRSs are lat/lon in EPSG; the CGCS2000 GK zones are "northing (X), easting
    // (Y)" (checked with `projinfo EPSG:4545`); Web Mercator is easting/northing.
    matches!(code, 4326 | 4490 | 4534..=4553)
}

impl ApiCrs {
    /// CRS84: lon/lat, no swap.
    pub fn crs84() -> Self {
        ApiCrs {
            code: CANONICAL.to_string(),
            swap: false,
            uri: CRS84.to_string(),
        }
    }

    /// Parses a CRS URI (`http://www.opengis.net/def/crs/EPSG/0/4326`), a safe CURIE
    /// (`[EPSG:4326]`) or a bare `EPSG:4326`; only supported CRSs are accepted.
    pub fn parse(s: &str) -> Result<Self, OgcError> {
        let t = s.trim().trim_start_matches('[').trim_end_matches(']');
        let t = t
            .strip_prefix("https://")
            .map(|r| format!("http://{r}"))
            .unwrap_or_else(|| t.to_string());
        if t == CRS84
            || t.eq_ignore_ascii_case("OGC:CRS84")
            || t == "http://www.opengis.net/def/crs/OGC/0/CRS84"
        {
            return Ok(Self::crs84());
        }
        let code = t
            .strip_prefix("http://www.opengis.net/def/crs/EPSG/0/")
            .or_else(|| t.strip_prefix("EPSG:"))
            .or_else(|| t.strip_prefix("epsg:"))
            .and_then(|c| c.parse::<u32>().ok());
        match code {
            Some(c) if supported_epsg().contains(&c) => Ok(ApiCrs {
                code: format!("EPSG:{c}"),
                swap: axis_swapped(c),
                uri: epsg_uri(c),
            }),
            _ => Err(OgcError::bad(format!(
                "CRS '{}' is not supported; use one of the URIs listed in the collection's crs",
                s.chars().take(80).collect::<String>()
            ))),
        }
    }

    /// A lon/lat (EPSG:4490) geometry in this CRS, in its axis order.
    pub fn from_canonical(&self, g: &Geometry<f64>) -> Result<Geometry<f64>, OgcError> {
        let out = if self.code == CANONICAL {
            g.clone()
        } else {
            lifeline_model::crs::transform(g, CANONICAL, &self.code)
                .map_err(|e| OgcError::bad(e.to_string()))?
        };
        Ok(if self.swap { swap_xy(&out) } else { out })
    }

    /// A geometry in this CRS (its axis order) back in lon/lat EPSG:4490.
    pub fn to_canonical(&self, g: &Geometry<f64>) -> Result<Geometry<f64>, OgcError> {
        let g = if self.swap { swap_xy(g) } else { g.clone() };
        if self.code == CANONICAL {
            return Ok(g);
        }
        lifeline_model::crs::transform(&g, &self.code, CANONICAL)
            .map_err(|e| OgcError::bad(e.to_string()))
    }
}

/// Swaps x and y of every coordinate.
pub fn swap_xy(g: &Geometry<f64>) -> Geometry<f64> {
    g.map_coords(|c: Coord<f64>| Coord { x: c.y, y: c.x })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uris_and_curies() {
        assert_eq!(ApiCrs::parse(CRS84).unwrap().code, "EPSG:4490");
        let c = ApiCrs::parse("http://www.opengis.net/def/crs/EPSG/0/4326").unwrap();
        assert!(c.swap);
        assert!(!ApiCrs::parse("[EPSG:3857]").unwrap().swap);
        assert!(ApiCrs::parse("EPSG:4545").unwrap().swap);
        assert!(ApiCrs::parse("EPSG:2000").is_err());
        assert!(ApiCrs::parse("nonsense").is_err());
    }

    #[test]
    fn gauss_kruger_output_is_northing_first() {
        let c = ApiCrs::parse("EPSG:4545").unwrap();
        let g = c
            .from_canonical(&Geometry::Point(geo::point!(x: 108.0, y: 29.5)))
            .unwrap();
        let Geometry::Point(p) = g else { panic!() };
        // On the central meridian: easting is the false easting 500 km; northing ~3.26e6 m.
        assert!((p.y() - 500_000.0).abs() < 0.01, "{p:?}");
        assert!((3_200_000.0..3_300_000.0).contains(&p.x()), "{p:?}");
        let back = c.to_canonical(&Geometry::Point(p)).unwrap();
        let Geometry::Point(b) = back else { panic!() };
        assert!((b.x() - 108.0).abs() < 1e-9 && (b.y() - 29.5).abs() < 1e-9);
    }
}
