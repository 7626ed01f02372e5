use std::time::Duration;

use osm_api::identity::{PodBinding, SpiffeId};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
    SerialNumber, string::Ia5String,
};

type Issuer<'a, S> = rcgen::Issuer<'a, S>;
use time::OffsetDateTime;

use super::{
    CaError, Issued,
    chain::{self, CaChain},
};

/// The root's subject, as OSM's Tresor CA named it.
pub const ROOT_COMMON_NAME: &str = "osm-ca.openservicemesh.io";
/// Clock skew tolerated between the controller and proxies.
const BACKDATE: Duration = Duration::from_secs(60);

/// The controller's own CA: a root it made, or a certificate of a user's
/// PKI (an intermediate whose chain ends in a root it does not hold the
/// key of).
pub struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    chain: CaChain,
    /// The CA certificate file as given (what is persisted).
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("LocalCa").finish_non_exhaustive()
    }
}

fn signing(e: rcgen::Error) -> CaError {
    CaError::Signing(e.to_string())
}

fn root_params(validity: Duration) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, ROOT_COMMON_NAME);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Open Service Mesh");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
    Ok(params)
}

impl LocalCa {
    /// A new self-signed root, valid for `validity` (10 years by default).
    pub fn generate(validity: Duration) -> Result<Self, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(signing)?;
        let key_pem = key.serialize_pem();
        let params = root_params(validity).map_err(signing)?;
        let root_pem = params.self_signed(&key).map_err(signing)?.pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            chain: CaChain {
                signing: root_pem.clone(),
                intermediates: String::new(),
                root: root_pem.clone(),
            },
            cert_pem: root_pem,
            key_pem,
        })
    }

    /// A CA from its PEM certificate and key (as kept in `osm-ca-bundle`:
    /// `ca.crt` and `private.key`). `ca.crt` is a root, or the signing
    /// certificate followed by each issuer up to the root ([`chain::read`]);
    /// the key must be the signing certificate's.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CaError> {
        let chain = chain::read(cert_pem)?;
        let key =
            KeyPair::from_pem(key_pem).map_err(|e| CaError::Load(format!("private key: {e}")))?;
        check_key_matches(&chain.signing, &key)?;
        let issuer = Issuer::from_ca_cert_pem(&chain.signing, key)
            .map_err(|e| CaError::Load(format!("certificate: {e}")))?;
        Ok(Self {
            issuer,
            chain,
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
        })
    }

    /// The root certificate (PEM), what trust bundles carry.
    pub fn root_pem(&self) -> &str {
        &self.chain.root
    }

    /// The CA certificate file and key as PEM, to persist.
    pub fn to_pem(&self) -> (String, String) {
        (self.cert_pem.clone(), self.key_pem.clone())
    }
}

/// A certificate and its freshly made key, both PEM.
#[derive(Clone)]
pub struct ServingCert {
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert").finish_non_exhaustive()
    }
}

impl LocalCa {
    /// The controller's own server certificate for `names` (DNS names or IP
    /// addresses), with a new key. Proxies check it against the mesh root
    /// before they send a token.
    pub fn serving_cert(
        &self,
        names: &[String],
        validity: Duration,
    ) -> Result<ServingCert, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(signing)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(signing)?;
        for name in names {
            let san = match name.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    Ia5String::try_from(name.as_str())
                        .map_err(|e| CaError::Signing(format!("{name:?}: {e}")))?,
                ),
            };
            params.subject_alt_names.push(san);
        }
        params.distinguished_name.push(
            DnType::CommonName,
            names
                .first()
                .map(String::as_str)
                .unwrap_or("osm-controller"),
        );
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_validity(&mut params, validity)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(signing)?;
        Ok(ServingCert {
            chain_pem: cert.pem() + &self.chain.intermediates,
            key_pem: key.serialize_pem(),
        })
    }
}

/// A key that is not the signing certificate's would sign leaves no one
/// can verify: refused at load.
fn check_key_matches(cert_pem: &str, key: &KeyPair) -> Result<(), CaError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| CaError::Load(format!("certificate: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| CaError::Load(format!("certificate: {e}")))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(CaError::Load(format!(
            "private.key is not the key of {} (the first certificate of ca.crt)",
            cert.subject()
        )));
    }
    Ok(())
}

/// Checks the names a CSR asks for against the proven identity: nothing, or
/// exactly its SPIFFE ID and DNS name.
fn check_requested_names(requested: &[SanType], identity: &SpiffeId) -> Result<(), CaError> {
    for san in requested {
        match san {
            SanType::URI(uri) if uri.as_str() == identity.as_str() => {}
            SanType::URI(uri) => {
                return Err(CaError::IdentityMismatch {
                    requested: uri.as_str().to_string(),
                    proven: identity.to_string(),
                });
            }
            SanType::DnsName(dns) if dns.as_str() == identity.dns_name() => {}
            SanType::DnsName(dns) => {
                return Err(CaError::IdentityMismatch {
                    requested: dns.as_str().to_string(),
                    proven: identity.dns_name(),
                });
            }
            other => return Err(CaError::UnexpectedName(format!("{other:?}"))),
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl super::Issuer for LocalCa {
    async fn issue(
        &self,
        csr_pem: &str,
        identity: &SpiffeId,
        pod: &PodBinding,
        validity: Duration,
    ) -> Result<Issued, CaError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::BadCsr(e.to_string()))?;
        check_requested_names(&csr.params.subject_alt_names, identity)?;

        let dns = identity.dns_name();
        let mut params = CertificateParams::new(vec![dns.clone()]).map_err(signing)?;
        params.subject_alt_names.push(SanType::URI(
            Ia5String::try_from(identity.to_string())
                .map_err(|e| CaError::Signing(e.to_string()))?,
        ));
        params.distinguished_name.push(DnType::CommonName, dns);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Open Service Mesh");
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, pod.subject_value());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let serial = leaf_validity(&mut params, validity)?;

        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(signing)?;
        Ok(Issued {
            chain_pem: cert.pem() + &self.chain.intermediates,
            not_after: params.not_after.unix_timestamp(),
            serial: serial.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    fn trust_bundle(&self) -> String {
        self.chain.root.clone()
    }
}

/// A leaf's serial (random, returned), authority key id and validity
/// (back-dated for clock skew).
fn leaf_validity(params: &mut CertificateParams, validity: Duration) -> Result<[u8; 16], CaError> {
    params.use_authority_key_identifier_extension = true;
    let serial: [u8; 16] = rand_bytes()?;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    // A lifetime too long for a certificate is an error, never a panic.
    params.not_after = now
        .checked_add(time::Duration::try_from(validity).map_err(|_| too_long(validity))?)
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| too_long(validity))?;
    Ok(serial)
}

fn too_long(validity: Duration) -> CaError {
    CaError::Signing(format!(
        "a lifetime of {validity:?} does not fit in a certificate"
    ))
}

fn rand_bytes<const N: usize>() -> Result<[u8; N], CaError> {
    let mut out = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out)
        .map_err(|_| CaError::Signing("no randomness available".into()))?;
    // A positive serial: the top bit clear.
    out[0] &= 0x7f;
    Ok(out)
}
