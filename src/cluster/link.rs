//! This node's connection to Redis: requests with a deadline, one ordered writer
//! task that pipelines writes nobody waits for, and the health flag every Redis
//! backend checks first. While Redis does not answer, requests fail at once
//! (callers fall back to what this node knows itself) and queued writes are
//! dropped, so an outage never slows local play; the heartbeat notices when Redis
//! is back and asks for everything to be registered again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::sync::mpsc;

/// Longest wait for Redis on a request path before giving up.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);

/// One queued write: a PUBLISH or a command whose answer nobody waits for.
enum Write {
    Publish(String, Vec<u8>),
    Cmd(redis::Cmd),
}

/// The shared Redis connection of one node.
pub struct Link {
    pub(crate) node_id: String,
    pub(crate) prefix: String,
    pub(crate) client: redis::Client,
    pub(crate) conn: ConnectionManager,
    writes: mpsc::UnboundedSender<Write>,
    /// Whether Redis answered lately.
    healthy: Arc<AtomicBool>,
    /// Set when Redis came back empty (restart, flush): re-register everything.
    resync: AtomicBool,
}

impl Link {
    /// Connects to Redis. Fails only if the URL is malformed or Redis does not
    /// answer at start; later outages are survived.
    pub async fn connect(url: &str, node_id: &str, prefix: &str) -> anyhow::Result<Arc<Link>> {
        let client =
            redis::Client::open(url).with_context(|| format!("parsing REDIS_URL {url}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(REQUEST_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_connection_manager_with_config(config),
        )
        .await
        .context("Redis did not answer within 5 s")?
        .context("connecting to Redis")?;
        let (writes, queue) = mpsc::unbounded_channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let link = Arc::new(Link {
            node_id: node_id.to_string(),
            prefix: prefix.to_string(),
            client,
            conn,
            writes,
            healthy: healthy.clone(),
            resync: AtomicBool::new(true),
        });
        tokio::spawn(write_loop(link.conn.clone(), queue, healthy));
        Ok(link)
    }

    /// `prefix:part:part…`
    pub(crate) fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for p in parts {
            k.push(':');
            k.push_str(p);
        }
        k
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    pub(crate) fn set_healthy(&self, ok: bool) {
        self.healthy.store(ok, Ordering::Release);
    }

    /// Asks for every registration to be written again at the next beat.
    pub(crate) fn want_resync(&self) {
        self.resync.store(true, Ordering::Release);
    }

    /// Whether a resync was asked for (and clears the request).
    pub(crate) fn take_resync(&self) -> bool {
        self.resync.swap(false, Ordering::AcqRel)
    }

    /// Whether Redis answers now.
    pub async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        let ok = tokio::time::timeout(
            REQUEST_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
        self.set_healthy(ok);
        ok
    }

    /// Publishes `payload` on `channel`, in order with every other write of this node.
    pub(crate) fn publish(&self, channel: String, payload: Vec<u8>) {
        let _ = self.writes.send(Write::Publish(channel, payload));
    }

    /// Queues a command whose answer nobody waits for.
    pub(crate) fn queue(&self, cmd: redis::Cmd) {
        let _ = self.writes.send(Write::Cmd(cmd));
    }

    /// One command with an answer, failing fast while Redis is away.
    pub(crate) async fn request<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> anyhow::Result<T> {
        anyhow::ensure!(self.is_healthy(), "Redis is unreachable");
        let mut conn = self.conn.clone();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, cmd.query_async::<T>(&mut conn))
            .await
            .context("Redis did not answer in time")?;
        answer.map_err(|e| self.failed(e, "Redis request failed"))
    }

    /// A pipeline with an answer, failing fast while Redis is away.
    pub(crate) async fn request_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> anyhow::Result<T> {
        anyhow::ensure!(self.is_healthy(), "Redis is unreachable");
        let mut conn = self.conn.clone();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, pipe.query_async::<T>(&mut conn))
            .await
            .context("Redis did not answer in time")?;
        answer.map_err(|e| self.failed(e, "Redis pipeline failed"))
    }

    /// Runs a Lua script with `keys` and `args`, failing fast while Redis is away.
    pub(crate) async fn run_script<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> anyhow::Result<T> {
        anyhow::ensure!(self.is_healthy(), "Redis is unreachable");
        let mut conn = self.conn.clone();
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(*k);
        }
        for a in args {
            invocation.arg(*a);
        }
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, invocation.invoke_async::<T>(&mut conn))
            .await
            .context("Redis did not answer in time")?;
        answer.map_err(|e| self.failed(e, "Redis script failed"))
    }

    fn failed(&self, e: redis::RedisError, what: &'static str) -> anyhow::Error {
        self.set_healthy(false);
        anyhow::Error::new(e).context(what)
    }
}

/// `DEL key` if it holds `value` (`prefix_match`: if it starts with `value|`).
pub(crate) fn compare_and_delete(key: &str, value: &str, prefix_match: bool) -> redis::Cmd {
    let lua = if prefix_match {
        "local v = redis.call('GET', KEYS[1]) if v and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then return redis.call('DEL', KEYS[1]) end return 0"
    } else {
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
    };
    redis::cmd("EVAL")
        .arg(lua)
        .arg(1)
        .arg(key)
        .arg(value)
        .clone()
}

/// Executes queued writes in order, pipelining whatever has piled up.
async fn write_loop(
    mut conn: ConnectionManager,
    mut queue: mpsc::UnboundedReceiver<Write>,
    healthy: Arc<AtomicBool>,
) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, 512).await > 0 {
        if !healthy.load(Ordering::Acquire) {
            tracing::debug!(
                dropped = batch.len(),
                "Redis unreachable: cross-node writes dropped"
            );
            batch.clear();
            continue;
        }
        let mut pipe = redis::pipe();
        for write in batch.drain(..) {
            match write {
                Write::Publish(channel, payload) => {
                    pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
                }
                Write::Cmd(cmd) => {
                    pipe.add_command(cmd).ignore();
                }
            }
        }
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(error = %e, "Redis write failed; cross-node messages were lost");
            healthy.store(false, Ordering::Release);
        }
    }
}
