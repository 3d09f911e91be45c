//! The operations guide (shared/seed/operations-guide.md) against the real Postgres
//! schema: every SQL statement of the guide that reads project tables runs with its
//! text unchanged after a scripted set of matches over real sockets, and its numbers
//! are checked against what was played. Also the operator commands: weekly rewards
//! pay once, cleanup deletes exactly what the guide's cleanup.ts deletes, the report
//! matches the guide's report queries, and the `juno-server admin` CLI runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use juno_protocol::{ClientMsg, MatchResult, Mode, RoomOptions, ServerMsg};
use juno_server::config::Config;
use juno_server::ops::{self, Week};
use juno_server::store::Store;
use juno_server::with_pool;
use serde_json::{json, Value};
use sqlx::types::Json;
use sqlx::{PgPool, Row};

use crate::bots::*;
use crate::is;
use crate::support::*;

// ----- the guide's statements, verbatim ------------------------------------------------

/// `psql -c` — Morning routine: users.
const USERS_COUNT: &str = r#"SELECT COUNT(*) FROM users;"#;

/// `psql -c` — Morning routine: missions started in the last 24 hours.
const PROGRESS_24H: &str =
    r#"SELECT COUNT(*) FROM mission_progress WHERE started_at > NOW() - INTERVAL '24 hours';"#;

/// `psql -c` — Wednesday performance review (pg_stat_statements).
const SLOW_QUERIES_SHORT: &str =
    r#"SELECT query, mean_time FROM pg_stat_statements ORDER BY mean_time DESC LIMIT 10;"#;

/// `psql -c` — Friday security check: failed logins in 7 days.
const FAILED_LOGINS: &str = r#"SELECT COUNT(*) FROM auth_logs WHERE success=false AND created_at > NOW() - INTERVAL '7 days';"#;

/// `psql -c` — Monthly maintenance.
const VACUUM: &str = r#"VACUUM ANALYZE;"#;

/// `psql -c` — Monthly maintenance (names the production database).
const REINDEX: &str = r#"REINDEX DATABASE junosixteen;"#;

/// `psql -c` — Monthly maintenance: table sizes.
const TABLE_SIZES_SHORT: &str = r#"SELECT tablename, pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) FROM pg_tables WHERE schemaname='public' ORDER BY pg_total_relation_size(schemaname||'.'||tablename) DESC;"#;

/// `psql -c` — Troubleshooting: missing indexes?
const PG_STATS_DISTINCT: &str = r#"SELECT schemaname, tablename, attname, n_distinct FROM pg_stats WHERE schemaname='public' AND n_distinct > 1000;"#;

/// `psql -c` — Troubleshooting: add an index.
const ADD_INDEX: &str =
    r#"CREATE INDEX idx_telemetry_created ON telemetry_events(created_at DESC);"#;

/// Monitoring queries.
const DAU_7_DAYS: &str = r#"-- Daily Active Users (last 7 days)
SELECT 
  DATE(created_at) as date,
  COUNT(DISTINCT user_id) as dau
FROM telemetry_events
WHERE created_at > NOW() - INTERVAL '7 days'
GROUP BY DATE(created_at)
ORDER BY date DESC;"#;

/// Monitoring queries.
const TOP_USERS: &str = r#"-- Top Users (by points)
SELECT 
  user_id,
  total_points,
  streak
FROM users
ORDER BY total_points DESC
LIMIT 10;"#;

/// Monitoring queries.
const RETENTION: &str = r#"-- Retention Rate (Day 1, Day 7, Day 30)
SELECT 
  DATE(created_at) as cohort,
  COUNT(DISTINCT user_id) as users,
  COUNT(DISTINCT CASE WHEN last_login > created_at + INTERVAL '1 day' THEN user_id END) as day1,
  COUNT(DISTINCT CASE WHEN last_login > created_at + INTERVAL '7 days' THEN user_id END) as day7
FROM users
WHERE created_at > NOW() - INTERVAL '30 days'
GROUP BY DATE(created_at);"#;

/// Monitoring queries.
const SUCCESS_RATE: &str = r#"-- Mission Success Rate
SELECT 
  world,
  COUNT(*) as total,
  SUM(CASE WHEN success THEN 1 ELSE 0 END) as successful,
  ROUND(AVG(CASE WHEN success THEN 1.0 ELSE 0.0 END) * 100, 2) as success_rate
FROM mission_progress
WHERE finished = true
GROUP BY world;"#;

/// Monitoring queries.
const MISSION_DURATION: &str = r#"-- Average Mission Duration
SELECT 
  world,
  AVG(EXTRACT(EPOCH FROM (finished_at - started_at))) / 60 as avg_duration_minutes
FROM mission_progress
WHERE finished = true
GROUP BY world;"#;

/// Monitoring queries.
const SLOW_QUERIES: &str = r#"-- Slow queries
SELECT 
  query,
  calls,
  mean_time,
  max_time
FROM pg_stat_statements
WHERE mean_time > 100
ORDER BY mean_time DESC
LIMIT 20;"#;

/// Monitoring queries.
const TABLE_SIZES: &str = r#"-- Table sizes
SELECT 
  schemaname,
  tablename,
  pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) as size
FROM pg_tables
WHERE schemaname = 'public'
ORDER BY pg_total_relation_size(schemaname||'.'||tablename) DESC;"#;

/// Maintenance script (template literal).
const CLEANUP_TELEMETRY: &str = r#"
    DELETE FROM telemetry_events 
    WHERE created_at < NOW() - INTERVAL '90 days'
  "#;

/// Maintenance script (template literal).
const CLEANUP_NOTIFICATIONS: &str = r#"
    DELETE FROM notifications 
    WHERE expires_at < NOW()
  "#;

/// Maintenance script (template literal).
const CLEANUP_REWARDS: &str = r#"
    DELETE FROM reward_items 
    WHERE claimed = false 
    AND created_at < NOW() - INTERVAL '30 days'
  "#;

/// Maintenance script (template literal).
const REPORT_MAU: &str = r#"
    SELECT COUNT(DISTINCT user_id) 
    FROM telemetry_events 
    WHERE created_at > NOW() - INTERVAL '30 days'
  "#;

/// Maintenance script (template literal).
const REPORT_MISSIONS: &str = r#"
    SELECT COUNT(*) 
    FROM mission_progress 
    WHERE finished = true 
    AND finished_at > NOW() - INTERVAL '30 days'
  "#;

/// Maintenance script (template literal).
const REPORT_TOP_WORLD: &str = r#"
    SELECT world, COUNT(*) as count
    FROM mission_progress
    WHERE finished_at > NOW() - INTERVAL '30 days'
    GROUP BY world
    ORDER BY count DESC
    LIMIT 1
  "#;

/// Maintenance script (template literal).
const ADD_MISSION: &str = r#"
  INSERT INTO missions (id, world, title, difficulty, questions)
  VALUES ($1, $2, $3, $4, $5)
"#;

/// Maintenance script (template literal).
const MIGRATE_USERS_UPDATE: &str = r#"
      UPDATE users 
      SET prestige_level = 0 
      WHERE user_id = $1 AND prestige_level IS NULL
    "#;

/// Script query.
const REPORT_USERS: &str = r#"SELECT COUNT(*) FROM users"#;

/// Script query.
const EVENT_USERS: &str = r#"SELECT user_id FROM users"#;

/// Script query.
const MIGRATE_USERS_SELECT: &str = r#"SELECT * FROM users"#;

/// Script query.
const LOAD_FLAGS: &str = r#"SELECT * FROM feature_flags WHERE id = 1"#;

/// send-bulk-notification.ts: the base query.
const BULK_BASE: &str = r#"SELECT user_id FROM users WHERE 1=1"#;

/// send-bulk-notification.ts: the minLevel filter appended.
const BULK_MIN_LEVEL: &str = r#" AND level >= $1"#;

/// Every statement above, for the check that each is the guide's own text.
const GUIDE_STATEMENTS: &[&str] = &[
    USERS_COUNT,
    PROGRESS_24H,
    SLOW_QUERIES_SHORT,
    FAILED_LOGINS,
    VACUUM,
    REINDEX,
    TABLE_SIZES_SHORT,
    PG_STATS_DISTINCT,
    ADD_INDEX,
    DAU_7_DAYS,
    TOP_USERS,
    RETENTION,
    SUCCESS_RATE,
    MISSION_DURATION,
    SLOW_QUERIES,
    TABLE_SIZES,
    CLEANUP_TELEMETRY,
    CLEANUP_NOTIFICATIONS,
    CLEANUP_REWARDS,
    REPORT_MAU,
    REPORT_MISSIONS,
    REPORT_TOP_WORLD,
    ADD_MISSION,
    MIGRATE_USERS_UPDATE,
    REPORT_USERS,
    EVENT_USERS,
    MIGRATE_USERS_SELECT,
    LOAD_FLAGS,
    BULK_BASE,
    BULK_MIN_LEVEL,
];

/// The guide's flag names (its `FeatureFlags` interface).
const GUIDE_FLAGS: [&str; 18] = [
    "hrm_trm",
    "mangle_zpd",
    "adventure_mode",
    "daily_quests",
    "random_drops",
    "power_ups",
    "achievements",
    "seasons",
    "analytics",
    "special_events",
    "pvp_duels",
    "battle_royale",
    "tournaments",
    "raid_bosses",
    "clans",
    "mentoring",
    "cosmetics_shop",
    "premium_currency",
];

#[test]
fn the_statements_are_the_guides_own_text() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/seed/operations-guide.md"
    );
    let guide = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("the operations guide this test checks against is missing at {path}: {e}")
    });
    for statement in GUIDE_STATEMENTS {
        assert!(
            guide.contains(statement),
            "not the guide's text: {statement}"
        );
    }
}

// ----- helpers ---------------------------------------------------------------------------

type Table = Vec<Vec<Option<String>>>;

fn pg(store: &Store) -> PgPool {
    match store {
        Store::Postgres(pool) => pool.clone(),
        Store::Sqlite(_) => panic!("this test needs Postgres"),
    }
}

/// Runs `sql` as psql would (simple protocol, text results) and returns every cell as text.
async fn psql(pool: &PgPool, sql: &str) -> Result<Table, sqlx::Error> {
    let rows = sqlx::raw_sql(sql).fetch_all(pool).await?;
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.try_get_unchecked::<Option<String>, _>(i))
                .collect()
        })
        .collect()
}

async fn psql_ok(pool: &PgPool, sql: &str) -> Table {
    psql(pool, sql)
        .await
        .unwrap_or_else(|e| panic!("the guide's statement failed on our schema: {e}\n{sql}"))
}

fn cell(t: &Table, row: usize, col: usize) -> &str {
    t[row][col].as_deref().unwrap_or("NULL")
}

/// The correct choice of every question of the given missions, by text.
async fn key_for(app: &TestApp, missions: &[&str]) -> Arc<HashMap<String, u32>> {
    let mut key = HashMap::new();
    for id in missions {
        let m = app
            .node
            .store
            .mission(id)
            .await
            .expect("db")
            .expect("mission");
        key.extend(m.questions.into_iter().map(|q| (q.text, q.correct)));
    }
    Arc::new(key)
}

fn result_of(seen: &[ServerMsg]) -> MatchResult {
    all_of(seen, |m| is!(m, ServerMsg::Result))
        .pop()
        .expect("a result")
}

/// Two queued players play a duel of `mission` to the end.
async fn queued_duel(
    app: &TestApp,
    (a, b): (&str, &str),
    mission: &str,
    key: &Arc<HashMap<String, u32>>,
    policy: &Policy,
) -> MatchResult {
    let mut ca = app.connect(a).await;
    let mut cb = app.connect(b).await;
    for c in [&mut ca, &mut cb] {
        c.request(ClientMsg::Queue {
            mode: Mode::Duel,
            mission: mission.into(),
        })
        .await
        .expect("queue");
    }
    let found = ca
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    let ba = spawn_bot(ca, key.clone(), policy.clone(), found.room.clone());
    let bb = spawn_bot(cb, key.clone(), policy.clone(), found.room.clone());
    let (_, seen) = ba.await.expect("bot a");
    bb.await.expect("bot b");
    result_of(&seen)
}

/// A battle royale of `players` (the first creates it; it starts when full).
async fn royale(
    app: &TestApp,
    players: &[&str],
    key: &Arc<HashMap<String, u32>>,
    policy: &Policy,
) -> MatchResult {
    let mut host = app.connect(players[0]).await;
    let options = RoomOptions {
        questions: Some(3),
        max_players: Some(players.len() as u32),
        question_ms: Some(2_000),
        countdown_ms: Some(0),
        between_ms: Some(0),
        ..Default::default()
    };
    let room = host.create_room(Mode::BattleRoyale, Some(options)).await;
    let mut clients = vec![host];
    for p in &players[1..] {
        let mut c = app.connect(p).await;
        c.request(ClientMsg::Join { room: room.clone() })
            .await
            .expect("join");
        clients.push(c);
    }
    let bots: Vec<_> = clients
        .into_iter()
        .map(|c| spawn_bot(c, key.clone(), policy.clone(), room.clone()))
        .collect();
    let mut result = None;
    for bot in bots {
        let (_, seen) = bot.await.expect("bot");
        result = Some(result_of(&seen));
    }
    result.expect("players")
}

/// Inserts a finished mission_progress row (for seeding weeks and reports).
async fn progress(store: &Store, user: &str, world: &str, score: i64, finished_at: DateTime<Utc>) {
    let sql = "INSERT INTO mission_progress (user_id, mission_id, world, score, correct, answered, questions, success, finished, started_at, finished_at)
               VALUES ($1, 'demo', $2, $3, 1, 1, 1, $4, $4, $5, $6)";
    with_pool!(store, p => sqlx::query(sql)
        .bind(user)
        .bind(world)
        .bind(score)
        .bind(true)
        .bind(finished_at - Duration::minutes(2))
        .bind(finished_at)
        .execute(p)
        .await
        .map(|_| ()))
    .expect("seed mission_progress");
}

async fn count(store: &Store, sql: &str) -> i64 {
    with_pool!(store, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn fresh_store(backend: Backend) -> (Store, Option<TempDir>) {
    let (url, dir) = fresh_database(backend).await;
    (Store::connect(&url).await.expect("store"), dir)
}

// ----- the guide against a played database ----------------------------------------------

#[tokio::test]
async fn every_guide_statement_tells_the_truth_about_played_matches() {
    let app = spawn_app(Backend::Postgres).await;
    let pool = pg(&app.node.store);

    // A second world, so per-world numbers differ.
    let science = json!({"id": "physics", "world": "science", "title": "Physics", "difficulty": "medium",
        "questions": [
            {"text": "Unit of force?", "choices": ["Joule", "Newton", "Watt", "Pascal"], "correct": 1},
            {"text": "Speed of light (km/s)?", "choices": ["300000", "30000", "3000", "3"], "correct": 0},
            {"text": "H2O is?", "choices": ["Salt", "Air", "Water", "Gold"], "correct": 2}]});
    let status = app
        .http
        .post(app.url("/admin/missions"))
        .bearer_auth(ADMIN)
        .json(&science)
        .send()
        .await
        .expect("http")
        .status();
    assert_eq!(status, 201);
    let key = key_for(&app, &["demo", "physics"]).await;

    // The script: who answers what (q = question number in the match).
    //   duel demo:     ann right ×3, bob wrong ×3            → ann success, bob not
    //   duel physics:  cid right ×3, dan right, right, wrong → both succeed (2 of 3)
    //   royale demo:   eve, fay right ×3; gus wrong at q1; hal wrong at q0
    let policy: Policy = Arc::new(|t: &Turn| match t.user {
        "ann" | "cid" | "eve" | "fay" => Some(true),
        "bob" | "hal" => Some(false),
        "dan" => Some(t.q != 2),
        "gus" => Some(t.q != 1),
        other => panic!("unscripted player {other}"),
    });
    let started = Utc::now();
    let d1 = queued_duel(&app, ("ann", "bob"), "demo", &key, &policy).await;
    let d2 = queued_duel(&app, ("cid", "dan"), "physics", &key, &policy).await;
    let br = royale(&app, &["eve", "fay", "gus", "hal"], &key, &policy).await;
    assert_eq!(d1.winner.as_deref(), Some("ann"));
    assert_eq!(d2.winner.as_deref(), Some("cid"));
    let mut scores: BTreeMap<String, u64> = BTreeMap::new();
    for r in [&d1, &d2, &br] {
        for s in &r.standings {
            scores.insert(s.id.clone(), s.score);
        }
    }
    assert_eq!(scores.len(), 8);
    app.eventually_scalar("SELECT COUNT(*) FROM matches", 3)
        .await;

    // Two refused connections: a token that is no JWT, and one signed with another secret.
    let stranger = juno_server::gateway::auth::Auth::from_config(&Config {
        jwt_secrets: vec!["not-the-servers-secret".into()],
        ..Config::default()
    })
    .expect("auth");
    let forged = stranger.mint("mallory", None, 3600).expect("mint");
    for token in ["not-a-jwt", forged.as_str()] {
        let status = app
            .http
            .get(app.url(&format!("/ws?token={token}")))
            .send()
            .await
            .expect("http")
            .status();
        assert_eq!(status, 401);
    }
    app.eventually_scalar("SELECT COUNT(*) FROM auth_logs WHERE success = false", 2)
        .await;

    // Morning routine and Friday security check.
    assert_eq!(
        psql_ok(&pool, USERS_COUNT).await,
        vec![vec![Some("8".into())]]
    );
    assert_eq!(
        psql_ok(&pool, PROGRESS_24H).await,
        vec![vec![Some("8".into())]]
    );
    assert_eq!(
        psql_ok(&pool, FAILED_LOGINS).await,
        vec![vec![Some("2".into())]]
    );

    // Daily active users: everyone who played, today (allowing for a run across midnight).
    let dau = psql_ok(&pool, DAU_7_DAYS).await;
    let today = psql_ok(&pool, "SELECT CURRENT_DATE").await;
    if dau.len() == 1 {
        assert_eq!(dau[0], vec![today[0][0].clone(), Some("8".into())]);
    } else {
        assert_eq!(dau.len(), 2, "{dau:?}");
        assert_eq!(dau[0][0], today[0][0]);
    }

    // Top users by points: each user's total is what they scored, highest first.
    let top = psql_ok(&pool, TOP_USERS).await;
    assert_eq!(top.len(), 8);
    let mut last = u64::MAX;
    for row in &top {
        let points: u64 = row[1].as_deref().expect("points").parse().expect("number");
        assert_eq!(points, scores[row[0].as_deref().expect("user")], "{row:?}");
        assert!(points <= last, "ordered by points: {top:?}");
        assert_eq!(row[2].as_deref(), Some("0"), "streak");
        last = points;
    }
    assert_eq!(
        top[0][0].as_deref().map(|u| scores[u]),
        scores.values().max().copied()
    );

    // Retention: one cohort (today) of 8, nobody back a day later yet. A run across
    // midnight splits the 8 over two cohorts, each with nobody back yet.
    let retention = psql_ok(&pool, RETENTION).await;
    if retention.len() == 1 {
        assert_eq!(
            retention[0][1..],
            [Some("8".into()), Some("0".into()), Some("0".into())]
        );
    } else {
        assert_eq!(retention.len(), 2, "{retention:?}");
        let users: u32 = retention
            .iter()
            .map(|r| {
                r[1].as_deref()
                    .expect("users")
                    .parse::<u32>()
                    .expect("number")
            })
            .sum();
        assert_eq!(users, 8, "{retention:?}");
        for row in &retention {
            assert_eq!(row[2..], [Some("0".into()), Some("0".into())], "{row:?}");
        }
    }

    // Mission success rate per world, as scripted.
    let mut rates = psql_ok(&pool, SUCCESS_RATE).await;
    rates.sort();
    let want = |w: &str, t: &str, s: &str, r: &str| {
        vec![
            Some(w.into()),
            Some(t.into()),
            Some(s.into()),
            Some(r.into()),
        ]
    };
    assert_eq!(
        rates,
        vec![
            want("it", "6", "3", "50.00"),
            want("science", "2", "2", "100.00")
        ]
    );

    // Average mission duration per world = the matches' lengths, weighted by their players.
    let mut expected: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for r in [&d1, &d2, &br] {
        let record: Value = get_json(&app.http, app.url(&format!("/api/matches/{}", r.room))).await;
        let at = |k: &str| {
            DateTime::parse_from_rfc3339(record[k].as_str().expect("time")).expect("rfc3339")
        };
        let minutes = (at("finished_at") - at("started_at"))
            .num_microseconds()
            .expect("short") as f64
            / 60e6;
        let players = record["players"].as_array().expect("players").len() as f64;
        let e = expected
            .entry(record["world"].as_str().expect("world").to_string())
            .or_default();
        e.0 += minutes * players;
        e.1 += players;
    }
    let durations = psql_ok(&pool, MISSION_DURATION).await;
    assert_eq!(durations.len(), 2);
    for row in &durations {
        let world = row[0].as_deref().expect("world");
        let got: f64 = row[1].as_deref().expect("avg").parse().expect("number");
        let (sum, n) = expected[world];
        assert!(
            (got - sum / n).abs() < 1e-6,
            "{world}: {got} vs {}",
            sum / n
        );
        assert!(got > 0.0 && got < 5.0, "{world}: {got} minutes");
    }
    assert!(Utc::now() - started < Duration::minutes(5));

    // Table sizes (both versions): every project table is there with a size.
    for sql in [TABLE_SIZES_SHORT, TABLE_SIZES] {
        let sizes = psql_ok(&pool, sql).await;
        let name_col = if sql == TABLE_SIZES { 1 } else { 0 };
        let names: Vec<&str> = sizes
            .iter()
            .map(|r| r[name_col].as_deref().expect("name"))
            .collect();
        for t in [
            "users",
            "mission_progress",
            "missions",
            "telemetry_events",
            "notifications",
            "reward_items",
            "feature_flags",
            "auth_logs",
            "matches",
            "match_players",
            "match_events",
            "clans",
            "clan_members",
            "weekly_awards",
        ] {
            assert!(names.contains(&t), "{t} missing from {names:?}");
        }
        assert!(
            sizes.iter().all(|r| r
                .last()
                .and_then(|s| s.as_deref())
                .is_some_and(|s| s.ends_with("bytes") || s.ends_with("kB") || s.ends_with("MB"))),
            "{sizes:?}"
        );
    }

    // Maintenance: VACUUM ANALYZE runs; then pg_stats knows every column, and none of this
    // small database has over 1000 distinct values, so the index hunt finds nothing.
    psql_ok(&pool, VACUUM).await;
    assert_eq!(psql_ok(&pool, PG_STATS_DISTINCT).await, Table::new());
    let analysed = psql_ok(
        &pool,
        "SELECT COUNT(*) FROM pg_stats WHERE schemaname='public' AND tablename='mission_progress'",
    )
    .await;
    assert_ne!(cell(&analysed, 0, 0), "0");
    // REINDEX names the production database; on any other database Postgres refuses it.
    let reindex = psql(&pool, REINDEX)
        .await
        .expect_err("another database's name");
    assert!(reindex.to_string().contains("current"), "{reindex}");
    // The guide's "add index" fix applies to our schema.
    psql_ok(&pool, ADD_INDEX).await;

    // pg_stat_statements is a system view, not a project table: the guide's slow-query
    // statements stand or fall with the server, not with our schema. Which way they go
    // follows from the server's facts: without the extension the view does not exist;
    // since Postgres 13 its column is mean_exec_time, so `mean_time` does not exist;
    // before 13 they need the module preloaded, and then answer.
    let created = sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&pool)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let installed = psql_ok(
        &pool,
        "SELECT COUNT(*) FROM pg_extension WHERE extname = 'pg_stat_statements'",
    )
    .await;
    let installed = cell(&installed, 0, 0) == "1";
    let version = psql_ok(&pool, "SHOW server_version_num").await;
    let version: u32 = cell(&version, 0, 0).parse().expect("server_version_num");
    let preload = psql_ok(&pool, "SHOW shared_preload_libraries").await;
    let preloaded = cell(&preload, 0, 0).contains("pg_stat_statements");
    for sql in [SLOW_QUERIES_SHORT, SLOW_QUERIES] {
        let answer = psql(&pool, sql).await.map_err(|e| e.to_string());
        let facts = format!(
            "extension installed: {installed} ({created:?}), server {version}, preloaded: {preloaded}"
        );
        match (installed, version >= 130_000, preloaded) {
            (false, _, _) => {
                let e = answer.expect_err(&facts);
                assert!(e.contains("pg_stat_statements"), "{facts}: {e}");
            }
            (true, true, _) => {
                let e = answer.expect_err(&facts);
                assert!(e.contains("mean_time"), "{facts}: {e}");
            }
            (true, false, false) => {
                let e = answer.expect_err(&facts);
                assert!(e.contains("shared_preload_libraries"), "{facts}: {e}");
            }
            (true, false, true) => {
                answer.unwrap_or_else(|e| panic!("{facts}: {e}"));
            }
        }
    }

    // The monthly report script's queries agree with `admin report`.
    let mut progress_out = Vec::new();
    let report = ops::monthly_report(&app.node.store, Utc::now(), 30, &mut progress_out)
        .await
        .expect("report");
    assert_eq!(
        psql_ok(&pool, REPORT_USERS).await,
        vec![vec![Some("8".into())]]
    );
    assert_eq!(report["totalUsers"], 8);
    assert_eq!(
        psql_ok(&pool, REPORT_MAU).await,
        vec![vec![Some("8".into())]]
    );
    assert_eq!(report["mau"], 8);
    assert_eq!(
        psql_ok(&pool, REPORT_MISSIONS).await,
        vec![vec![Some("8".into())]]
    );
    assert_eq!(report["missionsCompleted"], 8);
    assert_eq!(
        psql_ok(&pool, REPORT_TOP_WORLD).await,
        vec![vec![Some("it".into()), Some("6".into())]]
    );
    assert_eq!(report["topWorld"], json!({"world": "it", "count": 6}));
    assert_eq!(report["newUsers"], 8);
    let avg = report["averageMissionMinutes"].as_f64().expect("minutes");
    let all: f64 = expected.values().map(|(s, _)| s).sum::<f64>()
        / expected.values().map(|(_, n)| n).sum::<f64>();
    assert!((avg - all).abs() < 1e-6, "{avg} vs {all}");

    // Activating an event reads every user; the bulk notification filters by level.
    assert_eq!(
        sqlx::query(EVENT_USERS)
            .fetch_all(&pool)
            .await
            .expect("event users")
            .len(),
        8
    );
    sqlx::query("UPDATE users SET level = 6 WHERE user_id IN ('ann', 'cid')")
        .execute(&pool)
        .await
        .expect("levels");
    let query = format!("{BULK_BASE}{BULK_MIN_LEVEL}");
    let mut leveled: Vec<String> = sqlx::query_scalar(&query)
        .bind(5)
        .fetch_all(&pool)
        .await
        .expect("bulk query");
    leveled.sort();
    assert_eq!(leveled, ["ann", "cid"]);

    // migrate-users: reads every user, backfills only the missing prestige level.
    sqlx::query("UPDATE users SET prestige_level = NULL WHERE user_id = 'bob'")
        .execute(&pool)
        .await
        .expect("null");
    let users = sqlx::query(MIGRATE_USERS_SELECT)
        .fetch_all(&pool)
        .await
        .expect("select users");
    assert_eq!(users.len(), 8);
    let mut migrated = 0;
    for u in &users {
        let id: String = u.try_get("user_id").expect("user_id");
        migrated += sqlx::query(MIGRATE_USERS_UPDATE)
            .bind(&id)
            .execute(&pool)
            .await
            .expect("update")
            .rows_affected();
    }
    assert_eq!(migrated, 1);

    // Feature flags load as the guide's loadFeatureFlags reads them: every flag it names.
    let row = sqlx::query(LOAD_FLAGS)
        .fetch_one(&pool)
        .await
        .expect("flags row");
    let flags: Json<Value> = row.try_get("flags").expect("flags column");
    for name in GUIDE_FLAGS {
        assert!(
            flags.0.get(name).is_some(),
            "flag {name} missing from {}",
            flags.0
        );
    }

    // add-mission.ts inserts straight into missions; the server can then load and play it.
    let questions =
        json!([{"text": "Firewall blocks?", "choices": ["traffic", "light"], "correct": 0}]);
    let inserted = sqlx::query(ADD_MISSION)
        .bind("advanced_cyber_defense")
        .bind("it")
        .bind("Advanced Cyber Defense")
        .bind("hard")
        .bind(Json(&questions))
        .execute(&pool)
        .await
        .expect("insert mission")
        .rows_affected();
    assert_eq!(inserted, 1);
    let m = app
        .node
        .store
        .mission("advanced_cyber_defense")
        .await
        .expect("db")
        .expect("stored");
    m.validate().expect("a valid mission");
}

// ----- operator commands -------------------------------------------------------------------

async fn reward_count(store: &Store) -> i64 {
    count(store, "SELECT COUNT(*) FROM reward_items").await
}

async fn weekly_rewards_are_paid_once(backend: Backend) {
    let (store, _dir) = fresh_store(backend).await;
    let now = Utc::now();
    let week = Week::before(now);
    let s = |secs: i64| week.start + Duration::seconds(secs);
    // u1 finishes at the very start of the week and u2 at its last second: both count.
    progress(&store, "u1", "it", 300, week.start).await;
    progress(&store, "u2", "it", 200, week.end - Duration::seconds(1)).await;
    progress(&store, "u5", "it", 100, s(3600)).await;
    progress(&store, "u5", "science", 50, s(7200)).await;
    progress(&store, "u3", "it", 100, s(86_400)).await;
    // At next Monday 00:00 a score belongs to the next week; a second before the start, to the last.
    progress(&store, "u3", "it", 1_000, week.end).await;
    progress(&store, "u4", "it", 5_000, week.start - Duration::seconds(1)).await;

    let mut out = Vec::new();
    let first = ops::award_weekly_rewards(&store, Some(&week.label), 3, now, &mut out)
        .await
        .expect("award");
    let text = String::from_utf8(out).expect("utf8");
    assert_eq!(first.paid_now(), 3, "{text}");
    let got: Vec<(&str, u32, i64, i64)> = first
        .awards
        .iter()
        .map(|a| (a.user.as_str(), a.rank, a.points, a.amount))
        .collect();
    assert_eq!(
        got,
        [
            ("u1", 1, 300, 1000),
            ("u2", 2, 200, 500),
            ("u5", 3, 150, 250)
        ]
    );
    assert!(
        text.contains(&week.label) && text.lines().last().expect("summary").starts_with("done:"),
        "{text}"
    );
    assert_eq!(reward_count(&store).await, 3);
    assert_eq!(
        count(
            &store,
            "SELECT CAST(SUM(amount) AS BIGINT) FROM reward_items"
        )
        .await,
        1750
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM weekly_awards WHERE reward_id IS NOT NULL"
        )
        .await,
        3
    );

    // Again, and again with a bigger top: the week is settled, nothing more is paid.
    for top in [3, 10] {
        let mut out = Vec::new();
        let again = ops::award_weekly_rewards(&store, Some(&week.label), top, now, &mut out)
            .await
            .expect("re-run");
        assert_eq!(again.paid_now(), 0);
        assert_eq!(again.awards.len(), 3);
        assert!(String::from_utf8(out)
            .expect("utf8")
            .contains("already paid"));
        assert_eq!(reward_count(&store).await, 3);
    }
    // The default week is the last full one.
    let default = ops::award_weekly_rewards(&store, None, 3, now, &mut Vec::new())
        .await
        .expect("default week");
    assert_eq!(default.week, week);
    assert_eq!(reward_count(&store).await, 3);
    // The running week cannot be paid: its ranking may still change.
    let open = Week::containing(now);
    let err = ops::award_weekly_rewards(&store, Some(&open.label), 3, now, &mut Vec::new())
        .await
        .expect_err("open week");
    assert!(err.to_string().contains("not over"), "{err}");
    // A week without points pays nothing and says so.
    let mut out = Vec::new();
    let empty = ops::award_weekly_rewards(&store, Some("2020-W10"), 3, now, &mut out)
        .await
        .expect("empty week");
    assert!(empty.awards.is_empty());
    assert!(String::from_utf8(out)
        .expect("utf8")
        .contains("nothing to pay"));
}

#[tokio::test]
async fn award_weekly_rewards_twice_pays_once_sqlite() {
    weekly_rewards_are_paid_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn award_weekly_rewards_twice_pays_once_postgres() {
    weekly_rewards_are_paid_once(Backend::Postgres).await;
}

#[tokio::test]
async fn concurrent_award_runs_still_pay_once() {
    let (store, _dir) = fresh_store(Backend::Postgres).await;
    let now = Utc::now();
    let week = Week::before(now);
    for (i, user) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        progress(
            &store,
            user,
            "it",
            100 * (i as i64 + 1),
            week.start + Duration::hours(1),
        )
        .await;
    }
    let (mut o1, mut o2) = (Vec::new(), Vec::new());
    let (r1, r2) = tokio::join!(
        ops::award_weekly_rewards(&store, Some(&week.label), 4, now, &mut o1),
        ops::award_weekly_rewards(&store, Some(&week.label), 4, now, &mut o2),
    );
    let paid = r1.expect("run 1").paid_now() + r2.expect("run 2").paid_now();
    assert_eq!(paid, 4);
    assert_eq!(reward_count(&store).await, 4);
}

/// Rows with labels: each table gets rows the guide's cleanup must delete and rows it must keep.
async fn seed_cleanup(store: &Store, now: DateTime<Utc>) {
    let days = |d: i64| now - Duration::days(d);
    let telemetry =
        "INSERT INTO telemetry_events (user_id, event, created_at) VALUES ('u', $1, $2)";
    let notification = "INSERT INTO notifications (user_id, kind, title, message, created_at, expires_at) VALUES ('u', 'news', $1, 'm', $2, $3)";
    let reward = "INSERT INTO reward_items (user_id, kind, amount, reason, claimed, created_at) VALUES ('u', 'coins', 1, $1, $2, $3)";
    macro_rules! seed {
        ($pool:expr) => {{
            for (label, at) in [("old", days(91)), ("recent", days(89)), ("today", now)] {
                sqlx::query(telemetry)
                    .bind(label)
                    .bind(at)
                    .execute($pool)
                    .await
                    .expect("telemetry");
            }
            for (label, expires) in [
                ("expired", Some(now - Duration::hours(1))),
                ("live", Some(now + Duration::days(1))),
                ("forever", None),
            ] {
                sqlx::query(notification)
                    .bind(label)
                    .bind(days(40))
                    .bind(expires)
                    .execute($pool)
                    .await
                    .expect("notification");
            }
            for (label, claimed, at) in [
                ("old_unclaimed", false, days(31)),
                ("old_claimed", true, days(31)),
                ("new_unclaimed", false, days(29)),
                ("new_claimed", true, days(1)),
            ] {
                sqlx::query(reward)
                    .bind(label)
                    .bind(claimed)
                    .bind(at)
                    .execute($pool)
                    .await
                    .expect("reward");
            }
        }};
    }
    with_pool!(store, p => seed!(p))
}

async fn labels(store: &Store) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for sql in [
        "SELECT event FROM telemetry_events ORDER BY event",
        "SELECT title FROM notifications ORDER BY title",
        "SELECT reason FROM reward_items ORDER BY reason",
    ] {
        out.push(
            with_pool!(store, p => sqlx::query_scalar::<_, String>(sql).fetch_all(p).await)
                .expect("labels"),
        );
    }
    out
}

fn kept() -> Vec<Vec<String>> {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["recent", "today"]),
        v(&["forever", "live"]),
        v(&["new_claimed", "new_unclaimed", "old_claimed"]),
    ]
}

#[tokio::test]
async fn cleanup_deletes_only_what_the_guide_says() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (store, _dir) = fresh_store(backend).await;
        let now = Utc::now();
        seed_cleanup(&store, now).await;
        let mut out = Vec::new();
        let counts = ops::cleanup(&store, now, &mut out).await.expect("cleanup");
        assert_eq!(
            (
                counts.telemetry_events,
                counts.notifications,
                counts.reward_items
            ),
            (1, 1, 1),
            "{backend:?}"
        );
        assert_eq!(labels(&store).await, kept(), "{backend:?}");
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.lines()
                .last()
                .expect("summary")
                .starts_with("done: deleted 1 telemetry"),
            "{text}"
        );
        // Safe to re-run: nothing more goes.
        let again = ops::cleanup(&store, now, &mut Vec::new())
            .await
            .expect("re-run");
        assert_eq!(
            (
                again.telemetry_events,
                again.notifications,
                again.reward_items
            ),
            (0, 0, 0)
        );
        assert_eq!(labels(&store).await, kept());
    }
    // The guide's own cleanup.ts statements, verbatim, leave exactly the same rows.
    let (store, _dir) = fresh_store(Backend::Postgres).await;
    seed_cleanup(&store, Utc::now()).await;
    let pool = pg(&store);
    for sql in [CLEANUP_TELEMETRY, CLEANUP_NOTIFICATIONS, CLEANUP_REWARDS] {
        assert_eq!(
            sqlx::query(sql)
                .execute(&pool)
                .await
                .expect("guide cleanup")
                .rows_affected(),
            1,
            "{sql}"
        );
    }
    assert_eq!(labels(&store).await, kept());
}

#[tokio::test]
async fn report_fields_on_both_backends() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (store, _dir) = fresh_store(backend).await;
        let now = Utc::now();
        let user =
            "INSERT INTO users (user_id, name, created_at, last_login) VALUES ($1, $1, $2, $3)";
        let event = "INSERT INTO telemetry_events (user_id, event, created_at) VALUES ($1, 'session_start', $2)";
        macro_rules! seed {
            ($p:expr) => {{
                // old joined 60 days ago; back joined 20 days ago and came back 10 days later; new joined today.
                for (u, created, login) in [("old", 60, 59), ("back", 20, 10), ("new", 0, 0)] {
                    sqlx::query(user).bind(u).bind(now - Duration::days(created)).bind(now - Duration::days(login))
                        .execute($p).await.expect("user");
                }
                for (u, ago) in [("back", 3), ("new", 0), ("new", 1), ("old", 45)] {
                    sqlx::query(event).bind(u).bind(now - Duration::days(ago)).execute($p).await.expect("event");
                }
            }};
        }
        with_pool!(&store, p => seed!(p));
        progress(&store, "back", "it", 10, now - Duration::days(3)).await;
        progress(&store, "new", "it", 10, now - Duration::hours(1)).await;
        progress(&store, "new", "science", 10, now - Duration::hours(2)).await;
        progress(&store, "old", "science", 10, now - Duration::days(45)).await;
        progress(&store, "old", "science", 10, now - Duration::days(44)).await;
        let mut out = Vec::new();
        let report = ops::monthly_report(&store, now, 30, &mut out)
            .await
            .expect("report");
        assert_eq!(report["totalUsers"], 3, "{backend:?} {report}");
        assert_eq!(report["mau"], 2);
        assert_eq!(report["missionsCompleted"], 3);
        assert_eq!(report["topWorld"], json!({"world": "it", "count": 2}));
        assert_eq!(
            report["topWorlds"],
            json!([{"world": "it", "count": 2}, {"world": "science", "count": 1}])
        );
        assert_eq!(report["newUsers"], 2);
        assert_eq!(report["retentionDay1"], 1);
        assert_eq!(report["retentionDay7"], 1);
        assert_eq!(report["periodDays"], 30);
        let minutes = report["averageMissionMinutes"].as_f64().expect("minutes");
        assert!((minutes - 2.0).abs() < 1e-3, "{backend:?}: {minutes}");
        assert!(String::from_utf8(out)
            .expect("utf8")
            .contains("done: 3 users, 2 active, 3 missions completed, top world it"));
        if let Store::Postgres(pool) = &store {
            assert_eq!(
                psql_ok(pool, REPORT_TOP_WORLD).await,
                vec![vec![Some("it".into()), Some("2".into())]]
            );
            assert_eq!(
                psql_ok(pool, REPORT_MISSIONS).await,
                vec![vec![Some("3".into())]]
            );
            assert_eq!(
                psql_ok(pool, REPORT_MAU).await,
                vec![vec![Some("2".into())]]
            );
        }
    }
}

#[tokio::test]
async fn update_clan_stats_recomputes_from_matches() {
    let (store, _dir) = fresh_store(Backend::Postgres).await;
    let now = Utc::now();
    let week = Week::containing(now);
    let in_week = week.start.max(now - Duration::hours(2));
    assert!(store.create_clan("owls", "Night Owls").await.expect("clan"));
    assert!(!store.create_clan("owls", "Other").await.expect("taken"));
    assert!(store
        .create_clan("larks", "Early Larks")
        .await
        .expect("clan"));
    let joined = in_week - Duration::days(30);
    for (u, c) in [("ann", "owls"), ("bob", "owls"), ("cid", "larks")] {
        assert!(store.join_clan(u, c, joined).await.expect("join"));
    }
    assert!(!store
        .join_clan("dan", "nope", joined)
        .await
        .expect("no clan"));
    progress(&store, "ann", "it", 100, in_week).await;
    progress(&store, "bob", "it", 40, in_week).await;
    progress(&store, "ann", "it", 1000, joined - Duration::days(1)).await; // before joining: not the clan's
    progress(&store, "bob", "it", 7, week.start - Duration::days(2)).await; // last week: all-time only
    progress(&store, "cid", "it", 60, in_week).await;
    progress(&store, "dan", "it", 500, in_week).await; // in no clan
    for _ in 0..2 {
        let mut out = Vec::new();
        let stats = ops::update_clan_stats(&store, now, &mut out)
            .await
            .expect("update");
        let got: Vec<(&str, i64, i64, i64)> = stats
            .iter()
            .map(|s| (s.clan.as_str(), s.members, s.points, s.weekly_points))
            .collect();
        assert_eq!(got, [("larks", 1, 60, 60), ("owls", 2, 147, 140)]);
        assert!(String::from_utf8(out)
            .expect("utf8")
            .contains("done: 2 clans, 3 members updated"));
    }
    let cached = count(&store, "SELECT points FROM clans WHERE id = 'owls'").await;
    assert_eq!(cached, 147);
}

#[tokio::test]
async fn the_admin_cli_runs_each_command() {
    let (url, dir) = fresh_database(Backend::Sqlite).await;
    let dir = dir.expect("sqlite dir");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_juno-server"))
            .args(args)
            .env("DATABASE_URL", &url)
            .env_remove("REDIS_URL")
            .env_remove("JUNO_CONFIG")
            .env("RUST_LOG", "warn")
            .output()
            .expect("run juno-server")
    };
    let mission = dir.0.join("missions.json");
    std::fs::write(&mission, serde_json::to_string(&json!([
        {"id": "nets", "world": "it", "title": "Networks", "difficulty": "hard",
         "questions": [{"text": "Port of SSH?", "choices": ["22", "80"], "correct": 0, "difficulty": 4}]},
        {"id": "cells", "world": "science", "title": "Cells", "difficulty": "easy",
         "questions": [{"text": "Powerhouse?", "choices": ["Mitochondria", "Nucleus"], "correct": 0}]}
    ])).expect("json")).expect("write");
    let first = run(&["admin", "add-mission", mission.to_str().expect("path")]);
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        text.contains("done: 2 missions created, 0 replaced"),
        "{text}"
    );
    let again = run(&["admin", "add-mission", mission.to_str().expect("path")]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("done: 0 missions created, 2 replaced"));
    let store = Store::connect(&url).await.expect("store");
    let nets = store.mission("nets").await.expect("db").expect("stored");
    assert_eq!(nets.questions[0].difficulty, Some(4));
    // An invalid mission is refused before anything is written.
    std::fs::write(
        &mission,
        r#"{"id": "bad", "world": "it", "title": "Bad", "difficulty": "easy", "questions": []}"#,
    )
    .expect("write");
    let bad = run(&["admin", "add-mission", mission.to_str().expect("path")]);
    assert!(!bad.status.success());
    assert!(store.mission("bad").await.expect("db").is_none());

    let report_file = dir.0.join("reports").join("monthly.json");
    let report = run(&[
        "admin",
        "report",
        "--out",
        report_file.to_str().expect("path"),
    ]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).expect("report file"))
            .expect("json");
    for field in [
        "totalUsers",
        "mau",
        "missionsCompleted",
        "topWorld",
        "generatedAt",
    ] {
        assert!(json.get(field).is_some(), "{field} in {json}");
    }
    let to_stdout = run(&["admin", "report"]);
    let json: Value = serde_json::from_slice(&to_stdout.stdout).expect("stdout is the JSON alone");
    assert_eq!(json["totalUsers"], 0);

    for args in [
        &["admin", "cleanup"][..],
        &["admin", "update-clan-stats"],
        &["admin", "award-weekly-rewards", "--week", "2020-W10"],
    ] {
        let o = run(args);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{args:?}: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            text.lines().last().is_some_and(|l| l.starts_with("done:")),
            "{args:?}: {text}"
        );
    }
    let open = run(&[
        "admin",
        "award-weekly-rewards",
        "--week",
        &Week::containing(Utc::now()).label,
    ]);
    assert!(!open.status.success(), "the running week is refused");
    let bad_week = run(&["admin", "award-weekly-rewards", "--week", "last-week"]);
    assert!(!bad_week.status.success());
}
