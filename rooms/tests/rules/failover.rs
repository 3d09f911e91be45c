//! Failover: a room rebuilt from its spec and log on another node, resumed with
//! `Input::Resume` at the room time its old host died (the room's timeline
//! stands still across the gap).

use crate::common::*;
use juno_protocol::{Mode, Phase, QuestionMsg, RoomState, ServerMsg};
use juno_rooms::{points, replay, Input, Millis, Output, Room, RoomError, RESUME_MIN_MS};

/// The host of `sim` dies at room time `at` (at or after its last log entry):
/// another node rebuilds the room from the spec and the log on a fresh
/// [`Room`] and takes over at `at`. What the rebuild outputs went out before
/// the failover, so it is dropped.
fn adopt(sim: &Sim, at: Millis) -> Sim {
    let log = sim.room.log();
    assert!(
        log.last().is_none_or(|e| e.at <= at),
        "resumed before the log's end"
    );
    let mut room = Room::new(sim.room.spec().clone());
    for entry in log {
        match &entry.input {
            Some(input) => room.handle(entry.at, input.clone()).unwrap(),
            None => room.handle_timeout(entry.at),
        }
        while room.poll_output().is_some() {}
    }
    Sim {
        room,
        now: at,
        outs: Vec::new(),
        freed: Vec::new(),
    }
}

/// [`adopt`], then `Input::Resume`; returns the adopter and what Resume sent.
fn fail_over(sim: &Sim, at: Millis) -> (Sim, Vec<Output>) {
    let mut adopter = adopt(sim, at);
    adopter.input(Input::Resume).unwrap();
    let sent = adopter.take();
    (adopter, sent)
}

/// The `question` frames broadcast so far.
fn questions_sent(sim: &Sim) -> Vec<QuestionMsg> {
    sim.broadcasts()
        .filter_map(|m| match m {
            ServerMsg::Question(q) => Some(q.clone()),
            _ => None,
        })
        .collect()
}

/// `sent` is exactly `room_state` then the `question` frame; returns both.
fn state_and_question(sent: &[Output]) -> (RoomState, QuestionMsg) {
    match sent {
        [Output::Broadcast(ServerMsg::RoomState(state)), Output::Broadcast(ServerMsg::Question(q))] => {
            (state.clone(), q.clone())
        }
        other => panic!("expected room_state then question, got {other:?}"),
    }
}

/// `sent` is exactly one `room_state`; returns it.
fn state_only(sent: &[Output]) -> RoomState {
    match sent {
        [Output::Broadcast(ServerMsg::RoomState(state))] => state.clone(),
        other => panic!("expected room_state only, got {other:?}"),
    }
}

fn score_of(state: &RoomState, user: &str) -> u64 {
    state.players.iter().find(|p| p.id == user).unwrap().score
}

/// A duel on question 0 (of 3), opened at the returned time, in which `a`
/// answered right 2.5 s in (137 points) and `b` has not answered yet.
fn duel_with_one_answer() -> (Sim, Millis) {
    let mut sim = Sim::new(spec(Mode::Duel, 3));
    sim.join("a").unwrap();
    sim.join("b").unwrap();
    sim.until_question(0);
    let t0 = sim.now;
    sim.now = t0 + 2_500;
    sim.answer("a", 0, right(0)).unwrap();
    (sim, t0)
}

#[test]
fn a_question_with_more_than_a_second_left_keeps_its_deadline() {
    let (sim, t0) = duel_with_one_answer();
    let original = questions_sent(&sim)[0].clone();
    let (mut adopter, sent) = fail_over(&sim, t0 + 4_000);

    let (state, question) = state_and_question(&sent);
    let left = QuestionMsg {
        ms: 6_000,
        ..original
    };
    assert_eq!(
        question, left,
        "the same question, with the time it had left"
    );
    assert_eq!(state.question, Some(left), "room_state shows it too");
    assert_eq!(state.phase, Phase::Playing);
    assert_eq!(score_of(&state, "a"), 137);
    assert_eq!(adopter.room.poll_timeout(), Some(t0 + QUESTION_MS));
    assert!(adopter.rounds().is_empty(), "Resume closes nothing");

    // The answer from before the failover still counts: a second one is refused,
    // and b's answer after Resume is taken and scores by the time since the opening.
    assert_eq!(
        adopter.answer("a", 0, right(0)),
        Err(RoomError::AlreadyAnswered)
    );
    adopter.now = t0 + 5_000;
    adopter.answer("b", 0, right(0)).unwrap();
    let round = adopter
        .rounds()
        .pop()
        .expect("both answered: the round closed");
    assert_eq!(round.gained.as_ref().unwrap()["a"], 137);
    assert_eq!(
        round.gained.as_ref().unwrap()["b"],
        points(QUESTION_MS, 5_000)
    );
    adopter.run_out();
    let s = adopter.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("a"));
    let a = s.players.iter().find(|p| p.id == "a").unwrap();
    assert_eq!((a.score, a.correct, a.answered), (137, 1, 1));
    assert_eq!(s.players[1].score, 125);
    assert_replays(&adopter);
}

#[test]
fn a_question_about_to_close_gets_a_second() {
    let (sim, t0) = duel_with_one_answer();
    let original = questions_sent(&sim)[0].clone();
    // 200 ms were left when the old host died.
    let (mut adopter, sent) = fail_over(&sim, t0 + QUESTION_MS - 200);

    let (state, question) = state_and_question(&sent);
    let left = QuestionMsg {
        ms: RESUME_MIN_MS,
        ..original
    };
    assert_eq!(question, left);
    assert_eq!(state.question, Some(left));
    let deadline = t0 + QUESTION_MS - 200 + RESUME_MIN_MS;
    assert_eq!(adopter.room.poll_timeout(), Some(deadline));

    // After the original deadline, before the new one: accepted, at the least points.
    adopter.now = t0 + QUESTION_MS + 500;
    assert_eq!(adopter.open_q(), Some(0));
    adopter.answer("b", 0, right(0)).unwrap();
    let round = adopter.rounds().pop().unwrap();
    assert_eq!(round.gained.as_ref().unwrap()["b"], 100);
    adopter.run_out();
    let s = adopter.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("a"));
    assert_eq!(
        s.players.iter().map(|p| p.score).collect::<Vec<_>>(),
        [137, 100]
    );
    assert_replays(&adopter);
}

#[test]
fn a_question_past_its_deadline_but_not_yet_closed_gets_a_second() {
    // The old host stalled: the deadline passed and its timer never fired.
    let (sim, t0) = duel_with_one_answer();
    let at = t0 + QUESTION_MS + 3_000;
    let (mut adopter, sent) = fail_over(&sim, at);
    let (_, question) = state_and_question(&sent);
    assert_eq!(question.ms, RESUME_MIN_MS);
    assert_eq!(adopter.room.poll_timeout(), Some(at + RESUME_MIN_MS));
    adopter.advance(RESUME_MIN_MS - 1);
    adopter.answer("b", 0, wrong(0)).unwrap();
    let round = adopter.rounds().pop().unwrap();
    assert_eq!(round.scores.as_ref().unwrap()["a"], 137);
    adopter.run_out();
    assert_replays(&adopter);
}

#[test]
fn timers_keep_their_time_and_nothing_due_fires_inside_resume() {
    let mut sim = Sim::new(spec(Mode::Duel, 2));
    sim.join("a").unwrap();
    sim.join("b").unwrap();
    // Mid-countdown: 2 s were left, and are left after the failover.
    let (adopter, sent) = fail_over(&sim, 1_000);
    assert_eq!(state_only(&sent).question, None);
    assert_eq!(adopter.room.poll_timeout(), Some(COUNTDOWN_MS));

    // The countdown ran out before the old host died, unfired: Resume does
    // not open the question, the host's handle_timeout does, with full time.
    let at = COUNTDOWN_MS + 500;
    let (mut adopter, sent) = fail_over(&sim, at);
    assert_eq!(state_only(&sent).phase, Phase::Playing);
    assert_eq!(adopter.room.poll_timeout(), Some(COUNTDOWN_MS), "still due");
    adopter.advance(0);
    assert_eq!(adopter.open_q(), Some(0));
    assert_eq!(questions_sent(&adopter)[0].ms, QUESTION_MS);
    assert_eq!(adopter.room.poll_timeout(), Some(at + QUESTION_MS));
    adopter.run_out();
    assert_replays(&adopter);
}

#[test]
fn a_second_failover_replays_the_first_resume() {
    let (sim, t0) = duel_with_one_answer();
    let first = t0 + QUESTION_MS - 200;
    let (adopter, _) = fail_over(&sim, first);
    assert!(adopter
        .room
        .log()
        .last()
        .is_some_and(|e| e.at == first && e.input == Some(Input::Resume)));
    // The first adopter dies too, after the original deadline but before the
    // one Resume set: the rebuilt room still has the question open.
    let second = t0 + QUESTION_MS + 300;
    let rebuilt = adopt(&adopter, second);
    assert_eq!(
        rebuilt.room.room_state(second),
        adopter.room.room_state(second)
    );
    assert_eq!(rebuilt.room.poll_timeout(), Some(first + RESUME_MIN_MS));
    let (mut again, sent) = fail_over(&adopter, second);
    let (_, question) = state_and_question(&sent);
    assert_eq!(question.ms, RESUME_MIN_MS);
    again.answer("b", 0, right(0)).unwrap();
    again.run_out();
    assert_replays(&again);
    let s = again.summary().unwrap();
    let resumes = again
        .room
        .log()
        .iter()
        .filter(|e| e.input == Some(Input::Resume))
        .count();
    assert_eq!(resumes, 2);
    assert_eq!(replay(again.room.spec().clone(), again.room.log()), Some(s));
}

#[test]
fn raid_boss_hp_carries_over() {
    let mut spec = spec(Mode::Raid, 2);
    spec.settings.boss_hp = Some(1_000);
    let mut sim = Sim::new(spec);
    for p in ["p0", "p1", "p2"] {
        sim.join(p).unwrap();
    }
    sim.start("host").unwrap();
    sim.until_question(0);
    let t0 = sim.now;
    sim.now = t0 + 1_000;
    sim.answer("p0", 0, right(0)).unwrap(); // a boss frame now
    sim.now = t0 + 1_050;
    sim.answer("p1", 0, right(0)).unwrap(); // held back until t0 + 1100
    let hp = sim.room.room_state(sim.now).boss.unwrap();
    let dealt = points(QUESTION_MS, 1_000) + points(QUESTION_MS, 1_050);
    assert_eq!(hp.max_hp - hp.hp, dealt);

    // The old host died after the held-back frame was due, without sending it.
    let (mut adopter, sent) = fail_over(&sim, t0 + 1_200);
    let (state, question) = state_and_question(&sent);
    assert_eq!(state.boss, Some(hp), "the boss's hp survive the rebuild");
    assert_eq!(question.ms, QUESTION_MS - 1_200);
    assert_eq!(
        adopter.room.poll_timeout(),
        Some(t0 + 1_100),
        "the frame is still due"
    );
    adopter.advance(0);
    let frames: Vec<_> = adopter
        .broadcasts()
        .filter_map(|m| match m {
            ServerMsg::Boss(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].hits, frames[0].hp), (1, hp.hp));

    adopter.now = t0 + 2_000;
    adopter.answer("p2", 0, right(0)).unwrap();
    let round = adopter.rounds().pop().unwrap();
    let boss = round.boss.unwrap();
    assert_eq!(boss.hp, hp.hp - points(QUESTION_MS, 2_000));
    adopter.run_out();
    let s = adopter.summary().unwrap();
    let total: u64 = s.players.iter().map(|p| p.score).sum();
    assert_eq!(total, dealt + points(QUESTION_MS, 2_000));
    assert_replays(&adopter);
}

#[test]
fn battle_royale_eliminations_carry_over() {
    let mut sim = Sim::new(spec(Mode::BattleRoyale, 4));
    for p in ["a", "b", "c", "d"] {
        sim.join(p).unwrap();
    }
    sim.start("host").unwrap();
    sim.until_question(0);
    let t0 = sim.now;
    sim.now = t0 + 1_000;
    sim.answer("a", 0, right(0)).unwrap();
    sim.answer("b", 0, right(0)).unwrap();
    sim.answer("c", 0, wrong(0)).unwrap();
    sim.advance(QUESTION_MS); // d never answers: c and d are out
    sim.until_question(1);
    let t1 = sim.now;
    sim.now = t1 + 500;
    sim.answer("a", 1, right(1)).unwrap();

    let (mut adopter, sent) = fail_over(&sim, t1 + 3_000);
    let (state, question) = state_and_question(&sent);
    assert_eq!(question.q, 1);
    let alive: Vec<(&str, bool)> = state
        .players
        .iter()
        .map(|p| (p.id.as_str(), p.alive))
        .collect();
    assert_eq!(
        alive,
        [("a", true), ("b", true), ("c", false), ("d", false)]
    );
    assert_eq!(
        adopter.answer("c", 1, right(1)),
        Err(RoomError::NotInRoom),
        "still out"
    );
    adopter.now = t1 + 4_000;
    adopter.answer("b", 1, wrong(1)).unwrap();
    let s = adopter
        .summary()
        .expect("b went out: a is the last one standing");
    assert_eq!(s.result.winner.as_deref(), Some("a"));
    let out_in = |id: &str| s.players.iter().find(|p| p.id == id).unwrap().eliminated_in;
    assert_eq!(
        [out_in("a"), out_in("b"), out_in("c"), out_in("d")],
        [None, Some(1), Some(0), Some(0)]
    );
    assert_replays(&adopter);
}

#[test]
fn a_lobby_resumes_with_room_state_only() {
    let mut sim = Sim::new(spec(Mode::BattleRoyale, 2));
    sim.join("a").unwrap();
    sim.join("b").unwrap(); // held back: within 250 ms of a's lobby frame
    let due = sim.room.poll_timeout().unwrap();
    let (adopter, sent) = fail_over(&sim, sim.now);
    let state = state_only(&sent);
    assert_eq!((state.phase, state.player_count), (Phase::Waiting, 2));
    assert_eq!(
        adopter.room.poll_timeout(),
        Some(due),
        "the lobby frame stays due"
    );
    assert_eq!(
        adopter.room.log().last().unwrap().input,
        Some(Input::Resume),
        "logged"
    );
}

#[test]
fn a_finished_room_resumes_with_room_state_unlogged() {
    let (mut sim, _) = duel_with_one_answer();
    sim.run_out();
    let s = sim.summary().unwrap();
    let (mut adopter, sent) = fail_over(&sim, s.finished_at + 5_000);
    assert_eq!(state_only(&sent).phase, Phase::Finished);
    assert_eq!(
        adopter.room.log(),
        sim.room.log(),
        "not logged after the end"
    );
    assert_eq!(adopter.room.poll_timeout(), None);
    adopter.input(Input::Resume).unwrap();
    assert_eq!(adopter.take().len(), 1);
    assert_eq!(replay(sim.room.spec().clone(), adopter.room.log()), Some(s));
}

#[test]
fn a_tournament_resumes_with_its_bracket_and_refuses_a_duel_reported_twice() {
    let mut sim = Sim::new(spec(Mode::Tournament, 3));
    for e in ["a", "b", "c", "d"] {
        sim.join(e).unwrap();
    }
    sim.start("host").unwrap();
    // Bracket: a v d (r1.0.0), b v c (r1.0.1).
    let over = |room: &str, winner: &str, scores: &[(&str, u64)]| Input::DuelOver {
        room: room.into(),
        winner: winner.into(),
        scores: scores.iter().map(|(u, s)| (u.to_string(), *s)).collect(),
    };
    let a_won = over("r1.0.0", "a", &[("a", 300), ("d", 100)]);
    sim.input(a_won.clone()).unwrap();

    let (mut adopter, sent) = fail_over(&sim, sim.now + 1_000);
    let state = state_only(&sent);
    let bracket = state
        .bracket
        .clone()
        .expect("room_state carries the bracket");
    assert_eq!(Some(bracket), sim.room.room_state(sim.now).bracket);
    assert_eq!(bracket_winners(&state), [Some("a"), None]);

    // The adopter hears of the finished duel again: refused, nothing changes.
    let logged = adopter.room.log().len();
    let before = adopter.room.room_state(adopter.now);
    assert!(matches!(
        adopter.input(a_won.clone()),
        Err(RoomError::Invalid(_))
    ));
    let d_won = over("r1.0.0", "d", &[("a", 0), ("d", 500)]);
    assert!(matches!(adopter.input(d_won), Err(RoomError::Invalid(_))));
    assert!(adopter.take().is_empty(), "no frame, no spawn");
    assert_eq!(adopter.room.log().len(), logged, "not logged");
    assert_eq!(adopter.room.room_state(adopter.now), before);
    assert_eq!(score_of(&before, "a"), 300, "the points count once");

    adopter
        .input(over("r1.0.1", "b", &[("b", 200), ("c", 100)]))
        .unwrap();
    adopter
        .input(over("r1.1.0", "a", &[("a", 100), ("b", 50)]))
        .unwrap();
    let s = adopter.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("a"));
    assert_eq!(s.players[0].score, 400);
    // Once the tournament is over, a late report is refused as well.
    assert!(matches!(
        adopter.input(a_won),
        Err(RoomError::NotAllowed(_))
    ));
    assert_replays(&adopter);
}

fn bracket_winners(state: &RoomState) -> Vec<Option<&str>> {
    state.bracket.as_ref().unwrap()[0]
        .iter()
        .map(|p| p.winner.as_deref())
        .collect()
}

#[test]
fn resume_is_a_host_input_about_no_user() {
    assert_eq!(Input::Resume.user(), None);
    let json = serde_json::to_value(Input::Resume).unwrap();
    assert_eq!(json, serde_json::json!({ "kind": "resume" }));
    let back: Input = serde_json::from_value(json).unwrap();
    assert_eq!(back, Input::Resume);
}
