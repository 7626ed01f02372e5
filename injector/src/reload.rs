//! Files the injector reads again when they change, because a root
//! rotation changes them under a running injector: the mesh's trust bundle
//! it injects into pods, and its own certificate (both from the Secret
//! `osm-injector-tls` the controller rewrites, which the kubelet updates
//! in the mounted volume; local mode's controller rewrites the bundle
//! file).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::SystemTime,
};

use rustls::{server::ResolvesServerCert, sign::CertifiedKey};

/// What identifies a version of a file: its inode (a file replaced by a
/// rename, as the kubelet and local mode replace them, is a new one),
/// modification time and length (timestamps are coarse: two writes in the
/// same few milliseconds may share one).
type Stamp = (u64, Option<SystemTime>, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.modified().ok(), meta.len()))
}

/// A file's contents, read again when its stamp changes. A read that
/// fails (the file briefly missing while it is replaced) keeps the last
/// good contents.
#[derive(Debug)]
pub struct Watched {
    path: PathBuf,
    last: Mutex<(Option<Stamp>, Arc<Vec<u8>>)>,
}

impl Watched {
    /// Reads `path` now: it must exist at start.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let before = stamp(path);
        let bytes = std::fs::read(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            last: Mutex::new((before, Arc::new(bytes))),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contents as of now.
    pub fn read(&self) -> Arc<Vec<u8>> {
        let now = stamp(&self.path);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if now.is_some() && now != last.0 {
            match std::fs::read(&self.path) {
                Ok(bytes) => *last = (now, Arc::new(bytes)),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot read it again; the last contents stay")
                }
            }
        }
        last.1.clone()
    }

    /// The contents as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.read()).into_owned()
    }
}

/// The injector's serving certificate from a certificate file and a key
/// file, built again when either changes (a pair that does not match, as
/// between the two files' updates, keeps the last good one).
#[derive(Debug)]
pub struct CertFiles {
    cert: Watched,
    key: Watched,
    built: Mutex<Built>,
}

/// The certificate and key files' contents a certified key was built from.
type Built = (Arc<Vec<u8>>, Arc<Vec<u8>>, Arc<CertifiedKey>);

fn build(cert: &[u8], key: &[u8]) -> Result<CertifiedKey, String> {
    let (chain, key) = osm_serve::parse_pem(cert, key)?;
    CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())
        .map_err(|e| e.to_string())
}

impl CertFiles {
    pub fn open(cert: &Path, key: &Path) -> anyhow::Result<Arc<Self>> {
        let (cert, key) = (Watched::open(cert)?, Watched::open(key)?);
        let (c, k) = (cert.read(), key.read());
        let built = build(&c, &k).map_err(anyhow::Error::msg)?;
        Ok(Arc::new(Self {
            cert,
            key,
            built: Mutex::new((c, k, Arc::new(built))),
        }))
    }

    fn current(&self) -> Arc<CertifiedKey> {
        let (c, k) = (self.cert.read(), self.key.read());
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if !Arc::ptr_eq(&c, &built.0) || !Arc::ptr_eq(&k, &built.1) {
            match build(&c, &k) {
                Ok(next) => {
                    tracing::info!(cert = %self.cert.path().display(), "serving certificate reloaded");
                    *built = (c, k, Arc::new(next));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "the certificate files do not form a pair yet")
                }
            }
        }
        built.2.clone()
    }

    /// A rustls server config presenting the files' certificate (HTTP/2
    /// and HTTP/1.1).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Replaces `path` as the kubelet does: a new file renamed over it.
    fn replace(path: &Path, text: &str) {
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    #[test]
    fn a_changed_file_is_read_again_and_a_broken_pair_keeps_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("ca.crt");
        std::fs::write(&bundle, "ROOT-1").unwrap();
        let watched = Watched::open(&bundle).unwrap();
        assert_eq!(watched.text(), "ROOT-1");
        replace(&bundle, "ROOT-1ROOT-2");
        assert_eq!(watched.text(), "ROOT-1ROOT-2");
        std::fs::remove_file(&bundle).unwrap();
        assert_eq!(watched.text(), "ROOT-1ROOT-2", "missing: the last stays");

        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let (c1, k1) = pair("one.example");
        std::fs::write(&cert, &c1).unwrap();
        std::fs::write(&key, &k1).unwrap();
        let files = CertFiles::open(&cert, &key).unwrap();
        let first = files.current();
        let (c2, k2) = pair("two.example");
        // The certificate first: it does not match the old key yet.
        replace(&cert, &c2);
        assert!(
            Arc::ptr_eq(&files.current(), &first),
            "a certificate without its key: the last pair stays"
        );
        replace(&key, &k2);
        let second = files.current();
        assert_ne!(second.cert[0], first.cert[0]);
        assert_eq!(
            second.cert[0].as_ref(),
            osm_serve::parse_pem(c2.as_bytes(), k2.as_bytes())
                .unwrap()
                .0[0]
                .as_ref()
        );
    }
}
