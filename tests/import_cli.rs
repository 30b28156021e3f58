//! `lifeline import` for a new user, through the real binary (issue 17 §4): the target
//! layer taken from the mapping when `--layer` is not given; an import without a mapping
//! reading the columns named like the layer's fields (an exported file imported back, and
//! a hand-written GeoJSON with other letter case and a missing field); and
//! `--infer-mapping` writing a mapping that parses, on the real Schutterwald gas network
//! and on a survey file written here, which a dry run then reads.

mod app;
mod import_support;

use import_support::{run, shared};
use lifeline::io::gdal::read_layer;
use lifeline::io::import::Mapping;
use lifeline::model::Layer;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `lifeline --gpkg STORE ARGS…`.
fn lifeline(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .arg("--gpkg")
        .arg(store)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

/// stdout and stderr of a run that must succeed.
fn ok(out: Output) -> (String, String) {
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "stdout: {o}\nstderr: {e}");
    (o, e)
}

fn gas() -> String {
    shared("real/schutterwald_gas_gk3.gpkg")
        .to_string_lossy()
        .into_owned()
}

fn shipped(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/mappings")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The number in `text` right after `label` (e.g. "accepted 12").
fn count_after(text: &str, label: &str) -> usize {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no '{label}' in {text}"));
    text[at + label.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after '{label}' in {text}"))
}

/// Rows of the gas network's pipe layer, as GDAL counts them (the outside judge).
fn gas_rows() -> usize {
    read_layer(Path::new(&gas()), Some("gas_pipes"), None)
        .unwrap()
        .rows
        .len()
}

#[test]
fn the_layer_comes_from_the_mapping_and_one_is_needed_somewhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.gpkg");
    // The shipped gas mapping says `layer = "pipelines"`.
    let (out, _) = ok(lifeline(
        &store,
        &[
            "import",
            &gas(),
            "--mapping",
            &shipped("schutterwald_gas.toml"),
            "--dry-run",
        ],
    ));
    assert_eq!(count_after(&out, "read"), gas_rows(), "{out}");
    assert_eq!(count_after(&out, "accepted"), gas_rows(), "{out}");
    // Neither a layer nor a mapping: the error names both ways to give one.
    let out = lifeline(&store, &["import", &gas(), "--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--layer") && err.contains("--mapping"),
        "{err}"
    );
    assert!(!store.exists(), "a dry run must not create the store");
}

#[test]
fn an_exported_layer_imports_back_without_a_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.gpkg");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    ok(lifeline(
        &store,
        &[
            "import",
            &gas(),
            "--mapping",
            &shipped("schutterwald_gas.toml"),
        ],
    ));
    let first = dir.path().join("first.geojson");
    ok(lifeline(
        &store,
        &[
            "export",
            "--layer",
            "pipelines",
            "--format",
            "geojson",
            "-o",
            &s(&first),
        ],
    ));
    // Into the same store, whose owner 101 the rows refer to.
    let (out, err) = ok(lifeline(
        &store,
        &["import", &s(&first), "--layer", "pipelines"],
    ));
    let n = gas_rows();
    assert_eq!(count_after(&out, "accepted"), n, "{out}");
    assert_eq!(count_after(&out, "rejected"), 0, "{out}");
    // stderr names what was read: the exported file has every field the gas data sets.
    assert!(err.contains("no --mapping"), "{err}");
    for f in [
        "kind",
        "pressure_class",
        "material",
        "diameter_mm",
        "owner_id",
        "status",
    ] {
        assert!(err.contains(f), "{f} not reported: {err}");
    }
    // The store now holds each pipe twice, equal but for the id.
    let second = dir.path().join("second.geojson");
    ok(lifeline(
        &store,
        &[
            "export",
            "--layer",
            "pipelines",
            "--format",
            "geojson",
            "-o",
            &s(&second),
        ],
    ));
    let key = |r: &lifeline::io::gdal::SourceRow| {
        let f = &r.fields;
        format!(
            "{} {} {} {} {} {}",
            f["kind"],
            f["pressure_class"],
            f["material"],
            f["diameter_mm"],
            f["owner_id"],
            f["status"]
        )
    };
    let mut once: Vec<String> = read_layer(&first, None, None)
        .unwrap()
        .rows
        .iter()
        .map(key)
        .collect();
    let mut twice: Vec<String> = read_layer(&second, None, None)
        .unwrap()
        .rows
        .iter()
        .map(key)
        .collect();
    assert_eq!(twice.len(), 2 * once.len());
    once.extend(once.clone());
    once.sort();
    twice.sort();
    assert_eq!(once, twice);
}

/// A FeatureCollection of lines near Chongqing with these properties.
fn geojson(props: &[serde_json::Value]) -> String {
    let features: Vec<serde_json::Value> = props
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let x = 106.5 + i as f64 * 0.001;
            json!({"type": "Feature", "properties": p,
                   "geometry": {"type": "LineString", "coordinates": [[x, 29.5], [x + 0.0005, 29.5005]]}})
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features}).to_string()
}

#[test]
fn without_a_mapping_names_match_ignoring_case_and_missing_fields_reject_rows() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("pipes.geojson");
    std::fs::write(
        &src,
        geojson(&[
            json!({"Kind": "water_supply", "STATUS": "in_service", "owner_id": 7, "Diameter_MM": 300.0, "colour": "blue"}),
            json!({"Kind": "gas", "STATUS": "planned", "owner_id": 7, "Diameter_MM": 160.0, "colour": "yellow"}),
            json!({"Kind": null, "STATUS": "planned", "owner_id": 7, "Diameter_MM": 110.0, "colour": "yellow"}),
        ]),
    )
    .unwrap();
    let store = dir.path().join("s.gpkg");
    let (out, err) = ok(lifeline(
        &store,
        &[
            "import",
            src.to_str().unwrap(),
            "--layer",
            "pipelines",
            "--dry-run",
        ],
    ));
    assert!(err.contains("kind (from 'Kind')"), "{err}");
    assert!(err.contains("status (from 'STATUS')"), "{err}");
    assert!(err.contains("diameter_mm (from 'Diameter_MM')"), "{err}");
    // Schema fields the file lacks are named; `colour` is no field and is not read.
    assert!(
        err.contains("no column for") && err.contains("material"),
        "{err}"
    );
    assert!(!err.contains("colour"), "{err}");
    assert_eq!(count_after(&out, "read"), 3, "{out}");
    assert_eq!(count_after(&out, "accepted"), 2, "{out}");
    assert_eq!(count_after(&out, "rejected"), 1, "{out}");
    assert!(
        out.contains("row      3") && out.contains("missing field `kind`"),
        "{out}"
    );
    // A required field no column has: said up front, and every row is rejected for it.
    let bare = dir.path().join("bare.geojson");
    std::fs::write(
        &bare,
        geojson(&[
            json!({"kind": "gas", "status": "in_service"}),
            json!({"kind": "power", "status": "planned"}),
        ]),
    )
    .unwrap();
    let (out, err) = ok(lifeline(
        &store,
        &[
            "import",
            bare.to_str().unwrap(),
            "--layer",
            "pipelines",
            "--dry-run",
        ],
    ));
    assert!(err.contains("required field(s) owner_id"), "{err}");
    assert_eq!(count_after(&out, "rejected"), 2, "{out}");
    assert!(out.contains("missing field `owner_id`"), "{out}");
    assert!(!store.exists());
}

/// Runs `--infer-mapping` and parses its stdout as a mapping.
fn infer(store: &Path, file: &str, extra: &[&str]) -> (String, Mapping, String) {
    let mut args = vec!["import", file, "--infer-mapping"];
    args.extend_from_slice(extra);
    let (text, err) = ok(lifeline(store, &args));
    let m = Mapping::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, m, err)
}

#[test]
fn inferred_mapping_of_the_gas_network_parses_and_reads_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.gpkg");
    let (text, m, err) = infer(&store, &gas(), &[]);
    assert_eq!(m.layer, Some(Layer::Pipelines), "{text}");
    assert_eq!(m.source_layer.as_deref(), Some("gas_pipes"));
    assert_eq!(m.source_crs.as_deref(), Some("EPSG:31467"), "{text}");
    assert!(text.contains("DHDN"), "the CRS name: {text}");
    assert!(text.contains("guessed"), "{text}");
    // `diameter_m` is the diameter in metres.
    let d = &m.fields["diameter_mm"];
    assert_eq!(
        (d.from.as_deref(), d.scale),
        (Some("diameter_m"), Some(1000.0))
    );
    // The unread columns are listed with samples; `kind`'s vocabulary is offered.
    assert!(
        text.contains("\"stanet_std_type\": \"125 PE 100 SDR 11\""),
        "{text}"
    );
    assert!(text.contains("# kind = "), "{text}");
    assert!(text.contains("water_supply, drainage, gas"), "{text}");
    assert!(
        err.contains("kind") && err.contains("owner_id") && err.contains("status"),
        "{err}"
    );
    assert!(!store.exists());
    // As inferred it reads every row (each rejected for the required fields still to
    // fill in); with them filled in — appended to the trailing [fields] table, as a data
    // keeper would — every row is accepted.
    let map = dir.path().join("gas.toml");
    std::fs::write(&map, &text).unwrap();
    let args = [
        "import",
        &gas(),
        "--mapping",
        map.to_str().unwrap(),
        "--dry-run",
    ];
    let (out, _) = ok(lifeline(&store, &args));
    let n = gas_rows();
    assert_eq!(count_after(&out, "read"), n, "{out}");
    assert_eq!(count_after(&out, "rejected"), n, "{out}");
    std::fs::write(
        &map,
        format!(
            "{text}\nkind = {{ value = \"gas\" }}\nowner_id = {{ value = 101 }}\n\
             status = {{ value = \"in_service\" }}\n"
        ),
    )
    .unwrap();
    let (out, _) = ok(lifeline(&store, &args));
    assert_eq!(count_after(&out, "accepted"), n, "{out}");
}

#[test]
fn inferred_mapping_of_a_survey_file_matches_synonyms_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("survey.geojson");
    let rows = [
        json!({"kind": "drainage", "sub_kind": "storm", "Status": "in_service", "owner_id": 3, "DN": 600, "Material": "concrete", "depth": 2.5, "survey_code": "A-1"}),
        json!({"kind": "drainage", "sub_kind": "sewage", "Status": "in_service", "owner_id": 3, "DN": 400, "Material": "PVC", "depth": 1.8, "survey_code": "A-2"}),
        json!({"kind": "water_supply", "Status": "planned", "owner_id": 4, "DN": 300, "Material": "ductile iron", "depth": 1.2, "survey_code": "B-7"}),
    ];
    std::fs::write(&src, geojson(&rows)).unwrap();
    let store = dir.path().join("s.gpkg");
    let file = src.to_str().unwrap();
    let (text, m, _) = infer(&store, file, &[]);
    assert_eq!(m.layer, Some(Layer::Pipelines), "{text}");
    // GeoJSON is WGS 84 unless it says otherwise.
    assert_eq!(m.source_crs.as_deref(), Some("EPSG:4326"), "{text}");
    let from = |f: &str| m.fields.get(f).and_then(|r| r.from.clone());
    assert_eq!(from("kind").as_deref(), Some("kind"));
    assert_eq!(from("status").as_deref(), Some("Status"));
    assert_eq!(from("diameter_mm").as_deref(), Some("DN"));
    assert_eq!(from("material").as_deref(), Some("Material"));
    assert_eq!(from("depth_start_m").as_deref(), Some("depth"));
    assert!(!m
        .fields
        .values()
        .any(|r| r.from.as_deref() == Some("survey_code")));
    // Samples of each column, and the unread column at the end.
    assert!(
        text.contains("\"concrete\", \"PVC\", \"ductile iron\""),
        "{text}"
    );
    assert!(
        text.contains("\"survey_code\": \"A-1\", \"A-2\", \"B-7\""),
        "{text}"
    );
    // A given layer is not a guess.
    let (text, m, _) = infer(&store, file, &["--layer", "pipelines"]);
    assert!(!text.contains("guessed"), "{text}");
    assert_eq!(m.layer, Some(Layer::Pipelines));
    // The inferred mapping imports every row through the command line...
    let map = dir.path().join("survey.toml");
    std::fs::write(&map, &text).unwrap();
    let (out, _) = ok(lifeline(
        &store,
        &[
            "import",
            file,
            "--mapping",
            map.to_str().unwrap(),
            "--dry-run",
        ],
    ));
    assert_eq!(count_after(&out, "accepted"), rows.len(), "{out}");
    assert_eq!(count_after(&out, "rejected"), 0, "{out}");
    // ... with the values where the matches said.
    let r = run(&src, &m, Layer::Pipelines, None, false);
    let got: Vec<(Option<f64>, Option<f64>, Option<String>)> = r
        .data
        .pipelines
        .iter()
        .map(|p| (p.diameter_mm, p.depth_start_m, p.material.clone()))
        .collect();
    let want: Vec<(Option<f64>, Option<f64>, Option<String>)> = rows
        .iter()
        .map(|p| {
            (
                p["DN"].as_f64(),
                p["depth"].as_f64(),
                p["Material"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(got, want);
}
