//! The OGC API use cases the HTTP layer (`src/http/ogc.rs`) calls, and the typed formats it
//! negotiates. A handler extracts the request, calls one function here and renders what it
//! gets back:
//!
//! - the metadata documents: the landing page ([`landing`]), the conformance classes
//!   ([`conformance_classes`]), the collections ([`collections`], [`collection`]);
//! - listing a collection's items ([`list_items`]): the query is parsed and checked, the
//!   planner ([`super::sql::plan`]) chooses the R-tree or PostGIS, and a pushed-down query
//!   the store refuses is answered from the index instead; the page then renders as HTML
//!   ([`items_html`]) or GeoJSON ([`items_geojson`]) here, or as FlatGeobuf by the server
//!   (GDAL lives in a tier this crate does not see);
//! - one feature ([`feature`]).
//!
//! Formats are parsed once into enums — [`MetaFormat`] for the metadata resources,
//! [`super::Format`] for items, [`FeatureFormat`] for one feature — and matched, never compared as
//! strings.

use super::crs::{self, ApiCrs};
use super::sql::{self, OgcStore, Plan, PlanRequest};
use super::{html, queryables, ItemsQuery, OgcError, Page};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use lifeline_index::SpatialIndex;
use lifeline_model::feature::to_feature;
use lifeline_model::geom::to_geojson;
use lifeline_model::{Layer, Role};
use lifeline_store::Backend;
use serde_json::{json, Value};
use std::str::FromStr;
use std::sync::Arc;

/// Media type of GeoJSON.
pub const GEOJSON: &str = "application/geo+json";
/// Media type of the OpenAPI definition.
pub const OPENAPI: &str = "application/vnd.oai.openapi+json;version=3.0";

/// The conformance classes this API implements.
pub const CONFORMANCE: &[&str] = &[
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
];

/// Whether a request's `Accept` header names `text/html` (a browser).
pub fn accepts_html(headers: &HeaderMap) -> bool {
    html::wants_html(headers, None)
}

/// The `f=` of the metadata resources (landing page, conformance, collections, the API
/// definition, queryables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaFormat {
    Json,
    Html,
}

impl FromStr for MetaFormat {
    type Err = OgcError;

    fn from_str(s: &str) -> Result<Self, OgcError> {
        match s {
            "json" => Ok(MetaFormat::Json),
            "html" => Ok(MetaFormat::Html),
            v => Err(OgcError::bad(format!(
                "f='{}' is not offered here; use json or html",
                v.chars().take(20).collect::<String>()
            ))),
        }
    }
}

/// The query of a metadata resource: nothing but `f` (the last one given counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaQuery {
    /// The format named, if any.
    pub f: Option<MetaFormat>,
}

impl MetaQuery {
    /// Refuses every parameter but `f=json|html`.
    pub fn parse(params: &[(String, String)]) -> Result<MetaQuery, OgcError> {
        let mut f = None;
        for (k, v) in params {
            if k != "f" {
                return Err(OgcError::bad(format!(
                    "unknown query parameter '{}'",
                    k.chars().take(60).collect::<String>()
                )));
            }
            f = Some(v.parse::<MetaFormat>()?);
        }
        Ok(MetaQuery { f })
    }

    /// Whether to answer in HTML: `f` decides; without it, a browser's `Accept` header.
    pub fn wants_html(&self, accept_html: bool) -> bool {
        match self.f {
            Some(f) => f == MetaFormat::Html,
            None => accept_html,
        }
    }
}

/// The `f=` of one feature: `json`, `geojson` or `html`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureFormat {
    Json,
    GeoJson,
    Html,
}

impl FromStr for FeatureFormat {
    type Err = OgcError;

    fn from_str(s: &str) -> Result<Self, OgcError> {
        match s {
            "json" => Ok(FeatureFormat::Json),
            "geojson" => Ok(FeatureFormat::GeoJson),
            "html" => Ok(FeatureFormat::Html),
            _ => Err(unsupported_parameter("f")),
        }
    }
}

fn unsupported_parameter(k: &str) -> OgcError {
    OgcError::bad(format!(
        "unknown or unsupported query parameter '{}'",
        k.chars().take(60).collect::<String>()
    ))
}

/// A link object of the OGC documents.
pub fn link(href: String, rel: &str, typ: &str, title: &str) -> Value {
    json!({"href": href, "rel": rel, "type": typ, "title": title})
}

/// The landing page: links to the API definition, conformance and the collections.
pub fn landing(base: &str) -> Value {
    let b = base;
    json!({
        "title": "Lifeline — underground lifelines",
        "description": "OGC API – Features over the pipelines, risk points, grid cells and sensors of the city's underground lifelines, with CQL2 filtering, CRS support and analysis endpoints.",
        "links": [
            link(format!("{b}/"), "self", "application/json", "This document"),
            link(format!("{b}/api"), "service-desc", OPENAPI, "The API definition (OpenAPI 3.0)"),
            link(format!("{b}/conformance"), "conformance", "application/json", "Conformance classes"),
            link(format!("{b}/collections"), "data", "application/json", "Feature collections"),
            link(format!("{b}/?f=html"), "alternate", "text/html", "This document as HTML"),
        ]
    })
}

/// The conformance classes declared. The HTML class is not: HTML views exist for people
/// (landing, collections, items, features), but the OpenAPI document is JSON only, which
/// the class forbids.
pub fn conformance_classes() -> Vec<&'static str> {
    CONFORMANCE
        .iter()
        .copied()
        .filter(|c| !c.ends_with("/html"))
        .collect()
}

/// The human title of a collection.
pub fn title(layer: Layer) -> &'static str {
    match layer {
        Layer::Pipelines => "Pipelines",
        Layer::RiskPoints => "Risk points",
        Layer::GridCells => "Grid cells",
        Layer::Sensors => "Sensors",
        Layer::Nodes => "Network nodes",
        Layer::Owners => "Owners",
    }
}

/// One collection's metadata as the role sees it (`/collections/{id}`).
pub fn collection(index: &SpatialIndex, base: &str, layer: Layer, role: Role) -> Value {
    let (b, id) = (base, layer.as_str());
    let desc = match layer {
        Layer::Pipelines if role < Role::Analyst => {
            "Underground pipelines (kind and status only below the analyst role)"
        }
        Layer::Pipelines => {
            "Underground pipelines with kind, size, depth, owner and survey attributes"
        }
        Layer::RiskPoints => "Risk points of the risk one map",
        Layer::GridCells => "Grid-governance cells: district, street, community, grid, micro-grid",
        Layer::Sensors => "Sensing devices",
        Layer::Nodes if role < Role::Analyst => {
            "Network nodes: sources, valves, customer connections, junctions (kind and type only below the analyst role)"
        }
        Layer::Nodes => {
            "Network nodes: sources, valves with their state, customer connections with their counts, junctions"
        }
        Layer::Owners => "Pipeline owners and operators (no geometry)",
    };
    let c = json!({
        "id": id,
        "title": title(layer),
        "description": desc,
        "itemType": "feature",
        "extent": super::extent(index, layer),
        "crs": crs::supported_uris(),
        "storageCrs": crs::storage_uri(),
        "links": [
            link(format!("{b}/collections/{id}"), "self", "application/json", "This collection"),
            link(format!("{b}/collections/{id}/items"), "items", GEOJSON, "Features as GeoJSON"),
            link(format!("{b}/collections/{id}/items?f=fgb"), "items", "application/flatgeobuf", "Features as FlatGeobuf"),
            link(format!("{b}/collections/{id}/queryables"), QUERYABLES_REL, "application/schema+json", "Queryables"),
        ]
    });
    c
}

/// The metadata of every collection the role may read.
pub fn collections(index: &SpatialIndex, base: &str, role: Role) -> Vec<Value> {
    Layer::SPATIAL
        .iter()
        .map(|&l| collection(index, base, l, role))
        .collect()
}

/// The JSON document of `/collections` around [`collections`].
pub fn collections_doc(base: &str, cols: Vec<Value>) -> Value {
    let b = base;
    json!({
        "links": [
            link(format!("{b}/collections"), "self", "application/json", "Collections"),
            link(format!("{b}/collections?f=html"), "alternate", "text/html", "Collections as HTML"),
        ],
        "crs": crs::supported_uris(),
        "collections": cols,
    })
}

/// An items request as the HTTP layer extracted it.
#[derive(Debug, Clone)]
pub struct ItemsRequest {
    /// The collection id of the path.
    pub collection: String,
    /// The caller's role.
    pub role: Role,
    /// The query string's pairs, in order.
    pub params: Vec<(String, String)>,
    /// The `X-Ogc-Plan` request header (`auto`, `index` or `sql`), if any.
    pub plan: Option<String>,
}

/// One page of a collection's items, ready to render.
pub struct Items {
    /// The collection id as the client named it (repeated in links).
    pub collection_id: String,
    pub layer: Layer,
    pub role: Role,
    pub query: ItemsQuery,
    pub page: Page,
    /// The path that answered.
    pub plan: Plan,
    /// The properties written, in order: those the role may read, limited to the
    /// query's `properties`.
    pub names: Vec<&'static str>,
}

impl Items {
    /// The `Content-Crs` header value: the output CRS's URI in angle brackets.
    pub fn content_crs(&self) -> String {
        format!("<{}>", self.query.crs.uri)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, OgcError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OgcError::Internal(e.to_string()))
}

/// Lists a collection's items: checks the collection against the role, parses the query,
/// plans it (R-tree or PostGIS, or as `X-Ogc-Plan` forces), and runs it. CPU work runs on
/// the blocking pool. A pushed-down query the store refuses (PostgreSQL can refuse what
/// Rust evaluates, such as a float8 overflow in filter arithmetic) is answered from the
/// index rather than failing the client.
pub async fn list_items<S>(
    store: &S,
    backend: Backend,
    index: &Arc<SpatialIndex>,
    req: ItemsRequest,
) -> Result<Items, OgcError>
where
    S: OgcStore + Sync + ?Sized,
{
    let role = req.role;
    let layer = super::collection(&req.collection)?;
    let plan_req = PlanRequest::parse(req.plan.as_deref())?;
    let (idx, params) = (index.clone(), req.params);
    let (query, plan, page) = blocking(move || -> Result<_, OgcError> {
        let q = super::parse_items_query(&params, layer, role, &idx)?;
        let plan = sql::plan(plan_req, backend, layer, &q)?;
        let page = match plan {
            Plan::Index => Some(super::items(&idx, layer, role, &q)?),
            Plan::Sql => None,
        };
        Ok((q, plan, page))
    })
    .await??;
    let (query, page, plan) = match page {
        Some(page) => (query, page, plan),
        None => pushed_down(store, index, layer, role, query).await?,
    };
    Ok(Items {
        collection_id: req.collection,
        names: super::output_names(layer, role, &query),
        layer,
        role,
        query,
        page,
        plan,
    })
}

/// Runs a query the planner sent to SQL; the page's records come from the index, so both
/// paths render the same.
async fn pushed_down<S>(
    store: &S,
    index: &Arc<SpatialIndex>,
    layer: Layer,
    role: Role,
    q: ItemsQuery,
) -> Result<(ItemsQuery, Page, Plan), OgcError>
where
    S: OgcStore + Sync + ?Sized,
{
    let sq = sql::translate(layer, &q).map_err(OgcError::BadRequest)?;
    match store.ogc_items(&sq).await {
        Ok(Some(sp)) => {
            let records = sp
                .ids
                .iter()
                .filter_map(|id| index.get(layer, *id))
                .collect();
            let page = Page::new(records, sp.matched, &q);
            Ok((q, page, Plan::Sql))
        }
        other => {
            if let Err(e) = other {
                tracing::warn!(error = %e, "OGC SQL pushdown failed; using the index");
            }
            let index = index.clone();
            let (q, page) = blocking(move || {
                let page = super::items(&index, layer, role, &q);
                (q, page)
            })
            .await?;
            Ok((q, page?, Plan::Index))
        }
    }
}

fn with_offset(q: &[(String, String)], offset: usize) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = q.to_vec();
    if offset > 0 {
        v.push(("offset".into(), offset.to_string()));
    }
    v
}

fn with_f(q: &[(String, String)], f: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = q.iter().filter(|(k, _)| k != "f").cloned().collect();
    v.push(("f".into(), f.into()));
    v
}

/// The links of an items page: this page, the collection, the page as FlatGeobuf and as
/// HTML, the collection's queryables, and the next and previous pages. The same links go
/// into the body and into the `Link` header ([`link_header`]).
pub fn items_links(base: &str, items: &Items) -> Value {
    let (b, id, q) = (base, &items.collection_id, &items.query);
    let url = format!("{b}/collections/{id}/items");
    let this = with_offset(&q.link_query, q.offset);
    let mut links = vec![
        link(super::url_with(&url, &this), "self", GEOJSON, "This page"),
        link(
            format!("{b}/collections/{id}"),
            "collection",
            "application/json",
            "The collection",
        ),
    ];
    links.push(link(
        super::url_with(&url, &with_f(&this, "fgb")),
        "alternate",
        "application/flatgeobuf",
        "This page as FlatGeobuf",
    ));
    links.push(link(
        super::url_with(&url, &with_f(&this, "html")),
        "alternate",
        "text/html",
        "This page as HTML",
    ));
    links.push(link(
        format!("{b}/collections/{id}/queryables"),
        QUERYABLES_REL,
        "application/schema+json",
        "Queryables",
    ));
    if let Some(n) = items.page.next_offset {
        links.push(link(
            super::url_with(&url, &with_offset(&q.link_query, n)),
            "next",
            GEOJSON,
            "Next page",
        ));
    }
    if let Some(pv) = items.page.prev_offset {
        links.push(link(
            super::url_with(&url, &with_offset(&q.link_query, pv)),
            "prev",
            GEOJSON,
            "Previous page",
        ));
    }
    Value::Array(links)
}

/// The link relation of a collection's queryables (OGC API – Features Part 3).
pub const QUERYABLES_REL: &str = "http://www.opengis.net/def/rel/ogc/1.0/queryables";

/// Links as an RFC 8288 `Link` header value: `<href>; rel="…"; type="…"`, comma-separated.
/// Every href is built by [`super::url_with`], which percent-encodes all but unreserved
/// characters, so none holds a `,`, `;`, `<` or `>` that would break the list.
pub fn link_header(links: &Value) -> String {
    links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let (href, rel, typ) = (l["href"].as_str()?, l["rel"].as_str()?, l["type"].as_str()?);
            Some(format!("<{href}>; rel=\"{rel}\"; type=\"{typ}\""))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An items page as HTML: a table with paging links.
pub fn items_html(base: &str, items: &Items) -> String {
    html::items(
        base,
        &format!("{} — items", title(items.layer)),
        &items.collection_id,
        &items.page.records,
        &items.names,
        items.page.matched,
        &items_links(base, items),
    )
}

/// An items page as a GeoJSON FeatureCollection (bytes), stamped `now`. Writing a large
/// page (and reprojecting it) is CPU work: it runs on the blocking pool.
pub async fn items_geojson(
    base: &str,
    items: Items,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, OgcError> {
    let links = items_links(base, &items);
    blocking(move || {
        super::render_collection(&items.page, &items.names, &items.query.crs, &links, now)
    })
    .await?
}

/// The query of one feature: `crs` and `f`, nothing else.
#[derive(Debug, Clone)]
pub struct FeatureQuery {
    pub crs: ApiCrs,
    pub f: Option<FeatureFormat>,
}

impl FeatureQuery {
    /// Parses the pairs of a feature request (the last of a repeated name counts).
    pub fn parse(params: &[(String, String)]) -> Result<FeatureQuery, OgcError> {
        let mut q = FeatureQuery {
            crs: ApiCrs::crs84(),
            f: None,
        };
        for (k, v) in params {
            match k.as_str() {
                "crs" => q.crs = ApiCrs::parse(v)?,
                "f" => q.f = Some(v.parse()?),
                _ => return Err(unsupported_parameter(k)),
            }
        }
        Ok(q)
    }
}

/// One feature, as the HTTP layer renders it.
pub enum FeatureAnswer {
    /// A page for people.
    Html(String),
    /// A GeoJSON Feature with its links, and the `Content-Crs` header value.
    GeoJson { feature: Value, content_crs: String },
}

/// One feature by id (`/collections/{collection}/items/{fid}`), as the role sees it: HTML
/// when `f=html` or, without `f`, when the client accepts HTML; else GeoJSON in the
/// query's CRS.
pub fn feature(
    index: &SpatialIndex,
    base: &str,
    collection: &str,
    fid: &str,
    role: Role,
    params: &[(String, String)],
    accept_html: bool,
) -> Result<FeatureAnswer, OgcError> {
    let layer = super::collection(collection)?;
    let q = FeatureQuery::parse(params)?;
    let fid_n = match fid.parse::<i64>() {
        Ok(n) if n > 0 => n,
        _ => {
            return Err(OgcError::NotFound(format!(
                "no feature '{}' in {layer}",
                fid.chars().take(40).collect::<String>()
            )))
        }
    };
    let record = index
        .get(layer, fid_n)
        .ok_or_else(|| OgcError::NotFound(format!("no feature {fid_n} in {layer}")))?;
    let html = match q.f {
        Some(f) => f == FeatureFormat::Html,
        None => accept_html,
    };
    if html {
        let names: Vec<&str> = queryables::queryables(layer, role)
            .into_iter()
            .map(|q| q.name)
            .collect();
        return Ok(FeatureAnswer::Html(html::feature(
            base, collection, &record, &names,
        )));
    }
    let mut f = to_feature(&record, role);
    if q.crs != ApiCrs::crs84() {
        if let Some(g) = record.geometry() {
            f["geometry"] =
                serde_json::to_value(to_geojson(&q.crs.from_canonical(&g)?)).unwrap_or(Value::Null);
        }
    }
    let (b, id) = (base, collection);
    f["links"] = json!([
        link(
            format!("{b}/collections/{id}/items/{fid_n}"),
            "self",
            GEOJSON,
            "This feature"
        ),
        link(
            format!("{b}/collections/{id}"),
            "collection",
            "application/json",
            "The collection"
        ),
    ]);
    Ok(FeatureAnswer::GeoJson {
        feature: f,
        content_crs: format!("<{}>", q.crs.uri),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn metadata_queries_take_only_f() {
        assert_eq!(MetaQuery::parse(&[]).unwrap().f, None);
        let q = MetaQuery::parse(&pairs(&[("f", "json"), ("f", "html")])).unwrap();
        assert_eq!(q.f, Some(MetaFormat::Html));
        assert!(q.wants_html(false));
        assert!(!MetaQuery::parse(&pairs(&[("f", "json")]))
            .unwrap()
            .wants_html(true));
        assert!(MetaQuery::default().wants_html(true));
        let e = MetaQuery::parse(&pairs(&[("f", "xml")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f='xml' is not offered here; use json or html"
        );
        let e = MetaQuery::parse(&pairs(&[("limit", "3")])).unwrap_err();
        assert_eq!(e.to_string(), "unknown query parameter 'limit'");
    }

    #[test]
    fn feature_queries_name_what_is_unsupported() {
        let q = FeatureQuery::parse(&pairs(&[("f", "geojson")])).unwrap();
        assert_eq!(q.f, Some(FeatureFormat::GeoJson));
        let e = FeatureQuery::parse(&pairs(&[("f", "fgb")])).unwrap_err();
        assert_eq!(e.to_string(), "unknown or unsupported query parameter 'f'");
        let e = FeatureQuery::parse(&pairs(&[("limit", "1")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown or unsupported query parameter 'limit'"
        );
    }

    #[test]
    fn item_formats_parse_once() {
        assert_eq!("json".parse::<Format>().unwrap(), Format::GeoJson);
        assert_eq!("flatgeobuf".parse::<Format>().unwrap(), Format::FlatGeobuf);
        assert!("csv".parse::<Format>().is_err());
        assert_eq!(Plan::Sql.as_str(), "sql");
    }
}
