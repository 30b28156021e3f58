//! Typed access to record attributes by their public name, and a direct GeoJSON writer.
//!
//! The items hot path never builds a `serde_json::Value` per candidate: CQL2 filters, the
//! `datetime` window and `sortby` read the typed record through [`field`], and only the
//! returned page is written, straight into a byte buffer, by [`write_feature`]. The names and
//! their order are the layer's schema table ([`lifeline_model::schema`]),
//! which is also the serde order of the model structs, so the output equals
//! [`lifeline_model::feature::to_feature`] (a unit test checks that on every layer).

use geo::{Coord, Geometry, LineString, Polygon};
use lifeline_model::{Layer, Record};
use serde_json::{Map, Value};
use std::cmp::Ordering;

pub use lifeline_model::schema::Field;

/// Orders values as PostgreSQL sorts them ascending: NULLs last, numbers by value, strings
/// bytewise, dates chronologically.
pub fn cmp_fields(a: Field<'_>, b: Field<'_>) -> Ordering {
    use Field::*;
    match (a, b) {
        (Null, Null) => Ordering::Equal,
        (Null, _) => Ordering::Greater,
        (_, Null) => Ordering::Less,
        (Str(x), Str(y)) => x.cmp(y),
        (Date(x), Date(y)) => x.cmp(&y),
        (I64(x), I64(y)) => x.cmp(&y),
        (F64(x), F64(y)) => x.total_cmp(&y),
        (I64(x), F64(y)) => (x as f64).total_cmp(&y),
        (F64(x), I64(y)) => x.total_cmp(&(y as f64)),
        _ => Ordering::Equal,
    }
}

/// The attribute `name` of a record (`id` included); [`Field::Null`] for an unknown name
/// or an absent value. Role checks are the caller's: names come from the role's queryables.
pub fn field<'a>(r: &'a Record, name: &str) -> Field<'a> {
    lifeline_model::schema::value(r, name)
}

/// The properties of a record as a JSON map, limited to `names` (absent values omitted).
pub fn properties_map(r: &Record, names: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    for n in names {
        let f = field(r, n);
        if f != Field::Null {
            m.insert((*n).to_string(), f.to_json());
        }
    }
    m
}

/// Appends a JSON string (escaped as serde_json does).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends a JSON number the way serde_json prints an `f64` (non-finite → null).
pub fn write_f64(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        let _ = serde_json::to_writer(&mut *out, &f);
    } else {
        out.extend_from_slice(b"null");
    }
}

fn write_field(out: &mut Vec<u8>, f: Field<'_>) {
    match f {
        Field::Null => out.extend_from_slice(b"null"),
        Field::Str(s) => write_str(out, s),
        Field::F64(x) => write_f64(out, x),
        Field::I64(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Field::Date(d) => {
            out.push(b'"');
            out.extend_from_slice(d.format("%Y-%m-%d").to_string().as_bytes());
            out.push(b'"');
        }
    }
}

fn write_coord(out: &mut Vec<u8>, c: &Coord<f64>) {
    out.push(b'[');
    write_f64(out, c.x);
    out.push(b',');
    write_f64(out, c.y);
    out.push(b']');
}

fn write_coords<'a>(out: &mut Vec<u8>, cs: impl Iterator<Item = &'a Coord<f64>>) {
    out.push(b'[');
    for (i, c) in cs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_coord(out, c);
    }
    out.push(b']');
}

fn write_line(out: &mut Vec<u8>, l: &LineString<f64>) {
    write_coords(out, l.0.iter());
}

fn write_polygon(out: &mut Vec<u8>, p: &Polygon<f64>) {
    out.push(b'[');
    write_line(out, p.exterior());
    for r in p.interiors() {
        out.push(b',');
        write_line(out, r);
    }
    out.push(b']');
}

/// Appends a GeoJSON geometry object.
pub fn write_geometry(out: &mut Vec<u8>, g: &Geometry<f64>) {
    let t = match g {
        Geometry::Point(_) => "Point",
        Geometry::LineString(_) => "LineString",
        Geometry::Polygon(_) => "Polygon",
        Geometry::MultiPoint(_) => "MultiPoint",
        Geometry::MultiLineString(_) => "MultiLineString",
        Geometry::MultiPolygon(_) => "MultiPolygon",
        // Not produced by the model; fall back to the geojson crate.
        other => {
            let _ = serde_json::to_writer(&mut *out, &lifeline_model::geom::to_geojson(other));
            return;
        }
    };
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(t.as_bytes());
    out.extend_from_slice(b"\",\"coordinates\":");
    match g {
        Geometry::Point(p) => write_coord(out, &p.0),
        Geometry::LineString(l) => write_line(out, l),
        Geometry::Polygon(p) => write_polygon(out, p),
        Geometry::MultiPoint(m) => write_coords(out, m.0.iter().map(|p| &p.0)),
        Geometry::MultiLineString(m) => {
            out.push(b'[');
            for (i, l) in m.0.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_line(out, l);
            }
            out.push(b']');
        }
        Geometry::MultiPolygon(m) => {
            out.push(b'[');
            for (i, p) in m.0.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_polygon(out, p);
            }
            out.push(b']');
        }
        _ => {}
    }
    out.push(b'}');
}

/// Appends the record's own lon/lat geometry without copying it.
fn write_record_geometry(out: &mut Vec<u8>, r: &Record) {
    match r {
        Record::Pipeline(p) => {
            out.extend_from_slice(b"{\"type\":\"LineString\",\"coordinates\":");
            write_line(out, &p.geometry);
            out.push(b'}');
        }
        Record::RiskPoint(p) => write_geometry(out, &p.geometry),
        Record::GridCell(c) => {
            out.extend_from_slice(b"{\"type\":\"MultiPolygon\",\"coordinates\":[");
            for (i, p) in c.geometry.0.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_polygon(out, p);
            }
            out.extend_from_slice(b"]}");
        }
        Record::Sensor(x) => {
            out.extend_from_slice(b"{\"type\":\"Point\",\"coordinates\":");
            write_coord(out, &x.location.0);
            out.push(b'}');
        }
        Record::Node(n) => {
            out.extend_from_slice(b"{\"type\":\"Point\",\"coordinates\":");
            write_coord(out, &n.geometry.0);
            out.push(b'}');
        }
        Record::Owner(_) => out.extend_from_slice(b"null"),
    }
}

/// Appends one GeoJSON Feature: `id`, `geometry` (the record's own, or `geometry` when
/// given — a reprojected copy), and the properties in `names` that have a value.
pub fn write_feature(
    out: &mut Vec<u8>,
    r: &Record,
    names: &[&str],
    geometry: Option<&Geometry<f64>>,
) {
    out.extend_from_slice(b"{\"type\":\"Feature\",\"id\":");
    out.extend_from_slice(r.id().to_string().as_bytes());
    out.extend_from_slice(b",\"geometry\":");
    match geometry {
        Some(g) => write_geometry(out, g),
        None => write_record_geometry(out, r),
    }
    out.extend_from_slice(b",\"properties\":{");
    let mut first = true;
    for n in names {
        let f = field(r, n);
        if f == Field::Null {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, n);
        out.push(b':');
        write_field(out, f);
    }
    out.extend_from_slice(b"}}");
}

/// The property names a layer's features carry, in output order.
pub fn names(layer: Layer) -> Vec<&'static str> {
    lifeline_model::schema::fields(layer)
        .iter()
        .map(|f| f.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_generate::{generate, GenerateOptions, Preset};
    use lifeline_model::feature::to_feature;
    use lifeline_model::Role;

    /// The direct writer equals `to_feature` on every record of every layer of the demo.
    #[test]
    fn writer_equals_to_feature() {
        let (data, _) = generate(&GenerateOptions {
            preset: Preset::Demo,
            seed: 42,
            progress: false,
        })
        .unwrap();
        let mut records: Vec<Record> = Vec::new();
        records.extend(data.pipelines.into_iter().map(Record::Pipeline));
        records.extend(data.risk_points.into_iter().map(Record::RiskPoint));
        records.extend(data.grid_cells.into_iter().take(200).map(Record::GridCell));
        records.extend(data.sensors.into_iter().map(Record::Sensor));
        records.extend(data.nodes.into_iter().map(Record::Node));
        records.extend(data.owners.into_iter().map(Record::Owner));
        for r in &records {
            let mut buf = Vec::new();
            let ns = names(r.layer());
            write_feature(&mut buf, r, &ns, None);
            let got: Value = serde_json::from_slice(&buf).unwrap();
            // Both sides through text: serde_json's float parsing is not exactly round-trip
            // without `float_roundtrip`, so compare what a client reads from each.
            let want: Value =
                serde_json::from_slice(&serde_json::to_vec(&to_feature(r, Role::Admin)).unwrap())
                    .unwrap();
            assert_eq!(got, want, "{} {}", r.layer(), r.id());
            let m = properties_map(r, &ns);
            assert_eq!(Value::Object(m), want["properties"]);
        }
    }
}
