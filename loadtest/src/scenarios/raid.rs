//! Scenario `raid`: one raid room with N players and M spectators. A host — the
//! first spectator (creating with `watch`), or the first player when M = 0 —
//! creates the room with room for N + 1 players (so it never fills and starts
//! early), everyone else joins or spectates, and the host sends `start` once
//! `room_state` shows all N players and M spectators (it re-`spectate`s to refresh
//! it), or when the setup time is up. With worker processes the parent runs the
//! host and the workers the rest.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use juno_protocol::{ClientMsg, Mode, Phase, RoomOptions, ServerMsg};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use super::royale::{room_id, RoomId};
use super::{
    client_failed, finished, join_all, options, play_match, rng_for, user_id, watch_match, Outcome,
    Teardown,
};
use crate::client::{Conn, ConnectionLost, Ctx};
use crate::{Config, Pace, Play, Scenario};

/// How often the host refreshes its view of the lobby.
const POLL: Duration = Duration::from_millis(300);

/// One participant of the raid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Player(usize),
    Spectator(usize),
}

/// The raid's parameters.
#[derive(Debug, Clone)]
pub struct Params {
    pub players: usize,
    pub spectators: usize,
    pub mission: String,
    pub pace: Pace,
    pub boss_hp: Option<u64>,
    pub play: Play,
    /// The longest the host waits for everyone before starting anyway.
    pub setup: Duration,
}

impl Params {
    pub fn of(config: &Config) -> anyhow::Result<Params> {
        let Scenario::Raid {
            players,
            spectators,
            mission,
            pace,
            boss_hp,
            play,
        } = &config.scenario
        else {
            anyhow::bail!("not a raid");
        };
        Ok(Params {
            players: *players,
            spectators: *spectators,
            mission: mission.clone(),
            pace: *pace,
            boss_hp: *boss_hp,
            play: *play,
            setup: config.setup,
        })
    }

    /// The host, and everyone else in a fixed order (players, then spectators).
    pub fn units(&self) -> (Unit, Vec<Unit>) {
        let host = if self.spectators > 0 {
            Unit::Spectator(0)
        } else {
            Unit::Player(0)
        };
        let others = (0..self.players)
            .map(Unit::Player)
            .chain((0..self.spectators).map(Unit::Spectator))
            .filter(|u| *u != host)
            .collect();
        (host, others)
    }

    /// A unit's connection number (target and source address) and user id.
    fn who(&self, ctx: &Ctx, unit: Unit) -> (usize, String) {
        match unit {
            Unit::Player(i) => (i, user_id(ctx, "xp", i)),
            Unit::Spectator(j) => (self.players + j, user_id(ctx, "xs", j)),
        }
    }
}

/// Runs this process's part: everything, or (in a worker) a slice of the non-host
/// units of a room the parent created.
pub async fn run(ctx: Arc<Ctx>, config: &Config) -> anyhow::Result<()> {
    let params = Arc::new(Params::of(config)?);
    let (_, others) = params.units();
    let mut set = JoinSet::new();
    let (tx, rx) = watch::channel(RoomId::Pending);
    let hosting = config.part.is_none();
    let mine: Vec<Unit> = match &config.part {
        None => others,
        Some(part) => {
            let room = part
                .room
                .clone()
                .ok_or_else(|| anyhow::anyhow!("a raid worker needs the room"))?;
            tx.send_replace(RoomId::Ready(room));
            others
                .into_iter()
                .skip(part.first)
                .take(part.count)
                .collect()
        }
    };
    let teardown = Teardown::new(mine.len() + usize::from(hosting));
    if hosting {
        ctx.stats.matches_expected.fetch_add(1, Ordering::Relaxed);
        ctx.stats.conn_planned.fetch_add(1, Ordering::Relaxed);
        let (ctx, params, teardown) = (ctx.clone(), params.clone(), teardown.clone());
        set.spawn(async move { host(&ctx, &params, &tx, &teardown).await });
    }
    ctx.stats
        .conn_planned
        .fetch_add(mine.len() as u64, Ordering::Relaxed);
    for unit in mine {
        let (ctx, params, mut rx) = (ctx.clone(), params.clone(), rx.clone());
        let teardown = teardown.clone();
        set.spawn(async move {
            let (n, user) = params.who(&ctx, unit);
            let Ok(mut conn) = Conn::connect(&ctx, n, &user, &user).await else {
                teardown.done();
                return;
            };
            let outcome = async {
                let Some(room) = room_id(&ctx, &mut rx).await else {
                    return Ok(());
                };
                match unit {
                    Unit::Player(_) => {
                        conn.call(&ClientMsg::Join { room: room.clone() }).await?;
                        let mut rng = rng_for(&ctx, 4, n);
                        play_match(&ctx, &mut conn, &mut rng, &params.play, Some(&room)).await?;
                    }
                    Unit::Spectator(_) => {
                        conn.call(&ClientMsg::Spectate { room: room.clone() })
                            .await?;
                        watch_match(&ctx, &mut conn, &room).await?;
                    }
                }
                anyhow::Ok(())
            }
            .await;
            teardown.done();
            match outcome {
                Ok(()) => {
                    teardown.wait(&ctx).await;
                    conn.close().await
                }
                Err(e) => client_failed(&ctx, &user, &e),
            }
        });
    }
    drop(rx);
    join_all(set).await
}

/// The host: creates the room, publishes its id on `tx`, starts it once everyone is
/// in, then plays or watches it to the end (counting the finished match).
pub async fn host(ctx: &Ctx, params: &Params, tx: &watch::Sender<RoomId>, teardown: &Teardown) {
    let (host_unit, _) = params.units();
    let (n, user) = params.who(ctx, host_unit);
    let Ok(mut conn) = Conn::connect(ctx, n, &user, &user).await else {
        tx.send_replace(RoomId::Failed);
        teardown.done();
        return;
    };
    let outcome = async {
        let watching = matches!(host_unit, Unit::Spectator(_));
        let max_players = if params.players < juno_protocol::limits::MAX_PLAYERS as usize {
            params.players + 1
        } else {
            params.players
        };
        let create = ClientMsg::Create {
            mode: Mode::Raid,
            mission: params.mission.clone(),
            options: Some(RoomOptions {
                max_players: Some(max_players as u32),
                boss_hp: params.boss_hp,
                watch: watching.then_some(true),
                ..options(&params.pace)
            }),
        };
        let room = match conn.call(&create).await.map(|ok| ok.room) {
            Ok(Some(room)) => room,
            Ok(None) => {
                tx.send_replace(RoomId::Failed);
                anyhow::bail!("create answered ok without a room");
            }
            Err(e) => {
                tx.send_replace(RoomId::Failed);
                return Err(e);
            }
        };
        tx.send_replace(RoomId::Ready(room.clone()));
        if !wait_and_start(ctx, &mut conn, params, &room).await? {
            return Ok(());
        }
        let outcome = if watching {
            watch_match(ctx, &mut conn, &room).await?
        } else {
            let mut rng = rng_for(ctx, 4, n);
            play_match(ctx, &mut conn, &mut rng, &params.play, Some(&room)).await?
        };
        if let Outcome::Finished(_) | Outcome::Watched = outcome {
            finished(ctx);
        }
        anyhow::Ok(())
    }
    .await;
    teardown.done();
    match outcome {
        Ok(()) => {
            teardown.wait(ctx).await;
            conn.close().await
        }
        Err(e) => client_failed(ctx, &user, &e),
    }
}

/// Waits until the lobby holds every player and spectator, then starts the room.
/// `false` when the run ended first.
async fn wait_and_start(
    ctx: &Ctx,
    conn: &mut Conn,
    params: &Params,
    room: &str,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + params.setup;
    let mut next_poll = Instant::now() + POLL;
    let mut seen = (0usize, 0usize);
    loop {
        tokio::select! {
            m = conn.recv() => match m? {
                Some(ServerMsg::RoomState(s)) if s.room == room => {
                    if s.phase != Phase::Waiting {
                        return Ok(true);
                    }
                    seen = (s.player_count as usize, s.spectators as usize);
                    if seen.0 >= params.players && seen.1 >= params.spectators {
                        break;
                    }
                }
                Some(_) => {}
                None => return Err(ConnectionLost(conn.user.clone()).into()),
            },
            _ = sleep_until(next_poll) => {
                conn.send(&ClientMsg::Spectate { room: room.to_string() }).await?;
                next_poll = Instant::now() + POLL;
            }
            _ = sleep_until(deadline) => {
                ctx.stats.note(format!(
                    "raid: started with {} of {} players and {} of {} spectators (setup time up)",
                    seen.0, params.players, seen.1, params.spectators
                ));
                break;
            }
            _ = ctx.stop.cancelled() => return Ok(false),
        }
    }
    conn.call(&ClientMsg::Start {
        room: room.to_string(),
    })
    .await?;
    Ok(true)
}
