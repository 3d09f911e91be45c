//! Limits on frames and fields, shared by the server's validation and by clients.

/// Largest accepted client frame unless `JUNO_MAX_FRAME_BYTES` says otherwise.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024;
/// Longest user id (`sub` claim): 1–64 of `[A-Za-z0-9_-]`.
pub const MAX_USER_ID_LEN: usize = 64;
/// Longest display name (`name` claim).
pub const MAX_NAME_CHARS: usize = 32;
/// Longest room or mission id a client may send.
pub const MAX_ID_LEN: usize = 128;
/// Questions a match may ask (`options.questions`), and a mission may hold.
pub const MAX_QUESTIONS: u32 = 50;
/// Bounds on `options.question_ms`.
pub const MIN_QUESTION_MS: u64 = 100;
pub const MAX_QUESTION_MS: u64 = 10 * 60 * 1000;
/// Upper bound on `countdown_ms` and `between_ms`.
pub const MAX_PAUSE_MS: u64 = 10 * 60 * 1000;
/// Largest room (`options.max_players`).
pub const MAX_PLAYERS: u32 = 10_000;
/// Largest raid boss (`options.boss_hp`).
pub const MAX_BOSS_HP: u64 = 1_000_000_000;
/// Tournament sizes (`options.size`).
pub const TOURNAMENT_SIZES: [u32; 4] = [2, 4, 8, 16];
/// Rooms up to this many players list everyone in `room_state` and `result`
/// standings; larger ones send the leaders only, so no frame grows with the room.
pub const FULL_LIST_MAX_PLAYERS: usize = 100;
/// Leaders in `room_state.players` of a large room, and in `round.top`.
pub const TOP_LEADERS: usize = 10;
/// Standings in the `result` of a large room.
pub const RESULT_STANDINGS_MAX: usize = 100;
/// Rooms up to this many players get `gained` and `scores` maps in `round`.
pub const ROUND_MAPS_MAX_PLAYERS: usize = 16;

/// Whether `id` is a valid user id: 1–64 of `[A-Za-z0-9_-]`.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_USER_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `name` is an acceptable display name.
pub fn valid_name(name: &str) -> bool {
    name.chars().count() <= MAX_NAME_CHARS && !name.chars().any(char::is_control)
}

/// Whether a client-sent room or mission id is plausible (cheap checks before lookups).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && !id.chars().any(char::is_control)
}
