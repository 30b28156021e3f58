//! `lifeline keys`: creates, revokes and lists API keys in the store directly (audited as
//! the CLI's actor). A new key is printed once; the store keeps only its hash.

use super::open_store;
use anyhow::{bail, Result};
use lifeline::config::StoreArgs;
use lifeline::model::{Actor, Role};

/// The `keys` subcommands.
#[derive(clap::Subcommand)]
pub enum KeysAction {
    /// Create a key and print it (it is shown only once).
    Create {
        #[arg(long)]
        name: String,
        /// viewer, contractor, analyst, operator or admin.
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

/// Runs one `keys` subcommand against the configured store.
pub async fn run(store_args: &StoreArgs, action: &KeysAction) -> Result<()> {
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
            // The key alone on stdout (`… | head -1` is the key); what it is, on stderr.
            eprintln!(
                "created key {} '{}' with role {}; store it now: it is not shown again",
                k.id, k.name, k.role
            );
            println!("{key}");
        }
        KeysAction::Revoke { id } => {
            if !store.revoke_api_key(*id, &actor).await? {
                bail!("no active key {id}");
            }
            println!("revoked key {id}");
        }
        KeysAction::List => {
            for k in store.list_api_keys().await? {
                println!(
                    "{:>5}  {:<10} {:<30} created {}{}",
                    k.id,
                    k.role,
                    k.name,
                    k.created_at.format("%Y-%m-%d %H:%M"),
                    k.revoked_at
                        .map(|r| format!(", revoked {}", r.format("%Y-%m-%d %H:%M")))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
