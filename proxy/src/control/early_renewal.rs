//! Renewing before time when the mesh's issuing root changed. The
//! controller lists the root that issues now first in the trust bundle (a
//! root rotation puts the new root first when it starts issuing); a proxy
//! whose certificate does not chain to that root asks for a new one at
//! once instead of at 80 % of its life, so the old root can be retired
//! without waiting out every certificate. One try per bundle: a
//! controller that still issues from another root is not asked again
//! until the bundle changes.

use osm_api::pki::chains_to;
use rustls::pki_types::CertificateDer;

/// Whether to renew now: the bundle names an issuing root (its first) the
/// certificate does not chain to, and this bundle was not acted on yet
/// (`acted_on` is the bundle of the last early renewal).
pub fn renew_now(
    chain: &[CertificateDer<'static>],
    bundle: &[CertificateDer<'static>],
    acted_on: Option<&[CertificateDer<'static>]>,
) -> bool {
    let Some(issuing) = bundle.first() else {
        return false;
    };
    acted_on != Some(bundle) && !chains_to(chain, issuing)
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
    fn a_certificate_from_a_root_that_no_longer_issues_is_renewed_once() {
        let (old, old_issuer) = ca("old root", None);
        let (new, new_issuer) = ca("new root", None);
        let (intermediate, intermediate_issuer) = ca("intermediate", Some(&new_issuer));
        let from_old = vec![leaf(&old_issuer)];
        let from_new = vec![leaf(&new_issuer)];
        let through_intermediate = vec![leaf(&intermediate_issuer), intermediate];

        let distributing = [old.clone(), new.clone()];
        let issuing_new = [new.clone(), old.clone()];
        type Certs<'a> = &'a [CertificateDer<'static>];
        // (what, the certificate's chain, the bundle, the bundle acted on, renew?)
        let cases: [(&str, Certs<'_>, Certs<'_>, Option<Certs<'_>>, bool); 6] = [
            (
                "the new root only joined",
                &from_old,
                &distributing,
                None,
                false,
            ),
            ("the new root issues", &from_old, &issuing_new, None, true),
            (
                "already renewed for this bundle",
                &from_old,
                &issuing_new,
                Some(&issuing_new),
                false,
            ),
            (
                "renewed, from the new root",
                &from_new,
                &issuing_new,
                None,
                false,
            ),
            (
                "through an intermediate",
                &through_intermediate,
                &issuing_new,
                None,
                false,
            ),
            ("no bundle", &from_old, &[], None, false),
        ];
        for (what, chain, bundle, acted_on, want) in cases {
            assert_eq!(renew_now(chain, bundle, acted_on), want, "{what}");
        }
    }
}
