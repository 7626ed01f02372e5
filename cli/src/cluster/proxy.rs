//! `osm proxy get QUERY POD` and `osm verify connectivity`: a sidecar's
//! admin endpoints (127.0.0.1:15000 in the pod, metrics on 15010) reached
//! through the API server's port-forward, and a check of two proxies'
//! configs for a path between them.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use serde_json::Value;

use super::{client, local};
use osm_api::compat::PROXY_CONTAINER as SIDECAR;
pub use osm_api::compat::{PROXY_ADMIN_PORT as ADMIN_PORT, PROXY_METRICS_PORT as METRICS_PORT};

/// Port and path for a query: `config_dump`, `certs`, `ready`, `live`,
/// `logging` on the admin port; `stats`/`metrics` on the metrics port.
pub fn route(query: &str) -> (u16, String) {
    let query = query.trim_start_matches('/');
    match query {
        "stats" | "stats/prometheus" | "metrics" => (METRICS_PORT, "/stats/prometheus".into()),
        other => (ADMIN_PORT, format!("/{other}")),
    }
}

/// Whether a pod runs the mesh's sidecar.
pub fn has_sidecar(pod: &Pod) -> bool {
    pod.spec.as_ref().is_some_and(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .any(|c| c.name == SIDECAR)
    })
}

/// GET `query` on a pod's proxy: (status, body).
pub async fn get(
    client: &Client,
    namespace: &str,
    pod: &str,
    query: &str,
) -> Result<(u16, String), String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let found = api
        .get_opt(pod)
        .await
        .map_err(|e| format!("pod {namespace}/{pod}: {e}"))?;
    let found = found.ok_or_else(|| format!("pod {namespace}/{pod} not found"))?;
    if !has_sidecar(&found) {
        return Err(format!(
            "pod {namespace}/{pod} has no {SIDECAR} sidecar: is its namespace in the mesh (osm namespace list), \
             and was the pod created after?"
        ));
    }
    let (port, path) = route(query);
    port_forward_get(&api, pod, port, &path).await
}

/// GET `path` on `port` of a pod, through the API server's port-forward
/// (the request arrives on the pod's loopback): (status, body).
pub async fn port_forward_get(
    api: &Api<Pod>,
    pod: &str,
    port: u16,
    path: &str,
) -> Result<(u16, String), String> {
    port_forward(api, pod, port, http::Method::GET, path).await
}

/// `method path` (no body) on `pod`'s `port` through the API server's
/// port-forward; (status, body).
pub async fn port_forward(
    api: &Api<Pod>,
    pod: &str,
    port: u16,
    method: http::Method,
    path: &str,
) -> Result<(u16, String), String> {
    let namespace = api.namespace().unwrap_or("default").to_string();
    let mut forwarder = api
        .portforward(pod, &[port])
        .await
        .map_err(|e| format!("port-forward to {namespace}/{pod}:{port}: {e}"))?;
    let stream = forwarder
        .take_stream(port)
        .ok_or_else(|| format!("port-forward to {namespace}/{pod}:{port} gave no stream"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{namespace}/{pod}:{port}: {e}"))?;
    tokio::spawn(conn);
    let request = http::Request::builder()
        .method(method.clone())
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{method} {path} on {namespace}/{pod}:{port}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    forwarder.abort();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// One finding of `verify connectivity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub text: String,
}

fn check(ok: bool, text: impl Into<String>) -> Check {
    Check {
        ok,
        text: text.into(),
    }
}

/// Pod and identity of one side.
#[derive(Debug, Clone)]
pub struct Side<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub service_account: &'a str,
    /// The proxy's `/config_dump`.
    pub dump: &'a Value,
}

/// Whether SRC's proxy can send to DST's and DST's accepts it, from their
/// config dumps (pure).
pub fn verify(src: &Side<'_>, dst: &Side<'_>) -> Vec<Check> {
    let mut out = Vec::new();
    for side in [src, dst] {
        let version = side
            .dump
            .get("version")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        out.push(check(
            version > 0,
            format!(
                "{}/{} has a config from the controller (version {version})",
                side.namespace, side.pod
            ),
        ));
    }
    let config = |s: &Side<'_>| s.dump.get("config").cloned().unwrap_or(Value::Null);
    let (src_config, dst_config) = (config(src), config(dst));
    let trust_domain = dst_config
        .pointer("/mesh/trustDomain")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("cluster.local");
    let src_id = format!(
        "spiffe://{trust_domain}/ns/{}/sa/{}",
        src.namespace, src.service_account
    );
    let dst_id = format!(
        "spiffe://{trust_domain}/ns/{}/sa/{}",
        dst.namespace, dst.service_account
    );

    // Outbound: some service of SRC's config has DST's pod as an endpoint,
    // with DST's identity.
    let mut via = Vec::new();
    let mut wrong_identity = Vec::new();
    for set in src_config
        .get("endpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for ep in set
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if ep.get("pod").and_then(Value::as_str) == Some(dst.pod) {
                let key = set
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                if ep.get("identity").and_then(Value::as_str) == Some(dst_id.as_str()) {
                    via.push(key);
                } else {
                    wrong_identity.push(key);
                }
            }
        }
    }
    out.push(if via.is_empty() {
        check(
            false,
            format!(
                "{}/{}'s proxy has no route to {}/{}: no TrafficTarget lets {src_id} reach it, or no Service selects it",
                src.namespace, src.pod, dst.namespace, dst.pod
            ),
        )
    } else {
        check(true, format!("{}/{}'s proxy routes to {}/{} through {}", src.namespace, src.pod, dst.namespace, dst.pod, via.join(", ")))
    });
    if !wrong_identity.is_empty() {
        out.push(check(
            false,
            format!(
                "endpoint {} is expected with an identity other than {dst_id}",
                wrong_identity.join(", ")
            ),
        ));
    }

    // Inbound: DST's proxy accepts SRC's identity on some port.
    let permissive = dst_config
        .pointer("/mesh/permissive")
        .and_then(Value::as_bool)
        == Some(true);
    let allowed: Vec<String> = dst_config
        .get("inbound")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|port| {
            let number = port.get("port").and_then(Value::as_u64).unwrap_or(0);
            port.get("authorizations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|a| {
                    a.get("sources")
                        .and_then(Value::as_array)
                        .is_some_and(|s| s.iter().any(|x| x.as_str() == Some(src_id.as_str())))
                })
                .map(move |a| {
                    format!(
                        "{} on port {number}",
                        a.get("name").and_then(Value::as_str).unwrap_or("?")
                    )
                })
        })
        .collect();
    out.push(if permissive {
        check(
            true,
            format!(
                "{}/{}'s proxy accepts every mesh identity (permissive mode)",
                dst.namespace, dst.pod
            ),
        )
    } else if allowed.is_empty() {
        check(
            false,
            format!(
                "{}/{}'s proxy accepts {src_id} on no port",
                dst.namespace, dst.pod
            ),
        )
    } else {
        check(
            true,
            format!(
                "{}/{}'s proxy accepts {src_id}: {}",
                dst.namespace,
                dst.pod,
                allowed.join(", ")
            ),
        )
    });
    out
}

/// `osm proxy get --local`: (status, body) from the pod's loopback.
pub fn get_local(
    target: &local::LocalTarget,
    namespace: &str,
    pod: &str,
    query: &str,
) -> anyhow::Result<(u16, String)> {
    let state = osm_local::state::StateDir::new(&target.state_dir);
    let instance = state.require_instance()?;
    let store = osm_local::store::Store::new(state.api(), state.api_lock());
    let value = store
        .get(&osm_local::store::Key::new("Pod", namespace, pod))?
        .ok_or_else(|| anyhow::anyhow!("pod {namespace}/{pod} not found"))?;
    let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(value)?;
    if !has_sidecar(&typed) {
        anyhow::bail!(
            "pod {namespace}/{pod} has no osm-proxy sidecar: is its namespace in the mesh?"
        );
    }
    let (port, path) = route(query);
    osm_local::netns_http::get(
        &instance.netns(namespace, pod),
        port,
        &path,
        std::time::Duration::from_secs(5),
    )
}

/// `osm proxy`: a sidecar's admin endpoints.
#[derive(Debug, clap::Subcommand)]
pub enum ProxyCommand {
    /// GET a query on a pod's proxy through the API server's port-forward:
    /// config_dump, certs, ready, live, logging (admin, 15000) or stats
    /// (metrics, 15010).
    Get {
        query: String,
        pod: String,
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// Write the answer to this file instead of standard output.
        #[arg(short = 'f', long)]
        file: Option<std::path::PathBuf>,
        #[command(flatten)]
        target: local::LocalTarget,
    },
}

impl ProxyCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let ProxyCommand::Get {
            query,
            pod,
            namespace,
            file,
            target,
        } = self;
        let (status, body) = if target.local {
            get_local(target, namespace, pod, query)?
        } else {
            let client = client().await?;
            get(&client, namespace, pod, query)
                .await
                .map_err(anyhow::Error::msg)?
        };
        match file {
            Some(path) => std::fs::write(path, &body)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
            None => crate::output::print(&body)?,
        }
        Ok(if (200..300).contains(&status) { 0 } else { 1 })
    }
}

#[cfg(test)]
mod tests;
