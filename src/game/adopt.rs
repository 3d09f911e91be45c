//! Failover (WIRE.md §5): taking over the rooms of a node that died. The
//! heartbeat finds them ([`crate::cluster::Orphan`]); here a node races for
//! each one's lease, rebuilds the room by replaying its log through the rules,
//! works out where its members are now, and hosts it from the moment its old
//! host died: the room's clock resumes there, and every member still connected
//! hears the room as it is (`room_state`, then the open question again).
//! A tournament is adopted with its running duels, by the same node.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::BoxFuture;
use juno_rooms::{LogEntry, Output, Room, RoomSpec, Summary};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::host::{self, Adoption, RoomCmd, RoomHeader};
use super::Node;
use crate::model::MatchRecord;

/// Adopts the rooms of dead nodes the heartbeat reports, one at a time.
pub fn spawn(node: &Arc<Node>) {
    let Some(mut orphans) = node.cluster.take_orphans() else {
        return;
    };
    let weak = Arc::downgrade(node);
    tokio::spawn(async move {
        while let Some(orphan) = orphans.recv().await {
            let Some(node) = weak.upgrade() else { return };
            // A node on its way out takes nothing on.
            if node.is_draining() || node.shutdown.is_cancelled() {
                continue;
            }
            if node.rooms.contains_key(&orphan.room) {
                continue;
            }
            adopt(&node, &orphan.room, &orphan.dead, orphan.detected, None).await;
        }
    });
}

/// A room replayed from its log.
struct Rebuilt {
    room: Room,
    /// When its match started (wall clock), if it did.
    started: Option<DateTime<Utc>>,
    /// A tournament's duels, in the order it paired them.
    children: Vec<String>,
    /// The match ended before its host died.
    finished: Option<Summary>,
    /// Room time of the last logged input.
    last_at: u64,
}

/// Feeds `entries` to a fresh room made from `spec`; what the room sent then
/// was sent by the old host and is dropped, except what says where it stands.
fn rebuild(spec: RoomSpec, entries: &[LogEntry], origin: i64) -> Rebuilt {
    let mut room = Room::new(spec);
    let mut rebuilt_started = None;
    let mut children = Vec::new();
    let mut finished = None;
    for entry in entries {
        room.replay_entry(entry);
        while let Some(out) = room.poll_output() {
            match out {
                Output::Started => rebuilt_started = Some(wall(origin, entry.at)),
                Output::SpawnDuel { room, .. } => children.push(room),
                Output::Finished(summary) => finished = Some(*summary),
                _ => {}
            }
        }
    }
    Rebuilt {
        room,
        started: rebuilt_started,
        children,
        finished,
        last_at: entries.last().map_or(0, |e| e.at),
    }
}

fn wall(origin: i64, at: u64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(origin + at as i64)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Takes `room` over from `dead` if this node wins its lease, and hosts it; a
/// tournament's duels follow their parent (`parent` is set for them).
fn adopt<'a>(
    node: &'a Arc<Node>,
    room_id: &'a str,
    dead: &'a str,
    detected: Instant,
    parent: Option<mpsc::Sender<RoomCmd>>,
) -> BoxFuture<'a, ()> {
    Box::pin(async move {
        let Some(adopted) = node.cluster.adopt(room_id, dead).await else {
            return;
        };
        if node.rooms.contains_key(room_id) {
            // Hosted here already (a repeated answer to an adoption that succeeded).
            return;
        }
        let mut parts = adopted.log.iter();
        let header: Option<RoomHeader> = parts.next().and_then(|h| rmp_serde::from_slice(h).ok());
        let Some(header) = header else {
            tracing::error!(room = %room_id, "adopted room has no readable header: it is lost");
            return;
        };
        let mut entries: Vec<LogEntry> = Vec::new();
        for batch in parts {
            match rmp_serde::from_slice::<Vec<LogEntry>>(batch) {
                Ok(batch) => entries.extend(batch),
                Err(e) => {
                    tracing::error!(room = %room_id, error = %e, "adopted room's log is unreadable: it is lost");
                    return;
                }
            }
        }
        let spec = header.spec.clone();
        let Some(log) = node.cluster.room_log(
            room_id,
            spec.mode.as_str(),
            spec.parent.as_deref(),
            adopted.epoch,
        ) else {
            return;
        };
        let log = log.with_len(adopted.log.len());
        node.metrics.rooms_adopted_total.inc();
        tracing::info!(room = %room_id, from = %dead, epoch = adopted.epoch, inputs = entries.len(), "adopting room");
        let rebuilt = rebuild(spec, &entries, adopted.origin);
        if let Some(summary) = rebuilt.finished {
            // Its result went out before the death; make sure it is recorded
            // (the outbox writes a match once, whoever pushes it).
            if let Some(parent) = &parent {
                report_to_parent(parent, room_id, &summary).await;
            }
            node.outbox.push(MatchRecord {
                spec: header.spec,
                world: header.world,
                node: node.config.node_id.clone(),
                log: entries,
                started_at: rebuilt.started.unwrap_or(header.created),
                finished_at: wall(adopted.origin, rebuilt.last_at),
                ratings: Vec::new(),
                summary,
            });
            log.close(true).await;
            return;
        }
        let died_at = if adopted.last_beat > 0 {
            u64::try_from(adopted.last_beat - adopted.origin).unwrap_or(0)
        } else {
            0
        };
        let resume_at = rebuilt.last_at.max(died_at);
        let members: Vec<String> = rebuilt.room.members().map(String::from).collect();
        let found = node.cluster.where_are(&members).await;
        let me = node.cluster.node_id();
        let mut remote = HashMap::new();
        let mut gone = Vec::new();
        for user in members {
            match found.get(&user) {
                Some(at) if at != me => {
                    remote.insert(user, at.clone());
                }
                Some(_) if node.sessions.get(&user).is_some() => {}
                _ => gone.push(user),
            }
        }
        let mode = rebuilt.room.mode();
        node.cluster
            .directory
            .register_room_now(room_id, mode)
            .await;
        let children = rebuilt.children;
        let tx = host::spawn_adopted(
            node.clone(),
            rebuilt.room,
            header.world,
            log,
            Adoption {
                created: header.created,
                started: rebuilt.started,
                resume_at,
                remote,
                gone,
                detected,
            },
            parent,
        );
        for child in children {
            adopt(node, &child, dead, detected, Some(tx.clone())).await;
        }
    })
}

/// Tells a tournament about a duel that ended (again, maybe: it ignores a repeat).
async fn report_to_parent(parent: &mpsc::Sender<RoomCmd>, room: &str, summary: &Summary) {
    let winner = summary
        .result
        .winner
        .clone()
        .or_else(|| summary.result.standings.first().map(|s| s.id.clone()));
    let Some(winner) = winner else { return };
    let scores = summary
        .players
        .iter()
        .map(|p| (p.id.clone(), p.score))
        .collect();
    let _ = parent
        .send(RoomCmd::ChildFinished {
            room: room.to_string(),
            winner,
            scores,
        })
        .await;
}
