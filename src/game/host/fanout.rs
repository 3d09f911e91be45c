//! Where a room's frames go: members on this node straight to their
//! connections, members elsewhere as one bus message per node (fenced by the
//! room's epoch in a cluster), and the recipients of a broadcast worked out
//! once per change of membership.

use std::collections::HashMap;

use bytes::Bytes;

use super::{Host, Reply};
use crate::game::inbound::BusMsg;
use crate::game::sessions::ConnHandle;

/// A room's broadcast recipients: connections on this node, and the members on
/// each other node.
pub(super) struct Fanout {
    local: Vec<ConnHandle>,
    remote: Vec<(String, Vec<String>)>,
}

impl Host {
    /// Sends a frame to one member, on this node or through the bus.
    pub(super) fn deliver(&self, user: &str, frame: Bytes) {
        match self.remote.get(user) {
            Some(node) => self.node.cluster.bus.send(
                node,
                BusMsg::deliver(vec![user.to_string()], frame, self.fence()),
            ),
            None => {
                self.node.send_to(user, frame);
            }
        }
    }

    /// Sends one frame to several members: local ones directly, and one bus message
    /// per other node that has recipients.
    pub(super) fn deliver_many(&self, users: &[&str], frame: Bytes) {
        self.send_via(&self.route(users.iter().copied()), frame);
    }

    /// Sends one frame to every player and spectator.
    pub(super) fn broadcast(&self, frame: Bytes) {
        let version = self.room.members_version();
        let fanout = match self.fanout.take() {
            Some((v, fanout)) if v == version => fanout,
            _ => self.route(self.room.members()),
        };
        // A closed connection (the member left, or reconnected elsewhere or anew)
        // means the list is out of date: work it out again next time.
        if self.send_via(&fanout, frame) {
            self.fanout.set(Some((version, fanout)));
        }
    }

    /// Where a frame for `users` goes: their connections on this node, and the
    /// members on each other node.
    pub(super) fn route<'a>(&self, users: impl Iterator<Item = &'a str>) -> Fanout {
        let mut local = Vec::new();
        let mut by_node: HashMap<&str, Vec<String>> = HashMap::new();
        for user in users {
            match self.remote.get(user) {
                Some(node) => by_node.entry(node).or_default().push(user.to_string()),
                None => local.extend(self.node.sessions.get(user)),
            }
        }
        let remote = by_node
            .into_iter()
            .map(|(node, users)| (node.to_string(), users))
            .collect();
        Fanout { local, remote }
    }

    /// Sends `frame` along `fanout`; `false` if a local connection turned out closed.
    pub(super) fn send_via(&self, fanout: &Fanout, frame: Bytes) -> bool {
        let mut all_open = true;
        for conn in &fanout.local {
            all_open &= conn.send(frame.clone());
        }
        for (node, users) in &fanout.remote {
            let msg = BusMsg::deliver(users.clone(), frame.clone(), self.fence());
            self.node.cluster.bus.send(node, msg);
        }
        all_open
    }

    /// Membership or a member's connection changed: broadcasts must look again.
    pub(super) fn members_changed(&self) {
        self.fanout.set(None);
    }

    /// The direct answer to a client's command.
    pub(super) fn reply(&self, to: &Reply, user: &str, frame: Bytes) {
        match to {
            Reply::Local(conn) => {
                conn.send(frame);
            }
            Reply::Remote(node) => self.node.cluster.bus.send(
                node,
                BusMsg::deliver(vec![user.to_string()], frame, self.fence()),
            ),
        }
    }
}
