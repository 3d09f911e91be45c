//! The SQL behind issue 5: ratings, recent success (for adaptive difficulty),
//! the SQL leaderboards (all-time, clan weekly, a player's own weekly rank), clans,
//! and what the operator commands (`juno-server admin …`) read and write.
//!
//! Every query is written once for both backends (sqlx binds `$N` on both) and run
//! through [`with_pool!`]; times are always bound from Rust, never taken from the
//! database clock, so SQLite's text timestamps compare in one format and tests can
//! put "now" wherever they like.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::{QueryBuilder, Row};

use super::{with_pool, Store};
use crate::model::Rating;

/// Users per `IN (…)` list, well under either backend's bind limit.
const USERS_PER_QUERY: usize = 500;
/// Rows per DELETE batch in cleanup: short locks, and progress to print.
const CLEANUP_BATCH: i64 = 10_000;
/// How many of a player's latest finished matches make their recent success rate.
pub const RECENT_MATCHES: i64 = 20;

/// One line of an individual leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardEntry {
    pub rank: u32,
    pub user: String,
    pub name: String,
    pub points: i64,
}

/// One line of a clan leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClanEntry {
    pub rank: u32,
    pub clan: String,
    pub name: String,
    pub points: i64,
    /// Members who scored in the period.
    pub players: i64,
}

/// A player's own place on the weekly board with the players around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AroundMe {
    /// `None` when the player has no points this week.
    pub rank: Option<u32>,
    pub points: i64,
    /// The player's row with up to `around` rows above and below, by rank.
    pub entries: Vec<BoardEntry>,
}

/// A player's latest finished matches (at most [`RECENT_MATCHES`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentPlay {
    pub matches: u32,
    pub correct: u32,
    pub asked: u32,
}

impl RecentPlay {
    /// Share of the questions asked that were answered right; `None` without history.
    pub fn success_rate(&self) -> Option<f64> {
        (self.asked > 0).then(|| f64::from(self.correct) / f64::from(self.asked))
    }
}

/// One paid (or, on a re-run, already paid) weekly reward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeeklyAward {
    pub user: String,
    pub rank: u32,
    pub points: i64,
    pub amount: i64,
    /// `true` when this run paid it; `false` when an earlier run had.
    pub paid_now: bool,
}

/// What one cleanup deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CleanupCounts {
    pub telemetry_events: u64,
    pub notifications: u64,
    pub reward_items: u64,
}

/// A clan's recomputed numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClanStats {
    pub clan: String,
    pub name: String,
    pub members: i64,
    pub points: i64,
    pub weekly_points: i64,
}

/// Finished missions per world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorldCount {
    pub world: String,
    pub count: i64,
}

/// The monthly report's numbers (the guide's generate-report.ts, plus the rest of
/// the list its "Output" comment promises that this schema can answer).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportNumbers {
    pub total_users: i64,
    pub mau: i64,
    pub missions_completed: i64,
    /// The world with the most missions finished in the period (the guide's `topWorld`).
    pub top_world: Option<WorldCount>,
    /// Every world with missions finished in the period, most first.
    pub top_worlds: Vec<WorldCount>,
    /// Average time from a mission's start to its finish (a match's length), minutes.
    pub average_mission_minutes: Option<f64>,
    /// Users who joined in the period.
    pub new_users: i64,
    /// Of those, how many came back a day / a week after joining.
    pub retention_day1: i64,
    pub retention_day7: i64,
}

fn rank(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

impl Store {
    // ----- ratings -------------------------------------------------------------------

    /// Glicko-2 state of each user; users never seen get [`Rating::default`].
    pub async fn ratings<S: AsRef<str>>(
        &self,
        users: &[S],
    ) -> anyhow::Result<HashMap<String, Rating>> {
        let mut out: HashMap<String, Rating> = users
            .iter()
            .map(|u| (u.as_ref().to_string(), Rating::default()))
            .collect();
        for chunk in users.chunks(USERS_PER_QUERY) {
            let rows: Vec<(String, Rating)> = with_pool!(self, pool => {
                let mut q = QueryBuilder::new(
                    "SELECT user_id, rating, rating_rd, rating_volatility FROM users WHERE user_id IN (");
                let mut list = q.separated(", ");
                for u in chunk {
                    list.push_bind(u.as_ref());
                }
                q.push(")");
                q.build().fetch_all(pool).await.context("reading ratings")?
                    .iter().map(|r| Ok((r.try_get("user_id")?, Rating {
                        rating: r.try_get("rating")?,
                        rd: r.try_get("rating_rd")?,
                        volatility: r.try_get("rating_volatility")?,
                    }))).collect::<Result<_, sqlx::Error>>().context("decoding ratings")?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// Stores new ratings in one transaction (creating unknown users).
    pub async fn save_ratings<S: AsRef<str>>(&self, ratings: &[(S, Rating)]) -> anyhow::Result<()> {
        let sql = "INSERT INTO users (user_id, rating, rating_rd, rating_volatility, created_at) VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (user_id) DO UPDATE SET rating = excluded.rating, rating_rd = excluded.rating_rd,
                     rating_volatility = excluded.rating_volatility";
        let now = Utc::now();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (user, r) in ratings {
                sqlx::query(sql).bind(user.as_ref()).bind(r.rating).bind(r.rd).bind(r.volatility).bind(now)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await
        })
        .context("writing ratings")
    }

    /// Each user's last [`RECENT_MATCHES`] finished matches, in one query; users
    /// without any are absent.
    pub async fn recent_play<S: AsRef<str>>(
        &self,
        users: &[S],
    ) -> anyhow::Result<HashMap<String, RecentPlay>> {
        let mut out = HashMap::new();
        for chunk in users.chunks(USERS_PER_QUERY) {
            let rows: Vec<(String, RecentPlay)> = with_pool!(self, pool => {
                let mut q = QueryBuilder::new(
                    "SELECT user_id, COUNT(*) AS matches, CAST(SUM(correct) AS BIGINT) AS correct,
                       CAST(SUM(questions) AS BIGINT) AS asked
                     FROM (SELECT user_id, correct, questions,
                             ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY finished_at DESC, id DESC) AS n
                           FROM mission_progress WHERE finished AND user_id IN (");
                let mut list = q.separated(", ");
                for u in chunk {
                    list.push_bind(u.as_ref());
                }
                q.push(")) recent WHERE n <= ");
                q.push_bind(RECENT_MATCHES);
                q.push(" GROUP BY user_id");
                q.build().fetch_all(pool).await.context("reading recent play")?
                    .iter().map(|r| {
                        let n = |c: &str| r.try_get::<i64, _>(c).map(|v| u32::try_from(v.max(0)).unwrap_or(u32::MAX));
                        Ok((r.try_get("user_id")?, RecentPlay { matches: n("matches")?, correct: n("correct")?, asked: n("asked")? }))
                    }).collect::<Result<_, sqlx::Error>>().context("decoding recent play")?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    // ----- leaderboards (SQL side; Redis sorted sets mirror these in cluster mode) ---

    /// All-time individual board by `users.total_points` (players with points only).
    pub async fn alltime_board(&self, limit: u32) -> anyhow::Result<Vec<BoardEntry>> {
        let sql =
            "SELECT user_id, COALESCE(NULLIF(name, ''), user_id) AS name, total_points FROM users
                   WHERE total_points > 0 ORDER BY total_points DESC, user_id LIMIT $1";
        let rows = with_pool!(self, pool => sqlx::query(sql).bind(i64::from(limit)).fetch_all(pool).await.map(|rows| {
            rows.iter().enumerate().map(|(i, r)| Ok(BoardEntry {
                rank: rank(i), user: r.try_get("user_id")?, name: r.try_get("name")?, points: r.try_get("total_points")?,
            })).collect::<Result<Vec<_>, sqlx::Error>>()
        }))
        .context("reading all-time board")?;
        rows.context("decoding all-time board")
    }

    /// Clans by their members' points in [start, end), each member counting from
    /// the moment they joined.
    pub async fn clan_board(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<ClanEntry>> {
        let sql = "SELECT c.id, c.name, CAST(SUM(mp.score) AS BIGINT) AS points, COUNT(DISTINCT cm.user_id) AS players
                   FROM clans c
                   JOIN clan_members cm ON cm.clan_id = c.id
                   JOIN mission_progress mp ON mp.user_id = cm.user_id
                   WHERE mp.finished_at >= $1 AND mp.finished_at < $2 AND mp.finished_at >= cm.joined_at
                   GROUP BY c.id, c.name ORDER BY points DESC, c.id LIMIT $3";
        let rows = with_pool!(self, pool => sqlx::query(sql).bind(start).bind(end).bind(i64::from(limit)).fetch_all(pool).await.map(|rows| {
            rows.iter().enumerate().map(|(i, r)| Ok(ClanEntry {
                rank: rank(i), clan: r.try_get("id")?, name: r.try_get("name")?,
                points: r.try_get("points")?, players: r.try_get("players")?,
            })).collect::<Result<Vec<_>, sqlx::Error>>()
        }))
        .context("reading clan board")?;
        rows.context("decoding clan board")
    }

    /// `user`'s rank on the board of points earned in [start, end) with `around`
    /// players above and below. Ranks match [`Store::points_between`]'s order
    /// (points, then user id), so this agrees with the weekly board.
    pub async fn board_around(
        &self,
        user: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        around: u32,
    ) -> anyhow::Result<AroundMe> {
        let sql = "WITH totals AS (
                     SELECT user_id, CAST(SUM(score) AS BIGINT) AS points FROM mission_progress
                     WHERE finished_at >= $1 AND finished_at < $2 GROUP BY user_id),
                   ranked AS (
                     SELECT user_id, points, ROW_NUMBER() OVER (ORDER BY points DESC, user_id) AS rank FROM totals),
                   me AS (SELECT rank FROM ranked WHERE user_id = $3)
                   SELECT r.rank, r.user_id, COALESCE(NULLIF(u.name, ''), r.user_id) AS name, r.points
                   FROM ranked r JOIN me ON r.rank BETWEEN me.rank - $4 AND me.rank + $4
                   LEFT JOIN users u ON u.user_id = r.user_id
                   ORDER BY r.rank";
        let rows = with_pool!(self, pool => sqlx::query(sql).bind(start).bind(end).bind(user).bind(i64::from(around))
            .fetch_all(pool).await.map(|rows| {
                rows.iter().map(|r| Ok(BoardEntry {
                    rank: u32::try_from(r.try_get::<i64, _>("rank")?).unwrap_or(u32::MAX),
                    user: r.try_get("user_id")?, name: r.try_get("name")?, points: r.try_get("points")?,
                })).collect::<Result<Vec<_>, sqlx::Error>>()
            }))
        .context("reading weekly rank")?
        .context("decoding weekly rank")?;
        let me = rows.iter().find(|e| e.user == user);
        Ok(AroundMe {
            rank: me.map(|e| e.rank),
            points: me.map_or(0, |e| e.points),
            entries: rows,
        })
    }

    // ----- clans -----------------------------------------------------------------------

    /// Creates a clan; `false` if the id is taken (the name is then left alone).
    pub async fn create_clan(&self, id: &str, name: &str) -> anyhow::Result<bool> {
        let sql = "INSERT INTO clans (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING";
        let n = with_pool!(self, pool => sqlx::query(sql).bind(id).bind(name).bind(Utc::now()).execute(pool).await.map(|r| r.rows_affected()))
            .context("creating clan")?;
        Ok(n == 1)
    }

    /// Puts `user` in `clan` from `at` on (leaving any other clan); `false` if no such clan.
    pub async fn join_clan(
        &self,
        user: &str,
        clan: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let sql = "INSERT INTO clan_members (user_id, clan_id, joined_at)
                   SELECT $1, id, $3 FROM clans WHERE id = $2
                   ON CONFLICT (user_id) DO UPDATE SET clan_id = excluded.clan_id, joined_at = excluded.joined_at";
        let n = with_pool!(self, pool => sqlx::query(sql).bind(user).bind(clan).bind(at).execute(pool).await.map(|r| r.rows_affected()))
            .context("joining clan")?;
        Ok(n == 1)
    }

    /// Takes `user` out of their clan; `false` if they had none.
    pub async fn leave_clan(&self, user: &str) -> anyhow::Result<bool> {
        let sql = "DELETE FROM clan_members WHERE user_id = $1";
        let n = with_pool!(self, pool => sqlx::query(sql).bind(user).execute(pool).await.map(|r| r.rows_affected()))
            .context("leaving clan")?;
        Ok(n == 1)
    }

    /// Every clan id and name, by id.
    pub async fn clans(&self) -> anyhow::Result<Vec<(String, String)>> {
        let sql = "SELECT id, name FROM clans ORDER BY id";
        with_pool!(self, pool => sqlx::query_as::<_, (String, String)>(sql).fetch_all(pool).await)
            .context("listing clans")
    }

    /// Recomputes one clan's cached numbers from clan_members and mission_progress:
    /// all-time points since each member joined, points in [week_start, week_end), members.
    pub async fn refresh_clan_stats(
        &self,
        clan: &str,
        week: &str,
        week_start: DateTime<Utc>,
        week_end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<ClanStats>> {
        let update = "UPDATE clans SET
              members = (SELECT COUNT(*) FROM clan_members cm WHERE cm.clan_id = clans.id),
              points = CAST(COALESCE((SELECT SUM(mp.score) FROM clan_members cm
                  JOIN mission_progress mp ON mp.user_id = cm.user_id AND mp.finished_at >= cm.joined_at
                  WHERE cm.clan_id = clans.id), 0) AS BIGINT),
              weekly_points = CAST(COALESCE((SELECT SUM(mp.score) FROM clan_members cm
                  JOIN mission_progress mp ON mp.user_id = cm.user_id AND mp.finished_at >= cm.joined_at
                  WHERE cm.clan_id = clans.id AND mp.finished_at >= $1 AND mp.finished_at < $2), 0) AS BIGINT),
              stats_week = $3, stats_updated_at = $4
            WHERE id = $5";
        let read = "SELECT id, name, CAST(members AS BIGINT) AS members, points, weekly_points FROM clans WHERE id = $1";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.context("starting transaction")?;
            sqlx::query(update).bind(week_start).bind(week_end).bind(week).bind(now).bind(clan)
                .execute(&mut *tx).await.context("updating clan stats")?;
            let row = sqlx::query(read).bind(clan).fetch_optional(&mut *tx).await.context("reading clan stats")?;
            tx.commit().await.context("committing clan stats")?;
            row.map(|r| -> Result<ClanStats, sqlx::Error> { Ok(ClanStats {
                clan: r.try_get("id")?, name: r.try_get("name")?, members: r.try_get("members")?,
                points: r.try_get("points")?, weekly_points: r.try_get("weekly_points")?,
            }) }).transpose().context("decoding clan stats")
        })
    }

    // ----- weekly rewards ----------------------------------------------------------------

    /// Pays the top `top` of the week [start, end) once: in one transaction, a
    /// `weekly_awards` row (unique per week and user) and a `reward_items` row per
    /// winner. A week that already has awards is settled: nothing more is paid, and
    /// the earlier awards come back with `paid_now = false`.
    pub async fn award_week(
        &self,
        week: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        top: u32,
        amount_for_rank: fn(u32) -> i64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<WeeklyAward>> {
        let settled = "SELECT a.user_id, a.rank, a.points, COALESCE(r.amount, 0) AS amount
                       FROM weekly_awards a LEFT JOIN reward_items r ON r.id = a.reward_id
                       WHERE a.week = $1 ORDER BY a.rank, a.user_id";
        let ranking = "SELECT user_id, CAST(SUM(score) AS BIGINT) AS points FROM mission_progress
                       WHERE finished_at >= $1 AND finished_at < $2
                       GROUP BY user_id HAVING SUM(score) > 0 ORDER BY points DESC, user_id LIMIT $3";
        let claim = "INSERT INTO weekly_awards (week, user_id, rank, points, awarded_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (week, user_id) DO NOTHING";
        let pay = "INSERT INTO reward_items (user_id, kind, amount, reason, claimed, created_at)
                   VALUES ($1, 'coins', $2, $3, $4, $5) RETURNING id";
        let link = "UPDATE weekly_awards SET reward_id = $1 WHERE week = $2 AND user_id = $3";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.context("starting transaction")?;
            let earlier = sqlx::query(settled).bind(week).fetch_all(&mut *tx).await.context("reading earlier awards")?
                .iter().map(|r| -> Result<WeeklyAward, sqlx::Error> { Ok(WeeklyAward {
                    user: r.try_get("user_id")?,
                    rank: u32::try_from(r.try_get::<i32, _>("rank")?).unwrap_or(0),
                    points: r.try_get("points")?, amount: r.try_get("amount")?, paid_now: false,
                }) }).collect::<Result<Vec<_>, _>>().context("decoding earlier awards")?;
            if !earlier.is_empty() {
                tx.rollback().await.context("rolling back")?;
                return Ok(earlier);
            }
            let winners = sqlx::query(ranking).bind(start).bind(end).bind(i64::from(top))
                .fetch_all(&mut *tx).await.context("ranking the week")?
                .iter().map(|r| Ok((r.try_get::<String, _>("user_id")?, r.try_get::<i64, _>("points")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>().context("decoding the week's ranking")?;
            let mut awards = Vec::with_capacity(winners.len());
            for (i, (user, points)) in winners.into_iter().enumerate() {
                let rank = rank(i);
                let amount = amount_for_rank(rank);
                let claimed = sqlx::query(claim).bind(week).bind(&user).bind(i32::try_from(rank).unwrap_or(i32::MAX)).bind(points).bind(now)
                    .execute(&mut *tx).await.context("recording award")?.rows_affected();
                if claimed == 0 {
                    // A concurrent run paid this user first; its row stands.
                    continue;
                }
                let reason = format!("weekly leaderboard {week}: rank {rank}");
                let reward: i64 = sqlx::query_scalar(pay).bind(&user).bind(amount).bind(reason).bind(false).bind(now)
                    .fetch_one(&mut *tx).await.context("paying reward")?;
                sqlx::query(link).bind(reward).bind(week).bind(&user).execute(&mut *tx).await.context("linking reward")?;
                awards.push(WeeklyAward { user, rank, points, amount, paid_now: true });
            }
            tx.commit().await.context("committing awards")?;
            Ok(awards)
        })
    }

    // ----- cleanup -------------------------------------------------------------------------

    /// The guide's cleanup.ts, in batches: telemetry older than 90 days, expired
    /// notifications, unclaimed rewards older than 30 days. `progress` hears each batch.
    pub async fn cleanup(
        &self,
        now: DateTime<Utc>,
        mut progress: impl FnMut(&str, u64),
    ) -> anyhow::Result<CleanupCounts> {
        let telemetry = "DELETE FROM telemetry_events WHERE id IN
            (SELECT id FROM telemetry_events WHERE created_at < $1 LIMIT $2)";
        let notifications = "DELETE FROM notifications WHERE id IN
            (SELECT id FROM notifications WHERE expires_at < $1 LIMIT $2)";
        let rewards = "DELETE FROM reward_items WHERE id IN
            (SELECT id FROM reward_items WHERE claimed = $3 AND created_at < $1 LIMIT $2)";
        let mut counts = CleanupCounts::default();
        for (table, sql, cutoff, slot) in [
            (
                "telemetry_events",
                telemetry,
                now - Duration::days(90),
                &mut counts.telemetry_events,
            ),
            (
                "notifications",
                notifications,
                now,
                &mut counts.notifications,
            ),
            (
                "reward_items",
                rewards,
                now - Duration::days(30),
                &mut counts.reward_items,
            ),
        ] {
            loop {
                // $3 only appears in the reward query; binding it elsewhere would be an error.
                let deleted = with_pool!(self, pool => {
                    let mut q = sqlx::query(sql).bind(cutoff).bind(CLEANUP_BATCH);
                    if table == "reward_items" {
                        q = q.bind(false);
                    }
                    q.execute(pool).await.map(|r| r.rows_affected())
                })
                .with_context(|| format!("cleaning {table}"))?;
                *slot += deleted;
                progress(table, *slot);
                if deleted < CLEANUP_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(counts)
    }

    // ----- monthly report ----------------------------------------------------------------

    /// The monthly report's numbers for the `days` before `now`.
    pub async fn report_numbers(
        &self,
        now: DateTime<Utc>,
        days: i64,
    ) -> anyhow::Result<ReportNumbers> {
        let since = now - Duration::days(days);
        let total_users = "SELECT COUNT(*) FROM users";
        let mau = "SELECT COUNT(DISTINCT user_id) FROM telemetry_events WHERE created_at > $1";
        let completed =
            "SELECT COUNT(*) FROM mission_progress WHERE finished = $2 AND finished_at > $1";
        let worlds = "SELECT world, COUNT(*) AS count FROM mission_progress WHERE finished_at > $1
                      GROUP BY world ORDER BY count DESC, world";
        let new_users = "SELECT COUNT(*) FROM users WHERE created_at > $1";
        let (total_users, mau, missions_completed, top_worlds, new_users) = with_pool!(self, pool => {
            let total: i64 = sqlx::query_scalar(total_users).fetch_one(pool).await?;
            let mau: i64 = sqlx::query_scalar(mau).bind(since).fetch_one(pool).await?;
            let completed: i64 = sqlx::query_scalar(completed).bind(since).bind(true).fetch_one(pool).await?;
            let worlds: Vec<(String, i64)> = sqlx::query_as(worlds).bind(since).fetch_all(pool).await?;
            let new_users: i64 = sqlx::query_scalar(new_users).bind(since).fetch_one(pool).await?;
            Ok::<_, sqlx::Error>((total, mau, completed, worlds, new_users))
        })
        .context("reading report numbers")?;
        // Date arithmetic is where the dialects differ; these two are written per backend.
        let (average_mission_minutes, retention_day1, retention_day7) = match self {
            Store::Postgres(pool) => {
                let avg: Option<f64> = sqlx::query_scalar(
                    "SELECT CAST(AVG(EXTRACT(EPOCH FROM (finished_at - started_at))) / 60 AS DOUBLE PRECISION)
                     FROM mission_progress WHERE finished AND finished_at > $1")
                    .bind(since).fetch_one(pool).await.context("reading mission duration")?;
                let (d1, d7): (Option<i64>, Option<i64>) = sqlx::query_as(
                    "SELECT CAST(SUM(CASE WHEN last_login > created_at + INTERVAL '1 day' THEN 1 ELSE 0 END) AS BIGINT),
                            CAST(SUM(CASE WHEN last_login > created_at + INTERVAL '7 days' THEN 1 ELSE 0 END) AS BIGINT)
                     FROM users WHERE created_at > $1")
                    .bind(since).fetch_one(pool).await.context("reading retention")?;
                (avg, d1.unwrap_or(0), d7.unwrap_or(0))
            }
            Store::Sqlite(pool) => {
                let avg: Option<f64> = sqlx::query_scalar(
                    "SELECT AVG((julianday(finished_at) - julianday(started_at)) * 1440.0)
                     FROM mission_progress WHERE finished AND finished_at > $1",
                )
                .bind(since)
                .fetch_one(pool)
                .await
                .context("reading mission duration")?;
                let (d1, d7): (Option<i64>, Option<i64>) = sqlx::query_as(
                    "SELECT SUM(CASE WHEN julianday(last_login) > julianday(created_at) + 1 THEN 1 ELSE 0 END),
                            SUM(CASE WHEN julianday(last_login) > julianday(created_at) + 7 THEN 1 ELSE 0 END)
                     FROM users WHERE created_at > $1")
                    .bind(since).fetch_one(pool).await.context("reading retention")?;
                (avg, d1.unwrap_or(0), d7.unwrap_or(0))
            }
        };
        let top_worlds: Vec<WorldCount> = top_worlds
            .into_iter()
            .map(|(world, count)| WorldCount { world, count })
            .collect();
        Ok(ReportNumbers {
            total_users,
            mau,
            missions_completed,
            top_world: top_worlds.first().cloned(),
            top_worlds,
            average_mission_minutes,
            new_users,
            retention_day1,
            retention_day7,
        })
    }
}
