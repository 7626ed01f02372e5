//! Whole inbound connections, driven in memory.

use tokio_util::sync::CancellationToken;

use super::*;
use crate::{
    refusal::Refusal,
    test_support::{counter, exchange, shared_with},
};

const CONFIG: &str = r#"
mesh: {permissive: false}
inbound:
- port: 8080
  protocol: PROTOCOL_HTTP1
  plaintextSources: ["10.0.0.0/8"]
"#;

fn to_app() -> Destination {
    // Refused connections never reach it.
    Destination::fixed(8080, "127.0.0.1:9".parse().expect("addr"))
}

/// An application on 127.0.0.1 that answers one request with `hello`.
async fn app_answering_hello() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0; 4096];
        let mut read = 0;
        while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
            read += conn.read(&mut buf[read..]).await.expect("read");
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .await
            .expect("write");
    });
    addr
}

/// One connection from `peer` to port 8080 of the pod.
async fn connect(
    peer: &str,
    to: Destination,
    request: &[u8],
) -> (String, Result<(), ConnectionError>, Arc<Shared>) {
    let shared = shared_with(CONFIG);
    let peer = peer.parse().expect("addr");
    let proxy = shared.clone();
    let (response, ended) = exchange(request, move |server| {
        handle(server, peer, to, proxy, CancellationToken::new())
    })
    .await;
    (response, ended, shared)
}

fn plaintext_denials(shared: &Shared) -> u64 {
    counter(
        shared,
        "osm_inbound_denied_total",
        "port=\"8080\",kind=\"plaintext\"",
    )
}

const GET: &[u8] = b"GET /books HTTP/1.1\r\nHost: bookstore\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn a_plaintext_http_client_is_answered_403_with_the_reason() {
    let (response, ended, shared) = connect("192.168.0.7:5000", to_app(), GET).await;
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(
        response.contains(
            "osm-proxy: plaintext peer 192.168.0.7:5000 refused on port 8080: only mesh mTLS is accepted"
        ),
        "{response}"
    );
    assert!(matches!(
        ended,
        Err(ConnectionError::Refused(Refusal::Plaintext {
            port: 8080,
            ..
        }))
    ));
    assert_eq!(plaintext_denials(&shared), 1);
}

#[tokio::test]
async fn a_plaintext_tcp_client_is_closed_and_counted() {
    // Not HTTP: no answer, the connection is closed.
    let (response, ended, shared) = connect("192.168.0.7:5000", to_app(), b"\x00\x01binary").await;
    assert_eq!(response, "");
    assert!(ended.is_err());
    assert_eq!(plaintext_denials(&shared), 1);
}

#[tokio::test]
async fn an_ingress_source_is_admitted_and_sent_to_the_app() {
    let to = Destination::fixed(8080, app_answering_hello().await);
    let (response, ended, shared) = connect("10.1.2.3:5000", to, GET).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello"), "{response}");
    assert!(ended.is_ok());
    assert_eq!(plaintext_denials(&shared), 0);
}

/// Regression (issue 14, item 8): a refused client could keep its
/// connection open and go on sending requests.
#[tokio::test]
async fn a_refused_http_client_is_answered_then_let_go() {
    // No `Connection: close` from the client: the proxy closes anyway, so
    // reading to the end completes.
    let keep_alive = b"GET /books HTTP/1.1\r\nHost: bookstore\r\n\r\n";
    let (response, ended, _) = connect("192.168.0.7:5000", to_app(), keep_alive).await;
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("connection: close"),
        "{response}"
    );
    assert!(ended.is_err());
}

/// Regression: the app address was fixed when a connection started, so a
/// kept-alive connection kept dialling loopback after MeshConfig switched
/// `sidecar.localProxyMode` to PodIP. Each request follows the mode now.
#[tokio::test]
async fn a_request_goes_where_the_current_local_proxy_mode_says() {
    let shared = shared_with(
        r#"
mesh: {permissive: false, appOnPodIp: true}
inbound:
- port: 8080
  protocol: PROTOCOL_HTTP1
  plaintextSources: ["10.0.0.0/8"]
"#,
    );
    let to = Destination {
        port: 8080,
        // Where Localhost mode had it when the connection started: nothing
        // answers there.
        app: "127.0.0.1:9".parse().expect("addr"),
        on_pod_ip: false,
        app_in_other_mode: Some(app_answering_hello().await),
    };
    let peer = "10.1.2.3:5000".parse().expect("addr");
    let proxy = shared.clone();
    let (response, ended) = exchange(GET, move |server| {
        handle(server, peer, to, proxy, CancellationToken::new())
    })
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello"), "{response}");
    assert!(ended.is_ok());
}

/// What each open connection's task costs before its buffers. It was
/// 20 KB: the TLS stream held again by every layer it passed through, the
/// refusal's answer kept twice, and the task's wrapper holding the whole
/// connection twice.
#[tokio::test]
async fn an_inbound_connection_task_stays_small() {
    let stream = crate::test_support::tcp_stream().await;
    let peer = "10.0.0.1:40000".parse().expect("addr");
    let shared = shared_with(CONFIG);
    let served = handle(
        stream,
        peer,
        to_app(),
        shared.clone(),
        CancellationToken::new(),
    );
    let accepted = crate::serve::Accepted::now(peer, None, "inbound");
    let task = crate::serve::logged(served, shared, accepted);
    let size = std::mem::size_of_val(&task);
    assert!(size <= 3000, "an inbound connection's task is {size} bytes");
}
