//! A slow client is cut off, and connections past the limit are closed:
//! one client cannot hold the injector (whose failure blocks pod creation)
//! or the webhook.

use std::{sync::Arc, time::Duration};

use http::StatusCode;
use osm_serve::testing::closed_within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn slow_and_surplus_clients_are_cut_off() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler: osm_serve::Handler =
        Arc::new(|_req| Box::pin(async { osm_serve::json_reply(StatusCode::OK, "\"ok\"".into()) }));
    let stop = CancellationToken::new();
    let limits = osm_serve::Limits {
        max_connections: 1,
        header_read_timeout: Duration::from_millis(300),
    };
    let server = tokio::spawn(osm_serve::serve_with(
        listener,
        None,
        handler,
        limits,
        stop.clone(),
    ));

    // A client that starts a request and never finishes its headers.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /mutate HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // While it holds the only slot, another connection is closed at once.
    let mut surplus = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut surplus, Duration::from_secs(10)).await,
        "a connection past the limit is closed"
    );
    // The slow one is cut off by the header timeout, not held forever.
    assert!(
        closed_within(&mut slow, Duration::from_secs(10)).await,
        "the slow client is cut off"
    );
    // Its slot is given back (once its task ends): a prompt client is served.
    let served = async {
        loop {
            let mut prompt = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = prompt
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            let mut answer = String::new();
            let _ = prompt.read_to_string(&mut answer).await;
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("a prompt client is served once the slot is free");
    stop.cancel();
    server.await.unwrap();
}
