//! JunoSixteen's game rules as sans-IO state machines (the quinn-proto idea).
//!
//! A [`Room`] is fed inputs and the time — `handle(now, input)`,
//! `handle_timeout(now)` — and yields what to send — `poll_output()` — and when
//! it next wants the clock — `poll_timeout()`. It owns no tokio, reads no clock
//! and draws no randomness, so every rule is a plain `#[test]` on a simulated
//! clock, and a match replays exactly from its [`LogEntry`] log ([`replay`]).
//! Time is [`Millis`] on the room's own timeline (0 = the room's creation).
//! A room's state is plain serde data, so a node can snapshot it and another adopt it.
//!
//! The room also knows who is in it — seated players, spectators, and the
//! reconnect windows of players whose connection dropped — so all of that is
//! in the log too. The host fans broadcasts out to [`Room::members`] (cached by
//! [`Room::members_version`]), releases seats on [`Output::SeatFreed`], and
//! closes a lobby once [`Room::is_empty_lobby`].
//!
//! Failover: when the node hosting a room dies, another node adopts it by
//! feeding the room's spec and log to a fresh [`Room::new`] (the rebuilt room
//! is the one that died, up to its last log entry). Time on the room's
//! timeline stands still across the gap: the adopter goes on at the room time
//! the old host died (at or after the last log entry), so countdowns, boss
//! frames, lobby broadcasts and reconnect windows keep the time they had left.
//! It then feeds [`Input::Resume`], which re-sends `room_state` and the open
//! question (whose deadline it moves to at least [`RESUME_MIN_MS`] away, so
//! players whose connection the move cut get a moment to answer), and calls
//! [`Room::handle_timeout`] as usual for whatever was already due. `Resume` is
//! logged like any input, so a second failover replays it exactly.

#![warn(missing_docs)]

mod engine;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod output;
mod settings;

pub use engine::{replay, Room, BOSS_FANOUT_PER_SEC, RESUME_MIN_MS};
pub use output::{LogEntry, Output, PlayerSummary, RoomError, Summary};
pub use settings::{Pace, RoomSpec, Settings, DEFAULT_RECONNECT_MS};

/// Milliseconds on a room's own timeline.
pub type Millis = u64;

/// Points for a correct answer: 100 + ⌊50 × time left / question time⌋ (WIRE.md §4).
pub fn points(question_ms: u64, elapsed_ms: u64) -> u64 {
    let left = question_ms.saturating_sub(elapsed_ms);
    100 + (50 * left) / question_ms.max(1)
}

/// What a player or the host asks of a room. Every accepted input that changes
/// the room before the end of the match is logged with its time, so a room is
/// rebuilt from its log — seats, spectators, reconnect windows and seeding
/// ratings included. (Not `Eq`: [`Input::Rating`] carries an `f64`.)
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    /// Take a seat (while waiting; `room_full` / `not_allowed` otherwise). A
    /// spectator who takes a seat stops spectating; a player already in the room
    /// changes nothing, in any phase.
    Join {
        /// The user taking the seat.
        user: String,
        /// Their display name.
        name: String,
    },
    /// Leave the room: a spectator stops watching; a player's seat is freed
    /// before play, and forfeited during play (WIRE.md §3). Either way a player
    /// stops receiving the room's frames and [`Output::SeatFreed`] follows. A
    /// player who already left gets `Ok` and nothing changes; the host answers
    /// `not_in_room` to users who are not [`Room::is_member`] before asking.
    Leave {
        /// The leaving user.
        user: String,
    },
    /// Tournament duel: the host reports that `user` left the parent tournament
    /// (after [`Output::Forfeit`]). They lose this duel as by [`Input::Leave`]
    /// during play, but stay in the room until it ends (they see its `result`),
    /// and no [`Output::SeatFreed`] follows: their seat is the tournament's.
    /// Only while playing.
    Forfeit {
        /// The entrant who left the tournament.
        user: String,
    },
    /// The creator starts the match early.
    Start {
        /// Must be the room's creator.
        user: String,
    },
    /// An answer to question number `q`.
    Answer {
        /// The answering player.
        user: String,
        /// The question's number within the match.
        q: u32,
        /// Index of the chosen choice.
        choice: u32,
    },
    /// Watch the room without a seat: receive its broadcasts and count in
    /// `room_state.spectators`. A player still in the room changes nothing.
    /// Accepted in every phase (logged only before the end).
    Spectate {
        /// The watching user.
        user: String,
    },
    /// Stop watching (e.g. the spectator's connection ended). A user who is not
    /// spectating changes nothing.
    Unspectate {
        /// The user who stops watching.
        user: String,
    },
    /// The host reports that a seated player's connection dropped: their
    /// reconnect window opens (`settings.reconnect_ms`; a second `Disconnect`
    /// restarts it). If it runs out — see [`Room::poll_timeout`] — the room
    /// frees the seat while waiting (as [`Input::Leave`] would) or abandons the
    /// player during play (as [`Input::Abandon`] did), and emits
    /// [`Output::SeatFreed`]. Ignored for members without a seat to keep
    /// (spectators, players who forfeited or were abandoned) and once the match
    /// is over; `not_in_room` for anybody else.
    Disconnect {
        /// The player whose connection dropped.
        user: String,
    },
    /// The host reports that the player is back: their reconnect window closes.
    /// Without an open window, nothing changes.
    Reconnect {
        /// The player who reconnected.
        user: String,
    },
    /// Tournament lobby: the host reports a seated entrant's Glicko-2 rating,
    /// which seeds the bracket at the start (highest first; equal ratings by
    /// user id; an entrant without one seeds at 1500, a newcomer's rating). A
    /// later `Rating` for the same entrant replaces it; leaving the lobby
    /// forgets it (a new join is a new seat). Ignored (not logged)
    /// outside a tournament's lobby, where nothing is seeded; `not_in_room` for
    /// a user without a seat; `invalid` unless finite.
    Rating {
        /// The seated entrant.
        user: String,
        /// Their rating on the Glicko scale.
        rating: f64,
    },
    /// The player's reconnect window ran out: from now on they answer nothing and
    /// rounds no longer wait for them. Their score stays in the standings, and
    /// they still receive the room's frames. Hosts no longer send it — the room
    /// keeps the windows itself ([`Input::Disconnect`]) — but logs recorded
    /// before that still hold it, so it stays accepted and replays as it did.
    Abandon {
        /// The player whose window ran out.
        user: String,
    },
    /// Tournament only: the host reports that the child duel `room` (spawned by
    /// [`Output::SpawnDuel`]) finished with `winner`; `scores` are the duel's point
    /// totals per user and add to the entrants' tournament scores.
    DuelOver {
        /// The child duel's room id, as given by [`Output::SpawnDuel`].
        room: String,
        /// Its winner (a tournament duel never ends drawn).
        winner: String,
        /// Each duel player's point total.
        scores: Vec<(String, u64)>,
    },
    /// The host adopted the room after a failover: it rebuilt it from its spec
    /// and log on a fresh [`Room::new`] and goes on at the room time the old
    /// host died (at or after the last log entry: the room's timeline stands
    /// still across the gap). The room then
    ///
    /// - gives an open question at least [`RESUME_MIN_MS`] more: a deadline
    ///   sooner than `now + RESUME_MIN_MS` (or already past) moves there.
    ///   Answers still score by the time since the question opened
    ///   ([`points`], 100 at the least past the question's time);
    /// - broadcasts `room_state` (its `question.ms` counting to the new
    ///   deadline) and then, while a question is open, its `question` frame
    ///   again with `ms` left, so clients that reconnected to the adopter
    ///   see where the match stands.
    ///
    /// Every other timer — a countdown or the pause before the next question,
    /// a held-back `boss` frame or lobby `room_state`, reconnect windows —
    /// keeps its time, and one already due does not fire here: the host calls
    /// [`Room::handle_timeout`] after it, as always. Accepted in every phase:
    /// in the lobby and in a tournament (whose `room_state` carries the
    /// bracket; its duels are rooms of their own, each resumed by its own
    /// `Resume`) it only broadcasts `room_state`. Logged up to the end of the
    /// match, so a second failover replays it exactly; in a finished room it
    /// broadcasts `room_state` and is not logged.
    Resume,
}

impl Input {
    /// The user the input is about: who acts, or whom the host reports on;
    /// `None` for [`Input::DuelOver`], which is about a child room, and for
    /// [`Input::Resume`], which is about the whole room.
    pub fn user(&self) -> Option<&str> {
        match self {
            Input::Join { user, .. }
            | Input::Leave { user }
            | Input::Forfeit { user }
            | Input::Start { user }
            | Input::Answer { user, .. }
            | Input::Spectate { user }
            | Input::Unspectate { user }
            | Input::Disconnect { user }
            | Input::Reconnect { user }
            | Input::Rating { user, .. }
            | Input::Abandon { user } => Some(user),
            Input::DuelOver { .. } | Input::Resume => None,
        }
    }
}
