//! `lifeline generate`: the deterministic sample city ([`lifeline::generate`]), validated
//! and written to the store in one transaction and/or to a JSON file.

use super::open_store;
use anyhow::{Context, Result};
use lifeline::config::StoreArgs;
use lifeline::generate::{GenerateOptions, Preset};
use lifeline::model::{Actor, Catalog};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `lifeline generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// demo (one street), jiulongpo (one district) or city (the central city).
    #[arg(long, default_value = "demo")]
    preset: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Do nothing if the store already holds pipelines (for start-up scripts).
    #[arg(long)]
    if_empty: bool,
    /// Also write the data set as JSON (the body `POST /bulk` accepts) to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Do not write to the store (with --json: only write the file).
    #[arg(long)]
    no_store: bool,
}

/// Generates (on the blocking pool, with a progress bar), validates, then writes the file
/// and the store as asked; with `--if-empty` does nothing when the store holds data.
pub async fn run(store_args: &StoreArgs, a: &GenerateArgs) -> Result<()> {
    let preset: Preset = a.preset.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = if a.no_store {
        None
    } else {
        let (store, _) = open_store(store_args).await?;
        if a.if_empty {
            let counts = store.counts().await?;
            if counts.iter().any(|(_, n)| *n > 0) {
                println!("{} already holds data; nothing generated", store.describe());
                return Ok(());
            }
        }
        Some(store)
    };
    let seed = a.seed;
    let (data, report) = tokio::task::spawn_blocking(move || {
        lifeline::generate::generate(&GenerateOptions {
            preset,
            seed,
            progress: true,
        })
    })
    .await??;
    println!("generated: {report}");
    data.validate(Catalog::builtin())
        .context("the generator produced an invalid record (a bug)")?;
    if let Some(path) = &a.json {
        let f = std::io::BufWriter::new(std::fs::File::create(path)?);
        serde_json::to_writer(f, &data)?;
        println!("wrote {}", path.display());
    }
    if let Some(store) = store {
        let started = Instant::now();
        eprintln!(
            "writing {} records to {} in one transaction…",
            data.len(),
            store.describe()
        );
        let version = store.bulk_load(&data, &Actor::cli()).await?;
        let counts = store.counts().await?;
        println!(
            "written to {} in {:.1} s (change-log version {version}); store now holds: {}",
            store.describe(),
            started.elapsed().as_secs_f64(),
            counts
                .iter()
                .map(|(l, n)| format!("{l} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
