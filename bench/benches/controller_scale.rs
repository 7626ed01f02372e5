//! The controller at scale: simulated proxies (1,000 and 10,000 with
//! `--bench`; 20 when run as a test) against one controller process.
//!
//! The controller runs in a child process (this same binary with
//! `--serve-controller`), so its memory is its own. Each simulated proxy
//! does what osm-proxy does: makes a key and a CSR, gets certified with its
//! pod's token, opens its own TLS connection and `Config.Stream`, and
//! acknowledges every batch. Reported: certificates signed per second,
//! controller memory with every stream open, and the time from a policy
//! change (the manifest written) to its arrival at every affected proxy,
//! for a TrafficTarget (touches a few proxies) and a MeshConfig change
//! (touches all), and the time from the controller's `kill -9` to every
//! proxy's first batch from its replacement (same port and state; the
//! simulated proxies reconnect with osm-proxy's backoff, all at once).
//! The file source polls every 50 ms, which is part of the measured time.

#![allow(clippy::unwrap_used, clippy::too_many_arguments)]

use std::{
    io::{BufRead, BufReader, Write as _},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use osm_api::v1::{self, config_client::ConfigClient};
use osm_controller::{
    app::{Controller, Settings, Source},
    token::{AUDIENCE, LocalTokens, PodIdentity},
};
use osm_proxy::control::{
    RECONNECT_BASE, RECONNECT_CAP,
    backoff::Backoff,
    certify::{PodRef, certify},
    channel::{ControllerAddr, connect},
};
use tokio_stream::wrappers::ReceiverStream;

const PODS_PER_SERVICE: usize = 10;
const SERVICES_PER_NS: usize = 20;
const POLL: Duration = Duration::from_millis(50);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve-controller") {
        let grpc = args[i + 3].parse().unwrap();
        serve_controller(Path::new(&args[i + 1]), Path::new(&args[i + 2]), grpc);
        return;
    }
    let sizes: Vec<usize> = match std::env::var("OSM_SCALE_PROXIES") {
        Ok(v) => v.split(',').filter_map(|s| s.parse().ok()).collect(),
        Err(_) if args.iter().any(|a| a == "--bench") => vec![1_000, 10_000],
        Err(_) => vec![20],
    };
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| proxies | certs signed/s | all streams open in | controller RSS (MiB) | peak RSS (MiB) | TrafficTarget: proxies, p50, p99, max (ms) | MeshConfig: proxies, p50, p99, max (ms) | restart (kill -9) to every proxy's first batch: proxies, p50, p99, max (ms) | restarted controller's peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let row = runtime.block_on(run(n));
        println!("{row}");
    }
}

fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The child: a controller on loopback (its gRPC port `grpc`, 0 for any),
/// its addresses on stdout, until stdin closes.
fn serve_controller(state: &Path, manifests: &Path, grpc: SocketAddr) {
    raise_open_files_limit();
    if let Ok(filter) = std::env::var("OSM_SCALE_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ca = osm_controller::ca::store::DirStore::new(state)
            .load_ca(Duration::from_secs(3600))
            .unwrap();
        let tokens = LocalTokens::load_or_create(state).unwrap();
        let controller = Controller::bind(Settings {
            grpc,
            admin: "127.0.0.1:0".parse().unwrap(),
            webhook: "127.0.0.1:0".parse().unwrap(),
            ca: Arc::new(osm_controller::ca::authority::Authority::fixed(Arc::new(
                ca,
            ))),
            reviewer: Arc::new(tokens),
            rotation_min_phase: Duration::ZERO,
            issuer: None,
            mesh: Default::default(),
            source: Source::Files {
                dir: manifests.to_path_buf(),
                poll: POLL,
            },
            server_names: vec!["127.0.0.1".into()],
            traffic_metrics: None,
            log_filter: None,
        })
        .await
        .unwrap();
        let addrs = controller.addrs();
        println!("READY {} {}", addrs.grpc, addrs.admin);
        std::io::stdout().flush().unwrap();
        controller
            .run(async {
                // Parent gone or done: stdin closes.
                let _ = tokio::task::spawn_blocking(|| {
                    let mut sink = String::new();
                    let _ = std::io::stdin().read_line(&mut sink);
                })
                .await;
            })
            .await;
    });
}

fn service(ns: usize, svc: usize) -> String {
    format!("svc{}", ns * SERVICES_PER_NS + svc)
}

/// One file per namespace: the namespace, its services and pods, a route
/// group, and a TrafficTarget per service letting the next one in.
fn write_cluster(dir: &Path, proxies: usize) -> Vec<(String, String, String)> {
    let services = proxies.div_ceil(PODS_PER_SERVICE);
    let namespaces = services.div_ceil(SERVICES_PER_NS);
    let mut pods = Vec::new();
    for ns in 0..namespaces {
        let mut docs = vec![format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{ns}, labels: {{openservicemesh.io/monitored-by: osm}}}}\n---\napiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {{name: routes, namespace: ns{ns}}}\nspec: {{matches: [{{name: all, pathRegex: '.*', methods: ['*']}}]}}\n"
        )];
        for s in 0..SERVICES_PER_NS {
            let index = ns * SERVICES_PER_NS + s;
            if index >= services {
                break;
            }
            let name = service(ns, s);
            docs.push(format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: ns{ns}}}\nspec: {{clusterIP: 10.96.{}.{}, selector: {{app: {name}}}, ports: [{{name: http, port: 80, targetPort: 8080}}]}}\n",
                index / 256,
                index % 256
            ));
            let next = service(ns, (s + 1) % SERVICES_PER_NS);
            docs.push(format!(
                "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {{name: {name}, namespace: ns{ns}}}\nspec:\n  destination: {{kind: ServiceAccount, name: {name}, namespace: ns{ns}}}\n  rules: [{{kind: HTTPRouteGroup, name: routes, matches: [all]}}]\n  sources: [{{kind: ServiceAccount, name: {next}, namespace: ns{ns}}}]\n"
            ));
            for p in 0..PODS_PER_SERVICE {
                let n = index * PODS_PER_SERVICE + p;
                if n >= proxies {
                    break;
                }
                let pod = format!("{name}-{p}");
                docs.push(format!(
                    "apiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}, namespace: ns{ns}, labels: {{app: {name}}}}}\nspec: {{serviceAccountName: {name}, initContainers: [{{name: osm-proxy, image: p, restartPolicy: Always}}], containers: [{{name: app, image: x}}]}}\nstatus: {{podIP: 10.{}.{}.{}}}\n",
                    n / 65536 % 256 + 1,
                    n / 256 % 256,
                    n % 256
                ));
                pods.push((format!("ns{ns}"), pod, name.clone()));
            }
        }
        std::fs::write(dir.join(format!("ns{ns}.yaml")), docs.join("---\n")).unwrap();
    }
    pods
}

/// Writes a manifest the way an editor would not: atomically.
fn publish(dir: &Path, scratch: &Path, name: &str, yaml: &str) {
    let tmp = scratch.join(name);
    std::fs::write(&tmp, yaml).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

struct ControllerProcess {
    child: Child,
    grpc: SocketAddr,
    admin: SocketAddr,
}

impl ControllerProcess {
    /// A controller whose gRPC listener is `grpc` (port 0: any).
    fn start(state: &Path, manifests: &Path, grpc: SocketAddr) -> Self {
        // OSM_SCALE_WRAP runs the controller under a profiler, e.g.
        // OSM_SCALE_WRAP="heaptrack -o /tmp/controller" (memory figures are
        // then the wrapper's).
        let wrap = std::env::var("OSM_SCALE_WRAP").unwrap_or_default();
        let mut argv: Vec<String> = wrap.split_whitespace().map(String::from).collect();
        argv.push(std::env::current_exe().unwrap().display().to_string());
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .arg("--serve-controller")
            .arg(state)
            .arg(manifests)
            .arg(grpc.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        while !line.starts_with("READY") {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "the controller exited"
            );
        }
        let mut parts = line.split_whitespace().skip(1);
        let grpc = parts.next().unwrap().parse().unwrap();
        let admin = parts.next().unwrap().parse().unwrap();
        Self { child, grpc, admin }
    }

    /// Resident and peak resident memory in MiB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Arrival times of each proxy's batches, since the run's start.
type Arrivals = Arc<Vec<Mutex<Vec<Duration>>>>;

async fn stream(
    addr: ControllerAddr,
    pod: PodRef,
    credentials: osm_proxy::identity::Credentials,
    slot: usize,
    arrivals: Arrivals,
    base: Instant,
    opening: Arc<tokio::sync::Semaphore>,
    retries: Arc<std::sync::atomic::AtomicUsize>,
) {
    // Like proxies starting in waves: at most a few handshakes at a time
    // for the first connection. Then as osm-proxy does when its stream
    // ends (a controller restarted): reconnect after the proxy's jittered
    // backoff, all at once, no waves.
    let mut permit = Some(opening.acquire_owned().await.unwrap());
    let mut backoff = Backoff::new(RECONNECT_BASE, RECONNECT_CAP);
    let hello = v1::ProxyInfo {
        pod_name: pod.name.clone(),
        pod_namespace: pod.namespace.clone(),
        service_account: pod.service_account.clone(),
        ..Default::default()
    };
    loop {
        let opened = async {
            let channel = connect(&addr, Some(&credentials)).await.ok()?;
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tx.send(hello.clone()).await.ok()?;
            let updates = ConfigClient::new(channel)
                .stream(ReceiverStream::new(rx))
                .await
                .ok()?
                .into_inner();
            Some((tx, updates))
        };
        let Some((tx, mut updates)) = opened.await else {
            retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(backoff.next_delay()).await;
            continue;
        };
        while let Ok(Some(update)) = updates.message().await {
            arrivals[slot].lock().unwrap().push(base.elapsed());
            permit.take();
            backoff.reset();
            let _ = tx
                .send(v1::ProxyInfo {
                    acked_version: update.version,
                    ..hello.clone()
                })
                .await;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Latencies (ms) of the first batch each proxy received after `since`;
/// waits until `expected` proxies have one, or (expected None) until no
/// new batch has come for a second.
async fn propagation(
    arrivals: &Arrivals,
    since: Duration,
    base: Instant,
    expected: Option<usize>,
) -> Vec<f64> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_count = 0;
    let mut quiet_since = Instant::now();
    loop {
        let firsts: Vec<f64> = arrivals
            .iter()
            .filter_map(|a| a.lock().unwrap().iter().find(|t| **t > since).copied())
            .map(|t| (t - since).as_secs_f64() * 1000.0)
            .collect();
        let done = match expected {
            Some(n) => firsts.len() >= n,
            None => !firsts.is_empty() && quiet_since.elapsed() > Duration::from_secs(1),
        };
        if firsts.len() != last_count {
            last_count = firsts.len();
            quiet_since = Instant::now();
        }
        if done || Instant::now() > deadline {
            let mut sorted = firsts;
            sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let _ = base;
            return sorted;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn summary(sorted: &[f64]) -> String {
    format!(
        "{}, {:.1}, {:.1}, {:.1}",
        sorted.len(),
        percentile(sorted, 0.5),
        percentile(sorted, 0.99),
        sorted.last().copied().unwrap_or(f64::NAN)
    )
}

async fn run(proxies: usize) -> String {
    let root = tempfile::tempdir().unwrap();
    let (state, manifests, scratch) = (
        root.path().join("state"),
        root.path().join("manifests"),
        root.path().join("scratch"),
    );
    for d in [&state, &manifests, &scratch] {
        std::fs::create_dir_all(d).unwrap();
    }
    let pods = write_cluster(&manifests, proxies);
    let tokens = Arc::new(LocalTokens::load_or_create(&state).unwrap());
    let controller = ControllerProcess::start(&state, &manifests, "127.0.0.1:0".parse().unwrap());
    wait_ready(controller.admin).await;
    let ca_pem = std::fs::read(state.join("ca.crt")).unwrap();
    let addr = ControllerAddr::new(&controller.grpc.to_string(), None, &ca_pem).unwrap();

    // Certificates, 32 requests in flight.
    let token_dir = root.path().join("tokens");
    std::fs::create_dir_all(&token_dir).unwrap();
    let started = Instant::now();
    let pods = Arc::new(pods);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let issued = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..32 {
        let failures = failures.clone();
        let (pods, next, issued, addr, tokens, token_dir) = (
            pods.clone(),
            next.clone(),
            issued.clone(),
            addr.clone(),
            tokens.clone(),
            token_dir.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((ns, pod, sa)) = pods.get(i) else {
                    return;
                };
                let token = tokens.mint(
                    &PodIdentity {
                        namespace: ns.clone(),
                        pod: pod.clone(),
                        service_account: sa.clone(),
                    },
                    AUDIENCE,
                    Duration::from_secs(3600),
                );
                let file: PathBuf = token_dir.join(format!("{ns}.{pod}"));
                std::fs::write(&file, token).unwrap();
                let pod_ref = PodRef {
                    name: pod.clone(),
                    namespace: ns.clone(),
                    service_account: sa.clone(),
                    trust_domain: None,
                };
                // Retried as a proxy would; every failure is counted.
                let certified = loop {
                    match certify(&addr, &pod_ref, &file).await {
                        Ok(c) => break c,
                        Err(e) => {
                            failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            eprintln!("certify {ns}/{pod}: {e}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                };
                issued
                    .lock()
                    .unwrap()
                    .push((i, pod_ref, certified.credentials));
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let certs_per_second = proxies as f64 / started.elapsed().as_secs_f64();
    let certify_failures = failures.load(std::sync::atomic::Ordering::Relaxed);

    // Streams: every proxy its own connection.
    let base = Instant::now();
    let arrivals: Arrivals = Arc::new((0..proxies).map(|_| Mutex::new(Vec::new())).collect());
    let issued = std::mem::take(&mut *issued.lock().unwrap());
    let opening = Arc::new(tokio::sync::Semaphore::new(64));
    let stream_retries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Aborted at the end of this run: they reconnect forever, and the next
    // size's controller must not see them.
    let mut streams = Vec::new();
    for (i, pod, credentials) in issued {
        streams.push(tokio::spawn(stream(
            addr.clone(),
            pod,
            credentials,
            i,
            arrivals.clone(),
            base,
            opening.clone(),
            stream_retries.clone(),
        )));
    }
    let initial = propagation(&arrivals, Duration::ZERO, base, Some(proxies)).await;
    let all_streaming = base.elapsed();
    let opening_retries = stream_retries.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(initial.len(), proxies, "every proxy got its config");
    // Let connection set-up garbage settle before reading memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss, peak) = controller.memory();

    // A TrafficTarget: svc0 lets svc2 in (svc0's and svc2's pods change).
    let since = base.elapsed();
    publish(
        &manifests,
        &scratch,
        "extra.yaml",
        "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: extra, namespace: ns0}\nspec:\n  destination: {kind: ServiceAccount, name: svc0, namespace: ns0}\n  rules: [{kind: HTTPRouteGroup, name: routes, matches: [all]}]\n  sources: [{kind: ServiceAccount, name: svc2, namespace: ns0}]\n",
    );
    let target = propagation(&arrivals, since, base, None).await;

    // A MeshConfig change: egress on, every proxy.
    let since = base.elapsed();
    publish(
        &manifests,
        &scratch,
        "mesh-config.yaml",
        "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {name: osm-mesh-config, namespace: osm-system}\nspec: {traffic: {enablePermissiveTrafficPolicyMode: false, enableEgress: true}}\n",
    );
    let everyone = propagation(&arrivals, since, base, Some(proxies)).await;
    assert_eq!(
        everyone.len(),
        proxies,
        "the MeshConfig change reached every proxy"
    );
    assert!(!target.is_empty(), "the TrafficTarget reached its proxies");

    // The controller killed (SIGKILL) and started again on the same port
    // and state: every proxy reconnects at once, and the new controller
    // computes every view for the burst. Measured: from the kill to each
    // proxy's first batch from the new controller.
    let grpc = controller.grpc;
    let killed = base.elapsed();
    drop(controller);
    let controller = ControllerProcess::start(&state, &manifests, grpc);
    let back = propagation(&arrivals, killed, base, Some(proxies)).await;
    assert_eq!(back.len(), proxies, "every proxy is back after a restart");
    let (_, burst_peak) = controller.memory();
    let restart_retries =
        stream_retries.load(std::sync::atomic::Ordering::Relaxed) - opening_retries;
    for s in &streams {
        s.abort();
    }

    format!(
        "| {proxies} | {certs_per_second:.0} ({certify_failures} retried) | {:.1} s ({opening_retries} retried) | {rss:.0} | {peak:.0} | {} | {} | {} ({restart_retries} attempts refused) | {burst_peak:.0} |",
        all_streaming.as_secs_f64(),
        summary(&target),
        summary(&everyone),
        summary(&back)
    )
}

async fn wait_ready(admin: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(a) = osm_tests::client::http1_get(admin, "controller", "/readyz").await
            && a.status == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "controller not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
