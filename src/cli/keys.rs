//! `lifeline keys`: creates, revokes and lists API keys in the store directly (audited as
//! the CLI's actor). A new key is printed once; the store keeps only its hash.

use super::{open_store, Output};
use anyhow::{bail, Result};
use lifeline::config::StoreArgs;
use lifeline::model::{Actor, Role};
use lifeline::store::ApiKey;
use std::fmt;

/// The `keys` subcommands.
#[derive(clap::Subcommand)]
pub enum KeysAction {
    /// Create a key and print it (it is shown only once).
    Create {
        #[arg(long)]
        name: String,
        /// auditor (reads the audit log only), viewer, contractor, analyst, operator or admin.
        #[arg(long)]
        role: String,
    },
    /// Revoke a key by id.
    Revoke {
        #[arg(long)]
        id: i64,
    },
    /// List keys (never the keys themselves).
    List,
}

/// A key just created. As text only the key itself is printed (`… | head -1` is the key);
/// what it is goes to stderr.
#[derive(serde::Serialize)]
struct Created {
    id: i64,
    name: String,
    role: Role,
    key: String,
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// The keys of the store: with `--json` an array of [`ApiKey`] (id, name, role, RFC 3339
/// `created_at` and `revoked_at`; its hash is never serialized), as text one key a line.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Listed(Vec<ApiKey>);

impl fmt::Display for Listed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|k| {
                format!(
                    "{:>5}  {:<10} {:<30} created {}{}",
                    k.id,
                    k.role,
                    k.name,
                    k.created_at.format("%Y-%m-%d %H:%M"),
                    k.revoked_at
                        .map(|r| format!(", revoked {}", r.format("%Y-%m-%d %H:%M")))
                        .unwrap_or_default()
                )
            })
            .collect();
        f.write_str(&lines.join("\n"))
    }
}

/// A key revoked.
#[derive(serde::Serialize)]
struct Revoked {
    revoked: i64,
}

impl fmt::Display for Revoked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "revoked key {}", self.revoked)
    }
}

/// Runs one `keys` subcommand against the configured store.
pub async fn run(store_args: &StoreArgs, action: &KeysAction, out: Output) -> Result<()> {
    let (store, _) = open_store(store_args).await?;
    let actor = Actor::cli();
    match action {
        KeysAction::Create { name, role } => {
            let role: Role = role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            lifeline::model::check_key_name(name)?;
            let key = lifeline::auth::generate_key();
            let k = store
                .create_api_key(name.trim(), role, &lifeline::auth::hash_key(&key), &actor)
                .await?;
            out.note(format_args!(
                "created key {} '{}' with role {}; store it now: it is not shown again",
                k.id, k.name, k.role
            ));
            out.result(&Created {
                id: k.id,
                name: k.name,
                role: k.role,
                key,
            })
        }
        KeysAction::Revoke { id } => {
            if !store.revoke_api_key(*id, &actor).await? {
                bail!("no active key {id}");
            }
            out.result(&Revoked { revoked: *id })
        }
        KeysAction::List => out.result(&Listed(store.list_api_keys().await?)),
    }
}
