//! What the controller knows of each connected proxy, for the debug
//! endpoint: who it is, what was sent, what it acknowledged.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

/// One connected proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatus {
    pub namespace: String,
    pub pod: String,
    pub identity: String,
    /// Unix seconds.
    pub connected_since: u64,
    pub sent_version: String,
    pub acked_version: String,
    /// Why the proxy refused its last batch; empty when it did not.
    pub nack_reason: String,
    /// Resources of its config the proxy could not build and enforces
    /// fail-closed (`<field>: <reason>`), as of its last acknowledgement.
    pub rejected_resources: Vec<String>,
    /// Refusals in a row; the full resend after each backs off.
    pub consecutive_nacks: u32,
}

/// Every connected proxy, keyed by stream (a proxy that reconnects may
/// briefly have two).
#[derive(Debug, Default)]
pub struct Proxies {
    streams: Mutex<BTreeMap<u64, ProxyStatus>>,
}

impl Proxies {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ProxyStatus>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn connected(&self, stream: u64, namespace: &str, pod: &str, identity: &str) {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.lock().insert(
            stream,
            ProxyStatus {
                namespace: namespace.into(),
                pod: pod.into(),
                identity: identity.into(),
                connected_since: since,
                ..ProxyStatus::default()
            },
        );
    }

    pub fn sent(&self, stream: u64, version: &str) {
        if let Some(s) = self.lock().get_mut(&stream) {
            s.sent_version = version.into();
        }
    }

    pub fn acknowledged(&self, stream: u64, info: &osm_api::v1::ProxyInfo, consecutive_nacks: u32) {
        if let Some(s) = self.lock().get_mut(&stream) {
            s.consecutive_nacks = consecutive_nacks;
            s.acked_version = info.acked_version.clone();
            s.nack_reason = info.nack_reason.clone();
            s.rejected_resources = info.rejected_resources.clone();
        }
    }

    pub fn disconnected(&self, stream: u64) {
        self.lock().remove(&stream);
    }

    /// Connected proxies that have not acknowledged the last batch sent to
    /// them (or were sent nothing yet).
    pub fn out_of_sync(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| s.sent_version.is_empty() || s.acked_version != s.sent_version)
            .count()
    }

    /// Connected proxies, and how many of them acknowledged `version` or
    /// a later one (config versions only grow).
    pub fn acknowledged_since(&self, version: u64) -> (usize, usize) {
        let streams = self.lock();
        let acknowledged = streams
            .values()
            .filter(|s| s.acked_version.parse::<u64>().is_ok_and(|v| v >= version))
            .count();
        (streams.len(), acknowledged)
    }

    /// The pods (`namespace/name`) with a proxy connected.
    pub fn connected_pods(&self) -> std::collections::BTreeSet<String> {
        self.lock()
            .values()
            .map(|s| format!("{}/{}", s.namespace, s.pod))
            .collect()
    }

    /// Every connected proxy, sorted by namespace and pod.
    pub fn list(&self) -> Vec<ProxyStatus> {
        let mut out: Vec<ProxyStatus> = self.lock().values().cloned().collect();
        out.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
        out
    }
}
