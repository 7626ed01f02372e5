//! The kubelet's rewritten probes, served by the proxy and forwarded to
//! the application on localhost.

use osm_proxy::probes::ProbePort;
use osm_tests::{
    ProxyOptions, TestProxy,
    apps::{HttpApp, ServerFirstApp},
    client::Http1Conn,
};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn http_tcp_and_passthrough_probes_reach_the_application() {
    let app = HttpApp::start("web").await;
    let banner = ServerFirstApp::start(b"tls-would-start-here").await;
    // A port nothing listens on: bind, note it, close.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let proxy = TestProxy::start(ProxyOptions {
        outbound_targets: vec![],
        probes: vec![
            ProbePort::Http(vec![
                (
                    "/osm-liveness-probe".into(),
                    app.addr.port(),
                    "/healthz".into(),
                ),
                ("/osm-liveness-probe/down".into(), closed, "/healthz".into()),
            ]),
            ProbePort::HealthCheck,
            ProbePort::Tcp(banner.addr.port()),
        ],
        ..Default::default()
    })
    .await;
    let (http, health, passthrough) = (
        proxy.addrs.probes[0],
        proxy.addrs.probes[1],
        proxy.addrs.probes[2],
    );

    // HTTP: the original path reaches the application; its answer is the
    // probe's answer.
    let mut kubelet = Http1Conn::connect(http).await.unwrap();
    let ok = kubelet
        .get("10.1.2.3:15901", "/osm-liveness-probe", &[])
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, "web GET /healthz ");
    let down = kubelet
        .get("10.1.2.3:15901", "/osm-liveness-probe/down", &[])
        .await
        .unwrap();
    assert_eq!(
        down.status, 503,
        "an application that does not answer fails the probe"
    );
    let unknown = kubelet
        .get("10.1.2.3:15901", "/elsewhere", &[])
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);

    // TCP health check: open and closed ports.
    let mut kubelet = Http1Conn::connect(health).await.unwrap();
    let port = app.addr.port().to_string();
    let open = kubelet
        .get(
            "x",
            "/osm-healthcheck",
            &[("Original-Tcp-Port", port.as_str())],
        )
        .await
        .unwrap();
    assert_eq!(open.status, 200);
    let closed_port = closed.to_string();
    let shut = kubelet
        .get(
            "x",
            "/osm-healthcheck",
            &[("Original-Tcp-Port", closed_port.as_str())],
        )
        .await
        .unwrap();
    assert_eq!(shut.status, 503);
    let missing = kubelet.get("x", "/osm-healthcheck", &[]).await.unwrap();
    assert_eq!(missing.status, 400);

    // HTTPS probes: bytes pass through untouched.
    let mut stream = tokio::net::TcpStream::connect(passthrough).await.unwrap();
    let mut got = vec![0u8; b"tls-would-start-here".len()];
    stream.read_exact(&mut got).await.unwrap();
    assert_eq!(got, b"tls-would-start-here");
    proxy.stop().await;
}
