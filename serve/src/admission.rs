//! AdmissionReview v1 for both webhooks (the controller's validating one,
//! the injector's mutating one), with kube's types: the request read with
//! errors that say what is wrong, the response written as a review.

use kube::core::{
    Resource,
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview},
};
use serde::{Deserialize as _, de::DeserializeOwned};

/// The body of an AdmissionReview POSTed to `path`, or the reply refusing
/// it (404 naming the path, 413 when over `max` bytes).
pub async fn read_review(
    req: http::Request<hyper::body::Incoming>,
    path: &str,
    max: usize,
) -> Result<hyper::body::Bytes, super::Reply> {
    if req.method() != http::Method::POST || req.uri().path() != path {
        return Err(super::json_reply(
            http::StatusCode::NOT_FOUND,
            serde_json::json!({"error": format!("POST an AdmissionReview to {path}")}).to_string(),
        ));
    }
    super::read_body(req, max).await
}

/// A request that is not a usable AdmissionReview: 400 with what is wrong.
pub fn bad_request(error: &str) -> super::Reply {
    super::json_reply(
        http::StatusCode::BAD_REQUEST,
        serde_json::json!({"error": error}).to_string(),
    )
}

/// Reads the request of an AdmissionReview whose object is a `kind`; Err
/// says what is wrong with it (the caller answers 400 with it).
pub fn parse_request<T>(body: &[u8], kind: &str) -> Result<AdmissionRequest<T>, String>
where
    T: Resource + DeserializeOwned,
{
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not an AdmissionReview: {e}"))?;
    let Some(request) = value.get("request").filter(|r| !r.is_null()) else {
        return Err("the AdmissionReview has no request".into());
    };
    match AdmissionReview::<T>::deserialize(&value) {
        Ok(review) => review
            .try_into()
            .map_err(|_| "the AdmissionReview has no request".to_string()),
        // The object's own error first: it is the one a user can act on.
        Err(e) => Err(match request.get("object").filter(|o| !o.is_null()) {
            Some(object) => match T::deserialize(object) {
                Err(object_error) => format!("request.object is not a {kind}: {object_error}"),
                Ok(_) => format!("not an AdmissionReview: {e}"),
            },
            None => format!("not an AdmissionReview: {e}"),
        }),
    }
}

/// A refusal with an HTTP-like status (`code`, `reason`) and the message
/// `kubectl` shows.
pub fn deny(
    response: AdmissionResponse,
    code: u16,
    reason: &str,
    message: &str,
) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result.code = code;
    response.result.reason = reason.into();
    response
}

/// The review sent back for a response, as JSON. The patch is written as
/// the API requires, a base64 string (Go's `[]byte`): kube serializes its
/// `Vec<u8>` as an array of numbers (kube-rs/kube#1781).
pub fn review_json(response: AdmissionResponse) -> Result<serde_json::Value, serde_json::Error> {
    use base64::Engine as _;
    let patch = response.patch.clone();
    let mut review = serde_json::to_value(response.into_review())?;
    if let (Some(patch), Some(slot)) = (patch, review.pointer_mut("/response/patch")) {
        *slot = base64::engine::general_purpose::STANDARD
            .encode(patch)
            .into();
    }
    Ok(review)
}

/// The reply to the API server: the response wrapped in a review, 200.
pub fn reply(response: AdmissionResponse) -> super::Reply {
    match review_json(response) {
        Ok(body) => super::json_reply(http::StatusCode::OK, body.to_string()),
        Err(e) => super::json_reply(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": format!("writing the AdmissionReview: {e}")}).to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use kube::core::{DynamicObject, admission::Operation};

    use super::*;

    #[test]
    fn requests_are_read_and_bad_bodies_named() {
        let body = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u-1", "operation": "CREATE", "userInfo": {"username": "me"},
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
            },
        })
        .to_string();
        let request = parse_request::<DynamicObject>(body.as_bytes(), "object").expect("parses");
        assert_eq!(request.uid, "u-1");
        assert_eq!(request.operation, Operation::Create);
        let answer = review_json(deny(
            AdmissionResponse::from(&request),
            422,
            "Invalid",
            "no",
        ))
        .expect("serializes");
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["response"]["uid"], "u-1");
        assert_eq!(answer["response"]["allowed"], false);
        assert_eq!(answer["response"]["status"]["code"], 422);
        assert_eq!(answer["response"]["status"]["message"], "no");

        // A patch goes out as base64, as the API server decodes it.
        let op = serde_json::json!([{"op": "add", "path": "/metadata/labels", "value": {}}]);
        let patched = AdmissionResponse::from(&request)
            .with_patch(serde_json::from_value(op.clone()).expect("a patch"))
            .expect("patch");
        let answer = review_json(patched).expect("serializes");
        assert_eq!(answer["response"]["patchType"], "JSONPatch");
        let decoded = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            answer["response"]["patch"].as_str().expect("a string"),
        )
        .expect("base64");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&decoded).expect("json"),
            op
        );

        let cases: &[(&[u8], &str)] = &[
            (b"{", "not an AdmissionReview: EOF"),
            (b"{}", "the AdmissionReview has no request"),
            (
                br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u"}}"#,
                "not an AdmissionReview: missing field",
            ),
        ];
        for (body, error) in cases {
            let got = parse_request::<DynamicObject>(body, "object").expect_err("refused");
            assert!(got.starts_with(error), "{got}");
        }
    }
}
