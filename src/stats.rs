//! Read-only views over finished play: the weekly leaderboard and active users.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::node::Node;

/// The ISO week containing `now`: its label (`2026-W48`) and its [start, end) in UTC.
pub fn iso_week(now: DateTime<Utc>) -> (String, DateTime<Utc>, DateTime<Utc>) {
    let week = now.iso_week();
    let monday = now.date_naive() - Duration::days(now.weekday().num_days_from_monday() as i64);
    let start = Utc.from_utc_datetime(&monday.and_time(NaiveTime::MIN));
    (
        format!("{}-W{:02}", week.year(), week.week()),
        start,
        start + Duration::days(7),
    )
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<u32>,
}

pub async fn weekly_leaderboard(State(node): State<Arc<Node>>, Query(q): Query<Limit>) -> Response {
    let limit = q.limit.unwrap_or(10).clamp(1, 100);
    let (week, start, end) = iso_week(Utc::now());
    let from_redis = match &node.cluster {
        Some(cluster) => {
            cluster
                .weekly_top(&node.store, &week, (start, end), limit)
                .await
        }
        None => None,
    };
    let rows = match from_redis {
        Some(rows) => Ok(rows),
        None => node.store.points_between(start, end, limit).await,
    };
    match rows {
        Ok(rows) => {
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
    let online = match &node.cluster {
        Some(cluster) => cluster.online().await.unwrap_or(node.sessions.len() as u64),
        None => node.sessions.len() as u64,
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_week_boundaries_are_monday_midnight_utc() {
        let sunday_late = Utc
            .with_ymd_and_hms(2026, 11, 29, 23, 59, 59)
            .single()
            .expect("valid date");
        let (label, start, end) = iso_week(sunday_late);
        assert_eq!(label, "2026-W48");
        assert_eq!(
            start,
            Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0)
                .single()
                .expect("valid date")
        );
        assert_eq!(
            end,
            Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0)
                .single()
                .expect("valid date")
        );
        let monday = Utc
            .with_ymd_and_hms(2026, 11, 30, 0, 0, 0)
            .single()
            .expect("valid date");
        assert_eq!(iso_week(monday).0, "2026-W49");
        // ISO years differ from calendar years around New Year.
        let new_year = Utc
            .with_ymd_and_hms(2027, 1, 1, 12, 0, 0)
            .single()
            .expect("valid date");
        assert_eq!(iso_week(new_year).0, "2026-W53");
    }
}
