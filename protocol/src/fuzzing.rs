//! The `decode_client` fuzz check, shared by the fuzz target (`fuzz/`) and the
//! test that runs the fuzz corpus (`tests/codec/fuzz_corpus.rs`), so both hold
//! every input to the same invariants. Not part of the crate's API.

use crate::codec::{decode_client, encode, encode_client};
use crate::error::ErrorCode;
use crate::limits::valid_id;
use crate::messages::{ClientMsg, Mode, RoomOptions};

/// Longest `DecodeError::msg`: the codec quotes at most 32 characters of an
/// unknown `t` and 120 of a field error, so an `error` frame never grows with
/// the frame it answers.
pub const MAX_ERROR_MSG_CHARS: usize = 160;

/// Feeds `bytes` to [`decode_client`] and panics unless: it returns (no panic,
/// no stack overflow); a failure carries one of the three decoding codes, a
/// short message, no `rid` for `bad_frame`, and its `error` frame encodes; a
/// success holds valid ids, re-encodes with [`encode_client`] to a frame no
/// larger than the input that decodes to the same frame, and that encoding
/// is a fixed point (encoding the decoded re-encoding gives the same bytes).
pub fn check_decode_client(bytes: &[u8]) {
    let frame = match decode_client(bytes) {
        Ok(frame) => frame,
        Err(e) => {
            assert!(
                matches!(
                    e.code,
                    ErrorCode::BadFrame | ErrorCode::UnknownType | ErrorCode::Invalid
                ),
                "decode_client answered {:?}, not a decoding code",
                e.code
            );
            assert!(
                e.msg.chars().count() <= MAX_ERROR_MSG_CHARS,
                "error message of {} chars: {:?}",
                e.msg.chars().count(),
                e.msg
            );
            if e.code == ErrorCode::BadFrame {
                assert_eq!(e.rid, None, "bad_frame echoed a rid");
            }
            let _ = encode(&e.to_msg());
            return;
        }
    };
    match &frame.msg {
        ClientMsg::Queue { mission, .. } | ClientMsg::Create { mission, .. } => {
            assert!(
                valid_id(mission),
                "decoded an invalid mission id {mission:?}"
            );
        }
        ClientMsg::Join { room }
        | ClientMsg::Spectate { room }
        | ClientMsg::Leave { room }
        | ClientMsg::Start { room }
        | ClientMsg::Answer { room, .. } => {
            assert!(valid_id(room), "decoded an invalid room id {room:?}");
        }
        ClientMsg::Ping | ClientMsg::Unqueue => {}
    }
    let again = encode_client(frame.rid, &frame.msg);
    assert!(
        again.len() <= bytes.len(),
        "{frame:?} re-encodes to {} bytes, more than the {} it came from",
        again.len(),
        bytes.len()
    );
    match decode_client(&again) {
        Ok(back) => assert_eq!(back, frame, "re-encoding changed the frame"),
        Err(e) => panic!("{frame:?} re-encodes to a frame that fails: {e}"),
    }
    assert_eq!(
        encode_client(frame.rid, &frame.msg),
        again,
        "encoding is not deterministic"
    );
}

/// Valid client frames of every message type, with and without `rid`, named
/// after what they hold: the seeds of the `decode_client` corpus.
pub fn seed_frames() -> Vec<(String, Vec<u8>)> {
    let options = RoomOptions {
        questions: Some(10),
        question_ms: Some(8_000),
        countdown_ms: Some(0),
        between_ms: Some(1_500),
        max_players: Some(100),
        size: Some(8),
        boss_hp: Some(5_000),
        watch: Some(true),
    };
    let mut msgs = vec![
        ("ping", ClientMsg::Ping),
        ("unqueue", ClientMsg::Unqueue),
        ("join", ClientMsg::Join { room: "r1".into() }),
        ("spectate", ClientMsg::Spectate { room: "r1".into() }),
        ("leave", ClientMsg::Leave { room: "r1".into() }),
        ("start", ClientMsg::Start { room: "r1".into() }),
        (
            "answer",
            ClientMsg::Answer {
                room: "r1".into(),
                q: 2,
                choice: 1,
            },
        ),
        (
            "create-all-options",
            ClientMsg::Create {
                mode: Mode::Raid,
                mission: "demo".into(),
                options: Some(options),
            },
        ),
        (
            "create-empty-options",
            ClientMsg::Create {
                mode: Mode::Tournament,
                mission: "demo".into(),
                options: Some(RoomOptions::default()),
            },
        ),
    ];
    for mode in Mode::ALL {
        msgs.push((
            "queue",
            ClientMsg::Queue {
                mode,
                mission: "it_basics".into(),
            },
        ));
        msgs.push((
            "create",
            ClientMsg::Create {
                mode,
                mission: "it_basics".into(),
                options: None,
            },
        ));
    }
    let mut out = Vec::new();
    for (name, msg) in msgs {
        let mode = match &msg {
            ClientMsg::Queue { mode, .. } | ClientMsg::Create { mode, .. } => {
                format!("-{}", mode.as_str())
            }
            _ => String::new(),
        };
        for rid in [None, Some(7), Some(u64::MAX)] {
            let rid_name = rid.map_or(String::new(), |r| format!("-rid{r}"));
            let file = format!("seed-{name}{mode}{rid_name}");
            out.push((file, encode_client(rid, &msg)));
        }
    }
    out
}
