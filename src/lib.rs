//! The JunoSixteen realtime server: WebSocket game rooms, the HTTP API and the
//! edges to the database. `main.rs` only parses the command line and calls [`run`].

pub mod auth;
pub mod boards;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod difficulty;
pub mod dispatch;
pub mod drain;
pub mod flags;
pub mod http;
pub mod logins;
pub mod matching;
pub mod matchmaker;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod ops;
pub mod outbox;
pub mod rating;
pub mod room_host;
pub mod routing;
pub mod session;
pub mod stats;
pub mod store;

use axum::serve::ListenerExt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::config::Config;
use crate::node::Node;
use crate::store::Store;

/// A started node: its shared state, its address, and the task serving HTTP.
pub struct Server {
    pub node: Arc<Node>,
    pub addr: SocketAddr,
    serving: JoinHandle<()>,
    outbox_writer: JoinHandle<()>,
    outbox_stop: CancellationToken,
}

impl Server {
    /// Connects the store (migrating it), loads flags and keys, and starts serving on `listener`.
    pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Server> {
        let store = Store::connect(&config.database_url).await?;
        let flags = store.flag_set().await?;
        let auth = Auth::from_config(&config)?;
        if auth.dev_mode() {
            tracing::warn!(
                secret = %auth::dev_secret_path(&config).display(),
                "dev mode: JUNO_JWT_SECRET is not set, so tokens are signed with a generated secret and POST /auth/dev-token is open"
            );
        }
        let spool = spool_path(&config);
        let cluster = match &config.redis_url {
            Some(url) => {
                Some(cluster::Cluster::connect(url, &config.node_id, &config.redis_prefix).await?)
            }
            None => None,
        };
        let difficulty = difficulty::Difficulty::builtin(config.policy_url.as_deref())?;
        let node = Node::new(config, auth, store.clone(), flags, cluster, difficulty);
        if let Some(cluster) = &node.cluster {
            cluster.start(&node);
        }
        matching::spawn_rematch(&node);
        spawn_keepalive(&node);
        let outbox_stop = CancellationToken::new();
        let on_written = {
            let node = Arc::downgrade(&node);
            move |record: &store::MatchRecord| {
                if let Some(node) = node.upgrade() {
                    if let Some(cluster) = &node.cluster {
                        let (week, _, _) = stats::iso_week(record.finished_at);
                        let points: Vec<(String, String, u64)> = record
                            .summary
                            .players
                            .iter()
                            .map(|p| (p.id.clone(), p.name.clone(), p.score))
                            .collect();
                        cluster.add_weekly_points(&week, &points);
                    }
                    node.metrics.observe_mission(
                        &record.world,
                        &record.summary.players,
                        record.summary.questions_asked,
                    );
                }
            }
        };
        let outbox_writer = node
            .outbox
            .start(store, spool, outbox_stop.clone(), on_written);
        let addr = listener
            .local_addr()
            .context("reading the listening address")?;
        let app = http::router(node.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let stop = node.shutdown.clone();
        let serving = tokio::spawn(async move {
            // Frames are small and latency-bound: Nagle's algorithm would hold a
            // frame back until the previous one is acknowledged, and the peer may
            // delay that acknowledgement by up to 40 ms.
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "setting TCP_NODELAY");
                }
            });
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        tracing::info!(%addr, node = %node.config.node_id, "serving");
        Ok(Server {
            node,
            addr,
            serving,
            outbox_writer,
            outbox_stop,
        })
    }

    /// Waits until the node has stopped (after a drain), then stops the outbox writer.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.node.shutdown.cancelled().await;
        // Upgraded connections were all closed by the drain; give the server a moment to notice.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.serving).await;
        self.outbox_stop.cancel();
        let _ = self.outbox_writer.await;
        self.node.store.close().await;
        Ok(())
    }
}

/// Serves until `shutdown` resolves, then drains and returns.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let server = Server::start(config, listener).await?;
    let node = server.node.clone();
    tokio::spawn(async move {
        shutdown.await;
        drain::drain(node).await;
    });
    server.wait().await
}

/// Pings every connection each `JUNO_KEEPALIVE_SECS` from one task (a peer silent
/// for three rounds is dropped by its connection), instead of a timer per connection.
fn spawn_keepalive(node: &Arc<Node>) {
    let weak = Arc::downgrade(node);
    let every = node.config.keepalive;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tick.tick().await;
            let Some(node) = weak.upgrade() else { return };
            if node.shutdown.is_cancelled() {
                return;
            }
            node.sessions.ping_all();
        }
    });
}

/// Where unwritten results are kept across a restart: beside the embedded database,
/// else in the working directory.
fn spool_path(config: &Config) -> PathBuf {
    let dir = config
        .sqlite_path()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_default();
    dir.join("juno-outbox.jsonl")
}
