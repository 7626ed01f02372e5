//! The bookstore in miniature: two bookstore versions behind their own
//! proxies, and bookbuyer and bookthief proxies on the client side.

use serde_json::{Value, json};

use crate::{
    ProxyOptions, TestProxy,
    apps::HttpApp,
    pki::{Pki, spiffe},
};
use osm_proxy::telemetry::metrics::PodInfo;

pub const NS: &str = "bookstore";
pub const ROOT_KEY: &str = "bookstore/bookstore:14001";
pub const V1_KEY: &str = "bookstore/bookstore-v1:14001";
pub const V2_KEY: &str = "bookstore/bookstore-v2:14001";
pub const VIP: &str = "10.96.0.14";

pub struct Fixture {
    pub pki: Pki,
    pub v1: HttpApp,
    pub v2: HttpApp,
    pub store_v1: TestProxy,
    pub store_v2: TestProxy,
    pub buyer: TestProxy,
    pub thief: TestProxy,
}

/// The bookstore's inbound policy: bookbuyer may GET/POST `/books.*` and
/// POST `/grpc`; nobody else may do anything.
pub fn store_policy(pki: &Pki, port: u16, permissive: bool) -> Value {
    json!({
        "mesh": {"permissive": permissive},
        "trustBundle": {"pem": pki.bundle_pem()},
        "inbound": [{
            "port": port,
            "authorizations": [{
                "name": "bookstore/bookbuyer-access",
                "sources": [spiffe("bookbuyer", "bookbuyer")],
                "http": {"matches": [
                    {"name": "buy", "pathRegex": "/books.*", "methods": ["GET", "POST"]},
                    {"name": "grpc", "pathRegex": "/grpc", "methods": ["POST"]},
                    {"name": "ws", "pathRegex": "/ws", "methods": ["GET"]}
                ]}
            }]
        }]
    })
}

fn endpoint_set(key: &str, service: &str, proxy: &TestProxy, sa: &str) -> Value {
    json!({
        "key": key, "namespace": NS, "service": service,
        "endpoints": [{
            "address": proxy.inbound().to_string(),
            "identity": spiffe(NS, sa),
            "pod": format!("{service}-pod"),
            "workloadKind": "Deployment",
            "workloadName": service,
        }]
    })
}

/// A client config routing `bookstore` to v1 only, or split as given, with
/// optional A/B header matches.
pub fn client_config(f: &Fixture, split: Option<(u32, u32)>, ab_matches: Option<Value>) -> Value {
    let mut root = json!({
        "key": ROOT_KEY, "namespace": NS, "name": "bookstore", "port": 14001,
        "hostnames": ["bookstore", "bookstore.bookstore", "bookstore.bookstore.svc.cluster.local"],
        "vips": [VIP],
        "endpoints": V1_KEY,
    });
    if let Some((w1, w2)) = split {
        root["split"] =
            json!([{"endpoints": V1_KEY, "weight": w1}, {"endpoints": V2_KEY, "weight": w2}]);
    }
    if let Some(m) = ab_matches {
        root["splitMatches"] = m;
    }
    json!({
        "mesh": {"egress": false},
        "trustBundle": {"pem": f.pki.bundle_pem()},
        "endpoints": [
            endpoint_set(V1_KEY, "bookstore-v1", &f.store_v1, "bookstore-v1"),
            endpoint_set(V2_KEY, "bookstore-v2", &f.store_v2, "bookstore-v2"),
        ],
        "outbound": [root],
    })
}

fn pod(ns: &str, name: &str) -> PodInfo {
    PodInfo {
        namespace: ns.into(),
        kind: "Deployment".into(),
        name: name.into(),
        pod: format!("{name}-pod"),
    }
}

impl Fixture {
    pub async fn start() -> Self {
        let pki = Pki::default();
        let v1 = HttpApp::start("bookstore-v1").await;
        let v2 = HttpApp::start("bookstore-v2").await;
        let store = |app: &HttpApp, sa: &str| ProxyOptions {
            credentials: Some(pki.issue(NS, sa)),
            config_yaml: Some(store_policy(&pki, app.addr.port(), false).to_string()),
            inbound_targets: vec![app.addr],
            outbound_targets: vec![],
            pod: pod(NS, sa),
            ..Default::default()
        };
        let store_v1 = TestProxy::start(store(&v1, "bookstore-v1")).await;
        let store_v2 = TestProxy::start(store(&v2, "bookstore-v2")).await;
        let client = |sa: &str| ProxyOptions {
            credentials: Some(pki.issue(sa, sa)),
            outbound_targets: vec![None, Some(format!("{VIP}:14001").parse().unwrap())],
            pod: pod(sa, sa),
            ..Default::default()
        };
        let buyer = TestProxy::start(client("bookbuyer")).await;
        let thief = TestProxy::start(client("bookthief")).await;
        let f = Self {
            pki,
            v1,
            v2,
            store_v1,
            store_v2,
            buyer,
            thief,
        };
        let config = client_config(&f, None, None).to_string();
        f.buyer.apply(&config);
        f.thief.apply(&config);
        f
    }
}
