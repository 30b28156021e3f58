//! Input/output with the outside geodetic world: coordinate reference systems through PROJ
//! ([`crs`]), vector files through GDAL ([`gdal`]), and the `import` / `export` commands
//! built on them ([`import`], [`export`]).

pub mod crs;
pub mod export;
pub mod gdal;
pub mod import;
