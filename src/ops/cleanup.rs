//! `admin cleanup`: the guide's cleanup.ts — telemetry older than 90 days, expired
//! notifications, unclaimed rewards older than 30 days — and nothing else.

use std::io::Write;

use chrono::{DateTime, Utc};

use crate::store::ops::CleanupCounts;
use crate::store::Store;

/// Deletes what has aged out at `now`.
pub async fn cleanup(
    store: &Store,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<CleanupCounts> {
    writeln!(out, "cleaning up as of {}", now.to_rfc3339())?;
    let mut write_error = None;
    let counts = store
        .cleanup(now, |table, so_far| {
            if let Err(e) = writeln!(out, "  {table}: {so_far} deleted") {
                write_error.get_or_insert(e);
            }
        })
        .await?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    writeln!(
        out,
        "done: deleted {} telemetry events (> 90 days), {} expired notifications, {} unclaimed rewards (> 30 days)",
        counts.telemetry_events, counts.notifications, counts.reward_items
    )?;
    Ok(counts)
}
