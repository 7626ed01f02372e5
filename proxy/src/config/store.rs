//! The proxy's side of the config stream: the resources it holds, by key,
//! in a persistent map, so a batch of k changes costs O(k log n) and the
//! previous config shares everything else with the next (a proxy with
//! 10,000 services used to copy all of them for every batch).
//!
//! Each resource is kept as its wire encoding, one allocation, where its
//! decoded form has about twenty (strings and vectors): at 10,000 services
//! the decoded config held 17.7 MB of the proxy's heap, the encoded one
//! holds about a quarter. What reads it decodes: a batch's touched
//! resources, a whole build, `/config_dump`; never the request path.

use std::{collections::BTreeSet, fmt, sync::Arc};

use osm_api::{
    protocol::{ResourceId, UpdateError, assemble, into_resources, removal_id, resource_id},
    v1,
};
use prost::Message;

use super::{
    batch::Batch,
    packed::{packed_from, sorted_last_wins},
};

/// Resources by key, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ConfigStore {
    resources: imbl::OrdMap<ResourceId, Encoded>,
}

/// One resource as the protocol encodes it (an endpoint set keeps its own
/// to make its endpoints from when first used: the same bytes, not a copy).
#[derive(Clone, PartialEq, Eq)]
pub struct Encoded(Arc<[u8]>);

impl Encoded {
    pub(super) fn of(resource: &v1::Resource) -> Self {
        Self(resource.encode_to_vec().into())
    }

    /// An upsert as it came, once it is known to decode (to its key).
    fn keyed(index: usize, upsert: &[u8]) -> Result<(ResourceId, Self), UpdateError> {
        let resource =
            v1::Resource::decode(upsert).map_err(|e| UpdateError::UndecodableResource {
                index,
                message: e.to_string(),
            })?;
        let id = resource_id(&resource).ok_or(UpdateError::EmptyResource(index))?;
        Ok((id, Self(upsert.into())))
    }

    /// What it holds. Bytes this store keeps always decode (they were
    /// decoded before they were kept); were that ever untrue, the resource
    /// reads as absent and the error is logged rather than taking the
    /// proxy down.
    fn decode(&self) -> Option<v1::resource::Kind> {
        match v1::Resource::decode(&*self.0) {
            Ok(resource) => resource.kind,
            Err(error) => {
                tracing::error!(%error, "a kept config resource does not decode; read as absent");
                None
            }
        }
    }
}

impl fmt::Debug for Encoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Encoded({} bytes)", self.0.len())
    }
}

/// An encoded resource decoded, when it is of kind `$variant`.
macro_rules! decoded_as {
    ($encoded:expr, $variant:ident) => {
        match $encoded.decode()? {
            v1::resource::Kind::$variant(x) => Some(x),
            _ => None,
        }
    };
}

impl Encoded {
    /// The endpoint set it holds, if it holds one.
    pub(crate) fn endpoint_set(&self) -> Option<v1::EndpointSet> {
        decoded_as!(self, Endpoints)
    }
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
    /// A config's resources (a later duplicate key replaces an earlier
    /// one: a config file with duplicates is refused before).
    pub fn from_config(config: v1::ProxyConfig) -> Self {
        FileResources::from_config(config).into_store()
    }

    /// The store after `update`, and what it touched: a full batch
    /// replaces everything, otherwise upserts replace by key and removals
    /// delete by key. All or nothing, as [`osm_api::protocol::apply_update`].
    /// Each upsert is kept as it came, decoded only to find its key.
    pub fn apply(&self, update: impl Into<Batch>) -> Result<(Self, Changed), UpdateError> {
        let update = update.into();
        if update.full {
            return Self::whole(update).map(|store| (store, Changed::All));
        }
        let mut resources = self.resources.clone();
        let mut touched = BTreeSet::new();
        for (i, removal) in update.removals.iter().enumerate() {
            let id = removal_id(i, removal)?;
            resources.remove(&id);
            touched.insert(id);
        }
        for (i, upsert) in update.upserts.iter().enumerate() {
            let (id, encoded) = Encoded::keyed(i, upsert)?;
            resources.insert(id.clone(), encoded);
            touched.insert(id);
        }
        Ok((Self { resources }, Changed::Keys(touched)))
    }

    /// A full batch's resources (its removals name nothing to remove, but
    /// must be valid), kept in a map with full nodes.
    fn whole(update: Batch) -> Result<Self, UpdateError> {
        for (i, removal) in update.removals.iter().enumerate() {
            removal_id(i, removal)?;
        }
        let mut entries = Vec::with_capacity(update.upserts.len());
        for (i, upsert) in update.upserts.into_iter().enumerate() {
            entries.push(Encoded::keyed(i, &upsert)?);
        }
        Ok(Self {
            resources: packed_from(sorted_last_wins(entries)),
        })
    }

    /// The whole config, in key order (as the stream's batches assemble).
    pub fn to_config(&self) -> v1::ProxyConfig {
        assemble(
            self.resources
                .values()
                .map(|r| v1::Resource { kind: r.decode() }),
        )
    }

    pub fn outbound(&self, key: &str) -> Option<v1::OutboundService> {
        let id = ResourceId::Outbound(key.to_string());
        decoded_as!(self.resources.get(&id)?, Outbound)
    }

    /// An endpoint set, decoded and as kept.
    pub fn endpoints(&self, key: &str) -> Option<(v1::EndpointSet, Encoded)> {
        let id = ResourceId::Endpoints(key.to_string());
        let encoded = self.resources.get(&id)?;
        Some((encoded.endpoint_set()?, encoded.clone()))
    }

    /// The very same resources (not only equal ones): `other` is this
    /// store or a clone of it.
    pub fn same(&self, other: &Self) -> bool {
        self.resources.ptr_eq(&other.resources)
    }
}

/// A config's resources as a whole build reads them: a config file's in
/// its order (errors name their index in the file), the stream's in key
/// order. Both the store and a file's resources ([`FileResources`]) decode
/// each one as it is read, so a pass over them costs a decode per
/// resource.
pub trait ConfigSource {
    fn mesh(&self) -> Option<v1::MeshSettings>;
    fn trust_bundle(&self) -> Option<v1::TrustBundle>;
    fn inbound_ports(&self) -> impl Iterator<Item = v1::InboundPort> + '_;
    fn services(&self) -> impl Iterator<Item = v1::OutboundService> + '_;
    /// Each set decoded, and as kept (see [`Encoded`]).
    fn endpoint_sets(&self) -> impl Iterator<Item = (v1::EndpointSet, Encoded)> + '_;
    fn egress_rules(&self) -> impl Iterator<Item = v1::EgressRule> + '_;
}

/// The resources of one kind, decoded: ids of a kind are contiguous in
/// key order, so the range stops at the first id of another kind without
/// decoding it.
macro_rules! kind_range {
    ($store:expr, $variant:ident, $from:expr) => {
        $store
            .resources
            .range($from..)
            .take_while(|(id, _)| matches!(id, ResourceId::$variant(_)))
            .filter_map(|(_, r)| decoded_as!(r, $variant))
    };
}

impl ConfigSource for ConfigStore {
    fn mesh(&self) -> Option<v1::MeshSettings> {
        decoded_as!(self.resources.get(&ResourceId::Mesh)?, Mesh)
    }
    fn trust_bundle(&self) -> Option<v1::TrustBundle> {
        decoded_as!(self.resources.get(&ResourceId::TrustBundle)?, TrustBundle)
    }
    fn inbound_ports(&self) -> impl Iterator<Item = v1::InboundPort> + '_ {
        kind_range!(self, Inbound, ResourceId::Inbound(0))
    }
    fn services(&self) -> impl Iterator<Item = v1::OutboundService> + '_ {
        kind_range!(self, Outbound, ResourceId::Outbound(String::new()))
    }
    fn endpoint_sets(&self) -> impl Iterator<Item = (v1::EndpointSet, Encoded)> + '_ {
        self.resources
            .range(ResourceId::Endpoints(String::new())..)
            .take_while(|(id, _)| matches!(id, ResourceId::Endpoints(_)))
            .filter_map(|(_, r)| Some((r.endpoint_set()?, r.clone())))
    }
    fn egress_rules(&self) -> impl Iterator<Item = v1::EgressRule> + '_ {
        kind_range!(self, Egress, ResourceId::Egress(String::new()))
    }
}

/// A config file's resources, encoded, in the file's order: the parsed
/// config is freed as it is encoded, before the build, which decodes one
/// resource at a time, finds duplicates and names a bad resource by its
/// index in the file. (At 10,000 services, building from the parsed
/// config kept its 17.7 MB alive under the build's own allocations.)
#[derive(Debug, PartialEq, Eq)]
pub struct FileResources(Vec<(ResourceId, Encoded)>);

impl FileResources {
    /// Resources already encoded, in the file's order
    /// ([`super::file_stream`]).
    pub(super) fn from_encoded(resources: Vec<(ResourceId, Encoded)>) -> Self {
        Self(resources)
    }

    pub fn from_config(config: v1::ProxyConfig) -> Self {
        Self(
            into_resources(config)
                .map(|(id, r)| (id, Encoded::of(&r)))
                .collect(),
        )
    }

    /// The resources by key, as the store keeps them (a later duplicate
    /// replaces an earlier one: the build has refused duplicates).
    pub fn into_store(self) -> ConfigStore {
        ConfigStore {
            resources: packed_from(sorted_last_wins(self.0)),
        }
    }
}

/// A file's resources of one kind, decoded, in the file's order.
macro_rules! file_kind {
    ($file:expr, $variant:ident) => {
        $file
            .0
            .iter()
            .filter(|(id, _)| matches!(id, ResourceId::$variant { .. }))
            .filter_map(|(_, r)| decoded_as!(r, $variant))
    };
}

impl ConfigSource for FileResources {
    fn mesh(&self) -> Option<v1::MeshSettings> {
        file_kind!(self, Mesh).next()
    }
    fn trust_bundle(&self) -> Option<v1::TrustBundle> {
        file_kind!(self, TrustBundle).next()
    }
    fn inbound_ports(&self) -> impl Iterator<Item = v1::InboundPort> + '_ {
        file_kind!(self, Inbound)
    }
    fn services(&self) -> impl Iterator<Item = v1::OutboundService> + '_ {
        file_kind!(self, Outbound)
    }
    fn endpoint_sets(&self) -> impl Iterator<Item = (v1::EndpointSet, Encoded)> + '_ {
        self.0
            .iter()
            .filter(|(id, _)| matches!(id, ResourceId::Endpoints(_)))
            .filter_map(|(_, r)| Some((r.endpoint_set()?, r.clone())))
    }
    fn egress_rules(&self) -> impl Iterator<Item = v1::EgressRule> + '_ {
        file_kind!(self, Egress)
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
    fn a_file_is_read_in_its_order_and_kept_by_key() {
        let config = osm_api::protocol::assemble([endpoints("b"), endpoints("a")]);
        let file = FileResources::from_config(config.clone());
        let in_file: Vec<String> = file.endpoint_sets().map(|(e, _)| e.key.clone()).collect();
        assert_eq!(in_file, ["b", "a"]);
        assert!(file.mesh().is_none() && file.services().next().is_none());
        let store = file.into_store();
        let kept: Vec<String> = store.endpoint_sets().map(|(e, _)| e.key.clone()).collect();
        assert_eq!(kept, ["a", "b"]);
        assert_eq!(
            store.endpoints("b").map(|(e, _)| e.key),
            Some("b".to_string())
        );
        assert!(store.outbound("b").is_none());
        assert_eq!(
            store.to_config(),
            ConfigStore::from_config(config).to_config()
        );
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
