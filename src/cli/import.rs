//! `lifeline import`: builds an import request from the arguments, runs it through
//! [`lifeline::io::service`] with an indicatif progress bar, and prints the issues (the
//! first 30) and the summary of what was read, written and rejected.

use super::open_store;
use anyhow::Result;
use lifeline::config::StoreArgs;
use lifeline::io::import::{ImportOptions, Mapping, Report};
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
    /// Target layer: pipelines, risk_points, grid_cells or sensors.
    #[arg(long)]
    layer: String,
    /// Field-mapping file (TOML; see data/mappings/).
    #[arg(long)]
    mapping: PathBuf,
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
    let layer: Layer = a.layer.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let request = ImportRequest {
        file: a.file.clone(),
        mapping: Mapping::load(&a.mapping)?,
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
