//! Raid boss: hit points, damage from correct answers, and the coalesced `boss`
//! frames (at most one per [`BOSS_FRAME_MS`] per room, fewer for a large
//! audience: see [`boss_gap`]).

use juno_protocol::{Boss, BossHp, Hit};
use serde::{Deserialize, Serialize};

use crate::Millis;

/// Shortest gap between two `boss` frames of a room (≤ 10 a second, WIRE.md §3).
/// The final frame when the match ends is exempt so no hit goes unreported.
pub(super) const BOSS_FRAME_MS: Millis = 100;
/// Recipient-frames a second a room's `boss` frames may cost at most. Every
/// frame to every recipient is a socket write on the server and a read on the
/// client; a raid with thousands of spectators at 10 frames a second would
/// flood the node and delay everything else (answers, questions, rounds).
pub const BOSS_FANOUT_PER_SEC: u64 = 20_000;
/// The longest gap between two `boss` frames, however large the audience.
const BOSS_FRAME_MAX_MS: Millis = 1_000;

/// The gap between two `boss` frames for `audience` recipients (the room's
/// members): 100 ms (10 a second) up to 2,000 recipients, 500 ms at 10,000, at
/// most 1 s.
pub(super) fn boss_gap(audience: usize) -> Millis {
    let audience = u64::try_from(audience).unwrap_or(u64::MAX);
    (audience.saturating_mul(1_000) / BOSS_FANOUT_PER_SEC).clamp(BOSS_FRAME_MS, BOSS_FRAME_MAX_MS)
}
/// Hits listed in `boss.last`.
const LAST_HITS: usize = 5;

/// The boss and what the next `boss` frame will report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Raid {
    pub max_hp: u64,
    pub hp: u64,
    /// Hits since the last frame.
    pending_hits: u32,
    /// Damage since the last frame.
    pending_dmg: u64,
    /// The most recent hits, newest last.
    last: Vec<Hit>,
    /// When the last frame went out.
    last_frame_at: Option<Millis>,
    /// When the held-back frame is due, if one is.
    flush_at: Option<Millis>,
}

impl Raid {
    pub fn new(max_hp: u64) -> Raid {
        Raid {
            max_hp,
            hp: max_hp,
            pending_hits: 0,
            pending_dmg: 0,
            last: Vec::with_capacity(LAST_HITS),
            last_frame_at: None,
            flush_at: None,
        }
    }

    pub fn hp(&self) -> BossHp {
        BossHp {
            hp: self.hp,
            max_hp: self.max_hp,
        }
    }

    /// When a held-back frame is due.
    pub fn due(&self) -> Option<Millis> {
        self.flush_at
    }

    /// `by` hits for `points`; returns the damage dealt (hp saturates at 0, so
    /// the damage dealt over a raid sums to exactly `max_hp − hp`) and the frame
    /// to broadcast now, if the coalescing window (`gap` since the last) allows one.
    pub fn hit(
        &mut self,
        now: Millis,
        gap: Millis,
        room: &str,
        by: &str,
        points: u64,
    ) -> (u64, Option<Boss>) {
        let dealt = points.min(self.hp);
        self.hp -= dealt;
        self.pending_hits += 1;
        self.pending_dmg += dealt;
        if self.last.len() == LAST_HITS {
            self.last.remove(0);
        }
        self.last.push(Hit {
            by: by.to_owned(),
            dmg: dealt,
        });
        let frame = match self.last_frame_at {
            Some(t) if now < t + gap => {
                self.flush_at.get_or_insert(t + gap);
                None
            }
            _ => self.flush(now, room),
        };
        (dealt, frame)
    }

    /// The frame for the hits not yet reported, if any.
    pub fn flush(&mut self, now: Millis, room: &str) -> Option<Boss> {
        self.flush_at = None;
        if self.pending_hits == 0 {
            return None;
        }
        let frame = Boss {
            room: room.to_owned(),
            hp: self.hp,
            max_hp: self.max_hp,
            hits: self.pending_hits,
            dmg: self.pending_dmg,
            last: self.last.clone(),
        };
        self.pending_hits = 0;
        self.pending_dmg = 0;
        self.last_frame_at = Some(now);
        Some(frame)
    }
}
