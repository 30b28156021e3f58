//! `lifeline check`: the data check of the whole store ([`lifeline::model::check`]), the
//! networks' shape ([`lifeline::trace::check`]: islands without a source, duplicate nodes,
//! valves that cannot be placed) and the excavation calendar's expiry warning; exits 1 when
//! it finds errors.

use super::{open_store, Output};
use anyhow::{bail, Result};
use lifeline::config::StoreArgs;
use lifeline::model::check::CheckReport;
use lifeline::model::Catalog;
use std::fmt;

/// Problems printed as text before "… and N more".
const SHOWN: usize = 200;

/// The report as `check` prints it: with `--json` the whole [`CheckReport`], as text the
/// first problems, the warnings and a count.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Checked(CheckReport);

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = &self.0;
        for p in report.problems.iter().take(SHOWN) {
            writeln!(f, "{:<10} {}[{}]: {}", p.kind, p.layer, p.id, p.message)?;
        }
        if report.problems.len() > SHOWN {
            writeln!(
                f,
                "… and {} more (use --json for all)",
                report.problems.len() - SHOWN
            )?;
        }
        for w in &report.warnings {
            writeln!(f, "warning    {w}")?;
        }
        write!(
            f,
            "checked {} records: {} errors, {} risk points without a sensor",
            report.records,
            report.errors(),
            report.unmonitored()
        )
    }
}

/// Loads the store, checks it, prints the report; fails (status 1) after printing when
/// the report holds errors.
pub async fn run(store_args: &StoreArgs, out: Output) -> Result<()> {
    let (store, config) = open_store(store_args).await?;
    let data = store.load_all().await?;
    let mut report = lifeline::model::check::run(&data, Catalog::builtin());
    report
        .problems
        .extend(lifeline::trace::check::network_problems(&data));
    let ex = lifeline::excavation::Excavation::from_path(config.excavation_config.as_deref())?;
    let cal = &ex.tickets.calendar;
    report
        .warnings
        .extend(cal.expiry_warning(cal.local_date(lifeline::model::Clock::system().now())));
    let errors = report.errors();
    out.result(&Checked(report))?;
    if errors > 0 {
        bail!("the check found {errors} error(s)");
    }
    Ok(())
}
