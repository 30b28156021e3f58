//! Geometry rules and GeoJSON (de)serialisation for model fields. Every geometry the
//! service accepts passes [`check_coords`] (finite, in lon/lat range, bounded size) and the
//! type-specific checks here; polygons must be valid (OGC simple features) and follow the
//! RFC 7946 winding rule (exterior counter-clockwise, holes clockwise).

use super::ModelError;
use geo::{Coord, Geometry, LineString, MultiPolygon, Point, Polygon};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest number of vertices one geometry may have. A 62,000 km network is stored as
/// short segments, so anything larger is a mistake or an attack.
pub const MAX_VERTICES: usize = 100_000;

/// Checks that every coordinate is finite and inside the lon/lat range, and the vertex
/// count is bounded.
pub fn check_coords<'a>(coords: impl Iterator<Item = &'a Coord<f64>>) -> Result<usize, ModelError> {
    let mut n = 0usize;
    for c in coords {
        n += 1;
        if n > MAX_VERTICES {
            return Err(ModelError::Geometry(format!(
                "more than {MAX_VERTICES} vertices"
            )));
        }
        if !c.x.is_finite() || !c.y.is_finite() {
            return Err(ModelError::Geometry(
                "coordinate is NaN or infinite".to_string(),
            ));
        }
        if !(-180.0..=180.0).contains(&c.x) || !(-90.0..=90.0).contains(&c.y) {
            return Err(ModelError::Geometry(format!(
                "coordinate ({}, {}) is outside lon/lat range; geometries must be CGCS2000 lon/lat (EPSG:4490)",
                c.x, c.y
            )));
        }
    }
    Ok(n)
}

/// A point must be finite and in range.
pub fn check_point(p: &Point<f64>) -> Result<(), ModelError> {
    check_coords(std::iter::once(&p.0)).map(|_| ())
}

/// A line needs two distinct vertices and no repeated consecutive vertex sequence that
/// collapses it.
pub fn check_line(l: &LineString<f64>) -> Result<(), ModelError> {
    let n = check_coords(l.0.iter())?;
    if n < 2 {
        return Err(ModelError::Geometry(
            "a LineString needs at least 2 vertices".into(),
        ));
    }
    if l.0.windows(2).all(|w| w[0] == w[1]) {
        return Err(ModelError::Geometry(
            "LineString has zero length (all vertices equal)".into(),
        ));
    }
    Ok(())
}

/// A polygon must be valid in the OGC sense and wound as RFC 7946 asks.
pub fn check_polygon(p: &Polygon<f64>) -> Result<(), ModelError> {
    use geo::orient::Direction;
    use geo::Winding;
    check_coords(
        p.exterior()
            .0
            .iter()
            .chain(p.interiors().iter().flat_map(|r| r.0.iter())),
    )?;
    for (i, ring) in std::iter::once(p.exterior())
        .chain(p.interiors().iter())
        .enumerate()
    {
        let name = if i == 0 {
            "exterior ring".to_string()
        } else {
            format!("hole {i}")
        };
        if !ring.is_closed() {
            return Err(ModelError::Geometry(format!("{name} is not closed")));
        }
        let mut distinct: Vec<Coord<f64>> = ring.0.clone();
        distinct.dedup();
        if distinct.len() < 4 {
            return Err(ModelError::Geometry(format!(
                "{name} has fewer than 3 distinct vertices"
            )));
        }
        let want = if i == 0 {
            Direction::Default
        } else {
            Direction::Reversed
        };
        let ok = match want {
            Direction::Default => ring.is_ccw(),
            Direction::Reversed => ring.is_cw(),
        };
        if !ok {
            return Err(ModelError::Geometry(format!(
                "{name} has the wrong winding: RFC 7946 wants exterior rings counter-clockwise and holes clockwise"
            )));
        }
    }
    check_valid(&Geometry::Polygon(p.clone()))
}

/// Every polygon of a multipolygon must pass [`check_polygon`], and together be valid.
pub fn check_multipolygon(mp: &MultiPolygon<f64>) -> Result<(), ModelError> {
    if mp.0.is_empty() {
        return Err(ModelError::Geometry("MultiPolygon is empty".into()));
    }
    let total: usize = mp.0.iter().map(|p| p.exterior().0.len()).sum();
    if total > MAX_VERTICES {
        return Err(ModelError::Geometry(format!(
            "more than {MAX_VERTICES} vertices"
        )));
    }
    for p in &mp.0 {
        check_polygon(p)?;
    }
    if mp.0.len() > 1 {
        check_valid(&Geometry::MultiPolygon(mp.clone()))?;
    }
    Ok(())
}

/// OGC validity through `geo`'s validation, with its first reason as the message.
fn check_valid(g: &Geometry<f64>) -> Result<(), ModelError> {
    use geo::algorithm::Validation;
    match g.check_validation() {
        Ok(()) => Ok(()),
        Err(e) => Err(ModelError::Geometry(e.to_string())),
    }
}

/// Parses a GeoJSON geometry object into a `geo` geometry, with a clear message.
pub fn from_geojson(v: geojson::Geometry) -> Result<Geometry<f64>, ModelError> {
    // The `geojson` crate's conversion indexes x and y of every position unchecked, so a
    // position with fewer than two numbers (`{"type": "LineString", "coordinates": [[0]]}`)
    // would panic there; it is refused here first.
    if let Some(n) = short_position(&v.value) {
        return Err(ModelError::Geometry(format!(
            "a position has {n} number(s); each needs at least x and y"
        )));
    }
    Geometry::<f64>::try_from(v).map_err(|e| ModelError::Geometry(e.to_string()))
}

/// The length of the first position of `v` with fewer than two numbers, if there is one.
fn short_position(v: &geojson::GeometryValue) -> Option<usize> {
    use geojson::GeometryValue as G;
    fn short<'a>(ps: impl IntoIterator<Item = &'a geojson::Position>) -> Option<usize> {
        ps.into_iter().map(|p| p.len()).find(|n| *n < 2)
    }
    match v {
        G::Point { coordinates } => short([coordinates]),
        G::MultiPoint { coordinates } | G::LineString { coordinates } => short(coordinates),
        G::MultiLineString { coordinates } | G::Polygon { coordinates } => {
            short(coordinates.iter().flatten())
        }
        G::MultiPolygon { coordinates } => short(coordinates.iter().flatten().flatten()),
        G::GeometryCollection { geometries } => {
            geometries.iter().find_map(|g| short_position(&g.value))
        }
    }
}

/// Serialises a `geo` geometry as a GeoJSON geometry object.
pub fn to_geojson(g: &Geometry<f64>) -> geojson::Geometry {
    geojson::Geometry::new(geojson::GeometryValue::from(g))
}

fn de_geometry<'de, D: Deserializer<'de>>(d: D) -> Result<Geometry<f64>, D::Error> {
    let g = geojson::Geometry::deserialize(d)?;
    from_geojson(g).map_err(serde::de::Error::custom)
}

/// The name of a geometry's type, for messages ("expected a LineString, found a Point").
pub fn type_name(g: &Geometry<f64>) -> &'static str {
    match g {
        Geometry::Point(_) => "Point",
        Geometry::Line(_) => "Line",
        Geometry::LineString(_) => "LineString",
        Geometry::Polygon(_) => "Polygon",
        Geometry::MultiPoint(_) => "MultiPoint",
        Geometry::MultiLineString(_) => "MultiLineString",
        Geometry::MultiPolygon(_) => "MultiPolygon",
        Geometry::GeometryCollection(_) => "GeometryCollection",
        Geometry::Rect(_) => "Rect",
        Geometry::Triangle(_) => "Triangle",
    }
}

/// Serde for a `Point` field as a GeoJSON Point.
pub mod point {
    use super::*;
    pub fn serialize<S: Serializer>(p: &Point<f64>, s: S) -> Result<S::Ok, S::Error> {
        to_geojson(&Geometry::Point(*p)).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Point<f64>, D::Error> {
        match de_geometry(d)? {
            Geometry::Point(p) => Ok(p),
            other => Err(serde::de::Error::custom(format!(
                "expected a Point geometry, got {}",
                type_name(&other)
            ))),
        }
    }
}

/// Serde for a `LineString` field as a GeoJSON LineString (a 2-vertex MultiLineString of
/// one part is accepted too, since GIS exports often wrap lines that way).
pub mod line {
    use super::*;
    pub fn serialize<S: Serializer>(l: &LineString<f64>, s: S) -> Result<S::Ok, S::Error> {
        to_geojson(&Geometry::LineString(l.clone())).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LineString<f64>, D::Error> {
        match de_geometry(d)? {
            Geometry::LineString(l) => Ok(l),
            Geometry::MultiLineString(mut m) if m.0.len() == 1 => Ok(m.0.remove(0)),
            other => Err(serde::de::Error::custom(format!(
                "expected a LineString geometry, got {}",
                type_name(&other)
            ))),
        }
    }
}

/// Serde for a `MultiPolygon` field; a GeoJSON Polygon is accepted and promoted.
pub mod multipolygon {
    use super::*;
    pub fn serialize<S: Serializer>(m: &MultiPolygon<f64>, s: S) -> Result<S::Ok, S::Error> {
        to_geojson(&Geometry::MultiPolygon(m.clone())).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MultiPolygon<f64>, D::Error> {
        match de_geometry(d)? {
            Geometry::MultiPolygon(m) => Ok(m),
            Geometry::Polygon(p) => Ok(MultiPolygon(vec![p])),
            other => Err(serde::de::Error::custom(format!(
                "expected a Polygon or MultiPolygon geometry, got {}",
                type_name(&other)
            ))),
        }
    }
}

/// Serde for a Point-or-Polygon field (risk points are either).
pub mod point_or_polygon {
    use super::*;
    pub fn serialize<S: Serializer>(g: &Geometry<f64>, s: S) -> Result<S::Ok, S::Error> {
        to_geojson(g).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Geometry<f64>, D::Error> {
        match de_geometry(d)? {
            g @ (Geometry::Point(_) | Geometry::Polygon(_)) => Ok(g),
            other => Err(serde::de::Error::custom(format!(
                "expected a Point or Polygon geometry, got {}",
                type_name(&other)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{line_string, polygon};

    #[test]
    fn rejects_nan_and_out_of_range() {
        let l = line_string![(x: 106.5, y: 29.5), (x: f64::NAN, y: 29.6)];
        assert!(check_line(&l).unwrap_err().to_string().contains("NaN"));
        let l = line_string![(x: 106.5, y: 29.5), (x: 506.5, y: 29.6)];
        assert!(check_line(&l)
            .unwrap_err()
            .to_string()
            .contains("EPSG:4490"));
    }

    #[test]
    fn rejects_degenerate_line() {
        let l = line_string![(x: 106.5, y: 29.5), (x: 106.5, y: 29.5)];
        assert!(check_line(&l).is_err());
        let l = line_string![(x: 106.5, y: 29.5)];
        assert!(check_line(&l).is_err());
    }

    #[test]
    fn polygon_winding_and_validity() {
        let ccw = polygon![(x: 0., y: 0.), (x: 1., y: 0.), (x: 1., y: 1.), (x: 0., y: 1.), (x: 0., y: 0.)];
        check_polygon(&ccw).unwrap();
        let cw = polygon![(x: 0., y: 0.), (x: 0., y: 1.), (x: 1., y: 1.), (x: 1., y: 0.), (x: 0., y: 0.)];
        assert!(check_polygon(&cw)
            .unwrap_err()
            .to_string()
            .contains("winding"));
        // A bow-tie: self-intersecting. Its signed area is zero, so the winding check
        // cannot name it; validity must.
        let bow = polygon![(x: 0., y: 0.), (x: 1., y: 1.), (x: 1., y: 0.), (x: 0., y: 1.), (x: 0., y: 0.)];
        assert!(check_polygon(&bow).is_err());
    }

    #[test]
    fn parses_geojson_types() {
        let v: serde_json::Value =
            serde_json::json!({"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]});
        let mp = multipolygon::deserialize(v).unwrap();
        assert_eq!(mp.0.len(), 1);
        let v = serde_json::json!({"type": "Point", "coordinates": [1, 2]});
        assert!(line::deserialize(v)
            .unwrap_err()
            .to_string()
            .contains("LineString"));
    }
}
