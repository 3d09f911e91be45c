//! Active users: who is online across the cluster, and who played today, this
//! week and this month.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::json;

use crate::game::Node;

pub async fn active_users(State(node): State<Arc<Node>>) -> Response {
    let online = node.cluster.directory.online(node.sessions.len()).await;
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
