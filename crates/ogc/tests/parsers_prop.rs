//! Property tests of the CQL2 parsers that face the network (`filter=` in cql2-text and
//! cql2-json, issue 17 §3): any input gives a filter or a clear error and never panics,
//! through parsing and compilation against the pipelines' queryables; well-formed filters
//! built from random identifiers, numbers, strings and points always parse.

use lifeline_index::SpatialIndex;
use lifeline_model::crs::MetricCrs;
use lifeline_model::{Layer, Role};
use lifeline_ogc::cql::{parse, Compiler, FilterLang, MAX_FILTER_BYTES};
use lifeline_ogc::queryables::queryables;
use proptest::prelude::*;
use serde_json::{json, Value};

/// 256 cases per property unless PROPTEST_CASES says otherwise: enough to find the cheap
/// mistakes on every `cargo test`, fast enough to run there.
fn config() -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = match std::env::var("PROPTEST_CASES") {
        Ok(_) => base.cases,
        Err(_) => 256,
    };
    ProptestConfig { cases, ..base }
}

/// Parses and, when that succeeds, compiles `s`: every outcome but a panic is fine, and an
/// error says what is wrong.
fn parse_and_compile(s: &str, lang: FilterLang) -> Result<(), String> {
    let index = SpatialIndex::new(MetricCrs::auto(106.55, 29.56));
    let qs = queryables(Layer::Pipelines, Role::Admin);
    let e = parse(s, lang).map_err(|e| e.to_string())?;
    Compiler::new(Layer::Pipelines, &qs, None, &index)
        .compile(&e)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn assert_clear(r: Result<(), String>) {
    if let Err(e) = r {
        assert!(!e.trim().is_empty(), "an error must say something");
    }
}

/// Property names: real queryables and random identifiers.
fn property() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("diameter_mm".to_string()),
        Just("kind".to_string()),
        Just("material".to_string()),
        Just("year_built".to_string()),
        Just("survey_date".to_string()),
        "[a-z][a-z0-9_]{0,12}",
    ]
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<i32>().prop_map(f64::from),
        -1e9f64..1e9,
        Just(0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
    ]
}

/// A cql2-text string literal with any characters (quotes doubled).
fn text_literal() -> impl Strategy<Value = String> {
    ".{0,20}".prop_map(|s| format!("'{}'", s.replace('\'', "''")))
}

/// Well-formed cql2-text predicates, nested with AND, OR, NOT and parentheses.
fn text_filter() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (
            property(),
            prop::sample::select(vec!["=", "<>", "<", "<=", ">", ">="]),
            number()
        )
            .prop_map(|(p, op, n)| format!("{p} {op} {n}")),
        (property(), text_literal()).prop_map(|(p, s)| format!("{p} = {s}")),
        (property(), text_literal()).prop_map(|(p, s)| format!("{p} LIKE {s}")),
        (property(), number(), number()).prop_map(|(p, a, b)| format!("{p} BETWEEN {a} AND {b}")),
        (property(), prop::collection::vec(number(), 1..5)).prop_map(|(p, ns)| {
            let list: Vec<String> = ns.iter().map(|n| n.to_string()).collect();
            format!("{p} IN ({})", list.join(", "))
        }),
        property().prop_map(|p| format!("{p} IS NULL")),
        (-200.0f64..200.0, -100.0f64..100.0)
            .prop_map(|(x, y)| format!("S_INTERSECTS(geometry, POINT({x} {y}))")),
        (-180.0f64..180.0, -90.0f64..90.0, -1e4f64..1e4)
            .prop_map(|(x, y, d)| format!("S_DWITHIN(geometry, POINT({x} {y}), {d}, meters)")),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) AND ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} OR {b}")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    })
}

/// Arbitrary JSON values, objects with random keys included.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("op".to_string()),
                    Just("args".to_string()),
                    Just("property".to_string()),
                    ".{0,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Well-formed cql2-json predicates, nested with and, or, not.
fn json_filter() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        (
            property(),
            prop::sample::select(vec!["=", "<>", "<", "<=", ">", ">="]),
            number()
        )
            .prop_map(|(p, op, n)| json!({"op": op, "args": [{"property": p}, n]})),
        (property(), ".{0,12}")
            .prop_map(|(p, s)| json!({"op": "like", "args": [{"property": p}, s]})),
        property().prop_map(|p| json!({"op": "isNull", "args": [{"property": p}]})),
        (-200.0f64..200.0, -100.0f64..100.0).prop_map(|(x, y)| json!({"op": "s_intersects",
            "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [x, y]}]})),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|a| json!({"op": "and", "args": a})),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|a| json!({"op": "or", "args": a})),
            inner.prop_map(|a| json!({"op": "not", "args": [a]})),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_gives_a_filter_or_an_error(s in ".{0,200}") {
        assert_clear(parse_and_compile(&s, FilterLang::Text));
        assert_clear(parse_and_compile(&s, FilterLang::Json));
    }

    #[test]
    fn any_cql_like_tokens_give_a_filter_or_an_error(
        tokens in prop::collection::vec(prop_oneof![
            Just("("), Just(")"), Just("AND"), Just("OR"), Just("NOT"), Just("="), Just("<"),
            Just("LIKE"), Just("IN"), Just("BETWEEN"), Just("IS NULL"), Just("'x'"), Just("'"),
            Just("1e400"), Just("-0"), Just("diameter_mm"), Just("kind"), Just("geometry"),
            Just("POINT(1 2)"), Just("POLYGON((0 0,1 0,1 1,0 0))"), Just("S_INTERSECTS"),
            Just("T_AFTER"), Just("TIMESTAMP('2024-01-01T00:00:00Z')"), Just("DATE('2024-02-30')"),
            Just(","), Just("+"), Just("/"), Just("CASEI"), Just("["), Just("]"),
        ], 0..40)
    ) {
        let s = tokens.join(" ");
        assert_clear(parse_and_compile(&s, FilterLang::Text));
    }

    #[test]
    fn well_formed_text_filters_parse(f in text_filter()) {
        prop_assume!(f.len() <= MAX_FILTER_BYTES);
        if let Err(e) = parse(&f, FilterLang::Text) {
            panic!("{f}: {e}");
        }
        assert_clear(parse_and_compile(&f, FilterLang::Text));
    }

    #[test]
    fn any_json_gives_a_filter_or_an_error(v in any_json()) {
        assert_clear(parse_and_compile(&v.to_string(), FilterLang::Json));
    }

    #[test]
    fn well_formed_json_filters_parse(v in json_filter()) {
        let s = v.to_string();
        if let Err(e) = parse(&s, FilterLang::Json) {
            panic!("{s}: {e}");
        }
        assert_clear(parse_and_compile(&s, FilterLang::Json));
    }
}
