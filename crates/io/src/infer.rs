//! Mappings made from a source file's own columns, for whoever has no mapping file yet.
//!
//! - [`match_columns`] ([`NameMatch`]): the mapping `lifeline import` uses when no
//!   `--mapping` is given. Every schema field of the target layer whose name is a column of
//!   the source (exactly, else ignoring letter case) reads that column; nothing else is
//!   guessed, so an import without a mapping does only what the names say.
//! - [`infer`] ([`Inferred`]): `lifeline import FILE --infer-mapping`, a starting mapping
//!   file for a data keeper to edit. It also guesses: the layer (from the geometry type and
//!   how many columns match), columns by common synonyms (`dn` → `diameter_mm`) and by unit
//!   suffix (`diameter_m` → `diameter_mm` with `scale = 1000.0`). Each field shows sample
//!   values of its column; the fields left to fill in are commented out with their type,
//!   unit and vocabulary.
//!
//! The fields, their types, units and vocabularies come from the layer's schema
//! ([`lifeline_model::schema`]); this module keeps no list of its own beyond the synonyms.

use crate::gdal::{describe_layer, stream_rows, GdalError, SourceInfo};
use crate::import::{FieldRule, Mapping};
use geo::Geometry;
use lifeline_model::geom::type_name;
use lifeline_model::schema::{fields, FieldInfo, Schema, Stored};
use lifeline_model::{
    GridCell, Layer, ModelError, NetworkNode, Owner, Pipeline, RiskPoint, Sensor,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Rows read for sample values and the geometry type: enough to see a column's typical
/// values, few enough that inferring from a large file stays instant.
const SAMPLE_ROWS: usize = 1000;
/// Distinct sample values shown per column.
const SAMPLES: usize = 5;
/// Characters of one sample value shown (the rest is cut, with an ellipsis).
const SAMPLE_CHARS: usize = 40;

/// Why a source could not be matched or a mapping inferred.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The file (or its layer) could not be opened or read.
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: GdalError,
    },
    /// Owners have no geometry; they come with a mapping's `[owner]` table.
    #[error("owners are not imported from a file's rows; give them in a mapping's [owner] table")]
    Owners,
}

/// How a source column was matched to a schema field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Match {
    /// The column has the field's name.
    Exact,
    /// The column has the field's name in other letter case.
    IgnoringCase,
    /// The column is the field in another unit (`diameter_m` for `diameter_mm`); its values
    /// are multiplied by `scale`.
    Unit { scale: f64 },
    /// The column has a usual name for the field ([`SYNONYMS`]).
    Synonym,
}

impl Match {
    /// What the match was, for the comments of an inferred mapping.
    fn describe(self) -> String {
        match self {
            Match::Exact => "same name".into(),
            Match::IgnoringCase => "same name, other case".into(),
            Match::Unit { scale } => format!("same quantity in another unit, times {scale}"),
            Match::Synonym => "a usual name for this field: check the values".into(),
        }
    }
}

/// Usual column names of schema fields in deliveries that were not made for Lifeline,
/// compared ignoring case: English names and abbreviations (`dn` is the European nominal
/// diameter), and the Chinese attribute names of pipeline survey tables (管径 diameter, 材质
/// material, 埋深 depth, 名称 name, 编号 code). A field's own name is not repeated here.
pub const SYNONYMS: &[(Layer, &str, &[&str])] = &[
    (
        Layer::Pipelines,
        "kind",
        &["utility", "pipe_kind", "utility_kind"],
    ),
    (
        Layer::Pipelines,
        "diameter_mm",
        &[
            "diameter",
            "dn",
            "dia",
            "nominal_diameter",
            "pipe_diameter",
            "管径",
        ],
    ),
    (
        Layer::Pipelines,
        "material",
        &["mat", "pipe_material", "材质"],
    ),
    (
        Layer::Pipelines,
        "depth_start_m",
        &["depth", "depth_start", "start_depth", "埋深", "起点埋深"],
    ),
    (
        Layer::Pipelines,
        "depth_end_m",
        &["depth_end", "end_depth", "终点埋深"],
    ),
    (Layer::Pipelines, "pressure_class", &["pressure"]),
    (Layer::Pipelines, "voltage_kv", &["voltage"]),
    (
        Layer::Pipelines,
        "year_built",
        &["year", "construction_year", "built"],
    ),
    (Layer::Pipelines, "survey_date", &["surveyed", "survey"]),
    (Layer::Pipelines, "status", &["state"]),
    (Layer::RiskPoints, "level", &["risk_level"]),
    (Layer::RiskPoints, "name", &["名称"]),
    (Layer::GridCells, "level", &["grid_level"]),
    (Layer::GridCells, "name", &["名称"]),
    (Layer::GridCells, "code", &["grid_code", "编号"]),
    (Layer::Sensors, "kind", &["sensor_kind", "sensor_type"]),
    (Layer::Sensors, "code", &["sensor_code", "编号"]),
    (Layer::Sensors, "status", &["state"]),
    // Not `from_junction`/`to_junction` for pipes' end nodes: they name nodes of the source
    // file, which are foreign keys here only once those nodes are imported with the same
    // ids; a mapping says so on purpose.
    (Layer::Nodes, "node_type", &["node_kind", "junction_type"]),
    (Layer::Nodes, "customers", &["customer_count", "households"]),
];

/// Units a schema field may be given in, each family in one base unit: a column named
/// `<stem>_<unit>` matches the field `<stem>_<schema unit>` with the ratio as its scale.
const UNITS: &[&[(&str, f64)]] = &[
    &[("mm", 0.001), ("cm", 0.01), ("m", 1.0), ("km", 1000.0)],
    &[("v", 1.0), ("kv", 1000.0)],
];

/// The scale from a value in `from` to one in `to`, when both are units of one family.
fn unit_scale(from: &str, to: &str) -> Option<f64> {
    UNITS.iter().find_map(|family| {
        let f = family.iter().find(|(u, _)| *u == from)?.1;
        let t = family.iter().find(|(u, _)| *u == to)?.1;
        // Rounded so that mm from m reads 1000, not 999.9999999999999.
        Some(((f / t) * 1e9).round() / 1e9)
    })
}

/// The first column not yet taken for which `pick` says how it matches.
fn find<'c>(
    columns: &'c [String],
    taken: &BTreeSet<&str>,
    pick: impl Fn(&str) -> Option<Match>,
) -> Option<(&'c str, Match)> {
    columns
        .iter()
        .filter(|c| !taken.contains(c.as_str()))
        .find_map(|c| pick(c).map(|m| (c.as_str(), m)))
}

/// Matches `layer`'s schema fields to `columns`, a column feeding one field at most. Stronger
/// matches win: every exact name first, then names ignoring case, then (with `guess`) unit
/// suffixes and synonyms. The result is in schema order.
fn match_fields(
    layer: Layer,
    columns: &[String],
    guess: bool,
) -> Vec<(&'static FieldInfo, Option<(String, Match)>)> {
    let schema = fields(layer);
    let mut found: Vec<Option<(String, Match)>> = vec![None; schema.len()];
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    type Rule = fn(&FieldInfo, Layer, &str) -> Option<Match>;
    let exact: Rule = |f, _, c| (c == f.name).then_some(Match::Exact);
    let case: Rule = |f, _, c| {
        c.eq_ignore_ascii_case(f.name)
            .then_some(Match::IgnoringCase)
    };
    let unit: Rule = |f, _, c| {
        let unit = f.unit?.to_ascii_lowercase();
        let stem = f.name.strip_suffix(&format!("_{unit}"))?;
        let (c_stem, c_unit) = c
            .to_ascii_lowercase()
            .rsplit_once('_')
            .map(|(s, u)| (s.to_string(), u.to_string()))?;
        (c_stem == stem && c_unit != unit)
            .then(|| unit_scale(&c_unit, &unit))
            .flatten()
            .map(|scale| Match::Unit { scale })
    };
    let synonym: Rule = |f, layer, c| {
        SYNONYMS
            .iter()
            .filter(|(l, name, _)| *l == layer && *name == f.name)
            .flat_map(|(_, _, names)| names.iter())
            .any(|s| c.to_lowercase() == s.to_lowercase())
            .then_some(Match::Synonym)
    };
    let rules: &[Rule] = if guess {
        &[exact, case, unit, synonym]
    } else {
        &[exact, case]
    };
    for rule in rules {
        for (i, f) in schema.iter().enumerate() {
            if found[i].is_some() {
                continue;
            }
            if let Some((c, m)) = find(columns, &taken, |c| rule(f, layer, c)) {
                taken.insert(c);
                found[i] = Some((c.to_string(), m));
            }
        }
    }
    schema.iter().copied().zip(found).collect()
}

/// The mapping that reads `columns` into the fields in `matched`.
fn mapping_of<'a>(
    layer: Layer,
    matched: impl Iterator<Item = (&'a FieldInfo, &'a (String, Match))>,
) -> Mapping {
    let fields = matched
        .map(|(f, (c, m))| {
            let rule = FieldRule {
                from: Some(c.clone()),
                value: None,
                scale: match m {
                    Match::Unit { scale } => Some(*scale),
                    _ => None,
                },
                map: BTreeMap::new(),
            };
            (f.name.to_string(), rule)
        })
        .collect();
    Mapping {
        layer: Some(layer),
        source_layer: None,
        source_crs: None,
        pipeline: None,
        gcj02: false,
        where_: None,
        fields,
        owner: None,
    }
}

/// How a source's columns meet a layer's schema by name alone.
#[derive(Debug, Clone)]
pub struct NameMatch {
    pub layer: Layer,
    /// Schema fields with a column of their name, and that column, in schema order.
    pub mapped: Vec<(&'static FieldInfo, String)>,
    /// Schema fields no column is named after.
    pub missing: Vec<&'static FieldInfo>,
}

impl NameMatch {
    /// Matches `layer`'s schema fields to `columns` by exact name, else ignoring case.
    pub fn new(layer: Layer, columns: &[String]) -> NameMatch {
        let mut mapped = Vec::new();
        let mut missing = Vec::new();
        for (f, c) in match_fields(layer, columns, false) {
            match c {
                Some((c, _)) => mapped.push((f, c)),
                None => missing.push(f),
            }
        }
        NameMatch {
            layer,
            mapped,
            missing,
        }
    }

    /// The mapping: each matched field reads its column as it is.
    pub fn mapping(&self) -> Mapping {
        let pairs: Vec<(&FieldInfo, (String, Match))> = self
            .mapped
            .iter()
            .map(|(f, c)| (*f, (c.clone(), Match::Exact)))
            .collect();
        mapping_of(self.layer, pairs.iter().map(|(f, c)| (*f, c)))
    }
}

/// Matches the columns of `path`'s first layer to `layer`'s schema by name (see
/// [`NameMatch`]).
pub fn match_columns(path: &Path, layer: Layer) -> Result<NameMatch, InferError> {
    if layer == Layer::Owners {
        return Err(InferError::Owners);
    }
    let info = describe_layer(path, None, None).map_err(|source| InferError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(NameMatch::new(layer, &info.field_names))
}

/// The allowed values of a vocabulary field (`kind`, `status`, …), `None` for other
/// fields. The vocabulary lives in the schema row's codec, whose setter refuses a value
/// outside it with [`ModelError::UnknownValue`] naming every allowed one; asking it about
/// an empty text reads them from the one place they are written.
pub fn vocabulary(layer: Layer, name: &str) -> Option<Vec<String>> {
    fn probe<R: Schema>(name: &str, geometry: Option<Geometry<f64>>) -> Option<Vec<String>> {
        let a = R::ATTRIBUTES.iter().find(|a| a.info.name == name)?;
        let mut r = R::blank(1, geometry).ok()?;
        match (a.set)(&mut r, Stored::Text(String::new())) {
            Err(ModelError::UnknownValue { allowed, .. }) => {
                Some(allowed.split(", ").map(str::to_string).collect())
            }
            _ => None,
        }
    }
    let point = || Some(Geometry::Point(geo::Point::new(0.0, 0.0)));
    match layer {
        Layer::Pipelines => probe::<Pipeline>(
            name,
            Some(Geometry::LineString(geo::LineString::from(vec![
                (0.0, 0.0),
                (1.0, 1.0),
            ]))),
        ),
        Layer::RiskPoints => probe::<RiskPoint>(name, point()),
        Layer::GridCells => probe::<GridCell>(
            name,
            Some(Geometry::MultiPolygon(geo::MultiPolygon(vec![
                geo::Polygon::new(
                    geo::LineString::from(vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)]),
                    vec![],
                ),
            ]))),
        ),
        Layer::Sensors => probe::<Sensor>(name, point()),
        Layer::Nodes => probe::<NetworkNode>(name, point()),
        Layer::Owners => probe::<Owner>(name, None),
    }
}

/// One schema field of an inferred mapping.
#[derive(Debug, Clone)]
pub struct FieldGuess {
    pub field: &'static FieldInfo,
    /// The column it reads and how it matched, if one did.
    pub column: Option<(String, Match)>,
    /// Its vocabulary, for vocabulary fields.
    pub vocabulary: Option<Vec<String>>,
}

/// A starting mapping inferred from a source file (see [`infer`]); [`Inferred::to_toml`]
/// writes it as a commented mapping file, [`Inferred::mapping`] is what that file parses
/// to.
#[derive(Debug, Clone)]
pub struct Inferred {
    /// The source file.
    pub source: PathBuf,
    /// The source layer read.
    pub source_layer: String,
    /// The target layer.
    pub layer: Layer,
    /// Why this layer, when it was guessed (`None` when it was given).
    pub layer_guess: Option<String>,
    /// The source CRS as `EPSG:n`, else WKT, if the file declares one.
    pub crs: Option<String>,
    /// The CRS's name.
    pub crs_name: Option<String>,
    /// The geometry type of the first sampled geometry.
    pub geometry: Option<&'static str>,
    /// Rows sampled.
    pub sampled: usize,
    /// Up to [`SAMPLES`] distinct values of each column, shown as text.
    pub samples: BTreeMap<String, Vec<String>>,
    /// The layer's schema fields in schema order.
    pub fields: Vec<FieldGuess>,
    /// Source columns no field reads, in source order.
    pub unmatched: Vec<String>,
}

/// The layers whose geometry a source geometry type can become (the importer's repairs
/// included: a single-part multi-geometry is unwrapped).
fn layers_for(g: &Geometry<f64>) -> &'static [Layer] {
    match g {
        Geometry::Point(_) | Geometry::MultiPoint(_) => {
            &[Layer::Sensors, Layer::RiskPoints, Layer::Nodes]
        }
        Geometry::LineString(_) | Geometry::MultiLineString(_) | Geometry::Line(_) => {
            &[Layer::Pipelines]
        }
        Geometry::Polygon(_) | Geometry::Rect(_) | Geometry::Triangle(_) => {
            &[Layer::GridCells, Layer::RiskPoints]
        }
        Geometry::MultiPolygon(_) => &[Layer::GridCells],
        Geometry::GeometryCollection(_) => &Layer::SPATIAL,
    }
}

/// A sample value as text: strings quoted (JSON escapes), long ones cut.
fn show(v: &Value) -> Option<String> {
    let s = match v {
        Value::Null => return None,
        Value::String(s) if s.trim().is_empty() => return None,
        Value::String(s) => {
            let cut: String = s.chars().take(SAMPLE_CHARS).collect();
            let more = if cut.len() < s.len() { "…" } else { "" };
            format!("{}{more}", Value::String(cut))
        }
        other => other.to_string(),
    };
    Some(s)
}

/// Chooses the layer for a source with this geometry and these columns: among the layers
/// the geometry fits, the one with the most fields matched (the first on a tie).
fn guess_layer(geometry: Option<&Geometry<f64>>, columns: &[String]) -> (Layer, String) {
    let candidates = geometry.map_or(&Layer::SPATIAL[..], layers_for);
    let scored: Vec<(Layer, usize)> = candidates
        .iter()
        .map(|l| {
            let n = match_fields(*l, columns, true)
                .iter()
                .filter(|(_, c)| c.is_some())
                .count();
            (*l, n)
        })
        .collect();
    let (layer, n) = scored
        .iter()
        .copied()
        .fold(None, |best: Option<(Layer, usize)>, (l, n)| match best {
            Some((_, b)) if b >= n => best,
            _ => Some((l, n)),
        })
        .unwrap_or((Layer::Pipelines, 0));
    let others: Vec<String> = scored
        .iter()
        .filter(|(l, _)| *l != layer)
        .map(|(l, n)| format!("{l} ({n})"))
        .collect();
    let mut why = match geometry {
        Some(g) => format!(
            "guessed from the {} geometry and {n} matching column(s)",
            type_name(g)
        ),
        None => format!("guessed from {n} matching column(s); no geometry was sampled"),
    };
    if !others.is_empty() {
        why.push_str(&format!("; other candidates: {}", others.join(", ")));
    }
    (layer, why)
}

/// Infers a starting mapping for `path` (its layer `source_layer`, else the first): the
/// target `layer` (guessed when `None`), the CRS, and each schema field's column, reading
/// up to [`SAMPLE_ROWS`] rows for sample values and the geometry type.
pub fn infer(
    path: &Path,
    layer: Option<Layer>,
    source_layer: Option<&str>,
) -> Result<Inferred, InferError> {
    if layer == Some(Layer::Owners) {
        return Err(InferError::Owners);
    }
    let read = |source| InferError::Read {
        path: path.to_path_buf(),
        source,
    };
    let info: SourceInfo = describe_layer(path, source_layer, None).map_err(read)?;
    let mut samples: BTreeMap<String, Vec<String>> = info
        .field_names
        .iter()
        .map(|c| (c.clone(), Vec::new()))
        .collect();
    let mut geometry: Option<Geometry<f64>> = None;
    let mut sampled = 0usize;
    stream_rows(
        path,
        Some(&info.name),
        None,
        None,
        None,
        SAMPLE_ROWS,
        &mut |rows| {
            for row in rows {
                sampled += 1;
                if geometry.is_none() {
                    if let Ok(Some(g)) = row.geometry {
                        geometry = Some(g);
                    }
                }
                for c in &info.field_names {
                    let (Some(v), Some(seen)) =
                        (row.fields.get(c).and_then(show), samples.get_mut(c))
                    else {
                        continue;
                    };
                    if seen.len() < SAMPLES && !seen.contains(&v) {
                        seen.push(v);
                    }
                }
            }
            // One chunk is the sample.
            false
        },
    )
    .map_err(read)?;
    let (layer, layer_guess) = match layer {
        Some(l) => (l, None),
        None => {
            let (l, why) = guess_layer(geometry.as_ref(), &info.field_names);
            (l, Some(why))
        }
    };
    let fields: Vec<FieldGuess> = match_fields(layer, &info.field_names, true)
        .into_iter()
        .map(|(field, column)| FieldGuess {
            field,
            column,
            vocabulary: vocabulary(layer, field.name),
        })
        .collect();
    let used: BTreeSet<&str> = fields
        .iter()
        .filter_map(|f| f.column.as_ref().map(|(c, _)| c.as_str()))
        .collect();
    let unmatched = info
        .field_names
        .iter()
        .filter(|c| !used.contains(c.as_str()))
        .cloned()
        .collect();
    Ok(Inferred {
        source: path.to_path_buf(),
        source_layer: info.name,
        layer,
        layer_guess,
        crs: info.crs,
        crs_name: info.crs_name,
        geometry: geometry.as_ref().map(type_name),
        sampled,
        samples,
        fields,
        unmatched,
    })
}

/// A comment line: TOML comments may hold no control characters but tab, so any other is
/// shown as U+FFFD.
fn comment(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    format!("# {clean}\n")
}

/// A TOML basic string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl Inferred {
    /// The source's CRS as an EPSG code, if it has one.
    fn epsg(&self) -> Option<&str> {
        self.crs.as_deref().filter(|c| c.starts_with("EPSG:"))
    }

    /// The mapping the text of [`Inferred::to_toml`] parses to.
    pub fn mapping(&self) -> Mapping {
        let mut m = mapping_of(
            self.layer,
            self.fields
                .iter()
                .filter_map(|f| f.column.as_ref().map(|c| (f.field, c))),
        );
        m.source_layer = Some(self.source_layer.clone());
        m.source_crs = self.epsg().map(str::to_string);
        m
    }

    /// Schema fields that are required and read no column yet.
    pub fn required_unmatched(&self) -> Vec<&'static str> {
        self.fields
            .iter()
            .filter(|f| f.field.required && f.column.is_none())
            .map(|f| f.field.name)
            .collect()
    }

    /// The mapping as a TOML file with comments for the data keeper: the guesses say they
    /// are guesses, each matched field shows how it matched and its column's sample
    /// values, the unmatched fields are commented out with their type, unit, vocabulary and
    /// description, and the unread columns are listed at the end.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out.push_str(&comment(&format!(
            "Mapping inferred by `lifeline import --infer-mapping` from {} ({} sample rows{}).",
            self.source.display(),
            self.sampled,
            self.geometry
                .map(|g| format!(", {g} geometry"))
                .unwrap_or_default()
        )));
        out.push_str(&comment(
            "A starting point: check every line, fill in the commented-out fields, then \
             import with --mapping.",
        ));
        out.push_str(&format!("source_layer = {}\n", quoted(&self.source_layer)));
        if let Some(why) = &self.layer_guess {
            out.push_str(&comment(&format!("The layer was {why}: check it.")));
        }
        out.push_str(&format!("layer = {}\n", quoted(self.layer.as_str())));
        match (self.epsg(), &self.crs) {
            (Some(code), _) => {
                out.push_str(&comment(&format!(
                    "The file's CRS: {}.",
                    self.crs_name.as_deref().unwrap_or("(unnamed)")
                )));
                out.push_str(&format!("source_crs = {}\n", quoted(code)));
            }
            (None, Some(_)) => {
                out.push_str(&comment(&format!(
                    "The file's CRS ({}) has no EPSG code; the importer uses it as it is. Set \
                     source_crs (an EPSG code or a PROJ string) to override it.",
                    self.crs_name.as_deref().unwrap_or("unnamed")
                )));
            }
            (None, None) => {
                out.push_str(&comment(
                    "No CRS was found in the file: give the source CRS (an EPSG code or a PROJ \
                     string), e.g.",
                ));
                out.push_str(&comment("source_crs = \"EPSG:4545\""));
            }
        }
        let required = self.required_unmatched();
        out.push_str("\n[fields]\n");
        if !required.is_empty() {
            out.push_str(&comment(&format!(
                "Required and not yet mapped (every row is rejected until they are): {}.",
                required.join(", ")
            )));
        }
        for f in &self.fields {
            out.push('\n');
            let info = f.field;
            let mut about = info.column.type_name().to_string();
            if let Some(u) = info.unit {
                about.push_str(&format!(" in {u}"));
            }
            if info.required {
                about.push_str(", required");
            }
            if let Some(r) = info.refers_to {
                about.push_str(&format!(", an id of {}", r.layer));
            }
            match &f.column {
                Some((c, m)) => {
                    out.push_str(&comment(&format!(
                        "{}: {about}; from column {} ({}).",
                        info.name,
                        quoted(c),
                        m.describe()
                    )));
                    let seen = self.samples.get(c).map(Vec::as_slice).unwrap_or_default();
                    if seen.is_empty() {
                        out.push_str(&comment("samples: none (empty in the rows read)"));
                    } else {
                        out.push_str(&comment(&format!("samples: {}", seen.join(", "))));
                    }
                    if let Some(v) = &f.vocabulary {
                        let outside: Vec<&String> = seen
                            .iter()
                            // Samples are shown as JSON; a number or a cut string is
                            // never a vocabulary word.
                            .filter(|s| {
                                serde_json::from_str::<String>(s)
                                    .map_or(true, |raw| !v.contains(&raw))
                            })
                            .collect();
                        out.push_str(&comment(&format!("one of: {}", v.join(", "))));
                        if !outside.is_empty() {
                            out.push_str(&comment(&format!(
                                "values outside the vocabulary need a `map = {{ \"source value\" \
                                 = \"model value\" }}`: {}",
                                outside
                                    .iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )));
                        }
                    }
                    let scale = match m {
                        Match::Unit { scale } => format!(", scale = {scale:?}"),
                        _ => String::new(),
                    };
                    out.push_str(&format!(
                        "{} = {{ from = {}{scale} }}\n",
                        info.name,
                        quoted(c)
                    ));
                }
                None => {
                    out.push_str(&comment(&format!(
                        "{}: {about}; no column found ({})",
                        info.name, info.description
                    )));
                    if let Some(v) = &f.vocabulary {
                        out.push_str(&comment(&format!("one of: {}", v.join(", "))));
                    }
                    out.push_str(&comment(&format!(
                        "{} = {{ from = \"COLUMN\" }}   or   {{ value = … }}",
                        info.name
                    )));
                }
            }
        }
        if !self.unmatched.is_empty() {
            out.push('\n');
            out.push_str(&comment(
                "Source columns no field reads (the record id is `id = { from = \"COLUMN\" }`; \
                 store-assigned without it):",
            ));
            for c in &self.unmatched {
                let seen = self.samples.get(c).map(Vec::as_slice).unwrap_or_default();
                out.push_str(&comment(&format!("  {}: {}", quoted(c), seen.join(", "))));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_match_exactly_then_ignoring_case_and_nothing_else() {
        let m = NameMatch::new(
            Layer::Pipelines,
            &cols(&["KIND", "kind", "Material", "dn", "diameter_m", "status"]),
        );
        let mapped: Vec<(&str, &str)> =
            m.mapped.iter().map(|(f, c)| (f.name, c.as_str())).collect();
        // `kind` takes the exact column although `KIND` comes first; no synonyms, no units.
        assert_eq!(
            mapped,
            vec![
                ("kind", "kind"),
                ("material", "Material"),
                ("status", "status")
            ]
        );
        let schema = fields(Layer::Pipelines);
        assert_eq!(m.mapped.len() + m.missing.len(), schema.len());
        assert!(m.missing.iter().any(|f| f.name == "owner_id"));
        let mapping = m.mapping();
        assert_eq!(mapping.layer, Some(Layer::Pipelines));
        assert_eq!(mapping.fields["material"].from.as_deref(), Some("Material"));
        assert_eq!(mapping.fields.len(), 3);
    }

    #[test]
    fn guesses_take_units_and_synonyms_after_names() {
        let matched = match_fields(
            Layer::Pipelines,
            &cols(&["diameter_m", "DEPTH", "depth_end_cm", "材质", "year"]),
            true,
        );
        let get = |n: &str| {
            matched
                .iter()
                .find(|(f, _)| f.name == n)
                .and_then(|(_, c)| c.clone())
        };
        assert_eq!(
            get("diameter_mm"),
            Some(("diameter_m".into(), Match::Unit { scale: 1000.0 }))
        );
        assert_eq!(
            get("depth_end_m"),
            Some(("depth_end_cm".into(), Match::Unit { scale: 0.01 }))
        );
        assert_eq!(get("depth_start_m"), Some(("DEPTH".into(), Match::Synonym)));
        assert_eq!(get("material"), Some(("材质".into(), Match::Synonym)));
        assert_eq!(get("year_built"), Some(("year".into(), Match::Synonym)));
        assert_eq!(get("kind"), None);
    }

    #[test]
    fn a_column_feeds_one_field() {
        // `depth` is a synonym of `depth_start_m` only, and an exact name is never taken
        // by another field's guess.
        let matched = match_fields(Layer::Pipelines, &cols(&["depth", "depth_start_m"]), true);
        let froms: Vec<&str> = matched
            .iter()
            .filter_map(|(_, c)| c.as_ref().map(|(c, _)| c.as_str()))
            .collect();
        assert_eq!(froms, vec!["depth_start_m"]);
    }

    #[test]
    fn unit_scales() {
        assert_eq!(unit_scale("m", "mm"), Some(1000.0));
        assert_eq!(unit_scale("cm", "m"), Some(0.01));
        assert_eq!(unit_scale("v", "kv"), Some(0.001));
        assert_eq!(unit_scale("m", "kv"), None);
    }

    #[test]
    fn vocabularies_come_from_the_schema() {
        let kinds = vocabulary(Layer::Pipelines, "kind").unwrap();
        let want: Vec<String> = lifeline_model::PipeKind::ALL
            .iter()
            .map(|k| k.as_str().to_string())
            .collect();
        assert_eq!(kinds, want);
        assert!(vocabulary(Layer::Pipelines, "material").is_none());
        assert!(vocabulary(Layer::Pipelines, "diameter_mm").is_none());
        assert!(vocabulary(Layer::Sensors, "status").is_some());
        assert!(vocabulary(Layer::GridCells, "level").is_some());
    }

    #[test]
    fn layer_guess_follows_the_geometry_then_the_columns() {
        let point = Geometry::Point(geo::Point::new(1.0, 2.0));
        let (l, why) = guess_layer(Some(&point), &cols(&["responsible_unit", "level", "name"]));
        assert_eq!(l, Layer::RiskPoints, "{why}");
        let (l, _) = guess_layer(Some(&point), &cols(&["sensor_type", "code"]));
        assert_eq!(l, Layer::Sensors);
        let line = Geometry::LineString(geo::LineString::from(vec![(0.0, 0.0), (1.0, 1.0)]));
        let (l, why) = guess_layer(Some(&line), &cols(&["level", "name"]));
        assert_eq!(l, Layer::Pipelines);
        assert!(why.contains("LineString"), "{why}");
    }

    fn inferred(columns: &[&str], crs: Option<&str>) -> Inferred {
        let layer = Layer::Pipelines;
        let columns = cols(columns);
        let samples = columns
            .iter()
            .map(|c| (c.clone(), vec!["\"a\\u0001b\"".to_string(), "12.5".into()]))
            .collect();
        let fields: Vec<FieldGuess> = match_fields(layer, &columns, true)
            .into_iter()
            .map(|(field, column)| FieldGuess {
                field,
                column,
                vocabulary: vocabulary(layer, field.name),
            })
            .collect();
        Inferred {
            source: PathBuf::from("survey \"2024\".gpkg"),
            source_layer: "pipes \"main\"".into(),
            layer,
            layer_guess: Some("guessed from a test".into()),
            crs: crs.map(str::to_string),
            crs_name: Some("CGCS2000 / 3-degree Gauss-Kruger CM 105E\u{7f}".into()),
            geometry: Some("LineString"),
            sampled: 2,
            samples,
            fields,
            unmatched: vec!["odd \"name\"".into()],
        }
    }

    #[test]
    fn the_text_parses_to_the_mapping() {
        for crs in [Some("EPSG:4545"), Some("PROJCRS[\"x\"]"), None] {
            let inf = inferred(
                &["kind", "DN", "material", "depth_end_cm", "odd \"name\""],
                crs,
            );
            let text = inf.to_toml();
            let parsed = Mapping::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let want = inf.mapping();
            assert_eq!(parsed.layer, want.layer);
            assert_eq!(parsed.source_layer, want.source_layer);
            assert_eq!(parsed.source_crs, want.source_crs);
            assert_eq!(
                parsed.fields.keys().collect::<Vec<_>>(),
                want.fields.keys().collect::<Vec<_>>()
            );
            for (name, rule) in &want.fields {
                assert_eq!(parsed.fields[name].from, rule.from, "{name}");
                assert_eq!(parsed.fields[name].scale, rule.scale, "{name}");
            }
            assert_eq!(parsed.fields["depth_end_m"].scale, Some(0.01));
            // The unmatched required fields are listed, the vocabulary of `kind` shown.
            assert!(text.contains("owner_id = { from = \"COLUMN\" }"), "{text}");
            assert!(text.contains(&pipe_kinds()), "{text}");
            // `kind`'s samples are no pipe kinds; the control character in the CRS name
            // is not written into the comment.
            assert!(text.contains("values outside the vocabulary"), "{text}");
            assert!(!text.contains('\u{7f}'), "{text}");
        }
    }

    /// The pipe kinds as the vocabulary line shows them.
    fn pipe_kinds() -> String {
        lifeline_model::PipeKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
