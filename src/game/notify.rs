//! Notifications: one row per target user with an expiry (one INSERT … SELECT,
//! never a query per user) and a `notification` frame pushed to every online
//! target on every node; a target who was offline gets it at their next login,
//! while it is unexpired. Each row is claimed in the database as it is
//! delivered, so a user gets a notification once, live or at login. Events
//! defined in the events file (`JUNO_EVENTS_FILE`, default `events.json`) are
//! announced the same way.

use std::collections::{BTreeMap, BTreeSet};

use std::sync::{Arc, Weak};

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use juno_protocol::{encode, Notification, ServerMsg};
use serde::Deserialize;
use tokio::sync::mpsc;

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
        stored_at: now,
        title: notification.title.clone(),
        frame: encode(&ServerMsg::Notification(notification)),
    };
    node.cluster.bus.send_all(msg.encode());
    Ok(stored)
}

/// Pushes `frame` to this node's online targets of the notification stored at
/// `stored_at` with `title` (all online users, or those listed, who have a row:
/// the rows already say who qualified); returns how many got it.
pub async fn deliver_local(
    node: &Node,
    users: Option<Vec<String>>,
    stored_at: DateTime<Utc>,
    title: &str,
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
    if online.is_empty() {
        return 0;
    }
    let claimed = node
        .store
        .claim_sent_notification(&online, stored_at, title, Utc::now())
        .await;
    match claimed {
        Ok(claimed) => claimed
            .iter()
            .filter(|u| node.send_to(u, frame.clone()))
            .count(),
        Err(e) => {
            // They get it at their next login instead.
            tracing::warn!(error = %format!("{e:#}"), "claiming a notification for online users");
            0
        }
    }
}

/// Users who just arrived, to be given the notifications they missed. One task
/// looks them up in batches: a connect storm costs a few queries, not one each.
pub struct Replay {
    tx: mpsc::UnboundedSender<String>,
}

/// Users whose missed notifications are looked up in one statement at most.
const REPLAY_BATCH: usize = 500;

impl Replay {
    /// The replay of `node` (started by [`Node::start`]).
    pub(super) fn start(node: Weak<Node>) -> Replay {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(64);
            while rx.recv_many(&mut batch, REPLAY_BATCH).await > 0 {
                let Some(node) = node.upgrade() else { return };
                replay(&node, std::mem::take(&mut batch)).await;
            }
        });
        Replay { tx }
    }

    /// `user` connected here: give them what they missed.
    pub fn arrived(&self, user: &str) {
        let _ = self.tx.send(user.to_string());
    }
}

/// Delivers the missed notifications of `users` who are still connected here.
async fn replay(node: &Arc<Node>, mut users: Vec<String>) {
    users.retain(|u| node.sessions.get(u).is_some());
    users.sort();
    users.dedup();
    if users.is_empty() {
        return;
    }
    match node
        .store
        .claim_pending_notifications(&users, Utc::now())
        .await
    {
        Ok(pending) => {
            for p in pending {
                node.send_to(&p.user, encode(&ServerMsg::Notification(p.notification)));
            }
        }
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "delivering missed notifications"),
    }
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
