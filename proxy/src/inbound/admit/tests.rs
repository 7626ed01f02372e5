use super::*;
use crate::{identity::tls::ALPN_TCP, policy::DenyReason, test_support::snapshot};

/// Port 8080 (HTTP, bookbuyer may GET, an ingress range), 6379 (TCP,
/// bookstore may connect, at most one connection per minute), 9000 (no
/// authorization at all).
const POLICY: &str = r#"
mesh: {permissive: false}
inbound:
- port: 8080
  protocol: PROTOCOL_HTTP1
  authorizations:
  - name: bookstore/buyer
    sources: ["spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer"]
    http: {matches: [{name: get, methods: ["GET"]}]}
  plaintextSources: ["10.0.0.0/8"]
- port: 6379
  protocol: PROTOCOL_TCP
  authorizations:
  - name: warehouse/store
    sources: ["spiffe://cluster.local/ns/bookstore/sa/bookstore"]
    all: {}
  tcpRateLimit: {tokens: 1, intervalMs: 60000}
- port: 9000
  protocol: PROTOCOL_TCP
"#;

fn id(ns: &str, sa: &str) -> SpiffeId {
    SpiffeId::new("cluster.local", ns, sa)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

#[test]
fn admission_table() {
    let s = snapshot(POLICY);
    let buyer = id("bookbuyer", "bookbuyer");
    let store = id("bookstore", "bookstore");
    let thief = id("bookthief", "bookthief");
    let inside = addr("10.1.2.3:5000");
    let outside = addr("192.168.0.7:5000");
    let http1 = Some(ALPN_HTTP1);
    let h2 = Some(ALPN_H2);
    let tcp = Some(ALPN_TCP);
    let cases: Vec<(&str, u16, Peer<'_>, Detected, Admission)> = vec![
        (
            "TLS is verified first",
            8080,
            Peer::Plaintext(outside),
            Detected::Tls,
            Admission::Handshake,
        ),
        (
            "an unlisted plaintext peer",
            8080,
            Peer::Plaintext(outside),
            Detected::Http1,
            Admission::Refuse(Refusal::Plaintext {
                peer: outside,
                port: 8080,
            }),
        ),
        (
            "plaintext on a port without ingress sources",
            9000,
            Peer::Plaintext(inside),
            Detected::Opaque,
            Admission::Refuse(Refusal::Plaintext {
                peer: inside,
                port: 9000,
            }),
        ),
        (
            "an IngressBackend source speaking HTTP/1",
            8080,
            Peer::Plaintext(inside),
            Detected::Http1,
            Admission::Http(Served::HTTP1),
        ),
        (
            "an IngressBackend source speaking HTTP/2",
            8080,
            Peer::Plaintext(inside),
            Detected::Http2,
            Admission::Http(Served::HTTP2),
        ),
        (
            "an IngressBackend source speaking TCP",
            8080,
            Peer::Plaintext(inside),
            Detected::Opaque,
            Admission::Tcp {
                rule: "ingress".into(),
            },
        ),
        (
            "mesh HTTP/1 is authorized per request, even from a stranger",
            8080,
            Peer::Mesh {
                identity: &thief,
                alpn: http1,
            },
            Detected::Tls,
            Admission::Http(Served::HTTP1),
        ),
        (
            "mesh HTTP/2",
            8080,
            Peer::Mesh {
                identity: &buyer,
                alpn: h2,
            },
            Detected::Tls,
            Admission::Http(Served::HTTP2),
        ),
        (
            "a peer proxy's HTTP/1.1 over HTTP/2 reaches the app as HTTP/1.1",
            8080,
            Peer::Mesh {
                identity: &buyer,
                alpn: Some(ALPN_HTTP1_OVER_H2),
            },
            Detected::Tls,
            Admission::Http(Served::HTTP1_OVER_H2),
        ),
        (
            "mesh TCP from an allowed source",
            6379,
            Peer::Mesh {
                identity: &store,
                alpn: tcp,
            },
            Detected::Tls,
            Admission::Tcp {
                rule: "warehouse/store".into(),
            },
        ),
        (
            "the second connection within the limit's minute",
            6379,
            Peer::Mesh {
                identity: &store,
                alpn: tcp,
            },
            Detected::Tls,
            Admission::Refuse(Refusal::ConnectionRateLimited { port: 6379 }),
        ),
        (
            "mesh TCP from another identity (no token spent)",
            6379,
            Peer::Mesh {
                identity: &thief,
                alpn: tcp,
            },
            Detected::Tls,
            Admission::Refuse(Refusal::Unauthorized {
                port: 6379,
                layer: Layer::Tcp,
                reason: DenyReason::SourceNotAllowed {
                    client: thief.clone(),
                    port: 6379,
                },
            }),
        ),
        (
            "mesh TCP to a port without authorizations",
            9000,
            Peer::Mesh {
                identity: &store,
                alpn: None,
            },
            Detected::Tls,
            Admission::Refuse(Refusal::Unauthorized {
                port: 9000,
                layer: Layer::Tcp,
                reason: DenyReason::SourceNotAllowed {
                    client: store.clone(),
                    port: 9000,
                },
            }),
        ),
        (
            "mesh TCP to a port the config does not know",
            7000,
            Peer::Mesh {
                identity: &store,
                alpn: None,
            },
            Detected::Tls,
            Admission::Refuse(Refusal::Unauthorized {
                port: 7000,
                layer: Layer::Tcp,
                reason: DenyReason::NoPolicy { port: 7000 },
            }),
        ),
    ];
    for (case, port, peer, detected, want) in cases {
        assert_eq!(admit(&s, port, peer, detected), want, "{case}");
    }
}

#[test]
fn permissive_mode_admits_every_verified_identity_but_no_plaintext() {
    let s = snapshot("mesh: {permissive: true}\n");
    let thief = id("bookthief", "bookthief");
    assert_eq!(
        admit(
            &s,
            6379,
            Peer::Mesh {
                identity: &thief,
                alpn: Some(ALPN_TCP),
            },
            Detected::Tls,
        ),
        Admission::Tcp {
            rule: "permissive".into()
        }
    );
    let peer = addr("10.1.2.3:5000");
    assert_eq!(
        admit(&s, 6379, Peer::Plaintext(peer), Detected::Opaque),
        Admission::Refuse(Refusal::Plaintext { peer, port: 6379 })
    );
}

#[test]
fn a_connection_is_revoked_when_a_newer_config_no_longer_admits_it() {
    let before = snapshot(POLICY);
    let after =
        snapshot("mesh: {permissive: false}\ninbound:\n- port: 6379\n  protocol: PROTOCOL_TCP\n");
    let store = id("bookstore", "bookstore");
    let mesh = Peer::Mesh {
        identity: &store,
        alpn: Some(ALPN_TCP),
    };
    let ingress = Peer::Plaintext(addr("10.1.2.3:5000"));
    // Asking again spends no rate-limit token: still admitted, twice.
    assert_eq!(still_admitted(&before, 6379, mesh), Ok(()));
    assert_eq!(still_admitted(&before, 6379, mesh), Ok(()));
    assert_eq!(still_admitted(&before, 8080, ingress), Ok(()));
    assert_eq!(
        still_admitted(&after, 6379, mesh),
        Err(Refusal::Revoked { port: 6379 })
    );
    assert_eq!(
        still_admitted(&after, 8080, ingress),
        Err(Refusal::Revoked { port: 8080 })
    );
}
