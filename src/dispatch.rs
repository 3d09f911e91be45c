//! What each client message does: matchmaking and room creation here, every
//! in-room action forwarded to the room's host task (which answers the client).

use std::sync::Arc;

use juno_protocol::{
    encode, ClientMsg, ErrorCode, Mission, Mode, PlayerRef, RoomOptions, ServerMsg,
};
use tokio::time::Instant;

use crate::conn::{queueable, ConnState};
use crate::node::{Node, Refusal, RoomStart};
use crate::room_host::{Action, RoomCmd};

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
    let action = match msg {
        ClientMsg::Ping => {
            return Ok(());
        }
        ClientMsg::Queue { mode, mission } => return queue(node, state, rid, mode, &mission).await,
        ClientMsg::Unqueue => {
            node.matchmaker.remove(&user);
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
        ClientMsg::Join { room } => {
            let mode = room_mode(node, &room)?;
            node.check_mode(mode, &user)?;
            node.check_not_draining()?;
            node.reserve_seat(&user, &room)?;
            node.matchmaker.remove(&user);
            (
                room,
                Action::Join {
                    name: state.identity.name.clone(),
                },
            )
        }
        ClientMsg::Spectate { room } => {
            room_mode(node, &room)?;
            state.spectating.insert(room.clone());
            (room, Action::Spectate)
        }
        ClientMsg::Leave { room } => {
            state.spectating.remove(&room);
            (room, Action::Leave)
        }
        ClientMsg::Start { room } => (room, Action::Start),
        ClientMsg::Answer { room, q, choice } => (room, Action::Answer { q, choice }),
    };
    let (room, action) = action;
    let Some(tx) = node.rooms.get(&room).map(|h| h.tx.clone()) else {
        node.release_seat(&user, &room);
        return Err(not_found_room(&room));
    };
    let cmd = RoomCmd::Client {
        user: user.clone(),
        rid,
        at: received,
        action,
        reply: state.handle.clone(),
    };
    if tx.send(cmd).await.is_err() {
        node.release_seat(&user, &room);
        return Err(not_found_room(&room));
    }
    Ok(())
}

fn not_found_room(room: &str) -> Refusal {
    Refusal::new(ErrorCode::NotFound, format!("no room '{room}'"))
}

fn room_mode(node: &Node, room: &str) -> Result<Mode, Refusal> {
    node.rooms
        .get(room)
        .map(|h| h.mode)
        .ok_or_else(|| not_found_room(room))
}

async fn mission(node: &Node, id: &str) -> Result<Mission, Refusal> {
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

fn check_unseated(node: &Node, user: &str) -> Result<(), Refusal> {
    match node.seat_of(user) {
        Some(room) => Err(Refusal::new(
            ErrorCode::NotAllowed,
            format!("you are already playing in room {room}"),
        )),
        None => Ok(()),
    }
}

async fn queue(
    node: &Arc<Node>,
    state: &ConnState,
    rid: Option<u64>,
    mode: Mode,
    mission_id: &str,
) -> Result<(), Refusal> {
    let user = &state.identity.user;
    if !queueable(mode) {
        return Err(Refusal::new(
            ErrorCode::Invalid,
            "queue supports mode 'duel'; create other rooms",
        ));
    }
    node.check_mode(mode, user)?;
    node.check_not_draining()?;
    check_unseated(node, user)?;
    let mission = mission(node, mission_id).await?;
    let me = PlayerRef {
        id: user.clone(),
        name: state.identity.name.clone(),
    };
    state.handle.send(encode(&ServerMsg::ok(rid)));
    let Some(opponent) = node.matchmaker.enqueue(me.clone(), &mission.id) else {
        return Ok(());
    };
    // Both seats are taken before the room exists, so neither player can be matched twice.
    let placeholder = format!("matching:{}", opponent.id);
    if node.reserve_seat(&opponent.id, &placeholder).is_err() {
        node.matchmaker.enqueue(me, &mission.id);
        return Ok(());
    }
    if node.reserve_seat(user, &placeholder).is_err() {
        node.release_seat(&opponent.id, &placeholder);
        node.matchmaker.enqueue(opponent, &mission.id);
        return Ok(());
    }
    let players = vec![opponent, me];
    let start = RoomStart {
        seat: players.clone(),
        announce: true,
        spectator: None,
        reply: None,
    };
    let created = node.create_room_with(
        Mode::Duel,
        &mission,
        &RoomOptions::default(),
        None,
        start,
        |room| {
            for p in &players {
                node.seats.insert(p.id.clone(), room.to_string());
            }
        },
    );
    if let Err(refusal) = created {
        for p in &players {
            node.release_seat(&p.id, &placeholder);
            node.send_to(&p.id, encode(&refusal.to_msg(None)));
        }
    }
    Ok(())
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
    if !watch {
        check_unseated(node, user)?;
    }
    let mission = mission(node, mission_id).await?;
    let me = PlayerRef {
        id: user.clone(),
        name: state.identity.name.clone(),
    };
    let start = RoomStart {
        seat: if watch { vec![] } else { vec![me] },
        announce: false,
        spectator: watch.then(|| user.clone()),
        reply: Some((state.handle.clone(), rid)),
    };
    node.create_room_with(mode, &mission, &options, Some(user), start, |room| {
        if !watch {
            node.matchmaker.remove(user);
            node.seats.insert(user.clone(), room.to_string());
        }
    })?;
    Ok(())
}
