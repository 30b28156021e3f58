//! Import and export through GDAL and PROJ with the real deliveries in ../shared/data:
//! the Schutterwald gas network (GeoPackage, EPSG:31467) into both stores, reprojection
//! checked against `cs2cs`; the dirty GCJ-02 district outlines with every defect reported;
//! `--dry-run` writing nothing; and export → import round trips through GeoPackage,
//! GeoJSON, FlatGeobuf, CSV and Shapefile keeping counts, attributes and geometry to 1 mm.

mod app;
mod import_support;

use app::{fresh_store, Backend};
use import_support::{cs2cs, mapping, metres, run, shared};
use lifeline::index::SpatialIndex;
use lifeline::io::export::{export, ExportOptions};
use lifeline::io::gdal::{read_layer, OutFormat};
use lifeline::io::import::{Mapping, Outcome};
use lifeline::model::crs::MetricCrs;
use lifeline::model::{Actor, Layer, Pipeline};
use std::path::Path;
use std::process::Command;

/// DHDN / 3-degree Gauss–Krüger zone 3 with the EPSG:1777 Helmert to WGS84, as `cs2cs`
/// takes it (the mapping gives the same operation as a pipeline).
const GK3_1777: &str = "+proj=tmerc +lat_0=0 +lon_0=9 +k=1 +x_0=3500000 +y_0=0 +ellps=bessel \
    +towgs84=598.1,73.7,418.2,0.202,0.045,-2.455,6.7 +units=m +no_defs";
const WGS84: &str = "+proj=longlat +datum=WGS84 +no_defs";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_network_into_both_stores() {
    let path = shared("real/schutterwald_gas_gk3.gpkg");
    let report = run(
        &path,
        &mapping("schutterwald_gas.toml"),
        Layer::Pipelines,
        None,
        false,
    );
    assert_eq!(report.read, 2559);
    assert_eq!(report.source_crs.as_deref(), Some("EPSG:31467"));
    assert_eq!(report.accepted + report.rejected, report.read);
    assert_eq!(report.data.pipelines.len(), report.accepted);
    assert!(
        report.accepted > 2500,
        "{:?}",
        &report.issues[..report.issues.len().min(5)]
    );
    // Attributes mapped: 125 mm PE mains from diameter_m and stanet_std_type.
    let src = read_layer(&path, Some("gas_pipes"), None).unwrap();
    let row = src
        .rows
        .iter()
        .find(|r| r.fields["stanet_std_type"] == "125 PE 100 SDR 11")
        .unwrap();
    let p: &Pipeline = &report.data.pipelines[row.row - 1];
    assert_eq!(p.material.as_deref(), Some("PE 100 SDR 11"));
    let d = row.fields["diameter_m"].as_f64().unwrap() * 1000.0;
    assert!((p.diameter_mm.unwrap() - d).abs() < 1e-9);
    // Reprojection uses the EPSG:1777 Helmert the mapping names and equals PROJ's command
    // line with the same parameters, to 1e-8 degrees (~1 mm).
    assert!(
        report.operation.contains("+proj=helmert +x=598.1"),
        "{}",
        report.operation
    );
    let Ok(Some(geo::Geometry::LineString(l))) = &row.geometry else {
        panic!("{:?}", row.geometry)
    };
    let (e, n) = (l.0[0].x, l.0[0].y);
    let (lon, lat) = cs2cs(GK3_1777, WGS84, e, n);
    let c = p.geometry.0[0];
    assert!(
        (c.x - lon).abs() < 1e-8 && (c.y - lat).abs() < 1e-8,
        "({}, {}) vs cs2cs EPSG:1777 ({lon}, {lat})",
        c.x,
        c.y
    );
    // PROJ's straight EPSG:31467 → EPSG:4490 is a ballpark (no datum shift): ~127 m away.
    // (EPSG:31467 is northing, easting on the wire; GDAL hands the importer easting, northing.)
    let (blat, blon) = cs2cs("EPSG:31467", "EPSG:4490", n, e);
    let off = metres((c.x, c.y), (blon, blat));
    assert!((100.0..150.0).contains(&off), "ballpark is {off} m away");

    for backend in [Backend::Gpkg, Backend::Postgis] {
        let (store, _, _dir) = fresh_store(backend).await;
        store.bulk_load(&report.data, &Actor::cli()).await.unwrap();
        let counts = store.counts().await.unwrap();
        let n = counts
            .iter()
            .find(|(l, _)| *l == Layer::Pipelines)
            .unwrap()
            .1;
        assert_eq!(n as usize, report.accepted, "{backend:?}");
    }
}

#[test]
fn dirty_gcj02_districts_report_every_defect() {
    let path = shared("dirty_districts_gcj02.geojson");
    let report = run(
        &path,
        &mapping("districts_gcj02.toml"),
        Layer::GridCells,
        None,
        false,
    );
    assert_eq!(report.read, 38);
    // Nothing is dropped silently: every row is accepted or named in the report.
    assert_eq!(report.accepted + report.rejected, 38);
    assert_eq!(report.data.grid_cells.len(), report.accepted);
    let rejected: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.outcome == Outcome::Rejected)
        .collect();
    assert_eq!(rejected.len(), report.rejected);
    assert!(
        report.rejected > 0 && report.repaired > 0,
        "{:?}",
        report.issues
    );
    for i in &report.issues {
        assert!(i.row >= 1 && i.row <= 38 && !i.reason.is_empty(), "{i:?}");
    }
    assert!(report
        .issues
        .iter()
        .any(|i| i.reason.contains("re-oriented")));
    assert!(report
        .issues
        .iter()
        .any(|i| i.reason.contains("fewer than 3 distinct")));
    assert!(
        rejected
            .iter()
            .all(|i| i.reason.contains("invalid geometry")),
        "{rejected:?}"
    );

    // GCJ-02 converted back: each accepted district lies much closer to the clean CGCS2000
    // outline of the same adcode than the raw GCJ-02 outline does.
    use geo::Centroid;
    let mut as_is = mapping("districts_gcj02.toml");
    as_is.gcj02 = false;
    let raw = run(&path, &as_is, Layer::GridCells, None, false);
    let clean: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared("chongqing_districts.geojson")).unwrap(),
    )
    .unwrap();
    let mut compared = 0;
    for cell in &report.data.grid_cells {
        let Some(rawc) = raw.data.grid_cells.iter().find(|c| c.code == cell.code) else {
            continue;
        };
        let Some(f) = clean["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["properties"].to_string().contains(&cell.code))
        else {
            continue;
        };
        let g: geojson::Geometry = serde_json::from_value(f["geometry"].clone()).unwrap();
        let g: geo::Geometry<f64> = g.try_into().unwrap();
        let cc = g.centroid().unwrap();
        let a = cell.geometry.centroid().unwrap();
        let b = rawc.geometry.centroid().unwrap();
        let da = ((a.x() - cc.x()).powi(2) + (a.y() - cc.y()).powi(2)).sqrt();
        let db = ((b.x() - cc.x()).powi(2) + (b.y() - cc.y()).powi(2)).sqrt();
        assert!(da < db, "{}: converted {da} vs raw {db}", cell.code);
        compared += 1;
    }
    assert!(compared >= 30, "{compared}");
}

#[test]
fn cli_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.gpkg");
    let out = Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .arg("--gpkg")
        .arg(&store)
        .arg("import")
        .arg(shared("real/network_ky4_wgs84.geojson"))
        .args(["--layer", "pipelines", "--dry-run", "--mapping"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mappings/ky4_water.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("read 1156 rows") && text.contains("dry run: nothing written"),
        "{text}"
    );
    assert!(!store.exists(), "a dry run must not create the store");
}

/// Maps every model field the exported file has a column for (GeoJSON omits columns that
/// are null throughout; Shapefile truncates names to 10 characters).
fn identity_mapping(path: &Path, shapefile: bool) -> Mapping {
    let columns = read_layer(path, None, None).unwrap().field_names;
    let names = [
        "id",
        "kind",
        "sub_kind",
        "pressure_class",
        "voltage_kv",
        "material",
        "diameter_mm",
        "depth_start_m",
        "depth_end_m",
        "burial",
        "owner_id",
        "year_built",
        "survey_date",
        "plan_accuracy_cm",
        "depth_accuracy_cm",
        "quality_level",
        "status",
    ];
    let mut t = String::from("[fields]\n");
    for n in names {
        // Shapefile (dBase) field names hold 10 characters; GDAL truncates longer ones.
        let src = if shapefile { &n[..n.len().min(10)] } else { n };
        if !columns.iter().any(|c| c == src) {
            continue;
        }
        t.push_str(&format!("{n} = {{ from = \"{src}\" }}\n"));
    }
    t.push_str("[owner]\nid = 101\nname = \"Schutterwald gas network (pandapipes sample)\"\nemergency_contact = \"network control room\"\nemergency_phone = \"+49 781 000000\"\n");
    Mapping::parse(&t).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_round_trips() {
    let report = run(
        &shared("real/schutterwald_gas_gk3.gpkg"),
        &mapping("schutterwald_gas.toml"),
        Layer::Pipelines,
        None,
        false,
    );
    let (store, _, _d) = fresh_store(Backend::Gpkg).await;
    store.bulk_load(&report.data, &Actor::cli()).await.unwrap();
    let data = store.load_all().await.unwrap();
    let originals = data.pipelines.clone();
    let index = SpatialIndex::new(MetricCrs::auto(7.9, 48.45));
    index.load(data).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (fmt, crs) in [
        (OutFormat::GeoPackage, "EPSG:4490"),
        (OutFormat::GeoJson, "EPSG:4490"),
        (OutFormat::FlatGeobuf, "EPSG:4490"),
        (OutFormat::Csv, "EPSG:4490"),
        (OutFormat::Shapefile, "EPSG:4490"),
        (OutFormat::GeoPackage, "EPSG:32632"),
    ] {
        let path = dir
            .path()
            .join(format!("out_{}.{}", crs.replace(':', "_"), fmt.extension()));
        let opts = ExportOptions {
            layer: Layer::Pipelines,
            format: fmt,
            crs: crs.into(),
            bbox: None,
            filter: None,
            provenance: None,
        };
        let n = export(&index, &opts, &path).unwrap();
        assert_eq!(n, originals.len(), "{fmt:?}");
        // CSV carries no CRS; everything else declares it.
        let s_srs = (fmt == OutFormat::Csv).then_some("EPSG:4490");
        let back = run(
            &path,
            &identity_mapping(&path, fmt == OutFormat::Shapefile),
            Layer::Pipelines,
            s_srs,
            false,
        );
        assert_eq!(
            back.rejected,
            0,
            "{fmt:?} {crs}: {:?}",
            &back.issues[..back.issues.len().min(3)]
        );
        assert_eq!(back.data.pipelines.len(), originals.len(), "{fmt:?} {crs}");
        for p in &back.data.pipelines {
            let o = originals
                .iter()
                .find(|o| o.id == p.id)
                .unwrap_or_else(|| panic!("{fmt:?}: id {} not exported", p.id));
            assert_eq!(
                (o.kind, o.pressure_class, &o.material, o.owner_id, o.status),
                (p.kind, p.pressure_class, &p.material, p.owner_id, p.status),
                "{fmt:?} id {}",
                p.id
            );
            assert!(
                (o.diameter_mm.unwrap() - p.diameter_mm.unwrap()).abs() < 1e-6,
                "{fmt:?}"
            );
            assert_eq!(o.geometry.0.len(), p.geometry.0.len());
            for (a, b) in o.geometry.0.iter().zip(&p.geometry.0) {
                // 1e-8 degrees is about 1 mm.
                assert!(
                    (a.x - b.x).abs() < 1e-8 && (a.y - b.y).abs() < 1e-8,
                    "{fmt:?} {crs} id {}: {a:?} vs {b:?}",
                    p.id
                );
            }
        }
    }
    // A CQL2 filter and a box cut the export the same way the API does.
    let mut ds: Vec<f64> = originals.iter().filter_map(|p| p.diameter_mm).collect();
    ds.sort_by(f64::total_cmp);
    let t = ds[ds.len() / 2];
    let bbox = lifeline::model::Bbox::new(7.86, 48.44, 7.885, 48.46).unwrap();
    let opts = ExportOptions {
        layer: Layer::Pipelines,
        format: OutFormat::GeoJson,
        crs: "EPSG:4490".into(),
        bbox: Some(bbox),
        filter: Some(format!("diameter_mm > {t}")),
        provenance: None,
    };
    let n = export(&index, &opts, &dir.path().join("big.geojson")).unwrap();
    let rect = bbox.to_rect();
    let want = originals
        .iter()
        .filter(|p| {
            p.diameter_mm.is_some_and(|d| d > t) && geo::Intersects::intersects(&p.geometry, &rect)
        })
        .count();
    assert_eq!(n, want);
    assert!(n > 0 && n < originals.len());
}
