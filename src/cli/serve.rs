//! `lifeline serve`: binds the configured address and runs the service until SIGTERM or
//! Ctrl-C ([`lifeline::run`]).

use anyhow::{Context, Result};
use lifeline::config::{Config, ServeArgs, StoreArgs};

/// Resolves the configuration, binds, opens the state and serves.
pub async fn run(store: &StoreArgs, args: &ServeArgs) -> Result<()> {
    let config = Config::resolve(store, args)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let state = lifeline::AppState::open(config).await?;
    lifeline::run(listener, state, lifeline::server::shutdown_signal()).await?;
    Ok(())
}
