//! Duel matchmaking for `queue`, on one node or across the cluster (the queue and
//! its rating rules are [`crate::cluster::queue`]'s): a player's ticket carries
//! their rating; a pair found when someone queues, or by the periodic rematch as
//! waiting windows widen, gets a duel room on this node with both seats taken
//! before the room exists, so nobody is matched twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use juno_protocol::{encode, ErrorCode, Mode, PlayerRef, RoomOptions, ServerMsg};

use super::sessions::ConnHandle;
use super::{new_room_id, Node, Refusal, RoomStart};
use crate::cluster::Seated;
use crate::model::rating::DEFAULT_RATING;

/// How often waiting tickets are looked at again as their windows widen.
const REMATCH_EVERY: Duration = Duration::from_secs(1);

/// `queue`: answers `ok`, then `match_found` comes when an opponent is paired.
pub async fn queue(
    node: &Arc<Node>,
    conn: &ConnHandle,
    me: PlayerRef,
    rid: Option<u64>,
    mode: Mode,
    mission_id: &str,
) -> Result<(), Refusal> {
    // Only duels are matched by `queue`; other rooms are created and joined.
    if mode != Mode::Duel {
        return Err(Refusal::new(
            ErrorCode::Invalid,
            "queue supports mode 'duel'; create other rooms",
        ));
    }
    node.flags.check_mode(mode, &me.id)?;
    node.check_not_draining()?;
    node.check_unseated(&me.id).await?;
    let mission = node.mission(mission_id).await?;
    let rating = rating_of(node, &me.id).await;
    let opponent = match node.cluster.queue.enqueue(&me, rating, &mission.id).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "matchmaking");
            return Err(Refusal::new(
                ErrorCode::Internal,
                "matchmaking is unavailable; try again",
            ));
        }
    };
    conn.send(encode(&ServerMsg::ok(rid)));
    if let Some(opponent) = opponent {
        start_duel(node, &mission.id, opponent, (me, None)).await;
    }
    Ok(())
}

/// Withdraws `user`'s ticket, wherever it is kept.
pub async fn unqueue(node: &Node, user: &str) {
    if let Err(e) = node.cluster.queue.unqueue(user).await {
        tracing::warn!(error = %format!("{e:#}"), "withdrawing a queue ticket");
    }
}

/// Pairs waiting players whose windows have widened, once a second, until the node stops.
pub fn spawn_rematch(node: &Arc<Node>) {
    let weak = Arc::downgrade(node);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REMATCH_EVERY);
        loop {
            tick.tick().await;
            let Some(node) = weak.upgrade() else { return };
            if node.shutdown.is_cancelled() {
                return;
            }
            if node.is_draining() {
                continue;
            }
            match node.cluster.queue.rematch().await {
                Ok(pairs) => {
                    for (mission, a, b) in pairs {
                        start_duel(&node, &mission, a, b).await;
                    }
                }
                Err(e) => tracing::debug!(error = %format!("{e:#}"), "rematch"),
            }
        }
    });
}

/// Creates a duel on this node for two paired players (each with the node they
/// are connected to, `None` = here). If one of them meanwhile sat down elsewhere,
/// the other is queued again.
async fn start_duel(node: &Arc<Node>, mission_id: &str, a: Seated, b: Seated) {
    let room = new_room_id();
    if node.reserve_seat(&a.0.id, &room).await.is_err() {
        requeue(node, b, mission_id).await;
        return;
    }
    if node.reserve_seat(&b.0.id, &room).await.is_err() {
        node.release_seat(&a.0.id, &room);
        requeue(node, a, mission_id).await;
        return;
    }
    let players = vec![a.0.clone(), b.0.clone()];
    let remote: HashMap<String, String> = [a, b]
        .into_iter()
        .filter_map(|(p, at)| at.map(|node| (p.id, node)))
        .collect();
    let refused = match node.mission(mission_id).await {
        Ok(mission) => {
            let start = RoomStart {
                seat: players.clone(),
                announce: true,
                spectator: None,
                reply: None,
                remote,
            };
            node.create_room(
                room.clone(),
                Mode::Duel,
                &mission,
                &RoomOptions::default(),
                None,
                start,
            )
            .await
            .err()
        }
        Err(refusal) => Some(refusal),
    };
    if let Some(refusal) = refused {
        for p in &players {
            node.release_seat(&p.id, &room);
            // Players on other nodes stay unpaired and may queue again.
            node.send_to(&p.id, encode(&refusal.to_msg(None)));
        }
    }
}

/// Puts a player back in the queue after a pairing fell through. Only a player
/// connected here is queued again from here (a ticket names its player's node).
async fn requeue(node: &Arc<Node>, (player, at): Seated, mission: &str) {
    if at.is_some() {
        return;
    }
    let rating = rating_of(node, &player.id).await;
    match node.cluster.queue.enqueue(&player, rating, mission).await {
        // Only a player with no waiting partner comes back here, so this is rare.
        Ok(Some(other)) => Box::pin(start_duel(node, mission, other, (player, None))).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "re-queueing"),
    }
}

/// A user's rating for matchmaking (1500 when unknown or unreadable).
pub async fn rating_of(node: &Node, user: &str) -> f64 {
    match node.store.ratings(&[user]).await {
        Ok(r) => r.get(user).map(|r| r.rating).unwrap_or(DEFAULT_RATING),
        Err(_) => DEFAULT_RATING,
    }
}
