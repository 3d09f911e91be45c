//! What each client message does: matchmaking and room creation through the
//! game layer, every in-room action forwarded to the room's host — on this node
//! or another — which answers the client.

use std::collections::HashMap;
use std::sync::Arc;

use juno_protocol::{encode, ClientMsg, ErrorCode, Mode, PlayerRef, RoomOptions, ServerMsg};
use tokio::time::Instant;

use super::conn::ConnState;
use crate::game::host::Action;
use crate::game::routing::{locate_cached, send_action};
use crate::game::{matchmaking, new_room_id, Node, Refusal, RoomStart};

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
            let me = me(state);
            return matchmaking::queue(node, &state.handle, me, rid, mode, &mission).await;
        }
        ClientMsg::Unqueue => {
            matchmaking::unqueue(node, &user).await;
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
    let target = locate_cached(node, &mut state.remote_rooms, &room).await?;
    match &action {
        Action::Join { .. } => {
            node.flags.check_mode(target.mode(), &user)?;
            node.check_not_draining()?;
            node.reserve_seat(&user, &room).await?;
            matchmaking::unqueue(node, &user).await;
        }
        Action::Spectate => {
            state.spectating.insert(room.clone());
        }
        _ => {}
    }
    let sent = send_action(
        node,
        target,
        room.clone(),
        user.clone(),
        rid,
        action,
        received,
        &state.handle,
    )
    .await;
    if sent.is_err() {
        node.release_seat(&user, &room);
    }
    sent
}

fn me(state: &ConnState) -> PlayerRef {
    PlayerRef {
        id: state.identity.user.clone(),
        name: state.identity.name.clone(),
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
    node.flags.check_mode(mode, user)?;
    node.check_not_draining()?;
    options
        .validate(mode)
        .map_err(|m| Refusal::new(ErrorCode::Invalid, m))?;
    let watch = options.watch.unwrap_or(false);
    let mission = node.mission(mission_id).await?;
    let room = new_room_id();
    if !watch {
        node.reserve_seat(user, &room).await?;
        matchmaking::unqueue(node, user).await;
    }
    let start = RoomStart {
        seat: if watch { vec![] } else { vec![me(state)] },
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
