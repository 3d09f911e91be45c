//! Feature flags as the node applies them: a cache of the database's flags, the
//! check that a mode is switched on for a user, and pushing `flags` to every
//! connected client whose flags changed (on every node, through the bus).

use std::collections::BTreeMap;
use std::sync::RwLock;

use juno_protocol::{encode, ErrorCode, Mode, ServerMsg};

use super::inbound::BusMsg;
use super::{Node, Refusal};
use crate::model::FlagSet;

/// The node's copy of the flags.
pub struct Flags {
    cache: RwLock<FlagSet>,
}

impl Flags {
    pub fn new(flags: FlagSet) -> Flags {
        Flags {
            cache: RwLock::new(flags),
        }
    }

    /// Every flag, as it applies to `user`.
    pub fn for_user(&self, user: &str) -> BTreeMap<String, bool> {
        self.cache
            .read()
            .map(|f| f.for_user(user))
            .unwrap_or_default()
    }

    pub fn enabled(&self, name: &str, user: &str) -> bool {
        self.cache
            .read()
            .map(|f| f.enabled(name, user))
            .unwrap_or(false)
    }

    /// Answers `feature_disabled` unless the mode's flag is on for `user`.
    pub fn check_mode(&self, mode: Mode, user: &str) -> Result<(), Refusal> {
        if self.enabled(mode.flag(), user) {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorCode::FeatureDisabled,
                format!("{} is disabled", mode.flag()),
            ))
        }
    }

    /// Replaces the cache; the flags it held, unless nothing changed.
    fn replace(&self, flags: FlagSet) -> Option<FlagSet> {
        let mut cache = self.cache.write().ok()?;
        if *cache == flags {
            return None;
        }
        Some(std::mem::replace(&mut *cache, flags))
    }
}

/// Replaces the flag cache and pushes `flags` to every connected client whose
/// flags changed (each user sees the flags as they apply to them).
pub fn apply(node: &Node, flags: FlagSet) {
    let Some(old) = node.flags.replace(flags.clone()) else {
        return;
    };
    for conn in node.sessions.all() {
        let now = flags.for_user(&conn.user);
        if now != old.for_user(&conn.user) {
            conn.send(encode(&ServerMsg::Flags(juno_protocol::Flags {
                flags: now,
            })));
        }
    }
}

/// Reloads the flags from the database and applies them here.
pub async fn reload(node: &Node) -> anyhow::Result<FlagSet> {
    let flags = node.store.flag_set().await?;
    apply(node, flags.clone());
    Ok(flags)
}

/// The flags changed in the database: apply them here and tell every other node.
pub async fn changed(node: &Node) -> anyhow::Result<FlagSet> {
    let flags = reload(node).await?;
    node.cluster.bus.send_all(BusMsg::FlagsChanged.encode());
    Ok(flags)
}
