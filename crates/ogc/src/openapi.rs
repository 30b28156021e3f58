//! The OpenAPI 3.0 definition of the OGC API (`/ogc/api`), written out by hand because OGC
//! clients and test suites look parameters up under each concrete collection path
//! (`/collections/pipelines/items`), which a generator from handler annotations cannot
//! produce. It is self-contained: every `$ref` points inside the document.

use super::crs;
use super::queryables::queryables;
use lifeline_model::Role;
use serde_json::{json, Map, Value};

fn param(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "style": "form", "explode": false,
           "schema": schema, "description": description})
}

fn err_ref() -> Value {
    json!({"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}}})
}

/// The OpenAPI document, with `server` as the API root (`http://host:port/ogc`).
/// The same document for every role: it describes the API, not the caller's rights.
pub fn document(server: &str) -> Value {
    with_responses(document_inner(server))
}

fn document_inner(server: &str) -> Value {
    let mut paths = Map::new();
    let json_ok = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"type": "object"}}}});
    paths.insert("/".into(), json!({"get": {"operationId": "landingPage", "summary": "Landing page", "tags": ["Capabilities"],
        "responses": {"200": json_ok("Links to the API definition, conformance and collections")}}}));
    paths.insert("/conformance".into(), json!({"get": {"operationId": "conformance", "summary": "Conformance classes", "tags": ["Capabilities"],
        "responses": {"200": json_ok("The conformance classes this API implements")}}}));
    paths.insert("/api".into(), json!({"get": {"operationId": "api", "summary": "This OpenAPI document", "tags": ["Capabilities"],
        "responses": {"200": {"description": "OpenAPI 3.0", "content": {"application/vnd.oai.openapi+json;version=3.0": {"schema": {"type": "object"}}}}}}}));
    paths.insert("/collections".into(), json!({"get": {"operationId": "collections", "summary": "Feature collections", "tags": ["Capabilities"],
        "responses": {"200": json_ok("The collections the caller may read")}}}));
    let crs_enum: Vec<Value> = crs::supported_uris()
        .into_iter()
        .map(Value::String)
        .collect();
    for layer in lifeline_model::Layer::SPATIAL {
        let id = layer.as_str();
        let qnames: Vec<String> = queryables(layer, Role::Admin)
            .iter()
            .map(|q| q.name.to_string())
            .collect();
        let mut item_params = vec![
            param("bbox", json!({"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}),
                "minLon,minLat,maxLon,maxLat (CRS84 unless bbox-crs says otherwise); features meeting the box"),
            param("bbox-crs", json!({"type": "string", "format": "uri", "enum": crs_enum}), "CRS of bbox"),
            param("datetime", json!({"type": "string"}), "An RFC 3339 instant or interval start/end ('..' open); applies to survey_date, last_review or installed"),
            param("limit", json!({"type": "integer", "minimum": 1, "maximum": super::MAX_LIMIT, "default": super::DEFAULT_LIMIT}), "Page size (larger values are clamped to the maximum)"),
            param("offset", json!({"type": "integer", "minimum": 0, "default": 0}), "Features to skip (used by the next links)"),
            param("properties", json!({"type": "array", "items": {"type": "string", "enum": qnames}}), "Properties to include"),
            param("crs", json!({"type": "string", "format": "uri", "enum": crs_enum}), "Output CRS (Part 2); axis order as the CRS defines it"),
            param("sortby", json!({"type": "array", "items": {"type": "string", "pattern": "[+|-]?[A-Za-z_].*"}}), "Sort keys, '-' for descending"),
            param("filter", json!({"type": "string"}), "CQL2 filter (Part 3) in cql2-text or cql2-json; S_DWITHIN(geometry, literal, metres) measures in metres"),
            param("filter-lang", json!({"type": "string", "enum": ["cql2-text", "cql2-json"], "default": "cql2-text"}), "Filter encoding"),
            param("filter-crs", json!({"type": "string", "format": "uri", "enum": crs_enum}), "CRS of geometry literals in the filter"),
            param("f", json!({"type": "string", "enum": ["json", "fgb", "html"], "default": "json"}), "Output format: GeoJSON, FlatGeobuf, or an HTML table for people"),
        ];
        for q in &qnames {
            item_params.push(param(
                q,
                json!({"type": "string"}),
                "Equality filter on this queryable",
            ));
        }
        let id_param = json!({"name": "featureId", "in": "path", "required": true, "schema": {"type": "integer"}, "description": "Feature id"});
        paths.insert(format!("/collections/{id}"), json!({"get": {"operationId": format!("describe_{id}"), "summary": format!("The {id} collection"),
            "tags": ["Data"], "responses": {"200": json_ok("Collection metadata"), "404": err_ref()}}}));
        paths.insert(format!("/collections/{id}/items"), json!({"get": {"operationId": format!("items_{id}"), "summary": format!("Features of {id}"), "tags": ["Data"],
            "parameters": item_params,
            "responses": {"200": {"description": "A GeoJSON FeatureCollection (or FlatGeobuf with f=fgb)",
                "content": {"application/geo+json": {"schema": {"$ref": "#/components/schemas/featureCollectionGeoJSON"}},
                            "application/flatgeobuf": {"schema": {"type": "string", "format": "binary"}}}},
                "400": err_ref(), "403": err_ref()}}}));
        paths.insert(format!("/collections/{id}/items/{{featureId}}"), json!({"get": {"operationId": format!("feature_{id}"), "summary": format!("One feature of {id}"), "tags": ["Data"],
            "parameters": [id_param, param("crs", json!({"type": "string", "format": "uri", "enum": crs_enum}), "Output CRS"),
                param("f", json!({"type": "string", "enum": ["json"]}), "Output format")],
            "responses": {"200": {"description": "A GeoJSON Feature", "content": {"application/geo+json": {"schema": {"$ref": "#/components/schemas/featureGeoJSON"}}}},
                "404": err_ref()}}}));
        paths.insert(format!("/collections/{id}/queryables"), json!({"get": {"operationId": format!("queryables_{id}"), "summary": format!("Queryables of {id} for the caller's role"), "tags": ["Data"],
            "responses": {"200": {"description": "JSON Schema of the queryables", "content": {"application/schema+json": {"schema": {"type": "object"}}}}}}}));
    }
    analysis_paths(&mut paths);
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Lifeline OGC API – Features", "version": "1.0.0",
            "description": "Pipelines, risk points, grid cells and sensors of the city's underground lifelines (OGC API – Features Parts 1, 2, 3), plus analysis endpoints. Send API keys as `Authorization: Bearer <key>`; attributes beyond kind need the analyst role.",
            "license": {"name": "MIT"}},
        "servers": [{"url": server}],
        "tags": [{"name": "Capabilities"}, {"name": "Data"}, {"name": "Analysis"}],
        "paths": paths,
        "components": {"schemas": {
            "error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"}}}}},
            "link": {"type": "object", "required": ["href"], "properties": {"href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"}, "title": {"type": "string"}}},
            "featureGeoJSON": {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
                "type": {"type": "string", "enum": ["Feature"]}, "id": {"type": "integer"},
                "geometry": {"nullable": true, "type": "object"}, "properties": {"nullable": true, "type": "object"},
                "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}}}},
            "featureCollectionGeoJSON": {"type": "object", "required": ["type", "features"], "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {"type": "array", "items": {"$ref": "#/components/schemas/featureGeoJSON"}},
                "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
                "timeStamp": {"type": "string", "format": "date-time"},
                "numberMatched": {"type": "integer", "minimum": 0}, "numberReturned": {"type": "integer", "minimum": 0}}}
        }}
    })
}

fn analysis_paths(paths: &mut Map<String, Value>) {
    let geo = json!({"application/geo+json": {"schema": {"$ref": "#/components/schemas/featureCollectionGeoJSON"}}});
    let q = |name: &str, t: &str, req: bool, d: &str| json!({"name": name, "in": "query", "required": req, "schema": {"type": t}, "description": d});
    paths.insert("/analysis/pipelines-within".into(), json!({"get": {"operationId": "pipelinesWithin", "tags": ["Analysis"],
        "summary": "Pipelines within a distance of a geometry, with total lengths by kind and by owner (analyst)",
        "parameters": [q("geometry", "string", true, "WKT or GeoJSON geometry in CRS84"), q("distance", "number", true, "metres, 0..50000"),
            q("kind", "string", false, "only this pipe kind"), q("features", "boolean", false, "include the pipelines as GeoJSON features (default true)")],
        "responses": {"200": {"description": "Totals by kind and owner in metres, and the pipelines with distance_m", "content": {"application/json": {"schema": {"type": "object"}}}}, "400": {"$ref": "#/components/responses/error"}}}}));
    paths.insert("/analysis/clearance-audit".into(), json!({"get": {"operationId": "clearanceAudit", "tags": ["Analysis"],
        "summary": "Network-wide clearance audit: pipes of two kinds crossing, or running parallel closer than the rule table's horizontal clearance (analyst)",
        "parameters": [q("kind", "string", true, "first pipe kind"), q("other", "string", true, "second pipe kind"),
            q("bbox", "string", false, "limit to a CRS84 box"), q("max_distance", "number", false, "override the rule distance, metres"),
            q("f", "string", false, "json (GeoJSON, default) or csv")],
        "responses": {"200": {"description": "One feature per violating pair: the closest points as a LineString, distance, required clearance, crossing or parallel",
            "content": {"application/geo+json": {"schema": {"$ref": "#/components/schemas/featureCollectionGeoJSON"}}, "text/csv": {"schema": {"type": "string"}}}},
            "400": {"$ref": "#/components/responses/error"}}}}));
    paths.insert("/analysis/grid-stats".into(), json!({"get": {"operationId": "gridStats", "tags": ["Analysis"],
        "summary": "Per grid cell of one level: pipeline length by kind, mean age, length by material (analyst)",
        "parameters": [q("level", "string", false, "district, street, community, grid or micro_grid (default street)"), q("bbox", "string", false, "limit to a CRS84 box")],
        "responses": {"200": {"description": "One feature per grid cell with its statistics", "content": geo}, "400": {"$ref": "#/components/responses/error"}}}}));
    paths.insert("/analysis/nearest-sensors".into(), json!({"get": {"operationId": "nearestSensors", "tags": ["Analysis"],
        "summary": "The sensors nearest a point, nearest first, with distance in metres",
        "parameters": [q("lon", "number", true, "longitude"), q("lat", "number", true, "latitude"), q("k", "integer", false, "1..1000, default 10"),
            q("kind", "string", false, "only this sensor kind"), q("max_distance", "number", false, "metres")],
        "responses": {"200": {"description": "Sensors as GeoJSON features with distance_m", "content": geo}, "400": {"$ref": "#/components/responses/error"}}}}));
}

/// Adds the shared error response to the document.
fn with_responses(mut doc: Value) -> Value {
    doc["components"]["responses"] = json!({"error": {"description": "Error naming the problem",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}}}});
    doc
}
