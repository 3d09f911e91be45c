//! The HTTP error answers (`{"error":"…"}` with the right status) and the exact
//! bytes of the typed response bodies: admin auth on every admin route, malformed
//! bodies, a database outage, and what the success bodies look like on the wire.

use reqwest::Method;

use crate::support::*;

/// Every admin route, with a body that would be refused if it were read.
const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("POST", "/admin/missions"),
    ("GET", "/admin/flags"),
    ("PUT", "/admin/flags/clans"),
    ("POST", "/admin/drain"),
    ("POST", "/admin/notifications"),
    ("POST", "/admin/events/halloween_2026/activate"),
];

/// A status, the `Content-Type`, and the body as text.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

/// Sends `body` (raw, labelled JSON) with an optional `Authorization` header.
async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> Answer {
    call_from(app, None, method, path, authorization, body).await
}

/// [`call`], naming the client's address in `X-Real-IP` (for a node that trusts
/// the test as its proxy).
async fn call_from(
    app: &TestApp,
    client: Option<&str>,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app.http.request(method, app.url(path));
    if let Some(ip) = client {
        req = req.header("x-real-ip", ip);
    }
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let resp = req.send().await.expect("http");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ascii").to_string())
        .unwrap_or_default();
    let body = resp.text().await.expect("text");
    Answer {
        status,
        content_type,
        body,
    }
}

static BEARER_ADMIN: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("Bearer {ADMIN}"));

fn assert_error(answer: &Answer, status: u16, message: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.body);
    assert_eq!(answer.content_type, "application/json", "{what}");
    let want = serde_json::to_string(&serde_json::json!({ "error": message })).expect("json");
    assert_eq!(answer.body, want, "{what}");
}

#[tokio::test]
async fn every_admin_route_answers_403_while_the_admin_api_is_disabled() {
    let app = spawn_with(Backend::Sqlite, |c| c.admin_token = None).await;
    for &(method, path) in ADMIN_ROUTES {
        for auth in [Some(BEARER_ADMIN.as_str()), None] {
            let answer = call(&app, method, path, auth, Some("{")).await;
            assert_error(
                &answer,
                403,
                "admin API disabled: set JUNO_ADMIN_TOKEN",
                &format!("{method} {path} {auth:?}"),
            );
        }
    }
}

#[tokio::test]
async fn every_admin_route_answers_401_without_the_right_token_before_reading_the_body() {
    // Each attempt comes from its own address, so the lockout after ten failures
    // from one address (tested in hardening.rs) does not answer instead.
    let app = spawn_with(Backend::Sqlite, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")]
    })
    .await;
    let mut attempt = 0u32;
    let wrong = [
        None,
        Some("Bearer wrong"),
        Some("Bearer "),
        Some("Basic test-admin"),
        Some("test-admin"),
        Some("Bearer test-admin2"),
    ];
    for &(method, path) in ADMIN_ROUTES {
        for auth in wrong {
            // A malformed body would be a 400 if it were read first.
            attempt += 1;
            let client = format!("198.51.{}.{}", attempt / 250, attempt % 250);
            let answer = call_from(&app, Some(&client), method, path, auth, Some("{")).await;
            assert_error(
                &answer,
                401,
                "admin bearer token required",
                &format!("{method} {path} {auth:?}"),
            );
        }
    }
    // Nothing was done: the node still takes connections.
    assert_eq!(call(&app, "GET", "/ready", None, None).await.status, 200);
    // Either capitalisation of the scheme passes, and surrounding spaces are trimmed.
    for auth in [format!("bearer {ADMIN}"), format!("Bearer  {ADMIN} ")] {
        let answer = call(&app, "GET", "/admin/flags", Some(&auth), None).await;
        assert_eq!(answer.status, 200, "{auth}");
    }
}

#[tokio::test]
async fn malformed_json_bodies_answer_400_with_a_json_error() {
    let app = spawn_with(Backend::Sqlite, |c| c.jwt_secrets.clear()).await;
    let syntax = [
        (
            "POST",
            "/admin/missions",
            r#"{"id":"#,
            "id: EOF while parsing a value at line 1 column 6",
        ),
        (
            "PUT",
            "/admin/flags/clans",
            r#"{"enabled":"#,
            "enabled: EOF while parsing a value at line 1 column 11",
        ),
        (
            "POST",
            "/admin/notifications",
            r#"{"title":"#,
            "title: EOF while parsing a value at line 1 column 9",
        ),
        (
            "POST",
            "/auth/dev-token",
            r#"{"user":"#,
            "user: EOF while parsing a value at line 1 column 8",
        ),
    ];
    for (method, path, body, why) in syntax {
        let answer = call(&app, method, path, Some(BEARER_ADMIN.as_str()), Some(body)).await;
        let message = format!("Failed to parse the request body as JSON: {why}");
        assert_error(&answer, 400, &message, path);
    }
    // A body of the wrong shape is a 400 too (axum alone would answer 422).
    let answer = call(
        &app,
        "PUT",
        "/admin/flags/clans",
        Some(BEARER_ADMIN.as_str()),
        Some(r#"{"enabled":"yes"}"#),
    )
    .await;
    assert_error(
        &answer,
        400,
        "Failed to deserialize the JSON body into the target type: enabled: invalid type: string \"yes\", expected a boolean at line 1 column 16",
        "wrong shape",
    );
    // And so is a body without a JSON content type (axum alone would answer 415).
    let resp = app
        .http
        .post(app.url("/admin/notifications"))
        .bearer_auth(ADMIN)
        .body(r#"{"title":"Hi","message":"there"}"#)
        .send()
        .await
        .expect("http");
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        serde_json::json!({"error": "Expected request with `Content-Type: application/json`"})
    );
    // Rules on well-formed bodies keep their own messages.
    let cases = [
        (
            "PUT",
            "/admin/flags/clans",
            r#"{"enabled":true,"percent":101}"#,
            "percent must be 0-100",
        ),
        (
            "POST",
            "/admin/notifications",
            r#"{"title":"","message":"m"}"#,
            "title must be 1-200 bytes, message at most 2000",
        ),
        (
            "POST",
            "/auth/dev-token",
            r#"{"user":"a b"}"#,
            "user must be 1-64 of [A-Za-z0-9_-]",
        ),
        (
            "POST",
            "/admin/missions",
            r#"{"id":"x","world":"it","title":"X","difficulty":"easy","questions":[{"text":"?","choices":["a","b"],"correct":7}]}"#,
            "questions[0].correct is not a valid choice index",
        ),
    ];
    for (method, path, body, message) in cases {
        let answer = call(&app, method, path, Some(BEARER_ADMIN.as_str()), Some(body)).await;
        assert_error(&answer, 400, message, path);
    }
    let answer = call(
        &app,
        "PUT",
        "/admin/flags/nope",
        Some(BEARER_ADMIN.as_str()),
        Some(r#"{"enabled":true}"#),
    )
    .await;
    assert_error(&answer, 404, "no flag 'nope'", "unknown flag");
}

#[tokio::test]
async fn dev_tokens_are_404_outside_dev_mode_before_the_body_is_read() {
    let app = spawn_app(Backend::Sqlite).await;
    let answer = call(&app, "POST", "/auth/dev-token", None, Some("{")).await;
    assert_error(
        &answer,
        404,
        "dev tokens exist only in dev mode",
        "dev token",
    );
}

#[tokio::test]
async fn a_database_outage_answers_503() {
    let app = spawn_app(Backend::Sqlite).await;
    app.node.store.close().await;
    for path in [
        "/ready",
        "/api/leaderboard/individual/weekly",
        "/api/leaderboard/individual/alltime",
        "/api/leaderboard/individual/weekly/me?user=ann",
        "/api/leaderboard/clans/weekly",
        "/telemetry/analytics/active-users",
        "/api/matches/m1",
    ] {
        let answer = call(&app, "GET", path, None, None).await;
        assert_error(&answer, 503, "database unreachable", path);
    }
    let mission = r#"{"id":"x","world":"it","title":"X","difficulty":"easy","questions":[{"text":"?","choices":["a","b"],"correct":1}]}"#;
    let answer = call(
        &app,
        "POST",
        "/admin/missions",
        Some(BEARER_ADMIN.as_str()),
        Some(mission),
    )
    .await;
    assert_error(&answer, 503, "database unreachable", "mission");
    // The flag and notification routes show the operator the cause.
    let cases = [
        ("GET", "/admin/flags", None),
        ("PUT", "/admin/flags/clans", Some(r#"{"enabled":true}"#)),
        (
            "POST",
            "/admin/notifications",
            Some(r#"{"title":"T","message":"m"}"#),
        ),
    ];
    for (method, path, body) in cases {
        let answer = call(&app, method, path, Some(BEARER_ADMIN.as_str()), body).await;
        assert_eq!(answer.status, 503, "{path}");
        let body: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
        let message = body["error"].as_str().expect("error text");
        assert!(message.contains("closed pool"), "{path}: {message}");
    }
    // Health still answers, degraded.
    let health = call(&app, "GET", "/health", None, None).await;
    assert_eq!(health.status, 200);
    assert!(
        health.body.contains(r#""db":"down""#) && health.body.contains(r#""status":"degraded""#),
        "{}",
        health.body
    );
}

#[tokio::test]
async fn typed_bodies_keep_the_bytes_the_wire_has_always_carried() {
    let app = spawn_app(Backend::Sqlite).await;
    let get = |path: &'static str| call(&app, "GET", path, None, None);
    let health = get("/health").await;
    assert_eq!(health.status, 200);
    assert_eq!(
        health.body,
        format!(
            r#"{{"connections":0,"db":"ok","draining":false,"node":"test-node","redis":"off","rooms":0,"status":"ok","version":"{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(get("/ready").await.body, r#"{"ready":true}"#);
    assert_eq!(
        get("/telemetry/analytics/active-users").await.body,
        r#"{"dau":0,"mau":0,"online":0,"wau":0}"#
    );
    let week = juno_server::ops::Week::containing(chrono::Utc::now()).label;
    assert_eq!(
        get("/api/leaderboard/individual/weekly/me?user=nobody")
            .await
            .body,
        format!(r#"{{"entries":[],"points":0,"rank":null,"user":"nobody","week":"{week}"}}"#)
    );
    app.scalar(
        "INSERT INTO users (user_id, name, total_points) VALUES ('p1', 'Pia', 900) RETURNING 1",
    )
    .await;
    assert_eq!(
        get("/api/leaderboard/individual/alltime").await.body,
        r#"{"entries":[{"name":"Pia","points":900,"rank":1,"user":"p1"}]}"#
    );
    assert_eq!(
        get("/api/leaderboard/clans/weekly").await.body,
        format!(r#"{{"entries":[],"week":"{week}"}}"#)
    );

    let mission = r#"{"id":"it_basics","world":"it","title":"IT Basics","difficulty":"easy","questions":[{"text":"2+2?","choices":["3","4"],"correct":1}]}"#;
    let created = call(
        &app,
        "POST",
        "/admin/missions",
        Some(BEARER_ADMIN.as_str()),
        Some(mission),
    )
    .await;
    assert_eq!(
        (created.status, created.body.as_str()),
        (201, r#"{"created":true,"id":"it_basics"}"#)
    );
    let replaced = call(
        &app,
        "POST",
        "/admin/missions",
        Some(BEARER_ADMIN.as_str()),
        Some(mission),
    )
    .await;
    assert_eq!(
        (replaced.status, replaced.body.as_str()),
        (200, r#"{"created":false,"id":"it_basics"}"#)
    );

    let put = |body: &'static str| {
        call(
            &app,
            "PUT",
            "/admin/flags/clans",
            Some(BEARER_ADMIN.as_str()),
            Some(body),
        )
    };
    assert_eq!(
        put(r#"{"enabled":true}"#).await.body,
        r#"{"enabled":true,"name":"clans","targeting":null}"#
    );
    assert_eq!(
        put(r#"{"enabled":true,"allow":["b","a"]}"#).await.body,
        r#"{"enabled":true,"name":"clans","targeting":{"allow":["a","b"],"percent":0}}"#
    );
    let flags = call(
        &app,
        "GET",
        "/admin/flags",
        Some(BEARER_ADMIN.as_str()),
        None,
    )
    .await;
    assert!(
        flags
            .body
            .starts_with(r#"{"achievements":true,"adventure_mode":true,"#),
        "{}",
        flags.body
    );

    let notified = call(
        &app,
        "POST",
        "/admin/notifications",
        Some(BEARER_ADMIN.as_str()),
        Some(r#"{"title":"T","message":"m","users":["nobody"]}"#),
    )
    .await;
    assert_eq!(notified.status, 202);
    let stored: serde_json::Value = serde_json::from_str(&notified.body).expect("json");
    assert_eq!(
        stored.as_object().map(|o| o.len()),
        Some(1),
        "{}",
        notified.body
    );
    assert!(stored["stored"].is_u64(), "{}", notified.body);

    // Last: the node stops after draining.
    let drain = call(
        &app,
        "POST",
        "/admin/drain",
        Some(BEARER_ADMIN.as_str()),
        None,
    )
    .await;
    assert_eq!(
        (drain.status, drain.body.as_str()),
        (202, r#"{"draining":true}"#)
    );
}
