//! Cluster-wide duel queue: one Redis list of tickets per mission, paired by a
//! Lua script so two nodes can never take the same ticket. Tickets of players who
//! left or whose node died are dropped when met, so nobody is matched with a ghost.

use juno_protocol::PlayerRef;
use redis::Script;

use super::Cluster;

/// Queues `player` (connected to this node); returns the opponent and their node
/// when one was waiting.
const ENQUEUE: &str = r"
local p, mission, user, name, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local function drop_ticket(u)
  local old = redis.call('GET', p .. ':mmt:' .. u)
  if old then
    local list = p .. ':mm:' .. old
    for _, t in ipairs(redis.call('LRANGE', list, 0, -1)) do
      if string.sub(t, 1, #u + 1) == u .. '\t' then redis.call('LREM', list, 0, t) end
    end
    redis.call('DEL', p .. ':mmt:' .. u)
  end
end
drop_ticket(user)
local queue = p .. ':mm:' .. mission
while true do
  local t = redis.call('LPOP', queue)
  if not t then break end
  local ouser, oname, onode = string.match(t, '^([^\t]*)\t([^\t]*)\t([^\t]*)$')
  if ouser and ouser ~= user then
    redis.call('DEL', p .. ':mmt:' .. ouser)
    if redis.call('EXISTS', p .. ':alive:' .. onode) == 1 and redis.call('GET', p .. ':user:' .. ouser) == onode then
      return {ouser, oname, onode}
    end
  end
end
redis.call('RPUSH', queue, user .. '\t' .. name .. '\t' .. node)
redis.call('SET', p .. ':mmt:' .. user, mission)
return {}
";

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

impl Cluster {
    /// Queues `player` for `mission`; `Some((opponent, their node))` when paired.
    pub async fn enqueue(
        &self,
        player: &PlayerRef,
        mission: &str,
    ) -> anyhow::Result<Option<(PlayerRef, String)>> {
        let found: Vec<String> = self
            .run_script(
                &Script::new(ENQUEUE),
                &[
                    &self.prefix,
                    mission,
                    &player.id,
                    &player.name,
                    &self.node_id,
                ],
            )
            .await?;
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

    /// Withdraws `user`'s ticket, if any.
    pub async fn unqueue(&self, user: &str) -> anyhow::Result<bool> {
        let removed: i64 = self
            .run_script(&Script::new(UNQUEUE), &[&self.prefix, user])
            .await?;
        Ok(removed == 1)
    }
}
