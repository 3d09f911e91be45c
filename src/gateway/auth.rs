//! JWT authentication: HS256 tokens whose `sub` is the user id. Several secrets
//! verify (rotation), the first signs. Without configured secrets the node runs in
//! dev mode with a random secret kept in a file beside the embedded database.

use std::path::{Path, PathBuf};

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use juno_protocol::limits::{valid_name, valid_user_id, MAX_NAME_CHARS};
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// How far a token's `nbf` and `iat` may lie in the future (clock skew between
/// the issuer and this node).
const CLOCK_LEEWAY_SECS: u64 = 60;

/// The claims a token carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub exp: u64,
    /// Not valid before (seconds since the epoch), when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, when present: a token issued in the future is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
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
    #[error("token not valid yet")]
    NotYetValid,
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
                write_private(&path, &secret)
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
        // `nbf` and `iat` are checked in `identity` with their own, wider leeway.
        validation.validate_nbf = false;
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
            nbf: None,
            iat: Some(jsonwebtoken::get_current_timestamp()),
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
    let latest = jsonwebtoken::get_current_timestamp() + CLOCK_LEEWAY_SECS;
    if claims.nbf.is_some_and(|nbf| nbf > latest) {
        return Err(AuthError::NotYetValid);
    }
    if claims.iat.is_some_and(|iat| iat > latest) {
        return Err(AuthError::Claims("iat lies in the future"));
    }
    if !valid_user_id(&claims.sub) {
        return Err(AuthError::Claims("sub must be 1-64 of [A-Za-z0-9_-]"));
    }
    // Without a name the display name is the id, cut to a name's length (a
    // 64-character id is valid with or without a name).
    let name = claims
        .name
        .unwrap_or_else(|| claims.sub.chars().take(MAX_NAME_CHARS).collect());
    if !valid_name(&name) {
        return Err(AuthError::Claims("name must be at most 32 characters"));
    }
    Ok(Identity {
        user: claims.sub,
        name,
    })
}

/// Writes a file only its owner may read (0600 on Unix).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // An older file made with the default mode is tightened too.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())
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
            nbf: None,
            iat: None,
        };
        let token =
            jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"s"))
                .expect("encode");
        assert_eq!(auth.verify(&token), Err(AuthError::Expired));
        assert_eq!(auth.verify("garbage"), Err(AuthError::Invalid));
        let bad_sub = auth.mint("has space", None, 60).expect("mint");
        assert!(matches!(auth.verify(&bad_sub), Err(AuthError::Claims(_))));
    }

    fn signed(claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::default(), claims, &EncodingKey::from_secret(b"s"))
            .expect("encode")
    }

    #[test]
    fn a_long_sub_without_a_name_is_named_by_its_first_32_characters() {
        let auth = Auth::new(&["s".into()], false);
        let sub = "u".repeat(40) + "-0123456789abcdef0123";
        let claims = Claims {
            sub: sub.clone(),
            name: None,
            exp: jsonwebtoken::get_current_timestamp() + 60,
            nbf: None,
            iat: None,
        };
        let who = auth
            .verify(&signed(&claims))
            .expect("a 61-character sub is valid");
        assert_eq!(who.user, sub);
        assert_eq!(who.name, "u".repeat(32));
    }

    #[test]
    fn nbf_and_iat_in_the_future_are_refused_beyond_a_minute() {
        let auth = Auth::new(&["s".into()], false);
        let now = jsonwebtoken::get_current_timestamp();
        let token = |nbf: Option<u64>, iat: Option<u64>| {
            signed(&Claims {
                sub: "ann".into(),
                name: None,
                exp: now + 3600,
                nbf,
                iat,
            })
        };
        assert_eq!(
            auth.verify(&token(Some(now + 600), None)),
            Err(AuthError::NotYetValid)
        );
        assert!(matches!(
            auth.verify(&token(None, Some(now + 600))),
            Err(AuthError::Claims(_))
        ));
        assert!(
            auth.verify(&token(Some(now + 30), Some(now + 30))).is_ok(),
            "within the leeway"
        );
        assert!(auth.verify(&token(Some(now - 10), Some(now - 10))).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn the_dev_secret_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("juno-auth-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = Config {
            database_url: format!("sqlite://{}/juno.db", dir.display()),
            ..Config::default()
        };
        std::fs::write(dev_secret_path(&config), "").expect("an empty, world-readable file");
        Auth::from_config(&config).expect("dev mode");
        let mode = std::fs::metadata(dev_secret_path(&config))
            .expect("written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
