//! Identical resources shared between proxies' views: the pods of one
//! service get the same inbound policy, every client of a service the
//! same outbound service and endpoint set, every proxy the same mesh
//! settings and trust bundle. Each is held once, however many proxies
//! hold it (at 10,000 proxies the views were most of the controller's own
//! data).

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash as _, Hasher as _},
    sync::{Arc, Weak},
};

use prost::Message as _;

use crate::{protocol::ResourceId, v1};

/// Live resources by id and content; entries whose resource no view holds
/// any more are swept when the map has doubled since the last sweep.
#[derive(Debug, Default)]
pub struct Interner {
    live: HashMap<(ResourceId, u64), Weak<v1::Resource>>,
    size_after_sweep: usize,
}

/// The smallest size a sweep waits for.
const SWEEP_FLOOR: usize = 1024;

impl Interner {
    /// The live resource equal to `resource` under `id`, or `resource`
    /// itself, now known.
    pub fn intern(&mut self, id: &ResourceId, resource: Arc<v1::Resource>) -> Arc<v1::Resource> {
        let key = (id.clone(), fingerprint(&resource));
        if let Some(live) = self.live.get(&key).and_then(Weak::upgrade) {
            // Equal fingerprints of unequal resources are not shared.
            return if *live == *resource { live } else { resource };
        }
        if self.live.len() >= (2 * self.size_after_sweep).max(SWEEP_FLOOR) {
            self.live.retain(|_, r| r.strong_count() > 0);
            self.size_after_sweep = self.live.len();
        }
        self.live.insert(key, Arc::downgrade(&resource));
        resource
    }

    /// How many resources it knows (live or waiting for a sweep).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.live.len()
    }
}

fn fingerprint(resource: &v1::Resource) -> u64 {
    let mut h = DefaultHasher::new();
    resource.encode_to_vec().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound(port: u32, source: &str) -> Arc<v1::Resource> {
        Arc::new(v1::Resource {
            kind: Some(v1::resource::Kind::Inbound(v1::InboundPort {
                port,
                authorizations: vec![v1::Authorization {
                    name: "ns/allow".into(),
                    sources: vec![source.into()],
                    traffic: None,
                }],
                ..Default::default()
            })),
        })
    }

    #[test]
    fn equal_resources_are_one_and_different_ones_stay_apart() {
        let mut interner = Interner::default();
        let id = ResourceId::Inbound(8080);
        let first = interner.intern(&id, inbound(8080, "a"));
        let same = interner.intern(&id, inbound(8080, "a"));
        assert!(Arc::ptr_eq(&first, &same));
        let other = interner.intern(&id, inbound(8080, "b"));
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(interner.len(), 2);
        // Once no view holds it, an equal resource is new again.
        drop((first, same));
        let again = interner.intern(&id, inbound(8080, "a"));
        assert_eq!(Arc::strong_count(&again), 1);
    }

    #[test]
    fn dead_entries_are_swept_as_the_map_grows() {
        let mut interner = Interner::default();
        for i in 0..(SWEEP_FLOOR as u32 * 3) {
            let _dropped = interner.intern(&ResourceId::Inbound(i), inbound(i, "a"));
        }
        assert!(interner.len() <= SWEEP_FLOOR * 2, "{}", interner.len());
    }
}
