//! The gateway layer: everything a client or an operator talks to. The HTTP
//! router and its handlers ([`http`]), JWT auth ([`auth`]), the WebSocket
//! upgrade and the connection task ([`conn`]) with its rate [`budget`], and the
//! dispatch of decoded client messages into the game ([`dispatch`]).
//!
//! It turns requests and frames into calls on [`crate::game`] and never holds
//! game rules itself.

pub mod auth;
pub mod budget;
pub mod conn;
pub mod dispatch;
pub mod guard;
pub mod http;
pub mod serve;

use std::sync::Arc;

use axum::extract::FromRef;

use crate::game::Node;
use crate::store::Logins;
use auth::Auth;
use guard::Guard;

/// What the gateway's handlers and connections share: the node, and what only
/// the gateway needs (keys, login records).
#[derive(Clone)]
pub struct Gateway {
    pub node: Arc<Node>,
    pub auth: Arc<Auth>,
    /// Batches login records (users, last_login, session telemetry).
    pub logins: Arc<Logins>,
    /// Per-address limits: open connections, refused upgrades, admin failures.
    pub guard: Arc<Guard>,
}

impl FromRef<Gateway> for Arc<Node> {
    fn from_ref(gateway: &Gateway) -> Arc<Node> {
        gateway.node.clone()
    }
}
