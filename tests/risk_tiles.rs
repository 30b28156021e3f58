//! The derived vector-tile layers of the risk one map (issue 5 item 5) on a real PostGIS
//! and a real GeoPackage: `grid_stats` tiles carry the same numbers as
//! `GET /risk/grid-stats` for the same cells at the level their zoom maps to, an alarm
//! raised by posting readings changes the next tile (the layers are never served stale),
//! `alarm_density` carries the open alarms with their severity weights, and the usual tile
//! HTTP behaviour holds (204, ETag/304, gzip, composition with stored layers, TileJSON
//! with field types, the `risk` style with a choropleth and a heat map).
//!
//! Fixtures (tests/app/fixtures.rs): risk points 1 and 2 in street 2 of district 1, gas
//! sensor 1 linked to risk point 1.

mod app;

use app::{Backend, TestApp};
use chrono::{Duration, SecondsFormat};
use lifeline::model::Role;
use lifeline_tiles::{decode_tile, DecodedTile, TileCoord};
use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, ETAG, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Read;

fn ago(secs: i64) -> String {
    (app::now() - Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn json_of(app: &TestApp, path: &str) -> Value {
    let r = app.req(Method::GET, path, None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

/// A tile: status, ETag, Cache-Control and the decoded tile (when 200).
async fn tile(
    app: &TestApp,
    path: &str,
    etag: Option<&str>,
) -> (StatusCode, Option<String>, String, Option<DecodedTile>) {
    let mut req = app.req(Method::GET, path, None);
    if let Some(e) = etag {
        req = req.header(IF_NONE_MATCH, e);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let h = |n| {
        r.headers()
            .get(n)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_string())
    };
    let (tag, cc) = (h(ETAG), h(CACHE_CONTROL).unwrap_or_default());
    let bytes = r.bytes().await.unwrap();
    let decoded = (status == StatusCode::OK).then(|| decode_tile(&bytes).expect("valid MVT"));
    (status, tag, cc, decoded)
}

fn num(v: &lifeline_tiles::Value<'_>) -> f64 {
    use lifeline_tiles::Value as V;
    match v {
        V::Float(f) => f64::from(*f),
        V::Double(f) => *f,
        V::Int(i) | V::SInt(i) => *i as f64,
        V::UInt(u) => *u as f64,
        other => panic!("not a number: {other:?}"),
    }
}

/// Checks every feature of the `grid_stats` layer against the JSON statistics of `level`;
/// returns the features' cell ids.
fn same_as_json(t: &DecodedTile, stats: &Value, level: &str) -> Vec<i64> {
    let layer = t.layer("grid_stats").expect("grid_stats layer");
    let cells = stats["cells"].as_array().unwrap();
    let mut ids = Vec::new();
    for f in &layer.features {
        let id = num(f.get("id").unwrap()) as i64;
        let cell = cells
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("cell {id} not in {stats}"));
        assert_eq!(f.get("level").unwrap().as_str(), Some(level));
        assert_eq!(f.get("name").unwrap().as_str(), cell["name"].as_str());
        for key in [
            "risk_points",
            "major",
            "large",
            "general",
            "low",
            "covered",
            "coverage",
            "open_alarms",
            "sensors",
            "offline_sensors",
            "unlinked_sensors",
            "unlinked_offline",
        ] {
            assert_eq!(
                num(f.get(key).unwrap()),
                cell[key].as_f64().unwrap(),
                "{key} of cell {id}"
            );
        }
        assert_eq!(
            num(f.get("coverage_pct").unwrap()),
            cell["coverage"].as_f64().unwrap() * 100.0
        );
        ids.push(id);
    }
    ids
}

async fn derived_tiles_follow_the_statistics(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = json_of(&app, "/risk/points/1").await;
    let (lon, lat) = (p["lon"].as_f64().unwrap(), p["lat"].as_f64().unwrap());
    let at = |z: u8| {
        let t = TileCoord::from_lonlat(lon, lat, z).unwrap();
        format!("{}/{}/{}", t.z(), t.x(), t.y())
    };

    // z8 shows districts, z10 streets: the same numbers as the JSON of that level.
    let districts = json_of(&app, "/risk/grid-stats?level=district").await;
    let (s, _, cc, t) = tile(&app, &format!("/tiles/grid_stats/{}.mvt", at(8)), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cc, "no-cache", "derived tiles are revalidated");
    assert!(same_as_json(&t.unwrap(), &districts, "district").contains(&1));
    let streets = json_of(&app, "/risk/grid-stats?level=street").await;
    let path = format!("/tiles/grid_stats/{}.mvt", at(10));
    let (s, etag, _, t) = tile(&app, &path, None).await;
    assert_eq!(s, StatusCode::OK);
    let t = t.unwrap();
    assert!(same_as_json(&t, &streets, "street").contains(&2));
    let before = t
        .layer("grid_stats")
        .unwrap()
        .features
        .iter()
        .find(|f| num(f.get("id").unwrap()) == 2.0)
        .map(|f| num(f.get("open_alarms").unwrap()))
        .unwrap();
    let etag = etag.expect("ETag");
    // Unchanged: 304.
    let (s, _, _, _) = tile(&app, &path, Some(&etag)).await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    // Far from the data: 204.
    let (s, _, _, _) = tile(&app, "/tiles/grid_stats,alarm_density/10/0/0.mvt", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // No open alarm yet near the point.
    let density_path = format!("/tiles/alarm_density/{}.mvt", at(12));
    let heat0 = json_of(&app, "/risk/alarm-density").await;
    let (s, _, _, t) = tile(&app, &density_path, None).await;
    let n0 = heat0["features"].as_array().unwrap().len();
    if n0 == 0 {
        assert_eq!(s, StatusCode::NO_CONTENT);
    } else {
        assert_eq!(s, StatusCode::OK);
        assert!(t.unwrap().layer("alarm_density").is_some());
    }

    // An alarm raised by readings changes the next tile (no stale cache).
    let r = app
        .req(Method::POST, "/sensors/readings", Some(Role::Operator))
        .json(&json!([
            {"sensor_id": 1, "time": ago(120), "value": 25.0},
            {"sensor_id": 1, "time": ago(100), "value": 26.0},
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let streets = json_of(&app, "/risk/grid-stats?level=street").await;
    let (s, etag2, _, t) = tile(&app, &path, Some(&etag)).await;
    assert_eq!(s, StatusCode::OK, "the old ETag no longer matches");
    assert_ne!(etag2.as_deref(), Some(etag.as_str()));
    let t = t.unwrap();
    same_as_json(&t, &streets, "street");
    let after = t
        .layer("grid_stats")
        .unwrap()
        .features
        .iter()
        .find(|f| num(f.get("id").unwrap()) == 2.0)
        .map(|f| num(f.get("open_alarms").unwrap()))
        .unwrap();
    assert_eq!(after, before + 1.0);

    // The alarm is in the heat-map layer with the JSON's weight.
    let heat = json_of(&app, "/risk/alarm-density").await;
    let (s, _, _, t) = tile(&app, &density_path, None).await;
    assert_eq!(s, StatusCode::OK);
    let t = t.unwrap();
    let layer = t.layer("alarm_density").unwrap();
    assert_eq!(
        layer.features.len(),
        heat["features"].as_array().unwrap().len()
    );
    for f in &layer.features {
        let id = num(f.get("id").unwrap()) as i64;
        let j = heat["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["properties"]["id"] == id)
            .expect("alarm in JSON");
        assert_eq!(
            num(f.get("weight").unwrap()),
            j["properties"]["weight"].as_f64().unwrap()
        );
        assert_eq!(
            f.get("severity").unwrap().as_str(),
            j["properties"]["severity"].as_str()
        );
        assert_eq!(num(f.get("sensor_id").unwrap()), 1.0);
    }

    // gzip, with its own ETag; decompresses to the identity tile.
    let r = app
        .req(Method::GET, &path, None)
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
    assert_ne!(
        r.headers()[ETAG].to_str().unwrap(),
        etag2.as_deref().unwrap()
    );
    let gz = r.bytes().await.unwrap();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut raw)
        .unwrap();
    let identity = app
        .req(Method::GET, &path, None)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(raw, identity.to_vec());

    // Composed with stored layers.
    let (s, _, _, t) = tile(
        &app,
        &format!("/tiles/grid_cells,grid_stats,alarm_density/{}.mvt", at(10)),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let t = t.unwrap();
    for l in ["grid_cells", "grid_stats", "alarm_density"] {
        assert!(t.layer(l).is_some(), "{l}");
    }

    // Bad lists are refused clearly.
    let bad = app
        .req(Method::GET, "/tiles/grid_stats,grid_stats/1/0/0.mvt", None)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad = app
        .req(Method::GET, "/tiles/grid_stats,pipes/1/0/0.mvt", None)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::NOT_FOUND);

    // TileJSON with field types.
    let tj = json_of(&app, "/tiles/grid_cells,grid_stats,alarm_density.json").await;
    let layers = tj["vector_layers"].as_array().unwrap();
    let ids: Vec<&str> = layers.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["grid_cells", "grid_stats", "alarm_density"]);
    assert_eq!(layers[1]["fields"]["coverage_pct"], "Number");
    assert_eq!(layers[1]["fields"]["name"], "String");
    assert_eq!(layers[2]["fields"]["weight"], "Number");
    assert!(tj["tiles"][0]
        .as_str()
        .unwrap()
        .ends_with("/tiles/grid_cells,grid_stats,alarm_density/{z}/{x}/{y}.mvt"));

    // GDAL's metadata.json beside the tiles.
    let meta = json_of(&app, "/tiles/grid_stats,alarm_density/metadata.json").await;
    let inner: Value = serde_json::from_str(meta["json"].as_str().unwrap()).unwrap();
    assert_eq!(inner["vector_layers"][0]["id"], "grid_stats");
    assert_eq!(inner["vector_layers"][1]["fields"]["weight"], "Number");
    assert_eq!(meta["bounds"].as_str().unwrap().split(',').count(), 4);

    // The risk style draws them from a source that resolves.
    let style = json_of(&app, "/styles/risk.json").await;
    let url = style["sources"]["lifeline-live"]["url"].as_str().unwrap();
    let path = url.trim_start_matches(&format!("http://{}", app.addr));
    json_of(&app, path).await;
    let kinds: Vec<&str> = style["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["source"] == "lifeline-live")
        .map(|l| l["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["fill", "heatmap"]);
    app.stop().await;
}
every_backend!(derived_tiles_follow_the_statistics);
