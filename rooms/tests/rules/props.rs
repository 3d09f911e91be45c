//! Property tests: invariants of every mode under random play, and exact replay.

use crate::common::*;
use juno_protocol::{Mode, Phase, ServerMsg};
use juno_rooms::{Input, Output, Room};
use proptest::prelude::*;

/// What one player does in one round; times are ms after the question opened.
#[derive(Debug, Clone)]
enum Act {
    Right(u64),
    Wrong(u64),
    Silent,
    Leave(u64),
    Abandon(u64),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        6 => (0..12_000u64).prop_map(Act::Right),
        4 => (0..12_000u64).prop_map(Act::Wrong),
        2 => Just(Act::Silent),
        1 => (0..12_000u64).prop_map(Act::Leave),
        1 => (0..12_000u64).prop_map(Act::Abandon),
    ]
}

/// `rounds` rounds of acts for `players` players.
fn script(players: usize, rounds: usize) -> impl Strategy<Value = Vec<Vec<Act>>> {
    prop::collection::vec(prop::collection::vec(act(), players), rounds)
}

fn user(i: usize) -> String {
    format!("u{i:02}")
}

/// Plays `script` round by round; errors (too late, not in room, …) are part of
/// the game and ignored. `check` runs after every step.
fn play(sim: &mut Sim, script: &[Vec<Act>], mut check: impl FnMut(&Sim)) {
    for (q, acts) in script.iter().enumerate() {
        let q = q as u32;
        while sim.room.phase() == Phase::Playing && sim.open_q() != Some(q) {
            let Some(t) = sim.room.poll_timeout() else {
                break;
            };
            sim.advance(t.saturating_sub(sim.now));
            check(sim);
        }
        if sim.room.phase() != Phase::Playing {
            break;
        }
        let t0 = sim.now;
        let mut events: Vec<(u64, usize, &Act)> = acts
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Act::Right(t) | Act::Wrong(t) | Act::Leave(t) | Act::Abandon(t) => Some((*t, i, a)),
                Act::Silent => None,
            })
            .collect();
        events.sort_by_key(|&(t, i, _)| (t, i));
        for (t, i, a) in events {
            sim.advance((t0 + t).saturating_sub(sim.now));
            let input = match a {
                Act::Right(_) => Input::Answer {
                    user: user(i),
                    q,
                    choice: right(q),
                },
                Act::Wrong(_) => Input::Answer {
                    user: user(i),
                    q,
                    choice: wrong(q),
                },
                Act::Leave(_) => Input::Leave { user: user(i) },
                Act::Abandon(_) => Input::Abandon { user: user(i) },
                Act::Silent => continue,
            };
            let _ = sim.input(input);
            check(sim);
        }
    }
    sim.run_out();
    check(sim);
}

fn seated(mode: Mode, players: usize, questions: u32) -> Sim {
    let mut spec = spec(mode, questions);
    if mode != Mode::Duel {
        spec.settings.max_players = 10_000;
    }
    let mut sim = Sim::new(spec);
    for i in 0..players {
        sim.join(&user(i)).unwrap();
    }
    if sim.room.phase() == Phase::Waiting {
        sim.start("host").unwrap();
    }
    sim
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn royale_always_keeps_someone_in(
        (players, script) in (2usize..12, 1usize..8).prop_flat_map(|(p, r)| (Just(p), script(p, r)))
    ) {
        let mut sim = seated(Mode::BattleRoyale, players, script.len() as u32);
        play(&mut sim, &script, |sim| {
            let state = sim.room.room_state(sim.now);
            let alive = state.players.iter().filter(|p| p.alive).count();
            assert!(alive >= 1, "everyone is out");
        });
        for round in sim.rounds() {
            let out = round.eliminated.unwrap();
            // Everyone listed went out in this round, and someone was left standing.
            assert!(out.len() < players);
        }
        let s = sim.summary().unwrap();
        prop_assert!(s.players.iter().any(|p| p.eliminated_in.is_none()));
        prop_assert_eq!(s.players.len(), players);
        if let Some(w) = &s.result.winner {
            prop_assert_eq!(&s.result.standings[0].id, w);
            prop_assert_eq!(s.result.standings.iter().filter(|st| st.rank == 1).count(), 1);
        }
        assert_replays(&sim);
    }

    #[test]
    fn royale_rounds_never_empty_the_field(
        (players, script) in (2usize..8, 1usize..8).prop_flat_map(|(p, r)| (Just(p), script(p, r)))
    ) {
        // Track who is alive before each round from the room's own frames.
        let mut sim = seated(Mode::BattleRoyale, players, script.len() as u32);
        let mut alive: Vec<String> = (0..players).map(user).collect();
        let mut seen_rounds = 0;
        play(&mut sim, &script, |sim| {
            let rounds = sim.rounds();
            for round in &rounds[seen_rounds..] {
                let out = round.eliminated.clone().unwrap();
                let before = alive.len();
                alive.retain(|u| !out.contains(u));
                assert!(!alive.is_empty(), "round {} eliminated all {before}", round.q);
            }
            seen_rounds = rounds.len();
            // Leavers go out between frames; follow room_state.
            let state = sim.room.room_state(sim.now);
            alive.retain(|u| state.players.iter().any(|p| &p.id == u && p.alive));
        });
    }

    #[test]
    fn raid_damage_adds_up(
        (players, hp, script) in (1usize..20, prop::option::of(1u64..4_000), 1usize..6)
            .prop_flat_map(|(p, hp, r)| (Just(p), Just(hp), script(p, r)))
    ) {
        let mut spec = spec(Mode::Raid, script.len() as u32);
        spec.settings.boss_hp = hp;
        let mut sim = Sim::new(spec);
        for i in 0..players {
            sim.join(&user(i)).unwrap();
        }
        sim.start("host").unwrap();
        play(&mut sim, &script, |sim| {
            let state = sim.room.room_state(sim.now);
            let boss = state.boss.unwrap();
            let dealt: u64 = state.players.iter().map(|p| p.score).sum();
            assert_eq!(dealt, boss.max_hp - boss.hp);
        });
        let s = sim.summary().unwrap();
        let boss = sim.room.room_state(sim.now).boss.unwrap();
        let dealt: u64 = s.players.iter().map(|p| p.score).sum();
        prop_assert_eq!(dealt, boss.max_hp - boss.hp);
        prop_assert_eq!(s.result.victory, Some(boss.hp == 0));
        prop_assert_eq!(boss.max_hp, hp.unwrap_or(1000 * players as u64));
        // Boss frames: at most one per 100 ms, except the last one at the end.
        let frames: Vec<(u64, u64, u64)> = sim.outs.iter().filter_map(|(t, o)| match o {
            Output::Broadcast(ServerMsg::Boss(b)) => Some((*t, b.hp, b.dmg)),
            _ => None,
        }).collect();
        let end = s.finished_at;
        for pair in frames.windows(2) {
            prop_assert!(pair[1].0 >= pair[0].0 + 100 || pair[1].0 == end);
        }
        let reported: u64 = frames.iter().map(|f| f.2).sum();
        prop_assert_eq!(reported, dealt, "every point of damage is reported");
        assert_replays(&sim);
    }

    #[test]
    fn duel_replays_and_snapshots_exactly(
        script in script(2, 5),
        cut in 0usize..40,
    ) {
        let mut sim = seated(Mode::Duel, 2, script.len() as u32);
        let mut snapshot: Option<(Room, usize)> = None;
        let mut steps = 0;
        play(&mut sim, &script, |sim| {
            steps += 1;
            if steps == cut {
                let json = serde_json::to_string(&sim.room).unwrap();
                snapshot = Some((serde_json::from_str(&json).unwrap(), sim.room.log().len()));
            }
        });
        let s = sim.summary().unwrap();
        prop_assert_eq!(s.players.len(), 2);
        let ranks: Vec<u32> = s.players.iter().map(|p| p.rank).collect();
        prop_assert!(ranks == [1, 2] || ranks == [1, 1]);
        prop_assert_eq!(s.result.winner.is_none(), ranks == [1, 1]);
        assert_replays(&sim);
        // A snapshot restored and fed the rest of the log ends the same way.
        if let Some((mut room, logged)) = snapshot {
            let rest: Vec<_> = sim.room.log()[logged..].to_vec();
            let mut summary = None;
            let rest_empty = rest.is_empty();
            for e in rest {
                match e.input {
                    Some(input) => { let _ = room.handle(e.at, input); }
                    None => room.handle_timeout(e.at),
                }
                while let Some(o) = room.poll_output() {
                    if let Output::Finished(done) = o { summary = Some(*done); }
                }
            }
            if !rest_empty {
                prop_assert_eq!(summary.unwrap(), s);
            }
        }
    }

    #[test]
    fn tournament_has_one_champion_and_n_minus_1_eliminations(
        n in 2usize..=16,
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>(), 0u64..500, 0u8..10), 64),
    ) {
        let size = n.next_power_of_two() as u32;
        let mut spec = spec(Mode::Tournament, 3);
        spec.settings.size = size;
        spec.settings.max_players = size;
        let mut sim = Sim::new(spec);
        for i in 0..n {
            sim.join(&user(i)).unwrap();
        }
        if sim.room.phase() == Phase::Waiting {
            sim.start("host").unwrap();
        }
        // Running duels: room → players.
        let mut running: Vec<(String, [String; 2])> = Vec::new();
        let mut forfeited: Vec<(String, String)> = Vec::new();
        let mut consumed = 0;
        let mut duels = 0;
        for (index, first_wins, points, leave_roll) in picks.iter().cycle().take(200) {
            for (_, o) in &sim.outs[consumed..] {
                match o {
                    Output::SpawnDuel { room, players, .. } => {
                        running.push((room.clone(), [players[0].id.clone(), players[1].id.clone()]));
                    }
                    Output::Forfeit { room, user } => forfeited.push((room.clone(), user.clone())),
                    _ => {}
                }
            }
            consumed = sim.outs.len();
            if sim.room.phase() == Phase::Finished {
                break;
            }
            prop_assert!(!running.is_empty(), "a playing tournament always has a duel running");
            if *leave_roll == 0 {
                let who = user(index.index(n));
                let _ = sim.leave(&who);
                continue;
            }
            let (room, players) = running.remove(index.index(running.len()));
            let mut winner = if *first_wins { players[0].clone() } else { players[1].clone() };
            if let Some((_, quitter)) = forfeited.iter().find(|(r, _)| *r == room) {
                winner = players.iter().find(|p| *p != quitter).unwrap().clone();
            }
            let scores = vec![(players[0].clone(), *points), (players[1].clone(), points / 2)];
            sim.input(Input::DuelOver { room, winner, scores }).unwrap();
            duels += 1;
        }
        prop_assert_eq!(sim.room.phase(), Phase::Finished);
        let s = sim.summary().unwrap();
        let champions = s.players.iter().filter(|p| p.rank == 1).count();
        prop_assert_eq!(champions, 1);
        prop_assert_eq!(s.result.winner.as_deref(), Some(s.players[0].id.as_str()));
        let out = s.players.iter().filter(|p| p.eliminated_in.is_some()).count();
        prop_assert_eq!(out, n - 1);
        prop_assert!(duels < n);
        // Decided pairings that were not byes: exactly n − 1.
        let bracket = sim.room.room_state(sim.now).bracket.unwrap();
        let decided = bracket.iter().flatten().filter(|p| p.winner.is_some() && p.a.is_some() && p.b.is_some()).count();
        prop_assert_eq!(decided, n - 1);
        assert_replays(&sim);
    }
}
