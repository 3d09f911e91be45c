//! Rooms on this node: how to reach one, creating one (its spec, its questions),
//! seats, and the refusals a client gets back as `error` frames.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use juno_protocol::{ErrorCode, Mission, Mode, PlayerRef, Question, RoomOptions, ServerMsg};
use juno_rooms::{RoomSpec, Settings};
use rand::seq::SliceRandom;
use tokio::sync::mpsc;

use super::difficulty::PlayerStats;
use super::host::{self, RoomCmd};
use super::sessions::ConnHandle;
use super::Node;

/// How to reach a room hosted on this node.
#[derive(Clone, Debug)]
pub struct RoomHandle {
    pub tx: mpsc::Sender<RoomCmd>,
    pub mode: Mode,
    /// Set by the host when the match ends (the room lingers a while after).
    pub finished: Arc<AtomicBool>,
}

impl RoomHandle {
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

/// A refusal to send back to the client as an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub msg: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Refusal {
        Refusal {
            code,
            msg: msg.into(),
        }
    }

    pub fn to_msg(&self, rid: Option<u64>) -> ServerMsg {
        ServerMsg::error(rid, self.code, self.msg.clone())
    }

    fn seated_elsewhere(room: &str) -> Refusal {
        Refusal::new(
            ErrorCode::NotAllowed,
            format!("you are already playing in room {room}"),
        )
    }
}

/// Who a new room seats first and who hears back about its creation.
pub struct RoomStart {
    /// Players seated before anything else happens.
    pub seat: Vec<PlayerRef>,
    /// Send `match_found` to the seated players (matchmaking and tournament pairings).
    pub announce: bool,
    /// A creator who watches instead of playing.
    pub spectator: Option<String>,
    /// The `create` to answer with `ok {room}`.
    pub reply: Option<(ConnHandle, Option<u64>)>,
    /// Seated players connected to other nodes, and which node.
    pub remote: HashMap<String, String>,
}

impl Node {
    /// Refuses new rooms and new players while draining.
    pub fn check_not_draining(&self) -> Result<(), Refusal> {
        if self.is_draining() {
            Err(Refusal::new(
                ErrorCode::Draining,
                "this node is draining; reconnect to play",
            ))
        } else {
            Ok(())
        }
    }

    /// Reserves `user`'s seat in `room` (cluster-wide in a cluster); fails if
    /// they are seated in another room.
    pub async fn reserve_seat(&self, user: &str, room: &str) -> Result<(), Refusal> {
        self.cluster
            .directory
            .reserve_seat(user, room)
            .await
            .map_err(|other| Refusal::seated_elsewhere(&other))
    }

    /// Frees `user`'s seat if it is in `room`.
    pub fn release_seat(&self, user: &str, room: &str) {
        self.cluster.directory.release_seat(user, room);
    }

    /// Every live room the user is seated in — their room, and a tournament
    /// entrant's current duel — anywhere in the cluster.
    pub async fn rooms_of(&self, user: &str) -> Vec<String> {
        self.cluster.directory.rooms_of(user).await
    }

    /// Refuses a user who is already seated somewhere.
    pub async fn check_unseated(&self, user: &str) -> Result<(), Refusal> {
        match self.rooms_of(user).await.into_iter().next() {
            Some(room) => Err(Refusal::seated_elsewhere(&room)),
            None => Ok(()),
        }
    }

    /// A mission by id, as a refusal the client understands when it cannot be had.
    pub async fn mission(&self, id: &str) -> Result<Mission, Refusal> {
        match self.store.mission(id).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(Refusal::new(
                ErrorCode::NotFound,
                format!("no mission '{id}'"),
            )),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "reading mission");
                Err(Refusal::new(
                    ErrorCode::Internal,
                    "the mission could not be loaded; try again",
                ))
            }
        }
    }

    /// Creates room `id` for `mission` and starts hosting it here. Seats in
    /// `start.seat` must already be reserved for `id`.
    pub async fn create_room(
        self: &Arc<Self>,
        id: String,
        mode: Mode,
        mission: &Mission,
        options: &RoomOptions,
        creator: Option<&str>,
        start: RoomStart,
    ) -> Result<(), Refusal> {
        self.check_not_draining()?;
        let mut settings = Settings::resolve(mode, options, self.config.pace);
        settings.reconnect_ms = self.config.resume.as_millis() as u64;
        let spec = RoomSpec {
            room: id.clone(),
            mode,
            mission: mission.id.clone(),
            creator: creator.map(String::from),
            questions: self
                .choose_questions(mission, settings.questions as usize, &start.seat)
                .await,
            settings,
            parent: None,
        };
        self.cluster.directory.register_room_now(&id, mode).await;
        host::spawn(self.clone(), spec, mission.world.clone(), start, None);
        Ok(())
    }

    /// The match's questions: aimed at the players' zone of proximal development by
    /// the difficulty policy when `hrm_trm` is on (asking the policy service first
    /// when `mangle_zpd` is on too), else the mission's pool in a random order.
    async fn choose_questions(
        &self,
        mission: &Mission,
        count: usize,
        players: &[PlayerRef],
    ) -> Vec<Question> {
        let first = players.first().map(|p| p.id.as_str()).unwrap_or_default();
        if !self.flags.enabled("hrm_trm", first) {
            return pick_questions(mission, count);
        }
        let ids: Vec<&str> = players.iter().map(|p| p.id.as_str()).collect();
        let stats = match PlayerStats::load(&self.store, &ids).await {
            Ok(stats) => stats,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "player stats for the difficulty policy");
                Vec::new()
            }
        };
        let ask_service = self.flags.enabled("mangle_zpd", first);
        let selection = self
            .difficulty
            .select(mission, count, &stats, rand::random(), ask_service)
            .await;
        let mut questions: Vec<_> = selection
            .indices
            .iter()
            .filter_map(|&i| mission.questions.get(i).cloned())
            .collect();
        if questions.len() < count {
            questions.extend(pick_questions(mission, count - questions.len()));
        }
        questions.truncate(count);
        questions
    }
}

/// The match's questions: the mission's pool in a random order, repeated if the
/// match asks for more questions than the pool holds.
fn pick_questions(mission: &Mission, count: usize) -> Vec<Question> {
    let mut order: Vec<usize> = (0..mission.questions.len()).collect();
    order.shuffle(&mut rand::rng());
    order
        .iter()
        .cycle()
        .take(count)
        .map(|&i| mission.questions[i].clone())
        .collect()
}

/// A short random room id.
pub fn new_room_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    (0..10)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}
