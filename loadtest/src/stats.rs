//! The measurements of one process, shared by all its clients: counters, latency
//! histograms, error codes, and each broadcast's first and last receipt. Turned into
//! a [`Report`] at the end.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::report::{self, Connections, Frames, Matches, Raw, ReplaySummary, Report};
use crate::Config;

/// How many error samples a report keeps.
const MAX_SAMPLES: usize = 10;

/// Identifies one broadcast: the room, the message type, and the question number
/// (or, for `boss`, the boss's hp; 0 for `result`).
pub type BroadcastKey = (String, &'static str, u64);

/// First and last receipt (µs since the epoch) and how many recipients saw it.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: u64,
    last: u64,
    recipients: u32,
}

/// Counters and distributions of one process.
pub struct Stats {
    pub conn_attempted: AtomicU64,
    pub conn_made: AtomicU64,
    pub conn_failed: AtomicU64,
    /// Connections the scenario means to make (for the progress bar).
    pub conn_planned: AtomicU64,
    /// Connections that closed or failed after `welcome` while still needed.
    pub conn_dropped: AtomicU64,
    /// Connections open now.
    pub conn_open: AtomicU64,
    pub frames_sent: AtomicU64,
    pub frames_received: AtomicU64,
    pub undecodable: AtomicU64,
    pub answers_sent: AtomicU64,
    pub matches_expected: AtomicU64,
    pub matches_finished: AtomicU64,
    /// Scripted clients that gave up for another reason than a lost connection.
    pub client_failures: AtomicU64,
    /// Error frames received (a fast total for the progress line).
    pub error_frames: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    samples: Mutex<Vec<String>>,
    notes: Mutex<Vec<String>>,
    answer_latency: Mutex<Histogram<u64>>,
    ping_rtt: Mutex<Histogram<u64>>,
    broadcasts: Mutex<HashMap<BroadcastKey, Span>>,
    replay: Mutex<Option<ReplaySummary>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            conn_attempted: AtomicU64::new(0),
            conn_made: AtomicU64::new(0),
            conn_failed: AtomicU64::new(0),
            conn_planned: AtomicU64::new(0),
            conn_dropped: AtomicU64::new(0),
            conn_open: AtomicU64::new(0),
            frames_sent: AtomicU64::new(0),
            frames_received: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
            answers_sent: AtomicU64::new(0),
            matches_expected: AtomicU64::new(0),
            matches_finished: AtomicU64::new(0),
            error_frames: AtomicU64::new(0),
            client_failures: AtomicU64::new(0),
            failures: Mutex::default(),
            errors: Mutex::default(),
            samples: Mutex::default(),
            notes: Mutex::default(),
            answer_latency: Mutex::new(report::histogram()),
            ping_rtt: Mutex::new(report::histogram()),
            broadcasts: Mutex::default(),
            replay: Mutex::default(),
        }
    }
}

/// Locks `m`, also after a panic elsewhere (the data stays usable for a report).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Microseconds since the Unix epoch (comparable across worker processes).
pub fn epoch_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

impl Stats {
    /// A connection attempt failed for `reason`.
    pub fn connect_failed(&self, reason: &str, detail: &str) {
        self.conn_failed.fetch_add(1, Ordering::Relaxed);
        *lock(&self.failures).entry(reason.to_string()).or_default() += 1;
        self.sample(format!("connect: {reason}: {detail}"));
    }

    /// An `error` frame came.
    pub fn error_frame(&self, code: &str, msg: &str, user: &str) {
        self.error_frames.fetch_add(1, Ordering::Relaxed);
        *lock(&self.errors).entry(code.to_string()).or_default() += 1;
        self.sample(format!("{user}: error {code}: {msg}"));
    }

    /// A needed connection closed or failed after `welcome`.
    pub fn dropped(&self, user: &str, why: &str) {
        self.conn_dropped.fetch_add(1, Ordering::Relaxed);
        self.sample(format!("{user}: connection lost: {why}"));
    }

    /// A scripted client gave up (a refused request, no answer in time, …).
    pub fn failure(&self, user: &str, why: &str) {
        self.client_failures.fetch_add(1, Ordering::Relaxed);
        self.sample(format!("{user}: gave up: {why}"));
    }

    /// Keeps the first few problems verbatim.
    pub fn sample(&self, s: String) {
        let mut samples = lock(&self.samples);
        if samples.len() < MAX_SAMPLES {
            samples.push(s);
        }
    }

    /// A remark for the report (deadline reached, unfinished rooms, …); kept once.
    pub fn note(&self, s: String) {
        let mut notes = lock(&self.notes);
        if !notes.contains(&s) {
            notes.push(s);
        }
    }

    pub fn record_answer_latency(&self, d: Duration) {
        lock(&self.answer_latency).saturating_record(micros(d).max(1));
    }

    pub fn record_ping_rtt(&self, d: Duration) {
        lock(&self.ping_rtt).saturating_record(micros(d).max(1));
    }

    /// A recipient got broadcast `key` at `at` (µs since the epoch).
    pub fn broadcast(&self, key: BroadcastKey, at: u64) {
        let mut map = lock(&self.broadcasts);
        let span = map.entry(key).or_insert(Span {
            first: at,
            last: at,
            recipients: 0,
        });
        span.first = span.first.min(at);
        span.last = span.last.max(at);
        span.recipients += 1;
    }

    /// Sets the replay outcome of this process.
    pub fn set_replay(&self, summary: ReplaySummary) {
        *lock(&self.replay) = Some(summary);
    }

    /// The report of this process; with `raw` for a parent to merge.
    pub fn report(&self, config: &Config, elapsed: Duration, raw: bool) -> Report {
        let secs = elapsed.as_secs_f64();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let latency = lock(&self.answer_latency).clone();
        let rtt = lock(&self.ping_rtt).clone();
        let spans: Vec<(BroadcastKey, Span)> = lock(&self.broadcasts)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        if std::env::var_os("LT_SPANS").is_some() {
            let mut v: Vec<_> = spans.iter().collect();
            v.sort_by_key(|(_, s)| s.first);
            let t0 = v.first().map_or(0, |(_, s)| s.first);
            for ((room, kind, n), s) in v {
                eprintln!(
                    "{:>8.1} {room} {kind:<8} {n:>8} skew {:>8.1} ms n={}",
                    (s.first - t0) as f64 / 1000.0,
                    (s.last - s.first) as f64 / 1000.0,
                    s.recipients
                );
            }
        }
        let skew =
            report::skew_histogram(spans.iter().map(|(_, s)| (s.first, s.last, s.recipients)));
        let sent = get(&self.frames_sent);
        let received = get(&self.frames_received);
        Report {
            scenario: config.scenario.name().to_string(),
            targets: config.targets.clone(),
            processes: 1,
            elapsed_secs: secs,
            connections: Connections {
                attempted: get(&self.conn_attempted),
                made: get(&self.conn_made),
                failed: get(&self.conn_failed),
                dropped: get(&self.conn_dropped),
                failures: lock(&self.failures).clone(),
            },
            frames: Frames {
                sent,
                received,
                undecodable: get(&self.undecodable),
                sent_per_sec: report::rate(sent, secs),
                received_per_sec: report::rate(received, secs),
            },
            answers_sent: get(&self.answers_sent),
            client_failures: get(&self.client_failures),
            answer_latency_ms: report::percentiles(&latency),
            broadcast_skew_ms: report::percentiles(&skew),
            ping_rtt_ms: report::percentiles(&rtt),
            errors: lock(&self.errors).clone(),
            error_samples: lock(&self.samples).clone(),
            matches: Matches {
                expected: get(&self.matches_expected),
                finished: get(&self.matches_finished),
            },
            replay: lock(&self.replay).clone(),
            server: Vec::new(),
            notes: lock(&self.notes).clone(),
            raw: raw.then(|| Raw {
                answer_latency_us: report::to_pairs(&latency),
                ping_rtt_us: report::to_pairs(&rtt),
                broadcasts: spans
                    .into_iter()
                    .map(|((room, kind, n), s)| {
                        (format!("{room}|{kind}|{n}"), s.first, s.last, s.recipients)
                    })
                    .collect(),
            }),
        }
    }
}
