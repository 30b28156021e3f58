//! Query pushdown: the translated SQL of an OGC items query ([`SqlQuery`], built by the OGC
//! capability's planner) and the stores that can run it ([`OgcStore`]). The statement text
//! is the planner's; every value in it is a bound [`Param`].

use super::gpkg::GpkgStore;
use super::postgis::PostgisStore;
use super::{BackendError, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

/// A bound parameter of a pushed-down query.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    F64(f64),
    I64(i64),
    Time(DateTime<Utc>),
}

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

/// A translated items query: the page and count statements share the `WHERE` parameters;
/// the page adds `LIMIT`/`OFFSET` as the last two.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlQuery {
    pub page_sql: String,
    pub count_sql: String,
    pub params: Vec<Param>,
    pub limit: i64,
    pub offset: i64,
}

/// The ids of one page, in order, and how many rows match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlPage {
    pub ids: Vec<i64>,
    pub matched: usize,
}

/// Stores that can run a pushed-down items query.
#[async_trait]
pub trait OgcStore {
    /// Runs `q`; `Ok(None)` when this store does not push queries down (the index path is
    /// then used).
    async fn ogc_items(&self, q: &SqlQuery) -> StoreResult<Option<SqlPage>>;
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

#[async_trait]
impl OgcStore for GpkgStore {
    async fn ogc_items(&self, _q: &SqlQuery) -> StoreResult<Option<SqlPage>> {
        // The GeoPackage is a file next to the index; scanning the index is faster than
        // SQLite, so nothing is pushed down.
        Ok(None)
    }
}
