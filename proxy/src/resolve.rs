//! Egress rules name hosts; the application picks the address. A rule for
//! `github.com` must not let the application reach any address while
//! presenting that name, so the proxy resolves the rule's host itself and
//! connects only to an address it resolves to: the original destination
//! when it is one of them, else the first of them (the application's own
//! lookup may have rotated). No address at all refuses the connection.
//!
//! The system resolver (the pod's resolv.conf, as the application's) does
//! not report TTLs, so answers are kept [`CACHE_FOR`].

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long an answer is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(30);

/// The address to connect to for a rule's host: the original destination
/// when the host resolves to it, else the host's first address of the same
/// family (else its first); None when the host resolves to nothing.
pub fn pin(orig_dst: SocketAddr, resolved: &[IpAddr]) -> Option<SocketAddr> {
    let wanted = crate::policy::canonical_ip(orig_dst.ip());
    if resolved
        .iter()
        .any(|ip| crate::policy::canonical_ip(*ip) == wanted)
    {
        return Some(orig_dst);
    }
    let canonical: Vec<IpAddr> = resolved
        .iter()
        .map(|ip| crate::policy::canonical_ip(*ip))
        .collect();
    canonical
        .iter()
        .find(|ip| ip.is_ipv4() == wanted.is_ipv4())
        .or(canonical.first())
        .map(|ip| SocketAddr::new(*ip, orig_dst.port()))
}

/// Cached host lookups.
#[derive(Debug, Default)]
pub struct Resolver {
    cache: Mutex<HashMap<String, (Instant, Vec<IpAddr>)>>,
}

impl Resolver {
    /// The addresses of `host` (empty when it does not resolve).
    pub async fn lookup(&self, host: &str) -> Vec<IpAddr> {
        let now = Instant::now();
        if let Ok(cache) = self.cache.lock()
            && let Some((at, ips)) = cache.get(host)
            && now.duration_since(*at) < CACHE_FOR
        {
            return ips.clone();
        }
        let ips: Vec<IpAddr> = match tokio::net::lookup_host((host, 0)).await {
            Ok(addrs) => addrs.map(|a| a.ip()).collect(),
            Err(e) => {
                tracing::debug!(%host, error = %e, "egress host does not resolve");
                Vec::new()
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 4096 {
                cache.clear();
            }
            cache.insert(host.to_string(), (now, ips.clone()));
        }
        ips
    }

    /// Where to connect for a connection to `orig_dst` that an egress rule
    /// admitted by the name `host` ([`pin`]).
    pub async fn pin(&self, host: &str, orig_dst: SocketAddr) -> Option<SocketAddr> {
        pin(orig_dst, &self.lookup(host).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_destination_is_one_the_rule_host_resolves_to() {
        let dst: SocketAddr = "140.82.112.3:443".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases: &[(&str, Vec<IpAddr>, Option<&str>)] = &[
            (
                "the app's address is the host's",
                vec![ip("140.82.112.3")],
                Some("140.82.112.3:443"),
            ),
            (
                "among several",
                vec![ip("140.82.112.4"), ip("140.82.112.3")],
                Some("140.82.112.3:443"),
            ),
            (
                "the app asked for another address: the host's instead",
                vec![ip("140.82.112.4")],
                Some("140.82.112.4:443"),
            ),
            ("the host does not resolve: refused", vec![], None),
            (
                "the same family first",
                vec![ip("2606:50c0::1"), ip("140.82.112.5")],
                Some("140.82.112.5:443"),
            ),
            (
                "another family rather than nothing",
                vec![ip("2606:50c0::1")],
                Some("[2606:50c0::1]:443"),
            ),
            (
                "IPv4-mapped addresses compare as IPv4",
                vec![ip("::ffff:140.82.112.3")],
                Some("140.82.112.3:443"),
            ),
        ];
        for (case, resolved, want) in cases {
            let want = want.map(|w| w.parse::<SocketAddr>().unwrap());
            assert_eq!(pin(dst, resolved), want, "{case}");
        }
    }

    #[tokio::test]
    async fn localhost_resolves_and_is_cached() {
        // /etc/hosts only: the test sends nothing to a DNS server.
        let resolver = Resolver::default();
        let ips = resolver.lookup("localhost").await;
        assert!(ips.iter().any(IpAddr::is_loopback), "{ips:?}");
        let pinned = resolver
            .pin("localhost", "10.9.9.9:8080".parse().unwrap())
            .await
            .expect("localhost resolves");
        assert!(
            pinned.ip().is_loopback() && pinned.port() == 8080,
            "{pinned}"
        );
        assert!(resolver.cache.lock().unwrap().contains_key("localhost"));
    }
}
