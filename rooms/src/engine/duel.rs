//! Duel rules: the final ordering with its tie-breaks. (A duel's forfeit on
//! leave — the match ends at once — is in the engine's `quit`, with the other
//! modes' forfeits.)

use std::cmp::Reverse;

use super::ranking::rank_by;
use super::roster::Player;

/// Duel standings: a player who left loses; then higher total; then lower total
/// answer time of correct answers; then — only in a tournament's duel, which may
/// not end drawn — the lower user id. Still equal: both rank 1 (a draw).
pub(super) fn ranking(players: &[Player], no_draw: bool) -> Vec<(usize, u32)> {
    rank_by(
        players,
        |p| {
            (
                p.left,
                Reverse(p.score),
                p.correct_ms,
                no_draw.then_some(p.id.as_str()),
            )
        },
        |_| (),
    )
}
