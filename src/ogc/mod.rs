//! OGC API – Features (Parts 1, 2 and 3) over the in-memory index: parsing of the items
//! query (every parameter checked, unknown ones refused), selection of records (R-tree
//! candidates for `bbox` and spatial filter literals, then exact tests, `datetime`, CQL2),
//! sorting, paging with `next`/`prev` links, property selection and output CRS. The HTTP
//! layer (`src/http/ogc.rs`) only extracts and renders; export and analysis reuse
//! [`select`].

pub mod cql;
pub mod crs;
pub mod openapi;
pub mod queryables;

use crate::index::SpatialIndex;
use crate::model::feature::to_feature;
use crate::model::geom::to_geojson;
use crate::model::{Bbox, Layer, Record, Role};
use crate::AppError;
use chrono::{DateTime, Utc};
use crs::ApiCrs;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Default page size of `/items`.
pub const DEFAULT_LIMIT: usize = 10;
/// Largest page size; larger `limit`s are clamped to it (Part 1 permits that).
pub const MAX_LIMIT: usize = 10_000;

/// Why an OGC request was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum OgcError {
    /// A parameter or filter the client got wrong.
    #[error("{0}")]
    BadRequest(String),
    /// An unknown collection or feature.
    #[error("{0}")]
    NotFound(String),
    /// The caller's role may not read this collection.
    #[error("{0}")]
    Forbidden(String),
}

impl OgcError {
    /// Shorthand for a 400.
    pub fn bad(m: impl Into<String>) -> Self {
        OgcError::BadRequest(m.into())
    }
}

impl From<OgcError> for AppError {
    fn from(e: OgcError) -> Self {
        match e {
            OgcError::BadRequest(m) => AppError::BadRequest(m),
            OgcError::NotFound(m) => AppError::NotFound(m),
            OgcError::Forbidden(m) => AppError::Forbidden(m),
        }
    }
}

/// The collections a role may see: the four spatial layers. Owners (no geometry) stay on
/// `/features/owners`: OGC clients and the conformance suite expect a geometry per feature.
pub fn collections_for(_role: Role) -> Vec<Layer> {
    Layer::SPATIAL.to_vec()
}

/// Parses a collection id and checks the role may read it.
pub fn collection(id: &str, role: Role) -> Result<Layer, OgcError> {
    let layer: Layer = id.parse().map_err(|_| {
        OgcError::NotFound(format!(
            "no collection '{}'",
            id.chars().take(60).collect::<String>()
        ))
    })?;
    if !collections_for(role).contains(&layer) {
        return Err(OgcError::NotFound(format!(
            "no collection '{layer}'; owners are served at /features/owners"
        )));
    }
    Ok(layer)
}

/// A time window: open ends are `None`.
pub type TimeWindow = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Output encodings of `/items`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    GeoJson,
    FlatGeobuf,
}

/// A parsed, checked items query.
#[derive(Debug)]
pub struct ItemsQuery {
    pub bbox: Option<Bbox>,
    pub datetime: Option<TimeWindow>,
    pub limit: usize,
    pub offset: usize,
    pub properties: Option<Vec<String>>,
    pub crs: ApiCrs,
    pub sortby: Vec<(String, bool)>,
    pub filter: Option<cql::Filter>,
    pub format: Format,
    /// The query string to repeat in paging links, without `offset`.
    pub link_query: Vec<(String, String)>,
}

/// Parameters `/items` knows (besides queryable names, which filter by equality).
const ITEMS_PARAMS: &[&str] = &[
    "f",
    "bbox",
    "bbox-crs",
    "datetime",
    "limit",
    "offset",
    "properties",
    "crs",
    "sortby",
    "filter",
    "filter-lang",
    "filter-crs",
];

/// Parses a `datetime` parameter: an instant, or an interval `start/end` with `..` or an
/// empty string for an open end.
pub fn parse_datetime(s: &str) -> Result<TimeWindow, OgcError> {
    let bound = |b: &str| -> Result<Option<DateTime<Utc>>, OgcError> {
        if b.is_empty() || b == ".." {
            Ok(None)
        } else {
            cql::parse_instant(b).map(Some).map_err(|_| {
                OgcError::bad(format!(
                    "datetime: '{}' is not an RFC 3339 timestamp or date",
                    b.chars().take(40).collect::<String>()
                ))
            })
        }
    };
    match s.split_once('/') {
        Some((a, b)) => {
            let (a, b) = (bound(a)?, bound(b)?);
            if a.is_none() && b.is_none() {
                return Err(OgcError::bad(
                    "datetime: both ends of the interval are open",
                ));
            }
            if let (Some(x), Some(y)) = (a, b) {
                if x > y {
                    return Err(OgcError::bad("datetime: start is after end"));
                }
            }
            Ok((a, b))
        }
        None => {
            let t = bound(s)?.ok_or_else(|| OgcError::bad("datetime is empty"))?;
            // A whole date means the whole day.
            if s.len() == 10 {
                Ok((
                    Some(t),
                    Some(t + chrono::Duration::days(1) - chrono::Duration::nanoseconds(1)),
                ))
            } else {
                Ok((Some(t), Some(t)))
            }
        }
    }
}

/// Parses a `bbox` (4 or 6 numbers) given in `crs` into a lon/lat box.
pub fn parse_bbox(s: &str, crs: &ApiCrs) -> Result<Bbox, OgcError> {
    let nums: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| OgcError::bad("bbox must be 4 or 6 comma-separated numbers"))?;
    let (x0, y0, x1, y1) = match nums.as_slice() {
        [a, b, c, d] => (*a, *b, *c, *d),
        [a, b, _, d, e, _] => (*a, *b, *d, *e),
        _ => return Err(OgcError::bad("bbox must be 4 or 6 comma-separated numbers")),
    };
    if crs.code == crate::io::crs::CANONICAL && !crs.swap {
        return Bbox::new(x0, y0, x1, y1).map_err(|e| OgcError::bad(e.to_string()));
    }
    // Densify the outline so a projected box's curved edges are covered.
    let mut ring = Vec::new();
    for i in 0..=8 {
        let t = i as f64 / 8.0;
        ring.push((x0 + (x1 - x0) * t, y0));
        ring.push((x1, y0 + (y1 - y0) * t));
        ring.push((x1 - (x1 - x0) * t, y1));
        ring.push((x0, y1 - (y1 - y0) * t));
    }
    let mp = geo::Geometry::MultiPoint(geo::MultiPoint::from(ring));
    let ll = crs.to_canonical(&mp)?;
    Bbox::of(&ll)
        .ok_or_else(|| OgcError::bad("bbox is empty"))
        .and_then(|b| {
            Bbox::new(b.min_x(), b.min_y(), b.max_x(), b.max_y())
                .map_err(|e| OgcError::bad(e.to_string()))
        })
}

/// Parses and checks every parameter of an items request.
pub fn parse_items_query(
    pairs: &[(String, String)],
    layer: Layer,
    role: Role,
    index: &SpatialIndex,
) -> Result<ItemsQuery, OgcError> {
    let qs = queryables::queryables(layer, role);
    let mut seen = std::collections::HashSet::new();
    let mut eq: Vec<cql2::Expr> = Vec::new();
    for (k, v) in pairs {
        if !seen.insert(k.as_str()) {
            return Err(OgcError::bad(format!("parameter '{k}' is given twice")));
        }
        if !ITEMS_PARAMS.contains(&k.as_str()) {
            match qs.iter().find(|q| q.name == k) {
                Some(q) => {
                    let lit = match q.qtype {
                        queryables::QType::String => cql2::Expr::Literal(v.clone()),
                        queryables::QType::Number | queryables::QType::Integer => {
                            cql2::Expr::Float(v.parse().map_err(|_| {
                                OgcError::bad(format!("parameter '{k}' must be a number"))
                            })?)
                        }
                        queryables::QType::Date => cql2::Expr::Date {
                            date: Box::new(cql2::Expr::Literal(v.clone())),
                        },
                    };
                    eq.push(cql2::Expr::Operation {
                        op: "=".into(),
                        args: vec![
                            Box::new(cql2::Expr::Property {
                                property: k.clone(),
                            }),
                            Box::new(lit),
                        ],
                    });
                }
                None => {
                    return Err(OgcError::bad(format!(
                        "unknown query parameter '{}'; allowed: {} or a queryable of {layer}",
                        k.chars().take(60).collect::<String>(),
                        ITEMS_PARAMS.join(", ")
                    )))
                }
            }
        }
    }
    let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let format = match get("f") {
        None | Some("json") | Some("geojson") => Format::GeoJson,
        Some("fgb") | Some("flatgeobuf") => Format::FlatGeobuf,
        Some(o) => {
            return Err(OgcError::bad(format!(
                "f='{}' is not supported; use json or fgb",
                o.chars().take(20).collect::<String>()
            )))
        }
    };
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(s) => match s.parse::<usize>() {
            Ok(0) | Err(_) => {
                return Err(OgcError::bad(format!(
                    "limit must be an integer 1..{MAX_LIMIT}"
                )))
            }
            Ok(n) => n.min(MAX_LIMIT),
        },
    };
    let offset = match get("offset") {
        None => 0,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| OgcError::bad("offset must be a non-negative integer"))?,
    };
    let bbox_crs = match get("bbox-crs") {
        Some(c) => {
            if get("bbox").is_none() {
                return Err(OgcError::bad("bbox-crs given without bbox"));
            }
            ApiCrs::parse(c)?
        }
        None => ApiCrs::crs84(),
    };
    let bbox = get("bbox").map(|b| parse_bbox(b, &bbox_crs)).transpose()?;
    if bbox.is_some() && layer == Layer::Owners {
        return Err(OgcError::bad(
            "owners have no geometry; bbox does not apply",
        ));
    }
    let datetime = get("datetime").map(parse_datetime).transpose()?;
    let crs = get("crs")
        .map(ApiCrs::parse)
        .transpose()?
        .unwrap_or_else(ApiCrs::crs84);
    let properties = get("properties").map(|p| {
        p.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    });
    if let Some(ps) = &properties {
        for p in ps {
            if !qs.iter().any(|q| q.name == p) {
                return Err(OgcError::bad(format!(
                    "properties: '{}' is not a property of {layer} you may read",
                    p.chars().take(60).collect::<String>()
                )));
            }
        }
    }
    let mut sortby = Vec::new();
    if let Some(s) = get("sortby") {
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, desc) = match part.strip_prefix('-') {
                Some(n) => (n, true),
                None => (part.strip_prefix('+').unwrap_or(part), false),
            };
            if name != "id" && !qs.iter().any(|q| q.name == name) {
                return Err(OgcError::bad(format!(
                    "sortby: '{}' is not a queryable of {layer}",
                    name.chars().take(60).collect::<String>()
                )));
            }
            if !sortby.iter().any(|(n, _)| n == name) {
                sortby.push((name.to_string(), desc));
            }
        }
    }
    let lang = get("filter-lang").map(cql::FilterLang::parse).transpose()?;
    let filter_crs = get("filter-crs").map(ApiCrs::parse).transpose()?;
    let mut exprs = eq;
    if let Some(f) = get("filter") {
        let lang = lang.unwrap_or(if f.trim_start().starts_with('{') {
            cql::FilterLang::Json
        } else {
            cql::FilterLang::Text
        });
        exprs.push(cql::parse(f, lang)?);
    } else if lang.is_some() || filter_crs.is_some() {
        return Err(OgcError::bad(
            "filter-lang or filter-crs given without filter",
        ));
    }
    let filter = match exprs.len() {
        0 => None,
        _ => {
            let e = if exprs.len() == 1 {
                exprs.remove(0)
            } else {
                cql2::Expr::Operation {
                    op: "and".into(),
                    args: exprs.into_iter().map(Box::new).collect(),
                }
            };
            let fc = filter_crs.as_ref().map(|c| (c.code.as_str(), c.swap));
            Some(cql::Compiler::new(layer, &qs, fc, index).compile(&e)?)
        }
    };
    let link_query = pairs
        .iter()
        .filter(|(k, _)| k != "offset")
        .cloned()
        .collect();
    Ok(ItemsQuery {
        bbox,
        datetime,
        limit,
        offset,
        properties,
        crs,
        sortby,
        filter,
        format,
        link_query,
    })
}

/// A selected record with its GeoJSON Feature (attributes already reduced to the role).
pub struct Selected {
    pub record: Arc<Record>,
    pub feature: Value,
}

/// Records of `layer` that meet the box, the time window and the filter, as the role sees
/// them, sorted by `sortby` then id.
pub fn select(
    index: &SpatialIndex,
    layer: Layer,
    role: Role,
    bbox: Option<&Bbox>,
    datetime: Option<&TimeWindow>,
    filter: Option<&cql::Filter>,
    sortby: &[(String, bool)],
) -> Result<Vec<Selected>, OgcError> {
    let candidates = match (bbox, filter.and_then(|f| f.prefilter)) {
        (Some(b), _) => index
            .bbox(layer, b)
            .map_err(|e| OgcError::bad(e.to_string()))?,
        (None, Some(r)) => {
            let b = Bbox::new(
                r.min().x.clamp(-180.0, 180.0),
                r.min().y.clamp(-90.0, 90.0),
                r.max().x.clamp(-180.0, 180.0),
                r.max().y.clamp(-90.0, 90.0),
            )
            .map_err(|e| OgcError::bad(e.to_string()))?;
            index
                .bbox_candidates(layer, &b)
                .map_err(|e| OgcError::bad(e.to_string()))?
        }
        (None, None) => index.all(layer),
    };
    let tprop = queryables::temporal_property(layer);
    let mut out = Vec::with_capacity(candidates.len().min(65_536));
    for record in candidates {
        let feature = to_feature(&record, role);
        let props = feature
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let (Some((start, end)), Some(tp)) = (datetime, tprop) {
            let t = props
                .get(tp)
                .and_then(Value::as_str)
                .and_then(|s| cql::parse_instant(s).ok());
            let Some(t) = t else { continue };
            // A date value covers its whole day.
            let t_end = t + chrono::Duration::days(1) - chrono::Duration::nanoseconds(1);
            if start.is_some_and(|s| t_end < s) || end.is_some_and(|e| t > e) {
                continue;
            }
        }
        if let Some(f) = filter {
            let item = cql::Item {
                id: record.id(),
                props: &props,
                record: &record,
            };
            if !f.matches(&item) {
                continue;
            }
        }
        out.push(Selected { record, feature });
    }
    sort(&mut out, sortby);
    Ok(out)
}

fn sort(items: &mut [Selected], sortby: &[(String, bool)]) {
    use std::cmp::Ordering;
    let key = |s: &Selected, name: &str| -> Value {
        if name == "id" {
            json!(s.record.id())
        } else {
            s.feature["properties"]
                .get(name)
                .cloned()
                .unwrap_or(Value::Null)
        }
    };
    let cmp_vals = |a: &Value, b: &Value| -> Ordering {
        match (a, b) {
            (Value::Null, Value::Null) => Ordering::Equal,
            // Nulls last, as PostgreSQL sorts ascending.
            (Value::Null, _) => Ordering::Greater,
            (_, Value::Null) => Ordering::Less,
            (Value::Number(x), Value::Number(y)) => x
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&y.as_f64().unwrap_or(0.0)),
            (Value::String(x), Value::String(y)) => x.cmp(y),
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            _ => Ordering::Equal,
        }
    };
    items.sort_by(|a, b| {
        for (name, desc) in sortby {
            let o = cmp_vals(&key(a, name), &key(b, name));
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.record.id().cmp(&b.record.id())
    });
}

/// One page of an items response.
pub struct Page {
    pub features: Vec<Value>,
    /// The records of `features`, same order (for binary encodings).
    pub records: Vec<Arc<Record>>,
    pub matched: usize,
    pub next_offset: Option<usize>,
    pub prev_offset: Option<usize>,
}

/// Runs an items query: selection, paging, property selection and output CRS.
pub fn items(
    index: &SpatialIndex,
    layer: Layer,
    role: Role,
    q: &ItemsQuery,
) -> Result<Page, OgcError> {
    let selected = select(
        index,
        layer,
        role,
        q.bbox.as_ref(),
        q.datetime.as_ref(),
        q.filter.as_ref(),
        &q.sortby,
    )?;
    let matched = selected.len();
    let mut features = Vec::with_capacity(q.limit.min(matched));
    let mut records = Vec::with_capacity(q.limit.min(matched));
    for s in selected.into_iter().skip(q.offset).take(q.limit) {
        records.push(s.record.clone());
        features.push(shape(s, q)?);
    }
    let end = q.offset + features.len();
    Ok(Page {
        features,
        records,
        matched,
        next_offset: (end < matched).then_some(end),
        prev_offset: (q.offset > 0).then(|| q.offset.saturating_sub(q.limit)),
    })
}

/// Applies `properties` and `crs` to one selected feature.
pub fn shape(s: Selected, q: &ItemsQuery) -> Result<Value, OgcError> {
    let mut f = s.feature;
    if let Some(keep) = &q.properties {
        if let Some(Value::Object(p)) = f.get_mut("properties") {
            p.retain(|k, _| keep.iter().any(|x| x == k));
        }
    }
    if q.crs != ApiCrs::crs84() {
        if let Some(g) = s.record.geometry() {
            let t = q.crs.from_canonical(&g)?;
            f["geometry"] = serde_json::to_value(to_geojson(&t)).unwrap_or(Value::Null);
        }
    }
    Ok(f)
}

/// Builds a URL with a query string (values percent-encoded).
pub fn url_with(base: &str, query: &[(String, String)]) -> String {
    if query.is_empty() {
        return base.to_string();
    }
    let qs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("{base}?{}", qs.join("&"))
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The spatial extent of a layer for `/collections/{id}`.
pub fn extent(index: &SpatialIndex, layer: Layer) -> Value {
    let bbox = index
        .stats()
        .into_iter()
        .find(|s| s.layer == layer)
        .and_then(|s| s.bbox);
    match bbox {
        Some(b) => {
            json!({"spatial": {"bbox": [[b.min_x(), b.min_y(), b.max_x(), b.max_y()]], "crs": crs::CRS84}})
        }
        None => json!({"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]], "crs": crs::CRS84}}),
    }
}

/// Removes keys with null values from a JSON object (used for optional metadata).
pub fn compact(mut m: Map<String, Value>) -> Map<String, Value> {
    m.retain(|_, v| !v.is_null());
    m
}
