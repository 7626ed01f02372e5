//! Health, readiness, metrics and debug endpoints (9091).
//!
//! - `/healthz`: the process serves.
//! - `/readyz`: 200 once every source has completed its first full sync,
//!   503 with the reason before.
//! - `/metrics`: Prometheus text.
//! - `/debug/proxies` (loopback clients only, or this machine when the
//!   port is bound to one address): JSON list of connected
//!   proxies with the config version sent to each and the one it
//!   acknowledged.
//! - `/debug/ca` (loopback clients only): the root rotation's phase and
//!   what it waits for, the roots of the trust bundle (the issuing one
//!   first) and any that live certificates still chain to, with how many
//!   live certificates each has.
//! - `POST /ca/rotate` (loopback clients only): starts a root rotation.
//! - `/debug/config?pod=<namespace>/<name>` (loopback clients only, and
//!   only with MeshConfig `observability.enableDebugServer: true`, OSM's
//!   switch for its debug server): the config a connected proxy is
//!   served, as JSON resources.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use osm_api::compile::ProxyId;

use crate::{hub::Hub, metrics::Metrics, status::Proxies};

/// What the admin endpoints read.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub proxies: Arc<Proxies>,
    pub synced: Arc<AtomicBool>,
    pub hub: Arc<Hub>,
    /// The certificates issued, by root.
    pub ledger: Arc<crate::ca::ledger::Ledger>,
    pub authority: Arc<crate::ca::authority::Authority>,
    pub issuer_health: Arc<crate::ca::health::IssuerHealth>,
}

mod ca_admin;

/// `/debug/config`: a connected proxy's config, when the debug server is on.
fn debug_config(hub: &Hub, query: Option<&str>) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if !hub.debug_server_enabled() {
        return reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "the debug server is off: set MeshConfig observability.enableDebugServer: true\n",
        );
    }
    let pod = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("pod="))
        .and_then(|p| p.split_once('/'));
    let Some((namespace, pod)) = pod else {
        return reply(
            StatusCode::BAD_REQUEST,
            TEXT,
            "name the proxy: /debug/config?pod=<namespace>/<pod>\n",
        );
    };
    let id = ProxyId {
        namespace: namespace.into(),
        pod: pod.into(),
    };
    let Some(view) = hub.current_view(&id) else {
        return reply(
            StatusCode::NOT_FOUND,
            TEXT,
            format!("no proxy of pod {namespace}/{pod} is connected\n"),
        );
    };
    let body = serde_json::json!({
        "pod": format!("{namespace}/{pod}"),
        "version": view.version,
        "resources": view.resources.values().map(|r| &**r).collect::<Vec<_>>(),
    });
    reply(
        StatusCode::OK,
        "application/json",
        serde_json::to_string_pretty(&body).unwrap_or_default(),
    )
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
}

/// Answers one admin request (pure routing, no I/O). `/debug/` answers
/// only clients on loopback (`kubectl port-forward` is one): it names every
/// proxy and what it runs, which the network has no business reading; the
/// health, readiness and metrics endpoints stay open for the kubelet and
/// Prometheus.
pub fn route(
    state: &AdminState,
    method: &Method,
    uri: &http::Uri,
    from_loopback: bool,
) -> Response<Full<Bytes>> {
    let path = uri.path();
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "only GET is served, and POST /ca/rotate from loopback\n",
        );
    }
    if path.starts_with("/debug/") && !from_loopback {
        return reply(
            StatusCode::FORBIDDEN,
            TEXT,
            "the debug endpoints answer only on loopback: use kubectl port-forward\n",
        );
    }
    match path {
        "/healthz" => reply(StatusCode::OK, TEXT, "ok\n"),
        "/readyz" if state.synced.load(Ordering::Acquire) => reply(StatusCode::OK, TEXT, "ready\n"),
        "/readyz" => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            "not ready: the first full sync of the cluster state has not completed\n",
        ),
        "/metrics" => {
            state
                .metrics
                .proxies_out_of_sync
                .set(state.proxies.out_of_sync() as f64);
            for root in ca_admin::roots(state) {
                state
                    .metrics
                    .live_certificates(&root.root.fingerprint, root.live_certificates);
            }
            reply(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                state.metrics.render(),
            )
        }
        "/debug/proxies" => reply(
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&state.proxies.list()).unwrap_or_default(),
        ),
        "/debug/config" => debug_config(&state.hub, uri.query()),
        "/debug/ca" => reply(
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&ca_admin::report(state)).unwrap_or_default(),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found; try /healthz, /readyz, /metrics, /debug/proxies or /debug/ca\n",
        ),
    }
}

/// Serves until `stop` is cancelled.
pub async fn serve(listener: TcpListener, state: AdminState, stop: CancellationToken) {
    // Bound to one address (local mode: the bridge's gateway), a client
    // from that address is this machine itself, as trusted as loopback;
    // bound to all (a pod), only loopback is.
    let own_ip = listener
        .local_addr()
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified());
    let handler: osm_serve::Handler = Arc::new(move |req: Request<Incoming>| {
        let from_loopback = req
            .extensions()
            .get::<osm_serve::PeerAddr>()
            .is_some_and(|p| p.0.ip().is_loopback() || Some(p.0.ip()) == own_ip);
        if req.method() == Method::POST && req.uri().path() == "/ca/rotate" && from_loopback {
            let state = state.clone();
            return Box::pin(async move { ca_admin::rotate(&state).await });
        }
        let response = route(&state, req.method(), req.uri(), from_loopback);
        Box::pin(async move { response })
    });
    osm_serve::serve(listener, None, handler, stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn fixed_authority() -> Arc<crate::ca::authority::Authority> {
        let ca = crate::ca::LocalCa::generate(std::time::Duration::from_secs(3600)).unwrap();
        Arc::new(crate::ca::authority::Authority::fixed(Arc::new(ca)))
    }

    async fn body(r: Response<Full<Bytes>>) -> String {
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn readiness_follows_the_first_sync_and_proxies_are_listed() {
        let state = AdminState {
            metrics: Arc::new(Metrics::new()),
            proxies: Arc::new(Proxies::default()),
            synced: Arc::new(AtomicBool::new(false)),
            hub: Arc::new(hub()),
            ledger: Default::default(),
            authority: fixed_authority(),
            issuer_health: Default::default(),
        };
        let uri = |p: &str| p.parse::<http::Uri>().unwrap();
        let get = |p: &str| route(&state, &Method::GET, &uri(p), true);
        // Regression (issue 14, item 10): the proxy list was served to the
        // whole network.
        let remote = route(&state, &Method::GET, &uri("/debug/proxies"), false);
        assert_eq!(remote.status(), StatusCode::FORBIDDEN);
        assert!(body(remote).await.contains("port-forward"));
        assert_eq!(
            route(&state, &Method::GET, &uri("/metrics"), false).status(),
            StatusCode::OK
        );
        assert_eq!(get("/healthz").status(), StatusCode::OK);
        let not_ready = get("/readyz");
        assert_eq!(not_ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(body(not_ready).await.contains("first full sync"));
        state.synced.store(true, Ordering::Release);
        assert_eq!(get("/readyz").status(), StatusCode::OK);

        state.proxies.connected(
            7,
            "shop",
            "buyer-0",
            "spiffe://cluster.local/ns/shop/sa/buyer",
        );
        state.proxies.sent(7, "12");
        let metrics = body(get("/metrics")).await;
        assert!(
            metrics.contains("osm_controller_proxies_out_of_sync 1"),
            "sent, not acknowledged: {metrics}"
        );
        state.proxies.acknowledged(
            7,
            &osm_api::v1::ProxyInfo {
                acked_version: "12".into(),
                rejected_resources: vec!["inbound[0].port: 0 is not a port (1-65535)".into()],
                ..Default::default()
            },
            0,
        );
        assert!(
            body(get("/metrics"))
                .await
                .contains("osm_controller_proxies_out_of_sync 0")
        );
        let listed: serde_json::Value =
            serde_json::from_str(&body(get("/debug/proxies")).await).unwrap();
        assert_eq!(listed[0]["pod"], "buyer-0");
        assert_eq!(listed[0]["ackedVersion"], "12");
        assert_eq!(
            listed[0]["rejectedResources"][0],
            "inbound[0].port: 0 is not a port (1-65535)"
        );
        state.proxies.disconnected(7);
        assert_eq!(body(get("/debug/proxies")).await.trim(), "[]");

        state
            .metrics
            .certificate_issued(std::time::Duration::from_millis(3));
        state
            .metrics
            .certificate_issued(std::time::Duration::from_millis(3));
        let text = body(get("/metrics")).await;
        assert!(text.contains("osm_controller_certificates_issued_total 2"));
        // OSM's names beside ours.
        assert!(text.contains("osm_cert_issued_count 2"), "{text}");
        assert!(text.contains("osm_cert_issued_time_count 2"), "{text}");
        assert_eq!(get("/nope").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            route(&state, &Method::POST, &uri("/healthz"), true).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    fn hub() -> Hub {
        let mut index = osm_api::compile::Index::new(osm_api::compile::MeshOptions::default());
        for l in osm_api::load::load_str("cluster.yaml", crate::test_fixtures::CLUSTER).objects {
            index.apply(l.object);
        }
        Hub::new(osm_api::compile::Compiler::new(index), None)
    }

    #[tokio::test]
    async fn a_proxys_config_is_served_only_with_the_debug_server_on() {
        let state = AdminState {
            metrics: Arc::new(Metrics::new()),
            proxies: Arc::new(Proxies::default()),
            synced: Arc::new(AtomicBool::new(true)),
            hub: Arc::new(hub()),
            ledger: Default::default(),
            authority: fixed_authority(),
            issuer_health: Default::default(),
        };
        let _sub = state
            .hub
            .subscribe(ProxyId {
                namespace: "shop".into(),
                pod: "store-0".into(),
            })
            .unwrap();
        let get = |p: &str| route(&state, &Method::GET, &p.parse().unwrap(), true);
        let off = get("/debug/config?pod=shop/store-0");
        assert_eq!(off.status(), StatusCode::NOT_FOUND);
        assert!(body(off).await.contains("observability.enableDebugServer"));
        let mesh = "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\n\
            metadata: {name: osm-mesh-config, namespace: osm-system}\nspec: {observability: {enableDebugServer: true}}\n";
        state.hub.apply(
            osm_api::load::load_str("m.yaml", mesh)
                .objects
                .remove(0)
                .object,
        );
        let on = get("/debug/config?pod=shop/store-0");
        assert_eq!(on.status(), StatusCode::OK);
        let config: serde_json::Value = serde_json::from_str(&body(on).await).unwrap();
        assert_eq!(config["pod"], "shop/store-0");
        assert!(
            config["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.get("mesh").is_some()),
            "{config}"
        );
        assert_eq!(
            get("/debug/config?pod=shop/nobody").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(get("/debug/config").status(), StatusCode::BAD_REQUEST);
        let remote = route(
            &state,
            &Method::GET,
            &"/debug/config?pod=shop/store-0".parse().unwrap(),
            false,
        );
        assert_eq!(remote.status(), StatusCode::FORBIDDEN, "loopback only");
    }
}
