//! Staying within the open-file limit: the soft `RLIMIT_NOFILE` is raised to the hard
//! limit, and a run that needs more connections than `--per-process` is split over
//! worker processes of this executable (`juno-loadtest --worker`, the [`Config`] as
//! JSON on stdin). Each worker prints progress lines and finally its partial
//! [`Report`] (with raw histograms and broadcast times) as one JSON line on stdout;
//! the parent merges them. A raid's host runs in the parent, which hands the
//! workers the room it created.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

use crate::client::Ctx;
use crate::progress::{Progress, Snapshot, Source, PROGRESS_PREFIX};
use crate::record::{MatchRecordFile, ReplayPlan};
use crate::report::Report;
use crate::scenarios::raid;
use crate::scenarios::royale::{room_id, RoomId};
use crate::stats::Stats;
use crate::target::Target;
use crate::{jwt, metrics_scrape, Config, Part, ReplaySource, Scenario};

/// Prefix of a worker's final report line on stdout.
pub const REPORT_PREFIX: &str = "report ";

/// Raises the soft open-file limit to the hard one; returns the soft limit now in force.
pub fn raise_nofile_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft),
    }
}

/// How a run is split: the parts, and whether the parent hosts a raid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitPlan {
    pub parts: Vec<Part>,
    pub raid_host: bool,
}

/// Units a scenario has and connections per unit (a raid's host is not a unit).
fn shape(config: &Config) -> anyhow::Result<(usize, usize)> {
    Ok(match &config.scenario {
        Scenario::Connect { connections, .. } => (*connections, 1),
        Scenario::Duels { duels, .. } => (*duels, 2),
        Scenario::Royale { rooms, size, .. } => (*rooms, *size),
        // One process (checked): the host and its players.
        Scenario::Failover { players, .. } => (1, players + 1),
        Scenario::Raid {
            players,
            spectators,
            ..
        } => (players + spectators - 1, 1),
        Scenario::Replay {
            source,
            copies,
            speed,
            ..
        } => {
            let ReplaySource::Record(v) = source else {
                bail!("replay: the record should have been loaded by now");
            };
            let rec: MatchRecordFile =
                serde_json::from_value(v.clone()).context("the match record does not parse")?;
            (
                *copies,
                ReplayPlan::build(&rec, *speed)?.participants.len().max(1),
            )
        }
    })
}

/// `None` when one process can hold the whole run; else the worker parts.
pub fn plan(config: &Config) -> anyhow::Result<Option<SplitPlan>> {
    let (units, per_unit) = shape(config)?;
    let raid_host = matches!(config.scenario, Scenario::Raid { .. });
    let total = units * per_unit + usize::from(raid_host);
    if total <= config.per_process {
        return Ok(None);
    }
    let per_worker = config.per_process / per_unit;
    if per_worker == 0 {
        bail!(
            "one unit of this scenario needs {per_unit} connections, more than --per-process {}",
            config.per_process
        );
    }
    Ok(Some(SplitPlan {
        parts: split(units, per_worker),
        raid_host,
    }))
}

/// `units` in consecutive parts of at most `per_worker`, as even as possible.
pub fn split(units: usize, per_worker: usize) -> Vec<Part> {
    let workers = units.div_ceil(per_worker.max(1)).max(1);
    let (base, extra) = (units / workers, units % workers);
    let mut first = 0;
    (0..workers)
        .map(|w| {
            let count = base + usize::from(w < extra);
            let part = Part {
                first,
                count,
                room: None,
            };
            first += count;
            part
        })
        .collect()
}

/// Runs `config` split per `plan` over worker processes and merges their reports.
pub async fn run_split(
    config: Config,
    plan: SplitPlan,
    targets: Vec<Target>,
    http: reqwest::Client,
    started: Instant,
) -> anyhow::Result<Report> {
    let exe = match &config.worker_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("finding this executable to spawn workers")?,
    };
    let before = metrics_scrape::scrape_all(&http, &targets).await;
    // A raid's host lives here: create the room first, then hand it to the workers.
    let host_stats = Arc::new(Stats::default());
    let mut host_task = None;
    let mut room = None;
    let host_ctx = Arc::new(Ctx::new(
        &config,
        targets.clone(),
        jwt::Tokens::new(config.secret.clone(), http.clone()),
        host_stats.clone(),
    ));
    if plan.raid_host {
        let params = raid::Params::of(&config)?;
        host_stats
            .matches_expected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, mut rx) = watch::channel(RoomId::Pending);
        let ctx = host_ctx.clone();
        // The workers' clients are in other processes: the host waits for nobody.
        let teardown = crate::scenarios::Teardown::new(1);
        host_task = Some(tokio::spawn(async move {
            raid::host(&ctx, &params, &tx, &teardown).await
        }));
        room = Some(
            room_id(&host_ctx, &mut rx)
                .await
                .context("the raid host could not create the room")?,
        );
    }
    let snapshots = Arc::new(Mutex::new(vec![Snapshot::default(); plan.parts.len()]));
    let progress = Progress::start(
        &config,
        Source::Workers(snapshots.clone()),
        http.clone(),
        targets.clone(),
    );
    let deadline = config.duration + config.setup + Duration::from_secs(30);
    let mut tasks = Vec::new();
    for (i, part) in plan.parts.iter().enumerate() {
        let mut wc = config.clone();
        wc.part = Some(Part {
            room: room.clone(),
            ..part.clone()
        });
        wc.quiet = true;
        let (exe, snapshots) = (exe.clone(), snapshots.clone());
        tasks.push(tokio::spawn(async move {
            worker(exe, wc, i, snapshots, deadline).await
        }));
    }
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await {
            Ok(Ok(r)) => reports.push(r),
            Ok(Err(e)) => failures.push(format!("worker {i}: {e:#}")),
            Err(e) => failures.push(format!("worker {i}: {e}")),
        }
    }
    if let Some(t) = host_task {
        // The host ends with the match; bound the wait by the run's own deadline.
        if tokio::time::timeout(deadline, t).await.is_err() {
            host_ctx.stop.cancel();
        }
    }
    host_ctx.stop.cancel();
    let peaks = progress.finish().await;
    if !failures.is_empty() && reports.is_empty() {
        bail!("every worker failed: {}", failures.join("; "));
    }
    let elapsed = started.elapsed();
    if plan.raid_host {
        reports.push(host_stats.report(&config, elapsed, true));
    }
    let mut report = Report::merge(reports, elapsed.as_secs_f64());
    for f in failures {
        report.notes.push(f);
        report.client_failures += 1;
    }
    let after = metrics_scrape::scrape_settled(&http, &targets, &before).await;
    report.server = metrics_scrape::summarize(&targets, &before, &after, &peaks, elapsed);
    Ok(report)
}

/// Runs one worker process to its end; its partial report.
async fn worker(
    exe: std::path::PathBuf,
    config: Config,
    index: usize,
    snapshots: Arc<Mutex<Vec<Snapshot>>>,
    deadline: Duration,
) -> anyhow::Result<Report> {
    let mut child = Command::new(&exe)
        .arg("--worker")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {}", exe.display()))?;
    let input = serde_json::to_vec(&config).context("encoding the worker config")?;
    let mut stdin = child.stdin.take().context("worker stdin")?;
    stdin
        .write_all(&input)
        .await
        .context("writing the worker config")?;
    drop(stdin);
    let stdout = child.stdout.take().context("worker stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let read = async {
        let mut report = None;
        while let Some(line) = lines.next_line().await.context("reading the worker")? {
            if let Some(p) = line.strip_prefix(PROGRESS_PREFIX) {
                if let Ok(s) = serde_json::from_str::<Snapshot>(p) {
                    if let Some(slot) = snapshots
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_mut(index)
                    {
                        *slot = s;
                    }
                }
            } else if let Some(r) = line.strip_prefix(REPORT_PREFIX) {
                report = Some(
                    serde_json::from_str::<Report>(r)
                        .context("the worker's report does not parse")?,
                );
            }
        }
        anyhow::Ok(report)
    };
    let report = match tokio::time::timeout(deadline, read).await {
        Ok(r) => r?,
        Err(_) => {
            let _ = child.kill().await;
            bail!("did not finish within {deadline:?}; killed");
        }
    };
    let status = child.wait().await.context("waiting for the worker")?;
    match report {
        Some(r) => Ok(r),
        None => bail!("exited ({status}) without a report"),
    }
}

/// The worker side: reads the config from stdin, runs it, prints the report line.
pub async fn worker_main() -> anyhow::Result<()> {
    let mut input = String::new();
    // Read once, before any client runs: blocking is fine here.
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
        .context("reading the worker config from stdin")?;
    let config: Config =
        serde_json::from_str(&input).context("the worker config does not parse")?;
    anyhow::ensure!(config.part.is_some(), "a worker needs its part");
    let report = crate::run(config).await?;
    println!("{REPORT_PREFIX}{}", serde_json::to_string(&report)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_every_unit_once() {
        let parts = split(120, 50);
        assert_eq!(
            parts.iter().map(|p| p.count).collect::<Vec<_>>(),
            [40, 40, 40]
        );
        assert_eq!(
            parts.iter().map(|p| p.first).collect::<Vec<_>>(),
            [0, 40, 80]
        );
        assert_eq!(split(7, 10).len(), 1);
        assert_eq!(split(0, 10)[0].count, 0);
    }

    #[test]
    fn small_runs_stay_in_one_process() {
        let mut c = Config::new(Scenario::Connect {
            connections: 120,
            ping_secs: 0.0,
        });
        assert_eq!(plan(&c).expect("plan"), None);
        c.per_process = 50;
        let p = plan(&c).expect("plan").expect("split");
        assert_eq!(p.parts.len(), 3);
        c.scenario = Scenario::Royale {
            rooms: 2,
            size: 60,
            mission: "demo".into(),
            pace: Default::default(),
            play: Default::default(),
        };
        assert!(
            plan(&c).is_err(),
            "a 60-player room cannot fit 50 per process"
        );
    }
}
