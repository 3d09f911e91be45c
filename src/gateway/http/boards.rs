//! The leaderboard routes: individual this ISO week (from the cluster's shared
//! board when there is one, see `game/boards.rs`), individual all-time, clans
//! this week, and a player's own weekly rank with their neighbours. The last
//! three read the SQL boards of `store/ops.rs`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use crate::game::{boards, Node};
use crate::model::iso_week;

/// Longest board one request may ask for.
const MAX_LIMIT: u32 = 100;
/// Most neighbours above and below a player's own row.
const MAX_AROUND: u32 = 50;

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<u32>,
}

#[derive(Deserialize)]
pub struct Me {
    user: Option<String>,
    around: Option<u32>,
}

fn unavailable(what: &str, e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "reading {what}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "database unreachable"})),
    )
        .into_response()
}

/// `GET /api/leaderboard/individual/weekly?limit=N`: `{"week":"2026-W48","entries":[{rank,user,name,points}]}`.
pub async fn weekly(State(node): State<Arc<Node>>, Query(q): Query<Limit>) -> Response {
    let limit = q.limit.unwrap_or(10).clamp(1, MAX_LIMIT);
    let rows = boards::weekly_top(&node, limit).await;
    match rows {
        Ok((week, rows)) => {
            let entries: Vec<_> = rows
                .into_iter()
                .enumerate()
                .map(|(i, (user, name, points))| json!({"rank": i + 1, "user": user, "name": name, "points": points}))
                .collect();
            Json(json!({ "week": week, "entries": entries })).into_response()
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reading leaderboard");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "database unreachable"})),
            )
                .into_response()
        }
    }
}

/// `GET /api/leaderboard/individual/alltime?limit=N`: `{"entries":[{rank,user,name,points}]}`.
pub async fn alltime(State(node): State<Arc<Node>>, Query(q): Query<Limit>) -> Response {
    let limit = q.limit.unwrap_or(10).clamp(1, MAX_LIMIT);
    match node.store.alltime_board(limit).await {
        Ok(entries) => Json(json!({ "entries": entries })).into_response(),
        Err(e) => unavailable("all-time leaderboard", e),
    }
}

/// `GET /api/leaderboard/clans/weekly?limit=N`:
/// `{"week":"2026-W48","entries":[{rank,clan,name,points,players}]}`.
pub async fn clans_weekly(State(node): State<Arc<Node>>, Query(q): Query<Limit>) -> Response {
    let limit = q.limit.unwrap_or(10).clamp(1, MAX_LIMIT);
    let (week, start, end) = iso_week(Utc::now());
    match node.store.clan_board(start, end, limit).await {
        Ok(entries) => Json(json!({ "week": week, "entries": entries })).into_response(),
        Err(e) => unavailable("clan leaderboard", e),
    }
}

/// `GET /api/leaderboard/individual/weekly/me?user=ID&around=N`:
/// `{"week","user","rank"(null if unranked),"points","entries":[…]}`.
pub async fn weekly_me(State(node): State<Arc<Node>>, Query(q): Query<Me>) -> Response {
    let Some(user) = q.user.filter(|u| juno_protocol::limits::valid_user_id(u)) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "user must be 1-64 of [A-Za-z0-9_-]"})),
        )
            .into_response();
    };
    let around = q.around.unwrap_or(2).min(MAX_AROUND);
    let (week, start, end) = iso_week(Utc::now());
    match node.store.board_around(&user, start, end, around).await {
        Ok(me) => Json(json!({
            "week": week,
            "user": user,
            "rank": me.rank,
            "points": me.points,
            "entries": me.entries,
        }))
        .into_response(),
        Err(e) => unavailable("weekly rank", e),
    }
}
