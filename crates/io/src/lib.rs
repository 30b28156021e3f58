//! Input/output with the outside geodetic world: vector files through GDAL ([`gdal`]), the
//! import and export built on them ([`import`], [`export`]), and the use cases a front end
//! calls — import a file into a store, export a layer to a file ([`service`]) — and the
//! mappings made from a file's own columns when there is no mapping file ([`infer`]), and
//! imports that build the network's topology as they load (snapping geometry-only pipes,
//! EPANET `.inp` files: [`network`], on `lifeline_trace`'s builders). Coordinate reference
//! systems (PROJ) are the model's ([`lifeline_model::crs`]).

pub mod export;
pub mod gdal;
pub mod import;
pub mod infer;
pub mod network;
pub mod service;
