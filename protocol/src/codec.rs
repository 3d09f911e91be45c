//! MessagePack framing: one binary frame holds one map with string keys.
//!
//! Decoding a client frame classifies every failure the way WIRE.md §3 asks:
//! bytes that are not exactly one map → `bad_frame`; a missing or unknown `t` →
//! `unknown_type`; wrong or missing fields → `invalid`. The `rid` is recovered
//! whenever the frame is a map, so even an `invalid` answer echoes it.

use bytes::Bytes;
use rmpv::Value;

use crate::error::ErrorCode;
use crate::limits::valid_id;
use crate::messages::{ClientMsg, ServerMsg};

/// A decoded client frame: the message and the `rid` its direct answer echoes.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    pub rid: Option<u64>,
    pub msg: ClientMsg,
}

/// Why a frame could not be decoded, as the `error` frame will say it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {msg}")]
pub struct DecodeError {
    pub code: ErrorCode,
    pub rid: Option<u64>,
    pub msg: String,
}

impl DecodeError {
    fn new(code: ErrorCode, rid: Option<u64>, msg: impl Into<String>) -> Self {
        DecodeError {
            code,
            rid,
            msg: msg.into(),
        }
    }

    /// The `error` frame that answers this failure.
    pub fn to_msg(&self) -> ServerMsg {
        ServerMsg::error(self.rid, self.code, self.msg.clone())
    }
}

/// Nesting deeper than this is refused before it can exhaust the stack.
const MAX_DEPTH: usize = 16;

/// Decodes one client frame (the payload of one binary WebSocket frame).
pub fn decode_client(bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
    let bad = |msg: &str| DecodeError::new(ErrorCode::BadFrame, None, msg);
    let mut cursor = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut cursor, MAX_DEPTH)
        .map_err(|_| bad("not a MessagePack value"))?;
    if !cursor.is_empty() {
        return Err(bad("trailing bytes after the MessagePack map"));
    }
    let Value::Map(entries) = &value else {
        return Err(bad("a frame must be one MessagePack map"));
    };
    let mut t = None;
    let mut rid = None;
    let mut rid_invalid = false;
    for (key, val) in entries {
        match key.as_str() {
            Some("t") => t = Some(val),
            Some("rid") => match val.as_u64() {
                Some(r) => rid = Some(r),
                None => rid_invalid = true,
            },
            Some(_) => {}
            None => return Err(bad("map keys must be strings")),
        }
    }
    let t = match t.map(Value::as_str) {
        Some(Some(t)) if ClientMsg::TYPES.contains(&t) => {
            // Keep a 'static name so `value` can be moved into the typed decode below.
            ClientMsg::TYPES
                .iter()
                .copied()
                .find(|k| *k == t)
                .unwrap_or("?")
        }
        Some(Some(t)) => {
            let shown: String = t.chars().take(32).collect();
            return Err(DecodeError::new(
                ErrorCode::UnknownType,
                rid,
                format!("unknown message type '{shown}'"),
            ));
        }
        Some(None) => {
            return Err(DecodeError::new(
                ErrorCode::UnknownType,
                rid,
                "t must be a string",
            ))
        }
        None => return Err(DecodeError::new(ErrorCode::UnknownType, rid, "missing t")),
    };
    if rid_invalid {
        return Err(DecodeError::new(
            ErrorCode::Invalid,
            None,
            "rid must be an unsigned integer",
        ));
    }
    if t == "create" {
        check_options(entries).map_err(|m| DecodeError::new(ErrorCode::Invalid, rid, m))?;
    }
    let msg: ClientMsg = rmpv::ext::from_value(value).map_err(|e| {
        DecodeError::new(
            ErrorCode::Invalid,
            rid,
            format!("{t}: {}", short(&e.to_string())),
        )
    })?;
    validate_ids(&msg).map_err(|m| DecodeError::new(ErrorCode::Invalid, rid, m))?;
    Ok(ClientFrame { rid, msg })
}

/// `options` must be nil or a map with string keys. Serde's derived struct
/// decoding would otherwise also take an array positionally (`[5]` as
/// `questions: 5`), an integer key as a field's position (`{0: 5}`) and a
/// binary key as a field's name.
fn check_options(entries: &[(Value, Value)]) -> Result<(), &'static str> {
    for (key, val) in entries {
        if key.as_str() == Some("options") {
            match val {
                Value::Nil => {}
                Value::Map(options) => {
                    if options.iter().any(|(k, _)| k.as_str().is_none()) {
                        return Err("create: options keys must be strings");
                    }
                }
                _ => return Err("create: options must be a map"),
            }
        }
    }
    Ok(())
}

fn short(s: &str) -> String {
    s.chars().take(120).collect()
}

fn validate_ids(msg: &ClientMsg) -> Result<(), String> {
    let (field, id) = match msg {
        ClientMsg::Queue { mission, .. } | ClientMsg::Create { mission, .. } => {
            ("mission", mission)
        }
        ClientMsg::Join { room }
        | ClientMsg::Spectate { room }
        | ClientMsg::Leave { room }
        | ClientMsg::Start { room }
        | ClientMsg::Answer { room, .. } => ("room", room),
        ClientMsg::Ping | ClientMsg::Unqueue => return Ok(()),
    };
    if valid_id(id) {
        Ok(())
    } else {
        Err(format!("{field} must be 1-128 printable characters"))
    }
}

/// Encodes a server message once, to be shared by every recipient.
pub fn encode(msg: &ServerMsg) -> Bytes {
    // Invariant: ServerMsg holds only strings, integers, bools, lists and string-keyed
    // maps, all of which MessagePack encodes into a Vec without error.
    let buf = rmp_serde::to_vec_named(msg).expect("a ServerMsg always encodes");
    Bytes::from(buf)
}

/// Encodes a client message with its optional `rid`, as a client would send it.
pub fn encode_client(rid: Option<u64>, msg: &ClientMsg) -> Vec<u8> {
    // Invariant: ClientMsg is plain data and always encodes; decoding our own
    // encoding back into a Value cannot fail.
    let named = rmp_serde::to_vec_named(msg).expect("a ClientMsg always encodes");
    let Some(rid) = rid else { return named };
    let mut value = rmpv::decode::read_value(&mut &named[..]).expect("own encoding decodes");
    if let Value::Map(entries) = &mut value {
        entries.push((Value::from("rid"), Value::from(rid)));
    }
    let mut out = Vec::with_capacity(named.len() + 12);
    rmpv::encode::write_value(&mut out, &value).expect("writing to a Vec cannot fail");
    out
}

/// Decodes a server frame, as a client would.
pub fn decode_server(bytes: &[u8]) -> Result<ServerMsg, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

/// The type and the identifying fields of a server frame (absent ones `None`).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct ServerGlance {
    /// The message type (`t`).
    pub t: String,
    pub room: Option<String>,
    /// The question number (`question`, `round`).
    pub q: Option<u32>,
    /// The boss's hit points (`boss`).
    pub hp: Option<u64>,
    pub rid: Option<u64>,
    /// An `error`'s code and text.
    pub code: Option<String>,
    pub msg: Option<String>,
}

/// Reads only [`ServerGlance`]'s fields of a server frame and skips the rest, for
/// clients that count or route frames rather than use them (a spectator counter,
/// the load tester): several times cheaper than [`decode_server`], which buffers
/// the whole map to find the internally tagged type first.
pub fn glance_server(bytes: &[u8]) -> Result<ServerGlance, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}
