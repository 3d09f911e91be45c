//! Scenario `failover` (for `bench/failover.sh`, WIRE.md §5 Failover): one room
//! (a duel, or a raid of N) created on the first target by a watching host, its
//! players all on the other targets. Once every player has question 0 and the
//! even-numbered ones have their answer's `ok` (the odd ones hold theirs, so the
//! question stays open), the tool prints `FAILOVER ready …` on stdout; the script
//! then kills the first target. Each player notes when the new host's
//! `room_state` and the question again reach it (wall clock), the odd ones answer
//! the question again, and everyone plays the match out. The last stdout line,
//! `FAILOVER players=… state_first_ms=…`, gives those times (epoch ms) for the
//! script to set against the moment of its kill. One process only.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use juno_protocol::{ClientMsg, Mode, RoomOptions, ServerMsg};
use rand::Rng;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use super::royale::{room_id, RoomId};
use super::{
    client_failed, finished, join_all, options, pick_choice, play_match, rng_for, user_id,
};
use crate::client::{Conn, ConnectionLost, Ctx};
use crate::stats::epoch_micros;
use crate::{Config, Pace, Play};

/// What one player saw of the adoption (epoch µs), and the time the question
/// came back with.
struct Seen {
    state: u64,
    question: u64,
    ms_left: u64,
}

struct Shared {
    armed: AtomicUsize,
    armed_changed: Notify,
    seen: Mutex<Vec<Seen>>,
    counted: AtomicBool,
}

/// Connection number of player `i`: one whose target is never the first
/// (`index % targets` runs over 1‥targets-1).
fn index(i: usize, targets: usize) -> usize {
    let others = targets - 1;
    targets * (1 + i / others) + 1 + i % others
}

pub async fn run(
    ctx: Arc<Ctx>,
    config: &Config,
    mode: Mode,
    players: usize,
    mission: &str,
    pace: Pace,
    play: Play,
) -> anyhow::Result<()> {
    anyhow::ensure!(config.part.is_none(), "failover runs in one process");
    let targets = ctx.targets.len();
    anyhow::ensure!(
        targets >= 2,
        "failover needs the host's target first and at least one other"
    );
    let shared = Arc::new(Shared {
        armed: AtomicUsize::new(0),
        armed_changed: Notify::new(),
        seen: Mutex::default(),
        counted: AtomicBool::new(false),
    });
    ctx.stats.matches_expected.fetch_add(1, Ordering::Relaxed);
    ctx.stats
        .conn_planned
        .fetch_add(players as u64 + 1, Ordering::Relaxed);
    let (tx, rx) = watch::channel(RoomId::Pending);
    let mut set = JoinSet::new();
    {
        let (ctx, shared, mission) = (ctx.clone(), shared.clone(), mission.to_string());
        let setup = config.setup;
        set.spawn(async move {
            if let Err(e) = host(&ctx, &shared, &tx, mode, players, &mission, &pace, setup).await {
                tx.send_replace(RoomId::Failed);
                client_failed(&ctx, &user_id(&ctx, "fh", 0), &e);
            }
        });
    }
    for i in 0..players {
        let (ctx, shared, mut rx) = (ctx.clone(), shared.clone(), rx.clone());
        set.spawn(async move {
            let n = index(i, targets);
            let user = user_id(&ctx, "fp", i);
            let Ok(mut conn) = Conn::connect(&ctx, n, &user, &user).await else {
                shared.armed.fetch_add(1, Ordering::AcqRel);
                shared.armed_changed.notify_waiters();
                return;
            };
            let Some(room) = room_id(&ctx, &mut rx).await else {
                return;
            };
            match player(&ctx, &shared, &mut conn, i, &room, &play).await {
                Ok(()) => conn.close().await,
                Err(e) => client_failed(&ctx, &user, &e),
            }
        });
    }
    drop(rx);
    join_all(set).await?;
    let seen = std::mem::take(&mut *shared.seen.lock().unwrap_or_else(|p| p.into_inner()));
    let ms = |us: u64| us as f64 / 1000.0;
    let mut states: Vec<u64> = seen.iter().map(|s| s.state).collect();
    let mut questions: Vec<u64> = seen.iter().map(|s| s.question).collect();
    states.sort_unstable();
    questions.sort_unstable();
    let left: Vec<u64> = seen.iter().map(|s| s.ms_left).collect();
    let pick = |v: &[u64], q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "FAILOVER players={players} adopted_seen={} state_first_ms={:.1} state_p50_ms={:.1} state_max_ms={:.1} question_first_ms={:.1} question_max_ms={:.1} ms_left_min={} ms_left_max={}",
        seen.len(),
        ms(pick(&states, 0.0)),
        ms(pick(&states, 0.5)),
        ms(pick(&states, 1.0)),
        ms(pick(&questions, 0.0)),
        ms(pick(&questions, 1.0)),
        left.iter().min().copied().unwrap_or(0),
        left.iter().max().copied().unwrap_or(0),
    );
    Ok(())
}

/// Creates the room on the first target (watching it), waits until every player
/// is armed, says so on stdout, and holds its connection until it breaks.
#[allow(clippy::too_many_arguments)]
async fn host(
    ctx: &Ctx,
    shared: &Shared,
    tx: &watch::Sender<RoomId>,
    mode: Mode,
    players: usize,
    mission: &str,
    pace: &Pace,
    setup: Duration,
) -> anyhow::Result<()> {
    let user = user_id(ctx, "fh", 0);
    let mut conn = Conn::connect(ctx, 0, &user, &user).await?;
    let create = ClientMsg::Create {
        mode,
        mission: mission.to_string(),
        options: Some(RoomOptions {
            // Full = started: no `start` needed.
            max_players: (mode != Mode::Duel).then_some(players as u32),
            watch: Some(true),
            ..options(pace)
        }),
    };
    let room = conn
        .call(&create)
        .await?
        .room
        .ok_or_else(|| anyhow::anyhow!("create answered ok without a room"))?;
    tx.send_replace(RoomId::Ready(room.clone()));
    let deadline = Instant::now() + setup;
    loop {
        let changed = shared.armed_changed.notified();
        if shared.armed.load(Ordering::Acquire) >= players {
            break;
        }
        tokio::select! {
            _ = changed => {}
            // The host reads its frames meanwhile, so that its node never holds them.
            m = conn.recv_glance() => if m?.is_none() {
                return Err(ConnectionLost(user).into());
            },
            _ = sleep_until(deadline) => anyhow::bail!("players not armed within the setup time"),
            _ = ctx.stop.cancelled() => return Ok(()),
        }
    }
    println!(
        "FAILOVER ready room={room} at_ms={:.1}",
        epoch_micros() as f64 / 1000.0
    );
    let _ = std::io::stdout().flush();
    // Until its node is killed (or the run ends).
    loop {
        tokio::select! {
            m = conn.recv_glance() => match m {
                Ok(Some(_)) => {}
                _ => return Ok(()),
            },
            _ = ctx.stop.cancelled() => return Ok(()),
        }
    }
}

/// Joins, takes question 0 (answering it at once if `i` is even), then waits for
/// the adoption, notes it, and plays the match out.
async fn player(
    ctx: &Ctx,
    shared: &Shared,
    conn: &mut Conn,
    i: usize,
    room: &str,
    play: &Play,
) -> anyhow::Result<()> {
    let arm = || {
        shared.armed.fetch_add(1, Ordering::AcqRel);
        shared.armed_changed.notify_waiters();
    };
    let joined = conn
        .call(&ClientMsg::Join {
            room: room.to_string(),
        })
        .await;
    if let Err(e) = joined {
        arm();
        return Err(e);
    }
    let mut rng = rng_for(ctx, 6, i);
    let early = i.is_multiple_of(2);
    let q0 = match next(
        ctx,
        conn,
        room,
        |m| matches!(m, ServerMsg::Question(q) if q.room == room),
    )
    .await
    {
        Ok(Some(ServerMsg::Question(q))) => q,
        Ok(_) => {
            arm();
            return Ok(());
        }
        Err(e) => {
            arm();
            return Err(e);
        }
    };
    if early {
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..200))).await;
        let choice = pick_choice(
            &mut rng,
            ctx.key.get(&q0.text),
            q0.choices.len(),
            play.right_ratio,
        );
        let answered = conn
            .call(&ClientMsg::Answer {
                room: room.to_string(),
                q: q0.q,
                choice,
            })
            .await;
        if let Err(e) = answered {
            arm();
            return Err(e);
        }
    }
    arm();
    // The only `room_state` after the question is the new host's.
    let Some(_) = next(
        ctx,
        conn,
        room,
        |m| matches!(m, ServerMsg::RoomState(s) if s.room == room),
    )
    .await?
    else {
        return Ok(());
    };
    let state = epoch_micros();
    let Some(ServerMsg::Question(again)) = next(
        ctx,
        conn,
        room,
        |m| matches!(m, ServerMsg::Question(q) if q.room == room),
    )
    .await?
    else {
        return Ok(());
    };
    let question = epoch_micros();
    shared
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Seen {
            state,
            question,
            ms_left: again.ms,
        });
    if !early {
        let choice = pick_choice(
            &mut rng,
            ctx.key.get(&again.text),
            again.choices.len(),
            play.right_ratio,
        );
        conn.call(&ClientMsg::Answer {
            room: room.to_string(),
            q: again.q,
            choice,
        })
        .await?;
    }
    let outcome = play_match(ctx, conn, &mut rng, play, Some(room)).await?;
    if matches!(outcome, super::Outcome::Finished(_))
        && !shared.counted.swap(true, Ordering::AcqRel)
    {
        finished(ctx);
    }
    Ok(())
}

/// The next frame `want` takes; `None` if the run stopped. A `result` for the
/// room first is an error (the adoption was not seen).
async fn next(
    ctx: &Ctx,
    conn: &mut Conn,
    room: &str,
    want: impl Fn(&ServerMsg) -> bool,
) -> anyhow::Result<Option<ServerMsg>> {
    loop {
        let m = tokio::select! {
            m = conn.recv() => m?,
            _ = ctx.stop.cancelled() => return Ok(None),
        };
        match m {
            None => return Err(ConnectionLost(conn.user.clone()).into()),
            Some(m) if want(&m) => return Ok(Some(m)),
            Some(ServerMsg::Result(r)) if r.room == room => {
                anyhow::bail!("{}: the match ended before an adoption was seen", conn.user)
            }
            Some(_) => {}
        }
    }
}
