//! The cluster-wide duel queue: one Redis list of tickets per mission, paired by
//! Lua scripts so two nodes can never take the same ticket. The Lua functions
//! `best_for` and `closest_pair` are the rules of [`super::best_opponent`] and
//! [`super::closest_pair`]; the table in `cases.rs` checks both against the same
//! expectations. Tickets of players who left or whose node died are dropped when
//! met, so nobody is matched with a ghost. Waiting time comes from Redis's clock.

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

/// Pairs found per rematch tick at most, so one tick never runs long.
const REMATCH_MAX: usize = 64;

fn script(body: &str) -> Script {
    Script::new(&format!("{RULES}{TICKETS}{body}"))
}

/// The arguments every script starts with.
fn common_args(link: &Link) -> [String; 3] {
    [
        link.prefix.clone(),
        BASE_WINDOW.to_string(),
        WIDEN_PER_SEC.to_string(),
    ]
}

fn seated(link: &Link, id: &str, name: &str, node: &str) -> Seated {
    let player = PlayerRef {
        id: id.to_string(),
        name: name.to_string(),
    };
    (player, (node != link.node_id).then(|| node.to_string()))
}

pub(super) async fn enqueue(
    link: &Link,
    player: &PlayerRef,
    rating: f64,
    mission: &str,
) -> anyhow::Result<Option<Seated>> {
    let [prefix, base, widen] = common_args(link);
    let rating = format!("{rating:.1}");
    let args = [
        prefix.as_str(),
        &base,
        &widen,
        mission,
        &player.id,
        &player.name,
        &link.node_id,
        &rating,
    ];
    let found: Vec<String> = link.run_script(&script(ENQUEUE), &[], &args).await?;
    Ok(match found.as_slice() {
        [id, name, node] => Some(seated(link, id, name, node)),
        _ => None,
    })
}

pub(super) async fn rematch(link: &Link) -> anyhow::Result<Vec<(String, Seated, Seated)>> {
    let [prefix, base, widen] = common_args(link);
    let rematch = script(REMATCH);
    let mut pairs = Vec::new();
    // Every node runs this; the script hands each pair to exactly one of them.
    while pairs.len() < REMATCH_MAX {
        let found: Vec<String> = match link
            .run_script(&rematch, &[], &[&prefix, &base, &widen])
            .await
        {
            Ok(found) => found,
            // Pairs already taken out of Redis must still be started.
            Err(e) if !pairs.is_empty() => {
                tracing::debug!(error = %format!("{e:#}"), "rematch");
                break;
            }
            Err(e) => return Err(e),
        };
        match found.as_slice() {
            [mission, a, an, anode, b, bn, bnode] => pairs.push((
                mission.clone(),
                seated(link, a, an, anode),
                seated(link, b, bn, bnode),
            )),
            _ => break,
        }
    }
    Ok(pairs)
}

pub(super) async fn unqueue(link: &Link, user: &str) -> anyhow::Result<bool> {
    let [prefix, base, widen] = common_args(link);
    let removed: i64 = link
        .run_script(&script(UNQUEUE), &[], &[&prefix, &base, &widen, user])
        .await?;
    Ok(removed == 1)
}
