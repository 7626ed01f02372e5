//! A throwaway mesh CA issuing certificates as osm-controller will.

use osm_proxy::identity::Credentials;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, string::Ia5String,
};

pub const TRUST_DOMAIN: &str = "cluster.local";

pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Default for Pki {
    fn default() -> Self {
        Self::new("osm-test-ca")
    }
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Self {
            ca: CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// PEM of the root, as the config's trust bundle.
    pub fn bundle_pem(&self) -> String {
        self.ca.pem()
    }

    /// A mesh certificate for a ServiceAccount.
    pub fn issue(&self, namespace: &str, service_account: &str) -> Credentials {
        let uri = format!("spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}");
        let dns = format!("{service_account}.{namespace}.{TRUST_DOMAIN}");
        self.issue_with(Some(&uri), &dns)
    }

    /// A certificate with an arbitrary URI SAN (or none) and DNS SAN.
    pub fn issue_with(&self, uri: Option<&str>, dns: &str) -> Credentials {
        let (cert, key) = self.issue_pem(uri, dns);
        Credentials::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()
    }

    /// [`Pki::issue_with`] as PEM: (certificate, key). The common name is
    /// `dns`.
    pub fn issue_pem(&self, uri: Option<&str>, dns: &str) -> (String, String) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec![dns.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, dns);
        if let Some(uri) = uri {
            params
                .subject_alt_names
                .push(SanType::URI(Ia5String::try_from(uri.to_string()).unwrap()));
        }
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

impl Pki {
    /// Signs a CSR as an external PKI does: the names given (not those of
    /// the CSR), valid for `validity`; PEM.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        uri: &str,
        dns: &str,
        validity: std::time::Duration,
    ) -> Result<String, String> {
        let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| format!("the CSR: {e}"))?;
        let mut params =
            CertificateParams::new(vec![dns.to_string()]).map_err(|e| e.to_string())?;
        params.distinguished_name.push(DnType::CommonName, dns);
        params.subject_alt_names.push(SanType::URI(
            Ia5String::try_from(uri.to_string()).map_err(|e| e.to_string())?,
        ));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::seconds(60);
        params.not_after = now + validity;
        params
            .signed_by(&csr.public_key, &self.ca)
            .map(|c| c.pem())
            .map_err(|e| e.to_string())
    }
}

/// A CSR for a fresh key that names nothing (the issuer sets the
/// identity), PEM.
pub fn csr_pem() -> String {
    let key = rcgen::KeyPair::generate().expect("a key");
    rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|p| p.serialize_request(&key))
        .and_then(|csr| csr.pem())
        .expect("a CSR")
}

/// The SPIFFE ID of a ServiceAccount.
pub fn spiffe(namespace: &str, service_account: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}")
}
