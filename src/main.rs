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
    /// Replay realistic sensor streams (diurnal patterns, drift, growing leaks, dead
    /// sensors) against a running server's `POST /sensors/readings`.
    Simulate {
        /// Base URL of the server.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// API key with the operator role.
        #[arg(long, env = "LIFELINE_KEY")]
        key: Option<String>,
        /// Readings per second in total.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// Stop after this many seconds (default: until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Share of gas sensors with a leak that grows until it alarms.
        #[arg(long, default_value_t = 0.01)]
        leaks: f64,
        /// Share of sensors that never report (the offline rule fires for them).
        #[arg(long, default_value_t = 0.02)]
        dead: f64,
        /// A gas detector whose leak is past the emergency threshold from its first
        /// reading and that reports every 100 ms (repeatable): a prompt alarm.
        #[arg(long = "leak-now", value_name = "SENSOR_ID")]
        leak_now: Vec<i64>,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Import a vector file GDAL reads (GeoPackage, Shapefile, GeoJSON, FlatGeobuf, CSV with
    /// WKT, DXF, KML...) into one layer, through a field-mapping file, in one transaction.
    Import(ImportArgs),
    /// Export one layer to gpkg, geojson, fgb, csv or shp in any EPSG CRS.
    Export(ExportArgs),
}

/// Arguments of `lifeline import`.
#[derive(clap::Args)]
struct ImportArgs {
    /// The source file.
    file: std::path::PathBuf,
    /// Target layer: pipelines, risk_points, grid_cells or sensors.
    #[arg(long)]
    layer: String,
    /// Field-mapping file (TOML; see data/mappings/).
    #[arg(long)]
    mapping: std::path::PathBuf,
    /// Validate and report only; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Source CRS, overriding the file's: an EPSG code or a PROJ string.
    #[arg(long)]
    s_srs: Option<String>,
    /// Source coordinates are GCJ-02; convert them back to WGS84 first.
    #[arg(long)]
    gcj02: bool,
    /// Write the full validation report (JSON) here.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    /// Any rejected row fails the import (nothing of its transaction or batch is written).
    #[arg(long)]
    strict: bool,
    /// Commit every N source rows, recording progress in the store (resumable); the default
    /// is one transaction for the whole import.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Continue a batch import after its last committed row.
    #[arg(long, requires = "batch_size")]
    resume: bool,
}

/// Arguments of `lifeline export`.
#[derive(clap::Args)]
struct ExportArgs {
    /// Layer to export.
    #[arg(long)]
    layer: String,
    /// gpkg, geojson, fgb, csv or shp.
    #[arg(long)]
    format: String,
    /// Target CRS (EPSG:n).
    #[arg(long, default_value = "EPSG:4490")]
    crs: String,
    /// minLon,minLat,maxLon,maxLat.
    #[arg(long)]
    bbox: Option<String>,
    /// CQL2 filter (text or JSON).
    #[arg(long)]
    filter: Option<String>,
    /// Output file.
    #[arg(long, short)]
    out: std::path::PathBuf,
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
            let (store, config) = open_store(&cli).await?;
            let data = store.load_all().await?;
            let mut report = lifeline::model::check::run(&data, Catalog::builtin());
            let ex =
                lifeline::excavation::Excavation::from_path(config.excavation_config.as_deref())?;
            let cal = &ex.tickets.calendar;
            report
                .warnings
                .extend(cal.expiry_warning(cal.local_date(lifeline::model::Clock::system().now())));
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
                for w in &report.warnings {
                    println!("warning    {w}");
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
        Command::Simulate {
            url,
            key,
            rate,
            seconds,
            seed,
            leaks,
            dead,
            leak_now,
        } => {
            let options = lifeline::simulate::SimOptions {
                url: url.clone(),
                key: key.clone(),
                rate: *rate,
                duration: seconds.map(std::time::Duration::from_secs),
                seed: *seed,
                leak_share: *leaks,
                dead_share: *dead,
                leak_now: leak_now.clone(),
            };
            let s = lifeline::simulate::run(options, lifeline::server::shutdown_signal()).await?;
            println!(
                "sent {} readings in {:.1} s: {} stored ({:.0}/s), {} duplicates, {} rejected, {} alarm changes, {} failed requests",
                s.sent,
                s.seconds,
                s.stored,
                s.stored as f64 / s.seconds.max(0.001),
                s.duplicates,
                s.rejected,
                s.alarm_changes,
                s.failed_requests
            );
        }
        Command::Import(args) => run_import(&cli, args).await?,
        Command::Export(args) => run_export(&cli, args).await?,
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

async fn run_import(cli: &Cli, a: &ImportArgs) -> Result<()> {
    use lifeline::io::import::{import, prepare, ImportOptions, Mapping, RunOptions};
    let layer: lifeline::model::Layer = a.layer.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mapping = Mapping::load(&a.mapping)?;
    let opts = ImportOptions {
        layer,
        source_crs: a.s_srs.clone(),
        gcj02: a.gcj02,
    };
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("importing");
    let progress = {
        let bar = bar.clone();
        Box::new(move |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
    };
    let summary = if a.dry_run {
        // A dry run must not even create the store file.
        let file = a.file.clone();
        let mut progress = progress;
        let report = tokio::task::spawn_blocking(move || {
            prepare(&file, &mapping, &opts, Catalog::builtin(), &mut *progress)
        })
        .await??;
        bar.finish_and_clear();
        lifeline::io::import::Summary {
            report,
            written: 0,
            commits: 0,
            resumed_after: 0,
            version: None,
            job: None,
        }
    } else {
        let (store, _) = open_store(cli).await?;
        let run = RunOptions {
            dry_run: false,
            strict: a.strict,
            batch_size: a.batch_size,
            resume: a.resume,
        };
        let r = import(
            store.as_ref(),
            &a.file,
            &mapping,
            &opts,
            &run,
            &Actor::cli(),
            progress,
        )
        .await;
        bar.finish_and_clear();
        r?
    };
    let report = &summary.report;
    for i in report.issues.iter().take(30) {
        println!(
            "row {:>6}{}: {:?}: {}",
            i.row,
            i.fid.map(|f| format!(" (fid {f})")).unwrap_or_default(),
            i.outcome,
            i.reason
        );
    }
    if report.issues.len() > 30 {
        println!(
            "... {} more issues (use --report FILE for all)",
            report.issues.len() - 30
        );
    }
    if let Some(p) = &a.report {
        std::fs::write(p, serde_json::to_vec_pretty(report)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if summary.resumed_after > 0 {
        println!(
            "resumed after source row {} (committed by an earlier run)",
            summary.resumed_after
        );
    }
    println!(
        "{}: read {} rows from layer '{}' ({}; {}), accepted {}, repaired {}, rejected {}",
        a.file.display(),
        report.read,
        report.source_layer,
        report.source_crs.as_deref().unwrap_or("?"),
        report.operation,
        report.accepted,
        report.repaired,
        report.rejected
    );
    if a.dry_run {
        println!("dry run: nothing written");
        return Ok(());
    }
    let secs = started.elapsed().as_secs_f64();
    match &summary.job {
        _ if summary.commits == 0 => {
            println!("nothing to do: this batch import was completed by an earlier run")
        }
        Some(j) => println!(
            "wrote {} records in {} transaction(s) (version {}) in {secs:.1} s; job: {} batches, \
             through source row {}, {} accepted, {} rejected in total{}",
            summary.written,
            summary.commits,
            summary.version.unwrap_or(0),
            j.batches,
            j.last_row,
            j.accepted,
            j.rejected,
            if j.done { ", done" } else { "" }
        ),
        None => println!(
            "wrote {} {} (and {} owners) in one transaction (version {}) in {secs:.1} s",
            report.accepted,
            layer,
            mapping_owner_count(&summary),
            summary.version.unwrap_or(0)
        ),
    }
    Ok(())
}

/// Owners written along with an import (the mapping's `[owner]`).
fn mapping_owner_count(s: &lifeline::io::import::Summary) -> usize {
    s.written.saturating_sub(s.report.accepted)
}

async fn run_export(cli: &Cli, a: &ExportArgs) -> Result<()> {
    use lifeline::io::export::{export, ExportOptions};
    let layer: lifeline::model::Layer = a.layer.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let format = lifeline::io::gdal::OutFormat::parse(&a.format)?;
    let bbox = a
        .bbox
        .as_deref()
        .map(lifeline::model::Bbox::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (store, config) = open_store(cli).await?;
    let data = store.load_all().await?;
    // Measure where the data are, as the server does (S_DWITHIN filters are in metres).
    let (lon, lat) = data
        .pipelines
        .iter()
        .filter_map(|p| lifeline::model::Bbox::of(&p.geometry))
        .reduce(|a, b| a.union(&b))
        .map(|b| b.center())
        .unwrap_or((106.55, 29.56));
    let crs = lifeline::model::crs::MetricCrs::auto(lon, lat);
    let index = lifeline::index::SpatialIndex::new(match &config.metric_crs {
        Some(c) => lifeline::model::crs::MetricCrs::new(c)?,
        None => crs,
    });
    let opts = ExportOptions {
        layer,
        format,
        crs: a.crs.clone(),
        bbox,
        filter: a.filter.clone(),
    };
    let out = a.out.clone();
    let n = tokio::task::spawn_blocking(move || -> Result<usize> {
        index.load(data)?;
        Ok(export(&index, &opts, &out)?)
    })
    .await??;
    println!(
        "wrote {n} {layer} to {} ({}, {})",
        a.out.display(),
        a.format,
        a.crs
    );
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
