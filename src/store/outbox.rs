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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use juno_protocol::{MatchResult, Mode, Question, RoomOptions, Standing};
    use juno_rooms::{Pace, PlayerSummary, RoomSpec, Settings, Summary};

    /// A scratch directory for one test's database and spool, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("juno-outbox-test-{:016x}", rand::random::<u64>()));
            std::fs::create_dir_all(&dir).expect("scratch dir");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A real embedded store, as a node without DATABASE_URL gets.
    async fn sqlite(dir: &Path) -> Store {
        Store::connect(&format!("sqlite://{}", dir.join("juno.db").display()))
            .await
            .expect("sqlite store")
    }

    async fn exec(store: &Store, sql: &str) {
        let Store::Sqlite(pool) = store else {
            panic!("these tests use SQLite")
        };
        sqlx::query(sql)
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn count(store: &Store, sql: &str) -> i64 {
        let Store::Sqlite(pool) = store else {
            panic!("these tests use SQLite")
        };
        sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// From now on every match write fails, as with an unreachable database: the
    /// writer sees the same error path (`record_match` fails, nothing is written).
    async fn go_away(store: &Store) {
        exec(
            store,
            "CREATE TRIGGER outbox_test_away BEFORE INSERT ON matches
             BEGIN SELECT RAISE(ABORT, 'database unreachable (test)'); END",
        )
        .await;
    }

    async fn come_back(store: &Store) {
        exec(store, "DROP TRIGGER outbox_test_away").await;
    }

    /// A finished duel of `room`: ann beat bob on one question.
    fn record(room: &str) -> MatchRecord {
        let pace = Pace {
            questions: 1,
            question_ms: 1000,
            countdown_ms: 0,
            between_ms: 0,
        };
        let player = |id: &str, score: u64, rank: u32| PlayerSummary {
            id: id.into(),
            name: id.to_uppercase(),
            score,
            rank,
            correct: u32::from(score > 0),
            answered: 1,
            correct_ms: 100,
            eliminated_in: None,
            left: false,
        };
        let finished = chrono::Utc::now();
        MatchRecord {
            spec: RoomSpec {
                room: room.into(),
                mode: Mode::Duel,
                mission: "demo".into(),
                creator: None,
                settings: Settings::resolve(Mode::Duel, &RoomOptions::default(), pace),
                questions: vec![Question {
                    text: "How many bits are in a byte?".into(),
                    choices: vec!["4".into(), "8".into()],
                    correct: 1,
                    difficulty: None,
                }],
                parent: None,
            },
            world: "it".into(),
            node: "test-node".into(),
            summary: Summary {
                result: MatchResult {
                    room: room.into(),
                    mode: Mode::Duel,
                    winner: Some("ann".into()),
                    standings: vec![
                        Standing {
                            id: "ann".into(),
                            score: 145,
                            rank: 1,
                        },
                        Standing {
                            id: "bob".into(),
                            score: 0,
                            rank: 2,
                        },
                    ],
                    victory: None,
                    rating: None,
                },
                players: vec![player("ann", 145, 1), player("bob", 0, 2)],
                started_at: Some(0),
                finished_at: 1000,
                questions_asked: 1,
            },
            log: Vec::new(),
            started_at: finished - chrono::Duration::seconds(1),
            finished_at: finished,
            ratings: Vec::new(),
        }
    }

    /// Rooms of the records `on_written` saw, in order.
    type Written = Arc<Mutex<Vec<String>>>;

    fn recorder() -> (Written, impl Fn(&MatchRecord) + Send + 'static) {
        let written: Written = Default::default();
        let seen = written.clone();
        let on_written =
            move |r: &MatchRecord| seen.lock().expect("not poisoned").push(r.spec.room.clone());
        (written, on_written)
    }

    fn rooms(written: &Written) -> Vec<String> {
        written.lock().expect("not poisoned").clone()
    }

    fn gauge() -> IntGauge {
        IntGauge::new("outbox_pending", "results not yet written").expect("gauge")
    }

    /// Generous: a loaded machine's database can take seconds.
    const WRITTEN_WITHIN: Duration = Duration::from_secs(15);

    #[tokio::test]
    async fn a_result_pushed_while_the_store_is_unreachable_is_written_once_when_it_returns() {
        let dir = Scratch::new();
        let store = sqlite(&dir.0).await;
        let spool = dir.0.join("juno-outbox.jsonl");
        let gauge = gauge();
        let outbox = Outbox::new(gauge.clone());
        let (written, on_written) = recorder();
        let stop = CancellationToken::new();
        let writer = outbox.start(store.clone(), spool.clone(), stop.clone(), on_written);

        go_away(&store).await;
        outbox.push(record("m1"));
        assert_eq!((outbox.pending(), gauge.get()), (1, 1));
        // The store stays away for longer than a retry period: that is the scenario.
        assert!(
            !outbox.flush(RETRY_EVERY * 2).await,
            "nothing can be written while the store is away"
        );
        assert_eq!((outbox.pending(), gauge.get()), (1, 1));
        assert_eq!(count(&store, "SELECT COUNT(*) FROM matches").await, 0);
        assert!(rooms(&written).is_empty());

        // Back: the writer's own retry writes it, without another push.
        come_back(&store).await;
        assert!(
            outbox.flush(WRITTEN_WITHIN).await,
            "written once the store is back"
        );
        assert_eq!((outbox.pending(), gauge.get()), (0, 0));
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM matches WHERE id = 'm1'").await,
            1
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM match_players WHERE match_id = 'm1'"
            )
            .await,
            2
        );
        assert_eq!(rooms(&written), ["m1"]);

        // The same result again (a retry after all) counts nowhere twice.
        outbox.push(record("m1"));
        assert!(outbox.flush(WRITTEN_WITHIN).await);
        assert_eq!((outbox.pending(), gauge.get()), (0, 0));
        assert_eq!(count(&store, "SELECT COUNT(*) FROM matches").await, 1);
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM mission_progress WHERE match_id = 'm1'"
            )
            .await,
            2
        );
        assert_eq!(rooms(&written), ["m1"], "on_written once per match");

        stop.cancel();
        writer.await.expect("writer ends");
        assert!(!spool.exists(), "nothing left to spool");
    }

    #[tokio::test]
    async fn unwritten_results_are_spooled_at_shutdown_and_written_at_the_next_start() {
        let dir = Scratch::new();
        let store = sqlite(&dir.0).await;
        let spool = dir.0.join("juno-outbox.jsonl");

        // A node whose database is away when it stops.
        let first = Outbox::new(gauge());
        let (written, on_written) = recorder();
        let stop = CancellationToken::new();
        let writer = first.start(store.clone(), spool.clone(), stop.clone(), on_written);
        go_away(&store).await;
        first.push(record("m1"));
        first.push(record("m2"));
        assert_eq!(first.pending(), 2);
        assert!(!first.flush(Duration::from_millis(300)).await);
        stop.cancel();
        writer.await.expect("writer ends");
        assert!(rooms(&written).is_empty());
        let text = std::fs::read_to_string(&spool).expect("results spooled at shutdown");
        let spooled: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<MatchRecord>(l)
                    .expect("a spooled record")
                    .spec
                    .room
            })
            .collect();
        assert_eq!(spooled, ["m1", "m2"]);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM matches").await, 0);

        // The next start, with the database back: the spool is read back at once,
        // removed, and its results written.
        come_back(&store).await;
        let gauge = gauge();
        let next = Outbox::new(gauge.clone());
        let (written, on_written) = recorder();
        let stop = CancellationToken::new();
        let writer = next.start(store.clone(), spool.clone(), stop.clone(), on_written);
        assert!(!spool.exists(), "the spool is taken when read");
        // `start` pushes the spooled results before its writer task can run (the
        // test's runtime has one thread), so both count as pending now.
        assert_eq!((next.pending(), gauge.get()), (2, 2));
        assert!(next.flush(WRITTEN_WITHIN).await, "spooled results written");
        assert_eq!((next.pending(), gauge.get()), (0, 0));
        assert_eq!(rooms(&written), ["m1", "m2"]);
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM matches WHERE id IN ('m1', 'm2')"
            )
            .await,
            2
        );
        stop.cancel();
        writer.await.expect("writer ends");
        assert!(!spool.exists(), "nothing left to spool");
    }
}
