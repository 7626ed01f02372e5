//! The echo app's answer: a JSON description of the request it got and of
//! the pod that answered, as the Gateway API conformance suite's echo
//! server gives it, so tests and users can see where a route sent a
//! request and what the filters did to it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Who is answering (from the downward API in a pod).
#[derive(Debug, Clone, Default)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub service: String,
}

/// The description of a request: method, path, query, host, protocol,
/// headers (lower-case names, every value), and the answering pod.
pub fn describe<B>(req: &http::Request<B>, pod: &Pod) -> Value {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers() {
        headers
            .entry(name.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query().unwrap_or(""),
        "host": host,
        "proto": format!("{:?}", req.version()),
        "headers": headers,
        "namespace": pod.namespace,
        "pod": pod.name,
        "service": pod.service,
    })
}

/// How long the request asks the echo to wait before answering
/// (`x-echo-delay-ms`, at most a minute).
pub fn delay<B>(req: &http::Request<B>) -> Option<std::time::Duration> {
    let ms: u64 = req
        .headers()
        .get("x-echo-delay-ms")?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    Some(std::time::Duration::from_millis(ms.min(60_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_described_whole() {
        let req = http::Request::post("/books/1?color=red&size=2")
            .header("host", "echo.shop:8080")
            .header("x-tenant", "a")
            .header("X-Tenant", "b")
            .body(())
            .unwrap();
        let pod = Pod {
            namespace: "shop".into(),
            name: "echo-v1-abc".into(),
            service: "echo-v1".into(),
        };
        let d = describe(&req, &pod);
        assert_eq!(d["method"], "POST");
        assert_eq!(d["path"], "/books/1");
        assert_eq!(d["query"], "color=red&size=2");
        assert_eq!(d["host"], "echo.shop:8080");
        assert_eq!(d["proto"], "HTTP/1.1");
        assert_eq!(d["headers"]["x-tenant"], json!(["a", "b"]));
        assert_eq!(d["pod"], "echo-v1-abc");
        assert_eq!(d["namespace"], "shop");
        assert_eq!(delay(&req), None);
        let slow = http::Request::get("/")
            .header("x-echo-delay-ms", "250")
            .body(())
            .unwrap();
        assert_eq!(delay(&slow), Some(std::time::Duration::from_millis(250)));
    }
}
