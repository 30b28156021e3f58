//! `/ogc`: OGC API – Features (Parts 1, 2 and 3) — landing page, conformance, the OpenAPI
//! definition, collections, items (GeoJSON or FlatGeobuf), single features and queryables.
//! Mounted under `/ogc` because `/` serves the web client. Handlers extract, call
//! [`crate::ogc`], and render; access control is the core's (`Caller`, role-filtered
//! attributes, owners from `contractor`).

use super::{Caller, QueryParams};
use crate::model::feature::to_feature;
use crate::model::geom::to_geojson;
use crate::model::{Layer, Role};
use crate::ogc::{self, crs::ApiCrs, OgcError};
use crate::state::AppState;
use crate::AppError;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

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

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ogc", get(landing))
        .route("/ogc/", get(landing))
        .route("/ogc/conformance", get(conformance))
        .route("/ogc/api", get(api))
        .route("/ogc/collections", get(collections))
        .route("/ogc/collections/{id}", get(collection))
        .route("/ogc/collections/{id}/items", get(items))
        .route("/ogc/collections/{id}/items/{fid}", get(feature))
        .route("/ogc/collections/{id}/queryables", get(queryables))
}

/// The API root URL as the client reached it (`http://host/ogc`).
fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}/ogc")
}

/// Refuses every parameter but `f=json|html` on the metadata resources; says whether to
/// answer in HTML (`f=html`, or a browser's `Accept`).
fn only_f(params: &[(String, String)], headers: &HeaderMap) -> Result<bool, AppError> {
    let mut f = None;
    for (k, v) in params {
        if k != "f" {
            return Err(AppError::BadRequest(format!(
                "unknown query parameter '{}'",
                k.chars().take(60).collect::<String>()
            )));
        }
        if v != "json" && v != "html" {
            return Err(AppError::BadRequest(format!(
                "f='{}' is not offered here; use json or html",
                v.chars().take(20).collect::<String>()
            )));
        }
        f = Some(v.as_str());
    }
    Ok(ogc::html::wants_html(headers, f))
}

fn html_response(body: String) -> Response {
    axum::response::Html(body).into_response()
}

fn link(href: String, rel: &str, typ: &str, title: &str) -> Value {
    json!({"href": href, "rel": rel, "type": typ, "title": title})
}

fn json_response(v: Value, content_type: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        Json(v),
    )
        .into_response()
}

/// Landing page: links to the API definition, conformance and the collections (JSON, or
/// HTML for browsers).
pub async fn landing(
    headers: HeaderMap,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let html = only_f(&p, &headers)?;
    let b = base(&headers);
    let doc = json!({
        "title": "Lifeline — underground lifelines",
        "description": "OGC API – Features over the pipelines, risk points, grid cells and sensors of the city's underground lifelines, with CQL2 filtering, CRS support and analysis endpoints.",
        "links": [
            link(format!("{b}/"), "self", "application/json", "This document"),
            link(format!("{b}/api"), "service-desc", OPENAPI, "The API definition (OpenAPI 3.0)"),
            link(format!("{b}/conformance"), "conformance", "application/json", "Conformance classes"),
            link(format!("{b}/collections"), "data", "application/json", "Feature collections"),
            link(format!("{b}/?f=html"), "alternate", "text/html", "This document as HTML"),
        ]
    });
    Ok(if html {
        html_response(ogc::html::landing(&b, &doc))
    } else {
        Json(doc).into_response()
    })
}

/// Conformance declaration.
pub async fn conformance(
    headers: HeaderMap,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let html = only_f(&p, &headers)?;
    // The HTML class is not declared: HTML views exist for people (landing, collections,
    // items, features), but the OpenAPI document is JSON only, which the class forbids.
    let classes: Vec<&str> = CONFORMANCE
        .iter()
        .copied()
        .filter(|c| !c.ends_with("/html"))
        .collect();
    Ok(if html {
        html_response(ogc::html::conformance(&base(&headers), &classes))
    } else {
        Json(json!({"conformsTo": classes})).into_response()
    })
}

/// The OpenAPI 3.0 definition of this API.
pub async fn api(
    headers: HeaderMap,
    caller: Caller,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    if only_f(&p, &headers)? && p.iter().any(|(_, v)| v == "html") {
        return Err(AppError::BadRequest(
            "the API definition is offered as JSON only; use f=json".into(),
        ));
    }
    let doc = ogc::openapi::document(&base(&headers), caller.0.role);
    Ok(json_response(doc, OPENAPI))
}

fn title(layer: Layer) -> &'static str {
    match layer {
        Layer::Pipelines => "Pipelines",
        Layer::RiskPoints => "Risk points",
        Layer::GridCells => "Grid cells",
        Layer::Sensors => "Sensors",
        Layer::Owners => "Owners",
    }
}

fn describe(state: &AppState, b: &str, layer: Layer, role: Role) -> Value {
    let id = layer.as_str();
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
        Layer::Owners => "Pipeline owners and operators (no geometry)",
    };
    let mut c = json!({
        "id": id,
        "title": title(layer),
        "description": desc,
        "itemType": "feature",
        "extent": ogc::extent(&state.index, layer),
        "crs": ogc::crs::supported_uris(),
        "storageCrs": ogc::crs::storage_uri(),
        "links": [
            link(format!("{b}/collections/{id}"), "self", "application/json", "This collection"),
            link(format!("{b}/collections/{id}/items"), "items", GEOJSON, "Features as GeoJSON"),
            link(format!("{b}/collections/{id}/items?f=fgb"), "items", "application/flatgeobuf", "Features as FlatGeobuf"),
            link(format!("{b}/collections/{id}/queryables"), "http://www.opengis.net/def/rel/ogc/1.0/queryables", "application/schema+json", "Queryables"),
        ]
    });
    if layer == Layer::Owners {
        // No geometry: no spatial extent, no FlatGeobuf, no CRS choice.
        if let Value::Object(m) = &mut c {
            m.remove("extent");
            m.remove("crs");
            m.remove("storageCrs");
        }
        if let Some(Value::Array(links)) = c.get_mut("links") {
            links.retain(|l| l["type"] != "application/flatgeobuf");
        }
    }
    c
}

/// The collections the caller may read.
pub async fn collections(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let html = only_f(&p, &headers)?;
    let b = base(&headers);
    let cols: Vec<Value> = ogc::collections_for(caller.0.role)
        .into_iter()
        .map(|l| describe(&state, &b, l, caller.0.role))
        .collect();
    if html {
        return Ok(html_response(ogc::html::collections(&b, &cols)));
    }
    Ok(Json(json!({
        "links": [
            link(format!("{b}/collections"), "self", "application/json", "Collections"),
            link(format!("{b}/collections?f=html"), "alternate", "text/html", "Collections as HTML"),
        ],
        "crs": ogc::crs::supported_uris(),
        "collections": cols,
    }))
    .into_response())
}

/// One collection's metadata.
pub async fn collection(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let html = only_f(&p, &headers)?;
    let layer = ogc::collection(&id, caller.0.role)?;
    let b = base(&headers);
    let c = describe(&state, &b, layer, caller.0.role);
    Ok(if html {
        html_response(ogc::html::collection(&b, &c))
    } else {
        Json(c).into_response()
    })
}

/// The queryables of a collection for the caller's role (JSON Schema).
pub async fn queryables(
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    if only_f(&p, &headers)? && p.iter().any(|(_, v)| v == "html") {
        return Err(AppError::BadRequest(
            "queryables are offered as JSON Schema only; use f=json".into(),
        ));
    }
    let layer = ogc::collection(&id, caller.0.role)?;
    let url = format!("{}/collections/{id}/queryables", base(&headers));
    Ok(json_response(
        ogc::queryables::schema(layer, caller.0.role, &url),
        "application/schema+json",
    ))
}

/// Features of a collection: bbox, datetime, CQL2 filter, sort, paging, CRS, format.
pub async fn items(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let role = caller.0.role;
    let layer = ogc::collection(&id, role)?;
    let b = base(&headers);
    let html = ogc::html::wants_html(
        &headers,
        p.iter().find(|(k, _)| k == "f").map(|(_, v)| v.as_str()),
    );
    let plan_req =
        ogc::sql::PlanRequest::parse(headers.get("x-ogc-plan").and_then(|h| h.to_str().ok()))?;
    let backend = state.store.backend();
    let index = state.index.clone();
    let (q, plan, page) = tokio::task::spawn_blocking(move || -> Result<_, OgcError> {
        let q = ogc::parse_items_query(&p, layer, role, &index)?;
        let plan = ogc::sql::plan(plan_req, backend, layer, &q)?;
        let page = match plan {
            ogc::sql::Plan::Index => Some(ogc::items(&index, layer, role, &q)?),
            ogc::sql::Plan::Sql => None,
        };
        Ok((q, plan, page))
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    let (page, plan) = match page {
        Some(p) => (p, plan),
        None => {
            let sq = ogc::sql::translate(layer, &q).map_err(AppError::BadRequest)?;
            match state.store.ogc_items(&sq).await {
                Ok(Some(sp)) => {
                    // The page's records come from the index, so both paths render the same.
                    let records = sp
                        .ids
                        .iter()
                        .filter_map(|id| state.index.get(layer, *id))
                        .collect();
                    (ogc::Page::new(records, sp.matched, &q), plan)
                }
                // PostgreSQL can refuse what Rust evaluates (a float8 overflow in filter
                // arithmetic): answer from the index rather than fail the client.
                other => {
                    if let Err(e) = other {
                        tracing::warn!(error = %e, "OGC SQL pushdown failed; using the index");
                    }
                    let index = state.index.clone();
                    let (q2, page) = tokio::task::spawn_blocking(move || {
                        let page = ogc::items(&index, layer, role, &q);
                        (q, page)
                    })
                    .await
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                    return finish_items(
                        &b,
                        &id,
                        layer,
                        role,
                        q2,
                        page?,
                        ogc::sql::Plan::Index,
                        html,
                        state.clock.now(),
                    )
                    .await;
                }
            }
        }
    };
    finish_items(&b, &id, layer, role, q, page, plan, html, state.clock.now()).await
}

/// Renders an items page: HTML, FlatGeobuf or GeoJSON bytes, with links and headers.
#[allow(clippy::too_many_arguments)]
async fn finish_items(
    b: &str,
    id: &str,
    layer: Layer,
    role: Role,
    q: ogc::ItemsQuery,
    page: ogc::Page,
    plan: ogc::sql::Plan,
    html: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Response, AppError> {
    let plan_header = (
        header::HeaderName::from_static("x-ogc-plan"),
        HeaderValue::from_static(match plan {
            ogc::sql::Plan::Index => "index",
            ogc::sql::Plan::Sql => "sql",
        }),
    );
    let content_crs = format!("<{}>", q.crs.uri);
    let names = ogc::output_names(layer, role, &q);
    if q.format == ogc::Format::FlatGeobuf {
        let code = q.crs.code.clone();
        let out: Vec<crate::io::gdal::OutFeature> = page
            .records
            .iter()
            .map(|r| crate::io::gdal::OutFeature {
                id: r.id(),
                props: ogc::fields::properties_map(r, &names),
                geometry: r.geometry(),
            })
            .collect();
        let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, AppError> {
            let out = reproject(out, &code)?;
            crate::io::gdal::features_to_bytes(
                layer,
                &out,
                &code,
                crate::io::gdal::OutFormat::FlatGeobuf,
            )
            .map_err(|e| AppError::Internal(e.to_string()))
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))??;
        return Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/flatgeobuf"),
                ),
                (
                    header::HeaderName::from_static("content-crs"),
                    HeaderValue::from_str(&content_crs).unwrap_or(HeaderValue::from_static("")),
                ),
                plan_header,
            ],
            bytes,
        )
            .into_response());
    }
    let url = format!("{b}/collections/{id}/items");
    let mut links = vec![
        link(
            ogc::url_with(&url, &with_offset(&q.link_query, q.offset)),
            "self",
            GEOJSON,
            "This page",
        ),
        link(
            format!("{b}/collections/{id}"),
            "collection",
            "application/json",
            "The collection",
        ),
    ];
    if layer != Layer::Owners {
        links.push(link(
            ogc::url_with(&url, &with_f(&with_offset(&q.link_query, q.offset), "fgb")),
            "alternate",
            "application/flatgeobuf",
            "This page as FlatGeobuf",
        ));
    }
    if let Some(n) = page.next_offset {
        links.push(link(
            ogc::url_with(&url, &with_offset(&q.link_query, n)),
            "next",
            GEOJSON,
            "Next page",
        ));
    }
    if let Some(pv) = page.prev_offset {
        links.push(link(
            ogc::url_with(&url, &with_offset(&q.link_query, pv)),
            "prev",
            GEOJSON,
            "Previous page",
        ));
    }
    let links = Value::Array(links);
    if html {
        return Ok(html_response(ogc::html::items(
            b,
            &format!("{} — items", title(layer)),
            id,
            &page.records,
            &names,
            page.matched,
            &links,
        )));
    }
    let crs = q.crs.clone();
    // Writing a large page (and reprojecting it) is CPU work: off the async workers.
    let body = tokio::task::spawn_blocking(move || {
        ogc::render_collection(&page, &names, &crs, &links, now)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(GEOJSON)),
            (
                header::HeaderName::from_static("content-crs"),
                HeaderValue::from_str(&content_crs).unwrap_or(HeaderValue::from_static("")),
            ),
            plan_header,
        ],
        body,
    )
        .into_response())
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

/// One feature by id.
pub async fn feature(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    Path((id, fid)): Path<(String, String)>,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let layer = ogc::collection(&id, caller.0.role)?;
    let mut crs = ApiCrs::crs84();
    let mut f_param = None;
    for (k, v) in &p {
        match k.as_str() {
            "crs" => crs = ApiCrs::parse(v)?,
            "f" if v == "json" || v == "geojson" || v == "html" => f_param = Some(v.as_str()),
            _ => {
                return Err(AppError::BadRequest(format!(
                    "unknown or unsupported query parameter '{}'",
                    k.chars().take(60).collect::<String>()
                )))
            }
        }
    }
    let fid_n = super::parse_id(&fid).map_err(|_| {
        AppError::NotFound(format!(
            "no feature '{}' in {layer}",
            fid.chars().take(40).collect::<String>()
        ))
    })?;
    let record = state
        .index
        .get(layer, fid_n)
        .ok_or_else(|| AppError::NotFound(format!("no feature {fid_n} in {layer}")))?;
    if ogc::html::wants_html(&headers, f_param) {
        let names: Vec<&str> = ogc::queryables::queryables(layer, caller.0.role)
            .into_iter()
            .map(|q| q.name)
            .collect();
        return Ok(html_response(ogc::html::feature(
            &base(&headers),
            &id,
            &record,
            &names,
        )));
    }
    let mut f = to_feature(&record, caller.0.role);
    if crs != ApiCrs::crs84() {
        if let Some(g) = record.geometry() {
            f["geometry"] =
                serde_json::to_value(to_geojson(&crs.from_canonical(&g)?)).unwrap_or(Value::Null);
        }
    }
    let b = base(&headers);
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
    let content_crs = format!("<{}>", crs.uri);
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(GEOJSON)),
            (
                header::HeaderName::from_static("content-crs"),
                HeaderValue::from_str(&content_crs).unwrap_or(HeaderValue::from_static("")),
            ),
        ],
        Json(f),
    )
        .into_response())
}

/// Reprojects lon/lat features to `code` (x = east), for file encodings.
fn reproject(
    mut out: Vec<crate::io::gdal::OutFeature>,
    code: &str,
) -> Result<Vec<crate::io::gdal::OutFeature>, AppError> {
    if code != crate::model::crs::CANONICAL {
        for f in &mut out {
            if let Some(g) = &f.geometry {
                f.geometry = Some(crate::model::crs::transform(
                    g,
                    crate::model::crs::CANONICAL,
                    code,
                )?);
            }
        }
    }
    Ok(out)
}
