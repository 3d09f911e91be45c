//! `admin update-clan-stats`: recomputes each clan's cached numbers (members,
//! all-time points, this ISO week's points) from clan_members and mission_progress.
//! Recomputing from the source rows, never adding to the cache, is what makes a
//! re-run harmless.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::week::Week;
use crate::store::ops::ClanStats;
use crate::store::Store;

/// Refreshes every clan; returns their new numbers.
pub async fn update_clan_stats(
    store: &Store,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<Vec<ClanStats>> {
    let week = Week::containing(now);
    let clans = store.clans().await?;
    writeln!(out, "updating {} clans for {}", clans.len(), week.label)?;
    let mut stats = Vec::with_capacity(clans.len());
    for (i, (id, _)) in clans.iter().enumerate() {
        // A clan deleted since the listing simply has nothing to refresh.
        if let Some(s) = store
            .refresh_clan_stats(id, &week.label, week.start, week.end, now)
            .await?
        {
            writeln!(
                out,
                "  [{}/{}] {:<24} {:>4} members {:>10} points {:>8} this week",
                i + 1,
                clans.len(),
                s.clan,
                s.members,
                s.points,
                s.weekly_points
            )?;
            stats.push(s);
        }
    }
    let members: i64 = stats.iter().map(|s| s.members).sum();
    writeln!(
        out,
        "done: {} clans, {members} members updated",
        stats.len()
    )?;
    Ok(stats)
}
