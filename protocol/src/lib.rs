//! The JunoSixteen wire contract (`shared/WIRE.md` §3) as Rust types.
//!
//! Every WebSocket message is one binary frame holding one MessagePack map with
//! string keys; key `t` names the message. This crate owns the message types
//! ([`messages`]), the codec that maps bytes to them and decoding failures to the
//! contract's error codes ([`codec`], [`error`]), the limits that bound every field
//! ([`limits`]), and the mission format shared by HTTP and the game rules ([`mission`]).
//! It does no I/O, so servers, test clients and the load tester all use it.

pub mod codec;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod messages;
pub mod mission;

pub use codec::{
    decode_client, decode_server, encode, encode_client, glance_server, ClientFrame, DecodeError,
    ServerGlance,
};
pub use error::ErrorCode;
pub use messages::*;
pub use mission::{Mission, MissionError, Question};

/// The protocol version announced in `welcome.proto`.
pub const PROTO_VERSION: u32 = 1;
