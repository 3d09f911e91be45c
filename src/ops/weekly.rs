//! `admin award-weekly-rewards`: pays the best players of an ISO week exactly once.
//!
//! Points are `mission_progress.score` of missions finished inside the week
//! [Monday 00:00 UTC, next Monday), the same numbers as the weekly leaderboard.
//! Only a week that is over can be paid (its ranking can no longer change), and a
//! week that was paid is settled: a second run pays nothing and says so.

use std::io::Write;

use anyhow::bail;
use chrono::{DateTime, Utc};

use super::week::Week;
use crate::store::ops::WeeklyAward;
use crate::store::Store;

/// Coins for a weekly rank: the podium gets more, the rest of the top ten a share.
pub fn reward_for_rank(rank: u32) -> i64 {
    match rank {
        1 => 1000,
        2 => 500,
        3 => 250,
        4..=10 => 100,
        _ => 50,
    }
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct AwardSummary {
    pub week: Week,
    /// The week's awards, paid by this run or (`paid_now == false`) an earlier one.
    pub awards: Vec<WeeklyAward>,
}

impl AwardSummary {
    /// Rewards this run paid.
    pub fn paid_now(&self) -> usize {
        self.awards.iter().filter(|a| a.paid_now).count()
    }
}

/// Pays week `week` (default: the last full week before `now`) to its `top` players.
pub async fn award_weekly_rewards(
    store: &Store,
    week: Option<&str>,
    top: u32,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<AwardSummary> {
    let week = match week {
        Some(label) => Week::parse(label)?,
        None => Week::before(now),
    };
    if !week.is_over(now) {
        bail!(
            "{} is not over until {}: its ranking may still change, so it cannot be paid yet",
            week.label,
            week.end.to_rfc3339()
        );
    }
    if top == 0 {
        bail!("--top must be at least 1");
    }
    writeln!(
        out,
        "awarding {} ({} to {}), top {top}",
        week.label,
        week.start.to_rfc3339(),
        week.end.to_rfc3339()
    )?;
    let awards = store
        .award_week(&week.label, week.start, week.end, top, reward_for_rank, now)
        .await?;
    for a in &awards {
        writeln!(
            out,
            "  #{:<3} {:<24} {:>8} points  {:>6} coins  {}",
            a.rank,
            a.user,
            a.points,
            a.amount,
            if a.paid_now { "paid" } else { "already paid" }
        )?;
    }
    let summary = AwardSummary { week, awards };
    let paid = summary.paid_now();
    let coins: i64 = summary
        .awards
        .iter()
        .filter(|a| a.paid_now)
        .map(|a| a.amount)
        .sum();
    if summary.awards.is_empty() {
        writeln!(
            out,
            "done: {} had no points, nothing to pay",
            summary.week.label
        )?;
    } else if paid == 0 {
        writeln!(
            out,
            "done: {} was already paid ({} rewards), nothing paid now",
            summary.week.label,
            summary.awards.len()
        )?;
    } else {
        writeln!(
            out,
            "done: {} paid {paid} rewards, {coins} coins",
            summary.week.label
        )?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn better_ranks_never_get_less() {
        for rank in 1..50 {
            assert!(reward_for_rank(rank) >= reward_for_rank(rank + 1));
            assert!(reward_for_rank(rank) > 0);
        }
    }
}
