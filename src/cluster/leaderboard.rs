//! The weekly leaderboard as a Redis sorted set per ISO week, so every node
//! answers the same at once. Points are added as results are written; a week's
//! set that Redis lost (restart, flush, eviction) is rebuilt from the database,
//! which stays the source of truth.

use chrono::{DateTime, Utc};

use super::Cluster;
use crate::store::Store;

/// A week's set outlives the week by a week, for late readers.
const WEEK_TTL_SECS: i64 = 14 * 24 * 3600;
/// Entries kept in a rebuilt set (the board never shows more).
const REBUILD_LIMIT: u32 = 1000;

impl Cluster {
    /// Adds a finished match's points to the week's set (only if the set exists:
    /// a missing set is rebuilt from the database, which already holds these points).
    pub fn add_weekly_points(&self, week: &str, points: &[(String, String, u64)]) {
        let key = self.key(&["lb", week]);
        let names = self.key(&["lbnames"]);
        for (user, name, score) in points {
            let lua = "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('ZINCRBY', KEYS[1], ARGV[1], ARGV[2]) end \
                       redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) return 0";
            self.queue(
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

    /// The week's top `limit` as `(user, name, points)`, rebuilding the set from
    /// `store` when Redis does not have it. `None` if Redis cannot answer.
    pub async fn weekly_top(
        &self,
        store: &Store,
        week: &str,
        range: (DateTime<Utc>, DateTime<Utc>),
        limit: u32,
    ) -> Option<Vec<(String, String, i64)>> {
        let key = self.key(&["lb", week]);
        let exists: bool = self.request(redis::cmd("EXISTS").arg(&key)).await.ok()?;
        if !exists {
            let rows = store
                .points_between(range.0, range.1, REBUILD_LIMIT)
                .await
                .ok()?;
            let mut pipe = redis::pipe();
            pipe.atomic();
            // A placeholder member keeps an empty week's set in existence.
            pipe.cmd("ZADD").arg(&key).arg(0).arg("\u{0}").ignore();
            for (user, name, points) in &rows {
                pipe.cmd("ZADD").arg(&key).arg(points).arg(user).ignore();
                pipe.cmd("HSET")
                    .arg(self.key(&["lbnames"]))
                    .arg(user)
                    .arg(name)
                    .ignore();
            }
            pipe.cmd("EXPIRE").arg(&key).arg(WEEK_TTL_SECS).ignore();
            let mut conn = self.conn.clone();
            pipe.query_async::<()>(&mut conn).await.ok()?;
            tracing::info!(
                week,
                entries = rows.len(),
                "weekly leaderboard rebuilt from the database"
            );
        }
        let top: Vec<(String, f64)> = self
            .request(
                redis::cmd("ZREVRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(i64::from(limit))
                    .arg("WITHSCORES"),
            )
            .await
            .ok()?;
        let top: Vec<(String, f64)> = top
            .into_iter()
            .filter(|(u, _)| u != "\u{0}")
            .take(limit as usize)
            .collect();
        if top.is_empty() {
            return Some(Vec::new());
        }
        let mut hmget = redis::cmd("HMGET");
        hmget.arg(self.key(&["lbnames"]));
        for (user, _) in &top {
            hmget.arg(user);
        }
        let names: Vec<Option<String>> = self.request(&hmget).await.ok()?;
        Some(
            top.into_iter()
                .zip(names)
                .map(|((user, points), name)| (user.clone(), name.unwrap_or(user), points as i64))
                .collect(),
        )
    }
}
