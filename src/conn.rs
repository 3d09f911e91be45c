//! One WebSocket connection, served by one task: it decodes, rate-limits and
//! dispatches client frames, drains the connection's bounded queue of encoded
//! frames to the socket and answers the node's keepalive sweep with pings. A
//! client that stops reading fills its queue; the next `ConnHandle::send` then
//! stops the connection, which also interrupts a socket write that is stuck.
//!
//! Tens of thousands of mostly idle connections must fit in a few KiB each, so
//! the idle task stores almost nothing: one task instead of a reader and a
//! writer, the connection's state in one box, and waiting done by one poll
//! function over the queue and the socket (registered wakers, no stored
//! futures). Everything large — greeting, handling a frame, the farewell — is
//! boxed and lives only while it runs.

use std::collections::HashSet;
use std::future::Future;
use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::{Sink, StreamExt};
use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use juno_protocol::{
    decode_client, encode, ClientFrame, ClientMsg, ErrorCode, Pong, ServerMsg, Welcome,
};
use tokio::time::Instant;

use crate::auth::Identity;
use crate::cluster::{BusMsg, RemoteCmd};
use crate::dispatch;
use crate::node::Node;
use crate::routing;
use crate::session::{ConnHandle, Next, Outbound, Outgoing};

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

/// Everything one connection owns while it lives, in one allocation: the task's
/// own future then stays a few pointers wide (an async fn keeps its arguments
/// beside every later state, so a 368-byte socket passed in would be held twice).
struct Connection {
    socket: WebSocket,
    state: ConnState,
    outgoing: Outgoing,
    budget: Budget,
    /// When the client last sent anything (pongs included).
    last_heard: Instant,
    /// A frame was handed to the socket and not flushed yet.
    unflushed: bool,
}

/// Serves one upgraded connection until it closes.
pub fn serve(
    node: Arc<Node>,
    socket: WebSocket,
    identity: Identity,
) -> impl Future<Output = ()> + Send + 'static {
    let (handle, outgoing) = node
        .sessions
        .open(&identity.user, node.config.outgoing_queue);
    let cfg = &node.config;
    let conn = Box::new(Connection {
        socket,
        state: ConnState {
            handle,
            identity,
            spectating: HashSet::new(),
            remote_rooms: Default::default(),
        },
        outgoing,
        budget: Budget::new(cfg.rate_per_sec, cfg.rate_burst, cfg.flood_close),
        last_heard: Instant::now(),
        unflushed: false,
    });
    run(node, conn)
}

async fn run(node: Arc<Node>, mut conn: Box<Connection>) {
    node.metrics.ws_connections.inc();
    // The greeting and the farewell are boxed: their futures are large and live
    // only briefly, so the idle connection does not carry them.
    Box::pin(greet(&node, &conn.state)).await;
    run_loop(&node, &mut conn).await;
    Box::pin(farewell(&node, conn)).await;
    node.metrics.ws_connections.dec();
    node.metrics.active_users.set(node.sessions.len() as i64);
}

/// Makes the connection the user's live one (here and cluster-wide), sends
/// `welcome` and tells the rooms the user sits in that they are back.
async fn greet(node: &Arc<Node>, state: &ConnState) {
    let (handle, identity) = (&state.handle, &state.identity);
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
        if let Some(older_at) = cluster.claim_user(&identity.user).await {
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

    let seats = node.rooms_of(&identity.user).await;
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
        routing::notify_room(node, room, cmd).await;
    }
    node.logins.record(&identity.user, &identity.name);
}

/// Closes the socket and, unless a newer connection of the user took over,
/// withdraws the user's queue ticket and tells their rooms they left.
async fn farewell(node: &Arc<Node>, conn: Box<Connection>) {
    let Connection {
        socket,
        state,
        outgoing,
        ..
    } = *conn;
    let handle = state.handle;
    handle.stop();
    drop(socket);
    drop(outgoing);
    let user = state.identity.user;
    // A connection replaced by a newer one (here or on another node) leaves its
    // rooms alone: the player is still there.
    if node.sessions.unregister(&handle) {
        match &node.cluster {
            Some(cluster) => {
                cluster.release_user(&user);
                if let Err(e) = cluster.unqueue(&user).await {
                    tracing::debug!(error = %format!("{e:#}"), "withdrawing a queue ticket");
                }
            }
            None => {
                node.matchmaker.remove(&user);
            }
        }
        for room in node.rooms_of(&user).await {
            routing::notify_room(node, &room, RemoteCmd::Disconnected { user: user.clone() }).await;
        }
    }
    for room in state.spectating {
        routing::notify_room(node, &room, RemoteCmd::Unspectate { user: user.clone() }).await;
    }
}

/// Per-connection frame budget, with the contract's flood handling.
struct Budget {
    /// On the std clock: governor's default (quanta) clock makes each limiter ~100 bytes larger.
    limiter:
        RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<std::time::Instant>>,
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
            limiter: RateLimiter::direct_with_clock(
                Quota::per_second(per_sec).allow_burst(burst),
                MonotonicClock,
            ),
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

/// What the connection's task does next.
enum Event {
    /// A message from the client.
    In(Message),
    /// Send this close frame (after what is already written), then end.
    Close(u16, &'static str),
    /// The client sent a frame over the size limit.
    TooBig,
    /// The client closed, the socket broke, the peer went silent, or the
    /// connection was stopped.
    End,
}

/// Queued frames handed to the socket per wake-up at most, so that a busy
/// queue cannot keep the task from reading (or other tasks from running).
const WRITE_BATCH: usize = 64;

impl Connection {
    /// Moves queued frames to the socket as far as it takes them and returns
    /// the next thing that needs the task: a client message, a close or the end.
    /// Written as one poll function rather than a `select!` of futures so that
    /// an idle connection stores no future at all, only its registered wakers.
    fn poll_event(&mut self, idle: Duration, cx: &mut Context<'_>) -> Poll<Event> {
        // Frames queued together (a round and the player's score, say) are
        // buffered and flushed once: one socket write instead of one per frame.
        let mut written = 0;
        // Whether the queue was polled empty: that registered the task's waker
        // and checked the stop switch.
        let mut drained = false;
        loop {
            if written == WRITE_BATCH {
                // Let others run; come back for the rest.
                cx.waker().wake_by_ref();
                break;
            }
            match Pin::new(&mut self.socket).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(Event::End),
                Poll::Pending => break,
            }
            let message = match self.outgoing.poll_next(cx) {
                Poll::Pending => {
                    drained = true;
                    break;
                }
                Poll::Ready(Next::Stop) => return Poll::Ready(Event::End),
                Poll::Ready(Next::Out(Outbound::Close(code, reason))) => {
                    return Poll::Ready(Event::Close(code, reason))
                }
                Poll::Ready(Next::Out(Outbound::Frame(data))) => Message::Binary(data),
                Poll::Ready(Next::Out(Outbound::Ping)) => {
                    if self.last_heard.elapsed() >= idle {
                        tracing::debug!(user = %self.state.identity.user, "peer silent too long");
                        return Poll::Ready(Event::End);
                    }
                    Message::Ping(Bytes::new())
                }
            };
            if Pin::new(&mut self.socket).start_send(message).is_err() {
                return Poll::Ready(Event::End);
            }
            self.unflushed = true;
            written += 1;
        }
        if self.unflushed {
            match Pin::new(&mut self.socket).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(_)) => return Poll::Ready(Event::End),
                // The socket is full; its waker brings the task back.
                Poll::Pending => {}
            }
        }
        // A stop must end the task even while a write is stuck (a client that
        // does not read): unless the loop did, poll the queue so that its waker
        // is registered.
        if !drained {
            if let Poll::Ready(Next::Stop) = self.outgoing.poll_stop(cx) {
                return Poll::Ready(Event::End);
            }
        }
        match self.socket.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(Event::End),
            Poll::Ready(Some(Err(e))) => Poll::Ready(if is_too_big(e) {
                Event::TooBig
            } else {
                Event::End
            }),
            Poll::Ready(Some(Ok(message))) => Poll::Ready(Event::In(message)),
        }
    }

    /// Sends a close frame after what is already written (bounded wait).
    async fn send_close(&mut self, code: u16, reason: &'static str) {
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(Duration::from_secs(2), self.socket.send(close)).await;
    }

    /// Sends what is queued up to and including a close frame (then ends).
    async fn drain_until_close(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(Next::Out(out)) = self.outgoing.try_next() {
            let message = match out {
                Outbound::Frame(data) => Message::Binary(data),
                Outbound::Close(code, reason) => {
                    self.send_close(code, reason).await;
                    return;
                }
                Outbound::Ping => continue,
            };
            if !matches!(
                tokio::time::timeout_at(deadline, self.socket.send(message)).await,
                Ok(Ok(()))
            ) {
                return;
            }
        }
    }
}

async fn run_loop(node: &Arc<Node>, conn: &mut Connection) {
    // A peer that answers none of three pings is gone.
    let idle = node.config.keepalive * 3;
    loop {
        match std::future::poll_fn(|cx| conn.poll_event(idle, cx)).await {
            Event::In(message) => {
                // Boxed: handling a frame needs a large future (dispatch), which
                // an idle connection should not carry.
                if Box::pin(conn.handle(node, message)).await.is_break() {
                    return;
                }
            }
            Event::End => return,
            Event::Close(code, reason) => {
                Box::pin(conn.send_close(code, reason)).await;
                return;
            }
            Event::TooBig => {
                // Queued behind what is already waiting, and sent before the end.
                conn.state
                    .handle
                    .close(close_code::TOO_BIG, "frame too large");
                Box::pin(conn.drain_until_close()).await;
                return;
            }
        }
    }
}

impl Connection {
    /// Handles one message from the client: rate limit, decode, dispatch.
    /// `Break` ends the connection.
    async fn handle(&mut self, node: &Arc<Node>, message: Message) -> ControlFlow<()> {
        self.last_heard = Instant::now();
        let data = match message {
            Message::Binary(data) => Some(data),
            Message::Text(_) => None,
            Message::Close(_) => return ControlFlow::Break(()),
            Message::Ping(_) | Message::Pong(_) => return ControlFlow::Continue(()),
        };
        node.metrics.frames_received_total.inc();
        let received = self.last_heard;
        let state = &mut self.state;
        match self.budget.check(received) {
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
                return ControlFlow::Continue(());
            }
            Verdict::Close => {
                node.metrics.rate_limited_total.inc();
                state.handle.close(close_code::POLICY, "flooding");
                self.drain_until_close().await;
                return ControlFlow::Break(());
            }
        }
        let Some(data) = data else {
            state.handle.send(encode(&ServerMsg::error(
                None,
                ErrorCode::BadFrame,
                "frames must be binary MessagePack",
            )));
            return ControlFlow::Continue(());
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
                if let Err(refusal) =
                    dispatch::handle(node, state, frame.rid, frame.msg, received).await
                {
                    state.handle.send(encode(&refusal.to_msg(frame.rid)));
                }
            }
        }
        ControlFlow::Continue(())
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
