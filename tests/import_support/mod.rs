//! Helpers shared by the import tests: the shipped mappings, the shared real data, PROJ's
//! command line as the outside judge, and GDAL's `ogr2ogr` to make source files.
#![allow(dead_code)]

use lifeline::io::import::{prepare, ImportOptions, Mapping, Report};
use lifeline::model::{Catalog, Layer};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A file of the shared data set.
pub fn shared(p: &str) -> PathBuf {
    super::app::shared_data_dir().join(p)
}

/// A shipped mapping file.
pub fn mapping(name: &str) -> Mapping {
    Mapping::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/mappings")
            .join(name),
    )
    .unwrap()
}

/// Read + convert only.
pub fn run(path: &Path, m: &Mapping, layer: Layer, s_srs: Option<&str>, gcj02: bool) -> Report {
    let opts = ImportOptions {
        layer,
        source_crs: s_srs.map(str::to_string),
        gcj02,
    };
    prepare(path, m, &opts, Catalog::builtin(), &mut |_, _| {}).unwrap()
}

/// `cs2cs` on one position, in the CRSs' own axis orders; CRSs may be PROJ strings.
pub fn cs2cs(from: &str, to: &str, a: f64, b: f64) -> (f64, f64) {
    cs2cs_many(from, to, &[(a, b)])[0]
}

/// `cs2cs` on many positions in one run.
pub fn cs2cs_many(from: &str, to: &str, pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut args: Vec<&str> = vec!["-f", "%.10f"];
    args.extend(from.split_whitespace());
    args.push("+to");
    args.extend(to.split_whitespace());
    // `+to` only separates PROJ strings; `cs2cs A B` takes two codes.
    let args: Vec<&str> = if from.starts_with('+') || to.starts_with('+') {
        args
    } else {
        vec!["-f", "%.10f", from, to]
    };
    use std::io::Write;
    let mut child = Command::new("cs2cs")
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = pts
        .iter()
        .map(|(a, b)| format!("{a:.10} {b:.10}\n"))
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| {
            let n: Vec<f64> = l
                .split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect();
            (n.len() >= 2).then(|| (n[0], n[1]))
        })
        .collect();
    assert_eq!(
        rows.len(),
        pts.len(),
        "cs2cs {from} -> {to}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    rows
}

/// Runs `ogr2ogr` with `args`; panics with its stderr if it fails.
pub fn ogr2ogr(args: &[&str]) {
    let out = Command::new("ogr2ogr").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ogr2ogr {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Metres between two lon/lat positions (local flat approximation; fine below 1 km).
pub fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    let k = 111_320.0;
    let dx = (a.0 - b.0) * k * a.1.to_radians().cos();
    let dy = (a.1 - b.1) * k;
    (dx * dx + dy * dy).sqrt()
}
