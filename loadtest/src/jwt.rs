//! Tokens for the simulated users: HS256 JWTs with claims `{sub, name, exp}` minted
//! from the shared secret (`--secret` / `JUNO_JWT_SECRET`), or, without a secret,
//! fetched one per user from `POST /auth/dev-token` (servers in dev mode).

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::target::Target;

/// How long minted tokens stay valid: longer than any bounded run.
const TOKEN_TTL_SECS: u64 = 24 * 3600;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    name: &'a str,
    exp: u64,
}

/// Hands out a token per user.
pub struct Tokens {
    key: Option<EncodingKey>,
    http: reqwest::Client,
}

impl Tokens {
    /// Mints with `secret` when given, else asks each target's dev-token endpoint.
    pub fn new(secret: Option<String>, http: reqwest::Client) -> Tokens {
        Tokens {
            key: secret.map(|s| EncodingKey::from_secret(s.as_bytes())),
            http,
        }
    }

    /// A token for `user` (display name `name`), valid on `target`.
    pub async fn token(&self, target: &Target, user: &str, name: &str) -> anyhow::Result<String> {
        match &self.key {
            Some(key) => mint(key, user, name),
            None => self.dev_token(target, user, name).await,
        }
    }

    async fn dev_token(&self, target: &Target, user: &str, name: &str) -> anyhow::Result<String> {
        let url = format!("{}/auth/dev-token", target.http_base());
        let response = self
            .http
            .post(&url)
            .json(&serde_json::json!({ "user": user, "name": name }))
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        anyhow::ensure!(
            response.status().is_success(),
            "POST {url}: {} (no --secret given and the server is not in dev mode?)",
            response.status()
        );
        let body: serde_json::Value = response.json().await.context("reading the dev token")?;
        body["token"]
            .as_str()
            .map(String::from)
            .context("the dev-token answer has no token")
    }
}

/// An HS256 token for `user`.
pub fn mint(key: &EncodingKey, user: &str, name: &str) -> anyhow::Result<String> {
    let claims = Claims {
        sub: user,
        name,
        exp: jsonwebtoken::get_current_timestamp() + TOKEN_TTL_SECS,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).context("signing a token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn minted_tokens_verify_with_the_secret() {
        let token = mint(&EncodingKey::from_secret(b"s"), "ann", "Ann").expect("mint");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(b"s"),
            &validation,
        )
        .expect("verifies");
        assert_eq!(data.claims["sub"], "ann");
        assert_eq!(data.claims["name"], "Ann");
    }
}
