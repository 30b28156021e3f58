//! `/ogc`: OGC API – Features (Parts 1, 2 and 3) — landing page, conformance, the OpenAPI
//! definition, collections, items (GeoJSON, FlatGeobuf or HTML), single features and
//! queryables. Mounted under `/ogc` because `/` serves the web client. Handlers extract,
//! call [`crate::ogc::service`], and render; access control is the core's (`Caller`,
//! role-filtered attributes, owners from `contractor`). FlatGeobuf is encoded here, by
//! [`crate::io`] (GDAL), which the OGC capability does not see.

use super::routes::Routes;
use super::{Caller, QueryParams, ReqId};
use crate::model::audit::ReadKind;
use crate::ogc::service::{self, FeatureAnswer, Items, ItemsRequest, MetaFormat, MetaQuery};
use crate::ogc::{self, Format};
use crate::state::AppState;
use crate::AppError;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};

pub use crate::ogc::service::{CONFORMANCE, GEOJSON, OPENAPI};

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new()
        .ogc("/ogc", get(landing))
        .ogc("/ogc/", get(landing))
        .ogc("/ogc/conformance", get(conformance))
        .ogc("/ogc/api", get(api))
        .ogc("/ogc/collections", get(collections))
        .ogc("/ogc/collections/{id}", get(collection))
        .ogc("/ogc/collections/{id}/items", get(items))
        .ogc("/ogc/collections/{id}/items/{fid}", get(feature))
        .ogc("/ogc/collections/{id}/queryables", get(queryables))
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

fn html_response(body: String) -> Response {
    axum::response::Html(body).into_response()
}

fn json_response(v: Value, content_type: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        Json(v),
    )
        .into_response()
}

/// The headers of an items page or a feature: its media type and `Content-Crs`.
fn crs_headers(content_type: &'static str, content_crs: &str) -> [(HeaderName, HeaderValue); 2] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            HeaderName::from_static("content-crs"),
            HeaderValue::from_str(content_crs).unwrap_or(HeaderValue::from_static("")),
        ),
    ]
}

/// Landing page: links to the API definition, conformance and the collections (JSON, or
/// HTML for browsers).
pub async fn landing(
    headers: HeaderMap,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let html = MetaQuery::parse(&p)?.wants_html(service::accepts_html(&headers));
    let b = base(&headers);
    let doc = service::landing(&b);
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
    let html = MetaQuery::parse(&p)?.wants_html(service::accepts_html(&headers));
    let classes = service::conformance_classes();
    Ok(if html {
        html_response(ogc::html::conformance(&base(&headers), &classes))
    } else {
        Json(json!({"conformsTo": classes})).into_response()
    })
}

/// The OpenAPI 3.0 definition of this API.
pub async fn api(
    headers: HeaderMap,
    _caller: Caller,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    if MetaQuery::parse(&p)?.f == Some(MetaFormat::Html) {
        return Err(AppError::BadRequest(
            "the API definition is offered as JSON only; use f=json".into(),
        ));
    }
    let doc = ogc::openapi::document(&base(&headers));
    Ok(json_response(doc, OPENAPI))
}

/// The collections the caller may read.
pub async fn collections(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let html = MetaQuery::parse(&p)?.wants_html(service::accepts_html(&headers));
    let b = base(&headers);
    let cols = service::collections(&state.index, &b, caller.0.role);
    Ok(if html {
        html_response(ogc::html::collections(&b, &cols))
    } else {
        Json(service::collections_doc(&b, cols)).into_response()
    })
}

/// One collection's metadata.
pub async fn collection(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let html = MetaQuery::parse(&p)?.wants_html(service::accepts_html(&headers));
    let layer = ogc::collection(&id)?;
    let b = base(&headers);
    let c = service::collection(&state.index, &b, layer, caller.0.role);
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
    if MetaQuery::parse(&p)?.f == Some(MetaFormat::Html) {
        return Err(AppError::BadRequest(
            "queryables are offered as JSON Schema only; use f=json".into(),
        ));
    }
    let layer = ogc::collection(&id)?;
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
    rid: ReqId,
    Path(id): Path<String>,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let query = json!(p
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>());
    let target = format!("ogc/collections/{id}/items");
    let req = ItemsRequest {
        collection: id,
        role: caller.0.role,
        params: p,
        plan: headers
            .get("x-ogc-plan")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string),
    };
    let items =
        service::list_items(&*state.store, state.store.backend(), &state.index, req).await?;
    let recs = items.page.records.iter().map(|r| &**r);
    let entry = crate::audit::of_records(ReadKind::OgcItems, target, items.layer, recs);
    let entry = entry.with("query", query);
    state.audit.record(&caller.0, rid.as_deref(), entry).await?;
    let b = base(&headers);
    match items.query.output(service::accepts_html(&headers)) {
        Format::FlatGeobuf => flatgeobuf_response(&b, items).await,
        Format::Html => Ok(html_response(service::items_html(&b, &items))),
        Format::GeoJson => {
            let h = items_headers(GEOJSON, &b, &items);
            let body = service::items_geojson(&b, items, state.clock.now()).await?;
            Ok((h, body).into_response())
        }
    }
}

/// The headers of an items page: media type, `Content-Crs`, the plan that answered, and
/// the page's links (self, alternates, queryables, next, prev) as a `Link` header, which
/// clients such as the OGC Filtering suite read without parsing the body.
fn items_headers(
    content_type: &'static str,
    base: &str,
    items: &Items,
) -> [(HeaderName, HeaderValue); 4] {
    let [ct, crs] = crs_headers(content_type, &items.content_crs());
    let plan = (
        HeaderName::from_static("x-ogc-plan"),
        HeaderValue::from_static(items.plan.as_str()),
    );
    let links = service::link_header(&service::items_links(base, items));
    let link = (
        header::LINK,
        // Built of percent-encoded URLs and fixed media types: always visible ASCII.
        HeaderValue::from_str(&links).unwrap_or(HeaderValue::from_static("")),
    );
    [ct, crs, plan, link]
}

/// An items page as FlatGeobuf: properties as the role reads them, reprojected and
/// encoded by GDAL on the blocking pool.
async fn flatgeobuf_response(base: &str, items: Items) -> Result<Response, AppError> {
    let h = items_headers("application/flatgeobuf", base, &items);
    let (layer, code) = (items.layer, items.query.crs.code.clone());
    let out: Vec<crate::io::gdal::OutFeature> = items
        .page
        .records
        .iter()
        .map(|r| crate::io::gdal::OutFeature {
            id: r.id(),
            props: ogc::fields::properties_map(r, &items.names),
            geometry: r.geometry(),
        })
        .collect();
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, AppError> {
        let out = reproject(out, &code)?;
        let fgb = crate::io::gdal::OutFormat::FlatGeobuf;
        crate::io::gdal::features_to_bytes(layer, &out, &code, fgb)
            .map_err(|e| AppError::Internal(e.to_string()))
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    Ok((h, bytes).into_response())
}

/// One feature by id.
pub async fn feature(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    rid: ReqId,
    Path((id, fid)): Path<(String, String)>,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let b = base(&headers);
    let html = service::accepts_html(&headers);
    let answer = service::feature(&state.index, &b, &id, &fid, caller.0.role, &p, html)?;
    // Found, so the collection and the id parse.
    let layer = ogc::collection(&id)?;
    let record = fid.parse().ok().and_then(|n| state.index.get(layer, n));
    let target = format!("ogc/collections/{id}/items/{fid}");
    let entry = crate::audit::of_records(
        ReadKind::OgcFeature,
        target,
        layer,
        record.as_deref().into_iter(),
    );
    state.audit.record(&caller.0, rid.as_deref(), entry).await?;
    Ok(match answer {
        FeatureAnswer::Html(page) => html_response(page),
        FeatureAnswer::GeoJson {
            feature,
            content_crs,
        } => (crs_headers(GEOJSON, &content_crs), Json(feature)).into_response(),
    })
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
