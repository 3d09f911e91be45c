//! Room logs and leases in Redis: what lets a room outlive its node (WIRE.md §5
//! Failover). The game layer hands this module opaque bytes — a header that
//! says how to make the room, then batches of accepted inputs — and learns
//! whether they are durable; it never sees a key or a script.
//!
//! Keys, all under the cluster's prefix:
//! - `lease:{room}` — hash `node`, `epoch`, `mode`, `parent`, `origin` (the
//!   wall-clock ms of the room's time 0 on its current host): who hosts the room.
//! - `rlog:{room}` — list: the header, then one element per commit.
//! - `hosted:{node}` — set of the rooms a node holds the lease of.
//! - `beat` — hash node → wall-clock ms of its last heartbeat (when it died, for
//!   the adopter's clock), next to the `alive:{node}` key that expires after
//!   `JUNO_NODE_TTL_MS`.
//!
//! Every write is fenced in a script that first checks the lease's node and
//! epoch, so a node that lost a room (it was frozen, or cut off from Redis past
//! its TTL) cannot append a byte more: the script, not a check made before, is
//! the fence. Adoption bumps the epoch in the same script that reads the log.
//! The same rules run in Rust in [`model`], where the simulation and the shared
//! case table check them against these scripts.

pub mod model;

use std::sync::Arc;
use std::time::Duration;

use redis::Script;

use super::link::Link;

/// How long a finished room's log stays readable after its result is recorded.
const FINISHED_LOG_SECS: u64 = 3600;

/// A script of this module with the keys and arguments it takes.
pub(crate) struct Scripts {
    pub commit: Script,
    pub adopt: Script,
    pub close: Script,
}

/// Appends a batch if the lease is ours (-1 if another node's or another
/// epoch's, or the room is closed). A batch goes in only if the log is as
/// long as the host last heard (`expected`), so a batch sent again after a
/// lost answer is not appended twice: the answer is the log's length either
/// way, and the host compares. The whole log (`full`) replaces what is there.
/// A missing lease (a new room, or a Redis that came back empty) is created
/// only with the whole log (-2 asks for it), so at most one node ever
/// re-creates a lost lease.
///
/// KEYS: lease, rlog, hosted:{node}, beat, alive:{node}
/// ARGV: node, epoch, mode, parent, origin ('' keeps it), full ('1'/'0'),
///       alive ttl ms, now ms, room, expected length, batches…
pub(crate) const COMMIT_LUA: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'node', 'epoch', 'closed')
if cur[1] then
  if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] or cur[3] then return -1 end
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'origin', ARGV[5]) end
  if ARGV[6] == '1' then
    redis.call('DEL', KEYS[2])
    redis.call('RPUSH', KEYS[2], unpack(ARGV, 11))
    return redis.call('LLEN', KEYS[2])
  end
  local len = redis.call('LLEN', KEYS[2])
  if #ARGV > 10 and len == tonumber(ARGV[10]) then
    len = redis.call('RPUSH', KEYS[2], unpack(ARGV, 11))
  end
  return len
end
if ARGV[6] ~= '1' then return -2 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'epoch', ARGV[2], 'mode', ARGV[3],
  'parent', ARGV[4], 'origin', ARGV[5])
redis.call('RPUSH', KEYS[2], unpack(ARGV, 11))
redis.call('SADD', KEYS[3], ARGV[9])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[8])
redis.call('SET', KEYS[5], '1', 'PX', ARGV[7])
return redis.call('LLEN', KEYS[2])
";

/// Takes the lease of a dead node's room: only if the dead node still holds
/// it, it is not closed, and the dead node's `alive` key is gone. Returns {new
/// epoch, origin, dead node's last beat, the log} or nil. Asked again by the
/// node that already won it (its answer was lost), it answers the same. A node
/// taking back its own rooms after a restart under the same id (`dead` = `me`)
/// skips the `alive` check: its new process beats already, and the old one is
/// fenced by the new epoch.
///
/// The winner is recorded in `beat` at once (as a created lease's node is),
/// so that if it dies before its own next beat its rooms are still found.
///
/// KEYS: lease, rlog, hosted:{dead}, hosted:{me}, alive:{dead}, beat
/// ARGV: room, dead, me, now ms
pub(crate) const ADOPT_LUA: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'node', 'epoch', 'origin', 'closed')
if cur[1] and cur[1] == ARGV[3] and ARGV[2] ~= ARGV[3] and not cur[4] then
  return {tonumber(cur[2]), cur[3] or '0', redis.call('HGET', KEYS[6], ARGV[2]) or '',
    redis.call('LRANGE', KEYS[2], 0, -1)}
end
if not cur[1] or cur[1] ~= ARGV[2] or cur[4] then
  redis.call('SREM', KEYS[3], ARGV[1])
  return false
end
if ARGV[2] ~= ARGV[3] and redis.call('EXISTS', KEYS[5]) == 1 then return false end
local epoch = tonumber(cur[2]) + 1
redis.call('HSET', KEYS[1], 'node', ARGV[3], 'epoch', epoch)
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
local beat = redis.call('HGET', KEYS[6], ARGV[2]) or ''
redis.call('HSET', KEYS[6], ARGV[3], ARGV[4])
return {epoch, cur[3] or '0', beat, redis.call('LRANGE', KEYS[2], 0, -1)}
";

/// The room is over: it is marked closed (no commit, no adoption), and its
/// lease and log expire.
///
/// KEYS: lease, rlog, hosted:{node}   ARGV: node, epoch, room, ttl secs
pub(crate) const CLOSE_LUA: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'node', 'epoch')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'closed', '1')
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('SREM', KEYS[3], ARGV[3])
return 1
";

/// Renews `room:{id}` (the locator) only while this node holds the room's lease
/// (or nobody does yet): a node that wakes up after losing a room must not
/// point the cluster back at itself.
///
/// KEYS: room:{id}, lease   ARGV: value, node, ttl secs
pub(crate) const RENEW_ROOM_LUA: &str = r"
local n = redis.call('HGET', KEYS[2], 'node')
if n and n ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
";

impl Scripts {
    pub(crate) fn new() -> Scripts {
        Scripts {
            commit: Script::new(COMMIT_LUA),
            adopt: Script::new(ADOPT_LUA),
            close: Script::new(CLOSE_LUA),
        }
    }
}

/// What a commit came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// Durable; the log now has this many elements.
    Ok(u64),
    /// Another node (or a later epoch) holds the room: stop acting for it.
    Fenced,
    /// The lease is gone (Redis came back empty), or the log is not as this
    /// host last heard it: commit again with the whole log.
    Missing,
}

/// One commit: a batch of inputs, or the whole log when (re)creating the lease.
pub struct Batch<'a> {
    /// The room's header, present when the whole log is written.
    pub header: Option<&'a [u8]>,
    /// The inputs (one encoded batch; empty for none).
    pub entries: &'a [u8],
    /// The room's time 0 in wall-clock ms, when it changed (start, adoption).
    pub origin: Option<i64>,
}

/// A room's log and lease as its host writes them.
pub struct RoomLog {
    link: Arc<Link>,
    scripts: Arc<Scripts>,
    room: String,
    epoch: u64,
    mode: String,
    parent: String,
    alive_ttl: Duration,
    keys: [String; 5],
    /// The log's length as this host last heard it: a batch goes in only on
    /// top of it, so one sent again after a lost answer is not doubled.
    len: std::sync::atomic::AtomicU64,
}

impl RoomLog {
    pub(crate) fn new(
        link: Arc<Link>,
        scripts: Arc<Scripts>,
        alive_ttl: Duration,
        room: &str,
        mode: &str,
        parent: Option<&str>,
        epoch: u64,
    ) -> RoomLog {
        let keys = [
            link.key(&["lease", room]),
            link.key(&["rlog", room]),
            link.key(&["hosted", &link.node_id]),
            link.key(&["beat"]),
            link.key(&["alive", &link.node_id]),
        ];
        RoomLog {
            link,
            scripts,
            room: room.to_string(),
            epoch,
            mode: mode.to_string(),
            parent: parent.unwrap_or_default().to_string(),
            alive_ttl,
            keys,
            len: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// An adopted log's length (what the adopter read).
    pub fn with_len(self, len: usize) -> RoomLog {
        self.len
            .store(len as u64, std::sync::atomic::Ordering::Release);
        self
    }

    /// The lease's epoch this host writes under.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Writes `batch` if this node still holds the room. `Err` when Redis did
    /// not answer: the caller holds what depends on the batch and tries again.
    pub async fn commit(&self, batch: &Batch<'_>) -> anyhow::Result<Committed> {
        let mut invocation = self.scripts.commit.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        use std::sync::atomic::Ordering;
        let expected = self.len.load(Ordering::Acquire);
        invocation
            .arg(&self.link.node_id)
            .arg(self.epoch)
            .arg(&self.mode)
            .arg(&self.parent)
            .arg(batch.origin.map(|o| o.to_string()).unwrap_or_default())
            .arg(if batch.header.is_some() { "1" } else { "0" })
            .arg(self.alive_ttl.as_millis() as u64)
            .arg(chrono::Utc::now().timestamp_millis())
            .arg(&self.room)
            .arg(expected);
        if let Some(header) = batch.header {
            invocation.arg(header);
        }
        if !batch.entries.is_empty() {
            invocation.arg(batch.entries);
        }
        let mut conn = self.link.conn.clone();
        let answer: i64 = tokio::time::timeout(
            super::link::REQUEST_TIMEOUT,
            invocation.invoke_async(&mut conn),
        )
        .await
        .map_err(|_| anyhow::anyhow!("Redis did not answer in time"))??;
        let sent = u64::from(batch.header.is_some()) + u64::from(!batch.entries.is_empty());
        Ok(match answer {
            -1 => Committed::Fenced,
            -2 => Committed::Missing,
            n if batch.header.is_some() => {
                self.len.store(n as u64, Ordering::Release);
                Committed::Ok(n as u64)
            }
            n if n as u64 == expected + sent => {
                self.len.store(n as u64, Ordering::Release);
                Committed::Ok(n as u64)
            }
            // Not the log this host wrote (it cannot tell what became of an
            // earlier write): it writes the whole log again.
            _ => Committed::Missing,
        })
    }

    /// The room is over (`finished`: its result is out) or closed before it
    /// started: the log expires and no node adopts it.
    pub async fn close(&self, finished: bool) {
        let ttl = if finished { FINISHED_LOG_SECS } else { 60 };
        let result: anyhow::Result<i64> = self
            .link
            .run_script(
                &self.scripts.close,
                &[&self.keys[0], &self.keys[1], &self.keys[2]],
                &[
                    &self.link.node_id,
                    &self.epoch.to_string(),
                    &self.room,
                    &ttl.to_string(),
                ],
            )
            .await;
        if let Err(e) = result {
            tracing::debug!(room = %self.room, error = %format!("{e:#}"), "closing a room's log");
        }
    }
}

/// A dead node's room, as its adopter found it.
#[derive(Debug)]
pub struct Adopted {
    /// The adopter's epoch.
    pub epoch: u64,
    /// The room's time 0 on the dead host, wall-clock ms.
    pub origin: i64,
    /// The dead host's last heartbeat, wall-clock ms (0 if unknown).
    pub last_beat: i64,
    /// The header, then the batches.
    pub log: Vec<Vec<u8>>,
}

/// A room whose host stopped beating, found by the scan.
#[derive(Debug, Clone)]
pub struct Orphan {
    pub room: String,
    /// The node that held it.
    pub dead: String,
    /// When this node saw the death.
    pub detected: tokio::time::Instant,
}

/// Looks for nodes whose heartbeat expired and lists the rooms they held
/// (children of a tournament are left to whoever adopts their parent).
pub(crate) async fn find_orphans(link: &Link) -> anyhow::Result<Vec<Orphan>> {
    let beats: Vec<String> = link
        .request(redis::cmd("HKEYS").arg(link.key(&["beat"])))
        .await?;
    let mut orphans = Vec::new();
    for node in beats.into_iter().filter(|n| *n != link.node_id) {
        let alive: bool = link
            .request(redis::cmd("EXISTS").arg(link.key(&["alive", &node])))
            .await?;
        if alive {
            continue;
        }
        let detected = tokio::time::Instant::now();
        let rooms: Vec<String> = link
            .request(redis::cmd("SMEMBERS").arg(link.key(&["hosted", &node])))
            .await?;
        if rooms.is_empty() {
            // Nothing left to adopt: forget the node (a restart beats anew).
            let forget = redis::cmd("EVAL")
                .arg("if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('SCARD', KEYS[3]) == 0 then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0")
                .arg(3)
                .arg(link.key(&["beat"]))
                .arg(link.key(&["alive", &node]))
                .arg(link.key(&["hosted", &node]))
                .arg(&node)
                .clone();
            link.request::<i64>(&forget).await?;
            continue;
        }
        orphans.extend(top_level(link, rooms, &node, detected).await?);
    }
    // Every survivor scans at about the same time: each takes the rooms in its
    // own order, so the rooms of a dead node spread over them.
    use rand::seq::SliceRandom;
    orphans.shuffle(&mut rand::rng());
    Ok(orphans)
}

/// Rooms this node's id held when its previous process ended (killed, then
/// restarted under the same `JUNO_NODE_ID` before anyone adopted them): asked
/// once at start, before this process hosts anything, and taken back like a
/// dead node's.
pub(crate) async fn own_leftovers(link: &Link) -> anyhow::Result<Vec<Orphan>> {
    let rooms: Vec<String> = link
        .request(redis::cmd("SMEMBERS").arg(link.key(&["hosted", &link.node_id])))
        .await?;
    top_level(link, rooms, &link.node_id, tokio::time::Instant::now()).await
}

/// `rooms` of `dead` as orphans, leaving out tournaments' duels (whoever
/// adopts their parent adopts them).
async fn top_level(
    link: &Link,
    rooms: Vec<String>,
    dead: &str,
    detected: tokio::time::Instant,
) -> anyhow::Result<Vec<Orphan>> {
    let mut orphans = Vec::new();
    for room in rooms {
        let parent: Option<String> = link
            .request(
                redis::cmd("HGET")
                    .arg(link.key(&["lease", &room]))
                    .arg("parent"),
            )
            .await?;
        if parent.is_none_or(|p| p.is_empty()) {
            orphans.push(Orphan {
                room,
                dead: dead.to_string(),
                detected,
            });
        }
    }
    Ok(orphans)
}

/// Takes `room` over from `dead` if nobody did yet.
pub(crate) async fn adopt(
    link: &Link,
    scripts: &Scripts,
    room: &str,
    dead: &str,
) -> anyhow::Result<Option<Adopted>> {
    type Answer = Option<(u64, String, String, Vec<Vec<u8>>)>;
    let answer: Answer = link
        .run_script(
            &scripts.adopt,
            &[
                &link.key(&["lease", room]),
                &link.key(&["rlog", room]),
                &link.key(&["hosted", dead]),
                &link.key(&["hosted", &link.node_id]),
                &link.key(&["alive", dead]),
                &link.key(&["beat"]),
            ],
            &[
                room,
                dead,
                &link.node_id,
                &chrono::Utc::now().timestamp_millis().to_string(),
            ],
        )
        .await?;
    Ok(answer.map(|(epoch, origin, beat, log)| Adopted {
        epoch,
        origin: origin.parse().unwrap_or(0),
        last_beat: beat.parse().unwrap_or(0),
        log,
    }))
}
