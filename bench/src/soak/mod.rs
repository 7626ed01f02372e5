//! `osm-bench soak`: a fresh local mesh (the real `osm local`), a client
//! sending constant HTTP load through a TrafficSplit and keeping TCP
//! connections to Redis (`bench/soak/mesh.yaml`), churn applied on a
//! printed schedule (rolling updates, the controller and app processes
//! killed, policies and MeshConfig changed, short-lived certificates), the
//! mesh's processes sampled and the controller's pushes counted; then a
//! report of every failure by cause and by what was happening, latency
//! per window, memory slopes and config pushes
//! (`bench/results/soak.{md,json,png}`). Needs root, like local mode.

pub mod mesh;
pub mod plot;
pub mod pushes;
pub mod report;
pub mod sample;
pub mod schedule;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use crate::local_mesh::Local;

use self::{
    mesh::RANGES,
    pushes::PushScrape,
    report::{Event, Placed, Trend},
    sample::Sample,
    schedule::{Churn, Schedule},
};

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub duration: Duration,
    pub rate: u32,
    pub churn: Vec<Churn>,
    /// Every churn period divided by this (a short soak sees each kind).
    pub speedup: u32,
    /// The proxies' certificate lifetime (MeshConfig
    /// `serviceCertValidityDuration`): they renew at 80 % of it.
    pub cert_validity: String,
    /// Where `osm` and the mesh's binaries are.
    pub bin_dir: PathBuf,
    /// The mesh's manifests (`bench/soak/mesh.yaml`).
    pub manifests: PathBuf,
}

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    pub schedule: Vec<String>,
    pub report: Value,
    pub events: Vec<Event>,
    pub placed: Vec<Placed>,
    pub samples: Vec<Sample>,
    pub trends: Vec<Trend>,
    pub pushes: Vec<PushScrape>,
}

impl Outcome {
    /// Failed requests and exchanges, all kinds.
    pub fn failures(&self) -> u64 {
        ["http", "tcp"]
            .iter()
            .map(|k| report::totals(&self.report, k).1.values().sum::<u64>())
            .sum()
    }

    /// Successful HTTP requests and TCP exchanges.
    pub fn successes(&self) -> (u64, u64) {
        (
            report::totals(&self.report, "http").0,
            report::totals(&self.report, "tcp").0,
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "schedule": self.schedule,
            "client": self.report,
            "events": self.events,
            "failures": self.placed,
            "samples": self.samples,
            "trends": self.trends,
            "pushes": pushes::summarize(&self.pushes),
            "pushScrapes": self.pushes,
        })
    }
}

const MESH_CONFIG: &str = "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\n\
metadata: {name: osm-mesh-config, namespace: osm-system}\nspec:\n  \
traffic: {enablePermissiveTrafficPolicyMode: true, enableEgress: true}\n  \
certificate: {serviceCertValidityDuration: VALIDITY}\n  sidecar: {logLevel: LEVEL}\n";

const UNRELATED_POLICY: &str = "apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\n\
metadata: {name: soak-unrelated, namespace: soak}\nspec:\n  \
matches: [{name: all, pathRegex: '.*', methods: ['*']}]\n---\n\
apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\n\
metadata: {name: soak-unrelated, namespace: soak}\nspec:\n  \
destination: {kind: ServiceAccount, name: nobody, namespace: soak}\n  \
rules: [{kind: HTTPRouteGroup, name: soak-unrelated, matches: [all]}]\n  \
sources: [{kind: ServiceAccount, name: nobody-else, namespace: soak}]\n";

fn mesh_config(validity: &str, quiet: bool) -> String {
    MESH_CONFIG
        .replace("VALIDITY", validity)
        .replace("LEVEL", if quiet { "error" } else { "warn" })
}

/// Runs a soak; the mesh is brought down whatever happens.
pub fn run(settings: &Settings) -> Result<Outcome> {
    let schedule = Schedule::new(&settings.churn, settings.speedup);
    let described = schedule.describe(settings.duration);
    println!(
        "soak: {:?} at {} requests/s; churn:",
        settings.duration, settings.rate
    );
    for line in &described {
        println!("  {line}");
    }
    let manifests = std::fs::read_to_string(&settings.manifests)
        .with_context(|| format!("reading {}", settings.manifests.display()))?
        .replace("{{rate}}", &settings.rate.to_string());
    let mesh = Local::up(&settings.bin_dir, RANGES)?;
    mesh.apply(&mesh_config(&settings.cert_validity, true))?;
    mesh.apply(&manifests)?;
    mesh.wait_ready("soak", 6, Duration::from_secs(180))?;
    mesh::wait_for_load(&mesh, Duration::from_secs(60))?;
    println!("soak: pods ready, load flowing");

    let began = Instant::now();
    let elapsed_ms = || u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut events = Vec::new();
    let mut samples = Vec::new();
    let mut pushes = Vec::new();
    let scraper = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut churner = mesh::Churner::default();
    let mut last = Duration::ZERO;
    let mut next_sample = Duration::ZERO;
    while began.elapsed() < settings.duration {
        let now = began.elapsed();
        for (_, churn) in schedule.due(last, now) {
            let detail = churner
                .apply(&mesh, churn, &manifests, settings)
                .unwrap_or_else(|e| format!("failed: {e:#}"));
            let at_ms = elapsed_ms();
            println!("soak: {:>7.1} s {churn}: {detail}", at_ms as f64 / 1000.0);
            events.push(Event {
                at_ms,
                churn: churn.name().into(),
                detail,
            });
        }
        last = now;
        if now >= next_sample {
            let at_ms = elapsed_ms();
            for (who, pid) in sample::processes(mesh.state(), "soak") {
                if who == "controller" {
                    pushes.extend(scrape_pushes(&scraper, &mesh, at_ms, pid));
                }
                samples.extend(sample::sample(at_ms, who, pid));
            }
            next_sample = now + Duration::from_secs(5);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (report, client_now_ms) = mesh::client_report(&mesh)?;
    let offset_ms = client_now_ms as i64 - elapsed_ms() as i64;
    let placed = report::place(&report, offset_ms, &events);
    let trends = report::trends(&samples);
    Ok(Outcome {
        schedule: described,
        report,
        events,
        placed,
        samples,
        trends,
        pushes,
    })
}

/// The controller's push counters now, if it answers.
fn scrape_pushes(
    runtime: &tokio::runtime::Runtime,
    mesh: &Local,
    at_ms: u64,
    pid: i32,
) -> Option<PushScrape> {
    let answer = runtime
        .block_on(osm_serve::fetch::get(
            mesh.controller_admin(),
            "/metrics",
            Duration::from_secs(2),
        ))
        .ok()?;
    let (pushed, latency_buckets) = pushes::parse(std::str::from_utf8(&answer.body).ok()?)?;
    Some(PushScrape {
        at_ms,
        pid,
        pushed,
        latency_buckets,
    })
}

/// Writes `soak.md`, `soak.json` and `soak.png` into `out`.
pub fn write(outcome: &Outcome, title: &str, out: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let md = report::markdown(
        title,
        &outcome.schedule,
        &outcome.report,
        &outcome.placed,
        &outcome.trends,
    );
    let md = md + &pushes::markdown(&pushes::summarize(&outcome.pushes));
    std::fs::write(out.join("soak.md"), md)?;
    std::fs::write(
        out.join("soak.json"),
        serde_json::to_string_pretty(&outcome.json())?,
    )?;
    plot::soak_png(outcome, title, &out.join("soak.png"))
}
