//! JWT authentication: HS256 tokens whose `sub` is the user id. Several secrets
//! verify (rotation), the first signs. Without configured secrets the node runs in
//! dev mode with a random secret kept in a file beside the embedded database.

use std::path::{Path, PathBuf};

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use juno_protocol::limits::{valid_name, valid_user_id};
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The claims a token carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub exp: u64,
}

/// Who a verified token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub name: String,
}

/// Why a token was refused (recorded in auth_logs.reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing token")]
    Missing,
    #[error("expired token")]
    Expired,
    #[error("invalid token")]
    Invalid,
    #[error("invalid claims: {0}")]
    Claims(&'static str),
}

/// Signs and verifies tokens.
pub struct Auth {
    signing: EncodingKey,
    verifying: Vec<DecodingKey>,
    validation: Validation,
    dev_mode: bool,
}

impl Auth {
    /// Keys from the configured secrets, or from the dev-mode secret file (created if missing).
    pub fn from_config(config: &Config) -> anyhow::Result<Auth> {
        if !config.dev_mode() {
            return Ok(Auth::new(&config.jwt_secrets, false));
        }
        let path = dev_secret_path(config);
        let secret = match std::fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let secret: String = (0..48)
                    .map(|_| {
                        char::from(
                            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                [rand::random_range(0..62)],
                        )
                    })
                    .collect();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                std::fs::write(&path, &secret)
                    .with_context(|| format!("writing dev secret {}", path.display()))?;
                secret
            }
        };
        Ok(Auth::new(&[secret], true))
    }

    /// Keys from explicit secrets; the first signs.
    pub fn new(secrets: &[String], dev_mode: bool) -> Auth {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Auth {
            signing: EncodingKey::from_secret(
                secrets.first().map(String::as_bytes).unwrap_or_default(),
            ),
            verifying: secrets
                .iter()
                .map(|s| DecodingKey::from_secret(s.as_bytes()))
                .collect(),
            validation,
            dev_mode,
        }
    }

    pub fn dev_mode(&self) -> bool {
        self.dev_mode
    }

    /// A token for `user`, valid for `ttl_secs`.
    pub fn mint(&self, user: &str, name: Option<&str>, ttl_secs: u64) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user.to_string(),
            name: name.map(String::from),
            exp: jsonwebtoken::get_current_timestamp() + ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.signing)
            .context("signing token")
    }

    /// Checks the signature against every secret, then the claims.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let mut last = AuthError::Invalid;
        for key in &self.verifying {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => return identity(data.claims),
                Err(e) => {
                    if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) {
                        last = AuthError::Expired;
                    }
                }
            }
        }
        Err(last)
    }
}

fn identity(claims: Claims) -> Result<Identity, AuthError> {
    if !valid_user_id(&claims.sub) {
        return Err(AuthError::Claims("sub must be 1-64 of [A-Za-z0-9_-]"));
    }
    let name = claims.name.unwrap_or_else(|| claims.sub.clone());
    if !valid_name(&name) {
        return Err(AuthError::Claims("name must be at most 32 characters"));
    }
    Ok(Identity {
        user: claims.sub,
        name,
    })
}

/// Where dev mode keeps its secret: beside the embedded database, else in the working directory.
pub fn dev_secret_path(config: &Config) -> PathBuf {
    let dir = config
        .sqlite_path()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    dir.join("juno-dev-secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_configured_secret_verifies_and_the_first_signs() {
        let old = Auth::new(&["old".into()], false);
        let rotated = Auth::new(&["new".into(), "old".into()], false);
        let token = old.mint("ann", Some("Ann"), 60).expect("mint");
        assert_eq!(
            rotated.verify(&token).expect("old still verifies").name,
            "Ann"
        );
        let fresh = rotated.mint("bob", None, 60).expect("mint");
        assert_eq!(old.verify(&fresh), Err(AuthError::Invalid));
        assert_eq!(
            Auth::new(&["new".into()], false)
                .verify(&fresh)
                .expect("verifies")
                .user,
            "bob"
        );
    }

    #[test]
    fn expired_and_malformed_tokens_are_refused() {
        let auth = Auth::new(&["s".into()], false);
        let claims = Claims {
            sub: "ann".into(),
            name: None,
            exp: 1,
        };
        let token =
            jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"s"))
                .expect("encode");
        assert_eq!(auth.verify(&token), Err(AuthError::Expired));
        assert_eq!(auth.verify("garbage"), Err(AuthError::Invalid));
        let bad_sub = auth.mint("has space", None, 60).expect("mint");
        assert!(matches!(auth.verify(&bad_sub), Err(AuthError::Claims(_))));
    }
}
