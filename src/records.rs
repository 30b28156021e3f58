//! The records use cases behind `/features` and `/bulk`: read one record, list a layer
//! (optionally inside a box) or the records nearest a point, and — for operators — insert,
//! replace, delete and bulk-load, all through the one write path, [`write`]: the store
//! commits first (durably), then the index is updated, and then the tile cache and the risk
//! engine hear of the change; a lock makes concurrent writes reach the index in the
//! store's commit order.
//!
//! Why in the server tier and not in a capability crate: records are the core's, and a
//! write reaches the in-memory state of two capabilities (the tile cache and the risk
//! engine) besides the index and the store, which only [`AppState`] holds together. Reads
//! take the index alone. Errors are [`RecordsError`]; `src/error.rs` maps them to HTTP.

use crate::index::{Hit, IndexError, SpatialIndex};
use crate::model::access::{require, Forbidden};
use crate::model::crs::CrsError;
use crate::model::feature::from_feature;
use crate::model::{Actor, Bbox, Dataset, Layer, ModelError, Record, Role};
use crate::state::AppState;
use crate::store::{SharedStore, StoreError};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;

/// Most records one layer query returns.
pub const MAX_LIMIT: usize = 10_000;

/// Why a records request failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// A parameter or body the client got wrong.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The caller's role is below what the operation needs.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// An invalid record, geometry or data set.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// A query the index refused (a box or point it cannot project).
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store has the record; the index could not project it. Restarting rebuilds the
    /// index from the store, so nothing is lost, but it is a failure to report.
    #[error("index update failed after commit: {0}")]
    IndexUpdate(#[source] CrsError),
    /// Rebuilding the index from the store after a bulk load failed.
    #[error("index reload failed: {0}")]
    Reload(#[source] CrsError),
    /// The index reload task did not finish.
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
    /// The store answered a write without the record written.
    #[error("{0}")]
    Internal(&'static str),
}

/// What a committed write changes in the index.
#[derive(Debug, Clone)]
pub enum IndexUpdate {
    Upsert(Box<Record>),
    Remove(Layer, i64),
    /// Rebuild everything from the store (after bulk loads).
    Reload,
}

/// Runs one write: `f` commits to the store (durably) and says what changed and at which
/// change-log version; then the index, the tile cache and the risk engine are updated, under
/// a lock so concurrent writes reach the index in commit order.
pub async fn write<F, Fut>(state: &AppState, f: F) -> Result<Vec<IndexUpdate>, RecordsError>
where
    F: FnOnce(SharedStore) -> Fut,
    Fut: Future<Output = Result<(Vec<IndexUpdate>, i64), RecordsError>>,
{
    let _guard = state.lock_writes().await;
    let (updates, version) = f(state.store.clone()).await?;
    for u in &updates {
        match u {
            IndexUpdate::Upsert(r) => {
                let old = state.index.get(r.layer(), r.id());
                state
                    .index
                    .upsert((**r).clone())
                    .map_err(RecordsError::IndexUpdate)?;
                // After the index: a tile cut from here on shows the change.
                state.tiles.record_changed(old.as_deref(), Some(&**r));
                state.risk.index_changed(r.layer(), r.id());
            }
            IndexUpdate::Remove(layer, id) => {
                let old = state.index.get(*layer, *id);
                state.index.remove(*layer, *id);
                state.tiles.record_changed(old.as_deref(), None);
                state.risk.index_changed(*layer, *id);
            }
            IndexUpdate::Reload => {
                let data = state.store.load_all().await?;
                let idx = state.index.clone();
                tokio::task::spawn_blocking(move || idx.load(data))
                    .await?
                    .map_err(RecordsError::Reload)?;
                state.tiles.clear();
                state.risk.index_reloaded();
            }
        }
    }
    state.index.set_version(version);
    Ok(updates)
}

/// Owners (names and emergency contacts) are for contractors and above.
fn need_read(actor: &Actor, layer: Layer) -> Result<(), RecordsError> {
    if layer == Layer::Owners {
        require(actor, Role::Contractor)?;
    }
    Ok(())
}

/// One record, if the caller may read its layer.
pub fn get(
    index: &SpatialIndex,
    actor: &Actor,
    layer: Layer,
    id: i64,
) -> Result<Arc<Record>, RecordsError> {
    need_read(actor, layer)?;
    index
        .get(layer, id)
        .ok_or_else(|| RecordsError::NotFound(format!("{layer} {id} does not exist")))
}

/// One page of a layer, ordered by id.
#[derive(Debug, Clone)]
pub struct Page {
    pub records: Vec<Arc<Record>>,
    /// How many records match in all.
    pub matched: usize,
}

/// Records of a layer, inside `bbox` (`minLon,minLat,maxLon,maxLat`) if given, ordered by
/// id, `limit` (1..[`MAX_LIMIT`], default 100) from `offset`.
pub fn query(
    index: &SpatialIndex,
    actor: &Actor,
    layer: Layer,
    bbox: Option<&str>,
    limit: Option<usize>,
    offset: Option<usize>,
) -> Result<Page, RecordsError> {
    need_read(actor, layer)?;
    let limit = crate::model::page_limit(limit, 100, MAX_LIMIT)
        .map_err(|e| RecordsError::BadRequest(e.to_string()))?;
    let offset = offset.unwrap_or(0);
    let mut records = match bbox {
        Some(b) => {
            if layer == Layer::Owners {
                return Err(RecordsError::BadRequest(
                    "owners have no geometry; bbox does not apply".into(),
                ));
            }
            let bbox = Bbox::parse(b).map_err(|e| RecordsError::BadRequest(e.to_string()))?;
            index.bbox(layer, &bbox)?
        }
        None => index.all(layer),
    };
    records.sort_unstable_by_key(|r| r.id());
    let matched = records.len();
    let records = records.into_iter().skip(offset).take(limit).collect();
    Ok(Page { records, matched })
}

/// The `k` (1..=1000, default 10) records of a layer nearest a point, within
/// `max_distance_m` metres if given, nearest first.
pub fn nearest(
    index: &SpatialIndex,
    actor: &Actor,
    layer: Layer,
    (lon, lat): (f64, f64),
    k: Option<usize>,
    max_distance_m: Option<f64>,
) -> Result<Vec<Hit>, RecordsError> {
    need_read(actor, layer)?;
    Bbox::new(lon, lat, lon, lat).map_err(|e| RecordsError::BadRequest(format!("lon/lat: {e}")))?;
    let k = k.unwrap_or(10);
    if !(1..=1000).contains(&k) {
        return Err(RecordsError::BadRequest("k must be 1..1000".into()));
    }
    if let Some(d) = max_distance_m {
        if !d.is_finite() || d < 0.0 {
            return Err(RecordsError::BadRequest(
                "max_distance_m must be a non-negative number".into(),
            ));
        }
    }
    Ok(index.nearest(layer, lon, lat, k, max_distance_m)?)
}

fn parse_record(state: &AppState, layer: Layer, body: Value) -> Result<Record, RecordsError> {
    let record = from_feature(layer, body)?;
    record.validate(state.catalog)?;
    Ok(record)
}

/// The record of a single-record write.
fn stored(updates: Vec<IndexUpdate>, what: &'static str) -> Result<Box<Record>, RecordsError> {
    match updates.into_iter().next() {
        Some(IndexUpdate::Upsert(r)) => Ok(r),
        _ => Err(RecordsError::Internal(what)),
    }
}

/// Inserts a record (operators) from a GeoJSON Feature; returns it as stored.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    layer: Layer,
    body: Value,
) -> Result<Box<Record>, RecordsError> {
    require(actor, Role::Operator)?;
    let record = parse_record(state, layer, body)?;
    let actor = actor.clone();
    let updates = write(state, |store| async move {
        let w = store.insert(&record, &actor).await?;
        Ok((vec![IndexUpdate::Upsert(Box::new(w.record))], w.version))
    })
    .await?;
    stored(updates, "insert returned no record")
}

/// Replaces record `id` (operators); the body's id, if any, must match.
pub async fn replace(
    state: &AppState,
    actor: &Actor,
    layer: Layer,
    id: i64,
    body: Value,
) -> Result<Box<Record>, RecordsError> {
    require(actor, Role::Operator)?;
    let mut record = parse_record(state, layer, body)?;
    if record.id() != 0 && record.id() != id {
        return Err(RecordsError::BadRequest(format!(
            "body id {} does not match path id {id}",
            record.id()
        )));
    }
    record.set_id(id);
    let actor = actor.clone();
    let updates = write(state, |store| async move {
        let w = store.update(&record, &actor).await?;
        Ok((vec![IndexUpdate::Upsert(Box::new(w.record))], w.version))
    })
    .await?;
    stored(updates, "update returned no record")
}

/// Deletes a record (operators).
pub async fn delete(
    state: &AppState,
    actor: &Actor,
    layer: Layer,
    id: i64,
) -> Result<(), RecordsError> {
    require(actor, Role::Operator)?;
    let actor = actor.clone();
    write(state, |store| async move {
        let version = store.delete(layer, id, &actor).await?;
        Ok((vec![IndexUpdate::Remove(layer, id)], version))
    })
    .await?;
    Ok(())
}

/// What a bulk load wrote: records per layer, and the index's version after it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub counts: [(Layer, usize); 6],
    pub version: i64,
}

/// Loads a whole data set in one transaction (operators): all of it or nothing; the index
/// is then rebuilt from the store.
pub async fn bulk_load(
    state: &AppState,
    actor: &Actor,
    data: Dataset,
) -> Result<Loaded, RecordsError> {
    require(actor, Role::Operator)?;
    data.validate(state.catalog)?;
    let counts = data.counts();
    let actor = actor.clone();
    let data = Arc::new(data);
    write(state, |store| async move {
        let version = store.bulk_load(&data, &actor).await?;
        Ok((vec![IndexUpdate::Reload], version))
    })
    .await?;
    Ok(Loaded {
        counts,
        version: state.index.version(),
    })
}
