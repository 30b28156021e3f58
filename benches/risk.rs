//! Risk one map measurements (issue 5; a `harness = false` bench that prints Markdown rows
//! for BENCHMARKS.md):
//!
//! * `ingest [postgis|gpkg|both] [batches]` — readings/s through `RiskEngine::ingest`
//!   (body parsing, per-item checks, the store insert, alarm rules evaluated inline) over
//!   the `jiulongpo` preset's sensors, with `lifeline simulate`'s generator (diurnal
//!   patterns, drift, growing leaks), batches of 10,000, one and four concurrent writers;
//! * `grid-stats [preset]` — `GET /risk/grid-stats?level=street` (all streets) and the
//!   coverage report over a preset (default `city`);
//! * `sse [clients] [events]` — fan-out of `GET /events` to many clients: delivery latency
//!   from publication to receipt at every client.
//!
//! `cargo bench --bench risk -- ingest both`, `-- grid-stats city`, `-- sse 1000 200`.

use lifeline::config::Config;
use lifeline::generate::{generate, GenerateOptions, Preset};
use lifeline::model::{Actor, Dataset, GridLevel};
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
            let url = store::pgcluster::shared()
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
            ..Config::default()
        },
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
    let crs = lifeline::io::crs::MetricCrs::new("EPSG:4545").expect("crs");
    let index = Arc::new(lifeline::index::SpatialIndex::new(crs));
    let idx = index.clone();
    tokio::task::spawn_blocking(move || idx.load(data))
        .await
        .unwrap()
        .expect("index");
    let engine = lifeline::risk::RiskEngine::open(store, index)
        .await
        .expect("engine");
    // The first call builds the structure cache (grid ancestry, sensor links) that later
    // calls reuse until the data change; alarms are applied per call.
    let s = Instant::now();
    let n = engine
        .grid_stats(GridLevel::Street, None)
        .expect("stats")
        .len();
    println!(
        "| grid stats, all street cells, first call after a data change (cache build) | {preset:?} | {n} cells | **{:.1} ms** | – |",
        s.elapsed().as_secs_f64() * 1e3
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
        times.sort();
        println!(
            "| grid stats, all {name} cells | {preset:?} | {cells} cells | median **{:.1} ms** | max {:.1} ms |",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3
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
    times.sort();
    println!(
        "| coverage report (per category and street) | {preset:?} | – | median **{:.1} ms** | max {:.1} ms |",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
}

async fn sse(clients: usize, events: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = open("gpkg", "sse", &dir).await;
    let state = lifeline::AppState::with_store(
        store,
        Config {
            metric_crs: Some("EPSG:4545".into()),
            ..Config::default()
        },
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
        if what == "sse" || what == "all" {
            let clients = args.get(1).and_then(|c| c.parse().ok()).unwrap_or(1000);
            let events = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(200);
            sse(clients, events).await;
        }
    });
}
