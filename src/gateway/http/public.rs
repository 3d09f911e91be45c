//! The routes about the node itself, open to anyone: health, readiness,
//! Prometheus metrics, a finished match's record, and dev tokens (in dev mode
//! only). The leaderboards are in `boards.rs`, active users in `stats.rs`.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, StoreResultExt};
use crate::game::Node;
use crate::gateway::Gateway;

/// How long a dev token lasts.
const DEV_TOKEN_SECS: u64 = 24 * 3600;

// Response bodies. Fields are declared in alphabetical order because that is the
// order the wire has always carried (see `mod.rs`).

/// `GET /health`: always 200; `status` is `degraded` when the database or Redis is down.
#[derive(Debug, Serialize)]
pub struct Health {
    /// Open client connections on this node.
    pub connections: usize,
    pub db: Reachable,
    pub draining: bool,
    /// This node's id.
    pub node: String,
    /// `ok`, `down`, or `off` when the node runs without Redis.
    pub redis: &'static str,
    /// Rooms hosted on this node.
    pub rooms: usize,
    pub status: HealthStatus,
    /// The server's version (its crate version).
    pub version: &'static str,
}

/// Whether the node can serve everything (`ok`) or runs with a dependency down (`degraded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Degraded,
}

/// Whether a dependency answered: `ok` or `down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reachable {
    Ok,
    Down,
}

/// `GET /ready` when the node takes new connections: `{"ready":true}`.
#[derive(Debug, Serialize)]
pub struct Ready {
    pub ready: bool,
}

/// `POST /auth/dev-token`: a signed token for the requested user, valid for a day.
#[derive(Debug, Serialize)]
pub struct DevToken {
    pub token: String,
}

/// `GET /health`.
pub async fn health(State(node): State<Arc<Node>>) -> Json<Health> {
    let db_ok = node.store.ping().await;
    let redis = node.cluster.redis_status().await.as_str();
    let status = if db_ok && redis != "down" {
        HealthStatus::Ok
    } else {
        HealthStatus::Degraded
    };
    Json(Health {
        connections: node.sessions.len(),
        db: if db_ok {
            Reachable::Ok
        } else {
            Reachable::Down
        },
        draining: node.is_draining(),
        node: node.config.node_id.clone(),
        redis,
        rooms: node.rooms.len(),
        status,
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// `GET /ready`: 503 while draining or when the database is unreachable.
pub async fn ready(State(node): State<Arc<Node>>) -> Result<Json<Ready>, ApiError> {
    if node.is_draining() {
        return Err(ApiError::Unavailable("draining".into()));
    }
    if !node.store.ping().await {
        return Err(ApiError::database_unreachable());
    }
    Ok(Json(Ready { ready: true }))
}

/// `GET /metrics`: the Prometheus text format.
pub async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    // Rendering reads /proc, including one directory entry per open descriptor
    // (tens of thousands on a busy node): off the runtime's workers, so a scrape
    // never delays a room.
    let text = tokio::task::spawn_blocking(move || node.metrics.render())
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// `GET /api/matches/{id}`: the record of a finished match as the store keeps it
/// (its result and event log); 404 if there is none.
pub async fn match_record(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    node.store
        .match_json(&id)
        .await
        .or_database_unreachable("reading match")?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no finished match '{id}'")))
}

/// The body of `POST /auth/dev-token`.
#[derive(Deserialize)]
pub struct DevTokenRequest {
    user: String,
    name: Option<String>,
}

/// `POST /auth/dev-token`: 404 unless the node runs in dev mode (checked before the body).
pub async fn dev_token(
    State(gateway): State<Gateway>,
    body: Result<Json<DevTokenRequest>, JsonRejection>,
) -> Result<Json<DevToken>, ApiError> {
    if !gateway.auth.dev_mode() {
        return Err(ApiError::NotFound(
            "dev tokens exist only in dev mode".into(),
        ));
    }
    let Json(req) = body?;
    if !juno_protocol::limits::valid_user_id(&req.user) {
        return Err(ApiError::BadRequest(
            "user must be 1-64 of [A-Za-z0-9_-]".into(),
        ));
    }
    if req
        .name
        .as_deref()
        .is_some_and(|n| !juno_protocol::limits::valid_name(n))
    {
        return Err(ApiError::BadRequest(
            "name must be at most 32 characters".into(),
        ));
    }
    let token = gateway
        .auth
        .mint(&req.user, req.name.as_deref(), DEV_TOKEN_SECS)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(DevToken { token }))
}
