//! The rooms fuzz harness, shared by the fuzz target (`fuzz/fuzz_targets/rooms.rs`)
//! and the test that runs its corpus (`tests/rules/fuzz_corpus.rs`): both turn
//! bytes into a [`Script`] the same way ([`run`]) and hold it to the same
//! invariants ([`play`]). Not part of the crate's API; built with the
//! `fuzzing` feature only.
//!
//! A script is a room of any mode with small settings, then a sequence of
//! steps: inputs from a few users, the clock moving (timers fired at their
//! time, or late), a failover (the host dies, another rebuilds the room from
//! its spec and log and feeds [`Input::Resume`]), and — for a tournament — the
//! host reporting its duels' ends. After every call into the room [`play`]
//! checks that:
//!
//! - nothing panics, and a refused input changes nothing (no output, no log);
//!   an accepted input that is not logged sends nothing either, or a replay
//!   would miss it — but for a `Resume` after the end, which re-sends
//!   `room_state` only (to the adopter's reconnected clients) and is not
//!   part of the record;
//! - a room rebuilt from its spec and log before the end is the room that
//!   died, field for field; `Resume` is accepted in every phase and sends
//!   `room_state` as of now, then — while a question is open — that
//!   question's frame with the same time left, at least
//!   [`crate::RESUME_MIN_MS`];
//! - `handle_timeout` leaves no timer due, acts (and logs) exactly when one
//!   was due, and a room with no input left goes quiet after finitely many
//!   timers;
//! - every player's score never decreases, in `room_state`, `round.scores`,
//!   `score` frames and the summary; a raid's damage adds up to the boss's
//!   lost hit points; a battle royale always has someone alive;
//! - the phase only moves forward, with one `Started`; at most one `result`
//!   broadcast, followed at once by the one `Output::Finished`, and nothing
//!   at all after it (no output but a `Resume`'s `room_state`, no timer, no
//!   log entry);
//! - members are unique, counted right, and `members_version` moves whenever
//!   they change;
//! - seats add up as the host's directories count them: an accepted `Join`
//!   takes one, `Output::SeatFreed` frees one that is held (never twice), and
//!   `Output::Finished` frees the rest; in the lobby the seats are the players;
//! - time never goes backwards in the log;
//! - replaying the log on a fresh room gives the same outputs, the same log,
//!   the same state and (via [`crate::replay`]) the same summary.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Result, Unstructured};
use juno_protocol::{MatchResult, Mode, Phase, PlayerRef, Question, RoomOptions, ServerMsg};

use crate::{
    replay, Input, LogEntry, Millis, Output, Pace, Room, RoomSpec, Settings, Summary, RESUME_MIN_MS,
};

/// The users a script plays with: eight, so a tournament can fill its bracket,
/// and the room's creator.
pub const USERS: [&str; 9] = ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "host"];

/// Steps in one script at most.
pub const MAX_STEPS: usize = 256;

/// Timer calls in a row (no input between them) after which a room must have
/// gone quiet: a few per question, lobby broadcast, boss frame and window.
const MAX_TIMER_CALLS: usize = 1_000;

/// A room and what happens to it.
#[derive(Debug, Clone)]
pub struct Script {
    /// The room.
    pub spec: RoomSpec,
    /// What happens, in order; [`play`] runs the timers out after the last.
    pub steps: Vec<Step>,
}

/// One step of a [`Script`].
#[derive(Debug, Clone)]
pub enum Step {
    /// The clock moves forward by this many ms, every timer due on the way
    /// firing at its time (as a host's timer would).
    Wait(Millis),
    /// The clock moves forward by this many ms, then one `handle_timeout` at
    /// the new time (a late timer, or one with nothing due).
    Late(Millis),
    /// Every timer fires at its time until the room asks for none.
    RunOut,
    /// The host dies: the clock moves forward by this many ms with no timer
    /// fired (a host that stalled before it died), then a room rebuilt from
    /// the spec and the log takes over at that room time and gets
    /// [`Input::Resume`]. Timers already due fire at the next step that
    /// fires timers, as the adopting host's would.
    Failover(Millis),
    /// An input at the current time.
    Input(Input),
    /// `user` answers the question open now (0 if none is): right or wrong.
    AnswerOpen {
        /// The answering user.
        user: String,
        /// The correct choice, or another.
        right: bool,
    },
    /// Tournament: the host reports the end of a duel the room spawned
    /// (`duel` indexes them, modulo their number), won by its upper player
    /// (`winner` 0), its lower one (1) or someone else (2+), with these points.
    DuelOver {
        /// Which spawned duel.
        duel: usize,
        /// Who won it.
        winner: u8,
        /// The two players' points.
        scores: [u64; 2],
    },
}

impl<'a> Arbitrary<'a> for Script {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let spec = arbitrary_spec(u)?;
        let mut steps = Vec::new();
        while !u.is_empty() && steps.len() < MAX_STEPS {
            steps.push(arbitrary_step(u, &spec)?);
        }
        Ok(Script { spec, steps })
    }
}

/// A room of any mode with small, valid options (as `create` would resolve
/// them), a short reconnect window and 1–4 questions of 2–6 choices.
fn arbitrary_spec(u: &mut Unstructured<'_>) -> Result<RoomSpec> {
    let mode = *u.choose(&Mode::ALL)?;
    let options = RoomOptions {
        questions: Some(u.int_in_range(1..=4)?),
        question_ms: Some(*u.choose(&[100, 250, 1_000, 10_000])?),
        countdown_ms: Some(*u.choose(&[0, 50, 3_000])?),
        between_ms: Some(*u.choose(&[0, 10, 2_000])?),
        max_players: match mode {
            Mode::BattleRoyale | Mode::Raid => Some(u.int_in_range(1..=6)?),
            Mode::Duel | Mode::Tournament => None,
        },
        size: match mode {
            Mode::Tournament => Some(*u.choose(&[2, 4, 8])?),
            _ => None,
        },
        boss_hp: match mode {
            Mode::Raid => *u.choose(&[None, Some(1), Some(150), Some(1_000)])?,
            _ => None,
        },
        watch: Some(bool::arbitrary(u)?),
    };
    // Every option above is within its range, as `create` requires.
    if let Err(e) = options.validate(mode) {
        panic!("the harness made invalid options {options:?}: {e}");
    }
    let mut settings = Settings::resolve(mode, &options, Pace::default());
    settings.reconnect_ms = *u.choose(&[0, 1, 500, 20_000])?;
    let mut questions = Vec::new();
    for i in 0..settings.questions {
        let choices: u32 = u.int_in_range(2..=6)?;
        questions.push(Question {
            text: format!("Q{i}"),
            choices: (0..choices).map(|c| format!("c{c}")).collect(),
            correct: u.int_in_range(0..=choices - 1)?,
            difficulty: None,
        });
    }
    // A duel may be a tournament's (no draws, no creator).
    let child = mode == Mode::Duel && bool::arbitrary(u)?;
    Ok(RoomSpec {
        room: if child { "t.0.0".into() } else { "r".into() },
        mode,
        mission: "m".into(),
        creator: if child {
            None
        } else {
            u.choose(&[Some("u0"), Some("host"), None])?
                .map(str::to_owned)
        },
        settings,
        questions,
        parent: child.then(|| "t".to_owned()),
    })
}

fn arbitrary_user(u: &mut Unstructured<'_>) -> Result<String> {
    Ok((*u.choose(&USERS)?).to_owned())
}

/// Points as a duel scores them, rarely anything at all.
fn arbitrary_points(u: &mut Unstructured<'_>) -> Result<u64> {
    if u.ratio(1, 16)? {
        u64::arbitrary(u)
    } else {
        u.int_in_range(0..=7_500)
    }
}

fn arbitrary_step(u: &mut Unstructured<'_>, spec: &RoomSpec) -> Result<Step> {
    let user = arbitrary_user(u)?;
    let step = match u.int_in_range(0u8..=21)? {
        0 => Step::Wait(u.int_in_range(0..=30)?),
        1 => Step::Wait(u.int_in_range(0..=25_000)?),
        // Was a second long `Wait`: a failover takes the same bytes, so the
        // committed corpus still decodes to the same steps around it.
        2 => Step::Failover(u.int_in_range(0..=25_000)?),
        3 => Step::Late(u.int_in_range(0..=25_000)?),
        4 => Step::RunOut,
        5 | 6 => {
            let name = match u.int_in_range(0u8..=3)? {
                0 => String::new(),
                1 => "名前".to_owned(),
                _ => user.to_uppercase(),
            };
            Step::Input(Input::Join { user, name })
        }
        7 => Step::Input(Input::Leave { user }),
        8 => Step::Input(Input::Start { user }),
        9..=11 => Step::AnswerOpen {
            user,
            right: bool::arbitrary(u)?,
        },
        12 => {
            let q = if u.ratio(1, 8)? {
                u32::arbitrary(u)?
            } else {
                u.int_in_range(0..=spec.settings.questions)?
            };
            let choice = u.int_in_range(0..=6)?;
            Step::Input(Input::Answer { user, q, choice })
        }
        13 => Step::Input(Input::Disconnect { user }),
        14 => Step::Input(Input::Reconnect { user }),
        15 => Step::Input(Input::Spectate { user }),
        16 => Step::Input(Input::Unspectate { user }),
        17 => {
            let rating = if u.ratio(1, 4)? {
                f64::arbitrary(u)?
            } else {
                *u.choose(&[1_500.0, 1_200.0, 1_800.0, 2_100.0])?
            };
            Step::Input(Input::Rating { user, rating })
        }
        18 => Step::Input(Input::Forfeit { user }),
        19 => Step::Input(Input::Abandon { user }),
        _ => Step::DuelOver {
            duel: usize::from(u8::arbitrary(u)?),
            winner: u.int_in_range(0..=2)?,
            scores: [arbitrary_points(u)?, arbitrary_points(u)?],
        },
    };
    Ok(step)
}

/// The [`Script`] that `data` decodes to, if any.
pub fn script(data: &[u8]) -> Option<Script> {
    Script::arbitrary_take_rest(Unstructured::new(data)).ok()
}

/// Decodes `data` into a [`Script`] and [`play`]s it: the fuzz target's body.
/// Bytes that decode to no script are skipped. Returns the summary of the
/// match, if it finished.
pub fn run(data: &[u8]) -> Option<Summary> {
    play(&script(data)?)
}

/// Plays `script` on a fresh room, runs its timers out, and replays its log;
/// panics on the first broken invariant (see the module docs). Returns the
/// summary of the match, if it finished.
pub fn play(script: &Script) -> Option<Summary> {
    let mut h = Harness::new(script.spec.clone());
    h.check();
    for step in &script.steps {
        h.step(step);
    }
    h.run_out();
    h.check_replay();
    h.finished
}

/// A room on a simulated clock and what it showed so far.
struct Harness {
    room: Room,
    now: Millis,
    /// Every output, in order.
    outs: Vec<Output>,
    /// The `result` broadcast, once sent.
    result: Option<MatchResult>,
    /// The summary, once finished.
    finished: Option<Summary>,
    /// The log's length at the end.
    log_at_finish: usize,
    started: bool,
    phase: Phase,
    /// The highest score seen of each user.
    best: BTreeMap<String, u64>,
    /// Tournament: every duel spawned, in order.
    duels: Vec<(String, [PlayerRef; 2])>,
    /// Log entries already checked.
    checked_log: usize,
    members: Vec<String>,
    members_version: u64,
    /// The seats the host's directories would hold: taken by an accepted
    /// `Join`, released by `SeatFreed` and by `Finished`.
    seats: BTreeSet<String>,
}

impl Harness {
    fn new(spec: RoomSpec) -> Harness {
        let room = Room::new(spec);
        Harness {
            members_version: room.members_version(),
            room,
            now: 0,
            outs: Vec::new(),
            result: None,
            finished: None,
            log_at_finish: 0,
            started: false,
            phase: Phase::Waiting,
            best: BTreeMap::new(),
            duels: Vec::new(),
            checked_log: 0,
            members: Vec::new(),
            seats: BTreeSet::new(),
        }
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Wait(ms) => self.wait(*ms),
            Step::Late(ms) => {
                self.now += ms;
                self.timeout();
            }
            Step::RunOut => self.run_out(),
            Step::Failover(ms) => self.failover(*ms),
            Step::Input(input) => self.input(input.clone()),
            Step::AnswerOpen { user, right } => {
                let q = self.room.room_state(self.now).question.map_or(0, |q| q.q);
                let choice = self
                    .room
                    .spec()
                    .questions
                    .get(q as usize)
                    .map_or(0, |question| {
                        let n = question.choices.len() as u32;
                        if *right {
                            question.correct
                        } else {
                            (question.correct + 1) % n
                        }
                    });
                self.input(Input::Answer {
                    user: user.clone(),
                    q,
                    choice,
                });
            }
            Step::DuelOver {
                duel,
                winner,
                scores,
            } => {
                let input = match self.duels.get(duel % self.duels.len().max(1)) {
                    Some((room, [a, b])) => Input::DuelOver {
                        room: room.clone(),
                        winner: match winner {
                            0 => a.id.clone(),
                            1 => b.id.clone(),
                            _ => USERS[duel % USERS.len()].to_owned(),
                        },
                        scores: vec![(a.id.clone(), scores[0]), (b.id.clone(), scores[1])],
                    },
                    None => Input::DuelOver {
                        room: "r.0.0".into(),
                        winner: "u0".into(),
                        scores: vec![("u0".into(), scores[0])],
                    },
                };
                self.input(input);
            }
        }
    }

    /// Fires every timer due up to `ms` from now at its time.
    fn wait(&mut self, ms: Millis) {
        let target = self.now + ms;
        let mut calls = 0;
        while let Some(t) = self.room.poll_timeout().filter(|&t| t <= target) {
            self.now = self.now.max(t);
            self.timeout();
            calls += 1;
            assert!(calls < MAX_TIMER_CALLS, "timers keep coming");
        }
        self.now = target;
    }

    /// Fires timers at their time until the room asks for none.
    fn run_out(&mut self) {
        let mut calls = 0;
        while let Some(t) = self.room.poll_timeout() {
            self.now = self.now.max(t);
            self.timeout();
            calls += 1;
            assert!(
                calls < MAX_TIMER_CALLS,
                "the room never goes quiet without input"
            );
        }
    }

    /// The host dies `ms` from now, having fired nothing since; a room rebuilt
    /// from the spec and the log takes over and is resumed.
    fn failover(&mut self, ms: Millis) {
        self.now += ms;
        if self.finished.is_none() {
            // After the end the rebuilt room would lack the spectators who
            // came and went unlogged: there the old room stands in for it.
            let (adopter, _) = rebuild(self.room.spec().clone(), self.room.log());
            assert_eq!(
                format!("{adopter:?}"),
                format!("{:?}", self.room),
                "the room rebuilt from the log is not the room that died"
            );
            self.room = adopter;
        }
        self.input(Input::Resume);
    }

    /// What [`Input::Resume`] sent (`outs`, in order): `room_state` as of now,
    /// then the open question's frame with as much time left as it shows.
    fn check_resume(&self, outs: &[Output]) {
        let state = self.room.room_state(self.now);
        let question = state.question.clone();
        assert_eq!(
            outs.first(),
            Some(&Output::Broadcast(ServerMsg::RoomState(state))),
            "Resume does not send room_state first"
        );
        match question {
            Some(question) => {
                assert!(
                    question.ms >= RESUME_MIN_MS,
                    "Resume left {} ms to answer",
                    question.ms
                );
                assert_eq!(
                    outs.get(1..),
                    Some(&[Output::Broadcast(ServerMsg::Question(question))][..]),
                    "Resume does not re-send the open question"
                );
            }
            None => assert_eq!(outs.len(), 1, "Resume sent more than room_state"),
        }
    }

    fn input(&mut self, input: Input) {
        let resume = input == Input::Resume;
        if resume && self.finished.is_some() {
            // For the adopter's clients only: not logged, not replayed, so
            // not part of `outs`.
            let result = self.room.handle(self.now, input);
            assert_eq!(result, Ok(()), "Resume refused after the end");
            let outs: Vec<Output> = std::iter::from_fn(|| self.room.poll_output()).collect();
            self.check_resume(&outs);
            self.check();
            return;
        }
        let logged = self.room.log().len();
        let before = self.outs.len();
        let result = self.room.handle(self.now, input.clone());
        let sent = self.drain();
        if resume {
            assert_eq!(result, Ok(()), "Resume refused");
            self.check_resume(&self.outs[before..]);
        }
        let log = self.room.log();
        match result {
            Err(e) => {
                assert_eq!(sent, 0, "{input:?} was refused ({e:?}) but sent output");
                assert_eq!(
                    log.len(),
                    logged,
                    "{input:?} was refused ({e:?}) but logged"
                );
            }
            Ok(()) if log.len() == logged => {
                assert_eq!(sent, 0, "{input:?} was not logged but sent output");
            }
            Ok(()) => {
                assert_eq!(log.len(), logged + 1, "{input:?} logged more than once");
                let entry = LogEntry {
                    at: self.now,
                    input: Some(input),
                };
                assert_eq!(log[logged], entry, "logged something else");
                if let Some(Input::Join { user, .. }) = &log[logged].input {
                    assert!(self.seats.insert(user.clone()), "{user} took a second seat");
                }
            }
        }
        self.check();
    }

    fn timeout(&mut self) {
        let due = self.room.poll_timeout().is_some_and(|t| t <= self.now);
        let logged = self.room.log().len();
        self.room.handle_timeout(self.now);
        let sent = self.drain();
        let log = self.room.log();
        if due {
            assert_eq!(
                log.len(),
                logged + 1,
                "a due handle_timeout not logged once"
            );
            let entry = LogEntry {
                at: self.now,
                input: None,
            };
            assert_eq!(log[logged], entry, "logged something else");
        } else {
            assert_eq!(sent, 0, "handle_timeout with nothing due sent output");
            assert_eq!(log.len(), logged, "handle_timeout with nothing due logged");
        }
        if let Some(t) = self.room.poll_timeout() {
            assert!(
                t > self.now,
                "handle_timeout({}) left a timer due at {t}",
                self.now
            );
        }
        self.check();
    }

    /// Polls and checks every pending output; returns how many there were.
    /// (A `Join`'s seat is counted after its outputs, so a `Join` that fills
    /// the room and starts it frees nothing of its own here.)
    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(out) = self.room.poll_output() {
            self.output(&out);
            self.outs.push(out);
            n += 1;
        }
        n
    }

    fn output(&mut self, out: &Output) {
        assert!(self.finished.is_none(), "{out:?} after Finished");
        match out {
            Output::Started => {
                assert!(!self.started, "a second Started");
                self.started = true;
            }
            Output::Broadcast(ServerMsg::Result(result)) => {
                assert!(self.result.is_none(), "a second result broadcast");
                self.result = Some(result.clone());
            }
            Output::Finished(summary) => {
                let just_before = self.outs.last();
                let expected = Output::Broadcast(ServerMsg::Result(summary.result.clone()));
                assert_eq!(
                    just_before,
                    Some(&expected),
                    "Finished does not follow its result broadcast"
                );
                for p in &summary.players {
                    self.score(&p.id, p.score, "the summary");
                }
                self.finished = Some((**summary).clone());
                self.seats.clear();
                self.log_at_finish = self.room.log().len();
            }
            Output::SeatFreed { user } => {
                assert!(
                    self.seats.remove(user),
                    "SeatFreed for {user}, who holds no seat"
                );
            }
            Output::Broadcast(ServerMsg::Round(round)) => {
                for (user, score) in round.scores.iter().flatten() {
                    self.score(user, *score, "round.scores");
                }
            }
            Output::Send {
                to,
                msg: ServerMsg::Score(score),
            } => self.score(to, score.score, "a score frame"),
            Output::SpawnDuel { room, players, .. } => {
                assert_eq!(
                    self.room.mode(),
                    Mode::Tournament,
                    "a duel spawned by a non-tournament"
                );
                assert!(
                    self.duels.iter().all(|(r, _)| r != room),
                    "duel {room} spawned twice"
                );
                self.duels.push((room.clone(), players.clone()));
            }
            _ => {}
        }
    }

    /// `user`'s score is `score` now: never lower than before.
    fn score(&mut self, user: &str, score: u64, seen_in: &str) {
        let best = self.best.entry(user.to_owned()).or_insert(0);
        assert!(
            score >= *best,
            "{user}'s score fell from {best} to {score} in {seen_in}"
        );
        *best = score;
    }

    /// The invariants that hold between any two calls.
    fn check(&mut self) {
        let room = &self.room;
        let log = room.log();
        let mut last = self.checked_log.checked_sub(1).map(|i| log[i].at);
        for entry in &log[self.checked_log..] {
            assert!(entry.at <= self.now, "logged in the future: {entry:?}");
            if let Some(last) = last {
                assert!(
                    entry.at >= last,
                    "time went back in the log: {entry:?} after {last}"
                );
            }
            last = Some(entry.at);
        }
        self.checked_log = log.len();

        let phase = room.phase();
        let order = |p: Phase| match p {
            Phase::Waiting => 0,
            Phase::Playing => 1,
            Phase::Finished => 2,
        };
        assert!(
            order(phase) >= order(self.phase),
            "phase went back to {phase:?}"
        );
        self.phase = phase;
        assert_eq!(
            self.started,
            phase != Phase::Waiting,
            "Started vs {phase:?}"
        );
        assert_eq!(
            self.finished.is_some(),
            phase == Phase::Finished,
            "Finished vs {phase:?}"
        );
        if self.finished.is_some() {
            assert_eq!(room.poll_timeout(), None, "a timer after the end");
            assert_eq!(log.len(), self.log_at_finish, "logged after the end");
        }

        let state = room.room_state(self.now);
        assert_eq!(state.phase, phase);
        assert_eq!(state.player_count as usize, room.player_count());
        if let Some(boss) = state.boss {
            assert!(boss.hp <= boss.max_hp, "boss {boss:?}");
            let dealt: u64 = state.players.iter().map(|p| p.score).sum();
            assert_eq!(dealt, boss.max_hp - boss.hp, "raid damage does not add up");
        }
        if room.mode() == Mode::BattleRoyale && phase != Phase::Waiting {
            assert!(state.players.iter().any(|p| p.alive), "everyone is out");
        }
        for p in &state.players {
            self.score(&p.id, p.score, "room_state");
        }
        if phase == Phase::Waiting {
            let players: BTreeSet<&str> = state.players.iter().map(|p| p.id.as_str()).collect();
            let seats: BTreeSet<&str> = self.seats.iter().map(String::as_str).collect();
            assert_eq!(
                players, seats,
                "the lobby's players are not the seats taken"
            );
        } else {
            assert!(
                !self.room.is_empty_lobby(),
                "an empty lobby after the start"
            );
        }

        let room = &self.room;
        let members: Vec<String> = room.members().map(str::to_owned).collect();
        assert_eq!(members.len(), room.member_count(), "member_count is off");
        let unique: BTreeSet<&str> = members.iter().map(String::as_str).collect();
        assert_eq!(
            unique.len(),
            members.len(),
            "a member listed twice: {members:?}"
        );
        for m in &members {
            assert!(room.is_member(m), "{m} listed but not a member");
        }
        if members != self.members {
            assert_ne!(
                room.members_version(),
                self.members_version,
                "members changed from {:?} to {members:?} but not their version",
                self.members
            );
        }
        self.members = members;
        self.members_version = room.members_version();
    }

    /// A fresh room fed the log repeats everything: outputs, log, state, summary.
    fn check_replay(&self) {
        let spec = self.room.spec().clone();
        let log = self.room.log();
        assert_eq!(
            replay(spec.clone(), log),
            self.finished,
            "replay() does not reproduce the summary"
        );
        let (again, outs) = rebuild(spec, log);
        if let Some(i) =
            (0..outs.len().max(self.outs.len())).find(|&i| outs.get(i) != self.outs.get(i))
        {
            panic!(
                "replay output {i} differs: {:?} on replay, {:?} live",
                outs.get(i),
                self.outs.get(i)
            );
        }
        assert_eq!(again.log(), log, "replay logged differently");
        let mut live = self.room.room_state(self.now);
        let mut replayed = again.room_state(self.now);
        if self.finished.is_some() {
            // Spectators coming and going after the end are not logged.
            live.spectators = 0;
            replayed.spectators = 0;
        }
        assert_eq!(replayed, live, "replay ends in another state");
    }
}

/// A fresh room made from `spec` and fed `log`, as a replay or the host that
/// adopts a room after a failover does it, and everything it output on the way.
/// Every logged input must be accepted again.
fn rebuild(spec: RoomSpec, log: &[LogEntry]) -> (Room, Vec<Output>) {
    let mut room = Room::new(spec);
    let mut outs = Vec::new();
    for entry in log {
        match &entry.input {
            Some(input) => {
                if let Err(e) = room.handle(entry.at, input.clone()) {
                    panic!("logged {entry:?} refused on replay: {e:?}");
                }
            }
            None => room.handle_timeout(entry.at),
        }
        outs.extend(std::iter::from_fn(|| room.poll_output()));
    }
    (room, outs)
}
