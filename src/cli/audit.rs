//! `lifeline audit`: checks the audit log's hash chain (`verify`, exits 1 naming the first
//! broken entry) and removes whole expired segments of it (`cut`, by the configured
//! retention), on the configured store, through [`lifeline::audit`].

use super::{open_store, Output};
use anyhow::{bail, Result};
use lifeline::audit::Verified;
use lifeline::config::StoreArgs;
use lifeline::store::AuditCut;
use std::fmt;

/// The `audit` subcommands.
#[derive(clap::Subcommand)]
pub enum AuditAction {
    /// Check the hash chain from its anchor; exit 1 and name the first broken entry.
    Verify,
    /// Remove the whole segments of entries older than the retention
    /// (`[audit] retention_days`, or `--days`); the chain stays verifiable.
    Cut {
        /// Overrides `[audit] retention_days`.
        #[arg(long)]
        days: Option<u32>,
    },
}

struct VerifyOut(Verified);

impl serde::Serialize for VerifyOut {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl fmt::Display for VerifyOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.0;
        match &v.broken {
            None => write!(
                f,
                "audit chain intact: {} entries checked (seq {}..={})",
                v.checked,
                v.anchor_seq + 1,
                v.last_seq
            ),
            Some(b) => write!(
                f,
                "audit chain BROKEN at entry {} (seq {}): {}; {} entries before it verified",
                b.id, b.seq, b.reason, v.checked
            ),
        }
    }
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct CutOut(AuditCut);

impl fmt::Display for CutOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "removed {} audit entries; the chain now starts after seq {}",
            self.0.removed, self.0.anchor.seq
        )
    }
}

/// Runs an `audit` subcommand.
pub async fn run(store_args: &StoreArgs, action: &AuditAction, out: Output) -> Result<()> {
    let (store, config) = open_store(store_args).await?;
    match action {
        AuditAction::Verify => {
            let v = lifeline::audit::verify(store.as_ref()).await?;
            let broken = v.broken.is_some();
            out.result(&VerifyOut(v))?;
            if broken {
                std::process::exit(1);
            }
            Ok(())
        }
        AuditAction::Cut { days } => {
            let Some(days) = days.or(config.audit.retention_days) else {
                bail!("no retention: set [audit] retention_days or pass --days");
            };
            let now = lifeline::model::Clock::system().now();
            let segment = config.audit.segment_entries;
            let cut = lifeline::audit::cut(store.as_ref(), now, days, segment).await?;
            out.result(&CutOut(cut))
        }
    }
}
