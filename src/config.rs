//! Node configuration: the environment variables of WIRE.md §1, optionally
//! layered over a `KEY=VALUE` file (`--config FILE` or `JUNO_CONFIG`); the
//! environment wins over the file, the file over the defaults.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use ipnet::IpNet;
use juno_rooms::Pace;

/// Shortest accepted JWT secret: HS256 keys shorter than its 32-byte output are
/// guessable offline from one captured token.
pub const MIN_SECRET_BYTES: usize = 32;
/// Shortest accepted admin token.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 32;

/// Everything a node is started with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address for HTTP and WebSocket.
    pub listen: SocketAddr,
    /// `postgres://…` or `sqlite://PATH`.
    pub database_url: String,
    /// Set = cluster mode: Redis holds the shared directories and carries the bus.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel (`JUNO_REDIS_PREFIX`), so several
    /// clusters can share one Redis.
    pub redis_prefix: String,
    /// This node's name, shown in `welcome.node` and `/health`.
    pub node_id: String,
    /// HS256 secrets: the first signs, all verify. Empty = dev mode.
    pub jwt_secrets: Vec<String>,
    /// Bearer token for `/admin/*`; `None` disables the admin API.
    pub admin_token: Option<String>,
    /// Adaptive difficulty policy service (`JUNO_POLICY_URL`), asked before the YAML policies.
    pub policy_url: Option<String>,
    /// Per-connection frame budget.
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    /// Largest accepted client frame; larger ones close the connection with 1009.
    pub max_frame_bytes: usize,
    /// Longest a drain waits for running rooms.
    pub drain_timeout: Duration,
    /// How long a dropped player's seat is kept.
    pub resume: Duration,
    /// Default match pace.
    pub pace: Pace,
    /// How long a client may keep flooding before it is closed with 1008 (`JUNO_FLOOD_CLOSE_SECS`).
    pub flood_close: Duration,
    /// Frames a connection may have waiting to be written before it counts as stuck
    /// and is disconnected (`JUNO_OUTGOING_QUEUE`).
    pub outgoing_queue: usize,
    /// WebSocket ping interval; a peer silent for three intervals is dropped (`JUNO_KEEPALIVE_SECS`).
    pub keepalive: Duration,
    /// How long a finished room still answers `room_state` before `not_found` (`JUNO_FINISHED_ROOM_SECS`).
    pub finished_linger: Duration,
    /// Events that `POST /admin/events/{id}/activate` knows (`JUNO_EVENTS_FILE`).
    pub events_file: PathBuf,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` name the client
    /// (`JUNO_TRUSTED_PROXIES`); from anyone else those headers are ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// A connection that has not sent a complete request by then is closed
    /// (`JUNO_HEADER_TIMEOUT_SECS`).
    pub header_timeout: Duration,
    /// Open connections per client address; beyond it, 429 (`JUNO_MAX_CONNS_PER_IP`).
    pub max_conns_per_ip: usize,
    /// How long a node that stopped beating still counts as alive; after it,
    /// other nodes adopt its rooms (`JUNO_NODE_TTL_MS`, WIRE.md §5).
    pub node_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://juno.db".into(),
            redis_url: None,
            redis_prefix: "juno".into(),
            node_id: default_node_id(),
            jwt_secrets: Vec::new(),
            admin_token: None,
            policy_url: None,
            rate_per_sec: 10,
            rate_burst: 20,
            max_frame_bytes: juno_protocol::limits::DEFAULT_MAX_FRAME_BYTES,
            drain_timeout: Duration::from_secs(600),
            resume: Duration::from_secs(20),
            pace: Pace::default(),
            flood_close: Duration::from_secs(10),
            outgoing_queue: 256,
            keepalive: Duration::from_secs(30),
            finished_linger: Duration::from_secs(60),
            events_file: PathBuf::from("events.json"),
            trusted_proxies: Vec::new(),
            header_timeout: Duration::from_secs(10),
            max_conns_per_ip: 500,
            node_ttl: Duration::from_millis(3000),
        }
    }
}

impl Config {
    /// Reads the environment over the optional file over the defaults.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("JUNO_CONFIG").map(PathBuf::from));
        let file_values = match file {
            Some(path) => parse_file(&path)?,
            None => HashMap::new(),
        };
        Config::from_lookup(|key| {
            std::env::var(key)
                .ok()
                .or_else(|| file_values.get(key).cloned())
        })
    }

    /// Builds a config from any key lookup (the environment, a file, a test's map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let mut c = Config::default();
        let num = |key: &str| -> anyhow::Result<Option<u64>> {
            get(key)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .with_context(|| format!("{key} must be a whole number, got '{v}'"))
                })
                .transpose()
        };
        if let Some(v) = get("JUNO_LISTEN") {
            c.listen = v
                .parse()
                .with_context(|| format!("JUNO_LISTEN must be address:port, got '{v}'"))?;
        }
        if let Some(v) = get("DATABASE_URL") {
            c.database_url = v;
        }
        c.redis_url = get("REDIS_URL").filter(|v| !v.is_empty());
        if let Some(v) = get("JUNO_REDIS_PREFIX").filter(|v| !v.is_empty()) {
            c.redis_prefix = v;
        }
        if let Some(v) = get("JUNO_NODE_ID").filter(|v| !v.is_empty()) {
            c.node_id = v;
        }
        if let Some(v) = get("JUNO_JWT_SECRET") {
            c.jwt_secrets = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        c.admin_token = get("JUNO_ADMIN_TOKEN").filter(|v| !v.is_empty());
        c.policy_url = get("JUNO_POLICY_URL").filter(|v| !v.is_empty());
        if let Some(v) = num("JUNO_RATE_PER_SEC")? {
            c.rate_per_sec = u32::try_from(v).context("JUNO_RATE_PER_SEC too large")?;
        }
        if let Some(v) = num("JUNO_RATE_BURST")? {
            c.rate_burst = u32::try_from(v).context("JUNO_RATE_BURST too large")?;
        }
        if c.rate_per_sec == 0 || c.rate_burst == 0 {
            bail!("JUNO_RATE_PER_SEC and JUNO_RATE_BURST must be at least 1");
        }
        if let Some(v) = num("JUNO_MAX_FRAME_BYTES")? {
            c.max_frame_bytes = usize::try_from(v).context("JUNO_MAX_FRAME_BYTES too large")?;
        }
        if c.max_frame_bytes < 64 {
            bail!("JUNO_MAX_FRAME_BYTES must be at least 64");
        }
        if let Some(v) = num("JUNO_DRAIN_TIMEOUT_SECS")? {
            c.drain_timeout = Duration::from_secs(v);
        }
        if let Some(v) = num("JUNO_RESUME_SECS")? {
            c.resume = Duration::from_secs(v);
        }
        if let Some(v) = num("JUNO_QUESTIONS")? {
            c.pace.questions = u32::try_from(v)
                .ok()
                .filter(|q| (1..=juno_protocol::limits::MAX_QUESTIONS).contains(q))
                .context("JUNO_QUESTIONS must be 1-50")?;
        }
        if let Some(v) = num("JUNO_QUESTION_MS")? {
            if v < juno_protocol::limits::MIN_QUESTION_MS {
                bail!("JUNO_QUESTION_MS must be at least 100");
            }
            c.pace.question_ms = v;
        }
        if let Some(v) = num("JUNO_COUNTDOWN_MS")? {
            c.pace.countdown_ms = v;
        }
        if let Some(v) = num("JUNO_BETWEEN_MS")? {
            c.pace.between_ms = v;
        }
        if let Some(v) = num("JUNO_FLOOD_CLOSE_SECS")? {
            c.flood_close = Duration::from_secs(v);
        }
        if let Some(v) = num("JUNO_OUTGOING_QUEUE")? {
            c.outgoing_queue = usize::try_from(v).unwrap_or(usize::MAX).max(1);
        }
        if let Some(v) = num("JUNO_KEEPALIVE_SECS")? {
            c.keepalive = Duration::from_secs(v.max(1));
        }
        if let Some(v) = get("JUNO_EVENTS_FILE").filter(|v| !v.is_empty()) {
            c.events_file = PathBuf::from(v);
        }
        if let Some(v) = num("JUNO_NODE_TTL_MS")? {
            if v < 300 {
                bail!("JUNO_NODE_TTL_MS must be at least 300");
            }
            c.node_ttl = Duration::from_millis(v);
        }
        if let Some(v) = num("JUNO_FINISHED_ROOM_SECS")? {
            c.finished_linger = Duration::from_secs(v);
        }
        if let Some(v) = get("JUNO_TRUSTED_PROXIES") {
            c.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(parse_net)
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(v) = num("JUNO_HEADER_TIMEOUT_SECS")? {
            c.header_timeout = Duration::from_secs(v.max(1));
        }
        if let Some(v) = num("JUNO_MAX_CONNS_PER_IP")? {
            c.max_conns_per_ip = usize::try_from(v).unwrap_or(usize::MAX).max(1);
        }
        c.validate()?;
        Ok(c)
    }

    /// Refuses settings a node must not start with, naming the variable.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(short) = self.jwt_secrets.iter().find(|s| s.len() < MIN_SECRET_BYTES) {
            bail!(
                "JUNO_JWT_SECRET: every secret must be at least {MIN_SECRET_BYTES} bytes \
                 (one is {} bytes); generate one with `openssl rand -hex 32`",
                short.len()
            );
        }
        if let Some(token) = &self.admin_token {
            if token.len() < MIN_ADMIN_TOKEN_BYTES {
                bail!(
                    "JUNO_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_BYTES} bytes \
                     (it is {}); generate one with `openssl rand -hex 32`",
                    token.len()
                );
            }
        }
        Ok(())
    }

    /// Whether `peer` may name the client in forwarding headers.
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// Whether the node runs without configured secrets (tokens from `POST /auth/dev-token`).
    pub fn dev_mode(&self) -> bool {
        self.jwt_secrets.is_empty()
    }

    /// The embedded database's file, if the node uses SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self
            .database_url
            .strip_prefix("sqlite://")
            .or_else(|| self.database_url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        Some(PathBuf::from(path))
    }
}

/// An address or a CIDR of `JUNO_TRUSTED_PROXIES`.
fn parse_net(text: &str) -> anyhow::Result<IpNet> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .with_context(|| {
            format!(
                "JUNO_TRUSTED_PROXIES: '{text}' is neither an address nor a CIDR like 10.0.0.0/8"
            )
        })
}

fn parse_file(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let mut values = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!("{}:{}: expected KEY=VALUE", path.display(), n + 1);
        };
        let value = value.trim().trim_matches('"');
        values.insert(key.trim().to_string(), value.to_string());
    }
    Ok(values)
}

fn default_node_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "juno".into());
    format!("{host}-{:04x}", rand::random::<u16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_values_override_defaults() {
        let c = Config::from_lookup(|k| match k {
            "JUNO_LISTEN" => Some("0.0.0.0:9000".into()),
            "JUNO_JWT_SECRET" => Some(format!("{}, {}", "a".repeat(32), "b".repeat(40))),
            "JUNO_QUESTION_MS" => Some("500".into()),
            _ => None,
        })
        .expect("valid config");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.jwt_secrets, vec!["a".repeat(32), "b".repeat(40)]);
        assert_eq!(c.pace.question_ms, 500);
        assert_eq!(c.rate_per_sec, 10);
        assert!(!c.dev_mode());
    }

    #[test]
    fn bad_values_are_refused_with_the_key_named() {
        let err = Config::from_lookup(|k| (k == "JUNO_RATE_PER_SEC").then(|| "fast".into()))
            .expect_err("a non-number is refused");
        assert!(err.to_string().contains("JUNO_RATE_PER_SEC"));
    }

    #[test]
    fn short_secrets_and_admin_tokens_are_refused() {
        let err = Config::from_lookup(|k| (k == "JUNO_JWT_SECRET").then(|| "x".into()))
            .expect_err("a 1-byte secret is refused");
        assert!(err.to_string().contains("JUNO_JWT_SECRET"), "{err}");
        let long = "k".repeat(32);
        let err = Config::from_lookup(|k| match k {
            "JUNO_JWT_SECRET" => Some(format!("{long},short")),
            _ => None,
        })
        .expect_err("every secret counts, not just the first");
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        let err = Config::from_lookup(|k| (k == "JUNO_ADMIN_TOKEN").then(|| "admin".into()))
            .expect_err("a short admin token is refused");
        assert!(err.to_string().contains("JUNO_ADMIN_TOKEN"), "{err}");
    }

    #[test]
    fn trusted_proxies_take_addresses_and_cidrs() {
        let c = Config::from_lookup(|k| {
            (k == "JUNO_TRUSTED_PROXIES").then(|| "127.0.0.1, 10.0.0.0/8,::1".into())
        })
        .expect("valid");
        assert!(c.is_trusted_proxy("127.0.0.1".parse().expect("ip")));
        assert!(c.is_trusted_proxy("10.1.2.3".parse().expect("ip")));
        assert!(c.is_trusted_proxy("::ffff:10.1.2.3".parse().expect("ip")));
        assert!(c.is_trusted_proxy("::1".parse().expect("ip")));
        assert!(!c.is_trusted_proxy("192.168.0.1".parse().expect("ip")));
        assert!(!Config::default().is_trusted_proxy("127.0.0.1".parse().expect("ip")));
        let err = Config::from_lookup(|k| (k == "JUNO_TRUSTED_PROXIES").then(|| "nope".into()))
            .expect_err("garbage is refused");
        assert!(err.to_string().contains("JUNO_TRUSTED_PROXIES"), "{err}");
    }

    #[test]
    fn sqlite_path_is_found() {
        let c = Config::default();
        assert_eq!(c.sqlite_path(), Some(PathBuf::from("juno.db")));
    }
}
