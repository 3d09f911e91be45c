//! Notifications: `POST /admin/notifications` stores one row per target user with
//! an expiry (one INSERT … SELECT, never a query per user) and pushes a
//! `notification` frame to every online target on every node; `POST
//! /admin/events/{id}/activate` does the same for everyone, for an event defined
//! in the events file (`JUNO_EVENTS_FILE`, default `events.json`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chrono::{Duration, Utc};
use juno_protocol::{encode, Notification, ServerMsg};
use serde::Deserialize;
use serde_json::json;

use crate::cluster::BusMsg;
use crate::node::Node;
use crate::store::NotificationTargets;

/// How long a notification is kept unless the request says otherwise.
const DEFAULT_TTL_SECS: i64 = 7 * 24 * 3600;

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

/// An event from the events file.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

pub async fn bulk(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Result<Json<BulkNotification>, JsonRejection>,
) -> Response {
    if let Err(denied) = crate::http::admin(&node, &headers) {
        return *denied;
    }
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return crate::http::error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if req.title.is_empty()
        || req.title.len() > 200
        || req.message.len() > 2000
        || req.kind.is_empty()
    {
        return crate::http::error(
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
    if let Err(denied) = crate::http::admin(&node, &headers) {
        return *denied;
    }
    let events = match load_events(&node) {
        Ok(events) => events,
        Err(e) => return crate::http::error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    };
    let Some(event) = events.get(&id) else {
        return crate::http::error(StatusCode::NOT_FOUND, format!("no event '{id}'"));
    };
    let notification = Notification {
        kind: "event_started".into(),
        title: format!("🎉 {} gestartet!", event.name),
        message: event.description.clone(),
    };
    let targets = NotificationTargets {
        min_level: None,
        users: None,
    };
    send(&node, targets, notification, DEFAULT_TTL_SECS).await
}

/// Stores the notification for every target and pushes it to the online ones everywhere.
async fn send(
    node: &Arc<Node>,
    targets: NotificationTargets,
    notification: Notification,
    ttl_secs: i64,
) -> Response {
    let now = Utc::now();
    let expires = now + Duration::seconds(ttl_secs.clamp(60, 365 * 24 * 3600));
    let stored = match node
        .store
        .insert_notifications(&targets, &notification, now, expires)
        .await
    {
        Ok(n) => n,
        Err(e) => return crate::http::error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    };
    let frame = encode(&ServerMsg::Notification(notification));
    let users = targets.users.map(|u| u.into_iter().collect());
    match &node.cluster {
        Some(cluster) => cluster.send_all(&BusMsg::Notify {
            users,
            min_level: targets.min_level,
            frame,
        }),
        None => {
            deliver_local(node, users, targets.min_level, frame).await;
        }
    }
    (StatusCode::ACCEPTED, Json(json!({ "stored": stored }))).into_response()
}

/// Pushes `frame` to this node's online targets; returns how many got it.
pub async fn deliver_local(
    node: &Node,
    users: Option<Vec<String>>,
    min_level: Option<i32>,
    frame: Bytes,
) -> usize {
    let mut online: Vec<String> = node
        .sessions
        .all()
        .iter()
        .map(|c| c.user.to_string())
        .collect();
    if let Some(users) = users {
        let wanted: BTreeSet<String> = users.into_iter().collect();
        online.retain(|u| wanted.contains(u));
    }
    if let Some(level) = min_level {
        match node.store.users_at_level(&online, level).await {
            Ok(qualified) => online = qualified,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "filtering notification targets");
                return 0;
            }
        }
    }
    online
        .iter()
        .filter(|u| node.send_to(u, frame.clone()))
        .count()
}

fn load_events(node: &Node) -> anyhow::Result<BTreeMap<String, Event>> {
    let path = node.config.events_file.clone();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}
