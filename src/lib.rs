//! The JunoSixteen realtime server: WebSocket game rooms, the HTTP API and the
//! edges to the database and to other nodes. `main.rs` only parses the command
//! line and calls [`run`]; this file wires the layers together.
//!
//! # Layers, and the one-way rule
//!
//! | layer | owns |
//! |---|---|
//! | [`gateway`] | HTTP routes and handlers, JWT auth, the WebSocket upgrade, the connection task and its rate budget, dispatch of client messages |
//! | [`game`] | room hosts and fan-out, room creation and lookup, seats, matchmaking, flags, ratings in play, questions, presence, notifications, drain, what other nodes send |
//! | [`ops`] | the operator commands (`juno-server admin …`) |
//! | [`cluster`] | Redis: the directories (seats, rooms, presence), the duel queue and its Lua scripts, the bus, the shared weekly board, the heartbeat — each with a local backend for a node on its own |
//! | [`store`] | SQL through sqlx (SQLite or Postgres), the results outbox, the login writer |
//! | [`model`], [`config`], [`metrics`] | plain data and pure rules several layers share, the configuration, the Prometheus registry |
//!
//! Dependencies point one way: `gateway → game → {cluster, store} → model`,
//! `ops → store`, and everything may use `config`, `metrics` and the crates
//! `juno-rooms` (the game rules, sans-IO) and `juno-protocol` (the wire). A module
//! never imports from a layer above its own; `tests/it/layers.rs` fails if one does.
//! So a rule lives in one place: a game rule in `juno-rooms`, how the node applies
//! it in `game`, how nodes share it in `cluster`, how it is kept in `store`.

pub mod cluster;
pub mod config;
pub mod game;
pub mod gateway;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::config::Config;
use crate::game::difficulty::Difficulty;
use crate::game::{drain, Node};
use crate::gateway::auth::{self, Auth};
use crate::gateway::guard::Guard;
use crate::gateway::{http, Gateway};
use crate::store::{Logins, Store};

/// A started node: its shared state, its address, and the task serving HTTP.
pub struct Server {
    pub node: Arc<Node>,
    /// The node's keys (tests and tools mint tokens with them).
    pub auth: Arc<Auth>,
    pub addr: SocketAddr,
    serving: JoinHandle<()>,
    outbox_writer: JoinHandle<()>,
    outbox_stop: CancellationToken,
}

impl Server {
    /// Connects the store (migrating it), loads flags and keys, and starts serving on `listener`.
    pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Server> {
        config.validate()?;
        let store = Store::connect(&config.database_url).await?;
        let flags = store.flag_set().await?;
        let auth = Auth::from_config(&config)?;
        if auth.dev_mode() {
            tracing::warn!(
                secret = %auth::dev_secret_path(&config).display(),
                "dev mode: JUNO_JWT_SECRET is not set, so tokens are signed with a generated secret and POST /auth/dev-token is open"
            );
        }
        let auth = Arc::new(auth);
        let spool = spool_path(&config);
        let cluster = match &config.redis_url {
            Some(url) => {
                Cluster::connect(url, &config.node_id, &config.redis_prefix, config.node_ttl)
                    .await?
            }
            None => Cluster::local(&config.node_id),
        };
        let difficulty = Difficulty::builtin(config.policy_url.as_deref())?;
        let node = Node::start(config, store.clone(), flags, cluster, difficulty);
        let outbox_stop = CancellationToken::new();
        let on_written = {
            let node = Arc::downgrade(&node);
            move |record: &crate::model::MatchRecord| {
                if let Some(node) = node.upgrade() {
                    node.on_match_written(record);
                }
            }
        };
        let outbox_writer =
            node.outbox
                .start(store.clone(), spool, outbox_stop.clone(), on_written);
        let gateway = Gateway {
            node: node.clone(),
            auth: auth.clone(),
            logins: Arc::new(Logins::start(store.clone())),
            guard: Guard::start(node.config.max_conns_per_ip, store),
        };
        let addr = listener
            .local_addr()
            .context("reading the listening address")?;
        let guard = gateway.guard.clone();
        let app = http::router(gateway);
        let stop = node.shutdown.clone();
        let config = node.config.clone();
        let serving = tokio::spawn(async move {
            gateway::serve::serve(listener, app, guard, &config, stop).await;
        });
        tracing::info!(%addr, node = %node.config.node_id, "serving");
        Ok(Server {
            node,
            auth,
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

/// Where unwritten results are kept across a restart: beside the embedded database,
/// else in the working directory.
fn spool_path(config: &Config) -> PathBuf {
    let dir = config
        .sqlite_path()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_default();
    dir.join("juno-outbox.jsonl")
}
