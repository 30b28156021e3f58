//! PostGIS store (placeholder until the implementation lands).
use super::*;
/// PostGIS-backed store.
pub struct PostgisStore;
impl PostgisStore {
    /// Connects a pool.
    pub async fn connect(_url: &str, _pool: usize) -> StoreResult<Self> {
        Err(StoreError::Backend("not yet".into()))
    }
}
