//! The weekly leaderboard: from the cluster's shared board when there is one
//! (refilled from the database when Redis lost it), else from the database.

use chrono::Utc;

use super::Node;
use crate::cluster::{BoardRows, Weekly};
use crate::model::iso_week;

/// Entries put back into a shared board Redis lost (the board never shows more).
const REFILL_LIMIT: u32 = 1000;

/// This ISO week's label and its top `limit` as `(user, name, points)`.
pub async fn weekly_top(node: &Node, limit: u32) -> anyhow::Result<(String, BoardRows)> {
    let (week, start, end) = iso_week(Utc::now());
    let rows = match node.cluster.board.weekly_top(&week, limit).await {
        Weekly::Rows(rows) => rows,
        Weekly::Missing => {
            let mut rows = node.store.points_between(start, end, REFILL_LIMIT).await?;
            if let Err(e) = node.cluster.board.fill_week(&week, &rows).await {
                tracing::warn!(error = %format!("{e:#}"), "refilling the weekly board");
            }
            rows.truncate(limit as usize);
            rows
        }
        Weekly::Unavailable => node.store.points_between(start, end, limit).await?,
    };
    Ok((week, rows))
}
