//! Two bots play a duel on a running node, printing what they receive — the
//! quickest way to see the server work. Needs a node in dev mode (no
//! JUNO_JWT_SECRET), e.g. `cargo run --release`, then:
//!
//!     cargo run --example duel_bots -- http://127.0.0.1:8080

use futures_util::{SinkExt, StreamExt};
use juno_protocol::{decode_server, encode_client, ClientMsg, Mode, ServerMsg};
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let http = reqwest::Client::new();
    let mut bots = Vec::new();
    for (user, name, smart) in [("ada", "Ada", true), ("bert", "Bert", false)] {
        let token: serde_json::Value = http
            .post(format!("{base}/auth/dev-token"))
            .json(&serde_json::json!({ "user": user, "name": name }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = token["token"].as_str().unwrap_or_default().to_string();
        let ws_url = format!("{}/ws?token={token}", base.replacen("http", "ws", 1));
        bots.push(tokio::spawn(play(ws_url, user, smart)));
    }
    for bot in bots {
        bot.await??;
    }
    Ok(())
}

/// Queues for the demo mission and answers every question: choice 0 for the
/// "smart" bot, choice 1 for the other; prints every message.
async fn play(ws_url: String, user: &'static str, smart: bool) -> anyhow::Result<()> {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await?;
    let queue = ClientMsg::Queue {
        mode: Mode::Duel,
        mission: "demo".into(),
    };
    ws.send(Message::Binary(encode_client(Some(1), &queue).into()))
        .await?;
    while let Some(frame) = ws.next().await {
        let Message::Binary(bytes) = frame? else {
            continue;
        };
        let msg = decode_server(&bytes)?;
        println!("{user}: {msg:?}");
        match msg {
            ServerMsg::Question(q) => {
                let answer = ClientMsg::Answer {
                    room: q.room,
                    q: q.q,
                    choice: if smart { 0 } else { 1 },
                };
                ws.send(Message::Binary(encode_client(None, &answer).into()))
                    .await?;
            }
            ServerMsg::Result(_) => break,
            _ => {}
        }
    }
    Ok(())
}
