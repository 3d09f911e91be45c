//! Real processes for cluster tests: `juno-server` nodes (the built binary), a
//! dedicated `redis-server` when a test must stop it, and nginx with the repo's
//! deploy config in front of the nodes. Every process is killed when dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{
    eventually, fresh_database, Backend, Client, TempDir, ADMIN, DEADLINE, SECRET,
};

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn scratch_dir(tag: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("juno-{tag}-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    TempDir(dir)
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `juno-server` process.
pub struct NodeProc {
    pub id: String,
    pub addr: SocketAddr,
    pub proc: Proc,
    pub log: PathBuf,
}

impl NodeProc {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The last lines of the node's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGKILL: the node dies at once, without draining or a word to the cluster.
    /// Returns once the process is gone.
    pub fn kill(&mut self) {
        self.proc.child.kill().expect("SIGKILL the node");
        let _ = self.proc.child.wait();
    }

    /// SIGSTOP: the node freezes (its sockets stay open, nothing answers) until
    /// [`NodeProc::cont`]. Returns once the kernel shows the process stopped.
    pub fn stop(&self) {
        signal(self.proc.child.id(), "STOP");
        let stat = format!("/proc/{}/stat", self.proc.child.id());
        for _ in 0..200 {
            // The state is the field after the parenthesised command name.
            let state = std::fs::read_to_string(&stat).unwrap_or_default();
            if state
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T'))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("node {} did not stop on SIGSTOP", self.id);
    }

    /// SIGCONT: a node frozen by [`NodeProc::stop`] runs again.
    pub fn cont(&self) {
        signal(self.proc.child.id(), "CONT");
    }

    /// Waits for the process to exit; returns its exit code.
    pub async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.proc.child.try_wait() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

/// Sends `sig` (a name such as `STOP`) to `pid` with kill(1).
fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -{sig} {pid}: {status}");
}

/// A group of nodes sharing one Postgres database and one Redis.
pub struct ClusterProcs {
    pub nodes: Vec<NodeProc>,
    pub database_url: String,
    pub http: reqwest::Client,
    /// The nodes' Redis and their key prefix (tests read the cluster's state there).
    pub redis_url: String,
    pub prefix: String,
    dir: TempDir,
}

/// Redis for tests: `TEST_REDIS_URL`, defaulting to the local one.
pub fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

impl ClusterProcs {
    /// Starts `n` nodes against `redis_url` with a fresh Postgres database.
    pub async fn start(n: usize, redis_url: &str, extra_env: &[(&str, &str)]) -> ClusterProcs {
        ClusterProcs::start_each(redis_url, &vec![extra_env; n]).await
    }

    /// Starts one node per entry of `envs`, each with its own extra environment.
    pub async fn start_each(redis_url: &str, envs: &[&[(&str, &str)]]) -> ClusterProcs {
        let n = envs.len();
        let (database_url, _) = fresh_database(Backend::Postgres).await;
        let dir = scratch_dir("cluster");
        let prefix = format!("t{:08x}", rand::random::<u32>());
        let mut nodes = Vec::new();
        for i in 1..=n {
            nodes.push(spawn_node(
                &dir.0,
                &format!("n{i}"),
                &database_url,
                redis_url,
                &prefix,
                envs[i - 1],
            ));
        }
        let cluster = ClusterProcs {
            nodes,
            database_url,
            http: reqwest::Client::new(),
            redis_url: redis_url.to_string(),
            prefix,
            dir,
        };
        for node in &cluster.nodes {
            cluster.wait_ready(node).await;
        }
        cluster
    }

    /// Starts node `i` again under the same id (its old process must be gone),
    /// as a supervisor restarting a crashed node would.
    pub async fn restart(&mut self, i: usize, extra_env: &[(&str, &str)]) {
        let id = self.nodes[i].id.clone();
        let log_name = format!("{id}-restarted-{:08x}", rand::random::<u32>());
        let mut node = spawn_node(
            &self.dir.0,
            &id,
            &self.database_url,
            &self.redis_url,
            &self.prefix,
            extra_env,
        );
        // Keep the first process's log: name the new one apart.
        let moved = self.dir.0.join(format!("{log_name}.log"));
        let _ = std::fs::rename(&node.log, &moved);
        node.log = moved;
        self.wait_ready(&node).await;
        self.nodes[i] = node;
    }

    /// `Ok` once every node listens on its own bus channel and on the
    /// all-nodes one (a restarted Redis knows no subscriptions: each node must
    /// subscribe again); the subscriber counts otherwise.
    pub async fn bus_subscribed(&self) -> Result<(), String> {
        let mut conn = self.redis().await;
        let n = self.nodes.len();
        let mut channels: Vec<String> = (1..=n)
            .map(|i| self.key(&["to", &format!("n{i}")]))
            .collect();
        channels.push(self.key(&["all"]));
        let subscribers: std::collections::HashMap<String, u64> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channels)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let counts: Vec<u64> = channels
            .iter()
            .map(|c| subscribers.get(c).copied().unwrap_or(0))
            .collect();
        let mut want = vec![1; n];
        want.push(n as u64);
        if counts == want {
            Ok(())
        } else {
            Err(format!("subscribers {subscribers:?}"))
        }
    }

    async fn wait_ready(&self, node: &NodeProc) {
        for _ in 0..200 {
            if let Ok(resp) = self.http.get(node.url("/ready")).send().await {
                if resp.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("node {} never became ready:\n{}", node.id, node.log_tail());
    }

    pub fn token(user: &str) -> String {
        juno_server::gateway::auth::Auth::new(&[SECRET.into()], false)
            .mint(user, Some(&user.to_uppercase()), 3600)
            .expect("mint")
    }

    /// A client of node `i` (0-based).
    pub async fn connect(&self, i: usize, user: &str) -> Client {
        connect_at(self.nodes[i].addr, user).await
    }

    pub async fn admin_put_flag(&self, i: usize, name: &str, enabled: bool) -> u16 {
        self.http
            .put(self.nodes[i].url(&format!("/admin/flags/{name}")))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({ "enabled": enabled }))
            .send()
            .await
            .expect("http")
            .status()
            .as_u16()
    }

    pub async fn health(&self, i: usize) -> serde_json::Value {
        self.http
            .get(self.nodes[i].url("/health"))
            .send()
            .await
            .expect("http")
            .json()
            .await
            .expect("json")
    }

    /// One integer from the shared database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let pool = sqlx::PgPool::connect(&self.database_url).await.expect("pg");
        let v = sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pool.close().await;
        v
    }

    /// Polls `sql` until it returns `want`.
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

    /// A connection to the nodes' Redis.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis_url.as_str())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis")
    }

    /// The nodes' Redis key made of `parts` (as the server builds them).
    pub fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for p in parts {
            k.push(':');
            k.push_str(p);
        }
        k
    }

    /// Starts nginx in front of every node with deploy/nginx/junosixteen.conf.
    pub fn nginx(&self) -> Nginx {
        Nginx::start(
            &self.dir.0,
            &self.nodes.iter().map(|n| n.addr).collect::<Vec<_>>(),
        )
    }
}

/// One node on its own (embedded SQLite, no Redis) with `extra_env`, ready.
pub async fn single_node(extra_env: &[(&str, &str)]) -> (NodeProc, TempDir) {
    let dir = scratch_dir("single");
    let db = format!("sqlite://{}/juno.db", dir.0.display());
    let node = spawn_node(&dir.0, "solo", &db, "", "juno", extra_env);
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(resp) = http.get(node.url("/ready")).send().await {
            if resp.status() == 200 {
                return (node, dir);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the node never became ready:\n{}", node.log_tail());
}

fn spawn_node(
    dir: &std::path::Path,
    id: &str,
    database_url: &str,
    redis_url: &str,
    prefix: &str,
    extra_env: &[(&str, &str)],
) -> NodeProc {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let log = dir.join(format!("{id}.log"));
    let out = std::fs::File::create(&log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_juno-server"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("JUNO_LISTEN", addr.to_string())
        .env("DATABASE_URL", database_url)
        .env("REDIS_URL", redis_url)
        .env("JUNO_REDIS_PREFIX", prefix)
        .env("JUNO_NODE_ID", id)
        .env("JUNO_JWT_SECRET", SECRET)
        .env("JUNO_ADMIN_TOKEN", ADMIN)
        .env("JUNO_QUESTIONS", "3")
        .env("JUNO_QUESTION_MS", "3000")
        .env("JUNO_COUNTDOWN_MS", "50")
        .env("JUNO_BETWEEN_MS", "50")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup log"))
        .stderr(out);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn juno-server");
    NodeProc {
        id: id.into(),
        addr,
        proc: Proc { child },
        log,
    }
}

pub async fn connect_at(addr: SocketAddr, user: &str) -> Client {
    try_connect_at(addr, user)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`connect_at`], but a refused connection or upgrade is an `Err` (to retry).
pub async fn try_connect_at(addr: SocketAddr, user: &str) -> Result<Client, String> {
    let url = format!("ws://{addr}/ws?token={}", ClusterProcs::token(user));
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("{user} connecting to {addr}: {e}"))?;
    Ok(Client::from_ws(ws, user).await)
}

/// nginx in front of the nodes, configured by the repo's deploy file.
pub struct Nginx {
    pub addr: SocketAddr,
    _proc: Proc,
    _dir: TempDir,
}

impl Nginx {
    fn start(_cluster_dir: &std::path::Path, backends: &[SocketAddr]) -> Nginx {
        let dir = scratch_dir("nginx");
        let port = free_port();
        let deploy = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/nginx/junosixteen.conf"
        ))
        .expect("deploy config");
        let mut site = String::new();
        let mut servers_written = false;
        for line in deploy.lines() {
            if line.contains("@test-replace") && line.trim_start().starts_with("server ") {
                if !servers_written {
                    for b in backends {
                        site.push_str(&format!("    server {b} max_fails=3 fail_timeout=30s;\n"));
                    }
                    servers_written = true;
                }
            } else if line.contains("@test-replace") && line.trim_start().starts_with("listen ") {
                site.push_str(&format!("    listen 127.0.0.1:{port};\n"));
            } else {
                site.push_str(line);
                site.push('\n');
            }
        }
        let d = dir.0.display();
        let conf = format!(
            "daemon off;\n# One process: killing it leaves no orphaned workers behind.\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{site}\n}}\n"
        );
        let conf_path = dir.0.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (.ci/run installs it)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut listening = false;
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                listening = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            listening,
            "nginx is not listening on {addr} after 5 s; its log:\n{}",
            std::fs::read_to_string(dir.0.join("error.log")).unwrap_or_default()
        );
        Nginx {
            addr,
            _proc: Proc { child },
            _dir: dir,
        }
    }
}

fn nginx_binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// A Redis of the test's own, which it may stop and start again on the same port.
pub struct OwnRedis {
    pub port: u16,
    proc: Option<Proc>,
}

impl OwnRedis {
    pub fn start() -> OwnRedis {
        let mut r = OwnRedis {
            port: free_port(),
            proc: None,
        };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        self.proc.take();
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.proc = Some(Proc { child });
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start");
    }
}
