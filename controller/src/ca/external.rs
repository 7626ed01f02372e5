//! What an external issuer (Vault, cert-manager) answered, checked before
//! a proxy gets it: the leaf must name exactly the identity that was
//! proven (a role or issuer configured to drop the URI SAN must fail
//! loudly, not hand out certificates no peer can authorize), and it must
//! chain to the CA the issuer returned, whose top becomes a root of the
//! bundle proxies trust.

use rustls::pki_types::{CertificateDer, pem::PemObject};

use super::{CaError, Issued, chain};
use osm_api::identity::{SpiffeId, spiffe_id_from_der};

/// A signed certificate as an issuer returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// PEM; the leaf first (an issuer may append its chain).
    pub certificate: String,
    /// The CA certificates (PEM each, or several in one), the issuing one
    /// first, up to a root when the issuer knows it.
    pub ca: Vec<String>,
}

/// The CA an external issuer's certificates chain to (PEM), as last
/// learned: what its `Issuer::trust_bundle` answers.
#[derive(Debug, Default)]
pub struct Anchor(std::sync::RwLock<String>);

impl Anchor {
    pub fn get(&self) -> String {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, pem: String) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = pem;
    }
}

/// A leaf accepted: what the proxy gets, and the trust anchor it chains
/// to (PEM).
#[derive(Debug, Clone)]
pub struct Accepted {
    pub issued: Issued,
    pub anchor_pem: String,
}

fn der(pem: &str) -> Result<CertificateDer<'static>, CaError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| CaError::Signing(format!("the issuer's certificate: {e}")))
}

fn self_signed(pem: &str) -> bool {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .ok()
        .and_then(|(_, block)| {
            let cert = block.parse_x509().ok()?;
            Some(cert.subject() == cert.issuer())
        })
        .unwrap_or(false)
}

/// Checks `signed` for `identity`.
pub fn accept(signed: &Signed, identity: &SpiffeId) -> Result<Accepted, CaError> {
    let mut blocks = chain::pem_blocks(&signed.certificate);
    if blocks.is_empty() {
        return Err(CaError::Signing(
            "the issuer returned no certificate".into(),
        ));
    }
    let leaf_pem = blocks.remove(0);
    // The CA certificates, each once, in order: those appended to the
    // leaf, then those returned beside it.
    let mut cas: Vec<String> = Vec::new();
    for block in blocks
        .into_iter()
        .chain(signed.ca.iter().flat_map(|c| chain::pem_blocks(c)))
    {
        if !cas.contains(&block) {
            cas.push(block);
        }
    }
    let anchor_pem = cas
        .iter()
        .find(|c| self_signed(c))
        .or(cas.last())
        .cloned()
        .ok_or_else(|| CaError::Signing("the issuer returned no CA certificate".into()))?;
    let intermediates: Vec<String> = cas.into_iter().filter(|c| *c != anchor_pem).collect();

    let leaf = der(&leaf_pem)?;
    let named = spiffe_id_from_der(&leaf).map_err(|e| {
        CaError::Signing(format!(
            "the issuer's certificate names no mesh identity ({e:?}): its role or issuer must \
             keep the URI SAN {identity} of the request"
        ))
    })?;
    if named != *identity {
        return Err(CaError::Signing(format!(
            "the issuer's certificate names {named}, not {identity}"
        )));
    }
    let mut chain_der = vec![leaf.clone()];
    for pem in &intermediates {
        chain_der.push(der(pem)?);
    }
    if !osm_api::pki::chains_to(&chain_der, &der(&anchor_pem)?) {
        return Err(CaError::Signing(
            "the issuer's certificate does not chain to the CA it returned (or is not valid now)"
                .into(),
        ));
    }
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf)
        .map_err(|e| CaError::Signing(format!("the issuer's certificate: {e}")))?;
    Ok(Accepted {
        issued: Issued {
            chain_pem: std::iter::once(leaf_pem).chain(intermediates).collect(),
            not_after: parsed.validity().not_after.timestamp(),
            serial: parsed.raw_serial_as_string().replace(':', ""),
        },
        anchor_pem,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ca::{Issuer as _, LocalCa};
    use osm_api::identity::PodBinding;

    fn csr() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap()
    }

    #[tokio::test]
    async fn a_leaf_is_accepted_only_for_the_proven_identity_and_its_ca() {
        let hour = Duration::from_secs(3600);
        let ca = LocalCa::generate(hour).unwrap();
        let other = LocalCa::generate(hour).unwrap();
        let buyer = SpiffeId::new("cluster.local", "shop", "buyer");
        let pod = PodBinding::new("shop", "buyer-0");
        let issued = ca.issue(&csr(), &buyer, &pod, hour).await.unwrap();
        let root = ca.trust_bundle();

        let ok = accept(
            &Signed {
                certificate: issued.chain_pem.clone(),
                ca: vec![root.clone()],
            },
            &buyer,
        )
        .unwrap();
        assert_eq!(ok.anchor_pem, root);
        assert_eq!(
            ok.issued.chain_pem, issued.chain_pem,
            "no root in the chain"
        );
        assert_eq!(ok.issued.not_after, issued.not_after);
        assert_eq!(ok.issued.serial, issued.serial);

        let cases = [
            (
                "another identity",
                issued.chain_pem.clone(),
                root.clone(),
                SpiffeId::new("cluster.local", "shop", "thief"),
                "names spiffe://cluster.local/ns/shop/sa/buyer, not",
            ),
            (
                "another CA",
                issued.chain_pem.clone(),
                other.trust_bundle(),
                buyer.clone(),
                "does not chain",
            ),
            (
                "no certificate",
                String::new(),
                root.clone(),
                buyer.clone(),
                "no certificate",
            ),
            (
                "no identity",
                root.clone(),
                root.clone(),
                buyer.clone(),
                "names no mesh identity",
            ),
        ];
        for (what, certificate, ca_pem, identity, want) in cases {
            let err = accept(
                &Signed {
                    certificate,
                    ca: vec![ca_pem],
                },
                &identity,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(want), "{what}: {err}");
        }
    }
}
