//! The `/ws` upgrade: refuses while draining, refuses an address that was
//! refused too often this minute (429), verifies the token (query `?token=` or a
//! bearer header; a refusal is recorded in `auth_logs` by the batched writer),
//! counts the client's connections behind a trusted proxy, then hands the socket
//! to the connection task.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::error::ApiError;
use super::headers::{bearer, client_ip};
use crate::gateway::auth::AuthError;
use crate::gateway::conn;
use crate::gateway::serve::ConnPermit;
use crate::gateway::Gateway;

/// `GET /ws`: 503 while draining, 401 without a valid token, else the upgrade.
pub async fn upgrade(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    connection: Option<Extension<ConnPermit>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let node = &gateway.node;
    if node.is_draining() {
        return Err(ApiError::Unavailable(
            "draining: connect to another node".into(),
        ));
    }
    let ip = client_ip(&headers, peer, &node.config);
    // Before any token check or database write: a client refused too often is
    // refused at once.
    if gateway.guard.upgrades_blocked(ip) {
        return Err(ApiError::TooManyRequests(
            "too many refused upgrades from this address; wait a minute".into(),
        ));
    }
    let token = query
        .get("token")
        .map(String::as_str)
        .or_else(|| bearer(&headers));
    let verified = match token {
        Some(token) => gateway.auth.verify(token),
        None => Err(AuthError::Missing),
    };
    let identity = match verified {
        Ok(identity) => identity,
        Err(why) => {
            // Recorded by the batched writer: the refusal never waits on the database.
            gateway.guard.refused_upgrade(ip, &why.to_string());
            return Err(ApiError::Unauthorized(why.to_string()));
        }
    };
    // Direct clients were counted per TCP connection as they connected (the
    // WebSocket keeps that place); clients behind a trusted proxy share its
    // connections, so they are counted here.
    let permit = match connection {
        Some(Extension(ConnPermit(permit))) => Some(permit),
        None => match gateway.guard.open(ip) {
            Some(permit) => Some(Arc::new(permit)),
            None => {
                return Err(ApiError::TooManyRequests(
                    "too many connections from this address".into(),
                ))
            }
        },
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        // Not a WebSocket request: axum's own answer, as it always was.
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let cfg = &gateway.node.config;
    let max_frame = cfg.max_frame_bytes;
    Ok(upgrade
        // Small buffers: tens of thousands of mostly idle connections must stay
        // cheap. Client frames are tens of bytes (an answer is about 30); a rare
        // larger one simply takes more than one read.
        .read_buffer_size(256)
        // Frames are written when the connection's task has taken everything
        // queued (it flushes then), or once 4 KiB are waiting: frames queued
        // together go out in one write.
        .write_buffer_size(4096)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(max_frame)
        .max_frame_size(max_frame)
        .on_upgrade(move |socket| conn::serve(gateway, socket, identity, permit)))
}
