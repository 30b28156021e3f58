//! Property tests of the tile URL parsers (issue 17 §3): `{layers}/{z}/{x}/{y}.{mvt|pbf}`
//! and the layer lists, stored or naming derived layers. Any segments give a tile or a
//! clear error and never panic; a tile address and a layer set written as a URL parse back
//! to themselves.

use lifeline_model::Layer;
use lifeline_tiles::TileCoord;
use lifeline_tileserver::service::{parse_tile_path, Layers, TileRequestError};
use lifeline_tileserver::LayerSet;
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

/// Segments that look like tile path parts: digits, signs, dots, layer names, commas, junk.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[0-9]{0,12}",
        "-?[0-9]{1,6}\\.(mvt|pbf|png|)",
        "((pipelines|risk_points|grid_cells|sensors|owners|heat|alarms|[a-z_]{0,10}),?){0,6}",
    ]
}

/// A valid tile address.
fn tile() -> impl Strategy<Value = TileCoord> {
    (0u32..=22).prop_flat_map(|z| {
        let n = 1u32 << z;
        (Just(z), 0..n, 0..n).prop_map(|(z, x, y)| TileCoord::new(z, x, y).unwrap())
    })
}

/// A non-empty list of distinct spatial layers, in any order.
fn layers() -> impl Strategy<Value = Vec<Layer>> {
    Just(Layer::SPATIAL.to_vec())
        .prop_shuffle()
        .prop_flat_map(|all| (1..=all.len()).prop_map(move |n| all[..n].to_vec()))
}

fn assert_clear(r: &Result<impl std::fmt::Debug, TileRequestError>) {
    if let Err(e) = r {
        assert!(
            !e.to_string().trim().is_empty(),
            "an error must say something"
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_tile_path_gives_a_tile_or_an_error(
        l in segment(), z in segment(), x in segment(), y in segment()
    ) {
        assert_clear(&parse_tile_path(&l, &z, &x, &y));
        assert_clear(&Layers::parse(&l));
        if let Err(e) = LayerSet::parse(&l) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn any_numbers_give_a_tile_or_an_error(z in any::<u32>(), x in any::<u32>(), y in any::<u32>()) {
        let parsed = parse_tile_path("pipelines", &z.to_string(), &x.to_string(), &format!("{y}.mvt"));
        // In range exactly when the tile maths says so.
        prop_assert_eq!(parsed.is_ok(), TileCoord::new(z, x, y).is_ok());
        if let Ok((_, t)) = parsed {
            prop_assert_eq!((u32::from(t.z()), t.x(), t.y()), (z, x, y));
        }
    }

    #[test]
    fn a_tile_url_parses_back(t in tile(), ls in layers(), pbf in any::<bool>()) {
        let set = LayerSet::of(&ls);
        let path = set.to_path();
        let file = format!("{}.{}", t.y(), if pbf { "pbf" } else { "mvt" });
        let (got_set, got) = parse_tile_path(&path, &t.z().to_string(), &t.x().to_string(), &file)
            .unwrap_or_else(|e| panic!("{path}/{}/{}/{file}: {e}", t.z(), t.x()));
        prop_assert_eq!(got, t);
        prop_assert_eq!(got_set.layers(), &ls[..]);
        prop_assert_eq!(LayerSet::parse(&path).unwrap(), set);
        let stored = Layers::parse(&path).unwrap();
        prop_assert_eq!(stored.stored(), &set);
    }

    #[test]
    fn a_repeated_layer_is_refused(ls in layers(), i in any::<prop::sample::Index>()) {
        let mut names: Vec<&str> = ls.iter().map(|l| l.as_str()).collect();
        names.push(ls[i.index(ls.len())].as_str());
        prop_assert!(LayerSet::parse(&names.join(",")).is_err());
    }
}
