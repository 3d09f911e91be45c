//! The journal's Lua scripts as plain Rust over an in-memory Redis: the lease
//! and fencing rules in a form a seeded simulation can step thousands of times
//! (crashes, pauses, partitions, delays), and that a shared case table checks
//! against the real scripts, so the two cannot drift.

use std::collections::{BTreeMap, BTreeSet};

/// One room's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub node: String,
    pub epoch: u64,
    pub parent: String,
    pub origin: i64,
    /// CLOSE ran: no commit, no adoption (the `closed` field of the hash).
    pub closed: bool,
}

/// What the scripts read and write, as Redis would hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Store {
    pub leases: BTreeMap<String, Lease>,
    pub logs: BTreeMap<String, Vec<Vec<u8>>>,
    pub hosted: BTreeMap<String, BTreeSet<String>>,
    pub beat: BTreeMap<String, i64>,
    /// Nodes whose `alive` key exists.
    pub alive: BTreeSet<String>,
}

/// [`super::COMMIT_LUA`]'s arguments.
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    pub node: &'a str,
    pub epoch: u64,
    pub room: &'a str,
    pub parent: &'a str,
    pub origin: Option<i64>,
    /// The header when the whole log is written.
    pub header: Option<&'a [u8]>,
    pub entries: &'a [u8],
    /// The log's length the host last heard (ARGV[10]): a batch is appended
    /// only onto a log that long.
    pub expected: u64,
    pub now: i64,
}

impl Store {
    /// [`super::COMMIT_LUA`]: the log's length, -1 fenced, -2 missing.
    pub fn commit(&mut self, c: &Commit) -> i64 {
        if let Some(lease) = self.leases.get_mut(c.room) {
            if lease.node != c.node || lease.epoch != c.epoch || lease.closed {
                return -1;
            }
            if let Some(origin) = c.origin {
                lease.origin = origin;
            }
            let log = self.logs.entry(c.room.to_string()).or_default();
            // The whole log replaces what is there, so sending it again
            // changes nothing.
            if let Some(header) = c.header {
                log.clear();
                log.push(header.to_vec());
                if !c.entries.is_empty() {
                    log.push(c.entries.to_vec());
                }
                return log.len() as i64;
            }
            // A batch goes onto the log the host knows, or not at all: sent
            // again after its first attempt landed, it is not appended twice.
            // The answer is the length either way.
            if !c.entries.is_empty() && log.len() as u64 == c.expected {
                log.push(c.entries.to_vec());
            }
            return log.len() as i64;
        }
        let Some(header) = c.header else {
            return -2;
        };
        self.leases.insert(
            c.room.to_string(),
            Lease {
                node: c.node.to_string(),
                epoch: c.epoch,
                parent: c.parent.to_string(),
                origin: c.origin.unwrap_or(0),
                closed: false,
            },
        );
        let mut log = vec![header.to_vec()];
        if !c.entries.is_empty() {
            log.push(c.entries.to_vec());
        }
        let len = log.len() as i64;
        self.logs.insert(c.room.to_string(), log);
        self.hosted
            .entry(c.node.to_string())
            .or_default()
            .insert(c.room.to_string());
        self.beat.insert(c.node.to_string(), c.now);
        self.alive.insert(c.node.to_string());
        len
    }

    /// [`super::ADOPT_LUA`]: the new epoch and the log, if `me` won the room.
    /// Asked again by the node that already won it (`dead` ≠ `me`), the same
    /// epoch and log, and nothing changes. `dead` = `me` (a node restarted
    /// under its id takes its rooms back) skips the `alive` check and always
    /// bumps the epoch.
    pub fn adopt(
        &mut self,
        room: &str,
        dead: &str,
        me: &str,
        now: i64,
    ) -> Option<(u64, Vec<Vec<u8>>)> {
        let lease = self.leases.get(room);
        if let Some(lease) = lease.filter(|l| l.node == me && dead != me && !l.closed) {
            return Some((
                lease.epoch,
                self.logs.get(room).cloned().unwrap_or_default(),
            ));
        }
        if !lease.is_some_and(|l| l.node == dead && !l.closed) {
            self.srem(dead, room);
            return None;
        }
        if dead != me && self.alive.contains(dead) {
            return None;
        }
        let lease = self.leases.get_mut(room)?;
        lease.node = me.to_string();
        lease.epoch += 1;
        let epoch = lease.epoch;
        self.srem(dead, room);
        self.hosted
            .entry(me.to_string())
            .or_default()
            .insert(room.to_string());
        self.beat.insert(me.to_string(), now);
        Some((epoch, self.logs.get(room).cloned().unwrap_or_default()))
    }

    /// [`super::CLOSE_LUA`]: whether `node` held it. The lease is marked
    /// closed; it and the log stay otherwise as they are until their TTL
    /// passes (which the model does not count): the script only sets EXPIRE on
    /// them.
    pub fn close(&mut self, node: &str, epoch: u64, room: &str) -> bool {
        let Some(lease) = self
            .leases
            .get_mut(room)
            .filter(|l| l.node == node && l.epoch == epoch)
        else {
            return false;
        };
        lease.closed = true;
        self.srem(node, room);
        true
    }

    /// A heartbeat: `alive` set, `beat` recorded.
    pub fn beat(&mut self, node: &str, now: i64) {
        self.alive.insert(node.to_string());
        self.beat.insert(node.to_string(), now);
    }

    /// The `alive` key expired.
    pub fn expire(&mut self, node: &str) {
        self.alive.remove(node);
    }

    /// Redis restarted empty.
    pub fn flush_all(&mut self) {
        *self = Store::default();
    }

    /// The rooms a dead node still holds (the scan), children of tournaments left out.
    pub fn orphans(&self, me: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for node in self.beat.keys().filter(|n| *n != me) {
            if self.alive.contains(node) {
                continue;
            }
            for room in self.hosted.get(node).into_iter().flatten() {
                if self.leases.get(room).is_none_or(|l| l.parent.is_empty()) {
                    found.push((node.clone(), room.clone()));
                }
            }
        }
        found
    }

    fn srem(&mut self, node: &str, room: &str) {
        if let Some(set) = self.hosted.get_mut(node) {
            set.remove(room);
            if set.is_empty() {
                self.hosted.remove(node);
            }
        }
    }
}

#[cfg(test)]
mod cases;
#[cfg(test)]
mod sim;
