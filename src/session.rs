//! Live connections by user: one per user (a newer one replaces the older),
//! each reached through a bounded queue of encoded frames so that a client
//! that cannot keep up is cut off instead of slowing anybody else down.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::IntCounter;
use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What the writer half of a connection sends.
#[derive(Debug)]
pub enum Outbound {
    Frame(Bytes),
    /// Keepalive: send a WebSocket ping, or stop if the peer has been silent too long.
    /// One node-wide sweep queues these, so an idle connection carries no timer.
    Ping,
    /// Send a close frame with this code and reason, then stop.
    Close(u16, &'static str),
}

/// A cheap, cloneable way to reach one connection.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    /// Unique per connection, so a stale handle never unregisters its replacement.
    pub id: u64,
    pub user: Arc<str>,
    queue: Arc<Queue>,
    /// Cancelled to stop both halves of the connection at once.
    pub stop: CancellationToken,
    frames_sent: IntCounter,
    dropped_slow: IntCounter,
}

impl ConnHandle {
    /// Queues a frame. A full queue means the client stopped reading: it is
    /// disconnected (its seat is kept for the reconnect window) and `false` returned.
    pub fn send(&self, frame: Bytes) -> bool {
        match self.queue.push(Outbound::Frame(frame)) {
            Ok(()) => {
                self.frames_sent.inc();
                true
            }
            Err(Refused::Full) => {
                if !self.stop.is_cancelled() {
                    self.dropped_slow.inc();
                    tracing::info!(user = %self.user, "client not reading its frames: disconnecting");
                    self.stop.cancel();
                }
                false
            }
            Err(Refused::Closed) => false,
        }
    }

    /// Queues a keepalive ping (a full queue already means the client is being cut off).
    pub fn ping(&self) {
        let _ = self.queue.push(Outbound::Ping);
    }

    /// Queues a close frame after whatever is queued; if the queue is full the
    /// connection is simply stopped.
    pub fn close(&self, code: u16, reason: &'static str) {
        if self.queue.push(Outbound::Close(code, reason)).is_err() {
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
    pub fn open(&self, user: &str, queue: usize) -> (ConnHandle, Outgoing) {
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                closed: false,
            }),
            ready: Notify::new(),
            cap: queue.max(1),
        });
        let rx = Outgoing {
            queue: queue.clone(),
        };
        let handle = ConnHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user: Arc::from(user),
            queue,
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

    /// Queues a keepalive ping on every live connection.
    pub fn ping_all(&self) {
        for entry in self.by_user.iter() {
            entry.value().ping();
        }
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

/// A connection's bounded queue of outgoing frames. Not a tokio mpsc channel:
/// that allocates a block of 32 slots (about 1 KiB) per connection up front,
/// while this one holds nothing while idle.
#[derive(Debug)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Notify,
    cap: usize,
}

#[derive(Debug)]
struct QueueState {
    items: VecDeque<Outbound>,
    /// The receiving end is gone.
    closed: bool,
}

enum Refused {
    Full,
    Closed,
}

/// Capacity an emptied queue may keep; a burst's larger buffer is given back.
const KEPT_CAPACITY: usize = 16;

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // A panic while holding this lock leaves the queue consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, out: Outbound) -> Result<(), Refused> {
        {
            let mut state = self.lock();
            if state.closed {
                return Err(Refused::Closed);
            }
            if state.items.len() >= self.cap {
                return Err(Refused::Full);
            }
            state.items.push_back(out);
        }
        self.ready.notify_one();
        Ok(())
    }
}

/// The receiving end of a connection's queue (its task's).
#[derive(Debug)]
pub struct Outgoing {
    queue: Arc<Queue>,
}

impl Outgoing {
    /// The next queued frame, waiting for one. Cancel-safe.
    pub async fn recv(&mut self) -> Outbound {
        loop {
            if let Ok(out) = self.try_recv() {
                return out;
            }
            // `notify_one` keeps a permit when nobody waits, so a frame pushed
            // between the check above and this wait is not missed.
            self.queue.ready.notified().await;
        }
    }

    /// The next queued frame, if any (`TryRecvError::Empty` otherwise, as with tokio's mpsc).
    pub fn try_recv(&mut self) -> Result<Outbound, TryRecvError> {
        let mut state = self.queue.lock();
        let out = state.items.pop_front();
        if state.items.is_empty() && state.items.capacity() > KEPT_CAPACITY {
            state.items = VecDeque::new();
        }
        out.ok_or(TryRecvError::Empty)
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.closed = true;
        state.items = VecDeque::new();
    }
}
