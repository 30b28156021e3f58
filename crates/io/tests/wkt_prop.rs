//! Property test of the WKT reader behind the analysis endpoints' `geometry=` parameter
//! (`gdal::geometry_from_wkt`, issue 17 §3): any text and WKT-shaped input (every type,
//! EMPTY, Z and M, odd counts of numbers, unbalanced parentheses) gives a geometry or a
//! clear error and never panics; a geometry written as WKT reads back to itself.

use lifeline_io::gdal::geometry_from_wkt;
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

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "POINT",
            "LINESTRING",
            "POLYGON",
            "MULTIPOINT",
            "MULTILINESTRING",
            "MULTIPOLYGON",
            "GEOMETRYCOLLECTION",
            "CIRCULARSTRING",
            "CURVEPOLYGON",
            "TIN",
            "TRIANGLE",
            "EMPTY",
            "Z",
            "M",
            "ZM",
            "(",
            ")",
            "((",
            "))",
            ",",
            "nan",
            "inf",
            "-",
            "1e400",
        ])
        .prop_map(str::to_string),
        (-1e3f64..1e3).prop_map(|f| f.to_string()),
    ]
}

/// Found while writing the property: GDAL reads `POINT EMPTY` as the point (0, 0), which
/// an analysis query would then have searched around. Empty geometries are refused.
#[test]
fn empty_geometries_are_refused() {
    for wkt in [
        "POINT EMPTY",
        "LINESTRING EMPTY",
        "POLYGON EMPTY",
        "MULTIPOINT EMPTY",
        "GEOMETRYCOLLECTION EMPTY",
    ] {
        let e = geometry_from_wkt(wkt).unwrap_err();
        assert!(e.to_string().contains("empty"), "{wkt}: {e}");
    }
    assert!(geometry_from_wkt("POINT (0 0)").is_ok());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_gives_a_geometry_or_an_error(s in ".{0,120}") {
        if let Err(e) = geometry_from_wkt(&s) {
            prop_assert!(!e.to_string().trim().is_empty());
        }
    }

    #[test]
    fn wkt_shaped_tokens_give_a_geometry_or_an_error(
        tokens in prop::collection::vec(token(), 0..30)
    ) {
        let s = tokens.join(" ");
        match geometry_from_wkt(&s) {
            Ok(g) => prop_assert!(geo::CoordsIter::coords_count(&g) > 0, "{s}: an empty geometry"),
            Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
        }
    }

    #[test]
    fn a_written_line_reads_back(pts in prop::collection::vec((-180.0f64..180.0, -90.0f64..90.0), 2..12)) {
        let wkt = format!(
            "LINESTRING ({})",
            pts.iter().map(|(x, y)| format!("{x:?} {y:?}")).collect::<Vec<_>>().join(", ")
        );
        let g = geometry_from_wkt(&wkt).unwrap_or_else(|e| panic!("{wkt}: {e}"));
        let geo::Geometry::LineString(l) = g else { panic!("{wkt}: not a line") };
        let got: Vec<(f64, f64)> = l.0.iter().map(|c| (c.x, c.y)).collect();
        prop_assert_eq!(got, pts);
    }
}
