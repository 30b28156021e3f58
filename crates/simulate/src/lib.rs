//! `lifeline simulate`: replays realistic sensor streams against a running server, for
//! demos and load tests — diurnal patterns (pressure and flow follow the day's demand),
//! slow drifts, gas leaks that grow until they alarm, and dead sensors that fall silent
//! (so the offline rule fires). Readings go to `POST /sensors/readings` as NDJSON in
//! batches every 100 ms, at most four requests in flight.
//!
//! [`Generator`] is deterministic for a seed, so a demo can be replayed exactly.

use chrono::{DateTime, Timelike, Utc};
use lifeline_model::{Clock, SensorKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What went wrong in a simulation run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot reach {url}: {message}")]
    Http { url: String, message: String },
    #[error("the server has no sensors to simulate")]
    NoSensors,
    #[error("{0}")]
    Invalid(String),
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Base URL of the server, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// API key with the operator role (ingest needs it).
    pub key: Option<String>,
    /// Readings per second in total.
    pub rate: u32,
    /// Stop after this long (`None`: until Ctrl-C).
    pub duration: Option<Duration>,
    pub seed: u64,
    /// Share of gas sensors with a growing leak.
    pub leak_share: f64,
    /// Share of sensors that are dead (never report).
    pub dead_share: f64,
    /// Gas detectors whose leak is already past the emergency threshold at the first
    /// reading and that report in every batch (`--leak-now`): an alarm within the kind's
    /// `min_duration_s`, for demos and the web client's end-to-end test.
    pub leak_now: Vec<i64>,
}

/// Behaviour of one simulated sensor.
#[derive(Debug, Clone, PartialEq)]
struct Sim {
    id: i64,
    kind: SensorKind,
    base: f64,
    /// Relative amplitude of the daily cycle.
    diurnal: f64,
    /// Units per hour.
    drift_per_h: f64,
    noise: f64,
    /// Leak growth in units per minute from `leak_from`.
    leak_per_min: f64,
    leak_from: DateTime<Utc>,
    /// Dead sensors report for their first minute, then fall silent (so the offline
    /// rule, which ignores never-commissioned sensors, fires for them).
    dies_at: Option<DateTime<Utc>>,
    last_ms: i64,
    /// Reports in every batch (see [`Generator::leak_now`]).
    focus: bool,
}

/// One reading as sent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OutReading {
    pub sensor_id: i64,
    /// Unix milliseconds.
    pub time: i64,
    pub value: f64,
}

fn profile(kind: SensorKind) -> (f64, f64, f64, f64, f64) {
    // base, diurnal share, noise, min, max (inside the kind's plausible range)
    match kind {
        SensorKind::GasLel => (1.0, 0.0, 0.3, 0.0, 100.0),
        SensorKind::Pressure => (0.32, 0.08, 0.004, 0.0, 10.0),
        SensorKind::Flow => (900.0, 0.45, 25.0, 0.0, 100_000.0),
        SensorKind::Level => (0.4, 0.05, 0.02, -5.0, 50.0),
        SensorKind::Displacement => (0.0, 0.0, 0.2, -1000.0, 1000.0),
        SensorKind::Crack => (0.12, 0.02, 0.005, 0.0, 200.0),
        SensorKind::Strain => (120.0, 0.1, 8.0, -10_000.0, 10_000.0),
        SensorKind::Vibration => (1.5, 0.5, 0.4, 0.0, 1000.0),
        SensorKind::Temperature => (24.0, 0.08, 0.3, -50.0, 200.0),
        SensorKind::Video => (1.0, 0.0, 0.0, 0.0, 1.0),
    }
}

/// Deterministic stream generator over a fleet.
pub struct Generator {
    sims: Vec<Sim>,
    rng: ChaCha8Rng,
    next: usize,
    /// Indices of the sensors that report in every batch.
    focus: Vec<usize>,
}

impl Generator {
    /// A fleet of `(id, kind)` sensors; `now` anchors leaks.
    pub fn new(
        sensors: &[(i64, SensorKind)],
        seed: u64,
        leak_share: f64,
        dead_share: f64,
        now: DateTime<Utc>,
    ) -> Generator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let sims = sensors
            .iter()
            .map(|&(id, kind)| {
                let (base, diurnal, noise, _, _) = profile(kind);
                let leak = kind == SensorKind::GasLel && rng.gen_bool(leak_share.clamp(0.0, 1.0));
                Sim {
                    id,
                    kind,
                    base: base * rng.gen_range(0.9..1.1),
                    diurnal,
                    drift_per_h: if rng.gen_bool(0.1) {
                        base.abs().max(0.1) * rng.gen_range(-0.02..0.02)
                    } else {
                        0.0
                    },
                    noise,
                    leak_per_min: if leak { rng.gen_range(2.0..8.0) } else { 0.0 },
                    leak_from: now + chrono::Duration::seconds(rng.gen_range(0..60)),
                    dies_at: rng
                        .gen_bool(dead_share.clamp(0.0, 1.0))
                        .then(|| now + chrono::Duration::seconds(rng.gen_range(0..60))),
                    last_ms: 0,
                    focus: false,
                }
            })
            .collect();
        Generator {
            sims,
            rng,
            next: 0,
            focus: Vec::new(),
        }
    }

    /// Gives the gas detectors `ids` a leak that started five minutes before `now` at
    /// 8 %LEL a minute (about 40 %LEL at the first reading, over the emergency threshold)
    /// and makes them report in every batch, on top of the round-robin.
    pub fn leak_now(&mut self, ids: &[i64], now: DateTime<Utc>) -> Result<(), SimError> {
        for &id in ids {
            let i = self
                .sims
                .iter()
                .position(|s| s.id == id)
                .ok_or_else(|| SimError::Invalid(format!("--leak-now {id}: no such sensor")))?;
            let s = &mut self.sims[i];
            if s.kind != SensorKind::GasLel {
                return Err(SimError::Invalid(format!(
                    "--leak-now {id}: a {} sensor, not a gas detector (gas_lel)",
                    s.kind
                )));
            }
            s.leak_per_min = 8.0;
            s.leak_from = now - chrono::Duration::minutes(5);
            s.dies_at = None;
            if !s.focus {
                s.focus = true;
                self.focus.push(i);
            }
        }
        Ok(())
    }

    /// Number of sensors that keep reporting.
    pub fn live(&self) -> usize {
        self.sims.iter().filter(|s| s.dies_at.is_none()).count()
    }

    /// The next `n` readings at `now`, round-robin over live sensors (plus one of each
    /// [`Generator::leak_now`] sensor); each sensor's times strictly increase, so no
    /// reading is a duplicate of another.
    pub fn batch(&mut self, now: DateTime<Utc>, n: usize) -> Vec<OutReading> {
        let mut out = Vec::with_capacity(n + self.focus.len());
        if !self.sims.iter().any(|s| s.dies_at.is_none_or(|d| d > now)) {
            return out;
        }
        let hour = now.hour() as f64 + now.minute() as f64 / 60.0;
        // Demand peaks in the morning and evening: two humps a day.
        let day = (std::f64::consts::TAU * (hour - 7.0) / 12.0).cos() * 0.5 + 0.5;
        let now_ms = now.timestamp_millis();
        let mut focus = self.focus.clone().into_iter();
        let round_robin = self
            .sims
            .iter()
            .any(|s| !s.focus && s.dies_at.is_none_or(|d| d > now));
        while out.len() < n + self.focus.len() {
            let i = match focus.next() {
                Some(i) => i,
                None if !round_robin => break,
                None => {
                    let i = self.next % self.sims.len();
                    self.next += 1;
                    if self.sims[i].focus {
                        continue;
                    }
                    i
                }
            };
            let s = &mut self.sims[i];
            if s.dies_at.is_some_and(|d| d <= now) {
                continue;
            }
            let (_, _, _, lo, hi) = profile(s.kind);
            let t = now_ms.max(s.last_ms + 1);
            s.last_ms = t;
            let hours = (t as f64) / 3_600_000.0 % 1000.0;
            let mut v = s.base * (1.0 + s.diurnal * (day - 0.5)) + s.drift_per_h * hours;
            if s.leak_per_min > 0.0 && now > s.leak_from {
                v += s.leak_per_min * (now - s.leak_from).num_milliseconds() as f64 / 60_000.0;
            }
            if s.noise > 0.0 {
                v += self.rng.gen_range(-s.noise..s.noise);
            }
            if s.kind == SensorKind::Video {
                v = 1.0;
            }
            out.push(OutReading {
                sensor_id: s.id,
                time: t,
                value: (v.clamp(lo, hi) * 1000.0).round() / 1000.0,
            });
        }
        out
    }
}

/// Totals of a run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SimSummary {
    pub sent: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub alarm_changes: u64,
    pub failed_requests: u64,
    pub seconds: f64,
}

/// The server's clock, as its `/health` reports it: readings are stamped by the time of
/// the service they are sent to, so they fall inside its accepted window even when the two
/// machines' clocks differ (or the server's clock is set, as in tests). A server that does
/// not say its time is taken to share this machine's clock.
async fn server_clock(client: &reqwest::Client, o: &SimOptions) -> Result<Clock, SimError> {
    let sent = Utc::now();
    let v = get_json(client, o, "/health").await?;
    let Some(t) = v["time"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    else {
        return Ok(Clock::system());
    };
    // The server read its clock about halfway through the round trip.
    let mid = sent + (Utc::now() - sent) / 2;
    Ok(Clock::offset_by(t.with_timezone(&Utc) - mid))
}

/// GETs `path` of the server (with the key, if any) as JSON.
async fn get_json(
    client: &reqwest::Client,
    o: &SimOptions,
    path: &str,
) -> Result<serde_json::Value, SimError> {
    let url = format!("{}{path}", o.url.trim_end_matches('/'));
    let mut req = client.get(&url);
    if let Some(k) = &o.key {
        req = req.bearer_auth(k);
    }
    let http = |e: reqwest::Error| SimError::Http {
        url: url.clone(),
        message: e.to_string(),
    };
    req.send()
        .await
        .map_err(http)?
        .error_for_status()
        .map_err(http)?
        .json()
        .await
        .map_err(http)
}

async fn fetch_sensors(
    client: &reqwest::Client,
    o: &SimOptions,
) -> Result<Vec<(i64, SensorKind)>, SimError> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let path = format!("/features/sensors?limit=10000&offset={offset}");
        let v = get_json(client, o, &path).await?;
        let feats = v["features"].as_array().cloned().unwrap_or_default();
        for f in &feats {
            let id = f["id"].as_i64().or_else(|| f["properties"]["id"].as_i64());
            let kind = f["properties"]["kind"]
                .as_str()
                .and_then(|k| k.parse::<SensorKind>().ok());
            if let (Some(id), Some(kind)) = (id, kind) {
                out.push((id, kind));
            }
        }
        if feats.len() < 10_000 {
            break;
        }
        offset += feats.len();
    }
    Ok(out)
}

/// Runs a simulation until its duration ends or `stop` resolves.
pub async fn run(
    o: SimOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<SimSummary, SimError> {
    if o.rate == 0 {
        return Err(SimError::Invalid("--rate must be at least 1".into()));
    }
    let client = reqwest::Client::new();
    let clock = server_clock(&client, &o).await?;
    let sensors = fetch_sensors(&client, &o).await?;
    if sensors.is_empty() {
        return Err(SimError::NoSensors);
    }
    let mut gen = Generator::new(&sensors, o.seed, o.leak_share, o.dead_share, clock.now());
    gen.leak_now(&o.leak_now, clock.now())?;
    eprintln!(
        "simulating {} sensors ({} live, {} dead) at {} readings/s against {}",
        sensors.len(),
        gen.live(),
        sensors.len() - gen.live(),
        o.rate,
        o.url
    );
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(200));
    let summary = Arc::new(parking_lot::Mutex::new(SimSummary::default()));
    let inflight = Arc::new(tokio::sync::Semaphore::new(4));
    let url = format!("{}/sensors/readings", o.url.trim_end_matches('/'));
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut carry = 0.0f64;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        if o.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        carry += f64::from(o.rate) / 10.0;
        let n = carry.floor() as usize;
        carry -= n as f64;
        let batch = gen.batch(clock.now(), n);
        if batch.is_empty() {
            continue;
        }
        let mut body = Vec::with_capacity(batch.len() * 64);
        for r in &batch {
            serde_json::to_writer(&mut body, r).map_err(|e| SimError::Invalid(e.to_string()))?;
            body.push(b'\n');
        }
        let permit = inflight
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| SimError::Invalid(e.to_string()))?;
        let (client, url, key, totals) =
            (client.clone(), url.clone(), o.key.clone(), summary.clone());
        let sent = batch.len() as u64;
        tokio::spawn(async move {
            let mut req = client
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .body(body);
            if let Some(k) = key {
                req = req.bearer_auth(k);
            }
            let res = match req.send().await {
                Ok(r) => r.json::<serde_json::Value>().await.ok(),
                Err(_) => None,
            };
            let mut s = totals.lock();
            s.sent += sent;
            match res {
                Some(v) if v.get("received").is_some() => {
                    s.stored += v["stored"].as_u64().unwrap_or(0);
                    s.duplicates += v["duplicates"].as_u64().unwrap_or(0);
                    s.rejected += v["rejected"].as_u64().unwrap_or(0);
                    s.alarm_changes += v["alarm_changes"].as_u64().unwrap_or(0);
                }
                _ => s.failed_requests += 1,
            }
            drop(permit);
        });
        let s = summary.lock().clone();
        let secs = started.elapsed().as_secs_f64().max(0.001);
        bar.set_message(format!(
            "{} sent, {} stored ({:.0}/s), {} rejected, {} alarm changes, {} failed requests",
            s.sent,
            s.stored,
            s.stored as f64 / secs,
            s.rejected,
            s.alarm_changes,
            s.failed_requests
        ));
    }
    // Let in-flight requests finish.
    let _ = inflight.acquire_many(4).await;
    bar.finish_and_clear();
    let mut s = summary.lock().clone();
    s.seconds = started.elapsed().as_secs_f64();
    Ok(s)
}

/// Kinds by sensor id of a fleet, for tests.
pub fn kinds(sensors: &[(i64, SensorKind)]) -> HashMap<i64, SensorKind> {
    sensors.iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_risk::rules::Rules;

    /// A fixed instant: the streams must not depend on the day the tests run.
    fn at() -> DateTime<Utc> {
        "2026-11-23T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn streams_are_deterministic_plausible_and_never_repeat_a_time() {
        let fleet: Vec<(i64, SensorKind)> = (1..=50)
            .map(|i| (i, SensorKind::ALL[i as usize % SensorKind::ALL.len()]))
            .collect();
        let now = at();
        let mut a = Generator::new(&fleet, 7, 0.5, 0.1, now);
        let mut b = Generator::new(&fleet, 7, 0.5, 0.1, now);
        let x = a.batch(now, 500);
        assert_eq!(x, b.batch(now, 500));
        let kinds = kinds(&fleet);
        let mut seen = std::collections::HashSet::new();
        for r in &x {
            let k = Rules::builtin().kind(kinds[&r.sensor_id]);
            assert!(r.value >= k.min && r.value <= k.max, "{r:?}");
            assert!(seen.insert((r.sensor_id, r.time)), "duplicate {r:?}");
        }
        assert!(a.live() < 50, "some sensors are dead");
    }

    #[test]
    fn leak_now_sensors_report_over_the_emergency_threshold_in_every_batch() {
        let fleet = vec![
            (1, SensorKind::GasLel),
            (2, SensorKind::GasLel),
            (3, SensorKind::Pressure),
        ];
        let now = at();
        let mut g = Generator::new(&fleet, 1, 0.0, 0.0, now);
        g.leak_now(&[2], now).unwrap();
        for k in 0..5 {
            let b = g.batch(now + chrono::Duration::milliseconds(100 * k), 1);
            assert_eq!(b.len(), 2, "{b:?}");
            let leak: Vec<_> = b.iter().filter(|r| r.sensor_id == 2).collect();
            assert_eq!(leak.len(), 1, "{b:?}");
            assert!(leak[0].value > 35.0, "{:?}", leak[0]);
        }
        let e = g.leak_now(&[3], now).unwrap_err().to_string();
        assert!(e.contains("3") && e.contains("gas"), "{e}");
        let e = g.leak_now(&[99], now).unwrap_err().to_string();
        assert!(e.contains("99"), "{e}");
        // Only focus sensors alive: batches hold just them, and end.
        let mut solo = Generator::new(&[(5, SensorKind::GasLel)], 1, 0.0, 0.0, now);
        solo.leak_now(&[5], now).unwrap();
        assert_eq!(solo.batch(now, 10).len(), 1);
    }

    #[test]
    fn leaks_grow_until_they_cross_the_gas_alarm_threshold() {
        let fleet = vec![(1, SensorKind::GasLel)];
        let now = at();
        let mut g = Generator::new(&fleet, 1, 1.0, 0.0, now);
        let later = now + chrono::Duration::minutes(60);
        let v = g.batch(later, 1)[0].value;
        assert!(v > 20.0, "a leak an hour old is over 20 %LEL: {v}");
    }
}
