//! Failover: [`Input::Resume`], fed by the host that adopted a room rebuilt
//! from its spec and log. The room's timeline stands still across the gap, so
//! every timer keeps the time it had left; only an open question's deadline
//! moves, so players whose connection the move cut get a moment to answer.
//!
//! [`Input::Resume`]: crate::Input::Resume

use juno_protocol::ServerMsg;

use super::{Clock, Room};
use crate::{Millis, Output};

/// The least time an open question has left after [`crate::Input::Resume`].
pub const RESUME_MIN_MS: Millis = 1_000;

impl Room {
    /// [`crate::Input::Resume`] at `now`: an open question gets at least
    /// [`RESUME_MIN_MS`] more, then `room_state` and (while a question is open)
    /// its `question` frame go out again. Nothing due fires here: the host's
    /// [`Room::handle_timeout`] follows.
    pub(super) fn resume(&mut self, now: Millis) {
        if let Clock::Open(open) = &mut self.clock {
            open.deadline = open.deadline.max(now.saturating_add(RESUME_MIN_MS));
        }
        self.send_state(now);
        if let Clock::Open(open) = self.clock {
            if let Some(msg) = self.question_msg(open.q, open.deadline.saturating_sub(now)) {
                self.out
                    .push_back(Output::Broadcast(ServerMsg::Question(msg)));
            }
        }
    }
}
