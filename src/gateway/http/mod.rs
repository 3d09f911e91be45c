//! The HTTP surface (WIRE.md §2): health, readiness, metrics, the public API,
//! dev tokens, the admin API, and the `/ws` upgrade with its auth and drain checks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use juno_protocol::Mission;
use serde::Deserialize;
use serde_json::json;

use super::auth::AuthError;
use super::{conn, Gateway};
use crate::game::{drain, flags, Node};

mod boards;
mod notify;
mod stats;

/// Every route of the node.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route(
            "/api/leaderboard/individual/weekly",
            get(stats::weekly_leaderboard),
        )
        .route("/api/leaderboard/individual/alltime", get(boards::alltime))
        .route(
            "/api/leaderboard/individual/weekly/me",
            get(boards::weekly_me),
        )
        .route("/api/leaderboard/clans/weekly", get(boards::clans_weekly))
        .route(
            "/telemetry/analytics/active-users",
            get(stats::active_users),
        )
        .route("/api/matches/{id}", get(match_record))
        .route("/auth/dev-token", post(dev_token))
        .route("/admin/missions", post(upload_mission))
        .route("/admin/flags", get(list_flags))
        .route("/admin/flags/{name}", put(set_flag))
        .route("/admin/drain", post(start_drain))
        .route("/admin/notifications", post(notify::bulk))
        .route("/admin/events/{id}/activate", post(notify::activate_event))
        .route("/ws", get(ws_upgrade))
        .layer(middleware::from_fn_with_state(
            gateway.node.clone(),
            track_requests,
        ))
        .with_state(gateway)
}

/// Counts every request in `requests_total` and times it in `response_time_seconds`.
async fn track_requests(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    node.metrics
        .requests_total
        .with_label_values(&[&method, &path, &status])
        .inc();
    node.metrics
        .response_time_seconds
        .with_label_values(&[&method, &path])
        .observe(started.elapsed().as_secs_f64());
    response
}

pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

async fn health(State(node): State<Arc<Node>>) -> Response {
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

async fn ready(State(node): State<Arc<Node>>) -> Response {
    if node.is_draining() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    if !node.store.ping().await {
        return error(StatusCode::SERVICE_UNAVAILABLE, "database unreachable");
    }
    Json(json!({ "ready": true })).into_response()
}

async fn metrics(State(node): State<Arc<Node>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render(),
    )
        .into_response()
}

async fn match_record(State(node): State<Arc<Node>>, Path(id): Path<String>) -> Response {
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
struct DevTokenRequest {
    user: String,
    name: Option<String>,
}

async fn dev_token(
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

/// Admin auth: 403 while the admin API is disabled, 401 for anything but the right bearer token.
pub(crate) fn admin(node: &Node, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(expected) = node.config.admin_token.as_deref() else {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "admin API disabled: set JUNO_ADMIN_TOKEN",
        )));
    };
    match bearer(headers) {
        Some(token) if token == expected => Ok(()),
        _ => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "admin bearer token required",
        ))),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

async fn upload_mission(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Result<Json<Mission>, JsonRejection>,
) -> Response {
    if let Err(denied) = admin(&node, &headers) {
        return *denied;
    }
    let Json(mission) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let Err(e) = mission.validate() {
        return error(StatusCode::BAD_REQUEST, e.to_string());
    }
    match node.store.upsert_mission(&mission).await {
        Ok(true) => (
            StatusCode::CREATED,
            Json(json!({ "id": mission.id, "created": true })),
        )
            .into_response(),
        Ok(false) => Json(json!({ "id": mission.id, "created": false })).into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "storing mission");
            error(StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

async fn list_flags(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if let Err(denied) = admin(&node, &headers) {
        return *denied;
    }
    match node.store.flags().await {
        Ok(flags) => Json(flags).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

/// `PUT /admin/flags/{name}`: the switch, and optionally who it reaches.
#[derive(Deserialize)]
struct FlagChange {
    enabled: bool,
    /// Users who always get the flag while it is on.
    allow: Option<std::collections::BTreeSet<String>>,
    /// Share (0–100) of the other users who get it; absent with `allow` = only the allowlist
    /// when `allow` is given, everyone otherwise.
    percent: Option<u8>,
}

async fn set_flag(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<FlagChange>, JsonRejection>,
) -> Response {
    if let Err(denied) = admin(&node, &headers) {
        return *denied;
    }
    let Json(change) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if change.percent.is_some_and(|p| p > 100) {
        return error(StatusCode::BAD_REQUEST, "percent must be 0-100");
    }
    match node.store.set_flag(&name, change.enabled).await {
        Ok(false) => return error(StatusCode::NOT_FOUND, format!("no flag '{name}'")),
        Ok(true) => {}
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
    if change.allow.is_some() || change.percent.is_some() {
        let allow = change.allow.clone().unwrap_or_default();
        // An allowlist alone targets only those users; a percentage alone, that share.
        let percent = change.percent.or(Some(0));
        let targeting = crate::model::Targeting { allow, percent };
        if let Err(e) = node.store.set_flag_targeting(&name, &targeting).await {
            return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}"));
        }
    }
    match flags::changed(&node).await {
        Ok(flags) => {
            let targeting = flags.targeting.get(&name).cloned();
            Json(json!({ "name": name, "enabled": change.enabled, "targeting": targeting }))
                .into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

async fn start_drain(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if let Err(denied) = admin(&node, &headers) {
        return *denied;
    }
    tokio::spawn(drain::drain(node.clone()));
    (StatusCode::ACCEPTED, Json(json!({ "draining": true }))).into_response()
}

/// The client's address: the balancer's `X-Real-IP` / `X-Forwarded-For` first.
fn client_ip(headers: &HeaderMap, peer: SocketAddr) -> String {
    headers
        .get("x-real-ip")
        .or_else(|| headers.get("x-forwarded-for"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| peer.ip().to_string())
}

async fn ws_upgrade(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    upgrade: Result<axum::extract::WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let node = &gateway.node;
    if node.is_draining() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining: connect to another node",
        );
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
            let ip = client_ip(&headers, peer);
            let store = node.store.clone();
            let reason = why.to_string();
            // The refusal must not wait on the database.
            tokio::spawn(async move {
                if let Err(e) = store.log_auth(None, false, &reason, Some(&ip)).await {
                    tracing::warn!(error = %format!("{e:#}"), "recording failed login");
                }
            });
            return error(StatusCode::UNAUTHORIZED, why.to_string());
        }
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let cfg = &gateway.node.config;
    let max_frame = cfg.max_frame_bytes;
    upgrade
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
        .on_upgrade(move |socket| conn::serve(gateway, socket, identity))
}
