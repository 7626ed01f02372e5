//! Certificates from the controller's CA work for mTLS between proxies.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use osm_api::v1;
use osm_controller::{
    ca::{Issuer, LocalCa},
    certify::{Membership, NotMeshed, certify},
    token::{AUDIENCE, LocalTokens, PodIdentity},
};
use osm_proxy::identity::Credentials;
use osm_tests::{ProxyOptions, TestProxy, apps::HttpApp, client::http1_get, pki::spiffe};
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use serde_json::json;

/// The pods here are injected pods of a monitored namespace (membership
/// itself is tested in the controller, from its index).
struct Injected;

impl Membership for Injected {
    fn check(&self, _: &str, _: &str) -> Result<(), NotMeshed> {
        Ok(())
    }
}

/// What a proxy does at start: make a key, send a CSR with its token.
async fn certified(ca: &LocalCa, tokens: &LocalTokens, ns: &str, sa: &str) -> Credentials {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    let pod = PodIdentity {
        namespace: ns.into(),
        pod: format!("{sa}-0"),
        service_account: sa.into(),
    };
    let request = v1::CertifyRequest {
        csr_pem: csr.pem().unwrap(),
        token: tokens.mint(&pod, AUDIENCE, Duration::from_secs(60)),
        pod_name: pod.pod.clone(),
        pod_namespace: ns.into(),
    };
    let response = certify(
        tokens,
        &Injected,
        ca,
        "cluster.local",
        Duration::from_secs(3600),
        &request,
    )
    .await
    .unwrap();
    Credentials::from_pem(
        response.cert_chain_pem.as_bytes(),
        key.serialize_pem().as_bytes(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_with_controller_issued_certificates_talk_mtls() {
    let ca = LocalCa::generate(Duration::from_secs(86_400)).unwrap();
    let tokens = LocalTokens::from_key(b"shared with the runtime");
    let bundle = ca.trust_bundle();
    let app = HttpApp::start("store").await;
    let server = TestProxy::start(ProxyOptions {
        credentials: Some(certified(&ca, &tokens, "shop", "store").await),
        config_yaml: Some(
            json!({"trustBundle": {"pem": bundle},
                   "inbound": [{"port": app.addr.port(), "authorizations": [
                       {"name": "shop/buyer", "sources": [spiffe("shop", "buyer")], "all": {}}]}]})
            .to_string(),
        ),
        inbound_targets: vec![app.addr],
        outbound_targets: vec![],
        ..Default::default()
    })
    .await;
    let client = TestProxy::start(ProxyOptions {
        credentials: Some(certified(&ca, &tokens, "shop", "buyer").await),
        config_yaml: Some(
            json!({"trustBundle": {"pem": bundle},
                   "endpoints": [{"key": "shop/store:80", "endpoints": [
                       {"address": server.inbound().to_string(), "identity": spiffe("shop", "store")}]}],
                   "outbound": [{"key": "shop/store:80", "port": 80, "hostnames": ["store"], "endpoints": "shop/store:80"}]})
            .to_string(),
        ),
        ..Default::default()
    })
    .await;
    let answer = http1_get(client.outbound(), "store", "/ok").await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "store GET /ok ");
    let certs = http1_get(client.addrs.admin, "localhost", "/certs")
        .await
        .unwrap();
    assert!(
        certs
            .body
            .contains("spiffe://cluster.local/ns/shop/sa/buyer"),
        "{}",
        certs.body
    );
    assert!(
        certs.body.contains("osm-ca.openservicemesh.io"),
        "{}",
        certs.body
    );
}
