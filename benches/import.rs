//! Import throughput (issue 6): the preset's pipelines are exported to a GeoPackage (as
//! `lifeline export` writes it), then imported back through the real import path —
//! GDAL read on one thread, mapping + validation on worker threads, writing overlapped —
//! into a fresh GeoPackage store and a fresh PostGIS database (binary COPY). Prints one
//! line per measure; stages are timed on their own too (read + convert only, and
//! `Store::bulk_load` of the converted records). `LIFELINE_BENCH_PRESET` (default
//! `jiulongpo`; `city` is what the goals are stated for). Optional argument: `gpkg` or
//! `postgis` to run one store only.
//! Run: `LIFELINE_BENCH_PRESET=city cargo bench --bench import`.

use lifeline::generate::bench_dataset;
use lifeline::io::gdal::{write_features, OutFeature, OutFormat};
use lifeline::io::import::{import, prepare, ImportOptions, Mapping, RunOptions};
use lifeline::model::{feature::to_feature, Actor, Catalog, Dataset, Layer, Record, Role};
use std::path::Path;
use std::time::Instant;

/// CPU seconds this process has used: (user + system, system), from `/proc/self/stat`. On
/// a shared machine the CPU a stage costs is steadier than its wall time.
fn cpu_times() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let secs = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    // Fields 14 and 15 of the line (utime, stime) are 12 and 13 after the command name.
    (secs(11) + secs(12), secs(12))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

const FIELDS: [&str; 17] = [
    "id",
    "kind",
    "sub_kind",
    "pressure_class",
    "voltage_kv",
    "material",
    "diameter_mm",
    "depth_start_m",
    "depth_end_m",
    "burial",
    "owner_id",
    "year_built",
    "survey_date",
    "plan_accuracy_cm",
    "depth_accuracy_cm",
    "quality_level",
    "status",
];

fn mapping() -> Mapping {
    let text: String = std::iter::once("[fields]\n".to_string())
        .chain(
            FIELDS
                .iter()
                .map(|f| format!("{f} = {{ from = \"{f}\" }}\n")),
        )
        .collect();
    Mapping::parse(&text).unwrap()
}

fn opts() -> ImportOptions {
    ImportOptions {
        layer: Layer::Pipelines,
        source_crs: None,
        gcj02: false,
    }
}

async fn end_to_end(name: &str, url: &str, url2: &str, owners: &Dataset, gpkg: &Path, n: usize) {
    let store = lifeline::store::open(url, 4).await.unwrap();
    store.bulk_load(owners, &Actor::cli()).await.unwrap();
    let (t, (cpu, sys)) = (Instant::now(), cpu_times());
    let s = import(
        store.as_ref(),
        gpkg,
        &mapping(),
        &opts(),
        &RunOptions::default(),
        &Actor::cli(),
        Box::new(|_, _| {}),
    )
    .await
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        s.report.accepted,
        n,
        "{:?}",
        &s.report.issues[..3.min(s.report.issues.len())]
    );
    let (cpu_now, sys_now) = cpu_times();
    println!(
        "import end to end into {name} (one transaction): {n} features in {secs:.2} s = {:.0} features/s, {:.2} CPU s in this process ({:.2} s system) (load {})",
        n as f64 / secs,
        cpu_now - cpu,
        sys_now - sys,
        load_average()
    );
    if std::env::var_os("LIFELINE_BENCH_END_TO_END_ONLY").is_some() {
        return;
    }
    // The converted records once more, to time the store's part alone.
    let report = prepare(
        gpkg,
        &mapping(),
        &opts(),
        Catalog::builtin(),
        &mut |_, _| {},
    )
    .unwrap();
    drop(store);
    let store2 = lifeline::store::open(url2, 4).await.unwrap();
    store2.bulk_load(owners, &Actor::cli()).await.unwrap();
    let t = Instant::now();
    store2.bulk_load(&report.data, &Actor::cli()).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  Store::bulk_load alone into {name} (records already converted): {secs:.2} s = {:.0} features/s",
        n as f64 / secs
    );
}

fn main() {
    let only = std::env::args()
        .skip(1)
        .find(|a| a == "gpkg" || a == "postgis");
    println!("load average at start: {}", load_average());
    let (data, preset) = bench_dataset();
    let owners = Dataset {
        owners: data.owners.clone(),
        ..Dataset::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let gpkg = dir.path().join("pipes.gpkg");
    let features: Vec<OutFeature> = data
        .pipelines
        .iter()
        .map(|p| {
            let rec = Record::Pipeline(p.clone());
            let f = to_feature(&rec, Role::Admin);
            OutFeature {
                id: p.id,
                props: f["properties"].as_object().cloned().unwrap_or_default(),
                geometry: rec.geometry(),
            }
        })
        .collect();
    let n = features.len();
    drop(data);
    let t = Instant::now();
    write_features(
        &gpkg,
        Layer::Pipelines,
        &features,
        "EPSG:4490",
        OutFormat::GeoPackage,
    )
    .unwrap();
    drop(features);
    println!(
        "{preset}: exported {n} pipelines to GeoPackage in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // `LIFELINE_BENCH_END_TO_END_ONLY=1`: only the end-to-end imports (for profiling).
    if std::env::var_os("LIFELINE_BENCH_END_TO_END_ONLY").is_none() {
        let (t, (cpu, _)) = (Instant::now(), cpu_times());
        let report = prepare(
            &gpkg,
            &mapping(),
            &opts(),
            Catalog::builtin(),
            &mut |_, _| {},
        )
        .unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(report.accepted, n);
        println!(
            "read + map + validate (GDAL reader thread, converting workers): {secs:.2} s = {:.0} features/s, {:.2} CPU s (load {})",
            n as f64 / secs,
            cpu_times().0 - cpu,
            load_average()
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if only.as_deref() != Some("postgis") {
            let url = dir.path().join("store.gpkg").display().to_string();
            let url2 = dir.path().join("store2.gpkg").display().to_string();
            end_to_end("GeoPackage", &url, &url2, &owners, &gpkg, n).await;
        }
        if only.as_deref() != Some("gpkg") {
            let cluster = lifeline_pgcluster::shared();
            let url = cluster.fresh_database("bench_import").unwrap();
            let url2 = cluster.fresh_database("bench_import").unwrap();
            end_to_end("PostGIS", &url, &url2, &owners, &gpkg, n).await;
        }
    });
    println!("load average at end: {}", load_average());
}
