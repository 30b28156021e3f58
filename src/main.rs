//! The `lifeline` command line: a thin shell over the library. `serve` runs the service;
//! `migrate`, `generate`, `check` and `keys` work on the configured store directly.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use lifeline::config::{Config, ServeArgs, StoreArgs};
use lifeline::generate::{GenerateOptions, Preset};
use lifeline::model::{Actor, Catalog, Role};
use lifeline::store::{self, SharedStore};
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "lifeline",
    version,
    about = "Geospatial digital twin of a city's underground lifelines"
)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (API, tiles, web client).
    Serve(ServeArgs),
    /// Apply pending schema migrations to the store and exit.
    Migrate,
    /// Generate a deterministic sample city and load it into the store (one transaction).
    Generate {
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
        json: Option<std::path::PathBuf>,
        /// Do not write to the store (with --json: only write the file).
        #[arg(long)]
        no_store: bool,
    },
    /// Validate the store: invalid records and geometries, dangling references, hierarchy
    /// errors, and risk points without sensors. Exits 1 when errors are found.
    Check {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Vector-tile jobs.
    Tiles {
        #[command(subcommand)]
        action: TilesAction,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Subcommand)]
enum TilesAction {
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
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create a key and print it (it is shown only once).
    Create {
        #[arg(long)]
        name: String,
        /// viewer, contractor, analyst, operator or admin.
        #[arg(long)]
        role: String,
    },
    /// Revoke a key by id.
    Revoke {
        #[arg(long)]
        id: i64,
    },
    /// List keys (never the keys themselves).
    List,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

async fn open_store(cli: &Cli) -> Result<(SharedStore, Config)> {
    let config = Config::resolve(&cli.store, &ServeArgs::default())?;
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

#[tokio::main]
async fn main() -> Result<()> {
    init_tracing();
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve(args) => {
            let config = Config::resolve(&cli.store, args)?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            let state = lifeline::AppState::open(config).await?;
            lifeline::run(listener, state, lifeline::server::shutdown_signal()).await?;
        }
        Command::Migrate => {
            let (store, _) = open_store(&cli).await?;
            let v = store.migrate().await?;
            println!("{}: schema at version {v}", store.describe());
        }
        Command::Generate {
            preset,
            seed,
            if_empty,
            json,
            no_store,
        } => {
            let preset: Preset = preset.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let store = if *no_store {
                None
            } else {
                let (store, _) = open_store(&cli).await?;
                if *if_empty {
                    let counts = store.counts().await?;
                    if counts.iter().any(|(_, n)| *n > 0) {
                        println!("{} already holds data; nothing generated", store.describe());
                        return Ok(());
                    }
                }
                Some(store)
            };
            let seed = *seed;
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
            if let Some(path) = json {
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
        }
        Command::Check { json } => {
            let (store, _) = open_store(&cli).await?;
            let data = store.load_all().await?;
            let report = lifeline::store::check::run(&data, Catalog::builtin());
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for p in report.problems.iter().take(200) {
                    println!("{:<10} {}[{}]: {}", p.kind, p.layer, p.id, p.message);
                }
                if report.problems.len() > 200 {
                    println!(
                        "… and {} more (use --json for all)",
                        report.problems.len() - 200
                    );
                }
                println!(
                    "checked {} records: {} errors, {} risk points without a sensor",
                    report.records,
                    report.errors(),
                    report.unmonitored()
                );
            }
            if report.errors() > 0 {
                std::process::exit(1);
            }
        }
        Command::Tiles {
            action:
                TilesAction::Export {
                    layers,
                    minzoom,
                    maxzoom,
                    out,
                },
        } => {
            let layers = lifeline::tileserver::LayerSet::parse(layers)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let config = Config::resolve(&cli.store, &ServeArgs::default())?;
            let state = lifeline::AppState::open(config).await?;
            let (minzoom, maxzoom, out) = (*minzoom, *maxzoom, out.clone());
            let report = tokio::task::spawn_blocking(move || {
                lifeline::tileserver::pmtiles::export(
                    &state.index,
                    &layers,
                    minzoom,
                    maxzoom,
                    &out,
                    true,
                )
            })
            .await??;
            println!("{report}");
        }
        Command::Keys { action } => {
            let (store, _) = open_store(&cli).await?;
            let actor = Actor::cli();
            match action {
                KeysAction::Create { name, role } => {
                    let role: Role = role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
                    lifeline::model::check_name("name", name)?;
                    let key = lifeline::auth::generate_key();
                    let k = store
                        .create_api_key(name.trim(), role, &lifeline::auth::hash_key(&key), &actor)
                        .await?;
                    println!("created key {} '{}' with role {}", k.id, k.name, k.role);
                    println!("{key}");
                    eprintln!("store it now: it is not shown again");
                }
                KeysAction::Revoke { id } => {
                    if !store.revoke_api_key(*id, &actor).await? {
                        bail!("no active key {id}");
                    }
                    println!("revoked key {id}");
                }
                KeysAction::List => {
                    for k in store.list_api_keys().await? {
                        println!(
                            "{:>5}  {:<10} {:<30} created {}{}",
                            k.id,
                            k.role,
                            k.name,
                            k.created_at.format("%Y-%m-%d %H:%M"),
                            k.revoked_at
                                .map(|r| format!(", revoked {}", r.format("%Y-%m-%d %H:%M")))
                                .unwrap_or_default()
                        );
                    }
                }
            }
        }
    }
    Ok(())
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
