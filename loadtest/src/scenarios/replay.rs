//! Scenario `replay`: K concurrent copies of a recorded match (see [`crate::record`]
//! for how the log becomes a plan). Each copy has its own users (`{orig}-c{k}`): a
//! coordinator runs the lobby steps in order, each by its user's connection and
//! waiting for its answer; during play every player acts on its own clock, timed
//! from the questions it receives. The copy's `result` is compared with the record.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use juno_protocol::{ClientMsg, MatchResult, Phase, ServerMsg};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::{finished, units};
use crate::client::{Conn, Ctx, REQUEST_TIMEOUT};
use crate::record::{
    compare_results, copy_id, Act, Anchor, MatchRecordFile, ReplayPlan, StepKind, Verdict,
};
use crate::report::ReplaySummary;
use crate::Config;

/// A lobby step for one participant to send; the answer comes back on `reply`.
struct Cmd {
    msg: ClientMsg,
    reply: oneshot::Sender<Result<juno_protocol::Ok, juno_protocol::Error>>,
}

pub async fn run(
    ctx: Arc<Ctx>,
    config: &Config,
    record: &serde_json::Value,
    copies: usize,
    speed: f64,
    exact: bool,
) -> anyhow::Result<()> {
    let rec: MatchRecordFile = serde_json::from_value(record.clone())
        .map_err(|e| anyhow::anyhow!("the match record does not parse: {e}"))?;
    let mut plan = ReplayPlan::build(&rec, speed)?;
    // A copy may draw mission questions the record never asked: know them too.
    for (text, correct) in &config.answer_key {
        plan.key.entry(text.clone()).or_insert(*correct);
    }
    let plan = Arc::new(plan);
    for n in &plan.notes {
        ctx.stats.note(format!("replay: {n}"));
    }
    let (first, count) = units(config, copies);
    ctx.stats
        .conn_planned
        .fetch_add((count * plan.participants.len()) as u64, Ordering::Relaxed);
    ctx.stats
        .matches_expected
        .fetch_add(count as u64, Ordering::Relaxed);
    let mut set = JoinSet::new();
    for k in first..first + count {
        let (ctx, plan) = (ctx.clone(), plan.clone());
        set.spawn(async move { copy(&ctx, &plan, k, exact).await });
    }
    let mut summary = ReplaySummary {
        source_match: plan.room.clone(),
        copies: count as u64,
        exact,
        tolerance_points: if exact { 0 } else { plan.tolerance },
        compared: if exact {
            "winner, standings (ids, ranks), victory and points".into()
        } else {
            "winner, standings (ids, ranks) and victory; points not compared (--exact does)".into()
        },
        ..ReplaySummary::default()
    };
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(Verdict::Same)) => summary.ok += 1,
            Ok(Ok(Verdict::WithinJitter(how))) => {
                summary.ok += 1;
                summary.within_jitter += 1;
                if summary.first_within_jitter.is_none() {
                    summary.first_within_jitter = Some(how);
                }
            }
            Ok(Err(difference)) => {
                summary.mismatched += 1;
                if summary.first_difference.is_none() {
                    summary.first_difference = Some(difference);
                }
            }
            Err(e) => anyhow::bail!("a replay copy panicked: {e}"),
        }
    }
    ctx.stats.set_replay(summary);
    Ok(())
}

/// Learns the correct choice of every question of `mission` by hosting one solo
/// raid of 50 quick questions (the server cycles through the mission's pool, and
/// each `round` reveals a question's answer) until a question comes round again.
/// The probe match is recorded by the server like any other (user `{tag}-probe`).
pub async fn learn_key(ctx: &Ctx, mission: &str) -> anyhow::Result<HashMap<String, u32>> {
    let user = super::user_id(ctx, "probe", 0);
    let mut conn = Conn::connect(ctx, 0, &user, &user).await?;
    let create = ClientMsg::Create {
        mode: juno_protocol::Mode::Raid,
        mission: mission.to_string(),
        options: Some(juno_protocol::RoomOptions {
            questions: Some(juno_protocol::limits::MAX_QUESTIONS),
            question_ms: Some(juno_protocol::limits::MIN_QUESTION_MS),
            countdown_ms: Some(0),
            between_ms: Some(0),
            max_players: Some(1),
            ..Default::default()
        }),
    };
    let room = conn
        .call(&create)
        .await?
        .room
        .ok_or_else(|| anyhow::anyhow!("create answered ok without a room"))?;
    let mut texts: HashMap<u32, String> = HashMap::new();
    let mut key = HashMap::new();
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let msg = tokio::select! {
            m = conn.recv() => m?,
            _ = sleep_until(deadline) => anyhow::bail!("the answer-key probe did not finish within 30 s"),
            _ = ctx.stop.cancelled() => anyhow::bail!("stopped"),
        };
        match msg {
            Some(ServerMsg::Question(q)) if q.room == room => {
                if texts.values().any(|t| *t == q.text) {
                    // The pool came round again: every answer is known. Just hang
                    // up: the room plays its remaining questions alone (5 s at most).
                    break;
                }
                texts.insert(q.q, q.text);
            }
            Some(ServerMsg::Round(r)) if r.room == room => {
                if let Some(text) = texts.get(&r.q) {
                    key.insert(text.clone(), r.correct);
                }
            }
            Some(ServerMsg::Result(r)) if r.room == room => break,
            Some(_) => {}
            None => return Err(crate::client::ConnectionLost(user).into()),
        }
    }
    conn.close().await;
    Ok(key)
}

/// Plays copy `k`; `Err` says how it differs from the record (or why it failed).
async fn copy(ctx: &Ctx, plan: &Arc<ReplayPlan>, k: usize, exact: bool) -> Result<Verdict, String> {
    let per = plan.participants.len();
    let connecting = plan
        .participants
        .iter()
        .enumerate()
        .map(|(j, (user, name))| {
            let id = copy_id(user, k);
            let name: String = name
                .chars()
                .take(juno_protocol::limits::MAX_NAME_CHARS)
                .collect();
            async move { Conn::connect(ctx, k * per + j, &id, &name).await }
        });
    let conns = futures_util::future::join_all(connecting).await;
    let failed = conns.iter().filter(|c| c.is_err()).count();
    if failed > 0 {
        return Err(format!("copy {k}: {failed} of {per} connections failed"));
    }
    let stop = ctx.stop.child_token();
    let (results_tx, mut results) = mpsc::channel::<MatchResult>(per.max(1));
    let mut commands: HashMap<String, mpsc::Sender<Cmd>> = HashMap::new();
    let mut set = JoinSet::new();
    for (conn, (user, _)) in conns.into_iter().flatten().zip(&plan.participants) {
        let (tx, rx) = mpsc::channel(1);
        commands.insert(user.clone(), tx);
        let (plan, results_tx, stop) = (plan.clone(), results_tx.clone(), stop.clone());
        let stats = ctx.stats.clone();
        let user = user.clone();
        set.spawn(async move {
            let mut conn = conn;
            if let Err(e) = participant(&mut conn, &plan, &user, rx, results_tx, &stop).await {
                if !stop.is_cancelled() {
                    if crate::client::is_connection_lost(&e) {
                        stats.dropped(&conn.user, &format!("{e:#}"));
                    } else {
                        stats.failure(&conn.user, &format!("{e:#}"));
                    }
                }
            }
            conn.close().await;
        });
    }
    drop(results_tx);
    let outcome = async {
        lobby(plan, &commands, k).await?;
        let result = tokio::select! {
            r = results.recv() => r,
            _ = ctx.stop.cancelled() => None,
        };
        let result = result.ok_or_else(|| format!("copy {k}: no result before the run ended"))?;
        finished(ctx);
        compare_results(
            &plan.result,
            &result,
            |u| copy_id(u, k),
            exact,
            plan.tolerance,
        )
        .map_err(|d| format!("copy {k} (room {}): {d}", result.room))
    }
    .await;
    // Let every participant read to its own `result` (and the `ok`s before it),
    // then stop the stragglers (players who left get no result).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    stop.cancel();
    while set.join_next().await.is_some() {}
    outcome
}

/// Runs the lobby steps in order, each waiting for its answer.
async fn lobby(
    plan: &ReplayPlan,
    commands: &HashMap<String, mpsc::Sender<Cmd>>,
    k: usize,
) -> Result<(), String> {
    let mut room: Option<String> = None;
    for step in &plan.lobby {
        let room_id = || room.clone().ok_or_else(|| format!("copy {k}: no room yet"));
        let msg = match step.kind {
            StepKind::Create => ClientMsg::Create {
                mode: plan.mode,
                mission: plan.mission.clone(),
                options: Some(plan.options.clone()),
            },
            StepKind::Join => ClientMsg::Join { room: room_id()? },
            StepKind::Leave => ClientMsg::Leave { room: room_id()? },
            StepKind::Start => ClientMsg::Start { room: room_id()? },
        };
        let what = format!("copy {k}: {:?} by {}", step.kind, copy_id(&step.user, k));
        let tx = commands
            .get(&step.user)
            .ok_or_else(|| format!("{what}: no such participant"))?;
        let (reply, answer) = oneshot::channel();
        tx.send(Cmd { msg, reply })
            .await
            .map_err(|_| format!("{what}: its connection is gone"))?;
        match tokio::time::timeout(REQUEST_TIMEOUT, answer).await {
            Err(_) => return Err(format!("{what}: no answer within {REQUEST_TIMEOUT:?}")),
            Ok(Err(_)) => return Err(format!("{what}: its connection is gone")),
            Ok(Ok(Err(e))) => return Err(format!("{what}: refused: {} ({})", e.code, e.msg)),
            Ok(Ok(Ok(ok))) => {
                if step.kind == StepKind::Create {
                    room = Some(
                        ok.room
                            .ok_or_else(|| format!("{what}: ok without a room"))?,
                    );
                }
            }
        }
    }
    Ok(())
}

/// One participant of a copy: sends the lobby steps it is given, and during play
/// performs its timed actions; reports the `result` it receives.
async fn participant(
    conn: &mut Conn,
    plan: &ReplayPlan,
    user: &str,
    mut commands: mpsc::Receiver<Cmd>,
    results: mpsc::Sender<MatchResult>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let actions = plan.timed.get(user).cloned().unwrap_or_default();
    let mut due: Vec<(Instant, Act)> = Vec::new();
    let mut questions: HashMap<u32, (String, usize)> = HashMap::new();
    let mut awaiting: Option<(u64, Cmd)> = None;
    let mut commands_open = true;
    let mut started = false;
    let mut room: Option<String> = None;
    enum Ev {
        Msg(anyhow::Result<Option<ServerMsg>>),
        Cmd(Option<Cmd>),
        Due,
        Stop,
    }
    loop {
        let next = due.iter().map(|d| d.0).min();
        let ev = tokio::select! {
            m = conn.recv() => Ev::Msg(m),
            c = commands.recv(), if commands_open && awaiting.is_none() => Ev::Cmd(c),
            _ = sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => Ev::Due,
            _ = stop.cancelled() => Ev::Stop,
        };
        let schedule = |anchor: Anchor, due: &mut Vec<(Instant, Act)>| {
            let now = Instant::now();
            for t in actions.iter().filter(|t| t.anchor == anchor) {
                due.push((
                    now + std::time::Duration::from_millis(t.offset_ms),
                    t.act.clone(),
                ));
            }
        };
        match ev {
            Ev::Stop => return Ok(()),
            Ev::Cmd(None) => commands_open = false,
            Ev::Cmd(Some(cmd)) => {
                let rid = conn.send(&cmd.msg).await?;
                awaiting = Some((rid, cmd));
            }
            Ev::Due => {
                let now = Instant::now();
                let (ready, later): (Vec<_>, Vec<_>) =
                    due.drain(..).partition(|(at, _)| *at <= now);
                due = later;
                let Some(room) = room.clone() else { continue };
                for (_, act) in ready {
                    let msg = match act {
                        Act::Leave => ClientMsg::Leave { room: room.clone() },
                        Act::Answer { q, right } => {
                            let Some((text, n)) = questions.get(&q) else {
                                anyhow::bail!("{}: question {q} never arrived", conn.user);
                            };
                            let Some(&correct) = plan.key.get(text) else {
                                anyhow::bail!(
                                    "{}: question text not in the record: {text:?}",
                                    conn.user
                                );
                            };
                            let choice = if right {
                                correct
                            } else {
                                (correct + 1) % (*n as u32).max(1)
                            };
                            ClientMsg::Answer {
                                room: room.clone(),
                                q,
                                choice,
                            }
                        }
                    };
                    conn.send(&msg).await?;
                }
            }
            Ev::Msg(m) => {
                let Some(msg) = m? else {
                    return Err(crate::client::ConnectionLost(conn.user.clone()).into());
                };
                match msg {
                    ServerMsg::Ok(ok)
                        if awaiting
                            .as_ref()
                            .is_some_and(|(rid, _)| ok.rid == Some(*rid)) =>
                    {
                        if let Some((_, cmd)) = awaiting.take() {
                            if let ClientMsg::Create { .. } = cmd.msg {
                                room = ok.room.clone();
                            }
                            let _ = cmd.reply.send(Ok(ok));
                        }
                    }
                    ServerMsg::Error(e)
                        if awaiting
                            .as_ref()
                            .is_some_and(|(rid, _)| e.rid == Some(*rid)) =>
                    {
                        if let Some((_, cmd)) = awaiting.take() {
                            let _ = cmd.reply.send(Err(e));
                        }
                    }
                    ServerMsg::RoomState(s) => {
                        room.get_or_insert(s.room);
                        if s.phase == Phase::Playing && !started {
                            started = true;
                            schedule(Anchor::Start, &mut due);
                        }
                    }
                    ServerMsg::Question(q) => {
                        room.get_or_insert(q.room.clone());
                        questions.insert(q.q, (q.text, q.choices.len()));
                        schedule(Anchor::Question(q.q), &mut due);
                    }
                    ServerMsg::Result(r) => {
                        let _ = results.try_send(r);
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
    }
}
