//! Property tests of the readings ingest parsers (`POST /sensors/readings`, issue 17 §3):
//! any body in any content type is split into items or refused with a clear error and never
//! panics; any item — random JSON objects, near-valid readings with random ids, times,
//! values, units, qualities and extra fields — is accepted or rejected with its position
//! and a reason; and a plausible reading of a known sensor is accepted as it was sent.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use lifeline_index::SpatialIndex;
use lifeline_model::crs::MetricCrs;
use lifeline_model::{Dataset, Sensor, SensorKind};
use lifeline_risk::model::Quality;
use lifeline_risk::readings::{check_item, split_body};
use lifeline_risk::rules::Rules;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// 256 cases per property unless PROPTEST_CASES says otherwise.
fn config() -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = match std::env::var("PROPTEST_CASES") {
        Ok(_) => base.cases,
        Err(_) => 256,
    };
    ProptestConfig { cases, ..base }
}

/// One sensor of each kind, ids 1.., in an index (built once: PROJ set-up is not free).
fn sensors() -> &'static SpatialIndex {
    static INDEX: OnceLock<SpatialIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let index = SpatialIndex::new(MetricCrs::auto(106.55, 29.56));
        let sensors: Vec<Sensor> = SensorKind::ALL
            .iter()
            .enumerate()
            .map(|(i, k)| {
                serde_json::from_value(json!({
                    "id": i as i64 + 1, "kind": k.as_str(),
                    "location": {"type": "Point", "coordinates": [106.55 + i as f64 * 1e-3, 29.56]}
                }))
                .unwrap()
            })
            .collect();
        index
            .load(Dataset {
                sensors,
                ..Dataset::default()
            })
            .unwrap();
        index
    })
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Arbitrary JSON values, objects with reading-like keys included.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["sensor_id", "time", "value", "quality", "unit"])
            .prop_map(str::to_string),
        ".{0,10}",
    ]
}

/// Near-valid readings: each field right, wrong, or missing.
fn reading_like() -> impl Strategy<Value = Value> {
    let n = SensorKind::ALL.len() as i64;
    (
        prop::option::of(prop_oneof![
            (1..=n).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e3f64..1e3).prop_map(|f| json!(f)),
            ".{0,6}".prop_map(Value::String),
        ]),
        prop::option::of(prop_oneof![
            (-10_000_000i64..10_000_000)
                .prop_map(|s| json!((now() + Duration::seconds(s)).to_rfc3339())),
            any::<i64>().prop_map(Value::from),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2}|)"
                .prop_map(Value::String),
            ".{0,30}".prop_map(Value::String),
        ]),
        prop::option::of(prop_oneof![
            any::<f64>().prop_map(|f| json!(f)),
            (-1e4f64..1e4).prop_map(|f| json!(f)),
            ".{0,8}".prop_map(Value::String),
            Just(Value::Null),
        ]),
        prop::option::of(prop_oneof![
            prop::sample::select(vec!["good", "uncertain", "bad", "GOOD", ""])
                .prop_map(|s| json!(s)),
            any_json(),
        ]),
        prop::option::of(prop_oneof![".{0,6}".prop_map(Value::String), any_json()]),
        prop::option::of((key(), any_json())),
    )
        .prop_map(|(id, time, value, quality, unit, extra)| {
            let mut o = Map::new();
            for (k, v) in [
                ("sensor_id", id),
                ("time", time),
                ("value", value),
                ("quality", quality),
                ("unit", unit),
            ] {
                if let Some(v) = v {
                    o.insert(k.to_string(), v);
                }
            }
            if let Some((k, v)) = extra {
                o.insert(k, v);
            }
            Value::Object(o)
        })
}

/// Checks every item of a split body: each judged, never a panic, a rejection names its
/// position and a reason.
fn check_all(items: &[Result<Value, String>]) {
    let rules = Rules::builtin();
    for (i, item) in items.iter().enumerate() {
        match item {
            Ok(v) => match check_item(i, v, sensors(), rules, now()) {
                Ok(c) => assert_eq!(c.index, i),
                Err(r) => {
                    assert_eq!(r.index, i);
                    assert!(
                        r.error.as_deref().is_some_and(|e| !e.trim().is_empty()),
                        "{r:?}"
                    );
                }
            },
            Err(e) => assert!(!e.trim().is_empty()),
        }
    }
}

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/x-ndjson",
    "application/ndjson",
    "APPLICATION/JSONL",
    "",
    "text/csv",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_body_is_split_or_refused(
        body in prop::collection::vec(any::<u8>(), 0..400),
        ct in prop::sample::select(CONTENT_TYPES.to_vec()),
    ) {
        match split_body(&body, ct) {
            Ok(items) => check_all(&items),
            Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
        }
    }

    #[test]
    fn any_json_items_are_judged(
        items in prop::collection::vec(prop_oneof![any_json(), reading_like()], 0..12),
        ndjson in any::<bool>(),
    ) {
        let (body, ct) = if ndjson {
            let lines: Vec<String> = items.iter().map(Value::to_string).collect();
            (lines.join("\n"), "application/x-ndjson")
        } else {
            (Value::Array(items.clone()).to_string(), "application/json")
        };
        let split = split_body(body.as_bytes(), ct).unwrap();
        // Every item of a well-formed body comes out, in order.
        prop_assert_eq!(split.len(), items.len());
        check_all(&split);
    }

    #[test]
    fn a_plausible_reading_is_accepted_as_sent(
        k in 0..SensorKind::ALL.len(),
        at in 0.0f64..1.0,
        ago_ms in 0i64..86_400_000,
        quality in prop::sample::select(Quality::ALL.to_vec()),
        with_unit in any::<bool>(),
    ) {
        let rules = Rules::builtin();
        let kind = SensorKind::ALL[k];
        let kr = rules.kind(kind);
        let value = kr.min + (kr.max - kr.min) * at;
        let t = (now() - Duration::milliseconds(ago_ms)).trunc_subsecs(3);
        let mut item = json!({"sensor_id": k as i64 + 1, "time": t.to_rfc3339(), "value": value,
                              "quality": quality.as_str()});
        if with_unit {
            item["unit"] = json!(kr.unit);
        }
        let c = check_item(0, &item, sensors(), rules, now())
            .unwrap_or_else(|r| panic!("{item}: {r:?}"));
        prop_assert_eq!(c.kind, kind);
        prop_assert_eq!(c.reading.sensor_id, k as i64 + 1);
        prop_assert_eq!(c.reading.t, t);
        prop_assert_eq!(c.reading.value, value);
        prop_assert_eq!(c.reading.quality, quality);
    }
}
