//! The admin API (WIRE.md §2): the [`Admin`] extractor that guards every
//! `/admin/*` route, and the mission, flag and drain routes (the notification
//! routes are in `notify.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use juno_protocol::Mission;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, StoreResultExt};
use super::headers::{bearer, client_ip};
use crate::game::{drain, flags, Node};
use crate::gateway::Gateway;
use crate::model::Targeting;
use subtle::ConstantTimeEq;

/// Proof that a request carries the admin bearer token. An admin handler takes
/// `_: Admin` as its first extractor, so the token is checked before anything
/// else is read, the body included. Refuses with 429 while the client's address
/// is locked out after repeated failures (the right token included), with 403
/// while the admin API is disabled (no `JUNO_ADMIN_TOKEN`), and with 401 for
/// anything but the right token — each such failure written to `auth_logs`.
pub struct Admin;

impl FromRequestParts<Gateway> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gateway: &Gateway) -> Result<Admin, ApiError> {
        let config = &gateway.node.config;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let ip = client_ip(&parts.headers, peer, config);
        if gateway.guard.admin_locked(ip) {
            return Err(ApiError::TooManyRequests(
                "too many failed admin attempts from this address; try again later".into(),
            ));
        }
        check(config.admin_token.as_deref(), bearer(&parts.headers)).map_err(|refusal| {
            if let Some(reason) = refusal.reason() {
                gateway.guard.admin_failed(ip, reason);
            }
            ApiError::from(refusal)
        })
    }
}

/// Why an admin request was refused.
enum Refused {
    Disabled,
    Missing,
    Wrong,
}

impl Refused {
    /// The `auth_logs.reason` of a failed attempt (a disabled API is no attempt).
    fn reason(&self) -> Option<&'static str> {
        match self {
            Refused::Disabled => None,
            Refused::Missing => Some("admin: missing token"),
            Refused::Wrong => Some("admin: wrong token"),
        }
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> ApiError {
        match refused {
            Refused::Disabled => {
                ApiError::Forbidden("admin API disabled: set JUNO_ADMIN_TOKEN".into())
            }
            Refused::Missing | Refused::Wrong => {
                ApiError::Unauthorized("admin bearer token required".into())
            }
        }
    }
}

/// The admin decision: `expected` is the configured token, `presented` the
/// request's, compared in constant time so the answer's timing tells nothing.
fn check(expected: Option<&str>, presented: Option<&str>) -> Result<Admin, Refused> {
    let expected = expected.ok_or(Refused::Disabled)?;
    let presented = presented.ok_or(Refused::Missing)?;
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(Admin)
    } else {
        Err(Refused::Wrong)
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
                check(None, presented).err().map(ApiError::from),
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
                check(Some("s3cret"), presented).err().map(ApiError::from),
                Some(ApiError::Unauthorized("admin bearer token required".into())),
                "{presented:?}"
            );
        }
    }
}
