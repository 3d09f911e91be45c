//! Membership beyond the roster: the spectators, the membership version the
//! host caches its fan-out by, and the reconnect windows of seated players whose
//! connection dropped. The data types here are leaves;
//! the `impl Room` below turns the membership inputs ([`Input::Spectate`],
//! [`Input::Unspectate`], [`Input::Disconnect`], [`Input::Reconnect`]) and a
//! window running out into changes of the room.
//!
//! [`Input::Spectate`]: crate::Input::Spectate
//! [`Input::Unspectate`]: crate::Input::Unspectate
//! [`Input::Disconnect`]: crate::Input::Disconnect
//! [`Input::Reconnect`]: crate::Input::Reconnect

use std::collections::{BTreeMap, BTreeSet};

use juno_protocol::Phase;
use serde::{Deserialize, Serialize};

use super::Room;
use crate::{Millis, RoomError};

/// The spectators and the membership version.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Audience {
    /// Users who watch without a seat. A BTreeSet so the state stays deterministic.
    spectators: BTreeSet<String>,
    /// Bumped on every change of who receives the room's frames (players or
    /// spectators), so the host rebuilds its fan-out list only then.
    version: u64,
}

impl Audience {
    pub fn spectators(&self) -> &BTreeSet<String> {
        &self.spectators
    }

    pub fn is_spectator(&self, user: &str) -> bool {
        self.spectators.contains(user)
    }

    pub fn len(&self) -> usize {
        self.spectators.len()
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Membership changed (a seat taken or given up, a spectator in or out).
    pub fn changed(&mut self) {
        self.version = self.version.wrapping_add(1);
    }

    /// `user` starts watching; false if they already did.
    pub fn watch(&mut self, user: &str) -> bool {
        let added = self.spectators.insert(user.to_owned());
        if added {
            self.changed();
        }
        added
    }

    /// `user` stops watching; false if they did not watch.
    pub fn unwatch(&mut self, user: &str) -> bool {
        let removed = self.spectators.remove(user);
        if removed {
            self.changed();
        }
        removed
    }
}

/// Reconnect windows: seated players whose connection dropped, and when their
/// window runs out (room time).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Away {
    /// user → the end of their window.
    until: BTreeMap<String, Millis>,
    /// The same windows ordered by end, so the earliest is found in O(log n)
    /// however many players dropped at once.
    by_end: BTreeSet<(Millis, String)>,
}

impl Away {
    /// Opens `user`'s window until `end`, replacing one already open.
    pub fn open(&mut self, user: &str, end: Millis) {
        self.close(user);
        self.until.insert(user.to_owned(), end);
        self.by_end.insert((end, user.to_owned()));
    }

    /// Closes `user`'s window; false if none was open.
    pub fn close(&mut self, user: &str) -> bool {
        match self.until.remove(user) {
            Some(end) => {
                self.by_end.remove(&(end, user.to_owned()));
                true
            }
            None => false,
        }
    }

    /// When the earliest window runs out.
    pub fn next(&self) -> Option<Millis> {
        self.by_end.first().map(|(end, _)| *end)
    }

    /// Removes and returns a user whose window ran out at or before `now`
    /// (earliest first, then by user id).
    pub fn pop_due(&mut self, now: Millis) -> Option<String> {
        if self.next()? > now {
            return None;
        }
        let (_, user) = self.by_end.pop_first()?;
        self.until.remove(&user);
        Some(user)
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn clear(&mut self) {
        self.until.clear();
        self.by_end.clear();
    }
}

impl Room {
    /// [`crate::Input::Spectate`]: true when `user` became a spectator. A player
    /// still in the room already receives everything: a no-op.
    pub(super) fn spectate(&mut self, user: &str) -> bool {
        !self.is_player(user) && self.audience.watch(user)
    }

    /// [`crate::Input::Unspectate`]: true when `user` was a spectator.
    pub(super) fn unspectate(&mut self, user: &str) -> bool {
        self.audience.unwatch(user)
    }

    /// [`crate::Input::Disconnect`]: opens (or restarts) the reconnect window of
    /// a player who holds a seat. Members without a seat to keep (spectators,
    /// players who forfeited or whose window already ran out) are ignored.
    pub(super) fn disconnect(&mut self, now: Millis, user: &str) -> Result<bool, RoomError> {
        match self.roster.get(user) {
            Some(p) if !p.left && !p.abandoned && !p.gone => {
                let end = now.saturating_add(self.spec.settings.reconnect_ms);
                self.away.open(user, end);
                Ok(true)
            }
            _ if self.is_member(user) => Ok(false),
            _ => Err(RoomError::NotInRoom),
        }
    }

    /// [`crate::Input::Reconnect`]: closes `user`'s window; true if one was open.
    pub(super) fn reconnect(&mut self, user: &str) -> bool {
        self.away.close(user)
    }

    /// Every window that ran out by `now`: in the lobby the player loses the
    /// seat (as by leaving), during play they are abandoned. Either way
    /// [`crate::Output::SeatFreed`] tells the host.
    pub(super) fn expire_windows(&mut self, now: Millis) {
        while let Some(user) = self.away.pop_due(now) {
            // A window is open only for a player holding a seat (every way of
            // giving the seat up closes it), so neither call can refuse; if one
            // ever did, the player simply keeps the seat.
            let _ = match self.phase {
                Phase::Waiting => self.unseat(now, &user),
                Phase::Playing => self.abandon(now, &user),
                Phase::Finished => Ok(false),
            };
        }
    }
}
