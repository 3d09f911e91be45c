//! Recorded matches: reading one (`GET /api/matches/{id}` or a file of the same
//! shape: `spec`, `events` [{at, input}], `result`, `players`), turning its log into
//! a replay plan, and comparing a copy's result with the record.
//!
//! The plan replays the log through [`juno_rooms::Room`] locally to learn when each
//! question opened. Lobby inputs (create, joins, leaves, start) become ordered steps;
//! inputs during play become actions timed from the moment the player receives the
//! question they belong to (answers: the recorded answer time; leaves: from the last
//! question opened before, or from the start). An answer is replayed as right or
//! wrong as recorded, since a copy asks the mission's questions in another order.
//! `abandon` needs no action: the player simply answers nothing more (rounds then
//! wait for them until their deadline, which shifts timing but not the result).
//! The same goes for a reconnect window the room ran out itself during play (a
//! seat freed by a timer); one that ran out in the lobby is replayed as a leave.
//! A forfeit (a tournament's duel whose player left the tournament) is replayed
//! as a leave. Spectating, disconnects, reconnects and ratings need no action.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context};
use juno_protocol::{MatchResult, Mode, Phase, RoomOptions, ServerMsg};
use juno_rooms::{Input, LogEntry, Output, Room, RoomSpec};
use serde::{Deserialize, Serialize};

use crate::target::Target;
use crate::ReplaySource;

/// The record as `GET /api/matches/{id}` returns it (other fields are ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatchRecordFile {
    pub spec: RoomSpec,
    pub events: Vec<LogEntry>,
    pub result: MatchResult,
}

/// Loads the record from the server or a file.
pub async fn load(
    source: &ReplaySource,
    target: &Target,
    http: &reqwest::Client,
) -> anyhow::Result<serde_json::Value> {
    match source {
        ReplaySource::Record(v) => Ok(v.clone()),
        ReplaySource::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
        }
        ReplaySource::Match(id) => {
            let url = format!("{}/api/matches/{id}", target.http_base());
            let response = http
                .get(&url)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            anyhow::ensure!(
                response.status().is_success(),
                "GET {url}: {}",
                response.status()
            );
            response
                .json()
                .await
                .with_context(|| format!("GET {url}: not JSON"))
        }
    }
}

/// What a lobby step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// `create` with the plan's options.
    Create,
    Join,
    Leave,
    Start,
}

/// One lobby step, by a recorded user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub user: String,
    pub kind: StepKind,
}

/// What a timed action is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// The `room_state` that says the match began.
    Start,
    /// Receiving question `q`.
    Question(u32),
}

/// What a timed action does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Answer question `q`, right or wrong.
    Answer {
        q: u32,
        right: bool,
    },
    Leave,
}

/// An action during play, `offset_ms` (already divided by the speed) after its anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed {
    pub anchor: Anchor,
    pub offset_ms: u64,
    pub act: Act,
}

/// How to replay one recorded match.
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    /// The recorded room's id.
    pub room: String,
    pub mode: Mode,
    pub mission: String,
    /// `create.options`: the recorded settings, times divided by the speed.
    pub options: RoomOptions,
    /// Everyone who connects, with their recorded names; the creator first.
    pub participants: Vec<(String, String)>,
    /// Lobby steps in recorded order; the first is the creator's `create`.
    pub lobby: Vec<Step>,
    /// Each user's actions during play, in recorded order.
    pub timed: HashMap<String, Vec<Timed>>,
    /// Correct choice by question text (from the recorded questions).
    pub key: HashMap<String, u32>,
    /// The recorded result.
    pub result: MatchResult,
    /// Remarks (e.g. abandons that are replayed as silence).
    pub notes: Vec<String>,
    /// Recorded points within which players may swap places (see [`compare_results`]):
    /// what 30 ms of timing error per question is worth over the questions asked.
    pub tolerance: u64,
}

fn scale(ms: u64, speed: f64) -> u64 {
    (ms as f64 / speed).round() as u64
}

impl ReplayPlan {
    /// Builds the plan for `record` at `speed` × the recorded pace.
    pub fn build(record: &MatchRecordFile, speed: f64) -> anyhow::Result<ReplayPlan> {
        let spec = &record.spec;
        if spec.mode == Mode::Tournament {
            bail!("replaying a tournament is not supported; replay its duels (ids `{}.ROUND.INDEX`) instead", spec.room);
        }
        let mut room = Room::new(spec.clone());
        let mut opens: HashMap<u32, u64> = HashMap::new();
        let mut last_open: Option<u64> = None;
        let mut last_open_q: Option<u32> = None;
        let mut started_at: Option<u64> = None;
        let mut local_result = None;
        let mut lobby: Vec<Step> = Vec::new();
        let mut timed: HashMap<String, Vec<Timed>> = HashMap::new();
        let mut names: Vec<(String, String)> = Vec::new();
        let mut notes = Vec::new();
        let mut creator_seated = false;
        let creator = match &spec.creator {
            Some(c) => c.clone(),
            None => record
                .events
                .iter()
                .find_map(|e| match &e.input {
                    Some(Input::Join { user, .. }) => Some(user.clone()),
                    _ => None,
                })
                .context("the record has no creator and no join")?,
        };
        lobby.push(Step {
            user: creator.clone(),
            kind: StepKind::Create,
        });
        let mut add_name = |user: &str, name: &str| {
            if !names.iter().any(|(u, _)| u == user) {
                names.push((user.to_string(), name.to_string()));
            }
        };
        add_name(&creator, &creator);
        for entry in &record.events {
            let phase = room.phase();
            let anchor_before = match (last_open_q, last_open, started_at) {
                (Some(q), Some(at), _) => Some((Anchor::Question(q), at)),
                (_, _, Some(at)) => Some((Anchor::Start, at)),
                _ => None,
            };
            if let Some(input) = &entry.input {
                match (phase, input) {
                    (Phase::Waiting, Input::Join { user, name }) => {
                        if let Some(slot) = names.iter_mut().find(|(u, _)| u == user) {
                            slot.1 = name.clone();
                        } else {
                            names.push((user.clone(), name.clone()));
                        }
                        // The creator's own first seat comes with `create` (unless watching).
                        if *user == creator && !spec.settings.watch && !creator_seated {
                            creator_seated = true;
                        } else {
                            lobby.push(Step {
                                user: user.clone(),
                                kind: StepKind::Join,
                            });
                        }
                    }
                    (Phase::Waiting, Input::Leave { user } | Input::Abandon { user }) => lobby
                        .push(Step {
                            user: user.clone(),
                            kind: StepKind::Leave,
                        }),
                    (Phase::Waiting, Input::Start { user }) => lobby.push(Step {
                        user: user.clone(),
                        kind: StepKind::Start,
                    }),
                    (Phase::Playing, Input::Answer { user, q, choice }) => {
                        let opened = *opens.get(q).with_context(|| {
                            format!("an answer to question {q} before it opened")
                        })?;
                        let question = spec
                            .questions
                            .get(*q as usize)
                            .with_context(|| format!("question {q} is not in the spec"))?;
                        timed.entry(user.clone()).or_default().push(Timed {
                            anchor: Anchor::Question(*q),
                            offset_ms: scale(entry.at.saturating_sub(opened), speed),
                            act: Act::Answer {
                                q: *q,
                                right: *choice == question.correct,
                            },
                        });
                    }
                    (Phase::Playing, Input::Leave { user } | Input::Forfeit { user }) => {
                        let (anchor, at) =
                            anchor_before.context("a leave during play before the start")?;
                        timed.entry(user.clone()).or_default().push(Timed {
                            anchor,
                            offset_ms: scale(entry.at.saturating_sub(at), speed),
                            act: Act::Leave,
                        });
                    }
                    (Phase::Playing, Input::Abandon { user }) => {
                        notes.push(format!("{user} abandoned (dropped for good) in the record; the copy just stops answering"));
                    }
                    (
                        _,
                        Input::Spectate { .. }
                        | Input::Unspectate { .. }
                        | Input::Disconnect { .. }
                        | Input::Reconnect { .. }
                        | Input::Rating { .. }
                        // A failover in the record changes no one's play.
                        | Input::Resume,
                    ) => {}
                    (_, other) => bail!("cannot replay input {other:?} in phase {phase:?}"),
                }
            }
            room.replay_entry(entry);
            while let Some(out) = room.poll_output() {
                match out {
                    Output::Broadcast(ServerMsg::Question(m)) => {
                        opens.insert(m.q, entry.at);
                        last_open = Some(entry.at);
                        last_open_q = Some(m.q);
                    }
                    Output::Started => started_at = Some(entry.at),
                    // A reconnect window the room ran out (a timer, not an input).
                    Output::SeatFreed { user } if entry.input.is_none() => match phase {
                        Phase::Waiting => lobby.push(Step {
                            user,
                            kind: StepKind::Leave,
                        }),
                        _ => notes.push(format!("{user} abandoned (dropped for good) in the record; the copy just stops answering")),
                    },
                    Output::Finished(s) => local_result = Some(s.result),
                    _ => {}
                }
            }
        }
        match &local_result {
            Some(r) => {
                if let Err(d) = compare_results(&record.result, r, |u| u.to_string(), true, 0) {
                    notes.push(format!(
                        "replaying the log locally does not give the stored result: {d}"
                    ));
                }
            }
            None => notes.push("replaying the log locally does not finish the match".into()),
        }
        let s = &spec.settings;
        let options = RoomOptions {
            questions: Some(s.questions),
            question_ms: Some(
                scale(s.question_ms, speed).max(juno_protocol::limits::MIN_QUESTION_MS),
            ),
            countdown_ms: Some(scale(s.countdown_ms, speed)),
            between_ms: Some(scale(s.between_ms, speed)),
            max_players: Some(s.max_players),
            boss_hp: s.boss_hp,
            watch: s.watch.then_some(true),
            size: None,
        };
        Ok(ReplayPlan {
            room: spec.room.clone(),
            mode: spec.mode,
            mission: spec.mission.clone(),
            options,
            participants: names,
            lobby,
            timed,
            key: spec
                .questions
                .iter()
                .map(|q| (q.text.clone(), q.correct))
                .collect(),
            result: record.result.clone(),
            notes,
            tolerance: opens.len() as u64 * jitter_points(spec.settings.question_ms, 30),
        })
    }
}

/// Copy `k`'s id for recorded user `user`: `{user}-c{k}`, cut to the 64-char limit.
pub fn copy_id(user: &str, k: usize) -> String {
    let suffix = format!("-c{k}");
    let keep = juno_protocol::limits::MAX_USER_ID_LEN.saturating_sub(suffix.len());
    let base: String = user.chars().take(keep).collect();
    format!("{base}{suffix}")
}

/// How a copy's result compares with the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Same winner, standings (ids, ranks) and victory (and points, if compared).
    Same,
    /// The same but for players whose recorded points are within the timing-jitter
    /// tolerance of each other, whose order came out the other way round.
    WithinJitter(String),
}

/// Points that `ms` of timing error may move one answer at `question_ms`.
pub fn jitter_points(question_ms: u64, ms: u64) -> u64 {
    (50 * ms).div_ceil(question_ms.max(1)).max(1)
}

/// Checks that `copy` reproduces `orig` with ids mapped by `map`: same winner, same
/// standings (ids and ranks, in rank order), same victory; with `exact` also the
/// same points. Without `exact`, players whose recorded points differ by at most
/// `tolerance` may come out in either order (and so may the winner among them):
/// their order is decided by milliseconds a replay cannot promise. `Err` names the
/// first real difference.
pub fn compare_results(
    orig: &MatchResult,
    copy: &MatchResult,
    map: impl Fn(&str) -> String,
    exact: bool,
    tolerance: u64,
) -> Result<Verdict, String> {
    if orig.victory != copy.victory {
        return Err(format!(
            "victory: recorded {:?}, copy {:?}",
            orig.victory, copy.victory
        ));
    }
    let want_winner = orig.winner.as_deref().map(&map);
    // Tied players may be listed in either order: compare (rank, id) sorted.
    let mut want: Vec<(u32, String)> = orig
        .standings
        .iter()
        .map(|s| (s.rank, map(&s.id)))
        .collect();
    let mut got: Vec<(u32, String)> = copy
        .standings
        .iter()
        .map(|s| (s.rank, s.id.clone()))
        .collect();
    want.sort();
    got.sort();
    let points: BTreeMap<String, u64> = orig
        .standings
        .iter()
        .map(|s| (map(&s.id), s.score))
        .collect();
    if exact {
        for s in &copy.standings {
            if points.get(&s.id) != Some(&s.score) {
                return Err(format!(
                    "points of {}: recorded {:?}, copy {}",
                    s.id,
                    points.get(&s.id),
                    s.score
                ));
            }
        }
    }
    if want_winner == copy.winner && want == got {
        return Ok(Verdict::Same);
    }
    let first_swap = want.iter().zip(&got).find(|(a, b)| a != b).map(|(a, b)| {
        format!(
            "recorded {} at rank {}, copy {} at rank {}",
            a.1, a.0, b.1, b.0
        )
    });
    let tolerance = if exact { 0 } else { tolerance };
    let recorded_ranks: BTreeMap<&str, u32> =
        want.iter().map(|(r, id)| (id.as_str(), *r)).collect();
    let copy_ranks: BTreeMap<&str, u32> = got.iter().map(|(r, id)| (id.as_str(), *r)).collect();
    if recorded_ranks.len() != copy_ranks.len() || recorded_ranks.keys().ne(copy_ranks.keys()) {
        let missing = recorded_ranks
            .keys()
            .find(|id| !copy_ranks.contains_key(*id))
            .map(|id| format!("{id} is missing from the copy's standings"))
            .unwrap_or_else(|| {
                format!(
                    "{} standings recorded, {} in the copy",
                    want.len(),
                    got.len()
                )
            });
        return Err(format!("standings: {missing}"));
    }
    let gap = |a: &str, b: &str| {
        let (pa, pb) = (
            points.get(a).copied().unwrap_or(0),
            points.get(b).copied().unwrap_or(0),
        );
        pa.abs_diff(pb)
    };
    let ids: Vec<&str> = recorded_ranks.keys().copied().collect();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            let before = recorded_ranks[a].cmp(&recorded_ranks[b]);
            let after = copy_ranks[a].cmp(&copy_ranks[b]);
            if before != after && gap(a, b) > tolerance {
                return Err(format!(
                    "standings: {a} and {b} ranked {} and {} in the record but {} and {} in the copy, {} points apart (tolerance {tolerance})",
                    recorded_ranks[a], recorded_ranks[b], copy_ranks[a], copy_ranks[b], gap(a, b)
                ));
            }
        }
    }
    if want_winner != copy.winner {
        // Excused only among players the record has within the tolerance of each other.
        let top = |ranks: &BTreeMap<&str, u32>| -> Vec<String> {
            ranks
                .iter()
                .filter(|(_, r)| **r == 1)
                .map(|(id, _)| id.to_string())
                .collect()
        };
        let mut contenders: Vec<String> = want_winner.iter().chain(&copy.winner).cloned().collect();
        contenders.extend(top(&recorded_ranks));
        contenders.extend(top(&copy_ranks));
        let spread = contenders
            .iter()
            .flat_map(|a| contenders.iter().map(move |b| (a, b)))
            .map(|(a, b)| gap(a, b))
            .max()
            .unwrap_or(0);
        if spread > tolerance || contenders.is_empty() {
            return Err(format!(
                "winner: recorded {want_winner:?}, copy {:?}",
                copy.winner
            ));
        }
        return Ok(Verdict::WithinJitter(format!(
            "winner: recorded {want_winner:?}, copy {:?}, {spread} points apart",
            copy.winner
        )));
    }
    Ok(Verdict::WithinJitter(
        first_swap.unwrap_or_else(|| "order of near ties".into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use juno_protocol::{Question, Standing};
    use juno_rooms::Settings;

    fn result(winner: Option<&str>, standings: &[(&str, u64, u32)]) -> MatchResult {
        MatchResult {
            room: "r".into(),
            mode: Mode::BattleRoyale,
            winner: winner.map(String::from),
            standings: standings
                .iter()
                .map(|(id, score, rank)| Standing {
                    id: id.to_string(),
                    score: *score,
                    rank: *rank,
                })
                .collect(),
            victory: None,
            rating: None,
        }
    }

    #[test]
    fn results_compare_by_winner_ranks_and_optionally_points() {
        let orig = result(Some("a"), &[("a", 300, 1), ("b", 250, 2), ("c", 0, 3)]);
        let copy = result(
            Some("a-c0"),
            &[("a-c0", 301, 1), ("b-c0", 249, 2), ("c-c0", 0, 3)],
        );
        let map = |u: &str| copy_id(u, 0);
        assert_eq!(
            compare_results(&orig, &copy, map, false, 2),
            Ok(Verdict::Same)
        );
        let err = |r: Result<Verdict, String>| r.expect_err("differs");
        assert!(err(compare_results(&orig, &copy, map, true, 2)).contains("points"));
        let swapped = result(
            Some("a-c0"),
            &[("a-c0", 300, 1), ("c-c0", 250, 2), ("b-c0", 0, 3)],
        );
        assert!(err(compare_results(&orig, &swapped, map, false, 2)).contains("standings"));
        let other_winner = result(
            Some("b-c0"),
            &[("a-c0", 300, 2), ("b-c0", 350, 1), ("c-c0", 0, 3)],
        );
        assert!(err(compare_results(&orig, &other_winner, map, false, 2)).contains("standings"));
        // Ties may come in either order.
        let tied = result(None, &[("a", 100, 1), ("b", 100, 1)]);
        let tied_copy = result(None, &[("b-c0", 100, 1), ("a-c0", 100, 1)]);
        assert_eq!(
            compare_results(&tied, &tied_copy, map, true, 0),
            Ok(Verdict::Same)
        );
        // Near ties may swap without --exact; the winner too.
        let near = result(Some("a"), &[("a", 301, 1), ("b", 300, 2), ("c", 0, 3)]);
        let flipped = result(
            Some("b-c0"),
            &[("b-c0", 301, 1), ("a-c0", 300, 2), ("c-c0", 0, 3)],
        );
        assert!(matches!(
            compare_results(&near, &flipped, map, false, 2),
            Ok(Verdict::WithinJitter(_))
        ));
        assert!(compare_results(&near, &flipped, map, false, 0).is_err());
        assert!(compare_results(&near, &flipped, map, true, 2).is_err());
        assert_eq!(jitter_points(1000, 30), 2);
        assert_eq!(jitter_points(10_000, 30), 1);
    }

    #[test]
    fn copy_ids_fit_the_user_id_limit() {
        assert_eq!(copy_id("ann", 3), "ann-c3");
        let long = "x".repeat(64);
        assert_eq!(copy_id(&long, 12).len(), 64);
    }

    #[test]
    fn plans_time_answers_from_their_question() {
        let questions: Vec<Question> = (0..2)
            .map(|i| Question {
                text: format!("q{i}"),
                choices: vec!["a".into(), "b".into()],
                correct: 1,
                difficulty: None,
            })
            .collect();
        let spec = RoomSpec {
            room: "room1".into(),
            mode: Mode::BattleRoyale,
            mission: "demo".into(),
            creator: Some("a".into()),
            settings: Settings {
                questions: 2,
                question_ms: 1000,
                countdown_ms: 100,
                between_ms: 50,
                max_players: 3,
                boss_hp: None,
                size: 8,
                watch: false,
                reconnect_ms: juno_rooms::DEFAULT_RECONNECT_MS,
            },
            questions,
            parent: None,
        };
        // Record a match by driving a room: a and b answer right, c wrong then leaves.
        let mut room = Room::new(spec.clone());
        let mut now = 0;
        for u in ["a", "b", "c"] {
            room.handle(
                now,
                Input::Join {
                    user: u.into(),
                    name: u.to_uppercase(),
                },
            )
            .expect("join");
            now += 10;
        }
        let tick = |room: &mut Room, until: u64| {
            while let Some(t) = room.poll_timeout().filter(|t| *t <= until) {
                room.handle_timeout(t);
            }
        };
        tick(&mut room, 130); // question 0 opens at 120
        room.handle(
            300,
            Input::Answer {
                user: "a".into(),
                q: 0,
                choice: 1,
            },
        )
        .expect("a");
        room.handle(
            400,
            Input::Answer {
                user: "b".into(),
                q: 0,
                choice: 1,
            },
        )
        .expect("b");
        room.handle(
            500,
            Input::Answer {
                user: "c".into(),
                q: 0,
                choice: 0,
            },
        )
        .expect("c");
        tick(&mut room, 5000);
        room.handle(
            5000,
            Input::Answer {
                user: "a".into(),
                q: 1,
                choice: 0,
            },
        )
        .ok();
        tick(&mut room, 10_000);
        let mut finished = None;
        while let Some(o) = room.poll_output() {
            if let Output::Finished(s) = o {
                finished = Some(s.result);
            }
        }
        let record = MatchRecordFile {
            spec,
            events: room.log().to_vec(),
            result: finished.expect("finished"),
        };
        let plan = ReplayPlan::build(&record, 2.0).expect("plan");
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
        assert_eq!(plan.options.question_ms, Some(500));
        assert_eq!(plan.participants.len(), 3);
        assert_eq!(
            plan.lobby
                .iter()
                .map(|s| (s.user.as_str(), s.kind.clone()))
                .collect::<Vec<_>>(),
            [
                ("a", StepKind::Create),
                ("b", StepKind::Join),
                ("c", StepKind::Join)
            ]
        );
        assert_eq!(
            plan.timed["a"][0],
            Timed {
                anchor: Anchor::Question(0),
                offset_ms: 90,
                act: Act::Answer { q: 0, right: true }
            }
        );
        assert_eq!(plan.timed["c"][0].act, Act::Answer { q: 0, right: false });
    }
}
