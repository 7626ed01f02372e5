//! TLS between proxies follows MeshConfig's sidecar TLS settings.

use osm_tests::{
    client::http1_get,
    mesh::{Fixture, client_config, store_policy},
};

const HOST: &str = "bookstore.bookstore:14001";

async fn status(f: &Fixture) -> u16 {
    http1_get(f.buyer.outbound(), HOST, "/books")
        .await
        .unwrap()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_1_3_minimum_refuses_a_tls_1_2_client_between_proxies() {
    let f = Fixture::start().await;
    assert_eq!(status(&f).await, 200);
    // The store accepts TLS 1.3 only; the buyer offers TLS 1.2 only.
    let mut store = store_policy(&f.pki, f.v1.addr.port(), false);
    store["mesh"]["tlsMinVersion"] = "TLSv1_3".into();
    f.store_v1.apply(&store.to_string());
    let mut buyer = client_config(&f, None, None);
    buyer["mesh"]["tlsMaxVersion"] = "TLSv1_2".into();
    f.buyer.apply(&buyer.to_string());
    let refused = http1_get(f.buyer.outbound(), HOST, "/books").await.unwrap();
    assert_eq!(refused.status, 502, "{refused:?}");
    assert!(
        refused.headers["osm-proxy-error"]
            .to_str()
            .unwrap()
            .contains("TLS handshake"),
        "{refused:?}"
    );
    assert_eq!(f.v1.requests(), 1, "nothing reached the application");

    // TLS 1.3 on both sides: served again.
    buyer["mesh"]["tlsMaxVersion"] = "TLSv1_3".into();
    f.buyer.apply(&buyer.to_string());
    assert_eq!(status(&f).await, 200);

    // Cipher suites: a TLS 1.2-only pair with no suite in common fails.
    let mut store = store_policy(&f.pki, f.v1.addr.port(), false);
    store["mesh"]["tlsMaxVersion"] = "TLSv1_2".into();
    store["mesh"]["cipherSuites"] = serde_json::json!(["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]);
    f.store_v1.apply(&store.to_string());
    buyer["mesh"]["tlsMaxVersion"] = "TLSv1_2".into();
    buyer["mesh"]["cipherSuites"] = serde_json::json!(["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]);
    f.buyer.apply(&buyer.to_string());
    assert_eq!(status(&f).await, 502);
    buyer["mesh"]["cipherSuites"] = serde_json::json!(["ECDHE-ECDSA-AES128-GCM-SHA256"]);
    let refused = f
        .buyer
        .shared
        .apply_config(osm_proxy::config::parse_config("t.yaml", &buyer.to_string()).unwrap())
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "mesh: cipherSuites: \"ECDHE-ECDSA-AES128-GCM-SHA256\" is not supported",
        "the proxy takes rustls names; the compiler translates MeshConfig's"
    );
    buyer["mesh"]["cipherSuites"] = serde_json::json!(["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]);
    f.buyer.apply(&buyer.to_string());
    assert_eq!(status(&f).await, 200);
}
