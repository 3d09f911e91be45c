//! Benchmarks of the game rules: one duel round, and a 1000-player raid round
//! (time per answer in `handle()`, then closing the round and draining its outputs).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use juno_protocol::{Mode, Question};
use juno_rooms::{Input, Room, RoomSpec, Settings};

const QUESTION_MS: u64 = 10_000;

fn spec(mode: Mode, max_players: u32) -> RoomSpec {
    RoomSpec {
        room: "bench".into(),
        mode,
        mission: "demo".into(),
        creator: Some("host".into()),
        settings: Settings {
            questions: 5,
            question_ms: QUESTION_MS,
            countdown_ms: 3_000,
            between_ms: 2_000,
            max_players,
            boss_hp: Some(1_000_000_000),
            size: 8,
            watch: true,
            reconnect_ms: juno_rooms::DEFAULT_RECONNECT_MS,
        },
        questions: (0..5)
            .map(|i| Question {
                text: format!("Question {i}?"),
                choices: vec!["a".into(), "b".into(), "c".into(), "d".into()],
                correct: 1,
                difficulty: None,
            })
            .collect(),
        parent: None,
    }
}

/// A room of `players` players with question 0 open at the returned time.
fn open_room(mode: Mode, players: usize) -> (Room, u64) {
    let mut room = Room::new(spec(mode, players as u32));
    for i in 0..players {
        let user = format!("user{i:04}");
        let joined = room.handle(
            0,
            Input::Join {
                user: user.clone(),
                name: user,
            },
        );
        assert!(joined.is_ok(), "seating the bench room");
    }
    if room.phase() == juno_protocol::Phase::Waiting {
        let started = room.handle(
            0,
            Input::Start {
                user: "host".into(),
            },
        );
        assert!(started.is_ok(), "starting the bench room");
    }
    let opens = room.poll_timeout().unwrap_or_default();
    room.handle_timeout(opens);
    while room.poll_output().is_some() {}
    (room, opens)
}

fn answer(user: usize, choice: u32) -> Input {
    Input::Answer {
        user: format!("user{user:04}"),
        q: 0,
        choice,
    }
}

fn duel_round(c: &mut Criterion) {
    let (room, t0) = open_room(Mode::Duel, 2);
    c.bench_function("duel/round (2 answers + close + drain)", |b| {
        b.iter_batched(
            || room.clone(),
            |mut room| {
                let _ = room.handle(t0 + 1_200, answer(0, 1));
                let _ = room.handle(t0 + 2_500, answer(1, 2));
                let mut n = 0;
                while let Some(out) = room.poll_output() {
                    black_box(out);
                    n += 1;
                }
                assert_eq!(n, 3, "round + two scores");
                room
            },
            BatchSize::SmallInput,
        )
    });
}

fn raid_1000(c: &mut Criterion) {
    const PLAYERS: usize = 1000;
    let (room, t0) = open_room(Mode::Raid, PLAYERS);
    let mut group = c.benchmark_group("raid_1000");
    // All but one answer, spread over one second: the round stays open.
    group.throughput(Throughput::Elements(PLAYERS as u64 - 1));
    group.bench_function("handle per answer", |b| {
        b.iter_batched(
            || room.clone(),
            |mut room| {
                for i in 0..PLAYERS - 1 {
                    let _ = room.handle(t0 + i as u64, answer(i, (i % 2) as u32));
                }
                room
            },
            BatchSize::LargeInput,
        )
    });
    let mut answered = room.clone();
    for i in 0..PLAYERS - 1 {
        let _ = answered.handle(t0 + i as u64, answer(i, (i % 2) as u32));
    }
    while answered.poll_output().is_some() {}
    group.throughput(Throughput::Elements(1));
    group.bench_function("last answer closes the round + drain outputs", |b| {
        b.iter_batched(
            || answered.clone(),
            |mut room| {
                let _ = room.handle(t0 + 999, answer(PLAYERS - 1, 1));
                let mut n = 0;
                while let Some(out) = room.poll_output() {
                    black_box(out);
                    n += 1;
                }
                assert!(n > PLAYERS, "round + a score per player");
                room
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, duel_round, raid_1000);
criterion_main!(benches);
