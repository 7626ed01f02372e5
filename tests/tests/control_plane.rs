//! A real controller and three proxies on loopback: certificates, policy
//! and mesh settings all come from the controller, fed by manifest files.

#![allow(clippy::unwrap_used)]

use std::{net::SocketAddr, time::Duration};

use osm_proxy::telemetry::metrics::PodInfo;
use osm_tests::{
    ProxyOptions, TestProxy,
    apps::HttpApp,
    client::http1_get,
    control_plane::{ControlPlane, TestController},
    eventually,
    load::steady_get,
};

/// A loopback ClusterIP: should a bug let traffic to it pass through as
/// egress, it still never leaves the machine.
const VIP: &str = "127.0.96.14";
const STORE_IP: &str = "127.0.0.11";

/// Namespaces, pods, the bookstore Service, and bookbuyer's access.
fn cluster(app_port: u16) -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: bookstore, labels: {{openservicemesh.io/monitored-by: osm}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: bookbuyer, labels: {{openservicemesh.io/monitored-by: osm}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: bookthief, labels: {{openservicemesh.io/monitored-by: osm}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: bookstore-0, namespace: bookstore, labels: {{app: bookstore}}}}
spec: {{serviceAccountName: bookstore, initContainers: [{{name: osm-proxy, image: osm-proxy, restartPolicy: Always}}], containers: [{{name: app, image: bookstore, ports: [{{containerPort: {app_port}}}]}}]}}
status: {{podIP: {STORE_IP}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: bookbuyer-0, namespace: bookbuyer, labels: {{app: bookbuyer}}}}
spec: {{serviceAccountName: bookbuyer, initContainers: [{{name: osm-proxy, image: osm-proxy, restartPolicy: Always}}], containers: [{{name: app, image: bookbuyer}}]}}
status: {{podIP: 127.0.0.12}}
---
apiVersion: v1
kind: Pod
metadata: {{name: bookthief-0, namespace: bookthief, labels: {{app: bookthief}}}}
spec: {{serviceAccountName: bookthief, initContainers: [{{name: osm-proxy, image: osm-proxy, restartPolicy: Always}}], containers: [{{name: app, image: bookthief}}]}}
status: {{podIP: 127.0.0.13}}
---
apiVersion: v1
kind: Service
metadata: {{name: bookstore, namespace: bookstore}}
spec: {{clusterIP: {VIP}, selector: {{app: bookstore}}, ports: [{{name: http, port: 14001, targetPort: {app_port}}}]}}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {{name: bookstore-routes, namespace: bookstore}}
spec:
  matches:
  - {{name: books, pathRegex: "/books.*", methods: [GET]}}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {{name: bookbuyer-access, namespace: bookstore}}
spec:
  destination: {{kind: ServiceAccount, name: bookstore, namespace: bookstore}}
  rules: [{{kind: HTTPRouteGroup, name: bookstore-routes, matches: [books]}}]
  sources: [{{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}}]
"#
    )
}

const THIEF_ACCESS: &str = r#"
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: bookthief-access, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
  rules: [{kind: HTTPRouteGroup, name: bookstore-routes, matches: [books]}]
  sources: [{kind: ServiceAccount, name: bookthief, namespace: bookthief}]
"#;

fn mesh_config(permissive: bool, cert_validity: &str) -> String {
    mesh_config_with(permissive, cert_validity, false)
}

fn mesh_config_with(permissive: bool, cert_validity: &str, egress: bool) -> String {
    format!(
        r#"
apiVersion: config.openservicemesh.io/v1alpha2
kind: MeshConfig
metadata: {{name: osm-mesh-config, namespace: osm-system}}
spec:
  traffic: {{enablePermissiveTrafficPolicyMode: {permissive}, enableEgress: {egress}}}
  certificate: {{serviceCertValidityDuration: {cert_validity}}}
"#
    )
}

struct Mesh {
    cp: ControlPlane,
    /// A server outside the mesh, reachable only as egress (each client
    /// proxy's second outbound listener sends there).
    outside: HttpApp,
    controller: Option<TestController>,
    grpc: SocketAddr,
    app: HttpApp,
    store: TestProxy,
    buyer: TestProxy,
    thief: TestProxy,
}

impl Mesh {
    /// The cluster written, a controller, and three proxies ready.
    async fn start(extra: &[(&str, String)]) -> Self {
        Self::start_with(extra, None).await
    }

    /// [`Mesh::start`] with the controller serving the TrafficMetrics API.
    async fn start_with(
        extra: &[(&str, String)],
        api: Option<osm_controller::traffic_metrics::Settings>,
    ) -> Self {
        Self::start_on(ControlPlane::new(), extra, api).await
    }

    /// [`Mesh::start_with`] on a control plane of the caller's.
    async fn start_on(
        cp: ControlPlane,
        extra: &[(&str, String)],
        api: Option<osm_controller::traffic_metrics::Settings>,
    ) -> Self {
        let app = HttpApp::start("bookstore").await;
        let outside = HttpApp::start("outside").await;
        cp.write("cluster.yaml", &cluster(app.addr.port()));
        for (name, yaml) in extra {
            cp.write(name, yaml);
        }
        let controller = cp.start_with("127.0.0.1:0".parse().unwrap(), api).await;
        let grpc = controller.grpc();
        controller.ready().await;
        let store_addr: SocketAddr = format!("{STORE_IP}:{}", app.addr.port()).parse().unwrap();
        // The labels the proxies put on their metrics, as the injector
        // would give them.
        let pod = |ns: &str| PodInfo {
            namespace: ns.into(),
            kind: "Deployment".into(),
            name: ns.into(),
            pod: format!("{ns}-0"),
        };
        let store = TestProxy::start(ProxyOptions {
            inbound_at: vec![(store_addr, app.addr)],
            outbound_targets: vec![],
            control: Some(cp.control_for(grpc, "bookstore", "bookstore-0", "bookstore")),
            pod: pod("bookstore"),
            ..Default::default()
        })
        .await;
        let client = |ns: &str| ProxyOptions {
            outbound_targets: vec![
                Some(format!("{VIP}:14001").parse().unwrap()),
                Some(outside.addr),
            ],
            control: Some(cp.control_for(grpc, ns, &format!("{ns}-0"), ns)),
            pod: pod(ns),
            ..Default::default()
        };
        let buyer = TestProxy::start(client("bookbuyer")).await;
        let thief = TestProxy::start(client("bookthief")).await;
        for p in [&store, &buyer, &thief] {
            eventually("proxy ready", || async {
                p.shared.is_ready().then_some(())
            })
            .await;
        }
        Self {
            cp,
            outside,
            controller: Some(controller),
            grpc,
            app,
            store,
            buyer,
            thief,
        }
    }

    async fn status(proxy: &TestProxy) -> u16 {
        match http1_get(proxy.outbound(), "bookstore.bookstore", "/books").await {
            Ok(a) => a.status,
            Err(_) => 0,
        }
    }

    /// Whether the server outside the mesh answers through the proxy.
    async fn egress_works(proxy: &TestProxy) -> bool {
        http1_get(proxy.addrs.outbound[1], "outside", "/x")
            .await
            .is_ok_and(|a| a.status == 200)
    }

    async fn wait_status(&self, proxy: &TestProxy, want: u16, what: &str) {
        let deadline = tokio::time::Instant::now() + osm_tests::patience();
        loop {
            let got = Self::status(proxy).await;
            if got == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for: {what} (last status {got}; config {})",
                serde_json::to_string(&proxy.shared.config().source).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_and_permissive_mode_come_from_the_controller() {
    let mesh = Mesh::start(&[]).await;
    assert_eq!(Mesh::status(&mesh.buyer).await, 200, "bookbuyer is allowed");
    assert_eq!(mesh.app.requests(), 1);
    assert_eq!(Mesh::status(&mesh.thief).await, 403, "bookthief is not");
    assert_eq!(
        mesh.app.requests(),
        1,
        "a denied request never reaches the app"
    );

    // Readiness is also served on the metrics port, where the kubelet's
    // startup probe of the injected sidecar looks.
    let ready = http1_get(mesh.store.addrs.metrics, "probe", "/ready")
        .await
        .unwrap();
    assert_eq!(ready.status, 200);

    // Certificates carry the pods' ServiceAccounts.
    let id = |p: &TestProxy| p.shared.tls().unwrap().local_identity.to_string();
    assert_eq!(
        id(&mesh.store),
        "spiffe://cluster.local/ns/bookstore/sa/bookstore"
    );
    assert_eq!(
        id(&mesh.thief),
        "spiffe://cluster.local/ns/bookthief/sa/bookthief"
    );

    // A TrafficTarget added through the file source lets bookthief in;
    // removing it shuts it out again.
    mesh.cp.write("thief.yaml", THIEF_ACCESS);
    mesh.wait_status(&mesh.thief, 200, "bookthief allowed")
        .await;
    mesh.cp.remove("thief.yaml");
    mesh.wait_status(&mesh.thief, 403, "bookthief denied again")
        .await;

    // Permissive mode, switched on and off at runtime.
    mesh.cp.write("mesh-config.yaml", &mesh_config(true, "24h"));
    mesh.wait_status(&mesh.thief, 200, "permissive: bookthief allowed")
        .await;
    mesh.cp
        .write("mesh-config.yaml", &mesh_config(false, "24h"));
    mesh.wait_status(&mesh.thief, 403, "SMI mode again: bookthief denied")
        .await;
    assert_eq!(Mesh::status(&mesh.buyer).await, 200);

    // Egress, switched on and off at runtime: the server outside the mesh
    // is reachable only while it is on.
    assert!(
        !Mesh::egress_works(&mesh.buyer).await,
        "egress is off in the MeshConfig"
    );
    assert_eq!(mesh.outside.requests(), 0);
    mesh.cp
        .write("mesh-config.yaml", &mesh_config_with(false, "24h", true));
    eventually("egress on", || async {
        Mesh::egress_works(&mesh.buyer).await.then_some(())
    })
    .await;
    assert!(mesh.outside.requests() > 0);
    mesh.cp
        .write("mesh-config.yaml", &mesh_config(false, "24h"));
    eventually("egress off again", || async {
        (!Mesh::egress_works(&mesh.buyer).await).then_some(())
    })
    .await;

    // The debug endpoint lists the three proxies, each having acknowledged
    // what it was sent.
    let controller = mesh.controller.as_ref().unwrap();
    let listed = eventually("every proxy acknowledged", || async {
        let (status, body) = controller.admin_get("/debug/proxies").await;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let all = v.as_array().unwrap();
        (all.len() == 3 && all.iter().all(|p| p["ackedVersion"] == p["sentVersion"])).then_some(v)
    })
    .await;
    let pods: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pod"].as_str().unwrap())
        .collect();
    assert_eq!(pods, ["bookbuyer-0", "bookstore-0", "bookthief-0"]);
    let (_, metrics) = controller.admin_get("/metrics").await;
    assert!(
        metrics.contains("osm_controller_connected_proxies 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("osm_controller_certificates_issued_total 3"),
        "{metrics}"
    );
    // OSM's names of the same, for alerts written for OSM.
    for osm in ["osm_proxy_connect_count 3", "osm_cert_issued_count 3"] {
        assert!(metrics.contains(osm), "{osm} in {metrics}");
    }
    for at_least_one_each in [
        "osm_proxy_response_send_success_count",
        "osm_proxy_xds_request_count",
    ] {
        assert!(
            osm_tests::metric_value(&metrics, at_least_one_each, &[]) >= 3.0,
            "{at_least_one_each} in {metrics}"
        );
    }
    assert_eq!(controller.admin_get("/readyz").await.0, 200);

    // A proxy that leaves ends its subscription: its stream's end is the
    // session's end (no task lingers per proxy).
    mesh.thief.stop().await;
    eventually("the thief's subscription ended", || async {
        let (_, body) = controller.admin_get("/debug/proxies").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let (_, metrics) = controller.admin_get("/metrics").await;
        (v.as_array().unwrap().len() == 2 && metrics.contains("osm_controller_connected_proxies 2"))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_flows_while_the_controller_is_away_and_resyncs_after() {
    let mut mesh = Mesh::start(&[]).await;
    assert_eq!(Mesh::status(&mesh.buyer).await, 200);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(steady_get(
        mesh.buyer.outbound(),
        "bookstore.bookstore",
        "/books",
        250,
        5,
        stop_rx,
    ));
    mesh.controller.take().unwrap().stop().await;
    // Five seconds of traffic with no controller at all.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = stop_tx.send(true);
    let report = load.await.unwrap();
    assert!(
        report.failures.is_empty(),
        "failed requests: {:?}",
        &report.failures[..report.failures.len().min(5)]
    );
    assert!(report.ok >= 1000, "only {} requests in 5 s", report.ok);
    assert!(
        mesh.buyer.shared.is_ready(),
        "still ready on its last config"
    );

    // A policy written while the controller is down takes effect once it
    // is back: the proxies reconnect and resync.
    mesh.cp.write("thief.yaml", THIEF_ACCESS);
    assert_eq!(Mesh::status(&mesh.thief).await, 403);
    let controller = mesh.cp.start(mesh.grpc).await;
    mesh.wait_status(&mesh.thief, 200, "bookthief allowed after the resync")
        .await;
    assert_eq!(Mesh::status(&mesh.buyer).await, 200);
    mesh.controller = Some(controller);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_under_traffic_without_a_failure() {
    let mesh = Mesh::start(&[("mesh-config.yaml", mesh_config(false, "4s"))]).await;
    let serial = |p: &TestProxy| {
        let tls = p.shared.tls().unwrap();
        osm_proxy::identity::tls::summarize(&tls.credentials.chain[0])
            .unwrap()
            .serial
    };
    let (first_store, first_buyer) = (serial(&mesh.store), serial(&mesh.buyer));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(steady_get(
        mesh.buyer.outbound(),
        "bookstore.bookstore",
        "/books",
        200,
        4,
        stop_rx,
    ));
    // Renewal comes at about two thirds of 4 s; wait for two on each side.
    let mut seen_store = vec![first_store];
    let mut seen_buyer = vec![first_buyer];
    eventually("two certificate rotations on both sides", || {
        let s = serial(&mesh.store);
        let b = serial(&mesh.buyer);
        if seen_store.last() != Some(&s) {
            seen_store.push(s);
        }
        if seen_buyer.last() != Some(&b) {
            seen_buyer.push(b);
        }
        let done = seen_store.len() >= 3 && seen_buyer.len() >= 3;
        async move { done.then_some(()) }
    })
    .await;
    let _ = stop_tx.send(true);
    let report = load.await.unwrap();
    assert!(
        report.failures.is_empty(),
        "failed requests: {:?}",
        &report.failures[..report.failures.len().min(5)]
    );
    assert!(report.ok > 100, "only {} requests", report.ok);
    // The new certificates are real: a new connection from the thief's
    // proxy is still refused by policy, not by TLS.
    assert_eq!(Mesh::status(&mesh.thief).await, 403);
}

mod protocol {
    //! The gRPC surface spoken directly, as a misbehaving proxy would.

    use super::*;
    use osm_api::v1::{self, config_client::ConfigClient, identity_client::IdentityClient};
    use osm_proxy::control::{
        certify::{certify, key_and_csr},
        channel::connect,
    };
    use tokio_stream::wrappers::ReceiverStream;

    async fn open_stream(
        channel: tonic::transport::Channel,
        hello: v1::ProxyInfo,
    ) -> (
        tokio::sync::mpsc::Sender<v1::ProxyInfo>,
        Result<tonic::Streaming<v1::ConfigUpdate>, tonic::Status>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(hello).await.unwrap();
        let result = ConfigClient::new(channel)
            .stream(ReceiverStream::new(rx))
            .await
            .map(|r| r.into_inner());
        (tx, result)
    }

    fn hello(ns: &str, pod: &str) -> v1::ProxyInfo {
        v1::ProxyInfo {
            pod_name: pod.into(),
            pod_namespace: ns.into(),
            ..Default::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn identities_are_proven_before_anything_is_issued_or_streamed() {
        let cp = ControlPlane::new();
        cp.write("cluster.yaml", &cluster(18080));
        let controller = cp.start("127.0.0.1:0".parse().unwrap()).await;
        let grpc = controller.grpc();
        controller.ready().await;

        // A token for bookthief cannot buy a certificate for bookstore's pod.
        let thief = cp.control_for(grpc, "bookthief", "bookthief-0", "bookthief");
        let channel = connect(&thief.controller, None).await.unwrap();
        let (_, csr_pem) = key_and_csr(&thief.pod).unwrap();
        let token = std::fs::read_to_string(&thief.token_file).unwrap();
        let refused = IdentityClient::new(channel.clone())
            .certify(v1::CertifyRequest {
                csr_pem: csr_pem.clone(),
                token: token.clone(),
                pod_name: "bookstore-0".into(),
                pod_namespace: "bookstore".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(
            refused.message().contains("bookthief/bookthief-0"),
            "{}",
            refused.message()
        );
        // A forged token is refused as unauthenticated.
        let forged = IdentityClient::new(channel.clone())
            .certify(v1::CertifyRequest {
                csr_pem,
                token: format!("{token}x"),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(forged.code(), tonic::Code::Unauthenticated);

        // No client certificate: no config.
        let (_, anonymous) = open_stream(channel, hello("bookthief", "bookthief-0")).await;
        let anonymous = anonymous.unwrap_err();
        assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
        assert!(anonymous.message().contains("Identity.Certify"));

        // bookthief's certificate cannot read bookstore's config.
        let certified = certify(&thief.controller, &thief.pod, &thief.token_file)
            .await
            .unwrap();
        let channel = connect(&thief.controller, Some(&certified.credentials))
            .await
            .unwrap();
        let (_, other) = open_stream(channel.clone(), hello("bookstore", "bookstore-0")).await;
        let other = other.unwrap_err();
        assert_eq!(other.code(), tonic::Code::PermissionDenied);
        assert!(other.message().contains("bookthief"), "{}", other.message());
        // An unknown pod is reported as such.
        let (_, unknown) = open_stream(channel.clone(), hello("bookthief", "nobody")).await;
        assert_eq!(unknown.unwrap_err().code(), tonic::Code::Unavailable);

        // Its own config streams; a NACK makes the next batch a full one.
        let (replies, updates) = open_stream(channel, hello("bookthief", "bookthief-0")).await;
        let mut updates = updates.unwrap();
        let first = updates.message().await.unwrap().unwrap();
        assert!(first.full);
        replies
            .send(v1::ProxyInfo {
                nack_reason: "cannot apply".into(),
                ..hello("bookthief", "bookthief-0")
            })
            .await
            .unwrap();
        let again = updates.message().await.unwrap().unwrap();
        assert!(again.full, "after a NACK the proxy gets everything again");
        assert_eq!(again.upserts, first.upserts);
        // Acknowledged, the next change comes as a delta.
        replies
            .send(v1::ProxyInfo {
                acked_version: again.version.clone(),
                ..hello("bookthief", "bookthief-0")
            })
            .await
            .unwrap();
        cp.write("thief.yaml", THIEF_ACCESS);
        let next = updates.message().await.unwrap().unwrap();
        assert!(!next.full);
        assert!(next.version.parse::<u64>().unwrap() > again.version.parse::<u64>().unwrap());
        assert!(
            next.upserts.iter().any(|r| matches!(&r.kind, Some(v1::resource::Kind::Outbound(o)) if o.name == "bookstore")),
            "bookthief may now reach bookstore: {next:?}"
        );
        let (_, metrics) = controller.admin_get("/metrics").await;
        assert!(
            metrics.contains("osm_controller_nacks_total 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("osm_controller_errors_total{kind=\"certify\"} 2"),
            "{metrics}"
        );
        for osm in [
            "osm_proxy_response_send_error_count 1",
            "osm_error_err_code_count{err_code=\"certify\"} 2",
        ] {
            assert!(metrics.contains(osm), "{osm} in {metrics}");
        }

        // Refusals in a row back off: the full resend after the n-th waits
        // `nack_backoff(n)` (0, 100, 200, 400 ms), so a batch that can never
        // apply is no busy loop. Only the lower bound is checked: a slow
        // machine makes resends later, never earlier.
        for n in 1..=4u32 {
            replies
                .send(v1::ProxyInfo {
                    nack_reason: "cannot apply".into(),
                    ..hello("bookthief", "bookthief-0")
                })
                .await
                .unwrap();
            let wait = osm_api::protocol::nack_backoff(n);
            if !wait.is_zero() {
                let early = tokio::time::timeout(wait * 3 / 4, updates.message()).await;
                assert!(early.is_err(), "NACK {n}: resent before {wait:?}");
            }
            let resent = updates.message().await.unwrap().unwrap();
            assert!(resent.full, "NACK {n}: a full batch");
        }
        let streak = || async {
            let (_, proxies) = controller.admin_get("/debug/proxies").await;
            let proxies: serde_json::Value = serde_json::from_str(&proxies).unwrap();
            proxies[0]["consecutiveNacks"].as_u64()
        };
        assert_eq!(streak().await, Some(4));
        // An acknowledgement ends the streak.
        replies
            .send(v1::ProxyInfo {
                acked_version: "any".into(),
                ..hello("bookthief", "bookthief-0")
            })
            .await
            .unwrap();
        eventually("the streak reset", || async {
            (streak().await == Some(0)).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_answers_admission_reviews_with_the_compilers_messages() {
    use osm_controller::ca::Issuer;
    let cp = ControlPlane::new();
    let controller = cp.start("127.0.0.1:0".parse().unwrap()).await;
    let roots = cp.ca.trust_bundle();
    let review = |split_weight: i64| {
        serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": "CREATE",
                "kind": {"group": "split.smi-spec.io", "version": "v1alpha2", "kind": "TrafficSplit"},
                "resource": {"group": "split.smi-spec.io", "version": "v1alpha2", "resource": "trafficsplits"},
                "userInfo": {"username": "kubernetes-admin"},
                "object": {
                "apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
                "metadata": {"name": "canary", "namespace": "bookstore"},
                "spec": {"service": "bookstore", "backends": [
                    {"service": "bookstore-v1", "weight": split_weight},
                ]},
            }},
        })
        .to_string()
    };
    let (status, body) = controller
        .webhook_post(&roots, "/validate", review(100))
        .await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{body}");
    assert_eq!(answer["response"]["uid"], "u-1");

    let (_, body) = controller
        .webhook_post(&roots, "/validate", review(-5))
        .await;
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], false, "{body}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("TrafficSplit bookstore/canary") && message.contains("weight"),
        "{message}"
    );

    let (status, _) = controller
        .webhook_post(&roots, "/elsewhere", review(100))
        .await;
    assert_eq!(status, 404);
    // Counted under OSM's name, by kind and answer.
    let (_, metrics) = controller.admin_get("/metrics").await;
    for success in ["true", "false"] {
        assert_eq!(
            osm_tests::metric_value(
                &metrics,
                "osm_admission_webhook_response_total",
                &[("kind", "TrafficSplit"), ("success", success)]
            ),
            1.0,
            "{metrics}"
        );
    }
    controller.stop().await;
}

/// Pods whose proxies' metrics the controller reads: the test proxies all
/// listen on 127.0.0.1, so each is named by its metrics port.
fn scrape_pods(proxies: &[(&str, &TestProxy)]) -> String {
    let mut yaml = String::from("apiVersion: v1\nkind: Namespace\nmetadata: {name: scrape}\n");
    for (name, proxy) in proxies {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: scrape, \
             annotations: {{prometheus.io/port: \"{}\", prometheus.io/path: /stats/prometheus}}}}\n\
             spec: {{initContainers: [{{name: osm-proxy, image: osm-proxy}}], containers: [{{name: app, image: x}}]}}\n\
             status: {{podIP: 127.0.0.1}}\n",
            proxy.addrs.metrics.port()
        ));
    }
    yaml
}

/// The SMI TrafficMetrics API as the API server's aggregator reaches it:
/// edges with the requests of each window, summed over windows, equal the
/// requests sent (bookbuyer's succeed; bookthief's go to a path its
/// TrafficTarget does not allow, and the bookstore's proxy denies them);
/// only the front-proxy certificate with an allowed name gets an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_metrics_are_served_to_the_api_servers_aggregator() {
    let front = osm_tests::pki::Pki::new("front-proxy-ca");
    let api = osm_controller::traffic_metrics::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        client_ca_pem: front.bundle_pem(),
        allowed_names: vec!["front-proxy-client".into()],
        window: Duration::from_secs(1),
    };
    let mesh = Mesh::start_with(&[("thief.yaml", THIEF_ACCESS.to_string())], Some(api)).await;
    mesh.cp.write(
        "scrape.yaml",
        &scrape_pods(&[("buyer", &mesh.buyer), ("thief", &mesh.thief)]),
    );
    let controller = mesh.controller.as_ref().unwrap();
    let roots = osm_controller::ca::Issuer::trust_bundle(mesh.cp.ca.as_ref());
    let (cert, key) = front.issue_pem(None, "front-proxy-client");
    let client = Some((cert.as_str(), key.as_str()));
    let get = |path: String| {
        let roots = roots.clone();
        async move {
            controller
                .traffic_metrics_get(&roots, client, http::Method::GET, &path)
                .await
                .unwrap()
        }
    };
    let base = "/apis/metrics.smi-spec.io/v1alpha1";

    let (status, body) = get(base.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"pods/edges\""), "{body}");
    let (status, body) = get(format!("{base}/namespaces/bookstore/services/bookstore")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"kind\":\"Status\""), "{body}");

    let edges = format!("{base}/namespaces/bookstore/pods/bookstore-0/edges");
    // The first window completes once the proxies were read twice.
    eventually("the first window", || async {
        (get(edges.clone()).await.0 == 200).then_some(())
    })
    .await;
    for _ in 0..5 {
        assert_eq!(Mesh::status(&mesh.buyer).await, 200);
    }
    for _ in 0..3 {
        let answer = http1_get(mesh.thief.outbound(), "bookstore.bookstore", "/secret")
            .await
            .unwrap();
        assert_eq!(answer.status, 403, "{}", answer.body);
    }
    // Each window holds the requests made in it: summed over the windows
    // seen, they come to what was sent.
    let mut windows = std::collections::BTreeMap::new();
    let deadline = tokio::time::Instant::now() + osm_tests::patience();
    let totals = loop {
        let (status, body) = get(edges.clone()).await;
        assert_eq!(status, 200, "{body}");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        windows.insert(list["items"][0]["timestamp"].to_string(), list);
        let totals = edge_totals(windows.values());
        if totals.get("bookbuyer") == Some(&(5.0, 0.0))
            && totals.get("bookthief") == Some(&(0.0, 3.0))
        {
            break totals;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the windows never added up to the requests sent: {totals:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(totals.len(), 2, "{totals:?}");
    let one = windows
        .values()
        .find(|l| !l["items"].as_array().unwrap().is_empty())
        .unwrap();
    assert_eq!(one["items"][0]["window"], "1s", "{one}");
    assert_eq!(one["items"][0]["resource"]["kind"], "Pod");

    // A certificate from the right CA with another name is refused; one
    // from another CA, or none, does not get past the handshake.
    let (cert, key) = front.issue_pem(None, "someone");
    let (status, body) = controller
        .traffic_metrics_get(&roots, Some((&cert, &key)), http::Method::GET, base)
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    let stranger = osm_tests::pki::Pki::new("front-proxy-ca");
    let (cert, key) = stranger.issue_pem(None, "front-proxy-client");
    assert!(
        controller
            .traffic_metrics_get(&roots, Some((&cert, &key)), http::Method::GET, base)
            .await
            .is_err()
    );
    assert!(
        controller
            .traffic_metrics_get(&roots, None, http::Method::GET, base)
            .await
            .is_err()
    );
    let (status, _) = controller
        .traffic_metrics_get(&roots, client, http::Method::DELETE, &edges)
        .await
        .unwrap();
    assert_eq!(status, 405);
}

/// (success, failure) received from each peer namespace, summed over
/// TrafficMetricsLists of edges.
fn edge_totals<'a>(
    lists: impl Iterator<Item = &'a serde_json::Value>,
) -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut totals = std::collections::BTreeMap::new();
    for list in lists {
        for item in list["items"].as_array().into_iter().flatten() {
            if item["edge"]["direction"] != "from" {
                continue;
            }
            let peer = item["edge"]["resource"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let metric = |name: &str| {
                item["metrics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| m["name"] == name)
                    .and_then(|m| m["value"].as_str()?.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            let entry = totals.entry(peer).or_insert((0.0, 0.0));
            entry.0 += metric("success_count");
            entry.1 += metric("failure_count");
        }
    }
    totals
}

/// The injected CA is for the first connection only: a proxy also trusts
/// the bundle the controller sent it (here already in its config), so a
/// controller whose certificate comes from a root the injection did not
/// know (after a root rotation) is still reached, and nothing else is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_is_trusted_by_the_bundle_it_sent_too() {
    use osm_proxy::control::channel::ControllerAddr;
    let cp = ControlPlane::new();
    cp.write("cluster.yaml", &cluster(18080));
    let controller = cp.start("127.0.0.1:0".parse().unwrap()).await;
    let grpc = controller.grpc();
    controller.ready().await;
    let injected_elsewhere = osm_tests::pki::Pki::new("another-root");
    let mut control = cp.control_for(grpc, "bookbuyer", "bookbuyer-0", "bookbuyer");
    control.controller = ControllerAddr::new(
        &grpc.to_string(),
        None,
        injected_elsewhere.bundle_pem().as_bytes(),
    )
    .unwrap();
    let unaware = TestProxy::start(ProxyOptions {
        outbound_targets: vec![],
        control: Some(control.clone()),
        ..Default::default()
    })
    .await;
    let bundle = osm_controller::ca::Issuer::trust_bundle(cp.ca.as_ref());
    let config = serde_json::json!({"trustBundle": {"pem": bundle}}).to_string();
    let told = TestProxy::start(ProxyOptions {
        outbound_targets: vec![],
        control: Some(control),
        config_yaml: Some(config),
        ..Default::default()
    })
    .await;
    eventually(
        "certified and streaming through the sent bundle",
        || async { told.shared.is_ready().then_some(()) },
    )
    .await;
    assert!(told.shared.credentials().is_some());
    assert!(
        unaware.shared.credentials().is_none(),
        "a controller its roots do not know is not trusted"
    );
}

/// A user's PKI: the controller issues from an intermediate whose root it
/// has no key of. Leaves carry the intermediate, proxies trust the root
/// alone, and both ends of a request verify the other through it (and
/// the proxies the controller's own certificate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intermediate_ca_issues_and_both_ends_verify_through_it() {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256,
    };
    let ca_params = |name: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    };
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let root_params = ca_params("a user's root");
    let root = root_params.self_signed(&root_key).unwrap().pem();
    let root_issuer = rcgen::Issuer::new(root_params, root_key);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let intermediate = ca_params("the mesh's intermediate")
        .signed_by(&key, &root_issuer)
        .unwrap()
        .pem();
    let ca = osm_controller::ca::LocalCa::from_pem(
        &format!("{intermediate}{root}"),
        &key.serialize_pem(),
    )
    .unwrap();
    let mesh = Mesh::start_on(ControlPlane::with_ca(ca), &[], None).await;
    mesh.wait_status(&mesh.buyer, 200, "bookbuyer buys through the intermediate")
        .await;
    assert_eq!(
        osm_controller::ca::Issuer::trust_bundle(mesh.cp.ca.as_ref()),
        root,
        "the bundle is the root alone"
    );
    let chain = mesh.buyer.shared.credentials().unwrap().chain.len();
    assert_eq!(chain, 2, "the leaf and the intermediate");
}

/// The root listed first in the bundle is the one that issues: when it is
/// not the one a proxy's certificate chains to, the proxy renews at once
/// (a rotation's switch), once per bundle; a bundle whose first root is
/// its own changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_renews_early_when_another_root_issues() {
    let mesh = Mesh::start(&[]).await;
    let controller = mesh.controller.as_ref().unwrap();
    let root = osm_controller::ca::Issuer::trust_bundle(mesh.cp.ca.as_ref());
    let other = osm_tests::pki::Pki::new("the next root").bundle_pem();
    let issued = || async {
        let (_, metrics) = controller.admin_get("/metrics").await;
        osm_tests::metric_value(&metrics, "osm_cert_issued_count", &[])
    };
    let serial = |p: &TestProxy| p.shared.credentials().unwrap().chain[0].to_vec();
    let before = issued().await;
    let first_cert = serial(&mesh.buyer);
    // /debug/ca: the issuing root, and the live certificates from it.
    let ca_report = || async {
        let (status, body) = controller.admin_get("/debug/ca").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let report = ca_report().await;
    let roots = report["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "{report}");
    assert_eq!(roots[0]["issuing"], true);
    assert_eq!(roots[0]["liveCertificates"], 3, "{report}");
    let fingerprint = roots[0]["fingerprint"].as_str().unwrap().to_string();
    let (_, metrics) = controller.admin_get("/metrics").await;
    assert_eq!(
        osm_tests::metric_value(
            &metrics,
            "osm_controller_live_certificates",
            &[("root", fingerprint.as_str())]
        ),
        3.0,
        "{metrics}"
    );
    let has_bundle = |p: &TestProxy, n: usize, first: &str| {
        let bundle = &p.shared.config().trust_bundle;
        let want = osm_proxy::identity::parse_certificates(first.as_bytes()).unwrap();
        bundle.len() == n && bundle[0] == want[0]
    };

    // Its own root first: nothing to do.
    controller.hub.set_trust_bundle(format!("{root}{other}"));
    eventually("the bundle with the next root", || async {
        has_bundle(&mesh.buyer, 2, &root).then_some(())
    })
    .await;
    assert_eq!(serial(&mesh.buyer), first_cert);

    // Another root first: every proxy asks for a new certificate at once.
    controller.hub.set_trust_bundle(format!("{other}{root}"));
    eventually("an early renewal", || async {
        (serial(&mesh.buyer) != first_cert).then_some(())
    })
    .await;
    let proxies = 3.0;
    eventually("each proxy renewed once", || async {
        (issued().await == before + proxies).then_some(())
    })
    .await;
    // (This controller still issues from its root: no second try for this
    // bundle, and traffic flows on.)
    mesh.wait_status(&mesh.buyer, 200, "bookbuyer still buys")
        .await;
    assert_eq!(issued().await, before + proxies);
    // Renewals replace each pod's entry; the bundle's first root is the
    // other one now, with no certificate from it.
    let report = ca_report().await;
    let live: Vec<(bool, bool, u64)> = report["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let issuing = r["issuing"].as_bool().unwrap();
            let ours = r["fingerprint"] == fingerprint.as_str();
            (issuing, ours, r["liveCertificates"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(live, [(true, false, 0), (false, true, 3)], "{report}");
}

#[path = "control_plane/cert_manager.rs"]
mod cert_manager;
#[path = "control_plane/issuer_outage.rs"]
mod issuer_outage;
#[path = "control_plane/rotation.rs"]
mod rotation;
#[path = "control_plane/vault.rs"]
mod vault;
