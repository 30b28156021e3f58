//! Property tests of the excavation rule parsers (a data keeper's TOML, issue 17 §3): the
//! clearance rules (`Rules::parse`) and the settings (`Excavation::parse`). Any text, and
//! the shipped files with random lines deleted, doubled or given random values, give rules
//! or a clear error and never panic; the shipped files themselves parse.

use lifeline_excavation::{Excavation, Rules};
use proptest::prelude::*;

const CLEARANCES: &str = include_str!("../../../data/rules/clearances.toml");
const SETTINGS: &str = include_str!("../../../data/excavation.toml");

/// 256 cases per property unless PROPTEST_CASES says otherwise.
fn config() -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = match std::env::var("PROPTEST_CASES") {
        Ok(_) => base.cases,
        Err(_) => 256,
    };
    ProptestConfig { cases, ..base }
}

/// One change to a line of a TOML file.
#[derive(Debug, Clone)]
enum Edit {
    Delete,
    Double,
    /// Everything after the line's first `=` becomes this.
    Value(String),
    /// The line is cut after this many bytes (at a character boundary).
    Cut(usize),
}

/// TOML values of every kind, right and wrong for the field they land in.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<i64>().prop_map(|i| i.to_string()),
        prop::sample::select(vec![
            "nan",
            "inf",
            "-inf",
            "-0.0",
            "1e400",
            "0",
            "-1",
            "\"\"",
            "[]",
            "{}",
            "true",
            "\"water_supply\"",
            "[\"low\", \"nope\"]",
            "{ kind = \"gas\" }",
            "2099-13-40",
        ])
        .prop_map(str::to_string),
        ".{0,12}".prop_map(|s| toml::Value::String(s).to_string()),
        ".{0,12}",
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        Just(Edit::Delete),
        Just(Edit::Double),
        value().prop_map(Edit::Value),
        (0usize..80).prop_map(Edit::Cut),
    ]
}

/// `text` with `edits` applied to the lines they pick.
fn edited(text: &str, edits: &[(prop::sample::Index, Edit)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (at, e) in edits {
        if lines.is_empty() {
            break;
        }
        let i = at.index(lines.len());
        match e {
            Edit::Delete => {
                lines.remove(i);
            }
            Edit::Double => lines.insert(i, lines[i].clone()),
            Edit::Value(v) => {
                if let Some((k, _)) = lines[i].split_once('=') {
                    lines[i] = format!("{k}= {v}");
                }
            }
            Edit::Cut(n) => {
                let l = &lines[i];
                let cut = (0..=(*n).min(l.len()))
                    .rev()
                    .find(|&b| l.is_char_boundary(b))
                    .unwrap_or(0);
                lines[i] = l[..cut].to_string();
            }
        }
    }
    lines.join("\n")
}

fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, Edit)>> {
    prop::collection::vec((any::<prop::sample::Index>(), edit()), 1..4)
}

#[test]
fn the_shipped_files_parse() {
    let rules = Rules::parse(CLEARANCES).unwrap();
    assert!(!rules.horizontal.is_empty());
    Excavation::parse(SETTINGS, None).unwrap();
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_gives_rules_or_an_error(s in ".{0,300}") {
        if let Err(e) = Rules::parse(&s) {
            prop_assert!(!e.to_string().trim().is_empty());
        }
        if let Err(e) = Excavation::parse(&s, None) {
            prop_assert!(!e.to_string().trim().is_empty());
        }
    }

    #[test]
    fn edited_clearance_rules_give_rules_or_an_error(e in edits()) {
        let text = edited(CLEARANCES, &e);
        if let Err(err) = Rules::parse(&text) {
            prop_assert!(!err.to_string().trim().is_empty());
        }
    }

    #[test]
    fn edited_settings_give_settings_or_an_error(e in edits()) {
        let text = edited(SETTINGS, &e);
        if let Err(err) = Excavation::parse(&text, None) {
            prop_assert!(!err.to_string().trim().is_empty());
        }
    }
}
