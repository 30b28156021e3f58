//! `lifeline simulate`: replays sensor streams against a running server
//! ([`lifeline::simulate`]) until the time is up or Ctrl-C, then prints what was sent.

use super::Output;
use anyhow::Result;
use lifeline::simulate::SimSummary;

/// Arguments of `lifeline simulate`.
#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API key with the operator role.
    #[arg(long, env = "LIFELINE_KEY")]
    key: Option<String>,
    /// Readings per second in total.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of gas sensors with a leak that grows until it alarms.
    #[arg(long, default_value_t = 0.01)]
    leaks: f64,
    /// Share of sensors that never report (the offline rule fires for them).
    #[arg(long, default_value_t = 0.02)]
    dead: f64,
    /// A gas detector whose leak is past the emergency threshold from its first
    /// reading and that reports every 100 ms (repeatable): a prompt alarm.
    #[arg(long = "leak-now", value_name = "SENSOR_ID")]
    leak_now: Vec<i64>,
}

/// What was sent and what the server made of it; with `--json` the [`SimSummary`] as is.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Sent(SimSummary);

impl std::fmt::Display for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.0;
        write!(
            f,
            "sent {} readings in {:.1} s: {} stored ({:.0}/s), {} duplicates, {} rejected, {} alarm changes, {} failed requests",
            s.sent,
            s.seconds,
            s.stored,
            s.stored as f64 / s.seconds.max(0.001),
            s.duplicates,
            s.rejected,
            s.alarm_changes,
            s.failed_requests
        )
    }
}

/// Runs the simulator and prints its summary.
pub async fn run(a: &SimulateArgs, out: Output) -> Result<()> {
    let options = lifeline::simulate::SimOptions {
        url: a.url.clone(),
        key: a.key.clone(),
        rate: a.rate,
        duration: a.seconds.map(std::time::Duration::from_secs),
        seed: a.seed,
        leak_share: a.leaks,
        dead_share: a.dead,
        leak_now: a.leak_now.clone(),
    };
    let s = lifeline::simulate::run(options, lifeline::server::shutdown_signal()).await?;
    out.result(&Sent(s))
}
