//! The leaderboard routes: individual this ISO week (from the cluster's shared
//! board when there is one, see `game/boards.rs`), individual all-time, clans
//! this week, and a player's own weekly rank with their neighbours. The last
//! three read the SQL boards of `store/ops.rs`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, StoreResultExt};
use crate::game::{boards, Node};
use crate::model::iso_week;

/// Rows a board shows when the request does not say.
const DEFAULT_LIMIT: u32 = 10;
/// Longest board one request may ask for.
const MAX_LIMIT: u32 = 100;
/// Neighbours above and below a player's own row when the request does not say.
const DEFAULT_AROUND: u32 = 2;
/// Most neighbours above and below a player's own row.
const MAX_AROUND: u32 = 50;

/// `?limit=N`: how many rows, 1–100 (default 10).
#[derive(Deserialize)]
pub struct Limit {
    limit: Option<u32>,
}

impl Limit {
    fn rows(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// `?user=ID&around=N` of `weekly/me`.
#[derive(Deserialize)]
pub struct Me {
    user: Option<String>,
    around: Option<u32>,
}

/// `GET /api/leaderboard/individual/weekly?limit=N`.
pub async fn weekly(
    State(node): State<Arc<Node>>,
    Query(q): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    let (week, top) = boards::weekly_top(&node, q.rows())
        .await
        .or_database_unreachable("reading leaderboard")?;
    let entries: Vec<_> = top
        .into_iter()
        .enumerate()
        .map(|(i, (user, name, points))| json!({"rank": i + 1, "user": user, "name": name, "points": points}))
        .collect();
    Ok(Json(json!({ "week": week, "entries": entries })))
}

/// `GET /api/leaderboard/individual/alltime?limit=N`.
pub async fn alltime(
    State(node): State<Arc<Node>>,
    Query(q): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    let entries = node
        .store
        .alltime_board(q.rows())
        .await
        .or_database_unreachable("reading all-time leaderboard")?;
    Ok(Json(json!({ "entries": entries })))
}

/// `GET /api/leaderboard/clans/weekly?limit=N`.
pub async fn clans_weekly(
    State(node): State<Arc<Node>>,
    Query(q): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    let (week, start, end) = iso_week(Utc::now());
    let entries = node
        .store
        .clan_board(start, end, q.rows())
        .await
        .or_database_unreachable("reading clan leaderboard")?;
    Ok(Json(json!({ "week": week, "entries": entries })))
}

/// `GET /api/leaderboard/individual/weekly/me?user=ID&around=N` (`around` 0–50, default 2).
pub async fn weekly_me(
    State(node): State<Arc<Node>>,
    Query(q): Query<Me>,
) -> Result<Json<Value>, ApiError> {
    let Some(user) = q.user.filter(|u| juno_protocol::limits::valid_user_id(u)) else {
        return Err(ApiError::BadRequest(
            "user must be 1-64 of [A-Za-z0-9_-]".into(),
        ));
    };
    let around = q.around.unwrap_or(DEFAULT_AROUND).min(MAX_AROUND);
    let (week, start, end) = iso_week(Utc::now());
    let me = node
        .store
        .board_around(&user, start, end, around)
        .await
        .or_database_unreachable("reading weekly rank")?;
    Ok(Json(json!({
        "week": week,
        "user": user,
        "rank": me.rank,
        "points": me.points,
        "entries": me.entries,
    })))
}
