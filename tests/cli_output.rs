//! What a script gets from the command line (issue 17 §4): logs on stderr without colour
//! when it is not a terminal, no PostgreSQL NOTICEs at the default level, and a key alone
//! on stdout from `keys create`. The real binary against a real PostGIS database.

use std::process::{Command, Output};

fn lifeline(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .output()
        .expect("run lifeline")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn scripts_read_results_from_stdout_and_logs_stay_on_stderr() {
    let name = format!("cli_output_{}", std::process::id());
    let url = lifeline_pgcluster::shared()
        .create_database(&name)
        .expect("create test database");
    // Twice: the second run meets every `IF NOT EXISTS`, which PostgreSQL answers with
    // NOTICEs ("… already exists, skipping").
    for _ in 0..2 {
        let out = lifeline(&url, &["migrate"]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(
            !stderr.contains("NOTICE") && !stderr.contains("already exists"),
            "a PostgreSQL NOTICE at the default level: {stderr}"
        );
        assert!(!stdout.contains("INFO"), "a log line on stdout: {stdout}");
        assert!(
            !stderr.contains('\u{1b}'),
            "colour codes on a pipe: {stderr:?}"
        );
    }

    let out = lifeline(
        &url,
        &["keys", "create", "--name", "script", "--role", "operator"],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    // `… | head -1` is the key, and nothing else is on stdout.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout:?}");
    assert!(
        lines[0].starts_with("ll_") && lines[0].len() == 43,
        "{stdout:?}"
    );
    assert!(stderr.contains("store it now"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes on a pipe: {stderr:?}"
    );

    // The key works: it is listed (by name, never the key itself).
    let out = lifeline(&url, &["keys", "list"]);
    let listed = text(&out.stdout);
    assert!(out.status.success());
    assert!(
        listed.contains("script") && !listed.contains(lines[0]),
        "{listed}"
    );
}
