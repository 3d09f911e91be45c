//! `queue` matchmaking on one node: the first two players queued for the same
//! mission are paired. Each user holds at most one ticket.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use juno_protocol::PlayerRef;

#[derive(Default)]
struct Queues {
    by_mission: HashMap<String, VecDeque<PlayerRef>>,
    mission_of: HashMap<String, String>,
}

/// Waiting players by mission.
#[derive(Default)]
pub struct Matchmaker {
    queues: Mutex<Queues>,
}

impl Matchmaker {
    /// Queues `player` for `mission` (replacing any earlier ticket). Returns the
    /// opponent when one was waiting; both tickets are then gone.
    pub fn enqueue(&self, player: PlayerRef, mission: &str) -> Option<PlayerRef> {
        let mut guard = self.lock();
        let q = &mut *guard;
        q.remove(&player.id);
        let waiting = q.by_mission.entry(mission.to_string()).or_default();
        if let Some(opponent) = waiting.pop_front() {
            if waiting.is_empty() {
                q.by_mission.remove(mission);
            }
            q.mission_of.remove(&opponent.id);
            return Some(opponent);
        }
        waiting.push_back(player.clone());
        q.mission_of.insert(player.id, mission.to_string());
        None
    }

    /// Withdraws the user's ticket; `true` if there was one.
    pub fn remove(&self, user: &str) -> bool {
        self.lock().remove(user)
    }

    /// Drops every ticket (drain); returns whose they were.
    pub fn clear(&self) -> Vec<String> {
        let mut q = self.lock();
        q.by_mission.clear();
        q.mission_of.drain().map(|(user, _)| user).collect()
    }

    pub fn waiting(&self) -> usize {
        self.lock().mission_of.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        // A panic while holding this lock cannot leave the queues half-updated in a
        // way that matters more than losing the service, so recover the guard.
        self.queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Queues {
    fn remove(&mut self, user: &str) -> bool {
        let Some(mission) = self.mission_of.remove(user) else {
            return false;
        };
        if let Some(waiting) = self.by_mission.get_mut(&mission) {
            waiting.retain(|p| p.id != user);
            if waiting.is_empty() {
                self.by_mission.remove(&mission);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str) -> PlayerRef {
        PlayerRef {
            id: id.into(),
            name: id.into(),
        }
    }

    #[test]
    fn first_two_on_the_same_mission_are_paired() {
        let m = Matchmaker::default();
        assert_eq!(m.enqueue(p("a"), "demo"), None);
        assert_eq!(m.enqueue(p("b"), "other"), None);
        assert_eq!(m.enqueue(p("c"), "demo"), Some(p("a")));
        assert_eq!(m.waiting(), 1);
    }

    #[test]
    fn requeue_and_unqueue_leave_no_stale_ticket() {
        let m = Matchmaker::default();
        assert_eq!(m.enqueue(p("a"), "demo"), None);
        assert_eq!(m.enqueue(p("a"), "other"), None);
        assert_eq!(m.enqueue(p("b"), "demo"), None);
        assert!(m.remove("a"));
        assert!(!m.remove("a"));
        assert_eq!(m.enqueue(p("c"), "demo"), Some(p("b")));
        assert_eq!(m.waiting(), 0);
    }
}
