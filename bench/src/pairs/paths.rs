//! The four paths a request can take, each started as real processes on
//! 127.0.0.1: straight to the app, through an osm-proxy pair, an nginx pair
//! and an HAProxy pair (outbound proxy -> mTLS -> inbound proxy -> app).

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{pki, template::fill};

/// The peer proxies' config templates, shipped under bench/pairs/.
pub const TEMPLATES: [(&str, &str); 4] = [
    (
        "nginx-inbound.conf",
        include_str!("../../pairs/nginx-inbound.conf"),
    ),
    (
        "nginx-outbound.conf",
        include_str!("../../pairs/nginx-outbound.conf"),
    ),
    (
        "haproxy-inbound.cfg",
        include_str!("../../pairs/haproxy-inbound.cfg"),
    ),
    (
        "haproxy-outbound.cfg",
        include_str!("../../pairs/haproxy-outbound.cfg"),
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    Direct,
    Osm,
    /// The osm-proxy pair with a retry policy, circuit-breaking limits,
    /// outlier detection and a request timeout configured (none of which
    /// fires on the success path): what configuring resilience costs.
    OsmResilient,
    /// The osm-proxy pair exporting spans of 1% of the requests (Zipkin
    /// v2, to a collector that accepts them).
    OsmTraced1,
    /// ... and of every request.
    OsmTraced100,
    /// The osm-proxy pair with the HTTP/1.1 requests multiplexed over one
    /// HTTP/2 connection between the proxies (`--multiplex-http1=true`),
    /// instead of one HTTP/1.1 connection per request in flight.
    OsmMultiplexed,
    /// The plain osm-proxy pair from another binary
    /// (`--baseline-osm-proxy`): a change measured against the code before
    /// it, in the same run.
    OsmBaseline,
    Nginx,
    Haproxy,
}

impl PathKind {
    pub const ALL: [Self; 9] = [
        Self::Direct,
        Self::Osm,
        Self::OsmResilient,
        Self::OsmTraced1,
        Self::OsmTraced100,
        Self::OsmMultiplexed,
        Self::OsmBaseline,
        Self::Nginx,
        Self::Haproxy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Osm => "osm-proxy",
            Self::OsmResilient => "osm-proxy+resilience",
            Self::OsmTraced1 => "osm-proxy+trace1%",
            Self::OsmTraced100 => "osm-proxy+trace100%",
            Self::OsmMultiplexed => "osm-proxy+http2",
            Self::OsmBaseline => "osm-proxy@baseline",
            Self::Nginx => "nginx",
            Self::Haproxy => "haproxy",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name || (name == "osm" && *p == Self::Osm))
            .with_context(|| {
                format!(
                    "unknown path {name:?}; known: direct, osm-proxy, osm-proxy+resilience, \
                     osm-proxy+trace1%, osm-proxy+trace100%, osm-proxy+http2, \
                     osm-proxy@baseline, nginx, haproxy"
                )
            })
    }
}

/// Where the programs are.
#[derive(Debug, Clone)]
pub struct Programs {
    pub osm_proxy: PathBuf,
    /// The binary of the `osm-proxy@baseline` path.
    pub osm_proxy_baseline: Option<PathBuf>,
    pub nginx: PathBuf,
    pub haproxy: PathBuf,
    /// Worker threads per proxy (nginx and HAProxy are configured with one).
    pub workers: usize,
}

/// A child process, in a process group of its own, killed with everything
/// it started when dropped (an nginx master's workers outlive a master
/// killed alone).
pub struct Process {
    pub role: String,
    child: Child,
    _interrupt: crate::interrupt::Registered,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn spawn(role: &str, command: &mut Command, log: &Path) -> Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let log_file = std::fs::File::create(log)?;
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {role} ({:?})", command.get_program()))?;
        let group = group_of(&child);
        Ok(Self {
            role: role.to_string(),
            child,
            _interrupt: crate::interrupt::on_interrupt(move || kill_group(group)),
        })
    }

    /// Fails if the process has exited (a bad config, a port in use).
    pub(crate) fn check_running(&mut self, log: &Path) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            bail!("{} exited ({status}): {}", self.role, tail.trim());
        }
        Ok(())
    }
}

/// The process group a child leads (it was spawned with one of its own).
fn group_of(child: &Child) -> Option<nix::unistd::Pid> {
    i32::try_from(child.id())
        .ok()
        .map(nix::unistd::Pid::from_raw)
}

fn kill_group(group: Option<nix::unistd::Pid>) {
    if let Some(group) = group {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        kill_group(group_of(&self.child));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A path ready to take load on `port`, with the proxies that serve it.
pub struct RunningPath {
    pub kind: PathKind,
    pub port: u16,
    /// Outbound first, then inbound; empty for the direct path.
    pub proxies: Vec<Process>,
}

/// A port free on 127.0.0.1 now (the kernel's choice for port 0).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `kind` in front of the app on `app_port`, with certificates and
/// logs in `dir`, and waits until a request through it is answered 200.
pub fn start(
    kind: PathKind,
    programs: &Programs,
    dir: &Path,
    app_port: u16,
) -> Result<RunningPath> {
    let mut tries = 0;
    loop {
        tries += 1;
        match start_once(kind, programs, dir, app_port) {
            Err(e) if tries < START_TRIES && lost_its_port(&e) => continue,
            started => return started,
        }
    }
}

/// How many times a start that lost its port is made (on new ports).
pub const START_TRIES: usize = 4;

/// Whether a start failed because a port found free was taken before the
/// proxy bound it (by the ephemeral port of any connection on the
/// machine): such a start is tried again, on other ports.
pub fn lost_its_port(error: &anyhow::Error) -> bool {
    format!("{error:#}").contains("in use")
}

fn start_once(
    kind: PathKind,
    programs: &Programs,
    dir: &Path,
    app_port: u16,
) -> Result<RunningPath> {
    let (port, proxies) = match kind {
        PathKind::Direct => (app_port, Vec::new()),
        PathKind::Osm => start_osm(programs, dir, app_port, OsmVariant::Plain)?,
        PathKind::OsmResilient => start_osm(programs, dir, app_port, OsmVariant::Resilient)?,
        PathKind::OsmTraced1 => start_osm(programs, dir, app_port, OsmVariant::Traced(0.01))?,
        PathKind::OsmTraced100 => start_osm(programs, dir, app_port, OsmVariant::Traced(1.0))?,
        PathKind::OsmMultiplexed => start_osm(programs, dir, app_port, OsmVariant::Multiplexed)?,
        PathKind::OsmBaseline => {
            let baseline = Programs {
                osm_proxy: programs
                    .osm_proxy_baseline
                    .clone()
                    .context("the path osm-proxy@baseline needs --baseline-osm-proxy")?,
                ..programs.clone()
            };
            start_osm(&baseline, dir, app_port, OsmVariant::Baseline)?
        }
        PathKind::Nginx | PathKind::Haproxy => start_peer(kind, programs, dir, app_port)?,
    };
    let mut path = RunningPath {
        kind,
        port,
        proxies,
    };
    wait_answering(&mut path, dir)?;
    Ok(path)
}

fn wait_answering(path: &mut RunningPath, dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = SocketAddr::from(([127, 0, 0, 1], path.port));
    loop {
        for proxy in &mut path.proxies {
            let log = dir.join(format!("{}.log", proxy.role));
            proxy.check_running(&log)?;
        }
        match get_status(addr) {
            Ok(200) => return Ok(()),
            Ok(status) if Instant::now() > deadline => {
                bail!(
                    "{} answers {status}, not 200{}",
                    path.kind.name(),
                    log_tails(path, dir)
                )
            }
            Err(e) if Instant::now() > deadline => {
                bail!(
                    "{} does not answer: {e}{}",
                    path.kind.name(),
                    log_tails(path, dir)
                )
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The last lines each proxy of `path` wrote, to say why it did not answer.
fn log_tails(path: &RunningPath, dir: &Path) -> String {
    path.proxies
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(dir.join(format!("{}.log", p.role))).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(10)..].join("\n  ");
            format!("\n{}:\n  {tail}", p.role)
        })
        .collect()
}

/// The status of one `GET /` on a new connection.
pub fn get_status(addr: SocketAddr) -> Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: app.bench\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let text = std::str::from_utf8(&head)?;
    match text.strip_prefix("HTTP/1.1 ") {
        Some(code) => Ok(code.trim().parse()?),
        None => bail!("not an HTTP/1.1 answer: {text:?}"),
    }
}

/// The VIP:port the osm-proxy outbound listener treats as the original
/// destination (a Service's ClusterIP; never dialled).
pub const SERVICE_VIP: &str = "10.96.0.80:8080";

/// The inbound proxy's config: only the outbound side's identity may GET.
pub fn osm_inbound_config(ca_pem: &str, app_port: u16) -> serde_json::Value {
    json!({
        "mesh": {"permissive": false},
        "trustBundle": {"pem": ca_pem},
        "inbound": [{
            "port": app_port,
            "authorizations": [{
                "name": "bench/outbound-may-get",
                "sources": [pki::OUTBOUND_ID],
                "http": {"matches": [{"name": "all", "pathRegex": "/.*", "methods": ["GET"]}]}
            }]
        }]
    })
}

/// The outbound proxy's config: the Service `app` has one endpoint, the
/// inbound proxy, which must prove the inbound identity.
pub fn osm_outbound_config(ca_pem: &str, inbound_port: u16) -> serde_json::Value {
    json!({
        "mesh": {"egress": false},
        "trustBundle": {"pem": ca_pem},
        "endpoints": [{
            "key": "bench/app:8080", "namespace": "bench", "service": "app",
            "endpoints": [{
                "address": format!("127.0.0.1:{inbound_port}"),
                "identity": pki::INBOUND_ID,
                "pod": "app-0", "workloadKind": "Deployment", "workloadName": "app"
            }]
        }],
        "outbound": [{
            "key": "bench/app:8080", "namespace": "bench", "name": "app", "port": 8080,
            "hostnames": ["app", "app.bench", "app.bench.svc.cluster.local"],
            "vips": [SERVICE_VIP.split(':').next()],
            "endpoints": "bench/app:8080"
        }]
    })
}

/// The settings of the `osm-proxy+resilience` path: generous enough that
/// none of them refuses a request of the benchmark.
pub fn resilience_settings() -> serde_json::Value {
    json!({
        "retry": {"retryOn": ["5xx", "reset"], "numRetries": 2, "backoffBaseMs": 25},
        "limits": {"maxConnections": 10000, "maxRequests": 100000, "maxPendingRequests": 1000, "maxRetries": 1000},
        "outlierDetection": {"consecutive5xx": 5},
        "requestTimeoutMs": 15000,
    })
}

/// What the osm-proxy pair is configured with beyond routing and
/// authorization.
#[derive(Debug, Clone, Copy, PartialEq)]
enum OsmVariant {
    Plain,
    Resilient,
    /// Spans of this fraction of requests, exported to the app's address
    /// (the bench app answers any POST 200: a collector that takes all).
    Traced(f64),
    Multiplexed,
    /// Plain, from the baseline binary.
    Baseline,
}

impl OsmVariant {
    /// Names the pair's files (config, log): each pair its own, or a pair
    /// started later would overwrite (and the proxies reload) the other's.
    fn role_prefix(self) -> String {
        match self {
            Self::Plain => "osm".into(),
            Self::Resilient => "osm-resilient".into(),
            Self::Traced(f) => format!("osm-traced{}", (f * 100.0).round()),
            Self::Multiplexed => "osm-http2".into(),
            Self::Baseline => "osm-baseline".into(),
        }
    }
}

/// MeshConfig tracing for the bench pair: Zipkin v2 to the app's port.
pub fn tracing_settings(app_port: u16, fraction: f64) -> serde_json::Value {
    json!({
        "address": "127.0.0.1", "port": app_port, "endpoint": "/api/v2/spans",
        "sampledFraction": fraction,
    })
}

fn start_osm(
    programs: &Programs,
    dir: &Path,
    app_port: u16,
    variant: OsmVariant,
) -> Result<(u16, Vec<Process>)> {
    let ca = std::fs::read_to_string(dir.join("ca.crt"))?;
    let (inbound_port, outbound_port) = (free_port()?, free_port()?);
    let prefix = variant.role_prefix();
    let (inbound_role, outbound_role) = (format!("{prefix}-inbound"), format!("{prefix}-outbound"));
    let mut inbound = osm_inbound_config(&ca, app_port);
    let mut outbound = osm_outbound_config(&ca, inbound_port);
    let mut extra = Vec::new();
    match variant {
        OsmVariant::Plain | OsmVariant::Baseline => {}
        OsmVariant::Multiplexed => extra.push("--multiplex-http1=true"),
        OsmVariant::Resilient => {
            for (k, v) in resilience_settings().as_object().into_iter().flatten() {
                outbound["outbound"][0][k] = v.clone();
            }
        }
        OsmVariant::Traced(fraction) => {
            for config in [&mut inbound, &mut outbound] {
                config["mesh"]["tracing"] = tracing_settings(app_port, fraction);
            }
        }
    }
    let configs = [
        (inbound_role.as_str(), inbound, "server"),
        (outbound_role.as_str(), outbound, "client"),
    ];
    let mut proxies = Vec::new();
    // Outbound first, as RunningPath promises.
    for (role, config, cert) in configs.into_iter().rev() {
        let listener = if role == inbound_role.as_str() {
            format!("--inbound-listen=127.0.0.1:{inbound_port}=127.0.0.1:{app_port}")
        } else {
            format!("--outbound-listen=127.0.0.1:{outbound_port}={SERVICE_VIP}")
        };
        proxies.push(spawn_osm_proxy(
            programs, dir, role, &config, cert, &listener, &extra,
        )?);
    }
    Ok((outbound_port, proxies))
}

/// One `osm-proxy` process: `config` written to `<dir>/<role>.json`, the
/// certificate `<dir>/<cert>.crt`, one listener argument, its log in
/// `<dir>/<role>.log`; `extra` arguments last.
pub fn spawn_osm_proxy(
    programs: &Programs,
    dir: &Path,
    role: &str,
    config: &serde_json::Value,
    cert: &str,
    listener: &str,
    extra: &[&str],
) -> Result<Process> {
    let config_path = dir.join(format!("{role}.json"));
    std::fs::write(&config_path, config.to_string())?;
    let mut command = Command::new(&programs.osm_proxy);
    command
        .arg("--config")
        .arg(&config_path)
        .arg("--cert")
        .arg(dir.join(format!("{cert}.crt")))
        .arg("--key")
        .arg(dir.join(format!("{cert}.key")))
        .arg(listener)
        // The other side's listener on a port of its own, not the default
        // (15001/15003), so that two pairs can run at once.
        .arg(if listener.starts_with("--inbound-listen") {
            format!("--outbound-listen=127.0.0.1:{}", free_port()?)
        } else {
            format!("--inbound-listen=127.0.0.1:{}", free_port()?)
        })
        .arg(format!("--admin=127.0.0.1:{}", free_port()?))
        .arg(format!("--metrics=127.0.0.1:{}", free_port()?))
        .arg(format!("--workers={}", programs.workers))
        .arg("--access-log=off")
        .arg(format!(
            "--log-level={}",
            std::env::var("OSM_BENCH_PROXY_LOG").unwrap_or_else(|_| "warn".into())
        ))
        .args(extra)
        .env("POD_NAME", format!("{role}-0"))
        .env("POD_NAMESPACE", "bench");
    Process::spawn(role, &mut command, &dir.join(format!("{role}.log")))
}

fn start_peer(
    kind: PathKind,
    programs: &Programs,
    dir: &Path,
    app_port: u16,
) -> Result<(u16, Vec<Process>)> {
    let (inbound_port, outbound_port) = (free_port()?, free_port()?);
    let values = [
        ("DIR", dir.display().to_string()),
        ("APP_PORT", app_port.to_string()),
        ("INBOUND_PORT", inbound_port.to_string()),
        ("OUTBOUND_PORT", outbound_port.to_string()),
    ];
    let mut proxies = Vec::new();
    for side in ["outbound", "inbound"] {
        let (program, file) = match kind {
            PathKind::Nginx => (&programs.nginx, format!("nginx-{side}.conf")),
            _ => (&programs.haproxy, format!("haproxy-{side}.cfg")),
        };
        let template = TEMPLATES
            .iter()
            .find(|(name, _)| *name == file)
            .map(|(_, text)| *text)
            .context("no template")?;
        let config_path = dir.join(&file);
        std::fs::write(&config_path, fill(template, &values)?)?;
        let role = format!("{}-{side}", kind.name());
        let mut command = Command::new(program);
        if kind == PathKind::Nginx {
            // -p: relative paths (temp files) under the run's directory.
            command.arg("-p").arg(dir).arg("-c").arg(&config_path);
        } else {
            // -db: stay in the foreground, one process we can measure.
            command.arg("-db").arg("-f").arg(&config_path);
        }
        proxies.push(Process::spawn(
            &role,
            &mut command,
            &dir.join(format!("{role}.log")),
        )?);
    }
    Ok((outbound_port, proxies))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_names_round_trip() {
        for kind in PathKind::ALL {
            assert_eq!(PathKind::parse(kind.name()).unwrap(), kind);
        }
        assert_eq!(PathKind::parse("osm").unwrap(), PathKind::Osm);
        assert!(
            PathKind::parse("envoy")
                .unwrap_err()
                .to_string()
                .contains("envoy")
        );
    }

    #[test]
    fn osm_configs_allow_only_the_outbound_identity_to_the_app_port() {
        let inbound = osm_inbound_config("PEM", 9000);
        assert_eq!(inbound["inbound"][0]["port"], 9000);
        assert_eq!(
            inbound["inbound"][0]["authorizations"][0]["sources"][0],
            pki::OUTBOUND_ID
        );
        assert_eq!(inbound["mesh"]["permissive"], false);
        let outbound = osm_outbound_config("PEM", 7000);
        let endpoint = &outbound["endpoints"][0]["endpoints"][0];
        assert_eq!(endpoint["address"], "127.0.0.1:7000");
        assert_eq!(endpoint["identity"], pki::INBOUND_ID);
        assert_eq!(outbound["outbound"][0]["vips"][0], "10.96.0.80");
    }
}
