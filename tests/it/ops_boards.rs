//! The SQL leaderboards over HTTP (all-time, clans this week, a player's own weekly
//! rank with neighbours) and the rating / recent-play store functions that ratings
//! and adaptive difficulty build on.

use chrono::{DateTime, Duration, Utc};
use juno_server::model::rating::{update_duel, Outcome, Rating};
use juno_server::ops::Week;
use juno_server::store::Store;
use juno_server::with_pool;
use serde_json::Value;

use crate::support::*;

async fn exec(store: &Store, sql: &str) {
    with_pool!(store, p => sqlx::query(sql).execute(p).await.map(|_| ()))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A finished match row worth `score` for `user` at `at`, with `correct` of `asked` right.
async fn played(
    store: &Store,
    user: &str,
    score: i64,
    at: DateTime<Utc>,
    correct: i32,
    asked: i32,
) {
    let sql = "INSERT INTO mission_progress (user_id, mission_id, world, score, correct, answered, questions, success, finished, started_at, finished_at)
               VALUES ($1, 'demo', 'it', $2, $3, $4, $4, $5, $6, $7, $7)";
    let success = correct * 2 >= asked;
    with_pool!(store, p => sqlx::query(sql)
        .bind(user)
        .bind(score)
        .bind(correct)
        .bind(asked)
        .bind(success)
        .bind(true)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ()))
    .expect("seed");
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let resp = app.http.get(app.url(path)).send().await.expect("http");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

fn users_of(board: &Value) -> Vec<(u64, String, i64)> {
    board["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["rank"].as_u64().expect("rank"),
                e["user"]
                    .as_str()
                    .or(e["clan"].as_str())
                    .expect("id")
                    .to_string(),
                e["points"].as_i64().expect("points"),
            )
        })
        .collect()
}

async fn boards(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = &app.node.store;
    let now = Utc::now();
    let week = Week::containing(now);
    // A moment inside this ISO week even right after Monday 00:00.
    let at = week.start.max(now - Duration::minutes(10));
    // Seven players this week: p1 700 … p7 100, plus one from last week only.
    for i in 1..=7 {
        played(store, &format!("p{i}"), (8 - i) * 100, at, 1, 1).await;
    }
    played(store, "old", 5_000, week.start - Duration::days(1), 1, 1).await;
    exec(store, "INSERT INTO users (user_id, name, total_points) VALUES ('p1', 'Pia', 900), ('p2', '', 800), ('p3', 'Per', 800), ('zero', 'Zed', 0)").await;

    // All-time: by users.total_points, ties by id, nobody without points.
    let (status, all) = get(&app, "/api/leaderboard/individual/alltime?limit=10").await;
    assert_eq!(status, 200);
    assert_eq!(
        users_of(&all),
        [
            (1, "p1".into(), 900),
            (2, "p2".into(), 800),
            (3, "p3".into(), 800)
        ]
    );
    assert_eq!(all["entries"][0]["name"], "Pia");
    assert_eq!(
        all["entries"][1]["name"], "p2",
        "a user without a name is shown by id"
    );
    let (_, two) = get(&app, "/api/leaderboard/individual/alltime?limit=2").await;
    assert_eq!(users_of(&two).len(), 2);

    // My weekly rank with two neighbours each side, agreeing with the weekly board.
    let (_, weekly) = get(&app, "/api/leaderboard/individual/weekly?limit=100").await;
    let board = users_of(&weekly);
    assert_eq!(board.len(), 7);
    let (status, me) = get(
        &app,
        "/api/leaderboard/individual/weekly/me?user=p4&around=2",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(me["week"], week.label);
    assert_eq!(me["rank"], 4);
    assert_eq!(me["points"], 400);
    assert_eq!(users_of(&me), board[1..6].to_vec());
    let (_, top) = get(
        &app,
        "/api/leaderboard/individual/weekly/me?user=p1&around=2",
    )
    .await;
    assert_eq!(users_of(&top), board[..3].to_vec());
    let (_, last) = get(&app, "/api/leaderboard/individual/weekly/me?user=p7").await;
    assert_eq!(
        users_of(&last),
        board[4..].to_vec(),
        "two above by default, none below the last"
    );
    let (_, nobody) = get(
        &app,
        "/api/leaderboard/individual/weekly/me?user=old&around=3",
    )
    .await;
    assert_eq!(nobody["rank"], Value::Null);
    assert_eq!(nobody["points"], 0);
    assert_eq!(nobody["entries"], serde_json::json!([]));
    let (status, _) = get(&app, "/api/leaderboard/individual/weekly/me").await;
    assert_eq!(status, 400);
    let (status, _) = get(
        &app,
        "/api/leaderboard/individual/weekly/me?user=no%20spaces",
    )
    .await;
    assert_eq!(status, 400);

    // Clans this week: members' points from the moment they joined.
    store.create_clan("owls", "Night Owls").await.expect("clan");
    store
        .create_clan("larks", "Early Larks")
        .await
        .expect("clan");
    store.create_clan("bats", "Bats").await.expect("clan");
    for (u, c) in [
        ("p1", "larks"),
        ("p6", "owls"),
        ("p7", "owls"),
        ("old", "bats"),
    ] {
        assert!(store
            .join_clan(u, c, at - Duration::seconds(1))
            .await
            .expect("join"));
    }
    // p2 joins after scoring: this week's 600 stay p2's own.
    store
        .join_clan("p2", "owls", at + Duration::seconds(1))
        .await
        .expect("join");
    let (status, clans) = get(&app, "/api/leaderboard/clans/weekly?limit=10").await;
    assert_eq!(status, 200);
    assert_eq!(clans["week"], week.label);
    assert_eq!(
        users_of(&clans),
        [(1, "larks".into(), 700), (2, "owls".into(), 300)]
    );
    assert_eq!(clans["entries"][1]["name"], "Night Owls");
    assert_eq!(clans["entries"][1]["players"], 2);
    // Leaving takes a member's points away; moving clans counts from the move on.
    assert!(store.leave_clan("p1").await.expect("leave"));
    assert!(!store.leave_clan("p1").await.expect("not in a clan"));
    let (_, clans) = get(&app, "/api/leaderboard/clans/weekly").await;
    assert_eq!(users_of(&clans), [(1, "owls".into(), 300)]);
}

#[tokio::test]
async fn leaderboards_sqlite() {
    boards(Backend::Sqlite).await;
}

#[tokio::test]
async fn leaderboards_postgres() {
    boards(Backend::Postgres).await;
}

async fn ratings_round_trip(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    let store = Store::connect(&url).await.expect("store");
    exec(
        &store,
        "INSERT INTO users (user_id, name) VALUES ('ann', 'Ann')",
    )
    .await;
    let users = ["ann", "bob"];
    let before = store.ratings(&users).await.expect("ratings");
    assert_eq!(
        before["ann"],
        Rating::default(),
        "a user from before 0002 gets the defaults"
    );
    assert_eq!(before["bob"], Rating::default(), "an unknown user too");
    let (a, b) = update_duel(before["ann"], before["bob"], Outcome::AWon);
    store
        .save_ratings(&[("ann", a), ("bob", b)])
        .await
        .expect("save");
    let after = store.ratings(&users).await.expect("ratings");
    assert!((after["ann"].rating - a.rating).abs() < 1e-3 && after["ann"].rating > 1500.0);
    assert!((after["bob"].rd - b.rd).abs() < 1e-3 && after["bob"].rating < 1500.0);
    assert!((after["bob"].volatility - b.volatility).abs() < 1e-6);
    assert_eq!(
        store.mission("demo").await.expect("db").map(|m| m.id),
        Some("demo".into()),
        "saving ratings leaves the rest alone"
    );
    // Recent play: only the latest 20 finished matches count.
    let now = Utc::now();
    for i in 0..25 {
        // The five oldest were perfect; the latest 20 are 1 of 4 right.
        let (correct, asked) = if i < 5 { (4, 4) } else { (1, 4) };
        played(
            &store,
            "ann",
            10,
            now - Duration::minutes(100 - i),
            correct,
            asked,
        )
        .await;
    }
    let recent = store.recent_play(&["ann", "bob"]).await.expect("recent");
    assert_eq!(recent.len(), 1, "bob never played");
    let ann = recent["ann"];
    assert_eq!((ann.matches, ann.correct, ann.asked), (20, 20, 80));
    assert_eq!(ann.success_rate(), Some(0.25));
    let stats = juno_server::game::difficulty::PlayerStats::load(&store, &["ann", "bob"])
        .await
        .expect("stats");
    assert_eq!(stats[0].recent_success, Some(0.25));
    assert!(stats[0].rating > 1500.0);
    assert!(stats[1].rating < 1500.0, "bob lost the duel");
    assert_eq!(stats[1].recent_success, None);
}

#[tokio::test]
async fn ratings_and_recent_play_sqlite() {
    ratings_round_trip(Backend::Sqlite).await;
}

#[tokio::test]
async fn ratings_and_recent_play_postgres() {
    ratings_round_trip(Backend::Postgres).await;
}
