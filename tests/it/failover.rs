//! Failover (WIRE.md §5, v1.1): a room outlives the node that hosts it. Three
//! real nodes share Postgres and Redis; each test injects a fault into the
//! room's host — SIGKILL, SIGSTOP then SIGCONT, or a Redis restarted empty — and
//! checks what the clients see: the new host's `room_state` within
//! `JUNO_NODE_TTL_MS` + 5 s, the open `question` again with the time it had
//! left, no acknowledged answer lost, one story of rounds and one `result` per
//! player, one recorded match.
//!
//! A room lives on the node it was created on. A creator on node 1 who watches
//! (`watch: true`) puts the room there with nobody playing on it, so its players
//! (on nodes 2 and 3) outlive its host.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use juno_protocol::{
    BossHp, ClientMsg, ErrorCode, MatchResult, Mode, Phase, QuestionMsg, RoomOptions, RoomState,
    Round, ServerMsg,
};
use tokio::time::Instant;

use crate::bots::*;
use crate::cluster::demo_key;
use crate::is;
use crate::procs::*;
use crate::support::*;

/// Every node's `JUNO_NODE_TTL_MS`: small, so that a dead host is noticed soon.
const TTL_MS: u64 = 1_500;
const TTL_ENV: [(&str, &str); 1] = [("JUNO_NODE_TTL_MS", "1500")];
/// Time to answer where a question must still be open after the adoption (the
/// players answer at once, so a long one costs nothing).
const LONG_MS: u64 = 30_000;

type Key = Arc<HashMap<String, u32>>;

/// The latest instant the contract allows for the new host's `room_state`:
/// `JUNO_NODE_TTL_MS` + 5 s after the host died.
fn adoption_bound(died: Instant) -> Instant {
    died + Duration::from_millis(TTL_MS) + Duration::from_secs(5)
}

/// A room of `questions` questions of `question_ms` each, without pauses, whose
/// creator watches instead of playing.
fn watched(questions: u32, question_ms: u64) -> RoomOptions {
    RoomOptions {
        questions: Some(questions),
        question_ms: Some(question_ms),
        countdown_ms: Some(0),
        between_ms: Some(0),
        watch: Some(true),
        ..Default::default()
    }
}

fn choice(key: &Key, question: &QuestionMsg, right: bool) -> u32 {
    let correct = key[&question.text];
    if right {
        correct
    } else {
        (correct + 1) % question.choices.len() as u32
    }
}

/// Whether `m` is a `question`, `round` or `result` of `room`: what only the
/// room's host sends.
fn play_frame(m: &ServerMsg, room: &str) -> bool {
    match m {
        ServerMsg::Question(x) => x.room == room,
        ServerMsg::Round(x) => x.room == room,
        ServerMsg::Result(x) => x.room == room,
        _ => false,
    }
}

/// A client and every message taken from it so far, in the order received.
struct Member {
    client: Client,
    log: Vec<ServerMsg>,
}

impl Member {
    /// A client of node `node` (0-based).
    async fn connect(cluster: &ClusterProcs, node: usize, user: &str) -> Member {
        let client = cluster.connect(node, user).await;
        assert_eq!(client.welcome.node, format!("n{}", node + 1));
        Member {
            client,
            log: Vec::new(),
        }
    }

    fn user(&self) -> &str {
        &self.client.user
    }

    /// The first message `pick` accepts (see [`Client::expect`]), logged.
    async fn take<T>(&mut self, what: &str, pick: impl Fn(&ServerMsg) -> Option<T>) -> T {
        let (m, t) = self
            .client
            .expect(what, |m| pick(m).map(|t| (m.clone(), t)))
            .await;
        self.log.push(m);
        t
    }

    async fn join(&mut self, room: &str) {
        self.client
            .request(ClientMsg::Join { room: room.into() })
            .await
            .unwrap_or_else(|e| panic!("{} joins {room}: {e:?}", self.client.user));
    }

    async fn question(&mut self, room: &str, q: u32) -> QuestionMsg {
        self.take(&format!("question {q} of {room}"), |m| {
            is!(m, ServerMsg::Question).filter(|x| x.room == room && x.q == q)
        })
        .await
    }

    async fn answer(
        &mut self,
        key: &Key,
        question: &QuestionMsg,
        right: bool,
    ) -> Result<juno_protocol::Ok, juno_protocol::Error> {
        self.client
            .request(ClientMsg::Answer {
                room: question.room.clone(),
                q: question.q,
                choice: choice(key, question, right),
            })
            .await
    }

    /// Takes everything received so far (up to a ping barrier) into the log,
    /// so that whatever is taken next came after this.
    async fn settle(&mut self) {
        let pending = self.client.barrier().await.len();
        for _ in 0..pending {
            let m = self.client.next().await;
            self.log.push(m);
        }
    }

    /// The new host's `room_state` for `room`, due by `bound`; no question,
    /// round or result of the room may come before it (nobody hosts the room
    /// until it is adopted, and the adopter starts with `room_state`).
    async fn adopted(&mut self, room: &str, bound: Instant) -> RoomState {
        let user = self.client.user.clone();
        let state = tokio::time::timeout_at(
            bound,
            self.client.expect_none_before(
                "the new host's room_state",
                |m| is!(m, ServerMsg::RoomState).filter(|s| s.room == room),
                "a question, round or result of the room",
                |m| play_frame(m, room),
            ),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{user}: no room_state for {room} from a new host within \
                 JUNO_NODE_TTL_MS + 5 s of its host's death"
            )
        });
        self.log.push(ServerMsg::RoomState(state.clone()));
        state
    }

    /// The question `q` of `room`, open when the host died, sent again by the
    /// new host with the time it had left: at least 1 s, at most `at_most` ms.
    async fn asked_again(&mut self, room: &str, q: u32, at_most: u64) -> QuestionMsg {
        let again = self
            .take("the open question again", |m| {
                is!(m, ServerMsg::Question).filter(|x| x.room == room)
            })
            .await;
        assert_eq!(
            again.q,
            q,
            "{}: the question open at the death comes again",
            self.user()
        );
        assert!(
            (1_000..=at_most).contains(&again.ms),
            "{}: question {q} again with {} ms left; want 1000..={at_most}",
            self.user(),
            again.ms
        );
        again
    }

    /// This member's answer to `question` had its `ok` before the fault, so it
    /// still counts: answering again is refused.
    async fn assert_answered(&mut self, key: &Key, question: &QuestionMsg) {
        let again = ClientMsg::Answer {
            room: question.room.clone(),
            q: question.q,
            choice: choice(key, question, true),
        };
        assert_eq!(
            self.client.refusal(again).await,
            ErrorCode::AlreadyAnswered,
            "{}: the acknowledged answer to question {} counts",
            self.client.user,
            question.q
        );
    }

    /// Nothing more of the finished `room` reaches this client before a ping
    /// barrier's pong: no second result, no round, no question.
    async fn assert_quiet(&mut self, room: &str) {
        self.client
            .assert_none_before_pong("another frame of the finished room", |m| {
                play_frame(m, room)
            })
            .await;
    }
}

/// The members play on as `policy` says until the `result` of `room`, each in
/// its own task; what they receive is appended to their logs.
async fn play_out(members: Vec<Member>, key: &Key, policy: Policy, room: &str) -> Vec<Member> {
    let bots: Vec<_> = members
        .into_iter()
        .map(|m| {
            let bot = spawn_bot(m.client, key.clone(), policy.clone(), room.to_string());
            (m.log, bot)
        })
        .collect();
    let mut out = Vec::new();
    for (mut log, bot) in bots {
        let (client, seen) = bot.await.expect("bot");
        log.extend(seen);
        out.push(Member { client, log });
    }
    out
}

/// The member named `user`.
fn member<'a>(members: &'a mut [Member], user: &str) -> &'a mut Member {
    members
        .iter_mut()
        .find(|m| m.user() == user)
        .unwrap_or_else(|| panic!("no member {user}"))
}

/// The members named `a` and `b`, both at once.
fn two<'a>(members: &'a mut [Member], a: &str, b: &str) -> (&'a mut Member, &'a mut Member) {
    let at = |user: &str| {
        members
            .iter()
            .position(|m| m.user() == user)
            .unwrap_or_else(|| panic!("no member {user}"))
    };
    let (i, j) = (at(a), at(b));
    assert_ne!(i, j);
    if i < j {
        let (x, y) = members.split_at_mut(j);
        (&mut x[i], &mut y[0])
    } else {
        let (x, y) = members.split_at_mut(i);
        (&mut y[0], &mut x[j])
    }
}

/// The frames of `room` in a log, one word each, for failure messages.
fn story(log: &[ServerMsg], room: &str) -> String {
    log.iter()
        .filter_map(|m| match m {
            ServerMsg::RoomState(x) if x.room == room => Some(format!("room_state {:?}", x.phase)),
            ServerMsg::Question(x) if x.room == room => {
                Some(format!("question {} ({} ms)", x.q, x.ms))
            }
            ServerMsg::Round(x) if x.room == room => Some(format!("round {}", x.q)),
            ServerMsg::Result(x) if x.room == room => Some("result".into()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The frames of `room` a member received tell one story, as one host tells
/// it: exactly one `round` for each question `0..asked.len()` and for no other,
/// as many `question` frames for question q as `asked[q]` allows (the one open
/// at an adoption comes twice: from the dead host, then from the new one),
/// none for a question after its round, no round after the result, and
/// exactly one `result`.
fn assert_one_story(m: &Member, room: &str, asked: &[RangeInclusive<usize>]) {
    let user = m.user();
    let told = story(&m.log, room);
    let mut rounds: BTreeMap<u32, usize> = BTreeMap::new();
    let mut questions: BTreeMap<u32, usize> = BTreeMap::new();
    let mut results = 0;
    for msg in &m.log {
        match msg {
            ServerMsg::Question(x) if x.room == room => {
                assert!(
                    !rounds.contains_key(&x.q),
                    "{user}: question {} of {room} after its round: {told}",
                    x.q
                );
                *questions.entry(x.q).or_default() += 1;
            }
            ServerMsg::Round(x) if x.room == room => {
                assert_eq!(results, 0, "{user}: a round after the result: {told}");
                *rounds.entry(x.q).or_default() += 1;
            }
            ServerMsg::Result(x) if x.room == room => results += 1,
            _ => {}
        }
    }
    let one_each: BTreeMap<u32, usize> = (0..asked.len() as u32).map(|q| (q, 1)).collect();
    assert_eq!(rounds, one_each, "{user}: one round per question: {told}");
    for (q, allowed) in asked.iter().enumerate() {
        let n = questions.remove(&(q as u32)).unwrap_or(0);
        assert!(
            allowed.contains(&n),
            "{user}: question {q} came {n} times, want {allowed:?}: {told}"
        );
    }
    assert!(
        questions.is_empty(),
        "{user}: questions beyond the match: {told}"
    );
    assert_eq!(results, 1, "{user}: one result: {told}");
}

fn rounds_of(m: &Member, room: &str) -> Vec<Round> {
    all_of(&m.log, |x| {
        is!(x, ServerMsg::Round).filter(|r| r.room == room)
    })
}

fn round(m: &Member, room: &str, q: u32) -> Round {
    rounds_of(m, room)
        .into_iter()
        .find(|r| r.q == q)
        .unwrap_or_else(|| panic!("{}: round {q} of {room}", m.user()))
}

/// The one `result` of `room` every member got (checked to be the same).
fn result_of(members: &[Member], room: &str) -> MatchResult {
    let results: Vec<MatchResult> = members
        .iter()
        .map(|m| {
            all_of(&m.log, |x| {
                is!(x, ServerMsg::Result).filter(|r| r.room == room)
            })
            .pop()
            .unwrap_or_else(|| panic!("{}: the result of {room}", m.user()))
        })
        .collect();
    assert!(
        results.iter().all(|r| r == &results[0]),
        "everyone gets the same result: {results:#?}"
    );
    results[0].clone()
}

/// Points `user` got in `round` (from its `gained` map).
fn gained(round: &Round, user: &str) -> u64 {
    let map = round
        .gained
        .as_ref()
        .expect("a small room's round has gained");
    map.get(user).copied().unwrap_or(0)
}

fn score_in(result: &MatchResult, user: &str) -> u64 {
    result
        .standings
        .iter()
        .find(|s| s.id == user)
        .unwrap_or_else(|| panic!("{user} in the standings: {result:?}"))
        .score
}

/// The new host's `room_state` shows the match still playing, question `q` open
/// with at least 1 s and at most `at_most` ms left.
fn assert_open(user: &str, state: &RoomState, q: u32, at_most: u64) {
    assert_eq!(state.phase, Phase::Playing, "{user}: {state:?}");
    let open = state
        .question
        .as_ref()
        .unwrap_or_else(|| panic!("{user}: room_state shows the open question: {state:?}"));
    assert_eq!(open.q, q, "{user}: {state:?}");
    assert!(
        (1_000..=at_most).contains(&open.ms),
        "{user}: {} ms left; want 1000..={at_most}",
        open.ms
    );
}

/// One row in `matches` for `room`, with `players` players.
async fn recorded_once(cluster: &ClusterProcs, room: &str, players: i64) {
    cluster
        .eventually_scalar(
            &format!("SELECT COUNT(*) FROM matches WHERE id = '{room}'"),
            1,
        )
        .await;
    cluster
        .eventually_scalar(
            &format!("SELECT COUNT(*) FROM match_players WHERE match_id = '{room}'"),
            players,
        )
        .await;
}

#[tokio::test]
async fn a_duel_survives_the_sigkill_of_its_host_and_keeps_an_acknowledged_answer() {
    let mut cluster = ClusterProcs::start(3, &test_redis_url(), &TTL_ENV).await;
    let key = demo_key(&cluster).await;
    let mut host = cluster.connect(0, "w").await;
    let room = host
        .create_room(Mode::Duel, Some(watched(3, LONG_MS)))
        .await;
    let mut ann = Member::connect(&cluster, 1, "ann").await;
    let mut bob = Member::connect(&cluster, 2, "bob").await;
    let mut eve = Member::connect(&cluster, 1, "eve").await;
    eve.client
        .request(ClientMsg::Spectate { room: room.clone() })
        .await
        .expect("spectate");
    ann.join(&room).await;
    bob.join(&room).await;
    let q0 = ann.question(&room, 0).await;
    let asked = Instant::now();
    bob.question(&room, 0).await;
    // Ann thinks a while, then answers right and has her ok before the host dies.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let thought = asked.elapsed().as_millis() as u64;
    ann.answer(&key, &q0, true)
        .await
        .expect("ok before the death");
    for m in [&mut ann, &mut bob, &mut eve] {
        m.settle().await;
    }

    let died = Instant::now();
    cluster.nodes[0].kill();
    drop(host);
    let bound = adoption_bound(died);
    let (a, b, e) = tokio::join!(
        ann.adopted(&room, bound),
        bob.adopted(&room, bound),
        eve.adopted(&room, bound)
    );
    // Ann's answer came `thought` ms after the question at the earliest and
    // before the death, so at most LONG_MS - thought were left then (plus a
    // little for the rounding of clocks).
    let at_most = LONG_MS - thought + 50;
    for (user, state) in [("ann", &a), ("bob", &b), ("eve", &e)] {
        assert_open(user, state, 0, at_most);
    }
    for m in [&mut ann, &mut bob, &mut eve] {
        m.asked_again(&room, 0, at_most).await;
    }
    // Ann's acknowledged answer counts after the adoption: she cannot answer again.
    ann.assert_answered(&key, &q0).await;
    bob.answer(&key, &q0, false)
        .await
        .expect("an answer after the adoption is accepted");

    let policy: Policy = Arc::new(|t: &Turn| match t.user {
        "ann" => Some(true),
        "bob" => Some(false),
        _ => None,
    });
    let mut members = play_out(vec![ann, bob, eve], &key, policy, &room).await;
    for m in &members {
        assert_one_story(m, &room, &[2..=2, 1..=1, 1..=1]);
    }
    let first = round(&members[0], &room, 0);
    assert!(
        gained(&first, "ann") >= 100,
        "the answer acknowledged before the death scores: {first:?}"
    );
    let result = result_of(&members, &room);
    assert_eq!(result.winner.as_deref(), Some("ann"), "{result:?}");
    let ann_points: u64 = rounds_of(&members[0], &room)
        .iter()
        .map(|r| gained(r, "ann"))
        .sum();
    assert_eq!(score_in(&result, "ann"), ann_points, "{result:?}");
    recorded_once(&cluster, &room, 2).await;
    cluster
        .eventually_scalar(
            "SELECT total_points FROM users WHERE user_id = 'ann'",
            ann_points as i64,
        )
        .await;
    for m in &mut members {
        m.assert_quiet(&room).await;
    }
}

/// A supervisor restarts a killed node under the same `JUNO_NODE_ID` before its
/// TTL runs out, so the others never see it dead: the new process takes the old
/// one's rooms back itself.
#[tokio::test]
async fn a_node_restarted_at_once_under_its_id_takes_its_rooms_back() {
    let mut cluster = ClusterProcs::start(3, &test_redis_url(), &TTL_ENV).await;
    let key = demo_key(&cluster).await;
    let mut host = cluster.connect(0, "w").await;
    let room = host
        .create_room(Mode::Duel, Some(watched(2, LONG_MS)))
        .await;
    let mut ann = Member::connect(&cluster, 1, "ann").await;
    let mut bob = Member::connect(&cluster, 2, "bob").await;
    ann.join(&room).await;
    bob.join(&room).await;
    let q0 = ann.question(&room, 0).await;
    bob.question(&room, 0).await;
    ann.answer(&key, &q0, true)
        .await
        .expect("ok before the death");
    for m in [&mut ann, &mut bob] {
        m.settle().await;
    }

    let died = Instant::now();
    cluster.nodes[0].kill();
    drop(host);
    cluster.restart(0, &TTL_ENV).await;
    let bound = adoption_bound(died);
    let (a, b) = tokio::join!(ann.adopted(&room, bound), bob.adopted(&room, bound));
    for (user, state) in [("ann", &a), ("bob", &b)] {
        assert_open(user, state, 0, LONG_MS);
    }
    for m in [&mut ann, &mut bob] {
        m.asked_again(&room, 0, LONG_MS).await;
    }
    ann.assert_answered(&key, &q0).await;
    bob.answer(&key, &q0, false)
        .await
        .expect("an answer to the process that took the room back");
    let policy: Policy = Arc::new(|t: &Turn| match t.user {
        "ann" => Some(true),
        _ => Some(false),
    });
    let members = play_out(vec![ann, bob], &key, policy, &room).await;
    for m in &members {
        assert_one_story(m, &room, &[2..=2, 1..=1]);
    }
    assert_eq!(result_of(&members, &room).winner.as_deref(), Some("ann"));
    recorded_once(&cluster, &room, 2).await;
}

#[tokio::test]
async fn a_player_connected_to_the_dead_host_reconnects_through_nginx_and_finishes() {
    let mut cluster = ClusterProcs::start(3, &test_redis_url(), &TTL_ENV).await;
    let nginx = cluster.nginx();
    let key = demo_key(&cluster).await;
    // Ann creates and plays: the room lives on her node.
    let mut ann = Member::connect(&cluster, 0, "ann").await;
    let options = RoomOptions {
        watch: None,
        ..watched(3, LONG_MS)
    };
    let room = ann.client.create_room(Mode::Duel, Some(options)).await;
    let mut bob = Member::connect(&cluster, 1, "bob").await;
    bob.join(&room).await;
    ann.question(&room, 0).await;
    let q0 = bob.question(&room, 0).await;
    bob.answer(&key, &q0, true)
        .await
        .expect("ok before the death");
    bob.settle().await;

    let died = Instant::now();
    cluster.nodes[0].kill();
    let bound = adoption_bound(died);
    ann.client.closed().await;
    // She reconnects at once, as a client would, through the balancer.
    let again = eventually("ann reconnects through nginx", DEADLINE, async || {
        try_connect_at(nginx.addr, "ann").await
    })
    .await;
    assert_ne!(again.welcome.node, "n1", "nginx sends her to a live node");
    assert_eq!(
        again.welcome.rooms,
        vec![room.clone()],
        "welcome lists the room she is seated in"
    );
    let mut ann = Member {
        client: again,
        log: ann.log,
    };
    let (a, b) = tokio::join!(ann.adopted(&room, bound), bob.adopted(&room, bound));
    assert_open("ann", &a, 0, LONG_MS);
    assert_open("bob", &b, 0, LONG_MS);
    bob.asked_again(&room, 0, LONG_MS).await;
    bob.assert_answered(&key, &q0).await;
    let open = a.question.expect("the open question");
    ann.answer(&key, &open, true)
        .await
        .expect("her answer after the adoption is accepted");

    let policy: Policy = Arc::new(|t: &Turn| Some(t.user == "ann"));
    let mut members = play_out(vec![ann, bob], &key, policy, &room).await;
    // Ann gets question 0 again only if she was back before the adoption.
    assert_one_story(&members[0], &room, &[1..=2, 1..=1, 1..=1]);
    assert_one_story(&members[1], &room, &[2..=2, 1..=1, 1..=1]);
    let first = round(&members[1], &room, 0);
    assert!(gained(&first, "ann") >= 100, "{first:?}");
    assert!(gained(&first, "bob") >= 100, "{first:?}");
    let result = result_of(&members, &room);
    assert_eq!(
        score_in(&result, "bob"),
        gained(&first, "bob"),
        "{result:?}"
    );
    recorded_once(&cluster, &room, 2).await;
    for m in &mut members {
        m.assert_quiet(&room).await;
    }
}

#[tokio::test]
async fn a_frozen_host_woken_after_the_adoption_sends_nothing_more_for_the_room() {
    // Short enough that the frozen host's own time for question 0 is up when it
    // wakes: were it still acting for the room, it would close that question at once.
    const QUESTION_MS: u64 = 4_000;
    let cluster = ClusterProcs::start(3, &test_redis_url(), &TTL_ENV).await;
    let key = demo_key(&cluster).await;
    let mut host = cluster.connect(0, "w").await;
    let room = host
        .create_room(Mode::Duel, Some(watched(3, QUESTION_MS)))
        .await;
    let mut ann = Member::connect(&cluster, 1, "ann").await;
    let mut bob = Member::connect(&cluster, 2, "bob").await;
    ann.join(&room).await;
    bob.join(&room).await;
    let q0 = ann.question(&room, 0).await;
    let asked = Instant::now();
    bob.question(&room, 0).await;
    ann.answer(&key, &q0, true)
        .await
        .expect("ok before the freeze");
    for m in [&mut ann, &mut bob] {
        m.settle().await;
    }

    let frozen = Instant::now();
    cluster.nodes[0].stop();
    drop(host);
    let bound = adoption_bound(frozen);
    let (a, b) = tokio::join!(ann.adopted(&room, bound), bob.adopted(&room, bound));
    assert_open("ann", &a, 0, QUESTION_MS);
    assert_open("bob", &b, 0, QUESTION_MS);
    for m in [&mut ann, &mut bob] {
        m.asked_again(&room, 0, QUESTION_MS).await;
    }
    bob.answer(&key, &q0, false)
        .await
        .expect("an answer after the adoption is accepted");
    // The scenario: the old host sleeps past the end of its question 0, then wakes.
    tokio::time::sleep_until(asked + Duration::from_millis(QUESTION_MS + 500)).await;
    cluster.nodes[0].cont();
    // Once it answers HTTP again it has been running for a while (whatever it
    // answers: the woken node may also give up).
    let _ = cluster
        .http
        .get(cluster.nodes[0].url("/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;

    let policy: Policy = Arc::new(|t: &Turn| Some(t.user == "ann"));
    let mut members = play_out(vec![ann, bob], &key, policy, &room).await;
    for m in &members {
        assert_one_story(m, &room, &[2..=2, 1..=1, 1..=1]);
    }
    let first = round(&members[0], &room, 0);
    assert!(gained(&first, "ann") >= 100, "{first:?}");
    let result = result_of(&members, &room);
    let ann_points: u64 = rounds_of(&members[0], &room)
        .iter()
        .map(|r| gained(r, "ann"))
        .sum();
    assert_eq!(score_in(&result, "ann"), ann_points, "{result:?}");
    assert_eq!(score_in(&result, "bob"), 0, "{result:?}");
    recorded_once(&cluster, &room, 2).await;
    for m in &mut members {
        m.assert_quiet(&room).await;
    }
}

#[tokio::test]
async fn a_raid_survives_the_sigkill_of_its_host_with_the_boss_hp_it_had() {
    const BOSS_HP: u64 = 100_000;
    let mut cluster = ClusterProcs::start(3, &test_redis_url(), &TTL_ENV).await;
    let key = demo_key(&cluster).await;
    let mut host = cluster.connect(0, "w").await;
    let options = RoomOptions {
        max_players: Some(2),
        boss_hp: Some(BOSS_HP),
        ..watched(2, LONG_MS)
    };
    let room = host.create_room(Mode::Raid, Some(options)).await;
    let mut r1 = Member::connect(&cluster, 1, "r1").await;
    let mut r2 = Member::connect(&cluster, 2, "r2").await;
    r1.join(&room).await;
    r2.join(&room).await;
    for m in [&mut r1, &mut r2] {
        let q = m.question(&room, 0).await;
        m.answer(&key, &q, true).await.expect("answer");
    }
    let after_first = r1
        .take("round 0", |m| {
            is!(m, ServerMsg::Round).filter(|r| r.room == room && r.q == 0)
        })
        .await
        .boss
        .expect("a raid's round shows the boss")
        .hp;
    // r1 hits the boss in question 1 and sees the hit; then the host dies.
    let q1 = r1.question(&room, 1).await;
    r2.question(&room, 1).await;
    r1.answer(&key, &q1, true)
        .await
        .expect("ok before the death");
    let hit = r1
        .take("the boss frame after r1's hit", |m| {
            is!(m, ServerMsg::Boss).filter(|b| b.room == room && b.hp < after_first)
        })
        .await;
    for m in [&mut r1, &mut r2] {
        m.settle().await;
    }

    let died = Instant::now();
    cluster.nodes[0].kill();
    drop(host);
    let bound = adoption_bound(died);
    let (a, b) = tokio::join!(r1.adopted(&room, bound), r2.adopted(&room, bound));
    for (user, state) in [("r1", &a), ("r2", &b)] {
        assert_open(user, state, 1, LONG_MS);
        assert_eq!(
            state.boss,
            Some(BossHp {
                hp: hit.hp,
                max_hp: BOSS_HP
            }),
            "{user}: the boss has the hp it had at the death"
        );
    }
    for m in [&mut r1, &mut r2] {
        m.asked_again(&room, 1, LONG_MS).await;
    }
    r1.assert_answered(&key, &q1).await;
    r2.answer(&key, &q1, true)
        .await
        .expect("an answer after the adoption is accepted");

    let members = play_out(vec![r1, r2], &key, Arc::new(|_| Some(true)), &room).await;
    for m in &members {
        assert_one_story(m, &room, &[1..=1, 2..=2]);
    }
    let last = round(&members[0], &room, 1);
    let final_hp = last.boss.expect("boss in the round").hp;
    assert_eq!(
        gained(&last, "r1"),
        after_first - hit.hp,
        "r1's acknowledged hit counts once: {last:?}"
    );
    assert_eq!(final_hp, hit.hp - gained(&last, "r2"), "{last:?}");
    let result = result_of(&members, &room);
    assert_eq!(result.victory, Some(false), "{result:?}");
    let dealt: u64 = result.standings.iter().map(|s| s.score).sum();
    assert_eq!(
        dealt,
        BOSS_HP - final_hp,
        "the damage before and after the death adds up to what the boss lost"
    );
    recorded_once(&cluster, &room, 2).await;
}

#[tokio::test]
async fn a_battle_royale_survives_the_sigkill_of_its_host_with_its_eliminations() {
    let mut cluster = ClusterProcs::start(3, &test_redis_url(), &TTL_ENV).await;
    let key = demo_key(&cluster).await;
    let mut host = cluster.connect(0, "w").await;
    let options = RoomOptions {
        max_players: Some(3),
        ..watched(3, LONG_MS)
    };
    let room = host.create_room(Mode::BattleRoyale, Some(options)).await;
    let mut b1 = Member::connect(&cluster, 1, "b1").await;
    let mut b2 = Member::connect(&cluster, 2, "b2").await;
    let mut b3 = Member::connect(&cluster, 1, "b3").await;
    for m in [&mut b1, &mut b2, &mut b3] {
        m.join(&room).await;
    }
    // Question 0 puts b1 out.
    for (m, right) in [(&mut b1, false), (&mut b2, true), (&mut b3, true)] {
        let q = m.question(&room, 0).await;
        m.answer(&key, &q, right).await.expect("answer");
    }
    let first = b3
        .take("round 0", |m| {
            is!(m, ServerMsg::Round).filter(|r| r.room == room && r.q == 0)
        })
        .await;
    assert_eq!(first.eliminated.as_deref(), Some(&["b1".to_string()][..]));
    // b3 answers question 1 right and has the ok; then the host dies.
    b2.question(&room, 1).await;
    let q1 = b3.question(&room, 1).await;
    b3.answer(&key, &q1, true)
        .await
        .expect("ok before the death");
    for m in [&mut b1, &mut b2, &mut b3] {
        m.settle().await;
    }

    let died = Instant::now();
    cluster.nodes[0].kill();
    drop(host);
    let bound = adoption_bound(died);
    let states = tokio::join!(
        b1.adopted(&room, bound),
        b2.adopted(&room, bound),
        b3.adopted(&room, bound)
    );
    for (user, state) in [("b1", &states.0), ("b2", &states.1), ("b3", &states.2)] {
        assert_open(user, state, 1, LONG_MS);
        let alive: BTreeMap<&str, bool> = state
            .players
            .iter()
            .map(|p| (p.id.as_str(), p.alive))
            .collect();
        assert_eq!(
            alive,
            BTreeMap::from([("b1", false), ("b2", true), ("b3", true)]),
            "{user}: eliminations carry over"
        );
    }
    for m in [&mut b2, &mut b3] {
        m.asked_again(&room, 1, LONG_MS).await;
    }
    b3.assert_answered(&key, &q1).await;
    // b2 goes out: had b3's acknowledged answer been lost, both would be out
    // together, so neither would, and the match would go on.
    b2.answer(&key, &q1, false)
        .await
        .expect("an answer after the adoption is accepted");

    let members = play_out(vec![b1, b2, b3], &key, Arc::new(|_| None), &room).await;
    for m in &members {
        // An eliminated player watches on; whether questions reach them is not the point here.
        let asked = if m.user() == "b1" {
            [0..=2, 0..=2]
        } else {
            [1..=1, 2..=2]
        };
        assert_one_story(m, &room, &asked);
    }
    let last = round(&members[2], &room, 1);
    assert_eq!(last.eliminated.as_deref(), Some(&["b2".to_string()][..]));
    let result = result_of(&members, &room);
    assert_eq!(result.winner.as_deref(), Some("b3"), "{result:?}");
    let ranks: BTreeMap<&str, u32> = result
        .standings
        .iter()
        .map(|s| (s.id.as_str(), s.rank))
        .collect();
    assert_eq!(
        ranks,
        BTreeMap::from([("b1", 3), ("b2", 2), ("b3", 1)]),
        "later elimination ranks first"
    );
    recorded_once(&cluster, &room, 3).await;
}

#[tokio::test]
async fn a_tournament_survives_the_sigkill_of_its_host_with_its_bracket_and_running_duel() {
    let mut cluster = ClusterProcs::start(3, &test_redis_url(), &TTL_ENV).await;
    let key = demo_key(&cluster).await;
    let mut host = cluster.connect(0, "w").await;
    let options = RoomOptions {
        size: Some(4),
        ..watched(1, LONG_MS)
    };
    let room = host.create_room(Mode::Tournament, Some(options)).await;
    let mut ts = Vec::new();
    for (node, user) in [(1, "t1"), (2, "t2"), (1, "t3")] {
        let mut m = Member::connect(&cluster, node, user).await;
        m.join(&room).await;
        ts.push(m);
    }
    host.request(ClientMsg::Start { room: room.clone() })
        .await
        .expect("start");

    // Three entrants in four places: one duel and a bye in the first round.
    let first = ts[0]
        .take("the first bracket", |m| {
            is!(m, ServerMsg::Bracket).filter(|b| {
                b.room == room
                    && b.rounds
                        .first()
                        .is_some_and(|r| r.iter().any(|p| p.room.is_some()))
            })
        })
        .await;
    let pairing = first.rounds[0]
        .iter()
        .find(|p| p.room.is_some())
        .expect("a duel")
        .clone();
    let duel = pairing.room.expect("its room");
    let pair = [
        pairing.a.expect("two entrants"),
        pairing.b.expect("two entrants"),
    ];
    for user in &pair {
        let m = member(&mut ts, user);
        let q = m.question(&duel, 0).await;
        let right = pair.iter().all(|o| user <= o);
        m.answer(&key, &q, right).await.expect("answer");
    }
    for user in &pair {
        member(&mut ts, user)
            .take("the first duel's result", |m| {
                is!(m, ServerMsg::Result).filter(|r| r.room == duel)
            })
            .await;
    }
    // The final starts once the first round is decided; the host dies during it.
    let before = ts[0]
        .take("the bracket with the final", |m| {
            is!(m, ServerMsg::Bracket)
                .filter(|b| b.room == room && b.rounds.get(1).is_some_and(|r| r[0].room.is_some()))
        })
        .await
        .rounds;
    let last = &before[1][0];
    let fin = last.room.clone().expect("the final's room");
    let mut finalists = [
        last.a.clone().expect("finalist"),
        last.b.clone().expect("finalist"),
    ];
    finalists.sort();
    let [lo, hi] = finalists;
    let found = member(&mut ts, &lo)
        .take("the final's match_found", |m| {
            is!(m, ServerMsg::MatchFound).filter(|f| f.room == fin)
        })
        .await;
    assert_eq!(found.parent.as_deref(), Some(room.as_str()));
    let q0 = member(&mut ts, &lo).question(&fin, 0).await;
    member(&mut ts, &hi).question(&fin, 0).await;
    member(&mut ts, &lo)
        .answer(&key, &q0, true)
        .await
        .expect("ok before the death");
    for m in &mut ts {
        m.settle().await;
    }

    let died = Instant::now();
    cluster.nodes[0].kill();
    drop(host);
    let bound = adoption_bound(died);
    let [m1, m2, m3] = &mut ts[..] else {
        unreachable!("three entrants")
    };
    let states = tokio::join!(
        m1.adopted(&room, bound),
        m2.adopted(&room, bound),
        m3.adopted(&room, bound)
    );
    for state in [&states.0, &states.1, &states.2] {
        assert_eq!(state.phase, Phase::Playing, "{state:?}");
        assert_eq!(
            state.bracket.as_ref(),
            Some(&before),
            "the bracket carries over"
        );
    }
    let (lo_m, hi_m) = two(&mut ts, &lo, &hi);
    let (a, b) = tokio::join!(lo_m.adopted(&fin, bound), hi_m.adopted(&fin, bound));
    assert_open(&lo, &a, 0, LONG_MS);
    assert_open(&hi, &b, 0, LONG_MS);
    lo_m.asked_again(&fin, 0, LONG_MS).await;
    hi_m.asked_again(&fin, 0, LONG_MS).await;
    lo_m.assert_answered(&key, &q0).await;
    hi_m.answer(&key, &q0, false)
        .await
        .expect("an answer after the adoption is accepted");

    let mut members = play_out(ts, &key, Arc::new(|_| None), &room).await;
    for m in &members {
        if m.user() == lo || m.user() == hi {
            assert_one_story(m, &fin, &[2..=2]);
        }
        let results = all_of(&m.log, |x| {
            is!(x, ServerMsg::Result).filter(|r| r.room == room)
        });
        assert_eq!(results.len(), 1, "{}: one tournament result", m.user());
    }
    let result = result_of(&members, &room);
    assert_eq!(result.winner.as_deref(), Some(lo.as_str()), "{result:?}");
    assert_eq!(result.standings.len(), 3, "{result:?}");
    let brackets = all_of(&member(&mut members, &lo).log, |x| {
        is!(x, ServerMsg::Bracket).filter(|b| b.room == room)
    });
    let decided = brackets.last().expect("a bracket after the final");
    assert_eq!(decided.rounds[0], before[0], "the first round stands");
    assert_eq!(decided.rounds[1][0].winner.as_deref(), Some(lo.as_str()));
    cluster
        .eventually_scalar(
            &format!("SELECT COUNT(*) FROM matches WHERE id = '{room}' OR parent = '{room}'"),
            3,
        )
        .await;
    for m in &mut members {
        m.assert_quiet(&room).await;
        m.assert_quiet(&fin).await;
    }
}

/// Every node sees Redis again and listens on the bus there (a restarted Redis
/// knows no subscriptions: each node must subscribe again).
async fn redis_back(cluster: &ClusterProcs) {
    eventually("every node sees Redis again", DEADLINE, async || {
        let mut seen = Vec::new();
        for i in 0..cluster.nodes.len() {
            seen.push(cluster.health(i).await["redis"].clone());
        }
        if seen.iter().all(|r| r == "ok") {
            Ok(())
        } else {
            Err(seen)
        }
    })
    .await;
    eventually(
        "every node subscribed to the bus again",
        DEADLINE,
        async || cluster.bus_subscribed().await,
    )
    .await;
}

#[tokio::test]
async fn a_duel_goes_on_through_a_redis_restarted_empty_and_runs_on_one_node() {
    let mut redis = OwnRedis::start();
    let cluster = ClusterProcs::start(3, &redis.url(), &TTL_ENV).await;
    let key = demo_key(&cluster).await;
    let mut w = Member::connect(&cluster, 0, "w").await;
    let room = w
        .client
        .create_room(Mode::Duel, Some(watched(2, LONG_MS)))
        .await;
    let mut ann = Member::connect(&cluster, 1, "ann").await;
    let mut bob = Member::connect(&cluster, 2, "bob").await;
    ann.join(&room).await;
    bob.join(&room).await;
    let q0 = ann.question(&room, 0).await;
    bob.question(&room, 0).await;
    ann.answer(&key, &q0, true)
        .await
        .expect("ok before the restart");
    for m in [&mut w, &mut ann, &mut bob] {
        m.settle().await;
    }

    // Redis comes back empty: no leases, no logs, no heartbeats, no subscriptions.
    redis.stop();
    redis.restart();
    redis_back(&cluster).await;
    // Bob's answer reaches the room once the cluster finds it again.
    eventually(
        "bob's answer reaches the room",
        DEADLINE,
        async || match bob.answer(&key, &q0, false).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::NotFound => Err(e),
            Err(e) => panic!("bob's answer after the restart: {e:?}"),
        },
    )
    .await;

    let policy: Policy = Arc::new(|t: &Turn| match t.user {
        "ann" => Some(true),
        "bob" => Some(false),
        _ => None,
    });
    let mut members = play_out(vec![w, ann, bob], &key, policy, &room).await;
    // Nobody died, so nobody adopts: one host tells the whole story, once.
    for m in &members {
        assert_one_story(m, &room, &[1..=1, 1..=1]);
    }
    let first = round(&members[1], &room, 0);
    assert!(
        gained(&first, "ann") >= 100,
        "the answer acknowledged before the restart scores: {first:?}"
    );
    let result = result_of(&members, &room);
    assert_eq!(result.winner.as_deref(), Some("ann"), "{result:?}");
    recorded_once(&cluster, &room, 2).await;
    for m in &mut members {
        m.assert_quiet(&room).await;
    }
}
