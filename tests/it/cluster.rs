//! Three real nodes sharing Postgres and Redis, with real nginx in front: any
//! node serves any client, rooms are reached across nodes, flags spread, players
//! resume anywhere, a node drains cleanly, and Redis trouble harms no local room.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use juno_protocol::{ClientMsg, ErrorCode, Mode, Phase, Question, RoomOptions, ServerMsg};

use crate::bots::*;
use crate::is;
use crate::procs::*;
use crate::support::*;

pub(crate) async fn demo_key(cluster: &ClusterProcs) -> Arc<HashMap<String, u32>> {
    let pool = sqlx::PgPool::connect(&cluster.database_url)
        .await
        .expect("pg");
    let questions: sqlx::types::Json<Vec<Question>> =
        sqlx::query_scalar("SELECT questions FROM missions WHERE id = 'demo'")
            .fetch_one(&pool)
            .await
            .expect("demo");
    pool.close().await;
    Arc::new(
        questions
            .0
            .into_iter()
            .map(|q| (q.text, q.correct))
            .collect(),
    )
}

/// Queues two players; returns the room they were matched into.
async fn matched(a: &mut Client, b: &mut Client) -> String {
    queue(a).await;
    queue(b).await;
    let room = a
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await
        .room;
    assert_eq!(
        b.expect("match_found", |m| is!(m, ServerMsg::MatchFound))
            .await
            .room,
        room
    );
    room
}

pub(crate) async fn queue(c: &mut Client) {
    c.request(ClientMsg::Queue {
        mode: Mode::Duel,
        mission: "demo".into(),
    })
    .await
    .expect("queue");
}

#[tokio::test]
async fn a_duel_across_nodes_is_watched_from_a_third() {
    // A countdown long enough for the spectator to arrive before the first question.
    let cluster = ClusterProcs::start(3, &test_redis_url(), &[("JUNO_COUNTDOWN_MS", "1500")]).await;
    let key = demo_key(&cluster).await;
    let mut ann = cluster.connect(0, "ann").await;
    let mut bob = cluster.connect(1, "bob").await;
    assert_eq!(
        (ann.welcome.node.as_str(), bob.welcome.node.as_str()),
        ("n1", "n2")
    );
    queue(&mut ann).await;
    queue(&mut bob).await;
    let found = ann
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    let mut eve = cluster.connect(2, "eve").await;
    eve.request(ClientMsg::Spectate {
        room: found.room.clone(),
    })
    .await
    .expect("spectate from the third node");
    let state = eve
        .expect("room_state", |m| is!(m, ServerMsg::RoomState))
        .await;
    assert_eq!(state.player_count, 2);
    let ann_right: Policy = Arc::new(|t: &Turn| Some(t.user == "ann"));
    let bots =
        [ann, bob, eve].map(|c| spawn_bot(c, key.clone(), ann_right.clone(), found.room.clone()));
    let mut results = Vec::new();
    let mut eve_questions = 0;
    for bot in bots {
        let (client, seen) = bot.await.expect("bot");
        if client.user == "eve" {
            eve_questions = all_of(&seen, |m| is!(m, ServerMsg::Question)).len();
            assert_eq!(all_of(&seen, |m| is!(m, ServerMsg::Round)).len(), 3);
        }
        results.push(
            all_of(&seen, |m| is!(m, ServerMsg::Result))
                .pop()
                .expect("result"),
        );
    }
    assert_eq!(eve_questions, 3);
    assert!(results.iter().all(|r| r == &results[0]));
    assert_eq!(results[0].winner.as_deref(), Some("ann"));
    assert!(results[0].standings[0].score >= 3 * 100);
    cluster
        .eventually_scalar(
            &format!(
                "SELECT COUNT(*) FROM matches WHERE id = '{}' AND winner = 'ann'",
                found.room
            ),
            1,
        )
        .await;
}

#[tokio::test]
async fn a_battle_royale_spread_over_three_nodes_plays_to_the_end() {
    let cluster = ClusterProcs::start(3, &test_redis_url(), &[]).await;
    let key = demo_key(&cluster).await;
    let mut host = cluster.connect(0, "p0").await;
    let options = RoomOptions {
        questions: Some(3),
        max_players: Some(6),
        question_ms: Some(3000),
        countdown_ms: Some(0),
        between_ms: Some(0),
        ..Default::default()
    };
    let room = host.create_room(Mode::BattleRoyale, Some(options)).await;
    let mut clients = vec![host];
    for i in 1..6 {
        let mut c = cluster.connect(i % 3, &format!("p{i}")).await;
        c.request(ClientMsg::Join { room: room.clone() })
            .await
            .expect("join across nodes");
        clients.push(c);
    }
    // p1 (node 2) goes out first, p2 (node 3) next; the rest always answer right.
    let policy: Policy =
        Arc::new(|t: &Turn| Some(!(t.user == "p1" && t.q == 0 || t.user == "p2" && t.q == 1)));
    let bots: Vec<_> = clients
        .into_iter()
        .map(|c| spawn_bot(c, key.clone(), policy.clone(), room.clone()))
        .collect();
    let mut results = Vec::new();
    for bot in bots {
        let (_, seen) = bot.await.expect("bot");
        results.push(
            all_of(&seen, |m| is!(m, ServerMsg::Result))
                .pop()
                .expect("every player gets the result"),
        );
    }
    let result = &results[0];
    assert!(results.iter().all(|r| r == result));
    let rank = |id: &str| {
        result
            .standings
            .iter()
            .find(|s| s.id == id)
            .expect("listed")
            .rank
    };
    assert_eq!(rank("p1"), 6);
    assert_eq!(rank("p2"), 5);
    cluster
        .eventually_scalar(
            &format!("SELECT COUNT(*) FROM match_players WHERE match_id = '{room}'"),
            6,
        )
        .await;
}

#[tokio::test]
async fn a_flag_changed_on_one_node_reaches_clients_of_the_others() {
    let cluster = ClusterProcs::start(3, &test_redis_url(), &[]).await;
    let mut on2 = cluster.connect(1, "ann").await;
    let mut on3 = cluster.connect(2, "bob").await;
    let changed = tokio::time::Instant::now();
    assert_eq!(cluster.admin_put_flag(0, "battle_royale", false).await, 200);
    for c in [&mut on2, &mut on3] {
        let flags = c.expect("flags", |m| is!(m, ServerMsg::Flags)).await;
        assert_eq!(flags.flags.get("battle_royale"), Some(&false));
    }
    assert!(
        changed.elapsed() < Duration::from_secs(1),
        "pushed within a second: {:?}",
        changed.elapsed()
    );
    assert_eq!(
        on3.refusal(ClientMsg::Create {
            mode: Mode::BattleRoyale,
            mission: "demo".into(),
            options: None,
        })
        .await,
        ErrorCode::FeatureDisabled,
        "disabled everywhere"
    );
}

#[tokio::test]
async fn a_player_reconnecting_through_nginx_resumes_mid_question_on_another_node() {
    let cluster = ClusterProcs::start(3, &test_redis_url(), &[]).await;
    let nginx = cluster.nginx();
    let mut ann = cluster.connect(0, "ann").await;
    let mut bob = cluster.connect(0, "bob").await;
    let room = matched(&mut ann, &mut bob).await;
    let q0 = ann
        .expect("question", |m| is!(m, ServerMsg::Question))
        .await;
    drop(ann);
    // Through the balancer until it lands on another node (least_conn: soon).
    let mut landed = None;
    for _ in 0..8 {
        let mut again = connect_at(nginx.addr, "ann").await;
        assert_eq!(
            again.welcome.rooms,
            vec![room.clone()],
            "welcome lists the room on {}",
            again.welcome.node
        );
        let state = again
            .expect("room_state", |m| is!(m, ServerMsg::RoomState))
            .await;
        assert_eq!(state.phase, Phase::Playing);
        let open = state.question.expect("the open question");
        assert_eq!(open.text, q0.text);
        assert!(open.ms < q0.ms, "time left {} < {}", open.ms, q0.ms);
        if again.welcome.node != "n1" {
            landed = Some(again);
            break;
        }
        drop(again);
        // A pause between attempts, for the balancer to see the last connection close.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut ann = landed.expect("nginx spread the reconnects over the nodes");
    ann.request(ClientMsg::Answer {
        room: room.clone(),
        q: 0,
        choice: 0,
    })
    .await
    .expect("answered from another node");
    bob.request(ClientMsg::Answer {
        room: room.clone(),
        q: 0,
        choice: 0,
    })
    .await
    .expect("bob answers");
    let round = ann.expect("round", |m| is!(m, ServerMsg::Round)).await;
    assert_eq!(round.q, 0);
}

#[tokio::test]
async fn draining_a_node_lets_its_duel_finish_and_sends_newcomers_elsewhere() {
    let mut cluster =
        ClusterProcs::start(3, &test_redis_url(), &[("JUNO_QUESTION_MS", "1500")]).await;
    let nginx = cluster.nginx();
    let mut ann = cluster.connect(0, "ann").await;
    let mut bob = cluster.connect(0, "bob").await;
    let mut idle = cluster.connect(0, "idle").await;
    let room = matched(&mut ann, &mut bob).await;
    ann.expect("question", |m| is!(m, ServerMsg::Question))
        .await;

    let drained = cluster
        .http
        .post(cluster.nodes[0].url("/admin/drain"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("http");
    assert_eq!(drained.status(), 202);
    let reconnect = idle
        .expect("reconnect", |m| is!(m, ServerMsg::Reconnect))
        .await;
    assert_eq!(reconnect.reason, "draining");
    assert_eq!(idle.closed().await, Some(1012));
    assert_eq!(
        cluster
            .http
            .get(cluster.nodes[0].url("/ready"))
            .send()
            .await
            .expect("http")
            .status(),
        503
    );
    match tokio_tungstenite::connect_async(format!(
        "ws://{}/ws?token={}",
        cluster.nodes[0].addr,
        ClusterProcs::token("new")
    ))
    .await
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!(
            "a draining node refuses upgrades, got {:?}",
            other.map(|_| ())
        ),
    }
    for i in 0..6 {
        let c = connect_at(nginx.addr, &format!("newcomer{i}")).await;
        assert_ne!(c.welcome.node, "n1", "nginx sends newcomers to live nodes");
    }
    // The running duel plays to the end on the draining node.
    let result = ann.expect("result", |m| is!(m, ServerMsg::Result)).await;
    assert_eq!(result.room, room);
    bob.expect("result", |m| is!(m, ServerMsg::Result)).await;
    let code = cluster.nodes[0].exit_code(Duration::from_secs(20)).await;
    assert_eq!(
        code,
        Some(0),
        "drained node exits 0:\n{}",
        cluster.nodes[0].log_tail()
    );
    cluster
        .eventually_scalar(
            &format!("SELECT COUNT(*) FROM matches WHERE id = '{room}'"),
            1,
        )
        .await;
    cluster
        .eventually_scalar(
            &format!("SELECT COUNT(*) FROM match_players WHERE match_id = '{room}'"),
            2,
        )
        .await;
}

#[tokio::test]
async fn a_room_holds_through_a_redis_outage_and_the_cluster_heals() {
    let mut redis = OwnRedis::start();
    let cluster = ClusterProcs::start(2, &redis.url(), &[("JUNO_QUESTION_MS", "1500")]).await;
    let key = demo_key(&cluster).await;
    let mut ann = cluster.connect(0, "ann").await;
    let mut bob = cluster.connect(0, "bob").await;
    let room = matched(&mut ann, &mut bob).await;
    let question = ann
        .expect("the first question", |m| is!(m, ServerMsg::Question))
        .await;

    // Without Redis the room cannot log the answer, so it holds its `ok`: an
    // acknowledged answer is one another node could replay (WIRE.md §5).
    redis.stop();
    let rid = ann
        .send(ClientMsg::Answer {
            room: room.clone(),
            q: question.q,
            choice: key[&question.text],
        })
        .await;
    let acked = |m: &ServerMsg| matches!(m, ServerMsg::Ok(ok) if ok.rid == Some(rid));
    let early = tokio::time::timeout(
        Duration::from_secs(2),
        ann.expect("ok", |m| acked(m).then_some(())),
    )
    .await;
    assert!(early.is_err(), "no ok while the answer cannot be logged");
    let health = cluster.health(0).await;
    assert_eq!(health["redis"], "down");
    assert_eq!(health["status"], "degraded");

    // Redis comes back empty: the host writes the room's whole log again, the
    // held `ok` goes out, and the room resumes with the question's time left.
    redis.restart();
    ann.expect("the held ok", |m| acked(m).then_some(())).await;
    let resumed = ann
        .expect("room_state after the hold", |m| {
            is!(m, ServerMsg::RoomState)
        })
        .await;
    assert_eq!(resumed.room, room);
    let again = ann
        .expect("the open question again", |m| is!(m, ServerMsg::Question))
        .await;
    assert_eq!(again.q, question.q);
    assert!(again.ms >= 1000, "{again:?}");
    let always: Policy = Arc::new(|_| Some(true));
    let bots = [ann, bob].map(|c| spawn_bot(c, key.clone(), always.clone(), room.clone()));
    for bot in bots {
        let (_, seen) = bot.await.expect("bot");
        let result = all_of(&seen, |m| is!(m, ServerMsg::Result))
            .pop()
            .expect("the local duel finished");
        assert_eq!(result.standings.len(), 2);
        assert!(
            result
                .standings
                .iter()
                .any(|s| s.id == "ann" && s.score >= 100),
            "the answer held through the outage counts: {result:?}"
        );
    }
    cluster
        .eventually_scalar(
            &format!("SELECT COUNT(*) FROM matches WHERE id = '{room}'"),
            1,
        )
        .await;

    eventually("both nodes see Redis again", DEADLINE, async || {
        let seen = [cluster.health(0).await, cluster.health(1).await].map(|h| h["redis"].clone());
        if seen.iter().all(|r| r == "ok") {
            Ok(())
        } else {
            Err(seen)
        }
    })
    .await;
    // Cross-node play works again once the nodes re-registered in the empty Redis
    // (each says it is alive again) and listen on the bus again.
    let mut conn = cluster.redis().await;
    eventually(
        "both nodes alive in Redis and subscribed to the bus",
        DEADLINE,
        async || {
            let alive: Vec<bool> = redis::pipe()
                .exists(cluster.key(&["alive", "n1"]))
                .exists(cluster.key(&["alive", "n2"]))
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            if alive != [true, true] {
                return Err(format!("alive {alive:?}"));
            }
            cluster.bus_subscribed().await
        },
    )
    .await;
    let mut cat = cluster.connect(0, "cat").await;
    let mut dan = cluster.connect(1, "dan").await;
    queue(&mut cat).await;
    queue(&mut dan).await;
    let a = cat
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    let b = dan
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    assert_eq!(a.room, b.room);
    dan.expect("question", |m| is!(m, ServerMsg::Question))
        .await;
}

#[tokio::test]
async fn a_bulk_notification_reaches_online_users_on_two_nodes_and_is_stored_for_the_rest() {
    let cluster = ClusterProcs::start(2, &test_redis_url(), &[]).await;
    let offline = cluster.connect(0, "a3").await;
    let mut a1 = cluster.connect(0, "a1").await;
    let mut a2 = cluster.connect(1, "a2").await;
    let mut low = cluster.connect(1, "a4").await;
    drop(offline);
    cluster
        .eventually_scalar(
            "SELECT COUNT(*) FROM users WHERE user_id IN ('a1', 'a2', 'a3', 'a4')",
            4,
        )
        .await;
    let pool = sqlx::PgPool::connect(&cluster.database_url)
        .await
        .expect("pg");
    sqlx::query("UPDATE users SET level = 5 WHERE user_id IN ('a1', 'a2', 'a3')")
        .execute(&pool)
        .await
        .expect("levels");
    pool.close().await;
    let body = serde_json::json!({"title": "JunoSixteen News", "message": "Neue Season startet morgen!", "min_level": 5});
    let resp = cluster
        .http
        .post(cluster.nodes[0].url("/admin/notifications"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("http");
    assert_eq!(resp.status(), 202);
    let stored: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(stored["stored"], 3);
    for c in [&mut a1, &mut a2] {
        let n = c
            .expect("notification", |m| is!(m, ServerMsg::Notification))
            .await;
        assert_eq!(
            (n.kind.as_str(), n.title.as_str()),
            ("special_announcement", "JunoSixteen News")
        );
    }
    // a4 is below the minimum level: nothing for it. Its node (n2) handles bus
    // messages one at a time, in the order n1 published them, so a later
    // notification for a4 alone comes after anything the first one pushed to it.
    let later = serde_json::json!({"title": "Only a4", "message": "m", "users": ["a4"]});
    let resp = cluster
        .http
        .post(cluster.nodes[0].url("/admin/notifications"))
        .bearer_auth(ADMIN)
        .json(&later)
        .send()
        .await
        .expect("http");
    assert_eq!(resp.status(), 202);
    low.expect_none_before(
        "the later notification",
        |m| matches!(m, ServerMsg::Notification(n) if n.title == "Only a4").then_some(()),
        "a notification below the minimum level",
        |m| matches!(m, ServerMsg::Notification(n) if n.title != "Only a4"),
    )
    .await;
    cluster
        .eventually_scalar("SELECT COUNT(*) FROM notifications WHERE title = 'JunoSixteen News' AND expires_at > NOW()", 3)
        .await;
    assert_eq!(
        cluster
            .scalar("SELECT COUNT(*) FROM notifications WHERE user_id = 'a3'")
            .await,
        1
    );
}

#[tokio::test]
async fn leaderboards_agree_across_nodes_and_survive_a_redis_flush() {
    let redis = OwnRedis::start();
    let cluster = ClusterProcs::start(2, &redis.url(), &[]).await;
    let key = demo_key(&cluster).await;
    let mut ann = cluster.connect(0, "ann").await;
    let mut bob = cluster.connect(1, "bob").await;
    let room = matched(&mut ann, &mut bob).await;
    let ann_right: Policy = Arc::new(|t: &Turn| Some(t.user == "ann"));
    for bot in [ann, bob].map(|c| spawn_bot(c, key.clone(), ann_right.clone(), room.clone())) {
        bot.await.expect("bot");
    }
    cluster
        .eventually_scalar(
            &format!("SELECT COUNT(*) FROM matches WHERE id = '{room}'"),
            1,
        )
        .await;
    let points = cluster
        .scalar("SELECT total_points FROM users WHERE user_id = 'ann'")
        .await;
    assert!(points >= 300);
    let board = |i: usize| {
        let url = cluster.nodes[i].url("/api/leaderboard/individual/weekly?limit=5");
        let http = cluster.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .expect("http")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    };
    let first = eventually(
        "the weekly board shows ann's points",
        DEADLINE,
        async || {
            let b = board(0).await;
            if b["entries"][0]["points"] == points {
                Ok(b)
            } else {
                Err(b)
            }
        },
    )
    .await;
    assert_eq!(first["entries"][0]["user"], "ann", "{first}");
    assert_eq!(first["entries"][0]["points"], points);
    assert_eq!(first["entries"][0]["name"], "ANN");
    assert_eq!(board(1).await, first, "every node answers the same");
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let boards: Vec<String> = redis::cmd("KEYS")
        .arg("*:lb:*")
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert_eq!(
        boards.len(),
        1,
        "the week's board is a Redis sorted set: {boards:?}"
    );

    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut conn)
        .await
        .expect("flush");
    assert_eq!(
        board(1).await,
        first,
        "rebuilt from the database after the flush"
    );
    assert_eq!(board(0).await, first);
    let boards: Vec<String> = redis::cmd("KEYS")
        .arg("*:lb:*")
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert_eq!(boards.len(), 1, "and kept in Redis again");
}

#[tokio::test]
async fn matchmaking_pairs_close_ratings_first_and_starves_nobody() {
    let cluster = ClusterProcs::start(2, &test_redis_url(), &[]).await;
    let mut far = cluster.connect(0, "far").await;
    let mut near = cluster.connect(1, "near").await;
    let mut me = cluster.connect(0, "me").await;
    let mut low = cluster.connect(1, "low").await;
    cluster
        .eventually_scalar(
            "SELECT COUNT(*) FROM users WHERE user_id IN ('far', 'near', 'me', 'low')",
            4,
        )
        .await;
    let pool = sqlx::PgPool::connect(&cluster.database_url)
        .await
        .expect("pg");
    for (user, rating) in [
        ("far", 1800.0),
        ("near", 1540.0),
        ("me", 1500.0),
        ("low", 1400.0),
    ] {
        sqlx::query("UPDATE users SET rating = $1 WHERE user_id = $2")
            .bind(rating)
            .bind(user)
            .execute(&pool)
            .await
            .expect("rating");
    }
    pool.close().await;

    queue(&mut far).await;
    queue(&mut near).await;
    queue(&mut me).await;
    let a = me
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    let b = near
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    assert_eq!(
        a.room, b.room,
        "the closest ratings (1500, 1540) are paired, across nodes"
    );

    let queued = tokio::time::Instant::now();
    queue(&mut low).await;
    let x = far
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    let y = low
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    assert_eq!(
        x.room, y.room,
        "400 apart, paired once the waiting window has widened"
    );
    assert!(
        queued.elapsed() > Duration::from_secs(2),
        "not at once: {:?}",
        queued.elapsed()
    );
}

#[tokio::test]
async fn a_dead_nodes_queue_tickets_match_nobody() {
    let mut cluster = ClusterProcs::start(2, &test_redis_url(), &[]).await;
    let mut ghost = cluster.connect(0, "ghost").await;
    queue(&mut ghost).await;
    // The node dies without a word: no drain, no cleanup.
    cluster.nodes[0].proc.child.kill().expect("kill node 1");
    let _ = cluster.nodes[0].proc.child.wait();
    // Past the heartbeat TTL the node counts as gone: its alive key has expired.
    let mut conn = cluster.redis().await;
    let alive = cluster.key(&["alive", "n1"]);
    eventually(
        "the dead node's alive key expires",
        DEADLINE,
        async || match redis::cmd("PTTL")
            .arg(&alive)
            .query_async::<i64>(&mut conn)
            .await
        {
            Ok(-2) => Ok(()),
            other => Err(format!("PTTL {other:?}")),
        },
    )
    .await;
    let mut ann = cluster.connect(1, "ann").await;
    queue(&mut ann).await;
    // Ann waits alone with the dead node's ticket through the matchmaker's passes
    // (one a second): this wait is the scenario.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut bob = cluster.connect(1, "bob").await;
    queue(&mut bob).await;
    let found = bob
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    let ids: Vec<&str> = found.players.iter().map(|p| p.id.as_str()).collect();
    assert!(ids.contains(&"ann") && ids.contains(&"bob"), "{ids:?}");
    // Had ann been matched with the dead node's ticket, that match_found would have
    // come to her before the one with bob.
    ann.expect_none_before(
        "her match with bob",
        |m| matches!(m, ServerMsg::MatchFound(f) if f.room == found.room).then_some(()),
        "a match with the dead node's ticket",
        |m| matches!(m, ServerMsg::MatchFound(f) if f.room != found.room),
    )
    .await;
}

#[tokio::test]
async fn matches_start_on_the_yaml_policies_while_the_policy_service_is_down() {
    // Nothing listens on this port: the difficulty service is "down".
    let dead = format!("http://127.0.0.1:{}", free_port());
    let cluster =
        ClusterProcs::start(1, &test_redis_url(), &[("JUNO_POLICY_URL", dead.as_str())]).await;
    assert_eq!(cluster.admin_put_flag(0, "mangle_zpd", true).await, 200);
    assert_eq!(cluster.admin_put_flag(0, "hrm_trm", true).await, 200);
    let mut ann = cluster.connect(0, "ann").await;
    let mut bob = cluster.connect(0, "bob").await;
    queue(&mut ann).await;
    queue(&mut bob).await;
    let found = ann
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    for q in 0..3 {
        let question = ann
            .expect("question", |m| match m {
                ServerMsg::Question(x) if x.q == q => Some(x.clone()),
                _ => None,
            })
            .await;
        assert_eq!(question.room, found.room);
        ann.request(ClientMsg::Answer {
            room: found.room.clone(),
            q,
            choice: 0,
        })
        .await
        .expect("answer");
        bob.request(ClientMsg::Answer {
            room: found.room.clone(),
            q,
            choice: 0,
        })
        .await
        .expect("answer");
    }
    ann.expect("result", |m| is!(m, ServerMsg::Result)).await;
}

#[tokio::test]
async fn one_live_connection_per_user_across_the_cluster() {
    let cluster = ClusterProcs::start(2, &test_redis_url(), &[]).await;
    let mut first = cluster.connect(0, "ann").await;
    let mut second = cluster.connect(1, "ann").await;
    let e = first.expect("error", |m| is!(m, ServerMsg::Error)).await;
    assert_eq!(e.code, ErrorCode::Replaced);
    first.closed().await;
    let replaced = tokio::time::Instant::now();
    let rid = second.send(ClientMsg::Ping).await;
    assert_eq!(
        second.expect("pong", |m| is!(m, ServerMsg::Pong)).await.rid,
        Some(rid)
    );
    // The cluster counts ann once (node heartbeats carry their connection counts).
    // Wait until both nodes have beaten since the replacement (a beat renews the
    // alive key's 6 s TTL, so a TTL longer than 6 s minus the time since then
    // shows one) and their counts have settled: ann on n2, nobody on n1.
    let mut conn = cluster.redis().await;
    eventually(
        "both nodes report their connections after the replacement",
        DEADLINE,
        async || {
            let since = replaced.elapsed().as_millis() as i64;
            let ttls: Vec<i64> = redis::pipe()
                .pttl(cluster.key(&["alive", "n1"]))
                .pttl(cluster.key(&["alive", "n2"]))
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let counts: HashMap<String, u64> = redis::cmd("HGETALL")
                .arg(cluster.key(&["nodes"]))
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let beaten = ttls.iter().all(|&ttl| ttl > 6_000 - since);
            if beaten && counts.get("n1") == Some(&0) && counts.get("n2") == Some(&1) {
                Ok(())
            } else {
                Err(format!("TTLs {ttls:?} {since} ms after, counts {counts:?}"))
            }
        },
    )
    .await;
    let online: serde_json::Value = get_json(
        &cluster.http,
        cluster.nodes[0].url("/telemetry/analytics/active-users"),
    )
    .await;
    assert_eq!(online["online"], 1, "{online}");
}
