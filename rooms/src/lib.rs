//! JunoSixteen's game rules as sans-IO state machines (the quinn-proto idea).
//!
//! A [`Room`] is fed inputs and the time — `handle(now, input)`,
//! `handle_timeout(now)` — and yields what to send — `poll_output()` — and when
//! it next wants the clock — `poll_timeout()`. It owns no tokio, reads no clock
//! and draws no randomness, so every rule is a plain `#[test]` on a simulated
//! clock, and a match replays exactly from its [`LogEntry`] log ([`replay`]).
//! Time is [`Millis`] on the room's own timeline (0 = the room's creation).
//! A room's state is plain serde data, so a node can snapshot it and another adopt it.

#![warn(missing_docs)]

mod engine;
mod output;
mod settings;

pub use engine::{replay, Room, BOSS_FANOUT_PER_SEC};
pub use output::{LogEntry, Output, PlayerSummary, RoomError, Summary};
pub use settings::{Pace, RoomSpec, Settings};

/// Milliseconds on a room's own timeline.
pub type Millis = u64;

/// Points for a correct answer: 100 + ⌊50 × time left / question time⌋ (WIRE.md §4).
pub fn points(question_ms: u64, elapsed_ms: u64) -> u64 {
    let left = question_ms.saturating_sub(elapsed_ms);
    100 + (50 * left) / question_ms.max(1)
}

/// What a player or the host asks of a room. Every accepted input is logged with its time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    /// Take a seat (while waiting; `room_full` / `not_allowed` otherwise).
    Join {
        /// The user taking the seat.
        user: String,
        /// Their display name.
        name: String,
    },
    /// Give up the seat: before play it frees the seat; during play it forfeits (WIRE.md §3).
    Leave {
        /// The leaving user.
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
    /// The player's reconnect window ran out: from now on they answer nothing and
    /// rounds no longer wait for them. Their score stays in the standings.
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
}

impl Input {
    /// The user the input comes from; `None` for inputs from the host itself ([`Input::DuelOver`]).
    pub fn user(&self) -> Option<&str> {
        match self {
            Input::Join { user, .. }
            | Input::Leave { user }
            | Input::Start { user }
            | Input::Answer { user, .. }
            | Input::Abandon { user } => Some(user),
            Input::DuelOver { .. } => None,
        }
    }
}
