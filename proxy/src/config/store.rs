//! The proxy's side of the config stream: the resources it holds, by key,
//! in a persistent map, so a batch of k changes costs O(k log n) and the
//! previous config shares everything else with the next (a proxy with
//! 10,000 services used to copy all of them for every batch).

use std::{collections::BTreeSet, sync::Arc};

use osm_api::{
    protocol::{ResourceId, UpdateError, assemble, into_resources, removal_id, resource_id},
    v1,
};

/// Resources by key, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ConfigStore {
    resources: imbl::OrdMap<ResourceId, Arc<v1::Resource>>,
}

/// What a batch touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Changed {
    /// Everything may have changed (a full batch).
    #[default]
    All,
    /// Only these resources were upserted or removed.
    Keys(BTreeSet<ResourceId>),
}

impl ConfigStore {
    /// A config's resources, moved in (a later duplicate key replaces an
    /// earlier one: a config file with duplicates is refused before).
    pub fn from_config(config: v1::ProxyConfig) -> Self {
        Self {
            resources: into_resources(config)
                .map(|(id, r)| (id, Arc::new(r)))
                .collect(),
        }
    }

    /// The store after `update`, and what it touched: a full batch
    /// replaces everything, otherwise upserts replace by key and removals
    /// delete by key. All or nothing, as [`osm_api::protocol::apply_update`].
    pub fn apply(&self, update: v1::ConfigUpdate) -> Result<(Self, Changed), UpdateError> {
        let mut resources = if update.full {
            imbl::OrdMap::new()
        } else {
            self.resources.clone()
        };
        let mut touched = BTreeSet::new();
        for (i, removal) in update.removals.iter().enumerate() {
            let id = removal_id(i, removal)?;
            resources.remove(&id);
            touched.insert(id);
        }
        // Moved in, not copied: a first batch holds the whole config.
        for (i, resource) in update.upserts.into_iter().enumerate() {
            let id = resource_id(&resource).ok_or(UpdateError::EmptyResource(i))?;
            resources.insert(id.clone(), Arc::new(resource));
            touched.insert(id);
        }
        let changed = if update.full {
            Changed::All
        } else {
            Changed::Keys(touched)
        };
        Ok((Self { resources }, changed))
    }

    /// The whole config, in key order (as the stream's batches assemble).
    pub fn to_config(&self) -> v1::ProxyConfig {
        assemble(self.resources.values().map(|r| v1::Resource::clone(r)))
    }

    pub fn get(&self, id: &ResourceId) -> Option<&v1::resource::Kind> {
        self.resources.get(id)?.kind.as_ref()
    }

    pub fn outbound(&self, key: &str) -> Option<&v1::OutboundService> {
        match self.get(&ResourceId::Outbound(key.to_string()))? {
            v1::resource::Kind::Outbound(s) => Some(s),
            _ => None,
        }
    }

    pub fn endpoints(&self, key: &str) -> Option<&v1::EndpointSet> {
        match self.get(&ResourceId::Endpoints(key.to_string()))? {
            v1::resource::Kind::Endpoints(e) => Some(e),
            _ => None,
        }
    }

    /// The very same resources (not only equal ones): `other` is this
    /// store or a clone of it.
    pub fn same(&self, other: &Self) -> bool {
        self.resources.ptr_eq(&other.resources)
    }
}

/// A config's resources as a whole build reads them: a config file's in
/// its order (errors name their index in the file), the stream's in key
/// order.
pub trait ConfigSource {
    fn mesh(&self) -> Option<&v1::MeshSettings>;
    fn trust_bundle(&self) -> Option<&v1::TrustBundle>;
    fn inbound_ports(&self) -> impl Iterator<Item = &v1::InboundPort>;
    fn services(&self) -> impl Iterator<Item = &v1::OutboundService>;
    fn endpoint_sets(&self) -> impl Iterator<Item = &v1::EndpointSet>;
    fn egress_rules(&self) -> impl Iterator<Item = &v1::EgressRule>;
}

impl ConfigSource for v1::ProxyConfig {
    fn mesh(&self) -> Option<&v1::MeshSettings> {
        self.mesh.as_ref()
    }
    fn trust_bundle(&self) -> Option<&v1::TrustBundle> {
        self.trust_bundle.as_ref()
    }
    fn inbound_ports(&self) -> impl Iterator<Item = &v1::InboundPort> {
        self.inbound.iter()
    }
    fn services(&self) -> impl Iterator<Item = &v1::OutboundService> {
        self.outbound.iter()
    }
    fn endpoint_sets(&self) -> impl Iterator<Item = &v1::EndpointSet> {
        self.endpoints.iter()
    }
    fn egress_rules(&self) -> impl Iterator<Item = &v1::EgressRule> {
        self.egress.iter()
    }
}

/// The resources of one kind: ids of a kind are contiguous in key order.
macro_rules! kind_range {
    ($store:expr, $from:expr, $variant:ident) => {
        $store
            .resources
            .range($from..)
            .map_while(|(_, r)| match &r.kind {
                Some(v1::resource::Kind::$variant(x)) => Some(x),
                _ => None,
            })
    };
}

impl ConfigSource for ConfigStore {
    fn mesh(&self) -> Option<&v1::MeshSettings> {
        match self.get(&ResourceId::Mesh)? {
            v1::resource::Kind::Mesh(m) => Some(m),
            _ => None,
        }
    }
    fn trust_bundle(&self) -> Option<&v1::TrustBundle> {
        match self.get(&ResourceId::TrustBundle)? {
            v1::resource::Kind::TrustBundle(t) => Some(t),
            _ => None,
        }
    }
    fn inbound_ports(&self) -> impl Iterator<Item = &v1::InboundPort> {
        kind_range!(self, ResourceId::Inbound(0), Inbound)
    }
    fn services(&self) -> impl Iterator<Item = &v1::OutboundService> {
        kind_range!(self, ResourceId::Outbound(String::new()), Outbound)
    }
    fn endpoint_sets(&self) -> impl Iterator<Item = &v1::EndpointSet> {
        kind_range!(self, ResourceId::Endpoints(String::new()), Endpoints)
    }
    fn egress_rules(&self) -> impl Iterator<Item = &v1::EgressRule> {
        kind_range!(self, ResourceId::Egress(String::new()), Egress)
    }
}

impl serde::Serialize for ConfigStore {
    /// As the config it holds (`/config_dump`).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_config().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(key: &str) -> v1::Resource {
        v1::Resource {
            kind: Some(v1::resource::Kind::Endpoints(v1::EndpointSet {
                key: key.into(),
                ..Default::default()
            })),
        }
    }

    fn batch(full: bool, upserts: Vec<v1::Resource>, removals: &[&str]) -> v1::ConfigUpdate {
        v1::ConfigUpdate {
            version: "v".into(),
            full,
            upserts,
            removals: removals
                .iter()
                .map(|k| v1::ResourceKey {
                    kind: v1::resource_key::Kind::Endpoints as i32,
                    key: (*k).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn batches_apply_as_the_protocol_says_and_name_what_they_touched() {
        let cases: Vec<(&str, v1::ConfigUpdate, Vec<&str>, Changed)> = vec![
            (
                "an upsert adds",
                batch(false, vec![endpoints("c")], &[]),
                vec!["a", "b", "c"],
                Changed::Keys([ResourceId::Endpoints("c".into())].into()),
            ),
            (
                "a removal deletes, an absent key is no error",
                batch(false, vec![], &["a", "zz"]),
                vec!["b"],
                Changed::Keys(
                    [
                        ResourceId::Endpoints("a".into()),
                        ResourceId::Endpoints("zz".into()),
                    ]
                    .into(),
                ),
            ),
            (
                "a full batch replaces everything",
                batch(true, vec![endpoints("z")], &[]),
                vec!["z"],
                Changed::All,
            ),
        ];
        let start = ConfigStore::default()
            .apply(batch(true, vec![endpoints("b"), endpoints("a")], &[]))
            .unwrap()
            .0;
        for (name, update, keys, changed) in cases {
            let (next, got) = start.apply(update.clone()).unwrap();
            let config = next.to_config();
            let got_keys: Vec<&str> = config.endpoints.iter().map(|e| e.key.as_str()).collect();
            assert_eq!(got_keys, keys, "{name}");
            assert_eq!(got, changed, "{name}");
            // The same as the protocol's own function.
            let want = osm_api::protocol::apply_update(&start.to_config(), &update).unwrap();
            assert_eq!(config, want, "{name}");
        }
        // The store it came from is unchanged.
        assert_eq!(start.to_config().endpoints.len(), 2);
    }

    #[test]
    fn unreadable_batches_are_refused_whole() {
        let start = ConfigStore::default();
        let empty = batch(false, vec![v1::Resource { kind: None }], &[]);
        assert_eq!(
            start.apply(empty).unwrap_err(),
            UpdateError::EmptyResource(0)
        );
        let mut bad_removal = batch(false, vec![], &[]);
        bad_removal.removals.push(v1::ResourceKey {
            kind: v1::resource_key::Kind::Inbound as i32,
            key: "http".into(),
        });
        assert!(matches!(
            start.apply(bad_removal),
            Err(UpdateError::BadRemoval { index: 0, .. })
        ));
    }
}
