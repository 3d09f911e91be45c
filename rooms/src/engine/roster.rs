//! The room's players: seats in join order plus an id index, each player's
//! running totals and per-round answer state, and whether they are still in the
//! room (receiving its frames).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One seated player and everything the rules track about them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Player {
    pub id: String,
    pub name: String,
    /// Points; raid: damage dealt; tournament: points over all duels.
    pub score: u64,
    pub correct: u32,
    pub answered: u32,
    /// Sum of answer times of correct answers (the duel tie-break).
    pub correct_ms: u64,
    /// Battle royale: question number they went out in; tournament: bracket round lost in.
    pub eliminated_in: Option<u32>,
    /// Left during play (forfeit).
    pub left: bool,
    /// No longer in the room: receives none of its frames. Set by leaving during
    /// play or after the end, never by a forfeit from a parent tournament (that
    /// player still sees their duel end). Only [`Roster::depart`] sets it.
    #[serde(default)]
    pub gone: bool,
    /// The reconnect window ran out: answers nothing from now on.
    pub abandoned: bool,
    /// Tournament: the rating the host reported, for seeding (`None`: a newcomer's).
    #[serde(default)]
    pub rating: Option<f64>,
    /// The last question number answered, to refuse a second answer.
    pub last_q: Option<u32>,
    /// Points (raid: damage) gained in the current round.
    pub round_gain: u64,
    /// Answered the current round correctly.
    pub round_correct: bool,
}

impl Player {
    fn new(id: &str, name: &str) -> Player {
        Player {
            id: id.to_owned(),
            name: name.to_owned(),
            score: 0,
            correct: 0,
            answered: 0,
            correct_ms: 0,
            eliminated_in: None,
            left: false,
            gone: false,
            abandoned: false,
            rating: None,
            last_q: None,
            round_gain: 0,
            round_correct: false,
        }
    }

    /// Still plays: answers count and rounds wait for them.
    pub fn can_answer(&self) -> bool {
        !self.left && !self.abandoned && self.eliminated_in.is_none()
    }

    /// `room_state.players[].alive`: still in the match (not out, not left).
    pub fn alive(&self) -> bool {
        !self.left && self.eliminated_in.is_none()
    }
}

/// The seats, in join order, with an index by user id.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Roster {
    players: Vec<Player>,
    /// user id → position in `players`; a BTreeMap so the state stays deterministic.
    index: BTreeMap<String, usize>,
    /// How many players are [`Player::gone`], so the room's member count is O(1).
    #[serde(default)]
    gone: usize,
}

impl Roster {
    pub fn len(&self) -> usize {
        self.players.len()
    }

    /// Players still in the room (not [`Player::gone`]).
    pub fn present(&self) -> usize {
        self.players.len() - self.gone
    }

    pub fn all(&self) -> &[Player] {
        &self.players
    }

    pub fn all_mut(&mut self) -> &mut [Player] {
        &mut self.players
    }

    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn get(&self, id: &str) -> Option<&Player> {
        self.position(id).map(|i| &self.players[i])
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Player> {
        self.position(id).map(|i| &mut self.players[i])
    }

    /// Seats `id`; false if they already hold a seat.
    pub fn seat(&mut self, id: &str, name: &str) -> bool {
        if self.index.contains_key(id) {
            return false;
        }
        self.index.insert(id.to_owned(), self.players.len());
        self.players.push(Player::new(id, name));
        true
    }

    /// The player in `seat` leaves the room for good (during play or after the
    /// end; before play, [`Roster::unseat`] frees the seat instead). False if
    /// they were gone already.
    pub fn depart(&mut self, seat: usize) -> bool {
        let player = &mut self.players[seat];
        if player.gone {
            return false;
        }
        player.gone = true;
        self.gone += 1;
        true
    }

    /// Frees `id`'s seat (before play only); false if they held none.
    pub fn unseat(&mut self, id: &str) -> bool {
        let Some(pos) = self.index.remove(id) else {
            return false;
        };
        if self.players.remove(pos).gone {
            self.gone -= 1;
        }
        for slot in self.index.values_mut() {
            if *slot > pos {
                *slot -= 1;
            }
        }
        true
    }
}
