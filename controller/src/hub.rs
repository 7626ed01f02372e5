//! Per-proxy subscriptions to compiled config.
//!
//! Each connected proxy has a `watch` channel holding its latest view (a
//! version and its keyed resources). A change recompiles only the proxies
//! it touches and replaces their views. The stream task of a proxy diffs
//! the view it last sent against the latest one, so a slow proxy gets one
//! coalesced batch with the net change, never an unbounded backlog.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use osm_api::{
    compile::{Compiler, Impact, ProxyId, ResourceId, impact::diff},
    protocol::update,
    resources::{Object, ObjectKey},
    v1,
};
use tokio::sync::watch;

/// What a proxy should have: its resources at a version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub version: u64,
    pub resources: Arc<BTreeMap<ResourceId, v1::Resource>>,
}

/// The compiler and every proxy's subscription.
#[derive(Debug)]
pub struct Hub {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    compiler: Compiler,
    trust_bundle: Option<v1::Resource>,
    version: u64,
    subscribers: HashMap<ProxyId, watch::Sender<View>>,
}

impl Inner {
    fn view_of(&mut self, id: &ProxyId) -> View {
        self.version += 1;
        let mut resources = self.compiler.view(id).cloned().unwrap_or_default();
        if let Some(tb) = &self.trust_bundle {
            resources.insert(ResourceId::TrustBundle, tb.clone());
        }
        View {
            version: self.version,
            resources: Arc::new(resources),
        }
    }

    fn publish(&mut self, impact: &Impact) {
        for id in impact.deltas.keys() {
            let view = self.view_of(id);
            if let Some(tx) = self.subscribers.get(id) {
                tx.send_replace(view);
            }
        }
    }
}

impl Hub {
    pub fn new(compiler: Compiler, trust_bundle_pem: Option<String>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                compiler,
                trust_bundle: trust_bundle_pem.map(|pem| v1::Resource {
                    kind: Some(v1::resource::Kind::TrustBundle(v1::TrustBundle { pem })),
                }),
                version: 0,
                subscribers: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes a proxy; its first view is its full config.
    pub fn subscribe(
        &self,
        id: ProxyId,
    ) -> Result<watch::Receiver<View>, osm_api::compile::CompileError> {
        let mut inner = self.lock();
        inner.compiler.add_proxy(id.clone())?;
        let view = inner.view_of(&id);
        let (tx, rx) = watch::channel(view);
        inner.subscribers.insert(id, tx);
        Ok(rx)
    }

    /// Forgets a proxy whose stream ended.
    pub fn unsubscribe(&self, id: &ProxyId) {
        let mut inner = self.lock();
        inner.subscribers.remove(id);
        inner.compiler.remove_proxy(id);
    }

    /// Applies a cluster change and publishes the views it alters.
    pub fn apply(&self, object: Object) -> Impact {
        let mut inner = self.lock();
        let impact = inner.compiler.apply(object);
        inner.publish(&impact);
        impact
    }

    pub fn delete(&self, key: &ObjectKey) -> Impact {
        let mut inner = self.lock();
        let impact = inner.compiler.delete(key);
        inner.publish(&impact);
        impact
    }

    /// How many proxies are subscribed.
    pub fn subscribers(&self) -> usize {
        self.lock().subscribers.len()
    }
}

/// The batch that takes a proxy from `sent` (None: nothing yet) to `latest`.
pub fn next_update(sent: Option<&View>, latest: &View) -> v1::ConfigUpdate {
    match sent {
        None => update(
            latest.version,
            true,
            osm_api::compile::Delta {
                upserts: latest.resources.values().cloned().collect(),
                removals: Vec::new(),
            },
        ),
        Some(sent) => update(
            latest.version,
            false,
            diff(&sent.resources, &latest.resources),
        ),
    }
}

#[cfg(test)]
mod tests;
