//! `juno-loadtest`: drives a running JunoSixteen node (or several) with scripted
//! clients and reports connections, frame rates, latencies, errors and the server's
//! RSS and CPU. The command line only builds a [`juno_loadtest::Config`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use juno_loadtest::{Config, Pace, Play, ReplaySource, Scenario, DEFAULT_PER_PROCESS};

/// Load tests for the JunoSixteen realtime server. Loopback targets only; every run
/// is bounded in connections and time and stops by itself.
///
/// Exit status: 0 when the run was clean (no errors, every connection made, every
/// match finished, every replay reproduced), 2 when it finished but was not, 1 when
/// it could not run.
#[derive(Parser, Debug)]
#[command(name = "juno-loadtest", version)]
struct Cli {
    /// A node or balancer to load (repeatable: connections are spread round-robin).
    /// Only 127.0.0.0/8, [::1] and localhost are accepted.
    #[arg(
        long = "target",
        global = true,
        default_value = "http://127.0.0.1:8080"
    )]
    targets: Vec<String>,
    /// The server's HS256 secret (the first of a comma-separated list signs). Without
    /// it every user gets a token from POST /auth/dev-token (dev-mode servers only).
    #[arg(long, env = "JUNO_JWT_SECRET", hide_env_values = true, global = true)]
    secret: Option<String>,
    /// Client sockets bind to 127.0.0.1 … 127.0.0.N, one per connection in turn.
    #[arg(long, default_value_t = 4, global = true)]
    source_ips: u8,
    /// connect: seconds the connections are held. Other scenarios: the longest the
    /// matches may run (default 300); unfinished ones are reported.
    #[arg(long, global = true)]
    duration: Option<f64>,
    /// Seconds allowed on top of --duration for connecting and setting rooms up;
    /// then the run is cut off.
    #[arg(long, default_value_t = 120.0, global = true)]
    setup: f64,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 256, global = true)]
    connect_concurrency: usize,
    /// Connections per process; larger runs spawn worker processes of this binary.
    #[arg(long, default_value_t = DEFAULT_PER_PROCESS, global = true)]
    per_process: usize,
    /// Seed of every random choice (think times, right or wrong answers).
    #[arg(long, default_value_t = 1, global = true)]
    seed: u64,
    /// Prefix of generated user ids; use distinct tags for runs that overlap.
    #[arg(long, default_value = "lt", global = true)]
    tag: String,
    /// A mission JSON (as POST /admin/missions takes) whose correct choices the bots
    /// know from the start; otherwise they learn them from `round` frames.
    #[arg(long, global = true)]
    mission_file: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// No progress bar.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Internal: run as a worker process (config on stdin, report on stdout).
    #[arg(long, hide = true)]
    worker: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug, Clone, Copy)]
struct PlayArgs {
    /// Mean milliseconds from a question to a bot's answer (0.5–1.5 × this, at
    /// most 80 % of the time left).
    #[arg(long, default_value_t = 1000)]
    think_ms: u64,
    /// Share of right answers (where the right choice is known).
    #[arg(long, default_value_t = 0.8)]
    right: f64,
}

impl From<PlayArgs> for Play {
    fn from(a: PlayArgs) -> Play {
        Play {
            think_ms: a.think_ms,
            right_ratio: a.right,
        }
    }
}

#[derive(Args, Debug, Clone, Copy)]
struct PaceArgs {
    /// Questions per match.
    #[arg(long, default_value_t = 5)]
    questions: u32,
    /// Time to answer a question (ms, ≥ 100).
    #[arg(long, default_value_t = 3000)]
    question_ms: u64,
    /// From the start to the first question (ms).
    #[arg(long, default_value_t = 1000)]
    countdown_ms: u64,
    /// From a round's close to the next question (ms).
    #[arg(long, default_value_t = 500)]
    between_ms: u64,
}

impl From<PaceArgs> for Pace {
    fn from(a: PaceArgs) -> Pace {
        Pace {
            questions: a.questions,
            question_ms: a.question_ms,
            countdown_ms: a.countdown_ms,
            between_ms: a.between_ms,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// N authenticated idle connections, held for --duration seconds (default 10).
    Connect {
        #[arg(long, short = 'n', default_value_t = 1000)]
        connections: usize,
        /// Each connection sends `ping` this often (seconds; 0 = never) to time round trips.
        #[arg(long, default_value_t = 5.0)]
        ping_secs: f64,
    },
    /// N concurrent duels found by `queue`. Their pace is the server's default for
    /// queued matches: JUNO_QUESTIONS, JUNO_QUESTION_MS, JUNO_COUNTDOWN_MS and
    /// JUNO_BETWEEN_MS where the server runs (5 questions of 10 s by default).
    Duels {
        #[arg(long, short = 'n', default_value_t = 100)]
        duels: usize,
        /// Duels each player plays in a row.
        #[arg(long, default_value_t = 1)]
        games: u32,
        #[arg(long, default_value = "demo")]
        mission: String,
        #[command(flatten)]
        play: PlayArgs,
    },
    /// Battle-royale rooms of --size players each, created with the given pace.
    Royale {
        #[arg(long, default_value_t = 10)]
        rooms: usize,
        #[arg(long, default_value_t = 100)]
        size: usize,
        #[arg(long, default_value = "demo")]
        mission: String,
        #[command(flatten)]
        pace: PaceArgs,
        #[command(flatten)]
        play: PlayArgs,
    },
    /// One raid room: --players players and --spectators spectators.
    Raid {
        #[arg(long, default_value_t = 1000)]
        players: usize,
        #[arg(long, default_value_t = 100)]
        spectators: usize,
        #[arg(long, default_value = "demo")]
        mission: String,
        /// Boss hit points (default: the server's, 1000 × players).
        #[arg(long)]
        boss_hp: Option<u64>,
        #[command(flatten)]
        pace: PaceArgs,
        #[command(flatten)]
        play: PlayArgs,
    },
    /// One room created on the first --target (its creator watches), its players
    /// on the other targets; prints `FAILOVER ready` once question 0 is open and
    /// half the players have their answer's ok, for bench/failover.sh to kill the
    /// first target, then when the new host's room_state and question reached
    /// the players (`FAILOVER players=…`, epoch ms). One process.
    Failover {
        /// duel (2 players) or raid.
        #[arg(long, default_value = "duel")]
        mode: String,
        #[arg(long, default_value_t = 2)]
        players: usize,
        #[arg(long, default_value = "demo")]
        mission: String,
        #[command(flatten)]
        pace: PaceArgs,
        #[command(flatten)]
        play: PlayArgs,
    },
    /// K concurrent copies of a recorded match; each must reproduce its result.
    Replay {
        /// The match (room) id, fetched from GET /api/matches/{id} on the first target.
        #[arg(long = "match", group = "source")]
        match_id: Option<String>,
        /// A JSON file of the same shape as GET /api/matches/{id} returns.
        #[arg(long, group = "source")]
        file: Option<PathBuf>,
        #[arg(long, short = 'k', default_value_t = 10)]
        copies: usize,
        /// Pace factor: 2 plays twice as fast (answer offsets and the match's
        /// question, countdown and pause times are divided by it).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Also require the same point totals (else winner, standings order and
        /// ranks, and victory are compared).
        #[arg(long)]
        exact: bool,
    },
}

fn config(cli: Cli) -> anyhow::Result<Config> {
    let command = cli
        .command
        .context("a scenario is needed: connect, duels, royale, raid, replay or failover")?;
    let scenario = match command {
        Command::Connect {
            connections,
            ping_secs,
        } => Scenario::Connect {
            connections,
            ping_secs,
        },
        Command::Duels {
            duels,
            games,
            mission,
            play,
        } => Scenario::Duels {
            duels,
            games,
            mission,
            play: play.into(),
        },
        Command::Royale {
            rooms,
            size,
            mission,
            pace,
            play,
        } => Scenario::Royale {
            rooms,
            size,
            mission,
            pace: pace.into(),
            play: play.into(),
        },
        Command::Raid {
            players,
            spectators,
            mission,
            boss_hp,
            pace,
            play,
        } => Scenario::Raid {
            players,
            spectators,
            mission,
            pace: pace.into(),
            boss_hp,
            play: play.into(),
        },
        Command::Failover {
            mode,
            players,
            mission,
            pace,
            play,
        } => Scenario::Failover {
            mode: match mode.as_str() {
                "duel" => juno_protocol::Mode::Duel,
                "raid" => juno_protocol::Mode::Raid,
                other => anyhow::bail!("failover --mode {other}: duel or raid"),
            },
            players,
            mission,
            pace: pace.into(),
            play: play.into(),
        },
        Command::Replay {
            match_id,
            file,
            copies,
            speed,
            exact,
        } => Scenario::Replay {
            source: match (match_id, file) {
                (Some(id), _) => ReplaySource::Match(id),
                (None, Some(path)) => ReplaySource::File(path),
                (None, None) => anyhow::bail!("replay needs --match ID or --file PATH"),
            },
            copies,
            speed,
            exact,
        },
    };
    let mut c = Config::new(scenario);
    c.targets = cli.targets;
    c.secret = cli
        .secret
        .and_then(|s| s.split(',').next().map(str::trim).map(String::from))
        .filter(|s| !s.is_empty());
    c.source_ips = cli.source_ips;
    if let Some(d) = cli.duration {
        anyhow::ensure!(
            d >= 0.0 && d.is_finite(),
            "--duration must be a number of seconds"
        );
        c.duration = Duration::from_secs_f64(d);
    }
    anyhow::ensure!(
        cli.setup >= 0.0 && cli.setup.is_finite(),
        "--setup must be a number of seconds"
    );
    c.setup = Duration::from_secs_f64(cli.setup);
    c.connect_concurrency = cli.connect_concurrency;
    c.per_process = cli.per_process;
    c.seed = cli.seed;
    c.tag = cli.tag;
    c.quiet = cli.quiet;
    if let Some(path) = cli.mission_file {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mission: juno_protocol::Mission = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a mission", path.display()))?;
        c.answer_key = mission
            .questions
            .into_iter()
            .map(|q| (q.text, q.correct))
            .collect();
    }
    Ok(c)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.worker {
        return match juno_loadtest::workers::worker_main().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("juno-loadtest worker: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let json = cli.json;
    let outcome = async {
        let config = config(cli)?;
        juno_loadtest::run(config).await
    }
    .await;
    match outcome {
        Ok(report) => {
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("juno-loadtest: encoding the report: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", report.table());
            }
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("juno-loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}
