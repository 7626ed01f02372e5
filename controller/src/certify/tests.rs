use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, SanType, string::Ia5String};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::*;
use crate::{
    ca::LocalCa,
    token::{AUDIENCE, LocalTokens, PodIdentity},
};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn csr(uris: &[&str], dns: &[&str]) -> String {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params =
        CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
    for uri in uris {
        params
            .subject_alt_names
            .push(SanType::URI(Ia5String::try_from(uri.to_string()).unwrap()));
    }
    params.serialize_request(&key).unwrap().pem().unwrap()
}

/// Every pod is meshed (the membership checks have their own test).
struct Meshed;

impl Membership for Meshed {
    fn check(&self, _: &str, _: &str) -> Result<(), NotMeshed> {
        Ok(())
    }
}

/// No pod is: the reason given.
struct Refusing(NotMeshed);

impl Membership for Refusing {
    fn check(&self, _: &str, _: &str) -> Result<(), NotMeshed> {
        Err(self.0.clone())
    }
}

fn bookstore() -> PodIdentity {
    PodIdentity {
        namespace: "bookstore".into(),
        pod: "bookstore-v1-abc".into(),
        service_account: "bookstore".into(),
    }
}

fn request(tokens: &LocalTokens, csr_pem: String) -> v1::CertifyRequest {
    v1::CertifyRequest {
        csr_pem,
        token: tokens.mint(&bookstore(), AUDIENCE, Duration::from_secs(600)),
        pod_name: "bookstore-v1-abc".into(),
        pod_namespace: "bookstore".into(),
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn a_valid_request_gets_a_certificate_for_the_proven_identity_only() {
    let ca = LocalCa::generate(Duration::from_secs(10 * 365 * 24 * 3600)).unwrap();
    let tokens = LocalTokens::from_key(b"key");
    // The CSR may leave the names to the CA, or ask for exactly its own.
    for asked in [
        csr(&[], &[]),
        csr(
            &["spiffe://cluster.local/ns/bookstore/sa/bookstore"],
            &["bookstore.bookstore.cluster.local"],
        ),
    ] {
        let response = certify(
            &tokens,
            &Meshed,
            &ca,
            "cluster.local",
            DAY,
            &request(&tokens, asked),
        )
        .await
        .unwrap();
        let leaf_der = der_of(&response.cert_chain_pem);
        let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
        let names: Vec<String> = leaf
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::URI(u) => format!("URI:{u}"),
                GeneralName::DNSName(d) => format!("DNS:{d}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                "DNS:bookstore.bookstore.cluster.local",
                "URI:spiffe://cluster.local/ns/bookstore/sa/bookstore"
            ]
        );
        assert!(!leaf.is_ca());
        // Bound to the pod the token proved (whatever the CSR's subject).
        assert_eq!(
            osm_api::identity::pod_binding_from_der(&leaf_der).unwrap(),
            Some(PodBinding::new("bookstore", "bookstore-v1-abc"))
        );
        // Signed by the root in the trust bundle.
        let bundle = response.trust_bundle.unwrap().pem;
        let root_der = der_of(&bundle);
        let (_, root) = X509Certificate::from_der(&root_der).unwrap();
        leaf.verify_signature(Some(root.public_key())).unwrap();
        assert_eq!(
            root.subject().to_string(),
            "CN=osm-ca.openservicemesh.io, O=Open Service Mesh"
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            (response.not_after - now - DAY.as_secs() as i64).abs() < 5,
            "24h validity"
        );
        assert_eq!(leaf.validity().not_after.timestamp(), response.not_after);
    }
}

#[tokio::test]
async fn a_csr_for_another_service_account_is_refused() {
    let ca = LocalCa::generate(DAY).unwrap();
    let tokens = LocalTokens::from_key(b"key");
    let cases = [
        (
            csr(&["spiffe://cluster.local/ns/bookstore/sa/admin"], &[]),
            "the CSR asks for spiffe://cluster.local/ns/bookstore/sa/admin, but the caller proved spiffe://cluster.local/ns/bookstore/sa/bookstore",
        ),
        (
            csr(&[], &["admin.bookstore.cluster.local"]),
            "the CSR asks for admin.bookstore.cluster.local, but the caller proved bookstore.bookstore.cluster.local",
        ),
    ];
    for (asked, want) in cases {
        let err = certify(
            &tokens,
            &Meshed,
            &ca,
            "cluster.local",
            DAY,
            &request(&tokens, asked),
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), want);
    }
}

#[tokio::test]
async fn bad_tokens_and_mismatched_pods_are_refused() {
    let ca = LocalCa::generate(DAY).unwrap();
    let tokens = LocalTokens::from_key(b"key");
    let mut forged = request(&tokens, csr(&[], &[]));
    forged.token =
        LocalTokens::from_key(b"other").mint(&bookstore(), AUDIENCE, Duration::from_secs(60));
    assert_eq!(
        certify(&tokens, &Meshed, &ca, "cluster.local", DAY, &forged).await,
        Err(CertifyError::Token(TokenError::BadSignature))
    );

    let mut expired = request(&tokens, csr(&[], &[]));
    expired.token = tokens.mint(&bookstore(), AUDIENCE, Duration::ZERO);
    assert!(matches!(
        certify(&tokens, &Meshed, &ca, "cluster.local", DAY, &expired).await,
        Err(CertifyError::Token(TokenError::Expired(_)))
    ));

    let mut other_pod = request(&tokens, csr(&[], &[]));
    other_pod.pod_name = "bookstore-v2-def".into();
    assert_eq!(
        certify(&tokens, &Meshed, &ca, "cluster.local", DAY, &other_pod)
            .await
            .unwrap_err()
            .to_string(),
        "the request names pod bookstore/bookstore-v2-def, but the token was issued to pod bookstore/bookstore-v1-abc"
    );

    let mut garbage = request(
        &tokens,
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".into(),
    );
    garbage.pod_name.clear();
    assert!(matches!(
        certify(&tokens, &Meshed, &ca, "cluster.local", DAY, &garbage).await,
        Err(CertifyError::Ca(CaError::BadCsr(_)))
    ));
}

#[tokio::test]
async fn the_local_ca_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = crate::ca::store::DirStore::new(dir.path())
        .load_ca(DAY)
        .unwrap();
    let second = crate::ca::store::DirStore::new(dir.path())
        .load_ca(DAY)
        .unwrap();
    assert_eq!(first.trust_bundle(), second.trust_bundle());
    let tokens = LocalTokens::from_key(b"key");
    let response = certify(
        &tokens,
        &Meshed,
        &second,
        "cluster.local",
        DAY,
        &request(&tokens, csr(&[], &[])),
    )
    .await
    .unwrap();
    let leaf_der = der_of(&response.cert_chain_pem);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
    let root_der = der_of(&first.trust_bundle());
    let (_, root) = X509Certificate::from_der(&root_der).unwrap();
    leaf.verify_signature(Some(root.public_key())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("private.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        !format!("{first:?}").contains("PRIVATE"),
        "the key never reaches Debug output"
    );
}

/// Regression (issue 14, item 8): a lifetime too long for a certificate
/// panicked the CA; it is an error now (and validation keeps MeshConfig
/// within a year).
#[tokio::test]
async fn a_lifetime_that_does_not_fit_is_an_error_not_a_panic() {
    use crate::ca::Issuer as _;
    let ca = LocalCa::generate(DAY).unwrap();
    let id = SpiffeId::new("cluster.local", "bookstore", "bookstore");
    let pod = PodBinding::new("bookstore", "bookstore-0");
    for absurd in [
        Duration::from_secs(u64::MAX / 2),
        Duration::from_secs(10_000 * 365 * 86_400),
    ] {
        let refused = ca
            .issue(&csr(&[], &[]), &id, &pod, absurd)
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("does not fit"), "{refused}");
    }
    assert!(ca.issue(&csr(&[], &[]), &id, &pod, DAY).await.is_ok());
}

/// Regression (issue 14, item 2): any pod presenting a token with the
/// audience was certified, injected or not, in the mesh or not.
#[tokio::test]
async fn only_meshed_pods_are_certified() {
    let ca = LocalCa::generate(DAY).unwrap();
    let tokens = LocalTokens::from_key(b"key");
    for (refusal, want) in [
        (
            NotMeshed::NoProxy("bookstore/bookstore-v1-abc".into()),
            "has no osm-proxy sidecar",
        ),
        (
            NotMeshed::NotMonitored {
                pod: "bookstore/bookstore-v1-abc".into(),
                namespace: "bookstore".into(),
            },
            "not in the mesh",
        ),
        (
            NotMeshed::UnknownPod("bookstore/bookstore-v1-abc".into()),
            "not known to the controller yet",
        ),
    ] {
        let err = certify(
            &tokens,
            &Refusing(refusal),
            &ca,
            "cluster.local",
            DAY,
            &request(&tokens, csr(&[], &[])),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
    }
}

/// Regression (issue 14, item 8): a token of any size went to TokenReview.
#[tokio::test]
async fn oversized_tokens_are_refused_before_review() {
    let ca = LocalCa::generate(DAY).unwrap();
    let tokens = LocalTokens::from_key(b"key");
    let mut huge = request(&tokens, csr(&[], &[]));
    huge.token = "x".repeat(crate::token::MAX_TOKEN_BYTES + 1);
    let err = certify(&tokens, &Meshed, &ca, "cluster.local", DAY, &huge)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CertifyError::Token(TokenError::TooLong(_))),
        "{err}"
    );
}
