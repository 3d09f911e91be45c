//! Duel rules and the shared round engine, on a simulated clock.

use crate::common::*;
use juno_protocol::{Mode, Phase, ServerMsg};
use juno_rooms::{points, Output, RoomError};

fn duel(n_questions: u32) -> Sim {
    let mut sim = Sim::new(spec(Mode::Duel, n_questions));
    sim.join("a").unwrap();
    sim.join("b").unwrap();
    sim
}

#[test]
fn scoring_formula_values() {
    assert_eq!(points(10_000, 2_500), 137);
    assert_eq!(points(10_000, 0), 150);
    assert_eq!(points(10_000, 9_999), 100);
    assert_eq!(points(10_000, 10_000), 100);
    assert_eq!(points(10_000, 5_000), 125);
}

#[test]
fn starts_when_two_seated_then_counts_down() {
    let mut sim = Sim::new(spec(Mode::Duel, 3));
    sim.join("a").unwrap();
    assert_eq!(sim.room.phase(), Phase::Waiting);
    assert!(sim.take().iter().all(|o| !matches!(o, Output::Started)));
    sim.join("b").unwrap();
    assert_eq!(sim.room.phase(), Phase::Playing);
    let outs = sim.take();
    assert!(matches!(outs[0], Output::Started));
    match &outs[1] {
        Output::Broadcast(ServerMsg::RoomState(s)) => {
            assert_eq!(s.phase, Phase::Playing);
            assert_eq!(s.player_count, 2);
        }
        other => panic!("expected room_state, got {other:?}"),
    }
    assert_eq!(sim.room.poll_timeout(), Some(COUNTDOWN_MS));
    sim.advance(COUNTDOWN_MS - 1);
    assert_eq!(sim.open_q(), None);
    sim.advance(1);
    let q = sim
        .broadcasts()
        .find_map(|m| match m {
            ServerMsg::Question(q) => Some(q.clone()),
            _ => None,
        })
        .expect("question sent");
    assert_eq!((q.q, q.ms, q.text.as_str()), (0, QUESTION_MS, "Q0"));
    assert_eq!(sim.room.poll_timeout(), Some(COUNTDOWN_MS + QUESTION_MS));
}

#[test]
fn correct_answer_after_2500_of_10000_scores_137() {
    let mut sim = duel(3);
    sim.until_question(0);
    sim.advance(2_500);
    sim.answer("a", 0, right(0)).unwrap();
    sim.answer("b", 0, wrong(0)).unwrap();
    let round = sim.rounds().pop().expect("round closed early");
    assert_eq!(round.correct, right(0), "round reveals the correct choice");
    assert_eq!(round.gained.as_ref().unwrap()["a"], 137);
    assert_eq!(round.gained.as_ref().unwrap()["b"], 0);
    assert_eq!(round.scores.as_ref().unwrap()["a"], 137);
    assert_eq!(round.top[0].id, "a");
    assert_eq!(round.eliminated, None);
    assert_eq!(round.boss, None);
    let a = sim.scores_to("a");
    let b = sim.scores_to("b");
    assert_eq!((a[0].gained, a[0].score, a[0].rank), (137, 137, 1));
    assert_eq!((b[0].gained, b[0].score, b[0].rank), (0, 0, 2));
}

#[test]
fn too_late_at_and_after_the_deadline() {
    let mut sim = duel(3);
    sim.until_question(0);
    sim.now += QUESTION_MS; // the host has not fired the timeout yet
    assert_eq!(sim.answer("a", 0, right(0)), Err(RoomError::TooLate));
    sim.now -= 1;
    assert_eq!(sim.answer("a", 0, right(0)), Ok(()));
    assert_eq!(sim.answer("b", 0, right(0)).map(|_| ()), Ok(()));
}

#[test]
fn too_late_for_other_questions() {
    let mut sim = duel(3);
    assert_eq!(
        sim.answer("a", 0, 0),
        Err(RoomError::TooLate),
        "nothing open yet"
    );
    sim.until_question(0);
    assert_eq!(
        sim.answer("a", 1, 0),
        Err(RoomError::TooLate),
        "not opened yet"
    );
    assert_eq!(sim.answer("a", 99, 0), Err(RoomError::TooLate));
    sim.answer("a", 0, 0).unwrap();
    sim.answer("b", 0, 0).unwrap();
    // Between rounds, nothing is open.
    assert_eq!(sim.answer("a", 1, 0), Err(RoomError::TooLate));
    sim.until_question(1);
    assert_eq!(sim.answer("a", 0, 0), Err(RoomError::TooLate), "closed");
}

#[test]
fn already_answered() {
    let mut sim = duel(3);
    sim.until_question(0);
    sim.answer("a", 0, wrong(0)).unwrap();
    assert_eq!(
        sim.answer("a", 0, right(0)),
        Err(RoomError::AlreadyAnswered)
    );
}

#[test]
fn not_in_room_and_invalid_choice() {
    let mut sim = duel(3);
    sim.until_question(0);
    assert_eq!(sim.answer("zed", 0, 0), Err(RoomError::NotInRoom));
    assert!(matches!(sim.answer("a", 0, 4), Err(RoomError::Invalid(_))));
    assert_eq!(sim.leave("zed"), Err(RoomError::NotInRoom));
    assert_eq!(sim.abandon("zed"), Err(RoomError::NotInRoom));
}

#[test]
fn round_waits_for_everyone_or_the_deadline() {
    let mut sim = duel(2);
    sim.until_question(0);
    let opened = sim.now;
    sim.answer("a", 0, right(0)).unwrap();
    assert!(sim.rounds().is_empty(), "b has not answered");
    sim.advance(QUESTION_MS);
    let rounds = sim.rounds();
    assert_eq!(rounds.len(), 1);
    assert_eq!(sim.open_q(), None);
    assert_eq!(
        sim.room.poll_timeout(),
        Some(opened + QUESTION_MS + BETWEEN_MS)
    );
}

#[test]
fn late_timeout_acts_at_the_actual_time() {
    let mut sim = duel(2);
    let due = sim.room.poll_timeout().unwrap();
    sim.now = due + 700;
    sim.room.handle_timeout(sim.now);
    let state = sim.room.room_state(sim.now);
    assert_eq!(state.question.unwrap().ms, QUESTION_MS);
    assert_eq!(sim.room.poll_timeout(), Some(due + 700 + QUESTION_MS));
}

#[test]
fn room_state_reports_time_left() {
    let mut sim = duel(2);
    sim.until_question(0);
    sim.advance(4_000);
    let state = sim.room.room_state(sim.now);
    let q = state.question.unwrap();
    assert_eq!((q.q, q.ms), (0, 6_000));
    assert_eq!(state.players.len(), 2);
    assert!(state.players.iter().all(|p| p.alive));
}

fn play(sim: &mut Sim, q: u32, a: (u64, bool), b: (u64, bool)) {
    sim.until_question(q);
    let t0 = sim.now;
    let mut moves = [("a", a), ("b", b)];
    moves.sort_by_key(|(_, (at, _))| *at);
    for (user, (at, ok)) in moves {
        sim.now = t0 + at;
        let choice = if ok { right(q) } else { wrong(q) };
        sim.answer(user, q, choice).unwrap();
    }
}

#[test]
fn higher_total_wins() {
    let mut sim = duel(2);
    play(&mut sim, 0, (1_000, true), (500, false));
    play(&mut sim, 1, (1_000, true), (500, true));
    sim.run_out();
    let s = sim.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("a"));
    assert_eq!(sim.rank_of("a"), 1);
    assert_eq!(sim.rank_of("b"), 2);
    assert_eq!(s.questions_asked, 2);
    let a = s.players.iter().find(|p| p.id == "a").unwrap();
    assert_eq!((a.correct, a.answered, a.correct_ms), (2, 2, 2_000));
    assert_replays(&sim);
}

#[test]
fn equal_totals_lower_correct_time_wins() {
    // a: 2100 ms then 2900 ms; b: 2500 ms twice. Points: a 139+135 = 274? check:
    // points(10000,2100)=139, points(10000,2900)=135 → 274; b: 137+137 = 274.
    assert_eq!(points(10_000, 2_100) + points(10_000, 2_900), 274);
    assert_eq!(2 * points(10_000, 2_500), 274);
    let mut sim = duel(2);
    play(&mut sim, 0, (2_100, true), (2_500, true));
    play(&mut sim, 1, (2_950, true), (2_500, true));
    sim.run_out();
    let s = sim.summary().unwrap();
    assert_eq!(s.result.standings[0].score, s.result.standings[1].score);
    // a's correct_ms 5050 > b's 5000: b wins.
    assert_eq!(s.result.winner.as_deref(), Some("b"));
    assert_eq!(sim.rank_of("b"), 1);
    assert_eq!(sim.rank_of("a"), 2);
}

#[test]
fn fully_equal_is_a_draw() {
    let mut sim = duel(1);
    play(&mut sim, 0, (3_000, true), (3_000, true));
    sim.run_out();
    let s = sim.summary().unwrap();
    assert_eq!(s.result.winner, None);
    assert_eq!(sim.rank_of("a"), 1);
    assert_eq!(sim.rank_of("b"), 1);
}

#[test]
fn a_tournament_duel_never_draws_lower_id_wins() {
    let mut spec = spec(Mode::Duel, 1);
    spec.parent = Some("t1".into());
    spec.creator = None;
    let mut sim = Sim::new(spec);
    sim.join("zoe").unwrap();
    sim.join("amy").unwrap();
    sim.until_question(0);
    sim.answer("zoe", 0, wrong(0)).unwrap();
    sim.answer("amy", 0, wrong(0)).unwrap();
    sim.run_out();
    let s = sim.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("amy"));
    assert_eq!(sim.rank_of("zoe"), 2);
}

#[test]
fn leaving_during_play_forfeits_at_once() {
    let mut sim = duel(3);
    play(&mut sim, 0, (1_000, true), (9_000, false));
    sim.until_question(1);
    sim.leave("a").unwrap();
    assert_eq!(sim.room.phase(), Phase::Finished);
    let s = sim.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("b"));
    assert_eq!(sim.rank_of("b"), 1);
    assert_eq!(sim.rank_of("a"), 2);
    assert!(s.players.iter().find(|p| p.id == "a").unwrap().left);
    assert!(!sim.room.is_player("a"));
    // The result frame goes out just before Finished.
    assert_replays(&sim);
    let outs = sim.take();
    let n = outs.len();
    assert!(matches!(
        outs[n - 2],
        Output::Broadcast(ServerMsg::Result(_))
    ));
    assert!(matches!(outs[n - 1], Output::Finished(_)));
}

#[test]
fn after_the_end_everything_is_refused() {
    let mut sim = duel(1);
    play(&mut sim, 0, (1_000, true), (1_000, false));
    assert_eq!(sim.room.phase(), Phase::Finished);
    assert_eq!(sim.room.poll_timeout(), None);
    assert!(matches!(sim.join("c"), Err(RoomError::NotAllowed(_))));
    assert_eq!(sim.answer("a", 0, 0), Err(RoomError::TooLate));
    assert!(matches!(sim.start("host"), Err(RoomError::NotAllowed(_))));
    assert_eq!(sim.leave("a"), Ok(()));
    assert_eq!(sim.room.room_state(sim.now).phase, Phase::Finished);
}

#[test]
fn seats_and_lobby_rules() {
    let mut sim = Sim::new(spec(Mode::Duel, 1));
    sim.join("a").unwrap();
    sim.join("a").unwrap(); // idempotent
    assert_eq!(sim.room.player_count(), 1);
    assert_eq!(sim.room.log().len(), 1, "the repeated join changed nothing");
    assert!(matches!(sim.start("host"), Err(RoomError::NotAllowed(_))));
    assert!(matches!(sim.start("a"), Err(RoomError::NotAllowed(_))));
    sim.leave("a").unwrap();
    assert_eq!(sim.room.player_count(), 0);
    assert!(!sim.room.is_player("a"));
    sim.join("a").unwrap();
    sim.join("b").unwrap();
    assert!(matches!(sim.join("c"), Err(RoomError::NotAllowed(_))));
    assert!(sim.room.is_player("a"));
}

#[test]
fn abandoned_player_answers_nothing_and_is_not_waited_for() {
    let mut sim = duel(2);
    sim.until_question(0);
    sim.abandon("b").unwrap();
    assert_eq!(sim.answer("b", 0, right(0)), Err(RoomError::NotInRoom));
    sim.answer("a", 0, wrong(0)).unwrap();
    assert_eq!(sim.rounds().len(), 1, "closed without waiting for b");
    sim.until_question(1);
    sim.answer("a", 1, right(1)).unwrap();
    assert_eq!(sim.room.phase(), Phase::Finished);
    let s = sim.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("a"));
    let b = s.players.iter().find(|p| p.id == "b").unwrap();
    assert!(!b.left, "abandon is not a forfeit");
    assert_eq!(b.answered, 0);
    assert_replays(&sim);
}

#[test]
fn abandoning_the_last_one_waited_for_closes_the_round() {
    let mut sim = duel(2);
    sim.until_question(0);
    sim.answer("a", 0, right(0)).unwrap();
    assert!(sim.rounds().is_empty());
    sim.abandon("b").unwrap();
    assert_eq!(sim.rounds().len(), 1);
}

#[test]
fn snapshot_mid_match_resumes_identically() {
    let mut sim = duel(3);
    play(&mut sim, 0, (1_000, true), (2_000, true));
    sim.until_question(1);
    sim.now += 500;
    sim.answer("a", 1, right(1)).unwrap();
    let json = serde_json::to_string(&sim.room).unwrap();
    let mut copy = Sim::new(spec(Mode::Duel, 3));
    copy.room = serde_json::from_str(&json).unwrap();
    copy.now = sim.now;
    for s in [&mut sim, &mut copy] {
        s.now += 700;
        s.answer("b", 1, right(1)).unwrap();
        s.run_out();
    }
    assert_eq!(sim.summary().unwrap(), copy.summary().unwrap());
}

#[test]
fn every_player_gets_a_score_each_round_and_log_replays() {
    let mut sim = duel(3);
    play(&mut sim, 0, (100, true), (200, false));
    sim.until_question(1);
    sim.advance(QUESTION_MS); // nobody answers
    play(&mut sim, 2, (300, false), (200, true));
    sim.run_out();
    assert_eq!(sim.scores_to("a").len(), 3);
    assert_eq!(sim.scores_to("b").len(), 3);
    assert_eq!(sim.rounds().len(), 3);
    assert_replays(&sim);
}

#[test]
fn zero_pauses_run_back_to_back() {
    let mut spec = spec(Mode::Duel, 3);
    spec.settings.countdown_ms = 0;
    spec.settings.between_ms = 0;
    let mut sim = Sim::new(spec);
    sim.join("a").unwrap();
    sim.join("b").unwrap();
    assert_eq!(sim.room.poll_timeout(), Some(0));
    sim.advance(0);
    assert_eq!(sim.open_q(), Some(0));
    // A single late timeout closes question 0 and opens question 1 at once.
    sim.now = QUESTION_MS + 5;
    sim.room.handle_timeout(sim.now);
    assert_eq!(sim.open_q(), Some(1));
    assert_eq!(sim.room.poll_timeout(), Some(2 * QUESTION_MS + 5));
    sim.run_out();
    assert_eq!(sim.summary().unwrap().questions_asked, 3);
    assert_replays(&sim);
}
