//! The routes about the node itself, open to anyone: health, readiness,
//! Prometheus metrics, a finished match's record, and dev tokens (in dev mode
//! only). The leaderboards are in `boards.rs`, active users in `stats.rs`.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::error;
use crate::game::Node;
use crate::gateway::Gateway;

pub async fn health(State(node): State<Arc<Node>>) -> Response {
    let db_ok = node.store.ping().await;
    let redis = node.cluster.redis_status().await.as_str();
    let body = json!({
        "status": if db_ok && redis != "down" { "ok" } else { "degraded" },
        "node": node.config.node_id,
        "version": env!("CARGO_PKG_VERSION"),
        "db": if db_ok { "ok" } else { "down" },
        "redis": redis,
        "draining": node.is_draining(),
        "connections": node.sessions.len(),
        "rooms": node.rooms.len(),
    });
    Json(body).into_response()
}

pub async fn ready(State(node): State<Arc<Node>>) -> Response {
    if node.is_draining() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    if !node.store.ping().await {
        return error(StatusCode::SERVICE_UNAVAILABLE, "database unreachable");
    }
    Json(json!({ "ready": true })).into_response()
}

pub async fn metrics(State(node): State<Arc<Node>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render(),
    )
        .into_response()
}

pub async fn match_record(State(node): State<Arc<Node>>, Path(id): Path<String>) -> Response {
    match node.store.match_json(&id).await {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no finished match '{id}'")),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reading match");
            error(StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

#[derive(Deserialize)]
pub struct DevTokenRequest {
    user: String,
    name: Option<String>,
}

pub async fn dev_token(
    State(gateway): State<Gateway>,
    body: Result<Json<DevTokenRequest>, JsonRejection>,
) -> Response {
    if !gateway.auth.dev_mode() {
        return error(StatusCode::NOT_FOUND, "dev tokens exist only in dev mode");
    }
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if !juno_protocol::limits::valid_user_id(&req.user) {
        return error(
            StatusCode::BAD_REQUEST,
            "user must be 1-64 of [A-Za-z0-9_-]",
        );
    }
    if req
        .name
        .as_deref()
        .is_some_and(|n| !juno_protocol::limits::valid_name(n))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "name must be at most 32 characters",
        );
    }
    match gateway.auth.mint(&req.user, req.name.as_deref(), 24 * 3600) {
        Ok(token) => Json(json!({ "token": token })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
