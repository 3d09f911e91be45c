//! Messages between nodes over Redis pub/sub. Each node listens on its own
//! channel and on one channel for everybody; payloads are MessagePack.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::room_host::Action;

/// What one node tells another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum BusMsg {
    /// A command for a room hosted on the receiving node.
    Room { room: String, cmd: RemoteCmd },
    /// The same encoded frame for several users connected to the receiving node:
    /// one bus message per node, never one per player.
    Deliver { users: Vec<String>, frame: Bytes },
    /// `user` connected to `node`: an older connection of theirs here must go.
    Kick { user: String, node: String },
    /// Feature flags changed in the database: reload them and push them to clients.
    FlagsChanged,
    /// A notification for this node's online users: all of them, or those listed,
    /// at or above a level.
    Notify {
        users: Option<Vec<String>>,
        min_level: Option<i32>,
        frame: Bytes,
    },
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
}
