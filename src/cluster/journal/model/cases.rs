//! One table of lease scenarios, each run on [`Store`] and on a real Redis
//! through the journal's own Lua (`TEST_REDIS_URL`, by default the local one),
//! comparing every answer and, after every step, the state both leave: the
//! lease's node, epoch, parent, origin and `closed` mark, the log, the
//! `hosted` sets, the `alive` keys and the `beat` hash. The model is what the
//! simulation steps thousands of times; this is what keeps it honest about the
//! scripts.
//!
//! The table covers every branch of the scripts, among them the ones that
//! fixed what the simulation found (a batch or whole log sent again is not
//! appended twice, a closed room is neither written nor adopted, an adoption
//! whose answer was lost can be asked again). One more, found the same way, puts an
//! adoption's winner in `beat` so its rooms are found if it dies at once. Seeded
//! random sequences of the same steps then cover what the table's author did
//! not think of.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use redis::Script;

use super::super::{ADOPT_LUA, CLOSE_LUA, COMMIT_LUA};
use super::{Commit, Store};

/// The scenario's one room, and the nodes that touch it.
const ROOM: &str = "r";
const NODES: [&str; 3] = ["a", "b", "c"];
/// The header a whole-log commit sends first.
const HEADER: &[u8] = b"header";
/// `alive`'s TTL: long enough not to run out during a case.
const ALIVE_MS: u64 = 60_000;

/// One step of a scenario.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// COMMIT by `node` at `epoch`; `full` sends the header first (the whole
    /// log); `entries` empty sends no batch; `expected` is the log's length
    /// the sender believes (ARGV[10]).
    Commit {
        node: &'static str,
        epoch: u64,
        full: bool,
        entries: &'static str,
        expected: u64,
        origin: Option<i64>,
        parent: &'static str,
    },
    Adopt {
        dead: &'static str,
        me: &'static str,
    },
    Close {
        node: &'static str,
        epoch: u64,
    },
    /// A heartbeat: `alive:{node}` set, `beat` recorded.
    Beat(&'static str),
    /// `alive:{node}` expired.
    Expire(&'static str),
    /// Redis restarted empty.
    Flush,
}

/// A batch under the lease, sent by a host that believes the log is
/// `expected` long.
const fn commit(node: &'static str, epoch: u64, expected: u64, entries: &'static str) -> Op {
    Op::Commit {
        node,
        epoch,
        full: false,
        entries,
        expected,
        origin: None,
        parent: "",
    }
}

/// The whole log: the header, then `entries` (`expected` plays no part).
const fn whole(node: &'static str, epoch: u64, entries: &'static str) -> Op {
    Op::Commit {
        node,
        epoch,
        full: true,
        entries,
        expected: 0,
        origin: None,
        parent: "",
    }
}

/// A batch that also sets the room's origin.
const fn with_origin(
    node: &'static str,
    epoch: u64,
    expected: u64,
    entries: &'static str,
    origin: i64,
) -> Op {
    Op::Commit {
        node,
        epoch,
        full: false,
        entries,
        expected,
        origin: Some(origin),
        parent: "",
    }
}

const fn adopt(dead: &'static str, me: &'static str) -> Op {
    Op::Adopt { dead, me }
}

const fn close(node: &'static str, epoch: u64) -> Op {
    Op::Close { node, epoch }
}

/// What the table expects a step to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// COMMIT: the log's length, -1 fenced, -2 missing.
    Len(i64),
    /// ADOPT: the new epoch, or nil.
    Adopted(Option<u64>),
    /// CLOSE: whether it held the room.
    Closed(bool),
    /// Beat, expire, flush.
    Done,
}

use Want::{Adopted, Closed, Done, Len};

/// What a step answered, in full, on either side.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Len(i64),
    /// Epoch, origin, the dead node's last beat, the log.
    Adopted(Option<(u64, i64, i64, Vec<Vec<u8>>)>),
    Closed(bool),
    Done,
}

impl Answer {
    fn want(&self) -> Want {
        match self {
            Answer::Len(n) => Len(*n),
            Answer::Adopted(got) => Adopted(got.as_ref().map(|a| a.0)),
            Answer::Closed(ok) => Closed(*ok),
            Answer::Done => Done,
        }
    }
}

/// What Redis holds for the case's room and nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    /// node, epoch, parent, origin, closed.
    lease: Option<(String, u64, String, i64, bool)>,
    log: Vec<Vec<u8>>,
    hosted: BTreeMap<String, BTreeSet<String>>,
    alive: BTreeSet<String>,
    beat: BTreeMap<String, i64>,
}

struct Case {
    name: &'static str,
    steps: &'static [(Op, Want)],
}

const CASES: &[Case] = &[
    Case {
        name: "a new room needs its whole log",
        steps: &[
            (commit("a", 1, 0, "1"), Len(-2)),
            (whole("a", 1, ""), Len(1)),
            (commit("a", 1, 1, "1"), Len(2)),
        ],
    },
    Case {
        name: "the whole log with a first batch",
        steps: &[
            (whole("a", 1, "1,2"), Len(2)),
            (commit("a", 1, 2, "3"), Len(3)),
        ],
    },
    Case {
        name: "an empty commit answers the log's length, whatever it expects",
        steps: &[
            (commit("a", 1, 0, ""), Len(-2)),
            (whole("a", 1, "1"), Len(2)),
            (commit("a", 1, 2, ""), Len(2)),
            (commit("a", 1, 7, ""), Len(2)),
            (commit("a", 1, 0, ""), Len(2)),
            (commit("b", 1, 2, ""), Len(-1)),
        ],
    },
    Case {
        name: "another node, or another epoch, is fenced",
        steps: &[
            (whole("a", 1, ""), Len(1)),
            (commit("b", 1, 1, "1"), Len(-1)),
            (commit("a", 2, 1, "1"), Len(-1)),
            (whole("b", 1, "1"), Len(-1)),
            (whole("a", 2, "1"), Len(-1)),
            (commit("a", 1, 1, "1"), Len(2)),
        ],
    },
    Case {
        name: "a batch sent again after its first attempt landed is not appended twice",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (commit("a", 1, 2, "2"), Len(3)),
            // The answer was lost; the host sends the same batch again.
            (commit("a", 1, 2, "2"), Len(3)),
            (commit("a", 1, 2, "2"), Len(3)),
            (commit("a", 1, 3, "3"), Len(4)),
        ],
    },
    Case {
        name: "a batch for a log of another length goes nowhere; the answer says the length",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (commit("a", 1, 5, "2"), Len(2)),
            (commit("a", 1, 1, "2"), Len(2)),
            (commit("a", 1, 0, "2"), Len(2)),
            (commit("a", 1, 2, "2"), Len(3)),
        ],
    },
    Case {
        name: "the whole log again on one's own lease replaces the log",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (whole("a", 1, "1"), Len(2)),
            (commit("a", 1, 2, "2"), Len(3)),
            (commit("a", 1, 3, "3"), Len(4)),
            (whole("a", 1, "1,2,3"), Len(2)),
            (whole("a", 1, ""), Len(1)),
            (commit("a", 1, 1, "1,2,3,4"), Len(2)),
        ],
    },
    Case {
        name: "the origin changes only when sent",
        steps: &[
            (
                Op::Commit {
                    node: "a",
                    epoch: 1,
                    full: true,
                    entries: "",
                    expected: 0,
                    origin: Some(500),
                    parent: "",
                },
                Len(1),
            ),
            (commit("a", 1, 1, "1"), Len(2)),
            (with_origin("a", 1, 2, "", 900), Len(2)),
            // A batch that is not appended still sets the origin.
            (with_origin("a", 1, 0, "2", 950), Len(2)),
            (
                Op::Commit {
                    node: "a",
                    epoch: 1,
                    full: true,
                    entries: "1",
                    expected: 0,
                    origin: Some(990),
                    parent: "",
                },
                Len(2),
            ),
            (whole("a", 1, "1"), Len(2)),
        ],
    },
    Case {
        name: "a tournament's child keeps its parent",
        steps: &[
            (
                Op::Commit {
                    node: "a",
                    epoch: 1,
                    full: true,
                    entries: "",
                    expected: 0,
                    origin: Some(7),
                    parent: "t1",
                },
                Len(1),
            ),
            (commit("a", 1, 1, "1"), Len(2)),
            (whole("a", 1, "1"), Len(2)),
        ],
    },
    Case {
        name: "no adoption while the host's alive key is there",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (Op::Beat("b"), Done),
            (adopt("a", "b"), Adopted(None)),
            (commit("a", 1, 2, "2"), Len(3)),
        ],
    },
    Case {
        name: "adoption bumps the epoch, moves the room and fences the old host",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (Op::Beat("a"), Done),
            (Op::Expire("a"), Done),
            (adopt("a", "b"), Adopted(Some(2))),
            (commit("a", 1, 2, "2"), Len(-1)),
            (whole("a", 1, "1,2"), Len(-1)),
            (commit("b", 2, 2, "2"), Len(3)),
        ],
    },
    Case {
        name: "one adopter wins; the loser cleans the dead node's set",
        steps: &[
            (whole("a", 1, ""), Len(1)),
            (Op::Expire("a"), Done),
            (adopt("a", "b"), Adopted(Some(2))),
            (adopt("a", "c"), Adopted(None)),
            (Op::Expire("b"), Done),
            (adopt("b", "c"), Adopted(Some(3))),
            (commit("c", 3, 1, "1"), Len(2)),
        ],
    },
    Case {
        name: "adopting a room the dead node never held only cleans its set",
        steps: &[
            (whole("a", 1, ""), Len(1)),
            (adopt("c", "b"), Adopted(None)),
        ],
    },
    Case {
        name: "an adoption asked again by its winner answers the same, and changes nothing",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (Op::Beat("a"), Done),
            (Op::Expire("a"), Done),
            (adopt("a", "b"), Adopted(Some(2))),
            // The answer was lost: asked again, the same epoch, origin, beat and log.
            (adopt("a", "b"), Adopted(Some(2))),
            (commit("b", 2, 2, "2"), Len(3)),
            // Later still: the log as it is now, the epoch unchanged.
            (adopt("a", "b"), Adopted(Some(2))),
            (Op::Beat("a"), Done),
            (adopt("a", "b"), Adopted(Some(2))),
            (adopt("a", "c"), Adopted(None)),
        ],
    },
    Case {
        name: "a winner asking again names any dead node: the lease is its own",
        steps: &[
            (whole("a", 1, ""), Len(1)),
            (Op::Expire("a"), Done),
            (adopt("a", "b"), Adopted(Some(2))),
            (adopt("c", "b"), Adopted(Some(2))),
            (Op::Beat("c"), Done),
            (adopt("c", "b"), Adopted(Some(2))),
        ],
    },
    Case {
        name: "an adoption asked again after the room moved on finds nothing",
        steps: &[
            (whole("a", 1, ""), Len(1)),
            (Op::Expire("a"), Done),
            (adopt("a", "b"), Adopted(Some(2))),
            (Op::Expire("b"), Done),
            (adopt("b", "c"), Adopted(Some(3))),
            (adopt("a", "b"), Adopted(None)),
            (adopt("b", "c"), Adopted(Some(3))),
        ],
    },
    Case {
        name: "a node restarted under its old id adopts from itself",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (Op::Expire("a"), Done),
            (adopt("a", "a"), Adopted(Some(2))),
            (commit("a", 1, 2, "2"), Len(-1)),
            (commit("a", 2, 2, "2"), Len(3)),
        ],
    },
    Case {
        name: "a node taking back its own room skips the alive check, and bumps each time",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (Op::Beat("a"), Done),
            (adopt("a", "a"), Adopted(Some(2))),
            // Asked again (its answer was lost): the epoch moves on again.
            (adopt("a", "a"), Adopted(Some(3))),
            (commit("a", 2, 2, "2"), Len(-1)),
            (commit("a", 3, 2, "2"), Len(3)),
        ],
    },
    Case {
        name: "a node cannot take back a room that moved on to another",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (Op::Expire("a"), Done),
            (adopt("a", "b"), Adopted(Some(2))),
            (Op::Beat("a"), Done),
            (adopt("a", "a"), Adopted(None)),
            (adopt("b", "b"), Adopted(Some(3))),
        ],
    },
    Case {
        name: "close needs the lease's node and epoch",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (close("b", 1), Closed(false)),
            (close("a", 2), Closed(false)),
            (close("a", 1), Closed(true)),
            (close("a", 1), Closed(true)),
        ],
    },
    Case {
        name: "a closed room keeps its log but takes no commit, not even the whole log",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (close("a", 1), Closed(true)),
            (commit("a", 1, 2, "2"), Len(-1)),
            (commit("a", 1, 2, ""), Len(-1)),
            (whole("a", 1, "1,2"), Len(-1)),
            (commit("b", 1, 2, "2"), Len(-1)),
        ],
    },
    Case {
        name: "a closed room is never adopted, nor asked again, nor taken back",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (Op::Expire("a"), Done),
            (adopt("a", "b"), Adopted(Some(2))),
            (close("b", 2), Closed(true)),
            (adopt("a", "b"), Adopted(None)),
            (adopt("b", "c"), Adopted(None)),
            (Op::Expire("b"), Done),
            (adopt("b", "c"), Adopted(None)),
            (adopt("b", "b"), Adopted(None)),
        ],
    },
    Case {
        name: "its own closer can neither adopt nor take back a closed room",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (close("a", 1), Closed(true)),
            (Op::Expire("a"), Done),
            (adopt("a", "b"), Adopted(None)),
            (adopt("a", "a"), Adopted(None)),
            (close("a", 1), Closed(true)),
        ],
    },
    Case {
        name: "Redis restarted empty: the host writes its whole log again",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (commit("a", 1, 2, "2"), Len(3)),
            (Op::Flush, Done),
            (commit("a", 1, 3, "3"), Len(-2)),
            (whole("a", 1, "1,2,3"), Len(2)),
            (commit("a", 1, 2, "4"), Len(3)),
        ],
    },
    Case {
        name: "after a flush the first whole log wins, whoever sends it",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (Op::Expire("a"), Done),
            (adopt("a", "b"), Adopted(Some(2))),
            (commit("b", 2, 2, "2"), Len(3)),
            (Op::Flush, Done),
            (whole("a", 1, "1"), Len(2)),
            (whole("b", 2, "1,2"), Len(-1)),
        ],
    },
    Case {
        name: "a flush forgets that a room was closed",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (close("a", 1), Closed(true)),
            (Op::Flush, Done),
            (whole("a", 1, "1"), Len(2)),
            (commit("a", 1, 2, "2"), Len(3)),
        ],
    },
    Case {
        name: "nothing to adopt after a flush",
        steps: &[
            (whole("a", 1, ""), Len(1)),
            (Op::Flush, Done),
            (adopt("a", "b"), Adopted(None)),
            (adopt("a", "a"), Adopted(None)),
        ],
    },
    Case {
        // See `a_winner_that_dies_before_it_beats_is_still_scanned`.
        name: "ADOPT puts its winner in `beat`",
        steps: &[
            (whole("a", 1, "1"), Len(2)),
            (Op::Expire("a"), Done),
            (adopt("a", "b"), Adopted(Some(2))),
            (commit("b", 2, 2, "2"), Len(3)),
        ],
    },
    Case {
        name: "a heartbeat after expiry blocks adoption again",
        steps: &[
            (whole("a", 1, ""), Len(1)),
            (Op::Expire("a"), Done),
            (Op::Beat("a"), Done),
            (adopt("a", "b"), Adopted(None)),
        ],
    },
];

/// ADOPT_LUA puts its winner in `beat` (as COMMIT_LUA's create path does),
/// because the scan (`find_orphans`, [`Store::orphans`]) lists dead nodes from
/// `beat`: a winner whose own heartbeat has not reached this Redis (it was
/// stalled, and Redis came back empty since its last one) and that dies
/// before its next one is still found. Without it the simulation's
/// `resent_commits_leave_a_log_that_replays` stranded a room at seed 176945
/// (with `JUNO_SIM_SEEDS=200000`).
#[test]
fn a_winner_that_dies_before_it_beats_is_still_scanned() {
    let mut store = Store::default();
    let steps = [
        whole("a", 1, "1"),
        Op::Expire("a"),
        adopt("a", "b"),
        Op::Expire("b"),
    ];
    for (step, op) in steps.iter().enumerate() {
        run_model(&mut store, op, step);
    }
    assert_eq!(store.leases[ROOM].node, "b");
    assert!(!store.alive.contains("b"));
    assert!(store.beat.contains_key("b"));
    assert_eq!(
        store.orphans("c"),
        vec![("b".to_string(), ROOM.to_string())]
    );
}

/// `now` for the n-th step of a case: distinct, so `beat` values tell steps apart.
fn now(step: usize) -> i64 {
    1_000 + step as i64
}

/// The batch an op sends, as bytes.
fn entries(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn run_model(store: &mut Store, op: &Op, step: usize) -> Answer {
    match *op {
        Op::Commit {
            node,
            epoch,
            full,
            entries: text,
            expected,
            origin,
            parent,
        } => Answer::Len(store.commit(&Commit {
            node,
            epoch,
            room: ROOM,
            parent,
            origin,
            header: full.then_some(HEADER),
            entries: &entries(text),
            expected,
            now: now(step),
        })),
        Op::Adopt { dead, me } => {
            let origin = store.leases.get(ROOM).map_or(0, |l| l.origin);
            let beat = store.beat.get(dead).copied().unwrap_or(0);
            Answer::Adopted(
                store
                    .adopt(ROOM, dead, me, now(step))
                    .map(|(epoch, log)| (epoch, origin, beat, log)),
            )
        }
        Op::Close { node, epoch } => Answer::Closed(store.close(node, epoch, ROOM)),
        Op::Beat(node) => {
            store.beat(node, now(step));
            Answer::Done
        }
        Op::Expire(node) => {
            store.expire(node);
            Answer::Done
        }
        Op::Flush => {
            store.flush_all();
            Answer::Done
        }
    }
}

fn model_state(store: &Store) -> State {
    State {
        lease: store.leases.get(ROOM).map(|l| {
            (
                l.node.clone(),
                l.epoch,
                l.parent.clone(),
                l.origin,
                l.closed,
            )
        }),
        log: store.logs.get(ROOM).cloned().unwrap_or_default(),
        hosted: store
            .hosted
            .iter()
            .filter(|(_, rooms)| !rooms.is_empty())
            .map(|(node, rooms)| (node.clone(), rooms.clone()))
            .collect(),
        alive: store.alive.clone(),
        beat: store.beat.clone(),
    }
}

#[test]
fn the_model_answers_as_the_table_says() {
    for case in CASES {
        let mut store = Store::default();
        for (step, (op, want)) in case.steps.iter().enumerate() {
            let got = run_model(&mut store, op, step).want();
            assert_eq!(got, *want, "{}: step {step} {op:?}", case.name);
        }
    }
}

/// One case's keys in Redis, under a prefix no other test or run shares.
struct Keys {
    prefix: String,
}

impl Keys {
    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for p in parts {
            k.push(':');
            k.push_str(p);
        }
        k
    }
}

/// An origin as the scripts store it ('' when none was sent).
fn origin(text: Option<&String>) -> i64 {
    text.and_then(|t| t.parse().ok()).unwrap_or(0)
}

struct Scripts {
    commit: Script,
    adopt: Script,
    close: Script,
}

async fn run_redis(
    conn: &mut MultiplexedConnection,
    scripts: &Scripts,
    keys: &Keys,
    op: &Op,
    step: usize,
) -> redis::RedisResult<Answer> {
    Ok(match *op {
        Op::Commit {
            node,
            epoch,
            full,
            entries: text,
            expected,
            origin: set_origin,
            parent,
        } => {
            let mut invocation = scripts.commit.prepare_invoke();
            invocation
                .key(keys.key(&["lease", ROOM]))
                .key(keys.key(&["rlog", ROOM]))
                .key(keys.key(&["hosted", node]))
                .key(keys.key(&["beat"]))
                .key(keys.key(&["alive", node]))
                .arg(node)
                .arg(epoch)
                .arg("duel")
                .arg(parent)
                .arg(set_origin.map(|o| o.to_string()).unwrap_or_default())
                .arg(if full { "1" } else { "0" })
                .arg(ALIVE_MS)
                .arg(now(step))
                .arg(ROOM)
                .arg(expected);
            if full {
                invocation.arg(HEADER);
            }
            if !text.is_empty() {
                invocation.arg(entries(text));
            }
            Answer::Len(invocation.invoke_async(conn).await?)
        }
        Op::Adopt { dead, me } => {
            type Got = Option<(u64, String, String, Vec<Vec<u8>>)>;
            let got: Got = scripts
                .adopt
                .key(keys.key(&["lease", ROOM]))
                .key(keys.key(&["rlog", ROOM]))
                .key(keys.key(&["hosted", dead]))
                .key(keys.key(&["hosted", me]))
                .key(keys.key(&["alive", dead]))
                .key(keys.key(&["beat"]))
                .arg(ROOM)
                .arg(dead)
                .arg(me)
                .arg(now(step))
                .invoke_async(conn)
                .await?;
            Answer::Adopted(got.map(|(epoch, o, beat, log)| {
                (epoch, origin(Some(&o)), beat.parse().unwrap_or(0), log)
            }))
        }
        Op::Close { node, epoch } => {
            let closed: i64 = scripts
                .close
                .key(keys.key(&["lease", ROOM]))
                .key(keys.key(&["rlog", ROOM]))
                .key(keys.key(&["hosted", node]))
                .arg(node)
                .arg(epoch)
                .arg(ROOM)
                .arg(60)
                .invoke_async(conn)
                .await?;
            Answer::Closed(closed == 1)
        }
        Op::Beat(node) => {
            redis::pipe()
                .cmd("SET")
                .arg(keys.key(&["alive", node]))
                .arg(1)
                .arg("PX")
                .arg(ALIVE_MS)
                .ignore()
                .cmd("HSET")
                .arg(keys.key(&["beat"]))
                .arg(node)
                .arg(now(step))
                .ignore()
                .exec_async(conn)
                .await?;
            Answer::Done
        }
        Op::Expire(node) => {
            redis::cmd("DEL")
                .arg(keys.key(&["alive", node]))
                .exec_async(conn)
                .await?;
            Answer::Done
        }
        Op::Flush => {
            flush(conn, keys).await?;
            Answer::Done
        }
    })
}

/// Everything under the case's prefix goes, as if Redis restarted empty.
async fn flush(conn: &mut MultiplexedConnection, keys: &Keys) -> redis::RedisResult<()> {
    let all: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", keys.prefix))
        .query_async(conn)
        .await?;
    if !all.is_empty() {
        redis::cmd("DEL").arg(all).exec_async(conn).await?;
    }
    Ok(())
}

async fn redis_state(conn: &mut MultiplexedConnection, keys: &Keys) -> redis::RedisResult<State> {
    let lease: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(keys.key(&["lease", ROOM]))
        .query_async(conn)
        .await?;
    let lease = lease.get("node").map(|node| {
        (
            node.clone(),
            lease.get("epoch").and_then(|e| e.parse().ok()).unwrap_or(0),
            lease.get("parent").cloned().unwrap_or_default(),
            origin(lease.get("origin")),
            lease.contains_key("closed"),
        )
    });
    let log: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(keys.key(&["rlog", ROOM]))
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await?;
    let mut hosted = BTreeMap::new();
    let mut alive = BTreeSet::new();
    for node in NODES {
        let rooms: BTreeSet<String> = redis::cmd("SMEMBERS")
            .arg(keys.key(&["hosted", node]))
            .query_async(conn)
            .await?;
        if !rooms.is_empty() {
            hosted.insert(node.to_string(), rooms);
        }
        let exists: bool = redis::cmd("EXISTS")
            .arg(keys.key(&["alive", node]))
            .query_async(conn)
            .await?;
        if exists {
            alive.insert(node.to_string());
        }
    }
    let beat: BTreeMap<String, i64> = redis::cmd("HGETALL")
        .arg(keys.key(&["beat"]))
        .query_async(conn)
        .await?;
    Ok(State {
        lease,
        log,
        hosted,
        alive,
        beat,
    })
}

/// Redis for these tests: never skipped, as CI sets `TEST_REDIS_URL`.
async fn connect() -> MultiplexedConnection {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(url.as_str()).expect("a valid TEST_REDIS_URL");
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is required for the journal's scripts: {e}"))
}

fn scripts() -> Scripts {
    Scripts {
        commit: Script::new(COMMIT_LUA),
        adopt: Script::new(ADOPT_LUA),
        close: Script::new(CLOSE_LUA),
    }
}

/// A prefix of its own for each run, so that runs and tests never share keys.
fn run_prefix() -> String {
    format!("juno_test_journal_{:016x}", rand::random::<u64>())
}

/// Runs `steps` on a fresh model and under `prefix` in Redis, comparing each
/// answer and the state after each step; `name` says which case failed. Each
/// step's answer as the model gave it.
async fn run_both(
    conn: &mut MultiplexedConnection,
    scripts: &Scripts,
    prefix: String,
    name: &str,
    steps: &[Op],
) -> Vec<Answer> {
    let keys = Keys { prefix };
    let mut store = Store::default();
    let mut answers = Vec::new();
    for (step, op) in steps.iter().enumerate() {
        let expected = run_model(&mut store, op, step);
        let got = run_redis(conn, scripts, &keys, op, step)
            .await
            .unwrap_or_else(|e| panic!("{name}: step {step} {op:?}: {e}"));
        assert_eq!(got, expected, "{name}: step {step} {op:?} answered");
        let state = redis_state(conn, &keys)
            .await
            .unwrap_or_else(|e| panic!("{name}: reading the state: {e}"));
        assert_eq!(
            state,
            model_state(&store),
            "{name}: the state after step {step} {op:?}"
        );
        answers.push(expected);
    }
    flush(conn, &keys)
        .await
        .unwrap_or_else(|e| panic!("{name}: cleaning up: {e}"));
    answers
}

#[tokio::test]
async fn the_scripts_match_the_model() {
    let mut conn = connect().await;
    let scripts = scripts();
    let run = run_prefix();
    for (c, case) in CASES.iter().enumerate() {
        let steps: Vec<Op> = case.steps.iter().map(|(op, _)| *op).collect();
        let answers = run_both(&mut conn, &scripts, format!("{run}:{c}"), case.name, &steps).await;
        for (step, (answer, (op, want))) in answers.iter().zip(case.steps).enumerate() {
            assert_eq!(answer.want(), *want, "{}: step {step} {op:?}", case.name);
        }
    }
}

/// A step chosen at random among few nodes and epochs, so that steps meet.
fn random_op(rng: &mut StdRng) -> Op {
    let node = |rng: &mut StdRng| *NODES.choose(rng).expect("nodes");
    match rng.random_range(0..20) {
        0..=8 => Op::Commit {
            node: node(rng),
            epoch: rng.random_range(1..=3),
            full: rng.random_bool(0.4),
            entries: ["", "x", "y,z"].choose(rng).expect("entries"),
            // Logs stay short: 1 to 3 elements, so some batches fit.
            expected: rng.random_range(0..=3),
            origin: rng.random_bool(0.3).then(|| rng.random_range(1..1000)),
            parent: if rng.random_bool(0.2) { "t1" } else { "" },
        },
        9..=11 => adopt(node(rng), node(rng)),
        12..=13 => close(node(rng), rng.random_range(1..=3)),
        14..=15 => Op::Beat(node(rng)),
        16..=18 => Op::Expire(node(rng)),
        _ => Op::Flush,
    }
}

#[tokio::test]
async fn random_steps_agree() {
    let mut conn = connect().await;
    let scripts = scripts();
    let run = run_prefix();
    for seed in 0..150u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let steps: Vec<Op> = (0..14).map(|_| random_op(&mut rng)).collect();
        let name = format!("random sequence {seed}");
        run_both(&mut conn, &scripts, format!("{run}:{seed}"), &name, &steps).await;
    }
}
