//! The one error type of the HTTP handlers. [`ApiError`] answers with its status
//! and the body `{"error":"<message>"}` (WIRE.md §2), so a handler returns
//! `Result<Json<Body>, ApiError>` and reads as a chain of `?`:
//!
//! - a rejected JSON body converts into a 400 carrying axum's explanation;
//! - [`StoreResultExt`] turns a failed database call into a 503, logging the cause.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// What a 503 says when the database cannot answer; the cause goes to the log only.
pub const DATABASE_UNREACHABLE: &str = "database unreachable";

/// A refused or failed request. The message is shown to the caller as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: the request is malformed or breaks a rule.
    BadRequest(String),
    /// 401: missing or wrong credentials.
    Unauthorized(String),
    /// 403: the route is switched off on this node.
    Forbidden(String),
    /// 404: no such thing (or a route that exists only in dev mode).
    NotFound(String),
    /// 429: this client address has had its share for now.
    TooManyRequests(String),
    /// 503: the node is draining or the database cannot answer.
    Unavailable(String),
    /// 500: a failure of the node itself.
    Internal(String),
}

impl ApiError {
    /// 503 `database unreachable`.
    pub fn database_unreachable() -> ApiError {
        ApiError::Unavailable(DATABASE_UNREACHABLE.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ApiError::BadRequest(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::TooManyRequests(m)
            | ApiError::Unavailable(m)
            | ApiError::Internal(m) => m,
        }
    }
}

/// The body of every error answer.
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    /// What went wrong, for a person to read.
    pub error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message(),
        };
        (self.status(), Json(body)).into_response()
    }
}

/// Every rejected JSON body is a 400 with axum's explanation, whatever status axum
/// would have chosen itself (415 for a missing content type, 422 for a wrong shape).
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        ApiError::BadRequest(rejection.body_text())
    }
}

/// Turns a failed store (or game) call into a 503, logging the error chain with
/// what was being done (`"reading match"`).
pub trait StoreResultExt<T> {
    /// 503 `database unreachable`; the cause is only logged. For the public routes.
    fn or_database_unreachable(self, doing: &str) -> Result<T, ApiError>;
    /// 503 with the error chain as the message. For the admin routes, which show
    /// the operator the cause.
    fn or_unavailable_with_cause(self, doing: &str) -> Result<T, ApiError>;
}

impl<T> StoreResultExt<T> for anyhow::Result<T> {
    fn or_database_unreachable(self, doing: &str) -> Result<T, ApiError> {
        self.map_err(|e| {
            tracing::error!(error = %format!("{e:#}"), "{doing}");
            ApiError::database_unreachable()
        })
    }

    fn or_unavailable_with_cause(self, doing: &str) -> Result<T, ApiError> {
        self.map_err(|e| {
            let cause = format!("{e:#}");
            tracing::error!(error = %cause, "{doing}");
            ApiError::Unavailable(cause)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use axum::body::{to_bytes, Body};
    use axum::extract::FromRequest;
    use axum::http::{header, Request};

    async fn answer(error: ApiError) -> (StatusCode, String, String) {
        let response = error.into_response();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .to_string();
        let bytes = to_bytes(response.into_body(), 1 << 16).await.expect("body");
        let body = String::from_utf8(bytes.to_vec()).expect("utf-8");
        (status, content_type, body)
    }

    #[tokio::test]
    async fn each_variant_answers_its_status_with_the_error_body() {
        let cases = [
            (ApiError::BadRequest("bad".into()), 400),
            (ApiError::Unauthorized("who".into()), 401),
            (ApiError::Forbidden("off".into()), 403),
            (ApiError::NotFound("none".into()), 404),
            (ApiError::Unavailable("later".into()), 503),
            (ApiError::Internal("oops".into()), 500),
        ];
        for (error, status) in cases {
            let message = error.message().to_string();
            let (got, content_type, body) = answer(error).await;
            assert_eq!(got.as_u16(), status, "{message}");
            assert_eq!(content_type, "application/json");
            assert_eq!(body, format!(r#"{{"error":"{message}"}}"#));
        }
    }

    #[tokio::test]
    async fn messages_are_escaped_as_json_strings() {
        let (_, _, body) = answer(ApiError::NotFound(r#"no flag "x\y""#.into())).await;
        assert_eq!(body, r#"{"error":"no flag \"x\\y\""}"#);
    }

    #[tokio::test]
    async fn database_unreachable_is_the_503_the_wire_has_always_shown() {
        let (status, _, body) = answer(ApiError::database_unreachable()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, r#"{"error":"database unreachable"}"#);
    }

    #[tokio::test]
    async fn every_json_rejection_is_a_400_with_axums_text() {
        let syntax = Request::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{"))
            .expect("request");
        let untyped = Request::builder().body(Body::from("{}")).expect("request");
        for request in [syntax, untyped] {
            let rejection = Json::<serde_json::Value>::from_request(request, &())
                .await
                .expect_err("rejected");
            let text = rejection.body_text();
            let error = ApiError::from(rejection);
            assert_eq!(error, ApiError::BadRequest(text));
        }
    }

    fn failing() -> anyhow::Result<()> {
        Err(anyhow::anyhow!("connection refused")).context("reading feature flags")
    }

    #[test]
    fn store_errors_hide_or_show_their_cause() {
        assert_eq!(
            failing().or_database_unreachable("reading flags"),
            Err(ApiError::database_unreachable())
        );
        assert_eq!(
            failing().or_unavailable_with_cause("reading flags"),
            Err(ApiError::Unavailable(
                "reading feature flags: connection refused".into()
            ))
        );
        assert_eq!(
            Ok::<_, anyhow::Error>(7).or_database_unreachable("x"),
            Ok(7)
        );
    }
}
