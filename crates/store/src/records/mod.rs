//! The layers' records ([`crate::RecordStore`]) and the change log ([`crate::ChangeFeed`]),
//! PostGIS and GeoPackage side by side.

pub(crate) mod gpkg;
pub(crate) mod postgis;
