//! The duel end to end: matchmaking, play, scoring, persistence in both
//! databases, spectating, resuming after a drop, slow clients and the mode flag.

use std::time::Duration;

use juno_protocol::{ClientMsg, ErrorCode, Mode, Phase, QuestionMsg, ServerMsg};
use juno_rooms::{LogEntry, RoomSpec};

use crate::is;
use crate::support::*;

/// Queues two clients for the demo mission; returns the room id.
async fn matched(a: &mut Client, b: &mut Client) -> String {
    a.request(ClientMsg::Queue {
        mode: Mode::Duel,
        mission: "demo".into(),
    })
    .await
    .expect("queue a");
    b.request(ClientMsg::Queue {
        mode: Mode::Duel,
        mission: "demo".into(),
    })
    .await
    .expect("queue b");
    let fa = a
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    let fb = b
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    assert_eq!(fa.room, fb.room);
    assert_eq!(fa.mode, Mode::Duel);
    assert_eq!(fa.mission, "demo");
    let mut ids: Vec<_> = fa.players.iter().map(|p| p.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, [a.user.as_str(), b.user.as_str()]);
    assert_eq!(fa.parent, None);
    fa.room
}

async fn question(c: &mut Client, q: u32) -> QuestionMsg {
    c.expect("question", |m| match m {
        ServerMsg::Question(x) if x.q == q => Some(x.clone()),
        _ => None,
    })
    .await
}

/// The demo mission's correct choice for a question text.
async fn correct_choice(app: &TestApp, q: &QuestionMsg) -> u32 {
    let mission = app
        .node
        .store
        .mission("demo")
        .await
        .expect("db")
        .expect("demo exists");
    mission
        .questions
        .iter()
        .find(|x| x.text == q.text)
        .expect("question from the mission")
        .correct
}

async fn full_duel(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ann = app.connect("ann").await;
    let mut bob = app.connect("bob").await;
    let room = matched(&mut ann, &mut bob).await;
    let mut ann_total = 0;
    for q in 0..3 {
        let qa = question(&mut ann, q).await;
        let qb = question(&mut bob, q).await;
        assert_eq!(qa, qb);
        assert_eq!(qa.room, room);
        assert!(qa.ms > 2000 && qa.ms <= 3000, "ms {}", qa.ms);
        assert!((2..=6).contains(&qa.choices.len()));
        let right = correct_choice(&app, &qa).await;
        let wrong = (right + 1) % qa.choices.len() as u32;
        ann.request(ClientMsg::Answer {
            room: room.clone(),
            q,
            choice: right,
        })
        .await
        .expect("ann answers");
        assert_eq!(
            ann.refusal(ClientMsg::Answer {
                room: room.clone(),
                q,
                choice: right,
            })
            .await,
            ErrorCode::AlreadyAnswered,
            "second answer"
        );
        bob.request(ClientMsg::Answer {
            room: room.clone(),
            q,
            choice: wrong,
        })
        .await
        .expect("bob answers");

        let round = ann.expect("round", |m| is!(m, ServerMsg::Round)).await;
        assert_eq!((round.q, round.correct), (q, right));
        let gained = round.gained.as_ref().expect("small rooms get gained")["ann"];
        // Answered at once on a 3 s question: 100 + ⌊50 × time left / 3000⌋.
        assert!((145..=150).contains(&gained), "gained {gained}");
        assert_eq!(round.gained.as_ref().expect("gained")["bob"], 0);
        ann_total += gained;
        assert_eq!(round.scores.as_ref().expect("scores")["ann"], ann_total);
        assert_eq!(round.top[0].id, "ann");
        let score = ann.expect("score", |m| is!(m, ServerMsg::Score)).await;
        assert_eq!(
            (score.q, score.gained, score.score, score.rank),
            (q, gained, ann_total, 1)
        );
        let bob_score = bob.expect("score", |m| is!(m, ServerMsg::Score)).await;
        assert_eq!(
            (bob_score.gained, bob_score.score, bob_score.rank),
            (0, 0, 2)
        );
        assert_eq!(
            bob.refusal(ClientMsg::Answer {
                room: room.clone(),
                q,
                choice: right,
            })
            .await,
            ErrorCode::TooLate,
            "round closed"
        );
    }
    let result = ann.expect("result", |m| is!(m, ServerMsg::Result)).await;
    assert_eq!(result.winner.as_deref(), Some("ann"));
    assert_eq!(result.mode, Mode::Duel);
    assert_eq!(result.standings.len(), 2);
    assert_eq!(
        (
            result.standings[0].id.as_str(),
            result.standings[0].score,
            result.standings[0].rank
        ),
        ("ann", ann_total, 1)
    );
    assert_eq!(
        (
            result.standings[1].id.as_str(),
            result.standings[1].score,
            result.standings[1].rank
        ),
        ("bob", 0, 2)
    );
    assert_eq!(
        bob.expect("result", |m| is!(m, ServerMsg::Result)).await,
        result
    );

    // Both are free to play again at once.
    ann.request(ClientMsg::Queue {
        mode: Mode::Duel,
        mission: "demo".into(),
    })
    .await
    .expect("free again");
    ann.request(ClientMsg::Unqueue).await.expect("unqueue");

    // The rows it leaves.
    let q = |sql: &str| sql.replace("ROOM", &room);
    app.eventually_scalar(
        &q("SELECT COUNT(*) FROM matches WHERE id = 'ROOM' AND winner = 'ann' AND mode = 'duel'"),
        1,
    )
    .await;
    app.eventually_scalar(
        &q("SELECT COUNT(*) FROM match_players WHERE match_id = 'ROOM'"),
        2,
    )
    .await;
    assert_eq!(
        app.scalar(&q(
            "SELECT score FROM match_players WHERE match_id = 'ROOM' AND user_id = 'ann'"
        ))
        .await,
        ann_total as i64
    );
    assert_eq!(app.scalar(&q("SELECT CAST(rank AS BIGINT) FROM match_players WHERE match_id = 'ROOM' AND user_id = 'bob'")).await, 2);
    assert_eq!(
        app.scalar("SELECT total_points FROM users WHERE user_id = 'ann'")
            .await,
        ann_total as i64
    );
    assert_eq!(
        app.scalar("SELECT total_points FROM users WHERE user_id = 'bob'")
            .await,
        0
    );
    assert_eq!(app.scalar(&q("SELECT COUNT(*) FROM mission_progress WHERE match_id = 'ROOM' AND finished = true AND world = 'it'")).await, 2);
    assert_eq!(
        app.scalar(&q(
            "SELECT COUNT(*) FROM mission_progress WHERE match_id = 'ROOM' AND success = true"
        ))
        .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM telemetry_events WHERE event = 'match_finished'")
            .await,
        2
    );
    assert!(
        app.scalar(&q(
            "SELECT COUNT(*) FROM match_events WHERE match_id = 'ROOM'"
        ))
        .await
            >= 8
    );

    // The record over HTTP replays to the same result.
    let record: serde_json::Value =
        get_json(&app.http, app.url(&format!("/api/matches/{room}"))).await;
    assert_eq!(record["winner"], "ann");
    let spec: RoomSpec = serde_json::from_value(record["spec"].clone()).expect("spec");
    let log: Vec<LogEntry> = serde_json::from_value(record["events"].clone()).expect("events");
    let mut replayed = juno_rooms::replay(spec, &log).expect("replay finishes");
    // Rating changes depend on the players' ratings before the match, not on its log.
    replayed.result.rating = result.rating.clone();
    assert_eq!(replayed.result, result);
    assert_eq!(
        serde_json::to_value(&replayed.result).expect("json"),
        record["result"]
    );

    // Glicko-2: the winner goes up, the loser down, both from 1500, by the same amount.
    let rating = result.rating.as_ref().expect("a duel is rated");
    assert!(rating["ann"] > 0 && rating["bob"] < 0, "{rating:?}");
    assert_eq!(rating["ann"], -rating["bob"]);
    let ann_rating = app
        .scalar("SELECT CAST(ROUND(rating) AS BIGINT) FROM users WHERE user_id = 'ann'")
        .await;
    assert_eq!(ann_rating, 1500 + rating["ann"]);
}

#[tokio::test]
async fn a_queued_duel_is_played_scored_and_stored_in_sqlite() {
    full_duel(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_queued_duel_is_played_scored_and_stored_in_postgres() {
    full_duel(Backend::Postgres).await;
}

#[tokio::test]
async fn a_spectator_sees_every_question_round_and_result() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut ann = app.connect("ann").await;
    let mut bob = app.connect("bob").await;
    let mut eve = app.connect("eve").await;
    let room = ann
        .request(ClientMsg::Create {
            mode: Mode::Duel,
            mission: "demo".into(),
            options: None,
        })
        .await
        .expect("create")
        .room
        .expect("room id");
    eve.request(ClientMsg::Spectate { room: room.clone() })
        .await
        .expect("spectate");
    let state = eve
        .expect("room_state", |m| is!(m, ServerMsg::RoomState))
        .await;
    assert_eq!(
        (state.phase, state.player_count, state.spectators),
        (Phase::Waiting, 1, 1)
    );
    bob.request(ClientMsg::Join { room: room.clone() })
        .await
        .expect("join");
    assert_eq!(
        eve.refusal(ClientMsg::Answer {
            room: room.clone(),
            q: 0,
            choice: 0,
        })
        .await,
        ErrorCode::NotInRoom,
        "spectators cannot answer"
    );
    for q in 0..3 {
        let qa = question(&mut ann, q).await;
        ann.request(ClientMsg::Answer {
            room: room.clone(),
            q,
            choice: 0,
        })
        .await
        .expect("answer");
        bob.request(ClientMsg::Answer {
            room: room.clone(),
            q,
            choice: 1,
        })
        .await
        .expect("answer");
        assert_eq!(question(&mut eve, q).await, qa);
        let round = eve.expect("round", |m| is!(m, ServerMsg::Round)).await;
        assert_eq!(round.q, q);
    }
    let result = eve.expect("result", |m| is!(m, ServerMsg::Result)).await;
    assert_eq!(
        result,
        ann.expect("result", |m| is!(m, ServerMsg::Result)).await
    );
    // Spectators get no personal score. The room pushes each round's scores
    // before its next frame, and the result came after the last round, so a
    // score meant for eve would be queued before the barrier's pong.
    eve.assert_none_before_pong("a personal score (spectators get none)", |m| {
        matches!(m, ServerMsg::Score(_))
    })
    .await;
}

#[tokio::test]
async fn a_dropped_player_resumes_mid_question() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut ann = app.connect("ann").await;
    let mut bob = app.connect("bob").await;
    let room = matched(&mut ann, &mut bob).await;
    let q0 = question(&mut ann, 0).await;
    let asked = tokio::time::Instant::now();
    drop(ann);
    // A resume after a drop the server has noticed, not a replacement of a live connection.
    eventually(
        "the server notices that ann dropped",
        DEADLINE,
        async || match app.node.sessions.get("ann") {
            None => Ok(()),
            Some(conn) => Err(format!("connection {} still live", conn.id)),
        },
    )
    .await;
    // Ann stays away for a while, so the time left she comes back to must show it:
    // this pause is the scenario.
    tokio::time::sleep_until(asked + Duration::from_millis(300)).await;
    let mut ann = app.connect("ann").await;
    assert_eq!(ann.welcome.rooms, vec![room.clone()]);
    let state = ann
        .expect("room_state", |m| is!(m, ServerMsg::RoomState))
        .await;
    assert_eq!(state.phase, Phase::Playing);
    let open = state.question.expect("the open question");
    assert_eq!((open.q, &open.text), (0, &q0.text));
    assert!(
        open.ms < q0.ms && open.ms > 1000,
        "time left {} of {}",
        open.ms,
        q0.ms
    );
    ann.request(ClientMsg::Answer {
        room: room.clone(),
        q: 0,
        choice: 0,
    })
    .await
    .expect("answer after resume");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_the_duel_goes_on() {
    let app = spawn_on(Backend::Sqlite, small_buffer_listener(), |c| {
        c.outgoing_queue = 8
    })
    .await;
    let mut ann = app.connect_small_buffer("ann").await;
    let mut bob = app.connect("bob").await;
    let room = matched(&mut ann, &mut bob).await;
    // Ann stops reading. Flag pushes pile up frames for her.
    let pusher = {
        let http = app.http.clone();
        let url = app.url("/admin/flags/clans");
        tokio::spawn(async move {
            for i in 0..400 {
                let _ = http
                    .put(&url)
                    .bearer_auth(ADMIN)
                    .json(&serde_json::json!({"enabled": i % 2 == 0}))
                    .send()
                    .await;
            }
        })
    };
    for q in 0..3 {
        question(&mut bob, q).await;
        bob.request(ClientMsg::Answer {
            room: room.clone(),
            q,
            choice: 0,
        })
        .await
        .expect("bob answers");
    }
    let result = bob.expect("result", |m| is!(m, ServerMsg::Result)).await;
    assert_eq!(result.standings.len(), 2);
    pusher.await.expect("pusher");
    assert!(
        app.node.metrics.slow_consumers_total.get() >= 1,
        "ann was cut off"
    );
    assert!(
        app.node.sessions.get("ann").is_none(),
        "ann's connection is gone"
    );
    ann.closed().await;
}

#[tokio::test]
async fn a_disabled_duel_flag_is_pushed_and_refuses_new_duels() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut ann = app.connect("ann").await;
    assert_eq!(app.admin_put_flag("pvp_duels", false).await, 200);
    let flags = ann.expect("flags", |m| is!(m, ServerMsg::Flags)).await;
    assert_eq!(flags.flags.get("pvp_duels"), Some(&false));
    assert_eq!(
        ann.refusal(ClientMsg::Queue {
            mode: Mode::Duel,
            mission: "demo".into(),
        })
        .await,
        ErrorCode::FeatureDisabled,
        "disabled"
    );
    assert_eq!(
        ann.refusal(ClientMsg::Create {
            mode: Mode::Duel,
            mission: "demo".into(),
            options: None,
        })
        .await,
        ErrorCode::FeatureDisabled,
        "disabled"
    );
    let late = app.connect("bob").await;
    assert_eq!(late.welcome.flags.get("pvp_duels"), Some(&false));
    assert_eq!(app.admin_put_flag("pvp_duels", true).await, 200);
    ann.request(ClientMsg::Create {
        mode: Mode::Duel,
        mission: "demo".into(),
        options: None,
    })
    .await
    .expect("enabled again");
    assert_eq!(app.admin_put_flag("no_such_flag", true).await, 404);
}
