//! Storage: the [`Store`] trait that the system of record implements, its two
//! implementations — [`postgis::PostgisStore`] (production) and [`gpkg::GpkgStore`] (the
//! embedded default, an OGC GeoPackage file).
//!
//! Contract (checked by the shared conformance suite in `tests/store_conformance.rs`):
//! every write is one transaction that also appends to the change log and the audit log;
//! a failed write leaves nothing behind; ids are positive and an id of 0 on insert asks the
//! store to assign one; foreign keys are enforced (owner of a pipeline, parent of a grid
//! cell, grid cell of a risk point, pipeline and risk point of a sensor).

mod audit;
pub mod gpkg;
pub mod import_jobs;
mod keys;
pub mod postgis;
pub mod pushdown;
pub mod readings;
mod records;
pub(crate) mod sqlfile;
pub mod tickets;

use async_trait::async_trait;
use lifeline_model::audit::{AuditFilter, AuditRecord, ChainAnchor, ChainRow};
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
    /// The database is unreachable or failed; details are for the log only. The driver's
    /// error is kept as the source.
    #[error("storage backend error: {0}")]
    Backend(#[source] BackendError),
}

/// A failure of the database itself: what failed, in words for the log, and the driver's
/// error it came from ([`std::error::Error::source`]), so nothing of the cause is lost.
/// Reads as its message (`Display`, and `Deref<Target = str>`).
#[derive(Debug)]
pub struct BackendError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    /// A failure with no underlying error (a broken invariant of the stored data).
    pub fn new(message: impl Into<String>) -> BackendError {
        BackendError {
            message: message.into(),
            source: None,
        }
    }

    /// `message` caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> BackendError {
        BackendError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl std::ops::Deref for BackendError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

impl From<String> for BackendError {
    fn from(message: String) -> BackendError {
        BackendError::new(message)
    }
}

impl From<&str> for BackendError {
    fn from(message: &str) -> BackendError {
        BackendError::new(message)
    }
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
pub(crate) fn backend_error(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(BackendError::with_source(e.to_string(), e))
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

/// One line of the audit log: who did what to which target, where, and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// The append order of the chain (issue 21).
    pub seq: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub role: Role,
    /// A verb such as `insert`, `update`, `delete`, `bulk_load`, `key_create`, `key_revoke`.
    pub action: String,
    /// What it acted on, such as `pipelines/12` or `keys/3`.
    pub target: String,
    pub detail: serde_json::Value,
    /// The request that caused it, when it came over HTTP.
    pub request_id: Option<String>,
    /// The area read, `[min_x, min_y, max_x, max_y]`, for reads that have one.
    pub bbox: Option<[f64; 4]>,
    /// This entry's chain hash.
    pub hash: String,
}

/// What a retention cut removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditCut {
    /// Entries removed.
    pub removed: u64,
    /// The chain's anchor after the cut (unchanged when nothing was removed).
    pub anchor: lifeline_model::audit::ChainAnchor,
}

/// Number of records per layer.
pub type Counts = Vec<(Layer, i64)>;

/// How a store's connections are in use now (`/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// The most connections the store opens.
    pub max: usize,
    /// Connections open now.
    pub open: usize,
    /// Open connections not in use.
    pub idle: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
}

/// What a store is and whether it answers: its kind, its place, its schema, its counts.
#[async_trait]
pub trait StoreInfo: Send + Sync {
    /// Which implementation this is.
    fn backend(&self) -> Backend;

    /// Where the data lives, for logs (a path, or host/database without the password).
    fn describe(&self) -> String;

    /// Applies pending schema migrations; returns the schema version now in force.
    async fn migrate(&self) -> StoreResult<i64>;

    /// Cheap reachability check for `/ready`.
    async fn ping(&self) -> StoreResult<()>;

    /// Records per layer.
    async fn counts(&self) -> StoreResult<Counts>;

    /// The connections' use now.
    fn pool_status(&self) -> PoolStatus;
}

/// The layers' records: every write is one transaction with its change-log and audit
/// entries, durable before it returns.
#[async_trait]
pub trait RecordStore: Send + Sync {
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
}

/// The change log that other instances follow to keep their index current.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Change-log entries with version > `version`, oldest first, at most `limit`.
    async fn changes_since(&self, version: i64, limit: usize) -> StoreResult<Vec<Change>>;
}

/// API keys (their hashes only); creating and revoking one is audited.
#[async_trait]
pub trait KeyStore: Send + Sync {
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
}

/// The audit log: who did what to which target, and when; an append-only hash chain
/// (issue 21, [`lifeline_model::audit`]): every store seals each entry it appends, in one
/// serialised order, whichever statement appends it.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an entry outside any data write (a read, a denied request, a quota event).
    async fn append_audit(&self, actor: &Actor, record: &AuditRecord) -> StoreResult<()>;

    /// Appends a plain entry (no area, no request id) outside any data write.
    async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> StoreResult<()> {
        self.append_audit(actor, &AuditRecord::plain(action, target, detail))
            .await
    }

    /// The newest audit entries, newest first.
    async fn audit_log(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        self.search_audit(&AuditFilter {
            limit,
            ..AuditFilter::default()
        })
        .await
    }

    /// The entries that match `filter`, newest first, at most `filter.limit`.
    async fn search_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;

    /// Where the stored chain begins.
    async fn audit_anchor(&self) -> StoreResult<ChainAnchor>;

    /// Chain rows with `seq > after`, in sequence order, at most `limit` (for verifying).
    async fn audit_chain(&self, after: i64, limit: usize) -> StoreResult<Vec<ChainRow>>;

    /// Removes whole segments of `segment` entries (by sequence number) whose entries are
    /// all older than `before`, oldest first, and moves the anchor past them.
    async fn cut_audit(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        segment: i64,
    ) -> StoreResult<AuditCut>;
}

/// The last sequence number a retention cut may remove: the end of the last whole segment
/// of `segment` entries that lies entirely before the first young entry (`first_young`, or
/// one past the newest entry when none is young). `None` when that is not past `anchor`.
pub(crate) fn cut_end(anchor: i64, first_young: i64, segment: i64) -> Option<i64> {
    let segment = segment.max(1);
    let end = (first_young - 1).div_euclid(segment) * segment;
    (end > anchor).then_some(end)
}

/// Every store trait, for code that holds a whole [`SharedStore`] (the server, the CLI,
/// tests) and calls methods of several: `use lifeline_store::prelude::*;`. A capability
/// names only the traits it needs instead.
pub mod prelude {
    pub use crate::import_jobs::ImportJobStore;
    pub use crate::pushdown::OgcStore;
    pub use crate::readings::RiskStore;
    pub use crate::tickets::TicketStore;
    pub use crate::{AuditLog, ChangeFeed, KeyStore, RecordStore, Store, StoreInfo};
}

/// The system of record: every capability's narrow trait at once. Implementations
/// implement the narrow traits; this one follows. See the module docs for the contract every
/// implementation keeps. A capability takes only the traits it needs (`&dyn TicketStore`,
/// `Arc<dyn RiskStore>`, …): a `SharedStore` coerces to any of them.
pub trait Store:
    StoreInfo
    + RecordStore
    + ChangeFeed
    + KeyStore
    + AuditLog
    + tickets::TicketStore
    + readings::RiskStore
    + import_jobs::ImportJobStore
    + pushdown::OgcStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: StoreInfo
        + RecordStore
        + ChangeFeed
        + KeyStore
        + AuditLog
        + AuditLog
        + tickets::TicketStore
        + readings::RiskStore
        + import_jobs::ImportJobStore
        + pushdown::OgcStore
        + Send
        + Sync
        + 'static
{
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
/// before children), nodes, pipelines (which name their nodes), risk points, sensors.
pub fn insertion_order(data: &Dataset) -> Vec<Record> {
    let mut out = Vec::with_capacity(data.len());
    out.extend(data.owners.iter().cloned().map(Record::Owner));
    let mut cells: Vec<_> = data.grid_cells.iter().collect();
    cells.sort_by_key(|c| c.level);
    out.extend(cells.into_iter().cloned().map(Record::GridCell));
    out.extend(data.nodes.iter().cloned().map(Record::Node));
    out.extend(data.pipelines.iter().cloned().map(Record::Pipeline));
    out.extend(data.risk_points.iter().cloned().map(Record::RiskPoint));
    out.extend(data.sensors.iter().cloned().map(Record::Sensor));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn retention_cuts_whole_segments_only() {
        // Segments of 10: entries 1..=24 exist, 1..=17 are old: only 1..=10 may go.
        assert_eq!(cut_end(0, 18, 10), Some(10));
        // All 24 old: the partial segment 21..=24 stays.
        assert_eq!(cut_end(0, 25, 10), Some(20));
        // Nothing past the anchor to cut.
        assert_eq!(cut_end(10, 18, 10), None);
        assert_eq!(cut_end(0, 5, 10), None);
        assert_eq!(cut_end(20, 31, 10), Some(30));
    }

    #[test]
    fn backend_errors_keep_their_cause() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = backend_error(cause);
        assert_eq!(e.to_string(), "storage backend error: refused");
        let StoreError::Backend(b) = &e else {
            panic!("{e:?}")
        };
        // The message reads as before, and the driver's error is one step below it.
        assert!(b.contains("refused"));
        let below = e
            .source()
            .and_then(Error::source)
            .expect("the cause is kept");
        let io = below
            .downcast_ref::<std::io::Error>()
            .expect("the driver's own error type");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        // Messages without a cause say so.
        let plain = StoreError::Backend("stored geometry is NULL".into());
        assert!(plain.source().and_then(Error::source).is_none());
    }
}
