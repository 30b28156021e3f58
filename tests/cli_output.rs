//! What a script gets from the command line (issues 17 §4 and 22): logs on stderr without
//! colour when it is not a terminal, no PostgreSQL NOTICEs at the default level, a key
//! alone on stdout from `keys create`; with the global `--json` exactly one JSON document
//! on stdout whose values agree from one command to the next; `--quiet` and `--verbose`;
//! and a failing command that prints nothing on stdout and exits non-zero. The real binary
//! against a real PostGIS database and against a GeoPackage file.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// The store flags of one back end.
fn store_flags(url: &str) -> [&str; 2] {
    ["--database-url", url]
}

fn lifeline(store: &[&str], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .args(store)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run lifeline")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// stdout and stderr of a run that must succeed, neither with colour codes.
fn ok(out: Output) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        !stdout.contains('\u{1b}'),
        "colour codes on stdout: {stdout:?}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes on stderr: {stderr:?}"
    );
    (stdout, stderr)
}

/// Runs a command with `--json` that must succeed: stdout is exactly one JSON document
/// (`from_str` refuses anything after it), returned with stderr.
fn json(store: &[&str], args: &[&str]) -> (Value, String) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (stdout, stderr) = ok(lifeline(store, &all));
    let value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout of {args:?} is not one JSON document ({e}): {stdout}"));
    (value, stderr)
}

/// A command that must fail: status 1, nothing on stdout, its message on stderr.
fn fails(store: &[&str], args: &[&str], message: &str) {
    let out = lifeline(store, args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}{stderr}");
    assert!(stdout.is_empty(), "{args:?} printed on stdout: {stdout}");
    assert!(stderr.contains(message), "{args:?}: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes on stderr: {stderr:?}"
    );
}

fn uint(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no count at {path} in {v}"))
}

fn repo_file(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn scripts_read_results_from_stdout_and_logs_stay_on_stderr() {
    let name = format!("cli_output_{}", std::process::id());
    let url = lifeline_pgcluster::shared()
        .create_database(&name)
        .expect("create test database");
    let store = store_flags(&url);
    // Twice: the second run meets every `IF NOT EXISTS`, which PostgreSQL answers with
    // NOTICEs ("… already exists, skipping").
    for _ in 0..2 {
        let (stdout, stderr) = ok(lifeline(&store, &["migrate"]));
        assert!(
            !stderr.contains("NOTICE") && !stderr.contains("already exists"),
            "a PostgreSQL NOTICE at the default level: {stderr}"
        );
        assert!(!stdout.contains("INFO"), "a log line on stdout: {stdout}");
    }

    let (stdout, stderr) = ok(lifeline(
        &store,
        &["keys", "create", "--name", "script", "--role", "operator"],
    ));
    // `… | head -1` is the key, and nothing else is on stdout.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout:?}");
    assert!(
        lines[0].starts_with("ll_") && lines[0].len() == 43,
        "{stdout:?}"
    );
    assert!(stderr.contains("store it now"), "{stderr}");

    // The key works: it is listed (by name, never the key itself).
    let (listed, _) = ok(lifeline(&store, &["keys", "list"]));
    assert!(
        listed.contains("script") && !listed.contains(lines[0]),
        "{listed}"
    );
}

#[test]
fn json_results_quiet_and_verbose_on_postgis() {
    let cluster = lifeline_pgcluster::shared();
    let url = cluster
        .fresh_database("cli_json")
        .expect("create test database");
    let other = cluster
        .fresh_database("cli_json_import")
        .expect("create test database");
    let dir = tempfile::tempdir().expect("temp dir");
    every_command(&store_flags(&url), &store_flags(&other), dir.path());
}

#[test]
fn json_results_quiet_and_verbose_on_geopackage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gpkg = dir.path().join("store.gpkg").to_string_lossy().into_owned();
    let other = dir.path().join("other.gpkg").to_string_lossy().into_owned();
    every_command(&["--gpkg", &gpkg], &["--gpkg", &other], dir.path());

    // A check that finds an error prints its report all the same, then exits 1: a
    // micro-grid cell made a child of the district (a hierarchy error no foreign key
    // stops), written behind the store's back.
    let db = rusqlite::Connection::open(&gpkg).expect("open the GeoPackage");
    // The GeoPackage's R-tree triggers name these functions, so SQLite wants them to
    // prepare any UPDATE of the table; changing no id or geometry, none of them runs.
    for name in ["ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"] {
        db.create_scalar_function(
            name,
            1,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8,
            |_| Ok(0i64),
        )
        .expect("register a stand-in");
    }
    let changed = db
        .execute(
            "UPDATE grid_cells SET parent_id = (SELECT id FROM grid_cells WHERE level = 'district') \
             WHERE id = (SELECT min(id) FROM grid_cells WHERE level = 'micro_grid')",
            [],
        )
        .expect("break the hierarchy");
    assert_eq!(changed, 1);
    drop(db);
    let out = lifeline(&["--gpkg", &gpkg], &["check", "--json"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert!(
        report["problems"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["kind"] == "hierarchy")),
        "{report}"
    );
    assert!(stderr.contains("1 error"), "{stderr}");
}

/// Each command that prints a result, with `--json`, against one store (and an import
/// into `other`, an empty one); the values of one agree with those of the others.
fn every_command(store: &[&str], other: &[&str], dir: &Path) {
    let path = |name: &str| -> String { dir.join(name).to_string_lossy().into_owned() };

    // migrate: a positive schema version; `--quiet` says nothing on stderr; `-v` logs at
    // DEBUG. `--quiet --verbose` is a usage error (clap's status 2), also reported on
    // stderr only.
    let (migrated, _) = json(store, &["migrate"]);
    assert!(uint(&migrated, "/schema_version") > 0, "{migrated}");
    assert!(migrated["store"].is_string(), "{migrated}");
    let (stdout, stderr) = ok(lifeline(store, &["--quiet", "migrate"]));
    assert!(stderr.is_empty(), "--quiet, yet: {stderr}");
    assert!(stdout.contains("schema at version"), "{stdout}");
    let (_, stderr) = ok(lifeline(store, &["migrate", "-v"]));
    assert!(
        stderr.contains("DEBUG"),
        "-v without a DEBUG line: {stderr}"
    );
    let out = lifeline(store, &["migrate", "--quiet", "--verbose"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty() && !out.stderr.is_empty());

    // generate: quiet (no progress bars, no note), the counts in the result, the data set
    // in the `--out` file.
    let set = path("demo.json");
    let (stdout, stderr) = ok(lifeline(
        store,
        &[
            "-q", "--json", "generate", "--preset", "demo", "--out", &set,
        ],
    ));
    assert!(stderr.is_empty(), "--quiet, yet: {stderr}");
    let generated: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(generated["preset"], "demo", "{generated}");
    assert_eq!(generated["skipped"], false, "{generated}");
    assert_eq!(
        generated["file"].as_str(),
        Some(set.as_str()),
        "{generated}"
    );
    let pipelines = uint(&generated, "/generated/pipelines");
    let records = uint(&generated, "/generated/records");
    assert!(pipelines > 0 && records > pipelines, "{generated}");
    // The store was empty, so it now holds what was generated.
    for layer in [
        "pipelines",
        "risk_points",
        "grid_cells",
        "sensors",
        "owners",
    ] {
        assert_eq!(
            uint(&generated, &format!("/store/counts/{layer}")),
            uint(&generated, &format!("/generated/{layer}")),
            "{layer}: {generated}"
        );
    }
    assert!(uint(&generated, "/store/change_version") > 0, "{generated}");
    let file: Value =
        serde_json::from_slice(&std::fs::read(&set).expect("the --out file")).expect("JSON");
    assert!(file.is_object(), "the data set file");
    // With data in the store, `--if-empty` skips, and says so in the result.
    let (skipped, _) = json(store, &["generate", "--if-empty"]);
    assert_eq!(skipped["skipped"], true, "{skipped}");
    assert!(skipped["generated"].is_null(), "{skipped}");

    // check: the same records, no errors, status 0.
    let (checked, _) = json(store, &["check"]);
    assert_eq!(uint(&checked, "/records"), records, "{checked}");
    assert!(checked["problems"].is_array(), "{checked}");

    // export: `written` is what the file holds, and every generated pipeline.
    let exported_file = path("pipes.geojson");
    let (exported, _) = json(
        store,
        &[
            "export",
            "--layer",
            "pipelines",
            "--format",
            "geojson",
            "-o",
            &exported_file,
        ],
    );
    assert_eq!(uint(&exported, "/written"), pipelines, "{exported}");
    assert_eq!(exported["layer"], "pipelines", "{exported}");
    assert_eq!(exported["format"], "geojson", "{exported}");
    assert_eq!(exported["crs"], "EPSG:4490", "{exported}");
    assert_eq!(
        exported["file"].as_str(),
        Some(exported_file.as_str()),
        "{exported}"
    );
    let features: Value =
        serde_json::from_slice(&std::fs::read(&exported_file).expect("the exported file"))
            .expect("GeoJSON");
    assert_eq!(
        features["features"].as_array().map(Vec::len),
        Some(pipelines as usize)
    );

    // keys: the created key is listed by id and name, never the key itself; revoked, it
    // says when.
    let (created, stderr) = json(
        store,
        &["keys", "create", "--name", "robot", "--role", "analyst"],
    );
    assert!(
        stderr.contains("store it now"),
        "the hint goes to stderr: {stderr}"
    );
    let key = created["key"].as_str().expect("the key").to_string();
    assert!(key.starts_with("ll_"), "{created}");
    assert_eq!(created["name"], "robot");
    assert_eq!(created["role"], "analyst");
    let id = created["id"].as_i64().expect("the id");
    let (stdout, _) = ok(lifeline(store, &["--json", "keys", "list"]));
    assert!(!stdout.contains(&key), "the key is listed: {stdout}");
    let listed: Value = serde_json::from_str(&stdout).expect("one JSON document");
    let mine = listed
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["id"].as_i64() == Some(id)))
        .unwrap_or_else(|| panic!("key {id} not listed: {listed}"));
    assert_eq!(mine["name"], "robot");
    assert_eq!(mine["role"], "analyst");
    assert!(mine["revoked_at"].is_null(), "{mine}");
    assert!(mine.get("key").is_none() && mine.get("key_hash").is_none());
    let created_at = mine["created_at"].as_str().expect("created_at");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok(),
        "{created_at}"
    );
    let (revoked, _) = json(store, &["keys", "revoke", "--id", &id.to_string()]);
    assert_eq!(revoked, serde_json::json!({ "revoked": id }));
    let (listed, _) = json(store, &["keys", "list"]);
    let mine = listed
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["id"].as_i64() == Some(id)))
        .expect("still listed");
    assert!(mine["revoked_at"].is_string(), "{mine}");

    // import: a mapping inferred as JSON, a dry run, then the import itself, of the
    // district outlines shipped in data/ (into a store of their own: the demo already has
    // its district).
    let districts = repo_file("data/chongqing_districts.geojson");
    let (inferred, _) = json(
        store,
        &[
            "import",
            &districts,
            "--infer-mapping",
            "--layer",
            "grid_cells",
        ],
    );
    assert_eq!(inferred["layer"], "grid_cells", "{inferred}");
    assert!(
        inferred["mapping"]
            .as_str()
            .is_some_and(|m| m.contains("[fields]")),
        "{inferred}"
    );
    let mapping = repo_file("data/mappings/districts_gcj02.toml");
    let (dry, _) = json(
        store,
        &["import", &districts, "--mapping", &mapping, "--dry-run"],
    );
    assert_eq!(dry["outcome"]["kind"], "dry_run", "{dry}");
    let read = uint(&dry, "/read");
    assert!(read > 0, "{dry}");
    assert_eq!(
        uint(&dry, "/accepted") + uint(&dry, "/rejected"),
        read,
        "{dry}"
    );
    let (imported, _) = json(other, &["-q", "import", &districts, "--mapping", &mapping]);
    assert_eq!(imported["outcome"]["kind"], "one_transaction", "{imported}");
    assert_eq!(
        uint(&imported, "/outcome/records"),
        uint(&dry, "/accepted"),
        "{imported}"
    );
    assert_eq!(imported["layer"], "grid_cells", "{imported}");

    // tiles export: the archive's counts.
    let archive = path("demo.pmtiles");
    let (tiles, _) = json(
        store,
        &[
            "tiles",
            "export",
            "--minzoom",
            "14",
            "--maxzoom",
            "14",
            &archive,
        ],
    );
    assert!(uint(&tiles, "/tiles_written") > 0, "{tiles}");
    assert_eq!(
        uint(&tiles, "/file_bytes"),
        std::fs::metadata(&archive).expect("the archive").len(),
        "{tiles}"
    );

    // Failures: status 1, nothing on stdout, the reason on stderr.
    fails(
        store,
        &[
            "--json",
            "export",
            "--layer",
            "nosuch",
            "--format",
            "geojson",
            "-o",
            &path("x.geojson"),
        ],
        "nosuch",
    );
    fails(
        store,
        &["--json", "keys", "revoke", "--id", "999999"],
        "no active key 999999",
    );
}
