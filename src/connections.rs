//! The connection loop: accepts TCP connections and serves HTTP/1.1 on each with hyper,
//! under the limits an exposed service needs ([`HttpLimits`]), which `axum::serve` does
//! not offer:
//!
//! - a **header read timeout**: a connection must send a request's whole head within it —
//!   at the start and while idle between keep-alive requests — or it is closed, so
//!   half-open or idle connections cannot pile up;
//! - a **cap on connections served at once**: beyond it the loop stops accepting and new
//!   connections wait in the kernel's listen backlog until one closes;
//! - **graceful shutdown**: when `shutdown` completes, accepting stops, idle connections
//!   close and requests in flight finish.
//!
//! Only HTTP/1.1 is served: it is what browsers, GIS clients and reverse proxies speak to
//! an upstream over plain TCP, and hyper's header timeout covers all of it (HTTP/2 over
//! cleartext would first need a protocol sniff with no timeout of its own).

use crate::config::HttpLimits;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// hyper's own buffer for a request head. It is larger than [`HttpLimits::max_header_bytes`]
/// so that an oversized head reaches the service, which answers with its JSON 431; only
/// heads beyond this get hyper's bare 431.
const HEAD_BUFFER_BYTES: usize = 1024 * 1024;

/// Serves `app` on `listener` until `shutdown` completes and every connection has closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(HEAD_BUFFER_BYTES.max(limits.max_header_bytes + limits.max_uri_bytes));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses are small and often many per connection (tiles): send them at once.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that goes away or times out ends its connection: nothing to report.
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// An accept error: per-connection ones (the peer reset before we accepted) are nothing;
/// running out of file descriptors is logged and waited out rather than spun on.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing before the next accept");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
