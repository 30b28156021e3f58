//! `/tiles` and `/styles`: Mapbox Vector Tiles of one or several layers
//! (`/tiles/{layers}/{z}/{x}/{y}.mvt`, `.pbf` accepted as GDAL asks for it), their
//! TileJSON (`/tiles/{layers}.json`), an MBTiles-style `metadata.json` next to the tiles for
//! GDAL, and the MapLibre styles (`/styles/{name}.json`). The work is in
//! [`crate::tileserver`]; here the path is parsed (clear 4xx for every malformed part),
//! the encoding negotiated, and the HTTP caching headers set.

use super::Caller;
use crate::state::AppState;
use crate::tileserver::derived::{self, MixedSet};
use crate::tileserver::{
    style, tilejson, Datum, Encoding, LayerSet, LayerSetError, MAX_SEGMENT_BYTES,
};
use crate::AppError;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lifeline_tiles::TileCoord;

/// The MVT media type (IANA registration by Mapbox).
pub const MVT_CONTENT_TYPE: &str = "application/vnd.mapbox-vector-tile";

/// Responses differ by these request headers: the encoding, and the caller's role (keys).
const VARY: &str = "Accept-Encoding, Authorization, X-Api-Key";

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tiles/{layers}/{z}/{x}/{file}", get(tile))
        .route("/tiles/{layers}/{file}", get(tile_dir_file))
        .route("/tiles/{file}", get(tilejson_doc))
        .route("/styles/{file}", get(style_doc))
}

fn layer_set(segment: &str) -> Result<LayerSet, AppError> {
    LayerSet::parse(segment).map_err(|e: LayerSetError| {
        if e.is_not_found() {
            AppError::NotFound(e.to_string())
        } else {
            AppError::BadRequest(e.to_string())
        }
    })
}

fn short(s: &str) -> String {
    let mut t: String = s.chars().take(24).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

fn coordinate(name: &str, s: &str) -> Result<u32, AppError> {
    s.parse::<u32>().map_err(|_| {
        AppError::BadRequest(format!(
            "tile {name} '{}' is not a non-negative integer",
            short(s)
        ))
    })
}

fn path_error(e: PathRejection) -> AppError {
    AppError::BadRequest(format!("malformed tile path: {}", e.body_text()))
}

/// Parses `{layers}/{z}/{x}/{y}.{mvt|pbf}`.
pub fn parse_tile_path(
    layers: &str,
    z: &str,
    x: &str,
    file: &str,
) -> Result<(LayerSet, TileCoord), AppError> {
    check_lengths(z, x, file)?;
    let set = layer_set(layers)?;
    Ok((set, parse_tile_coord(file, z, x)?))
}

fn check_lengths(z: &str, x: &str, file: &str) -> Result<(), AppError> {
    for (name, seg) in [("z", z), ("x", x), ("y", file)] {
        if seg.len() > MAX_SEGMENT_BYTES {
            return Err(AppError::BadRequest(format!(
                "the tile {name} segment is {} bytes long; at most {MAX_SEGMENT_BYTES} are accepted",
                seg.len()
            )));
        }
    }
    Ok(())
}

/// Parses `{z}/{x}/{y}.{mvt|pbf}` (segment lengths checked by the caller).
fn parse_tile_coord(file: &str, z: &str, x: &str) -> Result<TileCoord, AppError> {
    let (y, ext) = file.rsplit_once('.').ok_or_else(|| {
        AppError::NotFound(format!(
            "'{}' has no extension; tiles are {{y}}.mvt or {{y}}.pbf",
            short(file)
        ))
    })?;
    if ext != "mvt" && ext != "pbf" {
        return Err(AppError::NotFound(format!(
            "tiles are served as .mvt or .pbf, not .{}",
            short(ext)
        )));
    }
    TileCoord::new(
        coordinate("z", z)?,
        coordinate("x", x)?,
        coordinate("y", y)?,
    )
    .map_err(|e| AppError::BadRequest(e.to_string()))
}

/// The layer list when it names a derived layer (`grid_stats`, `alarm_density`).
fn mixed_set(segment: &str) -> Result<Option<MixedSet>, AppError> {
    MixedSet::parse(segment).map_err(|e: LayerSetError| {
        if e.is_not_found() {
            AppError::NotFound(e.to_string())
        } else {
            AppError::BadRequest(e.to_string())
        }
    })
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
#[utoipa::path(get, path = "/tiles/{layers}/{z}/{x}/{y}.mvt", tag = "tiles",
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
    let d = &state.tiles.config().defaults;
    // Derived layers change with alarms, so they bypass the cache (see tileserver::derived).
    let (served, cache_control) = match mixed_set(&layers)? {
        Some(set) => {
            if datum != Datum::Cgcs2000 {
                return Err(AppError::BadRequest(format!(
                    "datum={datum} is not available for the derived layers grid_stats and alarm_density"
                )));
            }
            check_lengths(&z, &x, &file)?;
            let coord = parse_tile_coord(&file, &z, &x)?;
            let served = state
                .tiles
                .mixed_tile(state.risk.clone(), set, coord, caller.0.role, encoding)
                .await?;
            let cc = if served.private {
                format!("private, {}", state.tiles.config().derived.cache_control)
            } else {
                state.tiles.config().derived.cache_control.clone()
            };
            (served, cc)
        }
        None => {
            let (set, coord) = parse_tile_path(&layers, &z, &x, &file)?;
            let served = state
                .tiles
                .tile_in(set, coord, caller.0.role, encoding, datum)
                .await?;
            let cc = if served.private {
                d.private_cache_control.clone()
            } else {
                d.cache_control.clone()
            };
            (served, cc)
        }
    };
    let cache_control = &cache_control;
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, header_value(cache_control));
    h.insert(header::VARY, HeaderValue::from_static(VARY));
    let body = served.body;
    let Some(etag) = body.etag.as_deref() else {
        return Ok((StatusCode::NO_CONTENT, h).into_response());
    };
    h.insert(header::ETAG, header_value(etag));
    if if_none_match(&headers, etag) {
        return Ok((StatusCode::NOT_MODIFIED, h).into_response());
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(MVT_CONTENT_TYPE),
    );
    if let Some(enc) = body.encoding.header() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    Ok((StatusCode::OK, h, body.bytes.clone()).into_response())
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
            short(&host)
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
#[utoipa::path(get, path = "/tiles/{layers}.json", tag = "tiles",
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
    let layers = file.strip_suffix(".json").ok_or_else(|| {
        AppError::NotFound(format!(
            "no resource /tiles/{}; TileJSON is at /tiles/{{layers}}.json",
            short(&file)
        ))
    })?;
    if let Some(set) = mixed_set(layers)? {
        let base = base_url(&state, &headers, &uri)?;
        let cfg = state.tiles.config();
        let class = cfg.class_for(set.stored.layers(), caller.0.role);
        let doc = derived::tilejson(cfg, &state.index, &set, class, &base);
        return Ok(json_response(
            &state,
            class > crate::model::Role::Viewer,
            doc,
        ));
    }
    let set = layer_set(layers)?;
    let base = base_url(&state, &headers, &uri)?;
    let cfg = state.tiles.config();
    let class = cfg.class_for(set.layers(), caller.0.role);
    let doc = tilejson::tilejson(cfg, &state.index, &set, class, &base);
    Ok(json_response(
        &state,
        class > crate::model::Role::Viewer,
        doc,
    ))
}

/// `metadata.json` beside the tiles (what GDAL's MVT driver looks for when given a tile
/// directory URL); anything else there is a 404 naming the tile path form.
#[utoipa::path(get, path = "/tiles/{layers}/metadata.json", tag = "tiles",
    params(("layers" = String, Path, description = "comma-separated layer names")),
    responses((status = 200, description = "MBTiles-style metadata (vector_layers inside the `json` string), for GDAL"), (status = 404, description = "Unknown layer or file")))]
pub async fn tile_dir_file(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    caller: Caller,
) -> Result<Response, AppError> {
    let Path((layers, file)) = path.map_err(path_error)?;
    let mixed = mixed_set(&layers)?;
    let set = match &mixed {
        Some(m) => m.stored,
        None => layer_set(&layers)?,
    };
    if file != "metadata.json" {
        return Err(AppError::NotFound(format!(
            "no resource /tiles/{}/{}; tiles are /tiles/{{layers}}/{{z}}/{{x}}/{{y}}.mvt",
            short(&layers),
            short(&file)
        )));
    }
    let cfg = state.tiles.config();
    if let Some(m) = mixed {
        let class = cfg.class_for(set.layers(), caller.0.role);
        let doc = derived::mbtiles_metadata(cfg, &state.index, &m, class);
        return Ok(json_response(
            &state,
            class > crate::model::Role::Viewer,
            doc,
        ));
    }
    let class = cfg.class_for(set.layers(), caller.0.role);
    let doc = tilejson::mbtiles_metadata(cfg, &state.index, &set, class);
    Ok(json_response(
        &state,
        class > crate::model::Role::Viewer,
        doc,
    ))
}

/// A MapLibre GL style: `network` (pipelines by kind, grid cells) or `risk` (risk points by
/// level, sensors, grid cells). Only our own tiles; no glyphs or sprites from outside.
#[utoipa::path(get, path = "/styles/{name}.json", tag = "tiles",
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
            short(&file),
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
