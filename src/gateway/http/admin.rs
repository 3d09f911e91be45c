//! The admin API (WIRE.md §2): the [`Admin`] extractor that guards every
//! `/admin/*` route, and the mission, flag and drain routes (the notification
//! routes are in `notify.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use juno_protocol::Mission;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, StoreResultExt};
use super::headers::bearer;
use crate::game::{drain, flags, Node};
use crate::model::Targeting;

/// Proof that a request carries the admin bearer token. An admin handler takes
/// `_: Admin` as its first extractor, so the token is checked before anything
/// else is read, the body included. Refuses with 403 while the admin API is
/// disabled (no `JUNO_ADMIN_TOKEN`), with 401 for anything but the right token.
pub struct Admin;

impl<S> FromRequestParts<S> for Admin
where
    Arc<Node>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Admin, ApiError> {
        let node = Arc::<Node>::from_ref(state);
        check(node.config.admin_token.as_deref(), bearer(&parts.headers))
    }
}

/// The admin decision: `expected` is the configured token, `presented` the request's.
fn check(expected: Option<&str>, presented: Option<&str>) -> Result<Admin, ApiError> {
    let Some(expected) = expected else {
        return Err(ApiError::Forbidden(
            "admin API disabled: set JUNO_ADMIN_TOKEN".into(),
        ));
    };
    // A plain comparison, as before; hardening it (constant time, WIRE.md's v1.1
    // failure log and lockout) is a separate change.
    match presented {
        Some(token) if token == expected => Ok(Admin),
        _ => Err(ApiError::Unauthorized("admin bearer token required".into())),
    }
}

// Response bodies. Fields are declared in alphabetical order because that is the
// order the wire has always carried (see `mod.rs`).

/// `POST /admin/missions`: the stored mission's id; `created` is true for a new
/// mission (201) and false when one was replaced (200).
#[derive(Debug, Serialize)]
pub struct MissionStored {
    pub created: bool,
    pub id: String,
}

/// `GET /admin/flags`: every flag's switch by name, `{"pvp_duels":true,…}`.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct FlagList(pub BTreeMap<String, bool>);

/// `PUT /admin/flags/{name}`: the flag after the change.
#[derive(Debug, Serialize)]
pub struct FlagChanged {
    pub enabled: bool,
    pub name: String,
    /// Who the flag reaches; `null` when it reaches everyone.
    pub targeting: Option<Targeting>,
}

/// `POST /admin/drain`: always `{"draining":true}`, with 202.
#[derive(Debug, Serialize)]
pub struct Draining {
    pub draining: bool,
}

/// `POST /admin/missions`: adds or replaces a mission.
pub async fn upload_mission(
    _: Admin,
    State(node): State<Arc<Node>>,
    body: Result<Json<Mission>, JsonRejection>,
) -> Result<(StatusCode, Json<MissionStored>), ApiError> {
    let Json(mission) = body?;
    mission
        .validate()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let created = node
        .store
        .upsert_mission(&mission)
        .await
        .or_database_unreachable("storing mission")?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = MissionStored {
        created,
        id: mission.id,
    };
    Ok((status, Json(body)))
}

/// `GET /admin/flags`.
pub async fn list_flags(
    _: Admin,
    State(node): State<Arc<Node>>,
) -> Result<Json<FlagList>, ApiError> {
    let flags = node
        .store
        .flags()
        .await
        .or_unavailable_with_cause("reading flags")?;
    Ok(Json(FlagList(flags)))
}

/// The body of `PUT /admin/flags/{name}`: the switch, and optionally who it reaches.
#[derive(Deserialize)]
pub struct FlagChange {
    enabled: bool,
    /// Users who always get the flag while it is on.
    allow: Option<BTreeSet<String>>,
    /// Share (0–100) of the other users who get it; absent with `allow` = only the allowlist
    /// when `allow` is given, everyone otherwise.
    percent: Option<u8>,
}

/// `PUT /admin/flags/{name}`: switches a flag and sets whom it reaches; 404 for an unknown flag.
pub async fn set_flag(
    _: Admin,
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    body: Result<Json<FlagChange>, JsonRejection>,
) -> Result<Json<FlagChanged>, ApiError> {
    let Json(change) = body?;
    if change.percent.is_some_and(|p| p > 100) {
        return Err(ApiError::BadRequest("percent must be 0-100".into()));
    }
    let known = node
        .store
        .set_flag(&name, change.enabled)
        .await
        .or_unavailable_with_cause("switching flag")?;
    if !known {
        return Err(ApiError::NotFound(format!("no flag '{name}'")));
    }
    if change.allow.is_some() || change.percent.is_some() {
        let allow = change.allow.unwrap_or_default();
        // An allowlist alone targets only those users; a percentage alone, that share.
        let percent = change.percent.or(Some(0));
        let targeting = Targeting { allow, percent };
        node.store
            .set_flag_targeting(&name, &targeting)
            .await
            .or_unavailable_with_cause("storing flag targeting")?;
    }
    let flags = flags::changed(&node)
        .await
        .or_unavailable_with_cause("reloading flags")?;
    let targeting = flags.targeting.get(&name).cloned();
    Ok(Json(FlagChanged {
        enabled: change.enabled,
        name,
        targeting,
    }))
}

/// `POST /admin/drain`: the node starts draining (WIRE.md §5) and answers at once.
pub async fn start_drain(_: Admin, State(node): State<Arc<Node>>) -> (StatusCode, Json<Draining>) {
    tokio::spawn(drain::drain(node));
    (StatusCode::ACCEPTED, Json(Draining { draining: true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_configured_token_disables_the_admin_api() {
        for presented in [None, Some("anything"), Some("")] {
            assert_eq!(
                check(None, presented).err(),
                Some(ApiError::Forbidden(
                    "admin API disabled: set JUNO_ADMIN_TOKEN".into()
                ))
            );
        }
    }

    #[test]
    fn only_the_configured_token_passes() {
        assert!(check(Some("s3cret"), Some("s3cret")).is_ok());
        for presented in [
            None,
            Some(""),
            Some("s3cre"),
            Some("s3cret2"),
            Some("S3CRET"),
        ] {
            assert_eq!(
                check(Some("s3cret"), presented).err(),
                Some(ApiError::Unauthorized("admin bearer token required".into())),
                "{presented:?}"
            );
        }
    }
}
