//! Prometheus metrics (WIRE.md §6 names) and the `/metrics` text rendering.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// How often at most the open descriptors are counted.
pub const FD_SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Every metric the node exports, registered in its own registry (so tests can run
/// several nodes in one process).
pub struct Metrics {
    registry: Registry,
    pub requests_total: IntCounterVec,
    pub response_time_seconds: HistogramVec,
    pub active_users: IntGauge,
    pub mission_success_rate: GaugeVec,
    pub ws_connections: IntGauge,
    pub rooms_active: IntGaugeVec,
    pub frames_received_total: IntCounter,
    pub frames_sent_total: IntCounter,
    pub rate_limited_total: IntCounter,
    pub matches_completed_total: IntCounterVec,
    /// Clients disconnected because their outgoing queue overflowed.
    pub slow_consumers_total: IntCounter,
    /// Match results that could not be written at once and wait in the outbox.
    pub outbox_pending: IntGauge,
    pub process_resident_memory_bytes: IntGauge,
    /// Tasks alive in the node's runtime: a leak of tasks shows here first.
    pub tokio_alive_tasks: IntGauge,
    /// Open file descriptors of the process (sockets included), sampled at most
    /// every [`FD_SAMPLE_EVERY`].
    pub process_open_fds: IntGauge,
    fds_sampled_at: std::sync::Mutex<Option<std::time::Instant>>,
    pub process_cpu_seconds_total: prometheus::Gauge,
    /// Failover (WIRE.md §5): rooms this node took over from a dead node.
    pub rooms_adopted_total: IntCounter,
    /// Death seen → the adopted room's first frame out.
    pub adoption_seconds: prometheus::Histogram,
    /// Rooms this node stopped hosting because another node took them over.
    pub leases_lost_total: IntCounter,
    /// Writes to rooms' logs, and their bytes.
    pub room_log_appends_total: IntCounter,
    pub room_log_bytes_total: IntCounter,
    /// Per room, when it closes: its log's writes and bytes.
    pub room_log_appends: prometheus::Histogram,
    pub room_log_bytes: prometheus::Histogram,
    /// Plays and successes per world behind `mission_success_rate`.
    mission_tally: std::sync::Mutex<std::collections::HashMap<String, (u64, u64)>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        // Invariant: names and labels below are static, valid and registered once
        // per registry, so creation and registration cannot fail.
        macro_rules! reg {
            ($metric:expr) => {{
                let m = $metric.expect("static metric definition is valid");
                registry
                    .register(Box::new(m.clone()))
                    .expect("metric registered once");
                m
            }};
        }
        Metrics {
            requests_total: reg!(IntCounterVec::new(
                Opts::new("requests_total", "HTTP requests by method, path and status"),
                &["method", "path", "status"]
            )),
            response_time_seconds: reg!(HistogramVec::new(
                HistogramOpts::new("response_time_seconds", "HTTP response time in seconds")
                    .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0]),
                &["method", "path"]
            )),
            active_users: reg!(IntGauge::new(
                "active_users",
                "Users with a live connection"
            )),
            mission_success_rate: reg!(GaugeVec::new(
                Opts::new(
                    "mission_success_rate",
                    "Share of finished mission plays that succeeded, by world"
                ),
                &["world"]
            )),
            ws_connections: reg!(IntGauge::new(
                "ws_connections",
                "Open WebSocket connections on this node"
            )),
            rooms_active: reg!(IntGaugeVec::new(
                Opts::new("rooms_active", "Rooms hosted on this node, by mode"),
                &["mode"]
            )),
            frames_received_total: reg!(IntCounter::new(
                "frames_received_total",
                "WebSocket frames received from clients"
            )),
            frames_sent_total: reg!(IntCounter::new(
                "frames_sent_total",
                "WebSocket frames sent to clients"
            )),
            rate_limited_total: reg!(IntCounter::new(
                "rate_limited_total",
                "Client frames dropped by the rate limit"
            )),
            matches_completed_total: reg!(IntCounterVec::new(
                Opts::new("matches_completed_total", "Matches finished, by mode"),
                &["mode"]
            )),
            slow_consumers_total: reg!(IntCounter::new(
                "slow_consumers_total",
                "Clients disconnected because they did not read their frames"
            )),
            outbox_pending: reg!(IntGauge::new(
                "outbox_pending",
                "Match results waiting to be written"
            )),
            process_resident_memory_bytes: reg!(IntGauge::new(
                "process_resident_memory_bytes",
                "Resident memory of the server process"
            )),
            tokio_alive_tasks: reg!(IntGauge::new(
                "tokio_alive_tasks",
                "Tasks alive in the node's async runtime"
            )),
            process_open_fds: reg!(IntGauge::new(
                "process_open_fds",
                "Open file descriptors of the server process"
            )),
            process_cpu_seconds_total: reg!(prometheus::Gauge::new(
                "process_cpu_seconds_total",
                "User and system CPU time of the server process"
            )),
            rooms_adopted_total: reg!(IntCounter::new(
                "rooms_adopted_total",
                "Rooms this node took over from a node that died"
            )),
            adoption_seconds: reg!(prometheus::Histogram::with_opts(
                HistogramOpts::new(
                    "adoption_seconds",
                    "From a node's death seen to its adopted room's first frame"
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0
                ])
            )),
            leases_lost_total: reg!(IntCounter::new(
                "leases_lost_total",
                "Rooms this node stopped hosting because another node took them over"
            )),
            room_log_appends_total: reg!(IntCounter::new(
                "room_log_appends_total",
                "Writes to rooms' logs in Redis"
            )),
            room_log_bytes_total: reg!(IntCounter::new(
                "room_log_bytes_total",
                "Bytes written to rooms' logs in Redis"
            )),
            room_log_appends: reg!(prometheus::Histogram::with_opts(
                HistogramOpts::new("room_log_appends", "Log writes per room, when it closes")
                    .buckets(prometheus::exponential_buckets(1.0, 4.0, 10).unwrap_or_default())
            )),
            room_log_bytes: reg!(prometheus::Histogram::with_opts(
                HistogramOpts::new("room_log_bytes", "Log bytes per room, when it closes")
                    .buckets(prometheus::exponential_buckets(256.0, 4.0, 10).unwrap_or_default())
            )),
            mission_tally: Default::default(),
            fds_sampled_at: Default::default(),
            registry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.sample_process();
        let mut out = Vec::new();
        // Writing text into a Vec cannot fail for well-formed metric families.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Counts open descriptors, at most every [`FD_SAMPLE_EVERY`]: the count reads
    /// one directory entry per descriptor, tens of thousands on a busy node, and
    /// a scraper asking every second would pay that each time.
    fn sample_open_fds(&self) {
        let mut last = self
            .fds_sampled_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_some_and(|t| t.elapsed() < FD_SAMPLE_EVERY) {
            return;
        }
        *last = Some(std::time::Instant::now());
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.process_open_fds.set(fds.count() as i64);
        }
    }

    /// Reads RSS and CPU time from /proc (Linux); elsewhere they stay 0.
    fn sample_process(&self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.tokio_alive_tasks
                .set(runtime.metrics().num_alive_tasks() as i64);
        }
        self.sample_open_fds();
        let page = 4096;
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            if let Some(rss) = statm
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<i64>().ok())
            {
                self.process_resident_memory_bytes.set(rss * page);
            }
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let ticks = |i: usize| {
                    fields
                        .get(i)
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(0.0)
                };
                let clock_ticks_per_sec = 100.0;
                self.process_cpu_seconds_total
                    .set((ticks(11) + ticks(12)) / clock_ticks_per_sec);
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Updates `mission_success_rate{world}` with one finished match's players.
    pub fn observe_mission(&self, world: &str, players: &[juno_rooms::PlayerSummary], asked: u32) {
        let mut tally = self.mission_tally.lock().unwrap_or_else(|p| p.into_inner());
        let (plays, successes) = tally.entry(world.to_string()).or_insert((0, 0));
        for p in players {
            *plays += 1;
            if crate::model::mission_success(p.correct, asked) {
                *successes += 1;
            }
        }
        if *plays > 0 {
            self.mission_success_rate
                .with_label_values(&[world])
                .set(*successes as f64 / *plays as f64);
        }
    }
}
