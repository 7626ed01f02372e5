//! The sidecar injector as the local API server calls it: an
//! AdmissionReview v1 for each new pod of a monitored namespace, over
//! HTTPS, the injector proving its name against the mesh root.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};

use super::http::{post_json_tls, tls_connector};

const PATH: &str = "/mutate-pod-creation";
const TIMEOUT: Duration = Duration::from_secs(10);

/// The mutating webhook client.
#[derive(Clone)]
pub struct Injector {
    addr: SocketAddr,
    server_name: String,
    tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for Injector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injector")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Why a pod was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("admission webhook \"osm-injector\" denied the request: {0}")]
    Denied(String),
    #[error(
        "the sidecar injector at {addr} did not answer ({cause:#}): is local mode running? (`osm local up`)"
    )]
    Unreachable {
        addr: SocketAddr,
        cause: anyhow::Error,
    },
    #[error("the sidecar injector's answer is not usable: {0}")]
    BadAnswer(String),
}

impl Injector {
    pub fn new(addr: SocketAddr, server_name: &str, roots_pem: &[u8]) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            server_name: server_name.into(),
            tls: tls_connector(roots_pem).context("the injector's CA")?,
        })
    }

    /// The pod as the injector leaves it (unchanged when it stays out of
    /// the mesh).
    pub async fn admit(&self, pod: &Value, namespace: &str) -> Result<Value, AdmissionError> {
        let uid = format!("{:032x}", fastrand::u128(..));
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": namespace,
                "operation": "CREATE",
                "userInfo": {"username": "system:osm-local"},
                "object": pod,
                "dryRun": false,
            },
        });
        let answer = post_json_tls(
            &self.tls,
            self.addr,
            &self.server_name,
            PATH,
            review.to_string().into_bytes(),
            TIMEOUT,
        )
        .await
        .map_err(|cause| AdmissionError::Unreachable {
            addr: self.addr,
            cause,
        })?;
        if answer.status != 200 {
            return Err(AdmissionError::BadAnswer(format!(
                "HTTP {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            )));
        }
        let review: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| AdmissionError::BadAnswer(e.to_string()))?;
        apply_response(pod, &review)
    }
}

/// The pod after an AdmissionReview response (pure).
pub fn apply_response(pod: &Value, review: &Value) -> Result<Value, AdmissionError> {
    let response = review
        .get("response")
        .ok_or_else(|| AdmissionError::BadAnswer("no response".into()))?;
    if response.get("allowed").and_then(Value::as_bool) != Some(true) {
        let message = response
            .pointer("/status/message")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        return Err(AdmissionError::Denied(message.into()));
    }
    let Some(patch) = response.get("patch").and_then(Value::as_str) else {
        return Ok(pod.clone());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .map_err(|e| AdmissionError::BadAnswer(format!("patch is not base64: {e}")))?;
    let patch: json_patch::Patch = serde_json::from_slice(&bytes)
        .map_err(|e| AdmissionError::BadAnswer(format!("patch is not a JSON patch: {e}")))?;
    let mut out = pod.clone();
    json_patch::patch(&mut out, &patch)
        .map_err(|e| AdmissionError::BadAnswer(format!("patch does not apply: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_is_applied_and_a_denial_explained() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
        let patch = base64::engine::general_purpose::STANDARD.encode(
            r#"[{"op":"add","path":"/spec/initContainers","value":[{"name":"osm-init"}]}]"#,
        );
        let review = json!({"response": {"allowed": true, "patch": patch}});
        let out = apply_response(&pod, &review).unwrap();
        assert_eq!(
            out.pointer("/spec/initContainers/0/name"),
            Some(&json!("osm-init"))
        );

        let unchanged = apply_response(&pod, &json!({"response": {"allowed": true}})).unwrap();
        assert_eq!(unchanged, pod);

        let denied =
            json!({"response": {"allowed": false, "status": {"message": "bad annotation"}}});
        let err = apply_response(&pod, &denied).unwrap_err();
        assert_eq!(
            err.to_string(),
            "admission webhook \"osm-injector\" denied the request: bad annotation"
        );
    }
}
