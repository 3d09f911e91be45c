//! What each client message does: matchmaking and room creation here, every
//! in-room action forwarded to the room's host task — on this node through its
//! channel, on another node through the bus — which answers the client.

use std::collections::HashMap;
use std::sync::Arc;

use juno_protocol::{
    encode, ClientMsg, ErrorCode, Mission, Mode, PlayerRef, RoomOptions, ServerMsg,
};
use tokio::time::Instant;

use crate::cluster::{BusMsg, RemoteCmd};
use crate::conn::ConnState;
use crate::matching;
use crate::node::{new_room_id, Node, Refusal, RoomStart};
use crate::room_host::{Action, Reply, RoomCmd};
use crate::routing::{locate_cached, RoomAt};

/// Handles one decoded frame. An `Err` is answered as an `error` echoing `rid`;
/// on success the answer has been sent (or will be, by the room).
pub async fn handle(
    node: &Arc<Node>,
    state: &mut ConnState,
    rid: Option<u64>,
    msg: ClientMsg,
    received: Instant,
) -> Result<(), Refusal> {
    let user = state.identity.user.clone();
    let (room, action) = match msg {
        ClientMsg::Ping => return Ok(()),
        ClientMsg::Queue { mode, mission } => {
            return matching::queue(node, state, rid, mode, &mission).await
        }
        ClientMsg::Unqueue => {
            matching::unqueue(node, &user).await;
            state.handle.send(encode(&ServerMsg::ok(rid)));
            return Ok(());
        }
        ClientMsg::Create {
            mode,
            mission,
            options,
        } => {
            return create(
                node,
                state,
                rid,
                mode,
                &mission,
                options.unwrap_or_default(),
            )
            .await
        }
        ClientMsg::Join { room } => (
            room,
            Action::Join {
                name: state.identity.name.clone(),
            },
        ),
        ClientMsg::Spectate { room } => (room, Action::Spectate),
        ClientMsg::Leave { room } => {
            state.spectating.remove(&room);
            (room, Action::Leave)
        }
        ClientMsg::Start { room } => (room, Action::Start),
        ClientMsg::Answer { room, q, choice } => (room, Action::Answer { q, choice }),
    };
    let (target, mode) = match locate_cached(node, &mut state.remote_rooms, &room).await? {
        RoomAt::Here(tx, mode) => (Ok(tx), mode),
        RoomAt::There(owner, mode) => (Err(owner), mode),
    };
    match &action {
        Action::Join { .. } => {
            node.check_mode(mode, &user)?;
            node.check_not_draining()?;
            node.reserve_seat(&user, &room).await?;
            matching::unqueue(node, &user).await;
        }
        Action::Spectate => {
            state.spectating.insert(room.clone());
        }
        _ => {}
    }
    match target {
        Ok(tx) => {
            let reply = Reply::Local(state.handle.clone());
            let cmd = RoomCmd::Client {
                user: user.clone(),
                rid,
                at: received,
                action,
                reply,
            };
            if tx.send(cmd).await.is_err() {
                node.release_seat(&user, &room);
                return Err(Refusal::new(
                    ErrorCode::NotFound,
                    format!("no room '{room}'"),
                ));
            }
        }
        Err(owner) => {
            if let Some(cluster) = &node.cluster {
                let from = cluster.node_id.clone();
                cluster.send(
                    &owner,
                    &BusMsg::Room {
                        room,
                        cmd: RemoteCmd::Client {
                            user,
                            rid,
                            action,
                            from,
                        },
                    },
                );
            }
        }
    }
    Ok(())
}

pub(crate) async fn mission(node: &Node, id: &str) -> Result<Mission, Refusal> {
    match node.store.mission(id).await {
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

pub(crate) async fn check_unseated(node: &Node, user: &str) -> Result<(), Refusal> {
    match node.seated_room(user).await {
        Some(room) => Err(Refusal::new(
            ErrorCode::NotAllowed,
            format!("you are already playing in room {room}"),
        )),
        None => Ok(()),
    }
}

async fn create(
    node: &Arc<Node>,
    state: &ConnState,
    rid: Option<u64>,
    mode: Mode,
    mission_id: &str,
    options: RoomOptions,
) -> Result<(), Refusal> {
    let user = &state.identity.user;
    node.check_mode(mode, user)?;
    node.check_not_draining()?;
    options
        .validate(mode)
        .map_err(|m| Refusal::new(ErrorCode::Invalid, m))?;
    let watch = options.watch.unwrap_or(false);
    let mission = mission(node, mission_id).await?;
    let room = new_room_id();
    if !watch {
        node.reserve_seat(user, &room).await?;
        matching::unqueue(node, user).await;
    }
    let me = PlayerRef {
        id: user.clone(),
        name: state.identity.name.clone(),
    };
    let start = RoomStart {
        seat: if watch { vec![] } else { vec![me] },
        announce: false,
        spectator: watch.then(|| user.clone()),
        reply: Some((state.handle.clone(), rid)),
        remote: HashMap::new(),
    };
    if let Err(refusal) = node
        .create_room(room.clone(), mode, &mission, &options, Some(user), start)
        .await
    {
        node.release_seat(user, &room);
        return Err(refusal);
    }
    Ok(())
}
