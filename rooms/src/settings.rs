//! A room's fixed parameters: the resolved options and the questions it will ask.

use juno_protocol::{Mode, Question, RoomOptions};
use serde::{Deserialize, Serialize};

use crate::Millis;

/// How long a dropped player keeps the seat when the spec does not say: what
/// specs recorded before the room kept reconnect windows deserialize with.
/// The host sets [`Settings::reconnect_ms`] from `JUNO_RESUME_SECS` instead.
pub const DEFAULT_RECONNECT_MS: Millis = 30_000;

fn default_reconnect_ms() -> Millis {
    DEFAULT_RECONNECT_MS
}

/// The node's default match pace (`JUNO_QUESTIONS`, `JUNO_QUESTION_MS`, …), used
/// where `create` gave no options and always for `queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pace {
    /// Questions per match.
    pub questions: u32,
    /// Time to answer a question.
    pub question_ms: u64,
    /// From the start to the first question.
    pub countdown_ms: u64,
    /// From a round's close to the next question.
    pub between_ms: u64,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            questions: 5,
            question_ms: 10_000,
            countdown_ms: 3_000,
            between_ms: 2_000,
        }
    }
}

/// Options resolved against the mode's defaults and the node's pace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Questions per match.
    pub questions: u32,
    /// Time to answer a question.
    pub question_ms: u64,
    /// From the start to the first question.
    pub countdown_ms: u64,
    /// From a round's close to the next question.
    pub between_ms: u64,
    /// Seats: 2 for a duel, `max_players` (default 100 / 1000) for a battle royale / raid,
    /// `size` for a tournament.
    pub max_players: u32,
    /// Raid boss hit points; `None` = 1000 × players at start.
    pub boss_hp: Option<u64>,
    /// Tournament bracket size.
    pub size: u32,
    /// The creator hosts and spectates instead of playing.
    pub watch: bool,
    /// How long a seated player whose connection dropped keeps the seat (the
    /// reconnect window, WIRE.md §4 "Disconnects"; `JUNO_RESUME_SECS`). No client
    /// option sets it: the host fills it in after [`Settings::resolve`].
    #[serde(default = "default_reconnect_ms")]
    pub reconnect_ms: Millis,
}

impl Settings {
    /// Resolves validated `options` (see [`RoomOptions::validate`]) for `mode`.
    /// The reconnect window is [`DEFAULT_RECONNECT_MS`] until the host sets
    /// its own.
    pub fn resolve(mode: Mode, options: &RoomOptions, pace: Pace) -> Settings {
        let size = options.size.unwrap_or(8);
        let max_players = match mode {
            Mode::Duel => 2,
            Mode::BattleRoyale => options.max_players.unwrap_or(100),
            Mode::Raid => options.max_players.unwrap_or(1000),
            Mode::Tournament => size,
        };
        Settings {
            questions: options.questions.unwrap_or(pace.questions),
            question_ms: options.question_ms.unwrap_or(pace.question_ms),
            countdown_ms: options.countdown_ms.unwrap_or(pace.countdown_ms),
            between_ms: options.between_ms.unwrap_or(pace.between_ms),
            max_players,
            boss_hp: options.boss_hp,
            size,
            watch: options.watch.unwrap_or(false),
            reconnect_ms: DEFAULT_RECONNECT_MS,
        }
    }
}

/// Everything a room is created from; with the log it reproduces the match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSpec {
    /// The room's id (a tournament's duels: `"{tournament}.{round}.{index}"`).
    pub room: String,
    /// The game mode.
    pub mode: Mode,
    /// The mission the questions come from.
    pub mission: String,
    /// Who may `start`; `None` for rooms made by matchmaking or a tournament.
    pub creator: Option<String>,
    /// The resolved options.
    pub settings: Settings,
    /// The questions in the order they will be asked (`q` = index here). The server
    /// picks them from the mission; there are exactly `settings.questions` of them.
    pub questions: Vec<Question>,
    /// The tournament room a duel belongs to.
    pub parent: Option<String>,
}
