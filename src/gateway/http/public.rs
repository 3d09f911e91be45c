//! The routes about the node itself, open to anyone: health, readiness,
//! Prometheus metrics, a finished match's record, and dev tokens (in dev mode
//! only). The leaderboards are in `boards.rs`, active users in `stats.rs`.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, StoreResultExt};
use crate::game::Node;
use crate::gateway::Gateway;

/// How long a dev token lasts.
const DEV_TOKEN_SECS: u64 = 24 * 3600;

/// `GET /health`.
pub async fn health(State(node): State<Arc<Node>>) -> Json<Value> {
    let db_ok = node.store.ping().await;
    let redis = node.cluster.redis_status().await.as_str();
    Json(json!({
        "status": if db_ok && redis != "down" { "ok" } else { "degraded" },
        "node": node.config.node_id,
        "version": env!("CARGO_PKG_VERSION"),
        "db": if db_ok { "ok" } else { "down" },
        "redis": redis,
        "draining": node.is_draining(),
        "connections": node.sessions.len(),
        "rooms": node.rooms.len(),
    }))
}

/// `GET /ready`: 503 while draining or when the database is unreachable.
pub async fn ready(State(node): State<Arc<Node>>) -> Result<Json<Value>, ApiError> {
    if node.is_draining() {
        return Err(ApiError::Unavailable("draining".into()));
    }
    if !node.store.ping().await {
        return Err(ApiError::database_unreachable());
    }
    Ok(Json(json!({ "ready": true })))
}

/// `GET /metrics`: the Prometheus text format.
pub async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render(),
    )
}

/// `GET /api/matches/{id}`: the record of a finished match as the store keeps it
/// (its result and event log); 404 if there is none.
pub async fn match_record(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "token": token })))
}
