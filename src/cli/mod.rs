//! The `lifeline` command line's arguments and what its commands share.
//!
//! These are modules of the binary, declared from `main.rs`, not of the library: no test
//! calls them (the tests in `tests/` run the binary itself), and so `anyhow` stays out of
//! the library. [`Cli`] and [`Command`] are the clap types; each command has one module
//! here that holds its own arguments and its `run`: it builds the arguments of a use case
//! from the library or a crate below it, calls it, and prints what came back. The use cases
//! themselves live in the library and the crates (`lifeline_io::service` for `import` and
//! `export`), never here.

pub mod check;
pub mod export;
pub mod generate;
pub mod import;
pub mod keys;
pub mod migrate;
pub mod serve;
pub mod simulate;
pub mod tiles;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use lifeline::config::{Config, ServeArgs, StoreArgs};
use lifeline::store::{self, SharedStore};

/// The whole command line: the store settings every command shares, and the command.
#[derive(Parser)]
#[command(
    name = "lifeline",
    version,
    about = "Geospatial digital twin of a city's underground lifelines"
)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands. Each variant's doc comment is its `--help` text.
#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP service (API, tiles, web client).
    Serve(ServeArgs),
    /// Apply pending schema migrations to the store and exit.
    Migrate,
    /// Generate a deterministic sample city and load it into the store (one transaction).
    Generate(generate::GenerateArgs),
    /// Validate the store: invalid records and geometries, dangling references, hierarchy
    /// errors, and risk points without sensors. Exits 1 when errors are found.
    Check(check::CheckArgs),
    /// Vector-tile jobs.
    Tiles {
        #[command(subcommand)]
        action: tiles::TilesAction,
    },
    /// Replay realistic sensor streams (diurnal patterns, drift, growing leaks, dead
    /// sensors) against a running server's `POST /sensors/readings`.
    Simulate(simulate::SimulateArgs),
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        action: keys::KeysAction,
    },
    /// Import a vector file GDAL reads (GeoPackage, Shapefile, GeoJSON, FlatGeobuf, CSV with
    /// WKT, DXF, KML...) into one layer, through a field-mapping file, in one transaction.
    Import(import::ImportArgs),
    /// Export one layer to gpkg, geojson, fgb, csv or shp in any EPSG CRS.
    Export(export::ExportArgs),
}

/// Logs to stderr (stdout is the command's result, for pipes and scripts) at `info`,
/// tower-http's request spans included, unless `RUST_LOG` says otherwise. PostgreSQL's
/// NOTICEs ("relation … already exists, skipping"), which tokio-postgres logs at `info`,
/// are shown only from `warn` up. Colour only on a terminal, and never with `NO_COLOR`.
pub fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,tower_http=info,tokio_postgres=warn")
    });
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}

/// Opens the configured store (migrations applied) for the commands that work on it
/// directly, with the resolved configuration.
pub async fn open_store(args: &StoreArgs) -> Result<(SharedStore, Config)> {
    let config = Config::resolve(args, &ServeArgs::default())?;
    let store = store::open(&config.store_url, config.pool_size)
        .await
        .with_context(|| format!("opening store {}", redact(&config.store_url)))?;
    Ok((store, config))
}

/// Hides the password of a connection URL for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("data/x.gpkg"), "data/x.gpkg");
    }
}
