//! Progress of resumable batch imports (issue 6): the [`ImportJobStore`] sub-trait of
//! [`Store`](super::Store), over the `import_jobs` table of migration 0004. Its two
//! implementations are beside this file: `gpkg.rs` (SQL in `gpkg.sql`) and `postgis.rs`
//! (SQL in `postgis.sql`).
//!
//! `lifeline import --batch-size N` commits every batch of N source rows as one bulk load,
//! and the job's progress row (last committed source row and FID, counts) is written in
//! the *same* transaction ([`ImportJobStore::import_batch`]). So after a kill at any point
//! the stored records and the recorded position agree, and `--resume` continues after the
//! recorded row without duplicating or losing any.

mod gpkg;
mod postgis;

use super::StoreResult;
use async_trait::async_trait;
use lifeline_model::{Actor, Dataset, Layer, Owner};
use tokio::sync::mpsc::Receiver;

pub use lifeline_model::import_job::{ImportJob, ImportJobKey};

/// Persistence of import-job progress; see the module docs for the contract.
#[async_trait]
pub trait ImportJobStore: Send + Sync {
    /// The recorded progress of `key`, if any batch of it has been committed.
    async fn import_job(&self, key: &ImportJobKey) -> StoreResult<Option<ImportJob>>;

    /// Writes `data` exactly as `bulk_load` does and records `progress` in the same
    /// transaction; returns the change version. Either both commit or neither does.
    async fn import_batch(
        &self,
        data: &Dataset,
        progress: &ImportJob,
        actor: &Actor,
    ) -> StoreResult<i64>;

    /// One transaction holding `owners` and every record of `layer` (pipelines, risk
    /// points or sensors) that `chunks` delivers until it closes, written as `bulk_load`
    /// writes them while the producer is still reading and converting the rest. An `Err`
    /// chunk aborts: nothing is written and its message is the error (`Invalid`).
    /// `expected` is the number of records the producer expects (for the large-load path).
    async fn bulk_load_stream(
        &self,
        owners: Vec<Owner>,
        layer: Layer,
        expected: usize,
        chunks: Receiver<Result<Dataset, String>>,
        actor: &Actor,
    ) -> StoreResult<i64>;
}

#[cfg(test)]
mod tests {
    use super::gpkg::gpkg_sql;
    use super::postgis::pg_sql;

    #[test]
    fn every_statement_is_present() {
        for name in ["get", "upsert"] {
            assert!(gpkg_sql(name).contains("import_jobs"), "{name}");
            assert!(pg_sql(name).contains("import_jobs"), "{name}");
        }
    }
}
