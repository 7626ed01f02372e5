//! Whole outbound connections, driven in memory.

use tokio::io::duplex;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::test_support::{counter, exchange, shared_with};

const EGRESS_OFF: &str = "mesh: {permissive: false, egress: false, detectTimeoutMs: 200}\n";

fn app() -> SocketAddr {
    "10.244.0.5:40000".parse().expect("addr")
}

#[tokio::test]
async fn http_to_a_host_outside_the_mesh_is_answered_403() {
    let shared = shared_with(EGRESS_OFF);
    let (client, server) = duplex(4096);
    let dst = Some("93.184.216.34:80".parse().expect("addr"));
    let task = tokio::spawn(handle(
        server,
        app(),
        dst,
        shared.clone(),
        CancellationToken::new(),
    ));
    let response = exchange(
        client,
        b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(
        response.contains(
            "osm-proxy: no route to example.com: it is not a mesh service and egress is disabled"
        ),
        "{response}"
    );
    assert!(task.await.expect("joins").is_ok());
    assert_eq!(
        counter(
            &shared,
            "osm_outbound_refused_total",
            "kind=\"http\",reason=\"no-route\""
        ),
        1
    );
}

#[tokio::test]
async fn tcp_to_a_destination_outside_the_mesh_is_closed() {
    let shared = shared_with(EGRESS_OFF);
    let (client, server) = duplex(4096);
    let dst = Some("93.184.216.34:5432".parse().expect("addr"));
    let task = tokio::spawn(handle(
        server,
        app(),
        dst,
        shared.clone(),
        CancellationToken::new(),
    ));
    assert_eq!(exchange(client, b"\x00\x00\x00\x08startup").await, "");
    let ended = task.await.expect("joins");
    assert!(
        matches!(
            ended,
            Err(ConnectionError::Refused(Refusal::NoRoute {
                layer: Layer::Tcp,
                ..
            }))
        ),
        "{ended:?}"
    );
    assert_eq!(
        counter(
            &shared,
            "osm_outbound_refused_total",
            "kind=\"tcp\",reason=\"no-route\""
        ),
        1
    );
}

#[tokio::test]
async fn a_mesh_service_without_endpoints_is_refused_503() {
    let shared = shared_with(
        r#"
mesh: {permissive: false, egress: false}
endpoints:
- {key: shop/web:80, endpoints: []}
outbound:
- {key: shop/web:80, port: 80, protocol: PROTOCOL_HTTP1, vips: ["10.96.0.10"], endpoints: shop/web:80}
"#,
    );
    let (client, server) = duplex(4096);
    let dst = Some("10.96.0.10:80".parse().expect("addr"));
    let task = tokio::spawn(handle(
        server,
        app(),
        dst,
        shared.clone(),
        CancellationToken::new(),
    ));
    let response = exchange(
        client,
        b"GET / HTTP/1.1\r\nHost: web.shop\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(
        response.contains("osm-proxy: shop/web:80 has no endpoints"),
        "{response}"
    );
    assert!(task.await.expect("joins").is_ok());
    assert_eq!(
        counter(
            &shared,
            "osm_outbound_refused_total",
            "kind=\"http\",reason=\"no-endpoints\""
        ),
        1
    );
}
