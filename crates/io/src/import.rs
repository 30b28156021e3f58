//! `lifeline import`: loads a surveyor's delivery in any vector format GDAL reads into one
//! layer of the store. A mapping file (TOML, `data/mappings/*.toml`) names which source
//! column feeds which model field (with constants, unit scales and value vocabularies);
//! geometries are reprojected from the source CRS with PROJ along a [`Route`] (or an
//! explicit pipeline, or converted back from GCJ-02 on request) and repaired where the
//! repair is unambiguous. Every rejected or repaired row goes into the [`Report`] with its
//! source row number and the reason.
//!
//! The work runs as a pipeline ([`prepare`], [`import`]): one thread reads rows from GDAL
//! in chunks, worker threads map, reproject (one PROJ call per geometry), repair and
//! validate them, and the caller receives the results in source order, so reading,
//! converting and writing overlap. [`import`] writes the accepted rows either in one
//! transaction through [`Store::bulk_load`] (all or nothing, the default), or — with a
//! batch size — one transaction per batch of source rows, each recording its progress in
//! the store's import-job table ([`lifeline_store::import_jobs`]) in the same transaction,
//! so a killed import resumes after the last committed row without duplicates.

use super::gdal::{describe_layer, stream_rows, ResumeAt, SourceInfo, SourceRow};
use geo::{Coord, Geometry, LineString, MultiPolygon, Polygon};
use lifeline_model::crs::Route;
use lifeline_model::geom::type_name;
use lifeline_model::{Actor, Catalog, Dataset, Layer, Owner, Record};
use lifeline_store::import_jobs::{ImportJob, ImportJobKey};
use lifeline_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

/// Source rows per chunk handed from the reader to the workers.
const CHUNK_ROWS: usize = 1024;

/// Why an import could not run at all (row problems go to the report instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("mapping file: {0}")]
    Mapping(String),
    #[error(transparent)]
    Gdal(#[from] super::gdal::GdalError),
    #[error("source CRS: {0}")]
    Crs(String),
    #[error("options: {0}")]
    Options(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--strict` and a row was rejected: nothing of its batch (or, without batches, of the
    /// import) was written.
    #[error(
        "row {row} rejected in strict mode: {reason}; {committed_batches} batch(es) committed \
         through source row {committed_through}{hint}"
    )]
    Strict {
        row: usize,
        reason: String,
        committed_batches: i64,
        committed_through: i64,
        hint: &'static str,
    },
    /// A batch import of this source stopped part-way and `--resume` was not given.
    #[error(
        "an import of this source into {layer} stopped after source row {last_row} \
         ({batches} batch(es) committed); re-run with --resume to continue it"
    )]
    Unfinished {
        layer: Layer,
        last_row: i64,
        batches: i64,
    },
    #[error("import interrupted: {0}")]
    Interrupted(String),
}

/// How one model field is filled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// Source column name.
    pub from: Option<String>,
    /// A constant (used when `from` is absent, or when the source value is null).
    pub value: Option<Value>,
    /// Multiply a numeric source value (e.g. 1000 for metres to millimetres).
    pub scale: Option<f64>,
    /// Translate source strings to model vocabulary; unmapped values are an error.
    #[serde(default)]
    pub map: BTreeMap<String, Value>,
}

/// A mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Target layer (`--layer` overrides).
    pub layer: Option<Layer>,
    /// Source layer name inside the file (default: the first).
    pub source_layer: Option<String>,
    /// Source CRS when the file has none or a wrong one (`--s-srs` overrides): an EPSG
    /// code or any PROJ string (e.g. Xi'an 80 with `+towgs84=` parameters).
    pub source_crs: Option<String>,
    /// An explicit PROJ pipeline from the source's x (easting), y (northing) to CGCS2000
    /// longitude, latitude in degrees, for a delivery whose surveyor names the exact
    /// operation (e.g. the EPSG:1777 Helmert for DHDN). Used unless `--s-srs` is given.
    pub pipeline: Option<String>,
    /// Source coordinates are GCJ-02 (`--gcj02` sets it too).
    #[serde(default)]
    pub gcj02: bool,
    /// An OGR SQL attribute filter applied while reading (e.g. `kind = 'Pipe'`).
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// Model field → rule.
    pub fields: BTreeMap<String, FieldRule>,
    /// An owner to create (or replace) in the same transaction.
    pub owner: Option<Owner>,
}

impl Mapping {
    /// Parses and checks a mapping file's text.
    pub fn parse(text: &str) -> Result<Mapping, ImportError> {
        let m: Mapping = toml::from_str(text).map_err(|e| ImportError::Mapping(e.to_string()))?;
        for (name, r) in &m.fields {
            if r.from.is_none() && r.value.is_none() {
                return Err(ImportError::Mapping(format!(
                    "field '{name}' needs `from` or `value`"
                )));
            }
        }
        if m.pipeline.is_some() && m.gcj02 {
            return Err(ImportError::Mapping(
                "`pipeline` and `gcj02` exclude each other (GCJ-02 input is converted to WGS84 \
                 by its own formula)"
                    .into(),
            ));
        }
        Ok(m)
    }

    /// Reads a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, ImportError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ImportError::Mapping(format!("{}: {e}", path.display())))?;
        Self::parse(&text)
    }
}

/// What happened to one source row.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Rejected,
    Repaired,
}

/// One line of the validation report.
#[derive(Debug, Clone, Serialize)]
pub struct Issue {
    /// 1-based source row.
    pub row: usize,
    /// Source FID, when the format has one.
    pub fid: Option<u64>,
    pub outcome: Outcome,
    pub reason: String,
}

/// The validation report and the records that passed.
#[derive(Debug, Serialize)]
pub struct Report {
    pub source: String,
    pub source_layer: String,
    pub source_crs: Option<String>,
    /// How coordinates reached CGCS2000 (see [`Route::describe`]).
    pub operation: String,
    pub layer: Layer,
    pub read: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub repaired: usize,
    pub issues: Vec<Issue>,
    /// The accepted records (in batch mode only those of the batch not yet written).
    #[serde(skip)]
    pub data: Dataset,
}

impl Report {
    /// Counts one converted row; an accepted record goes into `data`.
    fn add(&mut self, c: Converted) -> Option<Issue> {
        self.read += 1;
        match c.result {
            Ok((rec, repairs)) => {
                self.accepted += 1;
                if !repairs.is_empty() {
                    self.repaired += 1;
                    self.issues.push(Issue {
                        row: c.row,
                        fid: c.fid,
                        outcome: Outcome::Repaired,
                        reason: repairs.join("; "),
                    });
                }
                push(&mut self.data, rec);
                None
            }
            Err(reason) => {
                self.rejected += 1;
                let issue = Issue {
                    row: c.row,
                    fid: c.fid,
                    outcome: Outcome::Rejected,
                    reason,
                };
                self.issues.push(issue.clone());
                Some(issue)
            }
        }
    }
}

/// Options of one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub layer: Layer,
    pub source_crs: Option<String>,
    pub gcj02: bool,
}

/// What was decided before the first row: the source, the coordinate route, the columns.
#[derive(Debug, Clone)]
struct Plan {
    info: SourceInfo,
    layer: Layer,
    route: Route,
    gcj: bool,
    source_crs: Option<String>,
    /// The source columns the mapping reads (each once), in the order rows hold them.
    wanted: Vec<String>,
    /// Per mapping field, in the mapping's order: the position of its source column in
    /// `wanted`, and the model field's type.
    columns: Vec<(Option<usize>, Option<&'static str>)>,
}

/// Opens the source's description and checks the CRS and the mapping against it.
fn plan(path: &Path, mapping: &Mapping, opts: &ImportOptions) -> Result<Plan, ImportError> {
    let info = describe_layer(
        path,
        mapping.source_layer.as_deref(),
        mapping.where_.as_deref(),
    )?;
    let gcj = opts.gcj02 || mapping.gcj02;
    let s_crs = opts
        .source_crs
        .clone()
        .or_else(|| mapping.source_crs.clone())
        .or_else(|| info.crs.clone());
    let (route, label) = match (&mapping.pipeline, &opts.source_crs, &s_crs, gcj) {
        // GCJ-02 is converted to WGS84 by formula, and WGS84 is taken as CGCS2000.
        (_, _, _, true) => (Route::Identity, Some("GCJ-02".to_string())),
        (Some(p), None, c, false) => (Route::Pipeline(p.clone()), c.clone()),
        (_, _, Some(c), false) => (Route::for_crs(c), Some(c.clone())),
        (_, _, None, false) => {
            return Err(ImportError::Crs(format!(
                "{} declares no CRS; give --s-srs (e.g. EPSG:4545) or source_crs in the mapping",
                path.display()
            )))
        }
    };
    // Fail early on an unusable CRS rather than once per row.
    route.check().map_err(|e| ImportError::Crs(e.to_string()))?;
    let mut wanted: Vec<String> = Vec::new();
    let mut columns = Vec::with_capacity(mapping.fields.len());
    for (name, rule) in &mapping.fields {
        let col = match &rule.from {
            Some(r) => {
                if !info.field_names.contains(r) {
                    return Err(ImportError::Mapping(format!(
                        "field '{name}' reads source column '{r}', which {} does not have; columns: {}",
                        path.display(),
                        info.field_names.join(", ")
                    )));
                }
                Some(match wanted.iter().position(|w| w == r) {
                    Some(i) => i,
                    None => {
                        wanted.push(r.clone());
                        wanted.len() - 1
                    }
                })
            }
            None => None,
        };
        columns.push((col, field_type(opts.layer, name)));
    }
    if let Some(o) = &mapping.owner {
        o.validate()
            .map_err(|e| ImportError::Mapping(format!("[owner]: {e}")))?;
    }
    Ok(Plan {
        info,
        layer: opts.layer,
        route,
        gcj,
        source_crs: label,
        wanted,
        columns,
    })
}

impl Plan {
    fn report(&self, path: &Path) -> Report {
        Report {
            source: path.display().to_string(),
            source_layer: self.info.name.clone(),
            source_crs: self.source_crs.clone(),
            operation: self.route.describe(),
            layer: self.layer,
            read: 0,
            accepted: 0,
            rejected: 0,
            repaired: 0,
            issues: Vec::new(),
            data: Dataset::default(),
        }
    }
}

/// One source row after conversion: the record and its repairs, or why it was rejected.
struct Converted {
    row: usize,
    fid: Option<u64>,
    result: Result<(Record, Vec<String>), String>,
}

/// Runs the read → convert pipeline and hands `on_chunk` the converted rows in source
/// order; `on_chunk` returning false stops it. One reader thread (GDAL handles are not
/// shared), up to four converting workers; channels are bounded, so a slow consumer holds
/// the reader back instead of buffering the whole file.
fn run_pipeline(
    path: &Path,
    mapping: &Mapping,
    plan: &Plan,
    catalog: &Catalog,
    resume: Option<ResumeAt>,
    on_chunk: &mut dyn FnMut(Vec<Converted>) -> bool,
) -> Result<(), ImportError> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    let (raw_tx, raw_rx) = mpsc::sync_channel::<(usize, Vec<SourceRow>)>(workers * 2);
    let raw_rx = Arc::new(Mutex::new(raw_rx));
    let (out_tx, out_rx) = mpsc::sync_channel::<(usize, Vec<Converted>)>(workers * 2);
    std::thread::scope(|s| {
        // Named threads, so `top -H` and profilers tell the stages apart.
        let reader = std::thread::Builder::new()
            .name("import-read".into())
            .spawn_scoped(s, move || {
                let mut seq = 0usize;
                stream_rows(
                    path,
                    mapping.source_layer.as_deref(),
                    mapping.where_.as_deref(),
                    Some(&plan.wanted),
                    resume,
                    CHUNK_ROWS,
                    &mut |rows| {
                        let sent = raw_tx.send((seq, rows)).is_ok();
                        seq += 1;
                        sent
                    },
                )
            })
            .map_err(|e| ImportError::Interrupted(format!("cannot start the reader: {e}")))?;
        let mut started = 0usize;
        for _ in 0..workers {
            let (rx, tx) = (Arc::clone(&raw_rx), out_tx.clone());
            let worker = std::thread::Builder::new().name("import-convert".into());
            let spawned = worker.spawn_scoped(s, move || loop {
                // The lock is held only while waiting for the next chunk.
                let next = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                let Ok((seq, rows)) = next else { return };
                let done: Vec<Converted> = rows
                    .into_iter()
                    .map(|row| {
                        let (at, fid) = (row.row, row.fid);
                        let mut repairs = Vec::new();
                        let result = convert_row(row, mapping, plan, catalog, &mut repairs)
                            .map(|rec| (rec, repairs));
                        Converted {
                            row: at,
                            fid,
                            result,
                        }
                    })
                    .collect();
                if tx.send((seq, done)).is_err() {
                    return;
                }
            });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::warn!("cannot start an import worker: {e}"),
            }
        }
        // Only the workers hold the receiving end now: when they stop, the reader's sends
        // fail and it stops too.
        drop(raw_rx);
        drop(out_tx);
        if started == 0 {
            // The reader stops at its first send; nothing was converted.
            let _ = reader.join();
            return Err(ImportError::Interrupted(
                "cannot start any import worker".into(),
            ));
        }
        let mut pending: BTreeMap<usize, Vec<Converted>> = BTreeMap::new();
        let mut next = 0usize;
        'consume: for (seq, chunk) in out_rx.iter() {
            pending.insert(seq, chunk);
            while let Some(chunk) = pending.remove(&next) {
                next += 1;
                if !on_chunk(chunk) {
                    break 'consume;
                }
            }
        }
        drop(out_rx);
        match reader.join() {
            Ok(r) => r.map_err(ImportError::from),
            Err(_) => Err(ImportError::Interrupted("the reader thread failed".into())),
        }
    })
}

/// Reads, maps, reprojects, repairs and validates a file; writes nothing. `progress` is
/// called with (rows done, rows total).
pub fn prepare(
    path: &Path,
    mapping: &Mapping,
    opts: &ImportOptions,
    catalog: &Catalog,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report, ImportError> {
    let plan = plan(path, mapping, opts)?;
    let mut report = plan.report(path);
    if let Some(o) = &mapping.owner {
        report.data.owners.push(o.clone());
    }
    let total = plan.info.count.unwrap_or(0) as usize;
    run_pipeline(path, mapping, &plan, catalog, None, &mut |chunk| {
        for c in chunk {
            report.add(c);
        }
        progress(report.read, total.max(report.read));
        true
    })?;
    progress(report.read, report.read);
    Ok(report)
}

/// How [`import`] writes.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Validate and report only.
    pub dry_run: bool,
    /// A rejected row fails the import: nothing of the transaction (or of the batch that
    /// holds the row) is written, and the error names the row.
    pub strict: bool,
    /// Commit every this many source rows and record the progress; `None`: one
    /// transaction for the whole import.
    pub batch_size: Option<usize>,
    /// Continue a batch import after its last committed row.
    pub resume: bool,
}

/// What [`import`] did.
#[derive(Debug)]
pub struct Summary {
    /// Rows read, accepted, rejected in this run, and every issue.
    pub report: Report,
    /// Records written in this run (owners included).
    pub written: usize,
    /// Transactions committed in this run.
    pub commits: usize,
    /// Source rows skipped because an earlier run committed them.
    pub resumed_after: usize,
    /// The last change version written.
    pub version: Option<i64>,
    /// The batch job's recorded progress after this run.
    pub job: Option<ImportJob>,
}

/// An import job's progress stamp: when this process recorded it (a commit stamp, like
/// the audit log's; no rule compares it with the service clock).
fn stamp() -> String {
    use chrono::SubsecRound;
    chrono::Utc::now()
        .trunc_subsecs(3)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Reads, converts and writes a file into `store` (see the module docs). `progress` is
/// called with (source rows done, rows total).
pub async fn import(
    store: &dyn Store,
    path: &Path,
    mapping: &Mapping,
    opts: &ImportOptions,
    run: &RunOptions,
    actor: &Actor,
    mut progress: Box<dyn FnMut(usize, usize) + Send>,
) -> Result<Summary, ImportError> {
    if run.resume && run.batch_size.is_none() {
        return Err(ImportError::Options(
            "--resume continues a batch import; give --batch-size too".into(),
        ));
    }
    if run.batch_size == Some(0) {
        return Err(ImportError::Options(
            "--batch-size must be at least 1".into(),
        ));
    }
    let plan = {
        let (p, m, o) = (path.to_path_buf(), mapping.clone(), opts.clone());
        tokio::task::spawn_blocking(move || plan(&p, &m, &o))
            .await
            .map_err(|e| ImportError::Interrupted(e.to_string()))??
    };
    let mut report = plan.report(path);
    let mut summary_job = None;
    // Batch mode: find the job's recorded progress.
    let key = ImportJobKey {
        source: std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string(),
        source_layer: plan.info.name.clone(),
        layer: plan.layer,
    };
    let mut job = None;
    if let Some(size) = run.batch_size.filter(|_| !run.dry_run) {
        let fresh = ImportJob {
            key: key.clone(),
            batch_size: size as i64,
            last_row: 0,
            last_fid: None,
            accepted: 0,
            rejected: 0,
            batches: 0,
            done: false,
            actor: actor.name.clone(),
            started_at: stamp(),
            updated_at: stamp(),
        };
        job = Some(match store.import_job(&key).await? {
            Some(j) if !j.done && !run.resume => {
                return Err(ImportError::Unfinished {
                    layer: plan.layer,
                    last_row: j.last_row,
                    batches: j.batches,
                })
            }
            Some(j) if j.done && run.resume => {
                // Nothing left: the job finished in an earlier run.
                return Ok(Summary {
                    report,
                    written: 0,
                    commits: 0,
                    resumed_after: j.last_row as usize,
                    version: None,
                    job: Some(j),
                });
            }
            Some(j) if run.resume => ImportJob {
                batch_size: size as i64,
                ..j
            },
            _ => fresh,
        });
    }
    let resume = job.as_ref().filter(|j| j.last_row > 0).map(|j| ResumeAt {
        row: j.last_row as usize,
        fid: j.last_fid.map(|f| f as u64),
    });
    let resumed_after = resume.map_or(0, |r| r.row);
    let total = plan.info.count.unwrap_or(0) as usize;

    // The read → convert pipeline runs on its own threads; chunks come back in order.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Converted>>(4);
    let engine = {
        let (path, mapping, plan): (PathBuf, Mapping, Plan) =
            (path.to_path_buf(), mapping.clone(), plan.clone());
        std::thread::spawn(move || {
            run_pipeline(
                &path,
                &mapping,
                &plan,
                Catalog::builtin(),
                resume,
                &mut |chunk| tx.blocking_send(chunk).is_ok(),
            )
        })
    };
    let mut written = 0usize;
    let mut commits = 0usize;
    let mut owner_pending = mapping.owner.clone();
    // One transaction fed while reading (the default): the store writes each chunk as it
    // arrives. Grid cells need parents before children, so they are collected first.
    let streaming = job.is_none() && !run.dry_run && plan.layer != Layer::GridCells;
    let (stream_tx, stream_rx) = tokio::sync::mpsc::channel::<Result<Dataset, String>>(4);
    let stream_owners: Vec<Owner> = if streaming {
        owner_pending.take().into_iter().collect()
    } else {
        Vec::new()
    };
    written += stream_owners.len();
    // Rows of the current batch, and the last one's position.
    let mut batch_rows = 0usize;
    let mut batch_accepted = 0i64;
    let mut batch_rejected = 0i64;
    let mut last: Option<(usize, Option<u64>)> = None;
    let mut failure: Option<ImportError> = None;
    let forward = async {
        'rows: while let Some(chunk) = rx.recv().await {
            for c in chunk {
                let (row, fid) = (c.row, c.fid);
                let rejected = report.add(c);
                batch_rows += 1;
                last = Some((row, fid));
                match &rejected {
                    Some(issue) if run.strict => {
                        let j = job.as_ref();
                        failure = Some(ImportError::Strict {
                            row,
                            reason: issue.reason.clone(),
                            committed_batches: j.map_or(0, |j| j.batches),
                            committed_through: j.map_or(0, |j| j.last_row),
                            hint: if job.is_some() {
                                "; fix the row and re-run with --resume"
                            } else {
                                "; nothing was written"
                            },
                        });
                        break 'rows;
                    }
                    Some(_) => batch_rejected += 1,
                    None => batch_accepted += 1,
                }
                if let (Some(j), Some(size)) = (job.as_mut(), run.batch_size) {
                    if batch_rows >= size {
                        let mut data = std::mem::take(&mut report.data);
                        if let Some(o) = owner_pending.take() {
                            data.owners.push(o);
                        }
                        advance(j, last, batch_accepted, batch_rejected, false);
                        store.import_batch(&data, j, actor).await?;
                        written += data.len();
                        commits += 1;
                        (batch_rows, batch_accepted, batch_rejected) = (0, 0, 0);
                    }
                }
            }
            if streaming {
                let data = std::mem::take(&mut report.data);
                written += data.len();
                if stream_tx.send(Ok(data)).await.is_err() {
                    // The store gave up; its error is what the caller sees.
                    break;
                }
            }
            progress(
                resumed_after + report.read,
                total.max(resumed_after + report.read),
            );
        }
        drop(rx);
        let engine_result = engine.join().unwrap_or_else(|_| {
            Err(ImportError::Interrupted(
                "the import pipeline failed".into(),
            ))
        });
        let outcome = match failure.take() {
            Some(f) => Err(f),
            None => engine_result,
        };
        if let Err(e) = &outcome {
            // Abort the streamed transaction: nothing of it is written.
            let _ = stream_tx.send(Err(e.to_string())).await;
        }
        drop(stream_tx);
        outcome
    };
    let (forwarded, streamed) = if streaming {
        let expected = total.saturating_sub(resumed_after);
        let (f, s) = tokio::join!(
            forward,
            store.bulk_load_stream(stream_owners, plan.layer, expected, stream_rx, actor)
        );
        (f, Some(s))
    } else {
        drop(stream_rx);
        (forward.await, None)
    };
    forwarded?;
    if run.dry_run {
        return Ok(Summary {
            report,
            written: 0,
            commits: 0,
            resumed_after,
            version: None,
            job: None,
        });
    }
    if let Some(streamed) = streamed {
        let version = streamed?;
        return Ok(Summary {
            report,
            written,
            commits: 1,
            resumed_after,
            version: Some(version),
            job: None,
        });
    }
    let mut data = std::mem::take(&mut report.data);
    if let Some(o) = owner_pending.take() {
        data.owners.push(o);
    }
    let version = match job.as_mut() {
        Some(j) => {
            // The last (possibly empty) batch also marks the job done.
            advance(j, last, batch_accepted, batch_rejected, true);
            summary_job = Some(j.clone());
            store.import_batch(&data, j, actor).await?
        }
        None => store.bulk_load(&data, actor).await?,
    };
    written += data.len();
    commits += 1;
    Ok(Summary {
        report,
        written,
        commits,
        resumed_after,
        version: Some(version),
        job: summary_job,
    })
}

/// Moves a job's recorded progress past one committed batch.
fn advance(
    j: &mut ImportJob,
    last: Option<(usize, Option<u64>)>,
    accepted: i64,
    rejected: i64,
    done: bool,
) {
    if let Some((row, fid)) = last {
        if row as i64 > j.last_row {
            j.last_row = row as i64;
            j.last_fid = fid.map(|f| f as i64);
        }
    }
    j.accepted += accepted;
    j.rejected += rejected;
    j.batches += 1;
    j.done = done;
    j.updated_at = stamp();
}

fn push(d: &mut Dataset, r: Record) {
    match r {
        Record::Pipeline(p) => d.pipelines.push(p),
        Record::RiskPoint(p) => d.risk_points.push(p),
        Record::GridCell(p) => d.grid_cells.push(p),
        Record::Sensor(p) => d.sensors.push(p),
        Record::Node(p) => d.nodes.push(p),
        Record::Owner(p) => d.owners.push(p),
    }
}

/// The value of one model field from its rule and its source column's value (`None` when
/// the rule reads no column).
fn apply_rule(
    name: &str,
    rule: &FieldRule,
    source: Option<&Value>,
) -> Result<Option<Value>, String> {
    let mut v = source.cloned().unwrap_or(Value::Null);
    if let Value::String(s) = &v {
        if s.trim().is_empty() {
            v = Value::Null;
        }
    }
    if v.is_null() {
        return Ok(rule.value.clone());
    }
    if !rule.map.is_empty() {
        let key = match &v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        v = rule.map.get(&key).cloned().ok_or_else(|| {
            format!(
                "{name}: source value '{key}' is not in the mapping's vocabulary ({})",
                rule.map.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
    }
    if let Some(k) = rule.scale {
        v = match &v {
            Value::Number(n) => n
                .as_f64()
                .and_then(|x| serde_json::Number::from_f64(x * k))
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(x) => serde_json::Number::from_f64(x * k)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
                Err(_) => return Err(format!("{name}: '{s}' is not a number")),
            },
            other => other.clone(),
        };
    }
    Ok(Some(v))
}

fn convert_row(
    row: SourceRow,
    mapping: &Mapping,
    plan: &Plan,
    catalog: &Catalog,
    repairs: &mut Vec<String>,
) -> Result<Record, String> {
    let layer = plan.layer;
    let g = match row.geometry {
        Err(e) => return Err(e),
        Ok(None) => return Err("no geometry".into()),
        Ok(Some(g)) => g,
    };
    let g = if plan.gcj {
        gcj02_to_wgs84_geom(&g)
    } else {
        plan.route
            .apply_owned(g)
            .map_err(|e| format!("reprojection failed: {e}"))?
    };
    let g = repair_geometry(layer, g, repairs)?;
    let mut values: Vec<(&str, Value)> = Vec::with_capacity(mapping.fields.len());
    for ((name, rule), (col, ty)) in mapping.fields.iter().zip(&plan.columns) {
        let source = col.and_then(|i| row.fields.at(i));
        if let Some(v) = apply_rule(name, rule, source)? {
            // Whole numbers read from floating columns (e.g. a year stored as Real) go to
            // integer fields as integers.
            let v = coerce(*ty, name, v)?;
            if v.is_null() {
                continue;
            }
            values.push((name.as_str(), v));
        }
    }
    let mut rec = record_from_values(layer, &values, placeholder(&g)).map_err(|e| e.to_string())?;
    set_geometry(&mut rec, g)?;
    rec.validate(catalog).map_err(|e| e.to_string())?;
    Ok(rec)
}

/// The record of `layer` with these field values. The attributes go through the model's
/// serde form (one parser for every input, the same errors as a JSON body), read straight
/// from the pairs rather than from a JSON object built per row. The geometry does not: a
/// placeholder of the right type stands in and the typed geometry replaces it, which saves
/// a GeoJSON round trip of every coordinate.
fn record_from_values(
    layer: Layer,
    values: &[(&str, Value)],
    placeholder: &'static Value,
) -> Result<Record, serde_json::Error> {
    use serde::de::value::MapDeserializer;
    fn read<T: serde::de::DeserializeOwned>(
        values: &[(&str, Value)],
        geometry: (&'static str, &'static Value),
    ) -> Result<T, serde_json::Error> {
        let pairs = values
            .iter()
            .map(|(k, v)| (*k, v))
            .chain(std::iter::once(geometry));
        T::deserialize(MapDeserializer::<_, serde_json::Error>::new(pairs))
    }
    let geometry = (lifeline_model::feature::geometry_field(layer), placeholder);
    Ok(match layer {
        Layer::Pipelines => Record::Pipeline(read(values, geometry)?),
        Layer::RiskPoints => Record::RiskPoint(read(values, geometry)?),
        Layer::GridCells => Record::GridCell(read(values, geometry)?),
        Layer::Sensors => Record::Sensor(read(values, geometry)?),
        Layer::Nodes => Record::Node(read(values, geometry)?),
        Layer::Owners => Record::Owner(read(values, geometry)?),
    })
}

/// A minimal GeoJSON geometry of the same type as `g` (made once, shared by every row).
fn placeholder(g: &Geometry<f64>) -> &'static Value {
    use std::sync::LazyLock;
    static POINT: LazyLock<Value> =
        LazyLock::new(|| serde_json::json!({"type": "Point", "coordinates": [0.0, 0.0]}));
    static LINE: LazyLock<Value> = LazyLock::new(
        || serde_json::json!({"type": "LineString", "coordinates": [[0.0, 0.0], [1.0, 1.0]]}),
    );
    static POLYGON: LazyLock<Value> = LazyLock::new(|| {
        serde_json::json!({"type": "Polygon",
            "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]})
    });
    static MULTI_POLYGON: LazyLock<Value> = LazyLock::new(|| {
        serde_json::json!({"type": "MultiPolygon",
            "coordinates": [[[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]]})
    });
    match g {
        Geometry::Point(_) => &POINT,
        Geometry::LineString(_) => &LINE,
        Geometry::Polygon(_) => &POLYGON,
        _ => &MULTI_POLYGON,
    }
}

/// Puts the converted geometry into the record (the repair step made it the layer's type).
fn set_geometry(rec: &mut Record, g: Geometry<f64>) -> Result<(), String> {
    match (rec, g) {
        (Record::Pipeline(p), Geometry::LineString(l)) => p.geometry = l,
        (Record::Sensor(s), Geometry::Point(p)) => s.location = p,
        (Record::Node(n), Geometry::Point(p)) => n.geometry = p,
        (Record::GridCell(c), Geometry::MultiPolygon(m)) => c.geometry = m,
        (Record::RiskPoint(r), g @ (Geometry::Point(_) | Geometry::Polygon(_))) => r.geometry = g,
        (_, g) => return Err(format!("unexpected {} geometry", type_name(&g))),
    }
    Ok(())
}

fn field_type(layer: Layer, name: &str) -> Option<&'static str> {
    if name == "id" {
        return Some("integer");
    }
    lifeline_model::schema::field(layer, name).map(|f| f.column.type_name())
}

/// Brings a source value to the model field's type: numbers from text columns (CSV),
/// whole floats to integers (a year stored as Real), empty text to null.
fn coerce(t: Option<&str>, name: &str, v: Value) -> Result<Value, String> {
    match (t, v) {
        (Some("number" | "integer"), Value::String(s)) if s.trim().is_empty() => Ok(Value::Null),
        (Some("number"), Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("{name}: '{s}' is not a number")),
        (Some("integer"), Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(x) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(Value::from(x as i64)),
            _ => Err(format!("{name}: '{s}' is not an integer")),
        },
        (Some("integer"), Value::Number(n)) if n.is_f64() => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(Value::from(x as i64)),
            _ => Err(format!("{name}: {n} is not an integer")),
        },
        (Some("string" | "date"), Value::String(s)) if s.trim().is_empty() => Ok(Value::Null),
        (_, v) => Ok(v),
    }
}

fn dedup_line(l: &LineString<f64>) -> LineString<f64> {
    let mut v: Vec<Coord<f64>> = l.0.clone();
    v.dedup();
    LineString(v)
}

/// Makes a geometry fit its layer where the fix is unambiguous, naming each fix.
fn repair_geometry(
    layer: Layer,
    g: Geometry<f64>,
    repairs: &mut Vec<String>,
) -> Result<Geometry<f64>, String> {
    match layer {
        Layer::Pipelines => {
            let line = match g {
                Geometry::LineString(l) => l,
                Geometry::MultiLineString(mut m) if m.0.len() == 1 => {
                    repairs.push("single-part MultiLineString unwrapped".into());
                    m.0.remove(0)
                }
                Geometry::MultiLineString(m) => {
                    return Err(format!(
                        "MultiLineString with {} parts; a pipeline is one line (split it in the source)",
                        m.0.len()
                    ))
                }
                other => return Err(format!("a pipeline needs a LineString, got {}", type_name(&other))),
            };
            let d = dedup_line(&line);
            if d.0.len() != line.0.len() {
                repairs.push(format!(
                    "{} repeated vertices removed",
                    line.0.len() - d.0.len()
                ));
            }
            if d.0.len() < 2 {
                return Err("line has fewer than 2 distinct vertices".into());
            }
            Ok(Geometry::LineString(d))
        }
        Layer::Sensors | Layer::Nodes => match g {
            Geometry::Point(p) => Ok(Geometry::Point(p)),
            Geometry::MultiPoint(mut m) if m.0.len() == 1 => {
                repairs.push("single-point MultiPoint unwrapped".into());
                Ok(Geometry::Point(m.0.remove(0)))
            }
            other => Err(format!(
                "a {} needs a Point, got {}",
                if layer == Layer::Nodes {
                    "node"
                } else {
                    "sensor"
                },
                type_name(&other)
            )),
        },
        Layer::GridCells => {
            let polys = match g {
                Geometry::Polygon(p) => vec![p],
                Geometry::MultiPolygon(m) => m.0,
                other => {
                    return Err(format!(
                        "a grid cell needs a Polygon or MultiPolygon, got {}",
                        type_name(&other)
                    ))
                }
            };
            Ok(Geometry::MultiPolygon(repair_polygons(polys, repairs)?))
        }
        Layer::RiskPoints => match g {
            Geometry::Point(p) => Ok(Geometry::Point(p)),
            Geometry::Polygon(p) => {
                let mut m = repair_polygons(vec![p], repairs)?;
                if m.0.len() != 1 {
                    return Err("polygon repair left more than one part".into());
                }
                Ok(Geometry::Polygon(m.0.remove(0)))
            }
            other => Err(format!(
                "a risk point needs a Point or Polygon, got {}",
                type_name(&other)
            )),
        },
        Layer::Owners => {
            Err("owners have no geometry; import them with a mapping [owner] table".into())
        }
    }
}

/// Drops degenerate rings (fewer than 3 distinct vertices), closes open rings and orients
/// rings as RFC 7946 wants; what stays invalid (self-intersections) is rejected by the
/// model's validation with its reason.
fn repair_polygons(
    polys: Vec<Polygon<f64>>,
    repairs: &mut Vec<String>,
) -> Result<MultiPolygon<f64>, String> {
    use geo::orient::{Direction, Orient};
    let mut out = Vec::new();
    let n_in = polys.len();
    for (pi, p) in polys.into_iter().enumerate() {
        let (ext, holes) = p.into_inner();
        let fix = |r: LineString<f64>,
                   what: String,
                   repairs: &mut Vec<String>|
         -> Option<LineString<f64>> {
            let mut v = dedup_line(&r).0;
            if v.len() > 1 && v.first() != v.last() {
                v.push(v[0]);
                repairs.push(format!("{what}: ring closed"));
            }
            let mut distinct = v.clone();
            distinct.pop();
            distinct.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
            distinct.dedup();
            if distinct.len() < 3 {
                repairs.push(format!(
                    "{what}: ring with fewer than 3 distinct vertices dropped"
                ));
                return None;
            }
            Some(LineString(v))
        };
        let Some(ext) = fix(ext, format!("part {}", pi + 1), repairs) else {
            continue;
        };
        let holes: Vec<LineString<f64>> = holes
            .into_iter()
            .enumerate()
            .filter_map(|(hi, h)| fix(h, format!("part {} hole {}", pi + 1, hi + 1), repairs))
            .collect();
        let poly = Polygon::new(ext, holes);
        let oriented = poly.orient(Direction::Default);
        if oriented != poly {
            repairs.push(format!(
                "part {}: rings re-oriented (RFC 7946 winding)",
                pi + 1
            ));
        }
        out.push(oriented);
    }
    if out.is_empty() {
        return Err(format!(
            "all {n_in} polygon part(s) are degenerate (fewer than 3 distinct vertices)"
        ));
    }
    Ok(MultiPolygon(out))
}

fn gcj02_to_wgs84_geom(g: &Geometry<f64>) -> Geometry<f64> {
    use geo::MapCoords;
    g.map_coords(|c| {
        let (x, y) = lifeline_model::datum::gcj02_to_wgs84(c.x, c.y);
        Coord { x, y }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_rules() {
        let m = Mapping::parse(
            r#"
            [fields]
            kind = { value = "gas" }
            diameter_mm = { from = "diameter_m", scale = 1000.0 }
            material = { from = "t", map = { "125 PE 100 SDR 11" = "PE100" } }
            "#,
        )
        .unwrap();
        let names: std::sync::Arc<[String]> = vec!["diameter_m".into(), "t".into()].into();
        let fields = super::super::gdal::Fields::new(
            names,
            vec![
                serde_json::json!(0.125),
                serde_json::json!("125 PE 100 SDR 11"),
            ],
        );
        assert_eq!(fields["t"], "125 PE 100 SDR 11");
        assert!(fields["missing"].is_null());
        assert_eq!(
            apply_rule("d", &m.fields["diameter_mm"], fields.get("diameter_m")).unwrap(),
            Some(serde_json::json!(125.0))
        );
        assert_eq!(
            apply_rule("m", &m.fields["material"], fields.get("t")).unwrap(),
            Some(serde_json::json!("PE100"))
        );
        assert_eq!(
            apply_rule("k", &m.fields["kind"], None).unwrap(),
            Some(serde_json::json!("gas"))
        );
        assert!(Mapping::parse("[fields]\nkind = {}\n").is_err());
    }

    #[test]
    fn polygon_repairs_are_reported() {
        // Clockwise exterior: re-oriented, reported.
        let cw = Polygon::new(
            LineString::from(vec![(0., 0.), (0., 1.), (1., 1.), (1., 0.), (0., 0.)]),
            vec![],
        );
        let degenerate = Polygon::new(LineString::from(vec![(5., 5.), (5., 6.), (5., 5.)]), vec![]);
        let mut r = Vec::new();
        let m = repair_polygons(vec![cw, degenerate], &mut r).unwrap();
        assert_eq!(m.0.len(), 1);
        assert!(r.iter().any(|s| s.contains("re-oriented")), "{r:?}");
        assert!(r.iter().any(|s| s.contains("dropped")), "{r:?}");
    }
}
