//! The load tester (`loadtest/`, crate juno-loadtest) against a real node: a small
//! version of every scenario through the library API, each required to run clean
//! (no error frames, every connection made, every match finished), a replay whose
//! copies must reproduce the recorded result, and the worker path's partial
//! reports merged as the parent merges them. (Spawning real worker processes needs
//! the `juno-loadtest` binary, which this package's tests cannot locate; that path
//! is exercised from the command line.)

use std::time::Duration;

use juno_loadtest::{Config, Pace, Part, Play, ReplaySource, Report, Scenario};
use juno_server::store::Store;

use crate::bots::answer_key;
use crate::support::{spawn_with, Backend, TestApp, SECRET};

/// A node with a quick pace for queued duels.
async fn app() -> TestApp {
    spawn_with(Backend::Sqlite, |c| {
        c.pace.questions = 3;
        c.pace.question_ms = 1500;
        c.pace.countdown_ms = 50;
        c.pace.between_ms = 50;
    })
    .await
}

const PACE: Pace = Pace {
    questions: 3,
    question_ms: 1000,
    countdown_ms: 50,
    between_ms: 50,
};

const PLAY: Play = Play {
    think_ms: 100,
    right_ratio: 0.7,
};

async fn config(app: &TestApp, tag: &str, scenario: Scenario) -> Config {
    let mut c = Config::new(scenario);
    c.targets = vec![format!("http://{}", app.addr)];
    c.secret = Some(SECRET.into());
    c.quiet = true;
    c.tag = tag.into();
    c.duration = Duration::from_secs(20);
    c.setup = Duration::from_secs(20);
    c.answer_key = (*answer_key(app).await).clone();
    c
}

fn assert_clean(report: &Report) {
    let table = report.table();
    assert!(report.errors.is_empty(), "error frames:\n{table}");
    assert_eq!(report.connections.failed, 0, "{table}");
    assert_eq!(report.connections.dropped, 0, "{table}");
    assert_eq!(
        report.connections.made, report.connections.attempted,
        "{table}"
    );
    assert_eq!(report.client_failures, 0, "{table}");
    assert_eq!(report.frames.undecodable, 0, "{table}");
    assert_eq!(report.matches.finished, report.matches.expected, "{table}");
    assert!(report.is_clean(), "{table}");
    // The report survives its own JSON form (`--json`).
    let json = serde_json::to_string(report).expect("encodes");
    let back: Report = serde_json::from_str(&json).expect("decodes");
    assert_eq!(back.connections, report.connections);
    assert_eq!(back.errors, report.errors);
    assert_eq!(back.matches, report.matches);
}

#[tokio::test]
async fn connect_holds_every_connection() {
    let app = app().await;
    let mut c = config(
        &app,
        "ltc",
        Scenario::Connect {
            connections: 200,
            ping_secs: 0.5,
        },
    )
    .await;
    c.duration = Duration::from_secs(2);
    let report = juno_loadtest::run(c).await.expect("runs");
    assert_clean(&report);
    assert_eq!(report.connections.made, 200);
    assert!(report.ping_rtt_ms.count >= 200, "{}", report.table());
    let server = &report.server[0];
    assert!(server.error.is_none(), "{:?}", server.error);
    assert!(
        server.ws_connections_peak >= Some(200.0),
        "{}",
        report.table()
    );
    assert!(server.rss_after_bytes.is_some() && server.cpu_percent.is_some());
}

#[tokio::test]
async fn duels_by_queue_all_finish() {
    let app = app().await;
    let c = config(
        &app,
        "ltd",
        Scenario::Duels {
            duels: 10,
            games: 1,
            mission: "demo".into(),
            play: PLAY,
        },
    )
    .await;
    let report = juno_loadtest::run(c).await.expect("runs");
    assert_clean(&report);
    assert_eq!((report.connections.made, report.matches.finished), (20, 10));
    // Every answer got its ok, and both players of each duel saw its broadcasts.
    assert_eq!(report.answer_latency_ms.count, report.answers_sent);
    assert_eq!(report.answers_sent, 20 * 3);
    assert!(
        report.broadcast_skew_ms.count >= 10 * (2 * 3 + 1),
        "{}",
        report.table()
    );
}

#[tokio::test]
async fn a_royale_room_plays_to_the_end() {
    let app = app().await;
    let c = config(
        &app,
        "ltr",
        Scenario::Royale {
            rooms: 1,
            size: 8,
            mission: "demo".into(),
            pace: PACE,
            play: PLAY,
        },
    )
    .await;
    let report = juno_loadtest::run(c).await.expect("runs");
    assert_clean(&report);
    assert_eq!((report.connections.made, report.matches.finished), (8, 1));
    assert!(report.answers_sent >= 8, "{}", report.table());
    assert_eq!(report.answer_latency_ms.count, report.answers_sent);
}

#[tokio::test]
async fn a_raid_with_spectators_plays_to_the_end() {
    let app = app().await;
    let c = config(
        &app,
        "ltx",
        Scenario::Raid {
            players: 20,
            spectators: 30,
            mission: "demo".into(),
            pace: PACE,
            boss_hp: None,
            play: PLAY,
        },
    )
    .await;
    let report = juno_loadtest::run(c).await.expect("runs");
    assert_clean(&report);
    assert_eq!((report.connections.made, report.matches.finished), (50, 1));
    assert_eq!(report.answers_sent, 20 * 3);
    // Each question reached all 50 clients: the skew covers them all.
    assert!(report.broadcast_skew_ms.count >= 3, "{}", report.table());
}

/// The id of the one finished match of `mode`, once the outbox has written it.
async fn finished_match(app: &TestApp, mode: &str) -> String {
    let sql = format!("SELECT count(*) FROM matches WHERE mode = '{mode}'");
    app.eventually_scalar(&sql, 1).await;
    let sql = format!("SELECT id FROM matches WHERE mode = '{mode}'");
    match &app.node.store {
        Store::Sqlite(pool) => sqlx::query_scalar::<_, String>(&sql).fetch_one(pool).await,
        Store::Postgres(pool) => sqlx::query_scalar::<_, String>(&sql).fetch_one(pool).await,
    }
    .expect("match id")
}

#[tokio::test]
async fn replayed_copies_reproduce_the_recorded_result() {
    let app = app().await;
    // Record a battle royale where some players go out.
    let c = config(
        &app,
        "ltp",
        Scenario::Royale {
            rooms: 1,
            size: 6,
            mission: "demo".into(),
            pace: PACE,
            play: Play {
                think_ms: 150,
                right_ratio: 0.6,
            },
        },
    )
    .await;
    assert_clean(&juno_loadtest::run(c).await.expect("royale runs"));
    let id = finished_match(&app, "battle_royale").await;
    // Three concurrent copies at twice the recorded pace. The answer key is not
    // given: the tool learns it with a probe match (copies may draw questions the
    // record never asked).
    let mut c = config(
        &app,
        "ltq",
        Scenario::Replay {
            source: ReplaySource::Match(id.clone()),
            copies: 3,
            speed: 2.0,
            exact: false,
        },
    )
    .await;
    c.answer_key.clear();
    let report = juno_loadtest::run(c).await.expect("replay runs");
    assert_clean(&report);
    let replay = report.replay.clone().expect("a replay summary");
    assert_eq!(replay.source_match, id);
    assert_eq!(
        (replay.copies, replay.ok, replay.mismatched),
        (3, 3, 0),
        "{}",
        report.table()
    );
    assert_eq!(report.connections.made, 3 * 6);
    assert_eq!(report.answer_latency_ms.count, report.answers_sent);
}

#[tokio::test]
async fn worker_parts_merge_into_one_report() {
    let app = app().await;
    // What `--per-process 50` makes of 120 connections: three parts of 40, each run
    // as a worker would run it, then merged as the parent merges them.
    let mut parts = Vec::new();
    let base = config(
        &app,
        "ltw",
        Scenario::Connect {
            connections: 120,
            ping_secs: 0.3,
        },
    )
    .await;
    let mut plan_config = base.clone();
    plan_config.per_process = 50;
    let plan = juno_loadtest::workers::plan(&plan_config)
        .expect("plan")
        .expect("split");
    assert_eq!(plan.parts.len(), 3);
    for part in plan.parts {
        let mut c = base.clone();
        c.duration = Duration::from_secs(1);
        c.part = Some(Part { room: None, ..part });
        parts.push(tokio::spawn(juno_loadtest::run(c)));
    }
    let mut reports = Vec::new();
    for p in parts {
        let r = p.await.expect("joins").expect("runs");
        assert!(r.raw.is_some(), "a worker's report carries raw parts");
        assert!(r.server.is_empty(), "workers leave /metrics to the parent");
        reports.push(r);
    }
    let pings: u64 = reports.iter().map(|r| r.ping_rtt_ms.count).sum();
    let merged = Report::merge(reports, 1.5);
    assert_clean(&Report {
        raw: None,
        ..merged.clone()
    });
    assert_eq!(merged.processes, 3);
    assert_eq!(merged.connections.made, 120);
    assert_eq!(merged.ping_rtt_ms.count, pings);
    assert!(merged.ping_rtt_ms.max >= merged.ping_rtt_ms.p50);
}
