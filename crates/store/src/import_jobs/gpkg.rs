//! [`ImportJobStore`] on the GeoPackage: the progress row is written inside the batch's
//! bulk-load transaction; statements in `gpkg.sql` beside this file.

use super::{ImportJob, ImportJobKey, ImportJobStore};
use crate::gpkg::{GpkgStore, SqlExt};
use crate::StoreResult;
use async_trait::async_trait;
use lifeline_model::{Actor, Dataset, Layer, Owner};
use tokio::sync::mpsc::Receiver;

crate::sqlfile::named_sql!(pub(super) fn gpkg_sql = "import_jobs/gpkg.sql", include_str!("gpkg.sql"));

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
