//! Test harness: real nodes on port 0 with a fresh database each, and real
//! WebSocket clients speaking MessagePack.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use juno_protocol::{decode_server, encode_client, ClientMsg, ServerMsg};
use juno_server::config::Config;
use juno_server::game::Node;
use juno_server::store::Store;
use juno_server::Server;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "test-secret-0123456789abcdef-0123456789";
pub const ADMIN: &str = "test-admin-0123456789abcdef-0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running node.
pub struct TestApp {
    pub addr: SocketAddr,
    pub node: Arc<Node>,
    pub auth: Arc<juno_server::gateway::auth::Auth>,
    pub http: reqwest::Client,
    _dir: Option<TempDir>,
}

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Test defaults: fast pace, known secrets.
pub fn test_config() -> Config {
    let mut c = Config {
        jwt_secrets: vec![SECRET.into()],
        admin_token: Some(ADMIN.into()),
        node_id: "test-node".into(),
        ..Config::default()
    };
    c.pace.questions = 3;
    c.pace.question_ms = 3000;
    c.pace.countdown_ms = 50;
    c.pace.between_ms = 50;
    c
}

/// A fresh database URL for `backend`.
pub async fn fresh_database(backend: Backend) -> (String, Option<TempDir>) {
    let tag = format!("{:016x}", rand::random::<u64>());
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("juno-test-{tag}"));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            let url = format!("sqlite://{}", dir.join("juno.db").display());
            (url, Some(TempDir(dir)))
        }
        Backend::Postgres => {
            let admin_url = std::env::var("TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let pool = sqlx::PgPool::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!("Postgres at TEST_DATABASE_URL ({admin_url}) is required: {e}")
            });
            let name = format!("juno_t_{tag}");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await
                .expect("create test database");
            pool.close().await;
            let base = admin_url
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(&admin_url);
            (format!("{base}/{name}"), None)
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    spawn_on(backend, listener, adjust).await
}

/// A listener whose accepted sockets get a small send buffer (inherited from the
/// listening socket), so a client that stops reading backs up quickly.
pub fn small_buffer_listener() -> TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_send_buffer_size(4096).expect("SO_SNDBUF");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    socket.listen(128).expect("listen")
}

pub async fn spawn_on(
    backend: Backend,
    listener: TcpListener,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let (url, dir) = fresh_database(backend).await;
    let mut config = test_config();
    config.database_url = url;
    adjust(&mut config);
    let server = Server::start(config, listener)
        .await
        .expect("server starts");
    let node = server.node.clone();
    let auth = server.auth.clone();
    let addr = server.addr;
    tokio::spawn(async move {
        let _ = server.wait().await;
    });
    TestApp {
        addr,
        node,
        auth,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl TestApp {
    pub fn token(&self, user: &str) -> String {
        self.auth
            .mint(user, Some(&user.to_uppercase()), 3600)
            .expect("mint")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/ws?token={}", self.addr, token)
    }

    pub async fn connect(&self, user: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(self.ws_url(&self.token(user)))
            .await
            .expect("ws connect");
        Client::new(ws, user).await
    }

    /// Connects with a tiny receive buffer (for slow-consumer tests).
    pub async fn connect_small_buffer(&self, user: &str) -> Client {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let stream = socket.connect(self.addr).await.expect("tcp connect");
        let (ws, _) = tokio_tungstenite::client_async(
            self.ws_url(&self.token(user)),
            MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("ws handshake");
        Client::new(ws, user).await
    }

    pub async fn admin_put_flag(&self, name: &str, enabled: bool) -> reqwest::StatusCode {
        self.http
            .put(self.url(&format!("/admin/flags/{name}")))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({ "enabled": enabled }))
            .send()
            .await
            .expect("http")
            .status()
    }

    /// The node's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("http")
            .text()
            .await
            .expect("text")
    }

    /// One integer from the node's database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        match &self.node.store {
            Store::Postgres(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
            Store::Sqlite(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Polls `sql` until it returns `want` (background writes land asynchronously;
    /// up to 15 s, as a loaded machine's database can take seconds).
    pub async fn eventually_scalar(&self, sql: &str, want: i64) {
        eventually(&format!("{sql} = {want}"), DEADLINE, async || {
            let got = self.scalar(sql).await;
            if got == want {
                Ok(())
            } else {
                Err(got)
            }
        })
        .await
    }
}

/// How long a condition may take to come true before a test gives up: generous,
/// since a loaded machine can take seconds for what usually takes milliseconds.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Polls `check` until it gives `Ok`, for at most `within`, and returns what it
/// gave; otherwise panics naming the condition (`what`) and the last `Err` seen.
/// Tests wait for a condition with this instead of sleeping a fixed time.
pub async fn eventually<T, E: std::fmt::Debug>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = match check().await {
            Ok(t) => return t,
            Err(e) => e,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("never happened within {within:?}: {what}; last seen: {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GETs `url` and parses its JSON body (any status: the tests check the fields).
pub async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: String) -> T {
    http.get(url)
        .send()
        .await
        .expect("http")
        .json()
        .await
        .expect("json")
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A game client that keeps messages it was not waiting for, in order.
pub struct Client {
    pub ws: Ws,
    pub user: String,
    next_rid: u64,
    backlog: VecDeque<ServerMsg>,
    pub welcome: juno_protocol::Welcome,
}

const WAIT: Duration = Duration::from_secs(10);

impl Client {
    /// A client over an already connected socket; reads the `welcome`.
    pub async fn from_ws(ws: Ws, user: &str) -> Client {
        Client::new(ws, user).await
    }

    async fn new(ws: Ws, user: &str) -> Client {
        let mut c = Client {
            ws,
            user: user.into(),
            next_rid: 1,
            backlog: VecDeque::new(),
            welcome: juno_protocol::Welcome {
                user: String::new(),
                name: String::new(),
                node: String::new(),
                proto: 0,
                flags: Default::default(),
                rooms: vec![],
            },
        };
        match c.next().await {
            ServerMsg::Welcome(w) => c.welcome = w,
            other => panic!("{user}: expected welcome, got {other:?}"),
        }
        c
    }

    /// Sends a message with a fresh rid; returns the rid.
    pub async fn send(&mut self, msg: ClientMsg) -> u64 {
        let rid = self.next_rid;
        self.next_rid += 1;
        self.send_bytes(encode_client(Some(rid), &msg)).await;
        rid
    }

    pub async fn send_bytes(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .expect("ws send");
    }

    /// The next message from the socket (not the backlog).
    async fn read(&mut self) -> ServerMsg {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{}: no message within {WAIT:?}; backlog {:?}",
                        self.user, self.backlog
                    )
                })
                .unwrap_or_else(|| panic!("{}: connection closed", self.user))
                .unwrap_or_else(|e| panic!("{}: ws error {e}", self.user));
            match frame {
                Message::Binary(b) => return decode_server(&b).expect("server frames decode"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("{}: unexpected frame {other:?}", self.user),
            }
        }
    }

    /// The next message, backlog first.
    pub async fn next(&mut self) -> ServerMsg {
        match self.backlog.pop_front() {
            Some(m) => m,
            None => self.read().await,
        }
    }

    /// The first message matching `pred` (backlog first); others stay queued in order.
    pub async fn expect<T>(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&ServerMsg) -> Option<T>,
    ) -> T {
        if let Some(i) = self.backlog.iter().position(|m| pred(m).is_some()) {
            let m = self.backlog.remove(i).expect("index in range");
            return pred(&m).expect("matched before");
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{}: no {what} within {WAIT:?}; backlog {:?}",
                    self.user, self.backlog
                );
            }
            let m = self.read().await;
            if let Some(t) = pred(&m) {
                return t;
            }
            self.backlog.push_back(m);
        }
    }

    /// Sends `msg` and waits for the `ok` or `error` echoing its rid.
    pub async fn request(
        &mut self,
        msg: ClientMsg,
    ) -> Result<juno_protocol::Ok, juno_protocol::Error> {
        let rid = self.send(msg).await;
        self.expect("answer", |m| match m {
            ServerMsg::Ok(ok) if ok.rid == Some(rid) => Some(Ok(ok.clone())),
            ServerMsg::Error(e) if e.rid == Some(rid) => Some(Err(e.clone())),
            _ => None,
        })
        .await
    }

    /// Sends `msg` expecting a refusal; returns its error code.
    pub async fn refusal(&mut self, msg: ClientMsg) -> juno_protocol::ErrorCode {
        match self.request(msg).await {
            Ok(ok) => panic!("{}: expected an error, got {ok:?}", self.user),
            Err(e) => e.code,
        }
    }

    /// Creates a room of `mode` for the demo mission; returns its id.
    pub async fn create_room(
        &mut self,
        mode: juno_protocol::Mode,
        options: Option<juno_protocol::RoomOptions>,
    ) -> String {
        let created = self
            .request(ClientMsg::Create {
                mode,
                mission: "demo".into(),
                options,
            })
            .await;
        created
            .expect("create")
            .room
            .expect("ok carries the room id")
    }

    /// Reads messages in order (those already received first) until one matching
    /// `pred` arrives, and returns it; panics if any message before it matches
    /// `forbidden`. Messages that match neither stay queued, in order.
    ///
    /// This is how a test proves that something did NOT happen: it names a later
    /// event that must come after the forbidden one, had the server sent it, and
    /// checks the order, instead of listening for a while and hoping a slow
    /// machine would have delivered it by then.
    pub async fn expect_none_before<T>(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&ServerMsg) -> Option<T>,
        forbidden_what: &str,
        forbidden: impl Fn(&ServerMsg) -> bool,
    ) -> T {
        let mut i = 0;
        while i < self.backlog.len() {
            let m = &self.backlog[i];
            if forbidden(m) {
                panic!(
                    "{}: {forbidden_what} arrived before {what}: {m:?}",
                    self.user
                );
            }
            if pred(m).is_some() {
                let m = self.backlog.remove(i).expect("index in range");
                return pred(&m).expect("matched before");
            }
            i += 1;
        }
        loop {
            let m = self.read().await;
            if forbidden(&m) {
                panic!(
                    "{}: {forbidden_what} arrived before {what}: {m:?}",
                    self.user
                );
            }
            if let Some(t) = pred(&m) {
                return t;
            }
            self.backlog.push_back(m);
        }
    }

    /// The ping/pong barrier: sends `ping` with a fresh rid and reads until the
    /// `pong` echoing it; returns every message received before it that no
    /// `expect` has taken (they stay queued). The server answers a connection's
    /// frames in order and queues every push to it in order, so whatever it had
    /// queued for this client before it handled the ping arrives before the pong.
    pub async fn barrier(&mut self) -> Vec<ServerMsg> {
        self.barrier_forbidding("nothing", |_| false).await;
        self.backlog.iter().cloned().collect()
    }

    /// Asserts that nothing the server queued for this client before the
    /// barrier's pong (see [`Client::barrier`]) matches `forbidden`. Only proves
    /// absence for frames queued before the server handled the ping: a frame that
    /// would come from a room task, another node or a timer needs its trigger to
    /// have been handled first, or a later positive event
    /// ([`Client::expect_none_before`]).
    pub async fn assert_none_before_pong(
        &mut self,
        forbidden_what: &str,
        forbidden: impl Fn(&ServerMsg) -> bool,
    ) {
        self.barrier_forbidding(forbidden_what, forbidden).await;
    }

    async fn barrier_forbidding(
        &mut self,
        forbidden_what: &str,
        forbidden: impl Fn(&ServerMsg) -> bool,
    ) {
        let rid = self.send(ClientMsg::Ping).await;
        self.expect_none_before(
            &format!("the barrier's pong (rid {rid})"),
            |m| matches!(m, ServerMsg::Pong(p) if p.rid == Some(rid)).then_some(()),
            forbidden_what,
            forbidden,
        )
        .await;
    }

    /// Waits for the server to close the connection; returns the close code if one came.
    pub async fn closed(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("{}: connection not closed within {WAIT:?}", self.user),
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
}

/// `Some(x)` when `m` is the given variant: `is!(m, ServerMsg::Question)`.
#[macro_export]
macro_rules! is {
    ($m:expr, $variant:path) => {
        match $m {
            $variant(inner) => Some(inner.clone()),
            _ => None,
        }
    };
}
