//! The audit log ([`crate::AuditLog`]): appends outside data writes, the search, the chain
//! as stored and its retention cut, PostGIS and GeoPackage side by side. Data writes append
//! their own entries inside their transactions (the records, keys, tickets and readings
//! folders); the chain seals those too, in the database (a trigger in both stores, see
//! migration 0011), so no append can skip it.

pub(crate) mod gpkg;
pub(crate) mod postgis;
