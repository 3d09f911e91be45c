//! Live connections by user: one per user (a newer one replaces the older),
//! each reached through a bounded queue of encoded frames so that a client
//! that cannot keep up is cut off instead of slowing anybody else down.
//!
//! The game layer owns these (rooms fan their frames out into the queues); the
//! gateway's connection task is the queue's one reader and writes to the socket.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use dashmap::DashMap;
use futures_util::task::AtomicWaker;
use prometheus::IntCounter;

/// WebSocket close codes the contract uses.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const PROTOCOL: u16 = 1002;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const RESTART: u16 = 1012;
}

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
                if self.queue.stop() {
                    self.dropped_slow.inc();
                    tracing::info!(user = %self.user, "client not reading its frames: disconnecting");
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
            self.queue.stop();
        }
    }

    /// Stops the connection now: its task ends without sending what is still queued
    /// (and without finishing a socket write that is stuck).
    pub fn stop(&self) {
        self.queue.stop();
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
                stopped: false,
            }),
            ready: AtomicWaker::new(),
            cap: queue.max(1),
        });
        let rx = Outgoing {
            queue: queue.clone(),
        };
        let handle = ConnHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user: Arc::from(user),
            queue,
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

/// A connection's bounded queue of outgoing frames, and its stop switch. Not a
/// tokio mpsc channel plus a cancellation token: the channel allocates a block of
/// 32 slots (about 1 KiB) per connection up front and the token another node,
/// while this holds nothing while idle, and the connection's task waits on it
/// through one registered waker instead of a stored future per wait.
#[derive(Debug)]
struct Queue {
    state: Mutex<QueueState>,
    ready: AtomicWaker,
    cap: usize,
}

#[derive(Debug)]
struct QueueState {
    items: VecDeque<Outbound>,
    /// The receiving end is gone.
    closed: bool,
    /// The connection is to end now.
    stopped: bool,
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
            if state.closed || state.stopped {
                return Err(Refused::Closed);
            }
            if state.items.len() >= self.cap {
                return Err(Refused::Full);
            }
            state.items.push_back(out);
        }
        self.ready.wake();
        Ok(())
    }

    /// Sets the stop switch; `true` if this call set it.
    fn stop(&self) -> bool {
        let first = {
            let mut state = self.lock();
            !std::mem::replace(&mut state.stopped, true)
        };
        self.ready.wake();
        first
    }
}

/// What the connection's task takes from its queue.
#[derive(Debug)]
pub enum Next {
    Out(Outbound),
    /// Stopped: end the connection now.
    Stop,
}

/// The receiving end of a connection's queue (its task's).
#[derive(Debug)]
pub struct Outgoing {
    queue: Arc<Queue>,
}

impl Outgoing {
    /// The next queued frame or the stop, without waiting.
    pub fn try_next(&mut self) -> Option<Next> {
        let mut state = self.queue.lock();
        if state.stopped {
            return Some(Next::Stop);
        }
        let out = state.items.pop_front();
        if state.items.is_empty() && state.items.capacity() > KEPT_CAPACITY {
            state.items = VecDeque::new();
        }
        out.map(Next::Out)
    }

    /// The next queued frame or the stop; otherwise the task is woken when there is one.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        if let Some(next) = self.try_next() {
            return Poll::Ready(next);
        }
        self.queue.ready.register(cx.waker());
        // A push between the check above and the registration woke nobody.
        match self.try_next() {
            Some(next) => Poll::Ready(next),
            None => Poll::Pending,
        }
    }

    /// Whether the connection is stopped; otherwise the task is woken when it is
    /// (or when a frame is queued).
    pub fn poll_stop(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        self.queue.ready.register(cx.waker());
        if self.queue.lock().stopped {
            Poll::Ready(Next::Stop)
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.closed = true;
        state.items = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::task::{Wake, Waker};

    fn sessions() -> Sessions {
        Sessions::new(
            IntCounter::new("frames_sent_total", "frames").expect("counter"),
            IntCounter::new("slow_consumers_total", "slow").expect("counter"),
        )
    }

    fn frame(text: &'static str) -> Bytes {
        Bytes::from_static(text.as_bytes())
    }

    fn describe(next: Option<Next>) -> String {
        match next {
            None => "empty".into(),
            Some(Next::Stop) => "stop".into(),
            Some(Next::Out(Outbound::Frame(b))) => {
                format!("frame {}", String::from_utf8_lossy(&b))
            }
            Some(Next::Out(Outbound::Ping)) => "ping".into(),
            Some(Next::Out(Outbound::Close(code, reason))) => format!("close {code} {reason}"),
        }
    }

    /// What the reader takes, up to the queue running dry or the stop.
    fn take_all(rx: &mut Outgoing) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let next = describe(rx.try_next());
            let end = next == "empty" || next == "stop";
            out.push(next);
            if end {
                return out;
            }
        }
    }

    /// A waker that remembers whether it was woken.
    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    impl Flag {
        fn woken(&self) -> bool {
            self.0.swap(false, Ordering::SeqCst)
        }
    }

    #[test]
    fn a_full_queue_stops_the_connection_and_counts_one_slow_consumer() {
        let s = sessions();
        let (ann, mut rx) = s.open("ann", 2);
        assert!(ann.send(frame("a")));
        assert!(ann.send(frame("b")));
        assert!(!ann.send(frame("c")), "a full queue refuses the frame");
        assert_eq!(s.dropped_slow.get(), 1);
        assert!(!ann.send(frame("d")));
        assert_eq!(s.dropped_slow.get(), 1, "one client is one slow consumer");
        assert_eq!(s.frames_sent.get(), 2, "only queued frames count as sent");
        // The connection ends now, without writing what it could not keep up with.
        assert_eq!(take_all(&mut rx), ["stop"]);
    }

    #[test]
    fn a_close_after_frames_comes_after_them_in_order() {
        let s = sessions();
        let (ann, mut rx) = s.open("ann", 8);
        assert!(ann.send(frame("a")));
        ann.ping();
        assert!(ann.send(frame("b")));
        ann.close(close_code::RESTART, "draining");
        assert_eq!(
            take_all(&mut rx),
            ["frame a", "ping", "frame b", "close 1012 draining", "empty"]
        );
        assert_eq!(s.dropped_slow.get(), 0);
    }

    #[test]
    fn a_close_that_does_not_fit_stops_the_connection() {
        let s = sessions();
        let (ann, mut rx) = s.open("ann", 1);
        assert!(ann.send(frame("a")));
        ann.close(close_code::NORMAL, "replaced");
        assert_eq!(take_all(&mut rx), ["stop"]);
    }

    #[test]
    fn stop_and_frames_wake_the_reader() {
        let s = sessions();
        let (ann, mut rx) = s.open("ann", 4);
        let flag = Arc::new(Flag::default());
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);

        assert!(rx.poll_next(&mut cx).is_pending());
        assert!(!flag.woken());
        assert!(ann.send(frame("a")));
        assert!(flag.woken(), "a queued frame wakes the reader");
        assert_eq!(
            describe(match rx.poll_next(&mut cx) {
                Poll::Ready(next) => Some(next),
                Poll::Pending => None,
            }),
            "frame a"
        );

        // The reader waits (its waker registered), and is woken by the stop.
        assert!(rx.poll_next(&mut cx).is_pending());
        ann.stop();
        assert!(flag.woken(), "stop wakes the reader");
        assert!(matches!(rx.poll_next(&mut cx), Poll::Ready(Next::Stop)));
    }

    #[test]
    fn stop_wakes_a_reader_stuck_on_a_write() {
        // While a socket write is stuck, the task only watches for the stop.
        let s = sessions();
        let (ann, mut rx) = s.open("ann", 4);
        let flag = Arc::new(Flag::default());
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_stop(&mut cx).is_pending());
        ann.stop();
        assert!(flag.woken());
        assert!(matches!(rx.poll_stop(&mut cx), Poll::Ready(Next::Stop)));
    }

    #[test]
    fn after_a_stop_nothing_more_is_taken_or_queued() {
        let s = sessions();
        let (ann, mut rx) = s.open("ann", 8);
        assert!(ann.send(frame("a")));
        assert!(ann.send(frame("b")));
        ann.stop();
        // The frames still queued are not written: the stop comes first, every time.
        assert_eq!(describe(rx.try_next()), "stop");
        assert_eq!(describe(rx.try_next()), "stop");
        assert!(!ann.send(frame("c")));
        ann.ping();
        ann.close(close_code::NORMAL, "late");
        assert_eq!(describe(rx.try_next()), "stop");
        assert_eq!(s.frames_sent.get(), 2);
        assert_eq!(s.dropped_slow.get(), 0, "a stop is not a slow consumer");
    }

    #[test]
    fn a_connection_whose_reader_is_gone_refuses_frames() {
        let s = sessions();
        let (ann, rx) = s.open("ann", 1);
        drop(rx);
        assert!(!ann.send(frame("a")));
        assert!(!ann.send(frame("b")));
        assert_eq!(s.frames_sent.get(), 0);
        assert_eq!(s.dropped_slow.get(), 0);
    }

    #[test]
    fn a_stale_handle_never_unregisters_its_replacement() {
        let s = sessions();
        let (old, mut old_rx) = s.open("ann", 4);
        let (new, mut new_rx) = s.open("ann", 4);
        assert_ne!(old.id, new.id);
        assert!(s.register(old.clone()).is_none());
        let replaced = s.register(new.clone()).expect("the older connection");
        assert_eq!(replaced.id, old.id);

        // The old connection's task ends later and tries to leave: ann stays, on `new`.
        assert!(!s.unregister(&old));
        assert_eq!(s.get("ann").map(|h| h.id), Some(new.id));
        assert!(s.send_to("ann", frame("x")));
        assert_eq!(take_all(&mut new_rx), ["frame x", "empty"]);
        assert_eq!(take_all(&mut old_rx), ["empty"]);

        assert!(s.unregister(&new));
        assert!(s.get("ann").is_none());
        assert!(s.is_empty());
        assert!(!s.send_to("ann", frame("y")));
    }
}
