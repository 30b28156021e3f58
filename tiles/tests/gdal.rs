//! Interoperability: GDAL's MVT driver must read our tiles. Skipped (with a
//! note on stderr) when `ogrinfo` is not installed (Debian: gdal-bin).
//! Writing a temp file is test-only; the library itself does no I/O.

mod common;

use std::process::Command;

use common::*;
use geo::Geometry;
use lifeline_tiles::{encode_layer, LayerOptions, SourceFeature, TileBuilder, Value};

fn ogrinfo_available() -> bool {
    Command::new("ogrinfo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `(layer name, feature count)` pairs from `ogrinfo -al -so` output.
fn layer_counts(report: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut name = None;
    for line in report.lines() {
        if let Some(n) = line.strip_prefix("Layer name: ") {
            name = Some(n.trim().to_string());
        } else if let Some(c) = line.strip_prefix("Feature Count: ") {
            out.push((
                name.take().expect("count before name"),
                c.trim().parse().unwrap(),
            ));
        }
    }
    out
}

#[test]
fn gdal_reads_our_tile() {
    if !ogrinfo_available() {
        eprintln!("ogrinfo not found; skipping GDAL interoperability test");
        return;
    }
    let pipes: Vec<Geometry<f64>> = (0..25)
        .map(|i| {
            line(&[
                (100.0, 100.0 + i as f64 * 150.0),
                (3900.0, 200.0 + i as f64 * 150.0),
            ])
        })
        .collect();
    let cells: Vec<Geometry<f64>> = (0..4)
        .flat_map(|i| (0..4).map(move |j| (i, j)))
        .map(|(i, j)| {
            let (x, y) = (i as f64 * 1024.0, j as f64 * 1024.0);
            Geometry::Polygon(polygon(
                &square(x, y, x + 1024.0, y + 1024.0),
                &[square(x + 400.0, y + 400.0, x + 600.0, y + 600.0)],
            ))
        })
        .collect();
    let sensors: Vec<Geometry<f64>> = (0..7)
        .map(|i| point(300.0 + i as f64 * 500.0, 2048.0))
        .collect();

    let props = [
        ("kind", Value::from("water")),
        ("diameter_mm", Value::SInt(300)),
        ("risk", Value::Double(0.25)),
    ];
    fn mk<'a>(
        geoms: &'a [Geometry<f64>],
        props: &'a [(&'a str, Value<'a>)],
    ) -> Vec<SourceFeature<'a>> {
        geoms
            .iter()
            .enumerate()
            .map(|(i, g)| SourceFeature {
                id: Some(i as u64 + 1),
                geometry: g.into(),
                properties: props,
                importance: 1.0,
            })
            .collect()
    }
    let opts = LayerOptions::default();
    let mut tile_bytes = TileBuilder::new();
    for (name, geoms) in [
        ("pipes", &pipes),
        ("grid_cells", &cells),
        ("sensors", &sensors),
    ] {
        let l = encode_layer(name, tile(), &mk(geoms, &props), &opts).unwrap();
        assert_eq!(l.stats.output, geoms.len());
        tile_bytes.add_encoded(name, &l.bytes).unwrap();
    }
    let bytes = tile_bytes.finish();

    let path = std::env::temp_dir().join(format!("lifeline_tiles_gdal_{}.mvt", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new("ogrinfo")
        .arg("-ro")
        .arg("-al")
        .arg("-so")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ogrinfo failed: {}\n{report}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut got = layer_counts(&report);
    got.sort();
    let mut want = vec![
        ("grid_cells".to_string(), 16),
        ("pipes".to_string(), 25),
        ("sensors".to_string(), 7),
    ];
    want.sort();
    assert_eq!(got, want, "ogrinfo report:\n{report}");
    // GDAL sees the typed attributes.
    assert!(report.contains("kind: String"), "{report}");
    assert!(report.contains("diameter_mm: Integer"), "{report}");
    assert!(report.contains("risk: Real"), "{report}");
}
