//! `queue` matchmaking on one node (the cluster's lives in Redis, with the same
//! rules): players queued for the same mission are paired by rating. A ticket
//! accepts opponents within a window that starts at [`BASE_WINDOW`] rating
//! points and widens by [`WIDEN_PER_SEC`] for every second it waits, so close
//! ratings are paired first and nobody waits forever while anyone else is queued.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use juno_protocol::PlayerRef;

/// Rating difference a fresh ticket accepts.
pub const BASE_WINDOW: f64 = 100.0;
/// How much wider the window gets per second of waiting.
pub const WIDEN_PER_SEC: f64 = 50.0;

/// The rating window of a ticket that has waited `secs`.
pub fn window(secs: f64) -> f64 {
    BASE_WINDOW + WIDEN_PER_SEC * secs.max(0.0)
}

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
    /// opponent when a waiting one is within either ticket's window; both tickets
    /// are then gone.
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
        let best = waiting
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    i,
                    (t.rating - rating).abs(),
                    window(now.duration_since(t.since).as_secs_f64()),
                )
            })
            .filter(|&(_, gap, win)| gap <= win.max(BASE_WINDOW))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _, _)| i);
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
            while let Some((i, j)) = closest_pair(waiting, now) {
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

/// The two tickets (i < j) with the smallest rating gap that either one's window accepts.
fn closest_pair(waiting: &[Ticket], now: Instant) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize, f64)> = None;
    for i in 0..waiting.len() {
        for j in i + 1..waiting.len() {
            let (a, b) = (&waiting[i], &waiting[j]);
            let gap = (a.rating - b.rating).abs();
            let win = window(now.duration_since(a.since).as_secs_f64())
                .max(window(now.duration_since(b.since).as_secs_f64()));
            if gap <= win && best.is_none_or(|(_, _, g)| gap < g) {
                best = Some((i, j, gap));
            }
        }
    }
    best.map(|(i, j, _)| (i, j))
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
