//! Everything that lets many nodes act as one server, behind types that work the
//! same for a node on its own: the [`Directory`] (seats, rooms, presence), the
//! [`DuelQueue`], the [`Bus`] between nodes and the shared weekly [`Board`].
//! Each has a local backend and a Redis backend (`REDIS_URL` set); callers never
//! ask which.
//!
//! With Redis, a heartbeat says this node is alive (a key that expires after
//! `JUNO_NODE_TTL_MS`, beaten three times as often, so one late beat is not
//! death), renews this node's leases, looks for nodes whose key expired (their
//! rooms are [`Orphan`]s the game layer adopts through the [`journal`]), and
//! when Redis comes back empty re-registers everything the node owns.
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
pub use journal::{Adopted, Batch, Committed, Orphan, RoomLog};
pub use leaderboard::{Board, BoardRows, Weekly};
use link::{Link, REQUEST_TIMEOUT};
pub use queue::{DuelQueue, Seated};

/// The longest between two beats, however long the node TTL.
const MAX_HEARTBEAT: Duration = Duration::from_secs(2);
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
    /// This node's `alive` key had expired (it was frozen, or cut off): other
    /// nodes may have adopted its rooms, so each room checks its lease now
    /// rather than at its next write.
    fn recheck_rooms(&self);
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
    scripts: Arc<journal::Scripts>,
    /// `JUNO_NODE_TTL_MS`: how long the `alive` key lives after a beat.
    node_ttl: Duration,
    /// Rooms of dead nodes, found by the heartbeat, for the game layer to adopt.
    orphans: (
        tokio::sync::mpsc::UnboundedSender<Orphan>,
        std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Orphan>>>,
    ),
}

impl Cluster {
    /// A node on its own: local directories and queue, a loopback bus.
    pub fn local(node_id: &str) -> (Cluster, Inbox) {
        Cluster::with(node_id, None, Duration::from_secs(3))
    }

    /// Joins the cluster of nodes sharing the Redis at `url` under `prefix`.
    /// Fails if the URL is malformed or Redis does not answer at start; later
    /// outages are survived.
    pub async fn connect(
        url: &str,
        node_id: &str,
        prefix: &str,
        node_ttl: Duration,
    ) -> anyhow::Result<(Cluster, Inbox)> {
        let link = Link::connect(url, node_id, prefix).await?;
        let leftovers = journal::own_leftovers(&link).await.unwrap_or_else(|e| {
            tracing::warn!(error = %format!("{e:#}"), "looking for rooms a previous process of this node left");
            Vec::new()
        });
        let (cluster, inbox) = Cluster::with(node_id, Some(link), node_ttl);
        if !leftovers.is_empty() {
            tracing::info!(
                rooms = leftovers.len(),
                "taking back the rooms this node's previous process hosted"
            );
        }
        for orphan in leftovers {
            let _ = cluster.orphans.0.send(orphan);
        }
        Ok((cluster, inbox))
    }

    fn with(node_id: &str, redis: Option<Arc<Link>>, node_ttl: Duration) -> (Cluster, Inbox) {
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
            scripts: Arc::new(journal::Scripts::new()),
            node_ttl,
            orphans: {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                (tx, std::sync::Mutex::new(Some(rx)))
            },
        };
        (cluster, inbox)
    }

    /// Whether rooms here are logged in Redis and can be adopted (cluster mode).
    pub fn is_durable(&self) -> bool {
        self.redis.is_some()
    }

    /// The log and lease of a room this node hosts under `epoch` (1 for a new
    /// room); `None` on a node on its own, whose rooms end with it.
    pub fn room_log(
        &self,
        room: &str,
        mode: &str,
        parent: Option<&str>,
        epoch: u64,
    ) -> Option<RoomLog> {
        let link = self.redis.clone()?;
        Some(RoomLog::new(
            link,
            self.scripts.clone(),
            self.node_ttl,
            room,
            mode,
            parent,
            epoch,
        ))
    }

    /// Takes `room` over from the dead node `dead`: its log, if this node won it.
    pub async fn adopt(&self, room: &str, dead: &str) -> Option<Adopted> {
        let link = self.redis.as_ref()?;
        // A lost answer is asked again: the script answers its winner the same.
        for attempt in 1..=3 {
            match journal::adopt(link, &self.scripts, room, dead).await {
                Ok(adopted) => return adopted,
                Err(e) => {
                    tracing::warn!(%room, %dead, attempt, error = %format!("{e:#}"), "adopting a room");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
            }
        }
        None
    }

    /// The rooms of dead nodes as the heartbeat finds them (taken once, by the game layer).
    pub fn take_orphans(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Orphan>> {
        self.orphans.1.lock().ok()?.take()
    }

    /// Which of `users` are connected to a live node, and where (presence).
    pub async fn where_are(&self, users: &[String]) -> std::collections::HashMap<String, String> {
        let mut found = std::collections::HashMap::new();
        let Some(link) = &self.redis else {
            return found;
        };
        if users.is_empty() {
            return found;
        }
        let mut cmd = redis::cmd("MGET");
        for user in users {
            cmd.arg(link.key(&["user", user]));
        }
        let Ok(nodes) = link.request::<Vec<Option<String>>>(&cmd).await else {
            return found;
        };
        let mut alive: std::collections::HashMap<String, bool> = Default::default();
        for (user, node) in users.iter().zip(nodes) {
            let Some(node) = node else { continue };
            let live = match alive.get(&node) {
                Some(live) => *live,
                None => {
                    let live = node == link.node_id
                        || link
                            .request::<bool>(redis::cmd("EXISTS").arg(link.key(&["alive", &node])))
                            .await
                            .unwrap_or(false);
                    alive.insert(node.clone(), live);
                    live
                }
            };
            if live {
                found.insert(user.clone(), node);
            }
        }
        found
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

/// Beats three times per node TTL; renews leases every [`LEASE_RENEW`],
/// re-registers everything this node owns when Redis comes back empty, and
/// hands the rooms of nodes that stopped beating to the game layer.
async fn heartbeat_loop(cluster: Weak<Cluster>, node: Weak<dyn LocalNode>) {
    let mut since_renew = Duration::ZERO;
    let beat_every = match cluster.upgrade() {
        Some(c) => (c.node_ttl / 3).clamp(Duration::from_millis(100), MAX_HEARTBEAT),
        None => return,
    };
    let mut tick = tokio::time::interval(beat_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
            Ok(false) => {
                link.want_resync();
                node.recheck_rooms();
            }
            Ok(true) => {}
        }
        link.set_healthy(true);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&alive_key)
            .arg(1)
            .arg("PX")
            .arg(cluster.node_ttl.as_millis() as u64)
            .ignore();
        // When it last beat: an adopter resumes the room's clock from here.
        pipe.cmd("HSET")
            .arg(link.key(&["beat"]))
            .arg(&link.node_id)
            .arg(chrono::Utc::now().timestamp_millis())
            .ignore();
        pipe.cmd("HSET")
            .arg(link.key(&["nodes"]))
            .arg(&link.node_id)
            .arg(node.connections())
            .ignore();
        since_renew += beat_every;
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
            Ok(()) => match journal::find_orphans(link).await {
                Ok(orphans) => {
                    for orphan in orphans {
                        let _ = cluster.orphans.0.send(orphan);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %format!("{e:#}"), "looking for dead nodes' rooms")
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                link.set_healthy(false);
                link.want_resync();
            }
        }
    }
}
