//! What handlers read from request headers: the bearer token and the client's address.

use std::net::SocketAddr;

use axum::http::{header, HeaderMap};

/// The token of an `Authorization: Bearer …` header (either capitalisation of
/// `Bearer`, surrounding spaces trimmed).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The client's address: the balancer's `X-Real-IP` / `X-Forwarded-For` first.
pub fn client_ip(headers: &HeaderMap, peer: SocketAddr) -> String {
    headers
        .get("x-real-ip")
        .or_else(|| headers.get("x-forwarded-for"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| peer.ip().to_string())
}
