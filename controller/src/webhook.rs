//! The validating admission webhook for the mesh's CRDs (9093,
//! `POST /validate`): the API server sends an AdmissionReview v1, the
//! answer carries the compiler's own validation messages, so a policy the
//! controller would refuse is refused at `kubectl apply` with the field and
//! the reason. Warnings are passed back as admission warnings, with the
//! conflicts the object has with the cluster as the controller sees it (a
//! TrafficSplit and Gateway API routes on one Service).

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use kube::core::{
    DynamicObject,
    admission::{AdmissionRequest, AdmissionResponse, Operation},
};
use osm_api::{
    load::parse_object,
    resources::Object,
    validate::{Severity, validate},
};
use osm_serve::admission;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{hub::Hub, metrics::Metrics};

/// The path the ValidatingWebhookConfiguration points at.
pub const PATH: &str = "/validate";
/// AdmissionReviews are small; anything bigger is refused unread.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The answer to one AdmissionReview (pure), as the JSON review sent back.
/// Deletions are always allowed; creates and updates are checked like the
/// controller checks them; `conflicts` gives the warnings an accepted
/// object draws from the other objects.
pub fn review(body: &[u8], conflicts: &dyn Fn(&Object) -> Vec<String>) -> Result<Value, String> {
    reviewed(body, conflicts).map(|(answer, _)| answer)
}

/// The answer and the kind of the object reviewed.
fn reviewed(
    body: &[u8],
    conflicts: &dyn Fn(&Object) -> Vec<String>,
) -> Result<(Value, String), String> {
    let request = admission::parse_request::<DynamicObject>(body, "Kubernetes object")?;
    let answer = serde_json::to_value(answer(&request, conflicts).into_review())
        .map_err(|e| e.to_string())?;
    Ok((answer, request.kind.kind))
}

fn answer(
    request: &AdmissionRequest<DynamicObject>,
    conflicts: &dyn Fn(&Object) -> Vec<String>,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    if request.operation == Operation::Delete {
        return response;
    }
    let invalid = |response, message: &str| admission::deny(response, 422, "Invalid", message);
    let Some(object) = &request.object else {
        return invalid(response, "the request carries no object");
    };
    let mut object = match serde_json::to_value(object) {
        Ok(o) => o,
        Err(e) => return invalid(response, &e.to_string()),
    };
    // Our input is the spec; a status written by a controller is not.
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    let parsed = match parse_object(object) {
        Ok(o) => o,
        Err(e) => return invalid(response, &e.to_string()),
    };
    let problems = validate(&parsed);
    let (rejected, warned): (Vec<_>, Vec<_>) = problems
        .iter()
        .partition(|p| p.severity == Severity::Reject);
    let mut response = if rejected.is_empty() {
        response
    } else {
        let reasons: Vec<String> = rejected.iter().map(ToString::to_string).collect();
        let message = format!("{} is invalid: {}", parsed.key(), reasons.join("; "));
        invalid(response, &message)
    };
    let mut warnings: Vec<String> = warned.iter().map(ToString::to_string).collect();
    if rejected.is_empty() {
        warnings.extend(conflicts(&parsed));
    }
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    response
}

async fn handle(
    req: Request<Incoming>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
) -> Response<Full<Bytes>> {
    let body = match admission::read_review(req, PATH, MAX_BODY).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    match reviewed(&body, &|object| hub.split_conflicts(object)) {
        Ok((answer, kind)) => {
            let allowed = answer["response"]["allowed"].as_bool().unwrap_or(false);
            metrics.admission_answered(&kind, allowed);
            osm_serve::json_reply(StatusCode::OK, answer.to_string())
        }
        Err(e) => admission::bad_request(&e),
    }
}

/// Serves HTTPS until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let handler: osm_serve::Handler =
        Arc::new(move |req| Box::pin(handle(req, hub.clone(), metrics.clone())));
    osm_serve::serve(listener, Some(tls), handler, stop).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn review_alone(body: &[u8]) -> Result<Value, String> {
        review(body, &|_| Vec::new())
    }

    fn admission(operation: &str, object: Value) -> Vec<u8> {
        json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "abc-123", "operation": operation, "object": object,
                "kind": {"group": "access.smi-spec.io", "version": "v1alpha3", "kind": "TrafficTarget"},
                "resource": {"group": "access.smi-spec.io", "version": "v1alpha3", "resource": "traffictargets"},
                "userInfo": {"username": "kubernetes-admin"},
            },
        })
        .to_string()
        .into_bytes()
    }

    fn target(destination_kind: &str) -> Value {
        json!({
            "apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
            "metadata": {"name": "t", "namespace": "shop"},
            "spec": {
                "destination": {"kind": destination_kind, "name": "store", "namespace": "shop"},
                "rules": [{"kind": "TCPRoute", "name": "all"}],
                "sources": [{"kind": "ServiceAccount", "name": "buyer", "namespace": "shop"}],
            },
        })
    }

    #[test]
    fn valid_objects_pass_and_invalid_ones_say_where_and_why() {
        let ok = review_alone(&admission("CREATE", target("ServiceAccount"))).unwrap();
        assert_eq!(ok["response"]["uid"], "abc-123");
        assert_eq!(ok["response"]["allowed"], true);
        assert_eq!(ok["kind"], "AdmissionReview");

        let bad = review_alone(&admission("UPDATE", target("Deployment"))).unwrap();
        assert_eq!(bad["response"]["allowed"], false);
        assert_eq!(bad["response"]["status"]["code"], 422);
        let message = bad["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("TrafficTarget shop/t is invalid: spec.destination.kind"),
            "{message}"
        );

        let mut garbled = target("ServiceAccount");
        garbled["spec"]["rules"] = json!("not a list");
        let garbled = review_alone(&admission("CREATE", garbled)).unwrap();
        assert_eq!(garbled["response"]["allowed"], false);
        assert!(
            garbled["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("spec.rules")
        );

        // A deletion is never blocked, even of an object that is invalid now.
        let gone = review_alone(&admission("DELETE", Value::Null)).unwrap();
        assert_eq!(gone["response"]["allowed"], true);

        assert!(review_alone(b"{").is_err());
        assert!(review_alone(b"{}").unwrap_err().contains("no request"));
    }

    /// Conflicts with other objects come back as warnings of an accepted
    /// object, and are not looked for on a refused one.
    #[test]
    fn conflicts_with_the_cluster_are_warnings() {
        let conflicts = |o: &Object| vec![format!("{} meets a TrafficSplit", o.key())];
        let ok = review(&admission("CREATE", target("ServiceAccount")), &conflicts).unwrap();
        assert_eq!(ok["response"]["allowed"], true);
        assert_eq!(
            ok["response"]["warnings"],
            json!(["TrafficTarget shop/t meets a TrafficSplit"])
        );
        let bad = review(&admission("CREATE", target("Deployment")), &conflicts).unwrap();
        assert_eq!(bad["response"]["allowed"], false);
        assert!(bad["response"]["warnings"].is_null(), "{bad}");
    }
}
