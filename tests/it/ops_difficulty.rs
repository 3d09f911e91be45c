//! Adaptive difficulty with an external policy service: a tiny axum service on port 0
//! chooses the questions while it runs; once it is stopped (or slow, or wrong) the YAML
//! policies choose, quickly, and the set is still a valid match.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use juno_protocol::{Mission, Question};
use juno_server::game::difficulty::{Difficulty, PlayerStats, Source, SERVICE_TIMEOUT};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// Ten questions, two at each level 1..=5.
fn mission() -> Mission {
    Mission {
        id: "levels".into(),
        world: "it".into(),
        title: "Levels".into(),
        difficulty: "medium".into(),
        questions: (0..10)
            .map(|i| Question {
                text: format!("Q{i}"),
                choices: vec!["a".into(), "b".into(), "c".into()],
                correct: 1,
                difficulty: Some((i / 2 + 1) as u8),
            })
            .collect(),
    }
}

fn players() -> Vec<PlayerStats> {
    vec![PlayerStats {
        user: "ann".into(),
        rating: 1500.0,
        recent_success: Some(0.7),
    }]
}

/// Starts a policy service answering with `answer(request)` after `delay`; returns its
/// URL, a request counter and a handle that stops it.
async fn service(
    delay: Duration,
    answer: fn(&Value) -> Value,
) -> (
    String,
    Arc<AtomicUsize>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new().route(
        "/select",
        post(move |Json(req): Json<Value>| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                // The delay is the scenario: a slow service.
                tokio::time::sleep(delay).await;
                Json(answer(&req))
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
    });
    (url, calls, stop, task)
}

/// The service's choice: the last `count` questions of the pool, hardest first.
fn hardest(req: &Value) -> Value {
    let pool = req["mission"]["levels"].as_array().expect("levels").len();
    let count = req["count"].as_u64().expect("count") as usize;
    json!({ "questions": (pool - count..pool).rev().collect::<Vec<_>>() })
}

fn valid(m: &Mission, qs: &[Question], count: usize) {
    assert_eq!(qs.len(), count);
    assert!(qs.iter().all(|q| m.questions.contains(q)));
    let mut texts: Vec<&str> = qs.iter().map(|q| q.text.as_str()).collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), count, "no repeats");
}

#[tokio::test]
async fn the_policy_service_is_asked_first_and_yaml_takes_over_when_it_stops() {
    let (url, calls, stop, task) = service(Duration::ZERO, hardest).await;
    let d = Difficulty::builtin(Some(&url)).expect("policies");
    let m = mission();
    let chosen = d.choose_questions(&m, 4, &players(), 1).await;
    assert_eq!(
        chosen.iter().map(|q| q.text.as_str()).collect::<Vec<_>>(),
        ["Q9", "Q8", "Q7", "Q6"],
        "the service's choice"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Without the service (mangle_zpd off) the YAML policy decides even though it runs.
    let local = d.select(&m, 4, &players(), 1, false).await;
    assert_eq!(local.source, Source::Yaml);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Stop the service: matches still get a valid set, from the YAML policies, at once.
    stop.send(()).expect("stop");
    task.await.expect("stopped");
    let started = Instant::now();
    let s = d.select(&m, 4, &players(), 1, true).await;
    assert_eq!(s.source, Source::Yaml);
    assert!(
        started.elapsed() < SERVICE_TIMEOUT * 2,
        "{:?}",
        started.elapsed()
    );
    let qs = d.choose_questions(&m, 4, &players(), 2).await;
    valid(&m, &qs, 4);
    // In the zone at a medium mission: the YAML policy keeps to levels 2-4.
    assert!(qs
        .iter()
        .all(|q| (2..=4).contains(&q.difficulty.expect("levelled"))));
    // The same seed gives the same match from the YAML policies.
    assert_eq!(d.choose_questions(&m, 4, &players(), 2).await, qs);
}

#[tokio::test]
async fn a_slow_service_times_out_into_the_yaml_policies() {
    let (url, calls, _stop, _task) = service(Duration::from_secs(3), hardest).await;
    let d = Difficulty::builtin(Some(&url)).expect("policies");
    let m = mission();
    let started = Instant::now();
    let s = d.select(&m, 5, &players(), 9, true).await;
    let took = started.elapsed();
    assert_eq!(s.source, Source::Yaml);
    assert!(
        took >= SERVICE_TIMEOUT && took < SERVICE_TIMEOUT * 3,
        "{took:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Resting after the failure: the next match does not wait on it again.
    let started = Instant::now();
    valid(&m, &d.choose_questions(&m, 5, &players(), 10).await, 5);
    assert!(
        started.elapsed() < SERVICE_TIMEOUT,
        "not waiting on a resting service"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_wrong_answer_from_the_service_is_not_trusted() {
    fn out_of_range(_: &Value) -> Value {
        json!({ "questions": [0, 1, 2, 99] })
    }
    fn repeats(_: &Value) -> Value {
        json!({ "questions": [3, 3, 3, 3] })
    }
    fn garbage(_: &Value) -> Value {
        json!({ "pick": "anything" })
    }
    for answer in [out_of_range, repeats, garbage] {
        let (url, calls, _stop, _task) = service(Duration::ZERO, answer).await;
        let d = Difficulty::builtin(Some(&url)).expect("policies");
        let m = mission();
        let s = d.select(&m, 4, &players(), 5, true).await;
        assert_eq!(s.source, Source::Yaml);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        valid(&m, &d.choose_questions(&m, 4, &players(), 5).await, 4);
    }
}
