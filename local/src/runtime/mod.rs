//! The local runtime: the part of a cluster that is not the control plane.
//! Each pass reads the store and acts like the Deployment controller
//! (replicas from templates), the kubelet (pods started and stopped, their
//! status written back), kube-proxy (VIP balancing rules) and cluster DNS
//! (hosts files).

pub mod availability;
pub mod cgroups;
pub mod deployments;
pub mod events;
pub mod hosts;
pub mod jobs;
pub mod launch;
pub mod net;
pub mod pod;
pub mod probes;
pub mod secrets;
pub mod services;
mod statefulsets;
pub mod status;
pub mod takeover;
mod workloads;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::Ipv4Addr,
    sync::Arc,
    time::Instant,
};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use serde_json::Value;

use self::{
    pod::{PodHandle, Shared},
    services::Endpoint,
};
use super::{
    apiserver::ApiServer,
    store::{Key, Stored},
};

/// The cluster's ConfigMaps and Secrets.
fn sources_of(objects: &[Stored]) -> pod::Sources {
    let of_kind = |kind: &'static str| {
        objects
            .iter()
            .filter(move |s| s.key.kind == kind)
            .map(|s| s.value.clone())
    };
    let config_maps: Vec<ConfigMap> = of_kind("ConfigMap")
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let secrets: Vec<Secret> = of_kind("Secret")
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    Arc::new((config_maps, secrets))
}

/// The runtime's state between passes.
pub struct Runtime {
    shared: Arc<Shared>,
    api: ApiServer,
    pods: HashMap<Key, PodHandle>,
    terminating: Vec<(Key, PodHandle)>,
    /// Status last written per pod, to write only changes.
    written: HashMap<Key, Value>,
    /// Events last written per pod, likewise (removed with the pod).
    written_events: HashMap<Key, Vec<Value>>,
    rules: String,
    hosts: HashMap<String, String>,
    next_ip: u32,
    /// Whether Services keep their clients' addresses on this host.
    service_source: services::ServiceSource,
    /// The ConfigMaps and Secrets handed to pods last.
    sources: Option<pod::Sources>,
    /// When pods' written statuses became ready (rollouts wait on it).
    availability: availability::Availability,
}

impl Runtime {
    pub fn new(shared: Arc<Shared>, api: ApiServer) -> Self {
        Self {
            shared,
            api,
            pods: HashMap::new(),
            terminating: Vec::new(),
            written: HashMap::new(),
            written_events: HashMap::new(),
            sources: None,
            availability: availability::Availability::default(),
            rules: String::new(),
            hosts: HashMap::new(),
            next_ip: 0,
            service_source: services::ServiceSource::of_host(),
        }
    }

    /// Notes what the daemon saw of the controller (`Availability::controller`).
    pub fn controller_seen(
        &mut self,
        started: Option<Instant>,
        ready: bool,
        synced: Option<BTreeSet<String>>,
    ) {
        let now = Instant::now();
        self.availability.controller(started, ready, synced, now);
    }

    /// The rules for no services: what the host starts with.
    pub fn empty_rules(&self) -> String {
        let instance = &self.shared.instance;
        services::nat_rules(instance, &[], &[], self.service_source)
            + &services::filter_rules(instance, &[])
    }

    /// A free pod address, handed out round-robin so a recent address is
    /// not reused while peers may still hold it.
    fn allocate_ip(&mut self) -> Option<Ipv4Addr> {
        let net = self.shared.instance.pod_cidr;
        let used: BTreeSet<Ipv4Addr> = self
            .pods
            .values()
            .chain(self.terminating.iter().map(|(_, h)| h))
            .map(|h| h.ip)
            .collect();
        let base = u32::from(net.network());
        let size = 1u32 << (32 - net.prefix_len());
        // .0 is the network, .1 the gateway, the last the broadcast.
        for step in 0..size {
            let offset = 2 + (self.next_ip + step) % (size - 3);
            let ip = Ipv4Addr::from(base + offset);
            if !used.contains(&ip) {
                self.next_ip = offset - 1;
                return Some(ip);
            }
        }
        None
    }

    /// One pass.
    pub async fn reconcile(&mut self) -> anyhow::Result<()> {
        let objects = self.api.store.list()?;
        self.run_workloads(&objects).await?;

        // Re-read: the deployment and job passes may have added or removed
        // pods.
        let objects = self.api.store.list()?;
        let pods: Vec<&Stored> = objects.iter().filter(|s| s.key.kind == "Pod").collect();
        let services: Vec<Service> = objects
            .iter()
            .filter(|s| s.key.kind == "Service")
            .filter_map(|s| serde_json::from_value(s.value.clone()).ok())
            .collect();
        // A new value only when a ConfigMap or Secret changed: pods compare
        // by pointer.
        let fresh = sources_of(&objects);
        let sources: pod::Sources = match &self.sources {
            Some(held) if **held == *fresh => held.clone(),
            _ => fresh,
        };
        self.sources = Some(sources.clone());
        for handle in self.pods.values() {
            handle.update_sources(&sources);
        }
        self.terminating.retain(|(_, h)| !h.is_finished());
        let wanted: BTreeMap<&Key, &Stored> = pods.iter().map(|s| (&s.key, *s)).collect();
        let gone: Vec<Key> = self
            .pods
            .iter()
            .filter(|(key, handle)| {
                wanted
                    .get(key)
                    .and_then(|s| s.value.pointer("/metadata/uid"))
                    .and_then(Value::as_str)
                    != Some(handle.uid.as_str())
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(handle) = self.pods.remove(&key) {
                tracing::info!(pod = %key, "stopping");
                handle.terminate();
                self.written.remove(&key);
                self.availability.forget(&key);
                self.remove_events(&key);
                self.terminating.push((key, handle));
            }
        }
        for stored in &pods {
            if self.pods.contains_key(&stored.key)
                || self.terminating.iter().any(|(k, _)| k == &stored.key)
            {
                continue;
            }
            let pod: Pod = match serde_json::from_value(stored.value.clone()) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(pod = %stored.key, error = %e, "not a valid pod");
                    continue;
                }
            };
            let Some(ip) = self.allocate_ip() else {
                tracing::warn!(pod = %stored.key, "the pod range is full");
                continue;
            };
            // Headless names come at the next sync, once addresses are known.
            let hosts = hosts::hosts_file(
                &self.shared.instance,
                &stored.key.namespace,
                &stored.key.name,
                Some(ip),
                &services,
                &[],
            );
            tracing::info!(pod = %stored.key, %ip, "starting");
            let handle = pod::start(self.shared.clone(), pod, ip, hosts, sources.clone());
            self.pods.insert(stored.key.clone(), handle);
        }

        self.write_statuses()?;
        self.sync_services(&objects, &services).await
    }

    /// Writes each running pod's status into its stored object, and its
    /// events as Event objects, when they changed (the controller sees pod
    /// addresses through the status).
    fn write_statuses(&mut self) -> anyhow::Result<()> {
        let host_ip = self.shared.instance.gateway();
        for (key, handle) in &self.pods {
            let snapshot = handle.snapshot();
            let events =
                events::event_objects(&key.namespace, &key.name, &handle.uid, &snapshot.events);
            if self.written_events.get(key) != Some(&events) {
                let _lock = self.api.store.lock()?;
                for event in &events {
                    self.api
                        .store
                        .put(event)
                        .with_context(|| format!("{key}: events"))?;
                }
                self.written_events.insert(key.clone(), events);
            }
            let status = snapshot.to_json(host_ip);
            if self.written.get(key) == Some(&status) {
                continue;
            }
            let _lock = self.api.store.lock()?;
            let Some(mut stored) = self.api.store.get(key)? else {
                continue;
            };
            if stored.pointer("/metadata/uid").and_then(Value::as_str) != Some(handle.uid.as_str())
            {
                continue;
            }
            stored["status"] = status.clone();
            self.api
                .store
                .put(&stored)
                .with_context(|| format!("{key}: status"))?;
            self.availability
                .written(key, snapshot.ready(), Instant::now());
            self.written.insert(key.clone(), status);
        }
        Ok(())
    }

    /// A deleted pod's events go with it.
    fn remove_events(&mut self, pod: &Key) {
        for event in self.written_events.remove(pod).unwrap_or_default() {
            if let Some(key) = Key::of(&event) {
                let _ = self.api.store.remove(&key);
            }
        }
    }

    /// kube-proxy's rules and every pod's hosts file, when they changed.
    async fn sync_services(
        &mut self,
        objects: &[Stored],
        services: &[Service],
    ) -> anyhow::Result<()> {
        let instance = self.shared.instance.clone();
        let pods: Vec<(Key, Pod)> = objects
            .iter()
            .filter(|s| s.key.kind == "Pod")
            .filter_map(|s| Some((s.key.clone(), serde_json::from_value(s.value.clone()).ok()?)))
            .collect();
        let endpoints: Vec<Endpoint<'_>> = pods
            .iter()
            .filter_map(|(key, pod)| {
                let handle = self.pods.get(key)?;
                Some(Endpoint {
                    pod,
                    ip: handle.ip,
                    ready: handle.snapshot().ready(),
                })
            })
            .collect();
        let ports = services::balanced(services, &endpoints);
        let mut rules = services::nat_rules(&instance, &ports, &[], self.service_source);
        rules.push_str(&services::filter_rules(&instance, &ports));
        if rules != self.rules {
            let stale = net::existing_chains(&instance, "nat")
                .await?
                .into_iter()
                .filter(|c| c.starts_with(&instance.chain("SVC-")))
                .collect::<Vec<_>>();
            let mut text = services::nat_rules(&instance, &ports, &stale, self.service_source);
            text.push_str(&services::filter_rules(&instance, &ports));
            net::iptables_restore(&text).await?;
            tracing::debug!(ports = ports.len(), "service rules synced");
            self.rules = rules;
        }
        for (key, handle) in &self.pods {
            let hosts = hosts::hosts_file(
                &instance,
                &key.namespace,
                &key.name,
                Some(handle.ip),
                services,
                &endpoints,
            );
            if self.hosts.get(&handle.netns) != Some(&hosts)
                && std::path::Path::new("/etc/netns")
                    .join(&handle.netns)
                    .exists()
            {
                net::write_hosts(&handle.netns, &hosts)?;
                self.hosts.insert(handle.netns.clone(), hosts);
            }
        }
        self.hosts
            .retain(|netns, _| self.pods.values().any(|h| &h.netns == netns));
        Ok(())
    }

    /// Stops every pod and waits for them.
    pub async fn stop_all(&mut self) {
        for (_, handle) in self.pods.drain() {
            handle.terminate();
            self.terminating.push((Key::new("Pod", "", ""), handle));
        }
        for (_, handle) in &self.terminating {
            handle.terminate();
        }
        while self.terminating.iter().any(|(_, h)| !h.is_finished()) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.terminating.clear();
    }
}
