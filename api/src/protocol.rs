//! The config protocol's keyed updates: turning a resource map into
//! `ConfigUpdate` batches, and applying a batch to a config, atomically.

use std::collections::BTreeMap;

use crate::{
    compile::{Delta, ResourceId},
    v1,
};

/// The key of a resource.
pub fn resource_id(resource: &v1::Resource) -> Option<ResourceId> {
    use v1::resource::Kind;
    Some(match resource.kind.as_ref()? {
        Kind::Mesh(_) => ResourceId::Mesh,
        Kind::TrustBundle(_) => ResourceId::TrustBundle,
        Kind::Inbound(p) => ResourceId::Inbound(p.port),
        Kind::Outbound(s) => ResourceId::Outbound(s.key.clone()),
        Kind::Endpoints(e) => ResourceId::Endpoints(e.key.clone()),
        Kind::Egress(e) => ResourceId::Egress(e.name.clone()),
    })
}

/// A removal on the wire; the singletons (mesh settings, trust bundle) are
/// replaced, never removed.
pub fn wire_key(id: &ResourceId) -> Option<v1::ResourceKey> {
    use v1::resource_key::Kind;
    let (kind, key) = match id {
        ResourceId::Mesh | ResourceId::TrustBundle => return None,
        ResourceId::Inbound(port) => (Kind::Inbound, port.to_string()),
        ResourceId::Outbound(k) => (Kind::Outbound, k.clone()),
        ResourceId::Endpoints(k) => (Kind::Endpoints, k.clone()),
        ResourceId::Egress(k) => (Kind::Egress, k.clone()),
    };
    Some(v1::ResourceKey {
        kind: kind as i32,
        key: key.clone(),
    })
}

/// A batch from a delta.
pub fn update(version: u64, full: bool, delta: Delta) -> v1::ConfigUpdate {
    v1::ConfigUpdate {
        version: version.to_string(),
        full,
        upserts: delta.upserts,
        removals: delta.removals.iter().filter_map(wire_key).collect(),
    }
}

/// Why a batch cannot be applied (the proxy NACKs it and keeps its config).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("upserts[{0}] has no resource")]
    EmptyResource(usize),
    #[error("removals[{index}]: {message}")]
    BadRemoval { index: usize, message: String },
}

/// The config after a batch: a full batch replaces everything, otherwise
/// upserts replace by key and removals delete by key. All or nothing.
pub fn apply_update(
    config: &v1::ProxyConfig,
    update: &v1::ConfigUpdate,
) -> Result<v1::ProxyConfig, UpdateError> {
    let mut map = if update.full {
        BTreeMap::new()
    } else {
        crate::compile::impact::resources(config)
    };
    for (i, removal) in update.removals.iter().enumerate() {
        use v1::resource_key::Kind;
        let bad = |message: String| UpdateError::BadRemoval { index: i, message };
        let id = match Kind::try_from(removal.kind)
            .map_err(|_| bad(format!("unknown kind {}", removal.kind)))?
        {
            Kind::Inbound => ResourceId::Inbound(
                removal
                    .key
                    .parse()
                    .map_err(|_| bad(format!("{:?} is not a port", removal.key)))?,
            ),
            Kind::Outbound => ResourceId::Outbound(removal.key.clone()),
            Kind::Endpoints => ResourceId::Endpoints(removal.key.clone()),
            Kind::Egress => ResourceId::Egress(removal.key.clone()),
            Kind::Unspecified => return Err(bad("no kind".into())),
        };
        map.remove(&id);
    }
    for (i, resource) in update.upserts.iter().enumerate() {
        let id = resource_id(resource).ok_or(UpdateError::EmptyResource(i))?;
        map.insert(id, resource.clone());
    }
    Ok(assemble(map.into_values()))
}

/// A config from resources.
pub fn assemble(resources: impl IntoIterator<Item = v1::Resource>) -> v1::ProxyConfig {
    use v1::resource::Kind;
    let mut config = v1::ProxyConfig::default();
    for r in resources {
        match r.kind {
            Some(Kind::Mesh(m)) => config.mesh = Some(m),
            Some(Kind::TrustBundle(t)) => config.trust_bundle = Some(t),
            Some(Kind::Inbound(p)) => config.inbound.push(p),
            Some(Kind::Outbound(s)) => config.outbound.push(s),
            Some(Kind::Endpoints(e)) => config.endpoints.push(e),
            Some(Kind::Egress(e)) => config.egress.push(e),
            None => {}
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(key: &str) -> v1::Resource {
        v1::Resource {
            kind: Some(v1::resource::Kind::Outbound(v1::OutboundService {
                key: key.into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn batches_upsert_remove_and_replace() {
        let full = v1::ConfigUpdate {
            version: "1".into(),
            full: true,
            upserts: vec![outbound("a"), outbound("b")],
            removals: vec![],
        };
        let config = apply_update(&v1::ProxyConfig::default(), &full).unwrap();
        assert_eq!(config.outbound.len(), 2);
        let delta = v1::ConfigUpdate {
            version: "2".into(),
            full: false,
            upserts: vec![outbound("c")],
            removals: vec![wire_key(&ResourceId::Outbound("a".into())).unwrap()],
        };
        let config = apply_update(&config, &delta).unwrap();
        let keys: Vec<&str> = config.outbound.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["b", "c"]);
        // A full batch drops what it does not list.
        let config = apply_update(
            &config,
            &v1::ConfigUpdate {
                full: true,
                upserts: vec![outbound("z")],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(config.outbound.len(), 1);
        assert_eq!(
            wire_key(&ResourceId::Mesh),
            None,
            "singletons are replaced, never removed"
        );
    }

    #[test]
    fn a_bad_batch_changes_nothing() {
        let config = v1::ProxyConfig::default();
        let bad_port = v1::ConfigUpdate {
            removals: vec![v1::ResourceKey {
                kind: v1::resource_key::Kind::Inbound as i32,
                key: "http".into(),
            }],
            ..Default::default()
        };
        assert_eq!(
            apply_update(&config, &bad_port).unwrap_err().to_string(),
            "removals[0]: \"http\" is not a port"
        );
        let empty = v1::ConfigUpdate {
            upserts: vec![v1::Resource { kind: None }],
            ..Default::default()
        };
        assert_eq!(
            apply_update(&config, &empty),
            Err(UpdateError::EmptyResource(0))
        );
    }
}
