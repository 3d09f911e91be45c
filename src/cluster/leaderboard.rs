//! The weekly leaderboard as a Redis sorted set per ISO week, so every node
//! answers the same at once. Points are added as results are written; a week's
//! set that Redis lost (restart, flush, eviction) is refilled by the caller from
//! the database, which stays the source of truth. Alone, a node has no shared
//! board and reads the database.

use std::sync::Arc;

use super::link::Link;

/// A week's set outlives the week by a week, for late readers.
const WEEK_TTL_SECS: i64 = 14 * 24 * 3600;

/// `(user, name, points)`, best first.
pub type BoardRows = Vec<(String, String, i64)>;

/// What the shared board knows of a week.
pub enum Weekly {
    /// The week's top entries.
    Rows(BoardRows),
    /// Redis has no set for the week: refill it with [`Board::fill_week`].
    Missing,
    /// No shared board (one node, or Redis away): read the database.
    Unavailable,
}

/// The shared weekly board, when there is one.
pub struct Board {
    redis: Option<Arc<Link>>,
}

impl Board {
    pub(crate) fn new(redis: Option<Arc<Link>>) -> Board {
        Board { redis }
    }

    /// Adds a finished match's points to the week's set (only if the set exists:
    /// a missing set is refilled from the database, which already holds these points).
    pub fn add_weekly_points(&self, week: &str, points: &[(String, String, u64)]) {
        let Some(redis) = &self.redis else { return };
        let key = redis.key(&["lb", week]);
        let names = redis.key(&["lbnames"]);
        for (user, name, score) in points {
            let lua = "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('ZINCRBY', KEYS[1], ARGV[1], ARGV[2]) end \
                       redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) return 0";
            redis.queue(
                redis::cmd("EVAL")
                    .arg(lua)
                    .arg(2)
                    .arg(&key)
                    .arg(&names)
                    .arg(*score)
                    .arg(user)
                    .arg(name)
                    .clone(),
            );
        }
    }

    /// The week's top `limit`.
    pub async fn weekly_top(&self, week: &str, limit: u32) -> Weekly {
        let Some(redis) = &self.redis else {
            return Weekly::Unavailable;
        };
        match top(redis, week, limit).await {
            Ok(Some(rows)) => Weekly::Rows(rows),
            Ok(None) => Weekly::Missing,
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), "weekly board from Redis");
                Weekly::Unavailable
            }
        }
    }

    /// Refills a week's set Redis lost with `rows` from the database.
    pub async fn fill_week(&self, week: &str, rows: &BoardRows) -> anyhow::Result<()> {
        let Some(redis) = &self.redis else {
            return Ok(());
        };
        let key = redis.key(&["lb", week]);
        let mut pipe = redis::pipe();
        pipe.atomic();
        // A placeholder member keeps an empty week's set in existence.
        pipe.cmd("ZADD").arg(&key).arg(0).arg("\u{0}").ignore();
        for (user, name, points) in rows {
            pipe.cmd("ZADD").arg(&key).arg(points).arg(user).ignore();
            pipe.cmd("HSET")
                .arg(redis.key(&["lbnames"]))
                .arg(user)
                .arg(name)
                .ignore();
        }
        pipe.cmd("EXPIRE").arg(&key).arg(WEEK_TTL_SECS).ignore();
        redis.request_pipe::<()>(&pipe).await?;
        tracing::info!(
            week,
            entries = rows.len(),
            "weekly leaderboard rebuilt from the database"
        );
        Ok(())
    }
}

/// The week's top `limit` from Redis; `None` if the set does not exist.
async fn top(redis: &Link, week: &str, limit: u32) -> anyhow::Result<Option<BoardRows>> {
    let key = redis.key(&["lb", week]);
    let exists: bool = redis.request(redis::cmd("EXISTS").arg(&key)).await?;
    if !exists {
        return Ok(None);
    }
    let top: Vec<(String, f64)> = redis
        .request(
            redis::cmd("ZREVRANGE")
                .arg(&key)
                .arg(0)
                .arg(i64::from(limit))
                .arg("WITHSCORES"),
        )
        .await?;
    let top: Vec<(String, f64)> = top
        .into_iter()
        .filter(|(u, _)| u != "\u{0}")
        .take(limit as usize)
        .collect();
    if top.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let mut hmget = redis::cmd("HMGET");
    hmget.arg(redis.key(&["lbnames"]));
    for (user, _) in &top {
        hmget.arg(user);
    }
    let names: Vec<Option<String>> = redis.request(&hmget).await?;
    Ok(Some(
        top.into_iter()
            .zip(names)
            .map(|((user, points), name)| (user.clone(), name.unwrap_or(user), points as i64))
            .collect(),
    ))
}
