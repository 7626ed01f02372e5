//! `osm policy check-pods SRC DST`: whether the mesh lets one pod's
//! traffic reach another, and which TrafficTarget and routes allow it. The
//! answer comes from the policy compiler itself (the destination proxy's
//! inbound config, as the controller would send it), so it cannot
//! disagree with enforcement.

use std::io::Write;

use kube::{
    Api, Client,
    api::{DynamicObject, ListParams},
};
use osm_api::{
    compile::{Index, MeshOptions, ProxyId, compile, spiffe_id},
    v1,
};
use osm_controller::sources::kubernetes::{convert, watched_kinds};

use super::{client, code, local};

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub lines: Vec<String>,
}

/// `namespace/name`, or a name in `default_ns`.
pub fn parse_pod_ref(text: &str, default_ns: &str) -> Result<(String, String), String> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        None if !text.is_empty() => Ok((default_ns.to_string(), text.to_string())),
        _ => Err(format!("{text:?} is not a pod: write NAMESPACE/POD")),
    }
}

/// The verdict for SRC -> DST over the objects of the cluster (pure).
pub fn check(
    index: &Index,
    src: &(String, String),
    dst: &(String, String),
) -> Result<Verdict, String> {
    let pod = |(ns, name): &(String, String)| {
        index
            .pods
            .get(&(ns.clone(), name.clone()))
            .ok_or_else(|| format!("pod {ns}/{name} not found"))
    };
    let (src_pod, dst_pod) = (pod(src)?, pod(dst)?);
    let src_sa = osm_api::k8s::service_account(src_pod);
    let dst_sa = osm_api::k8s::service_account(dst_pod);
    let who = format!("{}/{} (ServiceAccount {}/{src_sa})", src.0, src.1, src.0);
    let whom = format!("{}/{} (ServiceAccount {}/{dst_sa})", dst.0, dst.1, dst.0);
    let mesh = &index.mesh.mesh_name;
    if !index.is_monitored(&dst.0) {
        return Ok(Verdict {
            allowed: false,
            lines: vec![format!(
                "{whom} is not in mesh [{mesh}]: meshed pods reach it only through egress \
                 (MeshConfig traffic.enableEgress, or an Egress policy)"
            )],
        });
    }
    if !index.is_monitored(&src.0) {
        return Ok(Verdict {
            allowed: false,
            lines: vec![format!(
                "{who} is not in mesh [{mesh}]: it has no mesh identity, and {whom} accepts only mTLS from the mesh \
                 (unless an IngressBackend lists it)"
            )],
        });
    }
    if index.mesh.permissive {
        return Ok(Verdict {
            allowed: true,
            lines: vec![format!(
                "{who} may reach {whom}: the mesh is in permissive mode (every mesh identity may reach every port)"
            )],
        });
    }
    let id = spiffe_id(&index.mesh.trust_domain, &src.0, src_sa);
    let compiled = compile(
        index,
        &ProxyId {
            namespace: dst.0.clone(),
            pod: dst.1.clone(),
        },
    )
    .map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for port in &compiled.config.inbound {
        for authz in port
            .authorizations
            .iter()
            .filter(|a| a.sources.contains(&id))
        {
            let routes = match &authz.traffic {
                Some(v1::authorization::Traffic::Http(http)) => {
                    let names: Vec<&str> = http.matches.iter().map(|m| m.name.as_str()).collect();
                    format!("HTTP routes {}", names.join(", "))
                }
                _ => "all traffic".to_string(),
            };
            lines.push(format!(
                "port {}: TrafficTarget {} allows {routes}",
                port.port, authz.name
            ));
        }
    }
    if lines.is_empty() {
        return Ok(Verdict {
            allowed: false,
            lines: vec![format!(
                "{who} may not reach {whom}: no TrafficTarget in namespace {} names ServiceAccount {}/{src_sa} \
                 as a source for destination {dst_sa}",
                dst.0, src.0
            )],
        });
    }
    lines.insert(0, format!("{who} may reach {whom}:"));
    Ok(Verdict {
        allowed: true,
        lines,
    })
}

/// What `check` needs from the cluster: namespaces, the two pods, the
/// destination namespace's Services, the SMI and policy resources, and the
/// MeshConfig.
pub async fn snapshot(
    client: Client,
    src: &(String, String),
    dst: &(String, String),
    mesh: MeshOptions,
) -> Result<Index, String> {
    let mut index = Index::new(mesh);
    for watched in watched_kinds() {
        let kind = watched.resource.kind.as_str();
        let objects: Vec<DynamicObject> = match kind {
            "Pod" => {
                let mut out = Vec::new();
                for (ns, name) in [src, dst] {
                    let api: Api<DynamicObject> =
                        Api::namespaced_with(client.clone(), ns, &watched.resource);
                    match api.get_opt(name).await {
                        Ok(Some(p)) => out.push(p),
                        Ok(None) => return Err(format!("pod {ns}/{name} not found")),
                        Err(e) => return Err(format!("pod {ns}/{name}: {e}")),
                    }
                }
                out
            }
            "EndpointSlice" => continue,
            _ => {
                let api: Api<DynamicObject> = if kind == "Service" {
                    Api::namespaced_with(client.clone(), &dst.0, &watched.resource)
                } else {
                    Api::all_with(client.clone(), &watched.resource)
                };
                match api.list(&ListParams::default()).await {
                    Ok(list) => list.items,
                    // A mesh CRD this cluster does not have.
                    Err(kube::Error::Api(s)) if s.code == 404 && watched.custom => Vec::new(),
                    Err(e) => return Err(format!("listing {kind}: {e}")),
                }
            }
        };
        for object in &objects {
            match convert(&watched, object) {
                Ok(o) => {
                    let _ = index.apply(o);
                }
                Err(e) => tracing::debug!(kind, error = %e, "skipped"),
            }
        }
    }
    Ok(index)
}

/// `osm policy check-pods`: exit 0 when allowed, 1 when not.
pub async fn check_pods(
    client: Client,
    out: &mut impl Write,
    src: &str,
    dst: &str,
    mesh: MeshOptions,
) -> anyhow::Result<bool> {
    let src = parse_pod_ref(src, "default").map_err(anyhow::Error::msg)?;
    let dst = parse_pod_ref(dst, "default").map_err(anyhow::Error::msg)?;
    let index = snapshot(client, &src, &dst, mesh)
        .await
        .map_err(anyhow::Error::msg)?;
    print_verdict(&index, &src, &dst, out)
}

/// Prints the verdict for SRC -> DST; whether it is allowed.
fn print_verdict(
    index: &Index,
    src: &(String, String),
    dst: &(String, String),
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let verdict = check(index, src, dst).map_err(anyhow::Error::msg)?;
    for line in &verdict.lines {
        writeln!(out, "{line}")?;
    }
    Ok(verdict.allowed)
}

/// `osm policy check-pods --local`.
pub fn check_pods_local(
    target: &local::LocalTarget,
    out: &mut impl Write,
    src: &str,
    dst: &str,
    mesh: MeshOptions,
) -> anyhow::Result<bool> {
    let src = parse_pod_ref(src, "default").map_err(anyhow::Error::msg)?;
    let dst = parse_pod_ref(dst, "default").map_err(anyhow::Error::msg)?;
    let index = local::index(&target.store()?, mesh)?;
    print_verdict(&index, &src, &dst, out)
}

/// `osm policy`: what the mesh's policy allows.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Whether SRC may send traffic to DST (NAMESPACE/POD each), and which
    /// TrafficTarget and routes allow it; exits 1 when it may not.
    CheckPods {
        source: String,
        destination: String,
        #[arg(long, default_value = "osm")]
        mesh_name: String,
        /// Where osm-mesh-config lives.
        #[arg(long, default_value = "osm-system")]
        osm_namespace: String,
        #[command(flatten)]
        target: local::LocalTarget,
    },
}

impl PolicyCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let PolicyCommand::CheckPods {
            source,
            destination,
            mesh_name,
            osm_namespace,
            target,
        } = self;
        let mesh = osm_api::compile::MeshOptions {
            mesh_name: mesh_name.clone(),
            osm_namespace: osm_namespace.clone(),
            ..Default::default()
        };
        if target.local {
            let allowed =
                check_pods_local(target, &mut std::io::stdout(), source, destination, mesh)?;
            return Ok(code(allowed));
        }
        let client = client().await?;
        let allowed = check_pods(client, &mut std::io::stdout(), source, destination, mesh).await?;
        Ok(code(allowed))
    }
}

#[cfg(test)]
mod tests;
