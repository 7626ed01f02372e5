//! The incremental compiler: which proxies a change touches, and their new
//! views, without recompiling every proxy in the mesh.
//!
//! [`Compiler`] keeps the index and, for every registered proxy, the keyed
//! resources it last produced (its view). A change is applied to the index;
//! the proxies whose view it can alter are found from the old and new
//! versions of the object (the pods it selects, the clients allowed to reach
//! them); only those are recompiled, and those whose view differs are
//! reported with both views. The compiler computes no diff: the config
//! stream diffs what it last sent against the latest view, once
//! ([`crate::protocol::diff`]). A change to a Namespace or the MeshConfig
//! touches every proxy.

use std::{collections::BTreeMap, sync::Arc};

mod touched;

use self::touched::{Touched, current, touches};
use super::{CompileError, Index, ProxyId, compile, intern::Interner};
use crate::{
    protocol::{ResourceId, Resources, resources},
    resources::{Object, ObjectKey},
    v1, validate,
};

/// The result of one change.
#[derive(Debug, Default)]
pub struct Impact {
    /// Validation problems of the object (a rejected object changes nothing).
    pub problems: Vec<validate::Problem>,
    /// Proxies whose view changed.
    pub changed: BTreeMap<ProxyId, Change>,
    /// How many proxies were recompiled to find them.
    pub recompiled: usize,
}

/// A proxy's resources by id; shared (not copied) by whoever holds them.
pub type View = Arc<Resources>;

/// One proxy's view before and after a change (shared, not copied).
#[derive(Debug, Clone)]
pub struct Change {
    pub before: View,
    pub after: View,
}

/// The index, and what each registered proxy was last sent.
#[derive(Debug, Default)]
pub struct Compiler {
    pub index: Index,
    proxies: BTreeMap<ProxyId, View>,
    /// Resources every proxy gets as they are (the trust bundle).
    common: Resources,
    /// Identical resources of different views, held once.
    interner: Interner,
}

impl Compiler {
    pub fn new(index: Index) -> Self {
        Self {
            index,
            proxies: BTreeMap::new(),
            common: Resources::new(),
            interner: Interner::default(),
        }
    }

    /// Sets the resources every proxy gets besides its compiled ones, and
    /// adds them to the views of registered proxies.
    pub fn set_common(&mut self, common: BTreeMap<ResourceId, v1::Resource>) {
        let common: Resources = common
            .into_iter()
            .map(|(id, r)| (id, Arc::new(r)))
            .collect();
        for view in self.proxies.values_mut() {
            let view = Arc::make_mut(view);
            view.retain(|id, _| !self.common.contains_key(id));
            view.extend(common.clone());
        }
        self.common = common;
    }

    fn view_of(&mut self, config: &v1::ProxyConfig) -> View {
        let mut view = resources(config);
        for (id, resource) in view.iter_mut() {
            *resource = self.interner.intern(id, resource.clone());
        }
        view.extend(self.common.clone());
        Arc::new(view)
    }

    /// Registers a proxy and returns its full config.
    pub fn add_proxy(&mut self, id: ProxyId) -> Result<v1::ProxyConfig, CompileError> {
        let compiled = compile(&self.index, &id)?;
        let view = self.view_of(&compiled.config);
        self.proxies.insert(id, view);
        Ok(compiled.config)
    }

    pub fn remove_proxy(&mut self, id: &ProxyId) {
        self.proxies.remove(id);
    }

    pub fn proxies(&self) -> impl Iterator<Item = &ProxyId> {
        self.proxies.keys()
    }

    /// The resources last computed for a proxy (the common ones included).
    pub fn view(&self, id: &ProxyId) -> Option<&View> {
        self.proxies.get(id)
    }

    /// Applies an object and returns what it changes.
    pub fn apply(&mut self, object: Object) -> Impact {
        let key = object.key();
        let mut touched = self.old_touch(&key);
        let problems = validate::validate(&object);
        if validate::rejects(&problems) {
            return Impact {
                problems,
                ..Impact::default()
            };
        }
        self.index.apply(object.clone());
        touched.add(touches(&self.index, &object));
        let mut impact = self.recompile(touched);
        impact.problems = problems;
        impact
    }

    /// Deletes an object and returns what it changes.
    pub fn delete(&mut self, key: &ObjectKey) -> Impact {
        let touched = self.old_touch(key);
        if !self.index.delete(key) {
            return Impact::default();
        }
        self.recompile(touched)
    }

    /// What the current version of `key` touches, before it changes.
    fn old_touch(&self, key: &ObjectKey) -> Touched {
        match current(&self.index, key) {
            Some(old) => touches(&self.index, &old),
            None => Touched::None,
        }
    }

    fn recompile(&mut self, touched: Touched) -> Impact {
        let ids: Vec<ProxyId> = match touched {
            Touched::None => Vec::new(),
            Touched::All => self.proxies.keys().cloned().collect(),
            Touched::Pods(pods) => pods
                .into_iter()
                .map(|(namespace, pod)| ProxyId { namespace, pod })
                .filter(|id| self.proxies.contains_key(id))
                .collect(),
        };
        let mut impact = Impact {
            recompiled: ids.len(),
            ..Impact::default()
        };
        for id in ids {
            let new = match compile(&self.index, &id) {
                Ok(c) => self.view_of(&c.config),
                // A proxy whose pod is gone keeps nothing.
                Err(_) => View::default(),
            };
            let old = self
                .proxies
                .insert(id.clone(), Arc::clone(&new))
                .unwrap_or_default();
            if old != new {
                impact.changed.insert(
                    id,
                    Change {
                        before: old,
                        after: new,
                    },
                );
            }
        }
        impact
    }
}

#[cfg(test)]
mod tests;
