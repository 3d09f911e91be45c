//! Duel matchmaking for `queue`, on one node or across the cluster: a player's
//! ticket carries their rating; a pair found when someone queues, or by the
//! periodic rematch as waiting windows widen, gets a duel room on this node with
//! both seats taken before the room exists, so nobody is matched twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use juno_protocol::{encode, ErrorCode, Mode, PlayerRef, RoomOptions, ServerMsg};

use crate::conn::ConnState;
use crate::dispatch::{check_unseated, mission};
use crate::node::{new_room_id, Node, Refusal, RoomStart};

/// How often waiting tickets are looked at again as their windows widen.
const REMATCH_EVERY: Duration = Duration::from_secs(1);

/// `queue`: answers `ok`, then `match_found` comes when an opponent is paired.
pub async fn queue(
    node: &Arc<Node>,
    state: &ConnState,
    rid: Option<u64>,
    mode: Mode,
    mission_id: &str,
) -> Result<(), Refusal> {
    let user = &state.identity.user;
    // Only duels are matched by `queue`; other rooms are created and joined.
    if mode != Mode::Duel {
        return Err(Refusal::new(
            ErrorCode::Invalid,
            "queue supports mode 'duel'; create other rooms",
        ));
    }
    node.check_mode(mode, user)?;
    node.check_not_draining()?;
    check_unseated(node, user).await?;
    let mission = mission(node, mission_id).await?;
    let rating = rating_of(node, user).await;
    let me = PlayerRef {
        id: user.clone(),
        name: state.identity.name.clone(),
    };
    let opponent = match &node.cluster {
        Some(cluster) => match cluster.enqueue(&me, rating, &mission.id).await {
            Ok(found) => found.map(|(p, at)| (p, (at != cluster.node_id).then_some(at))),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cluster matchmaking");
                return Err(Refusal::new(
                    ErrorCode::Internal,
                    "matchmaking is unavailable; try again",
                ));
            }
        },
        None => node
            .matchmaker
            .enqueue(me.clone(), rating, &mission.id, std::time::Instant::now())
            .map(|p| (p, None)),
    };
    state.handle.send(encode(&ServerMsg::ok(rid)));
    if let Some((opponent, at)) = opponent {
        start_duel(node, &mission.id, (opponent, at), (me, None)).await;
    }
    Ok(())
}

/// Withdraws `user`'s ticket, wherever it is kept.
pub async fn unqueue(node: &Node, user: &str) {
    match &node.cluster {
        Some(cluster) => {
            if let Err(e) = cluster.unqueue(user).await {
                tracing::warn!(error = %format!("{e:#}"), "withdrawing a queue ticket");
            }
        }
        None => {
            node.matchmaker.remove(user);
        }
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
            match &node.cluster {
                Some(cluster) => {
                    // Every node runs this; the script hands each pair to exactly one of them.
                    for _ in 0..64 {
                        match cluster.rematch().await {
                            Ok(Some((mission, a, b))) => {
                                let here = |at: String| (at != cluster.node_id).then_some(at);
                                start_duel(&node, &mission, (a.0, here(a.1)), (b.0, here(b.1)))
                                    .await;
                            }
                            Ok(None) => break,
                            Err(e) => {
                                tracing::debug!(error = %format!("{e:#}"), "rematch");
                                break;
                            }
                        }
                    }
                }
                None => {
                    for (mission, a, b) in node.matchmaker.rematch(std::time::Instant::now()) {
                        start_duel(&node, &mission, (a, None), (b, None)).await;
                    }
                }
            }
        }
    });
}

/// Creates a duel on this node for two paired players (each with the node they
/// are connected to, `None` = here). If one of them meanwhile sat down elsewhere,
/// the other is queued again.
async fn start_duel(
    node: &Arc<Node>,
    mission_id: &str,
    a: (PlayerRef, Option<String>),
    b: (PlayerRef, Option<String>),
) {
    let room = new_room_id();
    if node.reserve_seat(&a.0.id, &room).await.is_err() {
        requeue(node, b.0, mission_id).await;
        return;
    }
    if node.reserve_seat(&b.0.id, &room).await.is_err() {
        node.release_seat(&a.0.id, &room);
        requeue(node, a.0, mission_id).await;
        return;
    }
    let players = vec![a.0.clone(), b.0.clone()];
    let remote: HashMap<String, String> = [a, b]
        .into_iter()
        .filter_map(|(p, at)| at.map(|node| (p.id, node)))
        .collect();
    let refused = match mission(node, mission_id).await {
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

/// Puts a player back in the queue after a pairing fell through.
async fn requeue(node: &Arc<Node>, player: PlayerRef, mission: &str) {
    let rating = rating_of(node, &player.id).await;
    match &node.cluster {
        Some(cluster) => {
            if let Err(e) = cluster.enqueue(&player, rating, mission).await {
                tracing::warn!(error = %format!("{e:#}"), "re-queueing");
            }
        }
        None => {
            // Only a player with no waiting partner comes back here, so nobody is paired now.
            if let Some(other) =
                node.matchmaker
                    .enqueue(player.clone(), rating, mission, std::time::Instant::now())
            {
                Box::pin(start_duel(node, mission, (other, None), (player, None))).await;
            }
        }
    }
}

/// A user's rating for matchmaking (1500 when unknown or unreadable).
async fn rating_of(node: &Node, user: &str) -> f64 {
    match node.store.ratings(&[user]).await {
        Ok(r) => r
            .get(user)
            .map(|r| r.rating)
            .unwrap_or(crate::rating::DEFAULT_RATING),
        Err(_) => crate::rating::DEFAULT_RATING,
    }
}
