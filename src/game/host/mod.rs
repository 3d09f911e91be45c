//! The room host: one tokio task per room, the only code that touches the room's
//! state. It feeds the sans-IO [`Room`] client actions and the time (one timer,
//! `sleep_until(poll_timeout())`), encodes each broadcast once and hands the same
//! bytes to every member (on this node, or one bus message per other node), keeps
//! the directories' seats in step with the room, and hands finished matches to
//! the outbox. The rules — who is a member, the reconnect window, spectators —
//! are the room's; the host only knows where each member is connected.
//!
//! In a cluster the room is durable (WIRE.md §5 Failover): what the room does
//! is first held as [`Effect`]s, the inputs behind them are committed to the
//! room's log in Redis (one write for whatever queued up meanwhile), and only
//! then do frames, seats and results go out. A commit refused because another
//! node holds a later epoch stops the host on the spot: nothing more goes out
//! ([`durable`]). Where frames go is [`fanout`]'s.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use juno_protocol::{encode, ErrorCode, MatchFound, Mode, Phase, PlayerRef, ServerMsg};
use juno_rooms::{Input, Millis, Output, Room, RoomError, RoomSpec, Summary};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use bytes::Bytes;

mod durable;
mod fanout;

use super::sessions::ConnHandle;
use super::{Node, RoomHandle, RoomStart};
use crate::cluster::RoomLog;
use crate::model::rating::{self, Rating};
use crate::model::MatchRecord;
use fanout::Fanout;

/// Commands a room accepts. Capacity is large so a thousand players answering at
/// once queue up instead of being refused.
const COMMAND_QUEUE: usize = 4096;

/// A player's or spectator's request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "a", rename_all = "snake_case")]
pub enum Action {
    Join { name: String },
    Spectate,
    Leave,
    Start,
    Answer { q: u32, choice: u32 },
}

/// What a room host is told.
#[derive(Debug)]
pub enum RoomCmd {
    Client {
        user: String,
        rid: Option<u64>,
        /// When the frame arrived: answer time runs to here, not to when the room got to it.
        at: Instant,
        action: Action,
        reply: Reply,
    },
    /// The player's connection dropped: keep the seat for the reconnect window.
    Disconnected { user: String },
    /// The player is back (on a new connection, on `node` if not this one): send
    /// them the room as it is now.
    Reconnected { user: String, node: Option<String> },
    /// A spectator's connection ended.
    Unspectate { user: String },
    /// Drain: a room that has not started closes; a running one plays on.
    CloseIfWaiting,
    /// Another node may hold the room now: check the lease at once.
    CheckLease,
    /// Tournament: one of its duels ended.
    ChildFinished {
        room: String,
        winner: String,
        scores: Vec<(String, u64)>,
    },
    /// Tournament duel: `user` left the tournament, so they forfeit this duel.
    Forfeit { user: String },
    /// Players' ratings: a duel's, loaded when it started (for its rating
    /// update), or a tournament entrant's, loaded when they joined (for seeding).
    Ratings(HashMap<String, Rating>),
}

/// Where the direct answer to a client's command goes.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The connection on this node that sent it.
    Local(ConnHandle),
    /// The node the client is connected to.
    Remote(String),
}

/// How a room is made, written first in its log: with the inputs after it, an
/// adopter rebuilds the room exactly.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RoomHeader {
    pub spec: RoomSpec,
    pub world: String,
    pub created: DateTime<Utc>,
}

/// Where a new host's room comes from.
pub enum Begin {
    /// A new room, with its first players.
    New(RoomStart),
    /// A room rebuilt from a dead node's log (see [`super::adopt`]).
    Adopted(Adoption),
}

/// What an adopter knows when it starts hosting a rebuilt room.
pub struct Adoption {
    pub created: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    /// Room time at the old host's death: the clock goes on from here.
    pub resume_at: Millis,
    /// Members connected to other live nodes (everyone else connected here or gone).
    pub remote: HashMap<String, String>,
    /// Players connected nowhere: their reconnect window starts now.
    pub gone: Vec<String>,
    /// When the death was seen, for `adoption_seconds`.
    pub detected: Instant,
}

/// Starts hosting `spec` on `node` (registered in the directory by the caller);
/// a tournament's duel reports its end to `parent`.
pub fn spawn(
    node: Arc<Node>,
    spec: RoomSpec,
    world: String,
    start: RoomStart,
    parent: Option<mpsc::Sender<RoomCmd>>,
) {
    let log = node
        .cluster
        .room_log(&spec.room, spec.mode.as_str(), spec.parent.as_deref(), 1);
    let room = Room::new(spec);
    host(
        node,
        room,
        world,
        Utc::now(),
        log,
        parent,
        Begin::New(start),
    );
}

/// Hosts `room`, rebuilt from its log (which this node now writes under a
/// new epoch); returns its command channel.
pub fn spawn_adopted(
    node: Arc<Node>,
    room: Room,
    world: String,
    log: RoomLog,
    adoption: Adoption,
    parent: Option<mpsc::Sender<RoomCmd>>,
) -> mpsc::Sender<RoomCmd> {
    let created = adoption.created;
    host(
        node,
        room,
        world,
        created,
        Some(log),
        parent,
        Begin::Adopted(adoption),
    )
}

fn host(
    node: Arc<Node>,
    room: Room,
    world: String,
    created_wall: DateTime<Utc>,
    log: Option<RoomLog>,
    parent: Option<mpsc::Sender<RoomCmd>>,
    begin: Begin,
) -> mpsc::Sender<RoomCmd> {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let mode = room.mode();
    let finished = Arc::new(AtomicBool::new(false));
    node.rooms.insert(
        room.id().to_string(),
        RoomHandle {
            tx: tx.clone(),
            mode,
            finished: finished.clone(),
        },
    );
    node.metrics
        .rooms_active
        .with_label_values(&[mode.as_str()])
        .inc();
    let header = log.as_ref().map(|_| {
        durable::encode_named(&RoomHeader {
            spec: room.spec().clone(),
            world: world.clone(),
            created: created_wall,
        })
    });
    let host = Host {
        room,
        node: node.clone(),
        epoch: Instant::now(),
        base: 0,
        created_wall,
        started_wall: None,
        last_now: 0,
        world,
        remote: HashMap::new(),
        fanout: Cell::new(None),
        ratings: None,
        new_ratings: Vec::new(),
        finished_at: None,
        finished,
        closed: false,
        parent,
        pending: Vec::new(),
        log,
        header,
        logged: 0,
        durable: false,
        origin_changed: true,
        adopted_at: None,
        check_lease: false,
        proved_at: Instant::now(),
        appends: 0,
        log_bytes: 0,
    };
    node.room_tasks.spawn(host.run(rx, begin));
    tx
}

struct Host {
    node: Arc<Node>,
    room: Room,
    /// The instant of room time `base`.
    epoch: Instant,
    /// Room time at `epoch`: 0 for a new room, the time of death for an adopted one.
    base: Millis,
    created_wall: DateTime<Utc>,
    started_wall: Option<DateTime<Utc>>,
    /// Room time only moves forward, even if commands arrive stamped out of order.
    last_now: Millis,
    world: String,
    /// Members connected to other nodes, and which node (everyone else is here).
    remote: HashMap<String, String>,
    /// Where a broadcast goes, worked out once per change of membership (the
    /// room's members version) or of a member's connection rather than per frame:
    /// a raid's broadcast reaches 10,000 members, and looking each one up in the
    /// node's sessions cost more than queueing the frame.
    fanout: Cell<Option<(u64, Fanout)>>,
    /// A duel's players' ratings before the match (loaded when it starts).
    ratings: Option<HashMap<String, Rating>>,
    /// Their ratings after it, written with the match record.
    new_ratings: Vec<(String, Rating)>,
    finished_at: Option<Instant>,
    /// Shared with the room's handle so drain knows when the match is over.
    finished: Arc<AtomicBool>,
    /// Closed before it started (drain, or everyone left).
    closed: bool,
    /// The tournament this duel belongs to.
    parent: Option<mpsc::Sender<RoomCmd>>,
    /// What the room did since the last commit, in order, held until the
    /// inputs behind it are in the log.
    pending: Vec<Effect>,
    /// The room's log and lease in Redis; `None` on a node on its own.
    log: Option<RoomLog>,
    /// The encoded [`RoomHeader`] (with `log`).
    header: Option<Vec<u8>>,
    /// How many of the room's log entries are durable.
    logged: usize,
    /// Whether the lease and header exist (else the next commit writes the whole log).
    durable: bool,
    /// The room's time 0 moved (start, adoption, an outage): the lease records it.
    origin_changed: bool,
    /// An adopted room's death detection, until its first frame goes out.
    adopted_at: Option<Instant>,
    /// The next commit goes to Redis even with nothing to write, to learn
    /// whether the room is still this node's.
    check_lease: bool,
    /// When the last write that proved the lease was sent.
    proved_at: Instant,
    /// Commits and their bytes, for the per-room log metrics.
    appends: u64,
    log_bytes: u64,
}

/// Something the room did, held until its inputs are durable.
enum Effect {
    /// The direct answer to a client's command.
    Reply(Reply, String, Bytes),
    /// A frame for one member.
    Deliver(String, Bytes),
    /// One frame for several users (`match_found`).
    DeliverMany(Vec<String>, Bytes),
    /// What the rules produced.
    Room(Output),
    /// A player took a seat.
    Seated(String),
    /// A join failed: the reserved seat goes back.
    ReleaseSeat(String),
    /// An adopted room's player: their seat points here now.
    Reseat(String),
}

/// Commands taken from the queue before one commit: enough to batch a raid's
/// burst of answers into a few writes, few enough to keep each write small.
const BATCH: usize = 256;

/// Why a host stops.
enum Stop {
    /// Its match is over, or it closed, or its channel did.
    Done,
    /// Another node holds the room now.
    Fenced,
}

impl Host {
    async fn run(mut self, mut rx: mpsc::Receiver<RoomCmd>, begin: Begin) {
        match begin {
            Begin::New(start) => self.begin(start),
            Begin::Adopted(adoption) => self.begin_adopted(adoption),
        }
        let stop = loop {
            if !self.commit().await {
                break Stop::Fenced;
            }
            if self.proof_is_stale() {
                // Frozen between the write and now: the room may be another
                // node's by now. Ask again before anything goes out.
                self.check_lease = true;
                continue;
            }
            self.release();
            if self.should_exit() {
                break Stop::Done;
            }
            let wake = self.next_wake();
            tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        self.on_command(cmd);
                        // Whatever queued meanwhile goes into the same commit.
                        for _ in 1..BATCH {
                            match rx.try_recv() {
                                Ok(cmd) => self.on_command(cmd),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break Stop::Done,
                },
                _ = sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => self.on_timer(),
            }
        };
        match stop {
            Stop::Done => self.teardown().await,
            Stop::Fenced => self.fenced(),
        }
    }

    fn begin(&mut self, start: RoomStart) {
        let room_id = self.room.id().to_string();
        if let Some((conn, rid)) = start.reply {
            let ok = encode(&ServerMsg::Ok(juno_protocol::Ok {
                rid,
                room: Some(room_id.clone()),
            }));
            self.pending
                .push(Effect::Reply(Reply::Local(conn), String::new(), ok));
        }
        let now = self.now(Instant::now());
        if let Some(watcher) = start.spectator {
            if let Err(e) = self.room.handle(now, Input::Spectate { user: watcher }) {
                tracing::warn!(room = %room_id, error = %e, "the creator could not watch");
            }
        }
        self.remote = start.remote;
        self.members_changed();
        if start.announce {
            let found = encode(&ServerMsg::MatchFound(MatchFound {
                room: room_id.clone(),
                mode: self.room.mode(),
                mission: self.room.spec().mission.clone(),
                players: start.seat.clone(),
                parent: self.room.spec().parent.clone(),
            }));
            let users = start.seat.iter().map(|p| p.id.clone()).collect();
            self.pending.push(Effect::DeliverMany(users, found));
        }
        for PlayerRef { id, name } in start.seat {
            match self.room.handle(
                now,
                Input::Join {
                    user: id.clone(),
                    name,
                },
            ) {
                Ok(()) => {
                    self.pending.push(Effect::Seated(id.clone()));
                    self.send_state(&id, now);
                }
                Err(e) => {
                    tracing::warn!(room = %room_id, user = %id, error = %e, "could not seat player");
                    self.pending.push(Effect::ReleaseSeat(id));
                }
            }
        }
        self.collect();
    }

    /// Takes over a rebuilt room: its clock goes on from the old host's death,
    /// players connected nowhere get their reconnect window, and every member
    /// hears the room as it is (`Input::Resume`).
    fn begin_adopted(&mut self, adoption: Adoption) {
        self.base = adoption.resume_at;
        self.last_now = adoption.resume_at;
        self.epoch = Instant::now();
        self.started_wall = adoption.started;
        self.remote = adoption.remote;
        self.logged = self.room.log().len();
        self.durable = true;
        self.origin_changed = true;
        self.adopted_at = Some(adoption.detected);
        // Rebuilt rooms replay outputs nobody needs again.
        while self.room.poll_output().is_some() {}
        let now = self.last_now;
        for user in adoption.gone {
            let input = if self.room.is_player(&user) {
                Input::Disconnect { user }
            } else {
                Input::Unspectate { user }
            };
            self.quietly(now, input);
        }
        self.quietly(now, Input::Resume);
        self.members_changed();
        if self.room.phase() == Phase::Playing && self.room.mode() == Mode::Duel {
            self.load_ratings();
        }
        for user in self.players().map(String::from).collect::<Vec<_>>() {
            self.pending.push(Effect::Reseat(user));
        }
        self.collect();
    }

    /// Applies one command; what it made the room do waits in `pending`.
    fn on_command(&mut self, cmd: RoomCmd) {
        self.apply(cmd);
        self.collect();
    }

    fn apply(&mut self, cmd: RoomCmd) {
        match cmd {
            RoomCmd::Client {
                user,
                rid,
                at,
                action,
                reply,
            } => {
                let now = self.now(at);
                let moved = match &reply {
                    Reply::Local(_) => self.remote.remove(&user).is_some(),
                    Reply::Remote(node) => {
                        self.remote.insert(user.clone(), node.clone()).as_ref() != Some(node)
                    }
                };
                if moved {
                    self.members_changed();
                }
                let answer = match self.on_action(now, &user, action) {
                    Ok(then_state) => Ok(then_state),
                    Err((code, msg)) => Err(ServerMsg::error(rid, code, msg)),
                };
                match answer {
                    Ok(then_state) => {
                        let ok = encode(&ServerMsg::ok(rid));
                        self.pending.push(Effect::Reply(reply, user.clone(), ok));
                        if then_state {
                            self.send_state(&user, now);
                        }
                    }
                    Err(error) => {
                        self.pending
                            .push(Effect::Reply(reply, user, encode(&error)));
                    }
                }
            }
            RoomCmd::Disconnected { user } => {
                let now = self.now(Instant::now());
                self.quietly(now, Input::Disconnect { user });
            }
            RoomCmd::Reconnected { user, node } => {
                let now = self.now(Instant::now());
                self.quietly(now, Input::Reconnect { user: user.clone() });
                self.members_changed();
                match node {
                    Some(node) => self.remote.insert(user.clone(), node),
                    None => self.remote.remove(&user),
                };
                self.send_state(&user, now);
            }
            RoomCmd::Unspectate { user } => {
                let now = self.now(Instant::now());
                self.quietly(now, Input::Unspectate { user });
            }
            RoomCmd::CheckLease => self.check_lease = true,
            RoomCmd::CloseIfWaiting => {
                if self.room.phase() == Phase::Waiting {
                    self.closed = true;
                }
            }
            RoomCmd::ChildFinished {
                room,
                winner,
                scores,
            } => {
                let now = self.now(Instant::now());
                if let Err(e) = self.room.handle(
                    now,
                    Input::DuelOver {
                        room,
                        winner,
                        scores,
                    },
                ) {
                    tracing::warn!(room = %self.room.id(), error = %e, "tournament refused a duel result");
                }
            }
            RoomCmd::Ratings(ratings) if self.room.mode() == Mode::Tournament => {
                let now = self.now(Instant::now());
                for (user, r) in ratings {
                    self.quietly(
                        now,
                        Input::Rating {
                            user,
                            rating: r.rating,
                        },
                    );
                }
            }
            RoomCmd::Ratings(ratings) => self.ratings = Some(ratings),
            RoomCmd::Forfeit { user } => {
                let now = self.now(Instant::now());
                self.quietly(now, Input::Forfeit { user });
            }
        }
    }
}

impl Host {
    /// Applies one client action; `Ok(true)` when the client should get `room_state` after `ok`.
    fn on_action(
        &mut self,
        now: Millis,
        user: &str,
        action: Action,
    ) -> Result<bool, (ErrorCode, String)> {
        let refused = |e: RoomError| (e.code(), e.to_string());
        if matches!(action, Action::Join { .. } | Action::Spectate) {
            // Also when nothing seems to change: the member may be on a new connection.
            self.members_changed();
        }
        match action {
            Action::Join { name } => {
                let seated_before = self.room.is_player(user);
                let input = Input::Join {
                    user: user.to_string(),
                    name,
                };
                match self.room.handle(now, input) {
                    Ok(()) => {
                        if !seated_before {
                            self.pending.push(Effect::Seated(user.to_string()));
                        }
                        Ok(true)
                    }
                    Err(e) => {
                        self.pending.push(Effect::ReleaseSeat(user.to_string()));
                        Err(refused(e))
                    }
                }
            }
            Action::Spectate => self
                .room
                .handle(
                    now,
                    Input::Spectate {
                        user: user.to_string(),
                    },
                )
                .map(|_| true)
                .map_err(refused),
            Action::Leave => {
                if !self.room.is_member(user) {
                    return Err((ErrorCode::NotInRoom, "you are not in this room".into()));
                }
                self.room
                    .handle(
                        now,
                        Input::Leave {
                            user: user.to_string(),
                        },
                    )
                    .map(|_| false)
                    .map_err(refused)
            }
            Action::Start => self
                .room
                .handle(
                    now,
                    Input::Start {
                        user: user.to_string(),
                    },
                )
                .map(|_| false)
                .map_err(refused),
            Action::Answer { q, choice } => self
                .room
                .handle(
                    now,
                    Input::Answer {
                        user: user.to_string(),
                        q,
                        choice,
                    },
                )
                .map(|_| false)
                .map_err(refused),
        }
    }

    /// Feeds an input no client waits an answer for; a refusal is only logged.
    fn quietly(&mut self, now: Millis, input: Input) {
        if let Err(e) = self.room.handle(now, input.clone()) {
            tracing::debug!(room = %self.room.id(), ?input, error = %e, "input refused");
        }
    }

    fn on_timer(&mut self) {
        let now = self.now(Instant::now());
        if self.room.poll_timeout().is_some_and(|t| t <= now) {
            self.room.handle_timeout(now);
        }
        self.collect();
    }

    /// Moves what the room produced into `pending`, in order.
    fn collect(&mut self) {
        while let Some(output) = self.room.poll_output() {
            self.pending.push(Effect::Room(output));
        }
    }

    /// Sends everything the room did since the last commit.
    fn release(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let effects = std::mem::take(&mut self.pending);
        // Seats are free before anybody hears the result: a player who queues again
        // the moment their `result` arrives must not find themselves still seated.
        if let Some(summary) = effects.iter().find_map(|e| match e {
            Effect::Room(Output::Finished(summary)) => Some(summary),
            _ => None,
        }) {
            self.free_seats(summary);
        }
        for effect in effects {
            match effect {
                Effect::Reply(to, user, frame) => self.reply(&to, &user, frame),
                Effect::Deliver(user, frame) => self.deliver(&user, frame),
                Effect::DeliverMany(users, frame) => {
                    let users: Vec<&str> = users.iter().map(String::as_str).collect();
                    self.deliver_many(&users, frame);
                }
                Effect::Seated(user) => self.seated(&user),
                Effect::Reseat(user) => {
                    let directory = &self.node.cluster.directory;
                    // A tournament's duel is its players' current sub-room; their
                    // seat stays the tournament's.
                    if self.room.spec().parent.is_some() {
                        directory.set_sub_seat(&user, Some(self.room.id()));
                    } else {
                        directory.confirm_seat(&user, self.room.id());
                    }
                }
                Effect::ReleaseSeat(user) => self.node.release_seat(&user, self.room.id()),
                Effect::Room(output) => self.act(output),
            }
        }
        if let Some(detected) = self.adopted_at.take() {
            let took = detected.elapsed();
            self.node
                .metrics
                .adoption_seconds
                .observe(took.as_secs_f64());
            tracing::info!(room = %self.room.id(), ms = took.as_millis() as u64, "adopted room is live again");
        }
    }

    /// Carries out one output of the rules.
    fn act(&mut self, output: Output) {
        match output {
            Output::Broadcast(mut msg) => {
                if let ServerMsg::Result(result) = &mut msg {
                    result.rating = self.rate(result);
                }
                self.broadcast(encode(&msg));
            }
            Output::SeatFreed { user } => self.node.release_seat(&user, self.room.id()),
            Output::Send { to, msg } => self.deliver(&to, encode(&msg)),
            Output::Started => {
                self.started_wall = Some(Utc::now());
                self.load_ratings();
            }
            Output::Finished(summary) => self.finish(*summary),
            Output::SpawnDuel { room, players, .. } => self.spawn_duel(room, players),
            Output::Forfeit { room, user } => {
                if let Some(tx) = self.node.rooms.get(&room).map(|h| h.tx.clone()) {
                    let _ = tx.try_send(RoomCmd::Forfeit { user });
                }
            }
        }
    }

    /// A tournament pairing: a duel room on this node whose end comes back here.
    /// Its players stay seated in the tournament; the duel is their current sub-room.
    fn spawn_duel(&mut self, room: String, players: [PlayerRef; 2]) {
        let parent = self.room.spec();
        let mut settings = parent.settings.clone();
        settings.max_players = 2;
        settings.watch = false;
        let spec = RoomSpec {
            room: room.clone(),
            mode: Mode::Duel,
            mission: parent.mission.clone(),
            creator: None,
            settings,
            questions: parent.questions.clone(),
            parent: Some(parent.room.clone()),
        };
        let mut remote = HashMap::new();
        for p in &players {
            self.node.cluster.directory.set_sub_seat(&p.id, Some(&room));
            if let Some(node) = self.remote.get(&p.id) {
                remote.insert(p.id.clone(), node.clone());
            }
        }
        let start = RoomStart {
            seat: players.to_vec(),
            announce: true,
            spectator: None,
            reply: None,
            remote,
        };
        let me = self.node.rooms.get(self.room.id()).map(|h| h.tx.clone());
        // Created rooms are registered before their creator hears of them
        // (`create_room`); a tournament's duel is announced by its own
        // `match_found`, so a queued registration is enough.
        self.node.cluster.directory.register_room(&room, Mode::Duel);
        spawn(self.node.clone(), spec, self.world.clone(), start, me);
    }

    /// A duel's players' ratings, fetched off the room task and sent back to it.
    fn load_ratings(&self) {
        if self.room.mode() == Mode::Duel {
            self.load_ratings_of(self.players().map(String::from).collect());
        }
    }

    /// Loads `users`' ratings off the room task and sends them back to it as
    /// [`RoomCmd::Ratings`]. Without them a duel goes unrated and a tournament
    /// seeds the entrant at the default rating.
    fn load_ratings_of(&self, users: Vec<String>) {
        let Some(tx) = self.node.rooms.get(self.room.id()).map(|h| h.tx.clone()) else {
            return;
        };
        let store = self.node.store.clone();
        tokio::spawn(async move {
            match store.ratings(&users).await {
                Ok(ratings) => {
                    let _ = tx.send(RoomCmd::Ratings(ratings)).await;
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "loading ratings"),
            }
        });
    }

    /// Glicko-2 changes for a finished duel (`result.rating`), remembered for the record.
    fn rate(
        &mut self,
        result: &juno_protocol::MatchResult,
    ) -> Option<std::collections::BTreeMap<String, i64>> {
        let ratings = self.ratings.as_ref()?;
        let [a, b] = result.standings.as_slice() else {
            return None;
        };
        let (ra, rb) = (*ratings.get(&a.id)?, *ratings.get(&b.id)?);
        let outcome = rating::Outcome::from_winner(&a.id, &b.id, result.winner.as_deref());
        let (na, nb) = rating::update_duel(ra, rb, outcome);
        self.new_ratings = vec![(a.id.clone(), na), (b.id.clone(), nb)];
        Some(
            [
                (a.id.clone(), (na.rating - ra.rating).round() as i64),
                (b.id.clone(), (nb.rating - rb.rating).round() as i64),
            ]
            .into_iter()
            .collect(),
        )
    }

    /// Frees the seats of a finished match's players (here and cluster-wide).
    fn free_seats(&self, summary: &Summary) {
        let room_id = self.room.id();
        for p in &summary.players {
            self.node.release_seat(&p.id, room_id);
            self.node.cluster.directory.clear_sub_seat(&p.id, room_id);
        }
    }

    fn finish(&mut self, mut summary: Summary) {
        if !self.new_ratings.is_empty() {
            summary.result.rating = self.rate_changes();
        }
        let room_id = self.room.id().to_string();
        if let Some(parent) = &self.parent {
            let winner = summary
                .result
                .winner
                .clone()
                .or_else(|| summary.result.standings.first().map(|s| s.id.clone()));
            if let Some(winner) = winner {
                let scores = summary
                    .players
                    .iter()
                    .map(|p| (p.id.clone(), p.score))
                    .collect();
                let report = RoomCmd::ChildFinished {
                    room: room_id.clone(),
                    winner,
                    scores,
                };
                if parent.try_send(report).is_err() {
                    tracing::error!(room = %room_id, "tournament gone or busy: duel result not reported");
                }
            }
        }
        self.finished_at = Some(Instant::now());
        self.finished.store(true, Ordering::Release);
        self.count_inactive();
        let mode = self.room.mode();
        self.node
            .metrics
            .matches_completed_total
            .with_label_values(&[mode.as_str()])
            .inc();
        let finished_wall = Utc::now();
        self.node.outbox.push(MatchRecord {
            spec: self.room.spec().clone(),
            world: self.world.clone(),
            node: self.node.config.node_id.clone(),
            log: self.room.log().to_vec(),
            started_at: self.started_wall.unwrap_or(self.created_wall),
            finished_at: finished_wall,
            ratings: std::mem::take(&mut self.new_ratings),
            summary,
        });
    }

    /// The next moment the host must act without a command.
    fn next_wake(&self) -> Option<Instant> {
        let at = self
            .room
            .poll_timeout()
            .map(|ms| self.epoch + Duration::from_millis(ms.saturating_sub(self.base)));
        let linger = self
            .finished_at
            .map(|t| t + self.node.config.finished_linger);
        match (at, linger) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn should_exit(&self) -> bool {
        if self.closed {
            return true;
        }
        if let Some(t) = self.finished_at {
            return t.elapsed() >= self.node.config.finished_linger;
        }
        // A lobby everybody left is gone.
        self.room.is_empty_lobby()
    }

    async fn teardown(&mut self) {
        let room_id = self.room.id().to_string();
        for user in self.players() {
            self.node.release_seat(user, &room_id);
        }
        self.node.rooms.remove(&room_id);
        self.node.cluster.directory.unregister_room(&room_id);
        if self.finished_at.is_none() {
            self.count_inactive();
        }
        if let Some(log) = &self.log {
            // Its result went to the outbox long ago (the room lingered since):
            // nobody needs to adopt it any more.
            log.close(self.finished_at.is_some()).await;
            let m = &self.node.metrics;
            m.room_log_appends.observe(self.appends as f64);
            m.room_log_bytes.observe(self.log_bytes as f64);
        }
    }

    /// `rooms_active` counts rooms whose match is not over: a finished room
    /// lingering to answer `room_state` is not active.
    fn count_inactive(&self) {
        self.node
            .metrics
            .rooms_active
            .with_label_values(&[self.room.mode().as_str()])
            .dec();
    }

    /// Room time for an instant, never going backwards.
    fn now(&mut self, at: Instant) -> Millis {
        let ms = self.base + at.saturating_duration_since(self.epoch).as_millis() as Millis;
        self.last_now = self.last_now.max(ms);
        self.last_now
    }

    /// The rating changes already announced, for the stored result.
    fn rate_changes(&self) -> Option<std::collections::BTreeMap<String, i64>> {
        let before = self.ratings.as_ref()?;
        Some(
            self.new_ratings
                .iter()
                .filter_map(|(user, after)| {
                    Some((
                        user.clone(),
                        (after.rating - before.get(user)?.rating).round() as i64,
                    ))
                })
                .collect(),
        )
    }

    /// Sends `room_state` to one user (after the commit).
    fn send_state(&mut self, user: &str, now: Millis) {
        let state = encode(&ServerMsg::RoomState(self.room.room_state(now)));
        self.pending.push(Effect::Deliver(user.to_string(), state));
    }

    /// The room's players (eliminated ones included, those who left not).
    fn players(&self) -> impl Iterator<Item = &str> {
        self.room.members().filter(|m| self.room.is_player(m))
    }

    /// A player took their seat: their seat is recorded here (for drain and lease
    /// renewal) and in the cluster; in a tournament lobby their rating is loaded
    /// for the seeding.
    fn seated(&mut self, user: &str) {
        if self.room.mode() == Mode::Tournament {
            self.load_ratings_of(vec![user.to_string()]);
        }
        self.node
            .cluster
            .directory
            .confirm_seat(user, self.room.id());
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}
