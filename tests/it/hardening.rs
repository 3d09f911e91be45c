//! WIRE.md v1.1's hardening, each injected against real servers: tokens as a
//! new user would make them, queue tickets that outlive Redis, notifications
//! for players who were offline.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use juno_protocol::{ClientMsg, Mode, ServerMsg};
use tokio_tungstenite::tungstenite;

use crate::cluster::queue;
use crate::is;
use crate::procs::*;
use crate::support::*;

#[tokio::test]
async fn a_long_user_id_without_a_name_plays_named_by_its_first_32_characters() {
    let app = spawn_app(Backend::Sqlite).await;
    // A UUID-like id of 36 characters, and the longest valid one.
    for user in [
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301".to_string(),
        "u".repeat(64),
    ] {
        let token = app.auth.mint(&user, None, 3600).expect("mint");
        let (ws, _) = tokio_tungstenite::connect_async(app.ws_url(&token))
            .await
            .unwrap_or_else(|e| panic!("{user}: refused: {e}"));
        let client = Client::from_ws(ws, &user).await;
        assert_eq!(client.welcome.user, user);
        assert_eq!(
            client.welcome.name,
            user.chars().take(32).collect::<String>()
        );
    }
    // A 65-character id is still refused before the upgrade.
    let token = app.auth.mint(&"u".repeat(65), None, 3600).expect("mint");
    match tokio_tungstenite::connect_async(app.ws_url(&token)).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a 65-character id must get 401, got {other:?}"),
    }
}

#[tokio::test]
async fn a_queued_player_is_matched_after_redis_restarts_empty() {
    let mut redis = OwnRedis::start();
    let cluster = ClusterProcs::start(2, &redis.url(), &[]).await;
    let mut ann = cluster.connect(0, "ann").await;
    queue(&mut ann).await;

    redis.stop();
    // Long enough for both nodes to notice (a heartbeat is 2 s).
    tokio::time::sleep(Duration::from_secs(5)).await;
    redis.restart();
    for i in 0..2 {
        let mut healed = false;
        for _ in 0..100 {
            if cluster.health(i).await["redis"] == "ok" {
                healed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(healed, "node {i} sees Redis again");
    }

    // A newcomer on the other node: the only one who could be paired with them is ann.
    let mut bob = cluster.connect(1, "bob").await;
    queue(&mut bob).await;
    let found = bob
        .expect(
            "match_found with the player queued before the outage",
            |m| is!(m, ServerMsg::MatchFound),
        )
        .await;
    let ids: Vec<&str> = found.players.iter().map(|p| p.id.as_str()).collect();
    assert!(ids.contains(&"ann") && ids.contains(&"bob"), "{ids:?}");
    let also = ann
        .expect("ann's match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    assert_eq!(also.room, found.room);
}

/// Closes `c` and waits until the node has let the user go.
async fn leave(app: &TestApp, mut c: Client) {
    let user = c.user.clone();
    let _ = c.ws.close(None).await;
    while let Some(Ok(_)) = c.ws.next().await {}
    eventually(
        &format!("{user}'s session ends"),
        DEADLINE,
        async || match app.node.sessions.get(&user) {
            None => Ok(()),
            Some(_) => Err("still connected"),
        },
    )
    .await;
}

async fn execute(app: &TestApp, sql: &str) {
    juno_server::with_pool!(&app.node.store, pool => sqlx::query(sql).execute(pool).await.map(|_| ()))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Posts a notification for `users`; returns how many rows were stored.
async fn notify(app: &TestApp, title: &str, users: &[&str]) -> u64 {
    let resp = app
        .http
        .post(app.url("/admin/notifications"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"title": title, "message": "m", "users": users}))
        .send()
        .await
        .expect("http");
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = resp.json().await.expect("json");
    body["stored"].as_u64().expect("stored")
}

/// Reconnects `user` and returns the first notification they get, checking
/// that `stale` does not come before it.
async fn first_notification_after_login(app: &TestApp, user: &str, stale: &[&str]) -> String {
    let mut c = app.connect(user).await;
    let stale: Vec<String> = stale.iter().map(|s| s.to_string()).collect();
    let n = c
        .expect_none_before(
            "a notification",
            |m| match m {
                ServerMsg::Notification(n) if !stale.contains(&n.title) => Some(n.title.clone()),
                _ => None,
            },
            "a notification delivered before, or expired",
            |m| matches!(m, ServerMsg::Notification(n) if stale.contains(&n.title)),
        )
        .await;
    leave(app, c).await;
    n
}

#[tokio::test]
async fn a_notification_reaches_an_offline_player_at_their_next_login_once() {
    let app = spawn_app(Backend::Sqlite).await;
    // Both users exist (their first login wrote their row); ann goes offline.
    let ann = app.connect("ann").await;
    let mut bob = app.connect("bob").await;
    app.eventually_scalar(
        "SELECT COUNT(*) FROM users WHERE user_id IN ('ann', 'bob')",
        2,
    )
    .await;
    leave(&app, ann).await;
    assert_eq!(notify(&app, "A", &["ann", "bob"]).await, 2);
    let live = bob
        .expect("the live notification", |m| is!(m, ServerMsg::Notification))
        .await;
    assert_eq!(live.title, "A");
    leave(&app, bob).await;

    // ann gets A at her next login.
    assert_eq!(first_notification_after_login(&app, "ann", &[]).await, "A");
    // Once: after B is stored for her while she is away, B is the first she gets.
    assert_eq!(notify(&app, "B", &["ann"]).await, 1);
    assert_eq!(
        first_notification_after_login(&app, "ann", &["A"]).await,
        "B"
    );
    // bob, who had A live, does not get it again at login either.
    assert_eq!(notify(&app, "C", &["bob"]).await, 1);
    assert_eq!(
        first_notification_after_login(&app, "bob", &["A"]).await,
        "C"
    );
    // An expired notification is never delivered.
    execute(
        &app,
        "INSERT INTO notifications (user_id, kind, title, message, created_at, expires_at) \
         VALUES ('ann', 'special_announcement', 'expired', 'm', '2020-01-01 00:00:00+00:00', '2020-01-02 00:00:00+00:00')",
    )
    .await;
    assert_eq!(notify(&app, "D", &["ann"]).await, 1);
    assert_eq!(
        first_notification_after_login(&app, "ann", &["A", "B", "expired"]).await,
        "D"
    );
    app.eventually_scalar(
        "SELECT COUNT(*) FROM notifications WHERE delivered_at IS NULL AND title <> 'expired'",
        0,
    )
    .await;
}

/// Open file descriptors of process `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc readable")
        .count()
}

/// `GET /health` answers 200 within a second.
async fn health_answers(http: &reqwest::Client, addr: std::net::SocketAddr) -> bool {
    let asked = http
        .get(format!("http://{addr}/health"))
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    asked.is_ok_and(|r| r.status() == 200)
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: [u8; 4], to: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from((from, 0)))
        .expect("bind a loopback address");
    socket.connect(to).await.expect("tcp connect")
}

/// Reads until the node closes the connection: whether it said 429 first, and
/// whether it closed at all within 20 s.
async fn read_until_closed(mut tcp: tokio::net::TcpStream) -> (bool, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut got))
        .await
        .is_ok();
    (
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 429"),
        closed,
    )
}

#[tokio::test]
async fn silent_and_trickling_connections_never_starve_health_under_a_low_fd_limit() {
    let (mut node, _dir) = single_node(&[
        ("JUNO_MAX_CONNS_PER_IP", "100"),
        ("JUNO_HEADER_TIMEOUT_SECS", "2"),
    ])
    .await;
    let pid = node.proc.child.id();
    let limited = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=256:256"])
        .status()
        .expect("prlimit (util-linux)");
    assert!(limited.success());
    let http = reqwest::Client::new();
    let mut bystander = connect_at(node.addr, "bystander").await;
    let fds_before = fd_count(pid);

    // 300 silent connections from one address (more than the node's 256 files),
    // and 20 from another that trickle a request head a byte at a time.
    let mut attackers = Vec::new();
    for _ in 0..300 {
        attackers.push(tokio::spawn(read_until_closed(
            connect_from([127, 0, 0, 2], node.addr).await,
        )));
    }
    let mut tricklers = Vec::new();
    for _ in 0..20 {
        let mut tcp = connect_from([127, 0, 0, 3], node.addr).await;
        tricklers.push(tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let started = tokio::time::Instant::now();
            for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa".iter() {
                if tcp.write_all(&[*byte]).await.is_err() {
                    return started.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            started.elapsed()
        }));
    }
    // Throughout, /health answers and the bystander gets its pongs.
    for _ in 0..4 {
        assert!(
            health_answers(&http, node.addr).await,
            "/health answers under attack"
        );
        bystander.barrier().await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let mut refused = 0;
    for attacker in attackers {
        let (was_refused, closed) = attacker.await.expect("reader");
        assert!(closed, "the node closes every silent connection");
        refused += usize::from(was_refused);
    }
    // Past 100 open connections an address gets 429 at once. (Fewer than 200:
    // while the node is out of descriptors it accepts later, and by then the
    // first silent connections have timed out and made room.)
    assert!(refused >= 100, "{refused} of 300 got 429");
    for trickler in tricklers {
        let lasted = trickler.await.expect("trickler");
        assert!(
            lasted < Duration::from_secs(6),
            "a head trickled byte by byte is cut off by the header timeout ({lasted:?})"
        );
    }
    eventually(
        "the node's descriptors back to their level",
        DEADLINE,
        async || {
            let now = fd_count(pid);
            if now <= fds_before + 2 {
                Ok(())
            } else {
                Err(format!("{now} open, {fds_before} before"))
            }
        },
    )
    .await;
    assert!(health_answers(&http, node.addr).await);
    bystander.barrier().await;
    assert!(
        node.proc.child.try_wait().expect("wait").is_none(),
        "the node lives"
    );
}

/// Tries an upgrade with a bad token, naming `forged` as the client in
/// `X-Real-IP`; the HTTP status it gets.
async fn refused_upgrade(app: &TestApp, forged: &str) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = app
        .ws_url("not-a-token")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("x-real-ip", forged.parse().expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("a bad token must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn refused_upgrades_cost_a_bounded_number_of_writes_and_forged_addresses_are_ignored() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut bystander = app.connect("bystander").await;
    let forged = [
        "203.0.113.7",
        "not-an-ip'); DROP TABLE users;--",
        &"9".repeat(4000),
    ];
    let mut statuses = Vec::new();
    for i in 0..150 {
        statuses.push(refused_upgrade(&app, forged[i % forged.len()]).await);
    }
    assert!(statuses[..101].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[101..].iter().all(|s| *s == 429), "{statuses:?}");
    // One row per refusal within the budget, all naming the real peer.
    app.eventually_scalar(
        "SELECT COUNT(*) FROM auth_logs WHERE reason = 'invalid token'",
        101,
    )
    .await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM auth_logs WHERE ip <> '127.0.0.1'")
            .await,
        0
    );
    bystander.barrier().await;
    // A valid token is refused too while the address is over its budget.
    let blocked = tokio_tungstenite::connect_async(app.ws_url(&app.token("late"))).await;
    assert!(
        matches!(&blocked, Err(tungstenite::Error::Http(r)) if r.status() == 429),
        "{blocked:?}"
    );
}

#[tokio::test]
async fn repeated_admin_failures_lock_the_address_out_and_are_logged() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")]
    })
    .await;
    let admin = |from: &'static str, token: String| {
        let app = &app;
        async move {
            app.http
                .get(app.url("/admin/flags"))
                .header("x-real-ip", from)
                .bearer_auth(token)
                .send()
                .await
                .expect("http")
                .status()
                .as_u16()
        }
    };
    for _ in 0..10 {
        assert_eq!(admin("192.0.2.1", "wrong".into()).await, 401);
    }
    assert_eq!(
        admin("192.0.2.1", ADMIN.into()).await,
        429,
        "locked, the right token included"
    );
    assert_eq!(
        admin("192.0.2.2", ADMIN.into()).await,
        200,
        "another address is not"
    );
    // A large body from a locked address is refused without being read.
    let started = std::time::Instant::now();
    let big = app
        .http
        .post(app.url("/admin/missions"))
        .header("x-real-ip", "192.0.2.1")
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert!(matches!(big, Ok(429) | Err(_)), "{big:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    app.eventually_scalar(
        "SELECT COUNT(*) FROM auth_logs WHERE reason = 'admin: wrong token' AND ip = '192.0.2.1'",
        10,
    )
    .await;
}

#[tokio::test]
async fn flooding_with_pauses_and_ping_floods_are_closed_with_1008() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.rate_per_sec = 10;
        c.rate_burst = 20;
        c.flood_close = Duration::from_secs(3);
    })
    .await;
    let mut bystander = app.connect("bystander").await;
    // Bursts of 2.2 s with 1.2 s pauses: no run of flooding lasts 3 s.
    let mut evader = app.connect("evader").await;
    let mut closed = None;
    'rounds: for _ in 0..4 {
        let until = tokio::time::Instant::now() + Duration::from_millis(2200);
        while tokio::time::Instant::now() < until {
            let frame = juno_protocol::encode_client(None, &ClientMsg::Ping);
            if evader
                .ws
                .send(tungstenite::Message::Binary(frame.into()))
                .await
                .is_err()
            {
                break 'rounds;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(1200)).await;
        if let Ok(code) =
            tokio::time::timeout(Duration::from_millis(10), close_code(&mut evader)).await
        {
            closed = code;
            break;
        }
    }
    let closed = match closed {
        Some(code) => Some(code),
        None => close_code(&mut evader).await,
    };
    assert_eq!(closed, Some(1008), "a flood with pauses is closed");

    let mut pinger = app.connect("pinger").await;
    let started = tokio::time::Instant::now();
    let mut code = None;
    while started.elapsed() < Duration::from_secs(8) {
        if pinger
            .ws
            .send(tungstenite::Message::Ping(Vec::new().into()))
            .await
            .is_err()
        {
            code = close_code(&mut pinger).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if code.is_none() {
        code = close_code(&mut pinger).await;
    }
    assert_eq!(code, Some(1008), "a ping flood is a flood");
    bystander.barrier().await;
}

/// Reads until the node closes; its close code, if it sent one.
async fn close_code(c: &mut Client) -> Option<u16> {
    while let Some(Ok(m)) = c.ws.next().await {
        if let tungstenite::Message::Close(frame) = m {
            return frame.map(|f| u16::from(f.code));
        }
    }
    None
}

#[tokio::test]
async fn an_unmasked_frame_is_answered_with_close_1002() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(Backend::Sqlite).await;
    let mut bystander = app.connect("bystander").await;
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.expect("tcp");
    let head = format!(
        "GET /ws?token={} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        app.token("raw")
    );
    tcp.write_all(head.as_bytes()).await.expect("handshake");
    // The 101, then the welcome: read a little, then break the protocol.
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await.expect("101");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A binary frame a client sent without a mask.
    tcp.write_all(&[0x82, 0x01, 0x00]).await.expect("write");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
    // Somewhere after the welcome: a close frame (0x88) whose code is 1002.
    let close = rest
        .windows(4)
        .any(|w| w[0] == 0x88 && w[2] == 0x03 && w[3] == 0xEA);
    assert!(close, "close 1002 before the socket closes: {rest:02x?}");
    bystander.barrier().await;
}

#[tokio::test]
async fn the_node_sends_security_headers_itself() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/health", "/api/leaderboard/individual/weekly", "/nope"] {
        let resp = app.http.get(app.url(path)).send().await.expect("http");
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("default-src 'none'"));
    }
}

/// `rooms_active{mode="…"}` from the node's metrics.
async fn rooms_active(app: &TestApp, mode: &str) -> i64 {
    let text = app.metrics().await;
    let line = format!("rooms_active{{mode=\"{mode}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0)
}

#[tokio::test]
async fn a_finished_room_lingering_for_room_state_is_not_active() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut ann = app.connect("ann").await;
    let mut bob = app.connect("bob").await;
    let room = ann.create_room(Mode::Duel, None).await;
    bob.request(ClientMsg::Join { room: room.clone() })
        .await
        .expect("join");
    assert_eq!(rooms_active(&app, "duel").await, 1);
    // bob forfeits: the duel ends at once and the room lingers, finished.
    bob.request(ClientMsg::Leave { room: room.clone() })
        .await
        .expect("leave");
    ann.expect("result", |m| is!(m, ServerMsg::Result)).await;
    assert!(
        app.node.rooms.contains_key(&room),
        "the finished room lingers"
    );
    eventually(
        "rooms_active back to 0",
        DEADLINE,
        async || match rooms_active(&app, "duel").await {
            0 => Ok(()),
            n => Err(n),
        },
    )
    .await;
}

#[tokio::test]
async fn nodes_mid_secret_rotation_serve_every_player_and_drop_nobody() {
    use juno_server::gateway::auth::Auth;
    let old = SECRET.to_string();
    let new = "rotated-secret-0123456789abcdef-0123456789".to_string();
    // The runbook's steps, one node at each: not rolled yet, the new secret
    // added second (it verifies), and swapped first (it signs).
    let step0 = old.clone();
    let step1 = format!("{old},{new}");
    let step2 = format!("{new},{old}");
    let cluster = ClusterProcs::start_each(
        &test_redis_url(),
        &[
            &[("JUNO_JWT_SECRET", step0.as_str())],
            &[("JUNO_JWT_SECRET", step1.as_str())],
            &[("JUNO_JWT_SECRET", step2.as_str())],
        ],
    )
    .await;
    let by_old = Auth::new(std::slice::from_ref(&old), false);
    let by_new = Auth::new(std::slice::from_ref(&new), false);
    let connect = |i: usize, user: &'static str, auth: &Auth| {
        let url = format!(
            "ws://{}/ws?token={}",
            cluster.nodes[i].addr,
            auth.mint(user, None, 3600).expect("mint")
        );
        async move {
            let (ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .unwrap_or_else(|e| panic!("{user} on node {i}: {e}"));
            Client::from_ws(ws, user).await
        }
    };
    // An old token works everywhere; a new one wherever the new secret is known.
    let mut ann = connect(0, "ann", &by_old).await;
    let mut bob = connect(2, "bob", &by_new).await;
    let mut cat = connect(1, "cat", &by_new).await;
    // ann (old token) and bob (new token) play a duel across nodes.
    queue(&mut ann).await;
    queue(&mut bob).await;
    let found = ann
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    let also = bob
        .expect("match_found", |m| is!(m, ServerMsg::MatchFound))
        .await;
    assert_eq!(found.room, also.room);
    bob.expect("question", |m| is!(m, ServerMsg::Question))
        .await;
    // Nobody connected was dropped along the way.
    for c in [&mut ann, &mut bob, &mut cat] {
        c.barrier().await;
    }
    // The one thing a half-rolled cluster refuses: a new token on a node that
    // has not been given the new secret — why step 1 must reach every node first.
    let early = cluster.nodes[0].addr;
    let url = format!(
        "ws://{early}/ws?token={}",
        by_new.mint("dan", None, 60).expect("mint")
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
}

#[tokio::test]
async fn tokens_not_valid_yet_or_issued_in_the_future_are_refused() {
    use juno_server::gateway::auth::Claims;
    let app = spawn_app(Backend::Sqlite).await;
    let now = jsonwebtoken::get_current_timestamp();
    let token = |nbf: Option<u64>, iat: Option<u64>| {
        let claims = Claims {
            sub: "ann".into(),
            name: None,
            exp: now + 3600,
            nbf,
            iat,
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encode")
    };
    for (what, t) in [
        ("nbf in ten minutes", token(Some(now + 600), None)),
        ("iat in ten minutes", token(None, Some(now + 600))),
    ] {
        match tokio_tungstenite::connect_async(app.ws_url(&t)).await {
            Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401, "{what}"),
            other => panic!("{what}: expected 401, got {other:?}"),
        }
    }
    // Within the minute of leeway both are fine.
    let (ws, _) =
        tokio_tungstenite::connect_async(app.ws_url(&token(Some(now + 30), Some(now + 30))))
            .await
            .expect("within the leeway");
    Client::from_ws(ws, "ann").await;
}

#[tokio::test]
async fn a_short_secret_stops_the_node_at_start_and_dev_mode_keeps_its_secret_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("juno-short-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_juno-server"))
        .env_clear()
        .env("JUNO_JWT_SECRET", "x")
        .env("JUNO_LISTEN", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/juno.db", dir.display()),
        )
        .output()
        .expect("run juno-server");
    assert!(
        !out.status.success(),
        "a 1-byte secret must not start a node"
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("JUNO_JWT_SECRET") && said.contains("32 bytes"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let (node, dir) = single_node(&[("JUNO_JWT_SECRET", "")]).await;
    let health: serde_json::Value = reqwest::get(node.url("/health"))
        .await
        .expect("http")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    let mode = std::fs::metadata(dir.0.join("juno-dev-secret"))
        .expect("the dev secret beside the database")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "only its owner may read the dev secret"
    );
}
