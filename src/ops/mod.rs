//! The operator's toolbox: `juno-server admin …`, the Rust counterparts of the
//! operations guide's scripts (award-weekly-rewards, update-clan-stats, cleanup,
//! generate-monthly-report, add-missions).
//!
//! Every command prints its progress and ends with one summary line, and is safe to
//! run again: rewards are paid once per ISO week, clan stats are recomputed from the
//! source rows, cleanup deletes by age, missions are upserted. The SQL lives in
//! `store/ops.rs`; this module decides what to run and what to print.

mod clans;
mod cleanup;
mod missions;
mod report;
mod week;
mod weekly;

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::store::Store;

pub use clans::update_clan_stats;
pub use cleanup::cleanup;
pub use missions::{add_missions, AddedMissions};
pub use report::{monthly_report, report_file_name};
pub use week::Week;
pub use weekly::{award_weekly_rewards, reward_for_rank, AwardSummary};

/// `juno-server admin <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Pay the weekly leaderboard rewards of an ISO week (default: last week), once.
    AwardWeeklyRewards {
        /// The week to pay, e.g. 2026-W48; it must be over.
        #[arg(long)]
        week: Option<String>,
        /// How many of the week's best players are paid.
        #[arg(long, default_value_t = 10)]
        top: u32,
    },
    /// Recompute every clan's members, points and this week's points.
    UpdateClanStats,
    /// Delete telemetry over 90 days, expired notifications and unclaimed rewards over 30 days.
    Cleanup,
    /// The monthly report as JSON (totalUsers, mau, missionsCompleted, topWorld, …).
    Report {
        /// Write the JSON here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The period the report covers, in days before now.
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
    /// Validate and upsert the mission(s) in a JSON file (one mission or a list).
    AddMission {
        /// A JSON file: a mission object as POST /admin/missions takes, or an array of them.
        file: PathBuf,
    },
}

/// Runs one admin command against `store` at `now`. Progress and the summary go to
/// `out` (standard output); only `report` without `--out` prints its JSON there and
/// its progress to `err` (standard error), so the JSON can be piped.
pub async fn run(
    store: &Store,
    command: AdminCommand,
    now: DateTime<Utc>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        AdminCommand::AwardWeeklyRewards { week, top } => {
            award_weekly_rewards(store, week.as_deref(), top, now, out).await?;
        }
        AdminCommand::UpdateClanStats => {
            update_clan_stats(store, now, out).await?;
        }
        AdminCommand::Cleanup => {
            cleanup(store, now, out).await?;
        }
        AdminCommand::Report {
            out: Some(path),
            days,
        } => {
            let report = monthly_report(store, now, days, out).await?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(
                &path,
                format!("{}\n", serde_json::to_string_pretty(&report)?),
            )?;
            writeln!(out, "report written to {}", path.display())?;
        }
        AdminCommand::Report { out: None, days } => {
            let report = monthly_report(store, now, days, err).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        }
        AdminCommand::AddMission { file } => {
            add_missions(store, &file, out).await?;
        }
    }
    Ok(())
}
