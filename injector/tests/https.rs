//! The injector over HTTPS, as the API server calls it, with the
//! namespace and MeshConfig read from a manifests directory (local mode).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use http_body_util::BodyExt;
use osm_injector::{
    lookup::Files,
    mutate::InjectorSettings,
    server::{State, serve, tls_config},
};
use serde_json::{Value, json};

async fn post(
    addr: std::net::SocketAddr,
    roots_pem: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    use rustls::pki_types::pem::PemObject;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("osm-injector.osm-system.svc".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = http::Request::post(path)
        .header("host", "osm-injector.osm-system.svc")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(hyper::body::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn review(ns: &str, annotations: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "r-1", "namespace": ns, "operation": "CREATE",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "userInfo": {"username": "system:serviceaccount:kube-system:statefulset-controller"},
        "object": {"metadata": {"name": "web-0", "annotations": annotations},
                   "spec": {"containers": [{"name": "web", "image": "web"}]}},
    }})
}

#[tokio::test]
async fn pods_are_patched_over_https_from_the_manifests() {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["osm-injector.osm-system.svc".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let tls = tls_config(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cluster.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {openservicemesh.io/monitored-by: osm}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: outside}\n---\napiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {name: osm-mesh-config, namespace: osm-system}\nspec: {traffic: {outboundPortExclusionList: [6379]}}\n",
    )
    .unwrap();
    let bundle_file = dir.path().join("ca.crt");
    std::fs::write(&bundle_file, "ROOTS").unwrap();
    let state = State {
        trust_bundle: Some(osm_injector::reload::Watched::open(&bundle_file).unwrap()),
        settings: InjectorSettings {
            mesh_name: "osm".into(),
            osm_namespace: "osm-system".into(),
            proxy_image: "osm-proxy:test".into(),
            init_image: "osm-init:test".into(),
            controller: "127.0.0.1:15128".into(),
            trust_bundle_pem: "ROOTS".into(),
            trust_domain: "cluster.local".into(),
        },
        cluster: Box::new(Files {
            dir: dir.path().to_path_buf(),
            osm_namespace: "osm-system".into(),
        }),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(serve(listener, tls, Arc::new(state), stop.clone()));
    let roots = cert.pem();

    let (status, answer) = post(
        addr,
        &roots,
        "/mutate-pod-creation",
        review("shop", json!({})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let patch: Value = serde_json::from_slice(
        &B64.decode(answer["response"]["patch"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let inits = &patch[0]["value"];
    assert_eq!(
        inits[0]["args"],
        json!(["--exclude-outbound-ports", "6379"]),
        "the MeshConfig was read"
    );
    assert_eq!(inits[1]["image"], "osm-proxy:test");
    let injected_bundle = |inits: &Value| {
        inits[1]["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "OSM_CONTROLLER_CA")
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(injected_bundle(inits), "ROOTS");
    // A root rotation rewrites the bundle: the next pod gets the new one.
    let next = dir.path().join("ca.crt.new");
    std::fs::write(&next, "ROOTS+NEXT").unwrap();
    std::fs::rename(&next, &bundle_file).unwrap();
    let (_, again) = post(
        addr,
        &roots,
        "/mutate-pod-creation",
        review("shop", json!({})),
    )
    .await;
    let patch: Value = serde_json::from_slice(
        &B64.decode(again["response"]["patch"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(injected_bundle(&patch[0]["value"]), "ROOTS+NEXT");

    let (_, outside) = post(
        addr,
        &roots,
        "/mutate-pod-creation",
        review("outside", json!({})),
    )
    .await;
    assert_eq!(outside["response"]["allowed"], true);
    assert!(
        outside["response"].get("patch").is_none(),
        "unmonitored: untouched"
    );

    let (_, missing) = post(
        addr,
        &roots,
        "/mutate-pod-creation",
        review("nowhere", json!({})),
    )
    .await;
    assert_eq!(missing["response"]["allowed"], false);
    assert!(
        missing["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("namespace nowhere does not exist")
    );

    let (_, bad) = post(
        addr,
        &roots,
        "/mutate-pod-creation",
        review(
            "shop",
            json!({"openservicemesh.io/sidecar-injection": "perhaps"}),
        ),
    )
    .await;
    assert_eq!(bad["response"]["allowed"], false);

    let (status, _) = post(addr, &roots, "/elsewhere", review("shop", json!({}))).await;
    assert_eq!(status, 404);
    stop.cancel();
}
