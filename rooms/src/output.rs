//! What a room hands back to its host: frames to send, the match summary, errors.

use juno_protocol::{ErrorCode, MatchResult, PlayerRef, ServerMsg};
use serde::{Deserialize, Serialize};

use crate::{Input, Millis};

/// Something the host must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send to every player and spectator of the room (encode once, share the bytes).
    Broadcast(ServerMsg),
    /// Send to one user (e.g. `score`).
    Send {
        /// The recipient's user id.
        to: String,
        /// The frame to send them.
        msg: ServerMsg,
    },
    /// The match began (phase went from `waiting` to `playing`).
    Started,
    /// `user` no longer holds a seat in this room: they left it, or their
    /// reconnect window ran out (in the lobby they lose the seat, during play
    /// they are abandoned). Release the seat in the directories. It comes
    /// before the consequences (a lobby `room_state`, a duel's `result`). Not
    /// sent for [`crate::Input::Forfeit`] (the seat is the tournament's), nor at
    /// the end of the match: [`Output::Finished`] frees every seat at once.
    SeatFreed {
        /// The user whose seat is free.
        user: String,
    },
    /// The match ended; the `result` frame was already broadcast just before this.
    Finished(Box<Summary>),
    /// Tournament only: create the duel `room` (a [`crate::RoomSpec`] with `parent` =
    /// this tournament, the same questions and pace), seat `players` in it (they get
    /// `match_found`), and report its end back with [`crate::Input::DuelOver`].
    /// `room` is `"{tournament}.{round}.{index}"`, both numbers 0-based.
    SpawnDuel {
        /// The child duel's room id.
        room: String,
        /// Its two players: the bracket's upper slot (`a`) first.
        players: [PlayerRef; 2],
        /// The bracket round (0 = first).
        round: u32,
    },
    /// Tournament only: `user` left the tournament while playing the duel `room`;
    /// the host feeds that duel an [`crate::Input::Forfeit`] for them, whose
    /// [`crate::Input::DuelOver`] then comes back as usual.
    Forfeit {
        /// The running child duel.
        room: String,
        /// The entrant who left.
        user: String,
    },
}

/// One accepted call into the room: an input, or `None` for `handle_timeout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Room time of the call.
    pub at: Millis,
    /// The input, or `None` for a `handle_timeout` that did something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
}

/// A finished match, as the store records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The `result` frame as broadcast.
    pub result: MatchResult,
    /// Every player (also beyond the standings' limit), best first.
    pub players: Vec<PlayerSummary>,
    /// When play began (room time), `None` if it never did.
    pub started_at: Option<Millis>,
    /// When the match ended (room time).
    pub finished_at: Millis,
    /// Questions actually opened.
    pub questions_asked: u32,
}

/// One player's part in a finished match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerSummary {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Points (raid: damage dealt).
    pub score: u64,
    /// Final rank (standard competition ranking).
    pub rank: u32,
    /// Correct answers.
    pub correct: u32,
    /// Answers given.
    pub answered: u32,
    /// Sum of answer times of correct answers (the duel tie-break).
    pub correct_ms: u64,
    /// Battle royale: the question number in which the player went out (leaving
    /// counts as going out in the open or next question). Tournament: the bracket
    /// round (0-based) the entrant lost in.
    pub eliminated_in: Option<u32>,
    /// Left during play (forfeit).
    pub left: bool,
}

/// Why an input was refused; the host answers the client with its code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// Not a player who can act here (not seated, left, out, or abandoned).
    #[error("you are not playing in this room")]
    NotInRoom,
    /// A second answer to the same question.
    #[error("this question was already answered")]
    AlreadyAnswered,
    /// The question is not open (closed, not yet opened, or past its deadline).
    #[error("this question is closed")]
    TooLate,
    /// No seat left.
    #[error("the room is full")]
    RoomFull,
    /// Not in this phase, or not by this user; the text says why.
    #[error("{0}")]
    NotAllowed(&'static str),
    /// A malformed input (e.g. a choice out of range); the text says what.
    #[error("{0}")]
    Invalid(String),
}

impl RoomError {
    /// The wire error code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            RoomError::NotInRoom => ErrorCode::NotInRoom,
            RoomError::AlreadyAnswered => ErrorCode::AlreadyAnswered,
            RoomError::TooLate => ErrorCode::TooLate,
            RoomError::RoomFull => ErrorCode::RoomFull,
            RoomError::NotAllowed(_) => ErrorCode::NotAllowed,
            RoomError::Invalid(_) => ErrorCode::Invalid,
        }
    }
}
