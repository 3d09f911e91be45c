//! `juno-loadtest`: drives one or several running JunoSixteen nodes (or nginx in front
//! of them) with scripted WebSocket clients and reports what it measured.
//!
//! Scenarios ([`Scenario`]): `connect` (idle authenticated connections held for a
//! while), `duels` (duels found by `queue`), `royale` (battle-royale rooms of N),
//! `raid` (one raid room: N players and M spectators) and `replay` (a recorded match,
//! K concurrent copies, checked against the recorded result).
//!
//! Every run is bounded in count and time and talks to loopback addresses only
//! ([`target`]). A run needing more connections than one process may hold is split
//! over worker processes of the `juno-loadtest` binary ([`workers`]), whose partial
//! [`Report`]s are merged.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use juno_loadtest::{Config, Scenario};
//! let mut config = Config::new(Scenario::Connect { connections: 100, ping_secs: 5.0 });
//! config.secret = Some("s".into());
//! let report = juno_loadtest::run(config).await?;
//! assert_eq!(report.connections.failed, 0);
//! # Ok(()) }
//! ```

pub mod client;
pub mod jwt;
pub mod metrics_scrape;
pub mod progress;
pub mod record;
pub mod report;
pub mod scenarios;
pub mod stats;
pub mod target;
pub mod workers;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub use record::{compare_results, MatchRecordFile, ReplayPlan};
pub use report::{Percentiles, Report};

/// Connections one process holds at most before the work is split over worker
/// processes (the open-file limit here is 20,000 per process).
pub const DEFAULT_PER_PROCESS: usize = 18_000;

/// Match pace for the scenarios that create their rooms (sent as `create.options`):
/// the same shape as a node's default pace.
pub use juno_rooms::Pace;

/// How scripted players answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Play {
    /// Mean delay from receiving a question to answering it; each answer waits a
    /// uniform 0.5–1.5 × this, capped at 80 % of the time left.
    pub think_ms: u64,
    /// Share of answers that are right (when the right choice is known: learned from
    /// `round` frames or given by `Config::answer_key`; unknown ones are guessed).
    pub right_ratio: f64,
}

impl Default for Play {
    fn default() -> Self {
        Play {
            think_ms: 1_000,
            right_ratio: 0.8,
        }
    }
}

/// Where the match to replay comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplaySource {
    /// `GET /api/matches/{id}` on the first target.
    Match(String),
    /// A JSON file of the same shape.
    File(PathBuf),
    /// The record itself (what the parent hands its workers).
    Record(serde_json::Value),
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scenario")]
pub enum Scenario {
    /// `connections` authenticated idle connections, held for `Config::duration`;
    /// each sends a `ping` every `ping_secs` (0 = never) to measure round trips.
    Connect { connections: usize, ping_secs: f64 },
    /// `duels` concurrent duels found by `queue` (2 × `duels` players); each player
    /// plays `games` duels in a row. The pace is the server's default
    /// (`JUNO_QUESTIONS`, `JUNO_QUESTION_MS`, `JUNO_COUNTDOWN_MS`, `JUNO_BETWEEN_MS`).
    Duels {
        duels: usize,
        games: u32,
        mission: String,
        play: Play,
    },
    /// `rooms` battle-royale rooms of `size` players each, created with `pace`.
    Royale {
        rooms: usize,
        size: usize,
        mission: String,
        pace: Pace,
        play: Play,
    },
    /// One raid room: `players` players and `spectators` spectators, created with `pace`.
    Raid {
        players: usize,
        spectators: usize,
        mission: String,
        pace: Pace,
        boss_hp: Option<u64>,
        play: Play,
    },
    /// `copies` concurrent copies of a recorded match, at `speed` × the recorded pace.
    /// `exact`: point totals must match too (else winner, standings order, ranks and
    /// victory).
    Replay {
        source: ReplaySource,
        copies: usize,
        speed: f64,
        exact: bool,
    },
    /// One room (`mode` duel or raid) created on the first target, its `players`
    /// on the others, whose host is killed from outside mid-question
    /// (`bench/failover.sh`); reports when the adoption reached the players.
    Failover {
        mode: juno_protocol::Mode,
        players: usize,
        mission: String,
        pace: Pace,
        play: Play,
    },
}

impl Scenario {
    /// The scenario's name, as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Connect { .. } => "connect",
            Scenario::Duels { .. } => "duels",
            Scenario::Royale { .. } => "royale",
            Scenario::Raid { .. } => "raid",
            Scenario::Replay { .. } => "replay",
            Scenario::Failover { .. } => "failover",
        }
    }
}

/// This process's share of a run split over worker processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// First unit (connection, duel, room, participant or copy) of this share.
    pub first: usize,
    /// Units in this share.
    pub count: usize,
    /// Raid: the room, already created by the parent.
    pub room: Option<String>,
}

/// Everything a run needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub scenario: Scenario,
    /// Base URLs (`http://127.0.0.1:8080`, `ws://…` also accepted); loopback only.
    /// Connection `i` goes to target `i % targets.len()`.
    pub targets: Vec<String>,
    /// The HS256 secret to mint tokens with; `None` = ask `POST /auth/dev-token`.
    pub secret: Option<String>,
    /// Client sockets bind to 127.0.0.(1 + i % source_ips) (IPv4 loopback targets).
    pub source_ips: u8,
    /// `connect`: how long the connections are held once all are up. Other
    /// scenarios: the longest the matches may run; unfinished ones are reported.
    pub duration: Duration,
    /// Extra time allowed for connecting and setting rooms up; at
    /// `duration + setup` the run is cut off whatever its state.
    pub setup: Duration,
    /// Connection attempts in flight at once.
    pub connect_concurrency: usize,
    /// Connections one process may hold; above this, worker processes are spawned.
    pub per_process: usize,
    /// The executable to spawn as workers (`None` = this process's own executable).
    pub worker_exe: Option<PathBuf>,
    /// Seeds every random choice (answers, think times).
    pub seed: u64,
    /// Prefix of generated user ids (`{tag}-d12a`…); keep it distinct between runs
    /// that overlap on one server.
    pub tag: String,
    /// Known correct choices by question text (e.g. from a mission file).
    pub answer_key: HashMap<String, u32>,
    /// No progress bar.
    pub quiet: bool,
    /// Set in worker processes: the share to run; the report then carries raw parts.
    pub part: Option<Part>,
}

impl Config {
    /// A config with the defaults of the command line for `scenario`.
    pub fn new(scenario: Scenario) -> Config {
        let duration = match scenario {
            Scenario::Connect { .. } => Duration::from_secs(10),
            _ => Duration::from_secs(300),
        };
        Config {
            scenario,
            targets: vec!["http://127.0.0.1:8080".into()],
            secret: None,
            source_ips: 4,
            duration,
            setup: Duration::from_secs(120),
            connect_concurrency: 256,
            per_process: DEFAULT_PER_PROCESS,
            worker_exe: None,
            seed: 1,
            tag: "lt".into(),
            answer_key: HashMap::new(),
            quiet: false,
            part: None,
        }
    }
}

/// Runs the configured scenario to its end (or its deadline) and reports.
pub async fn run(mut config: Config) -> anyhow::Result<Report> {
    let started = Instant::now();
    let targets = config
        .targets
        .iter()
        .map(|t| target::Target::parse(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!targets.is_empty(), "at least one target is needed");
    validate(&config)?;
    let fd_limit = workers::raise_nofile_limit();
    // Leave room for the runtime, HTTP clients and (in tests) an in-process server.
    let fd_cap = (fd_limit as usize).saturating_sub(500).max(64);
    if config.per_process > fd_cap {
        config.per_process = fd_cap;
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    // Replay: fetch the record once, so workers do not each fetch it.
    if let Scenario::Replay { source, .. } = &mut config.scenario {
        if !matches!(source, ReplaySource::Record(_)) {
            let value = record::load(source, &targets[0], &http).await?;
            *source = ReplaySource::Record(value);
        }
    }
    let mut early_notes = Vec::new();
    if let (
        Scenario::Replay {
            source: ReplaySource::Record(record),
            ..
        },
        None,
    ) = (&config.scenario, &config.part)
    {
        if config.answer_key.is_empty() {
            let mission = record["spec"]["mission"]
                .as_str()
                .context("the match record has no spec.mission")?
                .to_string();
            let probe = client::Ctx::new(
                &config,
                targets.clone(),
                jwt::Tokens::new(config.secret.clone(), http.clone()),
                Arc::new(stats::Stats::default()),
            );
            config.answer_key = scenarios::replay::learn_key(&probe, &mission)
                .await
                .context("learning the mission's answers (or give --mission-file)")?;
            early_notes.push(format!(
                "learned the {} answers of mission {mission} from one solo probe raid (user {}-probe0)",
                config.answer_key.len(),
                config.tag
            ));
        }
    }
    if config.part.is_none() {
        if let Some(plan) = workers::plan(&config)? {
            let mut report = workers::run_split(config, plan, targets, http, started).await?;
            report.notes.extend(early_notes);
            return Ok(report);
        }
    }
    let stats = Arc::new(stats::Stats::default());
    for n in early_notes {
        stats.note(n);
    }
    // Workers leave the server's figures to their parent.
    let scraped: Vec<target::Target> = if config.part.is_some() {
        Vec::new()
    } else {
        targets.clone()
    };
    let server_before = metrics_scrape::scrape_all(&http, &scraped).await;
    let tokens = jwt::Tokens::new(config.secret.clone(), http.clone());
    let ctx = Arc::new(client::Ctx::new(
        &config,
        targets.clone(),
        tokens,
        stats.clone(),
    ));
    let progress = progress::Progress::start(
        &config,
        progress::Source::Local(stats.clone()),
        http.clone(),
        scraped.clone(),
    );
    let hard = config.duration + config.setup;
    let outcome = tokio::select! {
        r = scenarios::run(ctx.clone(), &config) => r,
        _ = tokio::time::sleep(hard) => {
            ctx.stop.cancel();
            stats.note(format!("hard deadline ({:.0} s) reached; the run was cut off", hard.as_secs_f64()));
            Ok(())
        }
    };
    ctx.stop.cancel();
    let peaks = progress.finish().await;
    outcome?;
    let server_after = metrics_scrape::scrape_settled(&http, &scraped, &server_before).await;
    let elapsed = started.elapsed();
    let mut report = stats.report(&config, elapsed, config.part.is_some());
    report.server =
        metrics_scrape::summarize(&scraped, &server_before, &server_after, &peaks, elapsed);
    report.processes = 1;
    Ok(report)
}

fn validate(config: &Config) -> anyhow::Result<()> {
    anyhow::ensure!(config.source_ips >= 1, "--source-ips must be at least 1");
    anyhow::ensure!(
        config.connect_concurrency >= 1,
        "--connect-concurrency must be at least 1"
    );
    anyhow::ensure!(config.per_process >= 2, "--per-process must be at least 2");
    anyhow::ensure!(
        !config.tag.is_empty()
            && config.tag.len() <= 24
            && config
                .tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "--tag must be 1-24 of [A-Za-z0-9_-]"
    );
    let play_ok = |p: &Play| (0.0..=1.0).contains(&p.right_ratio);
    match &config.scenario {
        Scenario::Connect {
            connections,
            ping_secs,
        } => {
            anyhow::ensure!(*connections >= 1, "connect needs at least one connection");
            anyhow::ensure!(*ping_secs >= 0.0, "--ping-secs must not be negative");
        }
        Scenario::Duels {
            duels, games, play, ..
        } => {
            anyhow::ensure!(
                *duels >= 1 && *games >= 1,
                "duels needs --duels and --games ≥ 1"
            );
            anyhow::ensure!(play_ok(play), "--right must be within 0..=1");
        }
        Scenario::Royale {
            rooms,
            size,
            play,
            pace,
            ..
        } => {
            anyhow::ensure!(*rooms >= 1, "royale needs at least one room");
            anyhow::ensure!((2..=10_000).contains(size), "--size must be 2..=10000");
            anyhow::ensure!(play_ok(play), "--right must be within 0..=1");
            anyhow::ensure!(
                pace.question_ms >= 100,
                "--question-ms must be at least 100"
            );
        }
        Scenario::Raid {
            players,
            play,
            pace,
            ..
        } => {
            anyhow::ensure!(
                (1..=10_000).contains(players),
                "--players must be 1..=10000"
            );
            anyhow::ensure!(play_ok(play), "--right must be within 0..=1");
            anyhow::ensure!(
                pace.question_ms >= 100,
                "--question-ms must be at least 100"
            );
        }
        Scenario::Failover {
            mode,
            players,
            play,
            pace,
            ..
        } => {
            use juno_protocol::Mode;
            anyhow::ensure!(
                matches!(mode, Mode::Duel | Mode::Raid),
                "failover: --mode duel or raid"
            );
            anyhow::ensure!(
                if *mode == Mode::Duel {
                    *players == 2
                } else {
                    (1..=10_000).contains(players)
                },
                "failover: a duel has 2 players, a raid 1..=10000"
            );
            anyhow::ensure!(
                *players < config.per_process,
                "failover runs in one process: --players below --per-process"
            );
            anyhow::ensure!(play_ok(play), "--right must be within 0..=1");
            anyhow::ensure!(
                pace.question_ms >= 100,
                "--question-ms must be at least 100"
            );
        }
        Scenario::Replay { copies, speed, .. } => {
            anyhow::ensure!(*copies >= 1, "replay needs at least one copy");
            anyhow::ensure!(
                *speed > 0.0 && speed.is_finite(),
                "--speed must be positive"
            );
        }
    }
    Ok(())
}
