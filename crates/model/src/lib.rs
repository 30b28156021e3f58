//! The domain model: pipelines, the network's nodes, owners, risk points, grid cells and
//! sensors, the layer
//! vocabulary, bounding boxes, and the validation every value passes before it reaches a
//! store or the index. Geometries are CGCS2000 lon/lat (EPSG:4490) throughout.

#[macro_use]
pub mod macros;
pub mod access;
pub mod alarm;
pub mod audit;
pub mod calendar;
pub mod catalog;
pub mod check;
pub mod check_result;
pub mod clock;
pub mod crs;
pub mod datum;
pub mod feature;
pub mod geom;
pub mod grid;
pub mod history;
pub mod html;
pub mod import_job;
pub mod node;
pub mod notification;
pub mod owner;
#[cfg(feature = "postgres")]
mod pg;
pub mod pipeline;
pub mod risk;
pub mod schema;
pub mod sensor;
pub mod ticket;

pub use catalog::{Catalog, RiskCategory, SensorKindSpec};
pub use clock::Clock;
pub use grid::{GridCell, GridLevel};
pub use node::{NetworkNode, NodeType, SourceKind, ValveCondition, ValvePosition};
pub use owner::Owner;
pub use pipeline::{
    Burial, DrainageKind, GasPressure, PipeKind, PipeStatus, Pipeline, QualityLevel,
};
pub use risk::{RiskLevel, RiskPoint, RiskStatus};
pub use sensor::{Sensor, SensorKind, SensorStatus};

use serde::{Deserialize, Serialize};

/// Why a value was refused. Every message names the field or value at fault, because it
/// goes back to the client verbatim.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ModelError {
    /// A string that is not one of a closed vocabulary.
    #[error("unknown {what} '{value}'; allowed: {allowed}")]
    UnknownValue {
        what: &'static str,
        value: String,
        allowed: String,
    },
    /// A field whose value breaks a rule (range, length, combination).
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A geometry that is not usable (NaN, out of range, self-intersecting, wrong type...).
    #[error("invalid geometry: {0}")]
    Geometry(String),
}

impl ModelError {
    /// Shorthand for [`ModelError::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ModelError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

string_enum! {
    /// The spatial layers the service stores and serves, plus the non-spatial owners table.
    pub enum Layer {
        Pipelines = "pipelines",
        RiskPoints = "risk_points",
        GridCells = "grid_cells",
        Sensors = "sensors",
        Nodes = "nodes",
        Owners = "owners",
    }
}

impl Layer {
    /// The five layers that carry geometry (and so live in the R-tree).
    pub const SPATIAL: [Layer; 5] = [
        Layer::Pipelines,
        Layer::RiskPoints,
        Layer::GridCells,
        Layer::Sensors,
        Layer::Nodes,
    ];

    /// Position in [`Layer::SPATIAL`], `None` for owners.
    pub fn spatial_index(self) -> Option<usize> {
        Layer::SPATIAL.iter().position(|l| *l == self)
    }
}

/// A layer name taken from a client (URL path, query), parsed once.
pub type LayerId = Layer;

/// A lon/lat bounding box in EPSG:4490, `min <= max` on both axes, all finite and inside
/// the valid lon/lat range. Constructed only through [`Bbox::new`] or [`Bbox::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "[f64; 4]", into = "[f64; 4]")]
pub struct Bbox {
    min_x: f64,
    min_y: f64,
    max_x: f64,
    max_y: f64,
}

impl Bbox {
    /// A box from its corners; refuses NaN, infinities, inverted or out-of-range corners.
    pub fn new(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Result<Self, ModelError> {
        for (name, v) in [
            ("min_x", min_x),
            ("min_y", min_y),
            ("max_x", max_x),
            ("max_y", max_y),
        ] {
            if !v.is_finite() {
                return Err(ModelError::invalid(
                    "bbox",
                    format!("{name} is not a finite number"),
                ));
            }
        }
        if !(-180.0..=180.0).contains(&min_x) || !(-180.0..=180.0).contains(&max_x) {
            return Err(ModelError::invalid("bbox", "longitude outside -180..180"));
        }
        if !(-90.0..=90.0).contains(&min_y) || !(-90.0..=90.0).contains(&max_y) {
            return Err(ModelError::invalid("bbox", "latitude outside -90..90"));
        }
        if min_x > max_x || min_y > max_y {
            return Err(ModelError::invalid(
                "bbox",
                "minimum is greater than maximum (expected minLon,minLat,maxLon,maxLat)",
            ));
        }
        Ok(Bbox {
            min_x,
            min_y,
            max_x,
            max_y,
        })
    }

    /// Parses `minLon,minLat,maxLon,maxLat` as used in query strings.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.len() != 4 {
            return Err(ModelError::invalid(
                "bbox",
                "expected four numbers minLon,minLat,maxLon,maxLat",
            ));
        }
        let mut v = [0.0; 4];
        for (i, p) in parts.iter().enumerate() {
            v[i] = p
                .parse::<f64>()
                .map_err(|_| ModelError::invalid("bbox", format!("'{p}' is not a number")))?;
        }
        Bbox::new(v[0], v[1], v[2], v[3])
    }

    /// The box covering a geometry, if it has any coordinates.
    pub fn of<G: geo::BoundingRect<f64>>(g: &G) -> Option<Self>
    where
        G::Output: Into<Option<geo::Rect<f64>>>,
    {
        let r: Option<geo::Rect<f64>> = g.bounding_rect().into();
        r.map(|r| Bbox {
            min_x: r.min().x,
            min_y: r.min().y,
            max_x: r.max().x,
            max_y: r.max().y,
        })
    }

    pub fn min_x(&self) -> f64 {
        self.min_x
    }
    pub fn min_y(&self) -> f64 {
        self.min_y
    }
    pub fn max_x(&self) -> f64 {
        self.max_x
    }
    pub fn max_y(&self) -> f64 {
        self.max_y
    }

    /// The smallest box covering both.
    pub fn union(&self, o: &Bbox) -> Bbox {
        Bbox {
            min_x: self.min_x.min(o.min_x),
            min_y: self.min_y.min(o.min_y),
            max_x: self.max_x.max(o.max_x),
            max_y: self.max_y.max(o.max_y),
        }
    }

    /// Whether the two boxes share any point.
    pub fn intersects(&self, o: &Bbox) -> bool {
        self.min_x <= o.max_x
            && o.min_x <= self.max_x
            && self.min_y <= o.max_y
            && o.min_y <= self.max_y
    }

    /// The part both boxes cover (`None` when they do not meet).
    pub fn intersection(&self, o: &Bbox) -> Option<Bbox> {
        self.intersects(o).then(|| Bbox {
            min_x: self.min_x.max(o.min_x),
            min_y: self.min_y.max(o.min_y),
            max_x: self.max_x.min(o.max_x),
            max_y: self.max_y.min(o.max_y),
        })
    }

    /// Whether `o` lies wholly inside this box.
    pub fn contains(&self, o: &Bbox) -> bool {
        self.min_x <= o.min_x
            && self.min_y <= o.min_y
            && o.max_x <= self.max_x
            && o.max_y <= self.max_y
    }

    /// The box grown by at least `m` metres on every side, measured on the CGCS2000
    /// ellipsoid, and kept inside the valid range. Conservative: a degree of latitude is
    /// never shorter than 110,574 m (at the equator), and a degree of longitude at latitude
    /// φ never shorter than 111,319 m · cos φ (the parallel's radius on the ellipsoid is at
    /// least a · cos φ), so the degrees added here cover at least `m` metres; 1 % more
    /// covers a projected CRS's scale factor. For "could anything here be within `m`
    /// metres of that?" before projecting a far-away query.
    pub fn grown_by_metres(&self, m: f64) -> Bbox {
        let m = m.max(0.0) * 1.01 + 1.0;
        let dlat = m / 110_574.0;
        let min_y = (self.min_y - dlat).max(-90.0);
        let max_y = (self.max_y + dlat).min(90.0);
        let widest = min_y.abs().max(max_y.abs());
        let cos = widest.to_radians().cos();
        let (min_x, max_x) = if cos < 1e-6 {
            (-180.0, 180.0)
        } else {
            let dlon = m / (111_319.0 * cos);
            (
                (self.min_x - dlon).max(-180.0),
                (self.max_x + dlon).min(180.0),
            )
        };
        Bbox {
            min_x,
            min_y,
            max_x,
            max_y,
        }
    }

    /// As a `geo::Rect`.
    pub fn to_rect(&self) -> geo::Rect<f64> {
        geo::Rect::new(
            geo::coord! { x: self.min_x, y: self.min_y },
            geo::coord! { x: self.max_x, y: self.max_y },
        )
    }

    /// The centre point.
    pub fn center(&self) -> (f64, f64) {
        (
            (self.min_x + self.max_x) / 2.0,
            (self.min_y + self.max_y) / 2.0,
        )
    }
}

impl TryFrom<[f64; 4]> for Bbox {
    type Error = ModelError;
    fn try_from(v: [f64; 4]) -> Result<Self, Self::Error> {
        Bbox::new(v[0], v[1], v[2], v[3])
    }
}

impl From<Bbox> for [f64; 4] {
    fn from(b: Bbox) -> Self {
        [b.min_x, b.min_y, b.max_x, b.max_y]
    }
}

/// One stored entity of any layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Record {
    Pipeline(Pipeline),
    RiskPoint(RiskPoint),
    GridCell(GridCell),
    Sensor(Sensor),
    Node(NetworkNode),
    Owner(Owner),
}

impl Record {
    /// The layer the record belongs to.
    pub fn layer(&self) -> Layer {
        match self {
            Record::Pipeline(_) => Layer::Pipelines,
            Record::RiskPoint(_) => Layer::RiskPoints,
            Record::GridCell(_) => Layer::GridCells,
            Record::Sensor(_) => Layer::Sensors,
            Record::Node(_) => Layer::Nodes,
            Record::Owner(_) => Layer::Owners,
        }
    }

    /// The record's id (0 when the store is to assign one).
    pub fn id(&self) -> i64 {
        match self {
            Record::Pipeline(r) => r.id,
            Record::RiskPoint(r) => r.id,
            Record::GridCell(r) => r.id,
            Record::Sensor(r) => r.id,
            Record::Node(r) => r.id,
            Record::Owner(r) => r.id,
        }
    }

    /// Sets the id (used by stores when they assign one).
    pub fn set_id(&mut self, id: i64) {
        match self {
            Record::Pipeline(r) => r.id = id,
            Record::RiskPoint(r) => r.id = id,
            Record::GridCell(r) => r.id = id,
            Record::Sensor(r) => r.id = id,
            Record::Node(r) => r.id = id,
            Record::Owner(r) => r.id = id,
        }
    }

    /// The geometry in lon/lat, `None` for owners.
    pub fn geometry(&self) -> Option<geo::Geometry<f64>> {
        match self {
            Record::Pipeline(r) => Some(geo::Geometry::LineString(r.geometry.clone())),
            Record::RiskPoint(r) => Some(r.geometry.clone()),
            Record::GridCell(r) => Some(geo::Geometry::MultiPolygon(r.geometry.clone())),
            Record::Sensor(r) => Some(geo::Geometry::Point(r.location)),
            Record::Node(r) => Some(geo::Geometry::Point(r.geometry)),
            Record::Owner(_) => None,
        }
    }

    /// Whether the record's geometry meets a lon/lat rectangle, without copying the
    /// geometry (the hot path of bbox queries); owners never do.
    pub fn intersects_rect(&self, rect: &geo::Rect<f64>) -> bool {
        use geo::Intersects;
        match self {
            Record::Pipeline(r) => r.geometry.intersects(rect),
            Record::RiskPoint(r) => r.geometry.intersects(rect),
            Record::GridCell(r) => r.geometry.intersects(rect),
            Record::Sensor(r) => r.location.intersects(rect),
            Record::Node(r) => r.geometry.intersects(rect),
            Record::Owner(_) => false,
        }
    }

    /// Checks every field and the geometry against the catalog.
    pub fn validate(&self, catalog: &Catalog) -> Result<(), ModelError> {
        match self {
            Record::Pipeline(r) => r.validate(),
            Record::RiskPoint(r) => r.validate(catalog),
            Record::GridCell(r) => r.validate(),
            Record::Sensor(r) => r.validate(),
            Record::Node(r) => r.validate(),
            Record::Owner(r) => r.validate(),
        }
    }

    /// Parses a record of `layer` from its JSON object form (properties + geometry merged).
    pub fn from_json(layer: Layer, v: serde_json::Value) -> Result<Record, serde_json::Error> {
        Ok(match layer {
            Layer::Pipelines => Record::Pipeline(serde_json::from_value(v)?),
            Layer::RiskPoints => Record::RiskPoint(serde_json::from_value(v)?),
            Layer::GridCells => Record::GridCell(serde_json::from_value(v)?),
            Layer::Sensors => Record::Sensor(serde_json::from_value(v)?),
            Layer::Nodes => Record::Node(serde_json::from_value(v)?),
            Layer::Owners => Record::Owner(serde_json::from_value(v)?),
        })
    }
}

/// A whole data set, as the generator makes it, a bulk load writes it and the index loads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    #[serde(default)]
    pub owners: Vec<Owner>,
    #[serde(default)]
    pub grid_cells: Vec<GridCell>,
    #[serde(default)]
    pub pipelines: Vec<Pipeline>,
    #[serde(default)]
    pub risk_points: Vec<RiskPoint>,
    #[serde(default)]
    pub sensors: Vec<Sensor>,
    /// The networks' nodes; loaded before the pipelines, whose ends name them.
    #[serde(default)]
    pub nodes: Vec<NetworkNode>,
}

impl Dataset {
    /// Number of records per layer, in [`Layer::ALL`] order.
    pub fn counts(&self) -> [(Layer, usize); 6] {
        [
            (Layer::Pipelines, self.pipelines.len()),
            (Layer::RiskPoints, self.risk_points.len()),
            (Layer::GridCells, self.grid_cells.len()),
            (Layer::Sensors, self.sensors.len()),
            (Layer::Nodes, self.nodes.len()),
            (Layer::Owners, self.owners.len()),
        ]
    }

    /// Total number of records.
    pub fn len(&self) -> usize {
        self.counts().iter().map(|(_, n)| n).sum()
    }

    /// True when there is nothing in any layer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Validates every record, and every reference between records of this data set
    /// (references to ids outside it are left to the store's foreign keys).
    /// Returns the first problem, naming the layer and id.
    pub fn validate(&self, catalog: &Catalog) -> Result<(), ModelError> {
        let tag = |layer: Layer, id: i64, e: ModelError| {
            ModelError::invalid(format!("{layer}[{id}]"), e.to_string())
        };
        for r in &self.owners {
            r.validate().map_err(|e| tag(Layer::Owners, r.id, e))?;
        }
        for r in &self.grid_cells {
            r.validate().map_err(|e| tag(Layer::GridCells, r.id, e))?;
        }
        for r in &self.nodes {
            r.validate().map_err(|e| tag(Layer::Nodes, r.id, e))?;
        }
        for r in &self.pipelines {
            r.validate().map_err(|e| tag(Layer::Pipelines, r.id, e))?;
        }
        for r in &self.risk_points {
            r.validate(catalog)
                .map_err(|e| tag(Layer::RiskPoints, r.id, e))?;
        }
        for r in &self.sensors {
            r.validate().map_err(|e| tag(Layer::Sensors, r.id, e))?;
        }
        Ok(())
    }
}

string_enum! {
    /// What a change-log entry did.
    pub enum ChangeOp {
        Insert = "insert",
        Update = "update",
        Delete = "delete",
        Bulk = "bulk",
    }
}

/// One entry of the append-only change log: later issues stream these to other instances
/// and to live clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Monotonic version number assigned by the store.
    pub version: i64,
    pub layer: Layer,
    /// The record id, or 0 for a bulk load.
    pub record_id: i64,
    pub op: ChangeOp,
    /// Who made the change (API key name or `cli`).
    pub actor: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

string_enum! {
    /// Access roles, from least to most privileged. A role includes every right of the
    /// roles before it in this list, except `auditor`: it can only read the audit log
    /// (issue 21), so it sits below `viewer` and [`crate::audit::may_read_audit`] names it
    /// besides `admin`.
    pub enum Role {
        Auditor = "auditor",
        Viewer = "viewer",
        Contractor = "contractor",
        Analyst = "analyst",
        Operator = "operator",
        Admin = "admin",
    }
}

/// Who is acting: an API key's name and role, or anonymous, or the local CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// Key name, `anonymous`, or `cli`.
    pub name: String,
    /// The key's id in the store, if the actor holds a key.
    pub key_id: Option<i64>,
    pub role: Role,
}

impl Actor {
    /// The local command line, which has full rights over the store it is pointed at.
    pub fn cli() -> Self {
        Actor {
            name: "cli".into(),
            key_id: None,
            role: Role::Admin,
        }
    }

    /// An unauthenticated caller with the configured anonymous role.
    pub fn anonymous(role: Role) -> Self {
        Actor {
            name: "anonymous".into(),
            key_id: None,
            role,
        }
    }

    /// Whether this actor has at least `role`.
    pub fn has(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// Checks that an optional text field is at most `max` characters and not blank.
pub(crate) fn check_text(field: &str, v: &Option<String>, max: usize) -> Result<(), ModelError> {
    if let Some(s) = v {
        check_required_text(field, s, max)?;
    }
    Ok(())
}

/// Checks that a required text field is non-blank and at most `max` characters.
pub(crate) fn check_required_text(field: &str, s: &str, max: usize) -> Result<(), ModelError> {
    if s.trim().is_empty() {
        return Err(ModelError::invalid(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(ModelError::invalid(
            field,
            format!("longer than {max} characters"),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ModelError::invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Checks that an optional number is finite and inside `lo..=hi`.
pub(crate) fn check_range(field: &str, v: Option<f64>, lo: f64, hi: f64) -> Result<(), ModelError> {
    if let Some(x) = v {
        if !x.is_finite() {
            return Err(ModelError::invalid(field, "is not a finite number"));
        }
        if x < lo || x > hi {
            return Err(ModelError::invalid(
                field,
                format!("{x} is outside {lo}..{hi}"),
            ));
        }
    }
    Ok(())
}

/// Checks that an id is positive, or zero where the store may assign it.
pub(crate) fn check_id(field: &str, id: i64, zero_ok: bool) -> Result<(), ModelError> {
    if id < 0 || (id == 0 && !zero_ok) {
        return Err(ModelError::invalid(
            field,
            format!("{id} is not a valid id"),
        ));
    }
    Ok(())
}

/// Parses a count from a query string (`limit`, `offset`): decimal digits only, of any
/// length. A value beyond what the machine counts saturates at `usize::MAX`, so every
/// endpoint follows one rule: a too-large limit is clamped to the endpoint's maximum,
/// however many digits it has; anything but digits (a sign, a fraction, blanks) is refused.
pub fn parse_count(field: &str, s: &str) -> Result<usize, ModelError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ModelError::invalid(
            field,
            format!(
                "'{}' is not a whole number (digits only)",
                s.chars().take(40).collect::<String>()
            ),
        ));
    }
    Ok(s.parse::<usize>().unwrap_or(usize::MAX))
}

/// The one rule for page sizes: absent gives `default`, 0 is refused (a page holds at
/// least one item), and anything above `max` is clamped to `max`.
pub fn page_limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize, ModelError> {
    match limit {
        None => Ok(default.min(max)),
        Some(0) => Err(ModelError::invalid("limit", "must be at least 1")),
        Some(n) => Ok(n.min(max)),
    }
}

/// Checks an API key's name: a short human name that does not start with `oidc:`, the
/// prefix of single-sign-on callers in the audit log (so a key cannot pass for one).
pub fn check_key_name(s: &str) -> Result<(), ModelError> {
    check_name("name", s)?;
    if s.trim_start().to_ascii_lowercase().starts_with("oidc:") {
        return Err(ModelError::invalid(
            "name",
            "'oidc:' is reserved for single-sign-on callers",
        ));
    }
    Ok(())
}

/// Checks a short human name (key names, labels): non-blank, at most 100 characters.
pub fn check_name(field: &str, s: &str) -> Result<(), ModelError> {
    check_required_text(field, s, 100)
}

#[cfg(test)]
mod bbox_tests {
    use super::Bbox;
    use geo::{Distance, Geodesic};

    #[test]
    fn key_names_cannot_pass_for_sign_on_callers() {
        assert!(super::check_key_name("ops-team").is_ok());
        assert!(super::check_key_name("oidc:alice").is_err());
        assert!(super::check_key_name(" OIDC:alice").is_err());
    }

    #[test]
    fn page_limits_default_refuse_zero_and_clamp() {
        assert_eq!(super::page_limit(None, 100, 10_000).unwrap(), 100);
        assert_eq!(super::page_limit(Some(7), 100, 10_000).unwrap(), 7);
        assert_eq!(
            super::page_limit(Some(usize::MAX), 100, 10_000).unwrap(),
            10_000
        );
        assert!(super::page_limit(Some(0), 100, 10_000).is_err());
    }

    #[test]
    fn counts_saturate_and_refuse_non_digits() {
        assert_eq!(super::parse_count("limit", "10").unwrap(), 10);
        assert_eq!(super::parse_count("limit", "0").unwrap(), 0);
        let huge = "9".repeat(40);
        assert_eq!(super::parse_count("limit", &huge).unwrap(), usize::MAX);
        for bad in ["", "-1", "+1", "1.5", " 1", "1e3", "ten"] {
            assert!(super::parse_count("limit", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn intersection_and_containment() {
        let a = Bbox::new(100.0, 20.0, 110.0, 30.0).unwrap();
        let b = Bbox::new(105.0, 25.0, 120.0, 40.0).unwrap();
        assert_eq!(
            a.intersection(&b),
            Some(Bbox::new(105.0, 25.0, 110.0, 30.0).unwrap())
        );
        let far = Bbox::new(-10.0, -10.0, 0.0, 0.0).unwrap();
        assert_eq!(a.intersection(&far), None);
        let world = Bbox::new(-180.0, -90.0, 180.0, 90.0).unwrap();
        assert_eq!(world.intersection(&a), Some(a));
        assert!(world.contains(&a) && !a.contains(&world) && a.contains(&a));
    }

    #[test]
    fn grown_box_reaches_at_least_the_distance() {
        for (y0, y1) in [(-1.0, 1.0), (29.0, 30.0), (59.0, 61.0), (-70.0, -69.0)] {
            let b = Bbox::new(106.0, y0, 107.0, y1).unwrap();
            for m in [0.0, 10.0, 1_000.0, 50_000.0] {
                let g = b.grown_by_metres(m);
                assert!(g.contains(&b));
                // Along the edges' own parallels and meridians, the shortest ways out.
                for y in [y0, y1] {
                    let west = Geodesic
                        .distance(geo::point!(x: 106.0, y: y), geo::point!(x: g.min_x(), y: y));
                    let east = Geodesic
                        .distance(geo::point!(x: 107.0, y: y), geo::point!(x: g.max_x(), y: y));
                    assert!(west >= m && east >= m, "lat {y}, {m} m: {west} {east}");
                }
                let south = Geodesic.distance(
                    geo::point!(x: 106.5, y: y0),
                    geo::point!(x: 106.5, y: g.min_y()),
                );
                let north = Geodesic.distance(
                    geo::point!(x: 106.5, y: y1),
                    geo::point!(x: 106.5, y: g.max_y()),
                );
                assert!(south >= m && north >= m, "{m} m: {south} {north}");
            }
        }
        let polar = Bbox::new(0.0, 89.9, 1.0, 90.0)
            .unwrap()
            .grown_by_metres(50_000.0);
        assert_eq!(
            (polar.min_x(), polar.max_x(), polar.max_y()),
            (-180.0, 180.0, 90.0)
        );
    }
}
