//! `lifeline check`: the data check of the whole store ([`lifeline::model::check`]) plus
//! the excavation calendar's expiry warning; exits 1 when it finds errors.

use super::open_store;
use anyhow::Result;
use lifeline::config::StoreArgs;
use lifeline::model::Catalog;

/// Problems printed as text before "… and N more".
const SHOWN: usize = 200;

/// Arguments of `lifeline check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Loads the store, checks it, prints the report; ends the process with status 1 when the
/// report holds errors.
pub async fn run(store_args: &StoreArgs, a: &CheckArgs) -> Result<()> {
    let (store, config) = open_store(store_args).await?;
    let data = store.load_all().await?;
    let mut report = lifeline::model::check::run(&data, Catalog::builtin());
    let ex = lifeline::excavation::Excavation::from_path(config.excavation_config.as_deref())?;
    let cal = &ex.tickets.calendar;
    report
        .warnings
        .extend(cal.expiry_warning(cal.local_date(lifeline::model::Clock::system().now())));
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for p in report.problems.iter().take(SHOWN) {
            println!("{:<10} {}[{}]: {}", p.kind, p.layer, p.id, p.message);
        }
        if report.problems.len() > SHOWN {
            println!(
                "… and {} more (use --json for all)",
                report.problems.len() - SHOWN
            );
        }
        for w in &report.warnings {
            println!("warning    {w}");
        }
        println!(
            "checked {} records: {} errors, {} risk points without a sensor",
            report.records,
            report.errors(),
            report.unmonitored()
        );
    }
    if report.errors() > 0 {
        std::process::exit(1);
    }
    Ok(())
}
