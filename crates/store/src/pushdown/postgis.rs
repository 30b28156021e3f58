//! [`OgcStore`] on PostGIS: runs the page and count statements of a pushed-down items
//! query on one connection, binding each [`Param`] as its PostgreSQL type.

use super::{OgcStore, Param, SqlPage, SqlQuery};
use crate::postgis::PostgisStore;
use crate::{BackendError, StoreError, StoreResult};
use async_trait::async_trait;
use tokio_postgres::types::ToSql;

impl Param {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Text(s) => s,
            Param::F64(f) => f,
            Param::I64(i) => i,
            Param::Time(t) => t,
        }
    }
}

#[async_trait]
impl OgcStore for PostgisStore {
    async fn ogc_items(&self, q: &SqlQuery) -> StoreResult<Option<SqlPage>> {
        let client = self.client().await?;
        let mut page_params: Vec<&(dyn ToSql + Sync)> =
            q.params.iter().map(Param::as_sql).collect();
        let count_params = page_params.clone();
        page_params.push(&q.limit);
        page_params.push(&q.offset);
        // Both statements go out on one connection without waiting for each other.
        let (rows, count) = tokio::try_join!(
            client.query(q.page_sql.as_str(), &page_params),
            client.query_one(q.count_sql.as_str(), &count_params)
        )
        .map_err(|e| {
            StoreError::Backend(BackendError::with_source(
                format!("OGC items query: {e}"),
                e,
            ))
        })?;
        let matched: i64 = count.get(0);
        Ok(Some(SqlPage {
            ids: rows.iter().map(|r| r.get(0)).collect(),
            matched: matched.max(0) as usize,
        }))
    }
}
