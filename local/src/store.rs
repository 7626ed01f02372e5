//! The local API server's storage: one YAML file per object under
//! `<state>/api/<kind>/<namespace>/<name>.yaml`. The controller and the
//! injector read this directory as the cluster's state; the CLI and the
//! runtime write it, holding the store's lock for read-modify-write.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use nix::fcntl::{Flock, FlockArg};
use serde_json::Value;

use super::state::write_atomic;

/// Kind, namespace (empty for cluster-scoped kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

impl Key {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key an object states in its kind and metadata.
    pub fn of(value: &Value) -> Option<Self> {
        let kind = value.get("kind")?.as_str()?;
        let meta = value.get("metadata")?;
        Some(Self::new(
            kind,
            meta.get("namespace").and_then(Value::as_str).unwrap_or(""),
            meta.get("name")?.as_str()?,
        ))
    }
}

/// Only `Namespace` is cluster-scoped among the kinds local mode serves.
pub fn is_namespaced(kind: &str) -> bool {
    kind != "Namespace"
}

/// A Kubernetes object name (RFC 1123 subdomain): also what keeps a name
/// from escaping the store's directory.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} is not a valid name: lowercase letters, digits, '-' and '.', \
             starting and ending with a letter or digit"
        ))
    }
}

/// The store in a directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    lock: PathBuf,
}

/// A stored object.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub key: Key,
    pub value: Value,
}

/// The compiler's index over stored objects (what is not a mesh object,
/// or what validation refuses, is left out): the controller's view of
/// local mode, for the verbs and the API server's computed answers.
pub fn index_of<'a>(
    values: impl IntoIterator<Item = &'a Value>,
    mesh: osm_api::compile::MeshOptions,
) -> osm_api::compile::Index {
    let mut index = osm_api::compile::Index::new(mesh);
    for value in values {
        if let Ok(object) = osm_api::load::parse_object(value.clone()) {
            let _ = index.apply(object);
        }
    }
    index
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>, lock: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lock: lock.into(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &Key) -> PathBuf {
        let namespace = if key.namespace.is_empty() {
            "_cluster"
        } else {
            &key.namespace
        };
        self.dir
            .join(key.kind.to_ascii_lowercase())
            .join(namespace)
            .join(format!("{}.yaml", key.name))
    }

    /// Held for a read-modify-write; released when dropped.
    pub fn lock(&self) -> anyhow::Result<Flock<File>> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .with_context(|| format!("cannot open {}", self.lock.display()))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", self.lock.display()))
    }

    pub fn get(&self, key: &Key) -> anyhow::Result<Option<Value>> {
        read_object(&self.path(key))
    }

    /// Every stored object, ordered by key.
    pub fn list(&self) -> anyhow::Result<Vec<Stored>> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml")
                    && let Some(value) = read_object(&path)?
                    && let Some(key) = Key::of(&value)
                {
                    out.push(Stored { key, value });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    pub fn put(&self, value: &Value) -> anyhow::Result<()> {
        let key = Key::of(value).context("an object without kind or metadata.name")?;
        let text = serde_yaml_ng::to_string(value).context("cannot write YAML")?;
        write_atomic(&self.path(&key), text.as_bytes())
    }

    /// Removes an object; false when there was none.
    pub fn remove(&self, key: &Key) -> anyhow::Result<bool> {
        let path = self.path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }
}

fn read_object(path: &Path) -> anyhow::Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            Ok(Some(serde_yaml_ng::from_str(&text).with_context(|| {
                format!("{} is damaged", path.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_round_trip_and_list_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("api"), dir.path().join("lock"));
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "b", "namespace": "x"}, "spec": {"clusterIP": "10.0.0.1"}});
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
        store.put(&svc).unwrap();
        store.put(&ns).unwrap();
        let all = store.list().unwrap();
        assert_eq!(
            all.iter().map(|s| s.key.to_string()).collect::<Vec<_>>(),
            ["Namespace x", "Service x/b"]
        );
        assert_eq!(
            store.get(&Key::new("Service", "x", "b")).unwrap(),
            Some(svc)
        );
        assert!(store.remove(&Key::new("Service", "x", "b")).unwrap());
        assert!(!store.remove(&Key::new("Service", "x", "b")).unwrap());
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn names_cannot_escape_the_store() {
        for bad in ["", "../etc", "a/b", "A", "-a", "a..b", "a_b"] {
            assert!(check_name("name", bad).is_err(), "{bad:?}");
        }
        for good in ["a", "book-store", "osm-mesh-config", "v1.2"] {
            assert!(check_name("name", good).is_ok(), "{good:?}");
        }
    }
}
