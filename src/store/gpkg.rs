//! GeoPackage store (placeholder until the implementation lands).
use super::*;
/// GeoPackage-backed store.
pub struct GpkgStore;
impl GpkgStore {
    /// Opens or creates a GeoPackage file.
    pub fn open(_path: &std::path::Path) -> StoreResult<Self> {
        Err(StoreError::Backend("not yet".into()))
    }
}
