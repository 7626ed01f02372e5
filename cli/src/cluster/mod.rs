//! The mesh on a Kubernetes cluster: `osm install`, `mesh`, `uninstall`,
//! `namespace`, `metrics` and `policy`.

pub mod chart;
pub mod install;
pub mod kinds;
pub mod local;
pub mod metrics;
pub mod namespace;
pub mod policy;
pub mod proxy;
pub mod support;

pub mod values;

use clap::Args;

/// Install the mesh's control plane: the chart in deploy/chart/osm,
/// rendered with its values and `--set` overrides, applied server-side;
/// waits until the controller and the injector are ready.
#[derive(Debug, Args)]
pub struct Install {
    /// The mesh's name (namespaces labelled
    /// openservicemesh.io/monitored-by=<name> join it).
    #[arg(long, default_value = "osm")]
    pub mesh_name: String,
    /// The control plane's namespace.
    #[arg(long, default_value = "osm-system")]
    pub osm_namespace: String,
    /// A chart value, key=value (repeatable): osm.controller.replicas=2,
    /// osm.enablePermissiveTrafficPolicy=false, ...
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print the manifests instead of applying them.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for the control plane to be ready.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

/// The chart rendered for a mesh name, namespace and `--set` values.
fn manifests(mesh_name: &str, namespace: &str, set: &[String]) -> anyhow::Result<String> {
    let mut values = chart::default_values().map_err(anyhow::Error::msg)?;
    values::set(&mut values, &format!("osm.meshName={mesh_name}")).map_err(anyhow::Error::msg)?;
    for assignment in set {
        values::set(&mut values, assignment).map_err(anyhow::Error::msg)?;
    }
    chart::render(&values, namespace).map_err(|e| anyhow::anyhow!("rendering the chart: {e}"))
}

impl Install {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let manifests = manifests(&self.mesh_name, &self.osm_namespace, &self.set)?;
        if self.dry_run {
            crate::output::print(&manifests)?;
            return Ok(0);
        }
        let client = client().await?;
        let existing = install::installed(&client, &self.mesh_name)
            .await
            .map_err(anyhow::Error::msg)?;
        if let Some(ns) = existing.first() {
            anyhow::bail!(
                "mesh [{}] is already installed in namespace [{ns}]: upgrade it with `osm mesh upgrade`, \
                 or choose another --mesh-name",
                self.mesh_name
            );
        }
        let mut out = std::io::stdout();
        install::apply(&client, &mut out, &manifests, &self.osm_namespace)
            .await
            .map_err(anyhow::Error::msg)?;
        install::wait_ready(
            &client,
            &mut out,
            &self.osm_namespace,
            self.timeout,
            std::time::Duration::from_secs(2),
        )
        .await
        .map_err(anyhow::Error::msg)?;
        println!(
            "OSM installed successfully in namespace [{}] with mesh name [{}]; add namespaces with `osm namespace add NS`",
            self.osm_namespace, self.mesh_name
        );
        Ok(0)
    }
}

/// `osm mesh`: the meshes of the cluster.
#[derive(Debug, clap::Subcommand)]
pub enum MeshCommand {
    /// List every mesh installed: name, namespace, version, readiness.
    List,
    /// Re-apply the chart of this osm version to an installed mesh (values
    /// are not carried over: pass the same --set as at install).
    Upgrade {
        #[arg(long, default_value = "osm")]
        mesh_name: String,
        #[arg(long, default_value = "osm-system")]
        osm_namespace: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

impl MeshCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let client = client().await?;
        let mut out = std::io::stdout();
        match self {
            MeshCommand::List => {
                install::list(&client, &mut out)
                    .await
                    .map_err(anyhow::Error::msg)?;
            }
            MeshCommand::Upgrade {
                mesh_name,
                osm_namespace,
                set,
                timeout,
            } => {
                let manifests = manifests(mesh_name, osm_namespace, set)?;
                install::upgrade(
                    &client,
                    &mut out,
                    &manifests,
                    mesh_name,
                    osm_namespace,
                    *timeout,
                    std::time::Duration::from_secs(2),
                )
                .await
                .map_err(anyhow::Error::msg)?;
                println!("mesh [{mesh_name}] upgraded");
            }
        }
        Ok(0)
    }
}

/// `osm uninstall mesh`.
#[derive(Debug, clap::Subcommand)]
pub enum UninstallCommand {
    /// Remove a mesh's control plane. CRDs and the CA's Secrets stay unless
    /// --delete-cluster-wide-resources (their loss drops every SMI object and
    /// every workload identity).
    #[command(visible_aliases = ["delete", "del"])]
    Mesh {
        #[arg(long, default_value = "osm")]
        mesh_name: String,
        #[arg(long, default_value = "osm-system")]
        osm_namespace: String,
        /// Also the CRDs (and every SMI and policy object with them) and the
        /// Secrets osm-ca-bundle and osm-injector-tls.
        #[arg(short = 'a', long)]
        delete_cluster_wide_resources: bool,
        /// Also the control plane's namespace.
        #[arg(long)]
        delete_namespace: bool,
    },
}

impl UninstallCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let UninstallCommand::Mesh {
            mesh_name,
            osm_namespace,
            delete_cluster_wide_resources,
            delete_namespace,
        } = self;
        let client = client().await?;
        let existing = install::installed(&client, mesh_name)
            .await
            .map_err(anyhow::Error::msg)?;
        if !existing.contains(osm_namespace) {
            anyhow::bail!(
                "no mesh [{mesh_name}] in namespace [{osm_namespace}] (see `osm mesh list`)"
            );
        }
        let manifests = manifests(mesh_name, osm_namespace, &[])?;
        install::uninstall(
            &client,
            &mut std::io::stdout(),
            &manifests,
            osm_namespace,
            *delete_cluster_wide_resources,
            *delete_namespace,
        )
        .await
        .map_err(anyhow::Error::msg)?;
        println!("mesh [{mesh_name}] uninstalled from namespace [{osm_namespace}]");
        Ok(0)
    }
}

/// A client for the cluster the kubeconfig (or the pod's service account)
/// points at.
pub async fn client() -> anyhow::Result<kube::Client> {
    kube::Client::try_default().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach a Kubernetes cluster ({e}): set KUBECONFIG or the current context, \
             or try the mesh on this machine with `osm local demo`"
        )
    })
}

/// `osm namespace`: which namespaces are in a mesh.
#[derive(Debug, clap::Subcommand)]
pub enum NamespaceCommand {
    /// Put namespaces in the mesh: new pods get a sidecar (unless
    /// --disable-sidecar-injection) and their traffic is governed by it.
    Add {
        #[arg(required = true)]
        namespaces: Vec<String>,
        #[arg(long, default_value = "osm")]
        mesh_name: String,
        /// The control plane's namespace, which can never join.
        #[arg(long, default_value = "osm-system")]
        osm_namespace: String,
        /// Monitor the namespace without injecting sidecars.
        #[arg(long)]
        disable_sidecar_injection: bool,
        #[command(flatten)]
        target: local::LocalTarget,
    },
    /// Take a namespace out of the mesh (running pods keep their sidecar
    /// until restarted).
    Remove {
        namespace: String,
        #[arg(long, default_value = "osm")]
        mesh_name: String,
        #[command(flatten)]
        target: local::LocalTarget,
    },
    /// List the namespaces in a mesh (every mesh without --mesh-name).
    List {
        #[arg(long)]
        mesh_name: Option<String>,
        #[command(flatten)]
        target: local::LocalTarget,
    },
    /// Keep namespaces out of every mesh (label openservicemesh.io/ignore).
    Ignore {
        #[arg(required = true)]
        namespaces: Vec<String>,
        #[command(flatten)]
        target: local::LocalTarget,
    },
}

/// `osm metrics`: Prometheus scraping of the sidecars of a namespace.
#[derive(Debug, clap::Subcommand)]
pub enum MetricsCommand {
    /// Annotate namespaces so new pods are scraped.
    Enable {
        #[arg(long = "namespace", short = 'n', required = true, num_args = 1..)]
        namespaces: Vec<String>,
    },
    /// Stop annotating new pods of namespaces for scraping.
    Disable {
        #[arg(long = "namespace", short = 'n', required = true, num_args = 1..)]
        namespaces: Vec<String>,
    },
}

fn code(ok: bool) -> i32 {
    if ok { 0 } else { 1 }
}

impl NamespaceCommand {
    fn local_target(&self) -> &local::LocalTarget {
        match self {
            NamespaceCommand::Add { target, .. }
            | NamespaceCommand::Remove { target, .. }
            | NamespaceCommand::List { target, .. }
            | NamespaceCommand::Ignore { target, .. } => target,
        }
    }

    fn run_local(&self) -> anyhow::Result<i32> {
        let target = self.local_target();
        let (names, change): (Vec<&String>, local::NamespaceChange<'_>) = match self {
            NamespaceCommand::List { mesh_name, .. } => {
                local::list_namespaces(target, &mut std::io::stdout(), mesh_name.as_deref())?;
                return Ok(0);
            }
            NamespaceCommand::Add {
                namespaces,
                mesh_name,
                disable_sidecar_injection,
                ..
            } => (
                namespaces.iter().collect(),
                local::NamespaceChange::Add {
                    mesh: mesh_name,
                    disable_injection: *disable_sidecar_injection,
                },
            ),
            NamespaceCommand::Remove {
                namespace,
                mesh_name,
                ..
            } => (
                vec![namespace],
                local::NamespaceChange::Remove { mesh: mesh_name },
            ),
            NamespaceCommand::Ignore { namespaces, .. } => {
                (namespaces.iter().collect(), local::NamespaceChange::Ignore)
            }
        };
        let mut ok = true;
        for name in names {
            match local::change_namespace(target, name, &change)? {
                Ok(line) => println!("{line}"),
                Err(e) => {
                    println!("{e}");
                    ok = false;
                }
            }
        }
        Ok(code(ok))
    }

    pub async fn run(&self) -> anyhow::Result<i32> {
        if self.local_target().local {
            return self.run_local();
        }
        let client = client().await?;
        let mut out = std::io::stdout();
        Ok(match self {
            NamespaceCommand::Add {
                namespaces,
                mesh_name,
                osm_namespace,
                disable_sidecar_injection,
                ..
            } => code(
                namespace::add(
                    client,
                    &mut out,
                    namespaces,
                    mesh_name,
                    osm_namespace,
                    *disable_sidecar_injection,
                )
                .await?,
            ),
            NamespaceCommand::Remove {
                namespace: ns,
                mesh_name,
                ..
            } => code(namespace::remove(client, &mut out, ns, mesh_name).await?),
            NamespaceCommand::List { mesh_name, .. } => {
                namespace::list(client, &mut out, mesh_name.as_deref())
                    .await
                    .map_err(anyhow::Error::msg)?;
                0
            }
            NamespaceCommand::Ignore { namespaces, .. } => {
                code(namespace::ignore(client, &mut out, namespaces).await?)
            }
        })
    }
}

impl MetricsCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let client = client().await?;
        let mut out = std::io::stdout();
        let (namespaces, enable) = match self {
            MetricsCommand::Enable { namespaces } => (namespaces, true),
            MetricsCommand::Disable { namespaces } => (namespaces, false),
        };
        Ok(code(
            metrics::set(client, &mut out, namespaces, enable).await?,
        ))
    }
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
                local::check_pods(target, &mut std::io::stdout(), source, destination, mesh)?;
            return Ok(code(allowed));
        }
        let client = client().await?;
        let allowed =
            policy::check_pods(client, &mut std::io::stdout(), source, destination, mesh).await?;
        Ok(code(allowed))
    }
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
            local::proxy_get(target, namespace, pod, query)?
        } else {
            let client = client().await?;
            proxy::get(&client, namespace, pod, query)
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

/// `osm verify`: checks of a running mesh.
#[derive(Debug, clap::Subcommand)]
pub enum VerifyCommand {
    /// Whether traffic from one pod can reach another: both proxies hold a
    /// config, the source routes to the destination pod with its identity,
    /// and the destination accepts the source's identity. Exits 1 when not.
    Connectivity {
        /// NAMESPACE/POD
        #[arg(long)]
        from_pod: String,
        /// NAMESPACE/POD
        #[arg(long)]
        to_pod: String,
    },
}

impl VerifyCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let VerifyCommand::Connectivity { from_pod, to_pod } = self;
        let src = policy::parse_pod_ref(from_pod, "default").map_err(anyhow::Error::msg)?;
        let dst = policy::parse_pod_ref(to_pod, "default").map_err(anyhow::Error::msg)?;
        let client = client().await?;
        let mut sides = Vec::new();
        for (ns, name) in [&src, &dst] {
            let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
                kube::Api::namespaced(client.clone(), ns);
            let pod = pods
                .get_opt(name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("pod {ns}/{name} not found"))?;
            let sa = pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into());
            let (_, body) = proxy::get(&client, ns, name, "config_dump")
                .await
                .map_err(anyhow::Error::msg)?;
            let dump: serde_json::Value = serde_json::from_str(&body)
                .map_err(|e| anyhow::anyhow!("{ns}/{name}: the config dump is not JSON: {e}"))?;
            sides.push((sa, dump));
        }
        let from = proxy::Side {
            namespace: &src.0,
            pod: &src.1,
            service_account: &sides[0].0,
            dump: &sides[0].1,
        };
        let to = proxy::Side {
            namespace: &dst.0,
            pod: &dst.1,
            service_account: &sides[1].0,
            dump: &sides[1].1,
        };
        let checks = proxy::verify(&from, &to);
        for c in &checks {
            println!("[{}] {}", if c.ok { "ok" } else { "FAILED" }, c.text);
        }
        Ok(code(checks.iter().all(|c| c.ok)))
    }
}

/// `osm support`: help for maintainers.
#[derive(Debug, clap::Subcommand)]
pub enum SupportCommand {
    /// Gather versions, meshes, meshed namespaces, the control plane's pods
    /// and logs, and every SMI and policy object into a .tar.gz (never a
    /// Secret).
    BugReport {
        /// The archive to write.
        #[arg(short = 'o', long, default_value = "osm-bug-report.tar.gz")]
        out_file: std::path::PathBuf,
    },
}

impl SupportCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let SupportCommand::BugReport { out_file } = self;
        let client = client().await?;
        let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> = kube::Api::all(client.clone());
        let mut namespaces: Vec<String> = api
            .list(&kube::api::ListParams::default().labels("app=osm-controller"))
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter_map(|d| d.metadata.namespace.clone())
                    .collect()
            })
            .unwrap_or_default();
        namespaces.sort();
        namespaces.dedup();
        if namespaces.is_empty() {
            namespaces.push("osm-system".into());
        }
        let files = support::collect(&client, &namespaces).await;
        support::write_archive(out_file, "osm-bug-report", &files)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out_file.display()))?;
        println!(
            "bug report written to {} ({} files)",
            out_file.display(),
            files.len()
        );
        Ok(0)
    }
}

/// `osm dashboard`: Grafana on localhost, through the API server.
#[derive(Debug, clap::Args)]
pub struct Dashboard {
    /// Where Grafana runs (a pod labelled app.kubernetes.io/name=grafana).
    #[arg(short, long, default_value = "osm-system")]
    pub namespace: String,
    /// The local port.
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
}

/// The name of a Grafana pod in `namespace`.
pub async fn grafana_pod(client: &kube::Client, namespace: &str) -> Result<String, String> {
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/name=grafana"))
        .await
        .map_err(|e| format!("looking for Grafana in {namespace}: {e}"))?;
    list.items
        .iter()
        .find_map(|p| p.metadata.name.clone())
        .ok_or_else(|| {
            format!(
                "no Grafana pod (label app.kubernetes.io/name=grafana) in namespace {namespace}: install Grafana \
                 with its dashboard sidecar (the chart ships the dashboards as the ConfigMap osm-grafana-dashboards), \
                 or pass --namespace"
            )
        })
}

impl Dashboard {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let client = client().await?;
        let pod = grafana_pod(&client, &self.namespace)
            .await
            .map_err(anyhow::Error::msg)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e} (try --port)", self.port)
            })?;
        println!(
            "Grafana ({}/{pod}) at http://127.0.0.1:{}/ — dashboards \"OSM: ...\"; Ctrl-C to stop",
            self.namespace, self.port
        );
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(client, &self.namespace);
        loop {
            let (mut local, _) = tokio::select! {
                accepted = listener.accept() => accepted?,
                () = osm_serve::shutdown_signal() => return Ok(0),
            };
            let pods = pods.clone();
            let pod = pod.clone();
            tokio::spawn(async move {
                let forwarded = async {
                    let mut forwarder = pods
                        .portforward(&pod, &[3000])
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut remote = forwarder.take_stream(3000).ok_or("no stream")?;
                    tokio::io::copy_bidirectional(&mut local, &mut remote)
                        .await
                        .map_err(|e| e.to_string())?;
                    forwarder.abort();
                    Ok::<(), String>(())
                };
                if let Err(e) = forwarded.await {
                    eprintln!("port-forward to {pod}: {e}");
                }
            });
        }
    }
}

/// `osm version`: the CLI's, and each installed mesh's.
#[derive(Debug, clap::Args)]
pub struct Version {
    /// Only the CLI's version (do not contact the cluster).
    #[arg(long)]
    pub client_only: bool,
}

impl Version {
    pub async fn run(&self) -> anyhow::Result<i32> {
        println!("osm {}", env!("CARGO_PKG_VERSION"));
        if self.client_only {
            return Ok(0);
        }
        let reached = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let client = client().await.map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            install::list(&client, &mut out).await?;
            Ok::<_, String>(String::from_utf8_lossy(&out).into_owned())
        })
        .await;
        match reached {
            Ok(Ok(meshes)) => crate::output::print(&meshes)?,
            Ok(Err(e)) => eprintln!("meshes: unknown ({e})"),
            Err(_) => eprintln!("meshes: unknown (the cluster did not answer within 5 s)"),
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use osm_controller::kubernetes::fake::FakeApi;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn the_dashboard_finds_grafana_or_says_how_to_get_it() {
        let fake = FakeApi::new();
        let err = grafana_pod(&fake.client(), "osm-system").await.unwrap_err();
        assert!(
            err.contains("no Grafana pod") && err.contains("osm-grafana-dashboards"),
            "{err}"
        );
        fake.put(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "grafana-0", "namespace": "osm-system", "labels": {"app.kubernetes.io/name": "grafana"}}}));
        assert_eq!(
            grafana_pod(&fake.client(), "osm-system").await.unwrap(),
            "grafana-0"
        );
    }
}
