//! The scenarios, and what their scripted players share: the answer key learned from
//! `round` frames, the seeded choice of right or wrong answers, and the loop that
//! plays one match ([`play_match`]) or watches one ([`watch_match`]).

pub mod connect;
pub mod duels;
pub mod failover;
pub mod raid;
pub mod replay;
pub mod royale;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use juno_protocol::{ClientMsg, MatchResult, RoomOptions, ServerMsg};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

use crate::client::{is_connection_lost, Conn, ConnectionLost, Ctx};
use crate::{Config, Pace, Play, Scenario};

/// Runs `config.scenario` (this process's part of it) with `ctx`.
pub async fn run(ctx: Arc<Ctx>, config: &Config) -> anyhow::Result<()> {
    match &config.scenario {
        Scenario::Connect {
            connections,
            ping_secs,
        } => connect::run(ctx, config, *connections, *ping_secs).await,
        Scenario::Duels {
            duels,
            games,
            mission,
            play,
        } => duels::run(ctx, config, *duels, *games, mission, *play).await,
        Scenario::Royale {
            rooms,
            size,
            mission,
            pace,
            play,
        } => royale::run(ctx, config, *rooms, *size, mission, *pace, *play).await,
        Scenario::Raid { .. } => raid::run(ctx, config).await,
        Scenario::Failover {
            mode,
            players,
            mission,
            pace,
            play,
        } => failover::run(ctx, config, *mode, *players, mission, *pace, *play).await,
        Scenario::Replay {
            source,
            copies,
            speed,
            exact,
        } => {
            let crate::ReplaySource::Record(record) = source else {
                anyhow::bail!("replay: the record should have been loaded by now");
            };
            replay::run(ctx, config, record, *copies, *speed, *exact).await
        }
    }
}

/// This process's units: `[first, first + count)` of `total`.
pub fn units(config: &Config, total: usize) -> (usize, usize) {
    match &config.part {
        Some(part) => (part.first, part.count),
        None => (0, total),
    }
}

/// A generated user id: `{tag}-{kind}{n}`.
pub fn user_id(ctx: &Ctx, kind: &str, n: usize) -> String {
    format!("{}-{kind}{n}", ctx.tag)
}

/// A player's random source: the run's seed and the player's global number.
pub fn rng_for(ctx: &Ctx, salt: u64, n: usize) -> StdRng {
    StdRng::seed_from_u64(
        ctx.seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(salt.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
            .wrapping_add(n as u64),
    )
}

/// `create.options` for `pace`.
pub fn options(pace: &Pace) -> RoomOptions {
    RoomOptions {
        questions: Some(pace.questions),
        question_ms: Some(pace.question_ms),
        countdown_ms: Some(pace.countdown_ms),
        between_ms: Some(pace.between_ms),
        ..RoomOptions::default()
    }
}

/// Correct choices by question text: given up front, or learned from `round`.
pub struct AnswerKey(RwLock<HashMap<String, u32>>);

impl AnswerKey {
    pub fn new(known: HashMap<String, u32>) -> AnswerKey {
        AnswerKey(RwLock::new(known))
    }

    pub fn get(&self, text: &str) -> Option<u32> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(text)
            .copied()
    }

    pub fn learn(&self, text: &str, correct: u32) {
        if self.get(text) != Some(correct) {
            self.0
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(text.to_string(), correct);
        }
    }
}

/// The choice a player makes: right with probability `ratio` when the right choice
/// is known, else a guess.
pub fn pick_choice(rng: &mut StdRng, known: Option<u32>, choices: usize, ratio: f64) -> u32 {
    let n = choices.max(1) as u32;
    let right = rng.random_bool(ratio);
    match known {
        Some(c) if right => c,
        Some(c) if n > 1 => (c + 1 + rng.random_range(0..n - 1)) % n,
        _ => rng.random_range(0..n),
    }
}

/// How a match ended for one client.
#[derive(Debug)]
pub enum Outcome {
    Finished(MatchResult),
    /// The match ended (seen by a watcher, which does not decode the result).
    Watched,
    /// The run ended first.
    Stopped,
}

/// An answer waiting for its moment.
struct Pending {
    at: Instant,
    room: String,
    q: u32,
    choice: u32,
}

/// Plays one match: answers each question after the think time, right or wrong as
/// `play` says, until the `result` of `room` (or, with `room` unknown, of the room
/// `match_found` names). A connection lost meanwhile is an error.
pub async fn play_match(
    ctx: &Ctx,
    conn: &mut Conn,
    rng: &mut StdRng,
    play: &Play,
    room: Option<&str>,
) -> anyhow::Result<Outcome> {
    let mut room = room.map(String::from);
    let mut pending: Option<Pending> = None;
    let mut texts: HashMap<u32, String> = HashMap::new();
    let mut out = false;
    enum Ev {
        Msg(anyhow::Result<Option<ServerMsg>>),
        Answer,
        Stop,
    }
    loop {
        let due = pending.as_ref().map(|p| p.at);
        let ev = tokio::select! {
            m = conn.recv() => Ev::Msg(m),
            _ = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => Ev::Answer,
            _ = ctx.stop.cancelled() => Ev::Stop,
        };
        let msg = match ev {
            Ev::Stop => return Ok(Outcome::Stopped),
            Ev::Answer => {
                if let Some(p) = pending.take() {
                    conn.send(&ClientMsg::Answer {
                        room: p.room,
                        q: p.q,
                        choice: p.choice,
                    })
                    .await?;
                }
                continue;
            }
            Ev::Msg(m) => match m? {
                Some(msg) => msg,
                None => return Err(ConnectionLost(conn.user.clone()).into()),
            },
        };
        let ours = |r: &str, room: &Option<String>| room.as_deref() == Some(r);
        match msg {
            ServerMsg::MatchFound(found) if room.is_none() => room = Some(found.room),
            ServerMsg::Question(q) if ours(&q.room, &room) => {
                texts.insert(q.q, q.text.clone());
                if !out {
                    let think = play.think_ms.max(1);
                    let delay = rng
                        .random_range(think / 2..=think + think / 2)
                        .min(q.ms * 8 / 10);
                    let choice =
                        pick_choice(rng, ctx.key.get(&q.text), q.choices.len(), play.right_ratio);
                    pending = Some(Pending {
                        at: Instant::now() + Duration::from_millis(delay),
                        room: q.room,
                        q: q.q,
                        choice,
                    });
                }
            }
            ServerMsg::Round(r) if ours(&r.room, &room) => {
                if let Some(text) = texts.get(&r.q) {
                    ctx.key.learn(text, r.correct);
                }
                if r.eliminated
                    .as_ref()
                    .is_some_and(|e| e.contains(&conn.user))
                {
                    out = true;
                }
                if pending.as_ref().is_some_and(|p| p.q == r.q) {
                    pending = None;
                }
            }
            ServerMsg::Result(r) if ours(&r.room, &room) => return Ok(Outcome::Finished(r)),
            _ => {}
        }
    }
}

/// Follows `room` as a spectator (or idle player) until its `result`.
pub async fn watch_match(ctx: &Ctx, conn: &mut Conn, room: &str) -> anyhow::Result<Outcome> {
    loop {
        // Only the type and room of each frame: a spectator uses nothing else.
        let glance = tokio::select! {
            g = conn.recv_glance() => g?,
            _ = ctx.stop.cancelled() => return Ok(Outcome::Stopped),
        };
        match glance {
            Some(g) if g.t == "result" && g.room.as_deref() == Some(room) => {
                return Ok(Outcome::Watched)
            }
            Some(_) => {}
            None => return Err(ConnectionLost(conn.user.clone()).into()),
        }
    }
}

/// Records a client's failure after it connected: a lost connection counts as
/// dropped; anything else (a refused request, a timeout) as a client failure.
pub fn client_failed(ctx: &Ctx, user: &str, e: &anyhow::Error) {
    if ctx.stop.is_cancelled() {
        return;
    }
    let text = format!("{e:#}");
    if is_connection_lost(e) {
        ctx.stats.dropped(user, &text);
    } else {
        ctx.stats.failure(user, &text);
    }
}

/// Holds the connections of a room's clients open until every client is done (or
/// [`Teardown::GRACE`] passed): otherwise the first recipients of `result` close
/// while the last ones still read the final frames, and the closing — on the
/// server and in this tool, on the same cores — is counted in the broadcast skew.
pub struct Teardown {
    left: AtomicUsize,
    all_done: Notify,
}

impl Teardown {
    /// The longest a finished client waits for the others.
    const GRACE: Duration = Duration::from_secs(5);

    pub fn new(clients: usize) -> Arc<Teardown> {
        Arc::new(Teardown {
            left: AtomicUsize::new(clients),
            all_done: Notify::new(),
        })
    }

    /// One client is done (finished, failed, or never connected).
    pub fn done(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_done.notify_waiters();
        }
    }

    /// Waits until every client is done, the grace period is over, or the run stops.
    pub async fn wait(&self, ctx: &Ctx) {
        // Created before the check, so a notification in between is not missed.
        let all_done = self.all_done.notified();
        if self.left.load(Ordering::Acquire) == 0 {
            return;
        }
        tokio::select! {
            _ = all_done => {}
            _ = tokio::time::sleep(Self::GRACE) => {}
            _ = ctx.stop.cancelled() => {}
        }
    }
}

/// Counts a finished match.
pub fn finished(ctx: &Ctx) {
    ctx.stats.matches_finished.fetch_add(1, Ordering::Relaxed);
}

/// Joins every task, surfacing panics as errors.
pub async fn join_all(mut set: tokio::task::JoinSet<()>) -> anyhow::Result<()> {
    while let Some(r) = set.join_next().await {
        if let Err(e) = r {
            if e.is_panic() {
                anyhow::bail!("a client task panicked: {e}");
            }
        }
    }
    Ok(())
}
