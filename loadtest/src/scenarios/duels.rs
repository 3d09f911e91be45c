//! Scenario `duels`: 2 × N players `queue` for duels on one mission and play them,
//! each answering about `think_ms` after every question, right or wrong at the
//! configured ratio (seeded). Each player plays `games` duels in a row. The pace is
//! the server's default for queued matches (`JUNO_QUESTIONS`, `JUNO_QUESTION_MS`,
//! `JUNO_COUNTDOWN_MS`, `JUNO_BETWEEN_MS`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use juno_protocol::{ClientMsg, Mode};
use tokio::task::JoinSet;

use super::{client_failed, finished, join_all, play_match, rng_for, units, user_id, Outcome};
use crate::client::{Conn, Ctx};
use crate::{Config, Play};

pub async fn run(
    ctx: Arc<Ctx>,
    config: &Config,
    duels: usize,
    games: u32,
    mission: &str,
    play: Play,
) -> anyhow::Result<()> {
    let (first, count) = units(config, duels);
    let stats = &ctx.stats;
    stats
        .conn_planned
        .fetch_add(2 * count as u64, Ordering::Relaxed);
    stats
        .matches_expected
        .fetch_add(count as u64 * u64::from(games), Ordering::Relaxed);
    let mut set = JoinSet::new();
    for n in 2 * first..2 * (first + count) {
        let ctx = ctx.clone();
        let mission = mission.to_string();
        set.spawn(async move {
            let user = user_id(&ctx, "d", n);
            let Ok(mut conn) = Conn::connect(&ctx, n, &user, &user).await else {
                return;
            };
            if let Err(e) = player(&ctx, &mut conn, n, games, &mission, &play).await {
                client_failed(&ctx, &user, &e);
                return;
            }
            conn.close().await;
        });
    }
    join_all(set).await
}

async fn player(
    ctx: &Ctx,
    conn: &mut Conn,
    n: usize,
    games: u32,
    mission: &str,
    play: &Play,
) -> anyhow::Result<()> {
    let mut rng = rng_for(ctx, 2, n);
    for _ in 0..games {
        if ctx.stop.is_cancelled() {
            break;
        }
        conn.call(&ClientMsg::Queue {
            mode: Mode::Duel,
            mission: mission.to_string(),
        })
        .await?;
        match play_match(ctx, conn, &mut rng, play, None).await? {
            Outcome::Finished(result) => {
                // One of the two players counts the duel: the one with the smaller id.
                let smallest = result.standings.iter().map(|s| s.id.as_str()).min();
                if smallest == Some(conn.user.as_str()) {
                    finished(ctx);
                }
            }
            // play_match decodes the result; only watchers do not.
            Outcome::Watched => {}
            Outcome::Stopped => break,
        }
    }
    Ok(())
}
