//! The route table: every route the service answers is registered here, together with where
//! it is documented, so the router and the documents cannot drift apart (issue 22).
//!
//! A handler with a `#[utoipa::path]` is registered with [`Routes::routes`] and the
//! `utoipa_axum::routes!` macro: the router's path is the document's, by construction. Two
//! kinds of routes are registered otherwise, and say so:
//! - [`Routes::routes_at`]: the document's path has a parameter with a suffix
//!   (`/tiles/{layers}/{z}/{x}/{y}.mvt`) that axum's router cannot match, so the router takes
//!   the whole segment (`{file}`) and the handler parses it;
//! - [`Routes::ogc`]: OGC API – Features, described by its own document at `/ogc/api`.
//!
//! [`Routes::table`] lists them all, for the test that compares the router with the
//! documents both ways (`tests/openapi.rs`).

use crate::state::AppState;
use axum::routing::MethodRouter;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

/// Which document describes a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Document {
    /// The service's `/openapi.json`.
    Service,
    /// The OGC API's `/ogc/api`, whose paths are relative to [`OGC_BASE`].
    Ogc,
}

/// Where the OGC API is mounted; `/ogc/api`'s paths are relative to it.
pub const OGC_BASE: &str = "/ogc";

/// One route of the router: its path template as axum matches it, and the document that
/// describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Route {
    /// The path template the router matches (`{name}` is one whole segment).
    pub path: String,
    /// The document that describes it.
    pub document: Document,
}

/// The service's routes and their OpenAPI description, built together.
pub struct Routes {
    api: OpenApiRouter<AppState>,
    table: Vec<Route>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    /// No routes yet.
    pub fn new() -> Self {
        Routes {
            api: OpenApiRouter::default(),
            table: Vec::new(),
        }
    }

    /// Handlers documented by their `#[utoipa::path]` (one path, a method each), routed at
    /// the documented path.
    pub fn routes(mut self, r: UtoipaMethodRouter<AppState>) -> Self {
        for path in r.1.paths.keys() {
            self.record(path, Document::Service);
        }
        self.api = self.api.routes(r);
        self
    }

    /// Handlers documented by their `#[utoipa::path]`, routed at `path`: for a documented
    /// path axum cannot match (a parameter with a suffix), `path` takes the whole segment.
    pub fn routes_at(
        mut self,
        path: &str,
        (schemas, paths, method): UtoipaMethodRouter<AppState>,
    ) -> Self {
        self.record(path, Document::Service);
        self.api = self.api.route(path, method);
        let doc = self.api.get_openapi_mut();
        doc.paths.merge(paths);
        doc.components
            .get_or_insert_with(utoipa::openapi::Components::new)
            .schemas
            .extend(schemas);
        self
    }

    /// An OGC API – Features route (`path` starts with [`OGC_BASE`]), described by `/ogc/api`.
    pub fn ogc(mut self, path: &str, method: MethodRouter<AppState>) -> Self {
        debug_assert!(path.starts_with(OGC_BASE), "{path} is not under {OGC_BASE}");
        self.record(path, Document::Ogc);
        self.api = self.api.route(path, method);
        self
    }

    /// Adds both the routes and the description of `other`.
    pub fn merge(mut self, other: Routes) -> Self {
        self.api = self.api.merge(other.api);
        self.table.extend(other.table);
        self
    }

    /// Applies a layer to the routes registered so far (as [`axum::Router::layer`]).
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Response:
            axum::response::IntoResponse + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Error:
            Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.api = self.api.layer(layer);
        self
    }

    /// Every route registered, in registration order.
    pub fn table(&self) -> &[Route] {
        &self.table
    }

    /// The router, the service's OpenAPI document (paths only: the caller adds info and
    /// tags), and the table.
    pub fn into_parts(self) -> (axum::Router<AppState>, OpenApi, Vec<Route>) {
        let (router, doc) = self.api.split_for_parts();
        (router, doc, self.table)
    }

    fn record(&mut self, path: &str, document: Document) {
        self.table.push(Route {
            path: path.to_string(),
            document,
        });
    }
}

impl Route {
    /// Whether a documented path template names this route: segment by segment, equal, or
    /// a parameter on either side (a documented segment such as `{y}.mvt` is one parameter
    /// segment to the router). A document's path is relative to its base ([`OGC_BASE`]
    /// for [`Document::Ogc`]).
    pub fn matches(&self, documented: &str) -> bool {
        let path = match self.document {
            Document::Service => self.path.as_str(),
            Document::Ogc => self.path.strip_prefix(OGC_BASE).unwrap_or(&self.path),
        };
        let segments = |p: &str| -> Vec<String> {
            p.trim_end_matches('/')
                .split('/')
                .map(str::to_string)
                .collect()
        };
        let (ours, theirs) = (segments(path), segments(documented));
        ours.len() == theirs.len()
            && ours
                .iter()
                .zip(&theirs)
                .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}')) || b.contains('{'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str, document: Document) -> Route {
        Route {
            path: path.into(),
            document,
        }
    }

    #[test]
    fn a_route_matches_its_documented_template() {
        let tile = route("/tiles/{layers}/{z}/{x}/{file}", Document::Service);
        assert!(tile.matches("/tiles/{layers}/{z}/{x}/{y}.mvt"));
        assert!(!tile.matches("/tiles/{layers}/metadata.json"));
        let items = route("/ogc/collections/{id}/items", Document::Ogc);
        assert!(items.matches("/collections/pipelines/items"));
        assert!(!items.matches("/collections/pipelines/queryables"));
        assert!(route("/ogc", Document::Ogc).matches("/"));
        assert!(route("/ogc/", Document::Ogc).matches("/"));
        assert!(!route("/alarms", Document::Service).matches("/alarms/{id}"));
    }
}
