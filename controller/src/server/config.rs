//! `Config.Stream`: a proxy's subscription to its compiled config.
//!
//! The proxy proves who it is with its mesh certificate, names its pod in
//! its first message, and gets a full batch, then keyed changes. A batch is
//! made only when the response stream is polled for its next message, i.e.
//! when the connection can take it: while the proxy is slow, changes pile
//! up in the hub's view, and the next batch carries their net effect. A NACK
//! makes the next batch a full one, so the two sides cannot drift apart.
//!
//! The stream is the session: no task or channel per proxy (at 10,000
//! proxies each costs memory), and dropping it (the proxy gone, the
//! connection closed) ends the subscription.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use osm_api::{compile::ProxyId, v1};
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::PeerIdentity;
use crate::{
    ca::ledger::{Ledger, RootId},
    hub::{Hub, SubscribeError, View, next_update},
    metrics::Metrics,
    status::Proxies,
};

/// How long a proxy may take to send its first message.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stream opened before the controller has read the cluster's
/// state once waits for it before being refused as unavailable.
const SYNC_PATIENCE: Duration = Duration::from_secs(10);

/// Streams compiled config to proxies.
#[derive(Debug, Clone)]
pub struct ConfigService {
    pub hub: Arc<Hub>,
    pub proxies: Arc<Proxies>,
    pub metrics: Arc<Metrics>,
    pub next_stream: Arc<AtomicU64>,
    /// Where the certificate each proxy streams with is recorded: after a
    /// controller restart, what it knows of live certificates comes back
    /// as the proxies reconnect.
    pub ledger: Arc<Ledger>,
    /// Whether the sources have given the hub the whole cluster once.
    pub synced: Arc<AtomicBool>,
}

impl ConfigService {
    pub fn new(
        hub: Arc<Hub>,
        proxies: Arc<Proxies>,
        metrics: Arc<Metrics>,
        ledger: Arc<Ledger>,
        synced: Arc<AtomicBool>,
    ) -> Self {
        Self {
            hub,
            proxies,
            metrics,
            next_stream: Arc::new(AtomicU64::new(0)),
            ledger,
            synced,
        }
    }

    /// Records the certificate `peer` streams with for `pod`.
    fn record_certificate(&self, pod: &ProxyId, peer: &PeerIdentity) {
        let bundle = self.hub.trust_bundle().unwrap_or_default();
        if let (Some(root), Some(not_after)) =
            (RootId::of_chain(&peer.chain, &bundle), peer.not_after())
        {
            self.ledger
                .record(&format!("{}/{}", pod.namespace, pod.pod), root, not_after);
        }
    }
}

type Updates = Pin<Box<dyn Stream<Item = Result<v1::ConfigUpdate, Status>> + Send>>;

/// Waits until `synced` is set, at most `patience`; whether it was.
/// Once synced this is one load: only streams opened during a controller's
/// start-up poll.
async fn synced_within(synced: &AtomicBool, patience: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + patience;
    while !synced.load(Ordering::Acquire) {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// A stream the caller may open: for this proxy, with a certificate bound
/// to its pod or (issued before pod bindings) to its ServiceAccount only.
#[derive(Debug, PartialEq, Eq)]
struct Authorized {
    id: ProxyId,
    bound: bool,
}

/// Checks that the caller's certificate is the pod's ServiceAccount and,
/// when it names a pod, this pod: a sibling pod of the same
/// ServiceAccount may not take another pod's stream.
fn authorize(
    hub: &Hub,
    peer: Option<&PeerIdentity>,
    hello: &v1::ProxyInfo,
) -> Result<Authorized, Status> {
    let Some(identity) = peer.and_then(|p| p.id.as_ref()) else {
        return Err(Status::unauthenticated(
            "Config.Stream needs a client certificate from the mesh CA: call Identity.Certify first",
        ));
    };
    if hello.pod_name.is_empty() || hello.pod_namespace.is_empty() {
        return Err(Status::invalid_argument(
            "the first message must name the pod (pod_name and pod_namespace)",
        ));
    }
    let pod = format!("{}/{}", hello.pod_namespace, hello.pod_name);
    let trust_domain = hub.trust_domain();
    if identity.trust_domain() != trust_domain {
        return Err(Status::permission_denied(format!(
            "the certificate is {identity}, from trust domain {:?}; the mesh's is {trust_domain:?}: \
             call Identity.Certify for a certificate of this mesh",
            identity.trust_domain()
        )));
    }
    let service_account = hub
        .pod_service_account(&hello.pod_namespace, &hello.pod_name)
        .ok_or_else(|| {
            Status::unavailable(format!("pod {pod} is not known to the controller yet"))
        })?;
    if identity.namespace() != hello.pod_namespace || identity.service_account() != service_account
    {
        return Err(Status::permission_denied(format!(
            "the certificate is {identity}, but pod {pod} runs as ServiceAccount {}/{service_account}",
            hello.pod_namespace
        )));
    }
    let bound_to = peer.and_then(|p| p.pod.as_ref());
    if let Some(bound_to) = bound_to
        && (bound_to.namespace != hello.pod_namespace || bound_to.name != hello.pod_name)
    {
        return Err(Status::permission_denied(format!(
            "the certificate was issued to pod {bound_to}, not {pod}: each pod streams its own \
             config with its own certificate"
        )));
    }
    Ok(Authorized {
        id: ProxyId {
            namespace: hello.pod_namespace.clone(),
            pod: hello.pod_name.clone(),
        },
        bound: bound_to.is_some(),
    })
}

#[tonic::async_trait]
impl v1::config_server::Config for ConfigService {
    type StreamStream = Updates;

    async fn stream(
        &self,
        request: Request<Streaming<v1::ProxyInfo>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let peer = request.extensions().get::<PeerIdentity>().cloned();
        let mut inbound = request.into_inner();
        let hello = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no ProxyInfo within 10s"))??
            .ok_or_else(|| Status::invalid_argument("the stream ended before its first message"))?;
        // A restarted controller fills its hub object by object: a proxy
        // served before the first full read would be sent a config missing
        // Services it routes to (its pod is read before them) and refuse
        // their requests until the rest arrived. As OSM waited for its
        // informers' caches, streams wait for the sources' first sync.
        if !synced_within(&self.synced, SYNC_PATIENCE).await {
            return Err(Status::unavailable(
                "the controller has not read the cluster's state yet: retry",
            ));
        }
        let Authorized { id, bound } = match authorize(&self.hub, peer.as_ref(), &hello) {
            Ok(authorized) => authorized,
            Err(status) => {
                self.metrics.error("stream");
                tracing::info!(pod = %format!("{}/{}", hello.pod_namespace, hello.pod_name), reason = %status.message(), "stream refused");
                return Err(status);
            }
        };
        let subscription = if bound {
            self.hub.subscribe(id.clone())
        } else {
            self.hub.subscribe_unbound(id.clone())
        }
        .map_err(|e| {
            self.metrics.error("stream");
            match e {
                SubscribeError::Compile(_) => Status::failed_precondition(e.to_string()),
                SubscribeError::HeldByBoundCertificate(_) => {
                    Status::permission_denied(e.to_string())
                }
                SubscribeError::Full(_) => {
                    self.metrics.stream_over_limit();
                    Status::resource_exhausted(e.to_string())
                }
            }
        })?;
        let stream = self.next_stream.fetch_add(1, Ordering::Relaxed);
        if let Some(peer) = &peer {
            self.record_certificate(&id, peer);
        }
        let identity = peer
            .and_then(|p| p.id)
            .map(|i| i.to_string())
            .unwrap_or_default();
        self.proxies
            .connected(stream, &id.namespace, &id.pod, &identity);
        self.metrics
            .proxy_connected(!hello.acked_version.is_empty());
        tracing::debug!(pod = %format!("{}/{}", id.namespace, id.pod), "proxy connected");
        let session = Session {
            service: self.clone(),
            id,
            stream,
            token: subscription.token,
            views: subscription.views,
            inbound,
            sent: None,
            pending: true,
            nacks: 0,
            resend_at: None,
        };
        let updates = futures_util::stream::unfold(session, |mut session| async move {
            let update = session.next_batch().await?;
            Some((Ok(update), session))
        });
        Ok(Response::new(Box::pin(updates)))
    }
}

/// One proxy's stream: its subscription, what it was last sent, and its
/// acknowledgements.
struct Session {
    service: ConfigService,
    id: ProxyId,
    stream: u64,
    token: u64,
    views: watch::Receiver<View>,
    inbound: Streaming<v1::ProxyInfo>,
    sent: Option<View>,
    /// A batch may be due (a first one, a change, or a NACK).
    pending: bool,
    /// NACKs in a row; the full resend after each waits
    /// [`osm_api::protocol::nack_backoff`].
    nacks: u32,
    resend_at: Option<tokio::time::Instant>,
}

/// What woke a waiting session.
enum Event {
    Changed(bool),
    Message(Result<Option<v1::ProxyInfo>, Status>),
}

impl Session {
    /// The next batch for the proxy, reading acknowledgements meanwhile;
    /// None when the stream is over. Made when asked for, so it is always
    /// against the latest view.
    async fn next_batch(&mut self) -> Option<v1::ConfigUpdate> {
        loop {
            let held = self
                .resend_at
                .filter(|at| *at > tokio::time::Instant::now());
            if held.is_none() && std::mem::take(&mut self.pending) {
                let latest = self.views.borrow_and_update().clone();
                if self.sent.as_ref().map(|s| s.version) != Some(latest.version) {
                    let update = next_update(self.sent.as_ref(), &latest);
                    let changed_at = latest.changed_at;
                    self.sent = Some(latest);
                    if update.full || !update.upserts.is_empty() || !update.removals.is_empty() {
                        let service = &self.service;
                        service.proxies.sent(self.stream, &update.version);
                        service
                            .metrics
                            .config_pushed(changed_at.map(|at| at.elapsed()));
                        return Some(update);
                    }
                }
            }
            let pending = self.pending;
            let resend = async move {
                match held {
                    Some(at) if pending => tokio::time::sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                changed = self.views.changed() => Event::Changed(changed.is_ok()),
                message = self.inbound.message() => Event::Message(message),
                () = resend => continue,
            };
            match event {
                // Replaced by a newer stream of the same proxy.
                Event::Changed(false) => return None,
                Event::Changed(true) => self.pending = true,
                Event::Message(message) => {
                    if !self.on_message(message) {
                        return None;
                    }
                    self.pending = self.sent.is_none();
                }
            }
        }
    }

    /// Records an ACK or NACK; false when the stream is over. A NACK
    /// forgets what was sent, so the next batch is full.
    fn on_message(&mut self, message: Result<Option<v1::ProxyInfo>, Status>) -> bool {
        match message {
            Ok(Some(info)) => {
                if info.nack_reason.is_empty() {
                    self.nacks = 0;
                    self.resend_at = None;
                } else {
                    self.nacks = self.nacks.saturating_add(1);
                    let wait = osm_api::protocol::nack_backoff(self.nacks);
                    self.resend_at = Some(tokio::time::Instant::now() + wait);
                }
                self.service
                    .proxies
                    .acknowledged(self.stream, &info, self.nacks);
                self.service
                    .metrics
                    .proxy_answered(!info.nack_reason.is_empty());
                if !info.rejected_resources.is_empty() {
                    self.service
                        .metrics
                        .rejected_resources
                        .increment(info.rejected_resources.len() as u64);
                    tracing::warn!(
                        pod = %format!("{}/{}", self.id.namespace, self.id.pod),
                        rejected = ?info.rejected_resources,
                        "proxy enforces resources of its config fail-closed"
                    );
                }
                if !info.nack_reason.is_empty() {
                    tracing::warn!(
                        pod = %format!("{}/{}", self.id.namespace, self.id.pod),
                        reason = %info.nack_reason,
                        consecutive = self.nacks,
                        "proxy refused its config; resending in full"
                    );
                    self.sent = None;
                }
                true
            }
            Ok(None) => false,
            Err(status) => {
                tracing::debug!(error = %status, "stream error");
                false
            }
        }
    }
}

impl Drop for Session {
    /// The stream is over (the proxy left, the connection closed, or a
    /// newer stream replaced this one): end the subscription.
    fn drop(&mut self) {
        let service = &self.service;
        service.hub.unsubscribe(&self.id, self.token);
        service.proxies.disconnected(self.stream);
        service.metrics.proxy_disconnected();
        tracing::debug!(pod = %format!("{}/{}", self.id.namespace, self.id.pod), "proxy disconnected");
    }
}

#[cfg(test)]
mod tests;
