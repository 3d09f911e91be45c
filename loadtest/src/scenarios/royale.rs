//! Scenario `royale`: R battle-royale rooms of N players. In each room the first
//! player `create`s it (with `max_players` = N and the given pace) and the others
//! `join`; the last join fills the room, which starts it. Players answer as in
//! `duels`, and an eliminated player stops answering.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use juno_protocol::{ClientMsg, Mode};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{
    client_failed, finished, join_all, options, play_match, rng_for, units, user_id, Outcome,
};
use crate::client::{Conn, Ctx};
use crate::{Config, Pace, Play};

/// A room's id as its players learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomId {
    Pending,
    Ready(String),
    /// The creator could not create it: its players give up.
    Failed,
}

/// Waits for the room id; `None` if creation failed or the run ended.
pub async fn room_id(ctx: &Ctx, rx: &mut watch::Receiver<RoomId>) -> Option<String> {
    loop {
        match &*rx.borrow_and_update() {
            RoomId::Ready(id) => return Some(id.clone()),
            RoomId::Failed => return None,
            RoomId::Pending => {}
        }
        tokio::select! {
            r = rx.changed() => r.ok()?,
            _ = ctx.stop.cancelled() => return None,
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    ctx: Arc<Ctx>,
    config: &Config,
    rooms: usize,
    size: usize,
    mission: &str,
    pace: Pace,
    play: Play,
) -> anyhow::Result<()> {
    let (first, count) = units(config, rooms);
    ctx.stats
        .conn_planned
        .fetch_add((count * size) as u64, Ordering::Relaxed);
    ctx.stats
        .matches_expected
        .fetch_add(count as u64, Ordering::Relaxed);
    let mut set = JoinSet::new();
    for r in first..first + count {
        let (tx, rx) = watch::channel(RoomId::Pending);
        let tx = Arc::new(tx);
        for p in 0..size {
            let n = r * size + p;
            let (ctx, tx, mut rx) = (ctx.clone(), tx.clone(), rx.clone());
            let mission = mission.to_string();
            set.spawn(async move {
                let user = user_id(&ctx, &format!("r{r}p"), p);
                let mut rng = rng_for(&ctx, 3, n);
                let Ok(mut conn) = Conn::connect(&ctx, n, &user, &user).await else {
                    if p == 0 {
                        tx.send_replace(RoomId::Failed);
                    }
                    return;
                };
                let outcome = async {
                    let room = if p == 0 {
                        let create = ClientMsg::Create {
                            mode: Mode::BattleRoyale,
                            mission,
                            options: Some(juno_protocol::RoomOptions {
                                max_players: Some(size as u32),
                                ..options(&pace)
                            }),
                        };
                        let created = conn.call(&create).await;
                        let room = match created.map(|ok| ok.room) {
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
                        room
                    } else {
                        let Some(room) = room_id(&ctx, &mut rx).await else {
                            return Ok(());
                        };
                        conn.call(&ClientMsg::Join { room: room.clone() }).await?;
                        room
                    };
                    if let Outcome::Finished(_) =
                        play_match(&ctx, &mut conn, &mut rng, &play, Some(&room)).await?
                    {
                        if p == 0 {
                            finished(&ctx);
                        }
                    }
                    anyhow::Ok(())
                }
                .await;
                match outcome {
                    Ok(()) => conn.close().await,
                    Err(e) => client_failed(&ctx, &user, &e),
                }
            });
        }
    }
    join_all(set).await
}
