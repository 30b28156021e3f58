//! Property test of the excavation check's request parsing (`POST /excavation/check`, issue
//! 17 §3): `Dig::parse` turns a footprint's GeoJSON, width, depths and dates into a measured
//! dig or a clear error, never a panic, for random geometry-shaped JSON and random numbers
//! and dates.

use chrono::NaiveDate;
use lifeline_excavation::check::Dig;
use lifeline_excavation::{CheckRequest, DigMethod, Excavation};
use lifeline_model::crs::MetricCrs;
use proptest::prelude::*;
use serde_json::{json, Value};
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

/// The Gauss–Krüger zone of central Chongqing (built once: PROJ set-up is not free).
fn crs() -> &'static MetricCrs {
    static CRS: OnceLock<MetricCrs> = OnceLock::new();
    CRS.get_or_init(|| MetricCrs::auto(106.55, 29.56))
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        -10.0f64..10.0,
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(0.0)
    ]
}

/// Positions near Chongqing or anywhere, lists of them of any length, nested 1–3 deep.
fn coordinates() -> impl Strategy<Value = Value> {
    let position = prop_oneof![
        (106.5f64..106.6, 29.5f64..29.6).prop_map(|(x, y)| json!([x, y])),
        (-1e3f64..1e3, -1e3f64..1e3).prop_map(|(x, y)| json!([x, y])),
        prop::collection::vec(-1e3f64..1e3, 0..4).prop_map(|v| json!(v)),
    ];
    position.prop_recursive(3, 64, 8, |inner| {
        prop::collection::vec(inner, 0..8).prop_map(Value::Array)
    })
}

fn geometry() -> impl Strategy<Value = Value> {
    prop_oneof![
        (
            prop::sample::select(vec!["Polygon", "LineString", "Point", "MultiPolygon", "x"]),
            coordinates()
        )
            .prop_map(|(t, c)| json!({"type": t, "coordinates": c})),
        // A closed square near Chongqing of random size: usually a valid footprint.
        (106.5f64..106.6, 29.5f64..29.6, 1e-6f64..0.01).prop_map(|(x, y, d)| json!({
            "type": "Polygon",
            "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]
        })),
        Just(Value::Null),
        ".{0,20}".prop_map(Value::String),
    ]
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (1900i32..2200, 1u32..=12, 1u32..=28)
        .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_dig_request_is_measured_or_refused(
        geometry in geometry(),
        width in prop::option::of(number()),
        top in number(),
        bottom in number(),
        method in prop::sample::select(DigMethod::ALL.to_vec()),
        start in date(),
        days in -30i64..400,
        today in date(),
    ) {
        let req = CheckRequest {
            geometry,
            width_m: width,
            top_depth_m: top,
            bottom_depth_m: bottom,
            method,
            work_type: "trench".into(),
            start_date: start,
            end_date: start + chrono::Duration::days(days),
        };
        if let Err(e) = Dig::parse(&req, &Excavation::builtin().limits, crs(), today) {
            prop_assert!(!e.to_string().trim().is_empty());
        }
    }
}
