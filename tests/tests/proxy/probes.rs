//! The kubelet's rewritten probes, answered by the proxy after probing the
//! application on localhost itself.

use std::{net::SocketAddr, sync::Arc};

use osm_proxy::probes::{ProbePort, ProbeRoute};
use osm_tests::{ProxyOptions, TestProxy, apps::HttpApp, client::Http1Conn};

/// A port nothing listens on: bind, note it, close.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// An HTTPS application with a self-signed certificate: `/ready` answers
/// 200 with a body the probe must not pass on, anything else 500.
async fn https_app() -> SocketAddr {
    use hyper_util::rt::TokioIo;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|req: http::Request<_>| async move {
                    let status = if req.uri().path() == "/ready" {
                        200
                    } else {
                        500
                    };
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .status(status)
                            .body(http_body_util::Full::new(bytes::Bytes::from(
                                "secret application body",
                            )))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn probes_check_the_application_and_answer_with_the_status_only() {
    let app = HttpApp::start("web").await;
    let https = https_app().await;
    let closed = closed_port();
    let proxy = TestProxy::start(ProxyOptions {
        outbound_targets: vec![],
        probes: vec![
            ProbePort::Http(vec![
                ProbeRoute::new("/osm-liveness-probe", app.addr.port(), "/healthz", false),
                ProbeRoute::new("/osm-liveness-probe/down", closed, "/healthz", false),
                ProbeRoute::new("/osm-readiness-probe", https.port(), "/ready", true),
                ProbeRoute::new("/osm-readiness-probe/bad", https.port(), "/other", true),
            ]),
            ProbePort::HealthCheck(vec![app.addr.port(), closed]),
        ],
        ..Default::default()
    })
    .await;
    let (http, health) = (proxy.addrs.probes[0], proxy.addrs.probes[1]);

    // HTTP: the proxy GETs the original path with the kubelet's headers;
    // the application's status is the answer, its body is not.
    let mut kubelet = Http1Conn::connect(http).await.unwrap();
    let ok = kubelet
        .get(
            "10.1.2.3:15901",
            "/osm-liveness-probe",
            &[("x-probe", "kubelet")],
        )
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    assert!(
        !ok.body.contains("web GET"),
        "the app's body leaked: {}",
        ok.body
    );
    assert!(ok.body.contains("/healthz: 200 OK"), "{}", ok.body);
    assert_eq!(app.last_headers().unwrap()["x-probe"], "kubelet");
    let down = kubelet
        .get("10.1.2.3:15901", "/osm-liveness-probe/down", &[])
        .await
        .unwrap();
    assert_eq!(
        down.status, 503,
        "an application that does not answer fails"
    );
    let unknown = kubelet
        .get("10.1.2.3:15901", "/elsewhere", &[])
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);

    // Regression (issue 14, item 9): HTTPS probes were spliced as raw TCP
    // to the application. The proxy now probes over TLS itself.
    let ready = kubelet
        .get("10.1.2.3:15902", "/osm-readiness-probe", &[])
        .await
        .unwrap();
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(!ready.body.contains("secret"), "{}", ready.body);
    let failing = kubelet
        .get("10.1.2.3:15902", "/osm-readiness-probe/bad", &[])
        .await
        .unwrap();
    assert_eq!(failing.status, 500);

    // TCP health check: open and closed probed ports.
    let mut kubelet = Http1Conn::connect(health).await.unwrap();
    let check = |port: u16| port.to_string();
    let open = kubelet
        .get(
            "x",
            "/osm-healthcheck",
            &[("Original-Tcp-Port", &check(app.addr.port()))],
        )
        .await
        .unwrap();
    assert_eq!(open.status, 200);
    let shut = kubelet
        .get(
            "x",
            "/osm-healthcheck",
            &[("Original-Tcp-Port", &check(closed))],
        )
        .await
        .unwrap();
    assert_eq!(shut.status, 503);
    let missing = kubelet.get("x", "/osm-healthcheck", &[]).await.unwrap();
    assert_eq!(missing.status, 400);
    // Regression (issue 14, item 9): any local port could be checked.
    let other = kubelet
        .get(
            "x",
            "/osm-healthcheck",
            &[("Original-Tcp-Port", &check(https.port()))],
        )
        .await
        .unwrap();
    assert_eq!(other.status, 403, "{}", other.body);
    proxy.stop().await;
}
