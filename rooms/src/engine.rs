//! The match engine: one state machine for every mode. This file holds the
//! [`Room`] itself — its public API, input dispatch, the log, the lobby, seats
//! taken and given up, and the timers. The question cycle ([`round`]), the mode
//! rules ([`duel`], [`royale`], [`raid`], [`tournament`]), the orderings
//! ([`ranking`]), the end of a match ([`standings`]), the spectators and
//! reconnect windows ([`presence`]) and a failover's resumption ([`resume`])
//! live in submodules. Dependencies between the
//! submodules run one way: [`ranking`] and [`roster`] are leaves, the mode rules
//! build on them, and [`standings`] on the mode rules.

mod duel;
mod presence;
mod raid;
mod ranking;
mod resume;
mod roster;
mod round;
mod royale;
mod standings;
mod tournament;

use std::collections::VecDeque;

use juno_protocol::limits::{FULL_LIST_MAX_PLAYERS, TOP_LEADERS};
use juno_protocol::{Mode, Phase, PlayerState, RoomState, ServerMsg};
use serde::{Deserialize, Serialize};

use crate::{Input, LogEntry, Millis, Output, RoomError, RoomSpec, Summary};
use presence::{Audience, Away};
use raid::Raid;
pub use raid::BOSS_FANOUT_PER_SEC;
pub use resume::RESUME_MIN_MS;
use roster::Roster;
use tournament::Bracket;

/// At most one lobby `room_state` broadcast per this many ms, so a big lobby
/// filling up does not cost O(N²) frames.
pub const LOBBY_STATE_MS: Millis = 250;

/// One live room. Plain data: serialize it to snapshot the match (outputs not
/// yet polled are not part of the snapshot).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Room {
    spec: RoomSpec,
    /// Every accepted call, for the record and [`replay`].
    log: Vec<LogEntry>,
    phase: Phase,
    roster: Roster,
    /// The question cycle's next step.
    clock: Clock,
    /// Questions opened so far (= the next question number).
    asked: u32,
    started_at: Option<Millis>,
    finished_at: Option<Millis>,
    lobby: Lobby,
    /// What the room's mode keeps beyond the roster and the question cycle.
    mode: ModeState,
    /// The spectators and the membership version.
    #[serde(default)]
    audience: Audience,
    /// Reconnect windows of seated players whose connection dropped.
    #[serde(default)]
    away: Away,
    /// What the host has yet to poll.
    #[serde(skip)]
    out: VecDeque<Output>,
}

/// What one mode keeps beyond the roster and the question cycle. One enum, so
/// a room can never hold a boss and a bracket at once, nor one mode's state
/// while playing another mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum ModeState {
    /// Nothing beyond the roster.
    Duel,
    /// Nothing beyond the roster (eliminations live on the players).
    Royale,
    /// The boss, from the start on (its hit points depend on who started).
    Raid(Option<Raid>),
    /// The bracket: no rounds in the lobby, seeded at the start.
    Tournament(Bracket),
}

impl ModeState {
    fn new(mode: Mode) -> ModeState {
        match mode {
            Mode::Duel => ModeState::Duel,
            Mode::BattleRoyale => ModeState::Royale,
            Mode::Raid => ModeState::Raid(None),
            Mode::Tournament => ModeState::Tournament(Bracket::default()),
        }
    }

    /// The boss, in a raid that started.
    fn raid(&self) -> Option<&Raid> {
        match self {
            ModeState::Raid(raid) => raid.as_ref(),
            _ => None,
        }
    }

    fn raid_mut(&mut self) -> Option<&mut Raid> {
        match self {
            ModeState::Raid(raid) => raid.as_mut(),
            _ => None,
        }
    }
}

/// Where the question cycle stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Clock {
    /// Nothing scheduled (waiting, tournament, finished).
    Idle,
    /// The next question opens at this time (countdown or between rounds).
    OpensAt(Millis),
    /// A question is open.
    Open(OpenQuestion),
}

/// The open question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct OpenQuestion {
    q: u32,
    opened_at: Millis,
    deadline: Millis,
    /// Players who can answer and have not yet: the round closes early at 0.
    pending: u32,
}

/// What drives [`Room::poll_timeout`], compared before and after a step of
/// [`Room::handle_timeout`] so a due timer that fails to advance cannot spin.
/// `asked` is part of it: with no pause between rounds and nobody left to
/// answer, a question opens and closes at one instant and leaves the clock
/// looking unchanged.
#[derive(PartialEq)]
struct Timers {
    clock: Clock,
    lobby: Option<Millis>,
    boss: Option<Millis>,
    asked: u32,
    /// The earliest reconnect window and how many are open.
    windows: (Option<Millis>, usize),
}

/// Lobby `room_state` coalescing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Lobby {
    last_sent: Option<Millis>,
    /// A held-back lobby broadcast is due then.
    due: Option<Millis>,
}

impl Room {
    /// A room waiting for players.
    pub fn new(spec: RoomSpec) -> Room {
        Room {
            mode: ModeState::new(spec.mode),
            spec,
            log: Vec::new(),
            phase: Phase::Waiting,
            roster: Roster::default(),
            clock: Clock::Idle,
            asked: 0,
            started_at: None,
            finished_at: None,
            lobby: Lobby::default(),
            audience: Audience::default(),
            away: Away::default(),
            out: VecDeque::new(),
        }
    }

    /// What the room was made from.
    pub fn spec(&self) -> &RoomSpec {
        &self.spec
    }

    /// The room's id.
    pub fn id(&self) -> &str {
        &self.spec.room
    }

    /// The room's mode.
    pub fn mode(&self) -> Mode {
        self.spec.mode
    }

    /// Every accepted call so far, for the match record and [`replay`].
    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    /// Feeds one entry of a log this room's spec recorded (see [`replay`]): a
    /// rebuilt room (an adopter's, a replay's) goes through the same calls.
    pub fn replay_entry(&mut self, entry: &LogEntry) {
        match &entry.input {
            // A logged input was accepted when recorded, and the room is
            // deterministic, so it is accepted again; an error would mean a
            // log from another spec and is ignored like the original would be.
            Some(input) => {
                let _ = self.handle(entry.at, input.clone());
            }
            None => self.handle_timeout(entry.at),
        }
    }

    /// Feeds one input at `now`. Accepted inputs that change the room (or,
    /// like [`Input::Resume`], send frames) are logged, up to the end of the match: the log is the match's record, so
    /// what happens after the end (spectators coming and going, players
    /// leaving the finished room) changes who is a member but is not logged.
    pub fn handle(&mut self, now: Millis, input: Input) -> Result<(), RoomError> {
        if self.apply(now, &input)? {
            self.log.push(LogEntry {
                at: now,
                input: Some(input),
            });
        }
        Ok(())
    }

    /// Runs whatever is due at `now` — the question cycle, a held-back lobby
    /// `room_state` or `boss` frame, reconnect windows running out — (call at
    /// or after [`Room::poll_timeout`]; a late call acts at `now`). Logged when
    /// it did something.
    pub fn handle_timeout(&mut self, now: Millis) {
        let mut acted = false;
        while self.poll_timeout().is_some_and(|due| due <= now) {
            acted = true;
            let before = self.timers();
            if self.lobby.due.is_some_and(|t| t <= now) {
                self.send_lobby(now);
            }
            if self
                .mode
                .raid()
                .and_then(Raid::due)
                .is_some_and(|t| t <= now)
            {
                self.flush_boss(now);
            }
            match self.clock {
                Clock::OpensAt(t) if t <= now => self.open_question(now),
                Clock::Open(open) if open.deadline <= now => self.close_round(now),
                _ => {}
            }
            self.expire_windows(now);
            // Every due timer is consumed above; never spin if that ever fails.
            if self.timers() == before {
                debug_assert!(false, "a due timer did not advance");
                break;
            }
        }
        if acted {
            self.log.push(LogEntry {
                at: now,
                input: None,
            });
        }
    }

    /// Everything a due timer changes, to see that a step of
    /// [`Room::handle_timeout`] advanced.
    fn timers(&self) -> Timers {
        Timers {
            clock: self.clock,
            lobby: self.lobby.due,
            boss: self.mode.raid().and_then(Raid::due),
            asked: self.asked,
            windows: (self.away.next(), self.away.len()),
        }
    }

    /// Sends the raid's pending `boss` frame, if it has one (a raid only).
    fn flush_boss(&mut self, now: Millis) {
        if let Some(frame) = self
            .mode
            .raid_mut()
            .and_then(|raid| raid.flush(now, &self.spec.room))
        {
            self.out
                .push_back(Output::Broadcast(ServerMsg::Boss(frame)));
        }
    }

    /// The next thing to send, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Room::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let clock = match self.clock {
            Clock::Idle => None,
            Clock::OpensAt(t) => Some(t),
            Clock::Open(open) => Some(open.deadline),
        };
        [
            clock,
            self.lobby.due,
            self.mode.raid().and_then(Raid::due),
            self.away.next(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Waiting, playing or finished.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether `user` is in the room as a player: seated and not gone — still
    /// receiving its frames, eliminated and abandoned players included, players
    /// who left not. A `join` from them changes nothing.
    pub fn is_player(&self, user: &str) -> bool {
        self.roster.get(user).is_some_and(|p| !p.gone)
    }

    /// Whether `user` watches the room without a seat.
    pub fn is_spectator(&self, user: &str) -> bool {
        self.audience.is_spectator(user)
    }

    /// Whether `user` receives the room's broadcasts (a player or a spectator).
    pub fn is_member(&self, user: &str) -> bool {
        self.is_player(user) || self.is_spectator(user)
    }

    /// Everyone who receives the room's broadcasts: the players still in the
    /// room (eliminated and abandoned ones included, players who left not) in
    /// seat order, then the spectators by id. Each user appears once.
    pub fn members(&self) -> impl Iterator<Item = &str> + '_ {
        let players = self.roster.all().iter().filter(|p| !p.gone);
        let spectators = self.audience.spectators().iter();
        players
            .map(|p| p.id.as_str())
            .chain(spectators.map(String::as_str))
    }

    /// How many [`Room::members`] there are, in O(1). A large audience gets
    /// fewer `boss` frames (still at most 10 a second): see [`BOSS_FANOUT_PER_SEC`].
    pub fn member_count(&self) -> usize {
        self.roster.present() + self.audience.len()
    }

    /// Bumped whenever [`Room::members`] changes, so the host can cache its
    /// fan-out list and rebuild it only then. (A member's connection moving is
    /// the host's own affair and does not bump it.)
    pub fn members_version(&self) -> u64 {
        self.audience.version()
    }

    /// A lobby nobody is in any more — no player seated, nobody watching — is
    /// over: the host closes it. Never true once the match started.
    pub fn is_empty_lobby(&self) -> bool {
        self.phase == Phase::Waiting && self.roster.len() == 0 && self.audience.len() == 0
    }

    /// Seats taken: while waiting, the lobby; from the start, everyone who
    /// started (including players who left since).
    pub fn player_count(&self) -> usize {
        self.roster.len()
    }

    /// The `room_state` snapshot at `now`.
    pub fn room_state(&self, now: Millis) -> RoomState {
        let players = self.roster.all();
        let state = |p: &roster::Player| PlayerState {
            id: p.id.clone(),
            name: p.name.clone(),
            score: p.score,
            alive: p.alive(),
        };
        let listed = if players.len() <= FULL_LIST_MAX_PLAYERS {
            players.iter().map(state).collect()
        } else {
            let mut order: Vec<&roster::Player> = players.iter().collect();
            let by_score = |a: &&roster::Player, b: &&roster::Player| {
                b.score.cmp(&a.score).then_with(|| a.id.cmp(&b.id))
            };
            order.select_nth_unstable_by(TOP_LEADERS - 1, by_score);
            order.truncate(TOP_LEADERS);
            order.sort_unstable_by(by_score);
            order.into_iter().map(state).collect()
        };
        let question = match self.clock {
            Clock::Open(open) => self.question_msg(open.q, open.deadline.saturating_sub(now)),
            _ => None,
        };
        RoomState {
            room: self.spec.room.clone(),
            mode: self.spec.mode,
            phase: self.phase,
            players: listed,
            player_count: players.len() as u32,
            spectators: u32::try_from(self.audience.len()).unwrap_or(u32::MAX),
            question,
            boss: self.mode.raid().map(Raid::hp),
            bracket: matches!(self.mode, ModeState::Tournament(_)).then(|| self.pairings()),
        }
    }

    /// Applies `input`; `Ok(true)` when the room changed or sent frames (and the
    /// input is logged).
    fn apply(&mut self, now: Millis, input: &Input) -> Result<bool, RoomError> {
        if self.phase == Phase::Finished {
            return self.after_the_end(now, input);
        }
        match input {
            Input::Join { user, name } => self.join(now, user, name),
            Input::Leave { user } => self.leave(now, user),
            Input::Forfeit { user } => self.forfeit(now, user),
            Input::Start { user } => self.start_by(now, user),
            Input::Answer { user, q, choice } => self.answer(now, user, *q, *choice),
            Input::Spectate { user } => Ok(self.spectate(user)),
            Input::Unspectate { user } => Ok(self.unspectate(user)),
            Input::Disconnect { user } => self.disconnect(now, user),
            Input::Reconnect { user } => Ok(self.reconnect(user)),
            Input::Rating { user, rating } => self.rate(user, *rating),
            Input::Abandon { user } => self.abandon(now, user),
            Input::DuelOver {
                room,
                winner,
                scores,
            } => self.duel_over(now, room, winner, scores),
            // Logged although it may change nothing: it sends frames, which a
            // replay must send again.
            Input::Resume => {
                self.resume(now);
                Ok(true)
            }
        }
    }

    /// An input once the match is over: only membership still changes (never
    /// logged: the record ended with the match). Every seat was freed by
    /// [`Output::Finished`], so nothing here frees one.
    fn after_the_end(&mut self, now: Millis, input: &Input) -> Result<bool, RoomError> {
        match input {
            Input::Spectate { user } => {
                self.spectate(user);
            }
            Input::Unspectate { user } => {
                self.unspectate(user);
            }
            Input::Leave { user } => {
                if !self.unspectate(user) {
                    let seat = self.roster.position(user).ok_or(RoomError::NotInRoom)?;
                    if self.roster.depart(seat) {
                        self.audience.changed();
                    }
                }
            }
            Input::Join { user, .. } if self.is_player(user) => {}
            // Clients that reconnected to the adopter of a finished room see how it ended.
            Input::Resume => {
                self.resume(now);
            }
            // Nobody holds a seat or a window any more, and nothing is seeded.
            Input::Disconnect { .. } | Input::Reconnect { .. } | Input::Rating { .. } => {}
            // Every question is closed once the match is over.
            Input::Answer { .. } => return Err(RoomError::TooLate),
            _ => return Err(RoomError::NotAllowed("the match is over")),
        }
        Ok(false)
    }

    fn min_players(&self) -> usize {
        match self.spec.mode {
            Mode::Raid => 1,
            Mode::Duel | Mode::BattleRoyale | Mode::Tournament => 2,
        }
    }

    fn join(&mut self, now: Millis, user: &str, name: &str) -> Result<bool, RoomError> {
        if self.is_player(user) {
            return Ok(false);
        }
        if self.phase != Phase::Waiting {
            return Err(RoomError::NotAllowed("the match already started"));
        }
        if self.roster.len() >= self.spec.settings.max_players as usize {
            return Err(RoomError::RoomFull);
        }
        // A spectator taking a seat stops spectating (before the lobby
        // broadcast below counts the spectators).
        self.audience.unwatch(user);
        self.roster.seat(user, name);
        self.audience.changed();
        if self.roster.len() >= self.spec.settings.max_players as usize
            && self.roster.len() >= self.min_players()
        {
            self.start(now);
        } else {
            self.lobby_changed(now);
        }
        Ok(true)
    }

    /// [`Input::Leave`]: a spectator stops watching; a player gives up the seat
    /// (before play) or forfeits it and leaves the room (during play).
    fn leave(&mut self, now: Millis, user: &str) -> Result<bool, RoomError> {
        if self.unspectate(user) {
            return Ok(true);
        }
        if self.phase == Phase::Waiting {
            return self.unseat(now, user);
        }
        let seat = self.roster.position(user).ok_or(RoomError::NotInRoom)?;
        let player = &self.roster.all()[seat];
        let (forfeited, held_seat) = (player.left, !player.left && !player.abandoned);
        if !self.roster.depart(seat) {
            return Ok(false);
        }
        self.audience.changed();
        if forfeited {
            // Out of the match already (a forfeit): now out of the room too.
            return Ok(true);
        }
        self.away.close(user);
        if held_seat {
            self.seat_freed(user);
        }
        self.quit(now, seat)
    }

    /// [`Input::Forfeit`]: the player loses as by leaving during play but stays
    /// in the room. Their seat is not this room's to free (a tournament's duel:
    /// the seat is the tournament's), so no [`Output::SeatFreed`].
    fn forfeit(&mut self, now: Millis, user: &str) -> Result<bool, RoomError> {
        if self.phase != Phase::Playing {
            return Err(RoomError::NotAllowed("nothing to forfeit before the start"));
        }
        let seat = self.roster.position(user).ok_or(RoomError::NotInRoom)?;
        if self.roster.all()[seat].left {
            return Ok(false);
        }
        self.away.close(user);
        self.quit(now, seat)
    }

    /// The player in `seat` quits the match being played: the mode's forfeit
    /// rules (WIRE.md §3). They answer nothing more.
    fn quit(&mut self, now: Millis, seat: usize) -> Result<bool, RoomError> {
        match self.spec.mode {
            Mode::Tournament => {
                let user = self.roster.all()[seat].id.clone();
                return self.tournament_leave(now, &user);
            }
            Mode::Duel => {
                self.roster.all_mut()[seat].left = true;
                self.finish(now);
                return Ok(true);
            }
            Mode::BattleRoyale | Mode::Raid => {}
        }
        self.withdraw(seat);
        let out_in = match self.clock {
            Clock::Open(open) => open.q,
            _ => self.asked,
        };
        let br = self.spec.mode == Mode::BattleRoyale;
        let player = &mut self.roster.all_mut()[seat];
        player.left = true;
        if br && player.eliminated_in.is_none() {
            player.eliminated_in = Some(out_in);
        }
        if br && self.alive_count() <= 1 {
            self.finish(now);
        } else {
            self.close_if_done(now);
        }
        Ok(true)
    }

    /// Before play: `user` gives up the seat (leaving, or the reconnect window
    /// ran out).
    fn unseat(&mut self, now: Millis, user: &str) -> Result<bool, RoomError> {
        if !self.roster.unseat(user) {
            return Err(RoomError::NotInRoom);
        }
        self.away.close(user);
        self.audience.changed();
        self.seat_freed(user);
        self.lobby_changed(now);
        Ok(true)
    }

    /// The player's reconnect window ran out ([`Input::Abandon`] in logs from
    /// before the room kept the windows). While waiting this frees the seat (a
    /// gone player must not hold a lobby seat or start a duel); during play the
    /// player answers nothing more and rounds stop waiting for them; they stay
    /// in the room and the standings.
    fn abandon(&mut self, now: Millis, user: &str) -> Result<bool, RoomError> {
        if self.phase == Phase::Waiting {
            return self.unseat(now, user);
        }
        let seat = self.roster.position(user).ok_or(RoomError::NotInRoom)?;
        let player = &self.roster.all()[seat];
        if player.abandoned || player.left {
            return Ok(false);
        }
        self.away.close(user);
        self.seat_freed(user);
        self.withdraw(seat);
        self.roster.all_mut()[seat].abandoned = true;
        self.close_if_done(now);
        Ok(true)
    }

    /// Tells the host `user` no longer holds a seat here. Pushed before the
    /// consequences (a duel's `result`, …) so those stay last.
    fn seat_freed(&mut self, user: &str) {
        self.out.push_back(Output::SeatFreed {
            user: user.to_owned(),
        });
    }

    fn start_by(&mut self, now: Millis, user: &str) -> Result<bool, RoomError> {
        if self.phase != Phase::Waiting {
            return Err(RoomError::NotAllowed("the match already started"));
        }
        if self.spec.creator.as_deref() != Some(user) {
            return Err(RoomError::NotAllowed(
                "only the room's creator can start it",
            ));
        }
        if self.roster.len() < self.min_players() {
            return Err(RoomError::NotAllowed("not enough players to start"));
        }
        self.start(now);
        Ok(true)
    }

    /// Waiting → playing at `now`.
    fn start(&mut self, now: Millis) {
        self.phase = Phase::Playing;
        self.started_at = Some(now);
        self.lobby.due = None;
        let spawns = match self.spec.mode {
            Mode::Tournament => self.build_bracket(),
            Mode::Raid => {
                let players = self.roster.len() as u64;
                let max_hp = self.spec.settings.boss_hp.unwrap_or(1000 * players);
                self.mode = ModeState::Raid(Some(Raid::new(max_hp.max(1))));
                Vec::new()
            }
            Mode::Duel | Mode::BattleRoyale => Vec::new(),
        };
        self.out.push_back(Output::Started);
        let state = self.room_state(now);
        self.out
            .push_back(Output::Broadcast(ServerMsg::RoomState(state)));
        if self.spec.mode == Mode::Tournament {
            let msg = self.bracket_msg();
            self.out.push_back(Output::Broadcast(msg));
            self.out.extend(spawns);
        } else {
            self.clock = Clock::OpensAt(now + self.spec.settings.countdown_ms);
        }
    }

    /// The lobby changed: broadcast it now, or once the coalescing window ends.
    fn lobby_changed(&mut self, now: Millis) {
        if self.lobby.due.is_some() {
            return;
        }
        match self.lobby.last_sent {
            Some(t) if now < t + LOBBY_STATE_MS => self.lobby.due = Some(t + LOBBY_STATE_MS),
            _ => self.send_lobby(now),
        }
    }

    fn send_lobby(&mut self, now: Millis) {
        self.lobby.due = None;
        self.lobby.last_sent = Some(now);
        self.send_state(now);
    }

    /// Broadcasts `room_state` at `now` (lobby coalescing aside).
    fn send_state(&mut self, now: Millis) {
        let state = self.room_state(now);
        self.out
            .push_back(Output::Broadcast(ServerMsg::RoomState(state)));
    }
}

/// Feeds `log` into a fresh room made from `spec` and returns the summary it ends with.
pub fn replay(spec: RoomSpec, log: &[LogEntry]) -> Option<Summary> {
    let mut room = Room::new(spec);
    let mut summary = None;
    for entry in log {
        room.replay_entry(entry);
        while let Some(out) = room.poll_output() {
            if let Output::Finished(done) = out {
                summary = Some(*done);
            }
        }
    }
    summary
}
