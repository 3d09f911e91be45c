//! What handlers read from request headers: the bearer token and the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap};

use crate::config::Config;

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

/// The client's address. From a trusted proxy (`JUNO_TRUSTED_PROXIES`), the
/// address it names: `X-Real-IP`, else the nearest address of `X-Forwarded-For`
/// that is not itself a trusted proxy. From anyone else, the peer's own address:
/// their headers are ignored. Only well-formed addresses count, so nothing a
/// client invents reaches a log or a limit as text.
pub fn client_ip(headers: &HeaderMap, peer: SocketAddr, config: &Config) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if !config.is_trusted_proxy(peer_ip) {
        return peer_ip;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(real) = header("x-real-ip").and_then(|v| v.trim().parse::<IpAddr>().ok()) {
        return real.to_canonical();
    }
    let forwarded = header("x-forwarded-for").unwrap_or_default();
    for hop in forwarded.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // A hop that is not an address: nothing before it can be trusted.
            break;
        };
        let ip = ip.to_canonical();
        if !config.is_trusted_proxy(ip) {
            return ip;
        }
    }
    peer_ip
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("a header value"));
        }
        h
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let config = Config {
            trusted_proxies: vec!["10.0.0.0/8".parse().expect("net")],
            ..Config::default()
        };
        let proxy: SocketAddr = "10.0.0.5:4000".parse().expect("addr");
        let stranger: SocketAddr = "198.51.100.9:4000".parse().expect("addr");
        let forged = headers(&[("x-real-ip", "203.0.113.7")]);
        assert_eq!(client_ip(&forged, stranger, &config), stranger.ip());
        assert_eq!(
            client_ip(&forged, proxy, &config),
            "203.0.113.7".parse::<IpAddr>().expect("ip")
        );
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 192.0.2.1, 10.0.0.9")]);
        assert_eq!(
            client_ip(&chain, proxy, &config),
            "192.0.2.1".parse::<IpAddr>().expect("ip"),
            "the nearest untrusted hop, not what the client wrote first"
        );
        let junk = headers(&[("x-real-ip", "not-an-ip'); DROP TABLE users;--")]);
        assert_eq!(client_ip(&junk, proxy, &config), proxy.ip());
        let long = "9".repeat(4000);
        let junk = headers(&[("x-forwarded-for", long.as_str())]);
        assert_eq!(client_ip(&junk, proxy, &config), proxy.ip());
    }
}
