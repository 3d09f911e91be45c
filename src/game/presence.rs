//! A player arriving and leaving: one live connection per user cluster-wide
//! (an older one, here or on another node, is told to go), `welcome` with the
//! rooms they are seated in, and their rooms told when they come and go.

use std::collections::HashSet;

use juno_protocol::{encode, ErrorCode, ServerMsg, Welcome};

use super::inbound::{BusMsg, RemoteCmd};
use super::matchmaking;
use super::routing::notify_room;
use super::sessions::{close_code, ConnHandle};
use super::Node;

/// Makes `conn` the user's live connection (here and cluster-wide), sends
/// `welcome` and tells the rooms the user sits in that they are back.
pub async fn arrive(node: &Node, conn: &ConnHandle, name: &str) {
    let user = conn.user.to_string();
    if let Some(old) = node.sessions.register(conn.clone()) {
        old.send(encode(&ServerMsg::error(
            None,
            ErrorCode::Replaced,
            "a newer connection of yours took over",
        )));
        old.close(close_code::NORMAL, "replaced");
    }
    let here = node.cluster.node_id().to_string();
    let older = node.cluster.directory.claim_user(&user).await;
    if let Some(older_at) = older {
        let kick = BusMsg::Kick {
            user: user.clone(),
            node: here.clone(),
        };
        node.cluster.bus.send(&older_at, kick.encode());
    }
    node.metrics.active_users.set(node.sessions.len() as i64);

    let seats = node.rooms_of(&user).await;
    conn.send(encode(&ServerMsg::Welcome(Welcome {
        user: user.clone(),
        name: name.to_string(),
        node: node.config.node_id.clone(),
        proto: juno_protocol::PROTO_VERSION,
        flags: node.flags.for_user(&user),
        rooms: seats.clone(),
    })));
    for room in &seats {
        let cmd = RemoteCmd::Reconnected {
            user: user.clone(),
            node: here.clone(),
        };
        notify_room(node, room, cmd).await;
    }
    node.missed.arrived(&user);
}

/// The connection ended. Unless a newer connection of the user took over, their
/// queue ticket is withdrawn and their rooms are told they left; rooms they
/// watched are told either way.
pub async fn depart(node: &Node, conn: &ConnHandle, spectating: HashSet<String>) {
    let user = conn.user.to_string();
    // A connection replaced by a newer one (here or on another node) leaves its
    // rooms alone: the player is still there.
    if node.sessions.unregister(conn) {
        node.cluster.directory.release_user(&user);
        matchmaking::unqueue(node, &user).await;
        for room in node.rooms_of(&user).await {
            notify_room(node, &room, RemoteCmd::Disconnected { user: user.clone() }).await;
        }
    }
    for room in spectating {
        notify_room(node, &room, RemoteCmd::Unspectate { user: user.clone() }).await;
    }
    node.metrics.active_users.set(node.sessions.len() as i64);
}
