//! The admin API (WIRE.md §2): the admin check that guards every `/admin/*`
//! route, and the mission, flag and drain routes (the notification routes are in
//! `notify.rs`).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use juno_protocol::Mission;
use serde::Deserialize;
use serde_json::json;

use super::error::error;
use super::headers::bearer;
use crate::game::{drain, flags, Node};

/// Admin auth: 403 while the admin API is disabled, 401 for anything but the right bearer token.
pub fn admin(node: &Node, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(expected) = node.config.admin_token.as_deref() else {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "admin API disabled: set JUNO_ADMIN_TOKEN",
        )));
    };
    match bearer(headers) {
        Some(token) if token == expected => Ok(()),
        _ => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "admin bearer token required",
        ))),
    }
}

pub async fn upload_mission(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Result<Json<Mission>, JsonRejection>,
) -> Response {
    if let Err(denied) = admin(&node, &headers) {
        return *denied;
    }
    let Json(mission) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let Err(e) = mission.validate() {
        return error(StatusCode::BAD_REQUEST, e.to_string());
    }
    match node.store.upsert_mission(&mission).await {
        Ok(true) => (
            StatusCode::CREATED,
            Json(json!({ "id": mission.id, "created": true })),
        )
            .into_response(),
        Ok(false) => Json(json!({ "id": mission.id, "created": false })).into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "storing mission");
            error(StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

pub async fn list_flags(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if let Err(denied) = admin(&node, &headers) {
        return *denied;
    }
    match node.store.flags().await {
        Ok(flags) => Json(flags).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

/// `PUT /admin/flags/{name}`: the switch, and optionally who it reaches.
#[derive(Deserialize)]
pub struct FlagChange {
    enabled: bool,
    /// Users who always get the flag while it is on.
    allow: Option<std::collections::BTreeSet<String>>,
    /// Share (0–100) of the other users who get it; absent with `allow` = only the allowlist
    /// when `allow` is given, everyone otherwise.
    percent: Option<u8>,
}

pub async fn set_flag(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<FlagChange>, JsonRejection>,
) -> Response {
    if let Err(denied) = admin(&node, &headers) {
        return *denied;
    }
    let Json(change) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if change.percent.is_some_and(|p| p > 100) {
        return error(StatusCode::BAD_REQUEST, "percent must be 0-100");
    }
    match node.store.set_flag(&name, change.enabled).await {
        Ok(false) => return error(StatusCode::NOT_FOUND, format!("no flag '{name}'")),
        Ok(true) => {}
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
    if change.allow.is_some() || change.percent.is_some() {
        let allow = change.allow.clone().unwrap_or_default();
        // An allowlist alone targets only those users; a percentage alone, that share.
        let percent = change.percent.or(Some(0));
        let targeting = crate::model::Targeting { allow, percent };
        if let Err(e) = node.store.set_flag_targeting(&name, &targeting).await {
            return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}"));
        }
    }
    match flags::changed(&node).await {
        Ok(flags) => {
            let targeting = flags.targeting.get(&name).cloned();
            Json(json!({ "name": name, "enabled": change.enabled, "targeting": targeting }))
                .into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

pub async fn start_drain(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if let Err(denied) = admin(&node, &headers) {
        return *denied;
    }
    tokio::spawn(drain::drain(node.clone()));
    (StatusCode::ACCEPTED, Json(json!({ "draining": true }))).into_response()
}
