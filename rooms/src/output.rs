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
    Send { to: String, msg: ServerMsg },
    /// The match began (phase went from `waiting` to `playing`).
    Started,
    /// The match ended; the `result` frame was already broadcast just before this.
    Finished(Box<Summary>),
    /// Tournament only: create the duel `room` (a [`crate::RoomSpec`] with `parent` =
    /// this tournament, the same questions and pace), seat `players` in it (they get
    /// `match_found`), and report its end back with [`crate::Input::DuelOver`].
    /// `room` is `"{tournament}.{round}.{index}"`, both numbers 0-based.
    SpawnDuel {
        room: String,
        players: [PlayerRef; 2],
        round: u32,
    },
    /// Tournament only: `user` left the tournament while playing the duel `room`;
    /// the host feeds that duel an [`crate::Input::Leave`] for them, whose
    /// [`crate::Input::DuelOver`] then comes back as usual.
    Forfeit { room: String, user: String },
}

/// One accepted call into the room: an input, or `None` for `handle_timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
}

/// A finished match, as the store records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub result: MatchResult,
    pub players: Vec<PlayerSummary>,
    /// When play began (room time), `None` if it never did.
    pub started_at: Option<Millis>,
    pub finished_at: Millis,
    /// Questions actually opened.
    pub questions_asked: u32,
}

/// One player's part in a finished match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerSummary {
    pub id: String,
    pub name: String,
    /// Points (raid: damage dealt).
    pub score: u64,
    pub rank: u32,
    pub correct: u32,
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
    #[error("you are not playing in this room")]
    NotInRoom,
    #[error("this question was already answered")]
    AlreadyAnswered,
    #[error("this question is closed")]
    TooLate,
    #[error("the room is full")]
    RoomFull,
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("{0}")]
    Invalid(String),
}

impl RoomError {
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
