//! Reads the server's own figures from `GET /metrics` (Prometheus text):
//! `process_resident_memory_bytes`, `process_cpu_seconds_total` and `ws_connections`,
//! before, during (peaks) and after a run.

use std::time::Duration;

use tokio::time::Instant;

use crate::report::ServerStats;
use crate::target::Target;

/// One scrape of one target.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub rss: Option<f64>,
    pub cpu: Option<f64>,
    pub ws: Option<f64>,
    pub at: Instant,
}

/// Highest values seen while the run went on, per target.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peak {
    pub rss: Option<f64>,
    pub ws: Option<f64>,
}

impl Peak {
    /// Folds a sample into the peaks.
    pub fn add(&mut self, s: &Sample) {
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.rss = max(self.rss, s.rss);
        self.ws = max(self.ws, s.ws);
    }
}

/// The value of an unlabelled metric `name` in Prometheus text `body`.
pub fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some(name))
            .then(|| parts.next().and_then(|v| v.parse().ok()))
            .flatten()
    })
}

/// Scrapes one target.
pub async fn scrape(http: &reqwest::Client, target: &Target) -> Result<Sample, String> {
    let url = format!("{}/metrics", target.http_base());
    let body = async {
        http.get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await
    }
    .await
    .map_err(|e| format!("GET {url}: {e}"))?;
    Ok(Sample {
        rss: metric(&body, "process_resident_memory_bytes"),
        cpu: metric(&body, "process_cpu_seconds_total"),
        ws: metric(&body, "ws_connections"),
        at: Instant::now(),
    })
}

/// Scrapes every target (concurrently).
pub async fn scrape_all(http: &reqwest::Client, targets: &[Target]) -> Vec<Result<Sample, String>> {
    futures_util::future::join_all(targets.iter().map(|t| scrape(http, t))).await
}

/// Scrapes every target once the connections this run opened are closed on the
/// server too (its `ws_connections` back to where it was before), waiting 3 s at most.
pub async fn scrape_settled(
    http: &reqwest::Client,
    targets: &[Target],
    before: &[Result<Sample, String>],
) -> Vec<Result<Sample, String>> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let now = scrape_all(http, targets).await;
        let settled = now.iter().zip(before).all(|(n, b)| match (n, b) {
            (Ok(n), Ok(b)) => n.ws.unwrap_or(0.0) <= b.ws.unwrap_or(0.0),
            _ => true,
        });
        if settled || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The per-target figures of a run.
pub fn summarize(
    targets: &[Target],
    before: &[Result<Sample, String>],
    after: &[Result<Sample, String>],
    peaks: &[Peak],
    _elapsed: Duration,
) -> Vec<ServerStats> {
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = t.http_base();
            let (b, a) = match (before.get(i), after.get(i)) {
                (Some(Ok(b)), Some(Ok(a))) => (b, a),
                (Some(Err(e)), _) | (_, Some(Err(e))) => {
                    return ServerStats {
                        target: name,
                        error: Some(e.clone()),
                        ..ServerStats::default()
                    }
                }
                _ => {
                    return ServerStats {
                        target: name,
                        error: Some("not scraped".into()),
                        ..ServerStats::default()
                    }
                }
            };
            let mut peak = peaks.get(i).copied().unwrap_or_default();
            peak.add(b);
            peak.add(a);
            let secs = a.at.duration_since(b.at).as_secs_f64();
            let cpu_seconds = a.cpu.zip(b.cpu).map(|(a, b)| (a - b).max(0.0));
            ServerStats {
                target: name,
                rss_before_bytes: b.rss,
                rss_after_bytes: a.rss,
                rss_peak_bytes: peak.rss,
                cpu_seconds,
                cpu_percent: cpu_seconds.filter(|_| secs > 0.0).map(|c| 100.0 * c / secs),
                ws_connections_before: b.ws,
                ws_connections_peak: peak.ws,
                ws_connections_after: a.ws,
                error: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unlabelled_metrics() {
        let body = "# HELP ws_connections Open\n# TYPE ws_connections gauge\nws_connections 42\n\
                    process_cpu_seconds_total 1.5\nrooms_active{mode=\"duel\"} 3\n";
        assert_eq!(metric(body, "ws_connections"), Some(42.0));
        assert_eq!(metric(body, "process_cpu_seconds_total"), Some(1.5));
        assert_eq!(metric(body, "rooms_active"), None);
        assert_eq!(metric(body, "missing"), None);
    }
}
