//! `/tiles` and `/styles`: Mapbox Vector Tiles of one or several layers
//! (`/tiles/{layers}/{z}/{x}/{y}.mvt`, `.pbf` accepted as GDAL asks for it), their
//! TileJSON (`/tiles/{layers}.json`), an MBTiles-style `metadata.json` next to the tiles for
//! GDAL, and the MapLibre styles (`/styles/{name}.json`). The work is in
//! [`crate::tileserver`] (its [`service`] parses the path with a clear 4xx for every
//! malformed part); here the encoding is negotiated and the HTTP caching headers set.

use super::routes::Routes;
use super::{Caller, ReqId};
use crate::state::AppState;
use crate::tileserver::service::{self, Layers, TileAnswer, TilePath};
use crate::tileserver::{style, Datum, Encoding, LayerSet};
use crate::AppError;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lifeline_tiles::TileCoord;
use utoipa_axum::routes;

/// The MVT media type (IANA registration by Mapbox).
pub const MVT_CONTENT_TYPE: &str = "application/vnd.mapbox-vector-tile";

/// Responses differ by these request headers: the encoding, and the caller's role (keys).
const VARY: &str = "Accept-Encoding, Authorization, X-Api-Key";

/// Routes of this resource.
pub fn router() -> Routes {
    // axum matches whole segments: `{y}.mvt`, `{layers}.json` and `{name}.json` are
    // routed as one segment each, which the handlers parse.
    Routes::new()
        .routes_at("/tiles/{layers}/{z}/{x}/{file}", routes!(tile))
        .routes_at("/tiles/{layers}/{file}", routes!(tile_dir_file))
        .routes_at("/tiles/{file}", routes!(tilejson_doc))
        .routes_at("/styles/{file}", routes!(style_doc))
}

fn path_error(e: PathRejection) -> AppError {
    AppError::BadRequest(format!("malformed tile path: {}", e.body_text()))
}

/// Parses `{layers}/{z}/{x}/{y}.{mvt|pbf}` ([`service::parse_tile_path`]).
pub fn parse_tile_path(
    layers: &str,
    z: &str,
    x: &str,
    file: &str,
) -> Result<(LayerSet, TileCoord), AppError> {
    Ok(service::parse_tile_path(layers, z, x, file)?)
}

/// Whether an `If-None-Match` header matches `etag` (weak comparison, RFC 9110 §13.1.2).
pub fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let want = strip(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || strip(t) == want)
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("no-store"))
}

/// A vector tile of one or several layers, as the caller's role may see it.
#[utoipa::path(get, path = "/tiles/{layers}/{z}/{x}/{y}.mvt", operation_id = "get_tile", tag = "tiles",
    params(("layers" = String, Path, description = "one or more of pipelines, risk_points, grid_cells, sensors and the derived grid_stats, alarm_density (never cached, Cache-Control no-cache), comma-separated (at most 8 names, 200 bytes)"),
        ("z" = u32, Path, description = "zoom 0..=22"), ("x" = u32, Path, description = "column < 2^z"),
        ("y" = u32, Path, description = "row < 2^z; the extension may be .mvt or .pbf"),
        ("datum" = Option<String>, Query, description = "cgcs2000 (default) or gcj02: vertices offset to GCJ-02, to lie over a Chinese commercial basemap (not for the derived layers)")),
    responses((status = 200, description = "Mapbox Vector Tile 2.1 (gzip or brotli by Accept-Encoding; strong ETag per encoding)", content_type = "application/vnd.mapbox-vector-tile"),
        (status = 204, description = "No feature in this tile"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "z/x/y out of range or malformed, too many or duplicate layers, path segment too long"),
        (status = 404, description = "Unknown layer or extension")))]
pub async fn tile(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String, String)>, PathRejection>,
    caller: Caller,
    rid: ReqId,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let Path((layers, z, x, file)) = path.map_err(path_error)?;
    let datum =
        Datum::from_query(query.as_deref()).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let encoding = Encoding::negotiate(
        headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    );
    let (layers, z, x, file) = (&layers, &z, &x, &file);
    let path = TilePath { layers, z, x, file };
    let risk = state.risk.clone();
    let answer = state
        .tiles
        .serve(risk, path, datum, caller.0.role, encoding)
        .await?;
    if let Some(read) = &answer.read {
        state.audit.tile(&caller.0, rid.as_deref(), read);
    }
    Ok(tile_response(answer, &headers))
}

/// A tile's response: `Cache-Control` and `Vary` always; 204 for an empty tile; the strong
/// ETag, and 304 when `If-None-Match` matches it; else the MVT bytes in their encoding.
fn tile_response(answer: TileAnswer, headers: &HeaderMap) -> Response {
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, header_value(&answer.cache_control));
    h.insert(header::VARY, HeaderValue::from_static(VARY));
    let body = answer.body;
    let Some(etag) = body.etag.as_deref() else {
        return (StatusCode::NO_CONTENT, h).into_response();
    };
    h.insert(header::ETAG, header_value(etag));
    if if_none_match(headers, etag) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(MVT_CONTENT_TYPE),
    );
    if let Some(enc) = body.encoding.header() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    (StatusCode::OK, h, body.bytes.clone()).into_response()
}

/// The base URL of links in documents: the configured public URL, else the request's
/// Host (checked, since it is echoed into JSON clients follow).
fn base_url(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<String, AppError> {
    let configured = &state.tiles.config().defaults.public_url;
    if !configured.is_empty() {
        return Ok(configured.trim_end_matches('/').to_string());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .ok_or_else(|| AppError::BadRequest("the request has no Host header".into()))?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    if !ok {
        return Err(AppError::BadRequest(format!(
            "Host header '{}' is not a host[:port]",
            service::short(&host)
        )));
    }
    Ok(format!("http://{host}"))
}

fn json_response(state: &AppState, private: bool, v: serde_json::Value) -> Response {
    let d = &state.tiles.config().defaults;
    let cc = if private {
        &d.private_cache_control
    } else {
        &d.cache_control
    };
    (
        [
            (header::CACHE_CONTROL, header_value(cc)),
            (header::VARY, HeaderValue::from_static(VARY)),
        ],
        Json(v),
    )
        .into_response()
}

/// TileJSON 3.0.0 of a layer set: tile URL template, vector layers with field types as
/// the caller's role sees them, zoom range, bounds, centre.
#[utoipa::path(get, path = "/tiles/{layers}.json", operation_id = "tilejson", tag = "tiles",
    params(("layers" = String, Path, description = "comma-separated layer names")),
    responses((status = 200, description = "TileJSON 3.0.0"), (status = 404, description = "Unknown layer")))]
pub async fn tilejson_doc(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let Path(file) = path.map_err(path_error)?;
    let layers: Layers = service::tilejson_layers(&file)?;
    let base = base_url(&state, &headers, &uri)?;
    let (doc, private) = state.tiles.tilejson_doc(&layers, caller.0.role, &base);
    Ok(json_response(&state, private, doc))
}

/// `metadata.json` beside the tiles (what GDAL's MVT driver looks for when given a tile
/// directory URL); anything else there is a 404 naming the tile path form.
#[utoipa::path(get, path = "/tiles/{layers}/metadata.json", operation_id = "tile_metadata", tag = "tiles",
    params(("layers" = String, Path, description = "comma-separated layer names")),
    responses((status = 200, description = "MBTiles-style metadata (vector_layers inside the `json` string), for GDAL"), (status = 404, description = "Unknown layer or file")))]
pub async fn tile_dir_file(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    caller: Caller,
) -> Result<Response, AppError> {
    let Path((layers, file)) = path.map_err(path_error)?;
    let (doc, private) = state.tiles.metadata_doc(&layers, &file, caller.0.role)?;
    Ok(json_response(&state, private, doc))
}

/// A MapLibre GL style: `network` (pipelines by kind, grid cells) or `risk` (risk points by
/// level, sensors, grid cells). Only our own tiles; no glyphs or sprites from outside.
#[utoipa::path(get, path = "/styles/{name}.json", operation_id = "get_style", tag = "tiles",
    params(("name" = String, Path, description = "network or risk")),
    responses((status = 200, description = "MapLibre style (spec v8)"), (status = 404, description = "Unknown style")))]
pub async fn style_doc(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let Path(file) = path.map_err(path_error)?;
    let unknown = || {
        AppError::NotFound(format!(
            "no style '{}'; styles: {}",
            service::short(&file),
            style::NAMES.map(|n| format!("{n}.json")).join(", ")
        ))
    };
    let name = file.strip_suffix(".json").ok_or_else(unknown)?;
    let base = base_url(&state, &headers, &uri)?;
    let doc = style::style(name, state.tiles.config(), &base).ok_or_else(unknown)?;
    Ok(json_response(&state, false, doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_do_not_conflict() {
        let _ = router();
    }

    #[test]
    fn tile_paths_parse_with_named_errors() {
        let (s, t) = parse_tile_path("pipelines,sensors", "14", "13279", "6795.pbf").unwrap();
        assert_eq!(s.to_path(), "pipelines,sensors");
        assert_eq!(t.to_string(), "14/13279/6795");
        let msg = |r: Result<(LayerSet, TileCoord), AppError>| {
            let e = r.unwrap_err();
            (e.status().as_u16(), e.to_string())
        };
        let (s, m) = msg(parse_tile_path("pipelines", "99", "1", "1.mvt"));
        assert_eq!(s, 400);
        assert!(m.contains("zoom 99"), "{m}");
        let (s, m) = msg(parse_tile_path("pipelines", "3", "9", "9.mvt"));
        assert_eq!(s, 400);
        assert!(m.contains("x 9"), "{m}");
        let (s, m) = msg(parse_tile_path("pipelines", "3", "1", "9.mvt"));
        assert_eq!(s, 400);
        assert!(m.contains("y 9"), "{m}");
        let (s, m) = msg(parse_tile_path("pipes", "3", "1", "1.mvt"));
        assert_eq!(s, 404);
        assert!(m.contains("pipes"), "{m}");
        let (s, m) = msg(parse_tile_path("pipelines", "3", "1", "1.png"));
        assert_eq!(s, 404);
        assert!(m.contains(".png"), "{m}");
        let (s, m) = msg(parse_tile_path("pipelines", "a", "1", "1.mvt"));
        assert_eq!(s, 400);
        assert!(m.contains("'a'"), "{m}");
        let (s, _) = msg(parse_tile_path("pipelines", "-1", "1", "1.mvt"));
        assert_eq!(s, 400);
        let many = vec!["a"; 10_000].join(",");
        let (s, m) = msg(parse_tile_path(&many, "1", "1", "1.mvt"));
        assert_eq!(s, 400);
        assert!(m.contains("bytes"), "{m}");
    }

    #[test]
    fn etag_matching() {
        let mut h = HeaderMap::new();
        assert!(!if_none_match(&h, "\"abc\""));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(if_none_match(&h, "\"abc\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&h, "\"abc\""));
    }
}
