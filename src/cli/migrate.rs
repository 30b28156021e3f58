//! `lifeline migrate`: applies the store's pending schema migrations and reports the
//! version it is at.

use super::open_store;
use anyhow::Result;
use lifeline::config::StoreArgs;

/// Opens the store (which migrates it) and prints its schema version.
pub async fn run(store: &StoreArgs) -> Result<()> {
    let (store, _) = open_store(store).await?;
    let v = store.migrate().await?;
    println!("{}: schema at version {v}", store.describe());
    Ok(())
}
