//! The HTTP endpoints: health, readiness, metrics, admin auth, missions, matches, dev tokens.

use crate::support::*;

#[tokio::test]
async fn health_ready_and_metrics_answer() {
    let app = spawn_app(Backend::Sqlite).await;
    let health: serde_json::Value = get_json(&app.http, app.url("/health")).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["db"], "ok");
    assert_eq!(health["redis"], "off");
    assert_eq!(health["node"], "test-node");
    assert_eq!(
        app.http
            .get(app.url("/ready"))
            .send()
            .await
            .expect("http")
            .status(),
        200
    );
    let _ann = app.connect("ann").await;
    let metrics = app.metrics().await;
    for name in [
        "requests_total",
        "response_time_seconds",
        "active_users 1",
        "ws_connections 1",
        "frames_sent_total",
        "process_resident_memory_bytes",
    ] {
        assert!(metrics.contains(name), "missing {name} in\n{metrics}");
    }
    assert!(
        metrics.contains(r#"requests_total{method="GET",path="/health",status="200"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn admin_api_needs_the_bearer_token_and_validates_missions() {
    let app = spawn_app(Backend::Sqlite).await;
    let mission = serde_json::json!({"id": "it_basics", "world": "it", "title": "IT Basics", "difficulty": "easy",
        "questions": [{"text": "2+2?", "choices": ["3", "4"], "correct": 1}]});
    let post = |token: Option<&str>, body: serde_json::Value| {
        let mut req = app.http.post(app.url("/admin/missions")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(
        post(None, mission.clone()).await.expect("http").status(),
        401
    );
    assert_eq!(
        post(Some("wrong"), mission.clone())
            .await
            .expect("http")
            .status(),
        401
    );
    assert_eq!(
        post(Some(ADMIN), mission.clone())
            .await
            .expect("http")
            .status(),
        201
    );
    assert_eq!(
        post(Some(ADMIN), mission.clone())
            .await
            .expect("http")
            .status(),
        200
    );
    let mut bad = mission.clone();
    bad["questions"][0]["correct"] = 5.into();
    let refused = post(Some(ADMIN), bad).await.expect("http");
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.expect("text").contains("correct"));
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM missions WHERE id = 'it_basics'")
            .await,
        1
    );
    let flags: serde_json::Value = app
        .http
        .get(app.url("/admin/flags"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("http")
        .json()
        .await
        .expect("json");
    assert_eq!(flags["pvp_duels"], true);
    assert_eq!(flags["premium_currency"], false);
    assert_eq!(flags.as_object().expect("map").len(), 18);

    let disabled = spawn_with(Backend::Sqlite, |c| c.admin_token = None).await;
    let status = disabled
        .http
        .get(disabled.url("/admin/flags"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("http")
        .status();
    assert_eq!(status, 403);
}

#[tokio::test]
async fn unknown_matches_are_404_and_dev_tokens_exist_only_in_dev_mode() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(
        app.http
            .get(app.url("/api/matches/nope"))
            .send()
            .await
            .expect("http")
            .status(),
        404
    );
    let dev = app
        .http
        .post(app.url("/auth/dev-token"))
        .json(&serde_json::json!({"user": "ann"}))
        .send()
        .await
        .expect("http");
    assert_eq!(dev.status(), 404);

    let dev_app = spawn_with(Backend::Sqlite, |c| c.jwt_secrets.clear()).await;
    let token: serde_json::Value = dev_app
        .http
        .post(dev_app.url("/auth/dev-token"))
        .json(&serde_json::json!({"user": "ann", "name": "Ann"}))
        .send()
        .await
        .expect("http")
        .json()
        .await
        .expect("json");
    let token = token["token"].as_str().expect("token").to_string();
    let (ws, _) = tokio_tungstenite::connect_async(dev_app.ws_url(&token))
        .await
        .expect("dev token connects");
    drop(ws);
    let bad = dev_app
        .http
        .post(dev_app.url("/auth/dev-token"))
        .json(&serde_json::json!({"user": "a b"}))
        .send()
        .await
        .expect("http");
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_ten_percent_rollout_reaches_a_stable_tenth_of_users() {
    let app = spawn_app(Backend::Sqlite).await;
    let put = |body: serde_json::Value| {
        app.http
            .put(app.url("/admin/flags/clans"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    let mut watcher_in = None;
    let mut watcher_out = None;
    for i in 0..40 {
        let user = format!("u{i}");
        let in_tenth = juno_server::model::flags::bucket("clans", &user) < 10;
        if in_tenth && watcher_in.is_none() {
            watcher_in = Some(app.connect(&user).await);
        } else if !in_tenth && watcher_out.is_none() {
            watcher_out = Some(app.connect(&user).await);
        }
    }
    let (mut inside, mut outside) = (
        watcher_in.expect("someone in the tenth"),
        watcher_out.expect("someone outside"),
    );
    assert_eq!(
        put(serde_json::json!({"enabled": true, "percent": 10}))
            .await
            .expect("http")
            .status(),
        200
    );
    let pushed = inside
        .expect("flags", |m| crate::is!(m, juno_protocol::ServerMsg::Flags))
        .await;
    assert!(pushed.flags["clans"]);
    let mut on = 0;
    for i in 0..300 {
        let user = format!("r{i}");
        let c = app.connect(&user).await;
        let expected = juno_server::model::flags::bucket("clans", &user) < 10;
        assert_eq!(c.welcome.flags["clans"], expected, "{user}");
        on += usize::from(expected);
    }
    assert!((10..=60).contains(&on), "about a tenth of 300: {on}");
    // The allowlist reaches a user outside the tenth; nobody else is told anything.
    let outsider = outside.user.clone();
    let body = serde_json::json!({"enabled": true, "percent": 10, "allow": [outsider]});
    assert_eq!(put(body).await.expect("http").status(), 200);
    let pushed = outside
        .expect("flags", |m| crate::is!(m, juno_protocol::ServerMsg::Flags))
        .await;
    assert!(pushed.flags["clans"]);
    // A user whose flags did not change gets no push. The PUT pushed to this node's
    // clients before it answered, and its echo through the node's own bus is handled
    // in order before a later bus message: a notification for `inside` sent now. Any
    // flags push for `inside` would have been queued before that notification.
    let resp = app
        .http
        .post(app.url("/admin/notifications"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"title": "after the rollout", "message": "m", "users": [inside.user]}))
        .send()
        .await
        .expect("http");
    assert_eq!(resp.status(), 202);
    let n = inside
        .expect_none_before(
            "the later notification",
            |m| crate::is!(m, juno_protocol::ServerMsg::Notification),
            "a flags push (its flags did not change)",
            |m| matches!(m, juno_protocol::ServerMsg::Flags(_)),
        )
        .await;
    assert_eq!(n.title, "after the rollout");
}

#[tokio::test]
async fn activating_an_event_from_the_events_file_notifies_everyone() {
    let events = std::env::temp_dir().join(format!("juno-events-{:x}.json", rand::random::<u64>()));
    std::fs::write(
        &events,
        r#"{"halloween_2026": {"name": "Halloween", "description": "Gruselige Fragen!"}}"#,
    )
    .expect("write");
    let path = events.clone();
    let app = spawn_with(Backend::Sqlite, move |c| c.events_file = path).await;
    let mut ann = app.connect("ann").await;
    let _bob = app.connect("bob").await;
    app.eventually_scalar("SELECT COUNT(*) FROM users", 2).await;
    let activate = |id: &str| {
        app.http
            .post(app.url(&format!("/admin/events/{id}/activate")))
            .bearer_auth(ADMIN)
            .send()
    };
    assert_eq!(activate("nope").await.expect("http").status(), 404);
    let resp = activate("halloween_2026").await.expect("http");
    assert_eq!(resp.status(), 202);
    let n = ann
        .expect("notification", |m| {
            crate::is!(m, juno_protocol::ServerMsg::Notification)
        })
        .await;
    assert_eq!(n.kind, "event_started");
    assert!(n.title.contains("Halloween"));
    app.eventually_scalar(
        "SELECT COUNT(*) FROM notifications WHERE kind = 'event_started'",
        2,
    )
    .await;
    let _ = std::fs::remove_file(events);
}
