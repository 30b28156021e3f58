//! The use cases behind `lifeline import` and `lifeline export`, for any front end: the
//! command line builds a request from its arguments, calls one function here and prints
//! what comes back; how the rows are read, converted and written is [`super::import`]'s and
//! [`super::export`]'s.
//!
//! - [`choose_mapping`] settles an import's target layer and mapping: `--layer`, else the
//!   mapping file's `layer`; without a mapping file, the fields named like the file's
//!   columns ([`super::infer::NameMatch`]);
//! - [`validate_file`] reads, maps and checks a file against a mapping and writes nothing
//!   (a dry run needs no store, so none is opened or created);
//! - [`import_file`] does the same and writes the accepted rows into a store, in one
//!   transaction or in resumable batches;
//! - [`write_report`] saves an import's full validation report as JSON;
//! - [`export_layer`] selects one layer of a store (box, CQL2 filter) and writes it to a
//!   file in the asked format and CRS.
//!
//! Progress is reported through a callback ([`Progress`]), so the caller chooses how to
//! show it (the CLI draws an indicatif bar). What an import did comes back as an
//! [`ImportSummary`], whose [`ImportSummary::outcome`] says which of its endings it was.

use super::export::{export, ExportError, ExportOptions};
use super::import::Summary;
use super::import::{import, prepare, ImportError, ImportOptions, Mapping, Report, RunOptions};
use super::infer::{match_columns, InferError, NameMatch};
use lifeline_index::SpatialIndex;
use lifeline_model::crs::{CrsError, MetricCrs};
use lifeline_model::{Actor, Bbox, Catalog, Layer};
use lifeline_store::import_jobs::ImportJob;
use lifeline_store::{RecordStore, Store, StoreError};
use std::path::{Path, PathBuf};

/// Where distances are measured when the store holds no pipelines to centre on: central
/// Chongqing (lon, lat).
const DEFAULT_CENTRE: (f64, f64) = (106.55, 29.56);

/// Why an import or an export failed. Each variant but [`ServiceError::WriteReport`] is
/// transparent: the message and the source chain are those of the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Reading, converting or writing the rows failed (see [`ImportError`]).
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The file's columns could not be read to make a mapping.
    #[error(transparent)]
    Infer(#[from] InferError),
    /// Selecting or writing the exported features failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The metric CRS of the export's index is unusable.
    #[error(transparent)]
    Crs(#[from] CrsError),
    /// The report could not be encoded as JSON.
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    /// The report file could not be written.
    #[error("writing {}", path.display())]
    WriteReport {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The blocking task that did the work panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

/// Called with (source rows done, rows in total) as an import advances.
pub type Progress = Box<dyn FnMut(usize, usize) + Send>;

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The source file (any vector format GDAL reads).
    pub file: PathBuf,
    /// The field mapping, already loaded ([`Mapping::load`]).
    pub mapping: Mapping,
    /// Target layer, source CRS override, GCJ-02 input.
    pub options: ImportOptions,
    /// A rejected row fails the import (or its batch).
    pub strict: bool,
    /// Commit every this many source rows, recording progress (resumable); `None`: one
    /// transaction.
    pub batch_size: Option<usize>,
    /// Continue a batch import after its last committed row.
    pub resume: bool,
}

/// What an import (or a dry run) did.
#[derive(Debug)]
pub struct ImportSummary {
    /// Rows read, accepted and rejected, the issues, what was written.
    pub summary: Summary,
    /// A dry run: nothing was written.
    pub dry_run: bool,
}

/// How an import ended, for its last line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ImportOutcome<'a> {
    /// A dry run: validated, nothing written.
    DryRun,
    /// A batch import that an earlier run completed: nothing left to do.
    AlreadyDone,
    /// A batch import: this run's batches were committed; the job's progress in total.
    Batches(&'a ImportJob),
    /// One transaction: the layer's records and the mapping's owners written with them.
    OneTransaction {
        /// Records of the target layer.
        records: usize,
        /// Owners of the mapping's `[owner]` table.
        owners: usize,
    },
}

impl ImportSummary {
    /// The validation report: counts and every rejected or repaired row.
    pub fn report(&self) -> &Report {
        &self.summary.report
    }

    /// Which ending this import had.
    pub fn outcome(&self) -> ImportOutcome<'_> {
        let s = &self.summary;
        match &s.job {
            _ if self.dry_run => ImportOutcome::DryRun,
            _ if s.commits == 0 => ImportOutcome::AlreadyDone,
            Some(j) => ImportOutcome::Batches(j),
            None => ImportOutcome::OneTransaction {
                records: s.report.accepted,
                owners: owners_written(s),
            },
        }
    }
}

/// Owners written along with an import (the mapping's `[owner]`): whatever was written
/// beyond the accepted rows.
fn owners_written(s: &Summary) -> usize {
    s.written.saturating_sub(s.report.accepted)
}

/// An import's target layer and mapping, settled from what the user gave.
#[derive(Debug, Clone)]
pub struct ChosenMapping {
    /// The target layer.
    pub layer: Layer,
    /// The mapping to import with.
    pub mapping: Mapping,
    /// Without a mapping file: which schema fields were found as columns and which were
    /// not (for the user to be told).
    pub by_name: Option<NameMatch>,
}

/// Settles the target layer and the mapping of an import of `file`: the layer is `layer`
/// (`--layer`), else the mapping's `layer`; without a mapping the layer must be given, and
/// the mapping reads every field of the layer's schema that the file has a column of the
/// same name for (exactly, else ignoring case). Reads only the file's description.
pub fn choose_mapping(
    file: &Path,
    layer: Option<Layer>,
    mapping: Option<Mapping>,
) -> Result<ChosenMapping, ServiceError> {
    match mapping {
        Some(mapping) => {
            let layer = layer.or(mapping.layer).ok_or_else(|| {
                ImportError::Options(
                    "no target layer: give --layer, or `layer = \"…\"` in the mapping file".into(),
                )
            })?;
            Ok(ChosenMapping {
                layer,
                mapping,
                by_name: None,
            })
        }
        None => {
            let layer = layer.ok_or_else(|| {
                ImportError::Options(
                    "no target layer: give --layer (pipelines, risk_points, grid_cells or \
                     sensors), or a --mapping file whose `layer` names it"
                        .into(),
                )
            })?;
            let by_name = match_columns(file, layer)?;
            Ok(ChosenMapping {
                layer,
                mapping: by_name.mapping(),
                by_name: Some(by_name),
            })
        }
    }
}

/// Reads, maps, reprojects, repairs and validates `req.file` on the blocking pool and
/// writes nothing: a dry run. No store is involved, so none is created.
pub async fn validate_file(
    req: ImportRequest,
    mut progress: Progress,
) -> Result<ImportSummary, ServiceError> {
    let report = tokio::task::spawn_blocking(move || {
        prepare(
            &req.file,
            &req.mapping,
            &req.options,
            Catalog::builtin(),
            &mut *progress,
        )
    })
    .await??;
    Ok(ImportSummary {
        summary: Summary {
            report,
            written: 0,
            commits: 0,
            resumed_after: 0,
            version: None,
            job: None,
        },
        dry_run: true,
    })
}

/// Reads, converts and writes `req.file` into `store` as `actor` (see
/// [`super::import::import`]): one transaction, or batches that a later call with `resume`
/// continues.
pub async fn import_file(
    store: &dyn Store,
    req: ImportRequest,
    actor: &Actor,
    progress: Progress,
) -> Result<ImportSummary, ServiceError> {
    let run = RunOptions {
        dry_run: false,
        strict: req.strict,
        batch_size: req.batch_size,
        resume: req.resume,
    };
    let summary = import(
        store,
        &req.file,
        &req.mapping,
        &req.options,
        &run,
        actor,
        progress,
    )
    .await?;
    Ok(ImportSummary {
        summary,
        dry_run: false,
    })
}

/// Writes an import's full validation report (every issue) to `path` as pretty JSON.
pub fn write_report(report: &Report, path: &Path) -> Result<(), ServiceError> {
    let json = serde_json::to_vec_pretty(report)?;
    std::fs::write(path, json).map_err(|source| ServiceError::WriteReport {
        path: path.to_path_buf(),
        source,
    })
}

/// Exports one layer of `store` to `out`; returns the number of features written.
///
/// The store's records are loaded into an index of their own, measured in `metric_crs`
/// (an EPSG code) or, without one, in the projected CRS that suits where the pipelines
/// are, as the server does: an `S_DWITHIN` filter is in metres.
pub async fn export_layer(
    store: &dyn RecordStore,
    metric_crs: Option<&str>,
    opts: ExportOptions,
    out: &Path,
) -> Result<usize, ServiceError> {
    let data = store.load_all().await?;
    let (lon, lat) = data
        .pipelines
        .iter()
        .filter_map(|p| Bbox::of(&p.geometry))
        .reduce(|a, b| a.union(&b))
        .map(|b| b.center())
        .unwrap_or(DEFAULT_CENTRE);
    let crs = MetricCrs::auto(lon, lat);
    let index = SpatialIndex::new(match metric_crs {
        Some(c) => MetricCrs::new(c)?,
        None => crs,
    });
    let out = out.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<usize, ServiceError> {
        index.load(data)?;
        Ok(export(&index, &opts, &out)?)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::{Dataset, Layer};
    use lifeline_store::import_jobs::ImportJobKey;

    fn summary(accepted: usize, written: usize, commits: usize, job: Option<ImportJob>) -> Summary {
        Summary {
            report: Report {
                source: "x.geojson".into(),
                source_layer: "x".into(),
                source_crs: None,
                operation: "identity".into(),
                layer: Layer::Pipelines,
                read: accepted,
                accepted,
                rejected: 0,
                repaired: 0,
                issues: Vec::new(),
                data: Dataset::default(),
            },
            written,
            commits,
            resumed_after: 0,
            version: None,
            job,
        }
    }

    fn job() -> ImportJob {
        ImportJob {
            key: ImportJobKey {
                source: "x.geojson".into(),
                source_layer: "x".into(),
                layer: Layer::Pipelines,
            },
            batch_size: 10,
            last_row: 20,
            last_fid: None,
            accepted: 20,
            rejected: 0,
            batches: 2,
            done: true,
            actor: "cli".into(),
            started_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn outcomes() {
        let dry = ImportSummary {
            summary: summary(5, 0, 0, None),
            dry_run: true,
        };
        assert_eq!(dry.outcome(), ImportOutcome::DryRun);
        // The mapping's owner is what was written beyond the accepted rows.
        let one = ImportSummary {
            summary: summary(5, 6, 1, None),
            dry_run: false,
        };
        assert_eq!(
            one.outcome(),
            ImportOutcome::OneTransaction {
                records: 5,
                owners: 1
            }
        );
        let done = ImportSummary {
            summary: summary(0, 0, 0, Some(job())),
            dry_run: false,
        };
        assert_eq!(done.outcome(), ImportOutcome::AlreadyDone);
        let batches = ImportSummary {
            summary: summary(20, 20, 2, Some(job())),
            dry_run: false,
        };
        assert!(matches!(batches.outcome(), ImportOutcome::Batches(j) if j.batches == 2));
    }

    #[test]
    fn the_layer_comes_from_the_flag_then_the_mapping() {
        // Only a choice without a mapping reads the file, so none is needed here.
        let file = Path::new("no-such-file.gpkg");
        let with_layer = Mapping::parse("layer = \"sensors\"\n[fields]\n").unwrap();
        let chosen = choose_mapping(file, None, Some(with_layer.clone())).unwrap();
        assert_eq!(chosen.layer, Layer::Sensors);
        assert!(chosen.by_name.is_none());
        let chosen = choose_mapping(file, Some(Layer::RiskPoints), Some(with_layer)).unwrap();
        assert_eq!(chosen.layer, Layer::RiskPoints);
        let without = Mapping::parse("[fields]\n").unwrap();
        let err = choose_mapping(file, None, Some(without))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--layer") && err.contains("mapping"), "{err}");
        let err = choose_mapping(file, None, None).unwrap_err().to_string();
        assert!(
            err.contains("--layer") && err.contains("--mapping"),
            "{err}"
        );
        // A layer without a mapping reads the file's columns: a missing file says so.
        let err = choose_mapping(file, Some(Layer::Pipelines), None).unwrap_err();
        assert!(err.to_string().contains("no-such-file.gpkg"), "{err}");
    }

    #[test]
    fn report_write_failure_names_the_file() {
        let s = summary(1, 0, 0, None);
        let path = std::env::temp_dir()
            .join(format!("lifeline-no-such-dir-{}", std::process::id()))
            .join("report.json");
        let err = write_report(&s.report, &path).unwrap_err();
        assert_eq!(err.to_string(), format!("writing {}", path.display()));
        assert!(std::error::Error::source(&err).is_some());
    }
}
