//! Vault as the issuer of proxies' certificates: a test server on
//! 127.0.0.1 speaking Vault's PKI and Kubernetes-auth API signs, the
//! proxies certify and renew through it, and while it is down traffic
//! flows on the certificates held and `/debug/ca` says why renewals fail.

use std::sync::Arc;

use osm_controller::ca::vault::{VaultAuth, VaultIssuer, VaultSettings};
use osm_tests::vault::{FakeVault, ROLE, SERVICE_ACCOUNT_JWT};

use super::{issuer_outage::issuer_report, *};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_certify_and_renew_through_vault_and_an_outage_is_reported() {
    let vault = FakeVault::start().await;
    let jwt = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(jwt.path(), SERVICE_ACCOUNT_JWT).unwrap();
    let issuer = VaultIssuer::connect(VaultSettings {
        addr: vault.url(),
        mount: "pki".into(),
        role: ROLE.into(),
        auth: VaultAuth::Kubernetes {
            mount: "kubernetes".into(),
            role: ROLE.into(),
            jwt_path: jwt.path().to_path_buf(),
        },
        tls_ca_pem: None,
    })
    .await
    .unwrap();
    let mut cp = ControlPlane::new();
    cp.issuer = Some(Arc::new(issuer));
    // Renewal at two thirds of 12 s (within the tests' patience).
    let mesh = Mesh::start_on(cp, &[("mesh-config.yaml", mesh_config(false, "12s"))], None).await;
    let controller = mesh.controller.as_ref().unwrap();
    let vault_root =
        osm_proxy::identity::parse_certificates(vault.root_pem().as_bytes()).unwrap()[0].clone();
    for proxy in [&mesh.store, &mesh.buyer, &mesh.thief] {
        let chain = proxy.shared.credentials().unwrap().chain.clone();
        assert!(
            osm_api::pki::chains_to(&chain, &vault_root),
            "signed by Vault"
        );
        let bundle = proxy.shared.config().trust_bundle.clone();
        assert_eq!(
            bundle[0], vault_root,
            "Vault's root first, then the controller's"
        );
        assert_eq!(bundle.len(), 2);
    }
    assert_eq!(vault.signed(), 3);
    assert_eq!(vault.logins(), 1, "one login, its token reused");
    mesh.wait_status(&mesh.buyer, 200, "bookbuyer buys with Vault's certificates")
        .await;
    assert_eq!(
        Mesh::status(&mesh.thief).await,
        403,
        "policy, not TLS, refuses"
    );
    let healthy = issuer_report(controller).await;
    assert_eq!(healthy["kind"], "vault");
    assert_eq!(healthy["lastError"], "");

    // Vault goes down before the proxies renew: they keep their
    // certificates and retry; traffic flows; the controller says why.
    vault.set_down(true);
    issuer_outage::ride_out(
        &mesh,
        "Vault is sealed",
        || vault.set_down(false),
        || async { (vault.signed() >= 6).then_some(()) },
    )
    .await;
    for proxy in [&mesh.store, &mesh.buyer, &mesh.thief] {
        let chain = proxy.shared.credentials().unwrap().chain.clone();
        assert!(osm_api::pki::chains_to(&chain, &vault_root));
    }
}

/// Token auth (OSM's `vault.token`): the token signs; a wrong one is the
/// issuer's failure, with Vault's reason.
#[tokio::test]
async fn a_vault_token_signs_and_a_wrong_one_is_refused_with_vaults_reason() {
    use osm_api::identity::{PodBinding, SpiffeId};
    use osm_controller::ca::{CaError, Issuer as _};
    let vault = FakeVault::start().await;
    let issuer = |token: &str| {
        VaultIssuer::connect(VaultSettings {
            addr: vault.url(),
            mount: "pki".into(),
            role: ROLE.into(),
            auth: VaultAuth::Token(token.into()),
            tls_ca_pem: None,
        })
    };
    let csr = osm_tests::pki::csr_pem();
    let id = SpiffeId::new("cluster.local", "shop", "buyer");
    let pod = PodBinding::new("shop", "buyer-0");
    let hour = std::time::Duration::from_secs(3600);

    let good = issuer(osm_tests::vault::STATIC_TOKEN).await.unwrap();
    assert_eq!(
        good.trust_bundle(),
        vault.root_pem(),
        "read from ca_chain at start"
    );
    let issued = good.issue(&csr, &id, &pod, hour).await.unwrap();
    let chain = osm_proxy::identity::parse_certificates(issued.chain_pem.as_bytes()).unwrap();
    let root =
        osm_proxy::identity::parse_certificates(vault.root_pem().as_bytes()).unwrap()[0].clone();
    assert!(osm_api::pki::chains_to(&chain, &root));
    assert_eq!(vault.logins(), 0, "a token needs no login");

    let wrong = issuer("s.wrong").await.unwrap();
    match wrong.issue(&csr, &id, &pod, hour).await {
        Err(CaError::Unavailable(why)) => assert!(why.contains("403: permission denied"), "{why}"),
        other => panic!("{other:?}"),
    }
}
