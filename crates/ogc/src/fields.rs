//! Typed access to record attributes by their public name, and a direct GeoJSON writer.
//!
//! The items hot path never builds a `serde_json::Value` per candidate: CQL2 filters, the
//! `datetime` window and `sortby` read the typed record through [`field`], and only the
//! returned page is written, straight into a byte buffer, by [`write_feature`]. The names and
//! their order are the attribute table of `/layers` ([`lifeline_model::schema::attributes`]),
//! which is also the serde order of the model structs, so the output equals
//! [`lifeline_model::feature::to_feature`] (a unit test checks that on every layer).

use chrono::NaiveDate;
use geo::{Coord, Geometry, LineString, Polygon};
use lifeline_model::{Layer, Record};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// One attribute value, borrowed from the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    /// Unknown (an absent optional attribute, serialised by omission).
    Null,
    Str(&'a str),
    F64(f64),
    I64(i64),
    Date(NaiveDate),
}

impl Field<'_> {
    /// The value as JSON (for encodings that need a property map, like FlatGeobuf).
    pub fn to_json(self) -> Value {
        match self {
            Field::Null => Value::Null,
            Field::Str(s) => Value::String(s.to_string()),
            Field::F64(f) => serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Field::I64(i) => Value::from(i),
            Field::Date(d) => Value::String(d.format("%Y-%m-%d").to_string()),
        }
    }
}

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

fn s<T: Copy>(v: Option<T>, f: impl Fn(T) -> &'static str) -> Field<'static> {
    v.map(|x| Field::Str(f(x))).unwrap_or(Field::Null)
}

fn os(v: &Option<String>) -> Field<'_> {
    v.as_deref().map(Field::Str).unwrap_or(Field::Null)
}

fn of(v: Option<f64>) -> Field<'static> {
    v.map(Field::F64).unwrap_or(Field::Null)
}

fn oi(v: Option<i64>) -> Field<'static> {
    v.map(Field::I64).unwrap_or(Field::Null)
}

fn od(v: Option<NaiveDate>) -> Field<'static> {
    v.map(Field::Date).unwrap_or(Field::Null)
}

/// The attribute `name` of a record (`id` included); [`Field::Null`] for an unknown name
/// or an absent value. Role checks are the caller's: names come from the role's queryables.
pub fn field<'a>(r: &'a Record, name: &str) -> Field<'a> {
    if name == "id" {
        return Field::I64(r.id());
    }
    match r {
        Record::Pipeline(p) => match name {
            "kind" => Field::Str(p.kind.as_str()),
            "sub_kind" => s(p.sub_kind, |k| k.as_str()),
            "pressure_class" => s(p.pressure_class, |k| k.as_str()),
            "voltage_kv" => of(p.voltage_kv),
            "material" => os(&p.material),
            "diameter_mm" => of(p.diameter_mm),
            "section_width_mm" => of(p.section_width_mm),
            "section_height_mm" => of(p.section_height_mm),
            "depth_start_m" => of(p.depth_start_m),
            "depth_end_m" => of(p.depth_end_m),
            "invert_start_m" => of(p.invert_start_m),
            "invert_end_m" => of(p.invert_end_m),
            "burial" => s(p.burial, |k| k.as_str()),
            "owner_id" => Field::I64(p.owner_id),
            "year_built" => oi(p.year_built.map(i64::from)),
            "survey_date" => od(p.survey_date),
            "plan_accuracy_cm" => of(p.plan_accuracy_cm),
            "depth_accuracy_cm" => of(p.depth_accuracy_cm),
            "quality_level" => s(p.quality_level, |k| k.as_str()),
            "status" => Field::Str(p.status.as_str()),
            _ => Field::Null,
        },
        Record::RiskPoint(p) => match name {
            "category" => Field::Str(&p.category),
            "level" => Field::Str(p.level.as_str()),
            "name" => Field::Str(&p.name),
            "grid_cell_id" => oi(p.grid_cell_id),
            "responsible_unit" => Field::Str(&p.responsible_unit),
            "responsible_person" => Field::Str(&p.responsible_person),
            "responsible_phone" => os(&p.responsible_phone),
            "emergency_plan" => os(&p.emergency_plan),
            "last_review" => od(p.last_review),
            "next_review" => od(p.next_review),
            "status" => Field::Str(p.status.as_str()),
            _ => Field::Null,
        },
        Record::GridCell(c) => match name {
            "level" => Field::Str(c.level.as_str()),
            "parent_id" => oi(c.parent_id),
            "name" => Field::Str(&c.name),
            "code" => Field::Str(&c.code),
            _ => Field::Null,
        },
        Record::Sensor(x) => match name {
            "kind" => Field::Str(x.kind.as_str()),
            "code" => os(&x.code),
            "pipeline_id" => oi(x.pipeline_id),
            "risk_point_id" => oi(x.risk_point_id),
            "status" => Field::Str(x.status.as_str()),
            "installed" => od(x.installed),
            _ => Field::Null,
        },
        Record::Owner(o) => match name {
            "name" => Field::Str(&o.name),
            "emergency_contact" => Field::Str(&o.emergency_contact),
            "emergency_phone" => Field::Str(&o.emergency_phone),
            "email" => os(&o.email),
            _ => Field::Null,
        },
    }
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
    lifeline_model::schema::attributes(layer)
        .iter()
        .map(|(n, _)| *n)
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
