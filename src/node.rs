//! The node: everything a connection, a room host and an HTTP handler share —
//! configuration, keys, the store, metrics, live connections, rooms and seats,
//! matchmaking, flags, the results outbox, and the drain state.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use dashmap::DashMap;
use juno_protocol::{encode, ErrorCode, Flags, Mission, Mode, PlayerRef, RoomOptions, ServerMsg};
use juno_rooms::{RoomSpec, Settings};
use rand::seq::SliceRandom;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::difficulty::{Difficulty, PlayerStats};
use crate::flags::FlagSet;
use crate::logins::Logins;
use crate::matchmaker::Matchmaker;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::room_host::{self, RoomCmd};
use crate::session::{ConnHandle, Sessions};
use crate::store::Store;

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

/// The shared state of one server process.
pub struct Node {
    pub config: Config,
    pub auth: Auth,
    pub store: Store,
    pub metrics: Metrics,
    pub sessions: Sessions,
    /// Rooms hosted here, by id.
    pub rooms: DashMap<String, RoomHandle>,
    /// The room each user is seated in (one running room at a time).
    pub seats: DashMap<String, String>,
    /// A tournament entrant's current duel (their seat stays the tournament's).
    pub sub_seats: DashMap<String, String>,
    pub matchmaker: Matchmaker,
    flags: RwLock<FlagSet>,
    pub outbox: Outbox,
    /// Batches login records (users, last_login, session telemetry).
    pub logins: Logins,
    /// Set in cluster mode: Redis directories and the bus to other nodes.
    pub cluster: Option<Arc<Cluster>>,
    /// Picks a match's questions for its players (flag `hrm_trm`; `mangle_zpd` asks the service).
    pub difficulty: Difficulty,
    draining: AtomicBool,
    /// Cancelled when the node stops serving.
    pub shutdown: CancellationToken,
    /// Room host tasks, so shutdown can wait for them.
    pub room_tasks: TaskTracker,
}

impl Node {
    pub fn new(
        config: Config,
        auth: Auth,
        store: Store,
        flags: FlagSet,
        cluster: Option<Arc<Cluster>>,
        difficulty: Difficulty,
    ) -> Arc<Node> {
        let metrics = Metrics::new();
        let sessions = Sessions::new(
            metrics.frames_sent_total.clone(),
            metrics.slow_consumers_total.clone(),
        );
        let outbox = Outbox::new(metrics.outbox_pending.clone());
        let logins = Logins::start(store.clone());
        Arc::new(Node {
            config,
            auth,
            store,
            metrics,
            sessions,
            rooms: DashMap::new(),
            seats: DashMap::new(),
            sub_seats: DashMap::new(),
            matchmaker: Matchmaker::default(),
            flags: RwLock::new(flags),
            outbox,
            logins,
            cluster,
            difficulty,
            draining: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
            room_tasks: TaskTracker::new(),
        })
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks the node as draining; `true` the first time.
    pub fn set_draining(&self) -> bool {
        !self.draining.swap(true, Ordering::AcqRel)
    }

    /// Every flag, as it applies to `user`.
    pub fn flags_for(&self, user: &str) -> BTreeMap<String, bool> {
        self.flags
            .read()
            .map(|f| f.for_user(user))
            .unwrap_or_default()
    }

    pub fn flag_enabled(&self, name: &str, user: &str) -> bool {
        self.flags
            .read()
            .map(|f| f.enabled(name, user))
            .unwrap_or(false)
    }

    /// Replaces the flag cache and pushes `flags` to every connected client whose
    /// flags changed (each user sees the flags as they apply to them).
    pub fn apply_flags(&self, flags: FlagSet) {
        let old = match self.flags.write() {
            Ok(mut cache) => {
                if *cache == flags {
                    return;
                }
                std::mem::replace(&mut *cache, flags.clone())
            }
            Err(_) => return,
        };
        for conn in self.sessions.all() {
            let now = flags.for_user(&conn.user);
            if now != old.for_user(&conn.user) {
                conn.send(encode(&ServerMsg::Flags(Flags { flags: now })));
            }
        }
    }

    /// Answers `feature_disabled` unless the mode's flag is on for `user`.
    pub fn check_mode(&self, mode: Mode, user: &str) -> Result<(), Refusal> {
        if self.flag_enabled(mode.flag(), user) {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorCode::FeatureDisabled,
                format!("{} is disabled", mode.flag()),
            ))
        }
    }

    /// Reserves `user`'s seat in `room` (cluster-wide in cluster mode); fails if
    /// they are seated in another room.
    pub async fn reserve_seat(&self, user: &str, room: &str) -> Result<(), Refusal> {
        let taken = |other: &str| {
            Refusal::new(
                ErrorCode::NotAllowed,
                format!("you are already playing in room {other}"),
            )
        };
        if let Some(cluster) = &self.cluster {
            match cluster.reserve_seat(user, room).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(other)) => return Err(taken(&other)),
                // Redis is away: this node goes on with what it knows itself.
                Err(e) => tracing::debug!(error = %format!("{e:#}"), "reserving a seat locally"),
            }
        }
        match self.seats.entry(user.to_string()) {
            dashmap::Entry::Occupied(e) if e.get() != room => Err(taken(e.get())),
            dashmap::Entry::Occupied(_) => Ok(()),
            dashmap::Entry::Vacant(e) => {
                e.insert(room.to_string());
                Ok(())
            }
        }
    }

    /// A room on this node seated `user`: remember it here and in the cluster.
    pub fn confirm_seat(&self, user: &str, room: &str) {
        self.seats.insert(user.to_string(), room.to_string());
        if let Some(cluster) = &self.cluster {
            cluster.set_seat(user, room);
        }
    }

    /// Frees `user`'s seat if it is in `room`.
    pub fn release_seat(&self, user: &str, room: &str) {
        self.seats.remove_if(user, |_, r| r == room);
        if let Some(cluster) = &self.cluster {
            cluster.release_seat(user, room);
        }
    }

    /// Records (or clears) a tournament entrant's current duel.
    pub fn set_sub_seat(&self, user: &str, room: Option<&str>) {
        match room {
            Some(room) => {
                self.sub_seats.insert(user.to_string(), room.to_string());
            }
            None => {
                self.sub_seats.remove(user);
            }
        }
        if let Some(cluster) = &self.cluster {
            cluster.set_sub_seat(user, room);
        }
    }

    /// The room `user` is seated in, anywhere in the cluster.
    pub async fn seated_room(&self, user: &str) -> Option<String> {
        self.rooms_of(user).await.into_iter().next()
    }

    /// Every live room the user is seated in — their room, and a tournament
    /// entrant's current duel — anywhere in the cluster.
    pub async fn rooms_of(&self, user: &str) -> Vec<String> {
        if let Some(cluster) = &self.cluster {
            // Without Redis, fall back to the rooms hosted here.
            if let Some(rooms) = cluster.rooms_of(user).await {
                return rooms;
            }
        }
        let mut rooms: Vec<String> = self
            .seats
            .get(user)
            .map(|r| r.clone())
            .into_iter()
            .collect();
        rooms.extend(self.sub_seats.get(user).map(|r| r.clone()));
        rooms
    }

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
        let settings = Settings::resolve(mode, options, self.config.pace);
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
        room_host::spawn(self.clone(), spec, mission.world.clone(), start, None);
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
    ) -> Vec<juno_protocol::Question> {
        let first = players.first().map(|p| p.id.as_str()).unwrap_or_default();
        if !self.flag_enabled("hrm_trm", first) {
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
        let ask_service = self.flag_enabled("mangle_zpd", first);
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

    /// Sends an encoded frame to one user's live connection, if any.
    pub fn send_to(&self, user: &str, frame: Bytes) -> bool {
        self.sessions.send_to(user, frame)
    }
}

/// The match's questions: the mission's pool in a random order, repeated if the
/// match asks for more questions than the pool holds.
fn pick_questions(mission: &Mission, count: usize) -> Vec<juno_protocol::Question> {
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
