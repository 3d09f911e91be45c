//! Everything that lets many nodes act as one server, behind types that work the
//! same for a node on its own: the [`Directory`] (seats, rooms, presence), the
//! [`DuelQueue`], the [`Bus`] between nodes and the shared weekly [`Board`].
//! Each has a local backend and a Redis backend (`REDIS_URL` set); callers never
//! ask which.
//!
//! With Redis, a heartbeat says this node is alive (a key with a TTL of three
//! beats, so one late beat is not death), renews this node's leases, and when
//! Redis comes back empty re-registers everything the node owns.
//!
//! This layer knows nothing of rooms' rules, connections or HTTP: what it needs
//! from the node (its users, its connection count) comes through [`LocalNode`].

mod bus;
mod directory;
pub mod journal;
mod leaderboard;
mod link;
pub mod queue;

use std::sync::{Arc, Weak};
use std::time::Duration;

pub use bus::{Bus, Inbox};
pub use directory::Directory;
pub use leaderboard::{Board, BoardRows, Weekly};
use link::{Link, REQUEST_TIMEOUT};
pub use queue::{DuelQueue, Seated};

/// How often a node says it is alive; its key lives three beats.
const HEARTBEAT: Duration = Duration::from_secs(2);
const ALIVE_TTL_SECS: u64 = 6;
/// How often leases are renewed (well inside their 30 s).
const LEASE_RENEW: Duration = Duration::from_secs(10);

/// What the heartbeat needs to know of the node it beats for.
pub trait LocalNode: Send + Sync {
    /// Live connections on this node (the cluster's online count sums them).
    fn connections(&self) -> usize;
    /// Users connected here (re-registered when Redis comes back empty).
    fn users(&self) -> Vec<String>;
    /// The node stopped serving: stop beating.
    fn stopped(&self) -> bool;
}

/// Whether the node's Redis answers, for `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisStatus {
    /// No Redis configured: the node is on its own.
    Off,
    Ok,
    Down,
}

impl RedisStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RedisStatus::Off => "off",
            RedisStatus::Ok => "ok",
            RedisStatus::Down => "down",
        }
    }
}

/// This node's view of the cluster (of itself alone without Redis).
pub struct Cluster {
    pub directory: Directory,
    pub queue: DuelQueue,
    pub bus: Bus,
    pub board: Board,
    redis: Option<Arc<Link>>,
}

impl Cluster {
    /// A node on its own: local directories and queue, a loopback bus.
    pub fn local(node_id: &str) -> (Cluster, Inbox) {
        Cluster::with(node_id, None)
    }

    /// Joins the cluster of nodes sharing the Redis at `url` under `prefix`.
    /// Fails if the URL is malformed or Redis does not answer at start; later
    /// outages are survived.
    pub async fn connect(
        url: &str,
        node_id: &str,
        prefix: &str,
    ) -> anyhow::Result<(Cluster, Inbox)> {
        let link = Link::connect(url, node_id, prefix).await?;
        Ok(Cluster::with(node_id, Some(link)))
    }

    fn with(node_id: &str, redis: Option<Arc<Link>>) -> (Cluster, Inbox) {
        let (bus, inbox) = Bus::new(node_id, redis.clone());
        let queue = match &redis {
            Some(link) => DuelQueue::Redis(queue::RedisQueue::new(link.clone())),
            None => DuelQueue::Local(Default::default()),
        };
        let cluster = Cluster {
            directory: Directory::new(node_id, redis.clone()),
            queue,
            bus,
            board: Board::new(redis.clone()),
            redis,
        };
        (cluster, inbox)
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        self.directory.node_id()
    }

    /// Starts the heartbeat and the bus listener (nothing to start on its own).
    pub fn start(self: &Arc<Self>, node: Weak<dyn LocalNode>) {
        if self.redis.is_none() {
            return;
        }
        let stopped = {
            let node = node.clone();
            move || node.upgrade().is_none_or(|n| n.stopped())
        };
        self.bus.spawn_listener(stopped);
        tokio::spawn(heartbeat_loop(Arc::downgrade(self), node));
    }

    /// Whether Redis answers now.
    pub async fn redis_status(&self) -> RedisStatus {
        match &self.redis {
            None => RedisStatus::Off,
            Some(link) if link.ping().await => RedisStatus::Ok,
            Some(_) => RedisStatus::Down,
        }
    }

    /// Removes this node from the shared directories (at the end of a drain).
    pub async fn leave(&self) {
        let Some(link) = &self.redis else { return };
        let _ = link
            .request::<i64>(redis::cmd("DEL").arg(link.key(&["alive", &link.node_id])))
            .await;
        let _ = link
            .request::<i64>(
                redis::cmd("HDEL")
                    .arg(link.key(&["nodes"]))
                    .arg(&link.node_id),
            )
            .await;
    }
}

/// Beats every [`HEARTBEAT`]; renews leases every [`LEASE_RENEW`], and re-registers
/// everything this node owns when Redis comes back empty.
async fn heartbeat_loop(cluster: Weak<Cluster>, node: Weak<dyn LocalNode>) {
    let mut since_renew = Duration::ZERO;
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let (Some(cluster), Some(node)) = (cluster.upgrade(), node.upgrade()) else {
            return;
        };
        if node.stopped() {
            return;
        }
        let Some(link) = &cluster.redis else { return };
        let alive_key = link.key(&["alive", &link.node_id]);
        // Asked directly, not through `request`: this is how recovery is noticed.
        let mut probe = link.conn.clone();
        let was_alive = tokio::time::timeout(
            REQUEST_TIMEOUT,
            redis::cmd("EXISTS")
                .arg(&alive_key)
                .query_async::<bool>(&mut probe),
        )
        .await
        .map_err(|_| ())
        .and_then(|r| r.map_err(|_| ()));
        match was_alive {
            Err(_) => {
                link.set_healthy(false);
                link.want_resync();
                continue;
            }
            Ok(false) => link.want_resync(),
            Ok(true) => {}
        }
        link.set_healthy(true);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&alive_key)
            .arg(1)
            .arg("EX")
            .arg(ALIVE_TTL_SECS)
            .ignore();
        pipe.cmd("HSET")
            .arg(link.key(&["nodes"]))
            .arg(&link.node_id)
            .arg(node.connections())
            .ignore();
        since_renew += HEARTBEAT;
        let resync = link.take_resync();
        if resync || since_renew >= LEASE_RENEW {
            since_renew = Duration::ZERO;
            cluster.directory.renew_leases(link, &mut pipe);
            if resync {
                tracing::info!("registering this node's rooms, seats and users in Redis");
                for user in node.users() {
                    pipe.cmd("SET")
                        .arg(link.key(&["user", &user]))
                        .arg(&link.node_id)
                        .ignore();
                }
            }
        }
        let mut conn = link.conn.clone();
        match pipe.query_async::<()>(&mut conn).await {
            // Presence and seats are back: the queue can tell which tickets to put back.
            Ok(()) if resync => cluster.queue.restore().await,
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                link.set_healthy(false);
                link.want_resync();
            }
        }
    }
}
