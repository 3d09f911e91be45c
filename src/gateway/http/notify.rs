//! The notification routes: `POST /admin/notifications` (to everyone, a list of
//! users, or users at or above a level) and `POST /admin/events/{id}/activate`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use juno_protocol::Notification;
use serde::Deserialize;
use serde_json::json;

use super::admin::admin;
use super::error::error;
use crate::game::notify::{self, DEFAULT_TTL_SECS};
use crate::game::Node;
use crate::store::NotificationTargets;

/// `POST /admin/notifications`.
#[derive(Deserialize)]
pub struct BulkNotification {
    #[serde(default = "default_kind")]
    kind: String,
    title: String,
    message: String,
    /// Only users at or above this level (the guide's `minLevel`).
    min_level: Option<i32>,
    /// Only these users.
    users: Option<BTreeSet<String>>,
    ttl_secs: Option<i64>,
}

fn default_kind() -> String {
    "special_announcement".into()
}

pub async fn bulk(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Result<Json<BulkNotification>, JsonRejection>,
) -> Response {
    if let Err(denied) = admin(&node, &headers) {
        return *denied;
    }
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if req.title.is_empty()
        || req.title.len() > 200
        || req.message.len() > 2000
        || req.kind.is_empty()
    {
        return error(
            StatusCode::BAD_REQUEST,
            "title must be 1-200 bytes, message at most 2000",
        );
    }
    let targets = NotificationTargets {
        min_level: req.min_level,
        users: req.users.clone(),
    };
    let notification = Notification {
        kind: req.kind,
        title: req.title,
        message: req.message,
    };
    send(
        &node,
        targets,
        notification,
        req.ttl_secs.unwrap_or(DEFAULT_TTL_SECS),
    )
    .await
}

pub async fn activate_event(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(denied) = admin(&node, &headers) {
        return *denied;
    }
    let events = match notify::events(&node) {
        Ok(events) => events,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    };
    let Some(event) = events.get(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no event '{id}'"));
    };
    let notification = event.announcement();
    let targets = NotificationTargets {
        min_level: None,
        users: None,
    };
    send(&node, targets, notification, DEFAULT_TTL_SECS).await
}

/// Stores and pushes the notification; answers how many were stored.
async fn send(
    node: &Node,
    targets: NotificationTargets,
    notification: Notification,
    ttl_secs: i64,
) -> Response {
    match notify::send(node, targets, notification, ttl_secs).await {
        Ok(stored) => (StatusCode::ACCEPTED, Json(json!({ "stored": stored }))).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}
