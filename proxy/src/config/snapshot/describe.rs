//! A snapshot as text, by key: what traffic sees of it (services by
//! address, host name and pod address, endpoint sets). Two snapshots that
//! route alike describe alike, whatever way they were built.

use std::collections::BTreeMap;

use super::{EndpointSet, OutboundService, Snapshot};

impl Snapshot {
    /// What traffic sees of the snapshot, by key (for tests and the fuzz
    /// target comparing an update in place with a whole build).
    #[doc(hidden)]
    pub fn describe(&self) -> BTreeMap<String, String> {
        let s = self;
        let set = |e: &EndpointSet| {
            let addrs: Vec<String> = e
                .endpoints()
                .iter()
                .map(|h| format!("{}/{:?}", h.spec.addr, h.spec.identity))
                .collect();
            format!(
                "{} {addrs:?} limits={:?} outlier={}",
                e.key,
                e.breaker.as_ref().map(|b| b.limits.max_connections),
                e.outlier.is_some()
            )
        };
        let service = |o: &OutboundService| {
            let split = o
                .split
                .as_ref()
                .map(|sp| sp.backends.iter().map(|b| set(b)).collect::<Vec<_>>());
            let routes = o.routes.as_ref().map(|r| {
                r.rules
                    .iter()
                    .flat_map(|rule| rule.backends.iter())
                    .map(|b| b.endpoints.as_deref().map(set))
                    .collect::<Vec<_>>()
            });
            format!(
                "{} {:?} own=[{}] split={split:?} routes={routes:?}",
                o.key,
                o.protocol,
                set(&o.endpoints)
            )
        };
        let mut out = BTreeMap::new();
        for (addr, o) in &s.outbound_by_addr {
            out.insert(format!("addr {addr}"), service(o));
        }
        let mut hosts: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (host, o) in s.host_names() {
            hosts
                .entry(format!("host {host}"))
                .or_default()
                .push(service(o));
        }
        for (host, mut names) in hosts {
            names.sort();
            out.insert(host, names.join(" | "));
        }
        for addr in s.built.pods.addrs() {
            let described = s
                .pod_at(addr)
                .map_or_else(|| "no target".to_string(), |pod| service(pod.service()));
            out.insert(format!("pod {addr}"), described);
        }
        for (key, e) in &s.endpoint_sets {
            out.insert(format!("set {key}"), set(e));
        }
        out
    }
}
