//! The excavation check's result as stored and returned: the dig request, each conflict
//! with its reasons and figures, the owners to notify, nearby risk points and sensors, and
//! the check's geometries as a ticket keeps them. The check engine that produces it is the
//! excavation capability's; a stored ticket holds one of these.

use super::{geom, PipeKind, Record};
use chrono::{DateTime, NaiveDate, Utc};
use geo::{Geometry, LineString};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use utoipa::ToSchema;

crate::string_enum! {
    /// How the ground is broken; each has a factor on the horizontal clearance.
    pub enum DigMethod {
        Manual = "manual",
        Mechanical = "mechanical",
        DirectionalDrilling = "directional_drilling",
        Piling = "piling",
        Blasting = "blasting",
    }
}

/// A dig as the client sends it (`POST /excavation/check`, and the body of a ticket).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// GeoJSON Polygon (holes allowed) or LineString, CGCS2000 lon/lat (EPSG:4490).
    #[schema(value_type = Object)]
    pub geometry: serde_json::Value,
    /// Trench width in metres; required for a LineString, refused for a Polygon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width_m: Option<f64>,
    /// Depth of the top of the works below ground, m (usually 0).
    pub top_depth_m: f64,
    /// Depth of the bottom of the works below ground, m; greater than `top_depth_m`.
    pub bottom_depth_m: f64,
    /// manual, mechanical, directional_drilling, piling or blasting.
    #[schema(value_type = String, example = "mechanical")]
    pub method: DigMethod,
    /// Free text: what the work is (e.g. "water service connection").
    pub work_type: String,
    #[schema(value_type = String, format = Date, example = "2026-12-01")]
    pub start_date: NaiveDate,
    #[schema(value_type = String, format = Date, example = "2026-12-05")]
    pub end_date: NaiveDate,
}

crate::string_enum! {
    /// How serious a conflict is; ordered from most to least serious.
    pub enum Severity {
        Violation = "violation",
        Warning = "warning",
        Info = "info",
    }
}

/// Why a pipe was reported, most serious first: the main reason, the permit, the depth,
/// then the assumptions. A check keeps the figures the texts are made of and writes the
/// texts only when the result is serialised or rendered — a 1 km² dig in the city reports
/// ~1,900 pipes, and formatting every text up front was a large part of the check's cost.
/// A stored ticket's check brings its texts back as written ([`Reasons::from`] a
/// `Vec<String>`). Serialises as a list of strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Reasons(ReasonRepr);

#[derive(Debug, Clone, PartialEq)]
enum ReasonRepr {
    Figures {
        pipe_id: i64,
        kind: PipeKind,
        main: MainReason,
        /// The permit zone, if the pipe is inside it.
        permit_m: Option<f64>,
        depth: DepthReason,
        assumed: Assumed,
    },
    Texts(Vec<String>),
}

/// The figures of the main reason (the texts are in [`ReasonPart`]'s `Display`).
#[derive(Debug, Clone, PartialEq)]
pub enum MainReason {
    NoDig {
        no_dig_m: f64,
        rule: Option<Arc<str>>,
    },
    Clearance {
        d: f64,
        clearance_m: f64,
        rule: Arc<str>,
    },
    VerticallyClear {
        gap: f64,
        required: f64,
    },
    Tolerance {
        d: f64,
        tolerance_m: f64,
        widening_m: f64,
    },
    Info {
        d: f64,
    },
    /// Reported for the permit zone alone.
    None,
}

/// The figures of the depth reason.
#[derive(Debug, Clone, PartialEq)]
pub enum DepthReason {
    Unknown,
    /// A violation the dig reaches vertically.
    Reaches {
        gap: f64,
        band: [f64; 2],
        required: f64,
    },
    None,
}

/// One reason text, written on demand.
enum ReasonPart<'a> {
    Main(i64, PipeKind, &'a MainReason),
    Permit(f64),
    Depth(&'a DepthReason),
    Text(&'a str),
}

impl fmt::Display for ReasonPart<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReasonPart::Main(id, kind, m) => match m {
                MainReason::NoDig { no_dig_m, rule } => write!(
                    f,
                    "inside the {no_dig_m:.2} m no-dig protection zone of {kind} pipe {id} ({}), whatever the depth",
                    rule.as_deref().unwrap_or("")
                ),
                MainReason::Clearance { d, clearance_m, rule } => write!(
                    f,
                    "{d:.2} m from {kind} pipe {id}; required horizontal clearance {clearance_m:.2} m ({rule})"
                ),
                MainReason::VerticallyClear { gap, required } => write!(
                    f,
                    "within the horizontal clearance but {gap:.2} m above or below the pipe (vertical clearance {required:.2} m incl. depth uncertainty)"
                ),
                MainReason::Tolerance { d, tolerance_m, widening_m } => write!(
                    f,
                    "{d:.2} m from {kind} pipe {id}: inside the tolerance zone ({tolerance_m:.2} m = clearance widened by ±{widening_m:.2} m)"
                ),
                MainReason::Info { d } => write!(
                    f,
                    "{d:.2} m from {kind} pipe {id}: inside the information margin"
                ),
                MainReason::None => Ok(()),
            },
            ReasonPart::Permit(pm) => write!(
                f,
                "inside the {pm:.0} m permit zone: a permit is needed before work"
            ),
            ReasonPart::Depth(DepthReason::Unknown) => {
                f.write_str("pipe depth unknown: horizontal rule only")
            }
            ReasonPart::Depth(DepthReason::Reaches { gap, band, required }) => write!(
                f,
                "the dig reaches within {gap:.2} m vertically of the pipe (band {:.2}–{:.2} m; required {required:.2} m)",
                band[0], band[1]
            ),
            ReasonPart::Depth(DepthReason::None) => Ok(()),
            ReasonPart::Text(t) => f.write_str(t),
        }
    }
}

impl Reasons {
    fn parts(&self) -> impl Iterator<Item = ReasonPart<'_>> + '_ {
        let (head, texts, assumed) = match &self.0 {
            ReasonRepr::Figures {
                pipe_id,
                kind,
                main,
                permit_m,
                depth,
                assumed,
            } => {
                let main = (!matches!(main, MainReason::None))
                    .then_some(ReasonPart::Main(*pipe_id, *kind, main));
                let depth =
                    (!matches!(depth, DepthReason::None)).then_some(ReasonPart::Depth(depth));
                (
                    [main, permit_m.map(ReasonPart::Permit), depth],
                    &[][..],
                    Some(assumed),
                )
            }
            ReasonRepr::Texts(t) => ([None, None, None], &t[..], None),
        };
        head.into_iter()
            .flatten()
            .chain(texts.iter().map(|t| ReasonPart::Text(t)))
            .chain(
                assumed
                    .into_iter()
                    .flat_map(|a| a.iter().map(ReasonPart::Text)),
            )
    }

    /// The texts.
    pub fn texts(&self) -> Vec<String> {
        self.parts().map(|p| p.to_string()).collect()
    }

    pub fn len(&self) -> usize {
        self.parts().count()
    }

    pub fn is_empty(&self) -> bool {
        self.parts().next().is_none()
    }
}

impl Reasons {
    /// The reasons of a judged pipe, kept as figures: the texts are written when the
    /// result is serialised or rendered.
    pub fn figures(
        pipe_id: i64,
        kind: PipeKind,
        main: MainReason,
        permit_m: Option<f64>,
        depth: DepthReason,
        assumed: Assumed,
    ) -> Reasons {
        Reasons(ReasonRepr::Figures {
            pipe_id,
            kind,
            main,
            permit_m,
            depth,
            assumed,
        })
    }
}

impl From<Vec<String>> for Reasons {
    fn from(t: Vec<String>) -> Reasons {
        Reasons(ReasonRepr::Texts(t))
    }
}

/// The texts joined with "; ".
impl fmt::Display for Reasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.parts().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl Serialize for Reasons {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        // Each text goes straight into the output (`collect_str`), with no String between.
        struct Text<'a>(ReasonPart<'a>);
        impl Serialize for Text<'_> {
            fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                ser.collect_str(&self.0)
            }
        }
        ser.collect_seq(self.parts().map(Text))
    }
}

/// A reported pipe's line in lon/lat (EPSG:4490): the index's record, shared rather than
/// copied, or a line of its own (a stored ticket's snapshot, [`PipeGeometry::from`] a
/// `LineString`).
#[derive(Debug, Clone)]
pub struct PipeGeometry(GeometryRepr);

#[derive(Debug, Clone)]
enum GeometryRepr {
    /// A `Record::Pipeline` (any other record has an empty line).
    Record(Arc<Record>),
    Line(LineString<f64>),
}

impl PipeGeometry {
    /// The geometry of a pipeline record, shared with the index (no copy).
    pub fn of_record(r: Arc<Record>) -> PipeGeometry {
        PipeGeometry(GeometryRepr::Record(r))
    }

    /// The line.
    pub fn line(&self) -> &LineString<f64> {
        const EMPTY: &LineString<f64> = &LineString(Vec::new());
        match &self.0 {
            GeometryRepr::Record(r) => match &**r {
                Record::Pipeline(p) => &p.geometry,
                _ => EMPTY,
            },
            GeometryRepr::Line(l) => l,
        }
    }
}

impl From<LineString<f64>> for PipeGeometry {
    fn from(l: LineString<f64>) -> PipeGeometry {
        PipeGeometry(GeometryRepr::Line(l))
    }
}

impl PartialEq for PipeGeometry {
    fn eq(&self, other: &Self) -> bool {
        self.line() == other.line()
    }
}

/// What striking a pipe would cut off (issue 15): its isolation trace as the network stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IfStruck {
    /// The valves to close to isolate the pipe (node ids), the minimal set.
    pub valves_to_close: Vec<i64>,
    /// Customers who lose supply while it is isolated (segment and pockets).
    pub customers: u64,
    /// Pipes in its valve segment.
    pub segment_pipes: usize,
    /// The segment holds a source: isolating the pipe takes that source out of service.
    pub source_inside: bool,
}

/// One pipeline the dig could hit, with every figure that judged it. The rule ids and
/// sources and the owner's name are shared strings (a check reports up to a few thousand
/// pipes; they serialise as plain strings).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Conflict {
    pub pipeline_id: i64,
    #[schema(value_type = String)]
    pub kind: crate::PipeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub sub_kind: Option<crate::DrainageKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub pressure_class: Option<crate::GasPressure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diameter_mm: Option<f64>,
    pub owner_id: i64,
    #[serde(serialize_with = "ser_shared")]
    #[schema(value_type = String)]
    pub owner_name: Arc<str>,
    /// violation, warning or info.
    #[schema(value_type = String)]
    pub severity: Severity,
    /// Plain-language reasons, most serious first.
    #[schema(value_type = Vec<String>)]
    pub reasons: Reasons,
    /// Horizontal distance between the dig and the pipe centreline, m (0: they overlap).
    pub horizontal_distance_m: f64,
    /// Whether the pipe's depth is recorded; if not, only the horizontal rule applied.
    pub depth_known: bool,
    /// The pipe's depth band [top, bottom], m below ground, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipe_depth_m: Option<[f64; 2]>,
    /// Vertical gap between the dig's depth range and the pipe's band, m.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertical_gap_m: Option<f64>,
    /// 3D distance between dig and pipe, m.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clearance_3d_m: Option<f64>,
    /// Required horizontal clearance (after the dig-method factor), m.
    pub required_clearance_m: f64,
    #[serde(serialize_with = "ser_shared")]
    #[schema(value_type = String)]
    pub rule_id: Arc<str>,
    #[serde(serialize_with = "ser_shared")]
    #[schema(value_type = String)]
    pub rule_source: Arc<str>,
    pub rule_confirmed: bool,
    /// Required vertical clearance plus the depth uncertainty, m.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_vertical_m: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_shared_opt"
    )]
    #[schema(value_type = Option<String>)]
    pub vertical_rule_id: Option<Arc<str>>,
    /// Positional accuracy of the pipe, m, and where it came from.
    pub accuracy_m: f64,
    #[schema(value_type = String)]
    pub accuracy_source: AccuracySource,
    /// Widening of the clearance for the accuracy and pipe size, m.
    pub widening_m: f64,
    pub tolerance_m: f64,
    pub info_m: f64,
    pub in_no_dig_zone: bool,
    pub permit_required: bool,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_shared_opt"
    )]
    #[schema(value_type = Option<String>)]
    pub protection_rule_id: Option<Arc<str>>,
    /// Attributes that were unknown and for which the strictest rule was assumed.
    #[schema(value_type = Vec<String>)]
    pub assumed: Assumed,
    /// The point on the pipe nearest the dig, [lon, lat] EPSG:4490.
    pub nearest_point: [f64; 2],
    /// Violations on a pipe with topology: what striking it would cut off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_struck: Option<IfStruck>,
    /// The pipe's geometry (for the GeoJSON and HTML renderings).
    #[serde(skip)]
    pub geometry: PipeGeometry,
}

/// An owner to notify, with the emergency contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OwnerNotice {
    pub owner_id: i64,
    pub name: String,
    pub emergency_contact: String,
    pub emergency_phone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The most serious conflict with this owner's pipes.
    #[schema(value_type = String)]
    pub worst_severity: Severity,
    pub pipeline_ids: Vec<i64>,
}

/// A short text kept inline when it fits in 30 bytes (sensor codes, risk point names): a
/// 1 km² dig in the city has a few hundred sensors nearby, and a heap copy of each code
/// was ~15 % of the check (allocation is slow in a heap holding 1.2 M records). Longer
/// texts go to the heap. Derefs to `str`; serialises as a string.
#[derive(Clone)]
pub struct ShortText(ShortRepr);

const SHORT_INLINE: usize = 30;

#[derive(Clone)]
enum ShortRepr {
    Inline { len: u8, buf: [u8; SHORT_INLINE] },
    Heap(String),
}

impl ShortText {
    pub fn new(s: &str) -> ShortText {
        if s.len() <= SHORT_INLINE {
            let mut buf = [0u8; SHORT_INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            ShortText(ShortRepr::Inline {
                len: s.len() as u8,
                buf,
            })
        } else {
            ShortText(ShortRepr::Heap(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always whole UTF-8: copied from a `str` of exactly `len` bytes.
            ShortRepr::Inline { len, buf } => std::str::from_utf8(&buf[..*len as usize])
                .expect("inline text is copied from a str"),
            ShortRepr::Heap(s) => s,
        }
    }
}

impl std::ops::Deref for ShortText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for ShortText {
    fn from(s: &str) -> ShortText {
        ShortText::new(s)
    }
}

impl From<String> for ShortText {
    fn from(s: String) -> ShortText {
        if s.len() <= SHORT_INLINE {
            ShortText::new(&s)
        } else {
            ShortText(ShortRepr::Heap(s))
        }
    }
}

impl PartialEq for ShortText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ShortText {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(self.as_str())
    }
}

/// A risk point or sensor within the dig area plus the information margin.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NearbyFeature {
    pub id: i64,
    /// Risk category, or sensor kind (borrowed where it is a fixed vocabulary).
    #[schema(value_type = String)]
    pub kind: Cow<'static, str>,
    /// Risk level, or sensor status.
    #[schema(value_type = String)]
    pub status: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub name: Option<ShortText>,
    pub distance_m: f64,
    #[serde(skip)]
    pub geometry: Option<Geometry<f64>>,
}

/// Counts and the overall verdict.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Summary {
    pub violations: usize,
    pub warnings: usize,
    pub infos: usize,
    pub owners_to_notify: usize,
    pub permit_required: bool,
    pub depth_unknown: usize,
    /// `stop` (a violation: do not dig without the owner on site), `caution` or `clear`.
    pub verdict: String,
    pub text: String,
}

/// The dig as checked.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DigSummary {
    /// The footprint (the buffered trench for a LineString) as GeoJSON.
    #[schema(value_type = Object)]
    pub geometry: serde_json::Value,
    pub area_m2: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width_m: Option<f64>,
    pub top_depth_m: f64,
    pub bottom_depth_m: f64,
    #[schema(value_type = String)]
    pub method: DigMethod,
    pub method_factor: f64,
    pub work_type: String,
    #[schema(value_type = String, format = Date)]
    pub start_date: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub end_date: NaiveDate,
    /// The projected CRS the distances were measured in.
    pub metric_crs: String,
}

/// The answer of `POST /excavation/check`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CheckResult {
    pub dig: DigSummary,
    pub summary: Summary,
    pub conflicts: Vec<Conflict>,
    pub owners: Vec<OwnerNotice>,
    pub risk_points: Vec<NearbyFeature>,
    pub sensors: Vec<NearbyFeature>,
    pub rules_version: u32,
    #[schema(value_type = String, format = DateTime)]
    pub checked_at: DateTime<Utc>,
}

/// Where a plan accuracy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccuracySource {
    /// The pipe's own `plan_accuracy_cm`.
    Surveyed,
    /// Its quality level QL-A..D.
    QualityLevel,
    /// Nothing recorded: the widest tolerance.
    Unknown,
}

/// Serialises a shared string as a plain JSON string (serde's `rc` feature is not enabled
/// in this workspace, and enabling it would rebuild every crate that uses serde).
pub fn ser_shared<S: Serializer>(s: &Arc<str>, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s)
}

/// [`ser_shared`] for an optional string (used with `skip_serializing_if = "Option::is_none"`).
pub fn ser_shared_opt<S: Serializer>(s: &Option<Arc<str>>, ser: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.serialize_str(s),
        None => ser.serialize_none(),
    }
}

/// Attributes a pipe does not record, for which the strictest rule was assumed: three
/// flags with fixed texts, so a threshold or conflict carries them without allocating.
/// A stored ticket's check brings its texts back as they were written
/// ([`Assumed::from`] a `Vec<String>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assumed {
    /// Computed by [`Rules::thresholds`].
    Flags {
        pressure: bool,
        diameter: bool,
        accuracy: bool,
    },
    /// Texts as stored.
    Texts(Vec<String>),
}

impl Default for Assumed {
    /// Nothing assumed.
    fn default() -> Assumed {
        Assumed::Flags {
            pressure: false,
            diameter: false,
            accuracy: false,
        }
    }
}

impl Assumed {
    pub const PRESSURE: &'static str =
        "pressure_class unknown: the strictest pressure rule applies";
    pub const DIAMETER: &'static str = "diameter unknown: the strictest diameter rule applies";
    pub const ACCURACY: &'static str = "positional accuracy unknown: the widest tolerance applies";

    /// The texts, in the order pressure, diameter, accuracy.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let (flags, texts): ([bool; 3], &[String]) = match self {
            Assumed::Flags {
                pressure,
                diameter,
                accuracy,
            } => ([*pressure, *diameter, *accuracy], &[]),
            Assumed::Texts(t) => ([false; 3], t),
        };
        [Self::PRESSURE, Self::DIAMETER, Self::ACCURACY]
            .into_iter()
            .zip(flags)
            .filter_map(|(t, on)| on.then_some(t))
            .chain(texts.iter().map(String::as_str))
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl From<Vec<String>> for Assumed {
    fn from(t: Vec<String>) -> Assumed {
        Assumed::Texts(t)
    }
}

impl Serialize for Assumed {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(self.iter())
    }
}

/// The geometries of a check's pipes, risk points and sensors at submission, as GeoJSON
/// geometries by id (the check's JSON leaves them out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckGeometry {
    #[serde(default)]
    pub pipes: BTreeMap<i64, Value>,
    #[serde(default)]
    pub risk_points: BTreeMap<i64, Value>,
    #[serde(default)]
    pub sensors: BTreeMap<i64, Value>,
}

impl CheckGeometry {
    /// Whether nothing is held (a ticket stored before snapshots, or a clear check).
    pub fn is_empty(&self) -> bool {
        self.pipes.is_empty() && self.risk_points.is_empty() && self.sensors.is_empty()
    }

    /// The geometries of a check result.
    pub fn of(r: &CheckResult) -> CheckGeometry {
        let gj =
            |g: &Geometry<f64>| serde_json::to_value(geom::to_geojson(g)).unwrap_or(Value::Null);
        CheckGeometry {
            pipes: r
                .conflicts
                .iter()
                .map(|c| {
                    (
                        c.pipeline_id,
                        gj(&Geometry::LineString(c.geometry.line().clone())),
                    )
                })
                .collect(),
            risk_points: r
                .risk_points
                .iter()
                .filter_map(|f| f.geometry.as_ref().map(|g| (f.id, gj(g))))
                .collect(),
            sensors: r
                .sensors
                .iter()
                .filter_map(|f| f.geometry.as_ref().map(|g| (f.id, gj(g))))
                .collect(),
        }
    }
}

/// The geometries of a live check result, serialised exactly as their
/// [`CheckGeometry::of`] (GeoJSON by id, ids ascending) but without building JSON values on
/// the way: a submission writes the pipes straight from their coordinates.
pub struct LiveGeometry<'a>(pub &'a CheckResult);

impl LiveGeometry<'_> {
    /// Whether there is nothing to hold.
    pub fn is_empty(&self) -> bool {
        let r = self.0;
        r.conflicts.is_empty()
            && r.risk_points.iter().all(|f| f.geometry.is_none())
            && r.sensors.iter().all(|f| f.geometry.is_none())
    }
}

/// Entries sorted by id, the last of equal ids kept (as collecting into a `BTreeMap` does).
fn by_id<T>(mut v: Vec<(i64, T)>) -> Vec<(i64, T)> {
    v.reverse();
    v.sort_by_key(|e| e.0);
    v.dedup_by_key(|e| e.0);
    v
}

struct LineJson<'a>(&'a LineString<f64>);

impl Serialize for LineJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("type", "LineString")?;
        m.serialize_entry("coordinates", &Coords(self.0))?;
        m.end()
    }
}

struct Coords<'a>(&'a LineString<f64>);

impl Serialize for Coords<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.coords().map(|c| [c.x, c.y]))
    }
}

struct Pipes<'a>(&'a [Conflict]);

impl Serialize for Pipes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = by_id(
            self.0
                .iter()
                .map(|c| (c.pipeline_id, LineJson(c.geometry.line())))
                .collect(),
        );
        s.collect_map(v)
    }
}

struct Features<'a>(&'a [NearbyFeature]);

impl Serialize for Features<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = by_id(
            self.0
                .iter()
                .filter_map(|f| f.geometry.as_ref().map(|g| (f.id, geom::to_geojson(g))))
                .collect(),
        );
        s.collect_map(v)
    }
}

impl Serialize for LiveGeometry<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("CheckGeometry", 3)?;
        m.serialize_field("pipes", &Pipes(&self.0.conflicts))?;
        m.serialize_field("risk_points", &Features(&self.0.risk_points))?;
        m.serialize_field("sensors", &Features(&self.0.sensors))?;
        m.end()
    }
}
