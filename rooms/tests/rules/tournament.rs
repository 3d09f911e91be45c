//! Tournament rules: seeding, byes, spawned duels, walkovers, forfeits, final ranks.

use crate::common::*;
use juno_protocol::{Mode, Pairing, Phase, ServerMsg};
use juno_rooms::{Input, Output, RoomError};

fn tournament(entrants: &[&str]) -> Sim {
    let mut sim = Sim::new(spec(Mode::Tournament, 3));
    for e in entrants {
        sim.join(e).unwrap();
    }
    if sim.room.phase() == Phase::Waiting {
        sim.start("host").unwrap();
    }
    sim
}

fn spawns(sim: &Sim) -> Vec<(String, [String; 2], u32)> {
    sim.outs
        .iter()
        .filter_map(|(_, o)| match o {
            Output::SpawnDuel {
                room,
                players,
                round,
            } => Some((
                room.clone(),
                [players[0].id.clone(), players[1].id.clone()],
                *round,
            )),
            _ => None,
        })
        .collect()
}

fn last_bracket(sim: &Sim) -> Vec<Vec<Pairing>> {
    sim.broadcasts()
        .filter_map(|m| match m {
            ServerMsg::Bracket(b) => Some(b.rounds.clone()),
            _ => None,
        })
        .last()
        .unwrap()
}

fn over(sim: &mut Sim, room: &str, winner: &str, scores: &[(&str, u64)]) -> Result<(), RoomError> {
    sim.input(Input::DuelOver {
        room: room.into(),
        winner: winner.into(),
        scores: scores.iter().map(|(u, s)| (u.to_string(), *s)).collect(),
    })
}

fn p(a: Option<&str>, b: Option<&str>, winner: Option<&str>, room: Option<&str>) -> Pairing {
    Pairing {
        a: a.map(Into::into),
        b: b.map(Into::into),
        winner: winner.map(Into::into),
        room: room.map(Into::into),
    }
}

#[test]
fn start_rules() {
    let mut sim = Sim::new(spec(Mode::Tournament, 3));
    sim.join("a").unwrap();
    assert!(
        matches!(sim.start("host"), Err(RoomError::NotAllowed(_))),
        "needs 2"
    );
    sim.join("b").unwrap();
    assert!(matches!(sim.start("b"), Err(RoomError::NotAllowed(_))));
    assert_eq!(sim.room.room_state(0).bracket, Some(vec![]));
    sim.start("host").unwrap();
    assert_eq!(sim.room.phase(), Phase::Playing);
    assert_eq!(
        spawns(&sim),
        [("r1.0.0".to_string(), ["a".to_string(), "b".to_string()], 0)]
    );
    assert!(matches!(
        sim.answer("a", 0, 0),
        Err(RoomError::NotAllowed(_))
    ));
    let duel_over = Input::DuelOver {
        room: "x".into(),
        winner: "a".into(),
        scores: vec![],
    };
    assert_eq!(duel_over.user(), None);
}

#[test]
fn full_bracket_starts_itself() {
    let sim = tournament(&["a", "b", "c", "d", "e", "f", "g", "h"]);
    assert_eq!(sim.room.phase(), Phase::Playing);
    let rooms: Vec<_> = spawns(&sim)
        .into_iter()
        .map(|(r, players, _)| (r, players))
        .collect();
    // Seeds by id: a=1 … h=8; placement 1v8, 4v5, 2v7, 3v6.
    let expect = [
        ("r1.0.0", ["a", "h"]),
        ("r1.0.1", ["d", "e"]),
        ("r1.0.2", ["b", "g"]),
        ("r1.0.3", ["c", "f"]),
    ];
    assert_eq!(rooms.len(), 4);
    for (got, want) in rooms.iter().zip(expect) {
        assert_eq!(got.0, want.0);
        assert_eq!(got.1, want.1.map(String::from));
    }
}

#[test]
fn six_entrants_in_eight_with_byes_to_the_final() {
    let mut sim = tournament(&["f", "e", "d", "c", "b", "a"]); // seeding ignores join order
                                                               // Started, room_state, bracket, then the duels to spawn.
    let kinds: Vec<&str> = sim
        .outs
        .iter()
        .map(|(_, o)| match o {
            Output::Started => "started",
            Output::Broadcast(m) => m.type_name(),
            Output::SpawnDuel { .. } => "spawn",
            _ => "other",
        })
        .skip_while(|k| *k != "started")
        .collect();
    assert_eq!(
        kinds,
        ["started", "room_state", "bracket", "spawn", "spawn"]
    );
    let bracket = last_bracket(&sim);
    assert_eq!(
        bracket[0],
        [
            p(Some("a"), None, Some("a"), None),
            p(Some("d"), Some("e"), None, Some("r1.0.1")),
            p(Some("b"), None, Some("b"), None),
            p(Some("c"), Some("f"), None, Some("r1.0.3")),
        ]
    );
    assert_eq!(
        bracket[1],
        [
            p(Some("a"), None, None, None),
            p(Some("b"), None, None, None)
        ]
    );
    assert_eq!(bracket[2], [p(None, None, None, None)]);
    assert_eq!(sim.room.room_state(sim.now).bracket.unwrap(), bracket);

    sim.outs.clear();
    over(&mut sim, "r1.0.1", "e", &[("d", 300), ("e", 400)]).unwrap();
    assert_eq!(
        spawns(&sim),
        [("r1.1.0".to_string(), ["a".to_string(), "e".to_string()], 1)]
    );
    assert_eq!(last_bracket(&sim)[0][1].winner.as_deref(), Some("e"));
    over(&mut sim, "r1.0.3", "c", &[("c", 500), ("f", 100)]).unwrap();
    over(&mut sim, "r1.1.0", "e", &[("a", 200), ("e", 250)]).unwrap();
    over(&mut sim, "r1.1.1", "b", &[("b", 450), ("c", 450)]).unwrap();
    assert_eq!(sim.room.phase(), Phase::Playing);
    over(&mut sim, "r1.2.0", "b", &[("b", 600), ("e", 10)]).unwrap();
    assert_eq!(sim.room.phase(), Phase::Finished);

    let s = sim.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("b"));
    let standings: Vec<_> = s
        .result
        .standings
        .iter()
        .map(|st| (st.id.as_str(), st.rank, st.score))
        .collect();
    assert_eq!(
        standings,
        [
            ("b", 1, 1050),
            ("e", 2, 660),
            ("c", 3, 950),
            ("a", 3, 200),
            ("d", 5, 300),
            ("f", 5, 100),
        ]
    );
    let eliminated = s
        .players
        .iter()
        .filter(|p| p.eliminated_in.is_some())
        .count();
    assert_eq!(eliminated, 5, "n − 1 eliminations");
    assert_replays(&sim);
}

#[test]
fn bad_duel_reports_are_refused() {
    let mut sim = tournament(&["a", "b", "c", "d"]);
    assert!(matches!(
        over(&mut sim, "nope", "a", &[]),
        Err(RoomError::Invalid(_))
    ));
    assert!(matches!(
        over(&mut sim, "r1.0.0", "b", &[]),
        Err(RoomError::Invalid(_))
    ));
    over(&mut sim, "r1.0.0", "a", &[]).unwrap();
    assert!(
        matches!(
            over(&mut sim, "r1.0.0", "a", &[]),
            Err(RoomError::Invalid(_))
        ),
        "twice"
    );
}

#[test]
fn leaving_during_a_running_duel_forfeits_it_through_the_host() {
    let mut sim = tournament(&["a", "b", "c", "d"]);
    sim.outs.clear();
    sim.leave("d").unwrap();
    assert_eq!(
        sim.take(),
        [Output::Forfeit {
            room: "r1.0.0".into(),
            user: "d".into()
        }]
    );
    assert!(!sim.room.is_player("d"));
    // The duel reports back as usual.
    over(&mut sim, "r1.0.0", "a", &[("a", 100), ("d", 0)]).unwrap();
    assert_eq!(sim.leave("d"), Ok(()), "already out: no-op");
    assert_eq!(sim.leave("zed"), Err(RoomError::NotInRoom));
}

#[test]
fn walkover_when_the_waiting_opponent_left() {
    let mut sim = tournament(&["a", "b", "c", "d"]);
    // Bracket: a v d (r1.0.0), b v c (r1.0.1).
    over(&mut sim, "r1.0.0", "a", &[("a", 300), ("d", 100)]).unwrap();
    sim.leave("a").unwrap(); // waiting for the final: no duel running
    assert!(spawns(&sim).iter().all(|(r, _, _)| r != "r1.1.0"));
    sim.outs.clear();
    over(&mut sim, "r1.0.1", "c", &[("b", 100), ("c", 200)]).unwrap();
    assert!(spawns(&sim).is_empty(), "the final is a walkover, no duel");
    assert_eq!(sim.room.phase(), Phase::Finished);
    let final_ = &last_bracket(&sim)[1][0];
    assert_eq!(final_, &p(Some("a"), Some("c"), Some("c"), None));
    let s = sim.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("c"));
    let a = s.players.iter().find(|p| p.id == "a").unwrap();
    assert_eq!((a.rank, a.left, a.eliminated_in), (2, true, Some(1)));
    assert_replays(&sim);
}

#[test]
fn duel_points_saturate_instead_of_overflowing() {
    // Found by the rooms fuzz target: an entrant whose duel points add up past
    // u64::MAX overflowed the tournament score (a panic in debug builds, a
    // score wrapping to almost nothing in release ones).
    let mut sim = tournament(&["a", "b", "c", "d"]);
    // Bracket: a v d (r1.0.0), b v c (r1.0.1).
    over(&mut sim, "r1.0.0", "a", &[("a", u64::MAX - 5), ("d", 1)]).unwrap();
    over(&mut sim, "r1.0.1", "b", &[("b", 200), ("c", 100)]).unwrap();
    over(&mut sim, "r1.1.0", "a", &[("a", 100), ("b", u64::MAX)]).unwrap();
    let s = sim.summary().unwrap();
    let score = |id: &str| s.players.iter().find(|p| p.id == id).unwrap().score;
    assert_eq!((score("a"), score("b")), (u64::MAX, u64::MAX));
    assert_eq!(s.result.winner.as_deref(), Some("a"));
    assert_replays(&sim);
}

#[test]
fn two_entrants_play_one_final() {
    let mut sim = tournament(&["x", "y"]);
    assert_eq!(last_bracket(&sim).len(), 1);
    over(&mut sim, "r1.0.0", "y", &[("x", 10), ("y", 20)]).unwrap();
    let s = sim.summary().unwrap();
    assert_eq!(s.result.winner.as_deref(), Some("y"));
    assert_eq!(s.result.standings[1].rank, 2);
}

fn rate(sim: &mut Sim, user: &str, rating: f64) -> Result<(), RoomError> {
    sim.input(Input::Rating {
        user: user.into(),
        rating,
    })
}

fn first_round(sim: &Sim) -> Vec<(Option<String>, Option<String>)> {
    last_bracket(sim)[0]
        .iter()
        .map(|p| (p.a.clone(), p.b.clone()))
        .collect()
}

fn pair(a: &str, b: Option<&str>) -> (Option<String>, Option<String>) {
    (Some(a.into()), b.map(Into::into))
}

#[test]
fn seeding_follows_the_ratings_with_byes_to_the_top_seeds() {
    let mut sim = Sim::new(spec(Mode::Tournament, 3));
    // Join order is not seed order.
    for (user, rating) in [
        ("d", Some(1500.0)),
        ("a", Some(1200.0)),
        ("e", Some(2100.0)),
        ("c", None), // no rating reported: seeds as a newcomer, 1500
        ("f", Some(1650.0)),
        ("b", Some(1900.0)),
    ] {
        sim.join(user).unwrap();
        if let Some(r) = rating {
            rate(&mut sim, user, r).unwrap();
        }
    }
    sim.start("host").unwrap();
    // Seeds: e 2100, b 1900, f 1650, c 1500 and d 1500 (equal: by id), a 1200.
    // Eight places, 1v8 4v5 2v7 3v6: the two byes go to seeds 1 and 2.
    assert_eq!(
        first_round(&sim),
        [
            pair("e", None),
            pair("c", Some("d")),
            pair("b", None),
            pair("f", Some("a")),
        ]
    );
    let rooms: Vec<_> = spawns(&sim).into_iter().map(|(_, p, _)| p).collect();
    assert_eq!(
        rooms,
        [
            ["c".to_string(), "d".to_string()],
            ["f".to_string(), "a".to_string()]
        ]
    );
}

#[test]
fn a_full_bracket_seeds_by_rating_and_replays_the_same() {
    let mut s = spec(Mode::Tournament, 3);
    s.settings.size = 4;
    s.settings.max_players = 4;
    let mut sim = Sim::new(s);
    for (user, rating) in [("w", 1000.0), ("x", 2000.0), ("y", 1812.25)] {
        sim.join(user).unwrap();
        rate(&mut sim, user, rating).unwrap();
    }
    sim.spectate("fan").unwrap();
    sim.join("z").unwrap(); // full: starts before z could be rated, so z is 1500
    assert_eq!(sim.room.phase(), Phase::Playing);
    // x 2000, y 1812.25, z 1500, w 1000: 1v4 and 2v3.
    assert_eq!(
        first_round(&sim),
        [pair("x", Some("w")), pair("y", Some("z"))]
    );
    // Ratings come too late once the bracket is seeded: changed nothing.
    let logged = sim.room.log().len();
    rate(&mut sim, "z", 3000.0).unwrap();
    assert_eq!(sim.room.log().len(), logged);

    over(&mut sim, "r1.0.0", "x", &[("x", 300), ("w", 100)]).unwrap();
    over(&mut sim, "r1.0.1", "z", &[("y", 100), ("z", 200)]).unwrap();
    over(&mut sim, "r1.1.0", "z", &[("x", 100), ("z", 200)]).unwrap();
    assert_eq!(sim.summary().unwrap().result.winner.as_deref(), Some("z"));
    assert_replays(&sim);
    // The ratings are in the log, through JSON too, so a replay seeds the same.
    let json = serde_json::to_string(sim.room.log()).unwrap();
    assert_eq!(json.matches(r#""kind":"rating""#).count(), 3);
    let log: Vec<juno_rooms::LogEntry> = serde_json::from_str(&json).unwrap();
    let replayed = juno_rooms::replay(sim.room.spec().clone(), &log).unwrap();
    assert_eq!(replayed, sim.summary().unwrap());
}

#[test]
fn ratings_are_checked_and_only_seed_a_tournament_lobby() {
    let mut sim = Sim::new(spec(Mode::Tournament, 3));
    sim.join("a").unwrap();
    assert!(matches!(
        rate(&mut sim, "a", f64::NAN),
        Err(RoomError::Invalid(_))
    ));
    assert!(matches!(
        rate(&mut sim, "a", f64::INFINITY),
        Err(RoomError::Invalid(_))
    ));
    assert_eq!(rate(&mut sim, "zed", 1600.0), Err(RoomError::NotInRoom));
    let logged = sim.room.log().len();
    rate(&mut sim, "a", 1600.0).unwrap();
    rate(&mut sim, "a", 1600.0).unwrap(); // the same again: nothing new
    assert_eq!(sim.room.log().len(), logged + 1);
    let input = Input::Rating {
        user: "a".into(),
        rating: 1.0,
    };
    assert_eq!(input.user(), Some("a"));

    // Nothing is seeded outside a tournament: ignored, not logged.
    let mut duel = Sim::new(spec(Mode::Duel, 1));
    duel.join("a").unwrap();
    let logged = duel.room.log().len();
    rate(&mut duel, "a", 1600.0).unwrap();
    assert_eq!(duel.room.log().len(), logged);
}
