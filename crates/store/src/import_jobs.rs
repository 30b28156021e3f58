//! Progress of resumable batch imports (issue 6): the [`ImportJobStore`] sub-trait of
//! [`Store`](super::Store) and its two implementations, over the `import_jobs` table of
//! migration 0004 (SQL in `import_jobs_gpkg.sql` / `import_jobs_postgis.sql`).
//!
//! `lifeline import --batch-size N` commits every batch of N source rows as one bulk load,
//! and the job's progress row (last committed source row and FID, counts) is written in
//! the *same* transaction ([`ImportJobStore::import_batch`]). So after a kill at any point
//! the stored records and the recorded position agree, and `--resume` continues after the
//! recorded row without duplicating or losing any.

use super::gpkg::{GpkgStore, SqlExt};
use super::postgis::PostgisStore;
use super::{backend_error, StoreResult};
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

crate::sqlfile::named_sql!(fn gpkg_sql = "import_jobs_gpkg.sql", include_str!("import_jobs_gpkg.sql"));

crate::sqlfile::named_sql!(fn pg_sql = "import_jobs_postgis.sql", include_str!("import_jobs_postgis.sql"));

#[async_trait]
impl ImportJobStore for GpkgStore {
    async fn import_job(&self, key: &ImportJobKey) -> StoreResult<Option<ImportJob>> {
        let key = key.clone();
        self.read(move |conn| {
            use rusqlite::OptionalExtension;
            conn.query_row(
                gpkg_sql("get"),
                rusqlite::params![key.source, key.source_layer, key.layer.as_str()],
                |r| {
                    Ok(ImportJob {
                        key: key.clone(),
                        batch_size: r.get(0)?,
                        last_row: r.get(1)?,
                        last_fid: r.get(2)?,
                        accepted: r.get(3)?,
                        rejected: r.get(4)?,
                        batches: r.get(5)?,
                        done: r.get::<_, i64>(6)? != 0,
                        actor: r.get(7)?,
                        started_at: r.get(8)?,
                        updated_at: r.get(9)?,
                    })
                },
            )
            .optional()
            .sql()
        })
        .await
    }

    async fn import_batch(&self, data: &Dataset, p: &ImportJob, actor: &Actor) -> StoreResult<i64> {
        self.bulk_load_with(data, actor, |conn| {
            conn.prepare_cached(gpkg_sql("upsert"))
                .sql()?
                .execute(rusqlite::params![
                    p.key.source,
                    p.key.source_layer,
                    p.key.layer.as_str(),
                    p.batch_size,
                    p.last_row,
                    p.last_fid,
                    p.accepted,
                    p.rejected,
                    p.batches,
                    i64::from(p.done),
                    p.actor,
                    p.started_at,
                    p.updated_at
                ])
                .sql()?;
            Ok(())
        })
    }

    async fn bulk_load_stream(
        &self,
        owners: Vec<Owner>,
        layer: Layer,
        expected: usize,
        chunks: Receiver<Result<Dataset, String>>,
        actor: &Actor,
    ) -> StoreResult<i64> {
        GpkgStore::bulk_load_stream(self, owners, layer, expected, chunks, actor).await
    }
}

#[async_trait]
impl ImportJobStore for PostgisStore {
    async fn import_job(&self, key: &ImportJobKey) -> StoreResult<Option<ImportJob>> {
        let client = self.client().await?;
        let layer = key.layer.as_str();
        let row = client
            .query_opt(pg_sql("get"), &[&key.source, &key.source_layer, &layer])
            .await
            .map_err(backend_error)?;
        row.map(|r| -> Result<ImportJob, tokio_postgres::Error> {
            Ok(ImportJob {
                key: key.clone(),
                batch_size: r.try_get(0)?,
                last_row: r.try_get(1)?,
                last_fid: r.try_get(2)?,
                accepted: r.try_get(3)?,
                rejected: r.try_get(4)?,
                batches: r.try_get(5)?,
                done: r.try_get(6)?,
                actor: r.try_get(7)?,
                started_at: r.try_get(8)?,
                updated_at: r.try_get(9)?,
            })
        })
        .transpose()
        .map_err(backend_error)
    }

    async fn import_batch(&self, data: &Dataset, p: &ImportJob, actor: &Actor) -> StoreResult<i64> {
        let layer = p.key.layer.as_str();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 13] = [
            &p.key.source,
            &p.key.source_layer,
            &layer,
            &p.batch_size,
            &p.last_row,
            &p.last_fid,
            &p.accepted,
            &p.rejected,
            &p.batches,
            &p.done,
            &p.actor,
            &p.started_at,
            &p.updated_at,
        ];
        self.bulk_load_with(data, actor, Some((pg_sql("upsert"), &params)))
            .await
    }

    async fn bulk_load_stream(
        &self,
        owners: Vec<Owner>,
        layer: Layer,
        _expected: usize,
        chunks: Receiver<Result<Dataset, String>>,
        actor: &Actor,
    ) -> StoreResult<i64> {
        // The large-load path of PostGIS decides on the rows actually staged.
        PostgisStore::bulk_load_stream(self, owners, layer, chunks, actor).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_is_present() {
        for name in ["get", "upsert"] {
            assert!(gpkg_sql(name).contains("import_jobs"), "{name}");
            assert!(pg_sql(name).contains("import_jobs"), "{name}");
        }
    }
}
