//! Scenario `connect`: N authenticated connections, opened as fast as the connect
//! gate allows, then held idle for `--duration` (each answering the server's
//! keepalive pings and, with `--ping-secs`, sending its own `ping` to time the round
//! trip), then closed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use juno_protocol::ClientMsg;
use rand::Rng;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::{client_failed, join_all, rng_for, units, user_id};
use crate::client::{Conn, ConnectionLost, Ctx};
use crate::Config;

pub async fn run(
    ctx: Arc<Ctx>,
    config: &Config,
    connections: usize,
    ping_secs: f64,
) -> anyhow::Result<()> {
    let (first, count) = units(config, connections);
    ctx.stats
        .conn_planned
        .fetch_add(count as u64, Ordering::Relaxed);
    let left = Arc::new(AtomicUsize::new(count));
    let ramped = Arc::new(Notify::new());
    let hold = ctx.stop.child_token();
    let ramp_started = Instant::now();
    let mut set = JoinSet::new();
    for i in first..first + count {
        let (ctx, left, ramped, hold) = (ctx.clone(), left.clone(), ramped.clone(), hold.clone());
        set.spawn(async move {
            let user = user_id(&ctx, "c", i);
            let conn = Conn::connect(&ctx, i, &user, &user).await;
            if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                ramped.notify_one();
            }
            let Ok(conn) = conn else { return };
            if let Err(e) = idle(&ctx, conn, i, ping_secs, &hold).await {
                client_failed(&ctx, &user, &e);
            }
        });
    }
    if count > 0 {
        tokio::select! {
            _ = ramped.notified() => {}
            _ = ctx.stop.cancelled() => {}
        }
    }
    ctx.stats.note(format!(
        "{count} connection attempts took {:.1} s; held for {:.0} s",
        ramp_started.elapsed().as_secs_f64(),
        config.duration.as_secs_f64()
    ));
    tokio::select! {
        _ = tokio::time::sleep(config.duration) => {}
        _ = ctx.stop.cancelled() => {}
    }
    hold.cancel();
    join_all(set).await
}

/// Holds `conn` open until `hold` is cancelled, pinging every `ping_secs`.
async fn idle(
    ctx: &Ctx,
    mut conn: Conn,
    i: usize,
    ping_secs: f64,
    hold: &CancellationToken,
) -> anyhow::Result<()> {
    let every = (ping_secs > 0.0).then(|| Duration::from_secs_f64(ping_secs));
    let mut next_ping = every.map(|d| {
        // Spread the first pings over one period so they do not come in a burst.
        let phase = rng_for(ctx, 1, i).random_range(0.0..1.0);
        Instant::now() + d.mul_f64(phase)
    });
    loop {
        let wake = next_ping;
        tokio::select! {
            m = conn.recv() => match m? {
                Some(_) => {}
                None => return Err(ConnectionLost(conn.user.clone()).into()),
            },
            _ = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                conn.send(&ClientMsg::Ping).await?;
                next_ping = every.map(|d| Instant::now() + d);
            }
            _ = hold.cancelled() => break,
        }
    }
    conn.close().await;
    Ok(())
}
