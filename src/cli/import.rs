//! `lifeline import`: builds an import request from the arguments, runs it through
//! [`lifeline::io::service`] with an indicatif progress bar, and prints the issues (the
//! first 30) and the summary of what was read, written and rejected. Without `--mapping`
//! it says on stderr which fields were found as columns; `--infer-mapping` prints a
//! starting mapping file ([`lifeline::io::infer`]) on stdout and imports nothing.

use super::open_store;
use anyhow::Result;
use lifeline::config::StoreArgs;
use lifeline::io::import::{ImportOptions, Mapping, Report};
use lifeline::io::infer::{self, NameMatch};
use lifeline::io::service::{self, ImportOutcome, ImportRequest, Progress};
use lifeline::model::{Actor, Layer};
use std::path::PathBuf;
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
    /// Source CRS, overriding the file's: an EPSG code or a PROJ string.
    #[arg(long)]
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
}

/// Imports (or with `--dry-run` only validates) the file and prints the summary. A dry run
/// opens no store, so it does not even create the GeoPackage file.
pub async fn run(store_args: &StoreArgs, a: &ImportArgs) -> Result<()> {
    if a.infer_mapping {
        return print_inferred(a);
    }
    let mapping = a.mapping.as_deref().map(Mapping::load).transpose()?;
    let chosen = service::choose_mapping(&a.file, a.layer, mapping)?;
    if let Some(m) = &chosen.by_name {
        tell_matched(m);
    }
    let layer = chosen.layer;
    let request = ImportRequest {
        file: a.file.clone(),
        mapping: chosen.mapping,
        options: ImportOptions {
            layer,
            source_crs: a.s_srs.clone(),
            gcj02: a.gcj02,
        },
        strict: a.strict,
        batch_size: a.batch_size,
        resume: a.resume,
    };
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("importing");
    let progress: Progress = {
        let bar = bar.clone();
        Box::new(move |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
    };
    let done = if a.dry_run {
        let done = service::validate_file(request, progress).await?;
        bar.finish_and_clear();
        done
    } else {
        let (store, _) = open_store(store_args).await?;
        let done = service::import_file(store.as_ref(), request, &Actor::cli(), progress).await;
        bar.finish_and_clear();
        done?
    };
    let report = done.report();
    print_issues(report);
    if let Some(p) = &a.report {
        service::write_report(report, p)?;
    }
    let summary = &done.summary;
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
    let secs = started.elapsed().as_secs_f64();
    match done.outcome() {
        ImportOutcome::DryRun => println!("dry run: nothing written"),
        ImportOutcome::AlreadyDone => {
            println!("nothing to do: this batch import was completed by an earlier run")
        }
        ImportOutcome::Batches(j) => println!(
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
        ImportOutcome::OneTransaction { records, owners } => println!(
            "wrote {records} {layer} (and {owners} owners) in one transaction (version {}) in \
             {secs:.1} s",
            summary.version.unwrap_or(0)
        ),
    }
    Ok(())
}

/// A layer name as clap reads it.
fn parse_layer(s: &str) -> Result<Layer, String> {
    s.parse()
        .map_err(|e: lifeline::model::ModelError| e.to_string())
}

/// Prints the mapping inferred from the file on stdout (so `> map.toml` keeps it) and what
/// is left to do on stderr.
fn print_inferred(a: &ImportArgs) -> Result<()> {
    let inferred = infer::infer(&a.file, a.layer, None)?;
    print!("{}", inferred.to_toml());
    let matched = inferred
        .fields
        .iter()
        .filter(|f| f.column.is_some())
        .count();
    eprintln!(
        "inferred a {} mapping from {} sample rows of layer '{}': {matched} of {} fields \
         matched a column{}",
        inferred.layer,
        inferred.sampled,
        inferred.source_layer,
        inferred.fields.len(),
        if inferred.layer_guess.is_some() {
            " (the layer is a guess)"
        } else {
            ""
        }
    );
    let required = inferred.required_unmatched();
    if !required.is_empty() {
        eprintln!("still to fill in (required): {}", required.join(", "));
    }
    Ok(())
}

/// Says on stderr which fields an import without a mapping reads, and which it found no
/// column for.
fn tell_matched(m: &NameMatch) {
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
    eprintln!(
        "no --mapping: {} field(s) read from the columns of the same name: {}",
        mapped.len(),
        if mapped.is_empty() {
            "none".to_string()
        } else {
            mapped.join(", ")
        }
    );
    let (required, optional): (Vec<_>, Vec<_>) = m.missing.iter().partition(|f| f.required);
    let names = |fs: Vec<&&lifeline::model::schema::FieldInfo>| -> Vec<&str> {
        fs.iter().map(|f| f.name).collect()
    };
    let (required, optional) = (names(required), names(optional));
    if !required.is_empty() {
        eprintln!(
            "no column for the required field(s) {} of {}: rows without them are rejected \
             (give a --mapping; --infer-mapping writes a starting one)",
            required.join(", "),
            m.layer
        );
    }
    if !optional.is_empty() {
        eprintln!("no column for: {}", optional.join(", "));
    }
}

/// The first rejected or repaired rows, one a line, and how many more the report holds.
fn print_issues(report: &Report) {
    for i in report.issues.iter().take(SHOWN) {
        println!(
            "row {:>6}{}: {:?}: {}",
            i.row,
            i.fid.map(|f| format!(" (fid {f})")).unwrap_or_default(),
            i.outcome,
            i.reason
        );
    }
    if report.issues.len() > SHOWN {
        println!(
            "... {} more issues (use --report FILE for all)",
            report.issues.len() - SHOWN
        );
    }
}
