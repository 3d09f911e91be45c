//! Read-only views over finished play: the weekly leaderboard and active users.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use crate::game::{boards, Node};

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<u32>,
}

pub async fn weekly_leaderboard(State(node): State<Arc<Node>>, Query(q): Query<Limit>) -> Response {
    let limit = q.limit.unwrap_or(10).clamp(1, 100);
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

pub async fn active_users(State(node): State<Arc<Node>>) -> Response {
    let online = node.cluster.directory.online(node.sessions.len()).await;
    match node.store.active_users(Utc::now()).await {
        Ok((dau, wau, mau)) => {
            Json(json!({ "online": online, "dau": dau, "wau": wau, "mau": mau })).into_response()
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reading active users");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "database unreachable"})),
            )
                .into_response()
        }
    }
}
