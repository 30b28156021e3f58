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
use crate::server::AppState;
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

/// Refuses every parameter but `f=json` on the metadata resources.
fn only_f(params: &[(String, String)]) -> Result<(), AppError> {
    for (k, v) in params {
        if k != "f" {
            return Err(AppError::BadRequest(format!(
                "unknown query parameter '{}'",
                k.chars().take(60).collect::<String>()
            )));
        }
        if v != "json" {
            return Err(AppError::BadRequest(format!(
                "f='{}' is not offered here; use json",
                v.chars().take(20).collect::<String>()
            )));
        }
    }
    Ok(())
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

/// Landing page: links to the API definition, conformance and the collections.
pub async fn landing(
    headers: HeaderMap,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Json<Value>, AppError> {
    only_f(&p)?;
    let b = base(&headers);
    Ok(Json(json!({
        "title": "Lifeline — underground lifelines",
        "description": "OGC API – Features over the pipelines, risk points, grid cells and sensors of the city's underground lifelines, with CQL2 filtering, CRS support and analysis endpoints.",
        "links": [
            link(format!("{b}/"), "self", "application/json", "This document"),
            link(format!("{b}/api"), "service-desc", OPENAPI, "The API definition (OpenAPI 3.0)"),
            link(format!("{b}/conformance"), "conformance", "application/json", "Conformance classes"),
            link(format!("{b}/collections"), "data", "application/json", "Feature collections"),
        ]
    })))
}

/// Conformance declaration.
pub async fn conformance(
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Json<Value>, AppError> {
    only_f(&p)?;
    // The HTML class is declared by many servers; this one serves JSON only.
    let classes: Vec<&str> = CONFORMANCE
        .iter()
        .copied()
        .filter(|c| !c.ends_with("/html"))
        .collect();
    Ok(Json(json!({"conformsTo": classes})))
}

/// The OpenAPI 3.0 definition of this API.
pub async fn api(
    headers: HeaderMap,
    caller: Caller,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    only_f(&p)?;
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
        c["extent"] = json!({});
    }
    c
}

/// The collections the caller may read.
pub async fn collections(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Json<Value>, AppError> {
    only_f(&p)?;
    let b = base(&headers);
    let cols: Vec<Value> = ogc::collections_for(caller.0.role)
        .into_iter()
        .map(|l| describe(&state, &b, l, caller.0.role))
        .collect();
    Ok(Json(json!({
        "links": [link(format!("{b}/collections"), "self", "application/json", "Collections")],
        "crs": ogc::crs::supported_uris(),
        "collections": cols,
    })))
}

/// One collection's metadata.
pub async fn collection(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Json<Value>, AppError> {
    only_f(&p)?;
    let layer = ogc::collection(&id, caller.0.role)?;
    Ok(Json(describe(
        &state,
        &base(&headers),
        layer,
        caller.0.role,
    )))
}

/// The queryables of a collection for the caller's role (JSON Schema).
pub async fn queryables(
    headers: HeaderMap,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    only_f(&p)?;
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
    let index = state.index.clone();
    let (q, page) = tokio::task::spawn_blocking(move || -> Result<_, OgcError> {
        let q = ogc::parse_items_query(&p, layer, role, &index)?;
        let page = ogc::items(&index, layer, role, &q)?;
        Ok((q, page))
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    let content_crs = format!("<{}>", q.crs.uri);
    if q.format == ogc::Format::FlatGeobuf {
        let code = q.crs.code.clone();
        let out: Vec<crate::io::gdal::OutFeature> = page
            .records
            .iter()
            .zip(&page.features)
            .map(|(r, f)| crate::io::gdal::OutFeature {
                id: r.id(),
                props: f["properties"].as_object().cloned().unwrap_or_default(),
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
            ogc::url_with(&url, &with_f(&with_offset(&q.link_query, q.offset), "fgb")),
            "alternate",
            "application/flatgeobuf",
            "This page as FlatGeobuf",
        ),
        link(
            format!("{b}/collections/{id}"),
            "collection",
            "application/json",
            "The collection",
        ),
    ];
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
    let body = json!({
        "type": "FeatureCollection",
        "timeStamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        "numberMatched": page.matched,
        "numberReturned": page.features.len(),
        "features": page.features,
        "links": links,
    });
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(GEOJSON)),
            (
                header::HeaderName::from_static("content-crs"),
                HeaderValue::from_str(&content_crs).unwrap_or(HeaderValue::from_static("")),
            ),
        ],
        Json(body),
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
    for (k, v) in &p {
        match k.as_str() {
            "crs" => crs = ApiCrs::parse(v)?,
            "f" if v == "json" || v == "geojson" => {}
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
    if code != crate::io::crs::CANONICAL {
        for f in &mut out {
            if let Some(g) = &f.geometry {
                f.geometry = Some(crate::io::crs::transform(
                    g,
                    crate::io::crs::CANONICAL,
                    code,
                )?);
            }
        }
    }
    Ok(out)
}
