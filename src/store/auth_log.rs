//! Failed (and other) authentication attempts are recorded in `auth_logs` by one
//! background writer, in batches: a flood of refused requests costs a few
//! statements, never a task and a transaction each. The queue is bounded; what
//! does not fit is counted and dropped, so an attack cannot grow the node's memory.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::{with_pool, Store};

/// Records waiting to be written at most; beyond it they are dropped.
const QUEUE: usize = 10_000;
/// Rows per INSERT statement.
const BATCH: usize = 500;

/// One authentication attempt.
#[derive(Debug, Clone)]
pub struct AuthRecord {
    pub user: Option<String>,
    pub success: bool,
    /// Why it failed (or what succeeded), e.g. `expired token`, `admin: wrong token`.
    pub reason: String,
    pub ip: Option<String>,
    pub at: DateTime<Utc>,
}

/// Queues records for the writer.
pub struct AuthLog {
    tx: mpsc::Sender<AuthRecord>,
}

impl AuthLog {
    /// Starts the writer for `store`; it ends when this handle is dropped.
    pub fn start(store: Store) -> AuthLog {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(64);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                if let Err(e) = store.log_auths(&batch).await {
                    tracing::warn!(error = %format!("{e:#}"), dropped = batch.len(), "recording auth attempts");
                }
                batch.clear();
            }
        });
        AuthLog { tx }
    }

    /// Queues a record; `false` if the queue was full and it was dropped.
    pub fn record(&self, record: AuthRecord) -> bool {
        self.tx.try_send(record).is_ok()
    }
}

impl Store {
    /// Writes authentication attempts in one statement.
    pub async fn log_auths(&self, records: &[AuthRecord]) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        with_pool!(self, pool => {
            let mut insert = sqlx::QueryBuilder::new("INSERT INTO auth_logs (user_id, success, reason, ip, created_at) ");
            insert.push_values(records, |mut row, r| {
                row.push_bind(r.user.as_deref())
                    .push_bind(r.success)
                    .push_bind(r.reason.as_str())
                    .push_bind(r.ip.as_deref())
                    .push_bind(r.at);
            });
            insert.build().execute(pool).await.map(|_| ())
        })
        .map_err(|e| anyhow::Error::new(e).context("writing auth logs"))
    }
}
