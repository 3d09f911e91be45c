//! One simulated user's WebSocket connection ([`Conn`]) and what all of a run's
//! connections share ([`Ctx`]). A `Conn` connects from one of several loopback
//! source addresses, waits for `welcome`, and accounts for every frame it sends or
//! receives: answer→ok latency by `rid`, ping→pong round trips, `error` codes, and
//! the receive time of each broadcast (for delivery skew).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use juno_protocol::{
    decode_server, encode_client, glance_server, ClientMsg, ServerGlance, ServerMsg, Welcome,
};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::jwt::Tokens;
use crate::scenarios::AnswerKey;
use crate::stats::{epoch_micros, Stats};
use crate::target::Target;
use crate::Config;

/// The longest a connection attempt (token, TCP, upgrade, `welcome`) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest a request waits for its `ok` or `error`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection closed (or broke) while the client still needed it.
#[derive(Debug)]
pub struct ConnectionLost(pub String);

impl std::fmt::Display for ConnectionLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: connection lost", self.0)
    }
}

impl std::error::Error for ConnectionLost {}

/// Whether `e` is (caused by) a lost or broken connection.
pub fn is_connection_lost(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| c.is::<ConnectionLost>() || c.is::<tungstenite::Error>())
}

/// What every connection of a run shares.
pub struct Ctx {
    pub targets: Vec<Target>,
    pub tokens: Tokens,
    pub stats: Arc<Stats>,
    pub source_ips: u8,
    /// Bounds connection attempts in flight.
    pub connect_gate: Semaphore,
    /// Cancelled when the run ends: every client stops and closes.
    pub stop: CancellationToken,
    pub seed: u64,
    /// Prefix of generated user ids.
    pub tag: String,
    /// Correct choices known so far, by question text.
    pub key: AnswerKey,
    ws_config: WebSocketConfig,
}

impl Ctx {
    pub fn new(config: &Config, targets: Vec<Target>, tokens: Tokens, stats: Arc<Stats>) -> Ctx {
        Ctx {
            targets,
            tokens,
            stats,
            source_ips: config.source_ips,
            connect_gate: Semaphore::new(config.connect_concurrency),
            stop: CancellationToken::new(),
            seed: config.seed,
            tag: config.tag.clone(),
            key: AnswerKey::new(config.answer_key.clone()),
            // Small buffers: scenario `connect` holds ~19,000 of these at once.
            ws_config: WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(0)
                .max_write_buffer_size(1 << 20),
        }
    }
}

/// What a received frame means for the run's statistics.
enum Seen<'a> {
    /// An `ok`, answering this rid.
    Ok(Option<u64>),
    Pong(Option<u64>),
    Error {
        code: &'a str,
        msg: &'a str,
        rid: Option<u64>,
    },
    /// One copy of broadcast (room, type, number).
    Broadcast(&'a str, &'static str, u64),
    Other,
}

/// A connected, welcomed user.
pub struct Conn {
    ws: WebSocketStream<TcpStream>,
    pub user: String,
    pub welcome: Welcome,
    stats: Arc<Stats>,
    stop: CancellationToken,
    next_rid: u64,
    /// Answers waiting for their `ok`, by rid.
    answers: HashMap<u64, Instant>,
    /// Pings waiting for their `pong`, by rid.
    pings: HashMap<u64, Instant>,
    /// Messages read while waiting for a request's answer, in order.
    backlog: VecDeque<ServerMsg>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.stats.conn_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A short name for why a connection attempt failed.
fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(24) => "io_EMFILE".into(),
        Some(99) => "io_EADDRNOTAVAIL".into(),
        _ => format!("io_{:?}", e.kind()),
    }
}

fn ws_reason(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(resp) => format!("http_{}", resp.status().as_u16()),
        tungstenite::Error::Io(io) => io_reason(io),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => "closed".into(),
        other => {
            let s = format!("{other:?}");
            format!("ws_{}", s.split(['(', ' ', '{']).next().unwrap_or("error"))
        }
    }
}

impl Conn {
    /// Connects user `user` (display `name`) as the run's `index`-th connection: the
    /// target and source address are chosen by `index`. Counts the attempt and its
    /// outcome in the run's stats.
    pub async fn connect(ctx: &Ctx, index: usize, user: &str, name: &str) -> anyhow::Result<Conn> {
        let stats = &ctx.stats;
        stats.conn_attempted.fetch_add(1, Ordering::Relaxed);
        let attempt = async {
            let _permit = ctx
                .connect_gate
                .acquire()
                .await
                .map_err(|_| ("closed".to_string(), anyhow!("connection gate closed")))?;
            Conn::open(ctx, index, user, name).await
        };
        let outcome = tokio::select! {
            r = tokio::time::timeout(CONNECT_TIMEOUT, attempt) => match r {
                Ok(r) => r,
                Err(_) => Err(("timeout".to_string(), anyhow!("no welcome within {CONNECT_TIMEOUT:?}"))),
            },
            _ = ctx.stop.cancelled() => Err(("stopped".to_string(), anyhow!("the run ended first"))),
        };
        match outcome {
            Ok(conn) => {
                stats.conn_made.fetch_add(1, Ordering::Relaxed);
                Ok(conn)
            }
            Err((reason, e)) => {
                stats.connect_failed(&reason, &format!("{user}: {e:#}"));
                Err(e.context(format!("{user}: connecting ({reason})")))
            }
        }
    }

    async fn open(
        ctx: &Ctx,
        index: usize,
        user: &str,
        name: &str,
    ) -> Result<Conn, (String, anyhow::Error)> {
        let target = &ctx.targets[index % ctx.targets.len()];
        let token = ctx
            .tokens
            .token(target, user, name)
            .await
            .map_err(|e| ("token".to_string(), e))?;
        let io = |e: std::io::Error| (io_reason(&e), anyhow::Error::from(e));
        let socket = if target.addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(io)?;
        if let Some(source) = target.source_addr(index, ctx.source_ips) {
            socket.bind(source).map_err(io)?;
        }
        let stream = socket.connect(target.addr).await.map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            target.ws_url(&token),
            stream,
            Some(ctx.ws_config),
        )
        .await
        .map_err(|e| (ws_reason(&e), anyhow::Error::from(e)))?;
        ctx.stats.conn_open.fetch_add(1, Ordering::Relaxed);
        let mut conn = Conn {
            ws,
            user: user.to_string(),
            welcome: Welcome {
                user: String::new(),
                name: String::new(),
                node: String::new(),
                proto: 0,
                flags: Default::default(),
                rooms: Vec::new(),
            },
            stats: ctx.stats.clone(),
            stop: ctx.stop.clone(),
            next_rid: 1,
            answers: HashMap::new(),
            pings: HashMap::new(),
            backlog: VecDeque::new(),
        };
        match conn.read().await {
            Ok(Some(ServerMsg::Welcome(w))) => {
                conn.welcome = w;
                Ok(conn)
            }
            Ok(Some(other)) => Err((
                "no_welcome".into(),
                anyhow!("expected welcome, got {}", other.type_name()),
            )),
            Ok(None) => Err(("closed".into(), anyhow!("closed before welcome"))),
            Err(e) => Err(("ws_read".into(), e)),
        }
    }

    /// Sends `msg` with a fresh rid and returns the rid.
    pub async fn send(&mut self, msg: &ClientMsg) -> anyhow::Result<u64> {
        let rid = self.next_rid;
        self.next_rid += 1;
        let bytes = encode_client(Some(rid), msg);
        let at = Instant::now();
        match msg {
            ClientMsg::Answer { .. } => {
                self.answers.insert(rid, at);
                self.stats.answers_sent.fetch_add(1, Ordering::Relaxed);
            }
            ClientMsg::Ping => {
                self.pings.insert(rid, at);
            }
            _ => {}
        }
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .with_context(|| format!("{}: sending {}", self.user, msg.type_name()))?;
        self.stats.frames_sent.fetch_add(1, Ordering::Relaxed);
        Ok(rid)
    }

    /// The next message (messages set aside by [`Conn::request`] first); `None` once
    /// the connection is closed. Cancel-safe.
    pub async fn recv(&mut self) -> anyhow::Result<Option<ServerMsg>> {
        if let Some(m) = self.backlog.pop_front() {
            return Ok(Some(m));
        }
        self.read().await
    }

    /// Reads the socket: the only await point is the stream's `next`, so dropping
    /// this future loses nothing.
    async fn read(&mut self) -> anyhow::Result<Option<ServerMsg>> {
        self.read_with(decode_server, Conn::account).await
    }

    /// Reads the socket up to the next binary frame that `decode` takes (counting
    /// the others) and accounts for it with `account`; `None` once closed.
    async fn read_with<T, E: std::fmt::Display>(
        &mut self,
        decode: impl Fn(&[u8]) -> Result<T, E>,
        account: impl Fn(&mut Conn, &T, Instant),
    ) -> anyhow::Result<Option<T>> {
        loop {
            let Some(frame) = self.ws.next().await else {
                return Ok(None);
            };
            let frame = frame.with_context(|| format!("{}: reading", self.user))?;
            let now = Instant::now();
            match frame {
                Message::Binary(bytes) => {
                    self.stats.frames_received.fetch_add(1, Ordering::Relaxed);
                    match decode(&bytes) {
                        Ok(msg) => {
                            account(self, &msg, now);
                            return Ok(Some(msg));
                        }
                        Err(e) => {
                            // WIRE.md allows new server message types: skip, but count.
                            self.stats.undecodable.fetch_add(1, Ordering::Relaxed);
                            self.stats
                                .sample(format!("{}: undecodable frame: {e}", self.user));
                        }
                    }
                }
                Message::Text(_) => {
                    self.stats.undecodable.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .sample(format!("{}: text frame from the server", self.user));
                }
                Message::Close(_) => return Ok(None),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// Like [`Conn::recv`], but reads only each frame's type and identifying fields:
    /// what a spectator needs, at a fraction of the cost of decoding the whole
    /// frame (which matters when one process reads 10,000 sockets per broadcast).
    pub async fn recv_glance(&mut self) -> anyhow::Result<Option<ServerGlance>> {
        if let Some(m) = self.backlog.pop_front() {
            let room = match &m {
                ServerMsg::Result(r) => Some(r.room.clone()),
                _ => None,
            };
            return Ok(Some(ServerGlance {
                t: m.type_name().to_string(),
                room,
                ..ServerGlance::default()
            }));
        }
        self.read_with(glance_server, Conn::account_glance).await
    }

    /// [`Conn::account`] for a glanced frame.
    fn account_glance(&mut self, g: &ServerGlance, now: Instant) {
        let broadcast = |kind, n: Option<u64>| match (&g.room, n) {
            (Some(room), Some(n)) => Seen::Broadcast(room, kind, n),
            _ => Seen::Other,
        };
        let seen = match g.t.as_str() {
            "ok" => Seen::Ok(g.rid),
            "pong" => Seen::Pong(g.rid),
            "error" => Seen::Error {
                code: g.code.as_deref().unwrap_or("unknown"),
                msg: g.msg.as_deref().unwrap_or(""),
                rid: g.rid,
            },
            "question" => broadcast("question", g.q.map(u64::from)),
            "round" => broadcast("round", g.q.map(u64::from)),
            "boss" => broadcast("boss", g.hp),
            "result" => broadcast("result", Some(0)),
            _ => Seen::Other,
        };
        self.record(seen, now);
    }

    fn account(&mut self, msg: &ServerMsg, now: Instant) {
        let seen = match msg {
            ServerMsg::Ok(ok) => Seen::Ok(ok.rid),
            ServerMsg::Pong(pong) => Seen::Pong(pong.rid),
            ServerMsg::Error(e) => Seen::Error {
                code: e.code.as_str(),
                msg: &e.msg,
                rid: e.rid,
            },
            ServerMsg::Question(q) => Seen::Broadcast(&q.room, "question", u64::from(q.q)),
            ServerMsg::Round(r) => Seen::Broadcast(&r.room, "round", u64::from(r.q)),
            ServerMsg::Boss(b) => Seen::Broadcast(&b.room, "boss", b.hp),
            ServerMsg::Result(r) => Seen::Broadcast(&r.room, "result", 0),
            _ => Seen::Other,
        };
        self.record(seen, now);
    }

    /// Counts a received frame in the run's statistics.
    fn record(&mut self, seen: Seen<'_>, now: Instant) {
        let stats = &self.stats;
        match seen {
            Seen::Ok(rid) => {
                if let Some(sent) = rid.and_then(|rid| self.answers.remove(&rid)) {
                    stats.record_answer_latency(now - sent);
                }
            }
            Seen::Pong(rid) => {
                if let Some(sent) = rid.and_then(|rid| self.pings.remove(&rid)) {
                    stats.record_ping_rtt(now - sent);
                }
            }
            Seen::Error { code, msg, rid } => {
                stats.error_frame(code, msg, &self.user);
                if let Some(rid) = rid {
                    self.answers.remove(&rid);
                    self.pings.remove(&rid);
                }
            }
            Seen::Broadcast(room, kind, n) => {
                stats.broadcast((room.to_string(), kind, n), epoch_micros())
            }
            Seen::Other => {}
        }
    }

    /// Sends `msg` and waits for the `ok` or `error` echoing its rid; other messages
    /// read meanwhile are kept for [`Conn::recv`], in order.
    pub async fn request(
        &mut self,
        msg: &ClientMsg,
    ) -> anyhow::Result<Result<juno_protocol::Ok, juno_protocol::Error>> {
        let rid = self.send(msg).await?;
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let stop = self.stop.clone();
        loop {
            let next = tokio::select! {
                r = tokio::time::timeout_at(deadline, self.read()) => r,
                _ = stop.cancelled() => bail!("{}: stopped while waiting for the answer to {}", self.user, msg.type_name()),
            };
            let msg_in = match next {
                Err(_) => bail!(
                    "{}: no answer to {} within {REQUEST_TIMEOUT:?}",
                    self.user,
                    msg.type_name()
                ),
                Ok(r) => match r? {
                    Some(m) => m,
                    None => return Err(ConnectionLost(self.user.clone()).into()),
                },
            };
            match msg_in {
                ServerMsg::Ok(ok) if ok.rid == Some(rid) => return Ok(Ok(ok)),
                ServerMsg::Error(e) if e.rid == Some(rid) => return Ok(Err(e)),
                other => self.backlog.push_back(other),
            }
        }
    }

    /// Like [`Conn::request`], but an `error` answer is an error.
    pub async fn call(&mut self, msg: &ClientMsg) -> anyhow::Result<juno_protocol::Ok> {
        match self.request(msg).await? {
            Ok(ok) => Ok(ok),
            Err(e) => bail!(
                "{}: {} refused: {} ({})",
                self.user,
                msg.type_name(),
                e.code,
                e.msg
            ),
        }
    }

    /// Closes politely (bounded wait).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}
