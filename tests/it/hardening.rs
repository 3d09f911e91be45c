//! WIRE.md v1.1's hardening, each injected against real servers: tokens as a
//! new user would make them, queue tickets that outlive Redis, notifications
//! for players who were offline.

use std::time::Duration;

use futures_util::StreamExt;
use juno_protocol::{ClientMsg, Mode, ServerMsg};
use tokio_tungstenite::tungstenite;

use crate::is;
use crate::procs::*;
use crate::support::*;

#[tokio::test]
async fn a_long_user_id_without_a_name_plays_named_by_its_first_32_characters() {
    let app = spawn_app(Backend::Sqlite).await;
    // A UUID-like id of 36 characters, and the longest valid one.
    for user in [
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301".to_string(),
        "u".repeat(64),
    ] {
        let token = app.auth.mint(&user, None, 3600).expect("mint");
        let (ws, _) = tokio_tungstenite::connect_async(app.ws_url(&token))
            .await
            .unwrap_or_else(|e| panic!("{user}: refused: {e}"));
        let client = Client::from_ws(ws, &user).await;
        assert_eq!(client.welcome.user, user);
        assert_eq!(
            client.welcome.name,
            user.chars().take(32).collect::<String>()
        );
    }
    // A 65-character id is still refused before the upgrade.
    let token = app.auth.mint(&"u".repeat(65), None, 3600).expect("mint");
    match tokio_tungstenite::connect_async(app.ws_url(&token)).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a 65-character id must get 401, got {other:?}"),
    }
}

async fn queue(c: &mut Client) {
    c.request(ClientMsg::Queue {
        mode: Mode::Duel,
        mission: "demo".into(),
    })
    .await
    .expect("queue");
}

#[tokio::test]
async fn a_queued_player_is_matched_after_redis_restarts_empty() {
    let mut redis = OwnRedis::start();
    let cluster = ClusterProcs::start(2, &redis.url(), &[]).await;
    let mut ann = cluster.connect(0, "ann").await;
    queue(&mut ann).await;

    redis.stop();
    // Long enough for both nodes to notice (a heartbeat is 2 s).
    tokio::time::sleep(Duration::from_secs(5)).await;
    redis.restart();
    for i in 0..2 {
        let mut healed = false;
        for _ in 0..100 {
            if cluster.health(i).await["redis"] == "ok" {
                healed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(healed, "node {i} sees Redis again");
    }

    // A newcomer on the other node: the only one who could be paired with them is ann.
    let mut bob = cluster.connect(1, "bob").await;
    queue(&mut bob).await;
    let found = bob
        .expect(
            "match_found with the player queued before the outage",
            |m| is!(m, ServerMsg::MatchFound),
        )
        .await;
    let ids: Vec<&str> = found.players.iter().map(|p| p.id.as_str()).collect();
    assert!(ids.contains(&"ann") && ids.contains(&"bob"), "{ids:?}");
    let also = ann
        .expect("ann's match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    assert_eq!(also.room, found.room);
}

/// Closes `c` and waits until the node has let the user go.
async fn leave(app: &TestApp, mut c: Client) {
    let user = c.user.clone();
    let _ = c.ws.close(None).await;
    while let Some(Ok(_)) = c.ws.next().await {}
    eventually(
        &format!("{user}'s session ends"),
        DEADLINE,
        async || match app.node.sessions.get(&user) {
            None => Ok(()),
            Some(_) => Err("still connected"),
        },
    )
    .await;
}

async fn execute(app: &TestApp, sql: &str) {
    juno_server::with_pool!(&app.node.store, pool => sqlx::query(sql).execute(pool).await.map(|_| ()))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Posts a notification for `users`; returns how many rows were stored.
async fn notify(app: &TestApp, title: &str, users: &[&str]) -> u64 {
    let resp = app
        .http
        .post(app.url("/admin/notifications"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"title": title, "message": "m", "users": users}))
        .send()
        .await
        .expect("http");
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = resp.json().await.expect("json");
    body["stored"].as_u64().expect("stored")
}

/// Reconnects `user` and returns the first notification they get, checking
/// that `stale` does not come before it.
async fn first_notification_after_login(app: &TestApp, user: &str, stale: &[&str]) -> String {
    let mut c = app.connect(user).await;
    let stale: Vec<String> = stale.iter().map(|s| s.to_string()).collect();
    let n = c
        .expect_none_before(
            "a notification",
            |m| match m {
                ServerMsg::Notification(n) if !stale.contains(&n.title) => Some(n.title.clone()),
                _ => None,
            },
            "a notification delivered before, or expired",
            |m| matches!(m, ServerMsg::Notification(n) if stale.contains(&n.title)),
        )
        .await;
    leave(app, c).await;
    n
}

#[tokio::test]
async fn a_notification_reaches_an_offline_player_at_their_next_login_once() {
    let app = spawn_app(Backend::Sqlite).await;
    // Both users exist (their first login wrote their row); ann goes offline.
    let ann = app.connect("ann").await;
    let mut bob = app.connect("bob").await;
    app.eventually_scalar(
        "SELECT COUNT(*) FROM users WHERE user_id IN ('ann', 'bob')",
        2,
    )
    .await;
    leave(&app, ann).await;
    assert_eq!(notify(&app, "A", &["ann", "bob"]).await, 2);
    let live = bob
        .expect("the live notification", |m| is!(m, ServerMsg::Notification))
        .await;
    assert_eq!(live.title, "A");
    leave(&app, bob).await;

    // ann gets A at her next login.
    assert_eq!(first_notification_after_login(&app, "ann", &[]).await, "A");
    // Once: after B is stored for her while she is away, B is the first she gets.
    assert_eq!(notify(&app, "B", &["ann"]).await, 1);
    assert_eq!(
        first_notification_after_login(&app, "ann", &["A"]).await,
        "B"
    );
    // bob, who had A live, does not get it again at login either.
    assert_eq!(notify(&app, "C", &["bob"]).await, 1);
    assert_eq!(
        first_notification_after_login(&app, "bob", &["A"]).await,
        "C"
    );
    // An expired notification is never delivered.
    execute(
        &app,
        "INSERT INTO notifications (user_id, kind, title, message, created_at, expires_at) \
         VALUES ('ann', 'special_announcement', 'expired', 'm', '2020-01-01 00:00:00+00:00', '2020-01-02 00:00:00+00:00')",
    )
    .await;
    assert_eq!(notify(&app, "D", &["ann"]).await, 1);
    assert_eq!(
        first_notification_after_login(&app, "ann", &["A", "B", "expired"]).await,
        "D"
    );
    app.eventually_scalar(
        "SELECT COUNT(*) FROM notifications WHERE delivered_at IS NULL AND title <> 'expired'",
        0,
    )
    .await;
}
