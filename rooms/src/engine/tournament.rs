//! Tournament: seeding, the single-elimination bracket with byes and walkovers,
//! the child duels it spawns, and the `bracket` frames. Entrants are the room's
//! players; their `score` is their points over all their duels and
//! `eliminated_in` the bracket round they lost in.

use juno_protocol::{Bracket, Pairing, Phase, PlayerRef, ServerMsg};
use serde::{Deserialize, Serialize};

use super::Room;
use crate::{Millis, Output, RoomError};

/// Every entrant's rating until ratings exist.
pub(super) const DEFAULT_RATING: i64 = 1500;

/// How a slot of the bracket was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Decided {
    /// Not yet (its duel may be running: `room` is set).
    Open,
    /// Only one entrant: they advance without playing.
    Bye,
    /// The opponent left before the duel: not played, but an elimination.
    Walkover,
    /// Played as a duel.
    Duel,
}

/// One pairing of the bracket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Slot {
    pub a: Option<String>,
    pub b: Option<String>,
    pub winner: Option<String>,
    /// The child duel's room, once spawned.
    pub room: Option<String>,
    pub decided: Decided,
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            a: None,
            b: None,
            winner: None,
            room: None,
            decided: Decided::Open,
        }
    }

    fn running(&self) -> bool {
        self.room.is_some() && self.winner.is_none()
    }

    fn pairing(&self) -> Pairing {
        Pairing {
            a: self.a.clone(),
            b: self.b.clone(),
            winner: self.winner.clone(),
            room: self.room.clone(),
        }
    }
}

/// Seeds entrants from `(id, rating)`: best rating first, equal ratings by id ascending.
pub(super) fn seed(ratings: &[(&str, i64)]) -> Vec<String> {
    let mut order: Vec<&(&str, i64)> = ratings.iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    order.into_iter().map(|(id, _)| (*id).to_owned()).collect()
}

/// Standard bracket placement for `size` (a power of two): the seeds (1-based)
/// in bracket order, so that seed 1 meets seed `size`, and seeds 1 and 2 can
/// only meet in the final. E.g. 8 → 1 8 4 5 2 7 3 6.
pub(super) fn placement(size: usize) -> Vec<usize> {
    let mut order = vec![1];
    while order.len() < size {
        let n = order.len() * 2;
        order = order.iter().flat_map(|&s| [s, n + 1 - s]).collect();
    }
    order
}

impl Room {
    /// Builds the bracket from the seated entrants and settles byes. The bracket
    /// has `next_power_of_two(entrants)` places (≤ `size`), so every first-round
    /// pairing holds at least one entrant and byes go to the top seeds.
    /// Returns the duels to spawn.
    pub(super) fn build_bracket(&mut self) -> Vec<Output> {
        let ratings: Vec<(&str, i64)> = self
            .roster
            .all()
            .iter()
            .map(|p| (p.id.as_str(), DEFAULT_RATING))
            .collect();
        let seeds = seed(&ratings);
        let places = seeds.len().next_power_of_two().max(2);
        let order = placement(places);
        let first: Vec<Slot> = order
            .chunks(2)
            .map(|pair| Slot {
                a: seeds.get(pair[0] - 1).cloned(),
                b: seeds.get(pair[1] - 1).cloned(),
                ..Slot::empty()
            })
            .collect();
        let mut rounds = vec![first];
        let mut width = places / 4;
        while width >= 1 {
            rounds.push((0..width).map(|_| Slot::empty()).collect());
            width /= 2;
        }
        self.bracket = Some(rounds);
        self.settle()
    }

    /// Decides every pairing that can be decided without a duel (byes,
    /// walkovers), moves winners on, and returns the duels to spawn for pairings
    /// whose two entrants are now known.
    fn settle(&mut self) -> Vec<Output> {
        let mut spawns = Vec::new();
        let Some(mut rounds) = self.bracket.take() else {
            return spawns;
        };
        for r in 0..rounds.len() {
            for i in 0..rounds[r].len() {
                let slot = &rounds[r][i];
                if slot.winner.is_some() || slot.room.is_some() {
                    continue;
                }
                let ready = r == 0
                    || (rounds[r - 1][2 * i].winner.is_some()
                        && rounds[r - 1][2 * i + 1].winner.is_some());
                if !ready {
                    continue;
                }
                let (winner, decided) = match (&slot.a, &slot.b) {
                    (Some(one), None) | (None, Some(one)) => (one.clone(), Decided::Bye),
                    (Some(a), Some(b)) => {
                        let gone = |id: &str| self.roster.get(id).is_some_and(|p| p.left);
                        match (gone(a), gone(b)) {
                            (false, false) => {
                                let room = format!("{}.{r}.{i}", self.spec.room);
                                spawns.push(Output::SpawnDuel {
                                    room: room.clone(),
                                    players: [self.player_ref(a), self.player_ref(b)],
                                    round: r as u32,
                                });
                                rounds[r][i].room = Some(room);
                                continue;
                            }
                            (true, false) => (b.clone(), Decided::Walkover),
                            // Both gone: the better-placed one advances, to lose
                            // by walkover to anyone still playing.
                            (_, true) => (a.clone(), Decided::Walkover),
                        }
                    }
                    // Invariant: with next_power_of_two places, every first-round
                    // pairing has an entrant and every later one is fed two winners.
                    (None, None) => continue,
                };
                Self::decide(&mut rounds, r, i, winner, decided);
                if decided == Decided::Walkover {
                    self.eliminate_loser(&rounds[r][i], r);
                }
            }
        }
        self.bracket = Some(rounds);
        spawns
    }

    /// Records `winner` of pairing `(r, i)` and moves them into the next round.
    fn decide(rounds: &mut [Vec<Slot>], r: usize, i: usize, winner: String, how: Decided) {
        if let Some(next) = rounds.get_mut(r + 1).and_then(|round| round.get_mut(i / 2)) {
            if i.is_multiple_of(2) {
                next.a = Some(winner.clone());
            } else {
                next.b = Some(winner.clone());
            }
        }
        rounds[r][i].winner = Some(winner);
        rounds[r][i].decided = how;
    }

    fn eliminate_loser(&mut self, slot: &Slot, round: usize) {
        let loser = if slot.winner == slot.a {
            &slot.b
        } else {
            &slot.a
        };
        if let Some(p) = loser.as_deref().and_then(|id| self.roster.get_mut(id)) {
            p.eliminated_in = Some(round as u32);
        }
    }

    fn player_ref(&self, id: &str) -> PlayerRef {
        PlayerRef {
            id: id.to_owned(),
            name: self
                .roster
                .get(id)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
        }
    }

    /// The bracket as `bracket` and `room_state` show it.
    pub(super) fn pairings(&self) -> Vec<Vec<Pairing>> {
        self.bracket
            .iter()
            .flatten()
            .map(|round| round.iter().map(Slot::pairing).collect())
            .collect()
    }

    pub(super) fn bracket_msg(&self) -> ServerMsg {
        ServerMsg::Bracket(Bracket {
            room: self.spec.room.clone(),
            rounds: self.pairings(),
        })
    }

    /// The champion, once the final is decided.
    fn champion(&self) -> Option<&str> {
        self.bracket.as_ref()?.last()?.first()?.winner.as_deref()
    }

    /// After a pairing was decided: settle what follows, then publish.
    fn bracket_changed(&mut self, now: Millis) {
        let spawns = self.settle();
        self.publish(now, spawns);
    }

    /// Tells everyone the bracket, spawns the ready duels, ends on a champion.
    fn publish(&mut self, now: Millis, spawns: Vec<Output>) {
        let msg = self.bracket_msg();
        self.out.push_back(Output::Broadcast(msg));
        self.out.extend(spawns);
        if self.champion().is_some() {
            self.finish(now);
        }
    }

    /// [`crate::Input::DuelOver`]: the child duel `room` ended with `winner`.
    pub(super) fn duel_over(
        &mut self,
        now: Millis,
        room: &str,
        winner: &str,
        scores: &[(String, u64)],
    ) -> Result<bool, RoomError> {
        if self.phase != Phase::Playing || self.bracket.is_none() {
            return Err(RoomError::NotAllowed("no tournament duel is running"));
        }
        let rounds = self.bracket.as_deref().unwrap_or_default();
        let Some((r, i)) = rounds.iter().enumerate().find_map(|(r, round)| {
            round
                .iter()
                .position(|s| s.running() && s.room.as_deref() == Some(room))
                .map(|i| (r, i))
        }) else {
            return Err(RoomError::Invalid(format!("no running duel {room}")));
        };
        let slot = &rounds[r][i];
        if slot.a.as_deref() != Some(winner) && slot.b.as_deref() != Some(winner) {
            return Err(RoomError::Invalid(format!(
                "{winner} does not play in {room}"
            )));
        }
        let pair = [slot.a.clone(), slot.b.clone()];
        for (user, points) in scores {
            if pair.iter().any(|p| p.as_deref() == Some(user)) {
                if let Some(p) = self.roster.get_mut(user) {
                    p.score += points;
                }
            }
        }
        if let Some(rounds) = self.bracket.as_mut() {
            Self::decide(rounds, r, i, winner.to_owned(), Decided::Duel);
        }
        if let Some(slot) = self.bracket.as_ref().map(|rounds| rounds[r][i].clone()) {
            self.eliminate_loser(&slot, r);
        }
        self.bracket_changed(now);
        Ok(true)
    }

    /// An entrant leaves during play: out of the tournament. A running duel of
    /// theirs is forfeited through the host; a pairing not yet played becomes a
    /// walkover for the opponent.
    pub(super) fn tournament_leave(&mut self, now: Millis, user: &str) -> Result<bool, RoomError> {
        let player = self.roster.get_mut(user).ok_or(RoomError::NotInRoom)?;
        if player.left {
            return Ok(false);
        }
        player.left = true;
        let running = self
            .bracket
            .iter()
            .flatten()
            .flatten()
            .find(|s| s.running() && (s.a.as_deref() == Some(user) || s.b.as_deref() == Some(user)))
            .and_then(|s| s.room.clone());
        if let Some(room) = running {
            self.out.push_back(Output::Forfeit {
                room,
                user: user.to_owned(),
            });
        } else {
            // Their next pairing, once its other entrant is known, is a walkover.
            let before = self.pairings();
            let spawns = self.settle();
            if !spawns.is_empty() || before != self.pairings() {
                self.publish(now, spawns);
            }
        }
        Ok(true)
    }
}
