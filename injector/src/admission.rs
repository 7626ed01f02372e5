//! AdmissionReview v1 in, AdmissionReview v1 out (pure). A pod that joins
//! the mesh is answered with a base64 JSON patch; one that stays out is
//! allowed unchanged; invalid annotations are denied with the reason.
//! Dry-run requests are answered the same way: mutating has no side
//! effects here (no Secret is created, unlike OSM).

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use osm_api::resources::mesh_config::MeshConfigSpec;
use serde_json::{Value, json};

use crate::mutate::{InjectorSettings, mutate};

/// The parts of a request the answer depends on.
#[derive(Debug)]
pub struct Request {
    pub uid: Value,
    pub namespace: String,
    pub pod: Pod,
}

/// Reads an AdmissionReview; Err says what is wrong with it.
pub fn parse(body: &[u8]) -> Result<Request, String> {
    let review: Value =
        serde_json::from_slice(body).map_err(|e| format!("not an AdmissionReview: {e}"))?;
    let request = review
        .get("request")
        .ok_or("the AdmissionReview has no request")?;
    let pod: Pod = serde_json::from_value(request.get("object").cloned().unwrap_or_default())
        .map_err(|e| format!("request.object is not a Pod: {e}"))?;
    let namespace = request
        .get("namespace")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| pod.metadata.namespace.clone())
        .ok_or("the request names no namespace")?;
    Ok(Request {
        uid: request.get("uid").cloned().unwrap_or(Value::Null),
        namespace,
        pod,
    })
}

fn review(response: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// The answer for a request whose namespace and MeshConfig were looked up.
pub fn respond(
    request: &Request,
    namespace: &Namespace,
    mesh: &MeshConfigSpec,
    settings: &InjectorSettings,
) -> Value {
    match mutate(&request.pod, namespace, mesh, settings) {
        Ok(Some(patch)) => review(json!({
            "uid": request.uid,
            "allowed": true,
            "patchType": "JSONPatch",
            "patch": B64.encode(Value::Array(patch).to_string()),
        })),
        Ok(None) => review(json!({"uid": request.uid, "allowed": true})),
        Err(e) => deny(&request.uid, &e.to_string()),
    }
}

/// A refusal with its reason.
pub fn deny(uid: &Value, message: &str) -> Value {
    review(json!({
        "uid": uid,
        "allowed": false,
        "status": {"code": 400, "reason": "BadRequest", "message": message},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(annotations: Value) -> Vec<u8> {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u-7", "namespace": "shop", "operation": "CREATE", "dryRun": true,
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
        }
    }

    #[test]
    fn patched_allowed_or_denied() {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "shop", "labels": {"openservicemesh.io/monitored-by": "osm"}}})).unwrap();
        let mesh = MeshConfigSpec::default();
        let answer = respond(&parse(&body(json!({}))).unwrap(), &ns, &mesh, &settings());
        assert_eq!(answer["response"]["uid"], "u-7");
        assert_eq!(answer["response"]["allowed"], true);
        assert_eq!(answer["response"]["patchType"], "JSONPatch");
        let patch: Value = serde_json::from_slice(
            &B64.decode(answer["response"]["patch"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(patch[0]["path"], "/spec/initContainers");

        let skipped = respond(
            &parse(&body(json!({"openservicemesh.io/sidecar-injection": "no"}))).unwrap(),
            &ns,
            &mesh,
            &settings(),
        );
        assert_eq!(skipped["response"]["allowed"], true);
        assert!(skipped["response"].get("patch").is_none());

        let denied = respond(
            &parse(&body(
                json!({"openservicemesh.io/sidecar-injection": "sometimes"}),
            ))
            .unwrap(),
            &ns,
            &mesh,
            &settings(),
        );
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
