//! Storage: the [`Store`] trait that the system of record implements, its two
//! implementations — [`postgis::PostgisStore`] (production) and [`gpkg::GpkgStore`] (the
//! embedded default, an OGC GeoPackage file).
//!
//! Contract (checked by the shared conformance suite in `tests/store_conformance.rs`):
//! every write is one transaction that also appends to the change log and the audit log;
//! a failed write leaves nothing behind; ids are positive and an id of 0 on insert asks the
//! store to assign one; foreign keys are enforced (owner of a pipeline, parent of a grid
//! cell, grid cell of a risk point, pipeline and risk point of a sensor).

pub mod gpkg;
mod gpkg_rtree;
pub mod import_jobs;
pub mod postgis;
pub mod pushdown;
pub mod readings;
pub(crate) mod sqlfile;
pub mod tickets;

use async_trait::async_trait;
use lifeline_model::{Actor, Change, Dataset, Layer, Record, Role};
use serde::Serialize;
use std::sync::Arc;

/// What went wrong in a store. `NotFound`, `Conflict` and `Invalid` are the client's doing
/// and map to 404/409/422; `Backend` is ours and maps to 500/503 without details.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{layer} {id} does not exist")]
    NotFound { layer: Layer, id: i64 },
    /// A uniqueness or reference rule: duplicate id, dangling owner, delete of a referenced row.
    #[error("{0}")]
    Conflict(String),
    /// A check constraint or a value the store cannot hold.
    #[error("{0}")]
    Invalid(String),
    /// The database is unreachable or failed; details are for the log only.
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl From<lifeline_model::alarm::AlarmChangeError> for StoreError {
    /// An alarm change the lifecycle refuses: a missing alarm is invalid input, a move the
    /// status does not allow a conflict.
    fn from(e: lifeline_model::alarm::AlarmChangeError) -> Self {
        use lifeline_model::alarm::AlarmChangeError;
        match e {
            AlarmChangeError::Missing(m) => StoreError::Invalid(m),
            AlarmChangeError::Conflict(m) => StoreError::Conflict(m),
        }
    }
}

/// A database library's error that is the backend's, not the client's (the stores map
/// constraint violations themselves where they mean a client mistake).
pub(crate) fn backend_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The result type of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which implementation a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Postgis,
    Geopackage,
}

/// A record as written, with the change-log version of the write.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub record: Record,
    pub version: i64,
}

/// An API key as stored: never the key itself, only its SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub key_hash: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One line of the audit log: who did what to which target, and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub role: Role,
    /// A verb such as `insert`, `update`, `delete`, `bulk_load`, `key_create`, `key_revoke`.
    pub action: String,
    /// What it acted on, such as `pipelines/12` or `keys/3`.
    pub target: String,
    pub detail: serde_json::Value,
}

/// Number of records per layer.
pub type Counts = Vec<(Layer, i64)>;

/// The system of record. See the module docs for the contract every implementation keeps.
#[async_trait]
pub trait Store:
    tickets::TicketStore
    + readings::RiskStore
    + import_jobs::ImportJobStore
    + pushdown::OgcStore
    + Send
    + Sync
    + 'static
{
    /// Which implementation this is.
    fn backend(&self) -> Backend;

    /// Where the data lives, for logs (a path, or host/database without the password).
    fn describe(&self) -> String;

    /// Applies pending schema migrations; returns the schema version now in force.
    async fn migrate(&self) -> StoreResult<i64>;

    /// Cheap reachability check for `/ready`.
    async fn ping(&self) -> StoreResult<()>;

    /// Every record of every layer, for building the index at start-up.
    async fn load_all(&self) -> StoreResult<Dataset>;

    /// Inserts or replaces (by id) every record of `data` in one transaction: all or
    /// nothing. Records with id 0 get assigned ids. Returns the change-log version.
    async fn bulk_load(&self, data: &Dataset, actor: &Actor) -> StoreResult<i64>;

    /// One record by layer and id.
    async fn get(&self, layer: Layer, id: i64) -> StoreResult<Option<Record>>;

    /// Inserts a new record (id 0: assigned). A duplicate id is a `Conflict`.
    async fn insert(&self, record: &Record, actor: &Actor) -> StoreResult<Written>;

    /// Replaces an existing record (same id). A missing one is `NotFound`.
    async fn update(&self, record: &Record, actor: &Actor) -> StoreResult<Written>;

    /// Deletes a record; returns the change-log version. Deleting a referenced record is a
    /// `Conflict`; a missing one `NotFound`.
    async fn delete(&self, layer: Layer, id: i64, actor: &Actor) -> StoreResult<i64>;

    /// Change-log entries with version > `version`, oldest first, at most `limit`.
    async fn changes_since(&self, version: i64, limit: usize) -> StoreResult<Vec<Change>>;

    /// Records per layer.
    async fn counts(&self) -> StoreResult<Counts>;

    /// Stores a new API key (its hash) and audits it.
    async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        key_hash: &str,
        actor: &Actor,
    ) -> StoreResult<ApiKey>;

    /// The key with this hash, revoked or not.
    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>>;

    /// Marks a key revoked; false if there is no such active key.
    async fn revoke_api_key(&self, id: i64, actor: &Actor) -> StoreResult<bool>;

    /// Every key, newest first.
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>>;

    /// Appends to the audit log outside any data write (e.g. a denied request).
    async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> StoreResult<()>;

    /// The newest audit entries, newest first.
    async fn audit_log(&self, limit: usize) -> StoreResult<Vec<AuditEntry>>;
}

/// A shared handle to whichever store is configured.
pub type SharedStore = Arc<dyn Store>;

/// Opens the store a URL names: `postgres://…` / `postgresql://…` selects PostGIS,
/// anything else is a GeoPackage path (created if missing). Migrations are applied.
pub async fn open(url_or_path: &str, pool_size: usize) -> StoreResult<SharedStore> {
    let store: SharedStore =
        if url_or_path.starts_with("postgres://") || url_or_path.starts_with("postgresql://") {
            Arc::new(postgis::PostgisStore::connect(url_or_path, pool_size).await?)
        } else {
            Arc::new(gpkg::GpkgStore::open(std::path::Path::new(url_or_path))?)
        };
    store.migrate().await?;
    Ok(store)
}

/// Records of a data set in the order foreign keys need: owners, grid cells (parents
/// before children), pipelines, risk points, sensors.
pub fn insertion_order(data: &Dataset) -> Vec<Record> {
    let mut out = Vec::with_capacity(data.len());
    out.extend(data.owners.iter().cloned().map(Record::Owner));
    let mut cells: Vec<_> = data.grid_cells.iter().collect();
    cells.sort_by_key(|c| c.level);
    out.extend(cells.into_iter().cloned().map(Record::GridCell));
    out.extend(data.pipelines.iter().cloned().map(Record::Pipeline));
    out.extend(data.risk_points.iter().cloned().map(Record::RiskPoint));
    out.extend(data.sensors.iter().cloned().map(Record::Sensor));
    out
}
