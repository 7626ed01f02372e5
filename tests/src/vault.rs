//! A test server on 127.0.0.1 that speaks what the controller asks of
//! HashiCorp Vault: `GET /v1/pki/ca_chain`, `POST /v1/auth/kubernetes/login`
//! and `POST /v1/pki/sign/<role>`, answering as Vault does (JSON `data` or
//! `errors`), signing with a throwaway CA. It can be taken down (503, as a
//! sealed Vault answers) to play an outage.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::pki::Pki;

/// What the fake accepts.
pub const ROLE: &str = "openservicemesh";
pub const STATIC_TOKEN: &str = "s.static-test-token";
/// The ServiceAccount token Kubernetes auth accepts, and the Vault token
/// it answers with.
pub const SERVICE_ACCOUNT_JWT: &str = "controller-service-account-jwt";
const LOGIN_TOKEN: &str = "s.from-kubernetes-login";

struct State {
    ca: Pki,
    down: AtomicBool,
    signed: AtomicUsize,
    logins: AtomicUsize,
}

/// A running fake Vault; stopped when dropped.
pub struct FakeVault {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
}

impl Drop for FakeVault {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn reply(status: StatusCode, body: Value) -> osm_serve::Reply {
    osm_serve::json_reply(status, body.to_string())
}

fn errors(status: StatusCode, reason: &str) -> osm_serve::Reply {
    reply(status, json!({"errors": [reason]}))
}

async fn handle(state: &State, req: http::Request<hyper::body::Incoming>) -> osm_serve::Reply {
    if state.down.load(Ordering::Acquire) {
        return errors(StatusCode::SERVICE_UNAVAILABLE, "Vault is sealed");
    }
    let (parts, body) = req.into_parts();
    let token = parts
        .headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body: Value = body
        .collect()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b.to_bytes()).ok())
        .unwrap_or(Value::Null);
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/v1/pki/ca_chain") => {
            let mut r = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(
                state.ca.bundle_pem(),
            )));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/pem-certificate-chain"),
            );
            r
        }
        (&Method::POST, "/v1/auth/kubernetes/login") => {
            if body["role"] != ROLE || body["jwt"] != SERVICE_ACCOUNT_JWT {
                return errors(StatusCode::FORBIDDEN, "permission denied");
            }
            state.logins.fetch_add(1, Ordering::Relaxed);
            reply(
                StatusCode::OK,
                json!({"auth": {"client_token": LOGIN_TOKEN, "lease_duration": 3600, "renewable": true}}),
            )
        }
        (&Method::POST, path) if path == format!("/v1/pki/sign/{ROLE}") => {
            if token != STATIC_TOKEN && token != LOGIN_TOKEN {
                return errors(StatusCode::FORBIDDEN, "permission denied");
            }
            let (Some(csr), Some(uri), Some(dns)) = (
                body["csr"].as_str(),
                body["uri_sans"].as_str(),
                body["common_name"].as_str(),
            ) else {
                return errors(
                    StatusCode::BAD_REQUEST,
                    "missing csr, uri_sans or common_name",
                );
            };
            let ttl = body["ttl"]
                .as_str()
                .and_then(|t| t.trim_end_matches('s').parse().ok())
                .unwrap_or(3600);
            match state.ca.sign_csr(csr, uri, dns, Duration::from_secs(ttl)) {
                Ok(certificate) => {
                    state.signed.fetch_add(1, Ordering::Relaxed);
                    let root = state.ca.bundle_pem();
                    reply(
                        StatusCode::OK,
                        json!({"data": {"certificate": certificate, "issuing_ca": root,
                            "ca_chain": [root], "serial_number": "00:01"}}),
                    )
                }
                Err(e) => errors(StatusCode::BAD_REQUEST, &e),
            }
        }
        _ => errors(StatusCode::NOT_FOUND, "unsupported path"),
    }
}

impl FakeVault {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            ca: Pki::new("vault-test-root"),
            down: AtomicBool::new(false),
            signed: AtomicUsize::new(0),
            logins: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let served = state.clone();
        let handler: osm_serve::Handler = Arc::new(move |req| {
            let state = served.clone();
            Box::pin(async move { handle(&state, req).await })
        });
        tokio::spawn(osm_serve::serve(listener, None, handler, stop.clone()));
        Self { addr, state, stop }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> http::Uri {
        format!("http://{}", self.addr).parse().unwrap()
    }

    /// The root Vault signs from (PEM).
    pub fn root_pem(&self) -> String {
        self.state.ca.bundle_pem()
    }

    /// Certificates signed so far.
    pub fn signed(&self) -> usize {
        self.state.signed.load(Ordering::Relaxed)
    }

    /// Kubernetes-auth logins so far.
    pub fn logins(&self) -> usize {
        self.state.logins.load(Ordering::Relaxed)
    }

    /// Takes Vault down (every call answers 503) or back up.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::Release);
    }
}
