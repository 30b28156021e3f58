//! Input/output with the outside geodetic world: vector files through GDAL ([`gdal`]), and
//! the `import` / `export` commands built on them ([`import`], [`export`]). Coordinate
//! reference systems (PROJ) are the model's ([`lifeline_model::crs`]).

pub mod export;
pub mod gdal;
pub mod import;
