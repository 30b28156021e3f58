//! The layer schemas: one table per layer, the one place a layer's attributes are written.
//!
//! Each row of a table ([`Attribute`]) gives an attribute's name, its column type, unit,
//! nullability, the least role that may read it, what it refers to, a description, and
//! how to read it from and write it into the model struct. Everything that used to repeat
//! the fields reads them here:
//! - `/layers`, the OGC queryables and properties, and the GeoJSON writer;
//! - the tile attributes (their types and values; which zoom and role carries them is the
//!   tile policy in `data/tiles.toml`, checked against these tables at start-up);
//! - the importer's mapping targets and the exporters;
//! - both stores' column lists and row codecs (bind, COPY and decode are table-driven);
//! - the field lists in the docs (`docs/layers.md` is checked against them by a test).
//!
//! The order of a table is the serde order of its struct (so GeoJSON written from the table
//! equals serde's) and the column order of both stores' statements. Adding an attribute to
//! a layer means the struct field, one row here and one migration per store; nothing else.
//! A test compares every table with the columns of a migrated PostGIS database and a
//! migrated GeoPackage (`tests/schema_columns.rs`).

use crate::{
    GridCell, Layer, ModelError, NetworkNode, Owner, Pipeline, Record, RiskPoint, Role, Sensor,
};
use chrono::NaiveDate;
use geo::Geometry;
use serde_json::{json, Value};

/// How an attribute is stored: the column type of both stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    /// Text (PostgreSQL `text`, GeoPackage `TEXT`).
    Text,
    /// A double (PostgreSQL `double precision`, GeoPackage `REAL`).
    Real,
    /// A 64-bit integer (PostgreSQL `bigint`, GeoPackage `INTEGER`).
    BigInt,
    /// A 32-bit integer (PostgreSQL `integer`, GeoPackage `INTEGER`).
    Int,
    /// A calendar day (PostgreSQL `date`, GeoPackage `DATE` as `YYYY-MM-DD`).
    Date,
}

impl Column {
    /// The type name of `/layers` and the OGC queryables.
    pub fn type_name(self) -> &'static str {
        match self {
            Column::Text => "string",
            Column::Real => "number",
            Column::BigInt | Column::Int => "integer",
            Column::Date => "date",
        }
    }

    /// Numbers (real or integer), as opposed to text and dates.
    pub fn is_numeric(self) -> bool {
        matches!(self, Column::Real | Column::BigInt | Column::Int)
    }
}

/// A foreign key: the layer an attribute's value is the id of, and what the referenced
/// record is called in messages ("owner 99 does not exist").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    pub layer: Layer,
    pub noun: &'static str,
}

/// What is known about one attribute, whatever record type it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// The attribute's name in the API, the files and both stores.
    pub name: &'static str,
    pub column: Column,
    /// The unit of a number (`mm`, `m`, `cm`, `kV`), if it has one.
    pub unit: Option<&'static str>,
    /// `NOT NULL` in both stores; required in the API.
    pub required: bool,
    /// The least role that may read it (map and OGC responses, tiles, queryables).
    pub role: Role,
    /// The layer it refers to, for foreign keys.
    pub refers_to: Option<Reference>,
    pub description: &'static str,
}

/// One attribute value, borrowed from a record.
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

/// An owned value read from a store, to be set into a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Null,
    Text(String),
    Real(f64),
    Int(i64),
    Date(NaiveDate),
}

/// One row of a layer's table: the attribute's facts and how to read and write it in the
/// record type `R`.
pub struct Attribute<R> {
    pub info: FieldInfo,
    /// The attribute's value in a record.
    pub get: for<'a> fn(&'a R) -> Field<'a>,
    /// Sets the attribute from a stored value (a wrong type or a value outside a
    /// vocabulary is an error naming the attribute).
    pub set: fn(&mut R, Stored) -> Result<(), ModelError>,
}

/// A record type with a schema table.
pub trait Schema: Sized + Clone + 'static {
    const LAYER: Layer;
    /// The attributes, in serde and column order (the id and the geometry are not in it).
    const ATTRIBUTES: &'static [Attribute<Self>];
    fn id(&self) -> i64;
    /// The geometry (`None` for owners).
    fn geometry(&self) -> Option<Geometry<f64>>;
    /// A record with this id and geometry whose attributes a decoder then sets one by
    /// one. A geometry of the wrong type is an error naming what was expected.
    fn blank(id: i64, geometry: Option<Geometry<f64>>) -> Result<Self, ModelError>;
    fn into_record(self) -> Record;
    fn from_record(record: &Record) -> Option<&Self>;
}

/// Reads a record from its id, geometry and attribute values in table order: `value(i, f)`
/// reads attribute `i`, and `invalid` turns a value the model refuses into the caller's
/// error (with the attribute's index; `None` for the geometry).
pub fn decode<R: Schema, E>(
    id: i64,
    geometry: Option<Geometry<f64>>,
    mut value: impl FnMut(usize, &FieldInfo) -> Result<Stored, E>,
    invalid: impl Fn(Option<usize>, ModelError) -> E,
) -> Result<R, E> {
    let mut r = R::blank(id, geometry).map_err(|e| invalid(None, e))?;
    for (i, a) in R::ATTRIBUTES.iter().enumerate() {
        let v = value(i, &a.info)?;
        (a.set)(&mut r, v).map_err(|e| invalid(Some(i), e))?;
    }
    Ok(r)
}

/// The facts of a layer's attributes, in table order (gathered once per layer: importers and
/// feature writers ask per value).
pub fn fields(layer: Layer) -> &'static [&'static FieldInfo] {
    fn infos<R: Schema>() -> Vec<&'static FieldInfo> {
        R::ATTRIBUTES.iter().map(|a| &a.info).collect()
    }
    static TABLES: std::sync::OnceLock<[Vec<&'static FieldInfo>; 6]> = std::sync::OnceLock::new();
    let tables = TABLES.get_or_init(|| {
        [
            infos::<Pipeline>(),
            infos::<RiskPoint>(),
            infos::<GridCell>(),
            infos::<Sensor>(),
            infos::<NetworkNode>(),
            infos::<Owner>(),
        ]
    });
    &tables[match layer {
        Layer::Pipelines => 0,
        Layer::RiskPoints => 1,
        Layer::GridCells => 2,
        Layer::Sensors => 3,
        Layer::Nodes => 4,
        Layer::Owners => 5,
    }]
}

/// The facts of one attribute of a layer, `None` if the layer has no such attribute.
pub fn field(layer: Layer, name: &str) -> Option<&'static FieldInfo> {
    fields(layer).iter().find(|f| f.name == name).copied()
}

/// The attribute `name` of a record (`id` included); [`Field::Null`] for an unknown name.
pub fn value<'r>(record: &'r Record, name: &str) -> Field<'r> {
    fn get<'r, R: Schema>(r: &'r R, name: &str) -> Field<'r> {
        if name == "id" {
            return Field::I64(r.id());
        }
        R::ATTRIBUTES
            .iter()
            .find(|a| a.info.name == name)
            .map_or(Field::Null, |a| (a.get)(r))
    }
    match record {
        Record::Pipeline(r) => get(r, name),
        Record::RiskPoint(r) => get(r, name),
        Record::GridCell(r) => get(r, name),
        Record::Sensor(r) => get(r, name),
        Record::Node(r) => get(r, name),
        Record::Owner(r) => get(r, name),
    }
}

/// Every attribute of a record with its value, in table order.
pub fn values(record: &Record) -> Vec<(&'static FieldInfo, Field<'_>)> {
    fn all<R: Schema>(r: &R) -> Vec<(&'static FieldInfo, Field<'_>)> {
        R::ATTRIBUTES
            .iter()
            .map(|a| (&a.info, (a.get)(r)))
            .collect()
    }
    match record {
        Record::Pipeline(r) => all(r),
        Record::RiskPoint(r) => all(r),
        Record::GridCell(r) => all(r),
        Record::Sensor(r) => all(r),
        Record::Node(r) => all(r),
        Record::Owner(r) => all(r),
    }
}

/// The GeoJSON geometry type(s) of a layer's features (null for the owners table).
pub fn geometry_type(layer: Layer) -> Value {
    match layer {
        Layer::Pipelines => json!("LineString"),
        Layer::RiskPoints => json!(["Point", "Polygon"]),
        Layer::GridCells => json!("MultiPolygon"),
        Layer::Sensors | Layer::Nodes => json!("Point"),
        Layer::Owners => Value::Null,
    }
}

/// The role needed to read an attribute of a layer (viewer for a name the layer lacks, so
/// that callers that check names first decide what an unknown name means).
pub fn attribute_role(layer: Layer, name: &str) -> Role {
    field(layer, name).map_or(Role::Viewer, |f| f.role)
}

/// The field lists of `docs/layers.md`: one Markdown table per layer, from the schema (a
/// test keeps the file equal to this).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Layers and their attributes\n\n\
         Generated from the layer schemas (`crates/model/src/schema.rs`); do not edit by hand. \
         `cargo test -p lifeline-model docs_layers` checks it, and rewrites it when run with \
         `LIFELINE_BLESS=1`.\n\n\
         Every layer also has `id` (a positive integer, the GeoPackage fid) and, except owners, \
         its geometry in CGCS2000 lon/lat (EPSG:4490). *Role* is the least role that may read \
         the attribute in map, OGC and tile responses; which zoom carries it in tiles is \
         `data/tiles.toml`.\n",
    );
    for layer in Layer::ALL {
        out.push_str(&format!("\n## `{layer}`\n\n"));
        if let Some(g) = geometry_type(*layer).as_str() {
            out.push_str(&format!("Geometry: {g}.\n\n"));
        } else if let Some(gs) = geometry_type(*layer).as_array() {
            let names: Vec<&str> = gs.iter().filter_map(Value::as_str).collect();
            out.push_str(&format!("Geometry: {}.\n\n", names.join(" or ")));
        } else {
            out.push_str("No geometry (a GeoPackage attributes table).\n\n");
        }
        out.push_str("| Attribute | Type | Unit | Required | Role | Refers to | Description |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for f in fields(*layer) {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} | {} |\n",
                f.name,
                f.column.type_name(),
                f.unit.unwrap_or(""),
                if f.required { "yes" } else { "" },
                f.role,
                f.refers_to
                    .map_or(String::new(), |r| format!("`{}`", r.layer)),
                f.description,
            ));
        }
    }
    out
}

/// A closed vocabulary stored as its string (every `string_enum!` is one).
pub trait Vocabulary: Copy + std::str::FromStr<Err = ModelError> + 'static {
    fn as_str(self) -> &'static str;
}

/// The codecs between a Rust field type and [`Field`]/[`Stored`], one module per type;
/// the `attribute!` rows pick one by name. Each knows its column type and whether the
/// field is required.
mod conv {
    use super::{Column, Field, ModelError, Stored, Vocabulary};
    use chrono::NaiveDate;

    fn wrong(name: &str, want: &str, got: &Stored) -> ModelError {
        ModelError::invalid(name, format!("stored value {got:?} is not {want}"))
    }

    fn missing(name: &str) -> ModelError {
        ModelError::invalid(name, "is required but stored as NULL")
    }

    pub mod text {
        use super::*;
        pub const COLUMN: Column = Column::Text;
        pub const REQUIRED: bool = true;
        pub fn get(v: &str) -> Field<'_> {
            Field::Str(v)
        }
        pub fn set(name: &str, v: Stored) -> Result<String, ModelError> {
            super::opt_text::set(name, v)?.ok_or_else(|| missing(name))
        }
    }

    pub mod opt_text {
        use super::*;
        pub const COLUMN: Column = Column::Text;
        pub const REQUIRED: bool = false;
        pub fn get(v: &Option<String>) -> Field<'_> {
            v.as_deref().map_or(Field::Null, Field::Str)
        }
        pub fn set(name: &str, v: Stored) -> Result<Option<String>, ModelError> {
            match v {
                Stored::Null => Ok(None),
                Stored::Text(s) => Ok(Some(s)),
                other => Err(wrong(name, "text", &other)),
            }
        }
    }

    pub mod vocab {
        use super::*;
        pub const COLUMN: Column = Column::Text;
        pub const REQUIRED: bool = true;
        pub fn get<E: Vocabulary>(v: &E) -> Field<'static> {
            Field::Str(v.as_str())
        }
        pub fn set<E: Vocabulary>(name: &str, v: Stored) -> Result<E, ModelError> {
            super::opt_vocab::set(name, v)?.ok_or_else(|| missing(name))
        }
    }

    pub mod opt_vocab {
        use super::*;
        pub const COLUMN: Column = Column::Text;
        pub const REQUIRED: bool = false;
        pub fn get<E: Vocabulary>(v: &Option<E>) -> Field<'static> {
            v.map_or(Field::Null, |e| Field::Str(e.as_str()))
        }
        pub fn set<E: Vocabulary>(name: &str, v: Stored) -> Result<Option<E>, ModelError> {
            match v {
                Stored::Null => Ok(None),
                Stored::Text(s) => s.parse().map(Some),
                other => Err(wrong(name, "text", &other)),
            }
        }
    }

    pub mod real {
        use super::*;
        pub const COLUMN: Column = Column::Real;
        pub const REQUIRED: bool = false;
        pub fn get(v: &Option<f64>) -> Field<'static> {
            v.map_or(Field::Null, Field::F64)
        }
        pub fn set(name: &str, v: Stored) -> Result<Option<f64>, ModelError> {
            match v {
                Stored::Null => Ok(None),
                Stored::Real(f) => Ok(Some(f)),
                // SQLite stores a whole REAL written by another tool as an INTEGER.
                Stored::Int(i) => Ok(Some(i as f64)),
                other => Err(wrong(name, "a number", &other)),
            }
        }
    }

    pub mod bigint {
        use super::*;
        pub const COLUMN: Column = Column::BigInt;
        pub const REQUIRED: bool = true;
        pub fn get(v: &i64) -> Field<'static> {
            Field::I64(*v)
        }
        pub fn set(name: &str, v: Stored) -> Result<i64, ModelError> {
            super::opt_bigint::set(name, v)?.ok_or_else(|| missing(name))
        }
    }

    pub mod opt_bigint {
        use super::*;
        pub const COLUMN: Column = Column::BigInt;
        pub const REQUIRED: bool = false;
        pub fn get(v: &Option<i64>) -> Field<'static> {
            v.map_or(Field::Null, Field::I64)
        }
        pub fn set(name: &str, v: Stored) -> Result<Option<i64>, ModelError> {
            match v {
                Stored::Null => Ok(None),
                Stored::Int(i) => Ok(Some(i)),
                other => Err(wrong(name, "an integer", &other)),
            }
        }
    }

    pub mod opt_int {
        use super::*;
        pub const COLUMN: Column = Column::Int;
        pub const REQUIRED: bool = false;
        pub fn get(v: &Option<i32>) -> Field<'static> {
            v.map_or(Field::Null, |i| Field::I64(i64::from(i)))
        }
        pub fn set(name: &str, v: Stored) -> Result<Option<i32>, ModelError> {
            match super::opt_bigint::set(name, v)? {
                None => Ok(None),
                Some(i) => i32::try_from(i)
                    .map(Some)
                    .map_err(|_| ModelError::invalid(name, "is out of the 32-bit range")),
            }
        }
    }

    pub mod opt_date {
        use super::*;
        pub const COLUMN: Column = Column::Date;
        pub const REQUIRED: bool = false;
        pub fn get(v: &Option<NaiveDate>) -> Field<'static> {
            v.map_or(Field::Null, Field::Date)
        }
        pub fn set(name: &str, v: Stored) -> Result<Option<NaiveDate>, ModelError> {
            match v {
                Stored::Null => Ok(None),
                Stored::Date(d) => Ok(Some(d)),
                other => Err(wrong(name, "a date", &other)),
            }
        }
    }
}

/// One row of a schema table: `attribute!(Type, field, codec, unit, role, reference,
/// "description")`; the codec (a module of [`conv`]) gives the column type and
/// nullability.
macro_rules! attribute {
    ($R:ty, $f:ident, $codec:ident, $unit:expr, $role:ident, $refers:expr, $doc:literal) => {
        Attribute {
            info: FieldInfo {
                name: stringify!($f),
                column: conv::$codec::COLUMN,
                unit: $unit,
                required: conv::$codec::REQUIRED,
                role: Role::$role,
                refers_to: $refers,
                description: $doc,
            },
            get: |r: &$R| conv::$codec::get(&r.$f),
            set: |r: &mut $R, v| {
                r.$f = conv::$codec::set(stringify!($f), v)?;
                Ok(())
            },
        }
    };
}

const fn refers(layer: Layer, noun: &'static str) -> Option<Reference> {
    Some(Reference { layer, noun })
}

fn wrong_geometry(layer: Layer, want: &str, got: Option<&Geometry<f64>>) -> ModelError {
    let got = match got {
        None => "no geometry",
        Some(g) => crate::geom::type_name(g),
    };
    ModelError::Geometry(format!("{layer}: stored geometry is {got}, not a {want}"))
}

impl Schema for Pipeline {
    const LAYER: Layer = Layer::Pipelines;
    #[rustfmt::skip]
    const ATTRIBUTES: &'static [Attribute<Self>] = &[
        attribute!(Pipeline, kind, vocab, None, Viewer, None, "Utility kind (water, drainage, gas, heat, power, telecom, …)"),
        attribute!(Pipeline, sub_kind, opt_vocab, None, Viewer, None, "Drainage only: storm, sewage or combined"),
        attribute!(Pipeline, pressure_class, opt_vocab, None, Analyst, None, "Gas and long-distance oil/gas only: pressure class"),
        attribute!(Pipeline, voltage_kv, real, Some("kV"), Analyst, None, "Power only: voltage"),
        attribute!(Pipeline, material, opt_text, None, Analyst, None, "Pipe material"),
        attribute!(Pipeline, diameter_mm, real, Some("mm"), Analyst, None, "Round pipes: nominal diameter"),
        attribute!(Pipeline, section_width_mm, real, Some("mm"), Analyst, None, "Box sections (culverts, duct banks): width"),
        attribute!(Pipeline, section_height_mm, real, Some("mm"), Analyst, None, "Box sections: height"),
        attribute!(Pipeline, depth_start_m, real, Some("m"), Analyst, None, "Depth of the top of the pipe below ground at the start vertex"),
        attribute!(Pipeline, depth_end_m, real, Some("m"), Analyst, None, "Depth of the top of the pipe below ground at the end vertex"),
        attribute!(Pipeline, invert_start_m, real, Some("m"), Analyst, None, "Invert elevation at the start (1985 national height datum)"),
        attribute!(Pipeline, invert_end_m, real, Some("m"), Analyst, None, "Invert elevation at the end (1985 national height datum)"),
        attribute!(Pipeline, burial, opt_vocab, None, Analyst, None, "How the pipe is laid (direct burial, duct, tunnel, …)"),
        attribute!(Pipeline, owner_id, bigint, None, Analyst, refers(Layer::Owners, "owner"), "The owner/operator responsible for the pipe"),
        attribute!(Pipeline, year_built, opt_int, None, Analyst, None, "Year of construction"),
        attribute!(Pipeline, survey_date, opt_date, None, Analyst, None, "Date of the survey that positioned the pipe"),
        attribute!(Pipeline, plan_accuracy_cm, real, Some("cm"), Analyst, None, "Plan (horizontal) positional accuracy, ±"),
        attribute!(Pipeline, depth_accuracy_cm, real, Some("cm"), Analyst, None, "Depth accuracy, ±"),
        attribute!(Pipeline, quality_level, opt_vocab, None, Analyst, None, "Survey quality level"),
        attribute!(Pipeline, status, vocab, None, Viewer, None, "In service, abandoned, planned, …"),
        attribute!(Pipeline, from_node, opt_bigint, None, Analyst, refers(Layer::Nodes, "node"), "The network node at the start vertex (topology for traces)"),
        attribute!(Pipeline, to_node, opt_bigint, None, Analyst, refers(Layer::Nodes, "node"), "The network node at the end vertex (topology for traces)"),
    ];
    fn id(&self) -> i64 {
        self.id
    }
    fn geometry(&self) -> Option<Geometry<f64>> {
        Some(Geometry::LineString(self.geometry.clone()))
    }
    fn blank(id: i64, geometry: Option<Geometry<f64>>) -> Result<Self, ModelError> {
        let geometry = match geometry {
            Some(Geometry::LineString(l)) => l,
            other => return Err(wrong_geometry(Self::LAYER, "LineString", other.as_ref())),
        };
        // Every attribute is set by the decoder after this; the kind and owner are
        // placeholders.
        Ok(Pipeline::new(id, crate::PipeKind::ALL[0], 0, geometry))
    }
    fn into_record(self) -> Record {
        Record::Pipeline(self)
    }
    fn from_record(record: &Record) -> Option<&Self> {
        match record {
            Record::Pipeline(r) => Some(r),
            _ => None,
        }
    }
}

impl Schema for RiskPoint {
    const LAYER: Layer = Layer::RiskPoints;
    #[rustfmt::skip]
    const ATTRIBUTES: &'static [Attribute<Self>] = &[
        attribute!(RiskPoint, category, text, None, Viewer, None, "Category code from data/risk_categories.toml"),
        attribute!(RiskPoint, level, vocab, None, Viewer, None, "The registered level (live alarms may raise the displayed level)"),
        attribute!(RiskPoint, name, text, None, Viewer, None, "Name of the risk point"),
        attribute!(RiskPoint, grid_cell_id, opt_bigint, None, Viewer, refers(Layer::GridCells, "grid cell"), "The grid cell that governs the point"),
        attribute!(RiskPoint, responsible_unit, text, None, Viewer, None, "The unit responsible for the point"),
        attribute!(RiskPoint, responsible_person, text, None, Viewer, None, "The person responsible for the point"),
        attribute!(RiskPoint, responsible_phone, opt_text, None, Viewer, None, "The responsible person's phone"),
        attribute!(RiskPoint, emergency_plan, opt_text, None, Viewer, None, "Reference of the emergency plan document"),
        attribute!(RiskPoint, last_review, opt_date, None, Viewer, None, "Date of the last review"),
        attribute!(RiskPoint, next_review, opt_date, None, Viewer, None, "Date the next review is due"),
        attribute!(RiskPoint, status, vocab, None, Viewer, None, "Active or closed"),
    ];
    fn id(&self) -> i64 {
        self.id
    }
    fn geometry(&self) -> Option<Geometry<f64>> {
        Some(self.geometry.clone())
    }
    fn blank(id: i64, geometry: Option<Geometry<f64>>) -> Result<Self, ModelError> {
        let geometry = match geometry {
            Some(g @ (Geometry::Point(_) | Geometry::Polygon(_))) => g,
            other => {
                return Err(wrong_geometry(
                    Self::LAYER,
                    "Point or Polygon",
                    other.as_ref(),
                ))
            }
        };
        Ok(RiskPoint {
            id,
            category: String::new(),
            level: crate::RiskLevel::ALL[0],
            name: String::new(),
            grid_cell_id: None,
            responsible_unit: String::new(),
            responsible_person: String::new(),
            responsible_phone: None,
            emergency_plan: None,
            last_review: None,
            next_review: None,
            status: crate::RiskStatus::ALL[0],
            geometry,
        })
    }
    fn into_record(self) -> Record {
        Record::RiskPoint(self)
    }
    fn from_record(record: &Record) -> Option<&Self> {
        match record {
            Record::RiskPoint(r) => Some(r),
            _ => None,
        }
    }
}

impl Schema for GridCell {
    const LAYER: Layer = Layer::GridCells;
    #[rustfmt::skip]
    const ATTRIBUTES: &'static [Attribute<Self>] = &[
        attribute!(GridCell, level, vocab, None, Viewer, None, "district, street, community, grid or micro-grid"),
        attribute!(GridCell, parent_id, opt_bigint, None, Viewer, refers(Layer::GridCells, "parent grid cell"), "The enclosing cell; required for every level below district"),
        attribute!(GridCell, name, text, None, Viewer, None, "Name of the cell"),
        attribute!(GridCell, code, text, None, Viewer, None, "Statistical code (districts and streets: national codes; below: derived)"),
    ];
    fn id(&self) -> i64 {
        self.id
    }
    fn geometry(&self) -> Option<Geometry<f64>> {
        Some(Geometry::MultiPolygon(self.geometry.clone()))
    }
    fn blank(id: i64, geometry: Option<Geometry<f64>>) -> Result<Self, ModelError> {
        let geometry = match geometry {
            Some(Geometry::MultiPolygon(m)) => m,
            // Another editor may have saved a single polygon into the MULTIPOLYGON column.
            Some(Geometry::Polygon(p)) => geo::MultiPolygon(vec![p]),
            other => return Err(wrong_geometry(Self::LAYER, "MultiPolygon", other.as_ref())),
        };
        Ok(GridCell {
            id,
            level: crate::GridLevel::ALL[0],
            parent_id: None,
            name: String::new(),
            code: String::new(),
            geometry,
        })
    }
    fn into_record(self) -> Record {
        Record::GridCell(self)
    }
    fn from_record(record: &Record) -> Option<&Self> {
        match record {
            Record::GridCell(r) => Some(r),
            _ => None,
        }
    }
}

impl Schema for Sensor {
    const LAYER: Layer = Layer::Sensors;
    #[rustfmt::skip]
    const ATTRIBUTES: &'static [Attribute<Self>] = &[
        attribute!(Sensor, kind, vocab, None, Viewer, None, "What the sensor measures (data/sensor_kinds.toml)"),
        attribute!(Sensor, code, opt_text, None, Viewer, None, "The operator's code of the sensor"),
        attribute!(Sensor, pipeline_id, opt_bigint, None, Viewer, refers(Layer::Pipelines, "pipeline"), "The pipeline the sensor watches"),
        attribute!(Sensor, risk_point_id, opt_bigint, None, Viewer, refers(Layer::RiskPoints, "risk point"), "The risk point the sensor watches"),
        attribute!(Sensor, status, vocab, None, Viewer, None, "Online, offline or retired"),
        attribute!(Sensor, installed, opt_date, None, Viewer, None, "Date of installation"),
    ];
    fn id(&self) -> i64 {
        self.id
    }
    fn geometry(&self) -> Option<Geometry<f64>> {
        Some(Geometry::Point(self.location))
    }
    fn blank(id: i64, geometry: Option<Geometry<f64>>) -> Result<Self, ModelError> {
        let location = match geometry {
            Some(Geometry::Point(p)) => p,
            other => return Err(wrong_geometry(Self::LAYER, "Point", other.as_ref())),
        };
        Ok(Sensor {
            id,
            kind: crate::SensorKind::ALL[0],
            code: None,
            pipeline_id: None,
            risk_point_id: None,
            status: crate::SensorStatus::ALL[0],
            installed: None,
            location,
        })
    }
    fn into_record(self) -> Record {
        Record::Sensor(self)
    }
    fn from_record(record: &Record) -> Option<&Self> {
        match record {
            Record::Sensor(r) => Some(r),
            _ => None,
        }
    }
}

impl Schema for NetworkNode {
    const LAYER: Layer = Layer::Nodes;
    #[rustfmt::skip]
    const ATTRIBUTES: &'static [Attribute<Self>] = &[
        attribute!(NetworkNode, kind, vocab, None, Viewer, None, "The utility network the node belongs to (the pipelines' kinds)"),
        attribute!(NetworkNode, node_type, vocab, None, Viewer, None, "junction, valve, source or customer (connection)"),
        attribute!(NetworkNode, code, opt_text, None, Analyst, None, "The operator's asset code"),
        attribute!(NetworkNode, name, opt_text, None, Analyst, None, "Name (a plant, a station, a building)"),
        attribute!(NetworkNode, source_kind, opt_vocab, None, Viewer, None, "Sources only: water plant, reservoir, tank, gate station, regulator, substation, transformer, heat plant, circulation pump"),
        attribute!(NetworkNode, valve_position, opt_vocab, None, Analyst, None, "Valves only: normally open or closed (open when unknown)"),
        attribute!(NetworkNode, valve_condition, opt_vocab, None, Analyst, None, "Valves only: operable, broken or inaccessible (operable when unknown)"),
        attribute!(NetworkNode, on_pipe_id, opt_bigint, None, Analyst, None, "Valves only: the pipe it closes where more than two pipes meet (not a foreign key; checked by lifeline check)"),
        attribute!(NetworkNode, customers, opt_int, None, Analyst, None, "Customer connections only: customers served (1 when unknown)"),
    ];
    fn id(&self) -> i64 {
        self.id
    }
    fn geometry(&self) -> Option<Geometry<f64>> {
        Some(Geometry::Point(self.geometry))
    }
    fn blank(id: i64, geometry: Option<Geometry<f64>>) -> Result<Self, ModelError> {
        let point = match geometry {
            Some(Geometry::Point(p)) => p,
            other => return Err(wrong_geometry(Self::LAYER, "Point", other.as_ref())),
        };
        // The kind and type are placeholders the decoder sets.
        Ok(NetworkNode::new(
            id,
            crate::PipeKind::ALL[0],
            crate::NodeType::ALL[0],
            point,
        ))
    }
    fn into_record(self) -> Record {
        Record::Node(self)
    }
    fn from_record(record: &Record) -> Option<&Self> {
        match record {
            Record::Node(r) => Some(r),
            _ => None,
        }
    }
}

impl Schema for Owner {
    const LAYER: Layer = Layer::Owners;
    #[rustfmt::skip]
    const ATTRIBUTES: &'static [Attribute<Self>] = &[
        attribute!(Owner, name, text, None, Contractor, None, "The utility company or agency"),
        attribute!(Owner, emergency_contact, text, None, Contractor, None, "Who to call when a pipe is hit: a duty desk or person"),
        attribute!(Owner, emergency_phone, text, None, Contractor, None, "24-hour emergency phone number"),
        attribute!(Owner, email, opt_text, None, Contractor, None, "E-mail address"),
    ];
    fn id(&self) -> i64 {
        self.id
    }
    fn geometry(&self) -> Option<Geometry<f64>> {
        None
    }
    fn blank(id: i64, _geometry: Option<Geometry<f64>>) -> Result<Self, ModelError> {
        Ok(Owner {
            id,
            name: String::new(),
            emergency_contact: String::new(),
            emergency_phone: String::new(),
            email: None,
        })
    }
    fn into_record(self) -> Record {
        Record::Owner(self)
    }
    fn from_record(record: &Record) -> Option<&Self> {
        match record {
            Record::Owner(r) => Some(r),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        let d = NaiveDate::from_ymd_opt(2024, 5, 6).unwrap();
        let mut p = Pipeline::blank(
            7,
            Some(Geometry::LineString(
                vec![(106.5, 29.5), (106.6, 29.6)].into(),
            )),
        )
        .unwrap();
        p.pressure_class = Some(crate::GasPressure::ALL[1]);
        p.year_built = Some(1998);
        p.survey_date = Some(d);
        p.diameter_mm = Some(300.0);
        p.material = Some("PE".into());
        p.owner_id = 3;
        vec![
            Record::Pipeline(p),
            Record::Owner(Owner {
                id: 3,
                name: "Gas Co".into(),
                emergency_contact: "desk".into(),
                emergency_phone: "023-1".into(),
                email: None,
            }),
        ]
    }

    fn stored(f: Field<'_>) -> Stored {
        match f {
            Field::Null => Stored::Null,
            Field::Str(s) => Stored::Text(s.into()),
            Field::F64(x) => Stored::Real(x),
            Field::I64(i) => Stored::Int(i),
            Field::Date(d) => Stored::Date(d),
        }
    }

    fn roundtrip<R: Schema + PartialEq + std::fmt::Debug>(r: &R) {
        let back: R = decode(
            r.id(),
            r.geometry(),
            |i, _| Ok(stored((R::ATTRIBUTES[i].get)(r))),
            |_, e| e,
        )
        .unwrap();
        assert_eq!(&back, r);
    }

    #[test]
    fn every_table_follows_the_serde_order_and_round_trips() {
        for rec in sample() {
            // serde writes the struct's fields in declaration order: the set attributes
            // appear in the text in table order, and no other attribute does.
            let text = serde_json::to_string(&rec).unwrap();
            let json = serde_json::to_value(&rec).unwrap();
            let set: Vec<&str> = values(&rec)
                .into_iter()
                .filter(|(_, v)| *v != Field::Null)
                .map(|(f, _)| f.name)
                .collect();
            let at: Vec<usize> = set
                .iter()
                .map(|n| text.find(&format!("\"{n}\":")).expect(n))
                .collect();
            assert!(
                at.windows(2).all(|w| w[0] < w[1]),
                "{}: {set:?}",
                rec.layer()
            );
            let others = json
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "id" && *k != crate::feature::geometry_field(rec.layer()));
            assert_eq!(others.count(), set.len(), "{}", rec.layer());
            match &rec {
                Record::Pipeline(p) => roundtrip(p),
                Record::Owner(o) => roundtrip(o),
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn a_required_null_and_a_wrong_geometry_are_named() {
        let p = &sample()[0];
        let Record::Pipeline(p) = p else {
            unreachable!()
        };
        let rec = Record::Pipeline(p.clone());
        let err = decode::<Pipeline, _>(
            1,
            p.geometry(),
            |_, f| {
                Ok(if f.name == "kind" {
                    Stored::Null
                } else {
                    stored(value(&rec, f.name))
                })
            },
            |_, e| e,
        )
        .unwrap_err();
        assert!(err.to_string().contains("kind"), "{err}");
        let err = Pipeline::blank(1, Some(Geometry::Point((1.0, 2.0).into()))).unwrap_err();
        assert!(err.to_string().contains("LineString"), "{err}");
    }

    #[test]
    fn docs_layers_lists_the_schema() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/layers.md");
        let want = markdown();
        if std::env::var_os("LIFELINE_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let got = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            got == want,
            "docs/layers.md differs from the schema; rerun with LIFELINE_BLESS=1"
        );
    }

    #[test]
    fn roles_and_references() {
        assert_eq!(attribute_role(Layer::Pipelines, "kind"), Role::Viewer);
        assert_eq!(attribute_role(Layer::Pipelines, "material"), Role::Analyst);
        assert_eq!(attribute_role(Layer::Owners, "name"), Role::Contractor);
        assert_eq!(
            field(Layer::Sensors, "pipeline_id")
                .unwrap()
                .refers_to
                .unwrap()
                .layer,
            Layer::Pipelines
        );
        assert_eq!(
            field(Layer::Pipelines, "year_built").unwrap().column,
            Column::Int
        );
        assert!(field(Layer::GridCells, "colour").is_none());
    }
}
