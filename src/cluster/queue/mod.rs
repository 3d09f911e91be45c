//! The duel queue behind `queue`: players queued for the same mission are paired
//! by rating. A waiting ticket accepts opponents within a window that starts at
//! [`BASE_WINDOW`] rating points and widens by [`WIDEN_PER_SEC`] for every second
//! it waits, so close ratings are paired first and nobody waits forever while
//! anyone else is queued. A periodic rematch pairs tickets whose windows have grown.
//!
//! One type, two backends: [`local`] keeps tickets in this process; [`redis`]
//! keeps them in Redis, paired by Lua scripts so two nodes never take the same
//! ticket. The pairing rules are written twice — here in Rust ([`best_opponent`],
//! [`closest_pair`]) and in the scripts' Lua — and one table of cases checks both.

mod local;
mod redis;

use std::time::Instant;

use juno_protocol::PlayerRef;

pub use local::Matchmaker;
pub use redis::RedisQueue;

/// Rating difference a fresh ticket accepts.
pub const BASE_WINDOW: f64 = 100.0;
/// How much wider the window gets per second of waiting.
pub const WIDEN_PER_SEC: f64 = 50.0;

/// The rating window of a ticket that has waited `secs`.
pub fn window(secs: f64) -> f64 {
    BASE_WINDOW + WIDEN_PER_SEC * secs.max(0.0)
}

/// A waiting ticket as the pairing rules see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Waiting {
    pub rating: f64,
    pub waited_secs: f64,
}

/// The waiting ticket a newcomer rated `rating` is paired with: the smallest
/// rating gap within that ticket's window (the first one on a tie).
pub fn best_opponent(waiting: &[Waiting], rating: f64) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, t) in waiting.iter().enumerate() {
        let gap = (t.rating - rating).abs();
        if gap <= window(t.waited_secs) && best.is_none_or(|(_, g)| gap < g) {
            best = Some((i, gap));
        }
    }
    best.map(|(i, _)| i)
}

/// The two waiting tickets (i < j) with the smallest rating gap that either
/// one's window accepts (the first such pair on a tie).
pub fn closest_pair(waiting: &[Waiting]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize, f64)> = None;
    for i in 0..waiting.len() {
        for j in i + 1..waiting.len() {
            let (a, b) = (&waiting[i], &waiting[j]);
            let gap = (a.rating - b.rating).abs();
            let win = window(a.waited_secs).max(window(b.waited_secs));
            if gap <= win && best.is_none_or(|(_, _, g)| gap < g) {
                best = Some((i, j, gap));
            }
        }
    }
    best.map(|(i, j, _)| (i, j))
}

/// A paired player and the node they are connected to (`None`: this one).
pub type Seated = (PlayerRef, Option<String>);

/// The duel queue of one node, or of the whole cluster.
pub enum DuelQueue {
    Local(Matchmaker),
    Redis(RedisQueue),
}

impl DuelQueue {
    /// Queues `player` (connected here) for `mission`, replacing an earlier
    /// ticket of theirs; `Some(opponent)` when paired at once.
    pub async fn enqueue(
        &self,
        player: &PlayerRef,
        rating: f64,
        mission: &str,
    ) -> anyhow::Result<Option<Seated>> {
        match self {
            DuelQueue::Local(m) => Ok(m
                .enqueue(player.clone(), rating, mission, Instant::now())
                .map(|p| (p, None))),
            DuelQueue::Redis(q) => q.enqueue(player, rating, mission).await,
        }
    }

    /// Pairs waiting tickets whose windows have widened enough: `(mission, a, b)`.
    pub async fn rematch(&self) -> anyhow::Result<Vec<(String, Seated, Seated)>> {
        match self {
            DuelQueue::Local(m) => Ok(m
                .rematch(Instant::now())
                .into_iter()
                .map(|(mission, a, b)| (mission, (a, None), (b, None)))
                .collect()),
            DuelQueue::Redis(q) => q.rematch().await,
        }
    }

    /// Withdraws `user`'s ticket; `true` if there was one.
    pub async fn unqueue(&self, user: &str) -> anyhow::Result<bool> {
        match self {
            DuelQueue::Local(m) => Ok(m.remove(user)),
            DuelQueue::Redis(q) => q.unqueue(user).await,
        }
    }

    /// Puts this node's tickets back where Redis lost them (after the heartbeat
    /// registered the node again); nothing to do for a node on its own.
    pub(crate) async fn restore(&self) {
        if let DuelQueue::Redis(q) = self {
            if let Err(e) = q.restore().await {
                tracing::warn!(error = %format!("{e:#}"), "putting queue tickets back");
            }
        }
    }

    /// Drops this node's tickets (drain). Shared tickets of this node's players
    /// die with their presence entries, which the drain removes.
    pub fn clear(&self) {
        if let DuelQueue::Local(m) = self {
            m.clear();
        }
    }
}

#[cfg(test)]
mod cases;
