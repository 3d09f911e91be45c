//! Orderings and ranks over players, with no room in sight: standard
//! competition ranks (1, 2, 2, 4), the survival key, and the round's leaders.
//! The mode rules ([`super::duel`]) and the final standings ([`super::standings`])
//! build on these; this module depends on nothing but the roster's [`Player`].

use std::cmp::Reverse;

use juno_protocol::limits::TOP_LEADERS;
use juno_protocol::Leader;

use super::roster::Player;

/// Orders `players` best first and gives each a competition rank: players with
/// equal `key` share a rank (1, 2, 2, 4). Within a rank they are listed by
/// `display` and then by id, so the order is total and deterministic.
/// Returns `(index into players, rank)` best first.
pub(super) fn rank_by<'a, K: Ord, D: Ord>(
    players: &'a [Player],
    key: impl Fn(&'a Player) -> K,
    display: impl Fn(&'a Player) -> D,
) -> Vec<(usize, u32)> {
    let mut order: Vec<(K, D, &'a str, usize)> = players
        .iter()
        .enumerate()
        .map(|(i, p)| (key(p), display(p), p.id.as_str(), i))
        .collect();
    order.sort_unstable();
    let mut ranked = Vec::with_capacity(order.len());
    let mut rank = 0;
    for pos in 0..order.len() {
        if pos == 0 || order[pos].0 != order[pos - 1].0 {
            rank = pos as u32 + 1;
        }
        ranked.push((order[pos].3, rank));
    }
    ranked
}

/// Battle royale and tournament key: later elimination first (still in = best).
pub(super) fn survival(p: &Player) -> Reverse<u64> {
    Reverse(p.eliminated_in.map_or(u64::MAX, u64::from))
}

/// Up to [`TOP_LEADERS`] players by score desc, ties by id asc.
pub(super) fn leaders(players: &[Player]) -> Vec<Leader> {
    let mut order: Vec<(Reverse<u64>, &str)> = players
        .iter()
        .map(|p| (Reverse(p.score), p.id.as_str()))
        .collect();
    if order.len() > TOP_LEADERS {
        order.select_nth_unstable(TOP_LEADERS - 1);
        order.truncate(TOP_LEADERS);
    }
    order.sort_unstable();
    order
        .into_iter()
        .map(|(Reverse(score), id)| Leader {
            id: id.to_owned(),
            score,
        })
        .collect()
}
