//! Where the mesh CA and a rotation's state are kept, so a controller
//! restarted mid-rotation resumes from its phase: the Secret
//! `osm-ca-bundle` on Kubernetes ([`crate::kubernetes::ca_secret`]), a
//! directory in local mode ([`DirStore`]).

use std::{
    collections::BTreeMap,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    CaError, LocalCa,
    rotation::{self, Phase, Stored},
};

/// A place the CA's state is read from and written to.
#[tonic::async_trait]
pub trait CaStore: Send + Sync + std::fmt::Debug {
    /// The state as kept now.
    async fn load(&self) -> Result<Stored, CaError>;
    /// Replaces the state; `bundle_pem` is the trust bundle it makes, for
    /// readers outside the controller.
    async fn save(&self, stored: &Stored, bundle_pem: &str) -> Result<(), CaError>;
}

/// Local mode's CA directory. The whole state is one file written
/// atomically (`ca-state.json`, readable by its owner only), so a crash
/// never leaves a certificate beside another's key; `ca.crt` and
/// `private.key` (OSM's names) mirror the issuing CA and
/// `trust-bundle.crt` the bundle proxies are sent, for the rest of local
/// mode (the injector, `osm local`).
#[derive(Debug, Clone)]
pub struct DirStore {
    dir: PathBuf,
}

const STATE_FILE: &str = "ca-state.json";
/// The trust bundle as the controller sends it to proxies.
pub const BUNDLE_FILE: &str = "trust-bundle.crt";

fn load_error(path: &Path, e: impl std::fmt::Display) -> CaError {
    CaError::Load(format!("{}: {e}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file and a rename, with
/// `mode` from the start (a key is never readable by others, not even
/// briefly).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| load_error(dir, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| load_error(&tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| load_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| load_error(path, e))
}

impl DirStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn read(&self, name: &str) -> Result<Option<String>, CaError> {
        let path = self.dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(load_error(&path, e)),
        }
    }

    /// The state kept in the directory; None when there is no CA yet.
    pub fn load_sync(&self) -> Result<Option<Stored>, CaError> {
        let state_path = self.dir.join(STATE_FILE);
        if let Some(json) = self.read(STATE_FILE)? {
            let data: BTreeMap<String, String> =
                serde_json::from_str(&json).map_err(|e| load_error(&state_path, e))?;
            return rotation::decode(&data)
                .map(Some)
                .map_err(|e| load_error(&state_path, e));
        }
        // A directory from before rotations: OSM's two files.
        match (
            self.read(rotation::CERT_KEY)?,
            self.read(rotation::KEY_KEY)?,
        ) {
            (Some(cert), Some(key)) => Ok(Some(Stored {
                cert,
                key,
                phase: Phase::Steady,
            })),
            _ => Ok(None),
        }
    }

    pub fn save_sync(&self, stored: &Stored, bundle_pem: &str) -> Result<(), CaError> {
        let json = serde_json::to_string_pretty(&rotation::encode(stored))
            .map_err(|e| CaError::Load(e.to_string()))?;
        // The state first: the mirrors follow it, and a crash between
        // leaves the state right and the mirrors rewritten at the next save.
        write_atomic(&self.dir.join(STATE_FILE), json.as_bytes(), 0o600)?;
        write_atomic(
            &self.dir.join(rotation::KEY_KEY),
            stored.key.as_bytes(),
            0o600,
        )?;
        write_atomic(
            &self.dir.join(rotation::CERT_KEY),
            stored.cert.as_bytes(),
            0o644,
        )?;
        write_atomic(&self.dir.join(BUNDLE_FILE), bundle_pem.as_bytes(), 0o644)
    }

    /// The state, made on first start (a new root valid for `validity`).
    /// A directory from before rotations gets its state file and bundle
    /// file written.
    pub fn load_or_create(&self, validity: Duration) -> Result<Stored, CaError> {
        if let Some(stored) = self.load_sync()? {
            if !self.dir.join(STATE_FILE).exists() {
                self.save_sync(&stored, &rotation::trust_bundle(&stored)?)?;
            }
            return Ok(stored);
        }
        let (cert, key) = LocalCa::generate(validity)?.to_pem();
        let stored = Stored {
            cert,
            key,
            phase: Phase::Steady,
        };
        self.save_sync(&stored, &rotation::trust_bundle(&stored)?)?;
        Ok(stored)
    }
}

impl DirStore {
    /// The issuing CA, made on first start.
    pub fn load_ca(&self, validity: Duration) -> Result<LocalCa, CaError> {
        let stored = self.load_or_create(validity)?;
        LocalCa::from_pem(&stored.cert, &stored.key)
    }
}

#[tonic::async_trait]
impl CaStore for DirStore {
    async fn load(&self) -> Result<Stored, CaError> {
        self.load_sync()?
            .ok_or_else(|| CaError::Load(format!("no CA in {}", self.dir.display())))
    }

    async fn save(&self, stored: &Stored, bundle_pem: &str) -> Result<(), CaError> {
        self.save_sync(stored, bundle_pem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_directory_keeps_a_rotation_and_mirrors_the_issuing_ca() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        assert_eq!(store.load_sync().unwrap(), None);
        let first = store.load_or_create(Duration::from_secs(3600)).unwrap();
        assert_eq!(
            store.load_or_create(Duration::from_secs(3600)).unwrap(),
            first
        );
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("ca.crt"), first.cert);
        assert_eq!(read(BUNDLE_FILE), first.cert);
        for secret in ["private.key", STATE_FILE] {
            assert_eq!(mode(&dir.path().join(secret)), 0o600, "{secret}");
        }

        let (next_cert, next_key) = LocalCa::generate(Duration::from_secs(3600))
            .unwrap()
            .to_pem();
        let started = rotation::start(&first, (next_cert.clone(), next_key)).unwrap();
        let bundle = rotation::trust_bundle(&started).unwrap();
        store.save_sync(&started, &bundle).unwrap();
        assert_eq!(store.load_sync().unwrap(), Some(started));
        assert_eq!(read(BUNDLE_FILE), format!("{}{next_cert}", first.cert));
        assert_eq!(read("ca.crt"), first.cert, "the old root still issues");
    }

    #[test]
    fn a_directory_from_before_rotations_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = LocalCa::generate(Duration::from_secs(3600))
            .unwrap()
            .to_pem();
        std::fs::write(dir.path().join("ca.crt"), &cert).unwrap();
        std::fs::write(dir.path().join("private.key"), &key).unwrap();
        let stored = DirStore::new(dir.path()).load_sync().unwrap().unwrap();
        assert_eq!(
            (&stored.cert, &stored.key, &stored.phase),
            (&cert, &key, &Phase::Steady)
        );
        // Loaded to run: the state and bundle files are written beside.
        let store = DirStore::new(dir.path());
        assert_eq!(
            store.load_or_create(Duration::from_secs(60)).unwrap(),
            stored
        );
        assert!(dir.path().join(STATE_FILE).exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join(BUNDLE_FILE)).unwrap(),
            cert
        );
        std::fs::write(dir.path().join(STATE_FILE), "{").unwrap();
        let broken = DirStore::new(dir.path()).load_sync().unwrap_err();
        assert!(broken.to_string().contains(STATE_FILE), "{broken}");
    }
}
