//! Per-address limits (WIRE.md v1.1 §1–§3), so that one client cannot take what
//! every client shares:
//!
//! - open connections per client address (`JUNO_MAX_CONNS_PER_IP`), beyond which
//!   a connection is answered 429 — counted per TCP peer for direct clients, and
//!   per forwarded address for WebSockets through a trusted proxy;
//! - refused upgrades: an address that sent more than [`REFUSALS_PER_MINUTE`]
//!   in a minute gets 429 for the rest of that minute, before any token check or
//!   database write;
//! - admin failures: each is written to `auth_logs`, and [`ADMIN_FAILURES`] within
//!   [`ADMIN_WINDOW`] lock the address out of `/admin/*` for [`ADMIN_LOCKOUT`].
//!
//! Entries are swept once a minute, so addresses that went away cost nothing.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use dashmap::DashMap;

use crate::store::{AuthLog, AuthRecord, Store};

/// Refused upgrades an address may send in a minute.
pub const REFUSALS_PER_MINUTE: u32 = 100;
/// Failed admin attempts that lock an address out…
pub const ADMIN_FAILURES: usize = 10;
/// …when they fall within this window…
pub const ADMIN_WINDOW: Duration = Duration::from_secs(600);
/// …for this long.
pub const ADMIN_LOCKOUT: Duration = Duration::from_secs(900);
const MINUTE: Duration = Duration::from_secs(60);

/// Refusals counted in a fixed minute.
struct Window {
    since: Instant,
    count: u32,
}

#[derive(Default)]
struct AdminFailures {
    recent: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

/// The node's per-address bookkeeping.
pub struct Guard {
    max_conns: u32,
    open: DashMap<IpAddr, u32>,
    refused: DashMap<IpAddr, Window>,
    admin: DashMap<IpAddr, AdminFailures>,
    auth_log: AuthLog,
}

/// An open connection of an address; dropping it frees the place.
pub struct Permit {
    guard: Arc<Guard>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.guard.open.remove_if_mut(&self.ip, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

impl Guard {
    /// A guard allowing `max_conns` per address, recording attempts into `store`.
    pub fn start(max_conns: usize, store: Store) -> Arc<Guard> {
        let guard = Arc::new(Guard {
            max_conns: u32::try_from(max_conns).unwrap_or(u32::MAX),
            open: DashMap::new(),
            refused: DashMap::new(),
            admin: DashMap::new(),
            auth_log: AuthLog::start(store),
        });
        spawn_sweep(Arc::downgrade(&guard));
        guard
    }

    /// A place for one more open connection of `ip`; `None` when it has its share.
    pub fn open(self: &Arc<Self>, ip: IpAddr) -> Option<Permit> {
        let ip = ip.to_canonical();
        let mut open = self.open.entry(ip).or_insert(0);
        if *open >= self.max_conns {
            return None;
        }
        *open += 1;
        drop(open);
        Some(Permit {
            guard: self.clone(),
            ip,
        })
    }

    /// Whether `ip` has used up its refused upgrades for this minute.
    pub fn upgrades_blocked(&self, ip: IpAddr) -> bool {
        self.refused
            .get(&ip.to_canonical())
            .is_some_and(|w| w.since.elapsed() < MINUTE && w.count > REFUSALS_PER_MINUTE)
    }

    /// An upgrade from `ip` was refused: counted, and written to `auth_logs`.
    pub fn refused_upgrade(&self, ip: IpAddr, reason: &str) {
        let ip = ip.to_canonical();
        {
            let mut window = self.refused.entry(ip).or_insert(Window {
                since: Instant::now(),
                count: 0,
            });
            if window.since.elapsed() >= MINUTE {
                *window = Window {
                    since: Instant::now(),
                    count: 0,
                };
            }
            window.count += 1;
        }
        self.record(None, reason, ip);
    }

    /// Whether `ip` is locked out of the admin API.
    pub fn admin_locked(&self, ip: IpAddr) -> bool {
        self.admin
            .get(&ip.to_canonical())
            .and_then(|a| a.locked_until)
            .is_some_and(|until| Instant::now() < until)
    }

    /// A failed admin attempt from `ip`: written to `auth_logs`, and counted
    /// towards a lockout.
    pub fn admin_failed(&self, ip: IpAddr, reason: &str) {
        let ip = ip.to_canonical();
        let now = Instant::now();
        {
            let mut record = self.admin.entry(ip).or_default();
            record
                .recent
                .retain(|t| now.duration_since(*t) < ADMIN_WINDOW);
            record.recent.push_back(now);
            if record.recent.len() >= ADMIN_FAILURES {
                record.locked_until = Some(now + ADMIN_LOCKOUT);
                record.recent.clear();
                tracing::warn!(%ip, "admin API locked for this address after repeated failures");
            }
        }
        self.record(None, reason, ip);
    }

    fn record(&self, user: Option<String>, reason: &str, ip: IpAddr) {
        let queued = self.auth_log.record(AuthRecord {
            user,
            success: false,
            reason: reason.to_string(),
            ip: Some(ip.to_string()),
            at: Utc::now(),
        });
        if !queued {
            tracing::debug!(%ip, "auth log queue full: attempt not recorded");
        }
    }

    /// Forgets windows and lockouts that are over.
    fn sweep(&self) {
        let now = Instant::now();
        self.refused
            .retain(|_, w| now.duration_since(w.since) < MINUTE);
        self.admin.retain(|_, a| {
            a.recent.retain(|t| now.duration_since(*t) < ADMIN_WINDOW);
            !a.recent.is_empty() || a.locked_until.is_some_and(|u| now < u)
        });
    }
}

fn spawn_sweep(guard: Weak<Guard>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(MINUTE);
        loop {
            tick.tick().await;
            let Some(guard) = guard.upgrade() else { return };
            guard.sweep();
        }
    });
}
