use super::*;
use crate::test_support::snapshot;

/// Three mesh services (HTTP, TCP, detected) and Egress rules for a
/// database range and github.com over HTTPS; global egress off.
const MESH: &str = r#"
mesh: {permissive: false, egress: false, detectTimeoutMs: 250}
endpoints:
- {key: shop/web:80, endpoints: []}
- {key: shop/db:5432, endpoints: []}
- {key: shop/any:9000, endpoints: []}
outbound:
- {key: shop/web:80, port: 80, protocol: PROTOCOL_HTTP1, vips: ["10.96.0.10"], endpoints: shop/web:80}
- {key: shop/db:5432, port: 5432, protocol: PROTOCOL_TCP, vips: ["10.96.0.11"], endpoints: shop/db:5432}
- {key: shop/any:9000, port: 9000, protocol: PROTOCOL_DETECT, vips: ["10.96.0.12"], endpoints: shop/any:9000}
egress:
- name: shop/pg
  cidrs: ["192.168.10.0/24"]
  ports: [{number: 5432, protocol: tcp}]
- name: shop/github
  hosts: [github.com]
  ports: [{number: 443, protocol: https}]
"#;

fn addr(s: &str) -> Option<SocketAddr> {
    Some(s.parse().expect("addr"))
}

fn mesh_tcp(s: &Snapshot, key: &str) -> Route {
    let service = s
        .outbound_by_addr
        .values()
        .find(|svc| &*svc.key == key)
        .expect("service");
    Route::MeshTcp(service.clone())
}

fn no_route(target: Option<&str>, egress: bool) -> Route {
    Route::Refuse(Refusal::NoRoute {
        layer: Layer::Tcp,
        target: target.map(str::to_string),
        egress,
    })
}

#[test]
fn routing_table() {
    let s = snapshot(MESH);
    let detect = Route::Detect {
        timeout: Duration::from_millis(250),
    };
    let cases: Vec<(&str, Option<SocketAddr>, Observed<'_>, Route)> = vec![
        // Mesh services: the configured protocol decides at once.
        (
            "HTTP service",
            addr("10.96.0.10:80"),
            Observed::Nothing,
            Route::Http { http2: false },
        ),
        (
            "TCP service",
            addr("10.96.0.11:5432"),
            Observed::Nothing,
            mesh_tcp(&s, "shop/db:5432"),
        ),
        (
            "wrong port of a VIP",
            addr("10.96.0.10:81"),
            Observed::Nothing,
            detect.clone(),
        ),
        (
            "detected service",
            addr("10.96.0.12:9000"),
            Observed::Nothing,
            detect.clone(),
        ),
        (
            "detected service speaking HTTP/2",
            addr("10.96.0.12:9000"),
            Observed::Protocol(Detected::Http2),
            Route::Http { http2: true },
        ),
        (
            "detected service speaking TLS (the app's own)",
            addr("10.96.0.12:9000"),
            Observed::Protocol(Detected::Tls),
            mesh_tcp(&s, "shop/any:9000"),
        ),
        // Outside the mesh, egress off.
        (
            "no destination: wait for the client",
            None,
            Observed::Nothing,
            Route::Detect {
                timeout: IDLE_CLIENT_TIMEOUT,
            },
        ),
        (
            "HTTP to anywhere: routed per request",
            addr("93.184.216.34:80"),
            Observed::Protocol(Detected::Http1),
            Route::Http { http2: false },
        ),
        (
            "TCP to an Egress range",
            addr("192.168.10.7:5432"),
            Observed::Protocol(Detected::Opaque),
            Route::Passthrough("192.168.10.7:5432".parse().expect("addr")),
        ),
        (
            "TCP to another port of the range",
            addr("192.168.10.7:22"),
            Observed::Protocol(Detected::Opaque),
            no_route(Some("192.168.10.7:22"), false),
        ),
        (
            "TCP without a destination",
            None,
            Observed::Protocol(Detected::Opaque),
            no_route(None, false),
        ),
        (
            "TLS: read the server name first",
            addr("140.82.112.3:443"),
            Observed::Protocol(Detected::Tls),
            Route::ReadServerName,
        ),
        (
            "TLS to an Egress host",
            addr("140.82.112.3:443"),
            Observed::ServerName(Some("github.com")),
            Route::PassthroughByName {
                dst: "140.82.112.3:443".parse().expect("addr"),
                host: "github.com".into(),
            },
        ),
        (
            "TLS to another host",
            addr("140.82.112.3:443"),
            Observed::ServerName(Some("gitlab.com")),
            no_route(Some("140.82.112.3:443"), false),
        ),
        (
            "TLS without a server name",
            addr("140.82.112.3:443"),
            Observed::ServerName(None),
            no_route(Some("140.82.112.3:443"), false),
        ),
    ];
    for (case, dst, observed, want) in cases {
        assert_eq!(route(&s, dst, observed), want, "{case}");
    }
}

#[test]
fn with_egress_on_everything_outside_the_mesh_passes_through() {
    let s = snapshot(&MESH.replace("egress: false", "egress: true"));
    let dst = addr("93.184.216.34:443");
    assert_eq!(
        route(&s, dst, Observed::Nothing),
        Route::Passthrough(dst.expect("addr"))
    );
    // A mesh VIP is still the mesh's, reached over mTLS.
    assert_eq!(
        route(&s, addr("10.96.0.11:5432"), Observed::Nothing),
        mesh_tcp(&s, "shop/db:5432")
    );
}

#[test]
fn a_passthrough_is_asked_again_under_a_new_config() {
    let before = snapshot(MESH);
    let dst = addr("192.168.10.7:5432");
    let seen = Observed::Protocol(Detected::Opaque);
    assert!(matches!(route(&before, dst, seen), Route::Passthrough(_)));
    // The Egress removed: the same connection is refused now.
    let without = snapshot(&MESH.replace("192.168.10.0/24", "192.168.99.0/24"));
    assert!(matches!(route(&without, dst, seen), Route::Refuse(_)));
    // The destination became a mesh service: it must go over mTLS.
    let meshed = snapshot(&MESH.replace("\"10.96.0.11\"", "\"192.168.10.7\""));
    assert!(matches!(route(&meshed, dst, seen), Route::MeshTcp(_)));
}
