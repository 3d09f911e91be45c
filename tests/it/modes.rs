//! Battle royale, raid boss and tournament over real sockets, each stored and
//! replayed exactly from its record; a mode whose flag is off is refused.

use std::sync::Arc;

use juno_protocol::{ClientMsg, ErrorCode, Mode, RoomOptions, ServerMsg};
use juno_rooms::{LogEntry, RoomSpec};

use crate::bots::*;
use crate::is;
use crate::support::*;

fn fast(mut options: RoomOptions) -> Option<RoomOptions> {
    options.question_ms.get_or_insert(2_000);
    options.countdown_ms.get_or_insert(0);
    options.between_ms.get_or_insert(0);
    Some(options)
}

/// Fetches the stored record of `room` and checks that replaying its log gives the stored result.
async fn assert_replays(app: &TestApp, room: &str) -> serde_json::Value {
    let url = app.url(&format!("/api/matches/{room}"));
    let record: serde_json::Value =
        eventually(&format!("match {room} is stored"), DEADLINE, async || {
            let resp = app.http.get(&url).send().await.expect("http");
            match resp.status().as_u16() {
                200 => Ok(resp.json().await.expect("json")),
                status => Err(status),
            }
        })
        .await;
    let spec: RoomSpec = serde_json::from_value(record["spec"].clone()).expect("spec");
    let log: Vec<LogEntry> = serde_json::from_value(record["events"].clone()).expect("events");
    let replayed = juno_rooms::replay(spec, &log).expect("replay finishes");
    // Rating changes depend on the players' ratings before the match, not on its log.
    let mut stored = record["result"].clone();
    if let Some(result) = stored.as_object_mut() {
        result.remove("rating");
    }
    assert_eq!(
        serde_json::to_value(&replayed.result).expect("json"),
        stored,
        "replay of {room}"
    );
    record
}

#[tokio::test]
async fn a_ten_player_battle_royale_plays_to_the_end() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = answer_key(&app).await;
    let mut host = app.connect("p0").await;
    let options = RoomOptions {
        questions: Some(5),
        max_players: Some(10),
        ..Default::default()
    };
    let room = host.create_room(Mode::BattleRoyale, fast(options)).await;
    let mut clients = vec![host];
    for i in 1..10 {
        let mut c = app.connect(&format!("p{i}")).await;
        c.request(ClientMsg::Join { room: room.clone() })
            .await
            .expect("join");
        clients.push(c);
    }
    // p0 goes out at question 0, p1 at 1, … p4 at 4; p5..p9 always right.
    let policy: Policy = Arc::new(|t: &Turn| {
        let n: u32 = t.user[1..].parse().expect("pN");
        Some(n != t.q)
    });
    let bots: Vec<_> = clients
        .into_iter()
        .map(|c| spawn_bot(c, key.clone(), policy.clone(), room.clone()))
        .collect();
    let mut results = Vec::new();
    let mut p0_rounds = 0;
    for bot in bots {
        let (client, seen) = bot.await.expect("bot");
        if client.user == "p0" {
            p0_rounds = all_of(&seen, |m| is!(m, ServerMsg::Round)).len();
            let rounds = all_of(&seen, |m| is!(m, ServerMsg::Round));
            for (q, round) in rounds.iter().enumerate() {
                assert_eq!(
                    round.eliminated.as_deref(),
                    Some(&[format!("p{q}")][..]),
                    "round {q}"
                );
            }
        }
        results.push(
            all_of(&seen, |m| is!(m, ServerMsg::Result))
                .pop()
                .expect("result"),
        );
    }
    assert_eq!(p0_rounds, 5, "an eliminated player keeps watching");
    let result = &results[0];
    assert!(results.iter().all(|r| r == result));
    assert_eq!(result.standings.len(), 10);
    let rank_of = |id: &str| {
        result
            .standings
            .iter()
            .find(|s| s.id == id)
            .expect("listed")
            .rank
    };
    for (i, want) in [(0, 10), (1, 9), (2, 8), (3, 7), (4, 6)] {
        assert_eq!(rank_of(&format!("p{i}")), want, "p{i}");
    }
    for i in 5..10 {
        assert!(rank_of(&format!("p{i}")) <= 5);
    }
    // Survivors answering together may tie on points: a winner only if one stands alone at the top.
    let on_top = result.standings.iter().filter(|s| s.rank == 1).count();
    let expected_winner = (on_top == 1).then(|| result.standings[0].id.clone());
    assert_eq!(result.winner, expected_winner);
    let record = assert_replays(&app, &room).await;
    assert_eq!(record["players"].as_array().expect("players").len(), 10);
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM mission_progress WHERE match_id = '{room}'"
        ))
        .await,
        10
    );
}

async fn raid(
    boss_hp: u64,
    questions: u32,
) -> (TestApp, String, juno_protocol::MatchResult, Vec<ServerMsg>) {
    let app = spawn_app(Backend::Sqlite).await;
    let key = answer_key(&app).await;
    let mut host = app.connect("r0").await;
    let options = RoomOptions {
        questions: Some(questions),
        max_players: Some(20),
        boss_hp: Some(boss_hp),
        ..Default::default()
    };
    let room = host.create_room(Mode::Raid, fast(options)).await;
    let mut watcher = app.connect("watcher").await;
    watcher
        .request(ClientMsg::Spectate { room: room.clone() })
        .await
        .expect("spectate");
    let mut clients = vec![host];
    for i in 1..20 {
        let mut c = app.connect(&format!("r{i}")).await;
        c.request(ClientMsg::Join { room: room.clone() })
            .await
            .expect("join");
        clients.push(c);
    }
    let always_right: Policy = Arc::new(|_| Some(true));
    let never: Policy = Arc::new(|_| None);
    let mut bots: Vec<_> = clients
        .into_iter()
        .map(|c| spawn_bot(c, key.clone(), always_right.clone(), room.clone()))
        .collect();
    bots.push(spawn_bot(watcher, key.clone(), never, room.clone()));
    let mut watched = Vec::new();
    let mut result = None;
    for bot in bots {
        let (client, seen) = bot.await.expect("bot");
        let r = all_of(&seen, |m| is!(m, ServerMsg::Result))
            .pop()
            .expect("result");
        assert!(result.as_ref().is_none_or(|x| *x == r));
        result = Some(r);
        if client.user == "watcher" {
            watched = seen;
        }
    }
    (app, room, result.expect("result"), watched)
}

#[tokio::test]
async fn a_twenty_player_raid_is_won_when_the_boss_falls() {
    let (app, room, result, watched) = raid(2_000, 5).await;
    assert_eq!(result.victory, Some(true));
    assert_eq!(result.standings.len(), 20);
    let total: u64 = result.standings.iter().map(|s| s.score).sum();
    assert_eq!(total, 2_000, "damage dealt is exactly the boss's hp");
    let boss = all_of(&watched, |m| is!(m, ServerMsg::Boss));
    assert!(!boss.is_empty(), "the spectator saw the boss frames");
    assert_eq!(boss.last().expect("boss").hp, 0);
    assert!(boss.len() < 20, "boss frames are coalesced: {}", boss.len());
    assert!(all_of(&watched, |m| is!(m, ServerMsg::Round))
        .iter()
        .all(|r| r.boss.is_some()));
    assert_replays(&app, &room).await;
}

#[tokio::test]
async fn a_twenty_player_raid_is_lost_when_the_questions_run_out() {
    let (app, room, result, watched) = raid(1_000_000, 2).await;
    assert_eq!(result.victory, Some(false));
    let rounds = all_of(&watched, |m| is!(m, ServerMsg::Round));
    assert_eq!(rounds.len(), 2);
    let boss = rounds
        .last()
        .and_then(|r| r.boss)
        .expect("boss hp in round");
    let total: u64 = result.standings.iter().map(|s| s.score).sum();
    assert_eq!(boss.max_hp - boss.hp, total);
    assert_replays(&app, &room).await;
}

#[tokio::test]
async fn an_eight_slot_tournament_with_six_entrants_crowns_a_champion() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = answer_key(&app).await;
    let mut host = app.connect("t0").await;
    let options = RoomOptions {
        questions: Some(2),
        size: Some(8),
        ..Default::default()
    };
    let room = host.create_room(Mode::Tournament, fast(options)).await;
    let mut watcher = app.connect("watcher").await;
    watcher
        .request(ClientMsg::Spectate { room: room.clone() })
        .await
        .expect("spectate");
    let mut clients = vec![];
    for i in 1..6 {
        let mut c = app.connect(&format!("t{i}")).await;
        c.request(ClientMsg::Join { room: room.clone() })
            .await
            .expect("join");
        clients.push(c);
    }
    host.request(ClientMsg::Start { room: room.clone() })
        .await
        .expect("start");
    clients.push(host);
    // In every duel the lower user id answers right and the other wrong.
    let policy: Policy = Arc::new(|t: &Turn| Some(t.opponents.iter().all(|o| t.user < o.as_str())));
    let mut bots: Vec<_> = clients
        .into_iter()
        .map(|c| spawn_bot(c, key.clone(), policy.clone(), room.clone()))
        .collect();
    bots.push(spawn_bot(
        watcher,
        key.clone(),
        Arc::new(|_| None),
        room.clone(),
    ));
    let mut duels_played = std::collections::HashSet::new();
    let mut watched = vec![];
    let mut result = None;
    for bot in bots {
        let (client, seen) = bot.await.expect("bot");
        for found in all_of(&seen, |m| is!(m, ServerMsg::MatchFound)) {
            assert_eq!(found.parent.as_deref(), Some(room.as_str()));
            duels_played.insert(found.room);
        }
        result = all_of(&seen, |m| is!(m, ServerMsg::Result))
            .into_iter()
            .find(|r| r.room == room);
        if client.user == "watcher" {
            watched = seen;
        }
    }
    assert_eq!(duels_played.len(), 5, "six entrants need five duels");
    let brackets = all_of(&watched, |m| is!(m, ServerMsg::Bracket));
    assert!(
        brackets.len() >= 5,
        "a bracket after every duel: {}",
        brackets.len()
    );
    let last = brackets.last().expect("bracket");
    assert_eq!(
        last.rounds.last().and_then(|r| r[0].winner.as_deref()),
        Some("t0")
    );
    let result = result.expect("tournament result");
    assert_eq!(result.winner.as_deref(), Some("t0"));
    assert_eq!(result.standings.len(), 6);
    assert_eq!(result.standings[0].id, "t0");
    for d in &duels_played {
        assert_replays(&app, d).await;
    }
    assert_replays(&app, &room).await;
}

#[tokio::test]
async fn each_mode_is_refused_while_its_flag_is_off() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut c = app.connect("ann").await;
    for (mode, flag) in [
        (Mode::BattleRoyale, "battle_royale"),
        (Mode::Raid, "raid_bosses"),
        (Mode::Tournament, "tournaments"),
    ] {
        assert_eq!(app.admin_put_flag(flag, false).await, 200);
        assert_eq!(
            c.refusal(ClientMsg::Create {
                mode,
                mission: "demo".into(),
                options: None,
            })
            .await,
            ErrorCode::FeatureDisabled,
            "{mode:?}"
        );
        assert_eq!(app.admin_put_flag(flag, true).await, 200);
        let room = c
            .request(ClientMsg::Create {
                mode,
                mission: "demo".into(),
                options: None,
            })
            .await
            .expect("flag on")
            .room
            .expect("room");
        c.request(ClientMsg::Leave { room })
            .await
            .expect("leave the lobby");
    }
}

#[tokio::test]
async fn a_thousand_spectators_follow_one_duel() {
    // A thousand clients from one address: above the per-address default of 500.
    let app = spawn_with(Backend::Sqlite, |c| c.max_conns_per_ip = 2000).await;
    let key = answer_key(&app).await;
    let mut ann = app.connect("ann").await;
    let options = RoomOptions {
        questions: Some(2),
        ..Default::default()
    };
    let room = ann.create_room(Mode::Duel, fast(options)).await;
    let mut watchers = Vec::new();
    for chunk in 0..10 {
        let joins = (0..100).map(|i| {
            let app = &app;
            let room = room.clone();
            async move {
                let mut c = app.connect(&format!("w{chunk}x{i}")).await;
                c.request(ClientMsg::Spectate { room })
                    .await
                    .expect("spectate");
                c
            }
        });
        watchers.extend(futures_util::future::join_all(joins).await);
    }
    let mut bob = app.connect("bob").await;
    bob.request(ClientMsg::Join { room: room.clone() })
        .await
        .expect("join");
    let silent: Policy = Arc::new(|_| None);
    let mut tasks: Vec<_> = watchers
        .into_iter()
        .map(|c| spawn_bot(c, key.clone(), silent.clone(), room.clone()))
        .collect();
    let right: Policy = Arc::new(|_| Some(true));
    tasks.push(spawn_bot(ann, key.clone(), right.clone(), room.clone()));
    tasks.push(spawn_bot(bob, key.clone(), right, room.clone()));
    let mut results = 0;
    for task in tasks {
        let (client, seen) = task.await.expect("bot");
        assert_eq!(
            all_of(&seen, |m| is!(m, ServerMsg::Question)).len(),
            2,
            "{} saw every question",
            client.user
        );
        assert_eq!(
            all_of(&seen, |m| is!(m, ServerMsg::Round)).len(),
            2,
            "{} saw every round",
            client.user
        );
        results += all_of(&seen, |m| is!(m, ServerMsg::Result)).len();
    }
    assert_eq!(results, 1002);
    assert_eq!(app.node.metrics.slow_consumers_total.get(), 0);
}
