//! The validating admission webhook for the mesh's CRDs (9093,
//! `POST /validate`): the API server sends an AdmissionReview v1, the
//! answer carries the compiler's own validation messages, so a policy the
//! controller would refuse is refused at `kubectl apply` with the field and
//! the reason. Warnings are passed back as admission warnings.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use osm_api::{
    load::parse_object,
    validate::{Severity, validate},
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The path the ValidatingWebhookConfiguration points at.
pub const PATH: &str = "/validate";
/// AdmissionReviews are small; anything bigger is refused unread.
const MAX_BODY: usize = 4 * 1024 * 1024;

fn response(uid: &Value, allowed: bool, message: Option<String>, warnings: Vec<String>) -> Value {
    let mut response = json!({"uid": uid, "allowed": allowed});
    if let Some(message) = message {
        response["status"] = json!({
            "code": if allowed { 200 } else { 422 },
            "reason": if allowed { "" } else { "Invalid" },
            "message": message,
        });
    }
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    })
}

/// The answer to one AdmissionReview (pure). Deletions are always allowed;
/// creates and updates are checked like the controller checks them.
pub fn review(body: &[u8]) -> Result<Value, String> {
    let review: Value =
        serde_json::from_slice(body).map_err(|e| format!("not an AdmissionReview: {e}"))?;
    let request = review
        .get("request")
        .ok_or("the AdmissionReview has no request")?;
    let uid = request.get("uid").cloned().unwrap_or(Value::Null);
    if request.get("operation").and_then(Value::as_str) == Some("DELETE") {
        return Ok(response(&uid, true, None, vec![]));
    }
    let Some(object) = request.get("object").cloned().filter(|o| !o.is_null()) else {
        return Ok(response(
            &uid,
            false,
            Some("the request carries no object".into()),
            vec![],
        ));
    };
    let mut object = object;
    // Our input is the spec; a status written by a controller is not.
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    let parsed = match parse_object(object) {
        Ok(o) => o,
        Err(e) => return Ok(response(&uid, false, Some(e.to_string()), vec![])),
    };
    let problems = validate(&parsed);
    let (rejected, warned): (Vec<_>, Vec<_>) = problems
        .iter()
        .partition(|p| p.severity == Severity::Reject);
    let warnings = warned.iter().map(ToString::to_string).collect();
    let name = parsed.key();
    if rejected.is_empty() {
        Ok(response(&uid, true, None, warnings))
    } else {
        let reasons: Vec<String> = rejected.iter().map(ToString::to_string).collect();
        Ok(response(
            &uid,
            false,
            Some(format!("{name} is invalid: {}", reasons.join("; "))),
            warnings,
        ))
    }
}

async fn handle(req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::POST || req.uri().path() != PATH {
        return osm_serve::json_reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("POST an AdmissionReview to {PATH}")}).to_string(),
        );
    }
    let body = match osm_serve::read_body(req, MAX_BODY).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    match review(&body) {
        Ok(answer) => osm_serve::json_reply(StatusCode::OK, answer.to_string()),
        Err(e) => osm_serve::json_reply(StatusCode::BAD_REQUEST, json!({"error": e}).to_string()),
    }
}

/// Serves HTTPS until `stop` is cancelled.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, stop: CancellationToken) {
    let handler: osm_serve::Handler = Arc::new(|req| Box::pin(handle(req)));
    osm_serve::serve(listener, Some(tls), handler, stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(operation: &str, object: Value) -> Vec<u8> {
        json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "abc-123", "operation": operation, "object": object},
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
        let ok = review(&admission("CREATE", target("ServiceAccount"))).unwrap();
        assert_eq!(ok["response"]["uid"], "abc-123");
        assert_eq!(ok["response"]["allowed"], true);
        assert_eq!(ok["kind"], "AdmissionReview");

        let bad = review(&admission("UPDATE", target("Deployment"))).unwrap();
        assert_eq!(bad["response"]["allowed"], false);
        assert_eq!(bad["response"]["status"]["code"], 422);
        let message = bad["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("TrafficTarget shop/t is invalid: spec.destination.kind"),
            "{message}"
        );

        let mut garbled = target("ServiceAccount");
        garbled["spec"]["rules"] = json!("not a list");
        let garbled = review(&admission("CREATE", garbled)).unwrap();
        assert_eq!(garbled["response"]["allowed"], false);
        assert!(
            garbled["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("spec.rules")
        );

        // A deletion is never blocked, even of an object that is invalid now.
        let gone = review(&admission("DELETE", Value::Null)).unwrap();
        assert_eq!(gone["response"]["allowed"], true);

        assert!(review(b"{").is_err());
        assert!(review(b"{}").unwrap_err().contains("no request"));
    }
}
