//! The match engine: one state machine for every question-and-round mode.

use juno_protocol::{Mode, Phase, RoomState};
use serde::{Deserialize, Serialize};

use crate::{Input, LogEntry, Millis, Output, RoomError, RoomSpec, Summary};

/// One live room. Plain data: serialize it to snapshot the match.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Room {
    spec: RoomSpec,
    log: Vec<LogEntry>,
}

impl Room {
    pub fn new(spec: RoomSpec) -> Room {
        Room { spec, log: Vec::new() }
    }

    pub fn spec(&self) -> &RoomSpec {
        &self.spec
    }

    pub fn id(&self) -> &str {
        &self.spec.room
    }

    pub fn mode(&self) -> Mode {
        self.spec.mode
    }

    /// Every accepted call so far, for the match record and [`replay`].
    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    pub fn handle(&mut self, _now: Millis, _input: Input) -> Result<(), RoomError> {
        todo!()
    }

    pub fn handle_timeout(&mut self, _now: Millis) {
        todo!()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        todo!()
    }

    pub fn poll_timeout(&self) -> Option<Millis> {
        todo!()
    }

    pub fn phase(&self) -> Phase {
        todo!()
    }

    /// Whether `user` holds a seat (joined and not left before play).
    pub fn is_player(&self, _user: &str) -> bool {
        todo!()
    }

    pub fn player_count(&self) -> usize {
        todo!()
    }

    /// The `room_state` snapshot at `now`; `spectators` is left 0 for the host to fill.
    pub fn room_state(&self, _now: Millis) -> RoomState {
        todo!()
    }
}

/// Feeds `log` into a fresh room made from `spec` and returns the summary it ends with.
pub fn replay(spec: RoomSpec, log: &[LogEntry]) -> Option<Summary> {
    let _ = (spec, log);
    todo!()
}
