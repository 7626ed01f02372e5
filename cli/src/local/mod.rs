//! `osm local`: the commands of the whole mesh on one Linux machine (the
//! machinery, a single-node Kubernetes, is the `osm-local` crate).

pub mod describe;
pub mod get;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use osm_local::{
    api_server, daemon, demo, lifecycle, manifests, pods,
    state::{self, Instance, StateDir},
    store::Store,
};

/// Run the mesh on this machine: pods are network namespaces on a bridge,
/// containers are isolated processes (their own mount, UTS and IPC
/// namespaces, the host read-only, volumes at their mount paths, cgroup
/// limits), and the controller, injector, osm-init and osm-proxy are the
/// real binaries (found beside `osm`). Needs root, iproute2, iptables and
/// util-linux.
#[derive(Debug, Args)]
pub struct Local {
    /// Where the local mesh keeps its objects, certificates, logs and
    /// process ids.
    #[arg(long, global = true, env = "OSM_LOCAL_STATE_DIR", default_value = state::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,

    #[command(subcommand)]
    pub command: LocalCommand,
}

#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Start the controller, the injector and the runtime in the background;
    /// returns once they are ready. Running it again is harmless.
    Up(UpArgs),
    /// Stop everything and remove every network namespace, iptables rule,
    /// process and file local mode created.
    Down,
    /// Restart the local daemon (say after upgrading osm: the new binary
    /// takes over) without restarting pods: their processes, addresses and
    /// volumes stay, the new daemon adopts them. The controller and
    /// injector restart. A daemon that crashed adopts its pods the same
    /// way at the next `up`.
    Restart,
    /// Report whether the daemon, controller and injector are up, and how
    /// many pods are ready. Exits 1 when something is not.
    Status,
    /// Create or update the objects in files or directories (YAML or JSON;
    /// `-` reads standard input), in any order.
    Apply(FileArgs),
    /// Delete the objects the files name; a Namespace takes its objects.
    Delete(FileArgs),
    /// List objects as kubectl does: pods, services, deployments,
    /// namespaces, serviceaccounts, configmaps and the mesh's resources.
    Get(GetArgs),
    /// What kubectl describe says of a pod: each container's state, how
    /// its last run ended (exit code), readiness, restarts, the pod's
    /// conditions and its events (probe failures, back-offs, starts).
    Describe(DescribeArgs),
    /// Print a container's log.
    Logs(LogsArgs),
    /// Run a command inside a pod's container (its namespaces, filesystem,
    /// user and environment), with its names and its traffic intercepted
    /// as the app's is; exits with the command's code.
    Exec(ExecArgs),
    /// Bring the bookstore demo up in SMI mode (starting local mode if
    /// needed) and show live counters from each app. Needs redis-server.
    Demo(DemoArgs),
    /// Test mesh policies in one command (a CI step without a cluster): a
    /// fresh local mesh of its own, the manifests applied, every pod ready
    /// and every proxy in sync, then each expected connection tried from
    /// a pod of its workload; prints the table, tears the mesh down and
    /// exits 1 when an expectation is not met.
    Test(TestArgs),
    /// (internal) The background process `up` starts.
    #[command(hide = true)]
    Daemon,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Prefix of the bridge, network namespaces and iptables chains (1-6
    /// lowercase letters or digits); fixed at the first `up`.
    #[arg(long)]
    pub name: Option<String>,
    /// Pod addresses (the gateway, where the control plane listens, is the
    /// first).
    #[arg(long)]
    pub pod_cidr: Option<ipnet::Ipv4Net>,
    /// Service virtual IPs.
    #[arg(long)]
    pub service_cidr: Option<ipnet::Ipv4Net>,
    /// Add-ons to run beside the control plane (comma-separated):
    /// `prometheus` (Debian's package; scrapes every sidecar and the
    /// controller, at <gateway>:7070). Kept until `down`.
    #[arg(long = "with", value_delimiter = ',')]
    pub with: Vec<osm_local::addons::Addon>,
    /// Let pods mount hostPath volumes (this machine's files, writable
    /// unless the mount says readOnly; never local mode's state
    /// directory). Refused by default; kept until `down`.
    #[arg(long)]
    pub allow_host_path: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop showing counters after this long (e.g. 30s); the demo keeps
    /// running. Default: until interrupted.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Only show the counters of the running demo (apply nothing, so
    /// policy and split changes made since stay).
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// A file, a directory (read recursively) or `-`; repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// The namespace of objects that name none.
    #[arg(short, long)]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// pods, services, deployments, namespaces, ... (singular, plural or
    /// short names); `trafficmetrics` (SMI TrafficMetrics from the
    /// sidecars: every deployment of the namespace, or the edges of
    /// `deployment/NAME`, `pod/NAME` or `namespace/NAME`; `-A`: every
    /// namespace).
    pub resource: String,
    pub name: Option<String>,
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// wide, yaml or json.
    #[arg(short, long)]
    pub output: Option<String>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Manifests: a file, a directory (read recursively); repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// The expected connections: a YAML list of `from:
    /// NAMESPACE/DEPLOYMENT` (or `NAMESPACE/pod/NAME`), `to: http://...`,
    /// `method:` (default GET) and `expect: allowed | denied | STATUS`
    /// (allowed: any answer but 403; denied: 403 or no answer).
    #[arg(long)]
    pub expect: PathBuf,
    /// The test mesh's name (bridge, network namespaces, iptables
    /// chains): apart from `osm local up`'s so both can run.
    #[arg(long, default_value = "osmci")]
    pub name: String,
    #[arg(long, default_value = "10.243.0.0/16")]
    pub pod_cidr: ipnet::Ipv4Net,
    #[arg(long, default_value = "10.244.0.0/16")]
    pub service_cidr: ipnet::Ipv4Net,
    /// How long the pods may take to get ready and the proxies to get in
    /// sync.
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// How long a connection is retried until it meets its expectation.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub settle: std::time::Duration,
    /// Leave the test mesh up afterwards (its state directory is printed).
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// pod (pods, po): the only kind described.
    pub resource: String,
    pub name: String,
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// POD or deploy/NAME.
    pub target: String,
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    #[arg(short, long)]
    pub container: Option<String>,
    /// Keep printing what the container writes.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// POD or deploy/NAME.
    pub target: String,
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    #[arg(short, long)]
    pub container: Option<String>,
    /// Accepted for kubectl compatibility: standard input is always passed.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Accepted for kubectl compatibility.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

fn print_results(results: Vec<Result<String, String>>) -> i32 {
    let mut code = 0;
    for r in results {
        match r {
            Ok(line) => println!("{line}"),
            Err(line) => {
                eprintln!("{line}");
                code = 1;
            }
        }
    }
    code
}

fn checked(args: &FileArgs) -> anyhow::Result<Vec<manifests::Checked>> {
    let docs = manifests::read_inputs(&args.files)?;
    let outcome = manifests::check(docs, args.namespace.as_deref());
    for w in &outcome.warnings {
        eprintln!("Warning: {w}");
    }
    if !outcome.errors.is_empty() {
        anyhow::bail!(
            "nothing was applied; fix these first:\n  {}",
            outcome.errors.join("\n  ")
        );
    }
    Ok(outcome.objects)
}

/// Runs a local-mode command; the process exit code.
pub async fn run(local: Local) -> anyhow::Result<i32> {
    let state = StateDir::new(&local.state_dir);
    match local.command {
        LocalCommand::Up(args) => {
            let requested =
                if args.name.is_some() || args.pod_cidr.is_some() || args.service_cidr.is_some() {
                    let d = state.load_instance()?.unwrap_or_default();
                    Some(Instance {
                        name: args.name.unwrap_or(d.name),
                        pod_cidr: args.pod_cidr.unwrap_or(d.pod_cidr),
                        service_cidr: args.service_cidr.unwrap_or(d.service_cidr),
                    })
                } else {
                    None
                };
            lifecycle::up(&state, requested, args.with).await?;
            if args.allow_host_path {
                state.allow_host_path()?;
                println!(
                    "hostPath volumes are allowed in this local mesh (until `osm local down`)"
                );
            }
            Ok(0)
        }
        LocalCommand::Down => {
            lifecycle::down(&state).await?;
            Ok(0)
        }
        LocalCommand::Restart => {
            lifecycle::restart(&state).await?;
            Ok(0)
        }
        LocalCommand::Status => Ok(if lifecycle::status(&state).await? {
            0
        } else {
            1
        }),
        LocalCommand::Apply(args) => {
            let objects = checked(&args)?;
            let api = api_server(&state)?;
            for warning in osm_local::route_status::conflicts(&api.store, &objects)? {
                eprintln!("Warning: {warning}");
            }
            Ok(print_results(api.apply(&objects).await))
        }
        LocalCommand::Delete(args) => {
            let objects = checked(&args)?;
            let api = api_server(&state)?;
            Ok(print_results(api.delete(&objects)))
        }
        LocalCommand::Get(args)
            if ["trafficmetrics", "trafficmetric", "tm"].contains(&args.resource.as_str()) =>
        {
            state.require_instance()?;
            let store = Store::new(state.api(), state.api_lock());
            let requests = osm_local::traffic_metrics::collect(&store).await?;
            let list = if args.all_namespaces {
                osm_api::traffic_metrics::traffic_metrics(
                    &requests,
                    osm_api::traffic_metrics::Kind::Namespace,
                    "",
                    None,
                    false,
                    &humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                    "since the proxies started",
                )
            } else {
                osm_local::traffic_metrics::query(&requests, &args.namespace, args.name.as_deref())
                    .map_err(anyhow::Error::msg)?
            };
            let text = match args.output.as_deref() {
                None | Some("wide") => osm_local::traffic_metrics::table(&list),
                Some("json") => format!("{}\n", serde_json::to_string_pretty(&list)?),
                Some("yaml") => serde_yaml_ng::to_string(&list)?,
                Some(other) => anyhow::bail!(
                    "error: unable to match a printer for output format {other:?} (use yaml or json)"
                ),
            };
            crate::output::print(&text)?;
            Ok(0)
        }
        LocalCommand::Get(args) => {
            state.require_instance()?;
            let store = Store::new(state.api(), state.api_lock());
            let text = get::get(
                &store,
                &get::Query {
                    resource: args.resource,
                    name: args.name,
                    namespace: args.namespace,
                    all_namespaces: args.all_namespaces,
                    output: args.output,
                },
            )?;
            crate::output::print(&text)?;
            Ok(0)
        }
        LocalCommand::Test(args) => {
            let plan = osm_local::mesh_test::Plan {
                manifests: args.files,
                expectations: args.expect,
                instance: Instance {
                    name: args.name,
                    pod_cidr: args.pod_cidr,
                    service_cidr: args.service_cidr,
                },
                ready_timeout: args.timeout,
                settle: args.settle,
                keep: args.keep,
            };
            Ok(if osm_local::mesh_test::run(&plan).await? {
                0
            } else {
                1
            })
        }
        LocalCommand::Describe(args) => {
            state.require_instance()?;
            if get::kind_of(&args.resource) != Some("Pod") {
                anyhow::bail!(
                    "error: osm local describes pods only (osm local describe pod NAME); \
                     use `osm local get {} -o yaml` for the rest",
                    args.resource
                );
            }
            let store = Store::new(state.api(), state.api_lock());
            let key = osm_local::store::Key::new("Pod", &args.namespace, &args.name);
            let pod = store.get(&key)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "Error from server (NotFound): pods \"{}\" not found in namespace {}",
                    args.name,
                    args.namespace
                )
            })?;
            let all = store.list()?;
            let uid = pod
                .pointer("/metadata/uid")
                .and_then(serde_json::Value::as_str);
            let events: Vec<&serde_json::Value> = all
                .iter()
                .filter(|s| s.key.kind == "Event" && s.key.namespace == args.namespace)
                .map(|s| &s.value)
                .filter(|e| {
                    e.pointer("/involvedObject/name")
                        .and_then(serde_json::Value::as_str)
                        == Some(args.name.as_str())
                        && e.pointer("/involvedObject/uid")
                            .and_then(serde_json::Value::as_str)
                            == uid
                })
                .collect();
            let text = describe::describe_pod(&pod, &events, std::time::SystemTime::now());
            crate::output::print(&text)?;
            Ok(0)
        }
        LocalCommand::Logs(args) => {
            state.require_instance()?;
            pods::logs(
                &state,
                &args.namespace,
                &args.target,
                args.container.as_deref(),
                args.follow,
                args.tail,
            )
            .await?;
            Ok(0)
        }
        LocalCommand::Exec(args) => {
            let instance = state.require_instance()?;
            pods::exec(
                &state,
                &instance,
                &args.namespace,
                &args.target,
                args.container.as_deref(),
                &args.command,
            )
        }
        LocalCommand::Demo(args) => {
            demo::run(&state, args.duration, args.watch).await?;
            Ok(0)
        }
        LocalCommand::Daemon => {
            osm_serve::init_logging(
                &std::env::var("OSM_LOCAL_LOG").unwrap_or_else(|_| "info".into()),
            )
            .map_err(anyhow::Error::msg)?;
            daemon::run(state).await?;
            Ok(0)
        }
    }
}
