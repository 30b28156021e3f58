//! Named statements in `.sql` files: each statement follows a `-- name: <name>` line and
//! runs to the next one. Every store module keeps its SQL in such a file (included at
//! compile time) and looks statements up by name with a function made by [`named_sql!`].
//!
//! Also [`statements`]: a script (a migration) split into its statements, for Citus,
//! which refuses DDL on distributed tables sent as several commands in one query string.

use std::collections::HashMap;

/// Splits a SQL script into its statements at the top-level `;`s, each trimmed, empty ones
/// left out. The split follows PostgreSQL's lexical rules (comments, quoted strings and
/// identifiers, `$tag$` bodies of functions and `DO` blocks) through sqlparser's tokenizer,
/// so a `;` inside any of them does not split. Errors name what the tokenizer could not
/// read (an unterminated string, say).
pub(crate) fn statements(script: &str) -> Result<Vec<&str>, String> {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, script)
        .tokenize_with_location()
        .map_err(|e| e.to_string())?;
    // Byte offset of each line's start, to turn (line, column in chars) into byte offsets.
    let mut line_starts = vec![0usize];
    line_starts.extend(script.match_indices('\n').map(|(i, _)| i + 1));
    let offset = |line: u64, column: u64| -> usize {
        let start = line_starts
            .get((line as usize).saturating_sub(1))
            .copied()
            .unwrap_or(script.len());
        script[start..]
            .char_indices()
            .nth((column as usize).saturating_sub(1))
            .map_or(script.len(), |(i, _)| start + i)
    };
    let mut out = Vec::new();
    let mut from = 0;
    for t in tokens.iter().filter(|t| t.token == Token::SemiColon) {
        let at = offset(t.span.start.line, t.span.start.column);
        out.push(script[from..at].trim());
        from = at + 1;
    }
    out.push(script[from..].trim());
    // A piece holding only comments is no statement.
    out.retain(|s| {
        s.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
    });
    Ok(out)
}

/// Splits a statements file into `name → statement` (the text after each `-- name:` line
/// up to the next one, trimmed).
pub(crate) fn sections(text: &'static str) -> HashMap<&'static str, &'static str> {
    const MARK: &str = "-- name:";
    let mut out = HashMap::new();
    let mut rest = text;
    while let Some(start) = rest.find(MARK) {
        let after = &rest[start + MARK.len()..];
        let (name, body) = after.split_once('\n').unwrap_or((after, ""));
        let end = body.find(MARK).unwrap_or(body.len());
        out.insert(name.trim(), body[..end].trim());
        rest = &body[end..];
    }
    out
}

/// Defines `fn $name(statement: &str) -> &'static str` over a statements file's text
/// (pass `include_str!("…sql")`, so the path is relative to the calling module). The file
/// is split once; an unknown name is a bug in the code, so it panics naming the file.
macro_rules! named_sql {
    ($vis:vis fn $name:ident = $file:literal, $text:expr) => {
        $vis fn $name(statement: &str) -> &'static str {
            static Q: std::sync::OnceLock<std::collections::HashMap<&'static str, &'static str>> =
                std::sync::OnceLock::new();
            Q.get_or_init(|| $crate::sqlfile::sections($text))
                .get(statement)
                .copied()
                .unwrap_or_else(|| panic!("{} has no statement '{statement}'", $file))
        }
    };
}
pub(crate) use named_sql;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_name_lines() {
        let q = sections("-- header\n-- name: a\nSELECT 1;\n\n-- name: b \nSELECT\n  2;\n");
        assert_eq!(q.len(), 2);
        assert_eq!(q["a"], "SELECT 1;");
        assert_eq!(q["b"], "SELECT\n  2;");
    }

    #[test]
    fn scripts_split_at_top_level_semicolons_only() {
        let script = "-- a comment; with a semicolon\nCREATE TABLE t (x text DEFAULT 'a;b');\n\
            CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  \
            PERFORM pg_notify('c', 'é;');\n  RETURN NULL;\nEND\n$$;\n\
            /* block; comment */ SELECT \"odd;name\" FROM t;\n-- trailing comment\n";
        let s = statements(script).unwrap();
        assert_eq!(s.len(), 3, "{s:#?}");
        assert!(s[0].ends_with("DEFAULT 'a;b')"), "{}", s[0]);
        assert!(
            s[1].starts_with("CREATE FUNCTION") && s[1].ends_with("$$"),
            "{}",
            s[1]
        );
        assert!(s[1].contains("'é;'"));
        assert!(s[2].ends_with("FROM t"), "{}", s[2]);
        assert!(statements("SELECT 'open").is_err());
    }

    #[test]
    fn every_migration_splits_into_statements_that_rejoin_to_it() {
        for m in crate::postgis::MIGRATIONS {
            let s = statements(m.sql).unwrap_or_else(|e| panic!("{}: {e}", m.name));
            assert!(!s.is_empty(), "{}", m.name);
            // Nothing is lost: every statement's text is in the script, in order.
            let mut at = 0;
            for st in &s {
                let i = m.sql[at..]
                    .find(st)
                    .unwrap_or_else(|| panic!("{}: {st}", m.name));
                at += i + st.len();
            }
        }
    }

    named_sql!(fn demo = "demo.sql", "-- name: one\nSELECT 1");

    #[test]
    fn the_macro_finds_statements_and_names_the_file_when_not() {
        assert_eq!(demo("one"), "SELECT 1");
        let e = std::panic::catch_unwind(|| demo("two")).unwrap_err();
        let msg = e.downcast_ref::<String>().unwrap();
        assert!(msg.contains("demo.sql") && msg.contains("'two'"), "{msg}");
    }
}
