//! One WebSocket connection, served by one task: it decodes, rate-limits and
//! dispatches client frames, drains the connection's bounded queue of encoded
//! frames to the socket and keeps the socket alive with pings. A client that
//! stops reading fills its queue; the next `ConnHandle::send` then stops the
//! connection, which also interrupts a socket write that is stuck.
//!
//! One task instead of a reader and a writer (and the big dispatch future boxed
//! only while a frame is being handled) keeps an idle connection small: tens of
//! thousands of them must fit in a few KiB each.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use juno_protocol::{
    decode_client, encode, ClientFrame, ClientMsg, ErrorCode, Pong, ServerMsg, Welcome,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::Identity;
use crate::cluster::{BusMsg, RemoteCmd};
use crate::dispatch;
use crate::node::Node;
use crate::routing;
use crate::session::{ConnHandle, Outbound, Outgoing};

/// WebSocket close codes the contract uses.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const RESTART: u16 = 1012;
}

/// What this connection is doing beyond being seated (which the node tracks).
pub struct ConnState {
    pub handle: ConnHandle,
    pub identity: Identity,
    /// Rooms this connection spectates, to leave them when it ends.
    pub spectating: HashSet<String>,
    /// Where recently used rooms on other nodes live, so a match's answers do not
    /// each ask Redis again (see [`routing::locate_cached`]). Empty, and so free,
    /// for a connection that plays on its own node.
    pub remote_rooms: routing::RemoteRooms,
}

/// Serves one upgraded connection until it closes.
pub async fn serve(node: Arc<Node>, socket: WebSocket, identity: Identity) {
    node.metrics.ws_connections.inc();
    let (handle, outgoing) = node
        .sessions
        .open(&identity.user, node.config.outgoing_queue);
    if let Some(old) = node.sessions.register(handle.clone()) {
        old.send(encode(&ServerMsg::error(
            None,
            ErrorCode::Replaced,
            "a newer connection of yours took over",
        )));
        old.close(close_code::NORMAL, "replaced");
    }
    if let Some(cluster) = &node.cluster {
        // One live connection per user, cluster-wide: an older one elsewhere is told to go.
        if let Some(older_at) = Box::pin(cluster.claim_user(&identity.user)).await {
            cluster.send(
                &older_at,
                &BusMsg::Kick {
                    user: identity.user.clone(),
                    node: cluster.node_id.clone(),
                },
            );
        }
    }
    node.metrics.active_users.set(node.sessions.len() as i64);

    let seats = Box::pin(node.rooms_of(&identity.user)).await;
    handle.send(encode(&ServerMsg::Welcome(Welcome {
        user: identity.user.clone(),
        name: identity.name.clone(),
        node: node.config.node_id.clone(),
        proto: juno_protocol::PROTO_VERSION,
        flags: node.flags_for(&identity.user),
        rooms: seats.clone(),
    })));
    let here = node
        .cluster
        .as_ref()
        .map(|c| c.node_id.clone())
        .unwrap_or_default();
    for room in &seats {
        let cmd = RemoteCmd::Reconnected {
            user: identity.user.clone(),
            node: here.clone(),
        };
        Box::pin(routing::notify_room(&node, room, cmd)).await;
    }
    node.logins.record(&identity.user, &identity.name);

    let mut state = ConnState {
        handle: handle.clone(),
        identity,
        spectating: HashSet::new(),
        remote_rooms: Default::default(),
    };
    let mut socket = socket;
    let mut outgoing = outgoing;
    run_loop(&node, &mut state, &mut socket, &mut outgoing).await;

    handle.stop.cancel();
    drop(socket);
    drop(outgoing);
    let user = state.identity.user.clone();
    // A connection replaced by a newer one (here or on another node) leaves its
    // rooms alone: the player is still there.
    if node.sessions.unregister(&handle) {
        match &node.cluster {
            Some(cluster) => {
                cluster.release_user(&user);
                if let Err(e) = Box::pin(cluster.unqueue(&user)).await {
                    tracing::debug!(error = %format!("{e:#}"), "withdrawing a queue ticket");
                }
            }
            None => {
                node.matchmaker.remove(&user);
            }
        }
        for room in Box::pin(node.rooms_of(&user)).await {
            Box::pin(routing::notify_room(
                &node,
                &room,
                RemoteCmd::Disconnected { user: user.clone() },
            ))
            .await;
        }
    }
    for room in state.spectating {
        Box::pin(routing::notify_room(
            &node,
            &room,
            RemoteCmd::Unspectate { user: user.clone() },
        ))
        .await;
    }
    node.metrics.ws_connections.dec();
    node.metrics.active_users.set(node.sessions.len() as i64);
}

/// Per-connection frame budget, with the contract's flood handling.
struct Budget {
    limiter: DefaultDirectRateLimiter,
    /// Last `rate_limited` error sent (one a second at most).
    last_error: Option<Instant>,
    /// Start of the current run of dropped frames, and the last drop.
    flood_since: Option<Instant>,
    last_drop: Option<Instant>,
    flood_close: Duration,
}

enum Verdict {
    Pass,
    /// Drop the frame; send a `rate_limited` error if `true`.
    Drop(bool),
    /// Flooding too long: close with 1008.
    Close,
}

impl Budget {
    fn new(per_sec: u32, burst: u32, flood_close: Duration) -> Budget {
        // Invariant: Config refuses zero rates, so both are at least 1.
        let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Budget {
            limiter: RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst)),
            last_error: None,
            flood_since: None,
            last_drop: None,
            flood_close,
        }
    }

    fn check(&mut self, now: Instant) -> Verdict {
        if self.limiter.check().is_ok() {
            return Verdict::Pass;
        }
        // A gap of more than a second between drops ends a flood.
        if self
            .last_drop
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(1))
        {
            self.flood_since = Some(now);
        }
        self.last_drop = Some(now);
        if self
            .flood_since
            .is_some_and(|t| now.duration_since(t) >= self.flood_close)
        {
            return Verdict::Close;
        }
        let tell = self
            .last_error
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if tell {
            self.last_error = Some(now);
        }
        Verdict::Drop(tell)
    }
}

/// What woke the connection's task.
enum Event {
    Out(Outbound),
    In(Option<Result<Message, axum::Error>>),
}

async fn run_loop(
    node: &Arc<Node>,
    state: &mut ConnState,
    socket: &mut WebSocket,
    outgoing: &mut Outgoing,
) {
    let cfg = &node.config;
    let mut budget = Budget::new(cfg.rate_per_sec, cfg.rate_burst, cfg.flood_close);
    // A peer that answers none of three pings is gone.
    let idle = cfg.keepalive * 3;
    let mut last_heard = Instant::now();
    let stop = state.handle.stop.clone();
    loop {
        let event = tokio::select! {
            biased;
            // Queued frames first, as a separate writer would: a close queued
            // just before the connection is stopped still goes out.
            out = outgoing.recv() => Event::Out(out),
            _ = stop.cancelled() => return,
                        next = socket.recv() => Event::In(next),
        };
        let next = match event {
            Event::Out(Outbound::Ping) => {
                if last_heard.elapsed() >= idle {
                    tracing::debug!(user = %state.identity.user, "peer silent too long");
                    return;
                }
                if !send(socket, Message::Ping(Bytes::new()), &stop).await {
                    return;
                }
                continue;
            }
            Event::Out(Outbound::Frame(data)) => {
                if !send(socket, Message::Binary(data), &stop).await {
                    return;
                }
                continue;
            }
            Event::Out(Outbound::Close(code, reason)) => {
                let close = Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                }));
                let _ = Box::pin(tokio::time::timeout(
                    Duration::from_secs(2),
                    socket.send(close),
                ))
                .await;
                return;
            }
            Event::In(next) => next,
        };
        let msg = match next {
            None => return,
            Some(Err(e)) => {
                if is_too_big(e) {
                    // Queued behind what is already waiting; sent next turn.
                    state.handle.close(close_code::TOO_BIG, "frame too large");
                    Box::pin(drain_until_close(socket, outgoing, &stop)).await;
                }
                return;
            }
            Some(Ok(msg)) => msg,
        };
        last_heard = Instant::now();
        let data = match msg {
            Message::Binary(data) => Some(data),
            Message::Text(_) => None,
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        node.metrics.frames_received_total.inc();
        let received = last_heard;
        match budget.check(received) {
            Verdict::Pass => {}
            Verdict::Drop(tell) => {
                node.metrics.rate_limited_total.inc();
                if tell {
                    state.handle.send(encode(&ServerMsg::error(
                        None,
                        ErrorCode::RateLimited,
                        "too many frames; slow down",
                    )));
                }
                continue;
            }
            Verdict::Close => {
                node.metrics.rate_limited_total.inc();
                state.handle.close(close_code::POLICY, "flooding");
                Box::pin(drain_until_close(socket, outgoing, &stop)).await;
                return;
            }
        }
        let Some(data) = data else {
            state.handle.send(encode(&ServerMsg::error(
                None,
                ErrorCode::BadFrame,
                "frames must be binary MessagePack",
            )));
            continue;
        };
        match decode_client(&data) {
            Err(e) => {
                state.handle.send(encode(&e.to_msg()));
            }
            Ok(ClientFrame {
                rid,
                msg: ClientMsg::Ping,
            }) => {
                let ts = chrono::Utc::now().timestamp_millis().max(0) as u64;
                state
                    .handle
                    .send(encode(&ServerMsg::Pong(Pong { rid, ts })));
            }
            Ok(frame) => {
                // Boxed: the dispatch future is large and only lives while a
                // frame is handled, so an idle connection does not carry it.
                let handled = Box::pin(dispatch::handle(
                    node, state, frame.rid, frame.msg, received,
                ))
                .await;
                if let Err(refusal) = handled {
                    state.handle.send(encode(&refusal.to_msg(frame.rid)));
                }
            }
        }
    }
}

/// Writes one message unless the connection is stopped first (a client that
/// does not read can block a write; its full queue then stops it).
async fn send(socket: &mut WebSocket, message: Message, stop: &CancellationToken) -> bool {
    tokio::select! {
        r = socket.send(message) => r.is_ok(),
        _ = stop.cancelled() => false,
    }
}

/// Sends what is queued up to and including a close frame (then stops).
async fn drain_until_close(
    socket: &mut WebSocket,
    outgoing: &mut Outgoing,
    stop: &CancellationToken,
) {
    while let Ok(out) = outgoing.try_recv() {
        match out {
            Outbound::Frame(data) => {
                if !send(socket, Message::Binary(data), stop).await {
                    return;
                }
            }
            Outbound::Close(code, reason) => {
                let close = Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                }));
                let _ = tokio::time::timeout(Duration::from_secs(2), socket.send(close)).await;
                return;
            }
            Outbound::Ping => {}
        }
    }
}

/// Whether a read error is tungstenite refusing a frame over the size limit.
fn is_too_big(e: axum::Error) -> bool {
    let inner = e.into_inner();
    matches!(
        inner.downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}
