//! Who is where: seats (user → room), a tournament entrant's current duel,
//! rooms hosted here (room → node and mode), and presence (user → node).
//!
//! One type for one node or many. This node always knows its own entries (they
//! answer when Redis is away, and the heartbeat renews them as leases); with
//! Redis the same entries are shared with every node, so a seat is taken once
//! cluster-wide and a room or a user is found wherever it lives.

use std::sync::Arc;

use dashmap::DashMap;
use juno_protocol::Mode;
use redis::Script;

use super::link::{compare_and_delete, Link, REQUEST_TIMEOUT};

/// Room and seat entries are leases the hosting node renews.
pub(crate) const LEASE_SECS: u64 = 30;

/// The directories of one node, local or shared through Redis.
pub struct Directory {
    node_id: String,
    /// Seats taken through this node (and renewed by it).
    seats: DashMap<String, String>,
    /// Tournament entrants' current duels hosted here.
    subs: DashMap<String, String>,
    /// Rooms hosted here, and their mode.
    rooms: DashMap<String, Mode>,
    redis: Option<Arc<Link>>,
}

impl Directory {
    pub(crate) fn new(node_id: &str, redis: Option<Arc<Link>>) -> Directory {
        Directory {
            node_id: node_id.to_string(),
            seats: DashMap::new(),
            subs: DashMap::new(),
            rooms: DashMap::new(),
            redis,
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    // --- seats ---------------------------------------------------------------------

    /// Takes `user`'s seat in `room` (cluster-wide when shared); `Err(other room)`
    /// if they are seated elsewhere.
    pub async fn reserve_seat(&self, user: &str, room: &str) -> Result<(), String> {
        if let Some(redis) = &self.redis {
            match reserve_shared(redis, user, room).await {
                Ok(answer) => return answer,
                // Redis is away: this node goes on with what it knows itself.
                Err(e) => tracing::debug!(error = %format!("{e:#}"), "reserving a seat locally"),
            }
        }
        match self.seats.entry(user.to_string()) {
            dashmap::Entry::Occupied(e) if e.get() != room => Err(e.get().clone()),
            dashmap::Entry::Occupied(_) => Ok(()),
            dashmap::Entry::Vacant(e) => {
                e.insert(room.to_string());
                Ok(())
            }
        }
    }

    /// A room on this node seated `user`: point their seat at it, here and shared.
    pub fn confirm_seat(&self, user: &str, room: &str) {
        self.seats.insert(user.to_string(), room.to_string());
        if let Some(redis) = &self.redis {
            redis.queue(lease(&redis.key(&["seat", user]), room));
        }
    }

    /// Frees `user`'s seat if it is in `room`.
    pub fn release_seat(&self, user: &str, room: &str) {
        self.seats.remove_if(user, |_, r| r == room);
        if let Some(redis) = &self.redis {
            redis.queue(compare_and_delete(&redis.key(&["seat", user]), room, false));
        }
    }

    /// The room `user` holds a seat in through this node, if any.
    pub fn seat_here(&self, user: &str) -> Option<String> {
        self.seats.get(user).map(|r| r.clone())
    }

    /// Records (or clears) a tournament entrant's current duel.
    pub fn set_sub_seat(&self, user: &str, room: Option<&str>) {
        match room {
            Some(room) => {
                self.subs.insert(user.to_string(), room.to_string());
            }
            None => {
                self.subs.remove(user);
            }
        }
        if let Some(redis) = &self.redis {
            let key = redis.key(&["sub", user]);
            redis.queue(match room {
                Some(room) => lease(&key, room),
                None => redis::cmd("DEL").arg(key).clone(),
            });
        }
    }

    /// Clears `user`'s current duel if it is `room`.
    pub fn clear_sub_seat(&self, user: &str, room: &str) {
        if self.subs.get(user).is_some_and(|r| *r == room) {
            self.set_sub_seat(user, None);
        }
    }

    /// Every live room the user is seated in — their room, then a tournament
    /// entrant's current duel — anywhere in the cluster (here alone while Redis is away).
    pub async fn rooms_of(&self, user: &str) -> Vec<String> {
        if let Some(redis) = &self.redis {
            let cmd = redis::cmd("MGET")
                .arg(redis.key(&["seat", user]))
                .arg(redis.key(&["sub", user]))
                .clone();
            if let Ok(found) = redis.request::<Vec<Option<String>>>(&cmd).await {
                return found.into_iter().flatten().collect();
            }
        }
        let mut rooms: Vec<String> = self.seat_here(user).into_iter().collect();
        rooms.extend(self.subs.get(user).map(|r| r.clone()));
        rooms
    }

    // --- rooms ---------------------------------------------------------------------

    /// Records that `room` lives on this node.
    pub fn register_room(&self, room: &str, mode: Mode) {
        self.rooms.insert(room.to_string(), mode);
        if let Some(redis) = &self.redis {
            redis.queue(lease(
                &redis.key(&["room", room]),
                &format!("{}|{}", self.node_id, mode.as_str()),
            ));
        }
    }

    /// [`Directory::register_room`], returning once other nodes can find the room
    /// (or Redis failed to answer): a room's creator hears of it only after this,
    /// so players they invite on other nodes find it at once.
    pub async fn register_room_now(&self, room: &str, mode: Mode) {
        self.rooms.insert(room.to_string(), mode);
        if let Some(redis) = &self.redis {
            let value = format!("{}|{}", self.node_id, mode.as_str());
            if let Err(e) = redis
                .request::<()>(&lease(&redis.key(&["room", room]), &value))
                .await
            {
                tracing::debug!(error = %format!("{e:#}"), %room, "registering a room");
            }
        }
    }

    /// Forgets `room` (it ended here).
    pub fn unregister_room(&self, room: &str) {
        self.rooms.remove(room);
        if let Some(redis) = &self.redis {
            redis.queue(compare_and_delete(
                &redis.key(&["room", room]),
                &self.node_id,
                true,
            ));
        }
    }

    /// The live node hosting `room` elsewhere, and the room's mode. `None` for a
    /// room nobody hosts, a room whose node stopped beating (a command sent into a
    /// dead node's channel would never be answered), or when there are no other nodes.
    pub async fn locate_room(&self, room: &str) -> Option<(String, Mode)> {
        let redis = self.redis.as_ref().filter(|r| r.is_healthy())?;
        let script = Script::new(
            r"local v = redis.call('GET', KEYS[1])
              if not v then return false end
              local node = string.match(v, '^([^|]*)|')
              if node and redis.call('EXISTS', ARGV[1] .. ':alive:' .. node) == 1 then return v end
              return false",
        );
        let mut conn = redis.conn.clone();
        let answer = tokio::time::timeout(
            REQUEST_TIMEOUT,
            script
                .key(redis.key(&["room", room]))
                .arg(&redis.prefix)
                .invoke_async::<Option<String>>(&mut conn),
        )
        .await
        .ok()?
        .ok()?;
        let (node, mode) = answer?
            .split_once('|')
            .map(|(n, m)| (n.to_string(), m.to_string()))?;
        (node != self.node_id).then_some(())?;
        Some((node, Mode::parse(&mode)?))
    }

    // --- presence ------------------------------------------------------------------

    /// Records that `user` is connected here; returns the node of an older
    /// connection of theirs elsewhere (which must be told to go).
    pub async fn claim_user(&self, user: &str) -> Option<String> {
        let redis = self.redis.as_ref()?;
        let cmd = redis::cmd("SET")
            .arg(redis.key(&["user", user]))
            .arg(&self.node_id)
            .arg("GET")
            .clone();
        let old: Option<String> = redis.request(&cmd).await.ok()?;
        old.filter(|n| n != &self.node_id)
    }

    /// Forgets `user`'s presence if it still points here.
    pub fn release_user(&self, user: &str) {
        if let Some(redis) = &self.redis {
            redis.queue(compare_and_delete(
                &redis.key(&["user", user]),
                &self.node_id,
                false,
            ));
        }
    }

    /// Users connected to the whole cluster (live nodes only); `here` when this
    /// node is alone or Redis cannot answer.
    pub async fn online(&self, here: usize) -> u64 {
        let Some(redis) = &self.redis else {
            return here as u64;
        };
        let counts: std::collections::HashMap<String, u64> = match redis
            .request(redis::cmd("HGETALL").arg(redis.key(&["nodes"])))
            .await
        {
            Ok(counts) => counts,
            Err(_) => return here as u64,
        };
        let mut total = 0;
        for (node, count) in counts {
            let alive: bool = redis
                .request(redis::cmd("EXISTS").arg(redis.key(&["alive", &node])))
                .await
                .unwrap_or(false);
            if alive {
                total += count;
            }
        }
        total
    }

    /// Forgets `room` here only: another node adopted it, and the shared
    /// entries (its locator, its players' seats) are that node's now.
    pub fn forget_room_here(&self, room: &str) {
        self.rooms.remove(room);
        self.seats.retain(|_, r| r != room);
        self.subs.retain(|_, r| r != room);
    }

    /// Adds a renewal of every lease this node holds to `pipe`. A room's locator
    /// is renewed only while its lease is this node's, so a node that woke up
    /// after losing a room does not point the cluster back at itself.
    pub(crate) fn renew_leases(&self, redis: &Link, pipe: &mut redis::Pipeline) {
        for room in self.rooms.iter() {
            pipe.cmd("EVAL")
                .arg(super::journal::RENEW_ROOM_LUA)
                .arg(2)
                .arg(redis.key(&["room", room.key()]))
                .arg(redis.key(&["lease", room.key()]))
                .arg(format!("{}|{}", self.node_id, room.value().as_str()))
                .arg(&self.node_id)
                .arg(LEASE_SECS)
                .ignore();
        }
        for seat in self.seats.iter() {
            pipe.add_command(lease(&redis.key(&["seat", seat.key()]), seat.value()))
                .ignore();
        }
        for sub in self.subs.iter() {
            pipe.add_command(lease(&redis.key(&["sub", sub.key()]), sub.value()))
                .ignore();
        }
    }
}

/// `SET key value EX LEASE_SECS`.
fn lease(key: &str, value: &str) -> redis::Cmd {
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("EX")
        .arg(LEASE_SECS)
        .clone()
}

/// Takes the cluster-wide seat: `Ok(Err(other room))` if seated elsewhere.
async fn reserve_shared(
    redis: &Link,
    user: &str,
    room: &str,
) -> anyhow::Result<Result<(), String>> {
    let script = Script::new(
        r"local cur = redis.call('GET', KEYS[1])
          if cur == false or cur == ARGV[1] then
            redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
            return ''
          end
          return cur",
    );
    let ttl = LEASE_SECS.to_string();
    let answer: String = redis
        .run_script(&script, &[&redis.key(&["seat", user])], &[room, &ttl])
        .await
        .map_err(|e| e.context("reserving a seat"))?;
    Ok(if answer.is_empty() {
        Ok(())
    } else {
        Err(answer)
    })
}
