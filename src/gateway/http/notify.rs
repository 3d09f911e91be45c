//! The notification routes: `POST /admin/notifications` (to everyone, a list of
//! users, or users at or above a level) and `POST /admin/events/{id}/activate`.
//! Both answer 202 with how many notifications were stored.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use juno_protocol::Notification;
use serde::{Deserialize, Serialize};

use super::admin::Admin;
use super::error::{ApiError, StoreResultExt};
use crate::game::notify::{self, DEFAULT_TTL_SECS};
use crate::game::Node;
use crate::store::NotificationTargets;

/// The body of `POST /admin/notifications`.
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

/// Both routes, with 202: how many notifications were stored (one per recipient).
#[derive(Debug, Serialize)]
pub struct Stored {
    pub stored: u64,
}

/// `POST /admin/notifications`.
pub async fn bulk(
    _: Admin,
    State(node): State<Arc<Node>>,
    body: Result<Json<BulkNotification>, JsonRejection>,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
    let Json(req) = body?;
    if req.title.is_empty()
        || req.title.len() > 200
        || req.message.len() > 2000
        || req.kind.is_empty()
    {
        return Err(ApiError::BadRequest(
            "title must be 1-200 bytes, message at most 2000".into(),
        ));
    }
    let targets = NotificationTargets {
        min_level: req.min_level,
        users: req.users,
    };
    let notification = Notification {
        kind: req.kind,
        title: req.title,
        message: req.message,
    };
    let ttl_secs = req.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    send(&node, targets, notification, ttl_secs).await
}

/// `POST /admin/events/{id}/activate`: announces an event of the events file to everyone.
pub async fn activate_event(
    _: Admin,
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
    let events = notify::events(&node).map_err(|e| ApiError::Internal(format!("{e:#}")))?;
    let event = events
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no event '{id}'")))?;
    let targets = NotificationTargets {
        min_level: None,
        users: None,
    };
    send(&node, targets, event.announcement(), DEFAULT_TTL_SECS).await
}

/// Stores and pushes the notification; answers how many were stored.
async fn send(
    node: &Node,
    targets: NotificationTargets,
    notification: Notification,
    ttl_secs: i64,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
    let stored = notify::send(node, targets, notification, ttl_secs)
        .await
        .or_unavailable_with_cause("sending notifications")?;
    Ok((StatusCode::ACCEPTED, Json(Stored { stored })))
}
