//! Plain data and pure rules that several layers share — ratings, feature flags,
//! the ISO week, a finished match's record. Nothing here does I/O or knows a
//! node, so the store, the cluster and the game can all use it without pointing
//! at each other.

pub mod flags;
pub mod rating;
mod record;
mod week;

pub use flags::{FlagSet, Targeting};
pub use rating::Rating;
pub use record::{mission_success, MatchRecord};
pub use week::iso_week;
