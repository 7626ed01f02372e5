use bytes::Bytes;
use http::Request;
use osm_tests::{
    ProxyOptions, TestProxy,
    apps::HttpApp,
    client::http1_get,
    eventually,
    pki::{Pki, spiffe},
};
use serde_json::json;

fn policy(pki: &Pki, port: u16, path: &str) -> String {
    json!({
        "trustBundle": {"pem": pki.bundle_pem()},
        "inbound": [{"port": port, "authorizations": [{
            "name": "shop/buyer", "sources": [spiffe("shop", "buyer")],
            "http": {"matches": [{"name": "m", "pathRegex": path}]}
        }]}]
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_file_changes_decisions_and_a_bad_one_is_refused() {
    let pki = Pki::default();
    let app = HttpApp::start("store").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.yaml");
    std::fs::write(&path, policy(&pki, app.addr.port(), "/old")).unwrap();
    let server = TestProxy::start(ProxyOptions {
        credentials: Some(pki.issue("shop", "store")),
        config_file: Some(path.clone()),
        inbound_targets: vec![app.addr],
        outbound_targets: vec![],
        ..Default::default()
    })
    .await;
    let client = TestProxy::start(ProxyOptions {
        credentials: Some(pki.issue("shop", "buyer")),
        config_yaml: Some(
            json!({
                "trustBundle": {"pem": pki.bundle_pem()},
                "endpoints": [{"key": "shop/store:80", "endpoints": [
                    {"address": server.inbound().to_string(), "identity": spiffe("shop", "store")}]}],
                "outbound": [{"key": "shop/store:80", "port": 80, "hostnames": ["store"], "endpoints": "shop/store:80"}]
            })
            .to_string(),
        ),
        ..Default::default()
    })
    .await;
    // A request in flight across the reload: its body is still being sent.
    let (mut body_tx, body) = futures_channel();
    let outbound = client.outbound();
    let in_flight = tokio::spawn(async move {
        let req = Request::post("/old")
            .header("host", "store")
            .body(body)
            .unwrap();
        osm_tests::client::send_streaming(outbound, req).await
    });
    body_tx.send(Bytes::from_static(b"part1 ")).await;

    assert_eq!(
        http1_get(client.outbound(), "store", "/old")
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        http1_get(client.outbound(), "store", "/new")
            .await
            .unwrap()
            .status,
        403
    );

    std::fs::write(&path, policy(&pki, app.addr.port(), "/new")).unwrap();
    eventually("the new policy is in force", || async {
        (http1_get(client.outbound(), "store", "/new")
            .await
            .ok()?
            .status
            == 200)
            .then_some(())
    })
    .await;
    assert_eq!(
        http1_get(client.outbound(), "store", "/old")
            .await
            .unwrap()
            .status,
        403
    );

    // The request that started under the old config completes.
    body_tx.send(Bytes::from_static(b"part2")).await;
    drop(body_tx);
    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "store POST /old part1 part2");

    // An invalid file is refused; the last good config keeps serving.
    let version = server.shared.config().version;
    std::fs::write(&path, "inbound:\n- port: 99999\n").unwrap();
    eventually("the bad file is refused", || async {
        let text = server.metrics();
        (osm_tests::metric_value(&text, "osm_config_reloads_total", &[("result", "rejected")])
            >= 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(server.shared.config().version, version);
    assert_eq!(
        http1_get(client.outbound(), "store", "/new")
            .await
            .unwrap()
            .status,
        200
    );
}

/// A request body fed piece by piece from the test.
fn futures_channel() -> (BodySender, osm_tests::client::StreamingBody) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    (BodySender(tx), osm_tests::client::StreamingBody::new(rx))
}

struct BodySender(tokio::sync::mpsc::Sender<Bytes>);

impl BodySender {
    async fn send(&mut self, b: Bytes) {
        self.0.send(b).await.unwrap();
    }
}

fn one_endpoint_config(addr: std::net::SocketAddr, pod: &str, timeout_ms: u64) -> String {
    json!({
        "mesh": {"egress": false},
        "endpoints": [{"key": "shop/store:80", "namespace": "shop", "service": "store", "endpoints": [
            {"address": addr.to_string(), "pod": pod, "workloadKind": "Deployment", "workloadName": "store"}]}],
        "outbound": [{"key": "shop/store:80", "namespace": "shop", "name": "store", "port": 80,
            "hostnames": ["store"], "endpoints": "shop/store:80",
            "routes": [{"name": "shop/store/0", "requestTimeoutMs": timeout_ms,
                "backends": [{"endpoints": "shop/store:80", "weight": 1}]}]}]
    })
    .to_string()
}

/// Pool pruning (issue 20): a config that removes an endpoint closes the
/// client proxy's pooled connections to it (a rollout's old pod is not
/// held open, and the proxy holds no descriptors for pods long gone); a
/// config that keeps an endpoint keeps its pooled connection in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_to_a_removed_endpoint_are_closed_and_kept_ones_reused() {
    let (old, new) = (HttpApp::start("old").await, HttpApp::start("new").await);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.yaml");
    std::fs::write(&path, one_endpoint_config(old.addr, "old", 5_000)).unwrap();
    let client = TestProxy::start(ProxyOptions {
        credentials: Some(Pki::default().issue("shop", "buyer")),
        config_file: Some(path.clone()),
        ..Default::default()
    })
    .await;
    let get = || async {
        let answer = http1_get(client.outbound(), "store", "/").await.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        // Parked once the client's connection has closed: the next request
        // finds it there, not racing the close.
        eventually("the upstream connection is parked", || async {
            (client.shared.parked_connections() == 1).then_some(())
        })
        .await;
        answer.body
    };
    assert!(get().await.starts_with("old "));
    assert_eq!((old.connections(), old.open_connections()), (1, 1));

    // A change that keeps the endpoint (a route's timeout): the pooled
    // connection stays and carries the next request.
    let version = client.shared.config().version;
    std::fs::write(&path, one_endpoint_config(old.addr, "old", 6_000)).unwrap();
    eventually("the changed config is applied", || async {
        (client.shared.config().version > version).then_some(())
    })
    .await;
    assert!(get().await.starts_with("old "));
    assert_eq!(
        (old.connections(), old.open_connections()),
        (1, 1),
        "the pooled connection was reused"
    );

    // The endpoint leaves the config: its pooled connection is closed.
    let version = client.shared.config().version;
    std::fs::write(&path, one_endpoint_config(new.addr, "new", 6_000)).unwrap();
    eventually("the config without the endpoint is applied", || async {
        (client.shared.config().version > version).then_some(())
    })
    .await;
    eventually(
        "the removed endpoint's pooled connection is closed",
        || async { (old.open_connections() == 0).then_some(()) },
    )
    .await;
    assert!(get().await.starts_with("new "));
    assert_eq!(
        old.requests(),
        2,
        "nothing more went to the removed endpoint"
    );
    assert_eq!((new.connections(), new.open_connections()), (1, 1));
}
