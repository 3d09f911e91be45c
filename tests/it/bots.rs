//! Scripted players: each runs in its own task, answers questions as its policy
//! says, and returns everything it received once the room it waits for ends.

use std::collections::HashMap;
use std::sync::Arc;

use juno_protocol::{ClientMsg, ServerMsg};

use crate::support::{Client, TestApp};

/// What a bot knows when a question comes.
pub struct Turn<'a> {
    pub user: &'a str,
    pub q: u32,
    /// The other players of the current duel (from `match_found`), if any.
    pub opponents: &'a [String],
}

/// `Some(true)` answer right, `Some(false)` answer wrong, `None` stay silent.
pub type Policy = Arc<dyn Fn(&Turn) -> Option<bool> + Send + Sync>;

/// The demo mission's correct choice by question text.
pub async fn answer_key(app: &TestApp) -> Arc<HashMap<String, u32>> {
    let mission = app
        .node
        .store
        .mission("demo")
        .await
        .expect("db")
        .expect("demo mission");
    Arc::new(
        mission
            .questions
            .into_iter()
            .map(|q| (q.text, q.correct))
            .collect(),
    )
}

/// Plays until a `result` for `until_room` arrives; returns every message received.
pub fn spawn_bot(
    mut client: Client,
    key: Arc<HashMap<String, u32>>,
    policy: Policy,
    until_room: String,
) -> tokio::task::JoinHandle<(Client, Vec<ServerMsg>)> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut opponents: HashMap<String, Vec<String>> = HashMap::new();
        loop {
            let msg = client.next().await;
            seen.push(msg.clone());
            match msg {
                ServerMsg::MatchFound(found) => {
                    let others = found
                        .players
                        .iter()
                        .map(|p| p.id.clone())
                        .filter(|id| id != &client.user)
                        .collect();
                    opponents.insert(found.room, others);
                }
                ServerMsg::Question(question) => {
                    let none = Vec::new();
                    let turn = Turn {
                        user: &client.user,
                        q: question.q,
                        opponents: opponents.get(&question.room).unwrap_or(&none),
                    };
                    if let Some(right) = policy(&turn) {
                        let correct = key[&question.text];
                        let choice = if right {
                            correct
                        } else {
                            (correct + 1) % question.choices.len() as u32
                        };
                        // Fire and forget: the ok comes back in order with everything else.
                        client
                            .send(ClientMsg::Answer {
                                room: question.room.clone(),
                                q: question.q,
                                choice,
                            })
                            .await;
                    }
                }
                ServerMsg::Result(result) if result.room == until_room => break,
                _ => {}
            }
        }
        (client, seen)
    })
}

/// Every message of one kind, in order.
pub fn all_of<T>(seen: &[ServerMsg], pick: impl Fn(&ServerMsg) -> Option<T>) -> Vec<T> {
    seen.iter().filter_map(pick).collect()
}
