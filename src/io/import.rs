//! `lifeline import`: loads a surveyor's delivery in any vector format GDAL reads into one
//! layer of the store. A mapping file (TOML, `data/mappings/*.toml`) names which source
//! column feeds which model field (with constants, unit scales and value vocabularies);
//! geometries are reprojected from the source CRS with PROJ (or converted back from GCJ-02
//! on request) and repaired where the repair is unambiguous. Every rejected or repaired row
//! goes into the [`Report`] with its source row number and the reason. The accepted rows are
//! written in one transaction through [`crate::store::Store::bulk_load`]: all or nothing.

use super::crs::{transform, CANONICAL};
use super::gdal::{read_layer, SourceLayer, SourceRow};
use crate::model::{Catalog, Dataset, Layer, Owner, Record};
use geo::{Coord, Geometry, LineString, MultiPolygon, Polygon};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Why an import could not run at all (row problems go to the report instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("mapping file: {0}")]
    Mapping(String),
    #[error(transparent)]
    Gdal(#[from] super::gdal::GdalError),
    #[error("source CRS: {0}")]
    Crs(String),
}

/// How one model field is filled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// Source column name.
    pub from: Option<String>,
    /// A constant (used when `from` is absent, or when the source value is null).
    pub value: Option<Value>,
    /// Multiply a numeric source value (e.g. 1000 for metres to millimetres).
    pub scale: Option<f64>,
    /// Translate source strings to model vocabulary; unmapped values are an error.
    #[serde(default)]
    pub map: BTreeMap<String, Value>,
}

/// A mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Target layer (`--layer` overrides).
    pub layer: Option<String>,
    /// Source layer name inside the file (default: the first).
    pub source_layer: Option<String>,
    /// Source CRS when the file has none or a wrong one (`--s-srs` overrides): an EPSG
    /// code or any PROJ string (e.g. Xi'an 80 with `+towgs84=` parameters).
    pub source_crs: Option<String>,
    /// Source coordinates are GCJ-02 (`--gcj02` sets it too).
    #[serde(default)]
    pub gcj02: bool,
    /// An OGR SQL attribute filter applied while reading (e.g. `kind = 'Pipe'`).
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// Model field → rule.
    pub fields: BTreeMap<String, FieldRule>,
    /// An owner to create (or replace) in the same transaction.
    pub owner: Option<Owner>,
}

impl Mapping {
    /// Parses and checks a mapping file's text.
    pub fn parse(text: &str) -> Result<Mapping, ImportError> {
        let m: Mapping = toml::from_str(text).map_err(|e| ImportError::Mapping(e.to_string()))?;
        for (name, r) in &m.fields {
            if r.from.is_none() && r.value.is_none() {
                return Err(ImportError::Mapping(format!(
                    "field '{name}' needs `from` or `value`"
                )));
            }
        }
        Ok(m)
    }

    /// Reads a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, ImportError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ImportError::Mapping(format!("{}: {e}", path.display())))?;
        Self::parse(&text)
    }
}

/// What happened to one source row.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Rejected,
    Repaired,
}

/// One line of the validation report.
#[derive(Debug, Clone, Serialize)]
pub struct Issue {
    /// 1-based source row.
    pub row: usize,
    /// Source FID, when the format has one.
    pub fid: Option<u64>,
    pub outcome: Outcome,
    pub reason: String,
}

/// The validation report and the records that passed.
#[derive(Debug, Serialize)]
pub struct Report {
    pub source: String,
    pub source_layer: String,
    pub source_crs: Option<String>,
    pub layer: Layer,
    pub read: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub repaired: usize,
    pub issues: Vec<Issue>,
    #[serde(skip)]
    pub data: Dataset,
}

/// Options of one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub layer: Layer,
    pub source_crs: Option<String>,
    pub gcj02: bool,
}

/// Reads, maps, reprojects, repairs and validates a file; writes nothing. `progress` is
/// called with (rows done, rows total).
pub fn prepare(
    path: &Path,
    mapping: &Mapping,
    opts: &ImportOptions,
    catalog: &Catalog,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report, ImportError> {
    let src: SourceLayer = read_layer(
        path,
        mapping.source_layer.as_deref(),
        mapping.where_.as_deref(),
    )?;
    let s_crs = opts
        .source_crs
        .clone()
        .or_else(|| mapping.source_crs.clone())
        .or_else(|| src.crs.clone());
    let gcj = opts.gcj02 || mapping.gcj02;
    let from = match (&s_crs, gcj) {
        (_, true) => "EPSG:4326".to_string(),
        (Some(c), false) => c.clone(),
        (None, false) => {
            return Err(ImportError::Crs(format!(
                "{} declares no CRS; give --s-srs (e.g. EPSG:4545) or source_crs in the mapping",
                path.display()
            )))
        }
    };
    // Fail early on an unusable CRS rather than once per row.
    transform(
        &Geometry::Point(geo::point!(x: 0.0, y: 0.0)),
        &from,
        CANONICAL,
    )
    .or_else(|e| match e {
        super::crs::CrsError::Transform { .. } => Ok(Geometry::Point(geo::point!(x: 0.0, y: 0.0))),
        other => Err(other),
    })
    .map_err(|e| ImportError::Crs(e.to_string()))?;
    for name in mapping.fields.keys() {
        if let Some(r) = &mapping.fields[name].from {
            if !src.field_names.contains(r) {
                return Err(ImportError::Mapping(format!(
                    "field '{name}' reads source column '{r}', which {} does not have; columns: {}",
                    path.display(),
                    src.field_names.join(", ")
                )));
            }
        }
    }
    let mut report = Report {
        source: path.display().to_string(),
        source_layer: src.name.clone(),
        source_crs: Some(if gcj { "GCJ-02".into() } else { from.clone() }),
        layer: opts.layer,
        read: src.rows.len(),
        accepted: 0,
        rejected: 0,
        repaired: 0,
        issues: Vec::new(),
        data: Dataset::default(),
    };
    if let Some(o) = &mapping.owner {
        o.validate()
            .map_err(|e| ImportError::Mapping(format!("[owner]: {e}")))?;
        report.data.owners.push(o.clone());
    }
    let total = src.rows.len();
    for (i, row) in src.rows.iter().enumerate() {
        if i % 256 == 0 {
            progress(i, total);
        }
        let mut repairs = Vec::new();
        match convert_row(row, mapping, opts.layer, &from, gcj, catalog, &mut repairs) {
            Ok(rec) => {
                report.accepted += 1;
                if !repairs.is_empty() {
                    report.repaired += 1;
                    report.issues.push(Issue {
                        row: row.row,
                        fid: row.fid,
                        outcome: Outcome::Repaired,
                        reason: repairs.join("; "),
                    });
                }
                push(&mut report.data, rec);
            }
            Err(reason) => {
                report.rejected += 1;
                report.issues.push(Issue {
                    row: row.row,
                    fid: row.fid,
                    outcome: Outcome::Rejected,
                    reason,
                });
            }
        }
    }
    progress(total, total);
    Ok(report)
}

fn push(d: &mut Dataset, r: Record) {
    match r {
        Record::Pipeline(p) => d.pipelines.push(p),
        Record::RiskPoint(p) => d.risk_points.push(p),
        Record::GridCell(p) => d.grid_cells.push(p),
        Record::Sensor(p) => d.sensors.push(p),
        Record::Owner(p) => d.owners.push(p),
    }
}

fn apply_rule(name: &str, rule: &FieldRule, row: &SourceRow) -> Result<Option<Value>, String> {
    let mut v = match &rule.from {
        Some(col) => row.fields.get(col).cloned().unwrap_or(Value::Null),
        None => Value::Null,
    };
    if let Value::String(s) = &v {
        if s.trim().is_empty() {
            v = Value::Null;
        }
    }
    if v.is_null() {
        return Ok(rule.value.clone());
    }
    if !rule.map.is_empty() {
        let key = match &v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        v = rule.map.get(&key).cloned().ok_or_else(|| {
            format!(
                "{name}: source value '{key}' is not in the mapping's vocabulary ({})",
                rule.map.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
    }
    if let Some(k) = rule.scale {
        v = match &v {
            Value::Number(n) => n
                .as_f64()
                .and_then(|x| serde_json::Number::from_f64(x * k))
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(x) => serde_json::Number::from_f64(x * k)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
                Err(_) => return Err(format!("{name}: '{s}' is not a number")),
            },
            other => other.clone(),
        };
    }
    Ok(Some(v))
}

fn convert_row(
    row: &SourceRow,
    mapping: &Mapping,
    layer: Layer,
    from: &str,
    gcj: bool,
    catalog: &Catalog,
    repairs: &mut Vec<String>,
) -> Result<Record, String> {
    let g = match &row.geometry {
        Err(e) => return Err(e.clone()),
        Ok(None) => return Err("no geometry".into()),
        Ok(Some(g)) => g.clone(),
    };
    let g = if gcj { gcj02_to_wgs84_geom(&g) } else { g };
    let g = if from == CANONICAL {
        g
    } else {
        transform(&g, from, CANONICAL).map_err(|e| format!("reprojection failed: {e}"))?
    };
    let g = repair_geometry(layer, g, repairs)?;
    let mut obj = Map::new();
    for (name, rule) in &mapping.fields {
        if let Some(v) = apply_rule(name, rule, row)? {
            // Whole numbers read from floating columns (e.g. a year stored as Real) go to
            // integer fields as integers.
            let v = coerce(layer, name, v)?;
            if v.is_null() {
                continue;
            }
            obj.insert(name.clone(), v);
        }
    }
    obj.insert(
        crate::model::feature::geometry_field(layer).into(),
        serde_json::to_value(crate::model::geom::to_geojson(&g)).map_err(|e| e.to_string())?,
    );
    let rec = Record::from_json(layer, Value::Object(obj)).map_err(|e| e.to_string())?;
    rec.validate(catalog).map_err(|e| e.to_string())?;
    Ok(rec)
}

fn field_type(layer: Layer, name: &str) -> Option<&'static str> {
    if name == "id" {
        return Some("integer");
    }
    crate::http::layers::attributes(layer)
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// Brings a source value to the model field's type: numbers from text columns (CSV),
/// whole floats to integers (a year stored as Real), empty text to null.
fn coerce(layer: Layer, name: &str, v: Value) -> Result<Value, String> {
    let t = field_type(layer, name);
    match (t, v) {
        (Some("number" | "integer"), Value::String(s)) if s.trim().is_empty() => Ok(Value::Null),
        (Some("number"), Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("{name}: '{s}' is not a number")),
        (Some("integer"), Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(x) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(Value::from(x as i64)),
            _ => Err(format!("{name}: '{s}' is not an integer")),
        },
        (Some("integer"), Value::Number(n)) if n.is_f64() => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(Value::from(x as i64)),
            _ => Err(format!("{name}: {n} is not an integer")),
        },
        (Some("string" | "date"), Value::String(s)) if s.trim().is_empty() => Ok(Value::Null),
        (_, v) => Ok(v),
    }
}

fn dedup_line(l: &LineString<f64>) -> LineString<f64> {
    let mut v: Vec<Coord<f64>> = l.0.clone();
    v.dedup();
    LineString(v)
}

/// Makes a geometry fit its layer where the fix is unambiguous, naming each fix.
fn repair_geometry(
    layer: Layer,
    g: Geometry<f64>,
    repairs: &mut Vec<String>,
) -> Result<Geometry<f64>, String> {
    match layer {
        Layer::Pipelines => {
            let line = match g {
                Geometry::LineString(l) => l,
                Geometry::MultiLineString(mut m) if m.0.len() == 1 => {
                    repairs.push("single-part MultiLineString unwrapped".into());
                    m.0.remove(0)
                }
                Geometry::MultiLineString(m) => {
                    return Err(format!(
                        "MultiLineString with {} parts; a pipeline is one line (split it in the source)",
                        m.0.len()
                    ))
                }
                other => return Err(format!("a pipeline needs a LineString, got {}", type_name(&other))),
            };
            let d = dedup_line(&line);
            if d.0.len() != line.0.len() {
                repairs.push(format!(
                    "{} repeated vertices removed",
                    line.0.len() - d.0.len()
                ));
            }
            if d.0.len() < 2 {
                return Err("line has fewer than 2 distinct vertices".into());
            }
            Ok(Geometry::LineString(d))
        }
        Layer::Sensors => match g {
            Geometry::Point(p) => Ok(Geometry::Point(p)),
            Geometry::MultiPoint(mut m) if m.0.len() == 1 => {
                repairs.push("single-point MultiPoint unwrapped".into());
                Ok(Geometry::Point(m.0.remove(0)))
            }
            other => Err(format!("a sensor needs a Point, got {}", type_name(&other))),
        },
        Layer::GridCells => {
            let polys = match g {
                Geometry::Polygon(p) => vec![p],
                Geometry::MultiPolygon(m) => m.0,
                other => {
                    return Err(format!(
                        "a grid cell needs a Polygon or MultiPolygon, got {}",
                        type_name(&other)
                    ))
                }
            };
            Ok(Geometry::MultiPolygon(repair_polygons(polys, repairs)?))
        }
        Layer::RiskPoints => match g {
            Geometry::Point(p) => Ok(Geometry::Point(p)),
            Geometry::Polygon(p) => {
                let mut m = repair_polygons(vec![p], repairs)?;
                if m.0.len() != 1 {
                    return Err("polygon repair left more than one part".into());
                }
                Ok(Geometry::Polygon(m.0.remove(0)))
            }
            other => Err(format!(
                "a risk point needs a Point or Polygon, got {}",
                type_name(&other)
            )),
        },
        Layer::Owners => {
            Err("owners have no geometry; import them with a mapping [owner] table".into())
        }
    }
}

/// Drops degenerate rings (fewer than 3 distinct vertices), closes open rings and orients
/// rings as RFC 7946 wants; what stays invalid (self-intersections) is rejected by the
/// model's validation with its reason.
fn repair_polygons(
    polys: Vec<Polygon<f64>>,
    repairs: &mut Vec<String>,
) -> Result<MultiPolygon<f64>, String> {
    use geo::orient::{Direction, Orient};
    let mut out = Vec::new();
    let n_in = polys.len();
    for (pi, p) in polys.into_iter().enumerate() {
        let (ext, holes) = p.into_inner();
        let fix = |r: LineString<f64>,
                   what: String,
                   repairs: &mut Vec<String>|
         -> Option<LineString<f64>> {
            let mut v = dedup_line(&r).0;
            if v.len() > 1 && v.first() != v.last() {
                v.push(v[0]);
                repairs.push(format!("{what}: ring closed"));
            }
            let mut distinct = v.clone();
            distinct.pop();
            distinct.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
            distinct.dedup();
            if distinct.len() < 3 {
                repairs.push(format!(
                    "{what}: ring with fewer than 3 distinct vertices dropped"
                ));
                return None;
            }
            Some(LineString(v))
        };
        let Some(ext) = fix(ext, format!("part {}", pi + 1), repairs) else {
            continue;
        };
        let holes: Vec<LineString<f64>> = holes
            .into_iter()
            .enumerate()
            .filter_map(|(hi, h)| fix(h, format!("part {} hole {}", pi + 1, hi + 1), repairs))
            .collect();
        let poly = Polygon::new(ext, holes);
        let oriented = poly.orient(Direction::Default);
        if oriented != poly {
            repairs.push(format!(
                "part {}: rings re-oriented (RFC 7946 winding)",
                pi + 1
            ));
        }
        out.push(oriented);
    }
    if out.is_empty() {
        return Err(format!(
            "all {n_in} polygon part(s) are degenerate (fewer than 3 distinct vertices)"
        ));
    }
    Ok(MultiPolygon(out))
}

fn type_name(g: &Geometry<f64>) -> &'static str {
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

fn gcj02_to_wgs84_geom(g: &Geometry<f64>) -> Geometry<f64> {
    use geo::MapCoords;
    g.map_coords(|c| {
        let (x, y) = gcj02_to_wgs84(c.x, c.y);
        Coord { x, y }
    })
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
    fn mapping_rules() {
        let m = Mapping::parse(
            r#"
            [fields]
            kind = { value = "gas" }
            diameter_mm = { from = "diameter_m", scale = 1000.0 }
            material = { from = "t", map = { "125 PE 100 SDR 11" = "PE100" } }
            "#,
        )
        .unwrap();
        let mut fields = Map::new();
        fields.insert("diameter_m".into(), serde_json::json!(0.125));
        fields.insert("t".into(), serde_json::json!("125 PE 100 SDR 11"));
        let row = SourceRow {
            row: 1,
            fid: None,
            fields,
            geometry: Ok(None),
        };
        assert_eq!(
            apply_rule("d", &m.fields["diameter_mm"], &row).unwrap(),
            Some(serde_json::json!(125.0))
        );
        assert_eq!(
            apply_rule("m", &m.fields["material"], &row).unwrap(),
            Some(serde_json::json!("PE100"))
        );
        assert_eq!(
            apply_rule("k", &m.fields["kind"], &row).unwrap(),
            Some(serde_json::json!("gas"))
        );
        assert!(Mapping::parse("[fields]\nkind = {}\n").is_err());
    }

    #[test]
    fn polygon_repairs_are_reported() {
        // Clockwise exterior: re-oriented, reported.
        let cw = Polygon::new(
            LineString::from(vec![(0., 0.), (0., 1.), (1., 1.), (1., 0.), (0., 0.)]),
            vec![],
        );
        let degenerate = Polygon::new(LineString::from(vec![(5., 5.), (5., 6.), (5., 5.)]), vec![]);
        let mut r = Vec::new();
        let m = repair_polygons(vec![cw, degenerate], &mut r).unwrap();
        assert_eq!(m.0.len(), 1);
        assert!(r.iter().any(|s| s.contains("re-oriented")), "{r:?}");
        assert!(r.iter().any(|s| s.contains("dropped")), "{r:?}");
    }
}
