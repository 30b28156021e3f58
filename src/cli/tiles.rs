//! `lifeline tiles`: vector-tile jobs; `tiles export` writes a PMTiles v3 archive from the
//! index ([`lifeline::tileserver::pmtiles`]).

use super::Output;
use anyhow::Result;
use lifeline::config::{Config, ServeArgs, StoreArgs};
use std::path::PathBuf;

/// The `tiles` subcommands.
#[derive(clap::Subcommand)]
pub enum TilesAction {
    /// Export tiles into a PMTiles v3 archive for offline use (viewer-level attributes).
    Export {
        /// Comma-separated layers: pipelines,risk_points,grid_cells,sensors.
        #[arg(long, default_value = "pipelines,risk_points,grid_cells,sensors")]
        layers: String,
        #[arg(long, default_value_t = 8)]
        minzoom: u8,
        #[arg(long, default_value_t = 16)]
        maxzoom: u8,
        /// Output file (.pmtiles).
        out: PathBuf,
    },
}

/// Runs one `tiles` subcommand.
pub async fn run(store: &StoreArgs, action: &TilesAction, out: Output) -> Result<()> {
    match action {
        TilesAction::Export {
            layers,
            minzoom,
            maxzoom,
            out: path,
        } => export(store, layers, *minzoom, *maxzoom, path.clone(), out).await,
    }
}

/// Loads the state (the store into the index) and writes the archive on the blocking pool,
/// with a progress bar unless `--quiet`; prints the [`ExportReport`] (with `--json` its
/// counts, without the time taken).
///
/// [`ExportReport`]: lifeline::tileserver::pmtiles::ExportReport
async fn export(
    store: &StoreArgs,
    layers: &str,
    minzoom: u8,
    maxzoom: u8,
    path: PathBuf,
    out: Output,
) -> Result<()> {
    let layers =
        lifeline::tileserver::LayerSet::parse(layers).map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = Config::resolve(store, &ServeArgs::default())?;
    let state = lifeline::AppState::open(config).await?;
    let progress = out.progress();
    let report = tokio::task::spawn_blocking(move || {
        lifeline::tileserver::pmtiles::export(
            &state.index,
            &layers,
            minzoom,
            maxzoom,
            &path,
            progress,
        )
    })
    .await??;
    out.result(&report)
}
