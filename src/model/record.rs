//! A finished match as the store keeps it, and what counts as a mission success.

use chrono::{DateTime, Utc};
use juno_rooms::{LogEntry, RoomSpec, Summary};

use super::rating::Rating;

/// Everything the store keeps of one finished match.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MatchRecord {
    pub spec: RoomSpec,
    pub world: String,
    pub node: String,
    pub summary: Summary,
    pub log: Vec<LogEntry>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Players' ratings after a rated duel, saved with the match.
    #[serde(default)]
    pub ratings: Vec<(String, Rating)>,
}

/// Whether a player's part in a match counts as a mission success: at least half
/// of the questions asked answered right.
pub fn mission_success(correct: u32, asked: u32) -> bool {
    asked > 0 && correct * 2 >= asked
}
