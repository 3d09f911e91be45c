//! The results outbox: finished matches are written by one background writer.
//! When the database is down they wait here and are retried; at shutdown what
//! could not be written is spooled to a file and written at the next start, so a
//! result is never lost.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::IntGauge;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::MatchRecord;
use crate::store::Store;

/// How long to wait before retrying a failed write.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Hands finished matches to the writer.
pub struct Outbox {
    tx: mpsc::UnboundedSender<MatchRecord>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<MatchRecord>>>,
    /// Records pushed and not yet written.
    pending: Arc<AtomicI64>,
    gauge: IntGauge,
}

impl Outbox {
    pub fn new(gauge: IntGauge) -> Outbox {
        let (tx, rx) = mpsc::unbounded_channel();
        Outbox {
            tx,
            rx: Mutex::new(Some(rx)),
            pending: Arc::new(AtomicI64::new(0)),
            gauge,
        }
    }

    pub fn push(&self, record: MatchRecord) {
        self.gauge
            .set(self.pending.fetch_add(1, Ordering::AcqRel) + 1);
        if self.tx.send(record).is_err() {
            tracing::error!("outbox writer is gone; a match result was not queued");
        }
    }

    /// Results not yet in the database.
    pub fn pending(&self) -> i64 {
        self.pending.load(Ordering::Acquire)
    }

    /// Waits until every pushed result is written, or `timeout` passes; `true` if all were written.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.pending() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Starts the writer. `spool` is where unwritten results go at shutdown and come back from.
    /// The writer stops when `stop` is cancelled, spooling whatever is still unwritten.
    pub fn start(
        &self,
        store: Store,
        spool: PathBuf,
        stop: CancellationToken,
        on_written: impl Fn(&MatchRecord) + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let rx = self.rx.lock().ok().and_then(|mut r| r.take());
        for record in read_spool(&spool) {
            self.push(record);
        }
        let pending = self.pending.clone();
        let gauge = self.gauge.clone();
        tokio::spawn(async move {
            let Some(mut rx) = rx else { return };
            let mut retry: VecDeque<MatchRecord> = VecDeque::new();
            loop {
                if retry.is_empty() {
                    tokio::select! {
                        r = rx.recv() => match r { Some(r) => retry.push_back(r), None => break },
                        _ = stop.cancelled() => break,
                    }
                }
                while let Ok(r) = rx.try_recv() {
                    retry.push_back(r);
                }
                while let Some(record) = retry.front() {
                    match store.record_match(record).await {
                        Ok(written) => {
                            // A retry of a match already recorded must not count twice.
                            if written {
                                on_written(record);
                            }
                            retry.pop_front();
                            gauge.set(pending.fetch_sub(1, Ordering::AcqRel) - 1);
                        }
                        Err(e) => {
                            tracing::warn!(error = %format!("{e:#}"), waiting = retry.len(), "match result not written; will retry");
                            break;
                        }
                    }
                }
                if !retry.is_empty() {
                    tokio::select! {
                        r = rx.recv() => match r { Some(r) => retry.push_back(r), None => break },
                        _ = tokio::time::sleep(RETRY_EVERY) => {}
                        _ = stop.cancelled() => break,
                    }
                }
            }
            // The node is stopping: keep what could not be written for the next start.
            while let Ok(r) = rx.try_recv() {
                retry.push_back(r);
            }
            write_spool(&spool, retry.into_iter().collect());
        })
    }
}

fn read_spool(path: &PathBuf) -> Vec<MatchRecord> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let records: Vec<MatchRecord> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(error = %e, "could not remove outbox spool after reading it");
    }
    if !records.is_empty() {
        tracing::info!(
            count = records.len(),
            "writing match results spooled at the last shutdown"
        );
    }
    records
}

fn write_spool(path: &PathBuf, records: Vec<MatchRecord>) {
    if records.is_empty() {
        return;
    }
    let mut text = String::new();
    for r in &records {
        match serde_json::to_string(r) {
            Ok(line) => {
                text.push_str(&line);
                text.push('\n');
            }
            Err(e) => {
                tracing::error!(error = %e, "could not serialize a match result for the spool")
            }
        }
    }
    match std::fs::write(path, text) {
        Ok(()) => {
            tracing::warn!(count = records.len(), path = %path.display(), "database unreachable: match results spooled for the next start")
        }
        Err(e) => tracing::error!(error = %e, "could not spool unwritten match results"),
    }
}
