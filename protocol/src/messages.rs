//! Every message of WIRE.md §3: what clients send ([`ClientMsg`]) and what the
//! server sends ([`ServerMsg`]). Both are maps tagged by `t`; optional fields are
//! left out when absent, except where the contract says nil (`result.winner`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::limits;

/// A live mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Duel,
    BattleRoyale,
    Raid,
    Tournament,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Duel, Mode::BattleRoyale, Mode::Raid, Mode::Tournament];

    /// The mode's name on the wire and in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Duel => "duel",
            Mode::BattleRoyale => "battle_royale",
            Mode::Raid => "raid",
            Mode::Tournament => "tournament",
        }
    }

    /// The feature flag that gates the mode.
    pub fn flag(self) -> &'static str {
        match self {
            Mode::Duel => "pvp_duels",
            Mode::BattleRoyale => "battle_royale",
            Mode::Raid => "raid_bosses",
            Mode::Tournament => "tournaments",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// `room_state.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Waiting,
    Playing,
    Finished,
}

/// `create.options`: every field optional; [`RoomOptions::validate`] checks ranges.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoomOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub countdown_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_players: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boss_hp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<bool>,
}

impl RoomOptions {
    /// Checks every given option against its range; the message says which one is off.
    pub fn validate(&self, mode: Mode) -> Result<(), String> {
        fn check<T: PartialOrd + Copy + std::fmt::Display>(
            name: &str,
            value: Option<T>,
            min: T,
            max: T,
        ) -> Result<(), String> {
            match value {
                Some(v) if v < min || v > max => {
                    Err(format!("options.{name} must be between {min} and {max}"))
                }
                _ => Ok(()),
            }
        }
        check("questions", self.questions, 1, limits::MAX_QUESTIONS)?;
        check(
            "question_ms",
            self.question_ms,
            limits::MIN_QUESTION_MS,
            limits::MAX_QUESTION_MS,
        )?;
        check("countdown_ms", self.countdown_ms, 0, limits::MAX_PAUSE_MS)?;
        check("between_ms", self.between_ms, 0, limits::MAX_PAUSE_MS)?;
        match mode {
            Mode::Duel => check("max_players", self.max_players, 2, 2)?,
            Mode::Tournament => {}
            Mode::BattleRoyale | Mode::Raid => {
                check("max_players", self.max_players, 1, limits::MAX_PLAYERS)?
            }
        }
        if let Some(size) = self.size {
            if !limits::TOURNAMENT_SIZES.contains(&size) {
                return Err("options.size must be 2, 4, 8 or 16".into());
            }
        }
        check("boss_hp", self.boss_hp, 1, limits::MAX_BOSS_HP)?;
        Ok(())
    }
}

/// A message from a client. The `rid` travels beside it in [`crate::ClientFrame`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClientMsg {
    Ping,
    Queue {
        mode: Mode,
        mission: String,
    },
    Unqueue,
    Create {
        mode: Mode,
        mission: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        options: Option<RoomOptions>,
    },
    Join {
        room: String,
    },
    Spectate {
        room: String,
    },
    Leave {
        room: String,
    },
    Start {
        room: String,
    },
    Answer {
        room: String,
        q: u32,
        choice: u32,
    },
}

impl ClientMsg {
    /// Every client `t` the contract knows, to tell `unknown_type` from `invalid`.
    pub const TYPES: [&'static str; 9] = [
        "ping", "queue", "unqueue", "create", "join", "spectate", "leave", "start", "answer",
    ];

    /// The message's `t`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMsg::Ping => "ping",
            ClientMsg::Queue { .. } => "queue",
            ClientMsg::Unqueue => "unqueue",
            ClientMsg::Create { .. } => "create",
            ClientMsg::Join { .. } => "join",
            ClientMsg::Spectate { .. } => "spectate",
            ClientMsg::Leave { .. } => "leave",
            ClientMsg::Start { .. } => "start",
            ClientMsg::Answer { .. } => "answer",
        }
    }
}

/// `{id, name}` of a player, as in `match_found.players`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerRef {
    pub id: String,
    pub name: String,
}

/// A player as `room_state` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerState {
    pub id: String,
    pub name: String,
    pub score: u64,
    pub alive: bool,
}

/// `{id, score}` in `round.top`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leader {
    pub id: String,
    pub score: u64,
}

/// `{hp, max_hp}` of a raid boss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BossHp {
    pub hp: u64,
    pub max_hp: u64,
}

/// One hit in `boss.last`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    pub by: String,
    pub dmg: u64,
}

/// One pairing of a tournament bracket; `a`/`b` are nil while unknown or for a bye.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    pub a: Option<String>,
    pub b: Option<String>,
    pub winner: Option<String>,
    pub room: Option<String>,
}

/// `{id, score, rank}` in `result.standings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    pub id: String,
    pub score: u64,
    pub rank: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub user: String,
    pub name: String,
    pub node: String,
    pub proto: u32,
    pub flags: BTreeMap<String, bool>,
    pub rooms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ok {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<u64>,
    pub code: ErrorCode,
    pub msg: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<u64>,
    pub ts: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchFound {
    pub room: String,
    pub mode: Mode,
    pub mission: String,
    pub players: Vec<PlayerRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// An open question, as sent in `question` and inside `room_state.question`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionMsg {
    pub room: String,
    pub q: u32,
    pub text: String,
    pub choices: Vec<String>,
    /// Milliseconds left to answer.
    pub ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    pub room: String,
    pub mode: Mode,
    pub phase: Phase,
    pub players: Vec<PlayerState>,
    pub player_count: u32,
    pub spectators: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<QuestionMsg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boss: Option<BossHp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bracket: Option<Vec<Vec<Pairing>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    pub room: String,
    pub q: u32,
    pub correct: u32,
    pub top: Vec<Leader>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eliminated: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boss: Option<BossHp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gained: Option<BTreeMap<String, u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    pub room: String,
    pub q: u32,
    pub gained: u64,
    pub score: u64,
    pub rank: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boss {
    pub room: String,
    pub hp: u64,
    pub max_hp: u64,
    pub hits: u32,
    pub dmg: u64,
    pub last: Vec<Hit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bracket {
    pub room: String,
    pub rounds: Vec<Vec<Pairing>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchResult {
    pub room: String,
    pub mode: Mode,
    /// Nil on a draw, a lost raid, or where nobody stands alone at the top.
    pub winner: Option<String>,
    pub standings: Vec<Standing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victory: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<BTreeMap<String, i64>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    pub flags: BTreeMap<String, bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: String,
    pub title: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconnect {
    pub reason: String,
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerMsg {
    Welcome(Welcome),
    Ok(Ok),
    Error(Error),
    Pong(Pong),
    MatchFound(MatchFound),
    RoomState(RoomState),
    Question(QuestionMsg),
    Round(Round),
    Score(Score),
    Boss(Boss),
    Bracket(Bracket),
    Result(MatchResult),
    Flags(Flags),
    Notification(Notification),
    Reconnect(Reconnect),
}

impl ServerMsg {
    /// An `error` frame.
    pub fn error(rid: Option<u64>, code: ErrorCode, msg: impl Into<String>) -> ServerMsg {
        ServerMsg::Error(Error {
            rid,
            code,
            msg: msg.into(),
        })
    }

    /// A bare `ok` frame.
    pub fn ok(rid: Option<u64>) -> ServerMsg {
        ServerMsg::Ok(Ok { rid, room: None })
    }

    /// The message's `t`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerMsg::Welcome(_) => "welcome",
            ServerMsg::Ok(_) => "ok",
            ServerMsg::Error(_) => "error",
            ServerMsg::Pong(_) => "pong",
            ServerMsg::MatchFound(_) => "match_found",
            ServerMsg::RoomState(_) => "room_state",
            ServerMsg::Question(_) => "question",
            ServerMsg::Round(_) => "round",
            ServerMsg::Score(_) => "score",
            ServerMsg::Boss(_) => "boss",
            ServerMsg::Bracket(_) => "bracket",
            ServerMsg::Result(_) => "result",
            ServerMsg::Flags(_) => "flags",
            ServerMsg::Notification(_) => "notification",
            ServerMsg::Reconnect(_) => "reconnect",
        }
    }
}
