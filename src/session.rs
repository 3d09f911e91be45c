//! Live connections by user: one per user (a newer one replaces the older),
//! each reached through a bounded queue of encoded frames so that a client
//! that cannot keep up is cut off instead of slowing anybody else down.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::IntCounter;
use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the writer half of a connection sends.
#[derive(Debug)]
pub enum Outbound {
    Frame(Bytes),
    /// Send a close frame with this code and reason, then stop.
    Close(u16, &'static str),
}

/// A cheap, cloneable way to reach one connection.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    /// Unique per connection, so a stale handle never unregisters its replacement.
    pub id: u64,
    pub user: Arc<str>,
    tx: mpsc::Sender<Outbound>,
    /// Cancelled to stop both halves of the connection at once.
    pub stop: CancellationToken,
    frames_sent: IntCounter,
    dropped_slow: IntCounter,
}

impl ConnHandle {
    /// Queues a frame. A full queue means the client stopped reading: it is
    /// disconnected (its seat is kept for the reconnect window) and `false` returned.
    pub fn send(&self, frame: Bytes) -> bool {
        match self.tx.try_send(Outbound::Frame(frame)) {
            Ok(()) => {
                self.frames_sent.inc();
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.stop.is_cancelled() {
                    self.dropped_slow.inc();
                    tracing::info!(user = %self.user, "client not reading its frames: disconnecting");
                    self.stop.cancel();
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a close frame after whatever is queued; if the queue is full the
    /// connection is simply stopped.
    pub fn close(&self, code: u16, reason: &'static str) {
        if self.tx.try_send(Outbound::Close(code, reason)).is_err() {
            self.stop.cancel();
        }
    }
}

/// The node's live connections, by user.
pub struct Sessions {
    by_user: DashMap<Arc<str>, ConnHandle>,
    next_id: AtomicU64,
    /// `frames_sent_total` and `slow_consumers_total`, counted by every handle.
    frames_sent: IntCounter,
    dropped_slow: IntCounter,
}

impl Sessions {
    pub fn new(frames_sent: IntCounter, dropped_slow: IntCounter) -> Sessions {
        Sessions {
            by_user: DashMap::new(),
            next_id: AtomicU64::new(1),
            frames_sent,
            dropped_slow,
        }
    }

    /// A handle and the receiving end of its queue for a new connection of `user`.
    pub fn open(&self, user: &str, queue: usize) -> (ConnHandle, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(queue);
        let handle = ConnHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user: Arc::from(user),
            tx,
            stop: CancellationToken::new(),
            frames_sent: self.frames_sent.clone(),
            dropped_slow: self.dropped_slow.clone(),
        };
        (handle, rx)
    }

    /// Makes `handle` the user's live connection; returns the one it replaces.
    pub fn register(&self, handle: ConnHandle) -> Option<ConnHandle> {
        self.by_user.insert(handle.user.clone(), handle)
    }

    /// Removes the user's entry only if it is still this connection; `true` if removed.
    pub fn unregister(&self, handle: &ConnHandle) -> bool {
        self.by_user
            .remove_if(&handle.user, |_, h| h.id == handle.id)
            .is_some()
    }

    pub fn get(&self, user: &str) -> Option<ConnHandle> {
        self.by_user.get(user).map(|h| h.clone())
    }

    /// Sends a frame to the user's live connection, if any.
    pub fn send_to(&self, user: &str, frame: Bytes) -> bool {
        match self.by_user.get(user) {
            Some(h) => h.send(frame),
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.by_user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }

    /// A snapshot of every live connection (for pushes to everyone and for drain).
    pub fn all(&self) -> Vec<ConnHandle> {
        self.by_user.iter().map(|e| e.value().clone()).collect()
    }
}
