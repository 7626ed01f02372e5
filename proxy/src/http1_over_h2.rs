//! HTTP/1.1 between proxies over HTTP/2: the client's proxy carries the
//! HTTP/1.1 requests it sends to one endpoint over a single mTLS HTTP/2
//! connection, and the server's proxy hands each to the application as the
//! HTTP/1.1 request it was.
//!
//! Under load many requests then share one TLS record and one syscall on
//! the hop between the proxies, and a pair of proxies holds one connection
//! where it held one per request in flight. Off by default
//! (`--multiplex-http1`): hyper's HTTP/2 costs more CPU per request than the
//! syscalls it saves (bench/README.md, "HTTP/1.1 over HTTP/2 between the
//! proxies"). Whether a connection carries
//! them is agreed in the TLS handshake ([`ALPN_HTTP1_OVER_H2`]), so it is a
//! property of a connection with a verified peer, never a claim a request
//! makes; a proxy that does not offer it answers `http/1.1`, which the
//! client offers second, and nothing changes for it.
//!
//! What HTTP/2 cannot carry goes on a connection of its own as before:
//! upgrades (WebSocket), CONNECT and HTTP/1.0 ([`wire_for`]). What crosses
//! is the message: its method, target, headers and body with trailers;
//! hop-by-hop headers (`Connection` and those it names) are the hop's own
//! either way, and header names were already sent lower-case.

use http::{Method, Request, Version};

use crate::{http_util::is_upgrade, identity::tls::ALPN_HTTP1_OVER_H2, upstream::Wire};

/// Whether a handshake chose HTTP/1.1 over HTTP/2.
pub fn negotiated(alpn: Option<&[u8]>) -> bool {
    alpn == Some(ALPN_HTTP1_OVER_H2)
}

/// The wire a request to an endpoint goes on: [`Wire::Http1`] (multiplexed
/// when the peer agrees) for what HTTP/2 can carry exactly.
pub fn wire_for<B>(req: &Request<B>) -> Wire {
    match req.version() {
        Version::HTTP_2 => Wire::Http2,
        Version::HTTP_11 if req.method() != Method::CONNECT && !is_upgrade(req) => Wire::Http1,
        _ => Wire::Http1Only,
    }
}

/// A request that came over a multiplexed connection, as its client sent
/// it: HTTP/1.1 (the log, the rules and the application see that). Its
/// `Host` header crossed as a header, so nothing else is restored.
pub fn restore_http1<B>(req: &mut Request<B>) {
    *req.version_mut() = Version::HTTP_11;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::tls::{ALPN_H2, ALPN_HTTP1};

    fn request(method: Method, version: Version, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).version(version).uri("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    #[test]
    fn what_goes_multiplexed() {
        let upgrade = [("connection", "Upgrade"), ("upgrade", "websocket")];
        let cases = [
            (
                "HTTP/1.1 GET",
                request(Method::GET, Version::HTTP_11, &[]),
                Wire::Http1,
            ),
            (
                "HTTP/1.1 POST",
                request(Method::POST, Version::HTTP_11, &[]),
                Wire::Http1,
            ),
            (
                "an Upgrade header alone is not an upgrade",
                request(Method::GET, Version::HTTP_11, &[("upgrade", "h2c")]),
                Wire::Http1,
            ),
            (
                "a WebSocket upgrade",
                request(Method::GET, Version::HTTP_11, &upgrade),
                Wire::Http1Only,
            ),
            (
                "CONNECT",
                request(Method::CONNECT, Version::HTTP_11, &[]),
                Wire::Http1Only,
            ),
            (
                "HTTP/1.0",
                request(Method::GET, Version::HTTP_10, &[]),
                Wire::Http1Only,
            ),
            (
                "HTTP/2 stays HTTP/2",
                request(Method::GET, Version::HTTP_2, &[]),
                Wire::Http2,
            ),
        ];
        for (name, req, wire) in cases {
            assert_eq!(wire_for(&req), wire, "{name}");
        }
    }

    #[test]
    fn only_its_own_protocol_is_multiplexed_http1() {
        assert!(negotiated(Some(ALPN_HTTP1_OVER_H2)));
        for other in [Some(ALPN_H2), Some(ALPN_HTTP1), None] {
            assert!(!negotiated(other), "{other:?}");
        }
    }

    #[test]
    fn a_carried_request_is_http1_again() {
        let mut req = request(Method::GET, Version::HTTP_2, &[("host", "web.shop")]);
        restore_http1(&mut req);
        assert_eq!(req.version(), Version::HTTP_11);
        assert_eq!(req.headers()["host"], "web.shop");
    }
}
