//! Property tests of the mapping-file parser (`Mapping::parse`, a data keeper's TOML; issue
//! 17 §3): any text gives a mapping or a clear error and never panics; mapping files built
//! from random layers, column names, scales and constants parse to what they say; and a
//! mapping inferred for random columns (`infer`) parses back to itself.

use lifeline_io::import::Mapping;
use lifeline_io::infer::NameMatch;
use lifeline_model::schema::fields;
use lifeline_model::Layer;
use proptest::prelude::*;

/// 256 cases per property unless PROPTEST_CASES says otherwise.
fn config() -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = match std::env::var("PROPTEST_CASES") {
        Ok(_) => base.cases,
        Err(_) => 256,
    };
    ProptestConfig { cases, ..base }
}

/// A TOML basic string of `s`.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn layer() -> impl Strategy<Value = Layer> {
    prop::sample::select(Layer::SPATIAL.to_vec())
}

/// A field rule: a column (any name), a constant, or both, with an optional scale.
#[derive(Debug, Clone)]
struct Rule {
    from: Option<String>,
    value: Option<i64>,
    scale: Option<f64>,
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::option::of(".{1,16}"),
        prop::option::of(any::<i32>().prop_map(i64::from)),
        prop::option::of(-1e6f64..1e6),
    )
        .prop_filter("a rule reads a column or gives a value", |(f, v, _)| {
            f.is_some() || v.is_some()
        })
        .prop_map(|(from, value, scale)| Rule { from, value, scale })
}

/// A mapping file's text and the rules in it, keyed by schema field.
fn mapping_text() -> impl Strategy<Value = (Layer, String, Vec<(String, Rule)>)> {
    layer().prop_flat_map(|l| {
        let names: Vec<String> = fields(l).iter().map(|f| f.name.to_string()).collect();
        (
            Just(l),
            prop::option::of(".{0,12}"),
            prop::collection::btree_map(prop::sample::select(names), rule(), 0..6),
        )
            .prop_map(|(l, source_layer, rules)| {
                let mut t = format!("layer = {}\n", quoted(l.as_str()));
                if let Some(s) = &source_layer {
                    t.push_str(&format!("source_layer = {}\n", quoted(s)));
                }
                t.push_str("[fields]\n");
                for (name, r) in &rules {
                    let mut parts = Vec::new();
                    if let Some(f) = &r.from {
                        parts.push(format!("from = {}", quoted(f)));
                    }
                    if let Some(v) = r.value {
                        parts.push(format!("value = {v}"));
                    }
                    if let Some(k) = r.scale {
                        parts.push(format!("scale = {k:?}"));
                    }
                    t.push_str(&format!("{name} = {{ {} }}\n", parts.join(", ")));
                }
                (l, t, rules.into_iter().collect())
            })
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_gives_a_mapping_or_an_error(s in ".{0,300}") {
        if let Err(e) = Mapping::parse(&s) {
            prop_assert!(!e.to_string().trim().is_empty());
        }
    }

    #[test]
    fn any_toml_like_lines_give_a_mapping_or_an_error(
        lines in prop::collection::vec(prop_oneof![
            Just("[fields]".to_string()),
            Just("[owner]".to_string()),
            Just("layer = \"pipelines\"".to_string()),
            Just("layer = \"nope\"".to_string()),
            Just("gcj02 = true".to_string()),
            Just("pipeline = \"+proj=noop\"".to_string()),
            Just("kind = {}".to_string()),
            Just("id = 1".to_string()),
            "[a-z_]{1,12} = \\{ (from|value|scale|map) = (\"[a-z]{0,5}\"|[0-9.e-]{1,6}|\\{\\}|true) \\}",
            "[a-z_]{1,12} = .{0,10}",
        ], 0..12)
    ) {
        if let Err(e) = Mapping::parse(&lines.join("\n")) {
            prop_assert!(!e.to_string().trim().is_empty());
        }
    }

    #[test]
    fn a_written_mapping_parses_to_what_it_says((l, text, rules) in mapping_text()) {
        let m = Mapping::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        prop_assert_eq!(m.layer, Some(l));
        prop_assert_eq!(m.fields.len(), rules.len());
        for (name, r) in &rules {
            let got = &m.fields[name];
            prop_assert_eq!(&got.from, &r.from);
            prop_assert_eq!(got.value.as_ref().and_then(|v| v.as_i64()), r.value);
            prop_assert_eq!(got.scale, r.scale);
        }
    }

    #[test]
    fn a_mapping_by_column_names_reads_only_its_columns(
        l in layer(),
        columns in prop::collection::vec(prop_oneof![
            ".{1,12}",
            prop::sample::select(fields(Layer::Pipelines).iter().map(|f| f.name.to_uppercase()).collect::<Vec<_>>()),
            prop::sample::select(fields(Layer::Sensors).iter().map(|f| f.name.to_string()).collect::<Vec<_>>()),
        ], 0..20)
    ) {
        let m = NameMatch::new(l, &columns);
        prop_assert_eq!(m.mapped.len() + m.missing.len(), fields(l).len());
        let mapping = m.mapping();
        for (name, rule) in &mapping.fields {
            let from = rule.from.as_deref().unwrap();
            prop_assert!(columns.iter().any(|c| c == from));
            prop_assert!(from.eq_ignore_ascii_case(name));
        }
    }
}

/// Column names a delivery may have: the schema's, usual synonyms, and anything.
fn column() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z_][A-Za-z0-9_ ]{0,10}",
        ".{1,10}",
        prop::sample::select(vec![
            "kind",
            "DN",
            "diameter_m",
            "Material",
            "depth",
            "depth_end_cm",
            "status",
            "owner_id",
            "year",
            "管径",
            "level",
            "name",
            "code",
        ])
        .prop_map(str::to_string),
    ]
}

/// A sample value of any JSON type GeoJSON properties hold.
fn sample() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<i32>().prop_map(serde_json::Value::from),
        (-1e9f64..1e9).prop_map(serde_json::Value::from),
        ".{0,60}".prop_map(serde_json::Value::String),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn an_inferred_mapping_parses_back_to_itself(
        columns in prop::collection::btree_set(column(), 0..8),
        values in prop::collection::vec(sample(), 8),
        point in any::<bool>(),
    ) {
        let props: serde_json::Map<String, serde_json::Value> = columns
            .iter()
            .zip(values.iter().cycle())
            .map(|(c, v)| (c.clone(), v.clone()))
            .collect();
        let geometry = if point {
            serde_json::json!({"type": "Point", "coordinates": [106.5, 29.5]})
        } else {
            serde_json::json!({"type": "LineString", "coordinates": [[106.5, 29.5], [106.6, 29.6]]})
        };
        let doc = serde_json::json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": props, "geometry": geometry}]});
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delivery.geojson");
        std::fs::write(&path, doc.to_string()).unwrap();
        let inferred = match lifeline_io::infer::infer(&path, None, None) {
            Ok(i) => i,
            // GDAL may refuse a column name (say, two equal but for case); that is an error
            // naming the file, not a panic.
            Err(e) => {
                prop_assert!(e.to_string().contains("delivery.geojson"));
                return Ok(());
            }
        };
        let text = inferred.to_toml();
        let parsed = Mapping::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let want = inferred.mapping();
        prop_assert_eq!(parsed.layer, want.layer);
        prop_assert_eq!(&parsed.source_layer, &want.source_layer);
        prop_assert_eq!(&parsed.source_crs, &want.source_crs);
        prop_assert_eq!(parsed.fields.len(), want.fields.len());
        for (name, rule) in &want.fields {
            prop_assert_eq!(&parsed.fields[name].from, &rule.from);
            prop_assert_eq!(parsed.fields[name].scale, rule.scale);
        }
    }
}
