//! The excavation check on real networks (issue 4): the Schutterwald 1-bar gas network
//! (EPSG:31467 GeoPackage, reprojected here with GDAL's `ogr2ogr`) and the 0.4 kV cable
//! network of the same town (`../shared/data/real`, see its README), mapped to pipelines,
//! bulk-loaded into PostGIS and a GeoPackage through the store API, and checked with digs
//! along them through the real server. Results are documented in docs/excavation.md.
//!
//! Reprojection: PROJ has no DHDN → CGCS2000 transformation, so `ogr2ogr -t_srs EPSG:4490`
//! silently uses a "ballpark" (no datum shift) and lands ~127 m off. The gas file is
//! therefore taken to WGS84 with the DHDN → WGS84 Helmert EPSG:1777 (the conversion the
//! power layer was made with) and WGS84 is used as CGCS2000 (domain reference §6: the same
//! to centimetres). The test proves both: the ballpark gas does not meet the power
//! network, the EPSG:1777 gas does (house-connection ends on cable ends to 5 cm).

mod app;

use app::{fresh_store, Backend};
use lifeline::config::Config;
use lifeline::model::{Actor, Dataset, GasPressure, Owner, PipeKind, Pipeline, QualityLevel};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// DHDN / 3-degree Gauss–Krüger zone 3 with the EPSG:1777 Helmert to WGS84.
const GK3_1777: &str = "+proj=tmerc +lat_0=0 +lon_0=9 +k=1 +x_0=3500000 +y_0=0 +ellps=bessel \
    +towgs84=598.1,73.7,418.2,0.202,0.045,-2.455,6.7 +units=m +no_defs";

fn ogr2ogr(out: &Path, args: &[&str]) -> Value {
    let gpkg = app::shared_data_dir()
        .join("real/schutterwald_gas_gk3.gpkg")
        .display()
        .to_string();
    let status = Command::new("ogr2ogr")
        .args(["-f", "GeoJSON"])
        .args(args)
        .arg(out)
        .arg(&gpkg)
        .arg("gas_pipes")
        .status()
        .expect("ogr2ogr (gdal-bin) must be installed");
    assert!(status.success(), "ogr2ogr failed");
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

fn lines(fc: &Value) -> Vec<(Value, Vec<[f64; 2]>)> {
    fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let coords = f["geometry"]["coordinates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| [c[0].as_f64().unwrap(), c[1].as_f64().unwrap()])
                .collect();
            (f["properties"].clone(), coords)
        })
        .collect()
}

/// Share of gas vertices with a power vertex within 5 cm (local metres at 48.45° N).
fn coincidence(gas: &[(Value, Vec<[f64; 2]>)], power: &[(Value, Vec<[f64; 2]>)]) -> f64 {
    let key = |c: &[f64; 2]| ((c[0] * 1e4) as i64, (c[1] * 1e4) as i64);
    let mut grid: std::collections::HashMap<(i64, i64), Vec<[f64; 2]>> = Default::default();
    for (_, cs) in power {
        for c in cs {
            grid.entry(key(c)).or_default().push(*c);
        }
    }
    let (mut hit, mut n) = (0usize, 0usize);
    for (_, cs) in gas {
        for c in cs {
            n += 1;
            let (kx, ky) = key(c);
            let near = (-1..=1).flat_map(|dx| (-1..=1).map(move |dy| (kx + dx, ky + dy)));
            let close = near.filter_map(|k| grid.get(&k)).flatten().any(|p| {
                let dx = (p[0] - c[0]) * 73_900.0;
                let dy = (p[1] - c[1]) * 111_200.0;
                (dx * dx + dy * dy).sqrt() < 0.05
            });
            hit += close as usize;
        }
    }
    hit as f64 / n as f64
}

/// Maps both networks to pipelines; returns the data set and how many were rejected.
fn dataset(gas: &[(Value, Vec<[f64; 2]>)], power: &[(Value, Vec<[f64; 2]>)]) -> (Dataset, usize) {
    let owner = |id, name: &str| Owner {
        id,
        name: name.into(),
        emergency_contact: "Netzleitstelle".into(),
        emergency_phone: "+49 781 0000".into(),
        email: None,
    };
    let mut data = Dataset {
        owners: vec![
            owner(1, "Schutterwald gas (pandapipes sample)"),
            owner(2, "Schutterwald LV grid (pandapower sample)"),
        ],
        ..Default::default()
    };
    let mut rejected = 0;
    for (i, (p, cs)) in gas.iter().enumerate() {
        let mut pipe = Pipeline::new(
            i as i64 + 1,
            PipeKind::Gas,
            1,
            geo::LineString::from(cs.iter().map(|c| (c[0], c[1])).collect::<Vec<_>>()),
        );
        // 1 bar = 0.1 MPa: medium pressure B.
        pipe.pressure_class = GasPressure::from_mpa(0.1);
        pipe.diameter_mm = p["diameter_m"].as_f64().map(|d| d * 1000.0);
        pipe.material = Some("PE 100".into());
        // Straight lines between junctions: schematic records, quality level D.
        pipe.quality_level = Some(QualityLevel::QlD);
        if pipe.validate().is_ok() {
            data.pipelines.push(pipe);
        } else {
            rejected += 1;
        }
    }
    let base = gas.len() as i64 + 1;
    for (i, (_, cs)) in power.iter().enumerate() {
        let mut cable = Pipeline::new(
            base + i as i64,
            PipeKind::Power,
            2,
            geo::LineString::from(cs.iter().map(|c| (c[0], c[1])).collect::<Vec<_>>()),
        );
        cable.voltage_kv = Some(0.4);
        cable.material = Some("NAYY (aluminium)".into());
        // No depth and no accuracy recorded: horizontal rule and widest tolerance.
        if cable.validate().is_ok() {
            data.pipelines.push(cable);
        } else {
            rejected += 1;
        }
    }
    (data, rejected)
}

struct Server {
    addr: std::net::SocketAddr,
    key: String,
    tx: tokio::sync::oneshot::Sender<()>,
    _dir: Option<tempfile::TempDir>,
}

async fn serve(backend: Backend, data: &Dataset) -> (Server, String) {
    let (store, url, dir) = fresh_store(backend).await;
    store
        .bulk_load(data, &Actor::cli())
        .await
        .expect("bulk load");
    let key = lifeline::auth::generate_key();
    store
        .create_api_key(
            "site-firm",
            lifeline::model::Role::Contractor,
            &lifeline::auth::hash_key(&key),
            &Actor::cli(),
        )
        .await
        .unwrap();
    let config = Config {
        store_url: url,
        http: lifeline::config::HttpLimits::default().without_rate_limits(),
        ..Config::default()
    };
    let state = lifeline::AppState::with_store(store, config, app::test_clock())
        .await
        .expect("state");
    let crs = state.index.crs().code().to_string();
    let (addr, tx, _server) = app::serve(state).await;
    (
        Server {
            addr,
            key,
            tx,
            _dir: dir,
        },
        crs,
    )
}

async fn check(s: &Server, body: &Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("http://{}/excavation/check", s.addr))
        .bearer_auth(&s.key)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn trench(coords: Vec<[f64; 2]>, width: f64, method: &str) -> Value {
    let today = app::today().to_string();
    json!({"geometry": {"type": "LineString", "coordinates": coords}, "width_m": width,
        "top_depth_m": 0.0, "bottom_depth_m": 1.5, "method": method, "work_type": "fibre duct",
        "start_date": today, "end_date": today})
}

async fn real_networks(backend: Backend) {
    assert!(
        app::shared_data_dir().join("real/README.md").exists(),
        "shared real data missing"
    );
    let dir = tempfile::tempdir().unwrap();
    let ballpark = lines(&ogr2ogr(
        &dir.path().join("gas_ballpark.geojson"),
        &["-t_srs", "EPSG:4490"],
    ));
    let gas = lines(&ogr2ogr(
        &dir.path().join("gas.geojson"),
        &["-s_srs", GK3_1777, "-t_srs", "EPSG:4326"],
    ));
    let power_fc: Value = serde_json::from_str(
        &std::fs::read_to_string(app::shared_data_dir().join("real/schutterwald_lv_power.geojson"))
            .unwrap(),
    )
    .unwrap();
    let power = lines(&power_fc);
    assert_eq!((gas.len(), power.len()), (2559, 3000));
    let (good, bad) = (coincidence(&gas, &power), coincidence(&ballpark, &power));
    eprintln!("gas vertices on a cable end (5 cm): EPSG:1777 {good:.3}, ogr2ogr -t_srs EPSG:4490 {bad:.3}");
    assert!(good > 0.25, "{good}");
    assert!(bad < 0.01, "{bad}");

    let (data, rejected) = dataset(&gas, &power);
    eprintln!(
        "mapped {} pipelines ({} gas, {} power), rejected {rejected}",
        data.pipelines.len(),
        data.pipelines
            .iter()
            .filter(|p| p.kind == PipeKind::Gas)
            .count(),
        data.pipelines
            .iter()
            .filter(|p| p.kind == PipeKind::Power)
            .count()
    );
    assert!(rejected < 10, "{rejected}");
    let (server, crs) = serve(backend, &data).await;
    assert_eq!(
        crs, "EPSG:32632",
        "Schutterwald (7.9° E) measures in UTM 32N"
    );

    // 1. A 1 m wide trench along the middle 20 m of the longest gas main, 1.5 m deep.
    let main = data
        .pipelines
        .iter()
        .filter(|p| p.kind == PipeKind::Gas && p.diameter_mm.unwrap_or(0.0) > 140.0)
        .max_by(|a, b| {
            geo::Euclidean
                .length(&a.geometry)
                .total_cmp(&geo::Euclidean.length(&b.geometry))
        })
        .map(|p| p.id);
    let main = data
        .pipelines
        .iter()
        .find(|p| Some(p.id) == main)
        .or_else(|| data.pipelines.iter().find(|p| p.kind == PipeKind::Gas))
        .unwrap();
    let (a, b) = (
        main.geometry.0[0],
        main.geometry.0[main.geometry.0.len() - 1],
    );
    let mid = |t: f64| [a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t];
    let v = check(
        &server,
        &trench(vec![mid(0.4), mid(0.6)], 1.0, "mechanical"),
    )
    .await;
    let hit = v["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["pipeline_id"] == main.id)
        .expect("the main itself");
    assert_eq!(hit["severity"], "violation");
    assert_eq!(hit["depth_known"], false);
    assert_eq!(hit["rule_id"], "gb50289-4.1.9-gas-medium");
    eprintln!(
        "along main {}: {} — {} conflicts ({} violation, {} warning, {} info), owners {}",
        main.id,
        v["summary"]["verdict"],
        v["conflicts"].as_array().unwrap().len(),
        v["summary"]["violations"],
        v["summary"]["warnings"],
        v["summary"]["infos"],
        v["summary"]["owners_to_notify"]
    );

    // 2. The same trench moved 10 m sideways (perpendicular, in local metres): the main
    //    drops to the information margin or out.
    let (dx, dy) = ((b.x - a.x) * 73_900.0, (b.y - a.y) * 111_200.0);
    let len = (dx * dx + dy * dy).sqrt();
    let (nx, ny) = (-dy / len * 10.0 / 73_900.0, dx / len * 10.0 / 111_200.0);
    let shifted = vec![
        [mid(0.4)[0] + nx, mid(0.4)[1] + ny],
        [mid(0.6)[0] + nx, mid(0.6)[1] + ny],
    ];
    let v2 = check(&server, &trench(shifted, 1.0, "mechanical")).await;
    let moved = v2["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["pipeline_id"] == main.id);
    if let Some(m) = moved {
        let d = m["horizontal_distance_m"].as_f64().unwrap();
        assert!((9.0..=10.0).contains(&d), "{m}");
        assert_ne!(m["severity"], "violation");
    }
    eprintln!(
        "10 m aside: {} — {} conflicts; main {}",
        v2["summary"]["verdict"],
        v2["conflicts"].as_array().unwrap().len(),
        moved
            .map(|m| format!("{} at {} m", m["severity"], m["horizontal_distance_m"]))
            .unwrap_or("not reported".into())
    );

    // 3. House-connection digs (5 m × 5 m) on 50 cables' first vertices: the
    //    cable is always a violation (no depth: horizontal rule only); gas pipes nearby
    //    show up too, as the two networks share the streets.
    let mut gas_near = 0;
    let mut sev = std::collections::BTreeMap::<String, usize>::new();
    for cable in data
        .pipelines
        .iter()
        .filter(|p| p.kind == PipeKind::Power)
        .step_by(60)
    {
        let c = cable.geometry.0[0];
        let (hx, hy) = (2.5 / 73_900.0, 2.5 / 111_200.0);
        let today = app::today().to_string();
        let body = json!({"geometry": {"type": "Polygon", "coordinates": [[[c.x - hx, c.y - hy], [c.x + hx, c.y - hy], [c.x + hx, c.y + hy], [c.x - hx, c.y + hy], [c.x - hx, c.y - hy]]]},
            "top_depth_m": 0.0, "bottom_depth_m": 1.2, "method": "manual", "work_type": "house connection",
            "start_date": today, "end_date": today});
        let v = check(&server, &body).await;
        let cs = v["conflicts"].as_array().unwrap();
        let me = cs
            .iter()
            .find(|x| x["pipeline_id"] == cable.id)
            .expect("the cable");
        assert_eq!(me["severity"], "violation");
        assert!(me["reasons"].to_string().contains("horizontal rule only"));
        assert_eq!(me["accuracy_source"], "unknown");
        gas_near += cs.iter().any(|x| x["kind"] == "gas") as usize;
        for x in cs {
            *sev.entry(format!(
                "{}:{}",
                x["kind"].as_str().unwrap(),
                x["severity"].as_str().unwrap()
            ))
            .or_default() += 1;
        }
    }
    eprintln!("50 house-connection digs on cables: {gas_near} also near gas; conflicts by kind:severity {sev:?}");
    assert!(gas_near > 0);
    let _ = server.tx.send(());
}
every_backend!(real_networks);

use geo::Length;
