//! Reaching rooms and users wherever they are: on this node through channels,
//! on another node through the cluster bus. Also handles what the bus brings in.

use std::sync::Arc;

use juno_protocol::{encode, ErrorCode, Mode, ServerMsg};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cluster::{BusMsg, RemoteCmd};
use crate::conn::close_code;
use crate::node::{Node, Refusal};
use crate::room_host::{Reply, RoomCmd};

/// Where a room lives.
pub enum RoomAt {
    Here(mpsc::Sender<RoomCmd>, Mode),
    /// On another node: its id and the room's mode.
    There(String, Mode),
}

/// Finds a room on this node, else in the cluster directory.
pub async fn locate(node: &Node, room: &str) -> Result<RoomAt, Refusal> {
    if let Some(h) = node.rooms.get(room) {
        return Ok(RoomAt::Here(h.tx.clone(), h.mode));
    }
    if let Some(cluster) = &node.cluster {
        if let Some((owner, mode)) = cluster.locate_room(room).await {
            if owner != cluster.node_id {
                if let Some(mode) = Mode::parse(&mode) {
                    return Ok(RoomAt::There(owner, mode));
                }
            }
        }
    }
    Err(Refusal::new(
        ErrorCode::NotFound,
        format!("no room '{room}'"),
    ))
}

/// Rooms on other nodes one connection used lately: room → (node, mode, looked up at).
pub type RemoteRooms = std::collections::HashMap<String, (String, Mode, Instant)>;

/// How long a looked-up location of a room on another node is trusted. Shorter than
/// a node's heartbeat TTL, so commands stop going to a dead node soon after it dies.
const REMOTE_ROOM_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// [`locate`], remembering rooms on other nodes for [`REMOTE_ROOM_TTL`]: a remote
/// player's answers cost one Redis lookup every couple of seconds, not one each.
/// (A room that ended meanwhile still answers: its old node replies `not_found`.)
pub async fn locate_cached(
    node: &Node,
    cache: &mut RemoteRooms,
    room: &str,
) -> Result<RoomAt, Refusal> {
    if let Some(h) = node.rooms.get(room) {
        return Ok(RoomAt::Here(h.tx.clone(), h.mode));
    }
    if let Some((owner, mode, at)) = cache.get(room) {
        if at.elapsed() < REMOTE_ROOM_TTL {
            return Ok(RoomAt::There(owner.clone(), *mode));
        }
    }
    let found = locate(node, room).await;
    cache.retain(|_, (_, _, at)| at.elapsed() < REMOTE_ROOM_TTL);
    if let Ok(RoomAt::There(owner, mode)) = &found {
        cache.insert(room.to_string(), (owner.clone(), *mode, Instant::now()));
    }
    found
}

/// Tells a room (wherever it is) something about `user` that needs no answer.
pub async fn notify_room(node: &Node, room: &str, cmd: RemoteCmd) {
    match locate(node, room).await {
        Ok(RoomAt::Here(tx, _)) => {
            let _ = tx.send(local_command(node, cmd)).await;
        }
        Ok(RoomAt::There(owner, _)) => {
            if let Some(cluster) = &node.cluster {
                cluster.send(
                    &owner,
                    &BusMsg::Room {
                        room: room.to_string(),
                        cmd,
                    },
                );
            }
        }
        Err(_) => {}
    }
}

/// A bus command as the room host takes it, timed on arrival here, where the room
/// lives. A user connected to this very node is local, not remote.
fn local_command(node: &Node, cmd: RemoteCmd) -> RoomCmd {
    let here = node
        .cluster
        .as_ref()
        .map(|c| c.node_id.as_str())
        .unwrap_or_default();
    match cmd {
        RemoteCmd::Client {
            user,
            rid,
            action,
            from,
        } => RoomCmd::Client {
            user,
            rid,
            at: Instant::now(),
            action,
            reply: Reply::Remote(from),
        },
        RemoteCmd::Disconnected { user } => RoomCmd::Disconnected { user },
        RemoteCmd::Reconnected { user, node: at } => RoomCmd::Reconnected {
            user,
            node: (at != here).then_some(at),
        },
        RemoteCmd::Unspectate { user } => RoomCmd::Unspectate { user },
    }
}

/// Handles one message from another node (or from this one, on the all-nodes channel).
pub async fn on_bus_message(node: &Arc<Node>, msg: BusMsg) {
    match msg {
        BusMsg::Room { room, cmd } => match node.rooms.get(&room).map(|h| h.tx.clone()) {
            Some(tx) => {
                let _ = tx.send(local_command(node, cmd)).await;
            }
            None => {
                // The room ended or moved between lookup and delivery.
                if let RemoteCmd::Client {
                    user, rid, from, ..
                } = cmd
                {
                    node.release_seat(&user, &room);
                    let frame = encode(&ServerMsg::error(
                        rid,
                        ErrorCode::NotFound,
                        format!("no room '{room}'"),
                    ));
                    if let Some(cluster) = &node.cluster {
                        cluster.send(
                            &from,
                            &BusMsg::Deliver {
                                users: vec![user],
                                frame,
                            },
                        );
                    }
                }
            }
        },
        BusMsg::Deliver { users, frame } => {
            for user in &users {
                node.sessions.send_to(user, frame.clone());
            }
        }
        BusMsg::Kick { user, node: newer } => {
            if let Some(conn) = node.sessions.get(&user) {
                if node.sessions.unregister(&conn) {
                    tracing::debug!(%user, %newer, "connection replaced on another node");
                    conn.send(encode(&ServerMsg::error(
                        None,
                        ErrorCode::Replaced,
                        "a newer connection of yours took over",
                    )));
                    conn.close(close_code::NORMAL, "replaced");
                }
            }
        }
        BusMsg::Notify {
            users,
            min_level,
            frame,
        } => {
            crate::notify::deliver_local(node, users, min_level, frame).await;
        }
        BusMsg::FlagsChanged => match node.store.flag_set().await {
            Ok(flags) => node.apply_flags(flags),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "reloading flags after a change"),
        },
    }
}
