use osm_tests::{client::Http1Conn, eventually, mesh::Fixture, metric_value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_source_destination_and_code() {
    let f = Fixture::start().await;
    let mut conn = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    for _ in 0..7 {
        assert_eq!(
            conn.get("bookstore:14001", "/books", &[])
                .await
                .unwrap()
                .status,
            200
        );
    }
    for _ in 0..3 {
        assert_eq!(
            conn.get("bookstore:14001", "/forbidden", &[])
                .await
                .unwrap()
                .status,
            403
        );
    }
    let text = f.buyer.metrics();
    let series = |code: &str| {
        metric_value(
            &text,
            "osm_request_total",
            &[
                ("source_namespace", "bookbuyer"),
                ("source_kind", "Deployment"),
                ("source_name", "bookbuyer"),
                ("source_pod", "bookbuyer-pod"),
                ("destination_namespace", "bookstore"),
                ("destination_kind", "Deployment"),
                ("destination_name", "bookstore-v1"),
                ("destination_pod", "bookstore-v1-pod"),
                ("response_code", code),
            ],
        )
    };
    assert_eq!(series("200"), 7.0, "{text}");
    assert_eq!(series("403"), 3.0, "{text}");
    assert_eq!(
        metric_value(
            &text,
            "osm_request_duration_ms_count",
            &[("response_code", "200")]
        ),
        7.0,
        "{text}"
    );
    let server = f.store_v1.metrics();
    assert_eq!(
        metric_value(&server, "osm_inbound_denied_total", &[("kind", "http")]),
        3.0,
        "{server}"
    );

    let lines = eventually("access log lines are written", || async {
        let lines = f.buyer.access_log_lines();
        (lines.len() >= 10).then_some(lines)
    })
    .await;
    let first = &lines[0];
    assert_eq!(first["direction"], "outbound");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/books");
    assert_eq!(first["response_code"], 200);
    assert_eq!(first["upstream_service"], "bookstore/bookstore:14001");
    let inbound = eventually("inbound access log", || async {
        let lines = f.store_v1.access_log_lines();
        (lines.len() >= 10).then_some(lines)
    })
    .await;
    assert_eq!(
        inbound[0]["source_identity"],
        "spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer"
    );
    assert_eq!(
        inbound.iter().filter(|l| l["response_code"] == 403).count(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_follows_the_config_with_flags_and_peer_identities() {
    use osm_tests::mesh::client_config;
    let f = Fixture::start().await;
    let mut conn = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    assert_eq!(
        conn.get("bookstore:14001", "/books", &[])
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(conn.get("nowhere:80", "/", &[]).await.unwrap().status, 403);
    let lines = eventually("JSON lines", || async {
        let lines = f.buyer.access_log_lines();
        (lines.len() >= 2).then_some(lines)
    })
    .await;
    assert_eq!(lines[0]["response_flags"], "-");
    assert_eq!(
        lines[0]["peer_identity"],
        "spiffe://cluster.local/ns/bookstore/sa/bookstore-v1"
    );
    assert_eq!(lines[1]["response_flags"], "NR", "{}", lines[1]);
    let inbound = eventually("inbound JSON line", || async {
        f.store_v1.access_log_lines().into_iter().next()
    })
    .await;
    assert_eq!(
        inbound["peer_identity"],
        "spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer"
    );

    // The config switches the client's proxy to text, then off.
    let text_lines = |f: &Fixture| -> Vec<String> {
        let bytes = f.buyer.access_log.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| l.starts_with('['))
            .map(str::to_string)
            .collect()
    };
    let mut config = client_config(&f, None, None);
    config["mesh"]["accessLog"] = "text".into();
    f.buyer.apply(&config.to_string());
    assert_eq!(
        conn.get("bookstore:14001", "/books", &[])
            .await
            .unwrap()
            .status,
        200
    );
    let line = eventually("a text line", || async { text_lines(&f).pop() }).await;
    assert!(
        line.contains("\"GET /books HTTP/1.1\" 200 - ")
            && line.contains(" outbound upstream=bookstore/bookstore:14001 ")
            && line.contains("peer=spiffe://cluster.local/ns/bookstore/sa/bookstore-v1"),
        "{line}"
    );
    config["mesh"]["accessLog"] = "off".into();
    f.buyer.apply(&config.to_string());
    let before = f.buyer.access_log.lock().unwrap().len();
    let server_lines = f.store_v1.access_log_lines().len();
    assert_eq!(
        conn.get("bookstore:14001", "/books", &[])
            .await
            .unwrap()
            .status,
        200
    );
    // The server side still logs (its config says nothing): once its line
    // is in, the client's would have been written too.
    eventually("the server's line", || async {
        (f.store_v1.access_log_lines().len() > server_lines).then_some(())
    })
    .await;
    assert_eq!(f.buyer.access_log.lock().unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_lines_count_the_body_bytes_both_ways() {
    let f = Fixture::start().await;
    let mut conn = Http1Conn::connect(f.buyer.outbound()).await.unwrap();
    let upload = bytes::Bytes::from(vec![b'x'; 1000]);
    let request = http::Request::post("/books/upload")
        .header("host", "bookstore:14001")
        .body(http_body_util::Full::new(upload))
        .unwrap();
    let answer = conn.send(request).await.unwrap();
    assert_eq!(answer.status, 200);
    // The app echoes the body after its name, method and path.
    let sent = answer.body.len() as u64;
    assert!(sent > 1000, "{sent}");
    for (side, proxy) in [("outbound", &f.buyer), ("inbound", &f.store_v1)] {
        let line = eventually("the upload's line", || async {
            proxy
                .access_log_lines()
                .into_iter()
                .find(|l| l["path"] == "/books/upload")
        })
        .await;
        assert_eq!(line["direction"], side);
        assert_eq!(line["bytes_received"], 1000, "{line}");
        assert_eq!(line["bytes_sent"], sent, "{line}");
    }
}
