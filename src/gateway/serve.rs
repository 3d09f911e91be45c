//! Accepting connections, with the limits WIRE.md v1.1 §1 sets on them: a
//! connection that has not sent a complete request head within
//! `JUNO_HEADER_TIMEOUT_SECS` is closed (hyper's header-read timer, which
//! `axum::serve` leaves off), and a direct client beyond `JUNO_MAX_CONNS_PER_IP`
//! open connections is answered 429 and closed at once, so one address can
//! neither hold the node's file descriptors nor starve `/health`. When the
//! process does run out of descriptors, accepting pauses briefly instead of
//! spinning.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use super::guard::{Guard, Permit};
use crate::config::Config;

/// A connection's place among its address's, shared by its requests (a
/// WebSocket upgraded from it keeps it for as long as it lives).
#[derive(Clone)]
pub struct ConnPermit(pub Arc<Permit>);

/// How long a refused client is given to read its 429.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);
/// Pause after a failed accept (out of descriptors, say), so the loop never spins.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Serves `app` on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    guard: Arc<Guard>,
    config: &Config,
    stop: CancellationToken,
) {
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.cancelled() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    tracing::warn!(error = %e, "accepting a connection failed (out of file descriptors?)");
                    last_warning = Some(Instant::now());
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Frames are small and latency-bound: Nagle's algorithm would hold a
        // frame back until the previous one is acknowledged, and the peer may
        // delay that acknowledgement by up to 40 ms.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY");
        }
        // A trusted proxy carries many clients: they are counted by the address
        // it names (the `/ws` handler), not by the proxy's own.
        let permit = if config.is_trusted_proxy(peer.ip()) {
            None
        } else {
            match guard.open(peer.ip()) {
                Some(permit) => Some(ConnPermit(Arc::new(permit))),
                None => {
                    tokio::spawn(refuse(tcp));
                    continue;
                }
            }
        };
        tokio::spawn(serve_connection(
            tcp,
            peer,
            app.clone(),
            permit,
            config.header_timeout,
            stop.clone(),
        ));
    }
}

/// One HTTP/1.1 connection (and what it upgrades to).
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    permit: Option<ConnPermit>,
    header_timeout: Duration,
    stop: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if let Some(permit) = &permit {
            request.extensions_mut().insert(permit.clone());
        }
        let mut app = app.clone();
        async move { app.call(request).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => {
            if let Err(e) = served {
                tracing::trace!(error = %e, %peer, "connection ended");
            }
        }
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Answers 429 on a connection over its address's share, then closes it.
async fn refuse(mut tcp: TcpStream) {
    const BODY: &str = r#"{"error":"too many connections from this address"}"#;
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE, async {
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await
    })
    .await;
}
