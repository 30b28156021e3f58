//! MVT encoding: byte-exact spec examples, round trips through the decoder,
//! dictionary dedup, ids, value types and decoder validation.

use lifeline_tiles::decode::decode_geometry;
use lifeline_tiles::mvt::{encode_geometry, zigzag_decode, zigzag_encode};
use lifeline_tiles::{
    decode_tile, DecodeError, GeomType, LayerBuilder, TileBuilder, TileError, TileGeometry, Value,
};

fn cmds(g: &TileGeometry) -> Vec<u32> {
    let mut v = Vec::new();
    encode_geometry(g, &mut v).unwrap();
    v
}

/// MVT 2.1 README §4.3.5: every example geometry, encoded and decoded.
#[test]
fn spec_example_geometries() {
    let point = TileGeometry::point(25, 17);
    assert_eq!(cmds(&point), [9, 50, 34]);

    let multipoint = TileGeometry::multi_point([(5, 7), (3, 2)]);
    assert_eq!(cmds(&multipoint), [17, 10, 14, 3, 9]);

    let line = TileGeometry::line_string([(2, 2), (2, 10), (10, 10)]);
    assert_eq!(cmds(&line), [9, 4, 4, 18, 0, 16, 16, 0]);

    let multiline =
        TileGeometry::multi_line_string([vec![(2, 2), (2, 10), (10, 10)], vec![(1, 1), (3, 5)]]);
    assert_eq!(
        cmds(&multiline),
        [9, 4, 4, 18, 0, 16, 16, 0, 9, 17, 17, 10, 4, 8]
    );

    let polygon = TileGeometry::polygon([vec![(3, 6), (8, 12), (20, 34), (3, 6)]]);
    assert_eq!(cmds(&polygon), [9, 6, 12, 18, 10, 12, 24, 44, 15]);

    let multipolygon = TileGeometry::multi_polygon([
        vec![vec![(0, 0), (10, 0), (10, 10), (0, 10), (0, 0)]],
        vec![
            vec![(11, 11), (20, 11), (20, 20), (11, 20), (11, 11)],
            vec![(13, 13), (13, 17), (17, 17), (17, 13), (13, 13)],
        ],
    ]);
    assert_eq!(
        cmds(&multipolygon),
        [
            9, 0, 0, 26, 20, 0, 0, 20, 19, 0, 15, 9, 22, 2, 26, 18, 0, 0, 18, 17, 0, 15, 9, 4, 13,
            26, 0, 8, 8, 0, 0, 7, 15
        ]
    );

    for g in [
        &point,
        &multipoint,
        &line,
        &multiline,
        &polygon,
        &multipolygon,
    ] {
        assert_eq!(&decode_geometry(g.kind(), &cmds(g)).unwrap(), g);
    }
    assert_eq!(multipolygon.polygons().len(), 2);
}

/// MVT 2.1 README §4.5: the example "points" layer, byte for byte.
#[test]
fn spec_example_layer_byte_exact() {
    let mut l = LayerBuilder::new("points", 4096);
    let p = TileGeometry::point(1205, 1540); // zigzag 2410, 3080
    l.add_feature(
        Some(1),
        &p,
        &[
            ("hello", "world".into()),
            ("h", "world".into()),
            ("count", Value::Double(1.23)),
        ],
    )
    .unwrap();
    l.add_feature(
        Some(2),
        &p,
        &[("hello", "again".into()), ("count", Value::Int(2))],
    )
    .unwrap();

    let geom = [0x22, 0x05, 0x09, 0xEA, 0x12, 0x88, 0x18]; // [9, 2410, 3080]
    let mut body: Vec<u8> = vec![0x78, 0x02]; // version = 2
    body.extend([0x0A, 0x06]);
    body.extend(b"points");
    // feature 1: id 1, tags [0 0 1 0 2 1], type POINT
    body.extend([
        0x12, 0x13, 0x08, 0x01, 0x12, 0x06, 0, 0, 1, 0, 2, 1, 0x18, 0x01,
    ]);
    body.extend(geom);
    // feature 2: id 2, tags [0 2 2 3], type POINT
    body.extend([0x12, 0x11, 0x08, 0x02, 0x12, 0x04, 0, 2, 2, 3, 0x18, 0x01]);
    body.extend(geom);
    for k in ["hello", "h", "count"] {
        body.extend([0x1A, k.len() as u8]);
        body.extend(k.as_bytes());
    }
    body.extend([0x22, 0x07, 0x0A, 0x05]);
    body.extend(b"world");
    body.extend([0x22, 0x09, 0x19]);
    body.extend(1.23f64.to_le_bytes());
    body.extend([0x22, 0x07, 0x0A, 0x05]);
    body.extend(b"again");
    body.extend([0x22, 0x02, 0x20, 0x02]);
    body.extend([0x28, 0x80, 0x20]); // extent 4096
    assert!(body.len() < 128);
    let mut want = vec![0x1A, body.len() as u8];
    want.extend(body);

    assert_eq!(l.finish(), want);

    let t = decode_tile(&want).unwrap();
    let layer = &t.layers[0];
    assert_eq!(layer.keys, ["hello", "h", "count"]);
    assert_eq!(layer.features[0].tags, [0, 0, 1, 0, 2, 1]);
    assert_eq!(layer.features[1].tags, [0, 2, 2, 3]);
    assert_eq!(layer.features[0].commands, [9, 2410, 3080]);
}

#[test]
fn zigzag_spec_values() {
    assert_eq!(zigzag_encode(25), 50);
    assert_eq!(zigzag_encode(17), 34);
    assert_eq!(zigzag_encode(-5), 9);
    assert_eq!(zigzag_decode(3), -2);
    for v in [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX] {
        assert_eq!(zigzag_decode(zigzag_encode(v)), v);
    }
}

#[test]
fn all_value_types_round_trip() {
    let vals: Vec<(&str, Value)> = vec![
        ("s", Value::from("héllo ✓")),
        ("f", Value::Float(-1.5)),
        ("d", Value::Double(std::f64::consts::PI)),
        ("i", Value::Int(-42)),
        ("imin", Value::Int(i64::MIN)),
        ("u", Value::UInt(u64::MAX)),
        ("si", Value::SInt(i64::MIN)),
        ("si2", Value::from(-7i64)),
        ("b", Value::Bool(true)),
        ("b0", Value::Bool(false)),
        ("empty", Value::from("")),
    ];
    let mut l = LayerBuilder::new("v", 4096);
    l.add_feature(Some(u64::MAX), &TileGeometry::point(1, 2), &vals)
        .unwrap();
    let t = decode_tile(&l.finish()).unwrap();
    let f = &t.layers[0].features[0];
    assert_eq!(f.id, Some(u64::MAX));
    let got: Vec<(&str, &Value)> = f.properties.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let want: Vec<(&str, &Value)> = vals.iter().map(|(k, v)| (*k, v)).collect();
    assert_eq!(got, want);
    assert_eq!(f.get("si2"), Some(&Value::SInt(-7)));
}

fn count_occurrences(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn keys_and_values_are_deduplicated_in_the_bytes() {
    let mut l = LayerBuilder::new("pipes", 4096);
    for i in 0..100u64 {
        let g = TileGeometry::line_string([(i as i32, 0), (i as i32, 100)]);
        let kind = if i % 2 == 0 {
            "water_supply"
        } else {
            "district_heat"
        };
        l.add_feature(
            Some(i),
            &g,
            &[
                ("pipe_kind", kind.into()),
                ("diameter_mm", Value::SInt(300)),
                ("pressure_kpa", Value::Double(410.5)),
                ("active", true.into()),
            ],
        )
        .unwrap();
    }
    assert_eq!((l.num_keys(), l.num_values()), (4, 5));
    let bytes = l.finish();
    for s in [
        "pipe_kind",
        "diameter_mm",
        "pressure_kpa",
        "active",
        "water_supply",
        "district_heat",
    ] {
        assert_eq!(count_occurrences(&bytes, s.as_bytes()), 1, "{s}");
    }
    assert_eq!(count_occurrences(&bytes, &410.5f64.to_le_bytes()), 1);
    let t = decode_tile(&bytes).unwrap();
    let layer = &t.layers[0];
    assert_eq!(layer.keys.len(), 4);
    assert_eq!(layer.values.len(), 5);
    assert_eq!(layer.features.len(), 100);
    for (i, f) in layer.features.iter().enumerate() {
        assert_eq!(f.id, Some(i as u64));
        let want = if i % 2 == 0 {
            "water_supply"
        } else {
            "district_heat"
        };
        assert_eq!(f.get("pipe_kind").and_then(Value::as_str), Some(want));
        assert_eq!(f.get("diameter_mm").and_then(Value::as_i64), Some(300));
    }
}

#[test]
fn repeated_key_in_one_feature_keeps_the_first() {
    let mut l = LayerBuilder::new("x", 4096);
    l.add_feature(
        None,
        &TileGeometry::point(0, 0),
        &[("a", 1i64.into()), ("a", 2i64.into())],
    )
    .unwrap();
    let t = decode_tile(&l.finish()).unwrap();
    let f = &t.layers[0].features[0];
    assert_eq!(f.id, None);
    assert_eq!(f.properties, vec![("a".to_string(), Value::SInt(1))]);
}

#[test]
fn multi_layer_tile_round_trip() {
    let mut pipes = LayerBuilder::new("pipes", 4096);
    pipes
        .add_feature(
            Some(10),
            &TileGeometry::line_string([(0, 0), (4096, 4096)]),
            &[("kind", "gas".into())],
        )
        .unwrap();
    let mut cells = LayerBuilder::new("grid_cells", 4096);
    let cell = TileGeometry::polygon([vec![(0, 0), (0, 512), (512, 512), (512, 0)]]);
    cells
        .add_feature(Some(20), &cell, &[("risk", 0.7.into())])
        .unwrap();
    cells
        .add_feature(Some(21), &cell, &[("risk", 0.7.into())])
        .unwrap();
    let mut sensors = LayerBuilder::new("sensors", 512);
    sensors
        .add_feature(
            Some(30),
            &TileGeometry::multi_point([(1, 1), (500, 500)]),
            &[],
        )
        .unwrap();

    let mut tile = TileBuilder::new();
    tile.add_layer(&pipes).unwrap();
    tile.add_layer(&cells).unwrap();
    tile.add_encoded("sensors", &sensors.finish()).unwrap();
    assert_eq!(
        tile.add_layer(&pipes),
        Err(TileError::DuplicateLayer("pipes".into()))
    );
    assert_eq!(
        tile.add_layer(&LayerBuilder::new("", 4096)),
        Err(TileError::EmptyLayerName)
    );
    let bytes = tile.finish();

    let t = decode_tile(&bytes).unwrap();
    let names: Vec<_> = t.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["pipes", "grid_cells", "sensors"]);
    assert!(t.layers.iter().all(|l| l.version == 2));
    assert_eq!(t.layer("sensors").unwrap().extent, 512);
    let cells = t.layer("grid_cells").unwrap();
    assert_eq!(cells.values.len(), 1);
    assert_eq!(cells.features[1].id, Some(21));
    assert_eq!(cells.features[0].geom_type, GeomType::Polygon);
    assert_eq!(cells.features[0].geometry, cell);
    let s = &t.layer("sensors").unwrap().features[0];
    assert_eq!(s.geometry.points().len(), 2);
    assert!(s.properties.is_empty());
}

#[test]
fn cursor_resets_per_feature() {
    let mut l = LayerBuilder::new("x", 4096);
    l.add_feature(None, &TileGeometry::point(100, 100), &[])
        .unwrap();
    l.add_feature(None, &TileGeometry::point(100, 100), &[])
        .unwrap();
    let t = decode_tile(&l.finish()).unwrap();
    assert_eq!(
        t.layers[0].features[0].commands,
        t.layers[0].features[1].commands
    );
    assert_eq!(t.layers[0].features[1].commands, [9, 200, 200]);
}

#[test]
fn encoder_rejects_bad_geometries_without_side_effects() {
    let mut l = LayerBuilder::new("x", 4096);
    assert_eq!(
        l.add_feature(
            None,
            &TileGeometry::new(GeomType::LineString),
            &[("k", 1i64.into())]
        ),
        Err(TileError::EmptyGeometry)
    );
    let tiny = TileGeometry::multi_line_string([vec![(0, 0), (0, 0)]]);
    assert!(matches!(
        l.add_feature(None, &tiny, &[("k", 1i64.into())]),
        Err(TileError::DegenerateGeometry(_))
    ));
    assert!(l.is_empty());
    assert_eq!((l.num_keys(), l.num_values()), (0, 0));
}

#[test]
fn decoder_rejects_invalid_command_streams() {
    let bad: &[(GeomType, &[u32])] = &[
        (GeomType::Point, &[]),
        (GeomType::Point, &[9, 50]),            // missing parameter
        (GeomType::Point, &[10, 2, 2]),         // LineTo in a point
        (GeomType::Point, &[9, 2, 2, 9, 2, 2]), // two MoveTo commands
        (GeomType::LineString, &[9, 4, 4]),     // no LineTo
        (GeomType::LineString, &[17, 4, 4, 2, 2, 10, 2, 2]), // MoveTo count 2
        (GeomType::LineString, &[9, 4, 4, 10, 0, 0]), // zero-length LineTo
        (GeomType::LineString, &[9, 4, 4, 2, 2]), // LineTo with count 0
        (GeomType::Polygon, &[9, 6, 12, 18, 10, 12, 24, 44]), // missing ClosePath
        (GeomType::Polygon, &[9, 6, 12, 10, 10, 12, 15]), // LineTo count 1
        (GeomType::Polygon, &[9, 0, 0, 26, 0, 20, 20, 0, 0, 19, 15]), // first ring negative
        (
            GeomType::Polygon,
            &[9, 0, 0, 26, 20, 0, 0, 20, 19, 0, 15, 23],
        ), // stray ClosePath(2)
        (GeomType::Polygon, &[9, 0, 0, 18, 20, 0, 20, 0, 15]), // collinear: zero area
    ];
    for (kind, c) in bad {
        assert!(
            decode_geometry(*kind, c).is_err(),
            "{kind:?} {c:?} should be rejected"
        );
    }
}

#[test]
fn decoder_rejects_bad_tiles() {
    let mut l = LayerBuilder::new("dup", 4096);
    l.add_feature(Some(1), &TileGeometry::point(1, 1), &[("a", "b".into())])
        .unwrap();
    let one = l.finish();
    // Two layers with the same name.
    let two = [one.clone(), one.clone()].concat();
    assert_eq!(
        decode_tile(&two),
        Err(DecodeError::DuplicateLayer("dup".into()))
    );
    // Every strict prefix is truncated somewhere.
    for n in 1..one.len() {
        assert!(decode_tile(&one[..n]).is_err(), "prefix {n}");
    }
    // Tag index out of range: patch the value index in the tags (bytes
    // `0x12 0x02 0x00 0x00` → value index 5).
    let pos = one
        .windows(4)
        .position(|w| w == [0x12, 0x02, 0x00, 0x00])
        .unwrap();
    let mut patched = one.clone();
    patched[pos + 3] = 5;
    assert!(matches!(
        decode_tile(&patched),
        Err(DecodeError::BadTags { .. })
    ));
    // Empty input is an empty tile.
    assert_eq!(decode_tile(&[]).unwrap().layers.len(), 0);
}

#[test]
fn decoder_accepts_unpacked_repeated_fields_and_defaults() {
    // Layer without version/extent (proto defaults 1 and 4096), one feature
    // whose tags and geometry are written unpacked (one varint field each).
    let mut feature = vec![0x18, 0x01]; // type POINT
    for v in [9u8, 50, 34] {
        feature.extend([0x20, v]); // geometry, wire type 0
    }
    feature.extend([0x10, 0x00, 0x10, 0x00]); // tags 0, 0 unpacked
    let mut layer = vec![0x0A, 0x01, b'p'];
    layer.extend([0x12, feature.len() as u8]);
    layer.extend(&feature);
    layer.extend([0x1A, 0x01, b'k', 0x22, 0x02, 0x38, 0x01]); // key "k", value bool true
    let mut tile = vec![0x1A, layer.len() as u8];
    tile.extend(layer);
    let t = decode_tile(&tile).unwrap();
    let l = &t.layers[0];
    assert_eq!((l.version, l.extent), (1, 4096));
    assert_eq!(l.features[0].geometry, TileGeometry::point(25, 17));
    assert_eq!(l.features[0].get("k"), Some(&Value::Bool(true)));
}
