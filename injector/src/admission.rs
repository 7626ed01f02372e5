//! AdmissionReview v1 in, AdmissionReview v1 out (pure). A pod that joins
//! the mesh is answered with a base64 JSON patch; one that stays out is
//! allowed unchanged; invalid annotations are denied with the reason.
//! Dry-run requests are answered the same way: mutating has no side
//! effects here (no Secret is created, unlike OSM).

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::core::admission::{AdmissionRequest, AdmissionResponse};
use osm_api::resources::mesh_config::MeshConfigSpec;
use osm_serve::admission;

use crate::mutate::{InjectorSettings, mutate};

/// The parts of a request the answer depends on.
#[derive(Debug)]
pub struct Request {
    pub review: AdmissionRequest<Pod>,
    pub namespace: String,
    pub pod: Pod,
}

/// Reads an AdmissionReview; Err says what is wrong with it.
pub fn parse(body: &[u8]) -> Result<Request, String> {
    let review = admission::parse_request::<Pod>(body, "Pod")?;
    let pod = review
        .object
        .clone()
        .ok_or("request.object is not a Pod: the request carries no object")?;
    let namespace = review
        .namespace
        .clone()
        .or_else(|| pod.metadata.namespace.clone())
        .ok_or("the request names no namespace")?;
    Ok(Request {
        review,
        namespace,
        pod,
    })
}

/// The answer for a request whose namespace and MeshConfig were looked up.
pub fn respond(
    request: &Request,
    namespace: &Namespace,
    mesh: &MeshConfigSpec,
    settings: &InjectorSettings,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(&request.review);
    let patch = match mutate(&request.pod, namespace, mesh, settings) {
        Ok(Some(patch)) => patch,
        Ok(None) => return response,
        Err(e) => return deny(response, &e.to_string()),
    };
    let patch = match serde_json::from_value::<json_patch::Patch>(serde_json::Value::Array(patch)) {
        Ok(patch) => patch,
        Err(e) => return deny(response, &format!("the patch is not a JSON patch: {e}")),
    };
    match response.clone().with_patch(patch) {
        Ok(patched) => patched,
        Err(e) => deny(response, &format!("writing the patch: {e}")),
    }
}

/// A refusal with its reason.
pub fn deny(response: AdmissionResponse, message: &str) -> AdmissionResponse {
    admission::deny(response, 400, "BadRequest", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    use base64::{Engine, engine::general_purpose::STANDARD as B64};
    use serde_json::{Value, json};

    /// The review of a pod as the API server sends it, and the answer as
    /// the API server reads it.
    fn as_sent(response: AdmissionResponse) -> Value {
        admission::review_json(response).unwrap()
    }

    fn body(annotations: Value) -> Vec<u8> {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u-7", "namespace": "shop", "operation": "CREATE", "dryRun": true,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {"metadata": {"generateName": "web-", "annotations": annotations},
                       "spec": {"containers": [{"name": "app", "image": "x"}]}},
        }})
        .to_string()
        .into_bytes()
    }

    fn settings() -> InjectorSettings {
        InjectorSettings {
            mesh_name: "osm".into(),
            osm_namespace: "osm-system".into(),
            proxy_image: "p".into(),
            init_image: "i".into(),
            controller: "c:15128".into(),
            trust_bundle_pem: String::new(),
            trust_domain: "cluster.local".into(),
        }
    }

    #[test]
    fn patched_allowed_or_denied() {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "shop", "labels": {"openservicemesh.io/monitored-by": "osm"}}})).unwrap();
        let mesh = MeshConfigSpec::default();
        let answer = as_sent(respond(
            &parse(&body(json!({}))).unwrap(),
            &ns,
            &mesh,
            &settings(),
        ));
        assert_eq!(answer["response"]["uid"], "u-7");
        assert_eq!(answer["response"]["allowed"], true);
        assert_eq!(answer["response"]["patchType"], "JSONPatch");
        let patch: Value = serde_json::from_slice(
            &B64.decode(answer["response"]["patch"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(patch[0]["path"], "/spec/initContainers");

        let skipped = as_sent(respond(
            &parse(&body(json!({"openservicemesh.io/sidecar-injection": "no"}))).unwrap(),
            &ns,
            &mesh,
            &settings(),
        ));
        assert_eq!(skipped["response"]["allowed"], true);
        assert!(skipped["response"].get("patch").is_none());

        let denied = as_sent(respond(
            &parse(&body(
                json!({"openservicemesh.io/sidecar-injection": "sometimes"}),
            ))
            .unwrap(),
            &ns,
            &mesh,
            &settings(),
        ));
        assert_eq!(denied["response"]["allowed"], false);
        assert!(
            denied["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("\"sometimes\"")
        );

        assert!(parse(b"{}").unwrap_err().contains("no request"));
        assert!(
            parse(br#"{"request": {"object": {"spec": 5}}}"#)
                .unwrap_err()
                .contains("not a Pod")
        );
    }
}
