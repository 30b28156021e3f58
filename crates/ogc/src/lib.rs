//! OGC API – Features (Parts 1, 2 and 3) over the in-memory index: parsing of the items
//! query (every parameter checked, unknown ones refused), selection of records (R-tree
//! candidates for `bbox` and spatial filter literals, then exact tests, `datetime`, CQL2),
//! sorting, paging with `next`/`prev` links, property selection and output CRS. Filters run
//! on the typed record ([`fields`]); only the returned page is ordered and written, straight
//! to bytes. [`sql`] pushes attribute-only queries down to PostGIS; [`html`] renders pages
//! for browsers. The use cases the HTTP layer calls — the metadata documents, listing a
//! collection's items (index or SQL pushdown), one feature — are in [`service`]; the HTTP
//! layer (`src/http/ogc.rs`) extracts and renders; export reuses [`select`].

pub mod cql;
pub mod crs;
pub mod fields;
pub mod html;
pub mod openapi;
pub mod queryables;
pub mod service;
pub mod sql;

use chrono::{DateTime, Utc};
use crs::ApiCrs;
use lifeline_index::SpatialIndex;
use lifeline_model::feature::to_feature;
use lifeline_model::{Bbox, Layer, Record, Role};
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
    /// A failure that is not the client's: a blocking task that did not finish.
    #[error("{0}")]
    Internal(String),
}

impl OgcError {
    /// Shorthand for a 400.
    pub fn bad(m: impl Into<String>) -> Self {
        OgcError::BadRequest(m.into())
    }
}

/// Parses a collection id: the four spatial layers, for every role (what each role sees
/// of their attributes follows the layer's schema).
///
/// The owners table is not a feature collection. Its rows have no geometry, and OGC API –
/// Features serves features: GIS clients cannot draw them, and the suite's GeoJSON schema
/// (ogctests) rejects `"geometry": null`, so listing them failed conformance for every role
/// allowed to see them. Like pg_featureserv, which serves spatial tables only, the API
/// leaves them out and names where they are: `/features/owners` (contractors and above),
/// which pipelines reference by `owner_id`.
pub fn collection(id: &str) -> Result<Layer, OgcError> {
    let layer: Layer = id.parse().map_err(|_| {
        OgcError::NotFound(format!(
            "no collection '{}'",
            id.chars().take(60).collect::<String>()
        ))
    })?;
    if layer == Layer::Owners {
        return Err(OgcError::NotFound(
            "owners is not a feature collection (its records have no geometry): contractors and above read it at /features/owners".into(),
        ));
    }
    Ok(layer)
}

/// A time window: open ends are `None`.
pub type TimeWindow = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Output encodings of `/items` (`f=json|geojson`, `fgb|flatgeobuf`, `html`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    GeoJson,
    FlatGeobuf,
    /// A page for people ([`html`]).
    Html,
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
    /// The encoding `f=` asked for; `None`: none was named, the `Accept` header decides
    /// ([`ItemsQuery::output`]).
    pub format: Option<Format>,
    /// The query string to repeat in paging links, without `offset`.
    pub link_query: Vec<(String, String)>,
}

impl ItemsQuery {
    /// The encoding to answer in: the one `f=` named, else HTML for a browser (`Accept`
    /// naming `text/html`, see [`html::wants_html`]), else GeoJSON.
    pub fn output(&self, accept_html: bool) -> Format {
        match self.format {
            Some(f) => f,
            None if accept_html => Format::Html,
            None => Format::GeoJson,
        }
    }
}

impl std::str::FromStr for Format {
    type Err = OgcError;

    /// Parses an `f=` value of `/items`.
    fn from_str(s: &str) -> Result<Self, OgcError> {
        match s {
            "json" | "geojson" => Ok(Format::GeoJson),
            "fgb" | "flatgeobuf" => Ok(Format::FlatGeobuf),
            "html" => Ok(Format::Html),
            o => Err(OgcError::bad(format!(
                "f='{}' is not supported; use json, fgb or html",
                o.chars().take(20).collect::<String>()
            ))),
        }
    }
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
    if crs.code == lifeline_model::crs::CANONICAL && !crs.swap {
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
    let format = get("f").map(str::parse::<Format>).transpose()?;
    // One rule for counts (see `parse_count`): digits only; a limit above the maximum,
    // however long, is clamped to it.
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(s) => match lifeline_model::parse_count("limit", s) {
            Ok(0) | Err(_) => {
                return Err(OgcError::bad(format!(
                    "limit must be a whole number from 1 (larger values are clamped to {MAX_LIMIT})"
                )))
            }
            Ok(n) => n.min(MAX_LIMIT),
        },
    };
    let offset = match get("offset") {
        None => 0,
        Some(s) => lifeline_model::parse_count("offset", s)
            .map_err(|_| OgcError::bad("offset must be a whole number from 0"))?,
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
/// them, sorted by `sortby` then id. Builds a JSON Feature per match: for export, where every
/// match is written anyway; the API pages with [`items`].
pub fn select(
    index: &SpatialIndex,
    layer: Layer,
    role: Role,
    bbox: Option<&Bbox>,
    datetime: Option<&TimeWindow>,
    filter: Option<&cql::Filter>,
    sortby: &[(String, bool)],
) -> Result<Vec<Selected>, OgcError> {
    let mut matched = select_records(index, layer, bbox, datetime, filter)?;
    sort_records(&mut matched, sortby, usize::MAX);
    Ok(matched
        .into_iter()
        .map(|record| Selected {
            feature: to_feature(&record, role),
            record,
        })
        .collect())
}

/// The records of `layer` meeting the box, time window and filter, unsorted. The filter is
/// evaluated on the typed record; no JSON is built.
pub fn select_records(
    index: &SpatialIndex,
    layer: Layer,
    bbox: Option<&Bbox>,
    datetime: Option<&TimeWindow>,
    filter: Option<&cql::Filter>,
) -> Result<Vec<Arc<Record>>, OgcError> {
    let mut candidates = match (bbox, filter.and_then(|f| f.prefilter)) {
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
    let tprop = queryables::temporal_property(layer).filter(|_| datetime.is_some());
    candidates.retain(|record| {
        if let (Some((start, end)), Some(tp)) = (datetime, tprop) {
            let fields::Field::Date(d) = fields::field(record, tp) else {
                return false;
            };
            let t = d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
            // A date value covers its whole day.
            let t_end = t + chrono::Duration::days(1) - chrono::Duration::nanoseconds(1);
            if start.is_some_and(|s| t_end < s) || end.is_some_and(|e| t > e) {
                return false;
            }
        }
        filter.is_none_or(|f| f.matches(record))
    });
    Ok(candidates)
}

/// Orders records by `sortby` then id; only the first `keep` need to be in order (the rest
/// are dropped), so a page near the start costs a partial selection, not a full sort.
pub fn sort_records(items: &mut Vec<Arc<Record>>, sortby: &[(String, bool)], keep: usize) {
    use std::cmp::Ordering;
    let cmp = |a: &Arc<Record>, b: &Arc<Record>| -> Ordering {
        for (name, desc) in sortby {
            let o = fields::cmp_fields(fields::field(a, name), fields::field(b, name));
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.id().cmp(&b.id())
    };
    if keep == 0 {
        items.clear();
        return;
    }
    if keep < items.len() {
        items.select_nth_unstable_by(keep - 1, cmp);
        items.truncate(keep);
    }
    // Ids are unique, so the order is total and an unstable sort is deterministic.
    items.sort_unstable_by(cmp);
}

/// One page of an items response.
pub struct Page {
    /// The page's records, in order.
    pub records: Vec<Arc<Record>>,
    /// How many records match in all (`None` when not computed).
    pub matched: Option<usize>,
    pub next_offset: Option<usize>,
    pub prev_offset: Option<usize>,
}

impl Page {
    /// A page from its records and the total count, with paging links' offsets.
    pub fn new(records: Vec<Arc<Record>>, matched: usize, q: &ItemsQuery) -> Page {
        let end = q.offset + records.len();
        Page {
            next_offset: (end < matched).then_some(end),
            prev_offset: (q.offset > 0).then(|| q.offset.saturating_sub(q.limit)),
            records,
            matched: Some(matched),
        }
    }
}

/// Runs an items query over the index: selection (typed filter), then only the requested
/// page is ordered and kept.
pub fn items(
    index: &SpatialIndex,
    layer: Layer,
    _role: Role,
    q: &ItemsQuery,
) -> Result<Page, OgcError> {
    let mut matched = select_records(
        index,
        layer,
        q.bbox.as_ref(),
        q.datetime.as_ref(),
        q.filter.as_ref(),
    )?;
    let total = matched.len();
    sort_records(&mut matched, &q.sortby, q.offset.saturating_add(q.limit));
    let page: Vec<Arc<Record>> = matched.into_iter().skip(q.offset).collect();
    Ok(Page::new(page, total, q))
}

/// The property names the role may read, limited to the query's `properties`, in order.
pub fn output_names(layer: Layer, role: Role, q: &ItemsQuery) -> Vec<&'static str> {
    queryables::queryables(layer, role)
        .into_iter()
        .map(|x| x.name)
        .filter(|n| {
            q.properties
                .as_ref()
                .is_none_or(|keep| keep.iter().any(|k| k == n))
        })
        .collect()
}

/// Writes the page's features as a JSON array straight into bytes: properties limited to
/// `names`, geometry in the query's CRS.
pub fn write_features(
    out: &mut Vec<u8>,
    page: &Page,
    names: &[&str],
    crs: &ApiCrs,
) -> Result<(), OgcError> {
    out.push(b'[');
    let reproject = *crs != ApiCrs::crs84();
    for (i, r) in page.records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let g = match (reproject, r.geometry()) {
            (true, Some(g)) => Some(crs.from_canonical(&g)?),
            _ => None,
        };
        fields::write_feature(out, r, names, g.as_ref());
    }
    out.push(b']');
    Ok(())
}

/// The whole GeoJSON FeatureCollection of an items response as bytes.
pub fn render_collection(
    page: &Page,
    names: &[&str],
    crs: &ApiCrs,
    links: &Value,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, OgcError> {
    let mut out = Vec::with_capacity(256 + page.records.len() * 512);
    out.extend_from_slice(b"{\"type\":\"FeatureCollection\",\"timeStamp\":");
    fields::write_str(
        &mut out,
        &now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
    );
    if let Some(m) = page.matched {
        out.extend_from_slice(format!(",\"numberMatched\":{m}").as_bytes());
    }
    out.extend_from_slice(
        format!(",\"numberReturned\":{},\"features\":", page.records.len()).as_bytes(),
    );
    write_features(&mut out, page, names, crs)?;
    out.extend_from_slice(b",\"links\":");
    let _ = serde_json::to_writer(&mut out, links);
    out.push(b'}');
    Ok(out)
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
