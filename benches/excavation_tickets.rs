//! Ticket submission rate with PostGIS (issue 4), a Rust load tool (`harness = false`):
//! loads a preset into a throwaway PostGIS database, starts the real server on port 0,
//! and has `LIFELINE_BENCH_CLIENTS` (default 32) concurrent clients submit tickets — each
//! a 20 m × 20 m dig on a random pipe with its own `Idempotency-Key` — for
//! `LIFELINE_BENCH_SECS` seconds (default 20). Every submission runs the full check and
//! one PostGIS statement: the ticket row, its audit entry, and the owners' notifications
//! (outbox rows per owner and channel, with theirs). Prints the sustained rate and the
//! latency percentiles. The server, its 32 clients and PostgreSQL share the machine's
//! cores. Goal: 500 submissions/s.
//!
//! `cargo bench --bench excavation_tickets -- [demo|jiulongpo]` (default jiulongpo).

use geo::Geometry;
use lifeline::config::Config;
use lifeline::generate::{generate, GenerateOptions, Preset};
use lifeline::model::{Actor, Layer, Role};
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let preset: Preset = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_else(|| "jiulongpo".into())
        .parse()
        .expect("preset");
    let clients: usize = std::env::var("LIFELINE_BENCH_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let secs: u64 = std::env::var("LIFELINE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let (data, _) = generate(&GenerateOptions {
        preset,
        seed: 42,
        progress: false,
    })
    .expect("generate");
    let url = lifeline_pgcluster::shared()
        .create_database(&format!("tickets_bench_{}", std::process::id()))
        .expect("database");
    let store = lifeline::store::open(&url, 16).await.expect("store");
    store.bulk_load(&data, &Actor::cli()).await.expect("load");
    let key = lifeline::auth::generate_key();
    store
        .create_api_key(
            "bench",
            Role::Contractor,
            &lifeline::auth::hash_key(&key),
            &Actor::cli(),
        )
        .await
        .unwrap();
    let state = lifeline::AppState::with_store(
        store.clone(),
        Config {
            store_url: url.clone(),
            metric_crs: Some("EPSG:4545".into()),
            // A load run measures throughput, not the per-key rate limits.
            http: lifeline::config::HttpLimits::default().without_rate_limits(),
            pool_size: 16,
            ..Config::default()
        },
        lifeline::model::Clock::system(),
    )
    .await
    .expect("state");
    let centres: Vec<(f64, f64)> = state
        .index
        .all(Layer::Pipelines)
        .iter()
        .take(20_000)
        .filter_map(|r| match r.geometry() {
            Some(Geometry::LineString(l)) => Some((l.0[0].x, l.0[0].y)),
            _ => None,
        })
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        lifeline::run(listener, state, std::future::pending())
            .await
            .unwrap();
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let counter = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let today = chrono::Utc::now().date_naive();
    let mut tasks = Vec::new();
    for w in 0..clients {
        let (http, key, counter, errors, centres) = (
            http.clone(),
            key.clone(),
            counter.clone(),
            errors.clone(),
            centres.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(w as u64);
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let (x, y) = centres[rng.gen_range(0..centres.len())];
                let (dx, dy) = (10.0 / 96_900.0, 10.0 / 110_800.0);
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let body = serde_json::json!({
                    "geometry": {"type": "Polygon", "coordinates": [[[x - dx, y - dy], [x + dx, y - dy], [x + dx, y + dy], [x - dx, y + dy], [x - dx, y - dy]]]},
                    "top_depth_m": 0.0, "bottom_depth_m": 2.0, "method": "mechanical", "work_type": "bench",
                    "start_date": today.to_string(), "end_date": today.to_string(),
                    "requester": {"name": "bench", "phone": "023 0000"}
                });
                let t = Instant::now();
                let ok = http
                    .post(format!("http://{addr}/excavation/tickets"))
                    .bearer_auth(&key)
                    .header("Idempotency-Key", format!("bench-{n}"))
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status() == reqwest::StatusCode::CREATED)
                    .unwrap_or(false);
                lat.push(t.elapsed());
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ok = all.len() - errors.load(Ordering::Relaxed);
    let stored = store
        .tickets(&lifeline::model::ticket::TicketFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    // The notifications of the ticket ids 1..=100 (owners × e-mail/SMS): proof that the
    // run wrote the outbox with its tickets.
    let mut outbox = 0;
    for id in 1..=100 {
        outbox += store
            .notifications(&lifeline::model::notification::NotificationFilter {
                ticket_id: Some(id),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .len();
    }
    println!(
        "| {preset} | {clients} | {secs} s | {} | {:.0}/s | {:.1} ms | {:.1} ms | {:.1} ms | {} | last id {} | outbox rows of tickets 1–100: {outbox} |",
        ok,
        ok as f64 / elapsed,
        ms(all[all.len() / 2]),
        ms(all[all.len() * 99 / 100]),
        ms(all[all.len() - 1]),
        errors.load(Ordering::Relaxed),
        stored.first().map(|t| t.id).unwrap_or(0)
    );
}
