//! Whole outbound connections, driven in memory.

use tokio_util::sync::CancellationToken;

use super::*;
use crate::test_support::{counter, exchange, shared_with};

const EGRESS_OFF: &str = "mesh: {permissive: false, egress: false, detectTimeoutMs: 200}\n";
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n";

/// One connection from the app (10.244.0.5) to `dst` under `config`.
async fn connect(
    config: &str,
    dst: &str,
    request: &[u8],
) -> (String, Result<(), ConnectionError>, Arc<Shared>) {
    let shared = shared_with(config);
    let app = "10.244.0.5:40000".parse().expect("addr");
    let dst = Some(dst.parse().expect("addr"));
    let proxy = shared.clone();
    let (response, ended) = exchange(request, move |server| {
        handle(server, app, dst, proxy, CancellationToken::new())
    })
    .await;
    (response, ended, shared)
}

fn refused(shared: &Shared, kind: &str, reason: &str) -> u64 {
    counter(
        shared,
        "osm_outbound_refused_total",
        &format!("kind=\"{kind}\",reason=\"{reason}\""),
    )
}

#[tokio::test]
async fn http_to_a_host_outside_the_mesh_is_answered_403() {
    let (response, ended, shared) = connect(EGRESS_OFF, "93.184.216.34:80", GET).await;
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(
        response.contains(
            "osm-proxy: no route to example.com: it is not a mesh service and egress is disabled"
        ),
        "{response}"
    );
    assert!(ended.is_ok());
    assert_eq!(refused(&shared, "http", "no-route"), 1);
}

#[tokio::test]
async fn tcp_to_a_destination_outside_the_mesh_is_closed() {
    let (response, ended, shared) =
        connect(EGRESS_OFF, "93.184.216.34:5432", b"\x00\x00\x00\x08startup").await;
    assert_eq!(response, "");
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
    assert_eq!(refused(&shared, "tcp", "no-route"), 1);
}

#[tokio::test]
async fn a_passthrough_whose_destination_refuses_ends_as_egress_unreachable() {
    // A port nothing listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let config = "mesh: {permissive: false, egress: true, detectTimeoutMs: 200}\n";
    let (response, ended, _) =
        connect(config, &closed.to_string(), b"\x00\x00\x00\x08startup").await;
    assert_eq!(response, "");
    let ended = ended.expect_err("the destination refused");
    assert!(
        matches!(&ended, ConnectionError::Egress(cause)
            if matches!(**cause, ConnectionError::Upstream(_))),
        "{ended:?}"
    );
    assert_eq!(ended.response_flag(), "UF");
    assert_eq!(ended.direction("outbound"), "egress");
    assert!(ended.to_string().contains(&closed.to_string()), "{ended}");
}

#[tokio::test]
async fn a_mesh_service_without_endpoints_is_refused_503() {
    let config = r#"
mesh: {permissive: false, egress: false}
endpoints:
- {key: shop/web:80, endpoints: []}
outbound:
- {key: shop/web:80, port: 80, protocol: PROTOCOL_HTTP1, vips: ["10.96.0.10"], endpoints: shop/web:80}
"#;
    let (response, ended, shared) = connect(config, "10.96.0.10:80", GET).await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(
        response.contains("osm-proxy: shop/web:80 has no endpoints"),
        "{response}"
    );
    assert!(ended.is_ok());
    assert_eq!(refused(&shared, "http", "no-endpoints"), 1);
}

/// What each open connection's task costs before its buffers (it was
/// 6 KB: the TCP ways' upstream TLS stream, HTTP/2's state, and the task's
/// wrapper holding the whole connection twice).
#[tokio::test]
async fn an_outbound_connection_task_stays_small() {
    let stream = crate::test_support::tcp_stream().await;
    let app = "10.244.0.5:40000".parse().expect("addr");
    let dst = Some("10.96.0.10:80".parse().expect("addr"));
    let shared = shared_with(EGRESS_OFF);
    let served = handle(stream, app, dst, shared.clone(), CancellationToken::new());
    let accepted = crate::serve::Accepted::now(app, dst, "outbound");
    let task = crate::serve::logged(served, shared, accepted);
    let size = std::mem::size_of_val(&task);
    assert!(
        size <= 2000,
        "an outbound connection's task is {size} bytes"
    );
}
