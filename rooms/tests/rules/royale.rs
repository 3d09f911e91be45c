//! Battle royale rules, lobby rules and large-room limits, on a simulated clock.

use crate::common::*;
use juno_protocol::{Mode, Phase, ServerMsg};
use juno_rooms::{Output, RoomError};

fn royale(players: &[&str], n_questions: u32) -> Sim {
    let mut sim = Sim::new(spec(Mode::BattleRoyale, n_questions));
    for p in players {
        sim.join(p).unwrap();
    }
    sim.start("host").unwrap();
    sim
}

/// Everyone in `answers` answers question `q` (true = right) at 1 s, 2 s, …
fn round(sim: &mut Sim, q: u32, answers: &[(&str, bool)]) {
    sim.until_question(q);
    let t0 = sim.now;
    for (i, (user, ok)) in answers.iter().enumerate() {
        sim.now = t0 + 1_000 * (i as u64 + 1);
        let choice = if *ok { right(q) } else { wrong(q) };
        sim.answer(user, q, choice).unwrap();
    }
}

fn summary_player(sim: &Sim, user: &str) -> juno_rooms::PlayerSummary {
    let s = sim.summary().unwrap();
    s.players.into_iter().find(|p| p.id == user).unwrap()
}

#[test]
fn start_rules() {
    let mut sim = Sim::new(spec(Mode::BattleRoyale, 3));
    sim.join("host").unwrap();
    assert!(
        matches!(sim.start("host"), Err(RoomError::NotAllowed(_))),
        "needs 2"
    );
    sim.join("a").unwrap();
    assert!(
        matches!(sim.start("a"), Err(RoomError::NotAllowed(_))),
        "not the creator"
    );
    sim.start("host").unwrap();
    assert_eq!(sim.room.phase(), Phase::Playing);
    assert!(matches!(sim.join("b"), Err(RoomError::NotAllowed(_))));
    assert!(matches!(sim.start("host"), Err(RoomError::NotAllowed(_))));
}

#[test]
fn full_room_starts_and_refuses_more() {
    let mut spec = spec(Mode::BattleRoyale, 3);
    spec.settings.max_players = 3;
    let mut sim = Sim::new(spec);
    sim.join("a").unwrap();
    sim.join("b").unwrap();
    assert_eq!(sim.room.phase(), Phase::Waiting);
    sim.join("c").unwrap();
    assert_eq!(sim.room.phase(), Phase::Playing);
    assert!(matches!(sim.join("d"), Err(RoomError::NotAllowed(_))));
}

#[test]
fn room_full_while_waiting() {
    let mut spec = spec(Mode::BattleRoyale, 3);
    spec.settings.max_players = 1;
    let mut sim = Sim::new(spec);
    sim.join("a").unwrap();
    assert_eq!(sim.room.phase(), Phase::Waiting, "a BR of one cannot start");
    assert_eq!(sim.join("b"), Err(RoomError::RoomFull));
}

#[test]
fn watching_creator_starts_without_a_seat() {
    let mut spec = spec(Mode::BattleRoyale, 3);
    spec.settings.watch = true;
    let mut sim = Sim::new(spec);
    sim.join("a").unwrap();
    sim.join("b").unwrap();
    sim.start("host").unwrap();
    assert!(!sim.room.is_player("host"));
    assert_eq!(sim.room.player_count(), 2);
}

#[test]
fn wrong_or_missing_answers_eliminate() {
    let mut sim = royale(&["a", "b", "c", "d"], 5);
    round(&mut sim, 0, &[("a", true), ("b", true), ("c", false)]); // d silent
    sim.advance(QUESTION_MS);
    let r = sim.rounds().pop().unwrap();
    assert_eq!(r.eliminated, Some(vec!["c".to_string(), "d".to_string()]));
    assert_eq!(sim.answer("c", 1, 0), Err(RoomError::NotInRoom));
    let state = sim.room.room_state(sim.now);
    let alive: Vec<_> = state
        .players
        .iter()
        .filter(|p| p.alive)
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(alive, ["a", "b"]);
    // Round 1: both right, nobody out, list is empty but present.
    round(&mut sim, 1, &[("a", true), ("b", true)]);
    assert_eq!(sim.rounds().pop().unwrap().eliminated, Some(vec![]));
    // Round 2: b wrong → one left → the match ends.
    round(&mut sim, 2, &[("a", true), ("b", false)]);
    assert_eq!(sim.room.phase(), Phase::Finished);
    let s = sim.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("a"));
    assert_eq!(s.questions_asked, 3);
    assert_eq!(summary_player(&sim, "c").eliminated_in, Some(0));
    assert_eq!(summary_player(&sim, "b").eliminated_in, Some(2));
    assert_eq!(summary_player(&sim, "a").eliminated_in, None);
    assert_replays(&sim);
}

#[test]
fn nobody_goes_out_when_everyone_would() {
    let mut sim = royale(&["a", "b", "c"], 3);
    round(&mut sim, 0, &[("a", true), ("b", true), ("c", false)]);
    round(&mut sim, 1, &[("a", false), ("b", false)]);
    assert_eq!(sim.rounds().pop().unwrap().eliminated, Some(vec![]));
    sim.until_question(2);
    sim.advance(QUESTION_MS); // silence is also a miss: nobody out again
    assert_eq!(sim.rounds().pop().unwrap().eliminated, Some(vec![]));
    assert_eq!(sim.room.phase(), Phase::Finished, "questions ran out");
    let s = sim.summary().unwrap();
    // a and b both still in; a answered round 0 sooner, so more points.
    assert_eq!(s.result.winner.as_deref(), Some("a"));
    assert_eq!(summary_player(&sim, "b").eliminated_in, None);
    assert_eq!(summary_player(&sim, "b").rank, 2);
}

#[test]
fn ranking_later_elimination_then_score() {
    // Scores: a answers first (more points) each time.
    let mut sim = royale(&["a", "b", "c", "d", "e"], 3);
    round(
        &mut sim,
        0,
        &[
            ("b", true),
            ("a", true),
            ("c", true),
            ("d", false),
            ("e", false),
        ],
    );
    round(&mut sim, 1, &[("a", true), ("b", true), ("c", false)]);
    round(&mut sim, 2, &[("a", true), ("b", true)]);
    let s = sim.summary().unwrap();
    // a and b both survive; a answered earlier twice → more points.
    assert_eq!(s.result.winner.as_deref(), Some("a"));
    let ranks: Vec<_> = s
        .result
        .standings
        .iter()
        .map(|st| (st.id.as_str(), st.rank))
        .collect();
    assert_eq!(ranks, [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 4)]);
    assert_replays(&sim);
}

#[test]
fn equal_survival_and_score_share_a_rank_and_no_winner() {
    let mut sim = royale(&["a", "b", "c"], 1);
    sim.until_question(0);
    let t0 = sim.now;
    sim.now = t0 + 1_000;
    sim.answer("a", 0, right(0)).unwrap();
    sim.answer("b", 0, right(0)).unwrap();
    sim.answer("c", 0, wrong(0)).unwrap();
    let s = sim.summary().unwrap();
    assert_eq!(s.result.winner, None);
    let ranks: Vec<_> = s
        .result
        .standings
        .iter()
        .map(|st| (st.id.as_str(), st.rank))
        .collect();
    assert_eq!(ranks, [("a", 1), ("b", 1), ("c", 3)]);
}

#[test]
fn score_rank_uses_the_royale_ordering() {
    let mut sim = royale(&["a", "b", "c"], 3);
    // c answers first but wrong; a right slower than b.
    sim.until_question(0);
    let t0 = sim.now;
    sim.now = t0 + 100;
    sim.answer("c", 0, wrong(0)).unwrap();
    sim.now = t0 + 200;
    sim.answer("b", 0, right(0)).unwrap();
    sim.now = t0 + 5_000;
    sim.answer("a", 0, right(0)).unwrap();
    assert_eq!(sim.scores_to("b")[0].rank, 1);
    assert_eq!(sim.scores_to("a")[0].rank, 2);
    assert_eq!(sim.scores_to("c")[0].rank, 3);
}

#[test]
fn leaving_eliminates_in_the_current_question() {
    let mut sim = royale(&["a", "b", "c"], 5);
    round(&mut sim, 0, &[("a", true), ("b", true), ("c", true)]);
    sim.until_question(1);
    sim.leave("c").unwrap();
    assert!(matches!(sim.answer("c", 1, 0), Err(RoomError::NotInRoom)));
    round(&mut sim, 1, &[("a", true), ("b", true)]);
    assert_eq!(
        sim.rounds().pop().unwrap().eliminated,
        Some(vec!["c".to_string()])
    );
    // Between rounds: a leaves → out in question 2 → b is alone → ends at once.
    sim.leave("a").unwrap();
    assert_eq!(sim.room.phase(), Phase::Finished);
    let s = sim.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("b"));
    assert_eq!(summary_player(&sim, "a").eliminated_in, Some(2));
    assert!(summary_player(&sim, "a").left);
    assert_eq!(summary_player(&sim, "c").eliminated_in, Some(1));
    // a outlasted c.
    assert!(summary_player(&sim, "a").rank < summary_player(&sim, "c").rank);
    assert_replays(&sim);
}

#[test]
fn leave_of_the_last_awaited_player_closes_the_round() {
    let mut sim = royale(&["a", "b", "c"], 3);
    sim.until_question(0);
    sim.answer("a", 0, right(0)).unwrap();
    sim.answer("b", 0, right(0)).unwrap();
    assert!(sim.rounds().is_empty());
    sim.leave("c").unwrap();
    assert_eq!(sim.rounds().len(), 1);
}

#[test]
fn lobby_state_is_coalesced_to_one_per_250ms() {
    let mut spec = spec(Mode::BattleRoyale, 3);
    spec.settings.max_players = 2_000;
    let mut sim = Sim::new(spec);
    // 1000 joins over 1 second.
    for i in 0..1000u64 {
        sim.now = i;
        sim.join(&format!("p{i}")).unwrap();
        sim.advance(0);
    }
    sim.advance(1_000);
    let times: Vec<u64> = sim
        .outs
        .iter()
        .filter(|(_, o)| matches!(o, Output::Broadcast(ServerMsg::RoomState(_))))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(times, [0, 250, 500, 750, 1000]);
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= 250);
    }
    // The last one shows the whole lobby (count), and only the top 10 players.
    let last = sim
        .broadcasts()
        .filter_map(|m| match m {
            ServerMsg::RoomState(s) => Some(s.clone()),
            _ => None,
        })
        .last()
        .unwrap();
    assert_eq!(last.player_count, 1000);
    assert_eq!(last.players.len(), 10);
    assert_eq!(last.phase, Phase::Waiting);
    // A leave is a lobby change too.
    sim.outs.clear();
    sim.leave("p5").unwrap();
    assert_eq!(sim.outs.len(), 1);
    assert_eq!(sim.room.player_count(), 999);
}

#[test]
fn large_rooms_send_bounded_frames() {
    let mut spec = spec(Mode::BattleRoyale, 1);
    spec.settings.max_players = 150;
    let mut sim = Sim::new(spec);
    for i in 0..150 {
        sim.join(&format!("p{i:03}")).unwrap();
    }
    assert_eq!(sim.room.phase(), Phase::Playing, "full");
    sim.until_question(0);
    sim.now += 10;
    for i in 0..150 {
        let choice = if i % 2 == 0 { right(0) } else { wrong(0) };
        sim.answer(&format!("p{i:03}"), 0, choice).unwrap();
    }
    let r = sim.rounds().pop().unwrap();
    assert_eq!(r.top.len(), 10);
    assert!(
        r.gained.is_none() && r.scores.is_none(),
        "no maps above 16 players"
    );
    assert_eq!(r.eliminated.as_ref().unwrap().len(), 75);
    assert_eq!(sim.room.room_state(sim.now).players.len(), 10);
    let s = sim.summary().unwrap();
    assert_eq!(s.result.standings.len(), 100);
    assert_eq!(s.players.len(), 150);
    assert_eq!(sim.scores_to("p149").len(), 1, "every player gets a score");
}

#[test]
fn small_rooms_send_round_maps() {
    let mut sim = royale(&["a", "b"], 2);
    round(&mut sim, 0, &[("a", true), ("b", true)]);
    let r = sim.rounds().pop().unwrap();
    assert_eq!(r.gained.unwrap().len(), 2);
    assert_eq!(r.scores.unwrap().len(), 2);
}
