//! `lifeline migrate`: applies the store's pending schema migrations and reports the
//! version it is at.

use super::{open_store, Output};
use anyhow::Result;
use lifeline::config::StoreArgs;

/// What `migrate` prints: the store (its password hidden) and its schema version.
#[derive(serde::Serialize)]
struct Migrated {
    store: String,
    schema_version: i64,
}

impl std::fmt::Display for Migrated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: schema at version {}",
            self.store, self.schema_version
        )
    }
}

/// Opens the store (which migrates it) and prints its schema version.
pub async fn run(store: &StoreArgs, out: Output) -> Result<()> {
    let (store, _) = open_store(store).await?;
    let schema_version = store.migrate().await?;
    out.result(&Migrated {
        store: store.describe(),
        schema_version,
    })
}
