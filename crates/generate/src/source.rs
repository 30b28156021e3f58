//! The real inputs of the generator, compiled in: the district polygons
//! (`data/chongqing_districts.geojson`) and the names and statistical codes of streets and
//! communities (`data/chongqing_admin_names.json`). Both are parsed once per run and the
//! polygons are repaired (closed, de-duplicated, counter-clockwise, valid) before use.

use super::GenerateError;
use geo::orient::{Direction, Orient};
use geo::{BooleanOps, Coord, LineString, MultiPolygon, Polygon, RemoveRepeatedPoints, Validation};
use serde::Deserialize;

const DISTRICTS_GEOJSON: &str = include_str!("../../../data/chongqing_districts.geojson");
const ADMIN_NAMES_JSON: &str = include_str!("../../../data/chongqing_admin_names.json");

/// A community or village committee: real name and 12-digit statistical code.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct CommunityName {
    pub code: String,
    pub name: String,
}

impl CommunityName {
    /// Villages (村民委员会) are rural; every other committee (社区居民委员会, 社区工作站…)
    /// is an urban community.
    pub fn is_urban(&self) -> bool {
        !self.name.ends_with("村民委员会")
    }

    /// The name without the committee suffix, as people say it ("劳动一村社区").
    pub fn short_name(&self) -> &str {
        self.name
            .strip_suffix("居民委员会")
            .or_else(|| self.name.strip_suffix("村民委员会"))
            .or_else(|| self.name.strip_suffix("工作站"))
            .unwrap_or(&self.name)
    }
}

/// A street (街道) or town (镇/乡) with its communities.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct StreetName {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub communities: Vec<CommunityName>,
}

impl StreetName {
    /// Statistical codes 001–099 are urban sub-districts (街道); 1xx towns, 2xx townships.
    pub fn is_subdistrict(&self) -> bool {
        self.code
            .get(6..9)
            .and_then(|s| s.parse::<u32>().ok())
            .is_some_and(|n| n < 100)
    }
}

#[derive(Debug, Clone, Deserialize)]
struct DistrictName {
    code: String,
    name: String,
    #[serde(default)]
    streets: Vec<StreetName>,
}

#[derive(Deserialize)]
struct NamesFile {
    districts: Vec<DistrictName>,
}

/// One district with its real polygon (repaired) and its real street and community names.
#[derive(Debug, Clone)]
pub(super) struct District {
    pub adcode: String,
    pub name: String,
    pub polygon: MultiPolygon<f64>,
    pub streets: Vec<StreetName>,
}

/// Loads the districts with the given adcodes, in the order asked.
pub(super) fn load_districts(adcodes: &[&str]) -> Result<Vec<District>, GenerateError> {
    let names: NamesFile = serde_json::from_str(ADMIN_NAMES_JSON)
        .map_err(|e| GenerateError::Data(format!("chongqing_admin_names.json: {e}")))?;
    let geo: serde_json::Value = serde_json::from_str(DISTRICTS_GEOJSON)
        .map_err(|e| GenerateError::Data(format!("chongqing_districts.geojson: {e}")))?;
    let features = geo
        .get("features")
        .and_then(|f| f.as_array())
        .ok_or_else(|| GenerateError::Data("chongqing_districts.geojson has no features".into()))?;
    let mut out = Vec::with_capacity(adcodes.len());
    for &code in adcodes {
        let names = names
            .districts
            .iter()
            .find(|d| d.code == code)
            .ok_or_else(|| GenerateError::UnknownDistrict(code.to_string()))?;
        let feature = features
            .iter()
            .find(|f| f.pointer("/properties/adcode").and_then(|v| v.as_str()) == Some(code))
            .ok_or_else(|| GenerateError::UnknownDistrict(code.to_string()))?;
        let geometry = feature
            .get("geometry")
            .ok_or_else(|| GenerateError::Data(format!("district {code} has no geometry")))?;
        let polygon = repair(
            parse_polygonal(geometry)
                .map_err(|e| GenerateError::Data(format!("district {code} geometry: {e}")))?,
        )
        .map_err(|e| GenerateError::Data(format!("district {code} geometry: {e}")))?;
        if names.streets.is_empty() {
            return Err(GenerateError::Data(format!(
                "district {code} has no streets"
            )));
        }
        out.push(District {
            adcode: names.code.clone(),
            name: names.name.clone(),
            polygon,
            streets: names.streets.clone(),
        });
    }
    Ok(out)
}

/// Reads a GeoJSON Polygon or MultiPolygon geometry object into a `MultiPolygon`.
fn parse_polygonal(g: &serde_json::Value) -> Result<MultiPolygon<f64>, String> {
    let kind = g.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let coords = g.get("coordinates").ok_or("no coordinates")?;
    let ring = |v: &serde_json::Value| -> Result<LineString<f64>, String> {
        let pts = v.as_array().ok_or("ring is not an array")?;
        let mut out = Vec::with_capacity(pts.len());
        for p in pts {
            let x = p.get(0).and_then(|x| x.as_f64()).ok_or("bad coordinate")?;
            let y = p.get(1).and_then(|y| y.as_f64()).ok_or("bad coordinate")?;
            if !x.is_finite() || !y.is_finite() {
                return Err("coordinate is not finite".into());
            }
            out.push(Coord { x, y });
        }
        let mut ls = LineString::new(out);
        ls.close();
        Ok(ls)
    };
    let polygon = |v: &serde_json::Value| -> Result<Polygon<f64>, String> {
        let rings = v.as_array().ok_or("polygon is not an array")?;
        let mut it = rings.iter();
        let ext = ring(it.next().ok_or("polygon has no rings")?)?;
        let holes = it.map(ring).collect::<Result<Vec<_>, _>>()?;
        Ok(Polygon::new(ext, holes))
    };
    match kind {
        "Polygon" => Ok(MultiPolygon::new(vec![polygon(coords)?])),
        "MultiPolygon" => Ok(MultiPolygon::new(
            coords
                .as_array()
                .ok_or("coordinates is not an array")?
                .iter()
                .map(polygon)
                .collect::<Result<_, _>>()?,
        )),
        other => Err(format!("expected a Polygon or MultiPolygon, got '{other}'")),
    }
}

/// Makes a polygon usable as a grid cell: repeated vertices removed, RFC 7946 winding, and
/// OGC-valid. A self-intersecting input is resolved by a union with nothing (the overlay
/// engine splits it at the crossings).
pub(super) fn repair(mp: MultiPolygon<f64>) -> Result<MultiPolygon<f64>, String> {
    let mp = mp.remove_repeated_points().orient(Direction::Default);
    if mp.is_valid() && !mp.0.is_empty() {
        return Ok(mp);
    }
    let fixed = mp
        .union(&MultiPolygon::<f64>::new(vec![]))
        .orient(Direction::Default);
    if fixed.0.is_empty() {
        return Err("polygon has no area".into());
    }
    fixed
        .check_validation()
        .map_err(|e| format!("could not be repaired: {e}"))?;
    Ok(fixed)
}
