//! Cluster mode (`REDIS_URL` set): what lets many nodes act as one server.
//!
//! Redis holds the shared directories — room → node, user → room (seats), user →
//! node (presence), live nodes (heartbeats with a TTL of three beats, so one late
//! beat is not death) and the duel queue — and carries [`bus::BusMsg`]s between
//! nodes. Writes that need no answer go through one ordered writer task that
//! pipelines them; if Redis is away, local rooms and local players carry on and the
//! node re-registers everything it owns once Redis is back.

pub mod bus;
mod leaderboard;
mod matchmaking;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::sync::mpsc;

use crate::node::Node;
pub use bus::{BusMsg, RemoteCmd};

/// How often a node says it is alive; its key lives three beats.
const HEARTBEAT: Duration = Duration::from_secs(2);
const ALIVE_TTL_SECS: u64 = 6;
/// Room and seat entries are leases the hosting node renews.
const LEASE_SECS: u64 = 30;
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// Longest wait for Redis on a request path before giving up.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);

/// One queued write: a PUBLISH or a command whose answer nobody waits for.
enum Write {
    Publish(String, Vec<u8>),
    Cmd(redis::Cmd),
}

/// This node's handle on the cluster.
pub struct Cluster {
    pub node_id: String,
    prefix: String,
    client: redis::Client,
    conn: ConnectionManager,
    writes: mpsc::UnboundedSender<Write>,
    /// Whether Redis answered lately. While it does not, requests fail at once
    /// (callers fall back to local state) and queued writes are dropped, so an
    /// outage never slows local play; the heartbeat notices when Redis is back.
    healthy: Arc<AtomicBool>,
    /// Set when Redis came back empty (restart, flush): re-register everything.
    resync: AtomicBool,
}

impl Cluster {
    /// Connects to Redis. Fails only if the URL is malformed; an unreachable Redis
    /// at start is retried in the background like any later outage.
    pub async fn connect(url: &str, node_id: &str, prefix: &str) -> anyhow::Result<Arc<Cluster>> {
        let client =
            redis::Client::open(url).with_context(|| format!("parsing REDIS_URL {url}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(REQUEST_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_connection_manager_with_config(config),
        )
        .await
        .context("Redis did not answer within 5 s")?
        .context("connecting to Redis")?;
        let (writes, queue) = mpsc::unbounded_channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let cluster = Arc::new(Cluster {
            node_id: node_id.to_string(),
            prefix: prefix.to_string(),
            client,
            conn,
            writes,
            healthy: healthy.clone(),
            resync: AtomicBool::new(true),
        });
        tokio::spawn(write_loop(cluster.conn.clone(), queue, healthy));
        Ok(cluster)
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for p in parts {
            k.push(':');
            k.push_str(p);
        }
        k
    }

    fn channel(&self, node: &str) -> String {
        self.key(&["to", node])
    }

    fn all_channel(&self) -> String {
        self.key(&["all"])
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Whether Redis answers now.
    pub async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        let ok = tokio::time::timeout(
            REQUEST_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
        self.healthy.store(ok, Ordering::Release);
        ok
    }

    /// Sends `msg` to `node` (in order with every other write of this node).
    pub fn send(&self, node: &str, msg: &BusMsg) {
        let _ = self
            .writes
            .send(Write::Publish(self.channel(node), msg.encode()));
    }

    /// Sends `msg` to every node, this one included.
    pub fn send_all(&self, msg: &BusMsg) {
        let _ = self
            .writes
            .send(Write::Publish(self.all_channel(), msg.encode()));
    }

    fn queue(&self, cmd: redis::Cmd) {
        let _ = self.writes.send(Write::Cmd(cmd));
    }

    async fn request<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> anyhow::Result<T> {
        anyhow::ensure!(self.is_healthy(), "Redis is unreachable");
        let mut conn = self.conn.clone();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, cmd.query_async::<T>(&mut conn))
            .await
            .context("Redis did not answer in time")?;
        match answer {
            Ok(v) => Ok(v),
            Err(e) => {
                self.healthy.store(false, Ordering::Release);
                Err(e).context("Redis request failed")
            }
        }
    }

    async fn run_script<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        args: &[&str],
    ) -> anyhow::Result<T> {
        anyhow::ensure!(self.is_healthy(), "Redis is unreachable");
        let mut conn = self.conn.clone();
        let mut invocation = script.prepare_invoke();
        for a in args {
            invocation.arg(*a);
        }
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, invocation.invoke_async::<T>(&mut conn))
            .await
            .context("Redis did not answer in time")?;
        match answer {
            Ok(v) => Ok(v),
            Err(e) => {
                self.healthy.store(false, Ordering::Release);
                Err(e).context("Redis script failed")
            }
        }
    }

    // --- rooms -------------------------------------------------------------------

    /// Records that `room` (of `mode`) lives on this node.
    pub fn register_room(&self, room: &str, mode: &str) {
        self.queue(
            redis::cmd("SET")
                .arg(self.key(&["room", room]))
                .arg(format!("{}|{mode}", self.node_id))
                .arg("EX")
                .arg(LEASE_SECS)
                .clone(),
        );
    }

    pub fn unregister_room(&self, room: &str) {
        self.queue(compare_and_delete(
            &self.key(&["room", room]),
            &self.node_id,
            true,
        ));
    }

    /// Where a room lives and its mode: `(node, mode)`.
    pub async fn locate_room(&self, room: &str) -> Option<(String, String)> {
        // One round trip, and a room whose node stopped beating is nowhere: a command
        // sent to a dead node's channel would never be answered.
        let script = Script::new(
            r"local v = redis.call('GET', KEYS[1])
              if not v then return false end
              local node = string.match(v, '^([^|]*)|')
              if node and redis.call('EXISTS', ARGV[1] .. ':alive:' .. node) == 1 then return v end
              return false",
        );
        let mut conn = self.conn.clone();
        if !self.is_healthy() {
            return None;
        }
        let answer = tokio::time::timeout(
            REQUEST_TIMEOUT,
            script
                .key(self.key(&["room", room]))
                .arg(&self.prefix)
                .invoke_async::<Option<String>>(&mut conn),
        )
        .await
        .ok()?
        .ok()?;
        let (node, mode) = answer?
            .split_once('|')
            .map(|(n, m)| (n.to_string(), m.to_string()))?;
        Some((node, mode))
    }

    // --- seats -------------------------------------------------------------------

    /// Takes `user`'s cluster-wide seat in `room`; `Err(other room)` if seated elsewhere.
    pub async fn reserve_seat(&self, user: &str, room: &str) -> anyhow::Result<Result<(), String>> {
        anyhow::ensure!(self.is_healthy(), "Redis is unreachable");
        let script = Script::new(
            r"local cur = redis.call('GET', KEYS[1])
              if cur == false or cur == ARGV[1] then
                redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
                return ''
              end
              return cur",
        );
        let mut conn = self.conn.clone();
        let answer = tokio::time::timeout(
            REQUEST_TIMEOUT,
            script
                .key(self.key(&["seat", user]))
                .arg(room)
                .arg(LEASE_SECS)
                .invoke_async::<String>(&mut conn),
        )
        .await
        .context("Redis did not answer in time")?;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                self.healthy.store(false, Ordering::Release);
                return Err(e).context("reserving a seat");
            }
        };
        Ok(if answer.is_empty() {
            Ok(())
        } else {
            Err(answer)
        })
    }

    /// Frees `user`'s seat if it is in `room` (queued; no answer needed).
    pub fn release_seat(&self, user: &str, room: &str) {
        self.queue(compare_and_delete(&self.key(&["seat", user]), room, false));
    }

    /// Points `user`'s seat at `room` unconditionally (matchmaking, after reserving).
    pub fn set_seat(&self, user: &str, room: &str) {
        self.queue(
            redis::cmd("SET")
                .arg(self.key(&["seat", user]))
                .arg(room)
                .arg("EX")
                .arg(LEASE_SECS)
                .clone(),
        );
    }

    /// A tournament entrant's current duel.
    pub fn set_sub_seat(&self, user: &str, room: Option<&str>) {
        let key = self.key(&["sub", user]);
        match room {
            Some(room) => self.queue(
                redis::cmd("SET")
                    .arg(key)
                    .arg(room)
                    .arg("EX")
                    .arg(LEASE_SECS)
                    .clone(),
            ),
            None => self.queue(redis::cmd("DEL").arg(key).clone()),
        }
    }

    /// The rooms `user` is seated in anywhere in the cluster (their room, then a tournament duel).
    pub async fn rooms_of(&self, user: &str) -> Option<Vec<String>> {
        let cmd = redis::cmd("MGET")
            .arg(self.key(&["seat", user]))
            .arg(self.key(&["sub", user]))
            .clone();
        let found: Vec<Option<String>> = self.request(&cmd).await.ok()?;
        Some(found.into_iter().flatten().collect())
    }

    // --- presence ----------------------------------------------------------------

    /// Records that `user` is connected here; returns the node of an older connection elsewhere.
    pub async fn claim_user(&self, user: &str) -> Option<String> {
        let cmd = redis::cmd("SET")
            .arg(self.key(&["user", user]))
            .arg(&self.node_id)
            .arg("GET")
            .clone();
        let old: Option<String> = self.request(&cmd).await.ok()?;
        old.filter(|n| n != &self.node_id)
    }

    /// Forgets `user`'s presence if it still points here.
    pub fn release_user(&self, user: &str) {
        self.queue(compare_and_delete(
            &self.key(&["user", user]),
            &self.node_id,
            false,
        ));
    }

    /// Users connected to the whole cluster (live nodes only).
    pub async fn online(&self) -> Option<u64> {
        let counts: HashMap<String, u64> = self
            .request(redis::cmd("HGETALL").arg(self.key(&["nodes"])))
            .await
            .ok()?;
        let mut total = 0;
        for (node, count) in counts {
            let alive: bool = self
                .request(redis::cmd("EXISTS").arg(self.key(&["alive", &node])))
                .await
                .unwrap_or(false);
            if alive {
                total += count;
            }
        }
        Some(total)
    }

    /// Starts heartbeats, lease renewal and the bus listener for `node`.
    pub fn start(self: &Arc<Self>, node: &Arc<Node>) {
        tokio::spawn(heartbeat_loop(self.clone(), Arc::downgrade(node)));
        tokio::spawn(listen_loop(self.clone(), Arc::downgrade(node)));
    }

    /// Removes this node from the directories (at the end of a drain).
    pub async fn leave(&self) {
        let _ = self
            .request::<i64>(redis::cmd("DEL").arg(self.key(&["alive", &self.node_id])))
            .await;
        let _ = self
            .request::<i64>(
                redis::cmd("HDEL")
                    .arg(self.key(&["nodes"]))
                    .arg(&self.node_id),
            )
            .await;
    }
}

/// `DEL key` if it holds `value` (`prefix_match`: if it starts with `value|`).
fn compare_and_delete(key: &str, value: &str, prefix_match: bool) -> redis::Cmd {
    let lua = if prefix_match {
        "local v = redis.call('GET', KEYS[1]) if v and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then return redis.call('DEL', KEYS[1]) end return 0"
    } else {
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
    };
    redis::cmd("EVAL")
        .arg(lua)
        .arg(1)
        .arg(key)
        .arg(value)
        .clone()
}

/// Executes queued writes in order, pipelining whatever has piled up.
async fn write_loop(
    mut conn: ConnectionManager,
    mut queue: mpsc::UnboundedReceiver<Write>,
    healthy: Arc<AtomicBool>,
) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, 512).await > 0 {
        if !healthy.load(Ordering::Acquire) {
            tracing::debug!(
                dropped = batch.len(),
                "Redis unreachable: cross-node writes dropped"
            );
            batch.clear();
            continue;
        }
        let mut pipe = redis::pipe();
        for write in batch.drain(..) {
            match write {
                Write::Publish(channel, payload) => {
                    pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
                }
                Write::Cmd(cmd) => {
                    pipe.add_command(cmd).ignore();
                }
            }
        }
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(error = %e, "Redis write failed; cross-node messages were lost");
            healthy.store(false, Ordering::Release);
        }
    }
}

/// Beats every [`HEARTBEAT`]; renews leases every [`LEASE_RENEW`], and re-registers
/// everything this node owns when Redis comes back empty.
async fn heartbeat_loop(cluster: Arc<Cluster>, node: Weak<Node>) {
    let mut since_renew = Duration::ZERO;
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let Some(node) = node.upgrade() else { return };
        if node.shutdown.is_cancelled() {
            return;
        }
        let alive_key = cluster.key(&["alive", &cluster.node_id]);
        // Asked directly, not through `request`: this is how recovery is noticed.
        let mut probe = cluster.conn.clone();
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
                cluster.healthy.store(false, Ordering::Release);
                cluster.resync.store(true, Ordering::Release);
                continue;
            }
            Ok(false) => cluster.resync.store(true, Ordering::Release),
            Ok(true) => {}
        }
        cluster.healthy.store(true, Ordering::Release);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&alive_key)
            .arg(1)
            .arg("EX")
            .arg(ALIVE_TTL_SECS)
            .ignore();
        pipe.cmd("HSET")
            .arg(cluster.key(&["nodes"]))
            .arg(&cluster.node_id)
            .arg(node.sessions.len())
            .ignore();
        since_renew += HEARTBEAT;
        let resync = cluster.resync.swap(false, Ordering::AcqRel);
        if resync || since_renew >= LEASE_RENEW {
            since_renew = Duration::ZERO;
            let mut lease = |key: String, value: &str| {
                pipe.cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("EX")
                    .arg(LEASE_SECS)
                    .ignore();
            };
            for room in node.rooms.iter() {
                lease(
                    cluster.key(&["room", room.key()]),
                    &format!("{}|{}", cluster.node_id, room.mode.as_str()),
                );
            }
            for seat in node.seats.iter() {
                lease(cluster.key(&["seat", seat.key()]), seat.value());
            }
            for sub in node.sub_seats.iter() {
                lease(cluster.key(&["sub", sub.key()]), sub.value());
            }
            if resync {
                tracing::info!("registering this node's rooms, seats and users in Redis");
                for conn in node.sessions.all() {
                    pipe.cmd("SET")
                        .arg(cluster.key(&["user", &conn.user]))
                        .arg(&cluster.node_id)
                        .ignore();
                }
            }
        }
        let mut conn = cluster.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(error = %e, "heartbeat failed");
            cluster.healthy.store(false, Ordering::Release);
            cluster.resync.store(true, Ordering::Release);
        }
    }
}

/// Listens on this node's channel and the all-nodes channel, reconnecting after outages.
async fn listen_loop(cluster: Arc<Cluster>, node: Weak<Node>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if node.upgrade().is_none_or(|n| n.shutdown.is_cancelled()) {
            return;
        }
        match cluster.client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                let subscribed = async {
                    pubsub.subscribe(cluster.channel(&cluster.node_id)).await?;
                    pubsub.subscribe(cluster.all_channel()).await
                }
                .await;
                if let Err(e) = subscribed {
                    tracing::warn!(error = %e, "subscribing to the bus");
                } else {
                    backoff = Duration::from_millis(100);
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        let Some(node) = node.upgrade() else { return };
                        if let Some(decoded) = BusMsg::decode(msg.get_payload_bytes()) {
                            crate::routing::on_bus_message(&node, decoded).await;
                        }
                    }
                    tracing::warn!("bus subscription ended; reconnecting");
                }
            }
            Err(e) => tracing::debug!(error = %e, "bus connection failed"),
        }
        cluster.healthy.store(false, Ordering::Release);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
