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
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::{Sink, StreamExt};
use juno_protocol::{decode_client, encode, ClientFrame, ClientMsg, ErrorCode, Pong, ServerMsg};
use tokio::time::Instant;

use super::auth::Identity;
use super::budget::{Budget, Verdict};
use super::guard::Permit;
use super::{dispatch, Gateway};
use crate::game::routing::RemoteRooms;
use crate::game::sessions::{close_code, ConnHandle, Next, Outbound, Outgoing};
use crate::game::{presence, Node};

/// What this connection is doing beyond being seated (which the node tracks).
pub struct ConnState {
    pub handle: ConnHandle,
    pub identity: Identity,
    /// Rooms this connection spectates, to leave them when it ends.
    pub spectating: HashSet<String>,
    /// Where recently used rooms on other nodes live, so a match's answers do not
    /// each ask Redis again (see [`crate::game::routing::locate_cached`]). Empty,
    /// and so free, for a connection that plays on its own node.
    pub remote_rooms: RemoteRooms,
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
    /// This connection's place among its address's (clients behind a proxy).
    _permit: Option<Arc<Permit>>,
}

/// Serves one upgraded connection until it closes.
pub fn serve(
    gateway: Gateway,
    socket: WebSocket,
    identity: Identity,
    permit: Option<Arc<Permit>>,
) -> impl Future<Output = ()> + Send + 'static {
    let node = gateway.node.clone();
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
        _permit: permit,
    });
    run(gateway, conn)
}

async fn run(gateway: Gateway, mut conn: Box<Connection>) {
    let node = &gateway.node;
    node.metrics.ws_connections.inc();
    // The greeting and the farewell are boxed: their futures are large and live
    // only briefly, so the idle connection does not carry them.
    let identity = &conn.state.identity;
    Box::pin(presence::arrive(node, &conn.state.handle, &identity.name)).await;
    gateway.logins.record(&identity.user, &identity.name);
    run_loop(node, &mut conn).await;
    Box::pin(farewell(node, conn)).await;
    node.metrics.ws_connections.dec();
}

/// Closes the socket, then lets the game know the player left.
async fn farewell(node: &Node, conn: Box<Connection>) {
    let Connection {
        socket,
        state,
        outgoing,
        ..
    } = *conn;
    state.handle.stop();
    drop(socket);
    drop(outgoing);
    presence::depart(node, &state.handle, state.spectating).await;
}

/// What the connection's task does next.
enum Event {
    /// A message from the client.
    In(Message),
    /// Send this close frame (after what is already written), then end.
    Close(u16, &'static str),
    /// The client sent a frame over the size limit.
    TooBig,
    /// The client broke the WebSocket protocol (unmasked frame, reserved bits or
    /// opcodes, invalid UTF-8 in a text frame): close 1002, then end.
    Violation,
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
            Poll::Ready(Some(Err(e))) => Poll::Ready(read_error(e)),
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
            Event::Violation => {
                Box::pin(conn.send_close(close_code::PROTOCOL, "protocol violation")).await;
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
        // A client's pings are answered by the WebSocket layer itself, but they
        // count against the budget: a ping flood is a flood (WIRE.md v1.1).
        let (data, is_ping) = match message {
            Message::Binary(data) => (Some(data), false),
            Message::Text(_) => (None, false),
            Message::Ping(_) => (None, true),
            Message::Close(_) => return ControlFlow::Break(()),
            // Answers to the node's keepalive pings cost nothing.
            Message::Pong(_) => return ControlFlow::Continue(()),
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
        if is_ping {
            return ControlFlow::Continue(());
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

/// What a read error means for the connection: a frame over the size limit, a
/// protocol violation, or simply the end (the socket broke or the peer left).
fn read_error(e: axum::Error) -> Event {
    use tungstenite::error::ProtocolError;
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => Event::TooBig,
        Some(tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
            Event::End
        }
        Some(tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_)) => Event::Violation,
        _ => Event::End,
    }
}
