//! Query pushdown: the translated SQL of an OGC items query ([`SqlQuery`], built by the OGC
//! capability's planner) and the stores that can run it ([`OgcStore`]). The statement text
//! is the planner's; every value in it is a bound [`Param`].
//!
//! This file holds the query types and the trait; the implementations are beside it:
//! `postgis.rs` runs the statements, `gpkg.rs` pushes nothing down. There are no `.sql`
//! files here.

mod gpkg;
mod postgis;

use super::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A bound parameter of a pushed-down query.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    F64(f64),
    I64(i64),
    Time(DateTime<Utc>),
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
