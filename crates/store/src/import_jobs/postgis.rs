//! [`ImportJobStore`] on PostGIS: the progress row is written inside the batch's
//! bulk-load transaction; statements in `postgis.sql` beside this file.

use super::{ImportJob, ImportJobKey, ImportJobStore};
use crate::postgis::PostgisStore;
use crate::{backend_error, StoreResult};
use async_trait::async_trait;
use lifeline_model::{Actor, Dataset, Layer, Owner};
use tokio::sync::mpsc::Receiver;

crate::sqlfile::named_sql!(pub(super) fn pg_sql = "import_jobs/postgis.sql", include_str!("postgis.sql"));

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
