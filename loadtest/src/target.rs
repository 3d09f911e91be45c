//! Targets: the nodes (or the balancer in front of them) a run talks to. Only
//! loopback addresses are accepted — 127.0.0.0/8, ::1 and `localhost` — so this
//! tool never sends traffic off the machine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{bail, Context};

/// One node's address, checked to be loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` as given (kept for the HTTP `Host` header and the WebSocket URL).
    pub host: String,
}

impl Target {
    /// Parses `http://host:port`, `ws://host:port` or `host:port` (a trailing path is
    /// ignored). Refuses anything that is not a loopback address.
    pub fn parse(s: &str) -> anyhow::Result<Target> {
        let rest = ["http://", "ws://"]
            .iter()
            .find_map(|scheme| s.strip_prefix(scheme))
            .unwrap_or(s);
        if s.starts_with("https://") || s.starts_with("wss://") {
            bail!("{s}: TLS targets are not supported (loopback plain HTTP only)");
        }
        let authority = rest.split('/').next().unwrap_or_default();
        anyhow::ensure!(!authority.is_empty(), "{s}: no host");
        let (host, port) = split_host_port(authority)?;
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse()
                .with_context(|| format!("{s}: the host must be an IP address or localhost"))?
        };
        if !ip.is_loopback() {
            bail!("{s}: refusing a non-loopback target; this tool only sends traffic to 127.0.0.0/8, ::1 or localhost");
        }
        Ok(Target {
            addr: SocketAddr::new(ip, port),
            host: authority.to_string(),
        })
    }

    /// `http://host:port`.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.host)
    }

    /// The WebSocket URL carrying `token`.
    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/ws?token={token}", self.host)
    }

    /// The local address a client socket binds to before connecting: one of
    /// 127.0.0.1 … 127.0.0.k, or none for an IPv6 target.
    pub fn source_addr(&self, index: usize, source_ips: u8) -> Option<SocketAddr> {
        match self.addr.ip() {
            IpAddr::V4(_) => {
                let k = source_ips.max(1) as usize;
                let last = 1 + (index % k) as u8;
                Some(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
                    0,
                ))
            }
            IpAddr::V6(_) => None,
        }
    }
}

fn split_host_port(authority: &str) -> anyhow::Result<(&str, u16)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .with_context(|| format!("{authority}: unclosed [ in the host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse()
            .with_context(|| format!("{authority}: bad port"))?,
        None => 80,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_parse_and_others_are_refused() {
        let t = Target::parse("http://127.0.0.1:8080").expect("loopback");
        assert_eq!(t.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(t.ws_url("x"), "ws://127.0.0.1:8080/ws?token=x");
        assert!(Target::parse("ws://localhost:9000/ws").is_ok());
        assert!(Target::parse("127.3.4.5:1").is_ok());
        assert!(Target::parse("http://[::1]:8080").is_ok());
        for bad in [
            "http://10.0.0.1:8080",
            "http://192.168.1.2:80",
            "http://8.8.8.8:80",
            "http://example.com:80",
            "https://127.0.0.1:443",
            "http://[::2]:80",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn sources_cycle_over_loopback_addresses() {
        let t = Target::parse("127.0.0.1:8080").expect("loopback");
        let ips: Vec<_> = (0..5)
            .map(|i| t.source_addr(i, 4).expect("v4").ip().to_string())
            .collect();
        assert_eq!(
            ips,
            [
                "127.0.0.1",
                "127.0.0.2",
                "127.0.0.3",
                "127.0.0.4",
                "127.0.0.1"
            ]
        );
        let v6 = Target::parse("[::1]:8080").expect("loopback");
        assert_eq!(v6.source_addr(3, 4), None);
    }
}
