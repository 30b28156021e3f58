//! Resumable batch import (`--batch-size N --resume`) on both stores. A kill part-way is
//! simulated by a row that fails in strict mode: the batches before it are committed with
//! their progress, the failing batch is not; the row is then fixed in the source and the
//! import resumed, which must give exactly the rows of a one-transaction import — no
//! duplicates (the mapping has no id rule, so the store assigns ids and a re-inserted row
//! would show up twice) and none missing.

mod app;
mod import_support;

use app::{fresh_store, Backend};
use import_support::{mapping, ogr2ogr, shared};
use lifeline::io::import::{import, ImportError, ImportOptions, RunOptions};
use lifeline::model::{Actor, Layer};
use lifeline::store::import_jobs::ImportJobKey;
use lifeline::store::Store;
use std::path::Path;
use std::process::Command;

const BAD_ROW: usize = 1234;

/// Sets `stanet_std_type` of source row `row` (1-based, FID order) to `value`.
fn set_material(gpkg: &Path, row: usize, value: &str) {
    let sql = format!(
        "UPDATE gas_pipes SET stanet_std_type = '{value}' WHERE fid = \
         (SELECT fid FROM gas_pipes ORDER BY fid LIMIT 1 OFFSET {})",
        row - 1
    );
    let out = Command::new("ogrinfo")
        .arg(gpkg)
        .args(["-dialect", "SQLite", "-sql", &sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stored pipelines as sorted (first vertex, last vertex, diameter) keys.
async fn fingerprint(store: &dyn Store) -> Vec<(i64, i64, i64, i64, i64)> {
    let data = store.load_all().await.unwrap();
    let mut v: Vec<_> = data
        .pipelines
        .iter()
        .map(|p| {
            let (a, b) = (p.geometry.0[0], *p.geometry.0.last().unwrap());
            let k = |x: f64| (x * 1e7).round() as i64;
            (
                k(a.x),
                k(a.y),
                k(b.x),
                k(b.y),
                p.diameter_mm.unwrap_or(0.0) as i64,
            )
        })
        .collect();
    v.sort();
    v
}

async fn batch_import_resumes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("gas.gpkg");
    ogr2ogr(&[
        "-f",
        "GPKG",
        "-preserve_fid",
        src.to_str().unwrap(),
        shared("real/schutterwald_gas_gk3.gpkg").to_str().unwrap(),
        "gas_pipes",
    ]);
    let m = mapping("schutterwald_gas.toml");
    let opts = ImportOptions {
        layer: Layer::Pipelines,
        source_crs: None,
        gcj02: false,
    };
    let actor = Actor::cli();
    let batched = |resume| RunOptions {
        dry_run: false,
        strict: true,
        batch_size: Some(500),
        resume,
    };

    // The reference: the same file in one transaction.
    let (reference, _, _d1) = fresh_store(backend).await;
    let s = import(
        reference.as_ref(),
        &src,
        &m,
        &opts,
        &RunOptions::default(),
        &actor,
        Box::new(|_, _| {}),
    )
    .await
    .unwrap();
    assert_eq!(
        (s.report.accepted, s.commits, s.job.is_none()),
        (2559, 1, true)
    );
    let want = fingerprint(reference.as_ref()).await;
    assert_eq!(want.len(), 2559);

    // Row 1234 now carries a material outside the mapping's vocabulary.
    set_material(&src, BAD_ROW, "999 XX");
    // Strict in one transaction: the rows streamed before the bad one are rolled back.
    let (single, _, _d3) = fresh_store(backend).await;
    let strict_single = RunOptions {
        strict: true,
        ..RunOptions::default()
    };
    let err = import(
        single.as_ref(),
        &src,
        &m,
        &opts,
        &strict_single,
        &actor,
        Box::new(|_, _| {}),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ImportError::Strict { row: BAD_ROW, .. })
            && err.to_string().contains("nothing was written"),
        "{err}"
    );
    let counts = single.counts().await.unwrap();
    assert!(
        counts.iter().all(|(_, n)| *n == 0),
        "{backend:?}: {counts:?}"
    );

    let (store, _, _d2) = fresh_store(backend).await;
    let err = import(
        store.as_ref(),
        &src,
        &m,
        &opts,
        &batched(false),
        &actor,
        Box::new(|_, _| {}),
    )
    .await
    .unwrap_err();
    match &err {
        ImportError::Strict {
            row,
            reason,
            committed_batches,
            committed_through,
            ..
        } => {
            assert_eq!(
                (*row, *committed_batches, *committed_through),
                (BAD_ROW, 2, 1000)
            );
            assert!(reason.contains("999 XX"), "{reason}");
        }
        other => panic!("{backend:?}: {other}"),
    }
    assert!(err.to_string().contains("--resume"), "{err}");
    // Exactly the two committed batches are stored, and the job says so.
    let counts = store.counts().await.unwrap();
    assert!(
        counts.contains(&(Layer::Pipelines, 1000)),
        "{backend:?} {counts:?}"
    );
    let key = ImportJobKey {
        source: std::fs::canonicalize(&src).unwrap().display().to_string(),
        source_layer: "gas_pipes".into(),
        layer: Layer::Pipelines,
    };
    let job = store.import_job(&key).await.unwrap().expect("job recorded");
    assert_eq!(
        (job.last_row, job.batches, job.accepted, job.done),
        (1000, 2, 1000, false)
    );
    assert!(job.last_fid.is_some());

    // Running again without --resume is refused rather than importing twice.
    let again = import(
        store.as_ref(),
        &src,
        &m,
        &opts,
        &batched(false),
        &actor,
        Box::new(|_, _| {}),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(again, ImportError::Unfinished { last_row: 1000, .. }),
        "{again}"
    );

    // Fix the row and resume: rows 1001.. only, in four more batches.
    set_material(&src, BAD_ROW, "125 PE 100 SDR 11");
    let s = import(
        store.as_ref(),
        &src,
        &m,
        &opts,
        &batched(true),
        &actor,
        Box::new(|_, _| {}),
    )
    .await
    .unwrap();
    assert_eq!(s.resumed_after, 1000);
    assert_eq!((s.report.read, s.report.accepted), (1559, 1559));
    let job = s.job.unwrap();
    assert_eq!(
        (
            job.last_row,
            job.batches,
            job.accepted,
            job.rejected,
            job.done
        ),
        (2559, 6, 2559, 0, true)
    );
    assert_eq!(store.import_job(&key).await.unwrap().unwrap(), job);
    assert_eq!(fingerprint(store.as_ref()).await, want, "{backend:?}");

    // A finished job resumed again does nothing.
    let s = import(
        store.as_ref(),
        &src,
        &m,
        &opts,
        &batched(true),
        &actor,
        Box::new(|_, _| {}),
    )
    .await
    .unwrap();
    assert_eq!((s.commits, s.written), (0, 0));
    let counts = store.counts().await.unwrap();
    assert!(counts.contains(&(Layer::Pipelines, 2559)), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_import_resumes_on_geopackage() {
    batch_import_resumes(Backend::Gpkg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_import_resumes_on_postgis() {
    batch_import_resumes(Backend::Postgis).await;
}

/// The command line: a strict batch import stops with the row named and exit status 1,
/// `--resume` after the fix completes it.
#[test]
fn cli_batch_import_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("gas.gpkg");
    ogr2ogr(&[
        "-f",
        "GPKG",
        "-preserve_fid",
        src.to_str().unwrap(),
        shared("real/schutterwald_gas_gk3.gpkg").to_str().unwrap(),
        "gas_pipes",
    ]);
    set_material(&src, BAD_ROW, "999 XX");
    let store = dir.path().join("s.gpkg");
    let cli = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lifeline"))
            .arg("--gpkg")
            .arg(&store)
            .arg("import")
            .arg(&src)
            .args(["--layer", "pipelines", "--mapping"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mappings/schutterwald_gas.toml"))
            .args(["--strict", "--batch-size", "1000"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = cli(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("row 1234 rejected in strict mode") && err.contains("through source row 1000"),
        "{err}"
    );
    set_material(&src, BAD_ROW, "125 PE 100 SDR 11");
    let out = cli(&["--resume"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("resumed after source row 1000") && text.contains("through source row 2559"),
        "{text}"
    );
}
