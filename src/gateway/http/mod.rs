//! The HTTP surface (WIRE.md §2): the router and the request metrics. The
//! handlers live in one module per route group:
//!
//! | module | routes |
//! |---|---|
//! | `public` | `/health`, `/ready`, `/metrics`, `/api/matches/{id}`, `/auth/dev-token` |
//! | `boards` | `/api/leaderboard/…` |
//! | `stats` | `/telemetry/analytics/active-users` |
//! | `admin` | the `Admin` extractor; `/admin/missions`, `/admin/flags…`, `/admin/drain` |
//! | `notify` | `/admin/notifications`, `/admin/events/{id}/activate` |
//! | `ws` | the `/ws` upgrade |
//!
//! `error` holds `ApiError`, which every handler returns on
//! failure, and `headers` what handlers read from request headers.
//!
//! Every JSON body is a `#[derive(Serialize)]` type declared beside its
//! handlers. Their fields are in alphabetical order: the bodies used to be
//! `serde_json::Value` maps, which sort their keys, and serde writes a struct's
//! fields in declaration order — so the bytes on the wire stay the same.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;

use super::Gateway;
use crate::game::Node;

mod admin;
mod boards;
mod error;
mod headers;
mod notify;
mod public;
mod stats;
mod ws;

/// Every route of the node.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/health", get(public::health))
        .route("/ready", get(public::ready))
        .route("/metrics", get(public::metrics))
        .route("/api/leaderboard/individual/weekly", get(boards::weekly))
        .route("/api/leaderboard/individual/alltime", get(boards::alltime))
        .route(
            "/api/leaderboard/individual/weekly/me",
            get(boards::weekly_me),
        )
        .route("/api/leaderboard/clans/weekly", get(boards::clans_weekly))
        .route(
            "/telemetry/analytics/active-users",
            get(stats::active_users),
        )
        .route("/api/matches/{id}", get(public::match_record))
        .route("/auth/dev-token", post(public::dev_token))
        .route("/admin/missions", post(admin::upload_mission))
        .route("/admin/flags", get(admin::list_flags))
        .route("/admin/flags/{name}", put(admin::set_flag))
        .route("/admin/drain", post(admin::start_drain))
        .route("/admin/notifications", post(notify::bulk))
        .route("/admin/events/{id}/activate", post(notify::activate_event))
        .route("/ws", get(ws::upgrade))
        .layer(middleware::from_fn_with_state(
            gateway.node.clone(),
            track_requests,
        ))
        .layer(middleware::map_response(security_headers))
        .with_state(gateway)
}

/// Headers every answer carries, so a node reached without the balancer (or
/// behind one that adds nothing) is as safe as behind nginx: nothing may frame
/// it, sniff its types, or run what it serves as a page.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Counts every request in `requests_total` and times it in `response_time_seconds`.
async fn track_requests(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    node.metrics
        .requests_total
        .with_label_values(&[&method, &path, &status])
        .inc();
    node.metrics
        .response_time_seconds
        .with_label_values(&[&method, &path])
        .observe(started.elapsed().as_secs_f64());
    response
}
