//! `lifeline import`: builds an import request from the arguments, runs it through
//! [`lifeline::io::service`] with an indicatif progress bar, and prints the issues (the
//! first 30; all of them with `--json`) and the summary of what was read, written and
//! rejected. Without `--mapping` it says on stderr which fields were found as columns;
//! `--infer-mapping` prints a starting mapping file ([`lifeline::io::infer`]) on stdout
//! (with `--json`, inside a JSON document) and imports nothing.

mod network;

use super::{open_store, Output};
use anyhow::Result;
use lifeline::config::StoreArgs;
use lifeline::io::import::{ImportOptions, Mapping, Report};
use lifeline::io::infer::{self, NameMatch};
use lifeline::io::service::{self, ImportOutcome, ImportRequest, Progress};
use lifeline::model::{Actor, Layer, PipeKind};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Issues printed; `--report FILE` has them all.
const SHOWN: usize = 30;

/// Arguments of `lifeline import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The source file.
    file: PathBuf,
    /// Target layer: pipelines, risk_points, grid_cells or sensors (default: the mapping's
    /// `layer`; with --infer-mapping, guessed when not given).
    #[arg(long, value_parser = parse_layer)]
    layer: Option<Layer>,
    /// Field-mapping file (TOML; see data/mappings/). Without one, every field of the
    /// layer's schema is read from the column of the same name, if the file has one.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// Print a starting mapping file inferred from the file's columns, sample values and
    /// CRS on stdout, and import nothing.
    #[arg(long, conflicts_with_all = ["mapping", "dry_run", "report", "strict", "batch_size", "resume", "s_srs", "gcj02"])]
    infer_mapping: bool,
    /// Validate and report only; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Source CRS, overriding the file's: an EPSG code or a PROJ string. Required for an
    /// EPANET `.inp` file, which states none.
    #[arg(long, visible_alias = "source-crs")]
    s_srs: Option<String>,
    /// Source coordinates are GCJ-02; convert them back to WGS84 first.
    #[arg(long)]
    gcj02: bool,
    /// Write the full validation report (JSON) here.
    #[arg(long)]
    report: Option<PathBuf>,
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
    /// Build the pipes' end nodes while importing: `geometry` snaps their end points within
    /// --snap-m metres, splits pipes at points and tees, and writes the nodes with them.
    #[arg(long, value_enum, conflicts_with_all = ["batch_size", "resume", "infer_mapping"])]
    topology: Option<TopologyFrom>,
    /// The snapping tolerance in metres (--topology geometry).
    #[arg(long, default_value_t = 0.5, requires = "topology")]
    snap_m: f64,
    /// Do not split a pipe where another pipe's end lies on it (for lines drawn straight
    /// between nodes that pass over other nodes; those are reported as crossings).
    #[arg(long, requires = "topology")]
    no_tees: bool,
    /// A point layer of valves (and sources, customers, junctions: a `node_type` column)
    /// snapped with the pipes; its columns are read by the nodes' field names, in the pipes'
    /// CRS (--topology geometry).
    #[arg(long, visible_alias = "valves", requires = "topology")]
    points: Option<PathBuf>,
    /// Write what the snapping found (dangles, near-misses, crossings without a node,
    /// duplicates, points on no pipe, splits) here as GeoJSON.
    #[arg(long)]
    topology_report: Option<PathBuf>,
    /// The network of an EPANET `.inp` file's nodes and pipelines: `water` (water_supply)
    /// or any pipeline kind.
    #[arg(long, value_parser = parse_kind)]
    kind: Option<PipeKind>,
    /// The owner of an `.inp` file's pipelines (an owner in the store, or the --mapping's
    /// [owner]).
    #[arg(long)]
    owner_id: Option<i64>,
    /// A valve layer for an `.inp` file: CSV with `link` and `node` columns (WNTR's form),
    /// each a valve on that link at that end node.
    #[arg(long)]
    valve_layer: Option<PathBuf>,
}

/// Where `--topology` takes the pipes' end nodes from.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum TopologyFrom {
    /// Snap the pipes' end points (and the --points) within --snap-m metres.
    Geometry,
}

/// What `import` prints: the validation report's counts and issues, the rows an earlier
/// run committed, and how the import ended.
#[derive(serde::Serialize)]
struct Imported<'a> {
    /// The file as given.
    file: &'a Path,
    /// Source, source layer and CRS, the operation, the target layer, rows read, accepted,
    /// repaired and rejected, and every issue.
    #[serde(flatten)]
    report: &'a Report,
    /// Source rows skipped because an earlier run committed them.
    resumed_after: usize,
    outcome: Ended,
    seconds: f64,
}

/// How an import ended ([`ImportOutcome`]), with what it wrote; `{"kind": "…", …}`.
#[derive(serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Ended {
    /// Validated only: nothing written.
    DryRun,
    /// A batch import an earlier run completed: nothing left to do.
    AlreadyDone,
    /// Batches committed by this run, and the job's progress over all its runs.
    Batches {
        written: usize,
        commits: usize,
        version: Option<i64>,
        batches: i64,
        last_row: i64,
        accepted: i64,
        rejected: i64,
        done: bool,
    },
    /// One transaction: the layer's records and the mapping's owners.
    OneTransaction {
        records: usize,
        owners: usize,
        version: Option<i64>,
    },
}

impl fmt::Display for Imported<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.report;
        for i in report.issues.iter().take(SHOWN) {
            writeln!(
                f,
                "row {:>6}{}: {:?}: {}",
                i.row,
                i.fid.map(|f| format!(" (fid {f})")).unwrap_or_default(),
                i.outcome,
                i.reason
            )?;
        }
        if report.issues.len() > SHOWN {
            writeln!(
                f,
                "... {} more issues (use --report FILE for all)",
                report.issues.len() - SHOWN
            )?;
        }
        if self.resumed_after > 0 {
            writeln!(
                f,
                "resumed after source row {} (committed by an earlier run)",
                self.resumed_after
            )?;
        }
        writeln!(
            f,
            "{}: read {} rows from layer '{}' ({}; {}), accepted {}, repaired {}, rejected {}",
            self.file.display(),
            report.read,
            report.source_layer,
            report.source_crs.as_deref().unwrap_or("?"),
            report.operation,
            report.accepted,
            report.repaired,
            report.rejected
        )?;
        let secs = self.seconds;
        match &self.outcome {
            Ended::DryRun => write!(f, "dry run: nothing written"),
            Ended::AlreadyDone => write!(
                f,
                "nothing to do: this batch import was completed by an earlier run"
            ),
            Ended::Batches {
                written,
                commits,
                version,
                batches,
                last_row,
                accepted,
                rejected,
                done,
            } => write!(
                f,
                "wrote {written} records in {commits} transaction(s) (version {}) in {secs:.1} \
                 s; job: {batches} batches, through source row {last_row}, {accepted} accepted, \
                 {rejected} rejected in total{}",
                version.unwrap_or(0),
                if *done { ", done" } else { "" }
            ),
            Ended::OneTransaction {
                records,
                owners,
                version,
            } => write!(
                f,
                "wrote {records} {} (and {owners} owners) in one transaction (version {}) in \
                 {secs:.1} s",
                report.layer,
                version.unwrap_or(0)
            ),
        }
    }
}

/// Imports (or with `--dry-run` only validates) the file and prints the summary. A dry run
/// opens no store, so it does not even create the GeoPackage file.
pub async fn run(store_args: &StoreArgs, a: &ImportArgs, out: Output) -> Result<()> {
    if a.infer_mapping {
        return print_inferred(a, out);
    }
    let mapping = a.mapping.as_deref().map(Mapping::load).transpose()?;
    if is_inp(&a.file) {
        return network::run_inp(store_args, a, mapping, out).await;
    }
    if a.kind.is_some() || a.owner_id.is_some() || a.valve_layer.is_some() {
        anyhow::bail!(
            "--kind, --owner-id and --valve-layer are for EPANET .inp files; {} is not one",
            a.file.display()
        );
    }
    let chosen = service::choose_mapping(&a.file, a.layer, mapping)?;
    if let Some(m) = &chosen.by_name {
        tell_matched(m, out);
    }
    let request = ImportRequest {
        file: a.file.clone(),
        mapping: chosen.mapping,
        options: ImportOptions {
            layer: chosen.layer,
            source_crs: a.s_srs.clone(),
            gcj02: a.gcj02,
        },
        strict: a.strict,
        batch_size: a.batch_size,
        resume: a.resume,
    };
    if a.topology.is_some() {
        return network::run_geometry(store_args, a, request, out).await;
    }
    if a.topology_report.is_some() {
        anyhow::bail!("--topology-report needs --topology geometry (or an .inp file)");
    }
    let started = Instant::now();
    let (bar, progress) = progress_bar(out, "importing");
    let done = if a.dry_run {
        let done = service::validate_file(request, progress).await;
        bar.finish_and_clear();
        done?
    } else {
        let (store, _) = open_store(store_args).await?;
        let done = service::import_file(store.as_ref(), request, &Actor::cli(), progress).await;
        bar.finish_and_clear();
        done?
    };
    let seconds = started.elapsed().as_secs_f64();
    let report = done.report();
    if let Some(p) = &a.report {
        service::write_report(report, p)?;
    }
    let summary = &done.summary;
    let outcome = match done.outcome() {
        ImportOutcome::DryRun => Ended::DryRun,
        ImportOutcome::AlreadyDone => Ended::AlreadyDone,
        ImportOutcome::Batches(j) => Ended::Batches {
            written: summary.written,
            commits: summary.commits,
            version: summary.version,
            batches: j.batches,
            last_row: j.last_row,
            accepted: j.accepted,
            rejected: j.rejected,
            done: j.done,
        },
        ImportOutcome::OneTransaction { records, owners } => Ended::OneTransaction {
            records,
            owners,
            version: summary.version,
        },
    };
    out.result(&Imported {
        file: &a.file,
        report,
        resumed_after: summary.resumed_after,
        outcome,
        seconds,
    })
}

/// Whether the file is an EPANET `.inp` file (by its extension).
fn is_inp(file: &Path) -> bool {
    file.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("inp"))
}

/// A pipeline kind as clap reads it; `water` is water supply, EPANET's network.
fn parse_kind(s: &str) -> Result<PipeKind, String> {
    match s {
        "water" => Ok(PipeKind::WaterSupply),
        _ => s
            .parse()
            .map_err(|e: lifeline::model::ModelError| e.to_string()),
    }
}

/// An indicatif bar for an import's rows (hidden with --quiet), and the callback that
/// moves it.
fn progress_bar(out: Output, message: &'static str) -> (indicatif::ProgressBar, Progress) {
    let bar = if out.progress() {
        indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message(message);
    let progress: Progress = {
        let bar = bar.clone();
        Box::new(move |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
    };
    (bar, progress)
}

/// A layer name as clap reads it.
fn parse_layer(s: &str) -> Result<Layer, String> {
    s.parse()
        .map_err(|e: lifeline::model::ModelError| e.to_string())
}

/// A mapping inferred from a file: as text the mapping file itself (so `> map.toml` keeps
/// it); with `--json` that text as `mapping`, with what it was inferred from and what is
/// left to fill in.
#[derive(serde::Serialize)]
struct InferredMapping<'a> {
    layer: Layer,
    /// Why this layer, when it was guessed.
    layer_guess: Option<&'a str>,
    source_layer: &'a str,
    crs: Option<&'a str>,
    sampled: usize,
    /// Fields of the layer that matched a column.
    matched: usize,
    fields: usize,
    /// Required fields no column matched.
    still_required: Vec<&'static str>,
    /// The mapping file (TOML).
    mapping: String,
}

impl fmt::Display for InferredMapping<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mapping.trim_end())
    }
}

/// Prints the mapping inferred from the file on stdout and what is left to do on stderr.
fn print_inferred(a: &ImportArgs, out: Output) -> Result<()> {
    let inferred = infer::infer(&a.file, a.layer, None)?;
    let result = InferredMapping {
        layer: inferred.layer,
        layer_guess: inferred.layer_guess.as_deref(),
        source_layer: &inferred.source_layer,
        crs: inferred.crs.as_deref(),
        sampled: inferred.sampled,
        matched: inferred
            .fields
            .iter()
            .filter(|f| f.column.is_some())
            .count(),
        fields: inferred.fields.len(),
        still_required: inferred.required_unmatched(),
        mapping: inferred.to_toml(),
    };
    out.note(format_args!(
        "inferred a {} mapping from {} sample rows of layer '{}': {} of {} fields matched a \
         column{}",
        result.layer,
        result.sampled,
        result.source_layer,
        result.matched,
        result.fields,
        if result.layer_guess.is_some() {
            " (the layer is a guess)"
        } else {
            ""
        }
    ));
    if !result.still_required.is_empty() {
        out.note(format_args!(
            "still to fill in (required): {}",
            result.still_required.join(", ")
        ));
    }
    out.result(&result)
}

/// Says on stderr which fields an import without a mapping reads, and which it found no
/// column for.
fn tell_matched(m: &NameMatch, out: Output) {
    let mapped: Vec<String> = m
        .mapped
        .iter()
        .map(|(f, c)| {
            if f.name == c {
                f.name.to_string()
            } else {
                format!("{} (from '{c}')", f.name)
            }
        })
        .collect();
    out.note(format_args!(
        "no --mapping: {} field(s) read from the columns of the same name: {}",
        mapped.len(),
        if mapped.is_empty() {
            "none".to_string()
        } else {
            mapped.join(", ")
        }
    ));
    let (required, optional): (Vec<_>, Vec<_>) = m.missing.iter().partition(|f| f.required);
    let names = |fs: Vec<&&lifeline::model::schema::FieldInfo>| -> Vec<&str> {
        fs.iter().map(|f| f.name).collect()
    };
    let (required, optional) = (names(required), names(optional));
    if !required.is_empty() {
        out.note(format_args!(
            "no column for the required field(s) {} of {}: rows without them are rejected \
             (give a --mapping; --infer-mapping writes a starting one)",
            required.join(", "),
            m.layer
        ));
    }
    if !optional.is_empty() {
        out.note(format_args!("no column for: {}", optional.join(", ")));
    }
}
