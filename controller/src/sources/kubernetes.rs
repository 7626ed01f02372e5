//! The Kubernetes API as the source of cluster state.
//!
//! One kube-rs watcher per kind (list, then watch; relist after an error or
//! an expired resource version), each object converted with the same loader
//! the file source uses and applied to the hub. A relist deletes what
//! vanished meanwhile. A bad object is skipped and reported by kind/name
//! with the reason; it never stops the others. The controller is ready once
//! every kind has been listed once.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use futures_util::StreamExt as _;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind},
    runtime::{WatchStreamExt as _, watcher},
};
use osm_api::{
    kinds::{WATCHED_KINDS, WatchedKind},
    resources::{Object, ObjectKey},
    validate,
};
use tokio_util::sync::CancellationToken;

use crate::{hub::Hub, metrics::Metrics};

/// A kind the controller watches.
#[derive(Debug, Clone)]
pub struct Watched {
    pub resource: ApiResource,
    /// A mesh CRD (may be absent from a cluster) rather than a core kind.
    pub custom: bool,
    pub kind: &'static WatchedKind,
}

/// Every kind the compiler reads ([`osm_api::kinds::WATCHED_KINDS`]), as
/// kube's dynamic API needs it.
pub fn watched_kinds() -> Vec<Watched> {
    WATCHED_KINDS
        .iter()
        .map(|k| Watched {
            resource: ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(k.group, k.version, k.kind),
                k.plural,
            ),
            custom: k.custom,
            kind: k,
        })
        .collect()
}

/// Converts an API object into the compiler's model
/// ([`osm_api::kinds::convert`]).
pub fn convert(watched: &Watched, object: &DynamicObject) -> Result<Object, String> {
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    osm_api::kinds::convert(watched.kind, value)
}

fn describe(watched: &Watched, object: &DynamicObject) -> String {
    match &object.metadata.namespace {
        Some(ns) => format!(
            "{} {ns}/{}",
            watched.resource.kind,
            object.metadata.name.as_deref().unwrap_or("")
        ),
        None => format!(
            "{} {}",
            watched.resource.kind,
            object.metadata.name.as_deref().unwrap_or("")
        ),
    }
}

/// Keeps the hub in line with one kind's watch events.
struct KindSync {
    watched: Watched,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    /// What the hub holds of this kind, by key, with the resourceVersion
    /// applied (an unchanged object is not applied again on relist).
    known: HashMap<ObjectKey, String>,
    /// Keys seen since the current relist began.
    relisted: Option<HashMap<ObjectKey, String>>,
}

impl KindSync {
    fn apply(&mut self, object: &DynamicObject) -> Option<(ObjectKey, String)> {
        let version = object.metadata.resource_version.clone().unwrap_or_default();
        let converted = match convert(&self.watched, object) {
            Ok(o) => o,
            Err(reason) => {
                self.metrics.error("source");
                tracing::warn!(object = %describe(&self.watched, object), %reason, "object skipped");
                return None;
            }
        };
        let key = converted.key();
        if self
            .known
            .get(&key)
            .is_some_and(|v| *v == version && !version.is_empty())
        {
            return Some((key, version));
        }
        let impact = self.hub.apply(converted);
        for p in &impact.problems {
            tracing::warn!(object = %key, problem = %p, "object has problems");
        }
        if validate::rejects(&impact.problems) {
            self.metrics.error("source");
            return None;
        }
        self.known.insert(key.clone(), version.clone());
        Some((key, version))
    }

    fn delete(&mut self, object: &DynamicObject) {
        if let Ok(o) = convert(&self.watched, object) {
            let key = o.key();
            self.known.remove(&key);
            self.hub.delete(&key);
        }
    }

    /// Handles one event; true when a (re)list just completed.
    fn on_event(&mut self, event: watcher::Event<DynamicObject>) -> bool {
        match event {
            watcher::Event::Init => {
                self.relisted = Some(HashMap::new());
                false
            }
            watcher::Event::InitApply(object) => {
                if let Some((key, version)) = self.apply(&object) {
                    self.relisted
                        .get_or_insert_with(HashMap::new)
                        .insert(key, version);
                }
                false
            }
            watcher::Event::InitDone => {
                let seen = self.relisted.take().unwrap_or_default();
                let gone: Vec<ObjectKey> = self
                    .known
                    .keys()
                    .filter(|k| !seen.contains_key(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    self.known.remove(&key);
                    self.hub.delete(&key);
                }
                true
            }
            watcher::Event::Apply(object) => {
                self.apply(&object);
                false
            }
            watcher::Event::Delete(object) => {
                self.delete(&object);
                false
            }
        }
    }
}

/// Watches every kind until `stop`; sets `synced` once each was listed.
pub async fn run(
    client: Client,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    synced: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let kinds = watched_kinds();
    let pending = Arc::new(AtomicUsize::new(kinds.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for watched in kinds {
        tasks.spawn(watch_kind(
            client.clone(),
            watched,
            hub.clone(),
            metrics.clone(),
            pending.clone(),
            synced.clone(),
            stop.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

async fn watch_kind(
    client: Client,
    watched: Watched,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    pending: Arc<AtomicUsize>,
    synced: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let api: Api<DynamicObject> = Api::all_with(client, &watched.resource);
    let kind = watched.resource.kind.clone();
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut sync = KindSync {
        watched: watched.clone(),
        hub,
        metrics: metrics.clone(),
        known: HashMap::new(),
        relisted: None,
    };
    let mut listed = false;
    let mut absent_reported = false;
    let mark_listed = |listed: &mut bool| {
        if !*listed {
            *listed = true;
            if pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                synced.store(true, Ordering::Release);
                tracing::info!("every kind listed: ready");
            }
        }
    };
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            _ = stop.cancelled() => return,
        };
        match event {
            Some(Ok(event)) => {
                if sync.on_event(event) {
                    metrics.source_synced("kubernetes", 0);
                    mark_listed(&mut listed);
                }
            }
            Some(Err(e)) => {
                // A custom kind whose CRD is not installed (the Gateway API
                // routes on most clusters) is said once, not as an error on
                // every retry.
                if watched.custom && is_not_installed(&e) {
                    if !absent_reported {
                        absent_reported = true;
                        tracing::info!(%kind, "no such resource on this cluster (CRD not installed): none are read until it is");
                    }
                } else {
                    metrics.error("source");
                    tracing::warn!(%kind, error = %e, "watch failed; retrying");
                }
                // A mesh CRD missing from the cluster must not keep the
                // controller unready: count it as listed (empty) and keep
                // retrying.
                if watched.custom {
                    mark_listed(&mut listed);
                }
            }
            None => return,
        }
    }
}

/// Whether a watch failed because the resource does not exist (404).
fn is_not_installed(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.is_not_found(),
        watcher::Error::WatchError(status) => status.is_not_found(),
        _ => false,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod version_tests;
