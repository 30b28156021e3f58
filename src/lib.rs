//! Lifeline: a geospatial digital twin of a city's underground lifelines.
//!
//! The service keeps pipelines, risk points, grid cells and sensors in a system-of-record
//! [`store`] (PostGIS, or an embedded GeoPackage), mirrors them into an in-memory R-tree
//! [`index`], and serves them over HTTP ([`http`]). See `README.md` for how to run it and
//! `DEVELOPERS.md` for the design rules.

pub mod analysis;
pub mod auth;
pub mod config;
pub mod error;
pub mod excavation;
pub mod generate;
pub mod http;
pub mod index;
pub mod io;
pub mod model;
pub mod ogc;
pub mod risk;
pub mod server;
pub mod simulate;
pub mod state;
pub mod store;
pub mod sync;
pub mod tileserver;

pub use error::AppError;
pub use server::run;
pub use state::AppState;
