//! Lifeline: a geospatial digital twin of a city's underground lifelines.
//!
//! This crate is the **server** tier: the service's state ([`state`]), its HTTP routers
//! ([`http`]), the records use cases and the one write path ([`records`]), readiness
//! ([`readiness`]), the change follower ([`sync`]), configuration ([`config`]),
//! authentication ([`auth`]) and the one error type handlers return ([`AppError`]). The CLI
//! is the binary's: `main.rs` parses and dispatches to one module per command under
//! `src/cli/`.
//! Everything else lives in the crates below it, re-exported here under their tier names:
//!
//! | tier | crates |
//! |---|---|
//! | model | [`model`] (domain types, layer schemas, CRS/datum math, stored records) |
//! | storage and index | [`store`] (PostGIS, GeoPackage), [`index`] (R-trees) |
//! | capabilities | [`excavation`], [`risk`], [`ogc`], [`tileserver`], [`analysis`], [`io`], [`generate`], [`simulate`] |
//!
//! A lower tier never imports a higher one; Cargo enforces it. `docs/architecture.md` is
//! the map. See `README.md` for how to run it and `DEVELOPERS.md` for the design rules.

pub mod audit;
pub mod auth;
pub mod config;
pub mod connections;
pub mod cors;
pub mod error;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod readiness;
pub mod records;
pub mod server;
pub mod state;
pub mod sync;

pub use lifeline_analysis as analysis;
pub use lifeline_excavation as excavation;
pub use lifeline_generate as generate;
pub use lifeline_index as index;
pub use lifeline_io as io;
pub use lifeline_model as model;
pub use lifeline_ogc as ogc;
pub use lifeline_risk as risk;
pub use lifeline_simulate as simulate;
pub use lifeline_store as store;
pub use lifeline_tileserver as tileserver;
pub use lifeline_trace as trace;

pub use error::AppError;
pub use server::run;
pub use state::AppState;
