//! Active users: who is online across the cluster, and who played today, this
//! week and this month.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde::Serialize;

use super::error::{ApiError, StoreResultExt};
use crate::game::Node;

/// `GET /telemetry/analytics/active-users`. Fields are declared in alphabetical
/// order because that is the order the wire has always carried (see `mod.rs`).
#[derive(Debug, Serialize)]
pub struct ActiveUsers {
    /// Distinct players in the last day.
    pub dau: i64,
    /// Distinct players in the last 30 days.
    pub mau: i64,
    /// Connections across the whole cluster now.
    pub online: u64,
    /// Distinct players in the last 7 days.
    pub wau: i64,
}

/// `GET /telemetry/analytics/active-users`.
pub async fn active_users(State(node): State<Arc<Node>>) -> Result<Json<ActiveUsers>, ApiError> {
    let online = node.cluster.directory.online(node.sessions.len()).await;
    let (dau, wau, mau) = node
        .store
        .active_users(Utc::now())
        .await
        .or_database_unreachable("reading active users")?;
    Ok(Json(ActiveUsers {
        dau,
        mau,
        online,
        wau,
    }))
}
