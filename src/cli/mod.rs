//! The `lifeline` command line's arguments and what its commands share.
//!
//! These are modules of the binary, declared from `main.rs`, not of the library: no test
//! calls them (the tests in `tests/` run the binary itself), and so `anyhow` stays out of
//! the library. [`Cli`] and [`Command`] are the clap types; each command has one module
//! here that holds its own arguments and its `run`: it builds the arguments of a use case
//! from the library or a crate below it, calls it, and prints what came back. The use cases
//! themselves live in the library and the crates (`lifeline_io::service` for `import` and
//! `export`), never here.
//!
//! Output streams (issue 22): stdout holds a command's result and nothing else; logs,
//! progress bars and hints go to stderr. Each command builds one serializable result and
//! hands it to [`Output::result`], which prints it as JSON (`--json`) or as the text its
//! `Display` renders, so both forms come from the same facts.

pub mod audit;
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
use std::fmt::Display;
use std::io::Write;

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
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How much a command says and in which form; global, so they go before or after the
/// command's name.
#[derive(clap::Args)]
pub struct OutputArgs {
    /// Print the result on stdout as one JSON document (messages stay on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Say nothing on stderr but errors: no logs below `error`, no progress bars or hints.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More logs on stderr: `-v` debug, `-vv` trace (`RUST_LOG`, when set, wins).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Where a command's result and its messages go, from the global `--json` and `--quiet`.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
    quiet: bool,
}

impl Output {
    /// The output the global flags ask for.
    pub fn new(args: &OutputArgs) -> Self {
        Self {
            json: args.json,
            quiet: args.quiet,
        }
    }

    /// Prints a command's result on stdout: one line of JSON with `--json`, else its text
    /// form (nothing at all when that is empty). Flushed here, so the result is out even
    /// when the command then fails (`check` finding errors).
    pub fn result<T: serde::Serialize + Display>(&self, value: &T) -> Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer(&mut out, value)?;
            writeln!(out)?;
        } else {
            let text = value.to_string();
            if !text.is_empty() {
                writeln!(out, "{text}")?;
            }
        }
        out.flush()?;
        Ok(())
    }

    /// A message for the person at the terminal (what was done, what to do next): on
    /// stderr, so it never mixes with the result, and not at all with `--quiet`.
    pub fn note(&self, message: impl Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// Whether to draw progress bars (on stderr; indicatif hides them off a terminal).
    pub fn progress(&self) -> bool {
        !self.quiet
    }
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
    Check,
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
    /// The audit log: verify its hash chain, cut expired segments.
    Audit {
        #[command(subcommand)]
        action: audit::AuditAction,
    },
}

/// Logs to stderr (stdout is the command's result, for pipes and scripts) at `info`,
/// tower-http's request spans included, unless `RUST_LOG` says otherwise. PostgreSQL's
/// NOTICEs ("relation … already exists, skipping"), which tokio-postgres logs at `info`,
/// are shown only from `warn` up. `--quiet` keeps only errors, `-v` shows `debug` and
/// `-vv` `trace`, of every crate. Colour only on a terminal, and never with `NO_COLOR`.
pub fn init_tracing(args: &OutputArgs) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter(args)));
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}

/// The log filter when `RUST_LOG` is not set.
fn default_filter(args: &OutputArgs) -> &'static str {
    match (args.quiet, args.verbose) {
        (true, _) => "error",
        (false, 0) => "info,tower_http=info,tokio_postgres=warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    }
}

/// Opens the configured store (migrations applied) for the commands that work on it
/// directly, with the resolved configuration.
pub async fn open_store(args: &StoreArgs) -> Result<(SharedStore, Config)> {
    let config = Config::resolve(args, &ServeArgs::default())?;
    tracing::debug!("opening store {}", redact(&config.store_url));
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
    use super::Cli;
    use clap::Parser;

    #[test]
    fn output_flags_are_global_and_quiet_excludes_verbose() {
        let cli = Cli::try_parse_from(["lifeline", "migrate", "--json", "-vv"]).expect("parse");
        assert!(cli.output.json && !cli.output.quiet);
        assert_eq!(cli.output.verbose, 2);
        assert_eq!(super::default_filter(&cli.output), "trace");
        let cli = Cli::try_parse_from(["lifeline", "-q", "check"]).expect("parse");
        assert!(cli.output.quiet);
        assert_eq!(super::default_filter(&cli.output), "error");
        assert!(Cli::try_parse_from(["lifeline", "migrate", "--quiet", "--verbose"]).is_err());
        // `generate --json PATH` is now `--out PATH`: `--json` is the global flag.
        let cli = Cli::try_parse_from(["lifeline", "generate", "--json", "--out", "x.json"])
            .expect("parse");
        assert!(cli.output.json);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("data/x.gpkg"), "data/x.gpkg");
    }
}
