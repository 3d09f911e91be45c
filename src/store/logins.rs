//! Logins are recorded in batches by one background writer: a connect storm of
//! thousands of clients costs a few transactions, not a task and a transaction per
//! connection. A login that cannot be written is logged and dropped (it is
//! analytics, not a match result).

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::store::Store;

/// Logins written per transaction at most.
const BATCH: usize = 2000;

/// Queues logins for the writer.
pub struct Logins {
    tx: mpsc::UnboundedSender<(String, String, DateTime<Utc>)>,
}

impl Logins {
    /// Starts the writer for `store`; it ends when the node (and so this handle) is dropped.
    pub fn start(store: Store) -> Logins {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(64);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                if let Err(e) = store.record_logins(&batch).await {
                    tracing::warn!(error = %format!("{e:#}"), dropped = batch.len(), "recording logins");
                }
                batch.clear();
            }
        });
        Logins { tx }
    }

    /// Records that `user` (shown as `name`) connected now.
    pub fn record(&self, user: &str, name: &str) {
        let _ = self
            .tx
            .send((user.to_string(), name.to_string(), Utc::now()));
    }
}
