//! The game layer: what one node does for its players, whether it is alone or
//! one of many. It hosts rooms ([`host`]) and fans their frames out, creates and
//! finds rooms ([`rooms`], [`routing`]), seats players, matches duels
//! ([`matchmaking`]), applies feature flags ([`flags`]), picks questions
//! ([`difficulty`]), keeps the node's live connections and their queues
//! ([`sessions`]), greets and says goodbye to players ([`presence`]), handles
//! what other nodes send ([`inbound`]), sends notifications ([`notify`]), reads
//! leaderboards ([`boards`]) and drains ([`drain`]).
//!
//! It reaches other nodes only through [`crate::cluster`] and the database only
//! through [`crate::store`]; it knows nothing of HTTP or WebSockets.

pub mod adopt;
pub mod boards;
pub mod difficulty;
pub mod drain;
pub mod flags;
pub mod host;
pub mod inbound;
pub mod matchmaking;
pub mod notify;
pub mod presence;
pub mod rooms;
pub mod routing;
pub mod sessions;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::{Cluster, Inbox, LocalNode};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::{iso_week, FlagSet, MatchRecord};
use crate::store::{Outbox, Store};
use difficulty::Difficulty;
use flags::Flags;
pub use rooms::{new_room_id, Refusal, RoomHandle, RoomStart};
use sessions::Sessions;

/// The shared state of one server process.
pub struct Node {
    pub config: Config,
    pub store: Store,
    pub metrics: Metrics,
    /// Live connections on this node, by user.
    pub sessions: Sessions,
    /// Rooms hosted here, by id.
    pub rooms: DashMap<String, RoomHandle>,
    /// Seats, room locations, presence, the duel queue and the bus: this node's
    /// alone, or shared with other nodes through Redis.
    pub cluster: Arc<Cluster>,
    /// Feature flags as they apply to each user.
    pub flags: Flags,
    /// Finished matches on their way to the database.
    pub outbox: Outbox,
    /// Picks a match's questions for its players (flag `hrm_trm`; `mangle_zpd` asks the service).
    pub difficulty: Difficulty,
    /// Gives arriving users the notifications they missed.
    pub missed: notify::Replay,
    /// Lease epochs of adopted rooms, to drop frames of hosts that lost them.
    pub fences: inbound::Fences,
    draining: AtomicBool,
    /// Cancelled when the node stops serving.
    pub shutdown: CancellationToken,
    /// Room host tasks, so shutdown can wait for them.
    pub room_tasks: TaskTracker,
}

impl Node {
    /// A node over `store` and `cluster`, with its background work started:
    /// what other nodes send (`inbox`), the duel rematch, the keepalive sweep and,
    /// in a cluster, the heartbeat.
    pub fn start(
        config: Config,
        store: Store,
        flags: FlagSet,
        (cluster, inbox): (Cluster, Inbox),
        difficulty: Difficulty,
    ) -> Arc<Node> {
        let metrics = Metrics::new();
        let sessions = Sessions::new(
            metrics.frames_sent_total.clone(),
            metrics.slow_consumers_total.clone(),
        );
        let outbox = Outbox::new(metrics.outbox_pending.clone());
        let node = Arc::new_cyclic(|weak| Node {
            config,
            store,
            metrics,
            sessions,
            rooms: DashMap::new(),
            cluster: Arc::new(cluster),
            flags: Flags::new(flags),
            outbox,
            difficulty,
            missed: notify::Replay::start(weak.clone()),
            fences: inbound::Fences::default(),
            draining: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
            room_tasks: TaskTracker::new(),
        });
        let weak: std::sync::Weak<dyn LocalNode> = Arc::downgrade(&node) as _;
        node.cluster.start(weak);
        inbound::spawn(&node, inbox);
        adopt::spawn(&node);
        matchmaking::spawn_rematch(&node);
        spawn_keepalive(&node);
        node
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks the node as draining; `true` the first time.
    pub fn set_draining(&self) -> bool {
        !self.draining.swap(true, Ordering::AcqRel)
    }

    /// Sends an encoded frame to one user's live connection on this node, if any.
    pub fn send_to(&self, user: &str, frame: Bytes) -> bool {
        self.sessions.send_to(user, frame)
    }

    /// What to do once a finished match is in the database: its points join the
    /// shared weekly board and its players' mission metrics are counted.
    pub fn on_match_written(&self, record: &MatchRecord) {
        let (week, _, _) = iso_week(record.finished_at);
        let points: Vec<(String, String, u64)> = record
            .summary
            .players
            .iter()
            .map(|p| (p.id.clone(), p.name.clone(), p.score))
            .collect();
        self.cluster.board.add_weekly_points(&week, &points);
        self.metrics.observe_mission(
            &record.world,
            &record.summary.players,
            record.summary.questions_asked,
        );
    }
}

impl LocalNode for Node {
    fn connections(&self) -> usize {
        self.sessions.len()
    }

    fn users(&self) -> Vec<String> {
        self.sessions
            .all()
            .iter()
            .map(|c| c.user.to_string())
            .collect()
    }

    fn stopped(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    fn recheck_rooms(&self) {
        for room in self.rooms.iter() {
            let _ = room.tx.try_send(host::RoomCmd::CheckLease);
        }
    }
}

/// Pings every connection each `JUNO_KEEPALIVE_SECS` from one task (a peer silent
/// for three rounds is dropped by its connection), instead of a timer per connection.
fn spawn_keepalive(node: &Arc<Node>) {
    let weak = Arc::downgrade(node);
    let every: Duration = node.config.keepalive;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tick.tick().await;
            let Some(node) = weak.upgrade() else { return };
            if node.shutdown.is_cancelled() {
                return;
            }
            node.sessions.ping_all();
            node.fences.sweep();
        }
    });
}
