//! A real controller in the test's runtime, fed by a directory of
//! manifests, and proxies that get their certificates and config from it.
//!
//! Pods get their own loopback addresses (127.0.0.x, all of 127/8 is
//! loopback on Linux), so a pod address and port look as they would in a
//! cluster: the proxy's inbound listener is `podIP:port` and the application
//! listens on `127.0.0.1:port`, the same port (taken with port 0).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use osm_api::compile::MeshOptions;
use osm_controller::{
    app::{BoundAddrs, Controller, Settings, Source},
    ca::{Issuer, LocalCa, authority::Authority, store::DirStore},
    hub::Hub,
    status::Proxies,
    token::{AUDIENCE, LocalTokens, PodIdentity},
};
use osm_proxy::control::{ControlSettings, certify::PodRef, channel::ControllerAddr};
use tokio::{sync::oneshot, task::JoinHandle};

/// The controller's lasting state: its CA, its token key, and the
/// manifests directory that stands for the cluster.
pub struct ControlPlane {
    /// The CA the control plane started with.
    pub ca: Arc<LocalCa>,
    pub tokens: Arc<LocalTokens>,
    pub manifests: tempfile::TempDir,
    secrets: tempfile::TempDir,
    /// Where the CA is kept when it may rotate (each controller started
    /// resumes from it, as a restarted one does).
    ca_store: Option<(tempfile::TempDir, Arc<DirStore>)>,
    /// An external issuer of proxies' certificates (Vault, cert-manager).
    pub issuer: Option<Arc<dyn Issuer>>,
}

/// A running controller.
pub struct TestController {
    pub addrs: BoundAddrs,
    pub hub: Arc<Hub>,
    pub proxies: Arc<Proxies>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Default for ControlPlane {
    fn default() -> Self {
        Self::new()
    }
}

impl ControlPlane {
    pub fn new() -> Self {
        Self::with_ca(LocalCa::generate(Duration::from_secs(3600)).unwrap())
    }

    /// A control plane issuing from `ca`.
    pub fn with_ca(ca: LocalCa) -> Self {
        let mut key = [0u8; 32];
        for b in &mut key {
            *b = fastrand::u8(..);
        }
        Self {
            ca: Arc::new(ca),
            tokens: Arc::new(LocalTokens::from_key(&key)),
            manifests: tempfile::tempdir().unwrap(),
            secrets: tempfile::tempdir().unwrap(),
            ca_store: None,
            issuer: None,
        }
    }

    /// A control plane whose CA is kept in a directory, as local mode
    /// keeps it: `POST /ca/rotate` works, and a restarted controller
    /// resumes a rotation from there.
    pub fn rotating() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DirStore::new(dir.path()));
        let ca = store.load_ca(Duration::from_secs(3600)).unwrap();
        Self {
            ca_store: Some((dir, store)),
            ..Self::with_ca(ca)
        }
    }

    /// The mesh CA as a controller starting now finds it.
    fn authority(&self) -> Arc<Authority> {
        Arc::new(match &self.ca_store {
            Some((_, store)) => Authority::new(
                store.load_sync().unwrap().unwrap(),
                store.clone(),
                Duration::from_secs(3600),
            )
            .unwrap(),
            None => Authority::fixed(self.ca.clone()),
        })
    }

    /// Starts a controller on `grpc` (port 0 the first time; the same
    /// address to bring it back).
    pub async fn start(&self, grpc: SocketAddr) -> TestController {
        self.start_with(grpc, None).await
    }

    /// [`ControlPlane::start`], serving the TrafficMetrics API as `api` says.
    pub async fn start_with(
        &self,
        grpc: SocketAddr,
        api: Option<osm_controller::traffic_metrics::Settings>,
    ) -> TestController {
        let controller = Controller::bind(Settings {
            grpc,
            admin: "127.0.0.1:0".parse().unwrap(),
            webhook: "127.0.0.1:0".parse().unwrap(),
            ca: self.authority(),
            issuer: self.issuer.clone(),
            reviewer: self.tokens.clone(),
            mesh: MeshOptions::default(),
            source: Source::Files {
                dir: self.manifests.path().to_path_buf(),
                poll: Duration::from_millis(50),
            },
            server_names: vec!["127.0.0.1".into()],
            traffic_metrics: api,
            rotation_min_phase: Duration::ZERO,
            log_filter: None,
        })
        .await
        .expect("controller binds");
        let addrs = controller.addrs();
        let hub = controller.hub().clone();
        let proxies = controller.proxies().clone();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(controller.run(async move {
            let _ = rx.await;
        }));
        TestController {
            addrs,
            hub,
            proxies,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Writes (or replaces) a manifest file, atomically.
    pub fn write(&self, name: &str, yaml: &str) {
        let path = self.manifests.path().join(name);
        let tmp = self.secrets.path().join(format!("{name}.tmp"));
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.manifests.path().join(name)).unwrap();
    }

    /// How a pod's proxy reaches the controller, with a token for the pod.
    pub fn control_for(
        &self,
        controller: SocketAddr,
        namespace: &str,
        pod: &str,
        service_account: &str,
    ) -> ControlSettings {
        let token = self.tokens.mint(
            &PodIdentity {
                namespace: namespace.into(),
                pod: pod.into(),
                service_account: service_account.into(),
            },
            AUDIENCE,
            Duration::from_secs(3600),
        );
        let token_file: PathBuf = self.secrets.path().join(format!("{namespace}.{pod}.token"));
        std::fs::write(&token_file, token).unwrap();
        ControlSettings {
            controller: ControllerAddr::new(
                &controller.to_string(),
                None,
                self.ca.trust_bundle().as_bytes(),
            )
            .unwrap(),
            pod: PodRef {
                name: pod.into(),
                namespace: namespace.into(),
                service_account: service_account.into(),
                // As the injector gives it: the CSR names the identity.
                trust_domain: Some("cluster.local".into()),
            },
            token_file,
        }
    }

    pub fn manifests_dir(&self) -> &Path {
        self.manifests.path()
    }
}

impl TestController {
    pub fn grpc(&self) -> SocketAddr {
        self.addrs.grpc
    }

    /// Stops the controller: every stream and connection closes.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// POSTs `body` to the webhook over HTTPS, checking its certificate
    /// against `roots_pem` as the API server would; (status, body).
    pub async fn webhook_post(&self, roots_pem: &str, path: &str, body: String) -> (u16, String) {
        let request = http::Request::post(path)
            .header("host", "osm-controller")
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        https(self.addrs.webhook, roots_pem, None, request)
            .await
            .unwrap()
    }

    /// GETs `path` from the TrafficMetrics API as the API server's
    /// aggregator would, presenting `client` (certificate and key PEM);
    /// (status, body), or why the connection failed.
    pub async fn traffic_metrics_get(
        &self,
        roots_pem: &str,
        client: Option<(&str, &str)>,
        method: http::Method,
        path: &str,
    ) -> anyhow::Result<(u16, String)> {
        let addr = self.addrs.traffic_metrics.expect("the API is served");
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "osm-controller")
            .header("x-remote-user", "test-admin")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        https(addr, roots_pem, client, request).await
    }

    /// Waits until the controller reports ready (its sources synced).
    pub async fn ready(&self) {
        crate::eventually("controller ready", || async {
            (self.admin_get("/readyz").await.0 == 200).then_some(())
        })
        .await;
    }

    /// POST (empty body) on the admin endpoint; (status, body).
    pub async fn admin_post(&self, path: &str) -> (u16, String) {
        let mut conn = crate::client::Http1Conn::connect(self.addrs.admin)
            .await
            .unwrap();
        let request = http::Request::post(path)
            .header("host", "controller")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let answer = conn.send(request).await.unwrap();
        (answer.status, answer.body)
    }

    /// GET on the admin endpoint; (status, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let answer = crate::client::http1_get(self.addrs.admin, "controller", path)
            .await
            .unwrap();
        (answer.status, answer.body)
    }
}

/// One HTTPS/1.1 request to `addr`, the server's certificate checked
/// against `roots_pem` for the name 127.0.0.1, with a client certificate
/// when given; (status, body).
async fn https(
    addr: SocketAddr,
    roots_pem: &str,
    client: Option<(&str, &str)>,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> anyhow::Result<(u16, String)> {
    use http_body_util::BodyExt;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in osm_proxy::identity::parse_certificates(roots_pem.as_bytes()).unwrap() {
        roots.add(cert).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<_, _>>()?;
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(key.as_bytes())?)?
        }
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("127.0.0.1".try_into()?, tcp)
        .await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
