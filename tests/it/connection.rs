//! Authentication, welcome, ping, bad input, frame size and rate limits.

use std::time::Duration;

use futures_util::SinkExt;
use juno_protocol::{encode_client, ClientMsg, ErrorCode, ServerMsg};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::is;
use crate::support::*;

#[tokio::test]
async fn bad_tokens_get_401_and_an_auth_log_row() {
    let app = spawn_app(Backend::Sqlite).await;
    for url in [
        format!("ws://{}/ws", app.addr),
        app.ws_url("not-a-jwt"),
        app.ws_url(
            &juno_server::gateway::auth::Auth::new(&["other-secret".into()], false)
                .mint("mallory", None, 60)
                .expect("mint"),
        ),
    ] {
        match tokio_tungstenite::connect_async(url.clone()).await {
            Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401, "{url}"),
            other => panic!("{url}: expected HTTP 401, got {:?}", other.map(|_| ())),
        }
    }
    app.eventually_scalar("SELECT COUNT(*) FROM auth_logs WHERE success = false", 3)
        .await;
}

#[tokio::test]
async fn welcome_then_pong_with_rid_and_server_time() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut ann = app.connect("ann").await;
    assert_eq!(ann.welcome.user, "ann");
    assert_eq!(ann.welcome.name, "ANN");
    assert_eq!(ann.welcome.node, "test-node");
    assert_eq!(ann.welcome.proto, 1);
    assert_eq!(ann.welcome.flags.get("pvp_duels"), Some(&true));
    assert_eq!(ann.welcome.flags.get("clans"), Some(&false));
    assert!(ann.welcome.rooms.is_empty());
    let before = chrono::Utc::now().timestamp_millis() as u64;
    let rid = ann.send(ClientMsg::Ping).await;
    let pong = ann.expect("pong", |m| is!(m, ServerMsg::Pong)).await;
    assert_eq!(pong.rid, Some(rid));
    assert!(
        pong.ts >= before && pong.ts < before + 5_000,
        "ts {} vs {before}",
        pong.ts
    );
}

async fn expect_error(client: &mut Client, code: ErrorCode, rid: Option<u64>) {
    let e = client.expect("error", |m| is!(m, ServerMsg::Error)).await;
    assert_eq!((e.code, e.rid), (code, rid), "{e:?}");
    assert!(!e.msg.is_empty());
}

#[tokio::test]
async fn bad_input_is_answered_and_the_connection_stays_usable() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut c = app.connect("ann").await;

    c.ws.send(Message::Text("hello".into()))
        .await
        .expect("send");
    expect_error(&mut c, ErrorCode::BadFrame, None).await;

    c.send_bytes(vec![0xc1, 0xff, 0x00]).await;
    expect_error(&mut c, ErrorCode::BadFrame, None).await;

    c.send_bytes(rmp_serde::to_vec(&vec![1, 2, 3]).expect("encode"))
        .await;
    expect_error(&mut c, ErrorCode::BadFrame, None).await;

    let no_type =
        rmp_serde::to_vec_named(&serde_json::json!({"rid": 7, "room": "x"})).expect("encode");
    c.send_bytes(no_type).await;
    expect_error(&mut c, ErrorCode::UnknownType, Some(7)).await;

    let unknown =
        rmp_serde::to_vec_named(&serde_json::json!({"t": "dance", "rid": 8})).expect("encode");
    c.send_bytes(unknown).await;
    expect_error(&mut c, ErrorCode::UnknownType, Some(8)).await;

    let missing =
        rmp_serde::to_vec_named(&serde_json::json!({"t": "join", "rid": 9})).expect("encode");
    c.send_bytes(missing).await;
    expect_error(&mut c, ErrorCode::Invalid, Some(9)).await;

    let wrong_type = rmp_serde::to_vec_named(
        &serde_json::json!({"t": "answer", "rid": 10, "room": "r", "q": 0, "choice": "b"}),
    )
    .expect("encode");
    c.send_bytes(wrong_type).await;
    expect_error(&mut c, ErrorCode::Invalid, Some(10)).await;

    assert_eq!(
        c.refusal(ClientMsg::Create {
            mode: juno_protocol::Mode::Duel,
            mission: "demo".into(),
            options: Some(juno_protocol::RoomOptions {
                question_ms: Some(5),
                ..Default::default()
            }),
        })
        .await,
        ErrorCode::Invalid,
        "question_ms 5 is out of range"
    );

    assert_eq!(
        c.refusal(ClientMsg::Join {
            room: "nope".into(),
        })
        .await,
        ErrorCode::NotFound,
        "unknown room"
    );
    assert_eq!(
        c.refusal(ClientMsg::Queue {
            mode: juno_protocol::Mode::Duel,
            mission: "nope".into(),
        })
        .await,
        ErrorCode::NotFound,
        "unknown mission"
    );
    assert_eq!(
        c.refusal(ClientMsg::Answer {
            room: "nope".into(),
            q: 0,
            choice: 0,
        })
        .await,
        ErrorCode::NotFound,
        "unknown room"
    );

    // Still usable: extra keys are ignored.
    let ping =
        rmp_serde::to_vec_named(&serde_json::json!({"t": "ping", "rid": 11, "extra": [1, 2]}))
            .expect("encode");
    c.send_bytes(ping).await;
    let pong = c.expect("pong", |m| is!(m, ServerMsg::Pong)).await;
    assert_eq!(pong.rid, Some(11));
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_with_1009() {
    let app = spawn_with(Backend::Sqlite, |c| c.max_frame_bytes = 1024).await;
    let mut c = app.connect("ann").await;
    let fits = encode_client(
        Some(1),
        &ClientMsg::Join {
            room: "x".repeat(100),
        },
    );
    c.send_bytes(fits).await;
    expect_error(&mut c, ErrorCode::NotFound, Some(1)).await;
    let mut big = vec![0x81, 0xa1, b't', 0xda, 0x08, 0x00];
    big.extend(std::iter::repeat_n(b'a', 2048));
    c.send_bytes(big).await;
    assert_eq!(c.closed().await, Some(1009));
}

#[tokio::test]
async fn over_budget_frames_are_dropped_and_a_flood_is_closed_with_1008() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.rate_per_sec = 5;
        c.rate_burst = 5;
        c.flood_close = Duration::from_secs(2);
    })
    .await;
    let mut c = app.connect("ann").await;
    let mut burst = Vec::new();
    for _ in 0..30 {
        burst.push(c.send(ClientMsg::Ping).await);
    }
    // The client then pauses; at 5 a second its budget has room again, so the
    // barrier's own ping is let through. The pause is the scenario (a burst, then
    // quiet), not a wait for the server: the barrier proves the server handled all
    // 30 frames, so the counts below are final.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let got = c.barrier().await;
    let pongs = got
        .iter()
        .filter(|m| matches!(m, ServerMsg::Pong(p) if p.rid.is_some_and(|r| burst.contains(&r))))
        .count();
    let limited = got
        .iter()
        .filter(|m| matches!(m, ServerMsg::Error(e) if e.code == ErrorCode::RateLimited && e.rid.is_none()))
        .count();
    assert!(
        (5..=7).contains(&pongs),
        "burst of 5 (plus refill) answered, got {pongs}"
    );
    assert_eq!(limited, 1, "one rate_limited a second: {got:?}");

    // Keep flooding past the flood window: closed with 1008.
    let flood = tokio::time::Instant::now();
    let code = loop {
        if flood.elapsed() > Duration::from_secs(8) {
            panic!("not closed after flooding 8 s");
        }
        if c.ws
            .send(Message::Binary(
                encode_client(None, &ClientMsg::Ping).into(),
            ))
            .await
            .is_err()
        {
            break c.closed().await;
        }
        match tokio::time::timeout(
            Duration::from_millis(20),
            futures_util::StreamExt::next(&mut c.ws),
        )
        .await
        {
            Ok(Some(Ok(Message::Close(f)))) => break f.map(|f| u16::from(f.code)),
            Ok(None) | Ok(Some(Err(_))) => break None,
            _ => {}
        }
    };
    assert_eq!(code, Some(1008));
    assert!(app.node.metrics.rate_limited_total.get() > 20);
}

#[tokio::test]
async fn a_newer_connection_replaces_the_older_one() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut first = app.connect("ann").await;
    let mut second = app.connect("ann").await;
    expect_error(&mut first, ErrorCode::Replaced, None).await;
    assert_eq!(first.closed().await, Some(1000));
    let rid = second.send(ClientMsg::Ping).await;
    assert_eq!(
        second.expect("pong", |m| is!(m, ServerMsg::Pong)).await.rid,
        Some(rid)
    );
}

#[tokio::test]
async fn the_server_pings_and_drops_a_silent_peer() {
    let app = spawn_with(Backend::Sqlite, |c| c.keepalive = Duration::from_secs(1)).await;
    let mut live = app.connect("live").await;
    let _silent = app.connect("silent").await;
    let mut pings = 0;
    // The scenario is time itself: for 4.5 s `live` reads (and so answers pings)
    // while `silent` reads nothing, past the three missed pings (3 s) that drop it.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(4500);
    // Reading answers pings (tungstenite pongs automatically), so `live` stays.
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut live.ws)).await
    {
        if matches!(frame, Message::Ping(_)) {
            pings += 1;
        }
    }
    assert!(pings >= 3, "one ping a second: {pings}");
    assert!(
        app.node.sessions.get("live").is_some(),
        "a peer that answers stays"
    );
    assert!(
        app.node.sessions.get("silent").is_none(),
        "a peer silent for three pings is dropped"
    );
}
