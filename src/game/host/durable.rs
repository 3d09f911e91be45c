//! The room's durability in a cluster: committing the inputs behind held
//! effects to the room's log before they go out (group commit: one write for
//! whatever queued meanwhile), holding through a Redis outage, and stopping at
//! once when another node holds the room under a later epoch.

use std::time::Duration;

use chrono::Utc;
use juno_rooms::{Input, LogEntry};
use tokio::time::Instant;

use super::{Host, RoomLog};
use crate::cluster::{Batch, Committed};
use crate::game::inbound::{Fence, RemoteCmd};
use crate::game::routing;

/// A long outage makes the room's clock jump: a hold longer than this resumes
/// the room like an adoption (fresh `room_state`, the open question again with
/// the time it had left when the hold began).
const LONG_HOLD: Duration = Duration::from_secs(1);

pub(super) fn encode_named<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Invariant: headers and log entries are plain serde data with string keys.
    rmp_serde::to_vec_named(value).expect("room log data always encodes")
}

/// Encodes a batch of log entries as one log element.
fn encode_entries(entries: &[LogEntry]) -> Vec<u8> {
    encode_named(&entries)
}

impl Host {
    /// Writes the inputs behind `pending` to the room's log; `false` if another
    /// node holds the room now. While Redis does not answer, everything stays
    /// held and the write is tried again: no `ok` goes out for an answer that
    /// is not durable. A hold that made the clock jump resumes the room.
    pub(super) async fn commit(&mut self) -> bool {
        loop {
            let Some(log) = &self.log else { return true };
            let new = &self.room.log()[self.logged..];
            if new.is_empty()
                && self.pending.is_empty()
                && self.durable
                && !self.origin_changed
                && !self.check_lease
            {
                return true;
            }
            self.check_lease = false;
            let entries = if self.durable {
                if new.is_empty() {
                    Vec::new()
                } else {
                    encode_entries(new)
                }
            } else {
                encode_entries(self.room.log())
            };
            let origin = self.origin_changed.then(|| self.origin_wall());
            let mut held_since: Option<Instant> = None;
            let mut backoff = Duration::from_millis(20);
            let mut whole_log = !self.durable;
            let mut full_entries = None;
            let outcome = loop {
                let batch = Batch {
                    header: whole_log.then_some(()).and(self.header.as_deref()),
                    entries: full_entries.as_deref().unwrap_or(&entries),
                    origin: if whole_log {
                        Some(self.origin_wall())
                    } else {
                        origin
                    },
                };
                let sent = Instant::now();
                let answer = log.commit(&batch).await;
                if matches!(answer, Ok(Committed::Ok(_))) {
                    self.proved_at = sent;
                }
                match answer {
                    Ok(Committed::Missing) if !whole_log => {
                        tracing::warn!(room = %self.room.id(), "the room's log is gone from Redis: writing it again");
                        whole_log = true;
                        full_entries = Some(encode_entries(self.room.log()));
                    }
                    Ok(outcome) => break outcome,
                    Err(e) => {
                        if held_since.is_none() {
                            tracing::warn!(room = %self.room.id(), error = %format!("{e:#}"), "cannot log the room's inputs: holding its frames until Redis answers");
                            held_since = Some(Instant::now());
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_millis(500));
                    }
                }
            };
            match outcome {
                Committed::Ok(_) => {
                    let bytes = full_entries.as_ref().map_or(entries.len(), Vec::len);
                    self.node.metrics.room_log_appends_total.inc();
                    self.node.metrics.room_log_bytes_total.inc_by(bytes as u64);
                    self.appends += 1;
                    self.log_bytes += bytes as u64;
                    self.logged = self.room.log().len();
                    self.durable = true;
                    self.origin_changed = false;
                }
                Committed::Fenced | Committed::Missing => return false,
            }
            match held_since.map(|t| t.elapsed()) {
                Some(held) if held > LONG_HOLD && self.finished_at.is_none() => {
                    // The room waited out the outage: its clock did not run meanwhile.
                    self.epoch += held;
                    self.origin_changed = true;
                    let now = self.now(Instant::now());
                    self.quietly(now, Input::Resume);
                    self.collect();
                }
                _ => return true,
            }
        }
    }

    /// Whether what waits to go out was proved this node's too long ago. No
    /// node adopts a room before its host's `alive` key has lived
    /// `JUNO_NODE_TTL_MS` past the host's last beat, and the host beats three
    /// times per TTL; a host that was frozen for half a TTL since the write
    /// that proved its lease may have lost the room meanwhile.
    pub(super) fn proof_is_stale(&self) -> bool {
        self.log.is_some()
            && !self.pending.is_empty()
            && self.proved_at.elapsed() > self.node.config.node_ttl / 2
    }

    /// Wall-clock ms of room time 0 on this host.
    pub(super) fn origin_wall(&self) -> i64 {
        let since_epoch = Instant::now().saturating_duration_since(self.epoch);
        Utc::now().timestamp_millis() - since_epoch.as_millis() as i64 - self.base as i64
    }

    /// Another node adopted the room (this one was frozen, or cut off from
    /// Redis past its TTL): stop at once, send nothing, and leave the room's
    /// shared entries — its locator, its players' seats — to the new host.
    /// Members connected here are pointed at the new host, which sends them
    /// the room as it is.
    pub(super) fn fenced(&mut self) {
        let room_id = self.room.id().to_string();
        let epoch = self.log.as_ref().map_or(0, RoomLog::epoch);
        tracing::warn!(room = %room_id, epoch, "another node holds this room now: stopped acting for it");
        self.node.metrics.leases_lost_total.inc();
        self.pending.clear();
        self.node.rooms.remove(&room_id);
        self.node.cluster.directory.forget_room_here(&room_id);
        if self.finished_at.is_none() {
            self.count_inactive();
        }
        let here: Vec<String> = self
            .room
            .members()
            .filter(|m| !self.remote.contains_key(*m) && self.node.sessions.get(m).is_some())
            .map(String::from)
            .collect();
        if !here.is_empty() {
            let node = self.node.clone();
            tokio::spawn(async move {
                let me = node.cluster.node_id().to_string();
                for user in here {
                    let cmd = RemoteCmd::Reconnected {
                        user,
                        node: me.clone(),
                    };
                    routing::notify_room(&node, &room_id, cmd).await;
                }
            });
        }
    }

    /// What receivers check bus frames against: an adopted room's frames carry
    /// its epoch, and a node that saw a later one drops the older host's.
    pub(super) fn fence(&self) -> Option<Fence> {
        let epoch = self.log.as_ref()?.epoch();
        Some(Fence {
            room: self.room.id().to_string(),
            epoch,
            host: self.node.cluster.node_id().to_string(),
        })
    }
}
