//! Tournament: seeding by the entrants' ratings, the single-elimination bracket
//! with byes and walkovers, the child duels it spawns, and the `bracket` frames. Entrants are the room's
//! players; their `score` is their points over all their duels and
//! `eliminated_in` the bracket round they lost in.

use juno_protocol::{Bracket as BracketMsg, Pairing, Phase, PlayerRef, ServerMsg};
use serde::{Deserialize, Serialize};

use super::roster::Roster;
use super::{ModeState, Room};
use crate::{Millis, Output, RoomError};

/// The seeding rating of an entrant the host reported none for: a Glicko-2
/// newcomer's.
const DEFAULT_RATING: f64 = 1500.0;

/// How a slot of the bracket was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Decided {
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
struct Slot {
    a: Option<String>,
    b: Option<String>,
    winner: Option<String>,
    /// The child duel's room, once spawned.
    room: Option<String>,
    decided: Decided,
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

/// Seeds entrants from `(id, rating)`: best rating first, equal ratings by id
/// ascending (ids are unique, so the order is total whatever the join order).
fn seed(ratings: &[(&str, f64)]) -> Vec<String> {
    let mut order: Vec<&(&str, f64)> = ratings.iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    order.into_iter().map(|(id, _)| (*id).to_owned()).collect()
}

/// Standard bracket placement for `size` (a power of two): the seeds (1-based)
/// in bracket order, so that seed 1 meets seed `size`, and seeds 1 and 2 can
/// only meet in the final. E.g. 8 → 1 8 4 5 2 7 3 6.
fn placement(size: usize) -> Vec<usize> {
    let mut order = vec![1];
    while order.len() < size {
        let n = order.len() * 2;
        order = order.iter().flat_map(|&s| [s, n + 1 - s]).collect();
    }
    order
}

/// The single-elimination bracket: rounds of pairings, the first round seeded
/// at the start, each later round fed by the winners of the one before. Empty
/// (no rounds) in the lobby.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Bracket {
    rounds: Vec<Vec<Slot>>,
}

impl Bracket {
    /// The bracket for `seeds` (best first), nothing decided yet. It has
    /// `next_power_of_two(entrants)` places (≤ `size`), so every first-round
    /// pairing holds at least one entrant and byes go to the top seeds.
    fn seeded(seeds: &[String]) -> Bracket {
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
        Bracket { rounds }
    }

    /// Decides every pairing that can be decided without a duel (byes,
    /// walkovers, marking the losers out in `roster`), moves winners on, and
    /// returns the duels to spawn for pairings whose two entrants are now known.
    /// `room` is the tournament's id, the stem of its duels' ids.
    fn settle(&mut self, room: &str, roster: &mut Roster) -> Vec<Output> {
        let mut spawns = Vec::new();
        for r in 0..self.rounds.len() {
            for i in 0..self.rounds[r].len() {
                let slot = &self.rounds[r][i];
                if slot.winner.is_some() || slot.room.is_some() {
                    continue;
                }
                let ready = r == 0
                    || (self.rounds[r - 1][2 * i].winner.is_some()
                        && self.rounds[r - 1][2 * i + 1].winner.is_some());
                if !ready {
                    continue;
                }
                let (winner, decided) = match (&slot.a, &slot.b) {
                    (Some(one), None) | (None, Some(one)) => (one.clone(), Decided::Bye),
                    (Some(a), Some(b)) => {
                        let gone = |id: &str| roster.get(id).is_some_and(|p| p.left);
                        match (gone(a), gone(b)) {
                            (false, false) => {
                                let duel = format!("{room}.{r}.{i}");
                                spawns.push(Output::SpawnDuel {
                                    room: duel.clone(),
                                    players: [player_ref(roster, a), player_ref(roster, b)],
                                    round: r as u32,
                                });
                                self.rounds[r][i].room = Some(duel);
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
                self.decide(r, i, winner, decided);
                if decided == Decided::Walkover {
                    self.eliminate_loser(r, i, roster);
                }
            }
        }
        spawns
    }

    /// Records `winner` of pairing `(r, i)` and moves them into the next round.
    fn decide(&mut self, r: usize, i: usize, winner: String, how: Decided) {
        if let Some(next) = self
            .rounds
            .get_mut(r + 1)
            .and_then(|round| round.get_mut(i / 2))
        {
            if i.is_multiple_of(2) {
                next.a = Some(winner.clone());
            } else {
                next.b = Some(winner.clone());
            }
        }
        self.rounds[r][i].winner = Some(winner);
        self.rounds[r][i].decided = how;
    }

    /// The loser of the decided pairing `(r, i)` went out in round `r`.
    fn eliminate_loser(&self, r: usize, i: usize, roster: &mut Roster) {
        let slot = &self.rounds[r][i];
        let loser = if slot.winner == slot.a {
            &slot.b
        } else {
            &slot.a
        };
        if let Some(p) = loser.as_deref().and_then(|id| roster.get_mut(id)) {
            p.eliminated_in = Some(r as u32);
        }
    }

    /// The running pairing whose duel is `room`.
    fn running(&self, room: &str) -> Option<(usize, usize)> {
        self.rounds.iter().enumerate().find_map(|(r, round)| {
            round
                .iter()
                .position(|s| s.running() && s.room.as_deref() == Some(room))
                .map(|i| (r, i))
        })
    }

    /// Whether the duel `room` was played and its end reported.
    fn reported(&self, room: &str) -> bool {
        self.rounds
            .iter()
            .flatten()
            .any(|s| s.room.as_deref() == Some(room) && s.winner.is_some())
    }

    /// The duel `user` is playing right now, if any.
    fn running_duel_of(&self, user: &str) -> Option<String> {
        self.rounds
            .iter()
            .flatten()
            .find(|s| s.running() && (s.a.as_deref() == Some(user) || s.b.as_deref() == Some(user)))
            .and_then(|s| s.room.clone())
    }

    /// The bracket as `bracket` and `room_state` show it.
    pub fn pairings(&self) -> Vec<Vec<Pairing>> {
        self.rounds
            .iter()
            .map(|round| round.iter().map(Slot::pairing).collect())
            .collect()
    }

    /// The champion, once the final is decided.
    fn champion(&self) -> Option<&str> {
        self.rounds.last()?.first()?.winner.as_deref()
    }
}

fn player_ref(roster: &Roster, id: &str) -> PlayerRef {
    PlayerRef {
        id: id.to_owned(),
        name: roster.get(id).map(|p| p.name.clone()).unwrap_or_default(),
    }
}

impl Room {
    /// The bracket, in a tournament.
    fn bracket(&self) -> Option<&Bracket> {
        match &self.mode {
            ModeState::Tournament(bracket) => Some(bracket),
            _ => None,
        }
    }

    /// Seeds the bracket from the seated entrants and settles byes. Returns the
    /// duels to spawn.
    pub(super) fn build_bracket(&mut self) -> Vec<Output> {
        let ratings: Vec<(&str, f64)> = self
            .roster
            .all()
            .iter()
            .map(|p| (p.id.as_str(), p.rating.unwrap_or(DEFAULT_RATING)))
            .collect();
        let bracket = Bracket::seeded(&seed(&ratings));
        self.mode = ModeState::Tournament(bracket);
        self.settle()
    }

    /// [`crate::Input::Rating`]: remembers a seated entrant's rating for the
    /// seeding. Only a tournament's lobby seeds, so anywhere else it changes
    /// nothing (and is not logged).
    pub(super) fn rate(&mut self, user: &str, rating: f64) -> Result<bool, RoomError> {
        if !rating.is_finite() {
            return Err(RoomError::Invalid(format!(
                "a rating must be a finite number, not {rating}"
            )));
        }
        if self.phase != Phase::Waiting || !matches!(self.mode, ModeState::Tournament(_)) {
            return Ok(false);
        }
        let player = self.roster.get_mut(user).ok_or(RoomError::NotInRoom)?;
        if player.rating == Some(rating) {
            return Ok(false);
        }
        player.rating = Some(rating);
        Ok(true)
    }

    /// [`Bracket::settle`] on this room's bracket and roster.
    fn settle(&mut self) -> Vec<Output> {
        match &mut self.mode {
            ModeState::Tournament(bracket) => bracket.settle(&self.spec.room, &mut self.roster),
            _ => Vec::new(),
        }
    }

    /// The bracket as `bracket` and `room_state` show it (empty before the start).
    pub(super) fn pairings(&self) -> Vec<Vec<Pairing>> {
        self.bracket().map(Bracket::pairings).unwrap_or_default()
    }

    pub(super) fn bracket_msg(&self) -> ServerMsg {
        ServerMsg::Bracket(BracketMsg {
            room: self.spec.room.clone(),
            rounds: self.pairings(),
        })
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
        if self.bracket().and_then(Bracket::champion).is_some() {
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
        let ModeState::Tournament(bracket) = &mut self.mode else {
            return Err(RoomError::NotAllowed("no tournament duel is running"));
        };
        if self.phase != Phase::Playing {
            return Err(RoomError::NotAllowed("no tournament duel is running"));
        }
        let Some((r, i)) = bracket.running(room) else {
            // A host that adopted the tournament after a failover may report a
            // duel the log already has: refused, so it neither adds its points
            // nor moves its winner on twice.
            if bracket.reported(room) {
                return Err(RoomError::Invalid(format!(
                    "duel {room} was already reported"
                )));
            }
            return Err(RoomError::Invalid(format!("no running duel {room}")));
        };
        let slot = &bracket.rounds[r][i];
        if slot.a.as_deref() != Some(winner) && slot.b.as_deref() != Some(winner) {
            return Err(RoomError::Invalid(format!(
                "{winner} does not play in {room}"
            )));
        }
        let pair = [slot.a.clone(), slot.b.clone()];
        for (user, points) in scores {
            if pair.iter().any(|p| p.as_deref() == Some(user)) {
                if let Some(p) = self.roster.get_mut(user) {
                    // The host's numbers: saturate rather than overflow (a
                    // panic, or a wrapped score that falls).
                    p.score = p.score.saturating_add(*points);
                }
            }
        }
        bracket.decide(r, i, winner.to_owned(), Decided::Duel);
        bracket.eliminate_loser(r, i, &mut self.roster);
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
            .bracket()
            .and_then(|bracket| bracket.running_duel_of(user));
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
