//! Input/output with the outside geodetic world: coordinate reference systems through PROJ
//! ([`crs`]). Imports and exports through GDAL join this module later.

pub mod crs;
