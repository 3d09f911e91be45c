//! Active users: who is online across the cluster, and who played today, this
//! week and this month.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::error::{ApiError, StoreResultExt};
use crate::game::Node;

/// `GET /telemetry/analytics/active-users`.
pub async fn active_users(State(node): State<Arc<Node>>) -> Result<Json<Value>, ApiError> {
    let online = node.cluster.directory.online(node.sessions.len()).await;
    let (dau, wau, mau) = node
        .store
        .active_users(Utc::now())
        .await
        .or_database_unreachable("reading active users")?;
    Ok(Json(
        json!({ "online": online, "dau": dau, "wau": wau, "mau": mau }),
    ))
}
