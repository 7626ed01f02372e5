//! A daemon starting where an earlier one stopped: which stored pods it
//! keeps (their processes, network namespaces and directories stay), and
//! clearing what belonged to the rest.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use k8s_openapi::api::core::v1::Pod;

use super::{
    Runtime,
    pod::{self, adopt::Adoption},
};
use crate::{
    state::{Instance, StateDir},
    store::{Key, Stored},
};

/// The pods a new daemon keeps, and where their processes are recorded.
#[derive(Default)]
pub struct Kept {
    pods: BTreeMap<Key, (Pod, Adoption)>,
    /// The kept pods' directories and network namespaces.
    pub dirs: BTreeSet<PathBuf>,
    pub netns: BTreeSet<String>,
}

impl Kept {
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }
}

/// Which stored pods an earlier daemon left that can be kept; the log
/// says why each other one starts over.
pub fn find(state: &StateDir, instance: &Instance, objects: &[Stored]) -> Kept {
    let mut kept = Kept::default();
    for stored in objects.iter().filter(|s| s.key.kind == "Pod") {
        let (namespace, name) = (&stored.key.namespace, &stored.key.name);
        let dir = state.pod_dir(namespace, name);
        if !dir.exists() {
            continue;
        }
        let netns = instance.netns(namespace, name);
        let adoption = match pod::adopt::examine(&stored.value, &dir, &netns) {
            Ok(a) => a,
            Err(why) => {
                tracing::info!(pod = %stored.key, %why, "starting it over");
                continue;
            }
        };
        let Ok(value) = serde_json::from_value::<Pod>(stored.value.clone()) else {
            continue;
        };
        kept.dirs.insert(dir);
        kept.netns.insert(netns);
        kept.pods.insert(stored.key.clone(), (value, adoption));
    }
    kept
}

/// Removes the directories of pods that are not kept (a pod that starts
/// over starts with empty volumes, as a new pod does).
pub fn clear_others(state: &StateDir, kept: &Kept) {
    let namespaces = std::fs::read_dir(state.pods()).into_iter().flatten();
    for namespace in namespaces.flatten() {
        for pod_dir in std::fs::read_dir(namespace.path()).into_iter().flatten() {
            let Ok(pod_dir) = pod_dir else { continue };
            if !kept.dirs.contains(&pod_dir.path()) {
                let _ = std::fs::remove_dir_all(pod_dir.path());
            }
        }
    }
}

impl Runtime {
    /// Takes over the kept pods: they run on from where they are.
    pub fn adopt(&mut self, kept: Kept) {
        let objects = self.api.store.list().unwrap_or_default();
        let sources = super::sources_of(&objects);
        self.sources = Some(sources.clone());
        for (key, (pod, adoption)) in kept.pods {
            tracing::info!(pod = %key, ip = %adoption.ip, "kept from the earlier daemon");
            let handle = pod::adopt(self.shared.clone(), pod, adoption, sources.clone());
            self.pods.insert(key, handle);
        }
    }
}
