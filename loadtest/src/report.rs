//! The run's report: what was measured, as a table for people ([`Report::table`]) and
//! as JSON (`--json`, the [`Report`] serialized). Worker processes add [`Raw`] parts
//! (histograms as value/count pairs, per-broadcast first/last receive times) that
//! the parent merges with [`Report::merge`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Everything a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub targets: Vec<String>,
    /// Processes that ran clients (1, or the number of workers).
    pub processes: usize,
    pub elapsed_secs: f64,
    pub connections: Connections,
    pub frames: Frames,
    /// `answer` frames sent.
    pub answers_sent: u64,
    /// Scripted clients that gave up for another reason than a lost connection
    /// (a refused `create`/`join`, no answer in time, …); see `error_samples`.
    pub client_failures: u64,
    /// From sending `answer` to receiving the `ok` echoing its rid.
    pub answer_latency_ms: Percentiles,
    /// Per broadcast (`question`, `round`, `boss`, `result` of one room), the time from
    /// its first to its last recipient's receipt.
    pub broadcast_skew_ms: Percentiles,
    /// From sending `ping` to receiving its `pong` (scenario `connect`).
    pub ping_rtt_ms: Percentiles,
    /// Every `error` frame received, by code.
    pub errors: BTreeMap<String, u64>,
    /// The first few error frames and failures, for diagnosis.
    pub error_samples: Vec<String>,
    pub matches: Matches,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplaySummary>,
    /// Scraped from each target's `/metrics` before, during and after the run.
    pub server: Vec<ServerStats>,
    pub notes: Vec<String>,
    /// Worker processes only: what the parent needs to merge exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<Raw>,
}

/// Connection attempts and their outcome (made = `welcome` received).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connections {
    pub attempted: u64,
    pub made: u64,
    pub failed: u64,
    /// Made, then closed or failed while still needed.
    pub dropped: u64,
    /// Failure reasons (`http_503`, `io_ConnectionRefused`, `timeout`, …) by count.
    pub failures: BTreeMap<String, u64>,
}

/// WebSocket frames carrying messages (not pings) in each direction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Frames {
    pub sent: u64,
    pub received: u64,
    /// Server frames `decode_server` could not read.
    pub undecodable: u64,
    pub sent_per_sec: f64,
    pub received_per_sec: f64,
}

/// Matches planned and matches seen to their `result`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matches {
    pub expected: u64,
    pub finished: u64,
}

/// Replay outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplaySummary {
    /// The recorded match.
    pub source_match: String,
    pub copies: u64,
    /// Copies whose result reproduced the record.
    pub ok: u64,
    pub mismatched: u64,
    /// Of `ok`: copies where players with near-equal recorded points came out in the
    /// other order (allowed without `--exact`).
    pub within_jitter: u64,
    /// Recorded points within which players may swap places (0 with `--exact`).
    pub tolerance_points: u64,
    /// Whether point totals were compared (`--exact`).
    pub exact: bool,
    /// What "reproduced" meant in this run.
    pub compared: String,
    /// How the first copy reproduced only within jitter differed, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_within_jitter: Option<String>,
    /// The first difference found, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_difference: Option<String>,
}

/// One target's process figures from `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    pub target: String,
    pub rss_before_bytes: Option<f64>,
    pub rss_after_bytes: Option<f64>,
    pub rss_peak_bytes: Option<f64>,
    /// CPU time used during the run.
    pub cpu_seconds: Option<f64>,
    /// CPU time as a percentage of one core over the run.
    pub cpu_percent: Option<f64>,
    pub ws_connections_before: Option<f64>,
    pub ws_connections_peak: Option<f64>,
    pub ws_connections_after: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// The parts of a worker's report that merge exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Raw {
    /// `(µs, count)` pairs of the answer→ok histogram.
    pub answer_latency_us: Vec<(u64, u64)>,
    /// `(µs, count)` pairs of the ping→pong histogram.
    pub ping_rtt_us: Vec<(u64, u64)>,
    /// `(key, first, last, recipients)` per broadcast, times in µs since the Unix epoch.
    pub broadcasts: Vec<(String, u64, u64, u32)>,
}

/// A new latency histogram in microseconds (up to an hour, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    // Invariant: these bounds are valid (1 ≤ low, high ≥ 2 × low, sigfig ≤ 5).
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Percentiles of a µs histogram, in ms.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Percentiles {
        count: h.len(),
        p50: ms(h.value_at_quantile(0.50)),
        p95: ms(h.value_at_quantile(0.95)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
        mean: h.mean() / 1000.0,
    }
}

/// A histogram as `(value, count)` pairs.
pub fn to_pairs(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// Adds `(value, count)` pairs to `h`.
pub fn add_pairs(h: &mut Histogram<u64>, pairs: &[(u64, u64)]) {
    for &(value, count) in pairs {
        h.saturating_record_n(value, count);
    }
}

/// Broadcast skew: for every broadcast that reached two or more recipients, last − first.
pub fn skew_histogram<'a>(spans: impl IntoIterator<Item = (u64, u64, u32)> + 'a) -> Histogram<u64> {
    let mut h = histogram();
    for (first, last, n) in spans {
        if n >= 2 {
            h.saturating_record(last.saturating_sub(first));
        }
    }
    h
}

impl Report {
    /// Error frames plus failed connections plus undecodable frames.
    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum::<u64>()
            + self.connections.failed
            + self.connections.dropped
            + self.frames.undecodable
            + self.client_failures
    }

    /// No errors, every connection made, every match finished, every replay reproduced.
    pub fn is_clean(&self) -> bool {
        self.total_errors() == 0
            && self.connections.made == self.connections.attempted
            && self.matches.finished >= self.matches.expected
            && self
                .replay
                .as_ref()
                .is_none_or(|r| r.mismatched == 0 && r.ok == r.copies)
    }

    /// Merges worker reports (each with `raw`) into one; `elapsed_secs` is the
    /// parent's wall time, frame rates are recomputed over it.
    pub fn merge(parts: Vec<Report>, elapsed_secs: f64) -> Report {
        let mut out = Report {
            processes: parts.len(),
            elapsed_secs,
            ..Report::default()
        };
        let mut latency = histogram();
        let mut rtt = histogram();
        let mut spans: HashMap<String, (u64, u64, u32)> = HashMap::new();
        for part in parts {
            if out.scenario.is_empty() {
                out.scenario = part.scenario.clone();
                out.targets = part.targets.clone();
            }
            let c = &mut out.connections;
            c.attempted += part.connections.attempted;
            c.made += part.connections.made;
            c.failed += part.connections.failed;
            c.dropped += part.connections.dropped;
            for (k, v) in part.connections.failures {
                *c.failures.entry(k).or_default() += v;
            }
            out.frames.sent += part.frames.sent;
            out.frames.received += part.frames.received;
            out.frames.undecodable += part.frames.undecodable;
            out.answers_sent += part.answers_sent;
            out.client_failures += part.client_failures;
            for (k, v) in part.errors {
                *out.errors.entry(k).or_default() += v;
            }
            for s in part.error_samples {
                if out.error_samples.len() < 10 {
                    out.error_samples.push(s);
                }
            }
            out.matches.expected += part.matches.expected;
            out.matches.finished += part.matches.finished;
            if let Some(r) = part.replay {
                let merged = out.replay.get_or_insert_with(|| ReplaySummary {
                    source_match: r.source_match.clone(),
                    exact: r.exact,
                    compared: r.compared.clone(),
                    ..ReplaySummary::default()
                });
                merged.copies += r.copies;
                merged.ok += r.ok;
                merged.mismatched += r.mismatched;
                merged.within_jitter += r.within_jitter;
                merged.tolerance_points = r.tolerance_points;
                if merged.first_within_jitter.is_none() {
                    merged.first_within_jitter = r.first_within_jitter;
                }
                if merged.first_difference.is_none() {
                    merged.first_difference = r.first_difference;
                }
            }
            for n in part.notes {
                if !out.notes.contains(&n) {
                    out.notes.push(n);
                }
            }
            if let Some(raw) = part.raw {
                add_pairs(&mut latency, &raw.answer_latency_us);
                add_pairs(&mut rtt, &raw.ping_rtt_us);
                for (key, first, last, n) in raw.broadcasts {
                    let e = spans.entry(key).or_insert((first, last, 0));
                    e.0 = e.0.min(first);
                    e.1 = e.1.max(last);
                    e.2 += n;
                }
            }
        }
        out.answer_latency_ms = percentiles(&latency);
        out.ping_rtt_ms = percentiles(&rtt);
        out.broadcast_skew_ms = percentiles(&skew_histogram(spans.into_values()));
        out.frames.sent_per_sec = rate(out.frames.sent, elapsed_secs);
        out.frames.received_per_sec = rate(out.frames.received, elapsed_secs);
        out
    }

    /// The report as a table for people.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "juno-loadtest {} against {} ({} process{}), {:.1} s",
            self.scenario,
            self.targets.join(", "),
            self.processes,
            if self.processes == 1 { "" } else { "es" },
            self.elapsed_secs
        );
        let c = &self.connections;
        let _ = writeln!(
            s,
            "{:<18}made {} of {}, failed {}, dropped {}{}",
            "connections",
            c.made,
            c.attempted,
            c.failed,
            c.dropped,
            fmt_counts(&c.failures, " (", ")")
        );
        let f = &self.frames;
        let _ = writeln!(
            s,
            "{:<18}sent {} ({:.1}/s), received {} ({:.1}/s){}",
            "frames",
            f.sent,
            f.sent_per_sec,
            f.received,
            f.received_per_sec,
            if f.undecodable > 0 {
                format!(", {} undecodable", f.undecodable)
            } else {
                String::new()
            }
        );
        if self.matches.expected > 0 {
            let _ = writeln!(
                s,
                "{:<18}finished {} of {}; {} answers sent",
                "matches", self.matches.finished, self.matches.expected, self.answers_sent
            );
        }
        let _ = writeln!(
            s,
            "{:<18}{:>9} {:>9} {:>9} {:>9} {:>9}  (ms)",
            "", "count", "p50", "p95", "p99", "max"
        );
        for (name, p) in [
            ("answer -> ok", &self.answer_latency_ms),
            ("broadcast skew", &self.broadcast_skew_ms),
            ("ping -> pong", &self.ping_rtt_ms),
        ] {
            if p.count == 0 {
                let _ = writeln!(s, "{name:<18}{:>9}", 0);
            } else {
                let _ = writeln!(
                    s,
                    "{name:<18}{:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    p.count, p.p50, p.p95, p.p99, p.max
                );
            }
        }
        let mut errors = if self.errors.is_empty() {
            "none".to_string()
        } else {
            fmt_counts(&self.errors, "", "")
        };
        if self.client_failures > 0 {
            errors.push_str(&format!(
                "; {} scripted clients gave up",
                self.client_failures
            ));
        }
        let _ = writeln!(s, "{:<18}{errors}", "errors");
        for sample in &self.error_samples {
            let _ = writeln!(s, "{:<18}{sample}", "");
        }
        if let Some(r) = &self.replay {
            let _ = writeln!(
                s,
                "{:<18}match {}: {} copies, {} reproduced ({} only within jitter of {} points), {} mismatched ({})",
                "replay",
                r.source_match,
                r.copies,
                r.ok,
                r.within_jitter,
                r.tolerance_points,
                r.mismatched,
                r.compared
            );
            if let Some(d) = &r.first_within_jitter {
                let _ = writeln!(s, "{:<18}first near-tie swap: {d}", "");
            }
            if let Some(d) = &r.first_difference {
                let _ = writeln!(s, "{:<18}first difference: {d}", "");
            }
        }
        for srv in &self.server {
            let mib = |v: Option<f64>| v.map_or("?".into(), |b| format!("{:.1}", b / 1048576.0));
            let num = |v: Option<f64>| v.map_or("?".into(), |n| format!("{n:.0}"));
            if let Some(e) = &srv.error {
                let _ = writeln!(
                    s,
                    "{:<18}{}: /metrics unavailable: {e}",
                    "server", srv.target
                );
                continue;
            }
            let _ = writeln!(
                s,
                "{:<18}{}: rss {} -> {} MiB (peak {}), cpu {} % of a core ({} s), ws_connections {} -> peak {} -> {}",
                "server",
                srv.target,
                mib(srv.rss_before_bytes),
                mib(srv.rss_after_bytes),
                mib(srv.rss_peak_bytes),
                srv.cpu_percent.map_or("?".into(), |p| format!("{p:.1}")),
                srv.cpu_seconds.map_or("?".into(), |p| format!("{p:.2}")),
                num(srv.ws_connections_before),
                num(srv.ws_connections_peak),
                num(srv.ws_connections_after),
            );
        }
        for note in &self.notes {
            let _ = writeln!(s, "{:<18}{note}", "note");
        }
        let _ = writeln!(
            s,
            "{:<18}{}",
            "verdict",
            if self.is_clean() {
                "clean"
            } else {
                "NOT clean (see above)"
            }
        );
        s
    }
}

/// `n` per second over `secs`.
pub fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

fn fmt_counts(m: &BTreeMap<String, u64>, open: &str, close: &str) -> String {
    if m.is_empty() {
        return String::new();
    }
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("{open}{}{close}", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_pairs_round_trip() {
        let mut h = histogram();
        for v in [10, 20, 20, 5000, 123_456] {
            h.record(v).expect("in range");
        }
        let mut back = histogram();
        add_pairs(&mut back, &to_pairs(&h));
        assert_eq!(back.len(), h.len());
        assert_eq!(back.max(), h.max());
        assert_eq!(percentiles(&back), percentiles(&h));
    }

    #[test]
    fn skew_counts_only_shared_broadcasts() {
        let h = skew_histogram([(100, 350, 3), (100, 100, 1), (10, 20, 2)]);
        assert_eq!(h.len(), 2);
        assert_eq!(h.max(), 250);
    }
}
