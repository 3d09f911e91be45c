//! Raid boss rules: damage, coalesced boss frames, victory and defeat.

use crate::common::*;
use juno_protocol::{Boss, Mode, Phase, ServerMsg};
use juno_rooms::{points, Output, RoomError};

fn raid(players: usize, boss_hp: Option<u64>, n_questions: u32) -> Sim {
    let mut spec = spec(Mode::Raid, n_questions);
    spec.settings.boss_hp = boss_hp;
    let mut sim = Sim::new(spec);
    for i in 0..players {
        sim.join(&format!("p{i}")).unwrap();
    }
    if sim.room.phase() == Phase::Waiting {
        sim.start("host").unwrap();
    }
    sim
}

fn boss_frames(sim: &Sim) -> Vec<(u64, Boss)> {
    sim.outs
        .iter()
        .filter_map(|(t, o)| match o {
            Output::Broadcast(ServerMsg::Boss(b)) => Some((*t, b.clone())),
            _ => None,
        })
        .collect()
}

/// Players p0, p1, … answer question 0 right, `step` ms apart from its opening
/// (which is returned), the room advancing after each.
fn answer_right_in_turn(sim: &mut Sim, players: u64, step: u64) -> u64 {
    sim.until_question(0);
    let t0 = sim.now;
    for i in 0..players {
        sim.now = t0 + i * step;
        sim.answer(&format!("p{i}"), 0, right(0)).unwrap();
        sim.advance(0);
    }
    t0
}

/// The `boss` frames' times are at least `gap` apart.
fn assert_gaps(frames: &[(u64, Boss)], gap: u64) {
    for pair in frames.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= gap,
            "frames at {} and {}",
            pair[0].0,
            pair[1].0
        );
    }
}

#[test]
fn start_rules_and_default_hp() {
    let mut sim = Sim::new(spec(Mode::Raid, 3));
    assert!(
        matches!(sim.start("host"), Err(RoomError::NotAllowed(_))),
        "nobody seated"
    );
    sim.join("solo").unwrap();
    sim.start("host").unwrap();
    let state = sim.room.room_state(sim.now);
    let boss = state.boss.unwrap();
    assert_eq!((boss.hp, boss.max_hp), (1000, 1000));

    let sim = raid(3, None, 3);
    assert_eq!(sim.room.room_state(0).boss.unwrap().max_hp, 3000);
    let sim = raid(3, Some(77), 3);
    assert_eq!(sim.room.room_state(0).boss.unwrap().max_hp, 77);
}

#[test]
fn correct_answers_deal_points_as_damage() {
    let mut sim = raid(2, None, 3);
    sim.until_question(0);
    let t0 = sim.now;
    sim.now = t0 + 2_500;
    sim.answer("p0", 0, right(0)).unwrap();
    sim.now = t0 + 2_600;
    sim.answer("p1", 0, wrong(0)).unwrap();
    let round = sim.rounds().pop().unwrap();
    let boss = round.boss.unwrap();
    assert_eq!((boss.hp, boss.max_hp), (2000 - 137, 2000));
    assert_eq!(round.gained.unwrap()["p0"], 137);
    assert_eq!(sim.scores_to("p0")[0].score, 137);
    let frames = boss_frames(&sim);
    assert_eq!(frames.len(), 1, "the first hit goes out at once");
    assert_eq!(frames[0].0, t0 + 2_500);
    assert_eq!(
        (frames[0].1.hits, frames[0].1.dmg, frames[0].1.hp),
        (1, 137, 1863)
    );
    assert_eq!(frames[0].1.last.len(), 1);
}

#[test]
fn a_large_audience_gets_fewer_boss_frames() {
    // 10,000 recipients at 20,000 recipient-frames a second: one frame per 500 ms.
    let mut sim = raid(1000, Some(10_000_000), 2);
    assert_eq!(juno_rooms::BOSS_FANOUT_PER_SEC, 20_000);
    sim.fill_audience(10_000);
    answer_right_in_turn(&mut sim, 1000, 1);
    sim.advance(500);
    let frames = boss_frames(&sim);
    assert_gaps(&frames, 500);
    assert!(
        (2..=3).contains(&frames.len()),
        "{} frames for one second",
        frames.len()
    );
    let hits: u32 = frames.iter().map(|(_, f)| f.hits).sum();
    assert_eq!(hits, 1000, "every hit is still reported once");

    // However large the audience, at least one frame a second.
    // (40,000 members: anything from 20,000 up gets the 1 s cap.)
    let mut sim = raid(10, Some(10_000_000), 2);
    sim.fill_audience(40_000);
    let t0 = answer_right_in_turn(&mut sim, 10, 100);
    sim.advance(1_000);
    let times: Vec<u64> = boss_frames(&sim).iter().map(|(t, _)| t - t0).collect();
    assert_eq!(times, vec![0, 1_000]);
}

#[test]
fn boss_frames_are_coalesced_to_one_per_100ms() {
    let mut sim = raid(1000, Some(10_000_000), 2);
    answer_right_in_turn(&mut sim, 1000, 1); // 1000 answers within one second
    sim.advance(100); // the held-back frame for the last hits
    let frames = boss_frames(&sim);
    assert_gaps(&frames, 100);
    assert!(frames.len() <= 11, "{} frames for one second", frames.len());
    let hits: u32 = frames.iter().map(|(_, f)| f.hits).sum();
    let dmg: u64 = frames.iter().map(|(_, f)| f.dmg).sum();
    assert_eq!(hits, 1000, "every hit is reported once");
    let last = &frames.last().unwrap().1;
    assert_eq!(dmg, last.max_hp - last.hp);
    assert_eq!(last.last.len(), 5);
    assert_eq!(last.last[4].by, "p999", "newest last");
    assert_eq!(last.last[0].by, "p995");
    // The round closed when everyone had answered.
    assert_eq!(sim.rounds().len(), 1);
    let round = sim.rounds().pop().unwrap();
    assert!(round.gained.is_none());
    assert_eq!(
        round.correct,
        sim.room.spec().questions[0].correct,
        "the correct choice is revealed"
    );
}

#[test]
fn held_back_frame_goes_out_via_the_timer() {
    let mut sim = raid(3, None, 2);
    sim.until_question(0);
    let t0 = sim.now;
    sim.now = t0 + 10;
    sim.answer("p0", 0, right(0)).unwrap();
    sim.now = t0 + 20;
    sim.answer("p1", 0, right(0)).unwrap();
    assert_eq!(boss_frames(&sim).len(), 1);
    assert_eq!(sim.room.poll_timeout(), Some(t0 + 110));
    sim.advance(89);
    assert_eq!(boss_frames(&sim).len(), 1);
    sim.advance(1);
    let frames = boss_frames(&sim);
    assert_eq!(frames.len(), 2);
    assert_eq!((frames[1].0, frames[1].1.hits), (t0 + 110, 1));
    assert_eq!(frames[1].1.last.len(), 2);
}

#[test]
fn victory_when_hp_reaches_zero() {
    let mut sim = raid(3, Some(250), 5);
    sim.until_question(0);
    let t0 = sim.now;
    sim.now = t0 + 100;
    sim.answer("p0", 0, right(0)).unwrap(); // 149
    sim.now = t0 + 150;
    sim.answer("p1", 0, right(0)).unwrap(); // 149 > 101 left: kills, credited 101
    assert_eq!(sim.room.phase(), Phase::Finished);
    assert_eq!(sim.answer("p2", 0, right(0)), Err(RoomError::TooLate));
    let frames = boss_frames(&sim);
    let final_frame = &frames.last().unwrap().1;
    assert_eq!(final_frame.hp, 0, "the killing blow is reported");
    let round = sim.rounds().pop().unwrap();
    assert_eq!(round.boss.unwrap().hp, 0);
    let s = sim.summary().unwrap();
    assert_eq!(s.result.victory, Some(true));
    assert_eq!(s.result.winner, None);
    let total: u64 = s.players.iter().map(|p| p.score).sum();
    assert_eq!(total, 250);
    assert_eq!(s.result.standings[0].id, "p0");
    assert_eq!(s.result.standings[0].score, points(QUESTION_MS, 100));
    assert_eq!(s.result.standings[1].score, 250 - points(QUESTION_MS, 100));
    // Order of the end: boss, round, scores, result, finished.
    let tail: Vec<&str> = sim
        .outs
        .iter()
        .rev()
        .take(7)
        .map(|(_, o)| match o {
            Output::Broadcast(m) => m.type_name(),
            Output::Send { msg, .. } => msg.type_name(),
            Output::Finished(_) => "finished",
            _ => "other",
        })
        .collect();
    assert_eq!(
        tail,
        ["finished", "result", "score", "score", "score", "round", "boss"]
    );
    assert_replays(&sim);
}

#[test]
fn defeat_when_questions_run_out() {
    let mut sim = raid(2, None, 2);
    for q in 0..2 {
        sim.until_question(q);
        sim.now += 1_000;
        sim.answer("p0", q, right(q)).unwrap();
        sim.answer("p1", q, wrong(q)).unwrap();
    }
    assert_eq!(sim.room.phase(), Phase::Finished);
    let s = sim.summary().unwrap();
    assert_eq!(s.result.victory, Some(false));
    assert_eq!(s.result.winner, None);
    let ranks: Vec<_> = s
        .result
        .standings
        .iter()
        .map(|st| (st.id.as_str(), st.rank))
        .collect();
    assert_eq!(ranks, [("p0", 1), ("p1", 2)]);
    assert_replays(&sim);
}

#[test]
fn leaver_stops_dealing_damage_but_keeps_it() {
    let mut sim = raid(2, None, 3);
    sim.until_question(0);
    sim.now += 1_000;
    sim.answer("p0", 0, right(0)).unwrap();
    sim.leave("p0").unwrap();
    assert_eq!(sim.room.phase(), Phase::Playing);
    sim.until_question(1);
    assert_eq!(sim.answer("p0", 1, right(1)), Err(RoomError::NotInRoom));
    sim.run_out();
    let s = sim.summary().unwrap();
    let p0 = s.players.iter().find(|p| p.id == "p0").unwrap();
    assert!(p0.left);
    assert_eq!(p0.score, points(QUESTION_MS, 1_000));
    assert_eq!(s.result.standings[0].id, "p0");
    // p0 left: no more score frames for them after round 0.
    assert_eq!(sim.scores_to("p0").len(), 0);
}

#[test]
fn a_raid_nobody_can_answer_runs_out_without_stalling_its_timer() {
    // No pause between rounds and no player left: each question opens and closes
    // at the same instant, which must still count as the timer advancing.
    let mut s = spec(Mode::Raid, 3);
    s.settings.between_ms = 0;
    let mut sim = Sim::new(s);
    sim.join("p0").unwrap();
    sim.start("host").unwrap();
    sim.until_question(0);
    sim.leave("p0").unwrap();
    sim.advance(60_000);
    assert_eq!(sim.room.phase(), Phase::Finished);
}
