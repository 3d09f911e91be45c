//! Reaching rooms wherever they are: on this node through their host's channel,
//! on another node through the bus.

use std::collections::HashMap;
use std::time::Duration;

use juno_protocol::{ErrorCode, Mode};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::host::{Action, Reply, RoomCmd};
use super::inbound::{BusMsg, RemoteCmd};
use super::sessions::ConnHandle;
use super::{Node, Refusal};

/// Where a room lives.
pub enum RoomAt {
    Here(mpsc::Sender<RoomCmd>, Mode),
    /// On another node: its id and the room's mode.
    There(String, Mode),
}

impl RoomAt {
    pub fn mode(&self) -> Mode {
        match self {
            RoomAt::Here(_, mode) | RoomAt::There(_, mode) => *mode,
        }
    }
}

fn no_room(room: &str) -> Refusal {
    Refusal::new(ErrorCode::NotFound, format!("no room '{room}'"))
}

/// Finds a room on this node, else in the cluster's directory.
pub async fn locate(node: &Node, room: &str) -> Result<RoomAt, Refusal> {
    if let Some(h) = node.rooms.get(room) {
        return Ok(RoomAt::Here(h.tx.clone(), h.mode));
    }
    match node.cluster.directory.locate_room(room).await {
        Some((owner, mode)) => Ok(RoomAt::There(owner, mode)),
        None => Err(no_room(room)),
    }
}

/// Rooms on other nodes one connection used lately: room → (node, mode, looked up at).
pub type RemoteRooms = HashMap<String, (String, Mode, Instant)>;

/// How long a looked-up location of a room on another node is trusted. Shorter than
/// a node's heartbeat TTL, so commands stop going to a dead node soon after it dies.
const REMOTE_ROOM_TTL: Duration = Duration::from_secs(2);

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
        // An adopted room's frames say where it lives now.
        let moved = node.fences.host_of(room).is_some_and(|h| h != *owner);
        if at.elapsed() < REMOTE_ROOM_TTL && !moved {
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

/// A client's action for a room, sent to wherever the room is; the room answers
/// the client. `Err` when the room ended before it could be told.
#[allow(clippy::too_many_arguments)]
pub async fn send_action(
    node: &Node,
    target: RoomAt,
    room: String,
    user: String,
    rid: Option<u64>,
    action: Action,
    received: Instant,
    conn: &ConnHandle,
) -> Result<(), Refusal> {
    match target {
        RoomAt::Here(tx, _) => {
            let cmd = RoomCmd::Client {
                user,
                rid,
                at: received,
                action,
                reply: Reply::Local(conn.clone()),
            };
            tx.send(cmd).await.map_err(|_| no_room(&room))
        }
        RoomAt::There(owner, _) => {
            let from = node.cluster.node_id().to_string();
            let cmd = RemoteCmd::Client {
                user,
                rid,
                action,
                from,
            };
            node.cluster
                .bus
                .send(&owner, BusMsg::Room { room, cmd }.encode());
            Ok(())
        }
    }
}

/// Tells a room (wherever it is) something about `user` that needs no answer.
pub async fn notify_room(node: &Node, room: &str, cmd: RemoteCmd) {
    match locate(node, room).await {
        Ok(RoomAt::Here(tx, _)) => {
            let _ = tx.send(local_command(node, cmd)).await;
        }
        Ok(RoomAt::There(owner, _)) => {
            let msg = BusMsg::Room {
                room: room.to_string(),
                cmd,
            };
            node.cluster.bus.send(&owner, msg.encode());
        }
        Err(_) => {}
    }
}

/// A bus command as the room host takes it, timed on arrival here, where the room
/// lives. A user connected to this very node is local, not remote.
pub(super) fn local_command(node: &Node, cmd: RemoteCmd) -> RoomCmd {
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
            node: (at != node.cluster.node_id()).then_some(at),
        },
        RemoteCmd::Unspectate { user } => RoomCmd::Unspectate { user },
    }
}
