//! Messages between nodes: each node listens on its own channel and on one
//! channel for everybody. The bus carries opaque payloads (the game layer
//! decides what they mean) and hands what arrives for this node to one inbox,
//! in order. Alone, a node's bus is a loopback: what it sends to itself or to
//! everybody lands in its own inbox, so callers never ask whether others exist.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::link::Link;

/// What arrives on this node's inbox.
pub type Inbox = mpsc::UnboundedReceiver<Bytes>;

/// This node's end of the bus.
pub struct Bus {
    node_id: String,
    redis: Option<Arc<Link>>,
    inbox: mpsc::UnboundedSender<Bytes>,
}

impl Bus {
    pub(crate) fn new(node_id: &str, redis: Option<Arc<Link>>) -> (Bus, Inbox) {
        let (inbox, rx) = mpsc::unbounded_channel();
        let bus = Bus {
            node_id: node_id.to_string(),
            redis,
            inbox,
        };
        (bus, rx)
    }

    /// Sends `payload` to `node` (in order with every other write of this node).
    /// A payload for a node that does not exist is dropped, as Redis would.
    pub fn send(&self, node: &str, payload: Vec<u8>) {
        match &self.redis {
            Some(redis) => redis.publish(channel(redis, node), payload),
            None if node == self.node_id => {
                let _ = self.inbox.send(Bytes::from(payload));
            }
            None => tracing::debug!(%node, "bus message for an unknown node dropped"),
        }
    }

    /// Sends `payload` to every node, this one included.
    pub fn send_all(&self, payload: Vec<u8>) {
        match &self.redis {
            Some(redis) => redis.publish(all_channel(redis), payload),
            None => {
                let _ = self.inbox.send(Bytes::from(payload));
            }
        }
    }

    /// Listens on this node's channel and the all-nodes channel until `stopped`
    /// says so, reconnecting after outages (a loopback bus needs no listener).
    pub(crate) fn spawn_listener(&self, stopped: impl Fn() -> bool + Send + 'static) {
        let Some(redis) = self.redis.clone() else {
            return;
        };
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                if stopped() || inbox.is_closed() {
                    return;
                }
                match redis.client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        let subscribed = async {
                            pubsub.subscribe(channel(&redis, &redis.node_id)).await?;
                            pubsub.subscribe(all_channel(&redis)).await
                        }
                        .await;
                        if let Err(e) = subscribed {
                            tracing::warn!(error = %e, "subscribing to the bus");
                        } else {
                            backoff = Duration::from_millis(100);
                            let mut messages = pubsub.on_message();
                            while let Some(msg) = messages.next().await {
                                if inbox
                                    .send(Bytes::copy_from_slice(msg.get_payload_bytes()))
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            tracing::warn!("bus subscription ended; reconnecting");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "bus connection failed"),
                }
                redis.set_healthy(false);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
    }
}

fn channel(redis: &Link, node: &str) -> String {
    redis.key(&["to", node])
}

fn all_channel(redis: &Link) -> String {
    redis.key(&["all"])
}
