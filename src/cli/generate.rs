//! `lifeline generate`: the deterministic sample city ([`lifeline::generate`]), validated
//! and written to the store in one transaction and/or to a JSON file (`--out`).

use super::{open_store, Output};
use anyhow::{Context, Result};
use lifeline::config::StoreArgs;
use lifeline::generate::{GenerateOptions, GenerateReport, Preset};
use lifeline::model::{Actor, Catalog, Dataset, Layer};
use serde::ser::SerializeMap;
use std::fmt;
use std::path::{Path, PathBuf};
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
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Do not write to the store (with --out: only write the file).
    #[arg(long)]
    no_store: bool,
}

/// What `generate` prints: what was generated, the file written, what the store holds
/// after the load; or, with `--if-empty` on a store with data, that nothing was done.
#[derive(serde::Serialize)]
struct Generated<'a> {
    preset: Preset,
    seed: u64,
    /// `None` when skipped.
    generated: Option<Counts>,
    file: Option<&'a Path>,
    store: Option<Stored>,
    skipped: bool,
}

/// What the generator made: records per layer and in all, pipeline length, risk points
/// no sensor watches, and how long it took.
#[derive(serde::Serialize)]
struct Counts {
    #[serde(flatten)]
    layers: LayerCounts,
    records: usize,
    pipeline_km: f64,
    unmonitored_risk_points: usize,
    seconds: f64,
    /// The report's own summary line (districts, streets, grid levels), for the text form.
    #[serde(skip)]
    text: String,
}

impl Counts {
    fn new(data: &Dataset, r: &GenerateReport) -> Self {
        Self {
            layers: LayerCounts(
                data.counts()
                    .iter()
                    .map(|&(l, n)| (l, i64::try_from(n).unwrap_or(i64::MAX)))
                    .collect(),
            ),
            records: data.len(),
            pipeline_km: r.pipeline_km,
            unmonitored_risk_points: r.unmonitored_risk_points,
            seconds: r.elapsed.as_secs_f64(),
            text: r.to_string(),
        }
    }
}

/// The store: its description, its records per layer after the load, the change-log
/// version of the load and how long it took (`None`, `None` when nothing was loaded).
#[derive(serde::Serialize)]
struct Stored {
    name: String,
    counts: LayerCounts,
    change_version: Option<i64>,
    seconds: Option<f64>,
}

/// Records per layer, in the store's order; a JSON object `{"pipelines": n, …}`.
struct LayerCounts(Vec<(Layer, i64)>);

impl serde::Serialize for LayerCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (layer, n) in &self.0 {
            map.serialize_entry(layer, n)?;
        }
        map.end()
    }
}

impl fmt::Display for LayerCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(l, n)| format!("{l} {n}")).collect();
        f.write_str(&parts.join(", "))
    }
}

impl fmt::Display for Generated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.skipped {
            let name = self.store.as_ref().map(|s| s.name.as_str()).unwrap_or("");
            return write!(f, "{name} already holds data; nothing generated");
        }
        let mut lines = Vec::new();
        if let Some(g) = &self.generated {
            lines.push(format!("generated: {}", g.text));
        }
        if let Some(file) = self.file {
            lines.push(format!("wrote {}", file.display()));
        }
        if let Some(s) = &self.store {
            lines.push(format!(
                "written to {} in {:.1} s (change-log version {}); store now holds: {}",
                s.name,
                s.seconds.unwrap_or(0.0),
                s.change_version.unwrap_or(0),
                s.counts
            ));
        }
        f.write_str(&lines.join("\n"))
    }
}

/// Generates (on the blocking pool, with a progress bar unless `--quiet`), validates, then
/// writes the file and the store as asked; with `--if-empty` does nothing when the store
/// holds data.
pub async fn run(store_args: &StoreArgs, a: &GenerateArgs, out: Output) -> Result<()> {
    let preset: Preset = a.preset.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let seed = a.seed;
    let store = if a.no_store {
        None
    } else {
        let (store, _) = open_store(store_args).await?;
        if a.if_empty {
            let counts = store.counts().await?;
            if counts.iter().any(|(_, n)| *n > 0) {
                return out.result(&Generated {
                    preset,
                    seed,
                    generated: None,
                    file: None,
                    store: Some(Stored {
                        name: store.describe(),
                        counts: LayerCounts(counts),
                        change_version: None,
                        seconds: None,
                    }),
                    skipped: true,
                });
            }
        }
        Some(store)
    };
    let progress = out.progress();
    let (data, report) = tokio::task::spawn_blocking(move || {
        lifeline::generate::generate(&GenerateOptions {
            preset,
            seed,
            progress,
        })
    })
    .await??;
    data.validate(Catalog::builtin())
        .context("the generator produced an invalid record (a bug)")?;
    if let Some(path) = &a.out {
        let f = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        serde_json::to_writer(f, &data)?;
    }
    let stored = match store {
        Some(store) => {
            let started = Instant::now();
            out.note(format_args!(
                "writing {} records to {} in one transaction…",
                data.len(),
                store.describe()
            ));
            let version = store.bulk_load(&data, &Actor::cli()).await?;
            let seconds = started.elapsed().as_secs_f64();
            Some(Stored {
                name: store.describe(),
                counts: LayerCounts(store.counts().await?),
                change_version: Some(version),
                seconds: Some(seconds),
            })
        }
        None => None,
    };
    out.result(&Generated {
        preset,
        seed,
        generated: Some(Counts::new(&data, &report)),
        file: a.out.as_deref(),
        store: stored,
        skipped: false,
    })
}
