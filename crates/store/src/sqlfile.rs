//! Named statements in `.sql` files: each statement follows a `-- name: <name>` line and
//! runs to the next one. Every store module keeps its SQL in such a file (included at
//! compile time) and looks statements up by name with a function made by [`named_sql!`].

use std::collections::HashMap;

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

    named_sql!(fn demo = "demo.sql", "-- name: one\nSELECT 1");

    #[test]
    fn the_macro_finds_statements_and_names_the_file_when_not() {
        assert_eq!(demo("one"), "SELECT 1");
        let e = std::panic::catch_unwind(|| demo("two")).unwrap_err();
        let msg = e.downcast_ref::<String>().unwrap();
        assert!(msg.contains("demo.sql") && msg.contains("'two'"), "{msg}");
    }
}
