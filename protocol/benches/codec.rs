//! Codec costs on the hot paths: encoding the per-round broadcasts once per room,
//! and decoding the frames players send most (`answer`, `ping`).

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use juno_protocol::*;

fn question() -> ServerMsg {
    ServerMsg::Question(QuestionMsg {
        room: "room-7f3a9c".into(),
        q: 3,
        text: "Which protocol resolves host names to IP addresses?".into(),
        choices: vec!["DHCP".into(), "DNS".into(), "ARP".into(), "NTP".into()],
        ms: 10_000,
    })
}

fn round() -> ServerMsg {
    let users: Vec<String> = (0..16).map(|i| format!("user-{i:04}")).collect();
    let top = users
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, id)| Leader {
            id: id.clone(),
            score: 1_500 - 100 * i as u64,
        })
        .collect();
    let gained: BTreeMap<String, u64> = users.iter().map(|u| (u.clone(), 137)).collect();
    let scores: BTreeMap<String, u64> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.clone(), 400 + i as u64))
        .collect();
    ServerMsg::Round(Round {
        room: "room-7f3a9c".into(),
        q: 3,
        correct: 1,
        top,
        eliminated: None,
        boss: None,
        gained: Some(gained),
        scores: Some(scores),
    })
}

fn room_state() -> ServerMsg {
    let players = (0..100)
        .map(|i| PlayerState {
            id: format!("user-{i:04}"),
            name: format!("Player {i}"),
            score: 100 * i,
            alive: i % 3 != 0,
        })
        .collect();
    let ServerMsg::Question(question) = question() else {
        unreachable!()
    };
    ServerMsg::RoomState(RoomState {
        room: "room-7f3a9c".into(),
        mode: Mode::BattleRoyale,
        phase: Phase::Playing,
        players,
        player_count: 100,
        spectators: 12,
        question: Some(question),
        boss: None,
        bracket: None,
    })
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for (name, msg) in [
        ("question", question()),
        ("round_10_leaders_16_maps", round()),
        ("room_state_100_players", room_state()),
    ] {
        g.throughput(Throughput::Bytes(encode(&msg).len() as u64));
        g.bench_function(name, |b| b.iter(|| encode(black_box(&msg))));
    }
    g.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_client");
    let answer = encode_client(
        Some(42),
        &ClientMsg::Answer {
            room: "room-7f3a9c".into(),
            q: 3,
            choice: 1,
        },
    );
    let ping = encode_client(None, &ClientMsg::Ping);
    for (name, bytes) in [("answer_with_rid", answer), ("ping", ping)] {
        assert!(decode_client(&bytes).is_ok());
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(name, |b| b.iter(|| decode_client(black_box(&bytes))));
    }
    g.finish();
}

criterion_group!(benches, bench_encode, bench_decode);
criterion_main!(benches);
