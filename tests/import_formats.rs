//! Formats and datums the importer must handle beyond the round-trip formats: DXF and KML
//! (made from an exported GeoJSON with `ogr2ogr`, as a surveyor's CAD or Google Earth
//! delivery would be), Xi'an 1980 and Beijing 1954 Gauss–Krüger surveys with the explicit
//! transformation parameters of their mapping files, and DHDN without an explicit
//! operation (PROJ's best available, not the ballpark). PROJ's command line (`cs2cs`) is
//! the judge for every coordinate.

mod app;
mod import_support;

use app::{fresh_store, Backend};
use import_support::{cs2cs, cs2cs_many, mapping, metres, ogr2ogr, run, shared};
use lifeline::io::gdal::{write_features, OutFeature, OutFormat};
use lifeline::io::import::Mapping;
use lifeline::model::{feature::to_feature, Actor, Layer, Pipeline, Record, Role};
use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

/// The Schutterwald gas network as imported (EPSG:1777), the reference for the formats.
fn gas_pipelines() -> Vec<Pipeline> {
    let r = run(
        &shared("real/schutterwald_gas_gk3.gpkg"),
        &mapping("schutterwald_gas.toml"),
        Layer::Pipelines,
        None,
        false,
    );
    assert_eq!(r.rejected, 0);
    r.data.pipelines
}

/// Writes pipelines to a GeoJSON file in EPSG:4326 (WGS 84 is CGCS2000 to centimetres).
fn write_geojson(pipes: &[Pipeline], path: &Path) {
    let features: Vec<OutFeature> = pipes
        .iter()
        .map(|p| {
            let rec = Record::Pipeline(p.clone());
            OutFeature {
                id: p.id,
                props: to_feature(&rec, Role::Admin)["properties"]
                    .as_object()
                    .cloned()
                    .unwrap(),
                geometry: rec.geometry(),
            }
        })
        .collect();
    write_features(
        path,
        Layer::Pipelines,
        &features,
        "EPSG:4326",
        OutFormat::GeoJson,
    )
    .unwrap();
}

/// Every imported line equals an original line vertex for vertex to 1e-8° (~1 mm);
/// originals are found by their first vertex (formats without our ids).
fn assert_same_lines(what: &str, originals: &[Pipeline], got: &[Pipeline]) {
    assert_eq!(got.len(), originals.len(), "{what}: count");
    let key = |c: &geo::Coord<f64>| ((c.x * 1e6).round() as i64, (c.y * 1e6).round() as i64);
    let mut by_start: HashMap<(i64, i64), Vec<&Pipeline>> = HashMap::new();
    for o in originals {
        by_start.entry(key(&o.geometry.0[0])).or_default().push(o);
    }
    for p in got {
        let candidates = by_start
            .get(&key(&p.geometry.0[0]))
            .unwrap_or_else(|| panic!("{what}: no original starts at {:?}", p.geometry.0[0]));
        let same = candidates.iter().any(|o| {
            o.geometry.0.len() == p.geometry.0.len()
                && o.geometry
                    .0
                    .iter()
                    .zip(&p.geometry.0)
                    .all(|(a, b)| (a.x - b.x).abs() < 1e-8 && (a.y - b.y).abs() < 1e-8)
        });
        assert!(same, "{what}: {:?} matches no original", p.geometry.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dxf_and_kml_deliveries_import() {
    let originals = gas_pipelines();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("gas.geojson");
    write_geojson(&originals, &json);
    let json_s = json.to_str().unwrap();

    // DXF (CAD): geometry only, no CRS, no attribute table — the mapping gives constants
    // and --s-srs the CRS.
    let dxf = dir.path().join("gas.dxf");
    ogr2ogr(&["-f", "DXF", dxf.to_str().unwrap(), json_s]);
    let m = Mapping::parse(
        "[fields]\nkind = { value = \"gas\" }\nowner_id = { value = 101 }\n\
         status = { value = \"in_service\" }\n",
    )
    .unwrap();
    let r = run(&dxf, &m, Layer::Pipelines, Some("EPSG:4326"), false);
    assert_eq!((r.read, r.rejected), (originals.len(), 0), "{:?}", r.issues);
    assert!(
        r.source_layer.eq_ignore_ascii_case("entities"),
        "{}",
        r.source_layer
    );
    assert_same_lines("DXF", &originals, &r.data.pipelines);

    // KML (Google Earth): WGS 84 by definition, attributes in ExtendedData.
    let kml = dir.path().join("gas.kml");
    ogr2ogr(&["-f", "KML", kml.to_str().unwrap(), json_s]);
    let m = Mapping::parse(
        "[fields]\nkind = { from = \"kind\" }\n\
         pressure_class = { from = \"pressure_class\" }\nmaterial = { from = \"material\" }\n\
         diameter_mm = { from = \"diameter_mm\" }\nowner_id = { from = \"owner_id\" }\n\
         status = { from = \"status\" }\n",
    )
    .unwrap();
    let r = run(&kml, &m, Layer::Pipelines, None, false);
    assert_eq!(
        (r.read, r.rejected),
        (originals.len(), 0),
        "{:?}",
        &r.issues[..r.issues.len().min(3)]
    );
    assert_eq!(r.source_crs.as_deref(), Some("EPSG:4326"));
    assert_same_lines("KML", &originals, &r.data.pipelines);
    // KML keeps the order, so attributes are compared row by row.
    for (p, o) in r.data.pipelines.iter().zip(&originals) {
        let (a, b) = (p.geometry.0[0], o.geometry.0[0]);
        assert!((a.x - b.x).abs() < 1e-8 && (a.y - b.y).abs() < 1e-8);
        assert_eq!(
            (&p.material, p.diameter_mm, p.pressure_class),
            (&o.material, o.diameter_mm, o.pressure_class)
        );
    }
    // And into a store, with the owner the gas mapping creates.
    let (store, _, _d) = fresh_store(Backend::Gpkg).await;
    let mut data = r.data;
    data.owners
        .push(mapping("schutterwald_gas.toml").owner.unwrap());
    store.bulk_load(&data, &Actor::cli()).await.unwrap();
    let n = store.counts().await.unwrap();
    assert!(
        n.contains(&(Layer::Pipelines, originals.len() as i64)),
        "{n:?}"
    );
}

/// Lines around Chongqing's centre in CGCS2000 lon/lat (= WGS 84 to centimetres).
fn chongqing_lines() -> Vec<Vec<(f64, f64)>> {
    (0..12)
        .map(|i| {
            let (x, y) = (
                106.40 + 0.023 * i as f64,
                29.45 + 0.017 * ((i * 7) % 11) as f64,
            );
            (0..4)
                .map(|k| (x + 0.0009 * k as f64, y + 0.0004 * (k * k) as f64))
                .collect()
        })
        .collect()
}

/// Makes a survey CSV in `crs` (a PROJ string) from the lines, with surveyor's columns;
/// returns the source coordinates written.
fn survey_csv(path: &Path, crs: &str, extra: (&str, &str)) -> Vec<Vec<(f64, f64)>> {
    let lines = chongqing_lines();
    let flat: Vec<(f64, f64)> = lines.iter().flatten().copied().collect();
    let projected = cs2cs_many("+proj=longlat +datum=WGS84 +no_defs", crs, &flat);
    let mut csv = format!("WKT,gxbh,gj,cz,{}\n", extra.0);
    let mut out = Vec::new();
    let mut it = projected.into_iter();
    for (i, l) in lines.iter().enumerate() {
        // Millimetre coordinates, as surveys deliver them.
        let pts: Vec<(f64, f64)> = (0..l.len())
            .map(|_| it.next().unwrap())
            .map(|(x, y)| ((x * 1000.0).round() / 1000.0, (y * 1000.0).round() / 1000.0))
            .collect();
        let wkt: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.3} {y:.3}")).collect();
        let _ = write!(
            csv,
            "\"LINESTRING ({})\",JS-{i:03},{},{}",
            wkt.join(", "),
            [100, 150, 200][i % 3],
            ["PE", "钢"][i % 2]
        );
        let _ = writeln!(csv, ",{}", extra.1);
        out.push(pts);
    }
    std::fs::write(path, csv).unwrap();
    out
}

/// Imports a survey CSV with its shipped mapping and checks every vertex against `cs2cs`
/// with the mapping's own CRS string; returns the metres between the import and what the
/// EPSG code alone (PROJ's ballpark) gives, to show the parameters are applied.
fn check_survey(mapping_file: &str, epsg: &str, extra: (&str, &str)) -> f64 {
    let m = mapping(mapping_file);
    let crs = m.source_crs.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("survey.csv");
    let src = survey_csv(&csv, &crs, extra);
    let r = run(&csv, &m, Layer::Pipelines, None, false);
    assert_eq!((r.read, r.rejected), (src.len(), 0), "{:?}", r.issues);
    assert_eq!(r.source_crs.as_deref(), Some(crs.as_str()));
    let flat: Vec<(f64, f64)> = src.iter().flatten().copied().collect();
    let want = cs2cs_many(&crs, "+proj=longlat +datum=WGS84 +no_defs", &flat);
    let got: Vec<(f64, f64)> = r
        .data
        .pipelines
        .iter()
        .flat_map(|p| p.geometry.0.iter().map(|c| (c.x, c.y)))
        .collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g.0 - w.0).abs() < 1e-8 && (g.1 - w.1).abs() < 1e-8,
            "{mapping_file}: {g:?} vs cs2cs {w:?}"
        );
    }
    // Back at the CGCS2000 positions the survey was made from (mm rounding only).
    for (g, t) in got.iter().zip(chongqing_lines().iter().flatten()) {
        assert!(metres(*g, *t) < 0.005, "{mapping_file}: {g:?} vs {t:?}");
    }
    // Attributes through the surveyor's columns.
    let p = &r.data.pipelines[1];
    assert_eq!(
        (p.diameter_mm, p.material.as_deref()),
        (Some(150.0), Some("steel"))
    );
    // The same file read with only the EPSG code lands elsewhere: PROJ has no datum shift.
    let ballpark = run(&csv, &m, Layer::Pipelines, Some(epsg), false);
    let b = ballpark.data.pipelines[0].geometry.0[0];
    metres(got[0], (b.x, b.y))
}

#[test]
fn xian80_survey_with_explicit_parameters() {
    let off = check_survey("xian80_gk105_survey.toml", "EPSG:2380", ("jcnd", "2008"));
    assert!(off > 20.0, "the parameters moved the result only {off} m");
}

#[test]
fn beijing54_survey_with_explicit_parameters() {
    let off = check_survey(
        "beijing54_gk105_survey.toml",
        "EPSG:2432",
        ("ylji", "中压B"),
    );
    assert!(off > 20.0, "the parameters moved the result only {off} m");
}

/// Without an explicit pipeline, DHDN goes to WGS 84 by the best operation PROJ has for
/// the area (here the BeTA2007 grid, ~1.4 m from EPSG:1777), never the ~127 m ballpark of
/// the straight EPSG:31467 → EPSG:4490.
#[test]
fn dhdn_without_pipeline_uses_best_available_operation() {
    let path = shared("real/schutterwald_gas_gk3.gpkg");
    let mut m = mapping("schutterwald_gas.toml");
    m.pipeline = None;
    let r = run(&path, &m, Layer::Pipelines, None, false);
    assert_eq!(r.rejected, 0);
    assert!(r.operation.contains("EPSG:4326"), "{}", r.operation);
    let explicit = gas_pipelines();
    let src = lifeline::io::gdal::read_layer(&path, Some("gas_pipes"), None).unwrap();
    for (i, p) in r.data.pipelines.iter().enumerate().step_by(97) {
        let Ok(Some(geo::Geometry::LineString(l))) = &src.rows[i].geometry else {
            panic!()
        };
        let (e, n) = (l.0[0].x, l.0[0].y);
        // EPSG:31467 and EPSG:4326 are northing-first and latitude-first on the wire.
        let (lat, lon) = cs2cs("EPSG:31467", "EPSG:4326", n, e);
        let c = p.geometry.0[0];
        assert!(
            (c.x - lon).abs() < 1e-8 && (c.y - lat).abs() < 1e-8,
            "row {}: ({}, {}) vs cs2cs ({lon}, {lat})",
            i + 1,
            c.x,
            c.y
        );
        let d = metres(
            (c.x, c.y),
            (explicit[i].geometry.0[0].x, explicit[i].geometry.0[0].y),
        );
        assert!(d < 3.0, "{d} m from EPSG:1777");
        let (blat, blon) = cs2cs("EPSG:31467", "EPSG:4490", n, e);
        assert!(metres((c.x, c.y), (blon, blat)) > 100.0);
    }
}
