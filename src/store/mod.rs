//! Durable state through sqlx: the embedded SQLite database (default) or Postgres.
//!
//! Both backends run the same SQL (sqlx binds `$N` on both); where the dialects
//! differ the backend's own migration (migrations/postgres, migrations/sqlite)
//! absorbs it, so every query below is written once and run through [`with_pool!`].

mod auth_log;
mod logins;
mod matches;
pub mod ops;
mod outbox;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use juno_protocol::{Mission, Question};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};

pub use auth_log::{AuthLog, AuthRecord};
pub use logins::Logins;
pub use outbox::Outbox;

/// A connection pool to one of the two backends.
#[derive(Clone, Debug)]
pub enum Store {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Runs the same query code against whichever pool the store holds (exported
/// for the tests, which seed and inspect both backends the same way).
#[macro_export]
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Postgres($pool) => $body,
            $crate::store::Store::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use crate::with_pool;

impl Store {
    /// Connects (creating the SQLite file if needed) and runs the migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await
                .with_context(|| format!("connecting to {}", redact(url)))?;
            Store::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("parsing {url}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await
                .with_context(|| format!("opening {url}"))?;
            Store::Sqlite(pool)
        } else {
            anyhow::bail!(
                "DATABASE_URL must start with postgres:// or sqlite://, got '{}'",
                redact(url)
            );
        };
        store.migrate().await?;
        store.seed_demo_mission().await?;
        Ok(store)
    }

    /// Applies the backend's migrations (idempotent).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Store::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await,
            Store::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await,
        }
        .context("running migrations")
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        let probe =
            with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()));
        probe.is_ok()
    }

    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }

    /// Makes sure the `demo` mission exists so a fresh node is playable at once.
    async fn seed_demo_mission(&self) -> anyhow::Result<()> {
        if self.mission(DEMO_MISSION_ID).await?.is_none() {
            self.upsert_mission(&demo_mission()).await?;
        }
        Ok(())
    }

    /// A mission by id.
    pub async fn mission(&self, id: &str) -> anyhow::Result<Option<Mission>> {
        let sql = "SELECT id, world, title, difficulty, questions FROM missions WHERE id = $1";
        let row = with_pool!(self, pool => sqlx::query(sql).bind(id).fetch_optional(pool).await.map(|row| row.map(|r| {
            Ok::<_, sqlx::Error>(Mission {
                id: r.try_get("id")?,
                world: r.try_get("world")?,
                title: r.try_get("title")?,
                difficulty: r.try_get("difficulty")?,
                questions: r.try_get::<Json<Vec<Question>>, _>("questions")?.0,
            })
        })))
        .context("reading mission")?;
        row.transpose().context("decoding mission")
    }

    /// Inserts or replaces a mission; `true` when it is new.
    pub async fn upsert_mission(&self, m: &Mission) -> anyhow::Result<bool> {
        let existed = self.mission(&m.id).await?.is_some();
        let sql = "INSERT INTO missions (id, world, title, difficulty, questions, created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $6)
                   ON CONFLICT (id) DO UPDATE SET world = excluded.world, title = excluded.title,
                     difficulty = excluded.difficulty, questions = excluded.questions, updated_at = excluded.updated_at";
        let now = Utc::now();
        with_pool!(self, pool => sqlx::query(sql)
            .bind(&m.id).bind(&m.world).bind(&m.title).bind(&m.difficulty)
            .bind(Json(&m.questions)).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))
        .context("writing mission")?;
        Ok(!existed)
    }

    /// Every flag and whether it is on.
    pub async fn flags(&self) -> anyhow::Result<BTreeMap<String, bool>> {
        let sql = "SELECT flags FROM feature_flags WHERE id = 1";
        let flags = with_pool!(self, pool => sqlx::query_scalar::<_, Json<BTreeMap<String, bool>>>(sql).fetch_optional(pool).await)
            .context("reading feature flags")?;
        Ok(flags.map(|f| f.0).unwrap_or_default())
    }

    /// Sets one flag; `false` if no such flag exists.
    pub async fn set_flag(&self, name: &str, enabled: bool) -> anyhow::Result<bool> {
        let mut flags = self.flags().await?;
        match flags.get_mut(name) {
            Some(value) => *value = enabled,
            None => return Ok(false),
        }
        let sql = "UPDATE feature_flags SET flags = $1, updated_at = $2 WHERE id = 1";
        with_pool!(self, pool => sqlx::query(sql).bind(Json(&flags)).bind(Utc::now()).execute(pool).await.map(|r| r.rows_affected()))
            .context("writing feature flags")?;
        Ok(true)
    }

    /// Creates users on first sight and records their logins with a
    /// `session_start` event each: one transaction, two statements per batch.
    pub async fn record_logins(
        &self,
        logins: &[(String, String, DateTime<Utc>)],
    ) -> anyhow::Result<()> {
        // One row per user in the upsert: a statement may not update a row twice.
        let mut latest: std::collections::BTreeMap<&str, (&str, DateTime<Utc>)> =
            Default::default();
        for (user, name, at) in logins {
            latest.insert(user, (name, *at));
        }
        let users: Vec<_> = latest.into_iter().collect();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in users.chunks(USERS_PER_STATEMENT) {
                let mut upsert = QueryBuilder::new("INSERT INTO users (user_id, name, created_at, last_login) ");
                upsert.push_values(chunk, |mut row, (user, (name, at))| {
                    row.push_bind(*user).push_bind(*name).push_bind(*at).push_bind(*at);
                });
                upsert.push(" ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, last_login = excluded.last_login");
                upsert.build().execute(&mut *tx).await?;
            }
            for chunk in logins.chunks(USERS_PER_STATEMENT) {
                let mut events = QueryBuilder::new("INSERT INTO telemetry_events (user_id, event, created_at) ");
                events.push_values(chunk, |mut row, (user, _, at)| {
                    row.push_bind(user).push_bind("session_start").push_bind(*at);
                });
                events.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        })
        .context("recording logins")?;
        Ok(())
    }
}

/// Hides a password in a database URL before it is logged.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// The mission every fresh node can play.
pub const DEMO_MISSION_ID: &str = "demo";

fn demo_mission() -> Mission {
    let q = |text: &str, choices: [&str; 4], correct: u32| Question {
        text: text.into(),
        choices: choices.iter().map(|c| c.to_string()).collect(),
        correct,
        difficulty: None,
    };
    Mission {
        id: DEMO_MISSION_ID.into(),
        world: "it".into(),
        title: "IT Basics (demo)".into(),
        difficulty: "easy".into(),
        questions: vec![
            q(
                "What does CPU stand for?",
                [
                    "Central Processing Unit",
                    "Computer Personal Unit",
                    "Central Program Utility",
                    "Core Power Unit",
                ],
                0,
            ),
            q("How many bits are in a byte?", ["4", "8", "16", "32"], 1),
            q(
                "Which of these is a volatile memory?",
                ["SSD", "ROM", "RAM", "HDD"],
                2,
            ),
            q(
                "What does HTTP's 404 status mean?",
                ["Server error", "Moved", "Unauthorized", "Not found"],
                3,
            ),
            q(
                "Which protocol resolves names to IP addresses?",
                ["DNS", "FTP", "SMTP", "SSH"],
                0,
            ),
            q("What is 0b1010 in decimal?", ["8", "10", "12", "5"], 1),
            q(
                "Which one is an open-source operating system kernel?",
                ["Windows NT", "XNU", "Linux", "z/OS"],
                2,
            ),
            q(
                "Which port does HTTPS use by default?",
                ["21", "80", "25", "443"],
                3,
            ),
        ],
    }
}

impl Store {
    /// Users by points earned in [start, end), highest first: `(user, name, points)`.
    pub async fn points_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<(String, String, i64)>> {
        let sql = "SELECT mp.user_id, COALESCE(MAX(u.name), mp.user_id) AS name, CAST(SUM(mp.score) AS BIGINT) AS points
                   FROM mission_progress mp LEFT JOIN users u ON u.user_id = mp.user_id
                   WHERE mp.finished_at >= $1 AND mp.finished_at < $2
                   GROUP BY mp.user_id ORDER BY points DESC, mp.user_id LIMIT $3";
        let rows = with_pool!(self, pool => sqlx::query(sql).bind(start).bind(end).bind(limit as i64).fetch_all(pool).await.map(|rows| {
            rows.iter().map(|r| Ok((r.try_get("user_id")?, r.try_get("name")?, r.try_get("points")?))).collect::<Result<Vec<_>, sqlx::Error>>()
        }))
        .context("reading leaderboard")?;
        rows.context("decoding leaderboard")
    }

    /// Distinct users with telemetry in the last day, week and 30 days.
    pub async fn active_users(&self, now: DateTime<Utc>) -> anyhow::Result<(i64, i64, i64)> {
        let sql = "SELECT COUNT(DISTINCT user_id) FROM telemetry_events WHERE created_at > $1";
        let mut counts = [0i64; 3];
        for (slot, days) in counts.iter_mut().zip([1, 7, 30]) {
            let since = now - chrono::Duration::days(days);
            *slot = with_pool!(self, pool => sqlx::query_scalar::<_, i64>(sql).bind(since).fetch_one(pool).await)
                .context("counting active users")?;
        }
        Ok((counts[0], counts[1], counts[2]))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_mission_is_valid() {
        super::demo_mission()
            .validate()
            .expect("demo mission passes validation");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://u:secret@db/x"),
            "postgres://***@db/x"
        );
        assert_eq!(super::redact("sqlite://juno.db"), "sqlite://juno.db");
    }
}

impl Store {
    /// Every flag's switch and targeting.
    pub async fn flag_set(&self) -> anyhow::Result<crate::model::FlagSet> {
        let base = self.flags().await?;
        let sql = "SELECT name, allow, percent FROM feature_flag_targeting";
        let rows = with_pool!(self, pool => sqlx::query(sql).fetch_all(pool).await.map(|rows| {
            rows.iter().map(|r| {
                let allow: Json<std::collections::BTreeSet<String>> = r.try_get("allow")?;
                let percent: Option<i32> = r.try_get("percent")?;
                let targeting = crate::model::Targeting { allow: allow.0, percent: percent.map(|p| p.clamp(0, 100) as u8) };
                Ok((r.try_get::<String, _>("name")?, targeting))
            }).collect::<Result<Vec<_>, sqlx::Error>>()
        }))
        .context("reading flag targeting")?
        .context("decoding flag targeting")?;
        Ok(crate::model::FlagSet {
            base,
            targeting: rows.into_iter().collect(),
        })
    }

    /// Replaces one flag's targeting (the flag must exist).
    pub async fn set_flag_targeting(
        &self,
        name: &str,
        targeting: &crate::model::Targeting,
    ) -> anyhow::Result<()> {
        let sql = "INSERT INTO feature_flag_targeting (name, allow, percent, updated_at) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (name) DO UPDATE SET allow = excluded.allow, percent = excluded.percent, updated_at = excluded.updated_at";
        let percent = targeting.percent.map(i32::from);
        with_pool!(self, pool => sqlx::query(sql).bind(name).bind(Json(&targeting.allow)).bind(percent).bind(Utc::now())
            .execute(pool).await.map(|r| r.rows_affected()))
        .context("writing flag targeting")?;
        Ok(())
    }
}

/// Who a bulk notification is for: everyone, filtered by level and/or a user list.
#[derive(Debug, Clone, Default)]
pub struct NotificationTargets {
    pub min_level: Option<i32>,
    pub users: Option<std::collections::BTreeSet<String>>,
}

/// Users per statement when a query lists users explicitly.
const USERS_PER_STATEMENT: usize = 500;

impl Store {
    /// Stores one notification row per target user in one statement per batch; returns how many.
    pub async fn insert_notifications(
        &self,
        targets: &NotificationTargets,
        n: &juno_protocol::Notification,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let level = targets.min_level.unwrap_or(i32::MIN);
        let Some(users) = &targets.users else {
            let sql =
                "INSERT INTO notifications (user_id, kind, title, message, created_at, expires_at)
                       SELECT user_id, $1, $2, $3, $4, $5 FROM users WHERE level >= $6";
            return with_pool!(self, pool => sqlx::query(sql).bind(&n.kind).bind(&n.title).bind(&n.message).bind(now).bind(expires).bind(level)
                .execute(pool).await.map(|r| r.rows_affected()))
            .context("storing notifications");
        };
        let users: Vec<&String> = users.iter().collect();
        let mut stored = 0;
        for chunk in users.chunks(USERS_PER_STATEMENT) {
            stored += with_pool!(self, pool => {
                let mut q = QueryBuilder::new("INSERT INTO notifications (user_id, kind, title, message, created_at, expires_at) SELECT user_id, ");
                q.push_bind(&n.kind).push(", ").push_bind(&n.title).push(", ").push_bind(&n.message).push(", ")
                    .push_bind(now).push(", ").push_bind(expires).push(" FROM users WHERE level >= ").push_bind(level).push(" AND user_id IN (");
                let mut list = q.separated(", ");
                for u in chunk {
                    list.push_bind(*u);
                }
                q.push(")");
                q.build().execute(pool).await.map(|r| r.rows_affected())
            })
            .context("storing notifications")?;
        }
        Ok(stored)
    }
}

/// A notification claimed for delivery to one user.
#[derive(Debug, Clone)]
pub struct PendingNotification {
    pub id: i64,
    pub user: String,
    pub notification: juno_protocol::Notification,
}

impl Store {
    /// Marks the notification stored at `stored_at` with `title` as delivered to
    /// those of `users` who have it and have not had it yet; returns them (the
    /// ones to push it to now). Delivery is claimed in the database, so a user
    /// gets it once, live or at their next login, never both.
    pub async fn claim_sent_notification(
        &self,
        users: &[String],
        stored_at: DateTime<Utc>,
        title: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<String>> {
        let mut claimed = Vec::new();
        for chunk in users.chunks(USERS_PER_STATEMENT) {
            let rows: Vec<String> = with_pool!(self, pool => {
                let mut q = QueryBuilder::new("UPDATE notifications SET delivered_at = ");
                q.push_bind(now)
                    .push(" WHERE delivered_at IS NULL AND created_at = ")
                    .push_bind(stored_at)
                    .push(" AND title = ")
                    .push_bind(title)
                    .push(" AND user_id IN (");
                let mut list = q.separated(", ");
                for u in chunk {
                    list.push_bind(u);
                }
                q.push(") RETURNING user_id");
                q.build_query_scalar::<String>().fetch_all(pool).await
            })
            .context("claiming a notification for its online users")?;
            claimed.extend(rows);
        }
        Ok(claimed)
    }

    /// Claims every unexpired notification `users` have not had yet, oldest first.
    pub async fn claim_pending_notifications(
        &self,
        users: &[String],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<PendingNotification>> {
        let mut claimed = Vec::new();
        for chunk in users.chunks(USERS_PER_STATEMENT) {
            let rows: Vec<(i64, String, String, String, String)> = with_pool!(self, pool => {
                let mut q = QueryBuilder::new("UPDATE notifications SET delivered_at = ");
                q.push_bind(now)
                    .push(" WHERE delivered_at IS NULL AND (expires_at IS NULL OR expires_at > ")
                    .push_bind(now)
                    .push(") AND user_id IN (");
                let mut list = q.separated(", ");
                for u in chunk {
                    list.push_bind(u);
                }
                q.push(") RETURNING id, user_id, kind, title, message");
                q.build_query_as().fetch_all(pool).await
            })
            .context("claiming pending notifications")?;
            claimed.extend(rows.into_iter().map(|(id, user, kind, title, message)| {
                PendingNotification {
                    id,
                    user,
                    notification: juno_protocol::Notification {
                        kind,
                        title,
                        message,
                    },
                }
            }));
        }
        claimed.sort_by_key(|p| p.id);
        Ok(claimed)
    }
}
