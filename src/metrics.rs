//! Prometheus metrics: the process-wide recorder (the `metrics` facade with
//! `metrics-exporter-prometheus`, installed once), the request middleware that counts and
//! times every request by route and status, and the scrape ([`render`]), which first reads
//! what the service holds now — index sizes, tile cache, ingest totals, open alarms, the
//! owners' outbox, the store's connections, the change follower — into gauges, then renders
//! the Prometheus text format (version 0.0.4, which `promtool check metrics` reads).
//!
//! Request metrics are events and are recorded as they happen; everything else is state
//! the service already keeps, so it is read at scrape time rather than mirrored.

use crate::model::alarm::Severity;
use crate::model::notification::{DeliveryStatus, NotificationFilter};
use crate::state::AppState;
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;
use std::time::Instant;

/// Latency buckets in seconds: tiles and checks answer in milliseconds, analysis and
/// exports can take seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The most outbox entries counted per status at one scrape (a count beyond it is
/// reported as this: the alert is the same).
const OUTBOX_COUNT_CAP: usize = 100_000;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The recorder's handle, installing the recorder on first use. `None` when another
/// global recorder was installed first (then `/metrics` says so).
pub fn handle() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

/// Help texts, so every family carries `# HELP`.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "lifeline_http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "lifeline_http_request_duration_seconds",
        Unit::Seconds,
        "Time to the response head, by route template, method and status"
    );
    describe_counter!(
        "lifeline_tile_cache_requests_total",
        "Tile requests, by whether the cache answered (hit) or the tile was rendered (miss)"
    );
    describe_gauge!("lifeline_tile_cache_entries", "Tiles held in the cache");
    describe_gauge!(
        "lifeline_tile_cache_bytes",
        Unit::Bytes,
        "Bytes held in the tile cache"
    );
    describe_gauge!(
        "lifeline_index_features",
        "Records in the in-memory index, by layer"
    );
    describe_counter!(
        "lifeline_readings_total",
        "Sensor readings ingested by this instance, by outcome (stored, duplicate, rejected)"
    );
    describe_gauge!("lifeline_alarms_open", "Open alarms, by severity");
    describe_gauge!(
        "lifeline_notifications",
        "Owners' notifications in the outbox, by status (pending, failed)"
    );
    describe_gauge!(
        "lifeline_store_connections",
        "The store's connections, by state (open, idle, max)"
    );
    describe_gauge!(
        "lifeline_store_connection_waiters",
        "Requests waiting for a store connection"
    );
    describe_gauge!("lifeline_follower_lag_seconds", Unit::Seconds, "Age of the newest data change the change follower applied in its last round (0: caught up)");
    describe_gauge!(
        "lifeline_follower_last_round_age_seconds",
        Unit::Seconds,
        "Seconds since the change follower's last successful round"
    );
    describe_counter!(
        "lifeline_follower_rounds_total",
        "Change-follower rounds that read the store"
    );
    describe_counter!(
        "lifeline_follower_errors_total",
        "Change-follower rounds that failed to read the store"
    );
}

/// Counts and times one answered request (called by the outermost layer, which noted
/// `started` and `method` on the way in). The route label is the matched template
/// (`/tiles/{layers}/{z}/{x}/{file}`), which [`mark_route`] passes out; requests no route
/// matched are `static` when the web client's files answered them and `unmatched`
/// otherwise, so the label set stays bounded whatever paths clients send.
pub fn record(started: Instant, method: &Method, response: &Response) {
    let status = response.status();
    let route = match response.extensions().get::<MatchedPath>() {
        Some(m) => m.as_str(),
        None if status.is_success() || status.is_redirection() => "static",
        None => "unmatched",
    };
    let (count, latency) = request_handles(route, method, status);
    count.increment(1);
    latency.record(started.elapsed().as_secs_f64());
}

/// The counter and histogram of one (route, method, status), registered once and then
/// reused: a request costs a map lookup, not label strings and a registry search.
fn request_handles(route: &str, method: &Method, status: StatusCode) -> RequestHandles {
    static HANDLES: OnceLock<RwLock<HandleMap>> = OnceLock::new();
    let map = HANDLES.get_or_init(Default::default);
    if let Some(list) = map.read().get(route) {
        if let Some((_, _, h)) = list.iter().find(|(m, s, _)| m == method && *s == status) {
            return h.clone();
        }
    }
    let labels = [
        ("route", route.to_owned()),
        ("method", method.as_str().to_owned()),
        ("status", status.as_str().to_owned()),
    ];
    let h = (
        counter!("lifeline_http_requests_total", &labels),
        histogram!("lifeline_http_request_duration_seconds", &labels),
    );
    map.write()
        .entry(route.to_owned())
        .or_default()
        .push((method.clone(), status, h.clone()));
    h
}

type RequestHandles = (metrics::Counter, metrics::Histogram);

/// Route template → the handles of each (method, status) seen on it.
type HandleMap = HashMap<String, Vec<(Method, StatusCode, RequestHandles)>>;

/// Route middleware (inside the router): copies the matched route template into the
/// response, where [`record`] reads it.
pub async fn mark_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(req).await;
    if let Some(m) = matched {
        response.extensions_mut().insert(m);
    }
    response
}

/// Why a scrape could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics are unavailable: another metrics recorder was installed in this process")]
    NoRecorder,
}

/// The scrape: reads the service's state into gauges, then renders every metric.
pub async fn render(state: &AppState) -> Result<String, MetricsError> {
    let handle = handle().ok_or(MetricsError::NoRecorder)?;
    for s in state.index.stats() {
        gauge!("lifeline_index_features", "layer" => s.layer.as_str()).set(s.count as f64);
    }
    let cache = state.tiles.cache().stats();
    counter!("lifeline_tile_cache_requests_total", "result" => "hit").absolute(cache.hits);
    counter!("lifeline_tile_cache_requests_total", "result" => "miss").absolute(cache.misses);
    gauge!("lifeline_tile_cache_entries").set(cache.entries as f64);
    gauge!("lifeline_tile_cache_bytes").set(cache.bytes as f64);

    let t = &state.risk.totals;
    for (outcome, n) in [
        ("stored", &t.stored),
        ("duplicate", &t.duplicates),
        ("rejected", &t.rejected),
    ] {
        counter!("lifeline_readings_total", "outcome" => outcome).absolute(n.load(Relaxed));
    }
    let severities = Severity::ALL;
    let mut open = vec![0u64; severities.len()];
    for a in state.risk.book.read().open.values() {
        if let Some(i) = severities.iter().position(|s| *s == a.severity) {
            open[i] += 1;
        }
    }
    for (severity, n) in severities.iter().zip(open) {
        gauge!("lifeline_alarms_open", "severity" => severity.as_str()).set(n as f64);
    }

    for status in [DeliveryStatus::Pending, DeliveryStatus::Failed] {
        let filter = NotificationFilter {
            status: Some(status),
            limit: OUTBOX_COUNT_CAP,
            ..NotificationFilter::default()
        };
        // A store that does not answer must not fail the scrape: the other metrics (and
        // the pool's) are what an operator needs most then.
        match state.store.notifications(&filter).await {
            Ok(list) => {
                gauge!("lifeline_notifications", "status" => status.as_str()).set(list.len() as f64)
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot count the outbox"),
        }
    }

    let pool = state.store.pool_status();
    for (s, n) in [("open", pool.open), ("idle", pool.idle), ("max", pool.max)] {
        gauge!("lifeline_store_connections", "state" => s).set(n as f64);
    }
    gauge!("lifeline_store_connection_waiters").set(pool.waiting as f64);

    let f = &state.follower;
    gauge!("lifeline_follower_lag_seconds").set(f.lag_ms.load(Relaxed) as f64 / 1000.0);
    let last = f.last_round_ms.load(Relaxed);
    if last > 0 {
        let age = (chrono::Utc::now().timestamp_millis() as f64 - last as f64).max(0.0);
        gauge!("lifeline_follower_last_round_age_seconds").set(age / 1000.0);
    }
    counter!("lifeline_follower_rounds_total").absolute(f.rounds.load(Relaxed));
    counter!("lifeline_follower_errors_total").absolute(f.errors.load(Relaxed));

    handle.run_upkeep();
    Ok(handle.render())
}
