//! The pod a mesh certificate was issued to.
//!
//! A certificate's SPIFFE ID names a ServiceAccount, which many pods
//! share. The controller's config stream serves one pod, so the
//! certificate also says which: the issuing CA writes the pod the token
//! proved into the subject, as the OrganizationalUnit `pod:<namespace>/<name>`
//! (the subject, not a SAN: an X509-SVID carries exactly one URI SAN, and
//! peers authorize by that alone). Signed by the CA, it cannot be claimed
//! by a sibling pod of the same ServiceAccount.

use std::fmt;

use super::PeerIdentityError;

const PREFIX: &str = "pod:";

/// A pod, as bound into a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodBinding {
    pub namespace: String,
    pub name: String,
}

impl PodBinding {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The subject OrganizationalUnit value: `pod:<namespace>/<name>`.
    pub fn subject_value(&self) -> String {
        format!("{PREFIX}{}/{}", self.namespace, self.name)
    }

    /// Reads an OrganizationalUnit value; None when it is not a binding.
    /// A namespace never holds `/`, so the first one splits.
    pub fn from_subject_value(value: &str) -> Option<Self> {
        let (namespace, name) = value.strip_prefix(PREFIX)?.split_once('/')?;
        (!namespace.is_empty() && !name.is_empty()).then(|| Self::new(namespace, name))
    }
}

impl fmt::Display for PodBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The pod a DER certificate is bound to: None for a certificate issued
/// without one (by a controller before bindings existed); an error when
/// it names more than one.
pub fn pod_binding_from_der(der: &[u8]) -> Result<Option<PodBinding>, PeerIdentityError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, parsed) = X509Certificate::from_der(der).map_err(|_| PeerIdentityError::Unparsable)?;
    let mut found = None;
    for unit in parsed.subject().iter_organizational_unit() {
        let Some(binding) = unit.as_str().ok().and_then(PodBinding::from_subject_value) else {
            continue;
        };
        if found.is_some() {
            return Err(PeerIdentityError::SeveralPods);
        }
        found = Some(binding);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_values_round_trip_and_others_are_not_bindings() {
        let pod = PodBinding::new("shop", "store-0.v1");
        assert_eq!(pod.subject_value(), "pod:shop/store-0.v1");
        assert_eq!(
            PodBinding::from_subject_value(&pod.subject_value()),
            Some(pod.clone())
        );
        assert_eq!(pod.to_string(), "shop/store-0.v1");
        for other in [
            "",
            "pod:",
            "pod:shop",
            "pod:/x",
            "pod:shop/",
            "Open Service Mesh",
            "shop/x",
        ] {
            assert_eq!(PodBinding::from_subject_value(other), None, "{other:?}");
        }
    }

    fn cert(unit: Option<&str>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        if let Some(unit) = unit {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationalUnitName, unit);
        }
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_binding_is_read_from_the_subject() {
        assert_eq!(
            pod_binding_from_der(&cert(Some("pod:shop/store-0"))).unwrap(),
            Some(PodBinding::new("shop", "store-0"))
        );
        assert_eq!(pod_binding_from_der(&cert(Some("mesh"))).unwrap(), None);
        assert_eq!(pod_binding_from_der(&cert(None)).unwrap(), None);
        assert_eq!(
            pod_binding_from_der(b"junk"),
            Err(PeerIdentityError::Unparsable)
        );
    }
}
