//! What nodes tell each other over the bus ([`BusMsg`]), and handling what
//! arrives here: commands for rooms hosted here, frames for users connected
//! here, kicks of replaced connections, flag changes and notifications.
//! Messages are handled one at a time, in the order they arrived.

use std::sync::Arc;

use bytes::Bytes;
use juno_protocol::{encode, ErrorCode, ServerMsg};
use serde::{Deserialize, Serialize};

use super::host::Action;
use super::routing::local_command;
use super::sessions::close_code;
use super::{flags, notify, Node};
use crate::cluster::Inbox;

/// What one node tells another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum BusMsg {
    /// A command for a room hosted on the receiving node.
    Room { room: String, cmd: RemoteCmd },
    /// The same encoded frame for several users connected to the receiving node:
    /// one bus message per node, never one per player. A durable room's frames
    /// carry its lease's epoch.
    Deliver {
        users: Vec<String>,
        frame: Bytes,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fence: Option<Fence>,
    },
    /// `user` connected to `node`: an older connection of theirs here must go.
    Kick { user: String, node: String },
    /// Feature flags changed in the database: reload them and push them to clients.
    FlagsChanged,
    /// A notification for this node's online users who have it (all of them,
    /// or those listed), stored at `stored_at` under `title`.
    Notify {
        users: Option<Vec<String>>,
        stored_at: chrono::DateTime<chrono::Utc>,
        title: String,
        frame: Bytes,
    },
}

/// The room and lease epoch a frame was sent under.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fence {
    pub room: String,
    pub epoch: u64,
    /// The node that sent it: where the room lives under that epoch.
    pub host: String,
}

/// A room command that crossed from the node its user is connected to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "c", rename_all = "snake_case")]
pub enum RemoteCmd {
    Client {
        user: String,
        rid: Option<u64>,
        action: Action,
        from: String,
    },
    Disconnected {
        user: String,
    },
    Reconnected {
        user: String,
        node: String,
    },
    Unspectate {
        user: String,
    },
}

impl BusMsg {
    pub fn encode(&self) -> Vec<u8> {
        // Invariant: BusMsg is plain data with string keys; encoding into a Vec cannot fail.
        rmp_serde::to_vec_named(self).expect("a BusMsg always encodes")
    }

    pub fn decode(bytes: &[u8]) -> Option<BusMsg> {
        match rmp_serde::from_slice(bytes) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, "undecodable bus message dropped");
                None
            }
        }
    }

    /// One frame for `users` connected to another node.
    pub fn deliver(users: Vec<String>, frame: Bytes, fence: Option<Fence>) -> Vec<u8> {
        BusMsg::Deliver {
            users,
            frame,
            fence,
        }
        .encode()
    }
}

/// The highest lease epoch seen per adopted room: a frame a host sent under an
/// older epoch (it was frozen, and woke after another node adopted its room)
/// is dropped. Only adopted rooms (epoch 2 and on) take an entry.
#[derive(Default)]
pub struct Fences(dashmap::DashMap<String, (u64, String, std::time::Instant)>);

/// How long an adopted room's epoch is remembered (no room runs longer).
const FENCE_MEMORY: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

impl Fences {
    /// Whether a frame sent under `epoch` for `room` comes from a host that
    /// lost it; records `epoch` otherwise.
    pub fn is_stale(&self, fence: &Fence) -> bool {
        let Fence { room, epoch, host } = fence;
        if *epoch <= 1 {
            return self.0.get(room).is_some_and(|seen| seen.0 > *epoch);
        }
        let now = std::time::Instant::now();
        let mut seen = self
            .0
            .entry(room.clone())
            .or_insert((*epoch, host.clone(), now));
        if seen.0 > *epoch {
            return true;
        }
        *seen = (*epoch, host.clone(), now);
        false
    }

    /// The node an adopted room was last heard from (connections' cached
    /// locations of the room are out of date when it differs).
    pub fn host_of(&self, room: &str) -> Option<String> {
        self.0.get(room).map(|seen| seen.1.clone())
    }

    /// Forgets rooms not heard of for a long time.
    pub fn sweep(&self) {
        self.0.retain(|_, (_, _, at)| at.elapsed() < FENCE_MEMORY);
    }
}

/// Handles what arrives in `inbox` until the node is gone.
pub fn spawn(node: &Arc<Node>, mut inbox: Inbox) {
    let weak = Arc::downgrade(node);
    tokio::spawn(async move {
        while let Some(payload) = inbox.recv().await {
            let Some(node) = weak.upgrade() else { return };
            if let Some(msg) = BusMsg::decode(&payload) {
                on_message(&node, msg).await;
            }
        }
    });
}

/// Handles one message from another node (or from this one, on the all-nodes channel).
async fn on_message(node: &Arc<Node>, msg: BusMsg) {
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
                    node.cluster
                        .bus
                        .send(&from, BusMsg::deliver(vec![user], frame, None));
                }
            }
        },
        BusMsg::Deliver {
            users,
            frame,
            fence,
        } => {
            if fence.is_some_and(|f| node.fences.is_stale(&f)) {
                tracing::debug!("frame from a host that lost its room dropped");
                return;
            }
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
            stored_at,
            title,
            frame,
        } => {
            notify::deliver_local(node, users, stored_at, &title, frame).await;
        }
        BusMsg::FlagsChanged => {
            if let Err(e) = flags::reload(node).await {
                tracing::warn!(error = %format!("{e:#}"), "reloading flags after a change");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Fence, Fences};

    fn fence(epoch: u64, host: &str) -> Fence {
        Fence {
            room: "r".into(),
            epoch,
            host: host.into(),
        }
    }

    #[test]
    fn frames_of_a_host_that_lost_its_room_are_dropped() {
        let fences = Fences::default();
        assert!(
            !fences.is_stale(&fence(1, "n1")),
            "a first host's frames pass"
        );
        assert_eq!(fences.host_of("r"), None, "first epochs take no entry");
        assert!(
            !fences.is_stale(&fence(2, "n2")),
            "the adopter's frames pass"
        );
        assert_eq!(fences.host_of("r").as_deref(), Some("n2"));
        assert!(
            fences.is_stale(&fence(1, "n1")),
            "the old host's are dropped"
        );
        assert!(!fences.is_stale(&fence(2, "n2")));
        assert!(!fences.is_stale(&fence(3, "n3")), "a second adoption");
        assert!(fences.is_stale(&fence(2, "n2")));
        assert_eq!(fences.host_of("r").as_deref(), Some("n3"));
    }
}
