//! Risk one map measurements (issue 5; a `harness = false` bench that prints Markdown rows
//! for BENCHMARKS.md):
//!
//! * `ingest [postgis|gpkg|both] [batches]` — readings/s through `RiskEngine::ingest`
//!   (body parsing, per-item checks, the store insert, alarm rules evaluated inline) over
//!   the `jiulongpo` preset's sensors, with `lifeline simulate`'s generator (diurnal
//!   patterns, drift, growing leaks), batches of 10,000, one and four concurrent writers;
//! * `grid-stats [preset]` — `GET /risk/grid-stats?level=street` (all streets; the full
//!   build of the statistics at start-up, calls once ready, calls during the background
//!   rebuild after a bulk reload, repeated, and the first call after each kind of data
//!   edit), the coverage report, and the `grid_stats` tile layer at z8–z14 over a preset
//!   (default `city`);
//! * `sse [clients] [events]` — fan-out of `GET /events` to many clients: delivery latency
//!   from publication to receipt at every client.
//!
//! * `simulate [postgis|gpkg|both] [rate] [seconds]` — `lifeline simulate --rate 20000`
//!   against a server on the `jiulongpo` preset (HTTP end to end): readings/s stored.
//!
//! `cargo bench --bench risk -- ingest both`, `-- grid-stats city`, `-- sse 1000 200`,
//! `-- simulate both 20000 30`.

use lifeline::config::Config;
use lifeline::generate::{generate, GenerateOptions, Preset};
use lifeline::model::{Actor, Dataset, GridLevel, Layer, Record, RiskLevel};
use lifeline::risk::events::{Cursor, EventKind, NewEvent};
use lifeline::simulate::Generator;
use lifeline::store::{self, SharedStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn dataset(preset: Preset, keep_pipelines: bool) -> Dataset {
    let (mut data, _) = generate(&GenerateOptions {
        preset,
        seed: 42,
        progress: false,
    })
    .expect("generate");
    if !keep_pipelines {
        // Risk statistics never look at pipes; leaving them out saves minutes and GBs.
        data.pipelines.clear();
        for s in &mut data.sensors {
            s.pipeline_id = None;
        }
    }
    data
}

async fn open(backend: &str, name: &str, dir: &tempfile::TempDir) -> SharedStore {
    match backend {
        "postgis" => {
            let url = lifeline_pgcluster::shared()
                .create_database(name)
                .expect("database");
            store::open(&url, 8).await.expect("open postgis")
        }
        _ => {
            let p = dir.path().join(format!("{name}.gpkg"));
            store::open(&p.display().to_string(), 1)
                .await
                .expect("open gpkg")
        }
    }
}

fn ndjson(batch: &[lifeline::simulate::OutReading]) -> Vec<u8> {
    let mut body = Vec::with_capacity(batch.len() * 64);
    for r in batch {
        serde_json::to_writer(&mut body, r).unwrap();
        body.push(b'\n');
    }
    body
}

async fn ingest(backend: &str, batches: usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(Preset::Jiulongpo, false);
    let sensors: Vec<_> = data.sensors.iter().map(|s| (s.id, s.kind)).collect();
    let store = open(
        backend,
        &format!("risk_ingest_{}", std::process::id()),
        &dir,
    )
    .await;
    store.bulk_load(&data, &Actor::cli()).await.expect("load");
    let state = lifeline::AppState::with_store(
        store,
        Config {
            metric_crs: Some("EPSG:4545".into()),
            // A load run measures throughput, not the per-key rate limits.
            http: lifeline::config::HttpLimits::default().without_rate_limits(),
            ..Config::default()
        },
        lifeline::model::Clock::system(),
    )
    .await
    .expect("state");
    let engine = state.risk.clone();
    // The follower applies the alarm changes the batches cause, as in the service.
    let follower = lifeline::sync::spawn(state.clone());
    for writers in [1usize, 4] {
        let mut gen = Generator::new(&sensors, 7 + writers as u64, 0.05, 0.0, chrono::Utc::now());
        let bodies: Vec<Vec<u8>> = (0..batches)
            .map(|i| {
                ndjson(&gen.batch(
                    chrono::Utc::now() - chrono::Duration::seconds((batches - i) as i64),
                    10_000,
                ))
            })
            .collect();
        let total = bodies.len() * 10_000;
        let queue = Arc::new(parking_lot::Mutex::new(bodies));
        let started = Instant::now();
        let mut tasks = Vec::new();
        let alarms = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..writers {
            let (q, e, a) = (queue.clone(), engine.clone(), alarms.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let Some(b) = q.lock().pop() else { break };
                    let r = e.ingest(&b, "application/x-ndjson").await.expect("ingest");
                    assert_eq!(r.stored, 10_000, "{:?}", &r.items[..r.items.len().min(3)]);
                    a.fetch_add(r.alarm_changes, std::sync::atomic::Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| ingest | {backend} | {writers} writer(s), {total} readings in batches of 10,000 | {:.2} s | **{:.0} readings/s** ({} alarm changes) |",
            secs,
            total as f64 / secs,
            alarms.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    follower.abort();
}

async fn grid_stats(preset: Preset) {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let data = dataset(preset, false);
    println!(
        "<!-- {preset:?}: {} grid cells, {} risk points, {} sensors generated in {:.1} s -->",
        data.grid_cells.len(),
        data.risk_points.len(),
        data.sensors.len(),
        t.elapsed().as_secs_f64()
    );
    let store = open("gpkg", "grid_stats", &dir).await;
    let crs = lifeline::model::crs::MetricCrs::new("EPSG:4545").expect("crs");
    let index = Arc::new(lifeline::index::SpatialIndex::new(crs));
    let idx = index.clone();
    let keep = data.clone();
    tokio::task::spawn_blocking(move || idx.load(data))
        .await
        .unwrap()
        .expect("index");
    let data = keep;
    let engine =
        lifeline::risk::RiskEngine::open(store, index.clone(), lifeline::model::Clock::system())
            .await
            .expect("engine");
    // `open` starts the build of the structure (grid ancestry, risk points per cell,
    // sensor links, unlinked sensors located in cells) on its own thread; a call made at
    // once waits for it (what a request would see if readiness were ignored).
    let s = Instant::now();
    let n = engine
        .grid_stats(GridLevel::Street, None)
        .expect("stats")
        .len();
    println!(
        "| grid stats, all street cells, first call at once after start-up, not waiting for `/ready` (waits for the build) | {preset:?} | {n} cells | **{:.1} ms** | – |",
        s.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "| full build of the statistics structure (start-up) | {preset:?} | {} cells | **{} ms** | – |",
        data.grid_cells.len(),
        engine.statistics_info().last_build_ms
    );
    // Right after start-up as a load balancer sees it: `/ready` says ready once the
    // build has ended, and requests follow.
    let mut times = Vec::new();
    for _ in 0..200 {
        let s = Instant::now();
        engine.grid_stats(GridLevel::Street, None).expect("stats");
        times.push(s.elapsed());
    }
    row_p99(
        "grid stats, all street cells, the first 200 calls once ready after start-up",
        preset,
        &format!("{n} cells"),
        times,
    );
    // A bulk reload: the index is loaded anew and the structure rebuilt in the background;
    // calls meanwhile get the previous totals.
    let idx = index.clone();
    let again = data.clone();
    tokio::task::spawn_blocking(move || idx.load(again))
        .await
        .unwrap()
        .expect("index");
    engine.index_reloaded();
    let mut times = Vec::new();
    let s = Instant::now();
    while engine.statistics_info().building {
        let t = Instant::now();
        engine.grid_stats(GridLevel::Street, None).expect("stats");
        times.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let waited = s.elapsed();
    if !times.is_empty() {
        row_p99(
            &format!(
                "grid stats, all street cells, during the rebuild after a bulk reload ({} calls in {:.0} ms, previous totals)",
                times.len(),
                waited.as_secs_f64() * 1e3
            ),
            preset,
            &format!("{n} cells"),
            times,
        );
    }
    println!(
        "| full build of the statistics structure (after the bulk reload, in the background) | {preset:?} | {} cells | **{} ms** | – |",
        data.grid_cells.len(),
        engine.statistics_info().last_build_ms
    );
    for (name, level) in [
        ("street", GridLevel::Street),
        ("district", GridLevel::District),
        ("community", GridLevel::Community),
    ] {
        let mut times = Vec::new();
        let mut cells = 0;
        for _ in 0..15 {
            let s = Instant::now();
            cells = engine.grid_stats(level, None).expect("stats").len();
            times.push(s.elapsed());
        }
        row(
            &format!("grid stats, all {name} cells"),
            preset,
            &format!("{cells} cells"),
            times,
        );
    }
    // First call after a data edit, as the write path and the change follower report it
    // (index first, then `index_changed`); a different record each round.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut pick = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let edits: [(&str, Layer); 3] = [
        ("a sensor re-linked", Layer::Sensors),
        (
            "a risk point re-levelled and moved to another cell",
            Layer::RiskPoints,
        ),
        (
            "a community re-parented (its subtree and unlinked sensors re-rolled)",
            Layer::GridCells,
        ),
    ];
    let communities: Vec<&lifeline::model::GridCell> = data
        .grid_cells
        .iter()
        .filter(|c| c.level == GridLevel::Community)
        .collect();
    let streets: Vec<i64> = data
        .grid_cells
        .iter()
        .filter(|c| c.level == GridLevel::Street)
        .map(|c| c.id)
        .collect();
    for (what, layer) in edits {
        let mut times = Vec::new();
        let mut cells = 0;
        for _ in 0..15 {
            let (rec, id) = match layer {
                Layer::Sensors => {
                    let mut s = data.sensors[pick(data.sensors.len())].clone();
                    s.risk_point_id = Some(data.risk_points[pick(data.risk_points.len())].id);
                    (Record::Sensor(s.clone()), s.id)
                }
                Layer::RiskPoints => {
                    let mut p = data.risk_points[pick(data.risk_points.len())].clone();
                    p.level = RiskLevel::Major;
                    p.grid_cell_id = Some(data.grid_cells[pick(data.grid_cells.len())].id);
                    (Record::RiskPoint(p.clone()), p.id)
                }
                _ => {
                    let mut c = communities[pick(communities.len())].clone();
                    c.parent_id = Some(streets[pick(streets.len())]);
                    (Record::GridCell(c.clone()), c.id)
                }
            };
            index.upsert(rec).expect("upsert");
            let s = Instant::now();
            engine.index_changed(layer, id);
            cells = engine
                .grid_stats(GridLevel::Street, None)
                .expect("stats")
                .len();
            times.push(s.elapsed());
        }
        row(
            &format!("grid stats, all street cells, first call after a data edit: {what}"),
            preset,
            &format!("{cells} cells"),
            times,
        );
    }
    let mut times = Vec::new();
    for _ in 0..10 {
        let s = Instant::now();
        engine
            .coverage(None, GridLevel::Street, 1000)
            .expect("coverage");
        times.push(s.elapsed());
    }
    row(
        "coverage report (per category and street, with unlinked sensors)",
        preset,
        "–",
        times,
    );
    tiles(&engine, &data);
}

/// Prints one Markdown row: median and max of `times`.
fn row(what: &str, preset: Preset, n: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "| {what} | {preset:?} | {n} | median **{:.1} ms** | max {:.1} ms |",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
}

/// Prints one Markdown row: median, p99 and max of `times`.
fn row_p99(what: &str, preset: Preset, n: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| {what} | {preset:?} | {n} | median {:.2} ms, p99 **{:.2} ms** | max {:.2} ms |",
        ms(times[times.len() / 2]),
        ms(times[(times.len() * 99 / 100).min(times.len() - 1)]),
        ms(times[times.len() - 1])
    );
}

/// The `grid_stats` vector-tile layer (cut, as the tile server does, on every request:
/// derived layers are never cached) at a few zooms over the whole preset: every tile at
/// z8 and z10, 300 tiles under random risk points at z12 and z14.
fn tiles(engine: &lifeline::risk::RiskEngine, data: &Dataset) {
    use lifeline::tileserver::derived::{render_derived, DerivedLayer};
    use lifeline_tiles::TileCoord;
    let config = lifeline::tileserver::config::TilesConfig::builtin();
    let bbox = data
        .grid_cells
        .iter()
        .filter_map(|c| lifeline::model::Bbox::of(&c.geometry))
        .reduce(|a, b| a.union(&b))
        .expect("cells");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for z in [8u8, 10, 12, 14] {
        let tiles: Vec<TileCoord> = if z <= 10 {
            let a = TileCoord::from_lonlat(bbox.min_x(), bbox.max_y(), z).unwrap();
            let b = TileCoord::from_lonlat(bbox.max_x(), bbox.min_y(), z).unwrap();
            (a.x()..=b.x())
                .flat_map(|x| {
                    (a.y()..=b.y()).map(move |y| TileCoord::new(u32::from(z), x, y).unwrap())
                })
                .collect()
        } else {
            (0..300)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let p = &data.risk_points[(rng % data.risk_points.len() as u64) as usize];
                    let (lon, lat) =
                        lifeline::risk::anchor(&Record::RiskPoint(p.clone())).expect("anchor");
                    TileCoord::from_lonlat(lon, lat, z).unwrap()
                })
                .collect()
        };
        let mut times = Vec::with_capacity(tiles.len());
        let mut bytes = 0usize;
        let mut non_empty = 0usize;
        for t in &tiles {
            let mut out = Vec::new();
            let s = Instant::now();
            render_derived(engine, config, DerivedLayer::GridStats, *t, &mut out)
                .expect("grid_stats tile");
            times.push(s.elapsed());
            bytes += out.len();
            non_empty += usize::from(!out.is_empty());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| `grid_stats` tile layer, z{z} ({}) | {} tiles ({non_empty} with cells, {:.0} KB mean, uncompressed) | p50 **{:.1} ms** | p99 {:.1} ms, max {:.1} ms |",
            config.derived.level_at(z),
            tiles.len(),
            bytes as f64 / tiles.len() as f64 / 1024.0,
            ms(times[times.len() / 2]),
            ms(times[times.len() * 99 / 100]),
            ms(times[times.len() - 1]),
        );
    }
}

async fn sse(clients: usize, events: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = open("gpkg", "sse", &dir).await;
    let state = lifeline::AppState::with_store(
        store,
        Config {
            metric_crs: Some("EPSG:4545".into()),
            // A load run measures throughput, not the per-key rate limits.
            http: lifeline::config::HttpLimits::default().without_rate_limits(),
            ..Config::default()
        },
        lifeline::model::Clock::system(),
    )
    .await
    .expect("state");
    let engine = state.risk.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lifeline::run(listener, state, async {
        let _ = stop_rx.await;
    }));
    let published: Arc<parking_lot::Mutex<Vec<Option<Instant>>>> =
        Arc::new(parking_lot::Mutex::new(vec![None; events]));
    let latencies = Arc::new(parking_lot::Mutex::new(Vec::with_capacity(
        clients * events,
    )));
    let connected = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (published, latencies, connected) =
            (published.clone(), latencies.clone(), connected.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut resp = client
                .get(format!("http://{addr}/events?kinds=alarm"))
                .send()
                .await
                .expect("connect");
            connected.wait().await;
            let mut buf = String::new();
            let mut got = 0;
            while got < events {
                let Ok(Ok(Some(chunk))) =
                    tokio::time::timeout(Duration::from_secs(30), resp.chunk()).await
                else {
                    break;
                };
                let now = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(pos) = buf.find("\n\n") {
                    let block: String = buf.drain(..pos + 2).collect();
                    if let Some(n) = block
                        .lines()
                        .find_map(|l| l.strip_prefix("data: {\"n\":"))
                        .and_then(|r| r.trim_end_matches('}').parse::<usize>().ok())
                    {
                        if let Some(at) = published.lock()[n] {
                            latencies.lock().push(now - at);
                        }
                        got += 1;
                    }
                }
            }
            got
        }));
    }
    connected.wait().await;
    let started = Instant::now();
    for n in 0..events {
        published.lock()[n] = Some(Instant::now());
        engine.bus.publish(vec![NewEvent {
            cursor: Cursor {
                r: n as i64 + 1,
                c: 0,
                k: 0,
            },
            kind: EventKind::Alarm,
            lon: Some(106.5),
            lat: Some(29.5),
            data: serde_json::json!({"n": n}),
        }]);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut delivered = 0;
    for t in tasks {
        delivered += t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let mut l = latencies.lock().clone();
    l.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| SSE fan-out | {clients} clients × {events} events (100/s) | {delivered} of {} delivered in {:.1} s | p50 **{:.1} ms**, p99 {:.1} ms, max {:.1} ms |",
        clients * events,
        secs,
        ms(l[l.len() / 2]),
        ms(l[l.len() * 99 / 100]),
        ms(l[l.len() - 1])
    );
    let _ = stop_tx.send(());
    let _ = server.await;
}

/// `lifeline simulate` (its HTTP client, NDJSON batches every 100 ms, at most four
/// requests in flight) against a release server on the `jiulongpo` preset, in one process:
/// readings/s stored by the server at the asked rate.
async fn simulate(backend: &str, rate: u32, seconds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(Preset::Jiulongpo, false);
    let store = open(
        backend,
        &format!("risk_simulate_{}", std::process::id()),
        &dir,
    )
    .await;
    store.bulk_load(&data, &Actor::cli()).await.expect("load");
    let key = lifeline::auth::generate_key();
    store
        .create_api_key(
            "simulator",
            lifeline::model::Role::Operator,
            &lifeline::auth::hash_key(&key),
            &Actor::cli(),
        )
        .await
        .expect("key");
    let state = lifeline::AppState::with_store(
        store,
        Config {
            metric_crs: Some("EPSG:4545".into()),
            // A load run measures throughput, not the per-key rate limits.
            http: lifeline::config::HttpLimits::default().without_rate_limits(),
            ..Config::default()
        },
        lifeline::model::Clock::system(),
    )
    .await
    .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lifeline::run(listener, state, async {
        let _ = stop_rx.await;
    }));
    let s = lifeline::simulate::run(
        lifeline::simulate::SimOptions {
            url: format!("http://{addr}"),
            key: Some(key),
            rate,
            duration: Some(Duration::from_secs(seconds)),
            seed: 42,
            leak_share: 0.01,
            dead_share: 0.02,
            leak_now: Vec::new(),
        },
        std::future::pending(),
    )
    .await
    .expect("simulate");
    println!(
        "| simulate --rate {rate} | {backend} | {} sensors' streams, {:.0} s | {} sent, {} stored, {} rejected, {} failed requests, {} alarm changes | **{:.0} readings/s stored** |",
        data.sensors.len(),
        s.seconds,
        s.sent,
        s.stored,
        s.rejected,
        s.failed_requests,
        s.alarm_changes,
        s.stored as f64 / s.seconds
    );
    let _ = stop_tx.send(());
    let _ = server.await;
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let what = args.first().map(String::as_str).unwrap_or("all");
    rt.block_on(async {
        if what == "ingest" || what == "all" {
            let backend = args.get(1).map(String::as_str).unwrap_or("both");
            let batches = args.get(2).and_then(|b| b.parse().ok()).unwrap_or(30);
            for b in ["postgis", "gpkg"] {
                if backend == b || backend == "both" {
                    ingest(b, batches).await;
                }
            }
        }
        if what == "grid-stats" || what == "all" {
            let preset = args
                .get(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(Preset::City);
            grid_stats(preset).await;
        }
        if what == "simulate" {
            let backend = args.get(1).map(String::as_str).unwrap_or("both");
            let rate = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(20_000);
            let secs = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(30);
            for b in ["postgis", "gpkg"] {
                if backend == b || backend == "both" {
                    simulate(b, rate, secs).await;
                }
            }
        }
        if what == "sse" || what == "all" {
            let clients = args.get(1).and_then(|c| c.parse().ok()).unwrap_or(1000);
            let events = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(200);
            sse(clients, events).await;
        }
    });
}
