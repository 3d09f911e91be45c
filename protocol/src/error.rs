//! The contract's error codes, as sent in `error.code`.

use serde::{Deserialize, Serialize};

/// Every code an `error` frame may carry (WIRE.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadFrame,
    UnknownType,
    Invalid,
    RateLimited,
    FeatureDisabled,
    NotFound,
    RoomFull,
    NotInRoom,
    AlreadyAnswered,
    TooLate,
    NotAllowed,
    Draining,
    Replaced,
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::Invalid => "invalid",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::FeatureDisabled => "feature_disabled",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::AlreadyAnswered => "already_answered",
            ErrorCode::TooLate => "too_late",
            ErrorCode::NotAllowed => "not_allowed",
            ErrorCode::Draining => "draining",
            ErrorCode::Replaced => "replaced",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
