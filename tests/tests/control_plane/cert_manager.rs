//! cert-manager as the issuer of proxies' certificates: the in-memory API
//! server stands for the cluster, and a task acting as cert-manager signs
//! each CertificateRequest with its own CA as cert-manager's CA issuer
//! does (the names the CSR asks for). Proxies certify and renew through
//! it; while it signs nothing, traffic flows and `/debug/ca` says why.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use base64::Engine as _;
use osm_controller::kubernetes::{
    cert_manager::{CertManagerIssuer, CertManagerSettings},
    fake::FakeApi,
};
use osm_tests::pki::Pki;
use serde_json::json;

use super::{issuer_outage::issuer_report, *};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The names a CSR asks for: (URI, DNS).
fn requested_names(csr_pem: &str) -> (String, String) {
    let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem).unwrap();
    let (mut uri, mut dns) = (String::new(), String::new());
    for san in &csr.params.subject_alt_names {
        match san {
            rcgen::SanType::URI(u) => uri = u.as_str().to_string(),
            rcgen::SanType::DnsName(d) => dns = d.as_str().to_string(),
            _ => {}
        }
    }
    (uri, dns)
}

/// Signs every CertificateRequest without a status, unless `paused`.
async fn act_as_cert_manager(fake: FakeApi, ca: Arc<Pki>, paused: Arc<AtomicBool>) {
    loop {
        if !paused.load(Ordering::Acquire) {
            for mut request in fake.objects("cert-manager.io", "certificaterequests") {
                if !request["status"].is_null() {
                    continue;
                }
                let csr = String::from_utf8(
                    B64.decode(request["spec"]["request"].as_str().unwrap())
                        .unwrap(),
                )
                .unwrap();
                let (uri, dns) = requested_names(&csr);
                let seconds: u64 = request["spec"]["duration"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches('s')
                    .parse()
                    .unwrap();
                let certificate = ca
                    .sign_csr(&csr, &uri, &dns, Duration::from_secs(seconds))
                    .unwrap();
                request["status"] = json!({
                    "conditions": [
                        {"type": "Approved", "status": "True", "reason": "cert-manager.io"},
                        {"type": "Ready", "status": "True", "reason": "Issued"},
                    ],
                    "certificate": B64.encode(certificate),
                    "ca": B64.encode(ca.bundle_pem()),
                });
                fake.put(request);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_certify_and_renew_through_cert_manager_and_an_outage_is_reported() {
    let fake = FakeApi::new();
    let ca = Arc::new(Pki::new("cert-manager-test-root"));
    let paused = Arc::new(AtomicBool::new(false));
    let signer = tokio::spawn(act_as_cert_manager(
        fake.clone(),
        ca.clone(),
        paused.clone(),
    ));
    let mut cp = ControlPlane::new();
    cp.issuer = Some(Arc::new(CertManagerIssuer::new(
        fake.client(),
        CertManagerSettings {
            namespace: "osm-system".into(),
            issuer_name: "osm-ca".into(),
            issuer_kind: "Issuer".into(),
            issuer_group: "cert-manager.io".into(),
            timeout: Duration::from_secs(1),
        },
    )));
    // Renewal at two thirds of 12 s (within the tests' patience).
    let mesh = Mesh::start_on(cp, &[("mesh-config.yaml", mesh_config(false, "12s"))], None).await;
    let controller = mesh.controller.as_ref().unwrap();
    let root =
        osm_proxy::identity::parse_certificates(ca.bundle_pem().as_bytes()).unwrap()[0].clone();
    let serials = || {
        [&mesh.store, &mesh.buyer, &mesh.thief].map(|p| {
            let chain = p.shared.credentials().unwrap().chain.clone();
            assert!(
                osm_api::pki::chains_to(&chain, &root),
                "signed by cert-manager's CA"
            );
            chain[0].to_vec()
        })
    };
    let first = serials();
    eventually(
        "the proxies' bundle holds cert-manager's CA first",
        || async { (mesh.buyer.shared.config().trust_bundle.first() == Some(&root)).then_some(()) },
    )
    .await;
    mesh.wait_status(
        &mesh.buyer,
        200,
        "bookbuyer buys with cert-manager's certificates",
    )
    .await;
    assert_eq!(
        Mesh::status(&mesh.thief).await,
        403,
        "policy, not TLS, refuses"
    );
    assert_eq!(issuer_report(controller).await["kind"], "cert-manager");
    assert!(
        fake.objects("cert-manager.io", "certificaterequests")
            .is_empty(),
        "requests are deleted once read"
    );

    // cert-manager stops signing before the proxies renew.
    paused.store(true, Ordering::Release);
    issuer_outage::ride_out(
        &mesh,
        "was not signed within",
        || paused.store(false, Ordering::Release),
        || async {
            let now = serials();
            now.iter().zip(&first).all(|(a, b)| a != b).then_some(())
        },
    )
    .await;
    signer.abort();
}
