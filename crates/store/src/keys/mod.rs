//! API keys ([`crate::KeyStore`]) and the audit log ([`crate::AuditLog`]), PostGIS and
//! GeoPackage side by side.

pub(crate) mod gpkg;
pub(crate) mod postgis;
