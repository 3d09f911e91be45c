//! The cluster-wide duel queue: one Redis list of tickets per mission, paired by
//! Lua scripts so two nodes can never take the same ticket. The Lua functions
//! `best_for` and `closest_pair` are the rules of [`super::best_opponent`] and
//! [`super::closest_pair`]; the table in `cases.rs` checks both against the same
//! expectations. Tickets of players who left or whose node died are dropped when
//! met, so nobody is matched with a ghost. Waiting time comes from Redis's clock.
//!
//! Each node also keeps the tickets of its own players. Redis may restart empty;
//! once the heartbeat has registered this node again, its tickets are put back
//! (with the time they had waited), unless the player meanwhile sat down somewhere
//! or left. A marker key per node tells whether Redis still holds what this node
//! put there: while it does, tickets Redis no longer has were paired or withdrawn
//! elsewhere and are forgotten here within a rematch tick.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use juno_protocol::PlayerRef;
use redis::Script;

use super::{Seated, BASE_WINDOW, WIDEN_PER_SEC};
use crate::cluster::link::Link;

/// The pairing rules, shared by every script. ARGV[2], ARGV[3]: base, widen.
pub(super) const RULES: &str = r"
local base, widen = tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function window(k)
  local w = base + widen * (now - k.since) / 1000
  if w < base then return base end
  return w
end
local function best_for(ks, rating)
  local best, gap = nil, nil
  for i, k in ipairs(ks) do
    local g = math.abs(k.rating - rating)
    if g <= window(k) and (gap == nil or g < gap) then best, gap = i, g end
  end
  return best
end
local function closest_pair(ks)
  local bi, bj, gap = nil, nil, nil
  for i = 1, #ks do
    for j = i + 1, #ks do
      local g = math.abs(ks[i].rating - ks[j].rating)
      local w = math.max(window(ks[i]), window(ks[j]))
      if g <= w and (gap == nil or g < gap) then bi, bj, gap = i, j, g end
    end
  end
  return bi, bj
end
";

/// Tickets: parsing, liveness, taking. ARGV[1]: the key prefix.
const TICKETS: &str = r"
local p = ARGV[1]
local function parse(s)
  local u, n, node, r, since = string.match(s, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$')
  if not u then return nil end
  return {s = s, user = u, name = n, node = node, rating = tonumber(r), since = tonumber(since)}
end
local function live(k)
  return k and redis.call('EXISTS', p .. ':alive:' .. k.node) == 1 and redis.call('GET', p .. ':user:' .. k.user) == k.node
end
local function tickets(queue)
  local out = {}
  for _, s in ipairs(redis.call('LRANGE', queue, 0, -1)) do
    local k = parse(s)
    if live(k) then
      table.insert(out, k)
    else
      redis.call('LREM', queue, 0, s)
      if k then redis.call('DEL', p .. ':mmt:' .. k.user) end
    end
  end
  return out
end
local function take(queue, k)
  redis.call('LREM', queue, 1, k.s)
  redis.call('DEL', p .. ':mmt:' .. k.user)
end
local function withdraw(user)
  local old = redis.call('GET', p .. ':mmt:' .. user)
  if not old then return 0 end
  local list = p .. ':mm:' .. old
  for _, s in ipairs(redis.call('LRANGE', list, 0, -1)) do
    if string.sub(s, 1, #user + 1) == user .. '\t' then redis.call('LREM', list, 0, s) end
  end
  redis.call('DEL', p .. ':mmt:' .. user)
  return 1
end
";

/// ARGV: prefix, base, widen, mission, user, name, node, rating.
const ENQUEUE: &str = r"
local mission, user, name, node, rating = ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
withdraw(user)
local queue = p .. ':mm:' .. mission
local others = {}
for _, k in ipairs(tickets(queue)) do
  if k.user ~= user then table.insert(others, k) end
end
local i = best_for(others, rating)
if i then
  local best = others[i]
  take(queue, best)
  return {best.user, best.name, best.node}
end
redis.call('RPUSH', queue, user .. '\t' .. name .. '\t' .. node .. '\t' .. rating .. '\t' .. now)
redis.call('SET', p .. ':mmt:' .. user, mission)
redis.call('SADD', p .. ':mm:missions', mission)
return {}
";

/// ARGV: prefix, base, widen. Pairs the closest two tickets of any mission whose
/// windows allow it: {mission, user, name, node, user, name, node} or {}.
const REMATCH: &str = r"
for _, mission in ipairs(redis.call('SMEMBERS', p .. ':mm:missions')) do
  local queue = p .. ':mm:' .. mission
  local ks = tickets(queue)
  if #ks == 0 then
    redis.call('SREM', p .. ':mm:missions', mission)
  else
    local bi, bj = closest_pair(ks)
    if bi then
      local a, b = ks[bi], ks[bj]
      take(queue, a)
      take(queue, b)
      return {mission, a.user, a.name, a.node, b.user, b.name, b.node}
    end
  end
end
return {}
";

/// ARGV: prefix, base, widen, user.
const UNQUEUE: &str = "return withdraw(ARGV[4])";

/// ARGV: prefix, base, widen, node, then per ticket: mission, user, name, rating,
/// waited ms. Puts back this node's tickets Redis lost and sets the node's
/// marker; returns the users whose tickets are gone for good (seated meanwhile,
/// or no longer connected here).
const RESTORE: &str = r"
local node = ARGV[4]
redis.call('SET', p .. ':mmnode:' .. node, 1)
local gone = {}
for i = 5, #ARGV, 5 do
  local mission, user, name, rating, waited = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  if redis.call('EXISTS', p .. ':mmt:' .. user) == 0 then
    if redis.call('EXISTS', p .. ':seat:' .. user) == 1 or redis.call('EXISTS', p .. ':sub:' .. user) == 1
       or redis.call('GET', p .. ':user:' .. user) ~= node then
      table.insert(gone, user)
    else
      redis.call('RPUSH', p .. ':mm:' .. mission, user .. '\t' .. name .. '\t' .. node .. '\t' .. rating .. '\t' .. (now - waited))
      redis.call('SET', p .. ':mmt:' .. user, mission)
      redis.call('SADD', p .. ':mm:missions', mission)
    end
  end
end
return gone
";

/// ARGV: prefix, base, widen, node, users… Which of the users' tickets Redis no
/// longer has, or {'-'} when Redis lost this node's marker (it restarted or was
/// flushed: nothing can be concluded until the tickets are put back).
const MISSING: &str = r"
if redis.call('EXISTS', p .. ':mmnode:' .. ARGV[4]) == 0 then return {'-'} end
local missing = {}
for i = 5, #ARGV do
  if redis.call('EXISTS', p .. ':mmt:' .. ARGV[i]) == 0 then table.insert(missing, ARGV[i]) end
end
return missing
";

/// Pairs found per rematch tick at most, so one tick never runs long.
const REMATCH_MAX: usize = 64;

fn script(body: &str) -> Script {
    Script::new(&format!("{RULES}{TICKETS}{body}"))
}

/// A ticket of a player connected to this node, as this node remembers it.
struct Mine {
    mission: String,
    name: String,
    rating: String,
    since: Instant,
}

/// The cluster-wide queue, and this node's own tickets.
pub struct RedisQueue {
    link: Arc<Link>,
    mine: Mutex<HashMap<String, Mine>>,
}

impl RedisQueue {
    pub fn new(link: Arc<Link>) -> RedisQueue {
        RedisQueue {
            link,
            mine: Mutex::new(HashMap::new()),
        }
    }

    fn mine(&self) -> std::sync::MutexGuard<'_, HashMap<String, Mine>> {
        // A panic while holding this lock leaves a map that is still consistent.
        self.mine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The arguments every script starts with.
    fn common_args(&self) -> [String; 3] {
        [
            self.link.prefix.clone(),
            BASE_WINDOW.to_string(),
            WIDEN_PER_SEC.to_string(),
        ]
    }

    fn seated(&self, id: &str, name: &str, node: &str) -> Seated {
        let player = PlayerRef {
            id: id.to_string(),
            name: name.to_string(),
        };
        (
            player,
            (node != self.link.node_id).then(|| node.to_string()),
        )
    }

    pub(super) async fn enqueue(
        &self,
        player: &PlayerRef,
        rating: f64,
        mission: &str,
    ) -> anyhow::Result<Option<Seated>> {
        let [prefix, base, widen] = self.common_args();
        let rating = format!("{rating:.1}");
        let args = [
            prefix.as_str(),
            &base,
            &widen,
            mission,
            &player.id,
            &player.name,
            &self.link.node_id,
            &rating,
        ];
        let found: Vec<String> = self.link.run_script(&script(ENQUEUE), &[], &args).await?;
        let mut mine = self.mine();
        Ok(match found.as_slice() {
            [id, name, node] => {
                mine.remove(&player.id);
                mine.remove(id);
                Some(self.seated(id, name, node))
            }
            _ => {
                let ticket = Mine {
                    mission: mission.to_string(),
                    name: player.name.clone(),
                    rating,
                    since: Instant::now(),
                };
                mine.insert(player.id.clone(), ticket);
                None
            }
        })
    }

    pub(super) async fn rematch(&self) -> anyhow::Result<Vec<(String, Seated, Seated)>> {
        self.forget_paired().await?;
        let [prefix, base, widen] = self.common_args();
        let rematch = script(REMATCH);
        let mut pairs = Vec::new();
        // Every node runs this; the script hands each pair to exactly one of them.
        while pairs.len() < REMATCH_MAX {
            let args = [prefix.as_str(), &base, &widen];
            let found: Vec<String> = match self.link.run_script(&rematch, &[], &args).await {
                Ok(found) => found,
                // Pairs already taken out of Redis must still be started.
                Err(e) if !pairs.is_empty() => {
                    tracing::debug!(error = %format!("{e:#}"), "rematch");
                    break;
                }
                Err(e) => return Err(e),
            };
            match found.as_slice() {
                [mission, a, an, anode, b, bn, bnode] => {
                    let mut mine = self.mine();
                    mine.remove(a);
                    mine.remove(b);
                    pairs.push((
                        mission.clone(),
                        self.seated(a, an, anode),
                        self.seated(b, bn, bnode),
                    ))
                }
                _ => break,
            }
        }
        Ok(pairs)
    }

    pub(super) async fn unqueue(&self, user: &str) -> anyhow::Result<bool> {
        // Forgotten here first: a player who left is never put back.
        let was_mine = self.mine().remove(user).is_some();
        let [prefix, base, widen] = self.common_args();
        let removed: i64 = self
            .link
            .run_script(&script(UNQUEUE), &[], &[&prefix, &base, &widen, user])
            .await?;
        Ok(removed == 1 || was_mine)
    }

    /// Forgets this node's tickets that Redis no longer has (another node paired
    /// them, or they were withdrawn) — unless Redis lost everything, when they
    /// wait for [`RedisQueue::restore`].
    async fn forget_paired(&self) -> anyhow::Result<()> {
        let users: Vec<String> = self.mine().keys().cloned().collect();
        if users.is_empty() {
            return Ok(());
        }
        let [prefix, base, widen] = self.common_args();
        let mut args = vec![prefix.as_str(), &base, &widen, &self.link.node_id];
        args.extend(users.iter().map(String::as_str));
        let missing: Vec<String> = self.link.run_script(&script(MISSING), &[], &args).await?;
        if missing.first().is_some_and(|m| m == "-") {
            return Ok(());
        }
        let mut mine = self.mine();
        for user in missing {
            mine.remove(&user);
        }
        Ok(())
    }

    /// Puts back this node's tickets that Redis lost. Called once the node's
    /// presence and seats are registered again, so the script can tell a player
    /// who sat down or left from one whose ticket was simply lost.
    pub(crate) async fn restore(&self) -> anyhow::Result<()> {
        let snapshot: Vec<[String; 5]> = self
            .mine()
            .iter()
            .map(|(user, t)| {
                let waited = t.since.elapsed().as_millis().to_string();
                [
                    t.mission.clone(),
                    user.clone(),
                    t.name.clone(),
                    t.rating.clone(),
                    waited,
                ]
            })
            .collect();
        let [prefix, base, widen] = self.common_args();
        let mut args = vec![prefix.as_str(), &base, &widen, &self.link.node_id];
        args.extend(snapshot.iter().flatten().map(String::as_str));
        let gone: Vec<String> = self.link.run_script(&script(RESTORE), &[], &args).await?;
        if !snapshot.is_empty() {
            tracing::info!(
                kept = snapshot.len() - gone.len(),
                gone = gone.len(),
                "this node's duel queue tickets checked and put back in Redis"
            );
        }
        let mut mine = self.mine();
        for user in gone {
            mine.remove(&user);
        }
        Ok(())
    }
}
