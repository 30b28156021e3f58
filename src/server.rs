//! The service's lifecycle: [`run`] serves a listener until a shutdown future completes, so
//! tests can bind port 0 and `main` can wait for SIGTERM ([`shutdown_signal`]).

use crate::state::AppState;
use std::future::Future;
use tokio::net::TcpListener;

/// Serves the API and the web client on `listener`, under the configured connection
/// limits ([`crate::connections`]), until `shutdown` completes; in-flight requests finish
/// first.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Issue 16: the readings history is maintained before ingest is served (partitions from
    // the retention horizon to a few days ahead, expired raw readings removed), then
    // hourly. A failed round does not stop the start: ingest makes a missing partition
    // itself, and the next round tries again.
    if let Err(e) = state.risk.maintain_readings().await {
        tracing::warn!(error = %e, "readings maintenance at start failed; retrying hourly");
    }
    // Issue 5: the change follower and the offline rule live as long as the server.
    let background = [
        crate::sync::spawn(state.clone()),
        crate::risk::spawn_offline_checker(state.risk.clone()),
        crate::risk::spawn_readings_maintenance(state.risk.clone()),
        // Issue 4: delivers owners' webhook notifications from the outbox.
        crate::excavation::notify::spawn(
            state.store.clone(),
            state.excavation.clone(),
            state.clock.clone(),
        ),
        // Issue 21: tile read groups written to the audit log every few minutes.
        crate::audit::spawn_tile_flush(state.audit.clone(), state.config.audit.tile_flush),
    ];
    let audit = state.audit.clone();
    // Live event streams never end on their own: end them when shutdown starts, so the
    // graceful shutdown below does not wait for them forever.
    let closing = state.risk.closing.clone();
    let shutdown = async move {
        shutdown.await;
        closing.cancel();
    };
    let limits = state.config.http.clone();
    let app = crate::http::router(state);
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let served = crate::connections::serve(listener, app, &limits, shutdown).await;
    for task in background {
        task.abort();
    }
    // The open tile groups are written before the process ends.
    match audit.flush_tiles().await {
        Ok(n) => tracing::info!(entries = n, "tile reads written to the audit log"),
        Err(e) => tracing::error!(error = %e, "tile reads could not be written to the audit log"),
    }
    served
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
