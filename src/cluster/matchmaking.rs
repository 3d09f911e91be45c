//! Cluster-wide duel queue: one Redis list of tickets per mission, paired by Lua
//! scripts so two nodes can never take the same ticket. The rules match the
//! single-node [`crate::matchmaker`]: the closest rating within the waiting
//! ticket's widening window wins; a periodic rematch pairs tickets whose windows
//! have grown. Tickets of players who left or whose node died are dropped when
//! met, so nobody is matched with a ghost. Waiting time comes from Redis's clock.

use juno_protocol::PlayerRef;
use redis::Script;

use super::Cluster;
use crate::matchmaker::{BASE_WINDOW, WIDEN_PER_SEC};

/// Shared by both scripts: ticket parsing, liveness and the window.
const COMMON: &str = r"
local p = ARGV[1]
local base, widen = tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function parse(s)
  local u, n, node, r, since = string.match(s, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$')
  if not u then return nil end
  return {s = s, user = u, name = n, node = node, rating = tonumber(r), since = tonumber(since)}
end
local function live(k)
  return k and redis.call('EXISTS', p .. ':alive:' .. k.node) == 1 and redis.call('GET', p .. ':user:' .. k.user) == k.node
end
local function window(k)
  local w = base + widen * (now - k.since) / 1000
  if w < base then return base end
  return w
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
";

/// ARGV: prefix, base, widen, mission, user, name, node, rating.
const ENQUEUE: &str = r"
local mission, user, name, node, rating = ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local old = redis.call('GET', p .. ':mmt:' .. user)
if old then
  local list = p .. ':mm:' .. old
  for _, s in ipairs(redis.call('LRANGE', list, 0, -1)) do
    if string.sub(s, 1, #user + 1) == user .. '\t' then redis.call('LREM', list, 0, s) end
  end
  redis.call('DEL', p .. ':mmt:' .. user)
end
local queue = p .. ':mm:' .. mission
local best, gap = nil, nil
for _, k in ipairs(tickets(queue)) do
  local g = math.abs(k.rating - rating)
  if k.user ~= user and g <= window(k) and (gap == nil or g < gap) then best, gap = k, g end
end
if best then
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
    local bi, bj, gap = nil, nil, nil
    for i = 1, #ks do
      for j = i + 1, #ks do
        local g = math.abs(ks[i].rating - ks[j].rating)
        local w = math.max(window(ks[i]), window(ks[j]))
        if g <= w and (gap == nil or g < gap) then bi, bj, gap = i, j, g end
      end
    end
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

/// ARGV: prefix, user.
const UNQUEUE: &str = r"
local p, user = ARGV[1], ARGV[2]
local old = redis.call('GET', p .. ':mmt:' .. user)
if not old then return 0 end
local list = p .. ':mm:' .. old
for _, t in ipairs(redis.call('LRANGE', list, 0, -1)) do
  if string.sub(t, 1, #user + 1) == user .. '\t' then redis.call('LREM', list, 0, t) end
end
redis.call('DEL', p .. ':mmt:' .. user)
return 1
";

/// A queued player and the node they are connected to.
pub type Seated = (PlayerRef, String);

impl Cluster {
    /// Queues `player` (connected here) for `mission`; `Some(opponent)` when paired.
    pub async fn enqueue(
        &self,
        player: &PlayerRef,
        rating: f64,
        mission: &str,
    ) -> anyhow::Result<Option<Seated>> {
        let script = Script::new(&format!("{COMMON}{ENQUEUE}"));
        let (base, widen, rating) = (
            BASE_WINDOW.to_string(),
            WIDEN_PER_SEC.to_string(),
            format!("{rating:.1}"),
        );
        let args: [&str; 8] = [
            &self.prefix,
            &base,
            &widen,
            mission,
            &player.id,
            &player.name,
            &self.node_id,
            &rating,
        ];
        let found: Vec<String> = self.run_script(&script, &args).await?;
        Ok(match found.as_slice() {
            [id, name, node] => Some((
                PlayerRef {
                    id: id.clone(),
                    name: name.clone(),
                },
                node.clone(),
            )),
            _ => None,
        })
    }

    /// Pairs two waiting tickets whose windows have widened enough: `(mission, a, b)`.
    pub async fn rematch(&self) -> anyhow::Result<Option<(String, Seated, Seated)>> {
        let script = Script::new(&format!("{COMMON}{REMATCH}"));
        let (base, widen) = (BASE_WINDOW.to_string(), WIDEN_PER_SEC.to_string());
        let found: Vec<String> = self
            .run_script(&script, &[&self.prefix, &base, &widen])
            .await?;
        Ok(match found.as_slice() {
            [mission, a, an, anode, b, bn, bnode] => Some((
                mission.clone(),
                (
                    PlayerRef {
                        id: a.clone(),
                        name: an.clone(),
                    },
                    anode.clone(),
                ),
                (
                    PlayerRef {
                        id: b.clone(),
                        name: bn.clone(),
                    },
                    bnode.clone(),
                ),
            )),
            _ => None,
        })
    }

    /// Withdraws `user`'s ticket, if any.
    pub async fn unqueue(&self, user: &str) -> anyhow::Result<bool> {
        let removed: i64 = self
            .run_script(&Script::new(UNQUEUE), &[&self.prefix, user])
            .await?;
        Ok(removed == 1)
    }
}
