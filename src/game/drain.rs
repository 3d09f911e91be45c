//! Drain and shutdown, one mechanism (WIRE.md §5): stop taking connections and
//! rooms, send `reconnect` + close 1012 to everyone not seated in a running room,
//! let running rooms play to the end (at most `JUNO_DRAIN_TIMEOUT_SECS`), flush
//! the results outbox, then stop the node.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use juno_protocol::{encode, Reconnect, ServerMsg};
use tokio::time::Instant;

use super::host::RoomCmd;
use super::sessions::close_code;
use super::Node;

/// How often the drain looks for connections to release and rooms still running.
const SWEEP_EVERY: Duration = Duration::from_millis(200);
/// How long the outbox may take to write the last results before they are spooled.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Drains the node and then stops it. Calling it again while draining does nothing.
pub async fn drain(node: Arc<Node>) {
    if !node.set_draining() {
        return;
    }
    tracing::info!(node = %node.config.node_id, "draining");
    for room in node.rooms.iter() {
        let _ = room.tx.try_send(RoomCmd::CloseIfWaiting);
    }
    // Shared tickets of this node's players die with their presence entries.
    node.cluster.queue.clear();
    let deadline = Instant::now() + node.config.drain_timeout;
    let mut released = HashSet::new();
    loop {
        release_idle(&node, &mut released, false);
        let running = node.rooms.iter().filter(|r| !r.is_finished()).count();
        if running == 0 {
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(running, "drain timeout: stopping with rooms still running");
            break;
        }
        tokio::time::sleep(SWEEP_EVERY).await;
    }
    release_idle(&node, &mut released, true);
    if !node.outbox.flush(FLUSH_TIMEOUT).await {
        tracing::warn!(
            pending = node.outbox.pending(),
            "database unreachable: results will be spooled"
        );
    }
    node.cluster.leave().await;
    tracing::info!("drained");
    node.shutdown.cancel();
}

/// Sends `reconnect` and closes 1012 to connections not seated in a running room
/// (with `all`, to every connection).
fn release_idle(node: &Node, released: &mut HashSet<u64>, all: bool) {
    let frame = encode(&ServerMsg::Reconnect(Reconnect {
        reason: "draining".into(),
    }));
    for conn in node.sessions.all() {
        if released.contains(&conn.id) {
            continue;
        }
        // Only a seat in a running room on THIS node keeps a connection here; players of
        // rooms elsewhere can resume through any other node.
        let seated_in_running_room = node
            .cluster
            .directory
            .seat_here(&conn.user)
            .and_then(|room| node.rooms.get(&room).map(|h| !h.is_finished()))
            .unwrap_or(false);
        if all || !seated_in_running_room {
            conn.send(frame.clone());
            conn.close(close_code::RESTART, "node draining");
            released.insert(conn.id);
        }
    }
}
