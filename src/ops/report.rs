//! `admin report`: the guide's generate-monthly-report as JSON — totalUsers, mau,
//! missionsCompleted and topWorld as its script computes them, plus the other
//! numbers its output list names that this schema can answer (top worlds, average
//! mission duration, new users and their day-1 / day-7 retention).

use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::store::Store;

/// The report for the `days` before `now`, as the JSON object the command prints.
pub async fn monthly_report(
    store: &Store,
    now: DateTime<Utc>,
    days: i64,
    out: &mut dyn Write,
) -> anyhow::Result<Value> {
    anyhow::ensure!(days > 0, "--days must be at least 1");
    writeln!(
        out,
        "reading the last {days} days up to {}",
        now.to_rfc3339()
    )?;
    let numbers = store.report_numbers(now, days).await?;
    let mut report = serde_json::to_value(&numbers)?;
    report["generatedAt"] = json!(now.to_rfc3339());
    report["periodDays"] = json!(days);
    writeln!(
        out,
        "done: {} users, {} active, {} missions completed, top world {}",
        numbers.total_users,
        numbers.mau,
        numbers.missions_completed,
        numbers
            .top_world
            .as_ref()
            .map_or("none", |w| w.world.as_str())
    )?;
    Ok(report)
}

/// The guide's file name for a report made at `now`: `reports/monthly_YYYY-MM-DD.json`.
pub fn report_file_name(now: DateTime<Utc>) -> String {
    format!("reports/monthly_{}.json", now.format("%Y-%m-%d"))
}
