//! Which root a certificate chain ends in: what a proxy checks to renew
//! early during a root rotation, and what the controller counts to know
//! when the old root may leave the trust bundles.

use std::sync::Arc;

use rustls::{
    RootCertStore,
    pki_types::{CertificateDer, UnixTime},
    server::WebPkiClientVerifier,
};

/// Whether `chain` (leaf first, then intermediates) verifies up to `root`
/// now, as a client certificate.
pub fn chains_to(chain: &[CertificateDer<'static>], root: &CertificateDer<'static>) -> bool {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return false;
    };
    let mut roots = RootCertStore::empty();
    if roots.add(root.clone()).is_err() {
        return false;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok(verifier) =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()
    else {
        return false;
    };
    verifier
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .is_ok()
}

/// The first of `roots` that `chain` verifies up to.
pub fn root_of<'a>(
    chain: &[CertificateDer<'static>],
    roots: &'a [CertificateDer<'static>],
) -> Option<&'a CertificateDer<'static>> {
    roots.iter().find(|root| chains_to(chain, root))
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, PKCS_ECDSA_P256_SHA256,
    };

    use super::*;

    fn ca(
        name: &str,
        parent: Option<&Issuer<'static, KeyPair>>,
    ) -> (CertificateDer<'static>, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = match parent {
            Some(p) => params.signed_by(&key, p).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        (cert.der().clone(), Issuer::new(params, key))
    }

    fn leaf(issuer: &Issuer<'static, KeyPair>) -> CertificateDer<'static> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec!["buyer.shop.cluster.local".into()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.signed_by(&key, issuer).unwrap().der().clone()
    }

    #[test]
    fn a_chain_is_matched_to_the_root_it_ends_in() {
        // Both roots carry the same subject, as two generations of the
        // mesh root do: only the signatures tell them apart.
        let (old, old_issuer) = ca("osm-ca", None);
        let (new, new_issuer) = ca("osm-ca", None);
        let (intermediate, intermediate_issuer) = ca("intermediate", Some(&new_issuer));
        let from_old = vec![leaf(&old_issuer)];
        let through_intermediate = vec![leaf(&intermediate_issuer), intermediate.clone()];
        let both = [old.clone(), new.clone()];
        let cases: [(
            &str,
            &[CertificateDer<'static>],
            Option<&CertificateDer<'static>>,
        ); 4] = [
            ("from the old root", &from_old, Some(&old)),
            ("through an intermediate", &through_intermediate, Some(&new)),
            (
                "the intermediate left out",
                &through_intermediate[..1],
                None,
            ),
            ("no certificate", &[], None),
        ];
        for (what, chain, want) in cases {
            assert_eq!(root_of(chain, &both), want, "{what}");
        }
        assert_eq!(root_of(&from_old, std::slice::from_ref(&new)), None);
        assert!(chains_to(&from_old, &old));
        assert!(!chains_to(&from_old, &new));
    }
}
