//! Notifications: one row per target user with an expiry (one INSERT … SELECT,
//! never a query per user) and a `notification` frame pushed to every online
//! target on every node; events defined in the events file (`JUNO_EVENTS_FILE`,
//! default `events.json`) are announced the same way.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use chrono::{Duration, Utc};
use juno_protocol::{encode, Notification, ServerMsg};
use serde::Deserialize;

use super::inbound::BusMsg;
use super::Node;
use crate::store::NotificationTargets;

/// How long a notification is kept unless the request says otherwise.
pub const DEFAULT_TTL_SECS: i64 = 7 * 24 * 3600;

/// An event from the events file.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

impl Event {
    /// The notification that announces the event.
    pub fn announcement(&self) -> Notification {
        Notification {
            kind: "event_started".into(),
            title: format!("🎉 {} gestartet!", self.name),
            message: self.description.clone(),
        }
    }
}

/// Stores the notification for every target and pushes it to the online ones
/// on every node; returns how many were stored.
pub async fn send(
    node: &Node,
    targets: NotificationTargets,
    notification: Notification,
    ttl_secs: i64,
) -> anyhow::Result<u64> {
    let now = Utc::now();
    let expires = now + Duration::seconds(ttl_secs.clamp(60, 365 * 24 * 3600));
    let stored = node
        .store
        .insert_notifications(&targets, &notification, now, expires)
        .await?;
    let msg = BusMsg::Notify {
        users: targets.users.map(|u| u.into_iter().collect()),
        min_level: targets.min_level,
        frame: encode(&ServerMsg::Notification(notification)),
    };
    node.cluster.bus.send_all(msg.encode());
    Ok(stored)
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

/// The events file's events, by id (none when the file does not exist).
pub fn events(node: &Node) -> anyhow::Result<BTreeMap<String, Event>> {
    let path = node.config.events_file.clone();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}
