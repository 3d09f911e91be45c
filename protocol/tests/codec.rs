//! The codec against WIRE.md §3: round trips of every message, the exact wire
//! shape (string-keyed maps, `t`, optional fields left out, `result.winner` nil),
//! the classification of bad client frames, and fuzzing of `decode_client`.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use juno_protocol::limits::{self, MAX_ID_LEN};
use juno_protocol::messages::Ok as OkMsg;
use juno_protocol::*;
use proptest::prelude::*;
use rmpv::Value;

#[path = "codec/fuzz_corpus.rs"]
mod fuzz_corpus;

// ---------------------------------------------------------------------------
// helpers

/// Decodes `bytes` as exactly one MessagePack value that is a map with string
/// keys, and returns it as key → value (asserting that no key repeats).
fn wire_map(bytes: &[u8]) -> BTreeMap<String, Value> {
    let mut cursor = bytes;
    let value = rmpv::decode::read_value(&mut cursor).expect("one MessagePack value");
    assert!(cursor.is_empty(), "trailing bytes after the map");
    let Value::Map(entries) = value else {
        panic!("frame is not a map: {value:?}");
    };
    let mut out = BTreeMap::new();
    for (k, v) in entries {
        let k = k.as_str().expect("every key is a string").to_owned();
        assert!(out.insert(k.clone(), v).is_none(), "key {k} repeats");
    }
    out
}

fn keys(map: &BTreeMap<String, Value>) -> BTreeSet<&str> {
    map.keys().map(String::as_str).collect()
}

fn set<'a>(keys: &[&'a str]) -> BTreeSet<&'a str> {
    keys.iter().copied().collect()
}

/// Asserts a nested value is a map with exactly `expected` string keys.
fn assert_map_keys(value: &Value, expected: &[&str]) {
    let Value::Map(entries) = value else {
        panic!("expected a map, got {value:?}");
    };
    let got: BTreeSet<&str> = entries
        .iter()
        .map(|(k, _)| k.as_str().expect("string key"))
        .collect();
    assert_eq!(got, set(expected));
}

fn to_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).unwrap();
    out
}

/// A map frame from `(key, value)` pairs, in that order.
fn frame(entries: Vec<(&str, Value)>) -> Vec<u8> {
    to_bytes(&Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    ))
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn u(v: u64) -> Value {
    Value::from(v)
}

fn decode_err(bytes: &[u8]) -> DecodeError {
    match decode_client(bytes) {
        Ok(f) => panic!("expected an error, decoded {f:?}"),
        Err(e) => e,
    }
}

fn assert_code(bytes: &[u8], code: ErrorCode, rid: Option<u64>) -> DecodeError {
    let e = decode_err(bytes);
    assert_eq!((e.code, e.rid), (code, rid), "{e}");
    e
}

// ---------------------------------------------------------------------------
// server messages

fn pairing(a: Option<&str>, b: Option<&str>, winner: Option<&str>, room: Option<&str>) -> Pairing {
    Pairing {
        a: a.map(Into::into),
        b: b.map(Into::into),
        winner: winner.map(Into::into),
        room: room.map(Into::into),
    }
}

fn question() -> QuestionMsg {
    QuestionMsg {
        room: "r1".into(),
        q: 3,
        text: "Which port does HTTPS use? – ünïcödé".into(),
        choices: vec!["80".into(), "443".into(), "22".into(), "8080".into()],
        ms: 9_500,
    }
}

fn scores_map(n: usize) -> BTreeMap<String, u64> {
    (0..n)
        .map(|i| (format!("user{i}"), 100 + i as u64))
        .collect()
}

/// Every `ServerMsg` variant, with optional fields present and absent, and the
/// exact top-level keys each must have on the wire.
fn server_samples() -> Vec<(ServerMsg, &'static [&'static str])> {
    const QUESTION: &[&str] = &["t", "room", "q", "text", "choices", "ms"];
    let standings = vec![
        Standing {
            id: "u1".into(),
            score: 420,
            rank: 1,
        },
        Standing {
            id: "u2".into(),
            score: 0,
            rank: 2,
        },
    ];
    let bracket = vec![
        vec![
            pairing(Some("u1"), Some("u2"), Some("u1"), Some("d1")),
            pairing(Some("u3"), None, Some("u3"), None),
        ],
        vec![pairing(Some("u1"), Some("u3"), None, Some("d3"))],
    ];
    vec![
        (
            ServerMsg::Welcome(Welcome {
                user: "u1".into(),
                name: "Ann".into(),
                node: "node-a".into(),
                proto: PROTO_VERSION,
                flags: [
                    ("pvp_duels".to_string(), true),
                    ("raid_bosses".into(), false),
                ]
                .into(),
                rooms: vec!["r1".into()],
            }),
            &["t", "user", "name", "node", "proto", "flags", "rooms"],
        ),
        (
            ServerMsg::Welcome(Welcome {
                user: "u1".into(),
                name: String::new(),
                node: "n".into(),
                proto: 1,
                flags: BTreeMap::new(),
                rooms: vec![],
            }),
            &["t", "user", "name", "node", "proto", "flags", "rooms"],
        ),
        (ServerMsg::ok(None), &["t"]),
        (ServerMsg::ok(Some(7)), &["t", "rid"]),
        (
            ServerMsg::Ok(OkMsg {
                rid: Some(u64::MAX),
                room: Some("r9".into()),
            }),
            &["t", "rid", "room"],
        ),
        (
            ServerMsg::Ok(OkMsg {
                rid: None,
                room: Some("r9".into()),
            }),
            &["t", "room"],
        ),
        (
            ServerMsg::error(Some(3), ErrorCode::TooLate, "too late"),
            &["t", "rid", "code", "msg"],
        ),
        (
            ServerMsg::error(None, ErrorCode::Replaced, "replaced by a newer connection"),
            &["t", "code", "msg"],
        ),
        (
            ServerMsg::Pong(Pong {
                rid: Some(1),
                ts: 1_764_480_000_000,
            }),
            &["t", "rid", "ts"],
        ),
        (ServerMsg::Pong(Pong { rid: None, ts: 0 }), &["t", "ts"]),
        (
            ServerMsg::MatchFound(MatchFound {
                room: "d1".into(),
                mode: Mode::Duel,
                mission: "it_basics".into(),
                players: vec![
                    PlayerRef {
                        id: "u1".into(),
                        name: "Ann".into(),
                    },
                    PlayerRef {
                        id: "u2".into(),
                        name: "Bob".into(),
                    },
                ],
                parent: Some("t1".into()),
            }),
            &["t", "room", "mode", "mission", "players", "parent"],
        ),
        (
            ServerMsg::MatchFound(MatchFound {
                room: "d1".into(),
                mode: Mode::Duel,
                mission: "m".into(),
                players: vec![],
                parent: None,
            }),
            &["t", "room", "mode", "mission", "players"],
        ),
        (
            ServerMsg::RoomState(RoomState {
                room: "r1".into(),
                mode: Mode::Raid,
                phase: Phase::Playing,
                players: vec![PlayerState {
                    id: "u1".into(),
                    name: "Ann".into(),
                    score: 150,
                    alive: true,
                }],
                player_count: 1,
                spectators: 4,
                question: Some(question()),
                boss: Some(BossHp {
                    hp: 500,
                    max_hp: 1000,
                }),
                bracket: Some(bracket.clone()),
            }),
            &[
                "t",
                "room",
                "mode",
                "phase",
                "players",
                "player_count",
                "spectators",
                "question",
                "boss",
                "bracket",
            ],
        ),
        (
            ServerMsg::RoomState(RoomState {
                room: "r1".into(),
                mode: Mode::BattleRoyale,
                phase: Phase::Waiting,
                players: vec![],
                player_count: 0,
                spectators: 0,
                question: None,
                boss: None,
                bracket: None,
            }),
            &[
                "t",
                "room",
                "mode",
                "phase",
                "players",
                "player_count",
                "spectators",
            ],
        ),
        (ServerMsg::Question(question()), QUESTION),
        (
            ServerMsg::Round(Round {
                room: "r1".into(),
                q: 0,
                correct: 2,
                top: vec![Leader {
                    id: "u1".into(),
                    score: 150,
                }],
                eliminated: Some(vec!["u2".into()]),
                boss: Some(BossHp { hp: 0, max_hp: 10 }),
                gained: Some(scores_map(2)),
                scores: Some(scores_map(2)),
            }),
            &[
                "t",
                "room",
                "q",
                "correct",
                "top",
                "eliminated",
                "boss",
                "gained",
                "scores",
            ],
        ),
        (
            ServerMsg::Round(Round {
                room: "r1".into(),
                q: 4,
                correct: 0,
                top: vec![],
                eliminated: None,
                boss: None,
                gained: None,
                scores: None,
            }),
            &["t", "room", "q", "correct", "top"],
        ),
        (
            ServerMsg::Score(Score {
                room: "r1".into(),
                q: 1,
                gained: 137,
                score: 287,
                rank: 2,
            }),
            &["t", "room", "q", "gained", "score", "rank"],
        ),
        (
            ServerMsg::Boss(Boss {
                room: "r1".into(),
                hp: 700,
                max_hp: 1000,
                hits: 3,
                dmg: 300,
                last: vec![Hit {
                    by: "u1".into(),
                    dmg: 100,
                }],
            }),
            &["t", "room", "hp", "max_hp", "hits", "dmg", "last"],
        ),
        (
            ServerMsg::Bracket(Bracket {
                room: "t1".into(),
                rounds: bracket,
            }),
            &["t", "room", "rounds"],
        ),
        (
            ServerMsg::Result(MatchResult {
                room: "d1".into(),
                mode: Mode::Duel,
                winner: None,
                standings: standings.clone(),
                victory: None,
                rating: None,
            }),
            &["t", "room", "mode", "winner", "standings"],
        ),
        (
            ServerMsg::Result(MatchResult {
                room: "x1".into(),
                mode: Mode::Raid,
                winner: Some("u1".into()),
                standings,
                victory: Some(false),
                rating: Some([("u1".to_string(), 12), ("u2".into(), -12)].into()),
            }),
            &[
                "t",
                "room",
                "mode",
                "winner",
                "standings",
                "victory",
                "rating",
            ],
        ),
        (
            ServerMsg::Flags(Flags {
                flags: [("tournaments".to_string(), false)].into(),
            }),
            &["t", "flags"],
        ),
        (
            ServerMsg::Notification(Notification {
                kind: "reward".into(),
                title: "Well done".into(),
                message: "You earned a badge".into(),
            }),
            &["t", "kind", "title", "message"],
        ),
        (
            ServerMsg::Reconnect(Reconnect {
                reason: "draining".into(),
            }),
            &["t", "reason"],
        ),
    ]
}

/// Breaks the build when a variant is added without a sample above.
fn server_variant_index(m: &ServerMsg) -> usize {
    match m {
        ServerMsg::Welcome(_) => 0,
        ServerMsg::Ok(_) => 1,
        ServerMsg::Error(_) => 2,
        ServerMsg::Pong(_) => 3,
        ServerMsg::MatchFound(_) => 4,
        ServerMsg::RoomState(_) => 5,
        ServerMsg::Question(_) => 6,
        ServerMsg::Round(_) => 7,
        ServerMsg::Score(_) => 8,
        ServerMsg::Boss(_) => 9,
        ServerMsg::Bracket(_) => 10,
        ServerMsg::Result(_) => 11,
        ServerMsg::Flags(_) => 12,
        ServerMsg::Notification(_) => 13,
        ServerMsg::Reconnect(_) => 14,
    }
}

#[test]
fn every_server_variant_is_sampled() {
    let covered: BTreeSet<usize> = server_samples()
        .iter()
        .map(|(m, _)| server_variant_index(m))
        .collect();
    assert_eq!(covered, (0..15).collect());
}

#[test]
fn server_messages_round_trip() {
    for (msg, _) in server_samples() {
        let bytes = encode(&msg);
        let back = decode_server(&bytes).unwrap_or_else(|e| panic!("{msg:?}: {e}"));
        assert_eq!(back, msg);
    }
}

#[test]
fn every_server_message_can_be_glanced() {
    for (msg, _) in server_samples() {
        let g = glance_server(&encode(&msg)).unwrap_or_else(|e| panic!("{msg:?}: {e}"));
        assert_eq!(g.t, msg.type_name(), "{msg:?}");
        let (room, q, hp) = match &msg {
            ServerMsg::Question(m) => (Some(&m.room), Some(m.q), None),
            ServerMsg::Round(m) => (Some(&m.room), Some(m.q), None),
            ServerMsg::Boss(m) => (Some(&m.room), None, Some(m.hp)),
            ServerMsg::Result(m) => (Some(&m.room), None, None),
            _ => (g.room.as_ref(), g.q, g.hp),
        };
        assert_eq!((g.room.as_ref(), g.q, g.hp), (room, q, hp), "{msg:?}");
        if let ServerMsg::Error(e) = &msg {
            assert_eq!(g.code.as_deref(), Some(e.code.as_str()));
            assert_eq!(g.rid, e.rid);
        }
    }
}

#[test]
fn server_messages_have_the_wire_shape() {
    for (msg, expected) in server_samples() {
        let map = wire_map(&encode(&msg));
        assert_eq!(keys(&map), set(expected), "{msg:?}");
        assert_eq!(map["t"].as_str(), Some(msg.type_name()));
    }
}

#[test]
fn server_field_values_on_the_wire() {
    // result.winner None is present as nil, not left out.
    let draw = ServerMsg::Result(MatchResult {
        room: "d1".into(),
        mode: Mode::Duel,
        winner: None,
        standings: vec![],
        victory: None,
        rating: None,
    });
    let map = wire_map(&encode(&draw));
    assert_eq!(map["winner"], Value::Nil);
    assert_eq!(map["mode"].as_str(), Some("duel"));

    // Enums are their snake_case names; error codes are strings.
    let rs = ServerMsg::RoomState(RoomState {
        room: "r".into(),
        mode: Mode::BattleRoyale,
        phase: Phase::Finished,
        players: vec![],
        player_count: 0,
        spectators: 0,
        question: Some(question()),
        boss: None,
        bracket: None,
    });
    let map = wire_map(&encode(&rs));
    assert_eq!(map["mode"].as_str(), Some("battle_royale"));
    assert_eq!(map["phase"].as_str(), Some("finished"));
    // room_state.question carries the same fields as `question` (without `t`).
    assert_map_keys(&map["question"], &["room", "q", "text", "choices", "ms"]);

    let err = wire_map(&encode(&ServerMsg::error(
        Some(9),
        ErrorCode::AlreadyAnswered,
        "x",
    )));
    assert_eq!(err["code"].as_str(), Some("already_answered"));
    assert_eq!(err["rid"].as_u64(), Some(9));

    // Bracket pairings always carry a, b, winner, room (nil while unknown).
    let br = wire_map(&encode(&ServerMsg::Bracket(Bracket {
        room: "t".into(),
        rounds: vec![vec![pairing(Some("u1"), None, None, None)]],
    })));
    let pairing = &br["rounds"][0][0];
    assert_map_keys(pairing, &["a", "b", "winner", "room"]);
    assert_eq!(pairing["b"], Value::Nil);

    // round.gained / round.scores are maps keyed by user id; rating may be negative.
    let round = wire_map(&encode(&ServerMsg::Round(Round {
        room: "r".into(),
        q: 0,
        correct: 1,
        top: vec![Leader {
            id: "u1".into(),
            score: 5,
        }],
        eliminated: None,
        boss: None,
        gained: Some(scores_map(3)),
        scores: Some(scores_map(3)),
    })));
    assert_map_keys(&round["gained"], &["user0", "user1", "user2"]);
    assert_map_keys(&round["top"][0], &["id", "score"]);
    let res = wire_map(&encode(&ServerMsg::Result(MatchResult {
        room: "r".into(),
        mode: Mode::Tournament,
        winner: Some("u1".into()),
        standings: vec![],
        victory: None,
        rating: Some([("u2".to_string(), -7)].into()),
    })));
    assert_eq!(res["rating"]["u2"].as_i64(), Some(-7));
    assert_eq!(res["mode"].as_str(), Some("tournament"));

    // welcome.proto is the integer 1.
    let w = wire_map(&encode(&server_samples()[0].0));
    assert_eq!(w["proto"].as_u64(), Some(1));
}

#[test]
fn decode_error_answers_with_an_error_frame() {
    let bytes = frame(vec![("t", s("nope")), ("rid", u(41))]);
    let e = decode_err(&bytes);
    let map = wire_map(&encode(&e.to_msg()));
    assert_eq!(keys(&map), set(&["t", "rid", "code", "msg"]));
    assert_eq!(map["t"].as_str(), Some("error"));
    assert_eq!(map["code"].as_str(), Some("unknown_type"));
    assert_eq!(map["rid"].as_u64(), Some(41));

    let e = decode_err(b"\xc1");
    let map = wire_map(&encode(&e.to_msg()));
    assert_eq!(keys(&map), set(&["t", "code", "msg"]));
    assert_eq!(map["code"].as_str(), Some("bad_frame"));
}

// ---------------------------------------------------------------------------
// client messages

fn all_options() -> RoomOptions {
    RoomOptions {
        questions: Some(10),
        question_ms: Some(8_000),
        countdown_ms: Some(0),
        between_ms: Some(1_500),
        max_players: Some(100),
        size: Some(8),
        boss_hp: Some(5_000),
        watch: Some(true),
    }
}

/// Every `ClientMsg` variant and the exact keys it has on the wire (without `rid`).
fn client_samples() -> Vec<(ClientMsg, &'static [&'static str])> {
    let mut out: Vec<(ClientMsg, &'static [&'static str])> = vec![
        (ClientMsg::Ping, &["t"]),
        (ClientMsg::Unqueue, &["t"]),
        (
            ClientMsg::Queue {
                mode: Mode::Duel,
                mission: "it_basics".into(),
            },
            &["t", "mode", "mission"],
        ),
        (
            ClientMsg::Create {
                mode: Mode::Raid,
                mission: "demo".into(),
                options: Some(all_options()),
            },
            &["t", "mode", "mission", "options"],
        ),
        (
            ClientMsg::Create {
                mode: Mode::Duel,
                mission: "demo".into(),
                options: Some(RoomOptions {
                    questions: Some(3),
                    ..RoomOptions::default()
                }),
            },
            &["t", "mode", "mission", "options"],
        ),
        (
            ClientMsg::Create {
                mode: Mode::Duel,
                mission: "demo".into(),
                options: Some(RoomOptions::default()),
            },
            &["t", "mode", "mission", "options"],
        ),
        (ClientMsg::Join { room: "r-1".into() }, &["t", "room"]),
        (ClientMsg::Spectate { room: "r1".into() }, &["t", "room"]),
        (ClientMsg::Leave { room: "r1".into() }, &["t", "room"]),
        (ClientMsg::Start { room: "r1".into() }, &["t", "room"]),
        (
            ClientMsg::Answer {
                room: "r1".into(),
                q: 0,
                choice: 3,
            },
            &["t", "room", "q", "choice"],
        ),
        (
            ClientMsg::Answer {
                room: "x".repeat(MAX_ID_LEN),
                q: u32::MAX,
                choice: u32::MAX,
            },
            &["t", "room", "q", "choice"],
        ),
    ];
    for mode in Mode::ALL {
        out.push((
            ClientMsg::Create {
                mode,
                mission: "ünïcödé mission".into(),
                options: None,
            },
            &["t", "mode", "mission"],
        ));
    }
    out
}

fn client_variant_index(m: &ClientMsg) -> usize {
    match m {
        ClientMsg::Ping => 0,
        ClientMsg::Queue { .. } => 1,
        ClientMsg::Unqueue => 2,
        ClientMsg::Create { .. } => 3,
        ClientMsg::Join { .. } => 4,
        ClientMsg::Spectate { .. } => 5,
        ClientMsg::Leave { .. } => 6,
        ClientMsg::Start { .. } => 7,
        ClientMsg::Answer { .. } => 8,
    }
}

const RIDS: [Option<u64>; 5] = [None, Some(0), Some(1), Some(70_000), Some(u64::MAX)];

#[test]
fn every_client_variant_is_sampled() {
    let samples = client_samples();
    let covered: BTreeSet<usize> = samples
        .iter()
        .map(|(m, _)| client_variant_index(m))
        .collect();
    assert_eq!(covered, (0..9).collect());
    let names: BTreeSet<&str> = samples.iter().map(|(m, _)| m.type_name()).collect();
    assert_eq!(names, ClientMsg::TYPES.into_iter().collect());
}

#[test]
fn client_messages_round_trip_with_and_without_rid() {
    for (msg, _) in client_samples() {
        for rid in RIDS {
            let bytes = encode_client(rid, &msg);
            let frame = decode_client(&bytes).unwrap_or_else(|e| panic!("{msg:?} {rid:?}: {e}"));
            assert_eq!(
                frame,
                ClientFrame {
                    rid,
                    msg: msg.clone()
                }
            );
        }
    }
}

#[test]
fn client_messages_have_the_wire_shape() {
    for (msg, expected) in client_samples() {
        for rid in RIDS {
            let map = wire_map(&encode_client(rid, &msg));
            let mut want = set(expected);
            if rid.is_some() {
                want.insert("rid");
            }
            assert_eq!(keys(&map), want, "{msg:?} {rid:?}");
            assert_eq!(map["t"].as_str(), Some(msg.type_name()));
            assert_eq!(map.get("rid").and_then(Value::as_u64), rid);
        }
    }
    // Absent options are left out of the options map, too.
    let msg = ClientMsg::Create {
        mode: Mode::Tournament,
        mission: "m".into(),
        options: Some(RoomOptions {
            size: Some(4),
            watch: Some(false),
            ..RoomOptions::default()
        }),
    };
    let map = wire_map(&encode_client(None, &msg));
    assert_eq!(map["mode"].as_str(), Some("tournament"));
    assert_map_keys(&map["options"], &["size", "watch"]);
    let map = wire_map(&encode_client(None, &client_samples()[3].0));
    assert_map_keys(
        &map["options"],
        &[
            "questions",
            "question_ms",
            "countdown_ms",
            "between_ms",
            "max_players",
            "size",
            "boss_hp",
            "watch",
        ],
    );
}

#[test]
fn foreign_encodings_decode() {
    // Key order is free, rid may come first, integers may use any width or a
    // signed type, and options may be nil.
    let bytes = frame(vec![
        ("rid", u(5)),
        ("choice", Value::from(2i64)),
        ("q", u(1)),
        ("room", s("r1")),
        ("t", s("answer")),
    ]);
    let f = decode_client(&bytes).unwrap();
    assert_eq!(f.rid, Some(5));
    assert_eq!(
        f.msg,
        ClientMsg::Answer {
            room: "r1".into(),
            q: 1,
            choice: 2
        }
    );

    // choice as int64 (0xd3), q as uint32 (0xce), rid as uint16 (0xcd).
    let mut raw = vec![0x85];
    raw.extend(b"\xa1t\xa6answer\xa4room\xa2r1");
    raw.extend(b"\xa1q\xce\x00\x00\x00\x04");
    raw.extend(b"\xa6choice\xd3\x00\x00\x00\x00\x00\x00\x00\x01");
    raw.extend(b"\xa3rid\xcd\x01\x00");
    let f = decode_client(&raw).unwrap();
    assert_eq!(f.rid, Some(256));
    assert_eq!(
        f.msg,
        ClientMsg::Answer {
            room: "r1".into(),
            q: 4,
            choice: 1
        }
    );

    let bytes = frame(vec![
        ("t", s("create")),
        ("mode", s("battle_royale")),
        ("mission", s("demo")),
        ("options", Value::Nil),
    ]);
    assert_eq!(
        decode_client(&bytes).unwrap().msg,
        ClientMsg::Create {
            mode: Mode::BattleRoyale,
            mission: "demo".into(),
            options: None
        }
    );
    // A bin holding UTF-8 is accepted where a string is expected; bytes that are
    // not UTF-8 are not.
    let bytes = frame(vec![
        ("t", s("join")),
        ("room", Value::Binary(b"r1".to_vec())),
    ]);
    assert_eq!(
        decode_client(&bytes).unwrap().msg,
        ClientMsg::Join { room: "r1".into() }
    );
    let raw = b"\x83\xa1t\xa4join\xa3rid\x09\xa4room\xa2\xff\xfe";
    assert_code(raw, ErrorCode::Invalid, Some(9));
}

// ---------------------------------------------------------------------------
// classification of bad client frames

#[test]
fn not_one_map_is_bad_frame() {
    let ping = encode_client(Some(1), &ClientMsg::Ping);
    let mut two = ping.clone();
    two.extend_from_slice(&ping);
    let mut trailing = ping.clone();
    trailing.push(0x00);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("json text", br#"{"t":"ping","rid":1}"#.to_vec()),
        ("plain text", b"hello".to_vec()),
        ("msgpack string", to_bytes(&s("ping"))),
        ("msgpack int", to_bytes(&u(1))),
        ("nil", vec![0xc0]),
        ("never-used marker", vec![0xc1]),
        ("garbage", vec![0xc1, 0xff, 0x00, 0x13, 0x37]),
        ("truncated map", ping[..ping.len() - 1].to_vec()),
        ("map header only", vec![0x82]),
        ("two maps", two),
        ("map then a byte", trailing),
        ("array", to_bytes(&Value::Array(vec![s("t"), s("ping")]))),
        (
            "array of a map",
            to_bytes(&Value::Array(vec![Value::Map(vec![(s("t"), s("ping"))])])),
        ),
        (
            "bin",
            to_bytes(&Value::Binary(b"\x81\xa1t\xa4ping".to_vec())),
        ),
        ("huge array header", vec![0xdd, 0xff, 0xff, 0xff, 0xff]),
        ("huge map header", vec![0xdf, 0xff, 0xff, 0xff, 0xff]),
        (
            "huge str",
            vec![0x81, 0xa1, b't', 0xdb, 0xff, 0xff, 0xff, 0xff, b'p'],
        ),
        (
            "huge bin value",
            vec![0x81, 0xa1, b'x', 0xc6, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "non-string key",
            to_bytes(&Value::Map(vec![(s("t"), s("ping")), (u(1), u(2))])),
        ),
        (
            "nil key",
            to_bytes(&Value::Map(vec![(Value::Nil, u(2)), (s("t"), s("ping"))])),
        ),
    ];
    for (name, bytes) in cases {
        let e = decode_err(&bytes);
        assert_eq!(e.code, ErrorCode::BadFrame, "{name}: {e}");
        assert_eq!(e.rid, None, "{name}");
    }
}

#[test]
fn missing_or_unknown_t_is_unknown_type() {
    let cases: Vec<(&str, Vec<(&str, Value)>)> = vec![
        ("empty map", vec![]),
        ("no t", vec![("room", s("r1"))]),
        ("t int", vec![("t", u(1))]),
        ("t nil", vec![("t", Value::Nil)]),
        ("t bool", vec![("t", Value::Boolean(true))]),
        ("t array", vec![("t", Value::Array(vec![s("ping")]))]),
        ("t nope", vec![("t", s("nope"))]),
        ("t empty", vec![("t", s(""))]),
        ("t case", vec![("t", s("Ping"))]),
        ("t with space", vec![("t", s("ping "))]),
        ("t server type", vec![("t", s("pong"))]),
        ("t server type ok", vec![("t", s("ok"))]),
        ("T key", vec![("T", s("ping"))]),
    ];
    for (name, entries) in cases {
        assert_code(&frame(entries.clone()), ErrorCode::UnknownType, None);
        // A valid rid is echoed, wherever it sits in the map.
        let mut with_rid = entries.clone();
        with_rid.push(("rid", u(77)));
        let e = assert_code(&frame(with_rid), ErrorCode::UnknownType, Some(77));
        assert!(!e.msg.is_empty(), "{name}");
        let mut rid_first = vec![("rid", u(u64::MAX))];
        rid_first.extend(entries);
        assert_code(&frame(rid_first), ErrorCode::UnknownType, Some(u64::MAX));
    }
    // A long unknown t is not echoed in full.
    let long = "x".repeat(10_000);
    let e = assert_code(&frame(vec![("t", s(&long))]), ErrorCode::UnknownType, None);
    assert!(e.msg.len() < 200, "{}", e.msg);
}

#[test]
fn wrong_or_missing_fields_are_invalid_with_rid() {
    let answer = |room: Value, q: Value, choice: Value| {
        vec![
            ("t", s("answer")),
            ("room", room),
            ("q", q),
            ("choice", choice),
        ]
    };
    let cases: Vec<(&str, Vec<(&str, Value)>)> = vec![
        ("choice string", answer(s("r1"), u(0), s("x"))),
        ("choice negative", answer(s("r1"), u(0), Value::from(-1))),
        ("choice float", answer(s("r1"), u(0), Value::F64(1.0))),
        ("choice nil", answer(s("r1"), u(0), Value::Nil)),
        ("choice too big", answer(s("r1"), u(0), u(1 << 32))),
        ("q negative", answer(s("r1"), Value::from(-3), u(0))),
        ("q string", answer(s("r1"), s("0"), u(0))),
        ("room int", answer(u(12), u(0), u(0))),
        ("room empty", answer(s(""), u(0), u(0))),
        (
            "room too long",
            answer(s(&"r".repeat(MAX_ID_LEN + 1)), u(0), u(0)),
        ),
        ("room control char", answer(s("r\n1"), u(0), u(0))),
        (
            "answer without choice",
            vec![("t", s("answer")), ("room", s("r1")), ("q", u(0))],
        ),
        ("answer without anything", vec![("t", s("answer"))]),
        ("join without room", vec![("t", s("join"))]),
        (
            "join room nil",
            vec![("t", s("join")), ("room", Value::Nil)],
        ),
        ("spectate without room", vec![("t", s("spectate"))]),
        ("leave without room", vec![("t", s("leave"))]),
        (
            "start room array",
            vec![("t", s("start")), ("room", Value::Array(vec![s("r")]))],
        ),
        (
            "queue without mission",
            vec![("t", s("queue")), ("mode", s("duel"))],
        ),
        (
            "queue without mode",
            vec![("t", s("queue")), ("mission", s("m"))],
        ),
        (
            "queue mission empty",
            vec![("t", s("queue")), ("mode", s("duel")), ("mission", s(""))],
        ),
        (
            "create mode chess",
            vec![
                ("t", s("create")),
                ("mode", s("chess")),
                ("mission", s("m")),
            ],
        ),
        (
            "create mode wrong case",
            vec![("t", s("create")), ("mode", s("Duel")), ("mission", s("m"))],
        ),
        (
            "create mode int",
            vec![("t", s("create")), ("mode", u(0)), ("mission", s("m"))],
        ),
        (
            "create options not a map",
            vec![
                ("t", s("create")),
                ("mode", s("duel")),
                ("mission", s("m")),
                ("options", s("fast")),
            ],
        ),
        (
            "create options.questions negative",
            vec![
                ("t", s("create")),
                ("mode", s("duel")),
                ("mission", s("m")),
                (
                    "options",
                    Value::Map(vec![(s("questions"), Value::from(-1))]),
                ),
            ],
        ),
        (
            "create options.watch int",
            vec![
                ("t", s("create")),
                ("mode", s("duel")),
                ("mission", s("m")),
                ("options", Value::Map(vec![(s("watch"), u(1))])),
            ],
        ),
        (
            "create options.question_ms string",
            vec![
                ("t", s("create")),
                ("mode", s("raid")),
                ("mission", s("m")),
                ("options", Value::Map(vec![(s("question_ms"), s("100"))])),
            ],
        ),
        (
            "create options with an integer key",
            vec![
                ("t", s("create")),
                ("mode", s("duel")),
                ("mission", s("m")),
                ("options", Value::Map(vec![(u(0), u(5))])),
            ],
        ),
        (
            "create options as an array",
            vec![
                ("t", s("create")),
                ("mode", s("duel")),
                ("mission", s("m")),
                ("options", Value::Array(vec![u(5), u(100)])),
            ],
        ),
        (
            "create options as an empty array",
            vec![
                ("t", s("create")),
                ("mode", s("duel")),
                ("mission", s("m")),
                ("options", Value::Array(vec![])),
            ],
        ),
        (
            "create options with a binary key",
            vec![
                ("t", s("create")),
                ("mode", s("duel")),
                ("mission", s("m")),
                (
                    "options",
                    Value::Map(vec![(Value::Binary(b"questions".to_vec()), u(5))]),
                ),
            ],
        ),
    ];
    for (name, entries) in cases {
        let e = assert_code(&frame(entries.clone()), ErrorCode::Invalid, None);
        assert!(!e.msg.is_empty(), "{name}");
        let mut with_rid = entries.clone();
        with_rid.push(("rid", u(12)));
        let e = decode_err(&frame(with_rid));
        assert_eq!(
            (e.code, e.rid),
            (ErrorCode::Invalid, Some(12)),
            "{name}: {e}"
        );
        let mut rid_first = vec![("rid", u(0))];
        rid_first.extend(entries);
        let e = decode_err(&frame(rid_first));
        assert_eq!(
            (e.code, e.rid),
            (ErrorCode::Invalid, Some(0)),
            "{name}: {e}"
        );
    }
}

#[test]
fn a_bad_rid_is_invalid_and_not_echoed() {
    for rid in [Value::from(-1), s("7"), Value::F64(7.0), Value::Nil] {
        let bytes = frame(vec![("t", s("ping")), ("rid", rid.clone())]);
        assert_code(&bytes, ErrorCode::Invalid, None);
        // An unknown t still wins over a bad rid.
        let bytes = frame(vec![("t", s("nope")), ("rid", rid)]);
        assert_code(&bytes, ErrorCode::UnknownType, None);
    }
}

#[test]
fn options_out_of_range_decode_and_validate_catches_them() {
    let bytes = frame(vec![
        ("t", s("create")),
        ("mode", s("duel")),
        ("mission", s("m")),
        ("options", Value::Map(vec![(s("questions"), u(0))])),
        ("rid", u(2)),
    ]);
    let f = decode_client(&bytes).unwrap();
    let ClientMsg::Create {
        mode,
        options: Some(options),
        ..
    } = f.msg
    else {
        panic!("{f:?}");
    };
    assert_eq!(options.questions, Some(0));
    let err = options.validate(mode).unwrap_err();
    assert!(err.contains("questions"), "{err}");
}

#[test]
fn room_options_validate_ranges() {
    fn check(mode: Mode, o: RoomOptions, ok: bool, field: &str) {
        let r = o.validate(mode);
        match (ok, &r) {
            (true, Ok(())) => {}
            (false, Err(msg)) => assert!(msg.contains(field), "{field}: {msg}"),
            _ => panic!("{mode:?} {o:?}: {r:?}, expected ok={ok}"),
        }
    }
    let d = RoomOptions::default;
    for mode in Mode::ALL {
        check(mode, d(), true, "");
        for (v, ok) in [
            (0, false),
            (1, true),
            (limits::MAX_QUESTIONS, true),
            (limits::MAX_QUESTIONS + 1, false),
        ] {
            check(
                mode,
                RoomOptions {
                    questions: Some(v),
                    ..d()
                },
                ok,
                "questions",
            );
        }
        for (v, ok) in [
            (0, false),
            (limits::MIN_QUESTION_MS - 1, false),
            (limits::MIN_QUESTION_MS, true),
            (limits::MAX_QUESTION_MS, true),
            (limits::MAX_QUESTION_MS + 1, false),
            (u64::MAX, false),
        ] {
            check(
                mode,
                RoomOptions {
                    question_ms: Some(v),
                    ..d()
                },
                ok,
                "question_ms",
            );
        }
        for (v, ok) in [
            (0, true),
            (limits::MAX_PAUSE_MS, true),
            (limits::MAX_PAUSE_MS + 1, false),
        ] {
            check(
                mode,
                RoomOptions {
                    countdown_ms: Some(v),
                    ..d()
                },
                ok,
                "countdown_ms",
            );
            check(
                mode,
                RoomOptions {
                    between_ms: Some(v),
                    ..d()
                },
                ok,
                "between_ms",
            );
        }
        for (v, ok) in [
            (0, false),
            (2, true),
            (3, false),
            (4, true),
            (8, true),
            (16, true),
            (32, false),
        ] {
            check(
                mode,
                RoomOptions {
                    size: Some(v),
                    ..d()
                },
                ok,
                "size",
            );
        }
        for (v, ok) in [
            (0, false),
            (1, true),
            (limits::MAX_BOSS_HP, true),
            (limits::MAX_BOSS_HP + 1, false),
        ] {
            check(
                mode,
                RoomOptions {
                    boss_hp: Some(v),
                    ..d()
                },
                ok,
                "boss_hp",
            );
        }
        check(
            mode,
            RoomOptions {
                watch: Some(true),
                ..d()
            },
            true,
            "",
        );
        check(mode, all_options_for(mode), true, "");
    }
    // max_players: a duel has exactly 2; battle royale and raid 1..=MAX_PLAYERS;
    // a tournament's size comes from `size`, so max_players is not checked.
    for (v, ok) in [(1, false), (2, true), (3, false)] {
        check(
            Mode::Duel,
            RoomOptions {
                max_players: Some(v),
                ..d()
            },
            ok,
            "max_players",
        );
    }
    for mode in [Mode::BattleRoyale, Mode::Raid] {
        for (v, ok) in [
            (0, false),
            (1, true),
            (limits::MAX_PLAYERS, true),
            (limits::MAX_PLAYERS + 1, false),
        ] {
            check(
                mode,
                RoomOptions {
                    max_players: Some(v),
                    ..d()
                },
                ok,
                "max_players",
            );
        }
    }
    check(
        Mode::Tournament,
        RoomOptions {
            max_players: Some(0),
            ..d()
        },
        true,
        "",
    );
}

fn all_options_for(mode: Mode) -> RoomOptions {
    RoomOptions {
        max_players: Some(if mode == Mode::Duel { 2 } else { 100 }),
        ..all_options()
    }
}

#[test]
fn unknown_keys_are_ignored() {
    let extra = || {
        vec![
            ("zzz", s("x")),
            ("n", Value::Nil),
            (
                "nested",
                Value::Map(vec![(s("a"), Value::Array(vec![u(1), Value::F32(2.5)]))]),
            ),
            ("bin", Value::Binary(vec![0, 1, 2])),
            ("ext", Value::Ext(5, vec![9, 9])),
            ("intkeys", Value::Map(vec![(u(1), u(2))])),
        ]
    };
    for (msg, _) in client_samples() {
        let mut map = wire_map(&encode_client(Some(8), &msg));
        for (k, v) in extra() {
            map.insert(k.to_owned(), v);
        }
        let bytes = to_bytes(&Value::Map(
            map.into_iter().map(|(k, v)| (s(&k), v)).collect(),
        ));
        let f = decode_client(&bytes).unwrap_or_else(|e| panic!("{msg:?}: {e}"));
        assert_eq!(f, ClientFrame { rid: Some(8), msg });
    }
    // Unknown keys inside options are ignored too.
    let bytes = frame(vec![
        ("t", s("create")),
        ("mode", s("raid")),
        ("mission", s("m")),
        (
            "options",
            Value::Map(vec![(s("boss_hp"), u(9)), (s("colour"), s("red"))]),
        ),
    ]);
    let f = decode_client(&bytes).unwrap();
    assert_eq!(
        f.msg,
        ClientMsg::Create {
            mode: Mode::Raid,
            mission: "m".into(),
            options: Some(RoomOptions {
                boss_hp: Some(9),
                ..RoomOptions::default()
            })
        }
    );
}

/// `levels` nested arrays (or maps) around the string "s", as raw bytes.
fn nested(levels: usize, map: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(levels * 3 + 2);
    for _ in 0..levels {
        if map {
            out.extend_from_slice(&[0x81, 0xa1, b'k']);
        } else {
            out.push(0x91);
        }
    }
    out.extend_from_slice(&[0xa1, b's']);
    out
}

/// `{t: "ping", rid: 4, x: <value>}` with `value` as raw bytes.
fn ping_with(value: &[u8]) -> Vec<u8> {
    let mut out = vec![
        0x83, 0xa1, b't', 0xa4, b'p', b'i', b'n', b'g', 0xa3, b'r', b'i', b'd', 0x04,
    ];
    out.extend_from_slice(&[0xa1, b'x']);
    out.extend_from_slice(value);
    out
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    // Run on a small stack: unbounded recursion over 10,000 levels would crash it.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            for map in [false, true] {
                for levels in [10_000, 100_000] {
                    let e = decode_err(&ping_with(&nested(levels, map)));
                    assert_eq!(e.code, ErrorCode::BadFrame, "{e}");
                    let e = decode_err(&nested(levels, map));
                    assert_eq!(e.code, ErrorCode::BadFrame, "{e}");
                }
                // Inside options, too.
                let mut bytes = vec![0x83, 0xa1, b't', 0xa6];
                bytes.extend_from_slice(b"create");
                bytes.extend_from_slice(b"\xa4mode\xa4duel\xa7mission\xa1m");
                bytes[0] = 0x84;
                bytes.extend_from_slice(b"\xa7options");
                bytes.extend_from_slice(&nested(10_000, map));
                assert!(decode_client(&bytes).is_err());
            }
            // Modest nesting in an ignored key is fine.
            for map in [false, true] {
                let f = decode_client(&ping_with(&nested(MAX_ACCEPTED_NESTING, map)))
                    .unwrap_or_else(|e| panic!("map={map}: {e}"));
                assert_eq!(f.msg, ClientMsg::Ping);
                assert_eq!(f.rid, Some(4));
            }
        })
        .unwrap();
    handle.join().expect("decoding deep input must not crash");
}

/// Containers that may nest inside a top-level value (documented in README.md).
const MAX_ACCEPTED_NESTING: usize = 5;

#[test]
fn nesting_limit_is_as_documented() {
    for map in [false, true] {
        assert!(decode_client(&ping_with(&nested(MAX_ACCEPTED_NESTING, map))).is_ok());
        let e = decode_err(&ping_with(&nested(MAX_ACCEPTED_NESTING + 1, map)));
        assert_eq!(e.code, ErrorCode::BadFrame);
    }
}

#[test]
fn a_full_size_frame_of_small_values_decodes() {
    // A 16 KB frame of ~16,000 nils in an ignored key costs linear work and memory.
    let mut value = vec![0xdc, 0x3e, 0x80]; // array16 of 16,000
    value.extend(std::iter::repeat_n(0xc0, 16_000));
    let bytes = ping_with(&value);
    assert!(bytes.len() <= limits::DEFAULT_MAX_FRAME_BYTES + 64);
    assert_eq!(decode_client(&bytes).unwrap().msg, ClientMsg::Ping);
}

#[test]
fn repeated_keys() {
    // A repeated t or field is invalid (rid still echoed); the last t decides
    // between unknown_type and invalid; a repeated rid takes the last one.
    let bytes = frame(vec![("t", s("ping")), ("t", s("ping")), ("rid", u(1))]);
    assert_code(&bytes, ErrorCode::Invalid, Some(1));
    let bytes = frame(vec![("t", s("ping")), ("t", s("nope")), ("rid", u(1))]);
    assert_code(&bytes, ErrorCode::UnknownType, Some(1));
    let bytes = frame(vec![
        ("t", s("join")),
        ("room", s("a")),
        ("room", s("b")),
        ("rid", u(3)),
    ]);
    assert_code(&bytes, ErrorCode::Invalid, Some(3));
    let bytes = frame(vec![("t", s("ping")), ("rid", u(1)), ("rid", u(2))]);
    assert_eq!(decode_client(&bytes).unwrap().rid, Some(2));
}

#[test]
fn mission_validation_limits() {
    let q = |text: &str, choices: usize, correct: u32| Question {
        text: text.into(),
        choices: (0..choices).map(|i| format!("c{i}")).collect(),
        correct,
        difficulty: None,
    };
    let m = |questions: Vec<Question>| Mission {
        id: "it_basics".into(),
        world: "it".into(),
        title: "IT Basics".into(),
        difficulty: "easy".into(),
        questions,
    };
    assert!(m(vec![q("a", 4, 2)]).validate().is_ok());
    assert!(m(vec![q("a", 2, 1); 50]).validate().is_ok());
    assert!(m(vec![q("a", 6, 5)]).validate().is_ok());
    assert!(m(vec![]).validate().is_err());
    assert!(m(vec![q("a", 2, 0); 51]).validate().is_err());
    assert!(m(vec![q("a", 1, 0)]).validate().is_err());
    assert!(m(vec![q("a", 7, 0)]).validate().is_err());
    assert!(m(vec![q("a", 4, 4)]).validate().is_err());
    assert!(m(vec![q("", 4, 0)]).validate().is_err());
    assert!(m(vec![q(&"x".repeat(2000), 4, 0)]).validate().is_ok());
    assert!(m(vec![q(&"x".repeat(2001), 4, 0)]).validate().is_err());
    let mut bad = m(vec![q("a", 2, 0)]);
    bad.questions[0].choices[1] = String::new();
    assert!(bad.validate().is_err());
    for field in 0..4 {
        for (len, ok) in [(0, false), (1, true), (128, true), (129, false)] {
            let mut x = m(vec![q("a", 2, 0)]);
            let v = "w".repeat(len);
            match field {
                0 => x.id = v,
                1 => x.world = v,
                2 => x.title = v,
                _ => x.difficulty = v,
            }
            assert_eq!(x.validate().is_ok(), ok, "field {field} len {len}");
        }
    }
}

// ---------------------------------------------------------------------------
// fuzzing

const DECODE_CODES: [ErrorCode; 3] = [
    ErrorCode::BadFrame,
    ErrorCode::UnknownType,
    ErrorCode::Invalid,
];

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        any::<u64>().prop_map(Value::from),
        (0u64..20).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::F64),
        any::<f32>().prop_map(Value::F32),
        "[a-z_]{0,12}".prop_map(|x| Value::from(x.as_str())),
        prop::sample::select(vec![
            "ping",
            "answer",
            "duel",
            "raid",
            "battle_royale",
            "tournament",
            "chess",
            "r1",
            "",
        ])
        .prop_map(Value::from),
        ".{0,40}".prop_map(|x| Value::from(x.as_str())),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Binary),
        (any::<i8>(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(t, d)| Value::Ext(t, d)),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    arb_scalar().prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner.clone()), 0..6).prop_map(Value::Map),
            prop::collection::vec((inner.clone(), inner), 0..3).prop_map(Value::Map),
        ]
    })
}

const FIELD_NAMES: [&str; 16] = [
    "t",
    "rid",
    "room",
    "q",
    "choice",
    "mode",
    "mission",
    "options",
    "questions",
    "question_ms",
    "countdown_ms",
    "between_ms",
    "max_players",
    "size",
    "boss_hp",
    "watch",
];

fn arb_key() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(FIELD_NAMES.to_vec()).prop_map(Value::from),
        1 => "[a-z]{0,6}".prop_map(|x| Value::from(x.as_str())),
    ]
}

/// A map frame with string keys (no key repeated): usually a known `t`, often
/// a rid, and a random mix of the contract's field names and others.
fn arb_map_frame() -> impl Strategy<Value = BTreeMap<String, Value>> {
    let t = prop_oneof![
        6 => prop::sample::select(ClientMsg::TYPES.to_vec()).prop_map(|x| Some(Value::from(x))),
        1 => arb_scalar().prop_map(Some),
        1 => Just(None),
    ];
    let rid = prop_oneof![
        2 => Just(None),
        2 => any::<u64>().prop_map(|r| Some(Value::from(r))),
        1 => arb_scalar().prop_map(Some),
    ];
    let fields = prop::collection::btree_map(
        prop_oneof![
            4 => prop::sample::select(FIELD_NAMES[2..].to_vec()).prop_map(String::from),
            1 => "[a-z]{1,6}",
        ],
        prop_oneof![3 => arb_scalar(), 1 => arb_value()],
        0..8,
    );
    (t, rid, fields).prop_map(|(t, rid, mut fields)| {
        fields.remove("t");
        fields.remove("rid");
        if let Some(t) = t {
            fields.insert("t".into(), t);
        }
        if let Some(rid) = rid {
            fields.insert("rid".into(), rid);
        }
        fields
    })
}

/// A valid client frame with one field replaced by an arbitrary value.
fn arb_mutated_frame() -> impl Strategy<Value = (BTreeMap<String, Value>, String, Value)> {
    let samples: Vec<ClientMsg> = client_samples().into_iter().map(|(m, _)| m).collect();
    (
        prop::sample::select(samples),
        any::<Option<u64>>(),
        prop::sample::select(FIELD_NAMES.to_vec()),
        prop_oneof![arb_scalar(), arb_value()],
    )
        .prop_map(|(msg, rid, key, value)| {
            let map = wire_map(&encode_client(rid, &msg));
            (map, key.to_owned(), value)
        })
}

fn check_map_frame(map: &BTreeMap<String, Value>) -> Result<(), TestCaseError> {
    let bytes = to_bytes(&Value::Map(
        map.iter().map(|(k, v)| (s(k), v.clone())).collect(),
    ));
    let result = decode_client(&bytes);
    let t = map.get("t").map(|t| t.as_str());
    let known_t = matches!(t, Some(Some(t)) if ClientMsg::TYPES.contains(&t));
    let rid = map.get("rid").and_then(Value::as_u64);
    match result {
        Ok(frame) => {
            prop_assert!(known_t);
            prop_assert_eq!(frame.rid, rid);
            prop_assert_eq!(Some(Some(frame.msg.type_name())), t);
            // What decoded re-encodes to the same frame.
            let again = decode_client(&encode_client(frame.rid, &frame.msg));
            prop_assert_eq!(again, Ok(frame));
        }
        Err(e) => {
            prop_assert!(DECODE_CODES.contains(&e.code), "{:?}", e);
            // String keys and bounded nesting: always a map, never bad_frame.
            prop_assert_ne!(e.code, ErrorCode::BadFrame, "{:?}", e);
            if known_t {
                prop_assert_eq!(e.code, ErrorCode::Invalid, "{:?}", e);
            } else {
                prop_assert_eq!(e.code, ErrorCode::UnknownType, "{:?}", e);
            }
            // A valid rid is echoed; an invalid one never is.
            let rid_ok = map.get("rid").is_none_or(|r| r.as_u64().is_some());
            if rid_ok {
                prop_assert_eq!(e.rid, rid, "{:?}", e);
            } else {
                prop_assert_eq!(e.rid, None);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..20_000)) {
        if let Err(e) = decode_client(&bytes) {
            prop_assert!(DECODE_CODES.contains(&e.code), "{:?}", e);
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_map_header_never_panic(
        header in prop::sample::select(vec![0x80u8, 0x81, 0x83, 0x8f, 0xde, 0xdf]),
        bytes in prop::collection::vec(any::<u8>(), 0..2_000),
    ) {
        let mut frame = vec![header];
        frame.extend(bytes);
        if let Err(e) = decode_client(&frame) {
            prop_assert!(DECODE_CODES.contains(&e.code), "{:?}", e);
        }
    }

    #[test]
    fn truncations_and_bit_flips_of_valid_frames_never_panic(
        msg in prop::sample::select(client_samples().into_iter().map(|(m, _)| m).collect::<Vec<_>>()),
        rid in any::<Option<u64>>(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let bytes = encode_client(rid, &msg);
        let _ = decode_client(&bytes[..cut.index(bytes.len())]);
        let mut flipped = bytes.clone();
        let i = flip.index(flipped.len());
        flipped[i] ^= 1 << bit;
        if let Err(e) = decode_client(&flipped) {
            prop_assert!(DECODE_CODES.contains(&e.code), "{:?}", e);
        }
    }

    #[test]
    fn arbitrary_maps_classify(map in arb_map_frame()) {
        check_map_frame(&map)?;
    }

    #[test]
    fn mutated_valid_frames_classify((mut map, key, value) in arb_mutated_frame()) {
        map.insert(key, value);
        check_map_frame(&map)?;
    }

    #[test]
    fn arbitrary_values_never_panic(value in arb_value()) {
        let bytes = to_bytes(&value);
        if let Err(e) = decode_client(&bytes) {
            prop_assert!(DECODE_CODES.contains(&e.code), "{:?}", e);
        }
    }
}
