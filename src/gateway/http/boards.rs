//! The leaderboard routes: individual this ISO week (from the cluster's shared
//! board when there is one, see `game/boards.rs`), individual all-time, clans
//! this week, and a player's own weekly rank with their neighbours. The last
//! three read the SQL boards of `store/ops.rs`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, StoreResultExt};
use crate::game::{boards, Node};
use crate::model::iso_week;
use crate::store::ops::{BoardEntry, ClanEntry};

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

// Response bodies. Fields are declared in alphabetical order because that is the
// order the wire has always carried (see `mod.rs`), nested rows included.

/// One row of an individual board.
#[derive(Debug, Serialize)]
pub struct PlayerRow {
    /// The player's display name (the weekly board may show an empty one).
    pub name: String,
    pub points: i64,
    /// 1 for the top row.
    pub rank: u32,
    /// The player's id.
    pub user: String,
}

impl From<BoardEntry> for PlayerRow {
    fn from(e: BoardEntry) -> PlayerRow {
        PlayerRow {
            name: e.name,
            points: e.points,
            rank: e.rank,
            user: e.user,
        }
    }
}

/// One row of the clan board.
#[derive(Debug, Serialize)]
pub struct ClanRow {
    /// The clan's id.
    pub clan: String,
    pub name: String,
    /// Members who scored this week.
    pub players: i64,
    pub points: i64,
    pub rank: u32,
}

impl From<ClanEntry> for ClanRow {
    fn from(e: ClanEntry) -> ClanRow {
        ClanRow {
            clan: e.clan,
            name: e.name,
            players: e.players,
            points: e.points,
            rank: e.rank,
        }
    }
}

/// `GET /api/leaderboard/individual/weekly`: this ISO week's top players.
#[derive(Debug, Serialize)]
pub struct WeeklyBoard {
    pub entries: Vec<PlayerRow>,
    /// The ISO week, `2026-W48`.
    pub week: String,
}

/// `GET /api/leaderboard/individual/alltime`: the top players by total points.
#[derive(Debug, Serialize)]
pub struct AllTimeBoard {
    pub entries: Vec<PlayerRow>,
}

/// `GET /api/leaderboard/clans/weekly`: this ISO week's top clans.
#[derive(Debug, Serialize)]
pub struct ClanBoard {
    pub entries: Vec<ClanRow>,
    /// The ISO week, `2026-W48`.
    pub week: String,
}

/// `GET /api/leaderboard/individual/weekly/me`: a player's place this week.
#[derive(Debug, Serialize)]
pub struct MyWeek {
    /// The player's row with up to `around` rows above and below; empty when unranked.
    pub entries: Vec<PlayerRow>,
    pub points: i64,
    /// `null` when the player has no points this week.
    pub rank: Option<u32>,
    pub user: String,
    /// The ISO week, `2026-W48`.
    pub week: String,
}

fn rows<T, R: From<T>>(entries: Vec<T>) -> Vec<R> {
    entries.into_iter().map(R::from).collect()
}

/// `GET /api/leaderboard/individual/weekly?limit=N`.
pub async fn weekly(
    State(node): State<Arc<Node>>,
    Query(q): Query<Limit>,
) -> Result<Json<WeeklyBoard>, ApiError> {
    let (week, top) = boards::weekly_top(&node, q.rows())
        .await
        .or_database_unreachable("reading leaderboard")?;
    let entries = top
        .into_iter()
        .zip(1..)
        .map(|((user, name, points), rank)| PlayerRow {
            name,
            points,
            rank,
            user,
        })
        .collect();
    Ok(Json(WeeklyBoard { entries, week }))
}

/// `GET /api/leaderboard/individual/alltime?limit=N`.
pub async fn alltime(
    State(node): State<Arc<Node>>,
    Query(q): Query<Limit>,
) -> Result<Json<AllTimeBoard>, ApiError> {
    let entries = node
        .store
        .alltime_board(q.rows())
        .await
        .or_database_unreachable("reading all-time leaderboard")?;
    Ok(Json(AllTimeBoard {
        entries: rows(entries),
    }))
}

/// `GET /api/leaderboard/clans/weekly?limit=N`.
pub async fn clans_weekly(
    State(node): State<Arc<Node>>,
    Query(q): Query<Limit>,
) -> Result<Json<ClanBoard>, ApiError> {
    let (week, start, end) = iso_week(Utc::now());
    let entries = node
        .store
        .clan_board(start, end, q.rows())
        .await
        .or_database_unreachable("reading clan leaderboard")?;
    Ok(Json(ClanBoard {
        entries: rows(entries),
        week,
    }))
}

/// `GET /api/leaderboard/individual/weekly/me?user=ID&around=N` (`around` 0–50, default 2).
pub async fn weekly_me(
    State(node): State<Arc<Node>>,
    Query(q): Query<Me>,
) -> Result<Json<MyWeek>, ApiError> {
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
    Ok(Json(MyWeek {
        entries: rows(me.entries),
        points: me.points,
        rank: me.rank,
        user,
        week,
    }))
}
