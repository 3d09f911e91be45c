//! The duel queue of a node on its own: tickets in this process, paired by the
//! rules of [`super`] on the clock the caller passes in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use juno_protocol::PlayerRef;

use super::{best_opponent, closest_pair, Waiting};

#[derive(Debug, Clone)]
struct Ticket {
    player: PlayerRef,
    rating: f64,
    since: Instant,
}

#[derive(Default)]
struct Queues {
    by_mission: HashMap<String, Vec<Ticket>>,
    mission_of: HashMap<String, String>,
}

/// Waiting players by mission.
#[derive(Default)]
pub struct Matchmaker {
    queues: Mutex<Queues>,
}

impl Matchmaker {
    /// Queues `player` for `mission` (replacing any earlier ticket). Returns the
    /// opponent when a waiting ticket's window accepts this rating (the closest
    /// such); both tickets are then gone.
    pub fn enqueue(
        &self,
        player: PlayerRef,
        rating: f64,
        mission: &str,
        now: Instant,
    ) -> Option<PlayerRef> {
        let mut guard = self.lock();
        let q = &mut *guard;
        q.remove(&player.id);
        let waiting = q.by_mission.entry(mission.to_string()).or_default();
        let best = best_opponent(&as_waiting(waiting, now), rating);
        if let Some(i) = best {
            let opponent = waiting.remove(i);
            q.mission_of.remove(&opponent.player.id);
            return Some(opponent.player);
        }
        waiting.push(Ticket {
            player: player.clone(),
            rating,
            since: now,
        });
        q.mission_of.insert(player.id, mission.to_string());
        None
    }

    /// Pairs waiting players whose windows have widened enough since they queued:
    /// closest ratings first. Returns `(mission, a, b)` for each pair made.
    pub fn rematch(&self, now: Instant) -> Vec<(String, PlayerRef, PlayerRef)> {
        let mut guard = self.lock();
        let q = &mut *guard;
        let mut pairs = Vec::new();
        for (mission, waiting) in q.by_mission.iter_mut() {
            while let Some((i, j)) = closest_pair(&as_waiting(waiting, now)) {
                let b = waiting.remove(j);
                let a = waiting.remove(i);
                pairs.push((mission.clone(), a.player, b.player));
            }
        }
        for (_, a, b) in &pairs {
            q.mission_of.remove(&a.id);
            q.mission_of.remove(&b.id);
        }
        q.by_mission.retain(|_, w| !w.is_empty());
        pairs
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

/// The tickets as the pairing rules see them at `now`.
fn as_waiting(tickets: &[Ticket], now: Instant) -> Vec<Waiting> {
    tickets
        .iter()
        .map(|t| Waiting {
            rating: t.rating,
            waited_secs: now.duration_since(t.since).as_secs_f64(),
        })
        .collect()
}

impl Queues {
    fn remove(&mut self, user: &str) -> bool {
        let Some(mission) = self.mission_of.remove(user) else {
            return false;
        };
        if let Some(waiting) = self.by_mission.get_mut(&mission) {
            waiting.retain(|t| t.player.id != user);
            if waiting.is_empty() {
                self.by_mission.remove(&mission);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn p(id: &str) -> PlayerRef {
        PlayerRef {
            id: id.into(),
            name: id.into(),
        }
    }

    #[test]
    fn close_ratings_are_paired_first() {
        let m = Matchmaker::default();
        let t0 = Instant::now();
        assert_eq!(m.enqueue(p("far"), 1900.0, "demo", t0), None);
        assert_eq!(
            m.enqueue(p("near"), 1540.0, "demo", t0),
            None,
            "60 apart from nobody yet… 360 from far"
        );
        assert_eq!(m.enqueue(p("me"), 1500.0, "demo", t0), Some(p("near")));
        assert_eq!(m.waiting(), 1);
    }

    #[test]
    fn a_lone_far_player_is_matched_once_the_window_has_widened() {
        let m = Matchmaker::default();
        let t0 = Instant::now();
        assert_eq!(m.enqueue(p("low"), 1200.0, "demo", t0), None);
        assert_eq!(m.enqueue(p("high"), 1900.0, "demo", t0), None);
        assert!(
            m.rematch(t0 + Duration::from_secs(5)).is_empty(),
            "700 apart: not yet"
        );
        let pairs = m.rematch(t0 + Duration::from_secs(13));
        assert_eq!(pairs, vec![("demo".to_string(), p("low"), p("high"))]);
        assert_eq!(m.waiting(), 0);
    }

    #[test]
    fn missions_do_not_mix_and_requeue_leaves_no_stale_ticket() {
        let m = Matchmaker::default();
        let t0 = Instant::now();
        assert_eq!(m.enqueue(p("a"), 1500.0, "demo", t0), None);
        assert_eq!(m.enqueue(p("b"), 1500.0, "other", t0), None);
        assert_eq!(m.enqueue(p("a"), 1500.0, "other", t0), Some(p("b")));
        assert_eq!(m.waiting(), 0);
        assert!(!m.remove("a"));
    }
}
