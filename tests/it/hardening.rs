//! WIRE.md v1.1's hardening, each injected against real servers: tokens as a
//! new user would make them, queue tickets that outlive Redis, notifications
//! for players who were offline.

use std::time::Duration;

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
