//! Progress while a run goes on: an indicatif bar on stderr (connections made and
//! matches finished against the plan, frame rates, errors), hidden with `--quiet`.
//! Worker processes print the same snapshot as a JSON line on stdout instead, for
//! the parent to add up. The same task scrapes each target's `/metrics` once a
//! second for the peaks of RSS and `ws_connections`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics_scrape::{self, Peak};
use crate::stats::Stats;
use crate::target::Target;
use crate::Config;

/// Prefix of a worker's progress lines on stdout.
pub const PROGRESS_PREFIX: &str = "progress ";

/// Counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub planned: u64,
    pub made: u64,
    pub failed: u64,
    pub open: u64,
    pub sent: u64,
    pub received: u64,
    pub expected: u64,
    pub finished: u64,
    pub errors: u64,
}

impl Snapshot {
    /// The counters of `stats` now.
    pub fn of(stats: &Stats) -> Snapshot {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            planned: get(&stats.conn_planned),
            made: get(&stats.conn_made),
            failed: get(&stats.conn_failed),
            open: get(&stats.conn_open),
            sent: get(&stats.frames_sent),
            received: get(&stats.frames_received),
            expected: get(&stats.matches_expected),
            finished: get(&stats.matches_finished),
            errors: get(&stats.error_frames),
        }
    }

    /// Adds another process's counters.
    pub fn add(&mut self, o: &Snapshot) {
        self.planned += o.planned;
        self.made += o.made;
        self.failed += o.failed;
        self.open += o.open;
        self.sent += o.sent;
        self.received += o.received;
        self.expected += o.expected;
        self.finished += o.finished;
        self.errors += o.errors;
    }
}

/// Where the counters come from.
pub enum Source {
    /// This process's clients.
    Local(Arc<Stats>),
    /// The latest snapshot of each worker.
    Workers(Arc<Mutex<Vec<Snapshot>>>),
}

impl Source {
    fn snapshot(&self) -> Snapshot {
        match self {
            Source::Local(stats) => Snapshot::of(stats),
            Source::Workers(parts) => {
                let mut total = Snapshot::default();
                for s in parts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                    total.add(s);
                }
                total
            }
        }
    }
}

/// The running progress task.
pub struct Progress {
    stop: CancellationToken,
    task: JoinHandle<Vec<Peak>>,
}

impl Progress {
    /// Starts reporting progress for a run of `config` on `source`.
    pub fn start(
        config: &Config,
        source: Source,
        http: reqwest::Client,
        targets: Vec<Target>,
    ) -> Progress {
        let stop = CancellationToken::new();
        let worker = config.part.is_some();
        let bar = if config.quiet || worker {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        };
        let scenario = config.scenario.name();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut peaks = vec![Peak::default(); targets.len()];
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                let mut last = (Instant::now(), Snapshot::default());
                let mut scraped = Instant::now();
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.cancelled() => break,
                    }
                    let now = Instant::now();
                    let snap = source.snapshot();
                    if worker {
                        if let Ok(line) = serde_json::to_string(&snap) {
                            println!("{PROGRESS_PREFIX}{line}");
                        }
                    } else {
                        let secs = now.duration_since(last.0).as_secs_f64().max(0.001);
                        let tx = (snap.sent - last.1.sent.min(snap.sent)) as f64 / secs;
                        let rx = (snap.received - last.1.received.min(snap.received)) as f64 / secs;
                        bar.set_length(snap.planned + snap.expected);
                        bar.set_position(snap.made + snap.failed + snap.finished);
                        bar.set_message(format!(
                            "{scenario}: open {} (failed {}) | matches {}/{} | tx {tx:.0}/s rx {rx:.0}/s | errors {}",
                            snap.open, snap.failed, snap.finished, snap.expected, snap.errors
                        ));
                    }
                    last = (now, snap);
                    if now.duration_since(scraped) >= Duration::from_secs(1) {
                        scraped = now;
                        let samples = metrics_scrape::scrape_all(&http, &targets).await;
                        for (peak, sample) in peaks.iter_mut().zip(samples) {
                            if let Ok(s) = sample {
                                peak.add(&s);
                            }
                        }
                    }
                }
                bar.finish_and_clear();
                peaks
            }
        });
        Progress { stop, task }
    }

    /// Stops reporting; returns the peaks seen per target.
    pub async fn finish(self) -> Vec<Peak> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}
