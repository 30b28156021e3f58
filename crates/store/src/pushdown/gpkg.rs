//! [`OgcStore`] on the GeoPackage: nothing is pushed down (the index path answers).

use super::{OgcStore, SqlPage, SqlQuery};
use crate::gpkg::GpkgStore;
use crate::StoreResult;
use async_trait::async_trait;

#[async_trait]
impl OgcStore for GpkgStore {
    async fn ogc_items(&self, _q: &SqlQuery) -> StoreResult<Option<SqlPage>> {
        // The GeoPackage is a file next to the index; scanning the index is faster than
        // SQLite, so nothing is pushed down.
        Ok(None)
    }
}
