//! `/openapi.json`: the service's OpenAPI document. Its paths come from the route table
//! ([`super::routes`]), which registers every handler together with its `#[utoipa::path]`;
//! this module adds the title, the description and the tags, and serves the result,
//! serialized once.

use super::routes::Routes;
use crate::config::Config;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::LazyLock;
use utoipa::OpenApi;
use utoipa_axum::routes;

/// The document's info and tags; the paths are the route table's.
#[derive(OpenApi)]
#[openapi(
    info(title = "Lifeline", description = "Geospatial digital twin of a city's underground lifelines. Send API keys as `Authorization: Bearer <key>`."),
    tags((name = "service"), (name = "layers"), (name = "features"), (name = "admin"), (name = "tiles"), (name = "excavation"), (name = "analysis", description = "Analysis beyond OGC API – Features (issue 6): pipelines within a distance, the clearance audit (horizontal and vertical), grid statistics, nearest sensors; the OGC API itself is described at /ogc/api"), (name = "risk", description = "The risk one map: sensor readings, alarms and their lifecycle, live risk levels, grid statistics, live events (issue 5)"), (name = "trace", description = "Network traces for incidents (issue 15): which valves to close to isolate pipes, what that cuts off, who loses supply; connectivity"))
)]
struct ApiDoc;

/// The whole document: [`ApiDoc`]'s info and tags with the routes' paths and schemas.
pub fn document(routes: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(routes);
    doc
}

/// The document as served, built from the route table and serialized on first use. The
/// paths do not depend on the configuration (only the body limits do), so one per process.
static SERVED: LazyLock<Bytes> = LazyLock::new(|| {
    let (_, paths, _) = super::api(&Config::default()).into_parts();
    // An `OpenApi` value always serializes (string keys, no floats from user input).
    Bytes::from(serde_json::to_vec(&document(paths)).unwrap_or_default())
});

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "service", operation_id = "openapi_document",
    responses((status = 200, description = "The service's OpenAPI 3.1 document (the OGC API – Features document is at /ogc/api)", content_type = "application/json")))]
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], SERVED.clone())
}

/// Routes of this resource.
pub fn router() -> Routes {
    Routes::new().routes(routes!(openapi_json))
}

#[cfg(test)]
mod tests {
    use super::super::routes::Document;
    use super::*;
    use std::collections::BTreeMap;

    fn whole() -> (utoipa::openapi::OpenApi, Vec<super::super::routes::Route>) {
        let (_, paths, table) = super::super::api(&Config::default()).into_parts();
        (document(paths), table)
    }

    /// Code generators name a client's methods by operation id: each one is present and
    /// unique (issue 22).
    #[test]
    fn every_operation_has_a_unique_id() {
        let (doc, _) = whole();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let v = serde_json::to_value(&doc).unwrap();
        for (path, item) in v["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str();
                let id = id.unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                if let Some(other) = seen.insert(id.to_string(), format!("{method} {path}")) {
                    panic!("operationId {id} is used by {other} and {method} {path}");
                }
            }
        }
        assert!(seen.len() > 40, "{} operations", seen.len());
    }

    /// The router and the document agree both ways: every route of the service's document
    /// is a documented path, and every documented path is a route.
    #[test]
    fn the_route_table_and_the_document_agree() {
        let (doc, table) = whole();
        let paths: Vec<&String> = doc.paths.paths.keys().collect();
        for r in table.iter().filter(|r| r.document == Document::Service) {
            assert!(
                paths.iter().any(|p| r.matches(p)),
                "{} is routed but not documented",
                r.path
            );
        }
        for p in paths {
            assert!(
                table
                    .iter()
                    .any(|r| r.document == Document::Service && r.matches(p)),
                "{p} is documented but not routed"
            );
        }
    }
}
