//! The room host's fan-out: one `round` of a 1000-player raid encoded once and
//! handed to every recipient's bounded queue (what `Host::broadcast` does per frame).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use juno_protocol::{encode, BossHp, Leader, Round, ServerMsg};
use juno_server::game::sessions::Sessions;
use prometheus::IntCounter;

fn round_frame() -> ServerMsg {
    ServerMsg::Round(Round {
        room: "raid-bench".into(),
        q: 3,
        correct: 2,
        top: (0..10)
            .map(|i| Leader {
                id: format!("player{i:04}"),
                score: 1500 - i * 10,
            })
            .collect(),
        eliminated: None,
        boss: Some(BossHp {
            hp: 420_000,
            max_hp: 1_000_000,
        }),
        gained: None,
        scores: None,
    })
}

fn fan_out(c: &mut Criterion) {
    let counter = || IntCounter::new("x", "x").expect("valid metric");
    let sessions = Sessions::new(counter(), counter());
    let recipients = 1000;
    let mut receivers = Vec::new();
    for i in 0..recipients {
        let (handle, rx) = sessions.open(&format!("player{i:04}"), 256);
        sessions.register(handle);
        receivers.push(rx);
    }
    let users: Vec<String> = (0..recipients).map(|i| format!("player{i:04}")).collect();
    let msg = round_frame();
    let mut group = c.benchmark_group("broadcast");
    group.throughput(Throughput::Elements(recipients as u64));
    group.bench_function("raid_round_to_1000_recipients", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let frame = encode(&msg);
                for user in &users {
                    sessions.send_to(user, frame.clone());
                }
                total += started.elapsed();
                for rx in receivers.iter_mut() {
                    while rx.try_next().is_some() {}
                }
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
