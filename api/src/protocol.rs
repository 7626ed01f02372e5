//! The config protocol's keyed resources: a `ProxyConfig` as resources by
//! key, the keyed difference between two of them, `ConfigUpdate` batches
//! made from that difference, and a batch applied to a config, atomically.
//!
//! Both ends of the stream use this module and nothing else: the controller
//! diffs what it sent against what it has now; the proxy applies the batch.

use std::{collections::BTreeMap, sync::Arc};

use crate::v1;

/// A resource's identity in the config protocol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceId {
    Mesh,
    TrustBundle,
    Inbound(u32),
    Outbound(String),
    Endpoints(String),
    Egress(String),
}

/// A config as resources by key. Shared, not copied: the controller's
/// compiler gives every proxy whose view holds an identical resource the
/// same one.
pub type Resources = BTreeMap<ResourceId, Arc<v1::Resource>>;

/// What one proxy must change: keyed upserts and removals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    pub upserts: Vec<v1::Resource>,
    pub removals: Vec<ResourceId>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removals.is_empty()
    }
}

/// Splits a config into keyed resources.
pub fn resources(config: &v1::ProxyConfig) -> Resources {
    into_resources(config.clone())
        .map(|(id, r)| (id, Arc::new(r)))
        .collect()
}

/// A config's resources with their ids, moved out of it (in the config's
/// order: a later duplicate id follows an earlier one).
pub fn into_resources(config: v1::ProxyConfig) -> impl Iterator<Item = (ResourceId, v1::Resource)> {
    use v1::resource::Kind;
    let v1::ProxyConfig {
        mesh,
        trust_bundle,
        inbound,
        outbound,
        endpoints,
        egress,
    } = config;
    (mesh.map(Kind::Mesh).into_iter())
        .chain(trust_bundle.map(Kind::TrustBundle))
        .chain(inbound.into_iter().map(Kind::Inbound))
        .chain(outbound.into_iter().map(Kind::Outbound))
        .chain(endpoints.into_iter().map(Kind::Endpoints))
        .chain(egress.into_iter().map(Kind::Egress))
        .filter_map(|kind| {
            let resource = v1::Resource { kind: Some(kind) };
            Some((resource_id(&resource)?, resource))
        })
}

/// Keyed upserts and removals turning `old` into `new`.
pub fn diff(old: &Resources, new: &Resources) -> Delta {
    Delta {
        upserts: new
            .iter()
            .filter(|(k, v)| {
                old.get(*k)
                    .is_none_or(|o| !Arc::ptr_eq(o, v) && **o != ***v)
            })
            .map(|(_, v)| v1::Resource::clone(v))
            .collect(),
        removals: old
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect(),
    }
}

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

/// How long the side that sees the `consecutive`-th refusal in a row of the
/// same config waits before the next round: the first resend is immediate
/// (a NACK is a request for a full batch), then 100 ms doubling to 30 s.
/// Both ends follow it, so a batch that can never be applied costs a round
/// trip every 30 s, not a busy loop, whichever side is older.
pub fn nack_backoff(consecutive: u32) -> std::time::Duration {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(100);
    const CAP: std::time::Duration = std::time::Duration::from_secs(30);
    match consecutive {
        0 | 1 => std::time::Duration::ZERO,
        n => FIRST.saturating_mul(1u32 << (n - 2).min(20)).min(CAP),
    }
}

/// Why a batch cannot be applied (the proxy NACKs it and keeps its config).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("upserts[{0}] has no resource")]
    EmptyResource(usize),
    /// A proxy that reads each upsert on its own ([`v1::Resource`] by
    /// resource) names the one that does not decode.
    #[error("upserts[{index}] does not decode: {message}")]
    UndecodableResource { index: usize, message: String },
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
        resources(config)
    };
    for (i, removal) in update.removals.iter().enumerate() {
        map.remove(&removal_id(i, removal)?);
    }
    for (i, resource) in update.upserts.iter().enumerate() {
        let id = resource_id(resource).ok_or(UpdateError::EmptyResource(i))?;
        map.insert(id, Arc::new(resource.clone()));
    }
    Ok(assemble(map.into_values().map(Arc::unwrap_or_clone)))
}

/// The resource a batch's `removals[index]` names.
pub fn removal_id(index: usize, removal: &v1::ResourceKey) -> Result<ResourceId, UpdateError> {
    use v1::resource_key::Kind;
    let bad = |message: String| UpdateError::BadRemoval { index, message };
    Ok(
        match Kind::try_from(removal.kind)
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
        },
    )
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
    fn repeated_refusals_back_off_to_thirty_seconds() {
        let ms = |n| nack_backoff(n).as_millis();
        let schedule: Vec<u128> = (0..12).map(ms).collect();
        assert_eq!(
            schedule,
            [
                0, 0, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000
            ]
        );
        assert_eq!(ms(u32::MAX), 30000);
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
